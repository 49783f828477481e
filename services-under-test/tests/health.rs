//! `/healthcheck` and `/metrics` on every service.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

mod common;

use common::*;
use serde_json::Value;

#[tokio::test]
async fn every_service_reports_its_health_and_metrics() {
    let p = Platform::start().await;
    let all = [
        ("catalogue", &p.catalogue[0]),
        ("mixes", &p.mixes[0]),
        ("media", &p.media[0]),
        ("analytics", &p.analytics[0]),
        ("gateway", &p.gateway),
    ];
    for (name, instance) in all {
        let r = p
            .http
            .get(format!("{}/healthcheck", instance.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let h: Value = r.json().await.unwrap();
        assert_eq!(h["service"], name);
        assert_eq!(h["status"], "ok");
        assert_eq!(h["version"], lookout_services::VERSION);
        assert!(h["uptime_seconds"].as_f64().unwrap() >= 0.0);
        let metrics = p
            .http
            .get(format!("{}/metrics", instance.url()))
            .send()
            .await
            .unwrap();
        assert!(
            metrics.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        let text = metrics.text().await.unwrap();
        assert!(
            text.contains(&format!("platform_service_info{{service=\"{name}\"")),
            "{name}"
        );
        assert!(text.contains("platform_http_requests_total{method=\"GET\",route=\"/healthcheck\",status=\"200\"} "), "{name}: {text}");
        assert!(text.contains("platform_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthcheck\",le=\"0.8\"} "));
    }
    let h: Value = p
        .http
        .get(p.url("/healthcheck"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = h["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["analytics", "catalogue", "media", "mixes"]);

    p.get("/1.x/artists/77").await;
    p.get("/1.x/nope").await;
    let text = lookout_testkit::http::get_text(&p.http, p.url("/metrics")).await;
    assert!(
        text.contains("route=\"/1.x/artists/{id}\",status=\"200\"} 1"),
        "routes are patterns, not paths"
    );
    assert!(text.contains("route=\"unmatched\",status=\"404\"} 1"));
    assert!(text.contains("platform_gateway_upstream_up{instance="));
    assert!(text.contains(
        "platform_gateway_upstream_requests_total{outcome=\"ok\",service=\"catalogue\"}"
    ));
}

#[tokio::test]
async fn every_metrics_endpoint_passes_promtool() {
    let p = Platform::start().await;
    // Traffic of every kind first, so every family has samples.
    p.get("/1.x/artists/1/view").await;
    p.get("/1.x/nope").await;
    p.http
        .post(p.url("/1.x/events"))
        .header("x-api-key", API_KEY)
        .json(&serde_json::json!({"type": "navigation", "screen": "home"}))
        .send()
        .await
        .unwrap();
    fault(
        &p.http,
        &p.catalogue[0],
        serde_json::json!({"kind": "latency", "latency": "1ms"}),
    )
    .await;
    let all = [
        &p.catalogue[0],
        &p.mixes[0],
        &p.media[0],
        &p.analytics[0],
        &p.gateway,
    ];
    for instance in all {
        let text =
            lookout_testkit::http::get_text(&p.http, format!("{}/metrics", instance.url())).await;
        if let Err(problems) = lookout_testkit::peers::promtool_check(&text) {
            panic!(
                "{:?} /metrics fails promtool:\n{problems}\n{text}",
                instance.kind
            );
        }
    }
}

//! Monitoring the monitor, against a real collector on loopback: the generated
//! `monitoring-blind` check turns WARN when one region's results stop and ERROR when all do or
//! the collector goes away, and the heartbeat to a dead-man's switch goes only while the
//! alerter can see the collector.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lookout_alerting::generate::{self, GenerateSettings, Watched};
use lookout_alerting::{Alerter, AlerterSettings, Heartbeat};
use lookout_collector::Collector;
use lookout_model::secret::Secret;
use serde_json::{Value, json};

const TOKEN: &str = "blind-token";
const REGIONS: [&str; 3] = ["eu", "us", "ap"];

async fn collector() -> Collector {
    // Silent after 2 x 1 s + 1 s without a result.
    let info = lookout_testkit::collector::check(&REGIONS, 1_000_000, 1_000_000);
    lookout_testkit::collector::start(TOKEN, lookout_testkit::collector::known(&["quick"], &info))
        .await
}

/// A dead-man's switch: counts the calls.
async fn switch() -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let app = axum::Router::new().route(
        "/ping/{key}",
        axum::routing::get(move || {
            let c = counted.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/ping/secret-switch-key"), calls)
}

async fn post_results(http: &reqwest::Client, c: &Collector, regions: &[&str], seq: u64) {
    let t = chrono::Utc::now().timestamp_micros();
    let results: Vec<Value> = regions
        .iter()
        .map(|r| {
            json!({"check": "quick", "region": r, "agent": format!("{r}-1"), "seq": seq,
                "started_at_us": t, "outcome": {"status": "ok"}, "duration_us": 1000, "steps": []})
        })
        .collect();
    let r = http
        .post(format!("{}/api/v1/results", c.url()))
        .bearer_auth(TOKEN)
        .json(&json!({ "results": results }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn blind(http: &reqwest::Client, a: &Alerter) -> Value {
    lookout_testkit::http::get_json(
        http,
        format!("{}/api/checks/monitoring-blind", a.url()),
        TOKEN,
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn results_stopping_in_a_region_or_everywhere_make_the_monitoring_blind() {
    let c = collector().await;
    let (switch_url, calls) = switch().await;
    let watched = [Watched {
        name: "quick".into(),
        description: String::new(),
        regions: REGIONS.iter().map(|r| r.to_string()).collect(),
        slo: Default::default(),
    }];
    let mut settings = AlerterSettings::new(
        url::Url::parse(&c.url()).unwrap(),
        Secret::new(TOKEN),
        Secret::new(TOKEN),
    );
    settings.checks = generate::checks(&watched, &GenerateSettings::default())
        .into_iter()
        .filter(|c| c.id == "monitoring-blind")
        .collect();
    // Regions that never reported are not blind until then; the test reports from the start.
    settings.blind_grace = Duration::from_secs(2);
    settings.heartbeat = Some(Heartbeat {
        url: Secret::new(switch_url),
        every: Duration::from_millis(200),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = Alerter::start(settings, listener).await.unwrap();
    let http = reqwest::Client::new();

    // Every region reports: not blind, and the switch hears from us.
    let mut seq = 0;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        seq += 1;
        post_results(&http, &c, &REGIONS, seq).await;
        a.tick().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let b = blind(&http, &a).await;
    assert_eq!(b["state"], "OK", "{b}");
    assert_eq!(b["value"], 0.0, "{b}");
    assert!(
        calls.load(Ordering::SeqCst) >= 5,
        "heartbeats while healthy"
    );

    // `ap` stops reporting: after its silence (3 s), one region is blind: a ticket.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        seq += 1;
        post_results(&http, &c, &["eu", "us"], seq).await;
        a.tick().await.unwrap();
        let b = blind(&http, &a).await;
        if b["state"] == "WARN" {
            assert_eq!(b["value"], 1.0, "{b}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "one silent region never made WARN: {b}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Nothing arrives from anywhere: blind, ERROR.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        a.tick().await.unwrap();
        let b = blind(&http, &a).await;
        if b["state"] == "ERROR" {
            assert_eq!(b["value"], 3.0, "{b}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no results never made ERROR: {b}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let alerts: Value = lookout_testkit::http::get_json(
        &http,
        format!("{}/api/checks/monitoring-blind/alerts", a.url()),
        TOKEN,
    )
    .await;
    let changes: Vec<(&str, &str)> = alerts["values"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|x| (x["from"].as_str().unwrap(), x["to"].as_str().unwrap()))
        .collect();
    assert_eq!(changes, [("OK", "WARN"), ("WARN", "ERROR")]);

    // The collector goes away: no more heartbeats once the feed is stale (30 s is too long
    // for a test; what matters is that none go while the feed fails, checked below).
    c.shutdown().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let metrics = lookout_testkit::http::get_text(&http, format!("{}/metrics", a.url())).await;
    assert!(
        metrics.contains("lookout_alerting_collector_up 0"),
        "the feed's failure shows: {metrics}"
    );
    assert!(!metrics.contains("secret-switch-key"));
    a.shutdown().await;
}

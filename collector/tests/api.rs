//! The collector's HTTP API against a real collector on loopback: bad input gets a clear 4xx
//! naming what was wrong and nothing of it is stored; good batches are acknowledged once; the
//! query endpoints answer from what was stored.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

use std::collections::BTreeMap;
use std::sync::Arc;

use lookout_collector::store::{ResultStore, SqliteStore};
use lookout_collector::{CheckInfo, Collector, CollectorSettings};
use lookout_model::secret::Secret;
use serde_json::{Value, json};

const TOKEN: &str = "api-test-token";

async fn collector() -> (Collector, Arc<SqliteStore>) {
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let known = BTreeMap::from([(
        "search".to_string(),
        CheckInfo {
            regions: vec!["eu".into(), "us".into(), "ap".into()],
            ..CheckInfo::unknown()
        },
    )]);
    let settings = CollectorSettings::new(Secret::new(TOKEN), known);
    let c = lookout_testkit::collector::start_with(settings, store.clone()).await;
    (c, store)
}

fn result(region: &str, seq: u64, t: i64, ok: bool) -> Value {
    let outcome = if ok {
        json!({"status": "ok"})
    } else {
        json!({"status": "fail", "kind": "refused", "message": "connection refused", "step": 0})
    };
    json!({"check": "search", "region": region, "agent": format!("{region}-1"), "seq": seq,
        "started_at_us": t, "outcome": outcome, "duration_us": 120_000, "steps": []})
}

async fn post(http: &reqwest::Client, c: &Collector, body: String, token: &str) -> (u16, Value) {
    let r = http
        .post(format!("{}/api/v1/results", c.url()))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn bad_batches_are_refused_by_name_and_nothing_of_them_is_stored() {
    let (c, store) = collector().await;
    let http = reqwest::Client::new();
    let now = chrono::Utc::now().timestamp_micros();
    let good = result("eu", 1, now - 60_000_000, true);

    let (status, _) = post(&http, &c, json!({"results": [good]}).to_string(), "wrong").await;
    assert_eq!(status, 403, "a wrong token");
    let r = http
        .post(format!("{}/api/v1/results", c.url()))
        .header("content-type", "application/json")
        .body(json!({"results": [good]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "no token");

    let r = http
        .post(format!("{}/api/v1/results", c.url()))
        .bearer_auth(TOKEN)
        .body(json!({"results": [good]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415, "no JSON content type");

    let mut bad_type = good.clone();
    bad_type["seq"] = json!("seven");
    let (status, body) = post(
        &http,
        &c,
        json!({"results": [good, bad_type]}).to_string(),
        TOKEN,
    )
    .await;
    assert_eq!(status, 400);
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("results[1].seq"), "{message}");

    let mut unknown = good.clone();
    unknown["check"] = json!("nope");
    let (status, body) = post(
        &http,
        &c,
        json!({"results": [good, unknown]}).to_string(),
        TOKEN,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("unknown check \"nope\""),
        "{body}"
    );

    let future = result("us", 1, now + 3_600_000_000, true);
    let (status, body) = post(&http, &c, json!({"results": [future]}).to_string(), TOKEN).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("ahead of the collector's clock"),
        "{body}"
    );

    let (status, _) = post(&http, &c, "{\"results\": [".into(), TOKEN).await;
    assert_eq!(status, 400, "truncated JSON");
    assert_eq!(store.len(), 0, "nothing of a refused batch is stored");

    let (status, ack) = post(&http, &c, json!({"results": [good]}).to_string(), TOKEN).await;
    assert_eq!((status, ack["accepted"].as_u64()), (200, Some(1)));
    let (_, ack) = post(&http, &c, json!({"results": [good]}).to_string(), TOKEN).await;
    assert_eq!(
        (ack["accepted"].as_u64(), ack["duplicates"].as_u64()),
        (Some(0), Some(1))
    );

    // An agent whose clock runs 30 s ahead: accepted (within 5 minutes), and reported.
    let ahead = result(
        "ap",
        1,
        chrono::Utc::now().timestamp_micros() + 30_000_000,
        true,
    );
    let (status, _) = post(&http, &c, json!({"results": [ahead]}).to_string(), TOKEN).await;
    assert_eq!(status, 200);
    let metrics = lookout_testkit::http::get_text(&http, format!("{}/metrics", c.url())).await;
    let offset: f64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("lookout_collector_agent_clock_offset_seconds{agent=\"ap-1\"} ")
        })
        .unwrap()
        .parse()
        .unwrap();
    assert!((-30.2..=-29.9).contains(&offset), "{offset}");
    c.shutdown().await;
}

#[tokio::test]
async fn the_query_endpoints_answer_from_what_was_stored() {
    let (c, _store) = collector().await;
    let http = reqwest::Client::new();
    let now = chrono::Utc::now().timestamp_micros();
    // Ten minutes from three regions every 10 s; two regions fail for the middle two minutes.
    let start = now - 10 * 60_000_000;
    let mut results = Vec::new();
    for i in 0..60i64 {
        let t = start + i * 10_000_000;
        for (r, region) in ["eu", "us", "ap"].iter().enumerate() {
            let failing = (24..36).contains(&i) && r < 2;
            results.push(result(region, i as u64 + 1, t + r as i64, !failing));
        }
    }
    let (status, _) = post(&http, &c, json!({ "results": results }).to_string(), TOKEN).await;
    assert_eq!(status, 200);
    let get = |path: String| {
        let http = http.clone();
        async move {
            let r = http.get(path).bearer_auth(TOKEN).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, a) = get(format!(
        "{}/api/v1/checks/search/availability?from_us={start}&to_us={}",
        c.url(),
        start + 10 * 60_000_000
    ))
    .await;
    assert_eq!(status, 200, "{a}");
    // Down from us's first failure (1 µs after eu's) until eu's first success.
    assert_eq!(a["down_seconds"], json!(119.999999), "{a}");
    assert_eq!(a["latency"]["count"], json!(180 - 24));
    assert_eq!(a["current"]["state"], "up", "{a}");
    assert_eq!(a["current"]["regions"][1]["region"], "us");
    assert_eq!(a["current"]["regions"][1]["failing"], false);

    let metrics = lookout_testkit::http::get_text(&http, format!("{}/metrics", c.url())).await;
    let burn: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("lookout_check_burn_rate{check=\"search\",window=\"1h\"} "))
        .unwrap()
        .parse()
        .unwrap();
    // About 120 s down of 600 s observed, over an allowed 0.01 %.
    assert!((1900.0..2100.0).contains(&burn), "{burn}");

    let (status, all) = get(format!("{}/api/v1/checks?window=1h", c.url())).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["checks"][0]["check"], "search");
    assert!(all["checks"][0]["availability"].as_f64().unwrap() < 1.0);

    let (status, days) = get(format!("{}/api/v1/checks/search/daily?days=3", c.url())).await;
    assert_eq!(status, 200, "{days}");
    let days = days.as_array().unwrap();
    assert_eq!(days.len(), 3);
    // Today's, or (just after midnight) yesterday's too.
    let down: f64 = days
        .iter()
        .map(|d| d["down_seconds"].as_f64().unwrap())
        .sum();
    assert!(down >= 119.0, "the last days: {days:?}");
    assert_eq!(days[0]["availability"], Value::Null, "no data two days ago");

    let (status, inc) = get(format!(
        "{}/api/v1/checks/search/incidents?window=1h",
        c.url()
    ))
    .await;
    assert_eq!(status, 200, "{inc}");
    let list = inc["incidents"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{inc}");
    assert_eq!(list[0]["start_us"], json!(start + 240_000_001));
    assert_eq!(list[0]["end_us"], json!(start + 360_000_000));
    assert_eq!(list[0]["down_seconds"], json!(119.999999));
    assert_eq!(list[0]["regions"], json!(["eu", "us"]));
    assert_eq!(list[0]["first_failure"]["region"], "eu");
    assert_eq!(list[0]["first_failure"]["kind"], "refused");
    assert_eq!(list[0]["exact"], true);

    for (path, status) in [
        ("/api/v1/checks/search/availability?window=soon", 400),
        ("/api/v1/checks/nope/availability?window=1h", 404),
        ("/api/v1/checks/search/daily?days=0", 400),
        ("/api/v1/checks?window=500d", 400),
    ] {
        let (got, body) = get(format!("{}{path}", c.url())).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(body["error"].as_str().is_some(), "{path}: {body}");
    }
    c.shutdown().await;
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_and_is_served_without_a_token() {
    let (c, _store) = collector().await;
    let doc: Value = reqwest::get(format!("{}/api/v1/openapi.json", c.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    let mut paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    paths.sort_unstable();
    // Every route the collector serves, and nothing it does not (http/mod.rs `router`, and
    // the reload route it merges when it runs from a config file).
    let sources = [
        include_str!("../src/http/mod.rs"),
        include_str!("../../api/src/reload.rs"),
    ];
    let mut routed: Vec<&str> = sources
        .iter()
        .flat_map(|source| {
            source
                .match_indices(".route(")
                .filter_map(|(i, _)| source[i..].split('"').nth(1))
        })
        .collect();
    routed.sort_unstable();
    assert_eq!(paths, routed);
    c.shutdown().await;
}

#[tokio::test]
async fn events_are_kept_in_order_and_bad_ones_refused_by_field() {
    let (c, _store) = collector().await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/events", c.url());
    let event = |kind: &str, t: i64| {
        serde_json::json!({"source": "replacer", "kind": kind, "service": "catalogue",
            "instance": "catalogue#1", "message": format!("{kind} at {t}"), "time_us": t})
    };
    let r = http
        .post(&url)
        .json(&serde_json::json!({"events": [event("x", 1)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a token is needed");
    let r = http
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"events": [event("replacement_started", 1_000), event("replacement_done", 2_000)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    let r = http
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"events": [event("", 3_000)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("events[0].kind"));
    let all: Value = lookout_testkit::http::get_json(&http, &url, TOKEN).await;
    let kinds: Vec<&str> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["replacement_started", "replacement_done"]);
    let first = all["events"][0]["id"].as_i64().unwrap();
    let after: Value =
        lookout_testkit::http::get_json(&http, format!("{url}?after={first}"), TOKEN).await;
    assert_eq!(after["events"].as_array().unwrap().len(), 1);
    assert_eq!(after["events"][0]["duration_ms"], Value::Null);
    c.shutdown().await;
}

#[tokio::test]
async fn agents_that_say_where_their_metrics_are_are_listed_for_prometheus() {
    let (c, _) = collector().await;
    let http = reqwest::Client::new();
    let poll = |agent: &'static str, region: &'static str, metrics: &'static str| {
        let (http, base) = (http.clone(), c.url());
        async move {
            http.get(format!("{base}/api/v1/agents/{agent}/commands"))
                .query(&[
                    ("region", region),
                    ("checks", "search"),
                    ("metrics_url", metrics),
                ])
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
        }
    };
    let r = poll("eu-1", "eu", "http://10.0.0.7:9464/metrics").await;
    assert_eq!(r.status(), 200);
    let r = poll("us-1", "us", "https://[2001:db8::1]/probe/metrics").await;
    assert_eq!(r.status(), 200);
    let r = poll("ap-1", "ap", "10.0.0.9:9464").await;
    assert_eq!(r.status(), 400, "not a URL");
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("`metrics_url`"),
        "{body}"
    );
    // An agent that polls without saying is not listed; nor is one that gave a bad URL.
    let r = http
        .get(format!("{}/api/v1/agents/ap-2/commands?region=ap", c.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Open, like /metrics: Prometheus's http_sd_configs reads it without a token.
    let groups: Value = http
        .get(format!("{}/api/v1/targets", c.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        groups,
        json!([
            {"targets": ["10.0.0.7:9464"], "labels": {"__metrics_path__": "/metrics",
                "__scheme__": "http", "agent": "eu-1", "region": "eu"}},
            {"targets": ["[2001:db8::1]:443"], "labels": {"__metrics_path__": "/probe/metrics",
                "__scheme__": "https", "agent": "us-1", "region": "us"}},
        ])
    );
}

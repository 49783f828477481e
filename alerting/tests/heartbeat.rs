//! Heartbeat checks through a real collector and alerter: a job that reports is up; a report
//! missed past its period and grace makes the check down and pages; a late report resolves;
//! a report saying it failed is down at once; the heartbeat's own token is the only one that
//! reports, and a bad report is refused saying what is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

mod world;

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use lookout_collector::ingest::CheckInfo;
use lookout_model::heartbeat::{self, Heartbeat};
use lookout_model::secret::Secret;
use serde_json::{Value, json};
use world::*;

const HEARTBEAT_TOKEN: &str = "nightly-heartbeat-token";

async fn heartbeat_world(hook: &Receiver) -> World {
    let info = CheckInfo {
        regions: vec![heartbeat::REGION.into()],
        interval_us: 2_000_000,
        timeout_us: 1_000_000,
        heartbeat: Some(Heartbeat {
            period: Duration::from_secs(2),
            grace: Duration::from_secs(1),
            token: Secret::new(HEARTBEAT_TOKEN),
        }),
        ..CheckInfo::unknown()
    };
    let collector = lookout_testkit::collector::start(
        COLLECTOR_TOKEN,
        lookout_testkit::collector::known(&["nightly"], &info),
    )
    .await;
    let mut s = settings(&collector);
    s.notifiers.insert("hook".into(), hook.notifier(false));
    let w = World {
        alerter: alerter(s).await,
        collector,
        http: reqwest::Client::new(),
        seq: AtomicU64::new(1),
    };
    w.create(
        json!({"id": "nightly-down", "name": "Nightly index job", "target": "down(nightly)",
        "error": 1, "allow_no_data": true, "interval": "1s"}),
    )
    .await;
    w.subscribe("nightly-down", "hook").await;
    w
}

async fn report(w: &World, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut r = w
        .http
        .post(format!("{}/api/v1/heartbeats/nightly", w.collector.url()));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert!(!text.contains(HEARTBEAT_TOKEN), "{text}");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn state(w: &World) -> Value {
    let v = lookout_testkit::http::get_json(
        &w.http,
        format!("{}/api/v1/states", w.collector.url()),
        COLLECTOR_TOKEN,
    )
    .await;
    v["checks"][0].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missed_heartbeat_pages_and_a_late_one_resolves() {
    let hook = Receiver::start(&[], 200).await;
    let w = heartbeat_world(&hook).await;
    let (status, v) = report(&w, Some(HEARTBEAT_TOKEN), None).await;
    assert_eq!(status, 202, "{v}");
    assert!(v["due_by_us"].as_i64().unwrap() > v["received_at_us"].as_i64().unwrap() + 2_900_000);
    let s = state(&w).await;
    assert_eq!(
        (s["state"].as_str(), s["quorum"].as_u64()),
        (Some("up"), Some(1)),
        "{s}"
    );
    w.until_state("nightly-down", "OK").await;

    // No report for more than 2 s + 1 s: down, from the deadline, and it pages.
    w.until("the page", || !hook.accepted("trigger").is_empty())
        .await;
    let s = state(&w).await;
    assert_eq!(s["state"], "down", "{s}");
    let reason = s["regions"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("no heartbeat since") && reason.contains("due every 2s, with 1s of grace"),
        "{s}"
    );

    // A late report resolves it.
    let (status, _) = report(&w, Some(HEARTBEAT_TOKEN), Some(json!({"status": "ok"}))).await;
    assert_eq!(status, 202);
    w.until("the resolve", || !hook.accepted("resolve").is_empty())
        .await;
    assert_eq!(state(&w).await["state"], "up");
    assert_eq!(hook.accepted("trigger").len(), 1, "paged once");

    // The downtime is in the figures, as for any check.
    let v = lookout_testkit::http::get_json(
        &w.http,
        format!(
            "{}/api/v1/checks/nightly/availability?window=1d",
            w.collector.url()
        ),
        COLLECTOR_TOKEN,
    )
    .await;
    assert!(v["down_seconds"].as_f64().unwrap() > 1.0, "{v}");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_reported_is_down_at_once_and_only_its_token_reports() {
    let hook = Receiver::start(&[], 200).await;
    let w = heartbeat_world(&hook).await;
    let (status, v) = report(&w, None, None).await;
    assert_eq!(status, 401, "{v}");
    let (status, v) = report(&w, Some(COLLECTOR_TOKEN), None).await;
    assert_eq!(
        status, 403,
        "the collector's token is not the heartbeat's: {v}"
    );
    let (status, v) = report(&w, Some(HEARTBEAT_TOKEN), Some(json!({"status": "broken"}))).await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("not a heartbeat report"),
        "{v}"
    );
    // An agent cannot post results for it either.
    let r = w
        .http
        .post(format!("{}/api/v1/results", w.collector.url()))
        .bearer_auth(COLLECTOR_TOKEN)
        .json(
            &json!({"results": [{"check": "nightly", "region": "heartbeat", "agent": "a",
            "seq": 1, "started_at_us": now_us(), "outcome": {"status": "ok"},
            "duration_us": 1, "steps": []}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("is a heartbeat"));

    let (status, _) = report(
        &w,
        Some(HEARTBEAT_TOKEN),
        Some(json!({"status": "fail", "message": "index build failed: disk full"})),
    )
    .await;
    assert_eq!(status, 202);
    let s = state(&w).await;
    assert_eq!(s["state"], "down", "down at once: {s}");
    assert_eq!(
        s["regions"][0]["reason"],
        "the job reported a failure: index build failed: disk full"
    );
    w.until("the page", || !hook.accepted("trigger").is_empty())
        .await;
    w.stop().await;
}

//! What a reader costs the collector: a status page's refresh and an alerter's round make a
//! fixed number of collector requests, whatever the number of components and checks (the
//! collector's own `lookout_collector_api_requests_total` counts them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use lookout_alerting::{Alerter, AlerterSettings};
use lookout_collector::{CheckInfo, Collector};
use lookout_model::secret::Secret;
use lookout_status_page::settings::{ComponentSpec, GroupSpec};
use lookout_status_page::{StatusPage, StatusPageSettings};
use serde_json::{Value, json};

const TOKEN: &str = "read-cost-token";
const REGIONS: [&str; 3] = ["eu-west", "us-east", "ap-south"];

/// Requests the collector has answered, by `route method`.
async fn requests(http: &reqwest::Client, collector: &str) -> BTreeMap<String, f64> {
    common::samples(http, collector, "lookout_collector_api_requests_total")
        .await
        .into_iter()
        .collect()
}

/// The requests between two counts, the live state's long polls and the SLO reads apart.
fn reads(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> (f64, Vec<String>) {
    let mut n = 0.0;
    let mut which = Vec::new();
    for (k, v) in after {
        let d = v - before.get(k).copied().unwrap_or(0.0);
        if d > 0.0 && !k.contains("/api/v1/states") && !k.contains("/api/v1/slos") {
            n += d;
            which.push(format!("{k}: {d}"));
        }
    }
    (n, which)
}

struct World {
    collector: Collector,
    checks: Vec<String>,
    http: reqwest::Client,
}

async fn world(n: usize) -> World {
    let checks: Vec<String> = (0..n).map(|i| format!("check-{i}")).collect();
    let info = CheckInfo {
        regions: REGIONS.iter().map(|r| r.to_string()).collect(),
        ..CheckInfo::unknown()
    };
    let known = checks.iter().map(|c| (c.clone(), info.clone())).collect();
    let collector = lookout_testkit::collector::start(TOKEN, known).await;
    let http = reqwest::Client::new();
    let now = chrono::Utc::now().timestamp_micros();
    let results: Vec<Value> = checks
        .iter()
        .flat_map(|c| REGIONS.iter().map(move |r| (c, r)))
        .enumerate()
        .map(|(seq, (c, r))| {
            json!({"check": c, "region": r, "agent": format!("{r}-1"), "seq": seq,
                "started_at_us": now - 1_000_000, "outcome": {"status": "ok"},
                "duration_us": 100_000, "steps": []})
        })
        .collect();
    let r = http
        .post(format!("{}/api/v1/results", collector.url()))
        .bearer_auth(TOKEN)
        .json(&json!({ "results": results }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    World {
        collector,
        checks,
        http,
    }
}

/// Collector requests of one status page refresh with a component per check.
async fn page_refresh(w: &World) -> f64 {
    let mut s = StatusPageSettings::new(
        url::Url::parse(&format!("{}/", w.collector.url())).unwrap(),
        Secret::new(TOKEN),
        Secret::new("admin"),
    );
    s.groups = vec![GroupSpec {
        id: "all".into(),
        name: "All".into(),
        components: w
            .checks
            .iter()
            .map(|c| ComponentSpec {
                id: c.clone(),
                name: c.clone(),
                description: String::new(),
                check: c.clone(),
            })
            .collect(),
    }];
    s.regions = REGIONS
        .iter()
        .map(|r| (r.to_string(), r.to_string()))
        .collect();
    s.refresh_every = Duration::from_secs(3600);
    let page = StatusPage::start(
        s,
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap();
    // Past the first refreshes (at start and on the feed's first answer).
    tokio::time::sleep(Duration::from_millis(500)).await;
    page.refresh().await;
    let before = requests(&w.http, &w.collector.url()).await;
    page.refresh().await;
    let after = requests(&w.http, &w.collector.url()).await;
    page.shutdown().await;
    let (n, which) = reads(&before, &after);
    println!(
        "{} components: a status page refresh: {n} requests: {which:?}",
        w.checks.len()
    );
    n
}

/// Collector requests of an alerter's first round (every check due at once), with the checks
/// generated for every collector check and a check of the example config's shape.
async fn alerter_round(w: &World) -> (f64, usize) {
    let mut settings = AlerterSettings::new(
        url::Url::parse(&w.collector.url()).unwrap(),
        Secret::new(TOKEN),
        Secret::new("alerting"),
    );
    settings.generate = Default::default();
    // The example config's own check: a day's availability of one check.
    let spec: lookout_alerting::spec::CheckSpec = serde_json::from_value(json!({
        "name": "day", "target": format!("availability({}, 1d)", w.checks[0]),
        "warn": 0.9999, "error": 0.999, "allow_no_data": true}))
    .unwrap();
    settings.checks = vec![
        spec.to_check(lookout_alerting::check::Origin::Config)
            .unwrap(),
    ];
    let before = requests(&w.http, &w.collector.url()).await;
    let alerter = Alerter::start(
        settings,
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap();
    let mut evaluated = 0;
    let mut total = 0;
    for _ in 0..200 {
        let v: Value = lookout_testkit::http::get_json(
            &w.http,
            format!("{}/api/checks", alerter.url()),
            "alerting",
        )
        .await;
        let checks = v["values"].as_array().unwrap();
        total = checks.len();
        // The blind check waits out its grace; every other check is evaluated in the round.
        evaluated = checks
            .iter()
            .filter(|c| !c["last_check"].is_null() || c["id"] == "monitoring-blind")
            .count();
        if evaluated == total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(evaluated, total, "every alert check evaluated once");
    let after = requests(&w.http, &w.collector.url()).await;
    alerter.shutdown().await;
    let (n, which) = reads(&before, &after);
    println!(
        "{} checks ({total} alert checks): an alerter round: {n} requests: {which:?}",
        w.checks.len()
    );
    (n, total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_and_a_round_cost_the_same_few_requests_for_5_checks_or_100() {
    let small = world(5).await;
    let large = world(100).await;
    let (page_small, page_large) = (page_refresh(&small).await, page_refresh(&large).await);
    assert_eq!(
        page_small, page_large,
        "a refresh costs the same whatever the components"
    );
    // Down intervals, days, the 90 days' figures, the latency window's, maintenance.
    assert_eq!(page_small, 5.0);
    let ((round_small, checks_small), (round_large, checks_large)) =
        (alerter_round(&small).await, alerter_round(&large).await);
    assert!(
        checks_large > 10 * checks_small / 2,
        "{checks_small} and {checks_large}"
    );
    assert_eq!(
        round_small, round_large,
        "a round costs the same whatever the checks"
    );
    // One per window (5m, 30m, 1h, 6h, 3d and the config check's 1d), and the events.
    assert_eq!(round_small, 7.0);
    small.collector.shutdown().await;
    large.collector.shutdown().await;
}

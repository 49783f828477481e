//! Ground truth: with `lookout up` running, outages of known length through the platform's own
//! fault API and region links show up as downtime within one probe interval of the truth; an
//! outage seen from one region only is never downtime.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)] // a test may panic; process waits are synchronous

use std::time::Duration;

use serde_json::{Value, json};

mod common;
use common::{Components, Proc, up};

const TOKEN: &str = "truth-token";
const ADMIN: &str = "truth-admin";
/// The probe interval: every figure must be within this of the truth.
const INTERVAL_S: f64 = 10.0;

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

fn start(dir: &std::path::Path) -> (Proc, Components) {
    let config = format!(
        "data_dir: {data}\nplatform:\n  artists: 1000\n  admin_token: {ADMIN}\n  gateway:\n    listen: 127.0.0.1:0\n    admin_listen: 127.0.0.1:0\n    api_keys: [truth-key]\n  catalogue: {{ instances: 1 }}\n  mixes: {{ instances: 1 }}\n  media: {{ instances: 1 }}\n  analytics: {{ instances: 1 }}\ncollector:\n  listen: 127.0.0.1:0\n  token: {TOKEN}\nvariables:\n  gateway: http://unused\nchecks:\n  - name: search\n    interval: 10s\n    timeout: 3s\n    steps:\n      - url: \"{{{{gateway}}}}/1.x/search?q=the\"\n        headers: {{ X-Api-Key: truth-key }}\n        assert:\n          - {{ type: status, equals: 200 }}\n",
        data = dir.join("data").display()
    );
    let path = dir.join("lookout.yaml");
    std::fs::write(&path, config).unwrap();
    up(&path)
}

async fn availability(http: &reqwest::Client, collector: &str, from_us: i64, to_us: i64) -> Value {
    lookout_testkit::http::get_json(
        http,
        format!("{collector}/api/v1/checks/search/availability?from_us={from_us}&to_us={to_us}"),
        TOKEN,
    )
    .await
}

async fn failures_in(
    http: &reqwest::Client,
    collector: &str,
    region: &str,
    from_us: i64,
    to_us: i64,
) -> usize {
    let body: Value = lookout_testkit::http::get_json(
        http,
        format!("{collector}/api/v1/results?check=search&region={region}&limit=100000"),
        TOKEN,
    )
    .await;
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            (from_us..to_us).contains(&r["started_at_us"].as_i64().unwrap())
                && r["outcome"]["status"] == "fail"
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn outages_of_known_length_are_measured_within_one_probe_interval() {
    let dir = tempfile::tempdir().unwrap();
    let (_up, components) = start(dir.path());
    let collector = components["collector"].0.clone();
    let gateway_admin = components["gateway#1"].1.clone();
    let link_admin = components["link@eu-west"].1.clone();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let fault = |body: Value| {
        let (http, url) = (http.clone(), format!("{gateway_admin}/admin/faults"));
        async move {
            let r = http
                .post(url)
                .bearer_auth(ADMIN)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        }
    };
    // Every region reports before anything is broken.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let healthy = availability(&http, &collector, now_us() - 10_000_000, now_us()).await;
    assert_eq!(healthy["down_seconds"], 0.0, "{healthy}");
    assert_eq!(healthy["no_data_seconds"], 0.0, "{healthy}");

    // 1. Every region loses the platform for 95 s.
    let t0 = now_us();
    fault(json!({"kind": "down", "duration": "95s"})).await;
    tokio::time::sleep(Duration::from_secs(95 + 25)).await;
    // From 10 s before the fault: the agents started only 15 s before it.
    let full = availability(&http, &collector, t0 - 10_000_000, now_us()).await;
    let down = full["down_seconds"].as_f64().unwrap();
    assert!(
        (down - 95.0).abs() <= INTERVAL_S,
        "95 s outage measured as {down} s: {full}"
    );
    assert_eq!(full["no_data_seconds"], 0.0, "{full}");

    // 2. One region cut off for 5 minutes: visible in that region, never downtime.
    let t1 = now_us();
    let r = http
        .post(format!("{link_admin}/admin/link"))
        .bearer_auth(ADMIN)
        .json(&json!({"cut": "blackhole"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_secs(300)).await;
    let r = http
        .delete(format!("{link_admin}/admin/link"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t2 = now_us();
    tokio::time::sleep(Duration::from_secs(15)).await;
    let regional = availability(&http, &collector, t1, t2 + 15_000_000).await;
    assert_eq!(regional["down_seconds"], 0.0, "{regional}");
    assert_eq!(regional["availability"], 1.0, "{regional}");
    let seen = failures_in(&http, &collector, "eu-west", t1, t2).await;
    assert!(
        seen >= 25,
        "eu-west saw the cut ({seen} failed runs), others kept the check up"
    );
    assert_eq!(failures_in(&http, &collector, "us-east", t1, t2).await, 0);

    // 3. A 20 s blip.
    let t3 = now_us();
    fault(json!({"kind": "down", "duration": "20s"})).await;
    tokio::time::sleep(Duration::from_secs(20 + 25)).await;
    let blip = availability(&http, &collector, t3 - 15_000_000, now_us()).await;
    let down = blip["down_seconds"].as_f64().unwrap();
    assert!(
        (down - 20.0).abs() <= INTERVAL_S,
        "20 s blip measured as {down} s: {blip}"
    );

    // The whole run: the two outages, nothing else.
    let all = availability(&http, &collector, t0 - 10_000_000, now_us()).await;
    let total = all["down_seconds"].as_f64().unwrap();
    assert!((total - 115.0).abs() <= 2.0 * INTERVAL_S, "{all}");
    let expected = 1.0
        - total
            / (all["window_seconds"].as_f64().unwrap() - all["no_data_seconds"].as_f64().unwrap());
    assert!(
        (all["availability"].as_f64().unwrap() - expected).abs() < 1e-9,
        "{all}"
    );
}

//! Live state, rechecks and per-region latency against a real collector on loopback: a long
//! poll on `/api/v1/states` answers as soon as a batch changes a check, silence is seen
//! without any request to announce it, a recheck reaches the agents' command polls, and a
//! region's latency is that region's alone.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lookout_collector::store::SqliteStore;
use lookout_collector::{CheckInfo, Collector, CollectorSettings};
use lookout_model::secret::Secret;
use serde_json::{Value, json};

const TOKEN: &str = "live-test-token";
const REGIONS: [&str; 3] = ["eu", "us", "ap"];

async fn collector() -> Collector {
    collector_on(Arc::new(SqliteStore::in_memory().unwrap())).await
}

async fn collector_on(store: Arc<SqliteStore>) -> Collector {
    let regions: Vec<String> = REGIONS.iter().map(|r| r.to_string()).collect();
    let known = BTreeMap::from([
        (
            "search".to_string(),
            CheckInfo {
                regions: regions.clone(),
                ..CheckInfo::unknown()
            },
        ),
        // Silent after 2 x 1 s + 1 s without a result.
        (
            "quick".to_string(),
            CheckInfo {
                regions,
                interval_us: 1_000_000,
                timeout_us: 1_000_000,
                ..CheckInfo::unknown()
            },
        ),
    ]);
    lookout_testkit::collector::start_with(CollectorSettings::new(Secret::new(TOKEN), known), store)
        .await
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

fn result(check: &str, region: &str, seq: u64, t: i64, ok: bool, duration_us: u64) -> Value {
    let outcome = if ok {
        json!({"status": "ok"})
    } else {
        json!({"status": "fail", "kind": "refused", "message": format!("connection refused in {region}"), "step": 0})
    };
    json!({"check": check, "region": region, "agent": format!("{region}-1"), "seq": seq,
        "started_at_us": t, "outcome": outcome, "duration_us": duration_us, "steps": []})
}

async fn post(http: &reqwest::Client, c: &Collector, results: Vec<Value>) {
    let r = http
        .post(format!("{}/api/v1/results", c.url()))
        .bearer_auth(TOKEN)
        .json(&json!({ "results": results }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

async fn get(http: &reqwest::Client, url: String) -> (u16, Value) {
    let r = http.get(url).bearer_auth(TOKEN).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn check<'a>(states: &'a Value, name: &str) -> &'a Value {
    states["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap()
}

#[tokio::test]
async fn a_long_poll_answers_as_soon_as_a_batch_takes_the_check_down() {
    let c = collector().await;
    let http = reqwest::Client::new();
    let (status, states) = get(&http, format!("{}/api/v1/states", c.url())).await;
    assert_eq!(status, 200, "{states}");
    let names: Vec<&str> = states["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["quick", "search"], "every known check, by name");
    assert_eq!(check(&states, "search")["state"], "no_data", "{states}");
    assert_eq!(check(&states, "search")["since_us"], Value::Null);

    let t = now_us() - 2_000_000;
    let ok: Vec<Value> = REGIONS
        .iter()
        .enumerate()
        .map(|(i, r)| result("search", r, 1, t + i as i64, true, 100_000))
        .collect();
    post(&http, &c, ok).await;
    // One region failing alone: up, with that region failing.
    post(
        &http,
        &c,
        vec![result("search", "eu", 2, t + 1_000_000, false, 100_000)],
    )
    .await;
    let (_, states) = get(&http, format!("{}/api/v1/states", c.url())).await;
    let search = check(&states, "search");
    assert_eq!(search["state"], "up", "{states}");
    assert_eq!(search["quorum"], 2);
    assert_eq!(search["regions"][0]["region"], "eu");
    assert_eq!(search["regions"][0]["state"], "failing");
    assert_eq!(search["regions"][0]["since_us"], json!(t + 1_000_000));
    assert_eq!(
        search["regions"][0]["reason"], "connection refused in eu",
        "{states}"
    );
    assert_eq!(search["regions"][1]["state"], "ok");
    assert_eq!(search["regions"][1]["reason"], Value::Null);
    let version = states["version"].as_u64().unwrap();

    let poll = tokio::spawn({
        let (http, url) = (
            http.clone(),
            format!("{}/api/v1/states?after={version}&wait=20s", c.url()),
        );
        async move {
            let (status, body) = get(&http, url).await;
            (status, body, Instant::now())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!poll.is_finished(), "nothing changed yet: the poll waits");
    let sent = Instant::now();
    post(
        &http,
        &c,
        vec![result("search", "us", 2, t + 1_500_000, false, 100_000)],
    )
    .await;
    let (status, states, answered) = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("the poll answers well before its wait")
        .unwrap();
    assert_eq!(status, 200, "{states}");
    let took = answered.saturating_duration_since(sent);
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(states["version"].as_u64().unwrap() > version);
    let search = check(&states, "search");
    assert_eq!(search["state"], "down", "{states}");
    assert_eq!(
        search["since_us"],
        json!(t + 1_500_000),
        "the result that made it"
    );
    let failing: Vec<(&str, &str)> = search["regions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "failing")
        .map(|r| (r["region"].as_str().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        failing,
        [
            ("eu", "connection refused in eu"),
            ("us", "connection refused in us")
        ]
    );

    let metrics = lookout_testkit::http::get_text(&http, format!("{}/metrics", c.url())).await;
    assert!(
        metrics.contains("lookout_check_state_changes_total{check=\"search\",state=\"down\"} 1"),
        "{metrics}"
    );
    c.shutdown().await;
}

#[tokio::test]
async fn silence_turns_a_check_to_no_data_with_no_request_to_announce_it() {
    let c = collector().await;
    let http = reqwest::Client::new();
    let t = now_us();
    let ok: Vec<Value> = REGIONS
        .iter()
        .enumerate()
        .map(|(i, r)| result("quick", r, 1, t + i as i64, true, 100_000))
        .collect();
    post(&http, &c, ok).await;
    let (_, mut states) = get(&http, format!("{}/api/v1/states", c.url())).await;
    assert_eq!(check(&states, "quick")["state"], "up", "{states}");
    // Long polls only: each answer comes from a change the ticker found.
    let deadline = Instant::now() + Duration::from_secs(8);
    while check(&states, "quick")["state"] != "no_data" {
        assert!(Instant::now() < deadline, "still {states}");
        let version = states["version"].as_u64().unwrap();
        states = get(
            &http,
            format!("{}/api/v1/states?after={version}&wait=10s", c.url()),
        )
        .await
        .1;
    }
    let quick = check(&states, "quick");
    // Silent 3 s after its last result; no data once two of three are.
    assert_eq!(quick["since_us"], json!(t + 1 + 3_000_000), "{states}");
    for r in quick["regions"].as_array().unwrap() {
        assert_eq!(r["state"], "silent", "{states}");
    }
    assert_eq!(quick["regions"][2]["since_us"], json!(t + 2 + 3_000_000));
    assert_eq!(quick["regions"][2]["last_result_us"], json!(t + 2));
    c.shutdown().await;
}

#[tokio::test]
async fn a_poll_with_the_current_version_waits_and_answers_the_same_version() {
    let c = collector().await;
    let http = reqwest::Client::new();
    let (_, states) = get(&http, format!("{}/api/v1/states", c.url())).await;
    let version = states["version"].as_u64().unwrap();
    let asked = Instant::now();
    let (status, again) = get(
        &http,
        format!("{}/api/v1/states?after={version}&wait=1s", c.url()),
    )
    .await;
    let took = asked.elapsed();
    assert_eq!(status, 200, "{again}");
    assert!(
        (Duration::from_millis(950)..Duration::from_secs(3)).contains(&took),
        "{took:?}"
    );
    assert_eq!(again, states, "nothing changed");
    // A version this collector never gave (one from before a restart) answers at once.
    let asked = Instant::now();
    let (status, _) = get(
        &http,
        format!("{}/api/v1/states?after={}&wait=20s", c.url(), version + 100),
    )
    .await;
    assert_eq!(status, 200);
    assert!(asked.elapsed() < Duration::from_secs(2));

    for (query, names) in [
        ("wait=soon", "`wait`"),
        ("wait=-1s", "`wait`"),
        ("after=abc", "`after`"),
        ("after=-1", "`after`"),
    ] {
        let (status, body) = get(&http, format!("{}/api/v1/states?{query}", c.url())).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(names),
            "{query}: {body}"
        );
    }
    let r = http
        .get(format!("{}/api/v1/states", c.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "a token, like every /api/v1 read");
    c.shutdown().await;
}

#[tokio::test]
async fn a_recheck_reaches_every_agent_that_runs_the_check() {
    let c = collector().await;
    let http = reqwest::Client::new();
    let recheck = |check: &str| format!("{}/api/v1/checks/{check}/recheck", c.url());
    let r = http.post(recheck("search")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = http
        .post(recheck("nope"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("nope"), "{body}");

    let commands = |agent: &str, region: &str, checks: &str, wait: &str| {
        format!(
            "{}/api/v1/agents/{agent}/commands?region={region}&checks={checks}&wait={wait}",
            c.url()
        )
    };
    // us-1 polled a moment ago; eu-1 holds a long poll open; ap-1 runs another check.
    get(&http, commands("us-1", "us", "search,quick", "0s")).await;
    get(&http, commands("ap-1", "ap", "quick", "0s")).await;
    let eu = tokio::spawn({
        let (http, url) = (http.clone(), commands("eu-1", "eu", "search", "20s"));
        async move {
            let got = get(&http, url).await;
            (got, Instant::now())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = Instant::now();
    let r = http
        .post(recheck("search"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"check": "search", "asked": ["eu-1", "us-1"]}));
    let ((status, got), at) = tokio::time::timeout(Duration::from_secs(5), eu)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    assert!(at.saturating_duration_since(sent) < Duration::from_secs(2));
    assert_eq!(
        got,
        json!({"run": [{"check": "search", "reason_region": "recheck"}]})
    );
    // Asked twice before it polls again: one run, not two.
    let r = http
        .post(recheck("search"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let (_, got) = get(&http, commands("us-1", "us", "search,quick", "0s")).await;
    assert_eq!(
        got,
        json!({"run": [{"check": "search", "reason_region": "recheck"}]})
    );
    c.shutdown().await;
}

#[tokio::test]
async fn a_regions_latency_is_that_of_its_journeys_alone() {
    let c = collector().await;
    let http = reqwest::Client::new();
    let t = now_us() - 60_000_000;
    // eu answers in 100 ms, us in 300 ms, ap in 500 ms; one us run fails.
    let mut results = Vec::new();
    for i in 0..5i64 {
        for (g, region) in REGIONS.iter().enumerate() {
            let ok = !(g == 1 && i == 4);
            results.push(result(
                "search",
                region,
                i as u64 + 1,
                t + i * 10_000_000 + g as i64,
                ok,
                100_000 + g as u64 * 200_000,
            ));
        }
    }
    post(&http, &c, results).await;
    let url = |q: &str| format!("{}/api/v1/checks/search/availability?window=5m{q}", c.url());
    let (status, all) = get(&http, url("")).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["latency"]["count"], 14);
    assert!(all.get("latency_region").is_none(), "{all}");
    let (status, us) = get(&http, url("&region=us")).await;
    assert_eq!(status, 200, "{us}");
    assert_eq!(us["latency_region"], "us");
    assert_eq!(us["latency"]["count"], 4, "{us}");
    let p50 = us["latency"]["p50_ms"].as_f64().unwrap();
    assert!((297.0..=303.0).contains(&p50), "{us}");
    assert_ne!(us["latency"], all["latency"]);
    // Availability stays the check's: defined across regions. (No data moves with the
    // window's end, which is now.)
    for field in ["availability", "down_seconds", "regions", "quorum"] {
        assert_eq!(us[field], all[field], "{field}");
    }
    let (_, eu) = get(&http, url("&region=eu")).await;
    assert!(
        (99.0..=101.0).contains(&eu["latency"]["max_ms"].as_f64().unwrap()),
        "{eu}"
    );
    let (status, body) = get(&http, url("&region=mars")).await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("`region`") && message.contains("\"mars\""),
        "{message}"
    );
    c.shutdown().await;
}

#[tokio::test]
async fn after_a_restart_the_state_is_what_it_was_and_since_when() {
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let c = collector_on(store.clone()).await;
    let http = reqwest::Client::new();
    let t = now_us() - 5_000_000;
    let mut results = Vec::new();
    for (g, region) in REGIONS.iter().enumerate() {
        results.push(result("search", region, 1, t + g as i64, true, 100_000));
        if g < 2 {
            results.push(result(
                "search",
                region,
                2,
                t + 1_000_000 + g as i64,
                false,
                100_000,
            ));
        }
    }
    post(&http, &c, results).await;
    let (_, before) = get(&http, format!("{}/api/v1/states", c.url())).await;
    assert_eq!(check(&before, "search")["state"], "down", "{before}");
    c.shutdown().await;

    let c = collector_on(store).await;
    let (_, after) = get(&http, format!("{}/api/v1/states", c.url())).await;
    assert_eq!(
        check(&after, "search"),
        check(&before, "search"),
        "{before} {after}"
    );
    assert_eq!(
        check(&after, "search")["regions"][1]["reason"],
        "connection refused in us"
    );
    c.shutdown().await;
}

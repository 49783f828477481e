//! The collector as its own process: killed with SIGKILL in the middle of steady ingest and
//! restarted, it holds every result it acknowledged, none twice, and answers availability
//! exactly as a collector that was never interrupted. An agent killed the same way loses
//! nothing it spooled.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)] // a test may panic; process waits are synchronous

use std::process::Command;
use std::time::{Duration, Instant};

use lookout_testkit::{Guard, free_port, wait_until};
use serde_json::{Value, json};

const LOOKOUT: &str = env!("CARGO_BIN_EXE_lookout");
const TOKEN: &str = "kill-test-token";

fn config(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let text = format!(
        "data_dir: {}\nplatform:\n  admin_token: x\n  gateway:\n    api_keys: [k]\ncollector:\n  listen: 127.0.0.1:{port}\n  token: {TOKEN}\nprobes:\n  regions: [eu-west, us-east, ap-south]\nvariables:\n  gateway: http://127.0.0.1:1\nchecks:\n  - name: search\n    interval: 10s\n    steps:\n      - url: \"{{{{gateway}}}}/\"\n",
        dir.join("data").display()
    );
    let path = dir.join("lookout.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A collector process, killed when the test ends however it ends; ready once it says where
/// it listens.
async fn start(config: &std::path::Path) -> Guard {
    let mut command = Command::new(LOOKOUT);
    command
        .args(["collector", "--config"])
        .arg(config)
        .env("RUST_LOG", "error");
    let collector = Guard::spawn("lookout collector", command, "cargo builds it");
    wait_until("the collector listens", Duration::from_secs(30), || {
        let up = collector.log().contains("collector http://");
        async move { up }
    })
    .await;
    collector
}

/// Two hours of results from three regions every 10 s, with a 10-minute outage seen from two.
fn batches(now_us: i64) -> Vec<Value> {
    let start = now_us - 2 * 3_600_000_000;
    let regions = ["eu-west", "us-east", "ap-south"];
    let mut all = Vec::new();
    for i in 0..720i64 {
        let t = start + i * 10_000_000;
        for (r, region) in regions.iter().enumerate() {
            let failing = (300..360).contains(&i) && r < 2;
            let outcome = if failing {
                json!({"status": "fail", "kind": "refused", "message": "connection refused by 127.0.0.1:8080", "step": 0})
            } else {
                json!({"status": "ok"})
            };
            all.push(json!({"check": "search", "region": region, "agent": format!("{region}-1"), "seq": i + 1,
                "started_at_us": t + r as i64 * 1_000, "outcome": outcome, "duration_us": 3000, "steps": []}));
        }
    }
    all.chunks(30).map(|c| json!({"results": c})).collect()
}

async fn post_until_acked(http: &reqwest::Client, url: &str, batch: &Value) -> u32 {
    let mut attempts = 0;
    loop {
        attempts += 1;
        if let Ok(r) = http
            .post(url)
            .bearer_auth(TOKEN)
            .json(batch)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            && r.status().is_success()
        {
            return attempts;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_killed_mid_ingest_loses_nothing_it_acked() {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let (port_a, port_b) = (free_port(), free_port());
    let config_a = config(dir_a.path(), port_a);
    let config_b = config(dir_b.path(), port_b);
    let mut killed = start(&config_a).await;
    let steady = start(&config_b).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let now = chrono_now_us();
    let all = batches(now);
    let url_a = format!("http://127.0.0.1:{port_a}/api/v1/results");
    let url_b = format!("http://127.0.0.1:{port_b}/api/v1/results");

    let poster = {
        let (http, all, url_a) = (http.clone(), all.clone(), url_a.clone());
        tokio::spawn(async move {
            let mut retried = 0;
            for b in &all {
                retried += post_until_acked(&http, &url_a, b).await - 1;
            }
            retried
        })
    };
    // Kill it while batches are flowing, then bring it back on the same data.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stored = count(&http, port_a).await;
        if stored >= 600 {
            break;
        }
        assert!(Instant::now() < deadline, "ingest flows");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    killed.kill(); // SIGKILL
    tokio::time::sleep(Duration::from_millis(300)).await;
    let restarted = start(&config_a).await;
    let retried = tokio::time::timeout(Duration::from_secs(60), poster)
        .await
        .unwrap()
        .unwrap();
    assert!(
        retried > 0,
        "some batches met the dead collector and were sent again"
    );
    for b in &all {
        post_until_acked(&http, &url_b, b).await;
    }

    let results: Value = lookout_testkit::http::get_json(
        &http,
        format!("http://127.0.0.1:{port_a}/api/v1/results?limit=100000"),
        TOKEN,
    )
    .await;
    let results = results["results"].as_array().unwrap();
    let mut keys: Vec<(String, u64)> = results
        .iter()
        .map(|r| {
            (
                r["agent"].as_str().unwrap().to_owned(),
                r["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    let total = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), total, "none twice");
    assert_eq!(total, 3 * 720, "every acknowledged result is there");

    let window = format!("from_us={}&to_us={}", now - 2 * 3_600_000_000, now);
    let avail = |port: u16| {
        let (http, window) = (http.clone(), window.clone());
        async move {
            let v: Value = lookout_testkit::http::get_json(
                &http,
                format!("http://127.0.0.1:{port}/api/v1/checks/search/availability?{window}"),
                TOKEN,
            )
            .await;
            v
        }
    };
    let (a, b) = (avail(port_a).await, avail(port_b).await);
    assert_eq!(a, b, "the same figures as an uninterrupted collector");
    // Down from us-east's first failure (1 ms after eu-west's) until eu-west's first success;
    // no data for the 1 ms before a second region's first result.
    assert_eq!(a["down_seconds"], 599.999, "{a}");
    assert_eq!(a["no_data_seconds"], 0.001, "{a}");

    // /metrics carries the same figures, lint-clean.
    let text =
        lookout_testkit::http::get_text(&http, format!("http://127.0.0.1:{port_b}/metrics")).await;
    let gauge = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from\n{text}"))
    };
    let day = gauge(r#"lookout_check_availability_ratio{check="search",window="24h"}"#);
    assert!((day - (1.0 - 599.999 / 7200.0)).abs() < 1e-4, "{day}");
    assert_eq!(
        gauge(r#"lookout_check_no_data{check="search"}"#),
        0.0,
        "the last results are seconds old"
    );
    assert_eq!(gauge(r#"lookout_check_up{check="search"}"#), 1.0);
    assert_eq!(
        gauge(r#"lookout_check_region_failing{check="search",region="eu-west"}"#),
        0.0
    );
    assert_eq!(
        gauge(r#"lookout_check_results_total{check="search",outcome="fail",region="eu-west"}"#),
        60.0
    );
    if let Err(e) = lookout_testkit::peers::promtool_check(&text) {
        panic!("{e}");
    }
    drop((restarted, steady));
}

async fn count(http: &reqwest::Client, port: u16) -> usize {
    let Ok(r) = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
    else {
        return 0;
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with("lookout_collector_stored_results "))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn chrono_now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// `lookout collector` alone takes a new check at SIGHUP (its results are refused before and
/// accepted after), refuses a broken config with its place in the log, and says so in its
/// reload gauges.
#[tokio::test(flavor = "multi_thread")]
async fn a_collector_alone_reloads_its_checks_at_sighup_and_at_post_reload() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = config(dir.path(), port);
    let collector = start(&path).await;
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}");
    let post = |check: &'static str| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let now = chrono_now_us();
            let body = json!({"results": [{"check": check, "region": "eu-west", "agent": "eu-west-1",
                "seq": now, "started_at_us": now - 1_000_000, "outcome": {"status": "ok"},
                "duration_us": 3000, "steps": []}]});
            http.post(format!("{url}/api/v1/results"))
                .bearer_auth(TOKEN)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let gauge = || async {
        let text = reqwest::get(format!("{url}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("lookout_config_last_reload_successful "))
            .map(|v| v.trim().to_owned())
    };
    assert_eq!(gauge().await.as_deref(), Some("1"));
    assert_eq!(post("playlists").await, 400, "an unknown check is refused");
    let text = std::fs::read_to_string(&path).unwrap();
    let with_new = format!(
        "{text}  - name: playlists\n    interval: 10s\n    steps:\n      - url: \"{{{{gateway}}}}/p\"\n"
    );
    std::fs::write(&path, &with_new).unwrap();
    let hup = |pid: u32| {
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid.to_string()])
                .status()
                .unwrap()
                .success()
        )
    };
    hup(collector.pid());
    wait_until(
        "the new check accepted",
        Duration::from_secs(10),
        || async { post("playlists").await == 200 },
    )
    .await;
    std::fs::write(
        &path,
        with_new.replace(
            "interval: 10s\n    steps:\n      - url: \"{{gateway}}/p\"",
            "interval: soon\n    steps:\n      - url: \"{{gateway}}/p\"",
        ),
    )
    .unwrap();
    hup(collector.pid());
    wait_until(
        "the broken config refused",
        Duration::from_secs(10),
        || async { gauge().await.as_deref() == Some("0") },
    )
    .await;
    assert!(
        collector.log().contains("config reload refused"),
        "{}",
        collector.log()
    );
    assert_eq!(post("playlists").await, 200, "the running config stays");
    assert_eq!(post("search").await, 200);
    // `POST /-/reload` asks the same, with the collector's token, and answers with the errors.
    let reload = |token: Option<&'static str>| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let mut r = http.post(format!("{url}/-/reload"));
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            let r = r.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    assert_eq!(reload(None).await.0, 401);
    assert_eq!(reload(Some("not-the-token")).await.0, 403);
    let (status, body) = reload(Some(TOKEN)).await;
    assert_eq!(status, 400, "{body}");
    let shown = path.display().to_string();
    assert!(
        body["errors"].as_array().unwrap().iter().any(|e| {
            let e = e.as_str().unwrap();
            e.starts_with(&shown) && e.contains("\"soon\" is not a duration")
        }),
        "{body}"
    );
    std::fs::write(&path, &with_new).unwrap();
    let (status, body) = reload(Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(gauge().await.as_deref(), Some("1"));
}

/// Every result in an agent's spool (seq), and the highest it holds acknowledged.
fn spooled(dir: &std::path::Path) -> (std::collections::BTreeSet<u64>, u64) {
    let mut seqs = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                // A line torn by the kill was never handed to anyone: skipped, as the agent does.
                if let Ok(r) = serde_json::from_str::<Value>(line) {
                    seqs.insert(r["seq"].as_u64().unwrap());
                }
            }
        }
    }
    // Absent, or empty for the instant after it is created: nothing acknowledged yet.
    let acked = std::fs::read_to_string(dir.join("acked"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    (seqs, acked)
}

/// The seqs the collector holds from one agent, with how many results carry each.
async fn held(
    http: &reqwest::Client,
    port: u16,
    agent: &str,
) -> std::collections::BTreeMap<u64, usize> {
    let body = lookout_testkit::http::get_json(
        http,
        format!("http://127.0.0.1:{port}/api/v1/results?agent={agent}&limit=100000"),
        TOKEN,
    )
    .await;
    let mut held = std::collections::BTreeMap::new();
    for r in body["results"].as_array().unwrap() {
        *held.entry(r["seq"].as_u64().unwrap()).or_insert(0) += 1;
    }
    held
}

/// An agent process SIGKILLed while its results stream to the collector, three times, and
/// started again on the same spool: everything it had acknowledged is already stored, everything
/// else it had spooled arrives after the restart, and each result is stored once.
#[tokio::test(flavor = "multi_thread")]
async fn an_agent_killed_mid_stream_loses_nothing_it_spooled_and_stores_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let target = lookout_testkit::target::Target::start().await;
    let port = free_port();
    let checks: String = (0..40)
        .map(|i| {
            format!(
                "  - name: c{i}\n    interval: 1s\n    timeout: 1s\n    steps:\n      - url: http://127.0.0.1:{}/\n",
                target.port
            )
        })
        .collect();
    let text = format!(
        "data_dir: {}\nplatform:\n  admin_token: x\n  gateway:\n    api_keys: [k]\ncollector:\n  listen: 127.0.0.1:{port}\n  token: {TOKEN}\nprobes:\n  regions: [eu-west]\n  flush_interval: 200ms\nchecks:\n{checks}",
        dir.path().join("data").display()
    );
    let config = dir.path().join("lookout.yaml");
    std::fs::write(&config, text).unwrap();
    let _collector = start(&config).await;
    let spool = dir.path().join("data/spool/eu-west-1");
    let agent = || {
        let mut command = Command::new(LOOKOUT);
        command
            .args(["probe", "--region", "eu-west", "--agent-id", "eu-west-1"])
            .args(["--collector", &format!("http://127.0.0.1:{port}")])
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "error");
        Guard::spawn("lookout probe", command, "cargo builds it")
    };
    let http = reqwest::Client::new();
    let mut all = std::collections::BTreeSet::new();
    for round in 0..3 {
        let before = held(&http, port, "eu-west-1").await.len();
        let mut running = agent();
        // Results flow: 40 a second, pushed every 50 ms or so.
        wait_until(
            "the agent's results arrive",
            Duration::from_secs(30),
            || {
                let http = http.clone();
                async move { held(&http, port, "eu-west-1").await.len() >= before + 60 }
            },
        )
        .await;
        // Killed between pushes, with results spooled that the collector has not acknowledged.
        wait_until(
            "results spooled and not yet acknowledged",
            Duration::from_secs(10),
            || {
                let (seqs, acked) = spooled(&spool);
                async move { seqs.iter().any(|s| *s > acked) }
            },
        )
        .await;
        running.kill(); // SIGKILL
        let (seqs, acked) = spooled(&spool);
        let stored = held(&http, port, "eu-west-1").await;
        let missing: Vec<_> = seqs
            .iter()
            .filter(|s| **s <= acked && !stored.contains_key(s))
            .collect();
        assert!(
            missing.is_empty(),
            "round {round}: acknowledged ({acked}) but not stored: {missing:?}"
        );
        all.extend(seqs);
    }
    let _last = agent();
    wait_until(
        "every result spooled before a kill arrives after the restart",
        Duration::from_secs(30),
        || {
            let (http, all) = (http.clone(), all.clone());
            async move {
                let stored = held(&http, port, "eu-west-1").await;
                all.iter().all(|s| stored.contains_key(s))
            }
        },
    )
    .await;
    let stored = held(&http, port, "eu-west-1").await;
    let twice: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
}

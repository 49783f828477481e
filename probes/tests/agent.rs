//! The agent with a real collector over loopback: spooling through an outage and replaying in
//! order, confirmation runs within seconds, health and metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use lookout_collector::store::{ResultFilter, ResultStore, SqliteStore};
use lookout_collector::{CheckInfo, Collector, CollectorSettings};
use lookout_model::probe::ProbeResult;
use lookout_model::secret::Secret;
use lookout_probes::agent::{Agent, AgentSettings};
use lookout_probes::check::{Check, ScheduleSpec};
use lookout_services::data::Dataset;
use lookout_services::{Instance, InstanceSpec, ServiceKind};
use lookout_testkit::within;
use serde_json::json;

const TOKEN: &str = "agent-test-token";

async fn catalogue() -> Instance {
    let spec = InstanceSpec {
        kind: ServiceKind::Catalogue,
        seed: 1,
        artists: 200,
        admin_token: Secret::new("a"),
        gateway: None,
        analytics: None,
    };
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    Instance::start(spec, any, any, Some(Arc::new(Dataset::generate(1, 200))))
        .await
        .unwrap()
}

async fn collector(store: Arc<SqliteStore>, addr: SocketAddr) -> Collector {
    // The port may still be held by the collector just stopped; retry briefly.
    for _ in 0..50 {
        if let Ok(l) = tokio::net::TcpListener::bind(addr).await {
            return Collector::start(
                CollectorSettings {
                    token: Secret::new(TOKEN),
                    known: BTreeMap::new(),
                    sinks: Vec::new(),
                    rollup: Default::default(),
                    rollup_every: std::time::Duration::from_secs(60),
                    maintenance: Vec::new(),
                    replica: None,
                    tls: None,
                    reload: None,
                },
                store,
                l,
            )
            .await
            .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("could not bind {addr} again");
}

fn every_second(name: &str, url: &str) -> Arc<Check> {
    let mut c = check(
        name,
        vec![step(url, &[json!({"type": "status", "equals": 200})], &[])],
    );
    c.schedule = ScheduleSpec::Cron(lookout_conf::Cron::parse("* * * * * *").unwrap());
    c.timeout = Duration::from_millis(900);
    Arc::new(c)
}

fn settings(
    region: &str,
    collector: &str,
    checks: Vec<Arc<Check>>,
    spool: &std::path::Path,
) -> AgentSettings {
    AgentSettings {
        region: region.into(),
        agent_id: format!("{region}-1"),
        collectors: vec![collector.parse().unwrap()],
        token: Secret::new(TOKEN),
        checks,
        variables: Default::default(),
        spool_dir: spool.join(region),
        spool_max_bytes: 64 << 20,
        batch_max: 100,
        flush_interval: Duration::from_millis(100),
        run_on_start: true,
        metrics_url: None,
        trust: Default::default(),
        reload: None,
    }
}

async fn agent(s: AgentSettings) -> Agent {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Agent::start(s, l).await.unwrap()
}

fn held(store: &SqliteStore, agent: &str) -> Vec<ProbeResult> {
    store
        .query(&ResultFilter {
            agent: Some(agent.into()),
            limit: 1_000_000,
            ..Default::default()
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_spool_while_the_collector_is_away_and_arrive_once_in_order() {
    let platform = catalogue().await;
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let c = collector(store.clone(), port).await;
    let dir = tempfile::tempdir().unwrap();
    let checks = vec![
        every_second("genres", &format!("{}/1.x/genres", platform.url())),
        every_second("artist", &format!("{}/1.x/artists/3", platform.url())),
    ];
    let a = agent(settings("eu-west", &c.url(), checks, dir.path())).await;
    assert!(
        within(Duration::from_secs(5), || store.len() >= 2).await,
        "results flow"
    );

    c.shutdown().await;
    let before = store.len();
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let (waiting, bytes, dropped) = a.spool_depth();
    assert!(waiting >= 4, "{waiting} results spooled during the outage");
    assert!(bytes > 0);
    assert_eq!(dropped, 0);
    let health: serde_json::Value = reqwest::get(format!("http://{}/healthcheck", a.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "degraded");
    assert!(
        health["dependencies"][0]["instances"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("results spooled")
    );

    let c = collector(store.clone(), port).await;
    assert!(
        within(Duration::from_secs(10), || a.spool_depth().0 == 0).await,
        "the spool drains"
    );
    a.shutdown().await;
    c.shutdown().await;

    let results = held(&store, "eu-west-1");
    assert!(results.len() >= before + 4);
    let seqs: Vec<u64> = results.iter().map(|r| r.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "in order, none twice: {seqs:?}"
    );
    assert!(
        seqs.windows(2).all(|w| w[0] + 1 == w[1]),
        "no seq is missing: {seqs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_in_one_region_is_confirmed_by_the_others_within_2s() {
    let platform = catalogue().await;
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let c = collector(store.clone(), SocketAddr::from(([127, 0, 0, 1], 0))).await;
    let dir = tempfile::tempdir().unwrap();
    let slow_check = |url: String| {
        let mut c = check(
            "genres",
            vec![step(&url, &[json!({"type": "status", "equals": 200})], &[])],
        );
        // Scheduled runs are a minute apart: anything sooner is a confirmation.
        c.schedule = ScheduleSpec::Every(Duration::from_secs(60));
        Arc::new(c)
    };
    let healthy = slow_check(format!("{}/1.x/genres", platform.url()));
    let b = agent(settings(
        "us-east",
        &c.url(),
        vec![healthy.clone()],
        dir.path(),
    ))
    .await;
    let cc = agent(settings("ap-south", &c.url(), vec![healthy], dir.path())).await;
    assert!(
        within(Duration::from_secs(5), || held(&store, "us-east-1").len()
            == 1
            && held(&store, "ap-south-1").len() == 1)
        .await
    );
    // Give both agents' long polls time to register with the collector.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // eu-west cannot reach the platform: nothing listens where its link points.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let a = agent(settings(
        "eu-west",
        &c.url(),
        vec![slow_check(format!("http://{dead}/1.x/genres"))],
        dir.path(),
    ))
    .await;
    assert!(
        within(Duration::from_secs(5), || !held(&store, "eu-west-1")
            .is_empty())
        .await
    );
    let failed = held(&store, "eu-west-1")[0].clone();
    assert!(!failed.outcome.is_ok());
    let failed_at = failed.started_at_us + failed.duration_us as i64;

    for region in ["us-east-1", "ap-south-1"] {
        let confirmed = within(Duration::from_secs(3), || {
            held(&store, region).iter().any(|r| r.confirmation)
        })
        .await;
        assert!(confirmed, "{region} ran a confirmation");
        let conf = held(&store, region)
            .into_iter()
            .find(|r| r.confirmation)
            .unwrap();
        let after_ms = (conf.started_at_us - failed_at) as f64 / 1000.0;
        assert!(
            (0.0..2000.0).contains(&after_ms),
            "{region} confirmed {after_ms} ms after the failure"
        );
        assert!(
            conf.outcome.is_ok(),
            "the others still reach the platform: a regional problem"
        );
    }
    assert!(
        held(&store, "eu-west-1").iter().all(|r| !r.confirmation),
        "the failing region is not asked"
    );
    let m = b.metrics();
    assert_eq!(m.runs("genres", "ok"), 2);
    for x in [a, b, cc] {
        x.shutdown().await;
    }
    c.shutdown().await;
}

#[tokio::test]
async fn agent_and_collector_metrics_pass_promtool() {
    let platform = catalogue().await;
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let c = collector(store.clone(), SocketAddr::from(([127, 0, 0, 1], 0))).await;
    let dir = tempfile::tempdir().unwrap();
    let a = agent(settings(
        "eu-west",
        &c.url(),
        vec![every_second(
            "genres",
            &format!("{}/1.x/genres", platform.url()),
        )],
        dir.path(),
    ))
    .await;
    assert!(within(Duration::from_secs(5), || store.len() >= 1).await);
    for url in [
        format!("http://{}/metrics", a.addr),
        format!("{}/metrics", c.url()),
    ] {
        let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
        if let Err(e) = lookout_testkit::peers::promtool_check(&text) {
            panic!("{url}: {e}\n{text}");
        }
        assert!(text.contains("lookout_"), "{text}");
    }
    let text = reqwest::get(format!("http://{}/metrics", a.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"lookout_probe_runs_total{check="genres",outcome="ok",region="eu-west"}"#),
        "{text}"
    );
    assert!(text.contains("lookout_probe_phase_duration_seconds_bucket"));
    a.shutdown().await;
    c.shutdown().await;
}

#[tokio::test]
async fn the_collector_refuses_bad_batches_and_wrong_tokens() {
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let c = Collector::start(
        CollectorSettings {
            token: Secret::new(TOKEN),
            known: BTreeMap::from([(
                "search".to_string(),
                CheckInfo {
                    regions: vec!["eu-west".to_string()],
                    ..CheckInfo::unknown()
                },
            )]),
            sinks: Vec::new(),
            rollup: Default::default(),
            rollup_every: std::time::Duration::from_secs(60),
            maintenance: Vec::new(),
            replica: None,
            tls: None,
            reload: None,
        },
        store.clone(),
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/results", c.url());
    let now = chrono::Utc::now().timestamp_micros();
    let result = |check: &str, region: &str, seq: u64, started: i64| {
        json!({"check": check, "region": region, "agent": "eu-west-1", "seq": seq, "started_at_us": started,
               "outcome": {"status": "ok"}, "duration_us": 1000, "steps": []})
    };
    let post = |body: serde_json::Value, token: &str| {
        http.post(&url).bearer_auth(token).json(&body).send()
    };
    let r = post(
        json!({"results": [result("search", "eu-west", 1, now)]}),
        "wrong",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    let r = post(json!({"results": [result("search", "eu-west", 1, now), result("nope", "eu-west", 2, now)]}), TOKEN).await.unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["error"],
        "results[1] (eu-west-1 seq 2): unknown check \"nope\""
    );
    assert_eq!(store.len(), 0, "nothing of a rejected batch is stored");
    for (bad, want) in [
        (
            result("search", "mars", 1, now),
            "does not run in region \"mars\"",
        ),
        (
            result("search", "eu-west", 1, now + 3_600_000_000),
            "ahead of the collector's clock",
        ),
        (json!({"check": "search"}), "missing field"),
    ] {
        let r = post(json!({"results": [bad]}), TOKEN).await.unwrap();
        assert_eq!(r.status(), 400);
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains(want), "{body}");
    }
    let ok = json!({"results": [result("search", "eu-west", 1, now), result("search", "eu-west", 2, now)]});
    let ack: serde_json::Value = post(ok.clone(), TOKEN).await.unwrap().json().await.unwrap();
    assert_eq!(ack, json!({"accepted": 2, "duplicates": 0}));
    let ack: serde_json::Value = post(ok, TOKEN).await.unwrap().json().await.unwrap();
    assert_eq!(
        ack,
        json!({"accepted": 0, "duplicates": 2}),
        "a replay is acknowledged, not stored twice"
    );
    assert_eq!(store.len(), 2);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_the_collector_refuses_is_dropped_alone_not_with_its_batch() {
    let platform = catalogue().await;
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // The collector knows `good` only: every `stray` result is invalid to it.
    let known = BTreeMap::from([("good".to_string(), CheckInfo::unknown())]);
    let c = Collector::start(
        CollectorSettings {
            token: Secret::new(TOKEN),
            known,
            sinks: Vec::new(),
            rollup: Default::default(),
            rollup_every: std::time::Duration::from_secs(60),
            maintenance: Vec::new(),
            replica: None,
            tls: None,
            reload: None,
        },
        store.clone(),
        listener,
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/1.x/genres", platform.url());
    let a = agent(settings(
        "eu-west",
        &c.url(),
        vec![every_second("good", &url), every_second("stray", &url)],
        dir.path(),
    ))
    .await;
    assert!(
        within(Duration::from_secs(10), || held(&store, "eu-west-1").len()
            >= 3)
        .await,
        "good results get through"
    );
    assert!(
        within(Duration::from_secs(5), || a.spool_depth().0 <= 2).await,
        "nothing piles up behind a bad result"
    );
    let metrics = reqwest::get(format!("http://{}/metrics", a.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rejected: f64 = metrics
        .lines()
        .find(|l| l.starts_with("lookout_probe_rejected_results_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(rejected >= 2.0, "{rejected}");
    assert!(held(&store, "eu-west-1").iter().all(|r| r.check == "good"));
    a.shutdown().await;
    c.shutdown().await;
}

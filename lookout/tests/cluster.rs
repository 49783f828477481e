//! The clustered shape against a real three-node NATS cluster: collector replicas fed by the
//! replicated log, real probe agents that fail over between them, and faults made to happen
//! (SIGKILL a replica, SIGKILL the stream's leader, two of three NATS nodes gone, a wiped
//! replica). Nothing acknowledged to an agent is lost or stored twice, and every live replica
//! answers the same figures as a single collector fed the same results.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)] // a test may panic; process waits are synchronous

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lookout_model::probe::ProbeResult;
use lookout_testkit::peers::NatsCluster;
use lookout_testkit::target::Target;
use lookout_testkit::{Guard, free_port, wait_until};
use serde_json::Value;

const LOOKOUT: &str = env!("CARGO_BIN_EXE_lookout");
const TOKEN: &str = "cluster-test-token";
const REGIONS: [&str; 3] = ["eu", "us", "ap"];
const CHECKS: [&str; 2] = ["play", "search"];
const CLAIM_TIMEOUT_S: u64 = 3;

/// What the receivers got: (path, what it was, delivery id), in order.
type Received = Arc<std::sync::Mutex<Vec<(String, String, String)>>>;

/// The receivers' state: what they got, and a request to hold unanswered (a receiver that took
/// the notification but has not said so yet) until released.
#[derive(Clone, Default)]
struct Hooks {
    received: Received,
    hang_next: Arc<AtomicBool>,
    released: Arc<tokio::sync::Notify>,
}

/// A webhook receiver (`/hook`) and a PagerDuty-shaped one (`/pd`, Events API v2), both
/// keeping every request they were sent.
async fn receivers() -> (u16, Hooks) {
    let hooks = Hooks::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let keep = hooks.clone();
    let app = axum::Router::new()
        .route(
            "/{kind}",
            axum::routing::post(
                |axum::extract::State(h): axum::extract::State<Hooks>,
                 axum::extract::Path(kind): axum::extract::Path<String>,
                 headers: axum::http::HeaderMap,
                 body: String| async move {
                    let header = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    let entry = if kind == "pd" {
                        let v: Value = serde_json::from_str(&body).unwrap_or_default();
                        (
                            kind,
                            v["event_action"].as_str().unwrap_or("").to_owned(),
                            v["dedup_key"].as_str().unwrap_or("").to_owned(),
                        )
                    } else {
                        (
                            kind,
                            header("x-lookout-event"),
                            header("x-lookout-delivery"),
                        )
                    };
                    let hang = entry.0 == "hook"
                        && entry.1 == "trigger"
                        && h.hang_next.swap(false, Ordering::SeqCst);
                    h.received.lock().unwrap().push(entry);
                    if hang {
                        h.released.notified().await;
                    }
                    (axum::http::StatusCode::ACCEPTED, "{\"status\":\"success\"}")
                },
            ),
        )
        .with_state(keep);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, hooks)
}

/// A TCP gate before the webhook receiver. Open, it forwards; shut, it takes each connection
/// and holds it unread, so a notifier's request has left its sender but has not reached the
/// receiver (the sender is between its claim and the receiver's taking the page).
#[derive(Clone, Default)]
struct Gate {
    shut: Arc<AtomicBool>,
    held: Arc<std::sync::Mutex<Vec<tokio::net::TcpStream>>>,
}

impl Gate {
    async fn start(to: u16) -> (u16, Gate) {
        let gate = Gate::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let g = gate.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if g.shut.load(Ordering::SeqCst) {
                    g.held.lock().unwrap().push(inbound);
                    continue;
                }
                tokio::spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", to)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        (port, gate)
    }

    fn held(&self) -> usize {
        self.held.lock().unwrap().len()
    }

    /// Drops what it held (those senders see their connection closed) and forwards again.
    fn open(&self) {
        self.shut.store(false, Ordering::SeqCst);
        self.held.lock().unwrap().clear();
    }
}

/// The shape's config, with `reports` (a `status_page.reports:` section's lines) added.
fn config(
    dir: &Path,
    nats: &[String],
    target: u16,
    hook: u16,
    hooks: u16,
    reports: &str,
) -> PathBuf {
    let urls = nats.join(", ");
    let mut checks = String::new();
    for c in CHECKS {
        checks.push_str(&format!(
            "  - name: {c}\n    interval: 1s\n    timeout: 1s\n    steps:\n      - url: http://127.0.0.1:{target}/{c}\n"
        ));
    }
    let alerting = format!(
        "alerting:\n  enabled: false\n  token: alert-token\n  confirm_after: 2s\n  recheck_every: 1s\n  notifiers:\n    hook: {{ type: webhook, url: \"http://127.0.0.1:{hook}/hook\", timeout: 20s }}\n    pd: {{ type: pagerduty, routing_key: rk, url: \"http://127.0.0.1:{hooks}/pd\" }}\n  subscribe:\n    - {{ notifier: hook }}\n    - {{ notifier: pd }}\n"
    );
    let status_page = "status_page:\n  admin_token: page-token\n  refresh_every: 1s\n  regions: { eu: Europe, us: North America, ap: Asia Pacific }\n  groups:\n    - name: Music\n      components:\n        - { name: Playback, check: play }\n        - { name: Search, check: search }\n";
    let status_page = format!("{status_page}{reports}");
    let text = format!(
        "{alerting}{status_page}data_dir: {}\nplatform:\n  admin_token: x\n  gateway:\n    api_keys: [k]\ncollector:\n  token: {TOKEN}\ncluster:\n  nats: [{urls}]\n  publish_timeout: 2s\n  claim_timeout: {CLAIM_TIMEOUT_S}s\nprobes:\n  regions: [{}]\n  flush_interval: 200ms\nchecks:\n{checks}",
        dir.join("data").display(),
        REGIONS.join(", ")
    );
    let path = dir.join("lookout.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The clustered shape on this machine: NATS, collector replicas, agents.
struct Shape {
    /// Killed and brought back by the tests of the log itself.
    #[allow(dead_code)]
    nats: NatsCluster,
    dir: tempfile::TempDir,
    config: PathBuf,
    target: Target,
    ports: Vec<u16>,
    collectors: Vec<Option<Guard>>,
    alerters: Vec<Guard>,
    alerter_ports: Vec<u16>,
    pages: Vec<Guard>,
    page_ports: Vec<u16>,
    hooks: Hooks,
    /// Between the alerters and the webhook receiver.
    gate: Gate,
    agents: Vec<Guard>,
    http: reqwest::Client,
}

impl Shape {
    async fn start(replicas: usize) -> Shape {
        Shape::start_with(replicas, "").await
    }

    /// [`Shape::start`] with a `status_page.reports:` section.
    async fn start_with(replicas: usize, reports: &str) -> Shape {
        let nats = NatsCluster::start().await;
        let dir = tempfile::tempdir().unwrap();
        let target = Target::start().await;
        let (hooks_port, hooks) = receivers().await;
        let (gate_port, gate) = Gate::start(hooks_port).await;
        let config = config(
            dir.path(),
            &nats.urls(),
            target.port,
            gate_port,
            hooks_port,
            reports,
        );
        let mut shape = Shape {
            nats,
            config,
            target,
            ports: (0..replicas).map(|_| free_port()).collect(),
            collectors: (0..replicas).map(|_| None).collect(),
            alerters: Vec::new(),
            alerter_ports: Vec::new(),
            pages: Vec::new(),
            page_ports: Vec::new(),
            hooks,
            gate,
            agents: Vec::new(),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            dir,
        };
        for i in 0..replicas {
            shape.start_collector(i).await;
        }
        shape
    }

    fn url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[i])
    }

    fn store(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("collector-{i}.db"))
    }

    /// Starts replica `i` on its own store, and waits until it serves reads (caught up).
    async fn start_collector(&mut self, i: usize) {
        let mut command = Command::new(LOOKOUT);
        command
            .args(["collector", "--config"])
            .arg(&self.config)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.ports[i]))
            .arg("--store")
            .arg(self.store(i))
            .env("RUST_LOG", "warn");
        self.collectors[i] = Some(Guard::spawn(
            &format!("collector-{i}"),
            command,
            "cargo builds it",
        ));
        let url = format!("{}/api/v1/checks", self.url(i));
        let http = self.http.clone();
        wait_until(
            &format!("collector {i} serves reads"),
            Duration::from_secs(60),
            || {
                let (http, url) = (http.clone(), url.clone());
                async move {
                    http.get(&url)
                        .bearer_auth(TOKEN)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success())
                }
            },
        )
        .await;
    }

    /// A replica of `kind` (`alerting` or `status-page`) reading collector replica `collector`,
    /// on its own store and port; its guard and port.
    fn start_reader(&self, kind: &str, i: usize, collector: usize, log: &str) -> (Guard, u16) {
        let port = free_port();
        let mut command = Command::new(LOOKOUT);
        command
            .args([kind, "--config"])
            .arg(&self.config)
            .args(["--collector", &self.url(collector)])
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--store")
            .arg(self.dir.path().join(format!("{kind}-{i}.db")))
            .env("RUST_LOG", log);
        let guard = Guard::spawn(&format!("{kind}-{i}"), command, "cargo builds it");
        (guard, port)
    }

    /// An alerter replica reading collector replica `collector`.
    fn start_alerter(&mut self, collector: usize) {
        let (guard, port) = self.start_reader("alerting", self.alerters.len(), collector, "info");
        self.alerters.push(guard);
        self.alerter_ports.push(port);
    }

    /// A status page replica reading collector replica `collector`.
    fn start_status_page(&mut self, collector: usize) {
        let (guard, port) = self.start_reader("status-page", self.pages.len(), collector, "info");
        self.pages.push(guard);
        self.page_ports.push(port);
    }

    fn page_api(&self, i: usize, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(
                method,
                format!("http://127.0.0.1:{}{path}", self.page_ports[i]),
            )
            .bearer_auth("page-token")
            .timeout(Duration::from_secs(15))
    }

    /// Status page replica `i`'s incidents, as its admin API lists them (none while it is
    /// not up yet).
    async fn page_incidents(&self, i: usize) -> Vec<Value> {
        match self
            .page_api(i, reqwest::Method::GET, "/api/v1/incidents")
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => r.json().await.unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Whether status page replica `i`'s public `path` mentions `text`.
    async fn page_shows(&self, i: usize, path: &str, text: &str) -> bool {
        match self
            .http
            .get(format!("http://127.0.0.1:{}{path}", self.page_ports[i]))
            .timeout(Duration::from_secs(15))
            .send()
            .await
        {
            Ok(r) => r.text().await.unwrap_or_default().contains(text),
            Err(_) => false,
        }
    }

    fn alerter_api(
        &self,
        i: usize,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(
                method,
                format!("http://127.0.0.1:{}{path}", self.alerter_ports[i]),
            )
            .bearer_auth("alert-token")
            .timeout(Duration::from_secs(15))
    }

    /// Whether alerter `i`'s answer at `path` mentions `text`.
    async fn alerter_body(&self, i: usize, path: &str, text: &str) -> bool {
        match self.alerter_api(i, reqwest::Method::GET, path).send().await {
            Ok(r) => r.text().await.unwrap_or_default().contains(text),
            Err(_) => false,
        }
    }

    /// What the receivers got: (receiver, event, id) in order.
    fn pages(&self) -> Vec<(String, String, String)> {
        self.hooks.received.lock().unwrap().clone()
    }

    /// The alerter replica holding a claim on a `receiver`'s `event` (as the claims bucket says).
    async fn claimant(&self, receiver: &str, event: &str) -> Option<usize> {
        let cluster = lookout_cluster::ClusterConfig::new(self.nats.urls());
        let log = lookout_cluster::Log::connect(
            &cluster,
            "test",
            Duration::from_secs(3600),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        let claims = lookout_cluster::Claims::open(
            &log,
            &cluster.claims_bucket(),
            3,
            Duration::from_secs(CLAIM_TIMEOUT_S),
            "test",
        )
        .await
        .unwrap();
        for key in claims.keys().await.unwrap() {
            if !key.contains(receiver) || !key.contains(event) {
                continue;
            }
            if let Some(owner) = claims.holder(&key).await.unwrap()
                && let Some(i) = self
                    .alerter_ports
                    .iter()
                    .position(|p| owner.ends_with(&format!(":{p}")))
            {
                return Some(i);
            }
        }
        None
    }

    fn kill_collector(&mut self, i: usize) {
        if let Some(mut g) = self.collectors[i].take() {
            g.kill();
        }
    }

    /// One agent per region, each given every replica (the first one first).
    fn start_agents(&mut self) {
        let collectors: Vec<String> = (0..self.ports.len()).map(|i| self.url(i)).collect();
        for region in REGIONS {
            let mut command = Command::new(LOOKOUT);
            command
                .args(["probe", "--config"])
                .arg(&self.config)
                .args(["--region", region, "--agent-id", &format!("{region}-1")])
                .args(["--collector", &collectors.join(",")])
                .env("RUST_LOG", "warn");
            self.agents.push(Guard::spawn(
                &format!("agent-{region}"),
                command,
                "cargo builds it",
            ));
        }
    }

    /// SIGTERM every agent, and waits until each has pushed what it could and exited.
    async fn stop_agents(&mut self) {
        for a in &self.agents {
            Command::new("kill")
                .args(["-TERM", &a.pid().to_string()])
                .status()
                .unwrap();
        }
        for a in &mut self.agents {
            let mut exited = None;
            for _ in 0..300 {
                exited = a.exited();
                if exited.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(
                exited.is_some_and(|s| s.success()),
                "agent: {exited:?}\n{}",
                a.tail()
            );
        }
    }

    /// What is left in each agent's spool after it stopped: (waiting, dropped).
    fn spooled(&self) -> Vec<(u64, u64)> {
        REGIONS
            .iter()
            .map(|region| {
                let dir = self
                    .dir
                    .path()
                    .join("data")
                    .join("spool")
                    .join(format!("{region}-1"));
                let spool = lookout_probes::agent::spool::Spool::open(&dir, 64 << 20).unwrap();
                let (waiting, _, dropped) = spool.depth();
                (waiting, dropped)
            })
            .collect()
    }

    async fn get(&self, i: usize, path_and_query: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path_and_query}", self.url(i)))
            .bearer_auth(TOKEN)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap()
    }

    async fn results(&self, i: usize) -> Vec<ProbeResult> {
        let r = self.get(i, "/api/v1/results?limit=100000").await;
        assert!(r.status().is_success(), "{}", r.status());
        let body: Value = r.json().await.unwrap();
        serde_json::from_value(body["results"].clone()).unwrap()
    }

    async fn applied(&self, i: usize) -> u64 {
        let r = self.get(i, "/api/v1/checks").await;
        r.headers()
            .get("lookout-log-applied")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Waits until every live replica has applied the log's whole length as `reference` has.
    async fn agree(&self, live: &[usize]) {
        let reference = self.applied(live[0]).await;
        for &i in live {
            wait_until(
                &format!("replica {i} applies up to {reference}"),
                Duration::from_secs(30),
                || async move { self.applied(i).await >= reference },
            )
            .await;
        }
    }

    /// Every check's figures over `[from, to)` as replica `i` answers them.
    async fn figures(&self, i: usize, from: i64, to: i64) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        for c in CHECKS {
            let r = self
                .get(
                    i,
                    &format!("/api/v1/checks/{c}/availability?from_us={from}&to_us={to}"),
                )
                .await;
            assert!(r.status().is_success(), "{c}: {}", r.status());
            out.insert(c.to_owned(), window_figures(r.json().await.unwrap()));
        }
        out
    }
}

/// A window's figures without `current`: the state now, which follows each one's clock.
fn window_figures(mut figures: Value) -> Value {
    if let Some(o) = figures.as_object_mut() {
        o.remove("current");
    }
    figures
}

/// Per agent, the sequence numbers held, in order.
fn seqs(results: &[ProbeResult]) -> BTreeMap<String, Vec<u64>> {
    let mut by_agent: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in results {
        by_agent.entry(r.agent.clone()).or_default().push(r.seq);
    }
    for v in by_agent.values_mut() {
        v.sort_unstable();
    }
    by_agent
}

/// Each agent's results are consecutive numbers (a fresh spool starts from its clock), each
/// once: none lost in the middle, none twice.
fn assert_complete(results: &[ProbeResult], what: &str) {
    let by_agent = seqs(results);
    assert_eq!(by_agent.len(), REGIONS.len(), "{what}: every agent");
    for (agent, seqs) in by_agent {
        let first = seqs[0];
        let expected: Vec<u64> = (first..first + seqs.len() as u64).collect();
        assert_eq!(
            seqs, expected,
            "{what}: {agent}'s results, once each, none missing"
        );
    }
}

fn sorted(mut results: Vec<ProbeResult>) -> Vec<ProbeResult> {
    results.sort_by(|a, b| (&a.agent, a.seq).cmp(&(&b.agent, b.seq)));
    results
}

/// The figures of a single collector, in this process, fed exactly `results`.
async fn single_collector_figures(
    results: &[ProbeResult],
    from: i64,
    to: i64,
) -> BTreeMap<String, Value> {
    let info = lookout_testkit::collector::check(&REGIONS, 1_000_000, 1_000_000);
    let collector =
        lookout_testkit::collector::start(TOKEN, lookout_testkit::collector::known(&CHECKS, &info))
            .await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    for chunk in results.chunks(200) {
        let r = http
            .post(format!("{}/api/v1/results", collector.url()))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({ "results": chunk }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    let mut out = BTreeMap::new();
    for c in CHECKS {
        let r = http
            .get(format!(
                "{}/api/v1/checks/{c}/availability?from_us={from}&to_us={to}",
                collector.url()
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        out.insert(c.to_owned(), window_figures(r.json().await.unwrap()));
    }
    collector.shutdown().await;
    out
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// Waits until replica `i` holds at least `n` results.
async fn holds(shape: &Shape, i: usize, n: usize) {
    wait_until(
        &format!("replica {i} holds {n} results"),
        Duration::from_secs(60),
        || async move { shape.results(i).await.len() >= n },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_killed_mid_ingest_loses_nothing_acknowledged_and_the_live_ones_agree() {
    let mut shape = Shape::start(3).await;
    let from = now_us();
    shape.start_agents();
    holds(&shape, 1, 12).await;
    // An outage while the first replica (every agent's first choice) is killed.
    shape.target.fail(true);
    holds(&shape, 2, 24).await;
    shape.kill_collector(0);
    let after_kill = shape.results(1).await.len();
    holds(&shape, 1, after_kill + 12).await;
    shape.target.fail(false);
    holds(&shape, 2, after_kill + 24).await;
    shape.stop_agents().await;
    let to = now_us();

    assert_eq!(
        shape.spooled(),
        vec![(0, 0); 3],
        "every result an agent made was acknowledged"
    );
    shape.agree(&[1, 2]).await;
    let (one, two) = (shape.results(1).await, shape.results(2).await);
    assert_complete(&one, "replica 1");
    assert_eq!(
        sorted(one.clone()),
        sorted(two),
        "replicas 1 and 2 hold the same"
    );
    let figures = shape.figures(1, from, to).await;
    assert_eq!(
        figures,
        shape.figures(2, from, to).await,
        "the same figures"
    );
    assert!(
        figures["play"]["down_seconds"].as_f64().unwrap() > 0.0,
        "the outage counts: {}",
        figures["play"]
    );
    assert_eq!(
        figures,
        single_collector_figures(&one, from, to).await,
        "the figures of a single collector fed the same results"
    );
}

impl Shape {
    /// Where agent `i` serves its /healthcheck, as it printed at start.
    async fn agent_url(&self, i: usize) -> String {
        let agent = &self.agents[i];
        wait_until(
            "the agent says where it listens",
            Duration::from_secs(30),
            || {
                let said = agent.log().contains(" http://");
                async move { said }
            },
        )
        .await;
        let log = agent.log();
        let line = log.lines().find(|l| l.starts_with("probe ")).unwrap();
        line.split_whitespace().nth(4).unwrap().to_owned()
    }

    /// Whether every agent says it is spooling because no collector takes its results.
    async fn all_spooling(&self) -> bool {
        for i in 0..self.agents.len() {
            let url = format!("{}/healthcheck", self.agent_url(i).await);
            let Ok(r) = self.http.get(&url).send().await else {
                return false;
            };
            let health: Value = r.json().await.unwrap_or_default();
            if !health.to_string().contains("results spooled") {
                return false;
            }
        }
        true
    }
}

/// Only the agents' own results (not those a test posted itself).
fn agents_only(results: Vec<ProbeResult>) -> Vec<ProbeResult> {
    results
        .into_iter()
        .filter(|r| REGIONS.iter().any(|g| r.agent == format!("{g}-1")))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_streams_leader_killed_then_no_quorum_loses_nothing_and_everything_arrives_once() {
    let mut shape = Shape::start(2).await;
    let from = now_us();
    shape.start_agents();
    holds(&shape, 0, 12).await;

    let leader = shape.nats.stream_leader("LOOKOUT").await.expect("a leader");
    shape.nats.kill(leader);
    let before = shape.results(0).await.len();
    holds(&shape, 0, before + 12).await;

    // Two of three nodes gone: no quorum, so nothing is acknowledged and agents keep spooling.
    let second = (0..3).find(|i| *i != leader).unwrap();
    shape.nats.kill(second);
    let now = now_us();
    let refused = shape
        .http
        .post(format!("{}/api/v1/results", shape.url(1)))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "results": [
            lookout_testkit::results::result("play", "eu", "direct-1", 1, now, true, 1000)
        ]}))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503, "{}", refused.text().await.unwrap());
    assert!(refused.headers().contains_key("retry-after"));
    wait_until("every agent spools", Duration::from_secs(30), || {
        shape.all_spooling()
    })
    .await;

    shape.nats.restart(leader).await;
    shape.nats.restart(second).await;
    let during = shape.results(0).await.len();
    holds(&shape, 0, during + 12).await;
    shape.stop_agents().await;
    let to = now_us();
    assert_eq!(shape.spooled(), vec![(0, 0); 3], "every result arrived");
    shape.agree(&[0, 1]).await;
    let (zero, one) = (
        agents_only(shape.results(0).await),
        agents_only(shape.results(1).await),
    );
    assert_complete(&zero, "replica 0");
    assert_eq!(sorted(zero), sorted(one), "both replicas hold the same");
    assert_eq!(
        shape.figures(0, from, to).await,
        shape.figures(1, from, to).await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wiped_replica_catches_up_from_the_log_before_it_serves() {
    let mut shape = Shape::start(2).await;
    let from = now_us();
    shape.start_agents();
    holds(&shape, 0, 24).await;
    shape.kill_collector(1);
    for suffix in ["", "-wal", "-shm"] {
        let mut path = shape.store(1).into_os_string();
        path.push(suffix);
        let _ = std::fs::remove_file(path);
    }
    let held = shape.results(0).await.len();
    holds(&shape, 0, held + 6).await;
    // Ready only once caught up: the wait in start_collector is for reads to be served.
    shape.start_collector(1).await;
    assert!(
        shape.results(1).await.len() >= held,
        "served only after catching up"
    );
    shape.stop_agents().await;
    let to = now_us();
    shape.agree(&[0, 1]).await;
    let (zero, one) = (shape.results(0).await, shape.results(1).await);
    assert_complete(&one, "the wiped replica");
    assert_eq!(sorted(zero), sorted(one), "it holds what the other holds");
    assert_eq!(
        shape.figures(0, from, to).await,
        shape.figures(1, from, to).await,
        "and answers the same figures"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_alerter_replicas_send_one_trigger_and_one_resolve_per_problem() {
    let mut shape = Shape::start(2).await;
    shape.start_alerter(0);
    shape.start_alerter(1);
    shape.start_agents();
    holds(&shape, 0, 12).await;
    // A full outage: every region fails both checks, then recovers.
    shape.target.fail(true);
    let count = |receiver: &str, event: &str| {
        shape
            .pages()
            .iter()
            .filter(|(r, e, _)| r == receiver && e == event)
            .count()
    };
    wait_until("paged at both receivers", Duration::from_secs(60), || {
        let paged = count("hook", "trigger") > 0 && count("pd", "trigger") > 0;
        async move { paged }
    })
    .await;
    shape.target.fail(false);
    wait_until(
        "resolved at both receivers",
        Duration::from_secs(60),
        || {
            let resolved = count("hook", "resolve") >= count("hook", "trigger")
                && count("pd", "resolve") >= count("pd", "trigger");
            async move { resolved }
        },
    )
    .await;
    // Time for a second replica's copy to arrive, were there one.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let pages = shape.pages();
    let problems: std::collections::BTreeSet<&String> = pages
        .iter()
        .filter(|(r, _, _)| r == "pd")
        .map(|(_, _, key)| key)
        .collect();
    assert!(!problems.is_empty());
    for receiver in ["hook", "pd"] {
        for event in ["trigger", "resolve"] {
            assert_eq!(
                count(receiver, event),
                problems.len(),
                "{receiver}: one {event} per problem, not one per replica: {pages:?}"
            );
        }
    }
    // A silence made through one replica holds on the other, and so does its expiry.
    let made = shape
        .alerter_api(1, reqwest::Method::POST, "/api/silences")
        .json(&serde_json::json!({"matchers": ["about:search"], "duration": "1h", "created_by": "oncall-bob"}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    let silence: Value = made.json().await.unwrap();
    let id = silence["id"].as_str().unwrap().to_owned();
    wait_until(
        "the other replica holds the silence",
        Duration::from_secs(10),
        || shape.alerter_body(0, "/api/silences", &id),
    )
    .await;
    let expired = shape
        .alerter_api(0, reqwest::Method::DELETE, &format!("/api/silences/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), 204);
    wait_until(
        "the other replica drops the silence",
        Duration::from_secs(10),
        || {
            let has = shape.alerter_body(1, "/api/silences", &id);
            async move { !has.await }
        },
    )
    .await;
    // A check and a subscription made through one replica are on the other; so are their
    // removals.
    let made = shape
        .alerter_api(0, reqwest::Method::POST, "/api/checks")
        .json(
            &serde_json::json!({"id": "play-p95", "name": "Playback p95",
            "target": "latency(play, p95, 5m)", "warn": 0.5, "error": 0.8, "interval": "1s"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201, "{}", made.text().await.unwrap());
    wait_until(
        "the other replica has the check",
        Duration::from_secs(10),
        || shape.alerter_body(1, "/api/checks/play-p95", "Playback p95"),
    )
    .await;
    let subscribed = shape
        .alerter_api(
            1,
            reqwest::Method::POST,
            "/api/checks/play-p95/subscriptions",
        )
        .json(&serde_json::json!({"id": "play-p95-hook", "notifier": "hook"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        subscribed.status(),
        201,
        "{}",
        subscribed.text().await.unwrap()
    );
    wait_until(
        "the other replica has the subscription",
        Duration::from_secs(10),
        || shape.alerter_body(0, "/api/checks/play-p95/subscriptions", "play-p95-hook"),
    )
    .await;
    let removed = shape
        .alerter_api(
            0,
            reqwest::Method::DELETE,
            "/api/checks/play-p95/subscriptions/play-p95-hook",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    wait_until(
        "the other replica drops the subscription",
        Duration::from_secs(10),
        || {
            let has = shape.alerter_body(1, "/api/checks/play-p95/subscriptions", "play-p95-hook");
            async move { !has.await }
        },
    )
    .await;
    let removed = shape
        .alerter_api(1, reqwest::Method::DELETE, "/api/checks/play-p95")
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    wait_until(
        "the other replica drops the check",
        Duration::from_secs(10),
        || {
            let has = shape.alerter_body(0, "/api/checks", "play-p95");
            async move { !has.await }
        },
    )
    .await;

    let sent: usize = shape
        .alerters
        .iter()
        .map(|a| a.log().matches("notification sent").count())
        .sum();
    assert_eq!(
        sent,
        pages.len(),
        "each notification sent once in all, by whichever replica"
    );
    assert!(
        shape
            .alerters
            .iter()
            .any(|a| a.log().contains("sent by another replica")),
        "both replicas evaluated and queued the notifications; the claims kept one"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claimant_frozen_mid_send_is_taken_over_and_the_page_stays_one() {
    let mut shape = Shape::start(2).await;
    shape.start_alerter(0);
    shape.start_alerter(1);
    shape.start_agents();
    holds(&shape, 0, 12).await;
    // The webhook takes the first page and says nothing: its sender is frozen mid-send.
    shape.hooks.hang_next.store(true, Ordering::SeqCst);
    shape.target.fail(true);
    let hook_triggers = |shape: &Shape| {
        shape
            .pages()
            .into_iter()
            .filter(|(r, e, _)| r == "hook" && e == "trigger")
            .map(|(_, _, id)| id)
            .collect::<Vec<_>>()
    };
    wait_until(
        "the first page reaches the webhook",
        Duration::from_secs(60),
        || {
            let got = !hook_triggers(&shape).is_empty();
            async move { got }
        },
    )
    .await;
    let frozen = shape
        .claimant("hook", "trigger")
        .await
        .expect("a replica holds the webhook's claim");
    let pid = shape.alerters[frozen].pid().to_string();
    Command::new("kill").args(["-STOP", &pid]).status().unwrap();

    // The other replica takes the claim over after its timeout and sends the same page again.
    let waited = wait_until(
        "the other replica takes over",
        Duration::from_secs(CLAIM_TIMEOUT_S + 15),
        || {
            let again = hook_triggers(&shape).len() >= 2;
            async move { again }
        },
    )
    .await;
    let triggers = hook_triggers(&shape);
    assert_eq!(
        triggers[0], triggers[1],
        "the takeover resends with the same delivery id"
    );
    assert!(
        waited >= Duration::from_secs(CLAIM_TIMEOUT_S - 1),
        "{waited:?}"
    );

    // Thawed, the frozen one finds its claim taken and sends nothing more.
    Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    shape.hooks.released.notify_waiters();
    shape.target.fail(false);
    let problems = || {
        shape
            .pages()
            .into_iter()
            .filter(|(r, e, _)| r == "pd" && e == "trigger")
            .map(|(_, _, key)| key)
            .collect::<std::collections::BTreeSet<_>>()
    };
    wait_until("resolved at the webhook", Duration::from_secs(60), || {
        let resolves = shape
            .pages()
            .iter()
            .filter(|(r, e, _)| r == "hook" && e == "resolve")
            .count();
        let done = resolves >= problems().len();
        async move { done }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let distinct: std::collections::BTreeSet<String> = hook_triggers(&shape).into_iter().collect();
    assert_eq!(
        distinct.len(),
        problems().len(),
        "one page per problem: {:?}",
        shape.pages()
    );
    assert_eq!(
        hook_triggers(&shape).len(),
        problems().len() + 1,
        "the frozen one's page and the takeover's, nothing after the thaw: {:?}",
        shape.pages()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claimant_killed_between_claim_and_delivery_is_taken_over_and_pages_once() {
    let mut shape = Shape::start(2).await;
    shape.start_alerter(0);
    shape.start_alerter(1);
    shape.start_agents();
    holds(&shape, 0, 12).await;
    // The webhook's pages leave their sender and are held on the way: claimed, not delivered.
    shape.gate.shut.store(true, Ordering::SeqCst);
    let outage = std::time::Instant::now();
    shape.target.fail(true);
    wait_until(
        "a page to the webhook is on its way",
        Duration::from_secs(60),
        || {
            let held = shape.gate.held() > 0;
            async move { held }
        },
    )
    .await;
    let usual = outage.elapsed();
    let claimant = shape
        .claimant("hook", "trigger")
        .await
        .expect("a replica holds the webhook's claim");
    shape.alerters[claimant].kill();
    shape.gate.open();

    let hook_triggers = |shape: &Shape| {
        shape
            .pages()
            .into_iter()
            .filter(|(r, e, _)| r == "hook" && e == "trigger")
            .count()
    };
    let taken_over = wait_until(
        "the other replica sends the page",
        Duration::from_secs(CLAIM_TIMEOUT_S + 30),
        || {
            let got = hook_triggers(&shape) > 0;
            async move { got }
        },
    )
    .await;
    eprintln!(
        "time to page: {usual:?} to the send; delivered {taken_over:?} after the claimant was killed (claim timeout {CLAIM_TIMEOUT_S} s)"
    );
    assert!(
        taken_over <= Duration::from_secs(CLAIM_TIMEOUT_S + 5),
        "the page arrives within the claim timeout (and a retry) of the kill: {taken_over:?}\n{}",
        shape.alerters[1 - claimant].log()
    );

    shape.target.fail(false);
    let problems = || {
        shape
            .pages()
            .into_iter()
            .filter(|(r, e, _)| r == "pd" && e == "trigger")
            .map(|(_, _, key)| key)
            .collect::<std::collections::BTreeSet<_>>()
    };
    let count = |receiver: &str, event: &str| {
        shape
            .pages()
            .iter()
            .filter(|(r, e, _)| r == receiver && e == event)
            .count()
    };
    wait_until(
        "resolved at both receivers",
        Duration::from_secs(60),
        || {
            let done = count("hook", "resolve") >= problems().len()
                && count("hook", "trigger") >= problems().len();
            async move { done }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let pages = shape.pages();
    assert!(!problems().is_empty());
    for event in ["trigger", "resolve"] {
        assert_eq!(
            count("hook", event),
            problems().len(),
            "the webhook: one {event} per problem, the killed one's never arrived: {pages:?}"
        );
        // The killed replica may have been between PagerDuty's answer and marking it sent:
        // the takeover then resends with the same dedup key, which PagerDuty folds into one.
        let keys: std::collections::BTreeSet<&String> = pages
            .iter()
            .filter(|(r, e, _)| r == "pd" && e == event)
            .map(|(_, _, key)| key)
            .collect();
        assert_eq!(
            keys.len(),
            problems().len(),
            "PagerDuty: one {event} per problem: {pages:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn status_page_replicas_make_the_same_incidents_and_share_peoples_updates() {
    let mut shape = Shape::start(2).await;
    // Each page reads its own collector replica.
    shape.start_status_page(0);
    shape.start_status_page(1);
    shape.start_agents();
    holds(&shape, 0, 12).await;
    shape.target.fail(true);
    let open_on = |i: usize| {
        let shape = &shape;
        async move {
            shape
                .page_incidents(i)
                .await
                .iter()
                .any(|inc| inc["status"] != "resolved")
        }
    };
    for i in 0..2 {
        wait_until(
            &format!("status page {i} opens an incident"),
            Duration::from_secs(60),
            || open_on(i),
        )
        .await;
    }
    shape.target.fail(false);
    let resolved_on = |i: usize| {
        let shape = &shape;
        async move {
            let incidents = shape.page_incidents(i).await;
            !incidents.is_empty() && incidents.iter().all(|inc| inc["status"] == "resolved")
        }
    };
    for i in 0..2 {
        wait_until(
            &format!("status page {i} resolves it"),
            Duration::from_secs(60),
            || resolved_on(i),
        )
        .await;
    }
    wait_until(
        "both pages hold the same incidents",
        Duration::from_secs(20),
        || async { shape.page_incidents(0).await == shape.page_incidents(1).await },
    )
    .await;
    let incidents = shape.page_incidents(0).await;
    assert!(incidents.iter().all(|i| i["auto"] == true), "{incidents:?}");
    let id = incidents[0]["id"].as_i64().unwrap();

    // A person's update through one replica: on the other, through its API, page and JSON.
    let text = "Root cause: a bad deploy of the media service, rolled back.";
    let posted = shape
        .page_api(
            1,
            reqwest::Method::POST,
            &format!("/api/v1/incidents/{id}/updates"),
        )
        .json(&serde_json::json!({"status": "resolved", "message": text}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 201, "{}", posted.text().await.unwrap());
    for (path, what) in [
        (format!("/api/v1/incidents/{id}"), "admin API"),
        ("/api/v2/incidents.json".to_owned(), "Statuspage JSON"),
        ("/history".to_owned(), "history page"),
    ] {
        let on_page = |p: &str| {
            let (shape, p) = (&shape, p.to_owned());
            async move {
                if p.starts_with("/api/v1") {
                    match shape.page_api(0, reqwest::Method::GET, &p).send().await {
                        Ok(r) => r.text().await.unwrap_or_default().contains(text),
                        Err(_) => false,
                    }
                } else {
                    shape.page_shows(0, &p, text).await
                }
            }
        };
        wait_until(
            &format!("the other replica's {what} shows the update"),
            Duration::from_secs(10),
            || on_page(&path),
        )
        .await;
    }

    // An incident a person opens through one replica has the same id on the other.
    let opened = shape
        .page_api(0, reqwest::Method::POST, "/api/v1/incidents")
        .json(&serde_json::json!({
            "name": "Slow search in Asia Pacific",
            "message": "We are looking into slow searches.",
            "components": ["search"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 201, "{}", opened.text().await.unwrap());
    let opened: Value = opened.json().await.unwrap();
    let new_id = opened["id"].as_i64().unwrap();
    assert_ne!(new_id, id);
    wait_until(
        "the other replica has the new incident under the same id",
        Duration::from_secs(10),
        || async {
            let r = shape
                .page_api(
                    1,
                    reqwest::Method::GET,
                    &format!("/api/v1/incidents/{new_id}"),
                )
                .send()
                .await;
            match r {
                Ok(r) if r.status().is_success() => r
                    .text()
                    .await
                    .unwrap_or_default()
                    .contains("Slow search in Asia Pacific"),
                _ => false,
            }
        },
    )
    .await;
    let (a, b) = (shape.page_incidents(0).await, shape.page_incidents(1).await);
    assert_eq!(
        a, b,
        "both replicas show the same incidents, ids and updates alike"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn maintenance_scheduled_and_cancelled_through_one_replica_holds_on_every_replica() {
    let mut shape = Shape::start(2).await;
    shape.start_agents();
    holds(&shape, 0, 12).await;
    let from = now_us();
    let starts = chrono::Utc::now() - chrono::Duration::seconds(5);
    let ends = starts + chrono::Duration::hours(1);
    let made = shape
        .http
        .post(format!("{}/api/v1/maintenance", shape.url(1)))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({
            "name": "Media service upgrade",
            "checks": ["play"],
            "starts": starts.to_rfc3339(),
            "ends": ends.to_rfc3339(),
            "created_by": "ops-alice",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201, "{}", made.text().await.unwrap());
    let made: Value = made.json().await.unwrap();
    wait_until(
        "the other replica holds the window",
        Duration::from_secs(10),
        || async {
            windows(&shape, 0)
                .await
                .iter()
                .any(|w| w["name"] == "Media service upgrade")
        },
    )
    .await;
    // During the window the check fails: maintenance, not downtime, on both replicas.
    shape.target.fail(true);
    tokio::time::sleep(Duration::from_secs(4)).await;
    shape.target.fail(false);
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Cancelled through the other replica: it ends now, on both.
    let id = windows(&shape, 0)
        .await
        .iter()
        .find(|w| w["name"] == "Media service upgrade")
        .and_then(|w| w["id"].as_i64())
        .unwrap();
    let cancelled = shape
        .http
        .delete(format!("{}/api/v1/maintenance/{id}", shape.url(0)))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        cancelled.status(),
        204,
        "{}",
        cancelled.text().await.unwrap()
    );
    let planned_end = made["ends_us"].as_i64().unwrap();
    for i in 0..2 {
        let shape = &shape;
        wait_until(
            &format!("replica {i} ends the window"),
            Duration::from_secs(10),
            || async move {
                windows(shape, i).await.iter().any(|w| {
                    w["name"] == "Media service upgrade"
                        && w["ends_us"].as_i64().unwrap_or(i64::MAX) < planned_end
                })
            },
        )
        .await;
    }
    shape.stop_agents().await;
    shape.agree(&[0, 1]).await;
    let to = now_us();
    let strip = |mut ws: Vec<Value>| {
        // Each store numbers its windows itself; the window is the same.
        for w in &mut ws {
            w.as_object_mut().unwrap().remove("id");
        }
        ws
    };
    assert_eq!(
        strip(windows(&shape, 0).await),
        strip(windows(&shape, 1).await)
    );
    let (a, b) = (
        shape.figures(0, from, to).await,
        shape.figures(1, from, to).await,
    );
    assert_eq!(a, b, "both replicas count the same maintenance");
    let maintenance = a["play"]["maintenance_seconds"].as_f64();
    assert!(
        maintenance.is_some_and(|s| s > 3.0),
        "the window's time is maintenance: {}",
        a["play"]
    );
}

/// Replica `i`'s maintenance windows.
async fn windows(shape: &Shape, i: usize) -> Vec<Value> {
    let r = shape.get(i, "/api/v1/maintenance").await;
    let body: Value = r.json().await.unwrap();
    body["maintenance"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_status_page_replicas_mail_each_scheduled_report_once() {
    let smtp = lookout_testkit::peers::Smtp::start().await;
    let reports = format!(
        "  reports:\n    schedule: \"*/3 * * * * *\"\n    email: {{ host: 127.0.0.1, port: {}, tls: none, from: status@example.com, to: [partner@example.com] }}\n",
        smtp.port
    );
    let mut shape = Shape::start_with(1, &reports).await;
    shape.start_status_page(0);
    shape.start_status_page(0);
    tokio::time::sleep(Duration::from_secs(14)).await;
    let sent: Vec<String> = shape
        .pages
        .iter()
        .flat_map(|p| {
            p.log()
                .lines()
                .filter(|l| l.contains("SLA report sent") && !l.contains("another replica"))
                .filter_map(|l| {
                    plain(l)
                        .split(" at=")
                        .nth(1)
                        .map(|a| a.split_whitespace().next().unwrap_or("").to_owned())
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let times: std::collections::BTreeSet<&String> = sent.iter().collect();
    assert!(
        times.len() >= 3,
        "reports were due every 3 s: {sent:?}\n{}\n{}",
        shape.pages[0].log(),
        shape.pages[1].log()
    );
    assert_eq!(
        times.len(),
        sent.len(),
        "each scheduled report mailed by one replica: {sent:?}"
    );
    assert!(
        shape
            .pages
            .iter()
            .any(|p| p.log().contains("SLA report sent by another replica")),
        "both replicas were due to send them"
    );
    assert_eq!(
        smtp.messages().len(),
        sent.len(),
        "the relay got each once: {}",
        smtp.log()
    );
}

/// A log line without its colours.
fn plain(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

//! `lookout bench alerting`: outages and blips injected into `lookout up` as it runs by default
//! (the example config: three regions, checks every 10 s, `confirm_after: 7s`), beside a
//! Prometheus + blackbox_exporter + Alertmanager stack watching the same gateway in the same
//! run, so that both see exactly the same faults.
//!
//! Scenarios, each run `--runs` times in an order shuffled per round (seeded: reproducible),
//! each fault posted at a seeded random offset into the 10 s probe cycle:
//!
//! - hard outage: the gateway `down` for `--outage` (40 s). Time to page: the first page
//!   (a webhook trigger of severity `page`; Alertmanager: a firing alert) minus the moment the
//!   fault was posted. Time to resolve: the resolve of the outage's problem (Lookout: the one
//!   a `-down` check paged for) minus the fault's end (posted + duration).
//! - blip: the gateway `down` for 6 s. Any page within 60 s of it is a false page.
//! - one-region outage: one region's link blackholed for 60 s. Any page is a false page;
//!   tickets are reported beside them. The reference has one vantage point: its blackbox_exporter
//!   probes through that same region's link, so it is a stack that lives in the cut region.
//!
//! Notifications are timed where they arrive: two webhook receivers in this process.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use bytes::Bytes;
use lookout_probes::check::ScheduleSpec;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use super::probes::stop;
use lookout::config::{Config, DEFAULT_CONFIG};

#[derive(clap::Args)]
pub struct Args {
    /// How many times each scenario runs (medians and maxima are over these).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// How long the hard outage (a `down` fault on the gateway) lasts.
    #[arg(long, default_value = "40s", value_parser = humantime::parse_duration)]
    outage: Duration,
    /// Lookout alone, without the Prometheus + blackbox_exporter + Alertmanager reference.
    #[arg(long)]
    skip_reference: bool,
    /// Keep the temporary directory (configs, logs, stores, the alerter's problems).
    #[arg(long)]
    keep: bool,
}

/// The blip: shorter than `confirm_after` plus a probe interval.
const BLIP: Duration = Duration::from_secs(6);
/// How long after a blip starts a page counts as a false page.
const BLIP_WATCH: Duration = Duration::from_secs(60);
const REGION_CUT: Duration = Duration::from_secs(60);
/// Watched after a region's link is restored: its next runs pass within this.
const AFTER_RESTORE: Duration = Duration::from_secs(20);
/// The longest a resolve is waited for after a fault ends.
const RESOLVE_WAIT: Duration = Duration::from_secs(60);
/// A stack that has not paged this long after the fault ended is taken not to page.
const LATE_PAGE: Duration = Duration::from_secs(20);
/// Between the end of one fault and the next.
const MIN_GAP: Duration = Duration::from_secs(15);
const WARMUP: Duration = Duration::from_secs(30);
/// Faults start at a random offset in [0, this) so they meet the probe cycle at every phase.
const MAX_OFFSET_MS: u64 = 10_000;
const SEED: u64 = 0x5eed_a1e7;
/// The same request as the example's `search` check.
const SEARCH_PATH: &str = "/1.x/search?q=silver&itemsperpage=5";

// ---------------------------------------------------------------------------------------------
// Notifications, as the two receivers see them.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Lookout,
    Reference,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    Trigger,
    Resolve,
    Other,
}

#[derive(Debug, Clone)]
struct Event {
    who: Who,
    what: What,
    at: Instant,
    check: String,
    /// Severity `page` (Lookout) or label `severity="page"` (Alertmanager).
    page: bool,
    problem: String,
}

#[derive(Default)]
struct Inbox {
    events: Mutex<Vec<Event>>,
}

impl Inbox {
    fn push(&self, e: Event) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(e);
    }

    fn all(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

async fn lookout_hook(State(inbox): State<Arc<Inbox>>, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let what = match v["kind"].as_str() {
        Some("trigger") => What::Trigger,
        Some("resolve") => What::Resolve,
        _ => What::Other,
    };
    inbox.push(Event {
        who: Who::Lookout,
        what,
        at,
        check: text(&v["check_id"]),
        page: v["severity"] == "page",
        problem: text(&v["problem_id"]),
    });
    StatusCode::OK
}

async fn alertmanager_hook(State(inbox): State<Arc<Inbox>>, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    for a in v["alerts"].as_array().into_iter().flatten() {
        let what = match a["status"].as_str() {
            Some("firing") => What::Trigger,
            Some("resolved") => What::Resolve,
            _ => What::Other,
        };
        inbox.push(Event {
            who: Who::Reference,
            what,
            at,
            check: text(&a["labels"]["alertname"]),
            page: a["labels"]["severity"] == "page",
            problem: text(&a["fingerprint"]),
        });
    }
    StatusCode::OK
}

/// The two webhook receivers; stopped when dropped.
struct Receiver {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receiver(inbox: Arc<Inbox>) -> anyhow::Result<Receiver> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/lookout", post(lookout_hook))
        .route("/alertmanager", post(alertmanager_hook))
        .with_state(inbox);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Receiver { addr, task })
}

// ---------------------------------------------------------------------------------------------
// `lookout up` as a child.

/// `lookout up`, stopped as Ctrl-C would (SIGTERM, then a kill) however the benchmark ends.
pub(super) struct Up {
    child: Option<Child>,
}

const UP_STOP_TIMEOUT: Duration = Duration::from_secs(30);

async fn stop_gracefully(mut child: Child, timeout: Duration) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
    }
    if tokio::time::timeout(timeout, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

impl Up {
    pub(super) async fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            stop_gracefully(child, UP_STOP_TIMEOUT).await;
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| {
                    h.block_on(stop_gracefully(child, UP_STOP_TIMEOUT));
                });
            }
            _ => {
                // No runtime to wait on: SIGTERM so that it stops its children, and the
                // kill-on-drop follows.
                if let Some(pid) = child.id() {
                    let _ = std::process::Command::new("kill")
                        .args(["-TERM", &pid.to_string()])
                        .status();
                }
                let _ = child.start_kill();
            }
        }
    }
}

/// Listener name (`gateway#1`, `alerting`, `link@eu-west`, ...) to (URL, admin URL).
pub(super) type Listeners = BTreeMap<String, (String, String)>;

fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

pub(super) async fn start_up(config: &Path, log: &Path) -> anyhow::Result<(Up, Listeners)> {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut child = Command::new(lookout::lookout_exe()?)
        .args(["up", "--config"])
        .arg(config)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file.try_clone()?))
        .kill_on_drop(true)
        .spawn()
        .context("cannot start `lookout up`")?;
    let stdout = child.stdout.take().context("lookout up stdout")?;
    let up = Up { child: Some(child) };
    let mut lines = BufReader::new(stdout).lines();
    let mut listeners = Listeners::new();
    let read = async {
        while let Some(line) = lines.next_line().await? {
            if line.starts_with("Press Ctrl-C") {
                return Ok(true);
            }
            if let [name, url, "admin", admin] = line.split_whitespace().collect::<Vec<_>>()[..] {
                listeners.insert(name.to_owned(), (url.to_owned(), admin.to_owned()));
            }
        }
        Ok::<bool, std::io::Error>(false)
    };
    match tokio::time::timeout(Duration::from_secs(180), read).await {
        Ok(Ok(true)) => {}
        Ok(_) => bail!(
            "`lookout up` stopped before it was ready; the end of its log ({}):\n{}",
            log.display(),
            log_tail(log, 20)
        ),
        Err(_) => bail!(
            "`lookout up` was not ready within 3 minutes; the end of its log ({}):\n{}",
            log.display(),
            log_tail(log, 20)
        ),
    }
    // Keep reading, so that it never writes to a closed pipe; its stdout goes to the log too.
    let mut out = tokio::fs::File::from_std(log_file);
    tokio::spawn(async move {
        while let Ok(Some(l)) = lines.next_line().await {
            let _ = out.write_all(format!("{l}\n").as_bytes()).await;
        }
    });
    Ok((up, listeners))
}

fn replace_once(text: &str, from: &str, to: &str) -> anyhow::Result<String> {
    let n = text.matches(from).count();
    anyhow::ensure!(
        n == 1,
        "examples/lookout.yaml has {n} occurrences of {from:?} where bench alerting expects one: update bench/alerting.rs"
    );
    Ok(text.replacen(from, to, 1))
}

/// The example config with free ports, a data dir in `dir` and a webhook to `hook` added to
/// the default subscriptions; everything else (probes, alerting) as shipped.
fn lookout_config(dir: &Path, hook: &str) -> anyhow::Result<(String, Config)> {
    let data = dir.join("data");
    let edits = [
        (
            "data_dir: ${LOOKOUT_DATA_DIR:-lookout-data}".to_owned(),
            format!("data_dir: \"{}\"", data.display()),
        ),
        (
            "listen: 127.0.0.1:8080".into(),
            "listen: 127.0.0.1:0".into(),
        ),
        (
            "admin_listen: 127.0.0.1:8081".into(),
            "admin_listen: 127.0.0.1:0".into(),
        ),
        (
            "listen: 127.0.0.1:8090".into(),
            "listen: 127.0.0.1:0".into(),
        ),
        (
            "listen: 127.0.0.1:8091".into(),
            "listen: 127.0.0.1:0".into(),
        ),
        (
            "    log: { type: log }\n".into(),
            format!("    log: {{ type: log }}\n    bench: {{ type: webhook, url: \"{hook}\" }}\n"),
        ),
        (
            "    - { notifier: log }\n".into(),
            "    - { notifier: log }\n    - { notifier: bench }\n".into(),
        ),
    ];
    let mut text = DEFAULT_CONFIG.to_owned();
    for (from, to) in &edits {
        text = replace_once(&text, from, to)?;
    }
    let config = Config::parse(&text, "bench-alerting.yaml", &|k| std::env::var(k).ok())
        .map_err(anyhow::Error::new)
        .context("the benchmark's edit of the example config does not validate")?;
    Ok((text, config))
}

/// The alerter's checks: (id, state, evaluated at least once).
/// One of the alerter's checks, as `GET /api/checks` lists it.
struct CheckState {
    id: String,
    state: String,
    evaluated: bool,
    /// A value: the check's series had data when last evaluated.
    has_value: bool,
}

async fn lookout_checks(
    http: &reqwest::Client,
    alerting: &str,
    token: &str,
) -> anyhow::Result<Vec<CheckState>> {
    let v: Value = http
        .get(format!("{alerting}/api/checks"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(v["values"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| CheckState {
            id: text(&c["id"]),
            state: text(&c["state"]),
            evaluated: !c["last_check"].is_null(),
            has_value: !c["value"].is_null(),
        })
        .collect())
}

/// Every down check evaluated on probe data and OK, and the blind check OK.
async fn lookout_quiet(http: &reqwest::Client, alerting: &str, token: &str) -> bool {
    let Ok(checks) = lookout_checks(http, alerting, token).await else {
        return false;
    };
    let down: Vec<&CheckState> = checks.iter().filter(|c| c.id.ends_with("-down")).collect();
    !down.is_empty()
        && down
            .iter()
            .all(|c| c.evaluated && c.has_value && c.state == "OK")
        && checks
            .iter()
            .filter(|c| c.id == "monitoring-blind")
            .all(|c| c.state == "OK")
}

// ---------------------------------------------------------------------------------------------
// The reference: Prometheus + blackbox_exporter + Alertmanager.

struct Reference {
    /// Killed on drop; stopped with SIGTERM on the way out.
    children: Vec<Child>,
    prometheus: String,
}

impl Reference {
    async fn stop(self) {
        for c in self.children {
            stop(c).await;
        }
    }
}

/// A reference stack as an SRE would set it up for this one URL: probe every 10 s, page when
/// it has failed for 30 s (what one vantage point needs not to page on blips), resolve as
/// soon as Prometheus sees it pass, Alertmanager forwarding at once.
async fn start_reference(
    dir: &Path,
    target: &str,
    api_key: &str,
    hook: &str,
) -> anyhow::Result<Reference> {
    let dir = dir.join("reference");
    std::fs::create_dir_all(&dir)?;
    let (bb_port, am_port, prom_port) = (
        lookout_testkit::free_port(),
        lookout_testkit::free_port(),
        lookout_testkit::free_port(),
    );
    std::fs::write(
        dir.join("blackbox.yml"),
        format!(
            "modules:\n  search:\n    prober: http\n    timeout: 5s\n    http:\n      method: GET\n      preferred_ip_protocol: ip4\n      valid_status_codes: [200]\n      headers:\n        X-Api-Key: {api_key:?}\n      fail_if_header_not_matches:\n        - {{ header: Content-Type, regexp: \"^application/json\" }}\n"
        ),
    )?;
    std::fs::write(
        dir.join("alertmanager.yml"),
        format!(
            "route:\n  receiver: bench\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 10s\n  repeat_interval: 1h\nreceivers:\n  - name: bench\n    webhook_configs:\n      - url: {hook:?}\n        send_resolved: true\n"
        ),
    )?;
    std::fs::write(
        dir.join("rules.yml"),
        "groups:\n  - name: platform\n    rules:\n      - alert: SearchDown\n        expr: probe_success{job=\"blackbox\"} == 0\n        for: 30s\n        labels: { severity: page }\n        annotations: { summary: \"the search use case fails\" }\n",
    )?;
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 10s\n  scrape_timeout: 6s\n  evaluation_interval: 5s\nrule_files: [{rules:?}]\nalerting:\n  alertmanagers:\n    - static_configs: [{{ targets: [\"127.0.0.1:{am_port}\"] }}]\nscrape_configs:\n  - job_name: blackbox\n    metrics_path: /probe\n    params: {{ module: [search] }}\n    static_configs:\n      - targets: [{target:?}]\n    relabel_configs:\n      - {{ source_labels: [__address__], target_label: __param_target }}\n      - {{ source_labels: [__param_target], target_label: instance }}\n      - {{ target_label: __address__, replacement: \"127.0.0.1:{bb_port}\" }}\n",
            rules = dir.join("rules.yml").display().to_string()
        ),
    )?;
    let spawn = |program: &str, args: Vec<String>, log: &str| -> anyhow::Result<Child> {
        let log = std::fs::File::create(dir.join(log))?;
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {program} (is it installed?)"))
    };
    let path = |name: &str| dir.join(name).display().to_string();
    let mut children = Vec::new();
    children.push(spawn(
        "prometheus-blackbox-exporter",
        vec![
            format!("--config.file={}", path("blackbox.yml")),
            format!("--web.listen-address=127.0.0.1:{bb_port}"),
            "--log.level=warn".into(),
        ],
        "blackbox.log",
    )?);
    children.push(spawn(
        "prometheus-alertmanager",
        vec![
            format!("--config.file={}", path("alertmanager.yml")),
            format!("--storage.path={}", path("alertmanager-data")),
            format!("--web.listen-address=127.0.0.1:{am_port}"),
            "--cluster.listen-address=".into(),
            "--log.level=warn".into(),
        ],
        "alertmanager.log",
    )?);
    children.push(spawn(
        "prometheus",
        vec![
            format!("--config.file={}", path("prometheus.yml")),
            format!("--storage.tsdb.path={}", path("prometheus-data")),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
            "--log.level=warn".into(),
        ],
        "prometheus.log",
    )?);
    let reference = Reference {
        children,
        prometheus: format!("http://127.0.0.1:{prom_port}"),
    };
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()?;
    for (name, url, log) in [
        (
            "blackbox_exporter",
            format!("http://127.0.0.1:{bb_port}/metrics"),
            "blackbox.log",
        ),
        (
            "Alertmanager",
            format!("http://127.0.0.1:{am_port}/-/ready"),
            "alertmanager.log",
        ),
        (
            "Prometheus",
            format!("{}/-/ready", reference.prometheus),
            "prometheus.log",
        ),
    ] {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(&url).send().await
                && r.status().is_success()
            {
                break;
            }
            if Instant::now() > deadline {
                let tail = log_tail(&dir.join(log), 10);
                reference.stop().await;
                bail!("{name} was not ready within 30 s; its log:\n{tail}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(reference)
}

/// Prometheus's latest `probe_success`, if it has one.
async fn reference_probe(http: &reqwest::Client, prometheus: &str) -> Option<f64> {
    let v: Value = http
        .get(format!("{prometheus}/api/v1/query"))
        .query(&[("query", "probe_success{job=\"blackbox\"}")])
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

/// No alert pending or firing in Prometheus.
async fn reference_quiet(http: &reqwest::Client, prometheus: &str) -> bool {
    let answer = async {
        let v: Value = http
            .get(format!("{prometheus}/api/v1/alerts"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        Some(v["data"]["alerts"].as_array()?.is_empty())
    };
    answer.await.unwrap_or(false)
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Outage,
    Blip,
    Region,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Outage => "hard outage",
            Scenario::Blip => "blip",
            Scenario::Region => "one-region outage",
        }
    }
}

/// What one stack did in one run of a scenario.
#[derive(Debug, Clone, Default)]
struct Seen {
    /// Seconds from the fault's start to the first page, and the check that paged.
    page: Option<(f64, String)>,
    /// Seconds from the fault's end to the resolve of the fault's problem (negative: before).
    resolve: Option<f64>,
    /// Every page in the window: seconds from the fault's start, check.
    pages: Vec<(f64, String)>,
    tickets: Vec<(f64, String)>,
}

struct RunResult {
    scenario: Scenario,
    round: usize,
    lookout: Seen,
    reference: Option<Seen>,
}

fn secs_between(later: Instant, earlier: Instant) -> f64 {
    if later >= earlier {
        (later - earlier).as_secs_f64()
    } else {
        -(earlier - later).as_secs_f64()
    }
}

/// What `who` was told between `from` (the fault's start) and `until`; `end` is the fault's end.
fn seen(events: &[Event], who: Who, from: Instant, end: Instant, until: Instant) -> Seen {
    let mine: Vec<&Event> = events
        .iter()
        .filter(|e| e.who == who && e.at >= from && e.at <= until)
        .collect();
    let pages: Vec<&&Event> = mine
        .iter()
        .filter(|e| e.what == What::Trigger && e.page)
        .collect();
    let tickets = mine
        .iter()
        .filter(|e| e.what == What::Trigger && !e.page)
        .map(|e| (secs_between(e.at, from), e.check.clone()))
        .collect();
    // The outage's problem: Lookout's down checks' (one problem for the whole platform group).
    let primary = pages
        .iter()
        .find(|e| e.check.ends_with("-down"))
        .or(pages.first());
    let resolve = primary.and_then(|p| {
        mine.iter()
            .find(|e| e.what == What::Resolve && e.problem == p.problem && e.at >= p.at)
            .map(|e| secs_between(e.at, end))
    });
    Seen {
        page: pages
            .first()
            .map(|e| (secs_between(e.at, from), e.check.clone())),
        resolve,
        pages: pages
            .iter()
            .map(|e| (secs_between(e.at, from), e.check.clone()))
            .collect(),
        tickets,
    }
}

/// splitmix64: a small seeded generator, so that a run's order and offsets can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

struct Clock(Instant);

impl Clock {
    fn say(&self, msg: impl std::fmt::Display) {
        let s = self.0.elapsed().as_secs();
        println!("[{:>2}:{:02}] {msg}", s / 60, s % 60);
    }
}

/// Everything a scenario needs.
struct Bench {
    http: reqwest::Client,
    inbox: Arc<Inbox>,
    clock: Clock,
    gateway_admin: String,
    admin_token: String,
    alerting: String,
    alerting_token: String,
    /// The region cut in the one-region scenario, and its link's admin URL.
    cut_region: String,
    cut_admin: String,
    prometheus: Option<String>,
    outage: Duration,
}

impl Bench {
    async fn down_fault(&self, duration: Duration) -> anyhow::Result<Instant> {
        let t0 = Instant::now();
        let r = self
            .http
            .post(format!("{}/admin/faults", self.gateway_admin))
            .bearer_auth(&self.admin_token)
            .json(&json!({"kind": "down", "duration": humantime::format_duration(duration).to_string()}))
            .send()
            .await?;
        anyhow::ensure!(
            r.status() == StatusCode::CREATED,
            "the gateway refused the fault: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
        Ok(t0)
    }

    async fn link(&self, cut: bool) -> anyhow::Result<Instant> {
        let t = Instant::now();
        let url = format!("{}/admin/link", self.cut_admin);
        let r = if cut {
            self.http
                .post(url)
                .bearer_auth(&self.admin_token)
                .json(&json!({"cut": "blackhole"}))
                .send()
                .await?
        } else {
            self.http
                .delete(url)
                .bearer_auth(&self.admin_token)
                .send()
                .await?
        };
        anyhow::ensure!(
            r.status().is_success(),
            "link@{} refused the change: {} {}",
            self.cut_region,
            r.status(),
            r.text().await.unwrap_or_default()
        );
        Ok(t)
    }

    /// Waits until the last fault is at least [`MIN_GAP`] over and both stacks are quiet (every
    /// down check OK; no alert pending or firing in Prometheus), at most two minutes.
    async fn quiet(&self, last_end: Option<Instant>) {
        if let Some(end) = last_end {
            tokio::time::sleep_until((end + MIN_GAP).into()).await;
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let lookout = lookout_quiet(&self.http, &self.alerting, &self.alerting_token).await;
            let reference = match &self.prometheus {
                Some(p) => reference_quiet(&self.http, p).await,
                None => true,
            };
            if lookout && reference {
                return;
            }
            if Instant::now() > deadline {
                self.clock.say(format!(
                    "  not quiet after 2 minutes (lookout down checks OK: {lookout}, reference without alerts: {reference}); going on"
                ));
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Whether `who` has paged and resolved since `from`, or not paged at all by `quiet_after`.
    fn settled(&self, who: Who, from: Instant, quiet_after: Instant) -> bool {
        let events = self.inbox.all();
        let s = seen(&events, who, from, from, Instant::now());
        match s.page {
            Some(_) => s.resolve.is_some(),
            None => Instant::now() >= quiet_after,
        }
    }

    async fn wait_settled(&self, from: Instant, end: Instant) {
        let deadline = end + RESOLVE_WAIT;
        let quiet_after = end + LATE_PAGE;
        loop {
            let lookout = self.settled(Who::Lookout, from, quiet_after);
            let reference =
                self.prometheus.is_none() || self.settled(Who::Reference, from, quiet_after);
            if (lookout && reference) || Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Runs one scenario; returns what each stack did and when its fault ended.
    async fn run(
        &self,
        scenario: Scenario,
        round: usize,
        offset: Duration,
    ) -> anyhow::Result<(RunResult, Instant)> {
        tokio::time::sleep(offset).await;
        let (from, end, until) = match scenario {
            Scenario::Outage => {
                let t0 = self.down_fault(self.outage).await?;
                let end = t0 + self.outage;
                self.clock.say(format!(
                    "  gateway down for {} (every region, every check)",
                    humantime::format_duration(self.outage)
                ));
                tokio::time::sleep_until(end.into()).await;
                self.clock.say("  outage over; waiting for resolves");
                self.wait_settled(t0, end).await;
                (t0, end, Instant::now())
            }
            Scenario::Blip => {
                let t0 = self.down_fault(BLIP).await?;
                self.clock.say(format!(
                    "  gateway down for {}; watching {} for pages",
                    humantime::format_duration(BLIP),
                    humantime::format_duration(BLIP_WATCH)
                ));
                let until = t0 + BLIP_WATCH;
                tokio::time::sleep_until(until.into()).await;
                (t0, t0 + BLIP, until)
            }
            Scenario::Region => {
                let t0 = self.link(true).await?;
                self.clock.say(format!(
                    "  link@{} blackholed for {}",
                    self.cut_region,
                    humantime::format_duration(REGION_CUT)
                ));
                tokio::time::sleep_until((t0 + REGION_CUT).into()).await;
                let end = self.link(false).await?;
                self.clock.say(format!(
                    "  link@{} restored; watching {} more",
                    self.cut_region,
                    humantime::format_duration(AFTER_RESTORE)
                ));
                tokio::time::sleep_until((end + AFTER_RESTORE).into()).await;
                // A stack that paged (the reference, in the cut region) is given time to resolve.
                self.wait_settled(t0, end).await;
                (t0, end, Instant::now())
            }
        };
        let events = self.inbox.all();
        let lookout = seen(&events, Who::Lookout, from, end, until);
        let reference = self
            .prometheus
            .as_ref()
            .map(|_| seen(&events, Who::Reference, from, end, until));
        Ok((
            RunResult {
                scenario,
                round,
                lookout,
                reference,
            },
            end,
        ))
    }
}

fn describe(s: &Seen, scenario: Scenario) -> String {
    match scenario {
        Scenario::Outage => match &s.page {
            Some((t, check)) => format!(
                "paged after {t:.1} s ({check}), {}",
                match s.resolve {
                    Some(r) => format!("resolved {r:.1} s after the fault ended"),
                    None => "no resolve".into(),
                }
            ),
            None => "did not page".into(),
        },
        _ => {
            let mut out = format!("{} page(s)", s.pages.len());
            if !s.pages.is_empty() {
                out.push_str(&format!(" ({})", list(&s.pages)));
            }
            if !s.tickets.is_empty() {
                out.push_str(&format!(
                    ", {} ticket(s) ({})",
                    s.tickets.len(),
                    list(&s.tickets)
                ));
            }
            out
        }
    }
}

fn list(v: &[(f64, String)]) -> String {
    v.iter()
        .map(|(t, c)| format!("{c} +{t:.1} s"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn max(v: &[f64]) -> Option<f64> {
    v.iter().copied().max_by(f64::total_cmp)
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |s| format!("{s:.1} s"))
}

fn report(results: &[RunResult], args: &Args, cut_region: &str, reference: bool) {
    let of =
        |s: Scenario| -> Vec<&RunResult> { results.iter().filter(|r| r.scenario == s).collect() };
    let na = "n/a";
    println!();
    println!(
        "== hard outage: the gateway `down` for {} ==",
        humantime::format_duration(args.outage)
    );
    println!(
        "   time to page: first page after the fault was posted; time to resolve: the resolve of that problem after the fault ended"
    );
    println!(
        "{:<8} {:>14} {:>16} {:>16} {:>18}   lookout's other pages",
        "run", "lookout page", "lookout resolve", "reference page", "reference resolve"
    );
    let outages = of(Scenario::Outage);
    let mut lp = Vec::new();
    let mut lr = Vec::new();
    let mut rp = Vec::new();
    let mut rr = Vec::new();
    for r in &outages {
        let l = &r.lookout;
        lp.extend(l.page.as_ref().map(|p| p.0));
        lr.extend(l.resolve);
        let (rpage, rres) = match &r.reference {
            Some(s) => {
                rp.extend(s.page.as_ref().map(|p| p.0));
                rr.extend(s.resolve);
                (
                    s.page
                        .as_ref()
                        .map_or("no page".into(), |p| format!("{:.1} s", p.0)),
                    secs(s.resolve),
                )
            }
            None => (na.into(), na.into()),
        };
        let others: Vec<(f64, String)> = l.pages.iter().skip(1).cloned().collect();
        println!(
            "{:<8} {:>14} {:>16} {:>16} {:>18}   {}",
            r.round + 1,
            l.page
                .as_ref()
                .map_or("no page".into(), |p| format!("{:.1} s", p.0)),
            secs(l.resolve),
            rpage,
            rres,
            if others.is_empty() {
                "-".into()
            } else {
                list(&others)
            }
        );
    }
    let (rm, rx, rrm, rrx) = if reference {
        (
            secs(median(rp.clone())),
            secs(max(&rp)),
            secs(median(rr.clone())),
            secs(max(&rr)),
        )
    } else {
        (na.into(), na.into(), na.into(), na.into())
    };
    println!(
        "{:<8} {:>14} {:>16} {:>16} {:>18}",
        "median",
        secs(median(lp.clone())),
        secs(median(lr.clone())),
        rm,
        rrm
    );
    println!(
        "{:<8} {:>14} {:>16} {:>16} {:>18}",
        "max",
        secs(max(&lp)),
        secs(max(&lr)),
        rx,
        rrx
    );
    println!(
        "{:<8} {:>14} {:>16} {:>16} {:>18}",
        "paged",
        format!("{}/{}", lp.len(), outages.len()),
        format!("{}/{}", lr.len(), lp.len()),
        if reference {
            format!("{}/{}", rp.len(), outages.len())
        } else {
            na.into()
        },
        if reference {
            format!("{}/{}", rr.len(), rp.len())
        } else {
            na.into()
        },
    );

    // (Lookout's false pages, how many of them from down checks, the reference's.)
    let false_pages = |scenario: Scenario, title: String| -> (usize, usize, usize) {
        println!();
        println!("{title}");
        println!(
            "{:<8} {:>14} {:>16} {:>16}   details",
            "run", "lookout pages", "lookout tickets", "reference pages"
        );
        let (mut lt, mut ld, mut rt) = (0, 0, 0);
        for r in of(scenario) {
            lt += r.lookout.pages.len();
            ld += r
                .lookout
                .pages
                .iter()
                .filter(|(_, c)| c.ends_with("-down"))
                .count();
            let rpages = r.reference.as_ref().map(|s| s.pages.len());
            rt += rpages.unwrap_or(0);
            let mut details = Vec::new();
            if !r.lookout.pages.is_empty() || !r.lookout.tickets.is_empty() {
                details.push(format!("lookout: {}", describe(&r.lookout, scenario)));
            }
            if let Some(s) = &r.reference
                && !s.pages.is_empty()
            {
                details.push(format!(
                    "reference: {}{}",
                    list(&s.pages),
                    s.resolve
                        .map(|x| format!(", resolved {x:.1} s after the fault ended"))
                        .unwrap_or_default()
                ));
            }
            println!(
                "{:<8} {:>14} {:>16} {:>16}   {}",
                r.round + 1,
                r.lookout.pages.len(),
                r.lookout.tickets.len(),
                rpages.map_or(na.into(), |n| n.to_string()),
                if details.is_empty() {
                    "-".into()
                } else {
                    details.join("; ")
                }
            );
        }
        (lt, ld, rt)
    };
    let (blip_l, blip_ld, blip_r) = false_pages(
        Scenario::Blip,
        format!(
            "== blip: the gateway `down` for {}; a page within {} is a false page ==",
            humantime::format_duration(BLIP),
            humantime::format_duration(BLIP_WATCH)
        ),
    );
    let (region_l, region_ld, region_r) = false_pages(
        Scenario::Region,
        format!(
            "== one-region outage: link@{cut_region} blackholed for {}; any page is a false page ==\n   (the reference has one vantage point; its blackbox_exporter probes through link@{cut_region}, so it sits in the cut region)",
            humantime::format_duration(REGION_CUT)
        ),
    );

    let verdict = |ok: bool| if ok { "met" } else { "NOT MET" };
    let runs = outages.len();
    println!();
    println!("== targets ==");
    let lpm = median(lp.clone());
    let lrm = median(lr.clone());
    let all_paged = lp.len() == runs;
    let all_resolved = lr.len() == lp.len();
    let ratio = |l: Option<f64>, r: Option<f64>| match (l, r) {
        (Some(l), Some(r)) if reference && r > 0.0 => {
            format!("; reference {r:.1} s, lookout/reference {:.2}", l / r)
        }
        _ if reference => "; reference: no figure".into(),
        _ => String::new(),
    };
    println!(
        "hard outage pages within 15 s (median): {} (paged in {}/{runs} runs){}: {}",
        secs(lpm),
        lp.len(),
        ratio(lpm, median(rp.clone())),
        verdict(all_paged && lpm.is_some_and(|m| m <= 15.0))
    );
    println!(
        "hard outage resolves within 15 s of recovery (median): {} (resolved {}/{}){}: {}",
        secs(lrm),
        lr.len(),
        lp.len(),
        ratio(lrm, median(rr.clone())),
        verdict(all_resolved && lrm.is_some_and(|m| m <= 15.0))
    );
    let blips = of(Scenario::Blip).len();
    let split = |all: usize, down: usize| {
        if all == 0 {
            String::new()
        } else {
            format!(
                " ({down} from down checks, {} from burn-rate or other checks)",
                all - down
            )
        }
    };
    let regions = of(Scenario::Region).len();
    println!(
        "{} blips page nobody: {blip_l} false page(s) in {blips} runs{}{}: {}",
        humantime::format_duration(BLIP),
        split(blip_l, blip_ld),
        if reference {
            format!("; reference {blip_r}")
        } else {
            String::new()
        },
        verdict(blip_l == 0)
    );
    println!(
        "a one-region outage pages nobody: {region_l} false page(s) in {regions} runs{}{}: {}",
        split(region_l, region_ld),
        if reference {
            format!("; reference (single vantage point in the cut region) {region_r}")
        } else {
            String::new()
        },
        verdict(region_l == 0)
    );
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    anyhow::ensure!(!args.outage.is_zero(), "--outage must be more than zero");
    let dir = tempfile::Builder::new()
        .prefix("lookout-bench-alerting-")
        .tempdir()?;
    let result = tokio::select! {
        r = bench(&args, dir.path()) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted; every child stopped")),
    };
    if args.keep {
        let kept = dir.keep();
        println!(
            "kept {} (lookout-up.log, problems.json, reference/)",
            kept.display()
        );
    } else if result.is_err() {
        eprintln!("(run with --keep to keep the logs)");
    }
    result
}

async fn bench(args: &Args, dir: &Path) -> anyhow::Result<()> {
    let clock = Clock(Instant::now());
    let inbox = Arc::new(Inbox::default());
    let hooks = receiver(inbox.clone()).await?;
    let (text, config) = lookout_config(dir, &format!("http://{}/lookout", hooks.addr))?;
    let config_path = dir.join("lookout.yaml");
    std::fs::write(&config_path, &text)?;
    let alerting_config = config
        .alerting
        .as_ref()
        .context("the example config has no alerting section")?;
    let regions = config.probes.regions.clone();
    let intervals: std::collections::BTreeSet<String> = config
        .checks
        .iter()
        .map(|c| match &c.schedule {
            ScheduleSpec::Every(d) => humantime::format_duration(*d).to_string(),
            ScheduleSpec::Cron(c) => format!("cron {c}"),
        })
        .collect();
    println!(
        "lookout bench alerting: `lookout up` with the example config ({} regions: {}; {} checks every {}; confirm_after {}), {} run(s) of each scenario",
        regions.len(),
        regions.join(", "),
        config.checks.len(),
        intervals.into_iter().collect::<Vec<_>>().join(" / "),
        humantime::format_duration(alerting_config.confirm_after),
        args.runs
    );
    let cut_region = regions.first().context("no regions")?.clone();
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()?;

    clock.say("starting `lookout up`");
    let log = dir.join("lookout-up.log");
    let (mut up, listeners) = start_up(&config_path, &log).await?;
    let url_of = |name: &str| {
        listeners
            .get(name)
            .cloned()
            .with_context(|| format!("`lookout up` printed no {name} line"))
    };
    let gateway_admin = url_of("gateway#1")?.1;
    let alerting = url_of("alerting")?.0;
    let (cut_url, cut_admin) = url_of(&format!("link@{cut_region}"))?;
    let alerting_token = alerting_config.token.expose().to_owned();

    let mut reference = None;
    if args.skip_reference {
        println!("reference: skipped (--skip-reference)");
    } else {
        let api_key = config
            .platform
            .gateway
            .settings
            .api_keys
            .first()
            .context("no api key")?
            .expose()
            .to_owned();
        clock.say("starting the reference: blackbox_exporter, Alertmanager, Prometheus");
        match start_reference(
            dir,
            &format!("{cut_url}{SEARCH_PATH}"),
            &api_key,
            &format!("http://{}/alertmanager", hooks.addr),
        )
        .await
        {
            Ok(r) => {
                println!(
                    "reference: Prometheus + blackbox_exporter + Alertmanager: one probe of {SEARCH_PATH} (same API key) through link@{cut_region} every 10 s (timeout 5 s); rule `probe_success == 0` for 30s, evaluated every 5 s; Alertmanager group_wait 0s, group_interval 10s, send_resolved"
                );
                reference = Some(r);
            }
            Err(e) => println!("reference: could not start, reporting Lookout alone: {e:#}"),
        }
    }

    clock.say("waiting for every down check to be evaluated OK");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !lookout_quiet(&http, &alerting, &alerting_token).await {
        if Instant::now() > deadline {
            bail!(
                "the alerter's down checks were not all evaluated OK within 2 minutes; the end of the log ({}):\n{}",
                log.display(),
                log_tail(&log, 20)
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    clock.say(format!(
        "healthy; warming up for {}",
        humantime::format_duration(WARMUP)
    ));
    tokio::time::sleep(WARMUP).await;
    if let Some(r) = &reference {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = reference_probe(&http, &r.prometheus).await;
            if v == Some(1.0) {
                break;
            }
            if Instant::now() > deadline {
                println!(
                    "reference: Prometheus has probe_success = {v:?} after warm-up, not 1: reporting Lookout alone (logs in {})",
                    dir.join("reference").display()
                );
                if let Some(r) = reference.take() {
                    r.stop().await;
                }
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    let bench = Bench {
        http: http.clone(),
        inbox: inbox.clone(),
        clock,
        gateway_admin,
        admin_token: config.platform.admin_token.expose().to_owned(),
        alerting: alerting.clone(),
        alerting_token: alerting_token.clone(),
        cut_region: cut_region.clone(),
        cut_admin,
        prometheus: reference.as_ref().map(|r| r.prometheus.clone()),
        outage: args.outage,
    };
    let scenarios = run_scenarios(&bench, args.runs).await;

    // The alerter's own account, for diagnosis (kept with --keep).
    if let Ok(r) = http
        .get(format!("{alerting}/api/problems?items=100"))
        .bearer_auth(&alerting_token)
        .send()
        .await
        && let Ok(body) = r.text().await
    {
        let _ = std::fs::write(dir.join("problems.json"), body);
    }
    bench.clock.say("stopping");
    if let Some(r) = reference {
        r.stop().await;
    }
    up.stop().await;
    drop(hooks);
    let (results, windows) = scenarios?;

    report(&results, args, &cut_region, bench.prometheus.is_some());
    // Pages that fell outside every scenario's window (between scenarios) are shown too.
    let stray: Vec<Event> = inbox
        .all()
        .into_iter()
        .filter(|e| e.what == What::Trigger && e.page)
        .filter(|e| !windows.iter().any(|(a, b)| e.at >= *a && e.at <= *b))
        .collect();
    if !stray.is_empty() {
        println!();
        println!("pages between scenarios (in no scenario's window):");
        for e in stray {
            println!(
                "  {:?}: {} at {:.0} s into the benchmark",
                e.who,
                e.check,
                secs_between(e.at, bench.clock.0)
            );
        }
    }
    Ok(())
}

type Windows = Vec<(Instant, Instant)>;

async fn run_scenarios(bench: &Bench, runs: usize) -> anyhow::Result<(Vec<RunResult>, Windows)> {
    let mut rng = Rng(SEED);
    let mut results = Vec::new();
    let mut windows = Vec::new();
    let mut last_end = None;
    for round in 0..runs {
        let mut order = [Scenario::Outage, Scenario::Blip, Scenario::Region];
        rng.shuffle(&mut order);
        for scenario in order {
            bench.quiet(last_end).await;
            let offset = Duration::from_millis(rng.below(MAX_OFFSET_MS));
            bench.clock.say(format!(
                "run {}/{runs}: {} (in {:.1} s)",
                round + 1,
                scenario.name(),
                offset.as_secs_f64()
            ));
            let start = Instant::now() + offset;
            let (result, end) = bench.run(scenario, round, offset).await?;
            windows.push((start, Instant::now()));
            bench.clock.say(format!(
                "  lookout: {}",
                describe(&result.lookout, scenario)
            ));
            if let Some(r) = &result.reference {
                bench
                    .clock
                    .say(format!("  reference: {}", describe(r, scenario)));
            }
            results.push(result);
            last_end = Some(end);
        }
    }
    Ok((results, windows))
}

//! `lookout bench probes`: many checks at once against a service with a fixed injected delay,
//! beside Prometheus's blackbox_exporter probing the same target in the same run. Reports the
//! measurement error (measured minus injected, for Lookout's time to first byte and blackbox's
//! `processing` phase, which time the same interval), Lookout's scheduling lag, CPU seconds
//! per 1000 probes for each prober (read from /proc), and the highest rate each sustains on
//! one core (pinned with taskset) while its p99 error stays under 2 ms.
//!
//! Against the exact target, the TCP and DNS probe kinds are compared the same way, beside
//! blackbox_exporter's `tcp` and `dns` probers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lookout_collector::store::{ResultFilter, StoreConfig};
use lookout_collector::{Collector, CollectorSettings};
use lookout_model::secret::Secret;
use lookout_services::{InstanceSpec, ServiceKind};
use lookout_testkit::netns::Namespace;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use lookout::config::{LogConfig, LogFormat};
use lookout::supervisor;

#[derive(clap::Args)]
pub struct Args {
    /// The delay injected into every probed request.
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    delay: Duration,
    /// Probes per second for the head-to-head run.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// How long each run measures.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Rates tried when looking for the most one core sustains.
    #[arg(long, value_delimiter = ',', default_value = "250,500,1000,2000,3000")]
    sweep: Vec<u32>,
    /// What is probed: `exact` (a server whose delay is exact to microseconds, so that the
    /// error is the prober's) or `platform` (the catalogue's own latency fault, late by up to
    /// 0.4 ms at p99 under load).
    #[arg(long, default_value = "exact", value_parser = ["exact", "platform"])]
    target: String,
    /// How long each sweep step measures.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    sweep_duration: Duration,
}

const TOKEN: &str = "bench-token";

/// A probe kind as compared: the step Lookout runs, the module blackbox_exporter runs, and
/// which of each one's figures times the injected delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Http,
    Tcp,
    Dns,
    Tls,
    WebSocket,
    Icmp,
    Playback,
}

/// The name the exact target's TLS certificate is for.
const TLS_NAME: &str = "gateway.platform.test";

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Http => "http",
            Kind::Tcp => "tcp",
            Kind::Dns => "dns",
            Kind::Tls => "tls",
            Kind::WebSocket => "websocket",
            Kind::Icmp => "icmp",
            Kind::Playback => "playback",
        }
    }

    /// What the row compares.
    fn what(self) -> &'static str {
        match self {
            Kind::Http => "time to first byte",
            Kind::Tcp => "whole exchange (connect, PING, PONG)",
            Kind::Dns => "answer time",
            Kind::Tls => "connect and handshake",
            Kind::WebSocket => "the upgrade (request to 101)",
            Kind::Icmp => "round trip (one echo)",
            Kind::Playback => "time to the first audio byte",
        }
    }

    /// Check keys besides the step: the demo CA for TLS, inline (a JSON string is YAML).
    fn check_keys(self) -> String {
        match self {
            Kind::Tls => format!(
                ", ca: {}",
                serde_json::Value::String(lookout_services::gateway::DEMO_CA.to_owned())
            ),
            _ => String::new(),
        }
    }

    /// The step, as a YAML flow mapping; `target` is a URL for HTTP, `host:port` otherwise.
    fn step(self, target: &str) -> String {
        match self {
            Kind::Http => format!(
                "{{ url: \"{target}/1.x/genres\", assert: [ {{ type: status, equals: 200 }} ] }}"
            ),
            Kind::Tcp => {
                format!("{{ tcp: {{ address: \"{target}\", send: PING, expect: \"^PONG\" }} }}")
            }
            Kind::Dns => format!(
                "{{ dns: {{ server: \"{target}\", name: bench.test, contains: [\"127.0.0.1\"] }} }}"
            ),
            Kind::Tls => format!("{{ tls: {{ address: \"{target}\", server_name: {TLS_NAME} }} }}"),
            Kind::WebSocket => format!("{{ websocket: {{ url: \"ws://{target}/live\" }} }}"),
            Kind::Icmp => format!("{{ icmp: {{ host: \"{target}\", count: 1 }} }}"),
            Kind::Playback => {
                format!("{{ url: \"http://{target}/audio.wav\", playback: {{ seconds: 0.5 }} }}")
            }
        }
    }

    /// Lookout's figure for the delay: the time to the response (HTTP), the whole exchange,
    /// connection included, as blackbox times it (TCP), the answer time (DNS).
    fn measured_us(self, s: &lookout_model::probe::StepResult) -> u64 {
        match self {
            Kind::Http => s.phases.ttfb_us,
            Kind::Tcp | Kind::Tls => s.phases.total_us,
            Kind::Dns => s.phases.dns_us,
            Kind::WebSocket | Kind::Icmp | Kind::Playback => s.phases.ttfb_us,
        }
    }

    /// blackbox_exporter's module for the kind; `None` where it has no prober for it (0.23,
    /// Debian's, has no WebSocket prober).
    fn blackbox_module(self) -> Option<&'static str> {
        match self {
            Kind::Http => Some("http_200"),
            Kind::Tcp => Some("tcp_ping"),
            Kind::Dns => Some("dns_a"),
            Kind::Tls => Some("tcp_tls"),
            Kind::WebSocket | Kind::Playback => None,
            Kind::Icmp => Some("icmp_echo"),
        }
    }

    fn blackbox_target(self, target: &str) -> String {
        match self {
            Kind::Http => format!("{target}/1.x/genres"),
            Kind::Tcp | Kind::Dns | Kind::Tls | Kind::WebSocket | Kind::Icmp | Kind::Playback => {
                target.to_owned()
            }
        }
    }

    /// blackbox's figure for the same interval: its tcp prober's whole probe is the connect
    /// and, with `tls`, the handshake.
    fn blackbox_metric(self) -> &'static str {
        match self {
            Kind::Http => "probe_http_duration_seconds{phase=\"processing\"}",
            Kind::Tcp | Kind::Tls | Kind::WebSocket | Kind::Playback => "probe_duration_seconds",
            Kind::Dns => "probe_dns_duration_seconds{phase=\"request\"}",
            Kind::Icmp => "probe_icmp_duration_seconds{phase=\"rtt\"}",
        }
    }
}

/// A peer whose echo replies come exactly `delay` late: a network namespace behind a veth
/// pair, its kernel told not to answer echo, and `lookout bench icmp-responder` inside it
/// answering each request `delay` after it arrives (pinned to CPU 1, as the exact target).
/// Netem would be the kernel's own way, but not every kernel has it (this VM's has not).
/// Needs root and iproute2; removed when dropped.
struct DelayedPeer {
    address: String,
    // Fields drop in order: the responder goes before its namespace.
    _responder: Child,
    _ns: Namespace,
}

impl DelayedPeer {
    async fn start(delay: Duration) -> anyhow::Result<DelayedPeer> {
        let ns = Namespace::create("lookout-bench-icmp", "lkb0", [10, 213, 0])?;
        let mut responder = Command::from(ns.command("taskset"));
        let mut responder = responder
            .args(["-c", "1"])
            .arg(std::env::current_exe()?)
            .args(["icmp-responder", "--delay"])
            .arg(humantime::format_duration(delay).to_string())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = responder.stdout.take().context("icmp responder stdout")?;
        tokio::time::timeout(
            Duration::from_secs(10),
            BufReader::new(stdout).lines().next_line(),
        )
        .await
        .context("the icmp responder did not start")??
        .context("the icmp responder did not start")?;
        Ok(DelayedPeer {
            address: ns.peer.to_string(),
            _responder: responder,
            _ns: ns,
        })
    }
}

/// Every module blackbox_exporter is started with; `CA_FILE` is the demo CA's path.
const BLACKBOX_MODULES: &str = "modules:
  icmp_echo:
    prober: icmp
    timeout: 900ms
    icmp:
      preferred_ip_protocol: ip4
  tcp_tls:
    prober: tcp
    timeout: 900ms
    tcp:
      preferred_ip_protocol: ip4
      tls: true
      tls_config:
        ca_file: CA_FILE
        server_name: gateway.platform.test
  http_200:
    prober: http
    timeout: 900ms
    http:
      preferred_ip_protocol: ip4
      valid_status_codes: [200]
  tcp_ping:
    prober: tcp
    timeout: 900ms
    tcp:
      preferred_ip_protocol: ip4
      query_response:
        - send: PING
        - expect: ^PONG
  dns_a:
    prober: dns
    timeout: 900ms
    dns:
      preferred_ip_protocol: ip4
      transport_protocol: udp
      query_name: bench.test
      query_type: A
      valid_rcodes: [NOERROR]
";
const MAX_P99_ERROR_MS: f64 = 2.0;

struct Run {
    probes: usize,
    failures: usize,
    cpu_seconds: f64,
    wall: Duration,
    /// Measured minus injected, microseconds.
    errors: Vec<i64>,
    lag_us: Vec<i64>,
}

fn pct(v: &[i64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    let i = ((s.len() as f64 - 1.0) * q).round() as usize;
    s[i] as f64 / 1000.0
}

impl Run {
    fn cpu_per_1000(&self) -> f64 {
        self.cpu_seconds / self.probes.max(1) as f64 * 1000.0
    }
    fn rate(&self) -> f64 {
        self.probes as f64 / self.wall.as_secs_f64()
    }
    fn sustained(&self, target: u32) -> bool {
        self.failures == 0
            && self.rate() >= target as f64 * 0.95
            && pct(&self.errors, 0.99) < MAX_P99_ERROR_MS
            && self.cpu_seconds / self.wall.as_secs_f64() < 0.95
    }
}

/// CPU seconds (user + system) a process has used, from /proc.
pub(super) fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("unexpected /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11).context("utime")?.parse::<f64>()?
        + fields.get(12).context("stime")?.parse::<f64>()?;
    Ok(ticks / clock_ticks())
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`), which /proc counts CPU time in.
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

async fn pin_to_cpu1(pid: u32) -> anyhow::Result<()> {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", "1", &pid.to_string()])
        .stdout(Stdio::null())
        .status()
        .await
        .context("taskset (util-linux) is needed to pin the benchmark's processes")?;
    anyhow::ensure!(
        status.success(),
        "taskset could not pin process {pid} to CPU 1"
    );
    Ok(())
}

/// Gives the exact target real-time priority (SCHED_FIFO) on its CPU, so that nothing else
/// there (the bench's own collector, its SQLite commits) makes it answer late: the target is
/// the reference, and its lateness would be counted as the prober's error. Its request
/// threads inherit the policy. Without the right to (not root), the run goes on and says so.
async fn realtime(pid: u32) -> bool {
    let status = Command::new("chrt")
        .args(["-a", "-f", "-p", "50", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    matches!(status, Ok(s) if s.success())
}

pub(super) async fn stop(mut child: Child) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
    }
    if tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

fn agent_config(dir: &std::path::Path, kind: Kind, target: &str, rate: u32) -> String {
    let mut y = format!(
        "platform:\n  admin_token: bench\n  gateway:\n    api_keys: [k]\ndata_dir: {}\ncollector:\n  token: {TOKEN}\nprobes:\n  regions: [bench]\n  run_on_start: false\n  flush_interval: 250ms\n  batch_max: 5000\nchecks:\n",
        dir.join("data").display()
    );
    let step = kind.step(target);
    let keys = kind.check_keys();
    for i in 0..rate {
        y.push_str(&format!(
            "  - {{ name: c{i}, interval: 1s, timeout: 900ms{keys}, steps: [ {step} ] }}\n"
        ));
    }
    y
}

async fn lookout_run(
    kind: Kind,
    target: &str,
    rate: u32,
    delay: Duration,
    measure: Duration,
) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    let store = StoreConfig::Memory.open()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let collector = Collector::start(
        CollectorSettings {
            sinks: Vec::new(),
            ..CollectorSettings::new(Secret::new(TOKEN), BTreeMap::new())
        },
        store.clone(),
        listener,
    )
    .await?;
    let config_path = dir.path().join("agent.yaml");
    std::fs::write(&config_path, agent_config(dir.path(), kind, target, rate))?;
    let exe = lookout::lookout_exe()?;
    let mut child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(&exe)
        .args([
            "probe",
            "--region",
            "bench",
            "--agent-id",
            "bench-1",
            "--collector",
            &collector.url(),
            "--config",
        ])
        .arg(&config_path)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start `taskset -c 0 lookout probe` (util-linux's taskset is needed)")?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .context("the agent did not start")??;
    let pid = child.id().context("agent pid")?;
    // Warm up: connections, the first runs, the spool's first segment, a cold target.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cpu0 = cpu_seconds(pid)?;
    let t0 = Instant::now();
    let from_us = chrono::Utc::now().timestamp_micros();
    tokio::time::sleep(measure).await;
    let to_us = chrono::Utc::now().timestamp_micros();
    let cpu = cpu_seconds(pid)? - cpu0;
    let wall = t0.elapsed();
    // Let the results of the window arrive.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop(child).await;
    collector.shutdown().await;
    let results: Vec<_> = store
        .query(&ResultFilter {
            limit: usize::MAX,
            ..Default::default()
        })?
        .into_iter()
        .filter(|r| r.started_at_us >= from_us && r.started_at_us < to_us)
        .collect();
    let injected = delay.as_micros() as i64;
    let mut errors = Vec::new();
    let mut lag_us = Vec::new();
    let mut failures = 0;
    for r in &results {
        if !r.outcome.is_ok() {
            failures += 1;
            continue;
        }
        if let Some(s) = r.steps.first() {
            errors.push(kind.measured_us(s) as i64 - injected);
        }
        let phase = lookout_probes::schedule::phase_of(&r.check, "bench", Duration::from_secs(1))
            .as_micros() as i64;
        let slot = (r.started_at_us - phase).div_euclid(1_000_000) * 1_000_000 + phase;
        lag_us.push(r.started_at_us - slot);
    }
    Ok(Run {
        probes: results.len(),
        failures,
        cpu_seconds: cpu,
        wall,
        errors,
        lag_us,
    })
}

fn blackbox_value(text: &str, metric: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(metric))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn blackbox_run(
    kind: Kind,
    target: &str,
    rate: u32,
    delay: Duration,
    measure: Duration,
) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("blackbox.yml");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, lookout_services::gateway::DEMO_CA)?;
    std::fs::write(
        &config,
        BLACKBOX_MODULES.replace("CA_FILE", &ca.display().to_string()),
    )?;
    let Some(module) = kind.blackbox_module() else {
        bail!("blackbox_exporter has no prober for {}", kind.name());
    };
    let port = lookout_testkit::free_port();
    let child = Command::new("taskset")
        .args(["-c", "0", "prometheus-blackbox-exporter"])
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start prometheus-blackbox-exporter: apt-get install prometheus-blackbox-exporter")?;
    let pid = child.id().context("blackbox pid")?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(4096)
        .build()?;
    let base = format!("http://127.0.0.1:{port}");
    let ready = async {
        loop {
            if http.get(format!("{base}/metrics")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(15), ready)
        .await
        .context("blackbox_exporter did not start")?;
    let url = Arc::new(format!(
        "{base}/probe?module={module}&target={}",
        kind.blackbox_target(target)
    ));
    let metric = kind.blackbox_metric();
    let injected = delay.as_micros() as i64;
    // Probes are issued in 10 ms ticks, as a scraper spreading `rate` targets would.
    let drive = |window: Duration| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let per_tick = (rate as f64 / 100.0).max(0.0);
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let mut owed = 0.0;
            let mut tasks = Vec::new();
            let end = Instant::now() + window;
            while Instant::now() < end {
                tick.tick().await;
                owed += per_tick;
                while owed >= 1.0 {
                    owed -= 1.0;
                    let (http, url) = (http.clone(), url.clone());
                    tasks.push(tokio::spawn(async move {
                        let text = http
                            .get(url.as_str())
                            .timeout(Duration::from_secs(5))
                            .send()
                            .await
                            .ok()?
                            .text()
                            .await
                            .ok()?;
                        let ok = blackbox_value(&text, "probe_success")? == 1.0;
                        let measured = blackbox_value(&text, metric)?;
                        Some((ok, (measured * 1e6) as i64 - injected))
                    }));
                }
            }
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.ok().flatten());
            }
            out
        }
    };
    drive(Duration::from_secs(2)).await;
    let cpu0 = cpu_seconds(pid)?;
    let t0 = Instant::now();
    let outcomes = drive(measure).await;
    let wall = t0.elapsed();
    let cpu = cpu_seconds(pid)? - cpu0;
    stop(child).await;
    let mut errors = Vec::new();
    let mut failures = 0;
    for o in &outcomes {
        match o {
            Some((true, e)) => errors.push(*e),
            _ => failures += 1,
        }
    }
    Ok(Run {
        probes: outcomes.len(),
        failures,
        cpu_seconds: cpu,
        wall,
        errors,
        lag_us: Vec::new(),
    })
}

fn row(name: &str, r: &Run) {
    println!(
        "{name:<24} {:>8.0} {:>8} {:>10.3} {:>10.3} {:>10} {:>12.3}",
        r.rate(),
        r.failures,
        pct(&r.errors, 0.5),
        pct(&r.errors, 0.99),
        if r.lag_us.is_empty() {
            "n/a".to_owned()
        } else {
            format!("{:.3}", pct(&r.lag_us, 0.99))
        },
        r.cpu_per_1000(),
    );
}

/// Keeps the target alive while the benchmark runs.
enum Target {
    Exact(Child),
    Platform(supervisor::RunningInstance),
}

/// Where the exact target serves each kind compared.
struct Served {
    http: String,
    tcp: String,
    dns: String,
    tls: String,
    ws: String,
    play: String,
}

/// `lookout bench exact-target` as a child on CPU 1; where it serves.
async fn exact_target(delay: Duration) -> anyhow::Result<(Child, Served)> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["exact-target", "--delay"])
        .arg(humantime::format_duration(delay).to_string())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("exact target stdout")?;
    let line = tokio::time::timeout(
        Duration::from_secs(10),
        BufReader::new(stdout).lines().next_line(),
    )
    .await
    .context("the exact target did not start")??
    .context("the exact target did not start")?;
    let mut words = line
        .strip_prefix("exact-target ")
        .context("unexpected first line from the exact target")?
        .split_whitespace();
    let mut next = |prefix: &str| {
        words
            .next()
            .and_then(|w| w.strip_prefix(prefix))
            .map(str::to_owned)
            .with_context(|| format!("the exact target did not say where it serves {prefix}"))
    };
    let served = Served {
        http: next("")?,
        tcp: next("tcp=")?,
        dns: next("dns=")?,
        tls: next("tls=")?,
        ws: next("ws=")?,
        play: next("play=")?,
    };
    let pid = child.id().context("exact target pid")?;
    pin_to_cpu1(pid).await?;
    if !realtime(pid).await {
        println!(
            "note: the exact target runs at normal priority (chrt -f needs root); its own \
             lateness under load counts as error"
        );
    }
    Ok((child, served))
}

/// A catalogue instance with the delay injected through its fault API, on CPU 1.
async fn platform_target(delay: Duration) -> anyhow::Result<(supervisor::RunningInstance, String)> {
    let spec = InstanceSpec {
        kind: ServiceKind::Catalogue,
        seed: 1,
        artists: 1000,
        admin_token: Secret::new("bench-admin"),
        gateway: None,
        analytics: None,
    };
    let log = LogConfig {
        format: LogFormat::Text,
        level: "error".into(),
    };
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let target = supervisor::spawn(spec, 0, any, any, &log).await?;
    pin_to_cpu1(target.pid().context("target pid")?).await?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let r = http
        .post(format!("{}/admin/faults", target.admin_url()))
        .bearer_auth("bench-admin")
        .json(&serde_json::json!({"kind": "latency", "latency": humantime::format_duration(delay).to_string(), "route": "/1.x/genres"}))
        .send()
        .await?;
    anyhow::ensure!(
        r.status().is_success(),
        "could not inject the delay: {}",
        r.status()
    );
    let url = target.url();
    Ok((target, url))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    if std::process::Command::new("prometheus-blackbox-exporter")
        .arg("--version")
        .output()
        .is_err()
    {
        bail!(
            "prometheus-blackbox-exporter is not installed: apt-get install prometheus-blackbox-exporter"
        );
    }
    // The prober runs on CPU 0 and the target on CPU 1, so that neither steals the other's
    // core. (Pinning this process to CPU 1 as well was tried: the target then starves and
    // its own latency tail swamps what is measured.)
    let (url, others, target) = if args.target == "exact" {
        // The exact target sleeps but for its last 200 µs per request: this process (the
        // collector the agent pushes to, blackbox's driver) can share its core and leave
        // CPU 0 to the prober alone.
        pin_to_cpu1(std::process::id()).await?;
        let (child, served) = exact_target(args.delay).await?;
        let others = vec![
            (Kind::Tcp, served.tcp),
            (Kind::Dns, served.dns),
            (Kind::Tls, served.tls),
            (Kind::WebSocket, served.ws),
            (Kind::Playback, served.play),
        ];
        (served.http, others, Target::Exact(child))
    } else {
        let (target, url) = platform_target(args.delay).await?;
        (url, Vec::new(), Target::Platform(target))
    };
    println!(
        "lookout bench probes: target {url}/1.x/genres ({}) with {} injected; prober on CPU 0, target on CPU 1 (taskset); fresh connection per probe",
        args.target,
        humantime::format_duration(args.delay)
    );
    println!();
    println!(
        "{:<24} {:>8} {:>8} {:>10} {:>10} {:>10} {:>12}",
        "", "probes/s", "failed", "err p50 ms", "err p99 ms", "lag p99 ms", "CPU s/1000"
    );
    let lookout = lookout_run(Kind::Http, &url, args.rate, args.delay, args.duration).await?;
    row(&format!("lookout @ {}/s", args.rate), &lookout);
    let blackbox = blackbox_run(Kind::Http, &url, args.rate, args.delay, args.duration).await?;
    row(&format!("blackbox_exporter @ {}/s", args.rate), &blackbox);
    println!();
    println!(
        "CPU per probe, lookout / blackbox_exporter: {:.2} (target: at most 0.50)",
        lookout.cpu_per_1000() / blackbox.cpu_per_1000().max(f64::MIN_POSITIVE)
    );
    println!(
        "lookout p99 measurement error: {:.3} ms (target: at most 1 ms); blackbox_exporter: {:.3} ms",
        pct(&lookout.errors, 0.99),
        pct(&blackbox.errors, 0.99)
    );
    println!();
    println!(
        "highest rate one core sustains with p99 error < {MAX_P99_ERROR_MS} ms, no failures, CPU < 95 %:"
    );
    for (name, is_lookout) in [("lookout", true), ("blackbox_exporter", false)] {
        let mut best = None;
        for &rate in &args.sweep {
            let r = if is_lookout {
                lookout_run(Kind::Http, &url, rate, args.delay, args.sweep_duration).await?
            } else {
                blackbox_run(Kind::Http, &url, rate, args.delay, args.sweep_duration).await?
            };
            let ok = r.sustained(rate);
            println!(
                "  {name:<18} {rate:>6}/s: {:>7.0}/s done, p99 error {:>7.3} ms, CPU {:>5.1} %, {} failed -> {}",
                r.rate(),
                pct(&r.errors, 0.99),
                100.0 * r.cpu_seconds / r.wall.as_secs_f64(),
                r.failures,
                if ok { "sustained" } else { "not sustained" }
            );
            if ok {
                best = Some(rate);
            } else {
                break;
            }
        }
        println!(
            "  {name}: {}",
            best.map(|b| format!("{b} probes/s"))
                .unwrap_or_else(|| "below the lowest rate tried".into())
        );
    }
    for (kind, at) in &others {
        println!();
        println!(
            "{} against the exact target ({at}), {}/s: Lookout's {}{}",
            kind.name(),
            args.rate,
            kind.what(),
            match kind.blackbox_module() {
                Some(_) => format!(" beside blackbox_exporter's {}", kind.blackbox_metric()),
                None => " (blackbox_exporter 0.23 has no prober for it)".to_owned(),
            }
        );
        let lookout = lookout_run(*kind, at, args.rate, args.delay, args.duration).await?;
        row(
            &format!("lookout {} @ {}/s", kind.name(), args.rate),
            &lookout,
        );
        if kind.blackbox_module().is_none() {
            println!(
                "  {}: p99 error {:.3} ms; CPU {:.3} s per 1,000 probes",
                kind.name(),
                pct(&lookout.errors, 0.99),
                lookout.cpu_per_1000()
            );
            continue;
        }
        let blackbox = blackbox_run(*kind, at, args.rate, args.delay, args.duration).await?;
        row(
            &format!("blackbox {} @ {}/s", kind.name(), args.rate),
            &blackbox,
        );
        println!(
            "  {}: p99 error {:.3} ms against blackbox_exporter's {:.3} ms (target: at most theirs); CPU per probe {:.2} of theirs (target: at most 0.50)",
            kind.name(),
            pct(&lookout.errors, 0.99),
            pct(&blackbox.errors, 0.99),
            lookout.cpu_per_1000() / blackbox.cpu_per_1000().max(f64::MIN_POSITIVE)
        );
    }
    if args.target == "exact" {
        println!();
        match DelayedPeer::start(args.delay).await {
            Err(e) => println!(
                "icmp: skipped: the delayed peer could not be set up ({e}); it needs root and iproute2"
            ),
            Ok(peer) => {
                let kind = Kind::Icmp;
                println!(
                    "icmp to a peer answering {} late (a responder in a network namespace, {}), {}/s: Lookout's {} beside blackbox_exporter's {}",
                    humantime::format_duration(args.delay),
                    peer.address,
                    args.rate,
                    kind.what(),
                    kind.blackbox_metric()
                );
                let lookout =
                    lookout_run(kind, &peer.address, args.rate, args.delay, args.duration).await?;
                row(&format!("lookout icmp @ {}/s", args.rate), &lookout);
                let blackbox =
                    blackbox_run(kind, &peer.address, args.rate, args.delay, args.duration).await?;
                row(&format!("blackbox icmp @ {}/s", args.rate), &blackbox);
                println!(
                    "  icmp: p99 error {:.3} ms against blackbox_exporter's {:.3} ms (target: at most theirs); CPU per probe {:.2} of theirs (target: at most 0.50)",
                    pct(&lookout.errors, 0.99),
                    pct(&blackbox.errors, 0.99),
                    lookout.cpu_per_1000() / blackbox.cpu_per_1000().max(f64::MIN_POSITIVE)
                );
            }
        }
    }
    match target {
        Target::Exact(child) => stop(child).await,
        Target::Platform(instance) => {
            let mut platform = supervisor::Platform {
                children: vec![instance],
            };
            platform.stop().await;
        }
    }
    Ok(())
}

//! `lookout bench status-page`: requests per second and latency of the public status page's
//! front page under many concurrent readers (an incident brings everyone at once), beside
//! nginx serving a static copy of the same page in the same run. The ratio of the two rates
//! is the figure; the target is at least half of nginx's rate with a p99 under 5 ms, while
//! ingest goes on.
//!
//! What makes the comparison fair:
//!
//! - **The same bytes.** The copy is taken from the running page: `index.html` is its plain
//!   body and `index.html.gz` the very gzip bytes it serves (both checked to carry one ETag),
//!   which nginx sends as they are (`gzip_static`), with the page's `Content-Type`. The bench
//!   checks that nginx answers with exactly those bytes before it measures.
//! - **The same load generator** (`load.rs`: closed-loop clients on keep-alive connections),
//!   with the same concurrency, headers (`Accept-Encoding: gzip`), warm-up and duration.
//! - **The same machine state.** The two targets take turns, round after round, the order
//!   swapped each round, and ingest keeps running through all of it, so both share whatever
//!   else the machine does. Each server has as many threads as the machine has cores, as it
//!   would alone: nginx runs `worker_processes auto`; the status page runs on a tokio runtime
//!   of its own with the default worker count (not the load generator's runtime, which would
//!   otherwise steal its workers). The collector and the ingest that feeds it run on a third,
//!   one-thread runtime, standing in for processes of their own.
//!
//! Ingest: an in-process collector (SQLite store in a temporary directory) knows 5 checks run
//! from 3 regions; three simulated agents, one per region, post `--ingest-per-second` results
//! in all, in batches every 100 ms, with a failure now and then (a region's blip) and, every
//! 30 s, a 5 s outage of one check in two regions (down by quorum). The status page follows the
//! collector's live state as in production, so it re-renders while it is measured; the copy
//! nginx serves is frozen, which only favours nginx.
//!
//! The 304 path (`If-None-Match` with the current ETag) is measured once per target, for
//! information; `load.rs` counts only 2xx answers as work, so that run has a loop of its own.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::header::{self, HeaderMap};
use hyper_util::rt::TokioIo;
use lookout_collector::store::{ResultStore, StoreConfig};
use lookout_collector::{CheckInfo, Collector, CollectorSettings};
use lookout_model::probe::{Failure, FailureKind, Outcome, Phases, ProbeResult, StepResult};
use lookout_model::secret::Secret;
use lookout_status_page::settings::{ComponentSpec, GroupSpec};
use lookout_status_page::{StatusPage, StatusPageSettings};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::runtime::Runtime;

use super::load::{self, LoadResult, LoadSpec};

#[derive(clap::Args)]
pub struct Args {
    /// Concurrent clients, each with its own keep-alive connection.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// How long each target is measured in each round.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Load before each measurement starts (connections opened, caches warm).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Rounds; each measures the status page and nginx once, taking turns.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Probe results posted to the collector per second, in all, for the whole run.
    #[arg(long, default_value_t = 300)]
    ingest_per_second: u32,
}

const TARGET_SHARE: f64 = 0.5;
const TARGET_P99_MS: f64 = 5.0;
/// Ingest "goes on" when at least this share of the asked rate is acknowledged.
const INGEST_KEPT_UP: f64 = 0.9;

const COLLECTOR_TOKEN: &str = "bench-collector-token";
const ADMIN_TOKEN: &str = "bench-admin-token";
/// Internal region, public name.
const REGIONS: [(&str, &str); 3] = [
    ("eu-west", "Europe"),
    ("us-east", "Americas"),
    ("ap-south", "Asia Pacific"),
];
/// Group, component id, public name, description, the check behind it.
const COMPONENTS: [(&str, &str, &str, &str, &str); 5] = [
    (
        "Listening",
        "search",
        "Search",
        "Finding artists and tracks",
        "bench-search",
    ),
    (
        "Listening",
        "artist-pages",
        "Artist pages",
        "Artists, their albums and mixes",
        "bench-artist",
    ),
    (
        "Listening",
        "playback",
        "Playback",
        "Starting a track",
        "bench-play",
    ),
    (
        "Account",
        "sign-in",
        "Sign-in",
        "Signing in with a partner key",
        "bench-auth",
    ),
    ("Account", "mixes", "Mixes", "Personal mixes", "bench-mixes"),
];
/// How often each simulated agent posts its batch.
const INGEST_TICK: Duration = Duration::from_millis(100);
/// Every this many seconds of ingest ...
const OUTAGE_EVERY_S: u64 = 30;
/// ... one check fails in two regions, from this second of the cycle ...
const OUTAGE_FROM_S: u64 = 20;
/// ... for this long.
const OUTAGE_FOR_S: u64 = 5;
/// One result in this many fails on its own: a region's blip.
const BLIP_ONE_IN: u64 = 211;

pub async fn run(args: Args) -> anyhow::Result<()> {
    ensure!(args.concurrency >= 1, "--concurrency must be at least 1");
    ensure!(args.runs >= 1, "--runs must be at least 1");
    ensure!(
        args.ingest_per_second >= 1,
        "--ingest-per-second must be at least 1: the target holds while ingest goes on"
    );
    ensure!(
        !args.duration.is_zero(),
        "--duration must be longer than zero"
    );
    // Before anything starts: a missing nginx should cost nothing.
    let nginx_bin = find_nginx()?;
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    // Declared after `dir`, so dropped (on an error too) before the directory is removed.
    let backend = SideRuntime::new("bench-backend", 1)?;
    let page_rt = SideRuntime::new("status-page", cores)?;

    println!(
        "lookout bench status-page: starting a collector, {} results/s of ingest, and the status page ...",
        args.ingest_per_second
    );
    let collector = backend
        .spawn(start_collector(
            dir.path().join("collector.db"),
            args.ingest_per_second,
        ))
        .await??;
    let collector_url = collector.url();
    let ingest = Ingest::start(&backend, &collector_url, args.ingest_per_second);
    let page = page_rt.spawn(start_page(collector_url.clone())).await??;

    let result = async {
        let mut nginx = None;
        let measured = measure(
            &args,
            &page,
            &ingest,
            &nginx_bin,
            dir.path(),
            cores,
            &mut nginx,
        )
        .await;
        if let Some(nginx) = nginx.as_mut() {
            nginx.stop().await;
        }
        measured
    }
    .await;

    ingest.stop();
    let _ = page_rt.spawn(page.shutdown()).await;
    let _ = backend.spawn(collector.shutdown()).await;
    drop(page_rt);
    drop(backend);
    result
}

/// A tokio runtime beside the bench's own, shut down without blocking when dropped (dropping
/// a runtime inside another's async context would panic).
struct SideRuntime(Option<Runtime>);

impl SideRuntime {
    fn new(name: &str, threads: usize) -> anyhow::Result<SideRuntime> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name(name)
            .enable_all()
            .build()
            .with_context(|| format!("cannot build the {name} runtime"))?;
        Ok(SideRuntime(Some(rt)))
    }

    fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.0 {
            Some(rt) => rt.spawn(future),
            // Only `drop` takes the runtime out.
            None => tokio::spawn(future),
        }
    }
}

impl Drop for SideRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The collector and ingest

async fn start_collector(db: PathBuf, per_second: u32) -> anyhow::Result<Collector> {
    // Each (check, region) gets a result every this often; the declared interval covers it,
    // so that no region goes silent between two results.
    let pairs = (COMPONENTS.len() * REGIONS.len()) as f64;
    let period_us = (pairs / f64::from(per_second) * 1e6).ceil() as i64;
    let interval_us = period_us.max(1_000_000);
    let known: BTreeMap<String, CheckInfo> = COMPONENTS
        .iter()
        .map(|(_, _, _, _, check)| {
            (
                (*check).to_owned(),
                CheckInfo {
                    regions: REGIONS.iter().map(|(r, _)| (*r).to_owned()).collect(),
                    interval_us,
                    timeout_us: 1_000_000,
                    slo: lookout_model::slo::Slo::default()
                        .with(lookout_model::slo::SloOverrides {
                            latency_objective: Some(Duration::from_millis(500)),
                            ..Default::default()
                        })
                        .unwrap_or_default(),
                    ..CheckInfo::unknown()
                },
            )
        })
        .collect();
    let store: Arc<dyn ResultStore> = StoreConfig::Sqlite { path: db.clone() }
        .open()
        .with_context(|| format!("cannot open {}", db.display()))?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    Collector::start(
        CollectorSettings::new(Secret::new(COLLECTOR_TOKEN), known),
        store,
        listener,
    )
    .await
    .context("cannot start the collector")
}

/// Acknowledged results and refused batches, read at the start and end of the measured rounds.
#[derive(Default)]
struct IngestCounters {
    acked: AtomicU64,
    refused_batches: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

impl IngestCounters {
    fn refuse(&self, why: String) {
        self.refused_batches.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert(why);
        }
    }
}

struct Ingest {
    counters: Arc<IngestCounters>,
    stop: Arc<AtomicBool>,
    per_second: u32,
}

#[derive(Clone, Copy)]
struct IngestMark {
    at: Instant,
    acked: u64,
    refused: u64,
}

impl Ingest {
    fn start(rt: &SideRuntime, collector: &str, per_second: u32) -> Ingest {
        let counters = Arc::new(IngestCounters::default());
        let stop = Arc::new(AtomicBool::new(false));
        rt.spawn(ingest_loop(
            format!("{collector}/api/v1/results"),
            per_second,
            stop.clone(),
            counters.clone(),
        ));
        Ingest {
            counters,
            stop,
            per_second,
        }
    }

    fn mark(&self) -> IngestMark {
        IngestMark {
            at: Instant::now(),
            acked: self.counters.acked.load(Ordering::Relaxed),
            refused: self.counters.refused_batches.load(Ordering::Relaxed),
        }
    }

    fn first_error(&self) -> Option<String> {
        self.counters
            .first_error
            .lock()
            .ok()
            .and_then(|e| e.clone())
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

async fn ingest_loop(
    url: String,
    per_second: u32,
    stop: Arc<AtomicBool>,
    counters: Arc<IngestCounters>,
) {
    let http = match reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            counters.refuse(format!("cannot build an HTTP client: {e}"));
            return;
        }
    };
    let started = Instant::now();
    let mut tick = tokio::time::interval(INGEST_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut seqs = [0u64; REGIONS.len()];
    let mut made = 0u64;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let elapsed = started.elapsed();
        // What is due by now, so that a slow answer is caught up on; never more than a
        // second's worth at once.
        let due = (elapsed.as_secs_f64() * f64::from(per_second)) as u64;
        let count = due.saturating_sub(made).min(u64::from(per_second));
        made = due;
        if count == 0 {
            continue;
        }
        let now_us = chrono::Utc::now().timestamp_micros();
        let mut batches: [Vec<ProbeResult>; REGIONS.len()] = Default::default();
        for i in 0..count {
            let n = made - count + i;
            let region = (n % REGIONS.len() as u64) as usize;
            let check = ((n / REGIONS.len() as u64) % COMPONENTS.len() as u64) as usize;
            seqs[region] += 1;
            // Spread over the tick just gone, in order.
            let started_at_us = now_us - 100_000 + (i as i64 * 100_000) / count as i64;
            batches[region].push(result(
                check,
                region,
                seqs[region],
                started_at_us,
                n,
                elapsed.as_secs(),
            ));
        }
        let posts = batches.into_iter().filter(|b| !b.is_empty()).map(|batch| {
            let (http, url, counters) = (&http, &url, &counters);
            async move {
                let n = batch.len() as u64;
                let body = serde_json::json!({ "results": batch });
                match http
                    .post(url)
                    .bearer_auth(COLLECTOR_TOKEN)
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        counters.acked.fetch_add(n, Ordering::Relaxed);
                    }
                    Ok(r) => {
                        let status = r.status();
                        let text = r.text().await.unwrap_or_default();
                        counters.refuse(format!("the collector answered {status}: {text}"));
                    }
                    Err(e) => counters.refuse(format!("posting a batch failed: {e}")),
                }
            }
        });
        futures_util::future::join_all(posts).await;
    }
}

/// The n-th result posted, `second` seconds into ingest.
fn result(
    check: usize,
    region: usize,
    seq: u64,
    started_at_us: i64,
    n: u64,
    second: u64,
) -> ProbeResult {
    let in_outage = (second % OUTAGE_EVERY_S) >= OUTAGE_FROM_S
        && (second % OUTAGE_EVERY_S) < OUTAGE_FROM_S + OUTAGE_FOR_S
        && check == ((second / OUTAGE_EVERY_S) as usize) % COMPONENTS.len()
        && region < 2;
    let ok = !in_outage && !(n + 1).is_multiple_of(BLIP_ONE_IN);
    let duration = 30_000 + (n * 7_919) % 120_000;
    ProbeResult {
        check: COMPONENTS[check].4.to_owned(),
        region: REGIONS[region].0.to_owned(),
        agent: format!("{}-bench", REGIONS[region].0),
        seq,
        started_at_us,
        outcome: if ok {
            Outcome::Ok
        } else {
            Outcome::Fail(Failure {
                kind: FailureKind::Timeout,
                message: "timed out waiting for the first byte after 1 s".into(),
                step: Some(0),
            })
        },
        duration_us: duration,
        steps: vec![StepResult {
            name: "request".into(),
            status: ok.then_some(200),
            bytes: 2_048,
            phases: Phases {
                dns_us: 0,
                connect_us: 150,
                tls_us: 0,
                ttfb_us: duration - 400,
                transfer_us: 250,
                total_us: duration,
            },
            cert_days_left: None,
            reused_connection: false,
        }],
        confirmation: false,
    }
}

// ---------------------------------------------------------------------------------------------
// The status page

async fn start_page(collector_url: String) -> anyhow::Result<StatusPage> {
    let url = url::Url::parse(&format!("{collector_url}/"))
        .with_context(|| format!("the collector's URL {collector_url:?} does not parse"))?;
    let mut settings =
        StatusPageSettings::new(url, Secret::new(COLLECTOR_TOKEN), Secret::new(ADMIN_TOKEN));
    settings.title = "Lookout bench status".into();
    let mut groups: Vec<GroupSpec> = Vec::new();
    for (group, id, name, description, check) in COMPONENTS {
        let component = ComponentSpec {
            id: id.into(),
            name: name.into(),
            description: description.into(),
            check: check.into(),
        };
        match groups.iter_mut().find(|g| g.name == group) {
            Some(g) => g.components.push(component),
            None => groups.push(GroupSpec {
                id: lookout_status_page::settings::slug(group),
                name: group.into(),
                components: vec![component],
            }),
        }
    }
    settings.groups = groups;
    settings.regions = REGIONS
        .iter()
        .map(|(i, p)| ((*i).to_owned(), (*p).to_owned()))
        .collect();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    StatusPage::start(settings, listener)
        .await
        .context("cannot start the status page")
}

/// One request on a fresh connection: status, headers, body as sent (gzip stays gzip).
async fn fetch(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<(u16, HeaderMap, Bytes)> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut req = hyper::Request::get(path).header(header::HOST, addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = sender
        .send_request(req.body(Empty::<Bytes>::new())?)
        .await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, headers, body))
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Until the page shows every component as operational: the collector has results for all.
async fn wait_ready(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::from("no answer yet");
    while Instant::now() < deadline {
        match ready(addr).await {
            Ok(()) => return Ok(()),
            Err(e) => last = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("the status page was not ready after 60 s: {last}")
}

async fn ready(addr: SocketAddr) -> anyhow::Result<()> {
    let (status, _, body) = fetch(addr, "/", &[]).await?;
    ensure!(status == 200, "`/` answered {status}");
    let html = String::from_utf8_lossy(&body);
    for (_, _, name, _, _) in COMPONENTS {
        ensure!(html.contains(name), "`/` does not show {name:?} yet");
    }
    let (status, _, body) = fetch(addr, "/api/v2/summary.json", &[]).await?;
    ensure!(status == 200, "`/api/v2/summary.json` answered {status}");
    let summary: serde_json::Value = serde_json::from_slice(&body)?;
    let components = summary["components"]
        .as_array()
        .context("summary.json has no components")?;
    for c in components.iter().filter(|c| c["group"] == false) {
        ensure!(
            c["status"] == "operational",
            "{} is {} yet",
            c["name"],
            c["status"]
        );
    }
    Ok(())
}

/// The page as served now: (plain body, gzip body, content type, ETag), both bodies of one
/// rendering (same ETag).
async fn snapshot(addr: SocketAddr) -> anyhow::Result<(Bytes, Bytes, String, String)> {
    for _ in 0..20 {
        let (s1, h1, gz) = fetch(addr, "/", &[("accept-encoding", "gzip")]).await?;
        let (s2, h2, plain) = fetch(addr, "/", &[]).await?;
        ensure!(s1 == 200 && s2 == 200, "`/` answered {s1} and {s2}");
        ensure!(
            header_str(&h1, header::CONTENT_ENCODING) == "gzip",
            "the status page did not gzip `/` when asked to"
        );
        let etag = header_str(&h1, header::ETAG);
        if !etag.is_empty() && etag == header_str(&h2, header::ETAG) {
            let content_type = header_str(&h1, header::CONTENT_TYPE).to_owned();
            return Ok((plain, gz, content_type, etag.to_owned()));
        }
        // Re-rendered between the two: again.
    }
    bail!("the status page re-rendered `/` between every two requests; cannot copy it")
}

async fn renders(addr: SocketAddr) -> Option<u64> {
    let (_, _, body) = fetch(addr, "/metrics", &[]).await.ok()?;
    String::from_utf8_lossy(&body).lines().find_map(|l| {
        l.strip_prefix("lookout_status_page_renders_total ")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as u64)
    })
}

// ---------------------------------------------------------------------------------------------
// nginx

fn find_nginx() -> anyhow::Result<PathBuf> {
    let candidates = [PathBuf::from("/usr/sbin/nginx"), PathBuf::from("nginx")];
    for bin in candidates {
        if std::process::Command::new(&bin)
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return Ok(bin);
        }
    }
    bail!(
        "nginx is not installed (the reference this bench measures the status page against): \
         apt-get install nginx-light"
    )
}

/// nginx in the foreground, its master and workers killed if it is dropped unstopped.
struct Nginx {
    child: Child,
    addr: SocketAddr,
}

impl Nginx {
    async fn start(
        bin: &Path,
        dir: &Path,
        site: &Path,
        content_type: &str,
    ) -> anyhow::Result<Nginx> {
        let port = lookout_testkit::free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        // nginx refuses to start when its compiled-in temp paths (under /var/lib/nginx) cannot
        // be created, as for any user but root: all of them go under the directory. A module
        // built out (`--without-http_uwsgi_module`) would reject its directive.
        let built = std::process::Command::new(bin)
            .arg("-V")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .unwrap_or_default();
        let mut temp_paths = format!("    client_body_temp_path {}/body;\n", dir.display());
        for module in ["proxy", "fastcgi", "uwsgi", "scgi"] {
            if !built.contains(&format!("--without-http_{module}_module")) {
                temp_paths.push_str(&format!(
                    "    {module}_temp_path {}/{module};\n",
                    dir.display()
                ));
            }
        }
        let config = format!(
            "daemon off;
master_process on;
worker_processes auto;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
{temp_paths}    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    server_tokens off;
    gzip off;
    gzip_static on;
    gzip_vary on;
    types {{ }}
    default_type {content_type:?};
    server {{
        listen 127.0.0.1:{port};
        root {site};
        location = / {{
            try_files /index.html =404;
        }}
    }}
}}
",
            dir = dir.display(),
            site = site.display(),
        );
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config)
            .with_context(|| format!("cannot write {}", conf.display()))?;
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {} (apt-get install nginx-light)",
                    bin.display()
                )
            })?;
        let mut nginx = Nginx { child, addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                bail!("nginx exited at start ({status}): {}", log.trim());
            }
            if let Ok((200, _, _)) = fetch(addr, "/", &[]).await {
                return Ok(nginx);
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                nginx.stop().await;
                bail!("nginx did not answer on {addr} within 10 s: {}", log.trim());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A graceful stop: SIGQUIT lets the workers finish and the master reap them.
    async fn stop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .args(["-QUIT", &pid.to_string()])
                .status()
                .await;
            if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
                .await
                .is_err()
            {
                self.kill_all();
                let _ = self.child.wait().await;
            }
        }
    }

    /// The master and its workers at once: killing the master alone (what `kill_on_drop`
    /// does) would leave the workers serving.
    fn kill_all(&mut self) {
        let Some(pid) = self.child.id() else { return };
        let mut pids = vec![pid.to_string()];
        if let Ok(children) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
            pids.extend(children.split_whitespace().map(str::to_owned));
        }
        let _ = std::process::Command::new("kill")
            .arg("-KILL")
            .args(&pids)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.kill_all();
    }
}

// ---------------------------------------------------------------------------------------------
// Measuring

async fn measure(
    args: &Args,
    page: &StatusPage,
    ingest: &Ingest,
    nginx_bin: &Path,
    dir: &Path,
    cores: usize,
    nginx_slot: &mut Option<Nginx>,
) -> anyhow::Result<()> {
    let page_addr = page.addr();
    wait_ready(page_addr).await?;
    let (plain, gz, content_type, page_etag) = snapshot(page_addr).await?;

    // The static copy, readable by nginx's workers (which run as `nobody` under root).
    let site = dir.join("site");
    std::fs::create_dir_all(&site)?;
    std::fs::write(site.join("index.html"), &plain)?;
    std::fs::write(site.join("index.html.gz"), &gz)?;
    {
        use std::os::unix::fs::PermissionsExt;
        for p in [dir, site.as_path()] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))?;
        }
        for f in ["index.html", "index.html.gz"] {
            std::fs::set_permissions(site.join(f), std::fs::Permissions::from_mode(0o644))?;
        }
    }
    let nginx = nginx_slot.insert(Nginx::start(nginx_bin, dir, &site, &content_type).await?);
    let nginx_addr = nginx.addr;
    let (_, nginx_headers, nginx_gz) =
        fetch(nginx_addr, "/", &[("accept-encoding", "gzip")]).await?;
    ensure!(
        nginx_gz == gz && header_str(&nginx_headers, header::CONTENT_ENCODING) == "gzip",
        "nginx does not send the status page's gzip bytes ({} bytes, content-encoding {:?}; the page: {} bytes)",
        nginx_gz.len(),
        header_str(&nginx_headers, header::CONTENT_ENCODING),
        gz.len()
    );
    let (_, _, nginx_plain) = fetch(nginx_addr, "/", &[]).await?;
    ensure!(
        nginx_plain == plain,
        "nginx does not send the status page's plain body"
    );
    let nginx_etag = header_str(&nginx_headers, header::ETAG).to_owned();

    println!(
        "page `/`: {} bytes of HTML, {} bytes gzipped; nginx {} serves a copy of the same bytes",
        plain.len(),
        gz.len(),
        nginx_bin.display()
    );
    println!(
        "{} clients with `Accept-Encoding: gzip`, {} measured after {} warm-up, {} round{} taking turns; {} cores; ingest {} results/s throughout",
        args.concurrency,
        humantime::format_duration(args.duration),
        humantime::format_duration(args.warmup),
        args.runs,
        if args.runs == 1 { "" } else { "s" },
        cores,
        args.ingest_per_second,
    );

    let spec = |addr: SocketAddr| LoadSpec {
        addr,
        headers: vec![("accept-encoding", "gzip".to_owned())],
        path: Arc::new(|_| "/".to_owned()),
        concurrency: args.concurrency,
        warmup: args.warmup,
        duration: args.duration,
    };
    let renders_before = renders(page_addr).await;
    let ingest_before = ingest.mark();
    let mut rounds: Vec<(LoadResult, LoadResult)> = Vec::new();
    for round in 0..args.runs {
        // Turns: the page first in even rounds, nginx first in odd ones.
        let (page_r, nginx_r) = if round % 2 == 0 {
            let p = load::run(spec(page_addr)).await?;
            let n = load::run(spec(nginx_addr)).await?;
            (p, n)
        } else {
            let n = load::run(spec(nginx_addr)).await?;
            let p = load::run(spec(page_addr)).await?;
            (p, n)
        };
        println!(
            "  round {}: status page {:.0} req/s (p99 {:.2} ms), nginx {:.0} req/s (p99 {:.2} ms)",
            round + 1,
            page_r.rate(),
            page_r.ms(0.99),
            nginx_r.rate(),
            nginx_r.ms(0.99)
        );
        rounds.push((page_r, nginx_r));
    }
    let ingest_after = ingest.mark();
    let renders_after = renders(page_addr).await;

    // The 304 path, once each, for information.
    let page_304 = revalidate(page_addr, &page_etag, args).await?;
    let nginx_304 = revalidate(nginx_addr, &nginx_etag, args).await?;

    let page_all = merge(rounds.iter().map(|(p, _)| p))?;
    let nginx_all = merge(rounds.iter().map(|(_, n)| n))?;

    println!();
    println!(
        "{:<46} {:>9} {:>8} {:>8} {:>8} {:>7} {:>9}",
        "", "req/s", "p50 ms", "p99 ms", "max ms", "errors", "B/resp"
    );
    for (i, (p, n)) in rounds.iter().enumerate() {
        row(&format!("round {}: status page GET /", i + 1), p);
        row(&format!("round {}: nginx, static copy", i + 1), n);
    }
    row("all rounds: status page GET /", &page_all);
    row("all rounds: nginx, static copy", &nginx_all);
    row("304 (If-None-Match), status page", &page_304.result);
    row("304 (If-None-Match), nginx", &nginx_304.result);
    println!();

    let share = page_all.rate() / nginx_all.rate().max(1.0);
    let per_round: Vec<String> = rounds
        .iter()
        .map(|(p, n)| format!("{:.1} %", 100.0 * p.rate() / n.rate().max(1.0)))
        .collect();
    println!(
        "status page requests/s as a share of nginx's: {:.1} % (rounds: {})",
        100.0 * share,
        per_round.join(", ")
    );
    let seconds = ingest_after
        .at
        .duration_since(ingest_before.at)
        .as_secs_f64();
    let ingest_rate = (ingest_after.acked - ingest_before.acked) as f64 / seconds.max(1e-9);
    let refused = ingest_after.refused - ingest_before.refused;
    let ingest_ok = ingest_rate >= INGEST_KEPT_UP * f64::from(ingest.per_second) && refused == 0;
    println!(
        "ingest while measuring: {:.0} results/s acknowledged (asked {}), {} batch{} refused{}",
        ingest_rate,
        ingest.per_second,
        refused,
        if refused == 1 { "" } else { "es" },
        ingest
            .first_error()
            .map(|e| format!("; first: {e}"))
            .unwrap_or_default()
    );
    if let (Some(before), Some(after)) = (renders_before, renders_after) {
        println!(
            "the status page re-rendered its site {} times while measured (nginx's copy stays as taken)",
            after.saturating_sub(before)
        );
    }
    if page_304.changed > 0 {
        println!(
            "304 run: the page changed {} times under the clients, answered 200 and taken up again",
            page_304.changed
        );
    }
    let met = share >= TARGET_SHARE
        && page_all.ms(0.99) < TARGET_P99_MS
        && page_all.errors == 0
        && ingest_ok;
    println!(
        "target (>= {:.0} % of nginx's requests/s, p99 < {TARGET_P99_MS} ms, no errors, while ingest keeps >= {:.0} % of its rate): {}",
        100.0 * TARGET_SHARE,
        100.0 * INGEST_KEPT_UP,
        if met { "met" } else { "NOT met" }
    );
    Ok(())
}

fn row(name: &str, r: &LoadResult) {
    let answered = r.requests.saturating_sub(r.errors);
    println!(
        "{name:<46} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>9}",
        r.rate(),
        r.ms(0.50),
        r.ms(0.99),
        r.latency.max() as f64 / 1000.0,
        r.errors,
        r.bytes.checked_div(answered).unwrap_or(0),
    );
}

/// The rounds as one: their requests over their summed time, their latencies together.
fn merge<'a>(results: impl Iterator<Item = &'a LoadResult>) -> anyhow::Result<LoadResult> {
    let mut total = LoadResult {
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        bytes: 0,
        latency: Histogram::new_with_bounds(1, 60_000_000, 3)?,
    };
    for r in results {
        total.requests += r.requests;
        total.errors += r.errors;
        total.elapsed += r.elapsed;
        total.bytes += r.bytes;
        total.latency.add(&r.latency)?;
    }
    Ok(total)
}

struct Revalidated {
    result: LoadResult,
    /// 200s: the page changed under a client, which took up the new ETag.
    changed: u64,
}

/// Closed-loop clients as in `load.rs`, each sending `If-None-Match` with the ETag it holds:
/// 304s are the work measured; a 200 (the page re-rendered) gives the client the new ETag.
async fn revalidate(addr: SocketAddr, etag: &str, args: &Args) -> anyhow::Result<Revalidated> {
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|_| {
            tokio::spawn(revalidating_client(
                addr,
                etag.to_owned(),
                measuring.clone(),
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(args.warmup).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(args.duration).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut total = Revalidated {
        result: LoadResult {
            requests: 0,
            errors: 0,
            elapsed,
            bytes: 0,
            latency: Histogram::new_with_bounds(1, 60_000_000, 3)?,
        },
        changed: 0,
    };
    for t in tasks {
        let r = t.await??;
        total.result.requests += r.result.requests;
        total.result.errors += r.result.errors;
        total.result.latency.add(&r.result.latency)?;
        total.changed += r.changed;
    }
    Ok(total)
}

async fn revalidating_client(
    addr: SocketAddr,
    mut etag: String,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Revalidated> {
    let mut out = Revalidated {
        result: LoadResult {
            requests: 0,
            errors: 0,
            elapsed: Duration::ZERO,
            bytes: 0,
            latency: Histogram::new_with_bounds(1, 60_000_000, 3)?,
        },
        changed: 0,
    };
    'connect: while !stop.load(Ordering::Relaxed) {
        let stream = TcpStream::connect(addr)
            .await
            .context("the 304 client could not connect")?;
        stream.set_nodelay(true)?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        while !stop.load(Ordering::Relaxed) {
            let req = hyper::Request::get("/")
                .header(header::HOST, addr.to_string())
                .header(header::ACCEPT_ENCODING, "gzip")
                .header(header::IF_NONE_MATCH, etag.as_str())
                .body(Empty::<Bytes>::new())?;
            let started = Instant::now();
            let outcome = async {
                let response = sender.send_request(req).await?;
                let status = response.status().as_u16();
                let new_etag = header_str(response.headers(), header::ETAG).to_owned();
                response.into_body().collect().await?;
                Ok::<_, hyper::Error>((status, new_etag))
            }
            .await;
            let took = started.elapsed();
            let measured = measuring.load(Ordering::Relaxed);
            match outcome {
                Ok((304, _)) if measured => {
                    out.result.requests += 1;
                    let _ = out.result.latency.record(took.as_micros() as u64);
                }
                Ok((200, new_etag)) if !new_etag.is_empty() => {
                    etag = new_etag;
                    if measured {
                        out.changed += 1;
                    }
                }
                Ok(_) if !measured => {}
                Ok(_) => {
                    out.result.requests += 1;
                    out.result.errors += 1;
                }
                Err(_) => {
                    if measured {
                        out.result.requests += 1;
                        out.result.errors += 1;
                    }
                    continue 'connect;
                }
            }
        }
    }
    Ok(out)
}

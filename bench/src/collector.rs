//! `lookout bench collector`: the collector as it runs (`lookout collector`, a child process)
//! under agents' batches, then with a 90-day history of 500 checks x 3 regions every 10 s.
//!
//! Reports: durable ingest (results acknowledged per second over HTTP, batches of 500 as the
//! agents send them) beside the disk's own limit (synced 4 KiB writes per second in the same
//! directory); the time to answer availability and p99 over 90 days for every check (one
//! `GET /api/v1/checks?window=90d`) beside what computing the same from raw results would cost;
//! the collector's memory (resident, peak) and disk for that history, and what each further
//! day of raw results costs. The history is written through the store (89 days of rollups,
//! then one day of raw results rolled up by the collector's own pass): ingesting 1.2 billion
//! results over HTTP would take hours and prove nothing more.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lookout_api::client::{CollectorClient, Select, Window};
use lookout_collector::rollup::{DAY_US, floor_to};
use lookout_collector::store::{CheckRollup, Coverage, ResultStore, StoreConfig};
use lookout_collector::{CheckInfo, RollupSettings, Rollups};
use lookout_model::latency::Accumulator;
use lookout_model::probe::{Failure, FailureKind, Outcome, Phases, ProbeResult, StepResult};
use lookout_model::secret::Secret;
use lookout_model::sla::{self, MINUTE_US, Observation, Rules, Tally};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::probes::stop;

#[derive(clap::Args)]
pub struct Args {
    /// Checks in the history (each from 3 regions every 10 s).
    #[arg(long, default_value_t = 500)]
    checks: usize,
    /// Days of history.
    #[arg(long, default_value_t = 90)]
    days: i64,
    /// Results posted in the ingest run.
    #[arg(long, default_value_t = 600_000)]
    results: usize,
    /// Concurrent connections posting batches.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// How many times the 90-day question is asked (the median is reported).
    #[arg(long, default_value_t = 21)]
    queries: usize,
    /// Where the stores are built (a directory on the disk to measure); a temporary one by default.
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub(crate) const TOKEN: &str = "bench-token";
const REGIONS: [&str; 3] = ["eu-west", "us-east", "ap-south"];
const BATCH: usize = 500;
const INTERVAL_US: i64 = 10_000_000;

fn check_name(i: usize) -> String {
    format!("check-{i:03}")
}

/// `extra`: more top-level sections (`cluster:` for the replicas).
pub(crate) fn config(dir: &Path, port: u16, checks: usize, extra: &str) -> String {
    let mut c = format!(
        "data_dir: {}\nplatform:\n  admin_token: x\n  gateway:\n    api_keys: [k]\ncollector:\n  listen: 127.0.0.1:{port}\n  token: {TOKEN}\n  raw_retention: 1d\nlog:\n  level: warn\n{extra}probes:\n  regions: [{}]\nchecks:\n",
        dir.display(),
        REGIONS.join(", ")
    );
    for i in 0..checks {
        c.push_str(&format!(
            "  - name: {}\n    interval: 10s\n    steps:\n      - url: http://127.0.0.1:1/\n",
            check_name(i)
        ));
    }
    c
}

fn result(check: usize, region: usize, agent: &str, seq: u64, start: i64, n: u64) -> ProbeResult {
    // A spread of latencies, and a failure now and then.
    let duration = 40_000 + (n * 7_919) % 300_000;
    let ok = !n.is_multiple_of(997);
    ProbeResult {
        check: check_name(check),
        region: REGIONS[region].into(),
        agent: agent.into(),
        seq,
        started_at_us: start,
        outcome: if ok {
            Outcome::Ok
        } else {
            Outcome::Fail(Failure {
                kind: FailureKind::Timeout,
                message: "timed out waiting for the first byte after 5 s".into(),
                step: Some(0),
            })
        },
        duration_us: duration,
        steps: vec![StepResult {
            name: "search".into(),
            status: ok.then_some(200),
            bytes: 4_321,
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

pub(crate) struct Running {
    pub(crate) child: Child,
    pub(crate) url: String,
    pub(crate) pid: u32,
}

async fn start_collector(dir: &Path, checks: usize) -> anyhow::Result<(Running, Duration)> {
    let port = lookout_testkit::free_port();
    let path = dir.join("bench.yaml");
    std::fs::write(&path, config(dir, port, checks, ""))?;
    start_collector_with(&path, &[]).await
}

/// `lookout collector --config CONFIG ARGS...`, once it says where it listens.
pub(crate) async fn start_collector_with(
    path: &Path,
    args: &[String],
) -> anyhow::Result<(Running, Duration)> {
    let t0 = Instant::now();
    let mut child = Command::new(lookout::lookout_exe()?)
        .arg("collector")
        .arg("--config")
        .arg(path)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("collector stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        match tokio::time::timeout(Duration::from_secs(300), lines.next_line()).await {
            Ok(Ok(Some(line))) => {
                if let Some(url) = line.strip_prefix("collector ") {
                    break url.trim().to_owned();
                }
            }
            _ => bail!("the collector did not start"),
        }
    };
    let pid = child.id().context("collector pid")?;
    Ok((Running { child, url, pid }, t0.elapsed()))
}

/// (resident, peak resident) in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("collector.db"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Synced 4 KiB writes per second: the most commits per second this disk allows.
fn fsyncs_per_second(dir: &Path) -> anyhow::Result<f64> {
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path)?;
    let block = [0x5au8; 4096];
    let t0 = Instant::now();
    let mut n = 0u32;
    while t0.elapsed() < Duration::from_secs(2) {
        f.write_all(&block)?;
        f.sync_data()?;
        n += 1;
    }
    let rate = f64::from(n) / t0.elapsed().as_secs_f64();
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(rate)
}

/// Batches as agents send them: one agent's results, in order, 500 at a time, as JSON.
pub(crate) fn agent_batches(results: usize, checks: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    let now = chrono::Utc::now().timestamp_micros();
    let mut bodies = Vec::new();
    let mut n = 0u64;
    let per_agent = 20_000;
    'outer: for agent_no in 0.. {
        let region = agent_no % REGIONS.len();
        let agent = format!("{}-bench-{agent_no}", REGIONS[region]);
        let mut seq = 0u64;
        while seq < per_agent {
            let mut batch = Vec::with_capacity(BATCH);
            for _ in 0..BATCH {
                seq += 1;
                n += 1;
                let check = (n as usize) % checks;
                let start = now - 3_600_000_000 + (seq as i64) * 100_000;
                batch.push(result(check, region, &agent, seq, start, n));
            }
            bodies.push(serde_json::to_vec(
                &serde_json::json!({ "results": batch }),
            )?);
            if bodies.len() * BATCH >= results {
                break 'outer;
            }
        }
    }
    Ok(bodies)
}

/// Posts every body from `clients` connections, each to the next of `urls` in turn; answers
/// how many results were acknowledged as new, and how long it took.
pub(crate) async fn post_all(
    urls: &[String],
    bodies: Vec<Vec<u8>>,
    clients: usize,
) -> anyhow::Result<(usize, f64)> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    let queue = Arc::new(std::sync::Mutex::new(bodies));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let url = format!("{}/api/v1/results", urls[client % urls.len()]);
        let (http, queue) = (http.clone(), queue.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = 0usize;
            loop {
                let body = match queue.lock() {
                    Ok(mut q) => q.pop(),
                    Err(_) => None,
                };
                let Some(body) = body else { break };
                let r = http
                    .post(&url)
                    .bearer_auth(TOKEN)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                anyhow::ensure!(
                    r.status().is_success(),
                    "a batch was refused: {}",
                    r.status()
                );
                let ack: serde_json::Value = r.json().await?;
                acked += ack["accepted"].as_u64().unwrap_or(0) as usize;
            }
            anyhow::Ok(acked)
        }));
    }
    let mut acked = 0;
    for t in tasks {
        acked += t.await??;
    }
    Ok((acked, t0.elapsed().as_secs_f64()))
}

async fn ingest_run(dir: &Path, args: &Args) -> anyhow::Result<()> {
    let bodies = agent_batches(args.results, args.checks)?;
    let (mut c, _) = start_collector(dir, args.checks).await?;
    let (acked, elapsed) = post_all(std::slice::from_ref(&c.url), bodies, args.clients).await?;
    let cpu = super::probes::cpu_seconds(c.pid)?;
    let (rss, peak) = memory_mib(c.pid);
    stop(std::mem::replace(
        &mut c.child,
        Command::new("true").spawn()?,
    ))
    .await;
    let syncs = fsyncs_per_second(dir)?;
    let rate = acked as f64 / elapsed;
    println!(
        "ingest: {acked} results in batches of {BATCH} from {} connections",
        args.clients
    );
    println!(
        "  lookout collector   {rate:>10.0} results/s acknowledged durably (WAL synced per commit); {cpu:.1} CPU s; memory {rss:.0} MiB (peak {peak:.0})"
    );
    println!(
        "  reference: the disk {syncs:>10.0} synced writes/s: {:.0} batches/s of {BATCH} at most if each had its own sync",
        syncs
    );
    println!(
        "  target >= 100000 results/s: {}",
        if rate >= 100_000.0 { "met" } else { "NOT met" }
    );
    Ok(())
}

/// 89 days of rollups for every check, as passes would have written them.
fn write_history(store: &dyn ResultStore, args: &Args, from: i64, to: i64) -> anyhow::Result<()> {
    let per_region_day = DAY_US / INTERVAL_US;
    let mut rollups = Vec::new();
    for i in 0..args.checks {
        let mut bad = Vec::new();
        // Three outages of 2 to 10 minutes somewhere in the history.
        for k in 0..3i64 {
            let day = (i as i64 * 7 + k * 31) % args.days.max(2);
            let at = floor_to(
                from + day * DAY_US + (i as i64 * 977 % 1_400) * MINUTE_US,
                MINUTE_US,
            );
            for m in 0..(2 + (i as i64 + k) % 9) {
                let minute = at + m * MINUTE_US;
                if minute + MINUTE_US <= to {
                    bad.push((
                        minute,
                        Tally {
                            window_us: MINUTE_US,
                            down_us: MINUTE_US,
                            ..Tally::default()
                        },
                    ));
                }
            }
        }
        bad.sort_by_key(|(m, _)| *m);
        bad.dedup_by_key(|(m, _)| *m);
        let mut days = Vec::new();
        let mut day = floor_to(from, DAY_US);
        while day < to {
            for region in REGIONS {
                let mut acc = Accumulator::new();
                for v in 0..40u64 {
                    acc.record_n(40_000 + v * 7_500, (per_region_day as u64) / 40);
                }
                days.push((region.to_string(), day, acc.to_sparse()));
            }
            day += DAY_US;
        }
        rollups.push(CheckRollup {
            check: check_name(i),
            coverage: Some(Coverage {
                covered_from: from,
                frontier: to,
                dirty_from: None,
            }),
            minutes: (from, to),
            bad_minutes: bad,
            hours: Vec::new(),
            days,
        });
    }
    store.save_rollups(0, &rollups)?;
    Ok(())
}

fn write_raw_day(
    store: &dyn ResultStore,
    args: &Args,
    from: i64,
    to: i64,
) -> anyhow::Result<usize> {
    let mut batch = Vec::with_capacity(5_000);
    let mut total = 0;
    let mut seq = [0u64; REGIONS.len()];
    let mut t = from;
    let mut n = 0u64;
    while t < to {
        for i in 0..args.checks {
            for (r, _) in REGIONS.iter().enumerate() {
                let k = r;
                seq[k] += 1;
                n += 1;
                // Each check's phase within the interval, as the probes spread them.
                let start = t + (i as i64 * 19_997) % INTERVAL_US + r as i64 * 1_000;
                // One agent per region, as `lookout up` runs them.
                let agent = format!("{}-1", REGIONS[r]);
                batch.push(result(i, r, &agent, seq[k], start, n));
                if batch.len() == 5_000 {
                    store.insert(&batch)?;
                    total += batch.len();
                    batch.clear();
                }
            }
        }
        t += INTERVAL_US;
    }
    if !batch.is_empty() {
        store.insert(&batch)?;
        total += batch.len();
    }
    Ok(total)
}

async fn history_run(dir: &Path, args: &Args) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp_micros();
    let start = floor_to(now - args.days * DAY_US, DAY_US);
    let raw_from = floor_to(now - DAY_US, MINUTE_US);
    let path = dir.join("collector.db");
    let store = StoreConfig::Sqlite { path: path.clone() }.open()?;
    let t0 = Instant::now();
    write_history(store.as_ref(), args, start, raw_from)?;
    let rollup_bytes = dir_bytes(dir);
    println!(
        "history: {} checks x {} regions, {} days of rollups written in {:.1} s: {:.1} MiB",
        args.checks,
        REGIONS.len(),
        args.days - 1,
        t0.elapsed().as_secs_f64(),
        rollup_bytes as f64 / 1048576.0
    );
    let t0 = Instant::now();
    let raw = write_raw_day(store.as_ref(), args, raw_from, now)?;
    let raw_secs = t0.elapsed().as_secs_f64();
    let with_raw = dir_bytes(dir);
    println!(
        "  one day of raw results: {raw} stored in {raw_secs:.1} s ({:.0}/s straight into the store), {:.1} MiB ({:.0} bytes each)",
        raw as f64 / raw_secs,
        (with_raw - rollup_bytes) as f64 / 1048576.0,
        (with_raw - rollup_bytes) as f64 / raw as f64
    );
    // The collector's own pass rolls the raw day up, as it would have minute by minute.
    let known: BTreeMap<String, CheckInfo> = (0..args.checks)
        .map(|i| {
            (
                check_name(i),
                CheckInfo {
                    regions: REGIONS.iter().map(|r| r.to_string()).collect(),
                    interval_us: INTERVAL_US,
                    timeout_us: 10_000_000,
                    ..CheckInfo::unknown()
                },
            )
        })
        .collect();
    let settings = RollupSettings {
        raw_retention_us: DAY_US,
        ..Default::default()
    };
    let t0 = Instant::now();
    let rollups = Rollups::open(
        store.clone() as Arc<dyn ResultStore>,
        known.clone(),
        settings,
        now,
    )?;
    let report = rollups.pass(now)?;
    println!(
        "  the rollup pass over that day: {} checks, {} minutes in {:.1} s",
        report.checks,
        report.minutes,
        t0.elapsed().as_secs_f64()
    );
    // Reference: the same answer from raw results, for the one day kept, then times the days.
    let t0 = Instant::now();
    let mut by_check: BTreeMap<String, Vec<Observation>> = BTreeMap::new();
    for (check, o) in store.observations_all(raw_from - 30_000_000, now)? {
        by_check.entry(check).or_default().push(Observation {
            region: REGIONS.iter().position(|r| *r == o.region).unwrap_or(0),
            start_us: o.start_us,
            ok: o.ok,
        });
    }
    for (check, obs) in &by_check {
        if let Some(info) = known.get(check) {
            let rules = Rules::new(3, info.interval_us, info.timeout_us);
            std::hint::black_box(sla::tally(
                &rules,
                obs,
                &sla::Spans::default(),
                raw_from,
                now,
            ));
        }
    }
    let raw_day = t0.elapsed().as_secs_f64();
    drop(rollups);
    drop(store);
    let disk = dir_bytes(dir);

    let (mut c, started) = start_collector(dir, args.checks).await?;
    let client = CollectorClient::new(url::Url::parse(&c.url)?, Secret::new(TOKEN))?;
    let mut times = Vec::new();
    let mut answered = 0;
    let mut worst = 1.0f64;
    for _ in 0..args.queries.max(1) {
        let t0 = Instant::now();
        let list = client
            .figures_all(
                Window::Last(Duration::from_secs(90 * 86_400)),
                &Select::default(),
            )
            .await?;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        answered = list
            .checks
            .iter()
            .filter(|c| c.availability.is_some() && c.latency.p99_ms.is_some())
            .count();
        worst = list
            .checks
            .first()
            .and_then(|c| c.availability)
            .unwrap_or(1.0);
    }
    let (rss, peak) = memory_mib(c.pid);
    stop(std::mem::replace(
        &mut c.child,
        Command::new("true").spawn()?,
    ))
    .await;
    let first = times[0];
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "query: availability + p99 over 90 days for every check (GET /api/v1/checks?window=90d)"
    );
    println!(
        "  lookout collector   {answered} checks answered; first {first:.1} ms, median {median:.1} ms, max {:.1} ms (worst availability {worst:.6})",
        times.last().copied().unwrap_or(0.0)
    );
    println!(
        "  reference: from raw results, one day for every check took {:.0} ms: 90 days would take about {:.1} s",
        raw_day * 1e3,
        raw_day * args.days as f64
    );
    println!(
        "  collector start with this history: {:.1} s; memory {rss:.0} MiB resident (peak {peak:.0}); disk {:.0} MiB ({:.0} MiB rollups, {:.0} MiB per day of raw results)",
        started.as_secs_f64(),
        disk as f64 / 1048576.0,
        rollup_bytes as f64 / 1048576.0,
        (with_raw - rollup_bytes) as f64 / 1048576.0
    );
    println!(
        "  targets: all checks within 50 ms: {}; at most 256 MiB: {}; at most 2 GiB of disk: {}",
        if median <= 50.0 { "met" } else { "NOT met" },
        if peak <= 256.0 { "met" } else { "NOT met" },
        if disk <= 2 << 30 { "met" } else { "NOT met" }
    );
    Ok(())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir_in(args.dir.clone().unwrap_or_else(std::env::temp_dir))?;
    let ingest_dir = tmp.path().join("ingest");
    let history_dir = tmp.path().join("history");
    std::fs::create_dir_all(&ingest_dir)?;
    std::fs::create_dir_all(&history_dir)?;
    ingest_run(&ingest_dir, &args).await?;
    history_run(&history_dir, &args).await
}

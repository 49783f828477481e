//! `lookout bench collector`: the collector as it runs (`lookout collector`, a child process)
//! under agents' batches, then with a 90-day history of 500 checks x 3 regions every 10 s, then
//! the same at 500, 1,000 and 5,000 checks x 5 regions (the scale curve).
//!
//! Reports: durable ingest (results acknowledged per second over HTTP, batches of 500 as the
//! agents send them) beside the disk's own limit (synced 4 KiB writes per second in the same
//! directory); bytes on disk per raw result as rows (the first hour, before any compaction)
//! and in blocks (each further hour, once compaction recycles the rows' pages), measured in the
//! same file; how fast results are compacted beside how fast they arrive; the time to answer
//! availability and p99 over 90 days for every check (one `GET /api/v1/checks?window=90d`)
//! beside what computing the same from raw results would cost; the collector's start-up time,
//! memory (resident, peak) and disk with that history. The history is written through the
//! store (89 days of rollups, then hours of raw results rolled up and compacted hour by hour by
//! the collector's own code): ingesting a billion results over HTTP would take hours and prove
//! nothing more.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lookout_api::client::{CollectorClient, Select, Window};
use lookout_collector::rollup::{DAY_US, floor_to};
use lookout_collector::store::{CheckRollup, Coverage, ResultStore, SqliteStore};
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
    /// Checks of the scale curve's points (each from 5 regions every 10 s); `--skip scale`
    /// leaves the curve out.
    #[arg(long, value_delimiter = ',', default_values_t = [500, 1_000, 5_000])]
    scale: Vec<usize>,
    /// Hours of raw results at each point of the scale curve (at least 3).
    #[arg(long, default_value_t = 3)]
    scale_hours: i64,
    /// Runs left out (while working on another): `ingest`, `today`, `scale`.
    #[arg(long, value_delimiter = ',')]
    skip: Vec<Part>,
    /// Where the stores are built (a directory on the disk to measure); a temporary one by default.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keeps the stores and each collector's config (`bench.yaml`) after the run, to start a
    /// collector on them again.
    #[arg(long)]
    keep: bool,
}

/// The bench's directory: removed after the run unless `--keep`.
enum Kept {
    Temp(tempfile::TempDir),
    Dir(PathBuf),
}

impl Kept {
    fn path(&self) -> &Path {
        match self {
            Kept::Temp(t) => t.path(),
            Kept::Dir(d) => d,
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
enum Part {
    Ingest,
    Today,
    Scale,
}

pub(crate) const TOKEN: &str = "bench-token";
/// The first three are the bench's shape of today; the scale curve runs from all five.
const REGIONS: [&str; 5] = ["eu-west", "us-east", "ap-south", "sa-east", "me-central"];
const TODAY_REGIONS: usize = 3;
const BATCH: usize = 500;
const INTERVAL_US: i64 = 10_000_000;
const HOUR_US: i64 = 3_600_000_000;

fn check_name(i: usize) -> String {
    format!("check-{i:03}")
}

/// `extra`: more top-level sections (`cluster:` for the replicas).
pub(crate) fn config(dir: &Path, port: u16, checks: usize, extra: &str) -> String {
    config_in(dir, port, checks, &REGIONS[..TODAY_REGIONS], extra)
}

fn config_in(dir: &Path, port: u16, checks: usize, regions: &[&str], extra: &str) -> String {
    let mut c = format!(
        "data_dir: {}\nplatform:\n  admin_token: x\n  gateway:\n    api_keys: [k]\ncollector:\n  listen: 127.0.0.1:{port}\n  token: {TOKEN}\n  raw_retention: 1d\nlog:\n  level: warn\n{extra}probes:\n  regions: [{}]\nchecks:\n",
        dir.display(),
        regions.join(", ")
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

async fn start_collector(
    dir: &Path,
    checks: usize,
    regions: &[&str],
) -> anyhow::Result<(Running, Duration)> {
    let port = lookout_testkit::free_port();
    let path = dir.join("bench.yaml");
    std::fs::write(&path, config_in(dir, port, checks, regions, ""))?;
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
        let region = agent_no % TODAY_REGIONS;
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
    wire_report(&bodies)?;
    let (mut c, _) = start_collector(dir, args.checks, &REGIONS[..TODAY_REGIONS]).await?;
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

/// Agents' batches as they go on the wire (JSON) beside the same compressed with zstd at
/// level 3, the blocks' codec: bytes per result, and the CPU it costs each side.
fn wire_report(bodies: &[Vec<u8>]) -> anyhow::Result<()> {
    let sample = &bodies[..bodies.len().min(200)];
    let results = (sample.len() * BATCH) as f64;
    let json: usize = sample.iter().map(Vec::len).sum();
    let t0 = Instant::now();
    let packed = sample
        .iter()
        .map(|b| zstd::bulk::compress(b, 3))
        .collect::<Result<Vec<_>, _>>()?;
    let pack_secs = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    for (p, b) in packed.iter().zip(sample) {
        std::hint::black_box(zstd::bulk::decompress(p, b.len())?);
    }
    let unpack_secs = t0.elapsed().as_secs_f64();
    let zstd: usize = packed.iter().map(Vec::len).sum();
    println!("wire: an agent's batch of {BATCH} results");
    println!(
        "  as JSON (today)      {:>6.1} bytes per result",
        json as f64 / results
    );
    println!(
        "  zstd level 3         {:>6.1} bytes per result ({:.0}x smaller); {:.2} us to compress and {:.2} us to decompress per result",
        zstd as f64 / results,
        json as f64 / zstd as f64,
        pack_secs * 1e6 / results,
        unpack_secs * 1e6 / results
    );
    Ok(())
}

/// 89 days of rollups for every check, as passes would have written them.
fn write_history(
    store: &dyn ResultStore,
    shape: Shape,
    days: i64,
    from: i64,
    to: i64,
) -> anyhow::Result<()> {
    let per_region_day = DAY_US / INTERVAL_US;
    let mut rollups = Vec::new();
    for i in 0..shape.checks {
        let mut bad = Vec::new();
        // Three outages of 2 to 10 minutes somewhere in the history.
        for k in 0..3i64 {
            let day = (i as i64 * 7 + k * 31) % days.max(2);
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
            for region in &REGIONS[..shape.regions] {
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

/// One hour of raw results of every check from every region, as agents' batches of 500 (one
/// agent per region, as `lookout up` runs them), ten batches a commit as the collector's group
/// commit takes them under load; answers how many.
fn write_raw_hour(
    store: &dyn ResultStore,
    shape: Shape,
    from: i64,
    seq: &mut [u64],
    n: &mut u64,
) -> anyhow::Result<usize> {
    const PER_COMMIT: usize = 10;
    let mut batches: Vec<Vec<ProbeResult>> = vec![Vec::with_capacity(BATCH)];
    let mut total = 0;
    let mut commit = |batches: &mut Vec<Vec<ProbeResult>>| -> anyhow::Result<()> {
        let refs: Vec<&[ProbeResult]> = batches.iter().map(Vec::as_slice).collect();
        store.insert_many(&refs)?;
        total += refs.iter().map(|b| b.len()).sum::<usize>();
        batches.clear();
        batches.push(Vec::with_capacity(BATCH));
        Ok(())
    };
    let mut t = from;
    while t < from + HOUR_US {
        for i in 0..shape.checks {
            for r in 0..shape.regions {
                seq[r] += 1;
                *n += 1;
                // Each check's phase within the interval, as the probes spread them, and the
                // scheduler's jitter of up to 2 ms, which the blocks have to keep exactly.
                let jitter = (*n).wrapping_mul(2_654_435_761) % 2_000;
                let start =
                    t + (i as i64 * 19_997) % INTERVAL_US + r as i64 * 1_000 + jitter as i64;
                let agent = format!("{}-1", REGIONS[r]);
                let last = batches.len() - 1;
                batches[last].push(result(i, r, &agent, seq[r], start, *n));
                if batches[last].len() == BATCH {
                    if batches.len() == PER_COMMIT {
                        commit(&mut batches)?;
                    } else {
                        batches.push(Vec::with_capacity(BATCH));
                    }
                }
            }
        }
        t += INTERVAL_US;
    }
    commit(&mut batches)?;
    Ok(total)
}

#[derive(Clone, Copy)]
struct Shape {
    checks: usize,
    regions: usize,
    raw_hours: i64,
}

/// What one history run measured.
struct Figures {
    shape: Shape,
    raw: usize,
    /// Bytes on disk per raw result kept as rows (the first hour, before any compaction).
    row_bytes: f64,
    /// ... and once compacted: what each further hour adds, rows recycled.
    block_bytes: f64,
    /// Bytes on disk per raw result over the whole run, the hour still in rows included.
    all_bytes: f64,
    rollup_mib: f64,
    disk_mib: f64,
    insert_rate: f64,
    compact_rate: f64,
    answer_first_ms: f64,
    answer_median_ms: f64,
    /// The same, the body read but not parsed.
    served_median_ms: f64,
    /// The peak after as many answers again (a busy collector's).
    peak_after_mib: f64,
    answered: usize,
    rss_mib: f64,
    peak_mib: f64,
    start_secs: f64,
    raw_day_secs: f64,
    /// A pass a minute over the last hour, as the collector runs them.
    minute_pass_median_ms: f64,
    minute_pass_max_ms: f64,
}

async fn history_run(dir: &Path, shape: Shape, args: &Args) -> anyhow::Result<Figures> {
    anyhow::ensure!(
        shape.raw_hours >= 3,
        "at least 3 hours of raw results: the third is the first whose rows reuse the pages compacted"
    );
    let region_names = &REGIONS[..shape.regions];
    let regions: Vec<String> = region_names.iter().map(|r| r.to_string()).collect();
    let now = chrono::Utc::now().timestamp_micros();
    let start = floor_to(now - args.days * DAY_US, DAY_US);
    let raw_from = floor_to(now, HOUR_US) - shape.raw_hours * HOUR_US;
    let raw_to = raw_from + shape.raw_hours * HOUR_US;
    let path = dir.join("collector.db");
    let sqlite = Arc::new(SqliteStore::open(&path)?);
    let store: Arc<dyn ResultStore> = sqlite.clone();
    // What the file holds, the write-ahead log copied in: the log's length at a given moment
    // says nothing about the format.
    let bytes = || -> anyhow::Result<u64> {
        // The store's own checkpoint thread may hold the log at that moment: a log left
        // uncopied was counted as well (rows once read 180 bytes a result for 101). Its own
        // checkpoint of the 900 MB that 5,000 checks' history writes took over 2 s on a slow
        // day of this disk, and the run ended there.
        for _ in 0..6_000 {
            if sqlite.checkpoint()? {
                return Ok(dir_bytes(dir));
            }
            // A measurement between runs, not a runtime worker's task.
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(Duration::from_millis(10));
        }
        bail!("the store's log could not be checkpointed in 60 s to measure the file")
    };
    let t0 = Instant::now();
    write_history(store.as_ref(), shape, args.days, start, raw_from)?;
    let rollup_bytes = bytes()?;
    println!(
        "history: {} checks x {} regions, {} days of rollups written in {:.1} s: {:.1} MiB",
        shape.checks,
        shape.regions,
        args.days - 1,
        t0.elapsed().as_secs_f64(),
        rollup_bytes as f64 / 1048576.0
    );
    // The collector's own rollup pass and compaction, hour by hour, as it runs them.
    let known: BTreeMap<String, CheckInfo> = (0..shape.checks)
        .map(|i| {
            (
                check_name(i),
                CheckInfo {
                    regions: regions.clone(),
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
    let rollups = Rollups::open(store.clone(), known.clone(), settings, raw_from)?;
    let (mut seq, mut n) = (vec![0u64; shape.regions], 0u64);
    let (mut raw, mut insert_secs, mut compact_secs, mut moved) = (0, 0.0, 0.0, 0);
    let (mut row_bytes, mut steady_from) = (0.0, None);
    let mut pass_secs = 0.0;
    let mut minute_passes = Vec::new();
    for h in 0..shape.raw_hours {
        let hour = raw_from + h * HOUR_US;
        let before = bytes()?;
        let t0 = Instant::now();
        let written = write_raw_hour(store.as_ref(), shape, hour, &mut seq, &mut n)?;
        insert_secs += t0.elapsed().as_secs_f64();
        raw += written;
        if h == 0 {
            row_bytes = (bytes()? - before) as f64 / written as f64;
        }
        if h + 1 < shape.raw_hours {
            let t0 = Instant::now();
            rollups.pass(hour + HOUR_US)?;
            pass_secs += t0.elapsed().as_secs_f64();
        } else {
            // The last hour as the collector rolls it up: a pass a minute, each of which must
            // read its minutes and not the hour so far.
            for m in 1..=60 {
                let t0 = Instant::now();
                rollups.pass(hour + m * MINUTE_US)?;
                let took = t0.elapsed().as_secs_f64();
                pass_secs += took;
                minute_passes.push(took * 1e3);
            }
        }
        // The hour before this one is compacted once this one has ended, as the collector
        // does ten minutes after.
        let t0 = Instant::now();
        moved += store.compact(hour)?;
        compact_secs += t0.elapsed().as_secs_f64();
        if h == 1 {
            steady_from = Some((bytes()?, raw));
        }
    }
    let with_raw = bytes()?;
    let (steady_bytes, steady_raw) = steady_from.unwrap_or((rollup_bytes, 0));
    let block_bytes = (with_raw - steady_bytes) as f64 / (raw - steady_raw).max(1) as f64;
    let all_bytes = (with_raw - rollup_bytes) as f64 / raw as f64;
    println!(
        "  {} hours of raw results: {raw} stored ({:.0}/s straight into the store), rolled up hour by hour in {pass_secs:.1} s, {moved} compacted ({:.0}/s)",
        shape.raw_hours,
        raw as f64 / insert_secs,
        moved as f64 / compact_secs.max(1e-9)
    );
    // Reference: the same answer from raw results, for the hours kept, then times the days.
    let t0 = Instant::now();
    let mut by_check: BTreeMap<String, Vec<Observation>> = BTreeMap::new();
    for (check, o) in store.observations_all(raw_from, raw_to)? {
        by_check.entry(check).or_default().push(Observation {
            region: REGIONS.iter().position(|r| *r == o.region).unwrap_or(0),
            start_us: o.start_us,
            ok: o.verdict.is_up(),
        });
    }
    for (check, obs) in &by_check {
        if let Some(info) = known.get(check) {
            let rules = Rules::new(shape.regions, info.interval_us, info.timeout_us);
            std::hint::black_box(sla::tally(
                &rules,
                obs,
                &sla::Spans::default(),
                raw_from,
                raw_to,
            ));
        }
    }
    let raw_day_secs = t0.elapsed().as_secs_f64() * 24.0 / shape.raw_hours as f64;
    minute_passes.sort_by(f64::total_cmp);
    drop(rollups);
    drop(store);
    drop(sqlite);
    let disk = dir_bytes(dir);

    let (mut c, started) = start_collector(dir, shape.checks, region_names).await?;
    let client = CollectorClient::new(url::Url::parse(&c.url)?, Secret::new(TOKEN))?;
    let mut times = Vec::new();
    let mut answered = 0;
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
    }
    // Memory as it was measured before the unparsed answers below were added to the run.
    let (rss, peak) = memory_mib(c.pid);
    // The same question with the body only read, not parsed: what the collector takes to
    // answer, apart from what the client takes to read a 5 MB answer into its types.
    let http = reqwest::Client::new();
    let mut served = Vec::new();
    for _ in 0..args.queries.max(1) {
        let t0 = Instant::now();
        let body = http
            .get(format!("{}/api/v1/checks?window=90d", c.url))
            .bearer_auth(TOKEN)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        served.push(t0.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(body);
    }
    served.sort_by(f64::total_cmp);
    let (_, peak_after) = memory_mib(c.pid);
    stop(std::mem::replace(
        &mut c.child,
        Command::new("true").spawn()?,
    ))
    .await;
    let first = times[0];
    times.sort_by(f64::total_cmp);
    Ok(Figures {
        shape,
        raw,
        row_bytes,
        block_bytes,
        all_bytes,
        rollup_mib: rollup_bytes as f64 / 1048576.0,
        disk_mib: disk as f64 / 1048576.0,
        insert_rate: raw as f64 / insert_secs,
        compact_rate: moved as f64 / compact_secs.max(1e-9),
        answer_first_ms: first,
        answer_median_ms: times[times.len() / 2],
        served_median_ms: served[served.len() / 2],
        peak_after_mib: peak_after,
        answered,
        rss_mib: rss,
        peak_mib: peak,
        start_secs: started.as_secs_f64(),
        raw_day_secs,
        minute_pass_median_ms: minute_passes
            .get(minute_passes.len() / 2)
            .copied()
            .unwrap_or(0.0),
        minute_pass_max_ms: minute_passes.last().copied().unwrap_or(0.0),
    })
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn report(f: &Figures) {
    let Shape {
        checks, regions, ..
    } = f.shape;
    println!("raw results on disk, {checks} checks x {regions} regions every 10 s:");
    println!(
        "  as rows (the format before blocks, the first hour)   {:>6.1} bytes each",
        f.row_bytes
    );
    println!(
        "  in blocks (each further hour, its rows' pages reused) {:>6.1} bytes each: {:.1}x smaller; target <= 12: {}",
        f.block_bytes,
        f.row_bytes / f.block_bytes,
        met(f.block_bytes <= 12.0)
    );
    let per_day = (checks * regions) as f64 * (DAY_US / INTERVAL_US) as f64;
    println!(
        "  over the run, the last hour still in rows            {:>6.1} bytes each ({} results); 14 days would take {:.2} GiB (as rows {:.1} GiB)",
        f.all_bytes,
        f.raw,
        (per_day * 14.0 * f.block_bytes + per_day / 24.0 * 2.0 * f.row_bytes) / f64::from(1 << 30),
        per_day * 14.0 * f.row_bytes / f64::from(1 << 30)
    );
    println!(
        "  into the store {:.0} results/s; compacted {:.0} results/s, against {:.0}/s arriving: {:.0}x to spare",
        f.insert_rate,
        f.compact_rate,
        per_day / 86_400.0,
        f.compact_rate / (per_day / 86_400.0)
    );
    println!(
        "  rolled up a minute at a time over the last hour: median {:.0} ms a pass, slowest {:.0} ms, of the 60 s between passes",
        f.minute_pass_median_ms, f.minute_pass_max_ms
    );
    println!(
        "query: availability + p99 over 90 days for every check (GET /api/v1/checks?window=90d)"
    );
    println!(
        "  lookout collector   {} checks answered; first {:.1} ms, median {:.1} ms (of which the collector's, to the last byte: median {:.1} ms)",
        f.answered, f.answer_first_ms, f.answer_median_ms, f.served_median_ms
    );
    println!(
        "  reference: from raw results, one day for every check takes {:.0} ms: 90 days would take about {:.1} s",
        f.raw_day_secs * 1e3,
        f.raw_day_secs * 90.0
    );
    println!(
        "  collector start with this history: {:.1} s; memory {:.0} MiB resident (peak {:.0}; {:.0} after as many answers again); disk {:.0} MiB ({:.0} MiB rollups)",
        f.start_secs, f.rss_mib, f.peak_mib, f.peak_after_mib, f.disk_mib, f.rollup_mib
    );
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir_in(args.dir.clone().unwrap_or_else(std::env::temp_dir))?;
    let tmp = if args.keep {
        let kept = tmp.keep();
        eprintln!("the stores are kept in {}", kept.display());
        Kept::Dir(kept)
    } else {
        Kept::Temp(tmp)
    };
    let ingest_dir = tmp.path().join("ingest");
    std::fs::create_dir_all(&ingest_dir)?;
    if !args.skip.contains(&Part::Ingest) {
        ingest_run(&ingest_dir, &args).await?;
    }

    let history = |name: &str| -> anyhow::Result<PathBuf> {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    };
    let today = Shape {
        checks: args.checks,
        regions: 3,
        raw_hours: 24,
    };
    if !args.skip.contains(&Part::Today) {
        let figures = history_run(&history("today")?, today, &args).await?;
        report(&figures);
        println!(
            "  targets: all checks within 50 ms: {}; at most 256 MiB: {}",
            met(figures.answer_median_ms <= 50.0),
            met(figures.peak_mib <= 256.0)
        );
        if !args.keep {
            std::fs::remove_dir_all(tmp.path().join("today"))?;
        }
    }
    if args.scale.is_empty() || args.skip.contains(&Part::Scale) {
        return Ok(());
    }

    let mut curve = Vec::new();
    for checks in args.scale.clone() {
        let shape = Shape {
            checks,
            regions: 5,
            raw_hours: args.scale_hours,
        };
        let name = format!("scale-{checks}");
        let f = history_run(&history(&name)?, shape, &args).await?;
        report(&f);
        if !args.keep {
            std::fs::remove_dir_all(tmp.path().join(&name))?;
        }
        curve.push(f);
    }
    let (Some(base), Some(top)) = (curve.first(), curve.last()) else {
        return Ok(());
    };
    println!(
        "scale: {} regions every 10 s, {} hours of raw results; each figure as a ratio to {} checks'",
        base.shape.regions, base.shape.raw_hours, base.shape.checks
    );
    println!("  checks   x checks   answer (ms)       memory peak (MiB)   disk per check (MiB)");
    for f in &curve {
        let k = f.shape.checks as f64 / base.shape.checks as f64;
        let per_check = |f: &Figures| f.disk_mib / f.shape.checks as f64;
        println!(
            "  {:>6}   {:>8.1}   {:>6.1} ({:>5.2}x)   {:>7.0} ({:>5.2}x)    {:>6.3} ({:>5.2}x)",
            f.shape.checks,
            k,
            f.answer_median_ms,
            f.answer_median_ms / base.answer_median_ms,
            f.peak_mib,
            f.peak_mib / base.peak_mib,
            per_check(f),
            per_check(f) / per_check(base)
        );
    }
    println!(
        "  targets at {} x {}: bytes per raw result <= 12: {}; 90-day answer <= 100 ms: {}; memory <= 512 MiB: {}; start <= 5 s: {}",
        top.shape.checks,
        top.shape.regions,
        met(top.block_bytes <= 12.0),
        met(top.answer_median_ms <= 100.0),
        met(top.peak_mib <= 512.0),
        met(top.start_secs <= 5.0)
    );
    Ok(())
}

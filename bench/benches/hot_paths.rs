//! Micro-benchmarks of the collector's hot paths, each beside a reference measured in the same
//! run: the least work the same input needs, so that the figure says how far from it the path
//! is rather than standing alone.
//!
//! `cargo bench -p lookout-bench --bench hot_paths`: criterion prints each path and its
//! reference one after the other, in one group.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use lookout_collector::store::StoreConfig;
use lookout_collector::{Known, RollupSettings, Rollups, ingest};
use lookout_model::probe::{ProbeResult, ResultBatch};
use lookout_model::sla::{MINUTE_US, Observation, Rules, Spans, minute_rollups};

const REGIONS: [&str; 3] = ["eu-west", "us-east", "ap-south"];
const INTERVAL_US: i64 = 10_000_000;
const DAY_US: i64 = 86_400_000_000;

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

fn known(checks: usize) -> Known {
    let info = lookout_testkit::collector::check(&REGIONS, INTERVAL_US, 5_000_000);
    (0..checks)
        .map(|c| (format!("check-{c}"), info.clone()))
        .collect()
}

/// `n` results a run every 10 s per region, one in 50 failing, ending a minute ago.
fn results(checks: usize, per_check: usize, end_us: i64) -> Vec<ProbeResult> {
    let mut out = Vec::with_capacity(checks * per_check);
    for c in 0..checks {
        let check = format!("check-{c}");
        for i in 0..per_check {
            let region = REGIONS[i % REGIONS.len()];
            let seq = (c * per_check + i) as u64 + 1;
            let start = end_us - (per_check - i) as i64 * INTERVAL_US / REGIONS.len() as i64;
            let ok = i % 50 != 7;
            out.push(lookout_testkit::results::result(
                &check,
                region,
                &format!("{region}-1"),
                seq,
                start,
                ok,
                120_000 + (i as u64 % 17) * 1_000,
            ));
        }
    }
    out
}

/// Batch validation (every field of every result checked before anything is stored) beside
/// decoding the same batch from JSON, which an agent's batch goes through first.
fn batch_validation(c: &mut Criterion) {
    let now = now_us();
    let batch = ResultBatch {
        results: results(10, 50, now - 60_000_000),
    };
    let json = serde_json::to_vec(&batch).unwrap_or_default();
    let known = known(10);
    // A refused batch would stop at its first result: measure the whole check.
    if let Err(e) = ingest::validate(&batch, &known, now, 14 * DAY_US) {
        panic!("the benchmark's batch is refused: {e}");
    }
    let mut g = c.benchmark_group("batch of 500 results");
    g.bench_function("validate", |b| {
        b.iter(|| ingest::validate(black_box(&batch), &known, now, 14 * DAY_US))
    });
    g.bench_function("reference: decode the JSON", |b| {
        b.iter(|| serde_json::from_slice::<ResultBatch>(black_box(&json)).map(|b| b.results.len()))
    });
    g.finish();
}

/// The per-minute split of a day of one check's observations from three regions (what every
/// rollup and every window's figure is made of) beside one pass over the same observations.
fn per_minute_split(c: &mut Criterion) {
    let day = 8_640 * REGIONS.len();
    let observations: Vec<Observation> = (0..day)
        .map(|i| Observation {
            region: i % REGIONS.len(),
            start_us: i as i64 * INTERVAL_US / REGIONS.len() as i64,
            ok: !(40_000..41_000).contains(&i) || i % REGIONS.len() == 0,
        })
        .collect();
    let rules = Rules::new(REGIONS.len(), INTERVAL_US, 5_000_000);
    let spans = Spans::default();
    let mut g = c.benchmark_group("a day of observations, 3 regions");
    g.bench_function("split into minutes", |b| {
        b.iter(|| minute_rollups(&rules, black_box(&observations), &spans, 0, DAY_US).len())
    });
    g.bench_function("reference: one pass counting failures per minute", |b| {
        b.iter(|| {
            let mut per_minute = vec![0u32; (DAY_US / MINUTE_US) as usize];
            for o in black_box(&observations) {
                if !o.ok {
                    per_minute[(o.start_us / MINUTE_US) as usize] += 1;
                }
            }
            per_minute.iter().filter(|n| **n > 0).count()
        })
    });
    g.finish();
}

/// A rollup pass over an hour of 20 checks' results in an in-memory store beside reading the
/// same results back, which the pass must do at least.
fn rollup_pass(c: &mut Criterion) {
    let now = now_us();
    let checks = 20;
    let per_check = 360 * REGIONS.len();
    let fresh = || {
        let store = StoreConfig::Memory.open().unwrap_or_else(|e| panic!("{e}"));
        let all = results(checks, per_check, now - 120_000_000);
        let inserted = store.insert(&all).unwrap_or_default();
        let settings = RollupSettings {
            settle_us: 0,
            ..RollupSettings::default()
        };
        let rollups = Rollups::open(
            store.clone(),
            known(checks),
            settings,
            now - 2 * 3_600_000_000,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        rollups.observe(&all, &inserted);
        (store, rollups)
    };
    let mut g = c.benchmark_group("an hour of 20 checks, 3 regions");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("rollup pass", |b| {
        b.iter_batched(
            fresh,
            |(_store, rollups)| rollups.pass(now).map(|r| r.minutes),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("reference: read the results back", |b| {
        b.iter_batched(
            fresh,
            |(store, _rollups)| {
                store
                    .observations_all(now - 3 * 3_600_000_000, now)
                    .map(|o| o.len())
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(hot_paths, batch_validation, per_minute_split, rollup_pass);
criterion_main!(hot_paths);

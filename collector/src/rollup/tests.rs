#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use lookout_model::probe::ProbeResult;
use lookout_model::sla::{self, MINUTE_US, Observation, Rules};
use proptest::prelude::*;

use super::*;
use crate::store::SqliteStore;

const T0: i64 = 1_800_000_000 * 1_000_000 - 1_800_000_000 * 1_000_000 % DAY_US;
/// A "now" for queries after every pass of the tests, with raw results still kept.
const NOW: i64 = T0 + 4 * DAY_US;
const REGIONS: [&str; 3] = ["eu", "us", "ap"];

fn info() -> CheckInfo {
    CheckInfo {
        regions: REGIONS.iter().map(|r| r.to_string()).collect(),
        interval_us: 10_000_000,
        timeout_us: 5_000_000,
        ..CheckInfo::unknown()
    }
}

fn result(seq: u64, region: usize, start: i64, ok: bool, duration_us: u64) -> ProbeResult {
    let agent = format!("agent-{region}");
    lookout_testkit::results::result(
        "search",
        REGIONS[region],
        &agent,
        seq,
        start,
        ok,
        duration_us,
    )
}

fn rollups() -> Rollups {
    let store: Arc<dyn ResultStore> = Arc::new(SqliteStore::in_memory().unwrap());
    let known = Known::from([("search".to_string(), info())]);
    Rollups::open(store, known, RollupSettings::default(), T0).unwrap()
}

fn truth(all: &[ProbeResult], from: i64, to: i64) -> sla::Tally {
    truth_in(all, &sla::Spans::default(), from, to)
}

fn truth_in(all: &[ProbeResult], maintenance: &sla::Spans, from: i64, to: i64) -> sla::Tally {
    let rules = Rules::new(3, 10_000_000, 5_000_000);
    let obs: Vec<Observation> = all
        .iter()
        .map(|r| Observation {
            region: REGIONS.iter().position(|x| *x == r.region).unwrap(),
            start_us: r.started_at_us,
            ok: r.outcome.is_up(),
        })
        .collect();
    sla::tally(&rules, &obs, maintenance, from, to)
}

/// Runs of three regions every 10 s over `minutes`, each region failing where `fails` says.
fn history(
    minutes: i64,
    fails: &[(usize, i64, i64)],
    silent: &[(usize, i64, i64)],
) -> Vec<ProbeResult> {
    let mut out = Vec::new();
    let mut seq = [0u64; 3];
    for step in 0..minutes * 6 {
        for (region, seq) in seq.iter_mut().enumerate() {
            let start = T0 + step * 10_000_000 + region as i64 * 1_000_000;
            let at = start - T0;
            if silent
                .iter()
                .any(|(r, a, b)| *r == region && at >= *a && at < *b)
            {
                continue;
            }
            let fail = fails
                .iter()
                .any(|(r, a, b)| *r == region && at >= *a && at < *b);
            *seq += 1;
            out.push(result(
                *seq,
                region,
                start,
                !fail,
                100_000 + (step as u64 % 50) * 1000,
            ));
        }
    }
    out
}

fn ingest(r: &Rollups, batch: &[ProbeResult]) {
    let inserted = r.store().insert(batch).unwrap();
    r.observe(batch, &inserted);
}

#[test]
fn a_healthy_hour_is_all_up_and_stores_no_minutes() {
    let r = rollups();
    let all = history(60, &[], &[]);
    ingest(&r, &all);
    r.pass(T0 + 61 * MINUTE_US).unwrap();
    let st = r.state("search").unwrap();
    let st = st.lock().unwrap();
    // Only the first second has no data (one region reporting until the second starts).
    assert_eq!(
        st.bad,
        BTreeMap::from([(
            T0,
            sla::Tally {
                window_us: MINUTE_US,
                no_data_us: 1_000_000,
                ..Default::default()
            }
        )])
    );
    assert!(st.coverage.unwrap().frontier >= T0 + 60 * MINUTE_US);
    drop(st);
    let t = r.tally("search", T0, T0 + 60 * MINUTE_US, NOW).unwrap();
    assert_eq!((t.down_us, t.no_data_us), (0, 1_000_000));
    assert_eq!(t, truth(&all, T0, T0 + 60 * MINUTE_US));
    let c = r
        .compute("search", T0, T0 + 60 * MINUTE_US, T0 + 61 * MINUTE_US)
        .unwrap();
    assert_eq!(c.latency.count, 60 * 6 * 3);
    let p99 = c.latency.p99_ms.unwrap();
    assert!((148.0..=151.0).contains(&p99), "{p99}");
    assert_eq!(c.latency.share_under_objective, Some(1.0));
}

/// A degraded run is up for availability and against the latency SLI, however fast it was:
/// in the live tail, in the histograms a pass writes, and once the raw results are gone.
#[test]
fn degraded_runs_are_up_and_count_against_the_latency_sli() {
    let r = rollups();
    let mut all = history(60, &[], &[]);
    // A fifth of the runs degraded, all of them far under the objective (about 150 ms).
    let degraded = all.len() / 5;
    for x in all.iter_mut().step_by(5) {
        x.outcome = lookout_model::probe::Outcome::Degraded(lookout_model::probe::Degradation {
            message: "delivered at 1.2x real time".into(),
            step: Some(0),
        });
    }
    ingest(&r, &all);
    let share = 1.0 - degraded as f64 / all.len() as f64;
    let check = |(from, to): (i64, i64), now: i64, at: &str| {
        let c = r.compute("search", from, to, now).unwrap();
        assert_eq!(c.tally, truth(&all, from, to), "{at}");
        assert_eq!(c.tally.down_us, 0, "{at}");
        assert_eq!(c.latency.count, all.len() as u64, "{at}");
        let under = c.latency.share_under_objective.unwrap();
        assert!(
            (under - share).abs() < 1e-9,
            "{at}: {under} against {share}"
        );
        // Counted at the objective, not at an arbitrary ceiling.
        let max = c.latency.max_ms.unwrap();
        assert!((800.0..=816.0).contains(&max), "{at}: {max}");
    };
    let hour = (T0, T0 + 60 * MINUTE_US);
    check(hour, hour.1, "live");
    r.pass(T0 + 61 * MINUTE_US).unwrap();
    check(hour, T0 + 61 * MINUTE_US, "rolled up");
    // Past the raw retention and the hours held, a window is answered from days.
    let late = T0 + 3 * DAY_US + MINUTE_US;
    r.pass(late).unwrap();
    check((T0, T0 + DAY_US), late, "from the day's histogram");
}

#[test]
fn late_results_correct_the_minutes_they_belong_to_and_survive_a_reopen() {
    let store: Arc<dyn ResultStore> = Arc::new(SqliteStore::in_memory().unwrap());
    let known = Known::from([("search".to_string(), info())]);
    let r = Rollups::open(store.clone(), known.clone(), RollupSettings::default(), T0).unwrap();
    // Two regions fail from minute 10 to 12, but region "us" reports that only later.
    let all = history(
        30,
        &[(0, 600_000_000, 720_000_000), (1, 600_000_000, 720_000_000)],
        &[],
    );
    let (late, early): (Vec<_>, Vec<_>) = all
        .iter()
        .cloned()
        .partition(|x| x.region == "us" && x.started_at_us < T0 + 15 * MINUTE_US);
    ingest(&r, &early);
    r.pass(T0 + 31 * MINUTE_US).unwrap();
    let before = r.tally("search", T0, T0 + 30 * MINUTE_US, NOW).unwrap();
    // Without "us", "eu" fails alone: not down.
    assert_eq!(before.down_us, 0);
    assert_eq!(before, truth(&early, T0, T0 + 30 * MINUTE_US));
    ingest(&r, &late);
    r.pass(T0 + 32 * MINUTE_US).unwrap();
    let after = r.tally("search", T0, T0 + 30 * MINUTE_US, NOW).unwrap();
    assert_eq!(after, truth(&all, T0, T0 + 30 * MINUTE_US));
    assert!(after.down_us >= 119_000_000, "{after:?}");
    // What a fresh start loads answers the same.
    let again =
        Rollups::open(store, known, RollupSettings::default(), T0 + 32 * MINUTE_US).unwrap();
    assert_eq!(
        again.tally("search", T0, T0 + 30 * MINUTE_US, NOW).unwrap(),
        after
    );
}

/// Stores a maintenance change for `search` the way the collector's registry does.
fn change(
    r: &Rollups,
    change: crate::store::MaintenanceChange<'_>,
    from: i64,
    after: &[lookout_model::read::Maintenance],
) {
    let dirty = vec![("search".to_owned(), from)];
    r.change_maintenance(&dirty, |store| {
        store.change_maintenance(change, &dirty)?;
        Ok(((), crate::maintenance::spans_by_check(after)))
    })
    .unwrap();
}

#[test]
fn maintenance_over_rolled_up_minutes_rolls_them_up_again_and_survives_a_reopen() {
    let store: Arc<dyn ResultStore> = Arc::new(SqliteStore::in_memory().unwrap());
    let known = Known::from([("search".to_string(), info())]);
    let r = Rollups::open(store.clone(), known.clone(), RollupSettings::default(), T0).unwrap();
    // Down from minute 10 to 14; maintenance from 12:30 to 20:00, added once rolled up.
    let all = history(
        30,
        &[(0, 600_000_000, 840_000_000), (1, 600_000_000, 840_000_000)],
        &[],
    );
    ingest(&r, &all);
    r.pass(T0 + 31 * MINUTE_US).unwrap();
    let whole = (T0, T0 + 30 * MINUTE_US);
    assert_eq!(
        r.tally("search", whole.0, whole.1, NOW)
            .unwrap()
            .maintenance_us,
        0
    );
    let window = lookout_model::read::Maintenance {
        id: 0,
        name: "upgrade".into(),
        message: String::new(),
        checks: vec!["search".into()],
        starts_us: T0 + 12 * MINUTE_US + 30_000_000,
        ends_us: T0 + 20 * MINUTE_US,
        source: lookout_model::read::MaintenanceSource::Api,
        created_by: String::new(),
        created_us: T0,
    };
    change(
        &r,
        crate::store::MaintenanceChange::Put(&window),
        window.starts_us,
        std::slice::from_ref(&window),
    );
    r.settle(T0 + 32 * MINUTE_US);
    let spans = sla::Spans::new([(window.starts_us, window.ends_us)]);
    for (from, to) in [
        whole,
        (T0 + 11 * MINUTE_US + 7_000_000, T0 + 13 * MINUTE_US + 1),
        (T0 + 12 * MINUTE_US + 45_000_000, T0 + 25 * MINUTE_US),
    ] {
        let t = r.tally("search", from, to, NOW).unwrap();
        assert_eq!(t, truth_in(&all, &spans, from, to), "[{from}, {to})");
    }
    let t = r.tally("search", whole.0, whole.1, NOW).unwrap();
    assert_eq!(t.maintenance_us, 450_000_000);
    assert!(
        t.maintenance_down_us > 60_000_000 && t.maintenance_down_us < t.down_us,
        "{t:?}"
    );
    let again = Rollups::open(
        store.clone(),
        known.clone(),
        RollupSettings::default(),
        T0 + 32 * MINUTE_US,
    )
    .unwrap();
    assert_eq!(again.tally("search", whole.0, whole.1, NOW).unwrap(), t);
    // Cancelled: the minutes are as if it never was.
    let stored = store.maintenances().unwrap();
    change(
        &again,
        crate::store::MaintenanceChange::Delete(stored[0].id),
        window.starts_us,
        &[],
    );
    again.settle(T0 + 33 * MINUTE_US);
    assert_eq!(
        again.tally("search", whole.0, whole.1, NOW).unwrap(),
        truth(&all, whole.0, whole.1)
    );
}

#[test]
fn a_maintenance_change_stopped_before_any_pass_is_rolled_up_after_the_restart() {
    let store: Arc<dyn ResultStore> = Arc::new(SqliteStore::in_memory().unwrap());
    let known = Known::from([("search".to_string(), info())]);
    let r = Rollups::open(store.clone(), known.clone(), RollupSettings::default(), T0).unwrap();
    let all = history(
        30,
        &[(0, 600_000_000, 840_000_000), (1, 600_000_000, 840_000_000)],
        &[],
    );
    ingest(&r, &all);
    r.pass(T0 + 31 * MINUTE_US).unwrap();
    let window = lookout_model::read::Maintenance {
        id: 0,
        name: "upgrade".into(),
        message: String::new(),
        checks: vec!["search".into()],
        starts_us: T0 + 11 * MINUTE_US,
        ends_us: T0 + 13 * MINUTE_US,
        source: lookout_model::read::MaintenanceSource::Api,
        created_by: String::new(),
        created_us: T0,
    };
    change(
        &r,
        crate::store::MaintenanceChange::Put(&window),
        window.starts_us,
        std::slice::from_ref(&window),
    );
    // Gone before any pass rolled the minutes up again: the mark was stored with the window.
    drop(r);
    let again =
        Rollups::open(store, known, RollupSettings::default(), T0 + 32 * MINUTE_US).unwrap();
    again.settle(T0 + 32 * MINUTE_US);
    let spans = sla::Spans::new([(window.starts_us, window.ends_us)]);
    let whole = (T0, T0 + 30 * MINUTE_US);
    let t = again.tally("search", whole.0, whole.1, NOW).unwrap();
    assert_eq!(t, truth_in(&all, &spans, whole.0, whole.1));
    assert_eq!(t.maintenance_us, 2 * MINUTE_US);
}

#[test]
fn windows_across_days_use_day_sums_and_still_equal_the_math() {
    let r = rollups();
    // Three days, with an outage at the end of day 1 running into day 2.
    let outage = (DAY_US - 30 * MINUTE_US, DAY_US + 20 * MINUTE_US);
    let all = history(
        3 * 24 * 60,
        &[(0, outage.0, outage.1), (2, outage.0, outage.1)],
        &[(1, 2 * DAY_US, 2 * DAY_US + 5 * MINUTE_US)],
    );
    for chunk in all.chunks(5_000) {
        ingest(&r, chunk);
    }
    r.pass(T0 + 3 * DAY_US + 2 * MINUTE_US).unwrap();
    for (from, to) in [
        (T0, T0 + 3 * DAY_US),
        (T0 + 7 * MINUTE_US, T0 + 2 * DAY_US + 13 * MINUTE_US),
        (T0 + DAY_US - 31 * MINUTE_US, T0 + DAY_US + 21 * MINUTE_US),
    ] {
        assert_eq!(
            r.tally("search", from, to, NOW).unwrap(),
            truth(&all, from, to),
            "[{from}, {to})"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Rollups of any minute-aligned window equal the math applied to the raw results, however
    /// the results were split between passes and whatever arrived late.
    #[test]
    fn rollups_equal_the_math_on_raw_results(
        fails in proptest::collection::vec((0usize..3, 0i64..120, 1i64..15), 0..6),
        silent in proptest::collection::vec((0usize..3, 0i64..120, 1i64..15), 0..3),
        late_from in 0i64..100,
        windows in proptest::collection::vec((0i64..130, 1i64..130), 1..6),
        passes in proptest::collection::vec(1i64..130, 1..4),
    ) {
        let span = |v: &[(usize, i64, i64)]| -> Vec<(usize, i64, i64)> {
            v.iter().map(|(r, a, len)| (*r, a * MINUTE_US, (a + len) * MINUTE_US)).collect()
        };
        let all = history(120, &span(&fails), &span(&silent));
        let r = rollups();
        let cut = T0 + late_from * MINUTE_US;
        // Region "ap" holds back everything after `cut` until the end (a spool replaying).
        let (held, sent): (Vec<_>, Vec<_>) = all.iter().cloned().partition(|x| x.region == "ap" && x.started_at_us >= cut);
        let mut passes = passes;
        passes.sort_unstable();
        let mut i = 0;
        for p in passes {
            let now = T0 + p * MINUTE_US;
            let upto: Vec<_> = sent.iter().filter(|x| x.started_at_us < now - 2_000_000).cloned().collect();
            if i < upto.len() {
                ingest(&r, &upto[i..]);
                i = upto.len();
            }
            r.pass(now).unwrap();
        }
        ingest(&r, &sent[i..]);
        ingest(&r, &held);
        let end = T0 + 135 * MINUTE_US;
        r.pass(end).unwrap();
        for (a, len) in windows {
            let from = T0 + a * MINUTE_US;
            let to = (from + len * MINUTE_US).min(end);
            prop_assert_eq!(r.tally("search", from, to, NOW).unwrap(), truth(&all, from, to));
        }
    }
}

#[test]
fn unaligned_windows_after_a_restart_mid_ingest_are_exact() {
    let all = history(
        120,
        &[
            (0, 50 * MINUTE_US, 60 * MINUTE_US),
            (1, 50 * MINUTE_US, 60 * MINUTE_US),
        ],
        &[],
    );
    let store: Arc<dyn ResultStore> = Arc::new(SqliteStore::in_memory().unwrap());
    let known = Known::from([("search".to_string(), info())]);
    let now = T0 + 120 * MINUTE_US + 7_000_000;
    let r = Rollups::open(store.clone(), known.clone(), RollupSettings::default(), now).unwrap();
    r.pass(now).unwrap();
    for chunk in all.chunks(30).take(20) {
        ingest(&r, chunk);
    }
    drop(r);
    let r = Rollups::open(store, known, RollupSettings::default(), now).unwrap();
    r.pass(now).unwrap();
    for (i, chunk) in all.chunks(30).enumerate() {
        ingest(&r, chunk);
        if i % 50 == 7 {
            r.pass(now).unwrap();
        }
    }
    r.settle(now);
    let from = T0 + 4 * MINUTE_US + 17_000_000;
    let to = now;
    assert_eq!(
        r.tally("search", from, to, NOW).unwrap(),
        truth(&all, from, to)
    );
    // Latency too is exact while the raw results are kept: no hour rounding at the edges.
    for (from, to) in [(from, to), (from, T0 + 61 * MINUTE_US + 3_000_000)] {
        let ok = all
            .iter()
            .filter(|x| x.outcome.is_up() && x.started_at_us >= from && x.started_at_us < to)
            .count() as u64;
        assert_eq!(
            r.compute("search", from, to, now).unwrap().latency.count,
            ok
        );
    }
}

#[test]
fn kept_merges_of_days_and_hours_follow_late_results() {
    let r = rollups();
    let all = history(3 * 24 * 60, &[], &[]);
    for chunk in all.chunks(5_000) {
        ingest(&r, chunk);
    }
    let now = T0 + 3 * DAY_US + 2 * MINUTE_US;
    r.pass(now).unwrap();
    let ok = all.iter().filter(|x| x.outcome.is_up()).count() as u64;
    let count = |r: &Rollups| {
        r.compute("search", T0, T0 + 3 * DAY_US, now)
            .unwrap()
            .latency
            .count
    };
    assert_eq!(count(&r), ok);
    assert_eq!(count(&r), ok, "asked again, from the kept merges");
    // Late results in a complete hour of the last two days, and in an older day.
    let late = [
        result(
            1_000_000,
            2,
            T0 + 2 * DAY_US + 30 * MINUTE_US + 500_000,
            true,
            90_000,
        ),
        result(1_000_001, 2, T0 + DAY_US / 2 + 500_000, true, 90_000),
    ];
    ingest(&r, &late);
    r.settle(now);
    assert_eq!(count(&r), ok + 2);
}

#[test]
fn one_regions_latency_is_that_of_its_runs_alone() {
    let r = rollups();
    // Three days; each region with its own journey times, eu the fastest.
    let mut all = history(3 * 24 * 60, &[(1, DAY_US, DAY_US + 3_600_000_000)], &[]);
    for x in &mut all {
        let region = REGIONS.iter().position(|g| *g == x.region).unwrap() as u64;
        x.duration_us += region * 200_000;
    }
    for chunk in all.chunks(5_000) {
        ingest(&r, chunk);
    }
    let now = T0 + 3 * DAY_US + 2 * MINUTE_US;
    r.pass(now).unwrap();
    // Runs after the frontier stay in the live tail.
    assert_eq!(
        lock(&r.state("search").unwrap()).frontier(),
        T0 + 3 * DAY_US + MINUTE_US
    );
    let tail: Vec<ProbeResult> = (0..6)
        .flat_map(|i| {
            (0..3).map(move |g| {
                result(
                    9_000_000 + i * 3 + g as u64,
                    g,
                    T0 + 3 * DAY_US + MINUTE_US + i as i64 * 5_000_000 + g as i64,
                    true,
                    50_000 + g as u64 * 200_000,
                )
            })
        })
        .collect();
    ingest(&r, &tail);
    all.extend(tail);
    // Before the last two days a window's far edge is rounded to a day, for one region as for
    // all: these windows start on one, so that the truth is plain counting.
    for (from, to) in [
        (T0, T0 + 3 * DAY_US + MINUTE_US),
        (T0 + 2 * DAY_US + 30 * MINUTE_US + 17_000_000, now),
        (T0 + DAY_US, T0 + 2 * DAY_US + 5 * HOUR_US + 3_000_000),
        (T0 + 3 * DAY_US, now),
    ] {
        let mut total = 0;
        for (g, region) in REGIONS.iter().enumerate() {
            let mut truth: Vec<u64> = all
                .iter()
                .filter(|x| {
                    x.region == *region
                        && x.outcome.is_up()
                        && x.started_at_us >= from
                        && x.started_at_us < to
                })
                .map(|x| x.duration_us)
                .collect();
            truth.sort_unstable();
            let l = r
                .region_latency("search", region, from, to, now)
                .unwrap()
                .unwrap();
            assert_eq!(l.count, truth.len() as u64, "{region} {from} {to}");
            let p50 = l.p50_ms.unwrap();
            let want = truth[(truth.len() - 1) / 2] as f64 / 1e3;
            assert!(
                (p50 - want).abs() <= want * 0.011,
                "{region}: {p50} vs {want}"
            );
            assert!(
                (p50 - (50.0 + g as f64 * 200.0)).abs() < 150.0,
                "{region}: {p50}"
            );
            total += l.count;
        }
        let all_regions = r.compute("search", from, to, now).unwrap().latency;
        assert_eq!(total, all_regions.count, "the regions add up to the check");
    }
    assert!(matches!(
        r.region_latency("search", "mars", T0, now, now),
        Err(RegionLatencyError::Unknown { .. })
    ));
    assert!(
        r.region_latency("nope", "eu", T0, now, now)
            .unwrap()
            .is_none()
    );
}

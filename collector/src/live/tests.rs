#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use lookout_model::probe::FailureKind;
use lookout_model::sla::Observation;
use prometheus::Opts;

const S: i64 = 1_000_000;
const T0: i64 = 1_800_000_000 * S;

fn info(regions: &[&str]) -> CheckInfo {
    CheckInfo {
        regions: regions.iter().map(|r| r.to_string()).collect(),
        interval_us: 10 * S,
        timeout_us: 5 * S,
        ..CheckInfo::unknown()
    }
}

fn live(regions: &[&str]) -> Live {
    let counter = IntCounterVec::new(Opts::new("changes", "test"), &["check", "state"]).unwrap();
    Live::new(
        &Known::from([("search".to_string(), info(regions))]),
        counter,
    )
}

fn result(region: &str, start: i64, ok: bool) -> ProbeResult {
    let agent = format!("{region}-1");
    let mut r =
        lookout_testkit::results::result("search", region, &agent, start as u64, start, ok, 1);
    if let Outcome::Fail(f) = &mut r.outcome {
        f.message = format!("refused in {region}");
    }
    r
}

fn check(l: &Live, now: i64) -> CheckView {
    l.states(now).checks.remove(0)
}

#[test]
fn a_quorum_failing_is_down_since_the_result_that_made_it() {
    let l = live(&["eu", "us", "ap"]);
    assert_eq!(check(&l, T0).state, CheckStatus::NoData);
    let ok: Vec<_> = ["eu", "us", "ap"]
        .iter()
        .enumerate()
        .map(|(i, r)| result(r, T0 + i as i64, true))
        .collect();
    l.observe(&ok, &[true; 3], T0 + S);
    let c = check(&l, T0 + S);
    assert_eq!((c.state, c.since_us), (CheckStatus::Up, Some(T0 + 1)));
    let v = l.version();
    l.observe(&[result("eu", T0 + 10 * S, false)], &[true], T0 + 11 * S);
    let c = check(&l, T0 + 11 * S);
    assert_eq!(c.state, CheckStatus::Up, "one region alone is regional");
    assert_eq!(c.regions[0].state, RegionStatus::Failing);
    assert_eq!(c.regions[0].reason.as_deref(), Some("refused in eu"));
    assert_eq!(c.regions[0].kind.as_deref(), Some("refused"));
    assert!(l.version() > v, "a region's change moves the version");
    let v = l.version();
    l.observe(&[result("eu", T0 + 12 * S, false)], &[true], T0 + 12 * S);
    assert_eq!(l.version(), v, "still failing: nothing changed");
    l.observe(&[result("us", T0 + 13 * S, false)], &[true], T0 + 14 * S);
    let c = check(&l, T0 + 14 * S);
    assert_eq!(
        (c.state, c.since_us),
        (CheckStatus::Down, Some(T0 + 13 * S))
    );
    assert_eq!(c.regions[0].since_us, Some(T0 + 10 * S));
    // Late and replayed results say nothing about now.
    let v = l.version();
    l.observe(&[result("us", T0 + 5 * S, true)], &[true], T0 + 15 * S);
    l.observe(&[result("us", T0 + 20 * S, true)], &[false], T0 + 15 * S);
    assert_eq!(l.version(), v);
    assert_eq!(check(&l, T0 + 15 * S).state, CheckStatus::Down);
}

#[test]
fn silence_turns_a_check_to_no_data_when_the_region_went_silent() {
    let l = live(&["eu", "us", "ap"]);
    let ok: Vec<_> = ["eu", "us", "ap"]
        .iter()
        .map(|r| result(r, T0, true))
        .collect();
    l.observe(&ok, &[true; 3], T0);
    l.observe(&[result("eu", T0 + 10 * S, true)], &[true], T0 + 10 * S);
    // us and ap go silent at T0 + 25 s: with two of three silent, fewer than 2 report.
    let c = check(&l, T0 + 30 * S);
    assert_eq!(c.state, CheckStatus::NoData);
    assert_eq!(c.since_us, Some(T0 + 25 * S));
    assert_eq!(c.regions[1].state, RegionStatus::Silent);
    assert_eq!(c.regions[1].since_us, Some(T0 + 25 * S));
    // A spool replayed from long ago leaves the region silent.
    l.observe(&[result("us", T0 + 2 * S, true)], &[true], T0 + 31 * S);
    assert_eq!(
        check(&l, T0 + 31 * S).regions[1].state,
        RegionStatus::Silent
    );
    l.observe(&[result("us", T0 + 31 * S, true)], &[true], T0 + 31 * S);
    let c = check(&l, T0 + 31 * S);
    assert_eq!((c.state, c.since_us), (CheckStatus::Up, Some(T0 + 31 * S)));
}

#[test]
fn a_degraded_region_is_up_and_says_why() {
    let l = live(&["eu", "us", "ap"]);
    let mut batch: Vec<_> = ["eu", "us", "ap"]
        .iter()
        .enumerate()
        .map(|(i, r)| result(r, T0 + i as i64, true))
        .collect();
    for r in &mut batch[..2] {
        r.outcome = Outcome::Degraded(lookout_model::probe::Degradation {
            message: format!("delivered at 1.2x real time in {}", r.region),
            step: Some(0),
        });
    }
    l.observe(&batch, &[true; 3], T0 + S);
    let c = check(&l, T0 + S);
    assert_eq!(c.state, CheckStatus::Up, "degraded is up, even in a quorum");
    assert_eq!(c.degraded().count(), 2);
    assert_eq!(c.regions[0].state, RegionStatus::Degraded);
    assert_eq!(
        c.regions[0].reason.as_deref(),
        Some("delivered at 1.2x real time in eu")
    );
    assert_eq!(c.regions[0].kind, None);
    assert_eq!(c.regions[2].state, RegionStatus::Ok);
    l.observe(&[result("eu", T0 + 10 * S, true)], &[true], T0 + 11 * S);
    let c = check(&l, T0 + 11 * S);
    assert_eq!(
        (
            c.regions[0].state,
            c.regions[0].since_us,
            c.regions[0].reason.as_deref()
        ),
        (RegionStatus::Ok, Some(T0 + 10 * S), None)
    );
}

#[test]
fn a_replayed_tail_gives_the_state_and_its_start() {
    let l = live(&["eu", "us", "ap"]);
    let mut tail = Vec::new();
    for i in 0..10 {
        for (r, region) in ["eu", "us", "ap"].iter().enumerate() {
            let failing = i >= 6 && r < 2;
            let verdict = if failing { Verdict::Fail } else { Verdict::Ok };
            tail.push((region.to_string(), T0 + i * 10 * S + r as i64, verdict));
        }
    }
    tail.reverse();
    l.replay(
        "search",
        &["eu".into(), "us".into(), "ap".into()],
        tail,
        |region, _| {
            Some(Failure {
                kind: FailureKind::Timeout,
                message: format!("slow {region}"),
                step: None,
            })
        },
        T0 + 95 * S,
    );
    let c = check(&l, T0 + 95 * S);
    assert_eq!(
        (c.state, c.since_us),
        (CheckStatus::Down, Some(T0 + 60 * S + 1))
    );
    assert_eq!(c.regions[0].since_us, Some(T0 + 60 * S));
    assert_eq!(c.regions[1].reason.as_deref(), Some("slow us"));
    assert_eq!(c.regions[2].reason, None);
}

/// The state held here is the SLA math's at every instant, whatever the order of events.
#[test]
fn the_state_agrees_with_the_sla_math() {
    let regions = ["a", "b", "c", "d"];
    let rules = Rules::new(4, 10 * S, 5 * S);
    // A fixed pseudo-random history: gaps (silences), failures, and regions out of step.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut obs = Vec::new();
    for (i, _) in regions.iter().enumerate() {
        let mut t = T0 + i as i64 * 700_000;
        while t < T0 + 600 * S {
            let gap = if next() % 10 == 0 { 40 * S } else { 10 * S };
            t += gap + (next() % 3) as i64 * S;
            obs.push(Observation {
                region: i,
                start_us: t,
                ok: next() % 3 != 0,
            });
        }
    }
    obs.sort_by_key(|o| o.start_us);
    let l = Live::new(
        &Known::from([("search".to_string(), info(&regions))]),
        IntCounterVec::new(Opts::new("c", "t"), &["check", "state"]).unwrap(),
    );
    let mut seen = 0;
    let mut t = T0;
    while t < T0 + 700 * S {
        while seen < obs.len() && obs[seen].start_us <= t {
            let o = obs[seen];
            l.observe(&[result(regions[o.region], o.start_us, o.ok)], &[true], t);
            seen += 1;
        }
        let tally = sla::tally(&rules, &obs[..seen], &sla::Spans::default(), t, t + 1);
        let expected = if tally.down_us > 0 {
            CheckStatus::Down
        } else if tally.no_data_us > 0 {
            CheckStatus::NoData
        } else {
            CheckStatus::Up
        };
        assert_eq!(check(&l, t).state, expected, "at {}", t - T0);
        t += 250_000;
    }
}

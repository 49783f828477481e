use proptest::prelude::*;

use super::*;
use crate::slo::Slo;

fn none() -> Spans {
    Spans::default()
}

fn availability(t: &Tally) -> Option<f64> {
    Slo::default().figures(t).availability
}

const S: i64 = 1_000_000;

fn rules3() -> Rules {
    Rules::new(3, 10 * S, 5 * S) // silence after 25 s, quorum 2
}

fn every_10s(region: usize, from: i64, to: i64, ok: impl Fn(i64) -> bool) -> Vec<Observation> {
    (from..to)
        .step_by(10 * S as usize)
        .map(|t| Observation {
            region,
            start_us: t,
            ok: ok(t),
        })
        .collect()
}

#[test]
fn quorum_is_a_majority_of_at_least_two() {
    assert_eq!([1, 2, 3, 4, 5, 6].map(default_quorum), [2, 2, 2, 3, 3, 4]);
}

#[test]
fn a_quorum_of_failing_regions_is_downtime_exactly_while_it_lasts() {
    let outage = (100 * S, 200 * S);
    let failing = |t: i64| !(outage.0..outage.1).contains(&t);
    let mut obs = every_10s(0, 0, 300 * S, failing);
    obs.extend(every_10s(1, 0, 300 * S, failing));
    obs.extend(every_10s(2, 0, 300 * S, |_| true));
    let t = tally(&rules3(), &obs, &none(), 0, 300 * S);
    assert_eq!(t.down_us, 100 * S);
    assert_eq!(t.no_data_us, 0);
    assert!((availability(&t).unwrap() - 2.0 / 3.0).abs() < 1e-12);
}

#[test]
fn one_region_failing_alone_is_never_downtime() {
    let mut obs = every_10s(0, 0, 300 * S, |_| false);
    obs.extend(every_10s(1, 0, 300 * S, |_| true));
    obs.extend(every_10s(2, 0, 300 * S, |_| true));
    assert_eq!(tally(&rules3(), &obs, &none(), 0, 300 * S).down_us, 0);
}

#[test]
fn silent_regions_become_no_data_not_up() {
    // Only one region reports after t=100 s: fewer than quorum, so no data from silence on.
    let mut obs = every_10s(0, 0, 300 * S, |_| true);
    obs.extend(every_10s(1, 0, 100 * S, |_| true));
    let t = tally(&rules3(), &obs, &none(), 0, 300 * S);
    // Region 1's last result at 90 s holds until 90 + 25 = 115 s.
    assert_eq!(t.no_data_us, 185 * S);
    assert_eq!(t.down_us, 0);
    assert_eq!(availability(&t), Some(1.0));
    let nothing = tally(&rules3(), &[], &none(), 0, 60 * S);
    assert_eq!(nothing.no_data_us, 60 * S);
    assert_eq!(availability(&nothing), None);
}

#[test]
fn the_result_before_the_window_decides_its_start() {
    let obs = vec![
        Observation {
            region: 0,
            start_us: -5 * S,
            ok: false,
        },
        Observation {
            region: 1,
            start_us: -5 * S,
            ok: false,
        },
    ];
    let t = tally(&rules3(), &obs, &none(), 0, 60 * S);
    assert_eq!(
        t.down_us,
        20 * S,
        "held until the regions go silent at 20 s"
    );
    assert_eq!(t.no_data_us, 40 * S);
}

#[test]
fn maintenance_is_kept_apart_and_counts_once_where_windows_overlap() {
    // Down from 100 s to 200 s; maintenance over [150 s, 180 s) and [170 s, 250 s).
    let outage = (100 * S, 200 * S);
    let failing = |t: i64| !(outage.0..outage.1).contains(&t);
    let mut obs = every_10s(0, 0, 300 * S, failing);
    obs.extend(every_10s(1, 0, 300 * S, failing));
    obs.extend(every_10s(2, 0, 300 * S, |_| true));
    let m = Spans::new([(170 * S, 250 * S), (150 * S, 180 * S)]);
    assert_eq!(m.as_slice(), &[(150 * S, 250 * S)]);
    let t = tally(&rules3(), &obs, &m, 0, 300 * S);
    assert_eq!(t.down_us, 100 * S, "all of the downtime, inside or not");
    assert_eq!(t.maintenance_us, 100 * S);
    assert_eq!(t.maintenance_down_us, 50 * S);
    assert_eq!(t.maintenance_no_data_us, 0);
    assert_eq!(
        tally(&rules3(), &obs, &none(), 0, 300 * S).down_us,
        t.down_us
    );
}

fn spans() -> impl Strategy<Value = Spans> {
    prop::collection::vec((0i64..700, 1i64..200), 0..4)
        .prop_map(|v| Spans::new(v.into_iter().map(|(a, len)| (a * S, (a + len) * S))))
}

fn observations() -> impl Strategy<Value = Vec<Observation>> {
    prop::collection::vec((0usize..3, 0i64..600, any::<bool>()), 0..80).prop_map(|v| {
        v.into_iter()
            .map(|(region, s, ok)| Observation {
                region,
                start_us: s * S,
                ok,
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn down_intervals_are_ordered_apart_and_add_up_to_the_downtime(obs in observations(), a in 0i64..300, len in 1i64..400) {
        let (from, to) = (a * S, (a + len) * S);
        let intervals = down_intervals(&rules3(), &obs, from, to);
        let total: i64 = intervals.iter().map(|(s, e)| e - s).sum();
        prop_assert_eq!(total, tally(&rules3(), &obs, &none(), from, to).down_us);
        for w in intervals.windows(2) {
            prop_assert!(w[0].1 < w[1].0, "{:?}", intervals);
        }
        for (s, e) in &intervals {
            prop_assert!(from <= *s && s < e && *e <= to);
        }
    }

    #[test]
    fn downtime_never_exceeds_the_window(obs in observations(), a in 0i64..300, len in 1i64..400) {
        let (from, to) = (a * S, (a + len) * S);
        let t = tally(&rules3(), &obs, &none(), from, to);
        prop_assert!(t.down_us >= 0 && t.no_data_us >= 0);
        prop_assert!(t.down_us + t.no_data_us <= t.window_us);
        prop_assert_eq!(t.window_us, to - from);
    }

    #[test]
    fn a_region_failing_alone_never_makes_downtime(obs in observations()) {
        let only_region_0_fails: Vec<Observation> = obs
            .into_iter()
            .map(|o| Observation { ok: o.ok || o.region != 0, ..o })
            .collect();
        prop_assert_eq!(tally(&rules3(), &only_region_0_fails, &none(), 0, 700 * S).down_us, 0);
    }

    #[test]
    fn adding_a_healthy_region_never_increases_downtime(obs in observations()) {
        let three = tally(&rules3(), &obs, &none(), 0, 700 * S);
        let mut with_fourth = obs.clone();
        with_fourth.extend((0..70).map(|i| Observation { region: 3, start_us: i * 10 * S, ok: true }));
        let same_quorum = Rules { regions: 4, ..rules3() };
        prop_assert!(tally(&same_quorum, &with_fourth, &none(), 0, 700 * S).down_us <= three.down_us);
        let majority = Rules::new(4, 10 * S, 5 * S);
        prop_assert!(tally(&majority, &with_fourth, &none(), 0, 700 * S).down_us <= three.down_us);
    }

    #[test]
    fn rollups_of_any_window_add_up_to_the_math_on_the_raw_results(obs in observations(), a in 0i64..10, b in 1i64..12) {
        let from = a * MINUTE_US;
        let to = (a + b) * MINUTE_US;
        let mut summed = Tally::default();
        for (_, t) in minute_rollups(&rules3(), &obs, &none(), from, to) {
            summed.add(&t);
        }
        prop_assert_eq!(summed, tally(&rules3(), &obs, &none(), from, to));
    }

    #[test]
    fn maintenance_is_the_window_it_covers_and_changes_no_other_figure(obs in observations(), m in spans(), a in 0i64..300, len in 1i64..400) {
        let (from, to) = (a * S, (a + len) * S);
        let plain = tally(&rules3(), &obs, &none(), from, to);
        let t = tally(&rules3(), &obs, &m, from, to);
        prop_assert_eq!(t.maintenance_us, m.overlap_us(from, to));
        prop_assert_eq!((t.down_us, t.no_data_us, t.window_us), (plain.down_us, plain.no_data_us, plain.window_us));
        prop_assert!(t.maintenance_down_us <= t.down_us && t.maintenance_no_data_us <= t.no_data_us);
        prop_assert!(t.maintenance_down_us + t.maintenance_no_data_us <= t.maintenance_us);
        let mut summed = Tally::default();
        for (_, piece) in tally_split(&rules3(), &obs, &m, from, to, MINUTE_US) {
            summed.add(&piece);
        }
        prop_assert_eq!(summed, t);
    }

    #[test]
    fn minute_rollups_are_aligned_and_cover_the_window(obs in observations(), a in 0i64..500, len in 1i64..300) {
        let (from, to) = (a * S, (a + len) * S);
        let pieces = minute_rollups(&rules3(), &obs, &none(), from, to);
        prop_assert!(pieces.iter().all(|(m, _)| m % MINUTE_US == 0));
        let covered: i64 = pieces.iter().map(|(_, t)| t.window_us).sum();
        prop_assert_eq!(covered, to - from);
    }
}

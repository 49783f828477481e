use std::time::Duration;

use proptest::prelude::*;

use super::*;

const S: i64 = 1_000_000;
const DAY_S: u64 = 86_400;

#[test]
fn the_defaults_are_the_platforms_promise() {
    let slo = Slo::default();
    assert_eq!(slo.availability_target(), 0.9999);
    assert_eq!(slo.latency_objective(), Duration::from_millis(800));
    assert_eq!(slo.window(), Duration::from_secs(90 * DAY_S));
    assert!(!slo.maintenance_in_sla());
    // 12.96 minutes per 90 days.
    assert!((slo.window_budget_us() / 60e6 - 12.96).abs() < 1e-6);
}

#[test]
fn targets_are_written_as_percentages_or_ratios_never_ambiguously() {
    for (text, ratio) in [
        ("99.99%", 0.9999),
        ("99.9 %", 0.999),
        ("0.999", 0.999),
        (" 0.9999 ", 0.9999),
        ("50%", 0.5),
    ] {
        assert_eq!(Target::parse(text).map(Target::ratio), Ok(ratio), "{text}");
    }
    assert_eq!(
        Target::parse("99.9"),
        Err(SloError::TargetAmbiguous("99.9".into()))
    );
    assert_eq!(
        Target::parse("1"),
        Err(SloError::TargetAmbiguous("1".into()))
    );
    for bad in ["0", "0%", "100%", "101%", "-1", "1e400", "-5%", "100"] {
        assert!(
            matches!(
                Target::parse(bad),
                Err(SloError::TargetOutOfRange(_) | SloError::TargetAmbiguous(_))
            ),
            "{bad}: {:?}",
            Target::parse(bad)
        );
    }
    assert_eq!(
        Target::parse("high"),
        Err(SloError::TargetNotANumber("high".into()))
    );
    assert_eq!(
        Target::parse("100%").unwrap_err().to_string(),
        "100% is not between 0 and 100 % (both excluded): a target of 100 % allows no downtime at all"
    );
    assert_eq!(
        Target::parse("99.9").unwrap_err().to_string(),
        "99.9 is ambiguous: write a percentage with its % sign (99.9%) or a ratio below 1 (0.999)"
    );
}

#[test]
fn a_target_is_shown_as_written() {
    assert_eq!(Target::parse("99.99%").unwrap().to_string(), "99.99%");
    assert_eq!(Target::parse("0.999").unwrap().to_string(), "99.9%");
    assert_eq!(Target::parse("95%").unwrap().to_string(), "95%");
}

#[test]
fn objectives_and_windows_out_of_range_are_refused() {
    let t = Target::parse("99.9%").unwrap();
    let day = Duration::from_secs(DAY_S);
    assert_eq!(
        Slo::new(t, Duration::ZERO, 30 * day, false),
        Err(SloError::ObjectiveZero)
    );
    assert!(matches!(
        Slo::new(t, Duration::from_secs(121), 30 * day, false),
        Err(SloError::ObjectiveTooLong(_))
    ));
    assert_eq!(
        Slo::new(
            t,
            Duration::from_millis(500),
            Duration::from_secs(23 * 3600),
            false
        )
        .unwrap_err()
        .to_string(),
        "must be from 1 day to 400 days, got 23h"
    );
    assert!(Slo::new(t, Duration::from_millis(500), 401 * day, false).is_err());
    assert!(Slo::new(t, Duration::from_millis(500), day, false).is_ok());
    assert!(Slo::new(t, Duration::from_millis(500), 400 * day, false).is_ok());
}

#[test]
fn overrides_take_the_rest_from_the_defaults() {
    let slo = Slo::default()
        .with(SloOverrides {
            target: Some(Target::parse("99.9%").unwrap()),
            window: Some(Duration::from_secs(30 * DAY_S)),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(slo.availability_target(), 0.999);
    assert_eq!(slo.window(), Duration::from_secs(30 * DAY_S));
    assert_eq!(slo.latency_objective(), Duration::from_millis(800));
}

#[test]
fn the_wire_form_round_trips_and_refuses_what_new_refuses() {
    let slo = Slo::default();
    let json = serde_json::to_value(slo).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"availability_target": 0.9999, "latency_objective_ms": 800.0,
            "window_seconds": 7_776_000, "maintenance_in_sla": false})
    );
    assert_eq!(serde_json::from_value::<Slo>(json).unwrap(), slo);
    let bad = serde_json::json!({"availability_target": 99.9, "latency_objective_ms": 800.0,
        "window_seconds": 7_776_000, "maintenance_in_sla": false});
    let e = serde_json::from_value::<Slo>(bad).unwrap_err().to_string();
    assert!(
        e.starts_with("`availability_target`: 99.9 is ambiguous"),
        "{e}"
    );
}

fn tally(window: i64, down: i64, no_data: i64, m: i64, m_down: i64, m_no_data: i64) -> Tally {
    Tally {
        window_us: window * S,
        down_us: down * S,
        no_data_us: no_data * S,
        maintenance_us: m * S,
        maintenance_down_us: m_down * S,
        maintenance_no_data_us: m_no_data * S,
    }
}

#[test]
fn maintenance_is_left_out_or_counted_as_the_slo_says() {
    // A day with 10 minutes down, 6 of them inside a 60-minute maintenance window that also
    // had 5 minutes without data, and 3 minutes without data outside it.
    let t = tally(86_400, 600, 480, 3_600, 360, 300);
    let slo = Slo::default();
    let ex = slo.figures(&t);
    assert_eq!(ex.down_us, 240 * S);
    assert_eq!(ex.no_data_us, 180 * S);
    assert_eq!(ex.maintenance_us, 3_600 * S);
    assert_eq!(ex.counted_us, (86_400 - 180 - 3_600) * S);
    assert_eq!(ex.availability, Some(1.0 - 240.0 / (86_400.0 - 3_780.0)));
    let counted = Slo::new(slo.target(), slo.latency_objective(), slo.window(), true)
        .unwrap()
        .figures(&t);
    assert_eq!(counted.down_us, 600 * S);
    assert_eq!(counted.no_data_us, 480 * S);
    assert_eq!(counted.counted_us, (86_400 - 480) * S);
    assert_eq!(counted.availability, Some(1.0 - 600.0 / (86_400.0 - 480.0)));
    assert_eq!(counted.maintenance_us, 3_600 * S);
}

#[test]
fn the_budget_and_burn_rate_come_from_the_target() {
    let t = tally(3_600, 36, 0, 0, 0, 0);
    let four_nines = Slo::default().figures(&t);
    let three_nines = Slo::default()
        .with(SloOverrides {
            target: Some(Target::parse("99.9%").unwrap()),
            ..Default::default()
        })
        .unwrap()
        .figures(&t);
    // 1 % bad: 100x the allowed 0.01 %, 10x the allowed 0.1 %.
    assert!((four_nines.burn_rate.unwrap() - 100.0).abs() < 1e-9);
    assert!((three_nines.burn_rate.unwrap() - 10.0).abs() < 1e-9);
    assert!((four_nines.budget_us - 0.36 * S as f64).abs() < 1.0);
    assert!((three_nines.budget_us - 3.6 * S as f64).abs() < 1.0);
    assert!((three_nines.budget_remaining_us - (3.6 - 36.0) * S as f64).abs() < 1.0);
    let nothing = Slo::default().figures(&tally(60, 0, 60, 0, 0, 0));
    assert_eq!((nothing.availability, nothing.burn_rate), (None, None));
    assert_eq!(nothing.budget_us, 0.0);
}

proptest! {
    #[test]
    fn figures_add_up_to_the_window(
        window in 1i64..100_000, a in 0i64..100_000, b in 0i64..100_000,
        c in 0i64..100_000, d in 0i64..100_000, counted_in in any::<bool>(),
    ) {
        // A consistent tally: maintenance within the window, its down and no data within it.
        let m = a % (window + 1);
        let m_down = b % (m + 1);
        let m_no_data = c % (m - m_down + 1);
        let outside = window - m;
        let down_out = d % (outside + 1);
        let no_data_out = (a + d) % (outside - down_out + 1);
        let t = tally(window, down_out + m_down, no_data_out + m_no_data, m, m_down, m_no_data);
        let slo = Slo::new(Target::parse("99.9%").unwrap(), Duration::from_secs(1), Duration::from_secs(DAY_S), counted_in).unwrap();
        let f = slo.figures(&t);
        prop_assert!(f.counted_us >= 0 && f.down_us >= 0 && f.no_data_us >= 0);
        prop_assert!(f.down_us <= f.counted_us);
        let left_out = if counted_in { 0 } else { f.maintenance_us };
        prop_assert_eq!(f.counted_us + f.no_data_us + left_out, f.window_us);
        if let Some(av) = f.availability {
            prop_assert!((0.0..=1.0).contains(&av));
        }
    }
}

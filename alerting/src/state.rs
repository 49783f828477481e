//! One check's state machine: a value becomes a raw level by the thresholds, the gate and the
//! `for` duration decide whether that level counts, and a change of the counted level is an
//! alert. Pure: the engine persists [`CheckState`] and acts on [`Change`]s.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::check::Check;
use crate::notify::Level;

/// What is kept per check across evaluations (and restarts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckState {
    pub level: Level,
    /// When `level` began, microseconds since the epoch.
    pub since_us: i64,
    pub value: Option<f64>,
    pub last_eval_us: Option<i64>,
    /// The last raw levels, newest last, for the gate.
    pub recent: VecDeque<Level>,
    /// Since when the raw level has been bad without a break.
    pub bad_since_us: Option<i64>,
}

impl CheckState {
    pub fn new(now_us: i64) -> Self {
        CheckState {
            level: Level::Ok,
            since_us: now_us,
            value: None,
            last_eval_us: None,
            recent: VecDeque::new(),
            bad_since_us: None,
        }
    }
}

/// A change of a check's level: Seyren's alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub from: Level,
    pub to: Level,
    pub value: Option<f64>,
    pub at_us: i64,
}

/// The raw level of one evaluation.
pub fn raw_level(check: &Check, value: Option<f64>) -> Level {
    match value {
        None if check.allow_no_data => Level::Ok,
        None => Level::Unknown,
        Some(v) => check.thresholds.level(v),
    }
}

/// Applies one evaluation; returns the change, if the counted level changed. `bad_allowed`
/// false (too few bad minutes for an SLO alert) makes a bad value count as OK.
pub fn step(
    check: &Check,
    st: &mut CheckState,
    value: Option<f64>,
    bad_allowed: bool,
    now_us: i64,
) -> Option<Change> {
    let raw = match raw_level(check, value) {
        Level::Warn | Level::Error if !bad_allowed => Level::Ok,
        l => l,
    };
    st.value = value;
    st.last_eval_us = Some(now_us);
    if let Some(g) = check.gate {
        st.recent.push_back(raw);
        while st.recent.len() > g.of as usize {
            st.recent.pop_front();
        }
    } else {
        st.recent.clear();
    }
    let bad = matches!(raw, Level::Warn | Level::Error);
    st.bad_since_us = match (bad, st.bad_since_us) {
        (true, Some(s)) => Some(s),
        (true, None) => Some(now_us),
        (false, _) => None,
    };
    let counted = counted_level(check, st, raw, now_us);
    if counted == st.level {
        return None;
    }
    let change = Change {
        from: st.level,
        to: counted,
        value,
        at_us: now_us,
    };
    st.level = counted;
    st.since_us = now_us;
    Some(change)
}

/// A bad raw level counts once the gate and the `for` duration agree; anything else (OK,
/// UNKNOWN) counts at once, so recovery is never delayed.
fn counted_level(check: &Check, st: &CheckState, raw: Level, now_us: i64) -> Level {
    if !matches!(raw, Level::Warn | Level::Error) {
        return raw;
    }
    if let (Some(d), Some(s)) = (check.for_duration, st.bad_since_us) {
        let held = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        if now_us.saturating_sub(s) < held {
            // Not yet: what was counted stands (a bad value never makes OK, or a resolve).
            return st.level;
        }
    }
    let Some(g) = check.gate else {
        return raw;
    };
    let at_least = |l: Level| {
        st.recent
            .iter()
            .filter(|r| **r >= l && **r != Level::Unknown)
            .count()
    };
    if raw == Level::Error && at_least(Level::Error) >= g.bad as usize {
        Level::Error
    } else if at_least(Level::Warn) >= g.bad as usize {
        Level::Warn
    } else {
        st.level
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::check::{Gate, Measure, Origin, Schedule, Thresholds};
    use crate::target::Expr;

    fn check(gate: Option<Gate>, for_duration: Option<Duration>, allow_no_data: bool) -> Check {
        Check {
            id: "c".into(),
            name: "c".into(),
            description: String::new(),
            target_text: "1".into(),
            measure: Measure::Target(Expr::Number(1.0)),
            thresholds: Thresholds::new(Some(1.0), Some(2.0), None).unwrap(),
            enabled: true,
            allow_no_data,
            schedule: Schedule::Every(Duration::from_secs(10)),
            gate,
            for_duration,
            min_bad_minutes: None,
            group: None,
            depends_on: Vec::new(),
            dependency_grace: None,
            about: None,
            origin: Origin::Config,
        }
    }

    fn run(c: &Check, values: &[Option<f64>]) -> Vec<Level> {
        let mut st = CheckState::new(0);
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                step(c, &mut st, *v, true, i as i64 * 10_000_000);
                st.level
            })
            .collect()
    }

    #[test]
    fn every_change_of_level_is_one_change() {
        let c = check(None, None, false);
        let mut st = CheckState::new(0);
        assert_eq!(step(&c, &mut st, Some(0.0), true, 1), None);
        let ch = step(&c, &mut st, Some(2.5), true, 2).unwrap();
        assert_eq!((ch.from, ch.to), (Level::Ok, Level::Error));
        assert_eq!(step(&c, &mut st, Some(3.0), true, 3), None);
        let ch = step(&c, &mut st, Some(1.5), true, 4).unwrap();
        assert_eq!((ch.from, ch.to), (Level::Error, Level::Warn));
        let ch = step(&c, &mut st, None, true, 5).unwrap();
        assert_eq!(ch.to, Level::Unknown);
    }

    #[test]
    fn no_data_is_ok_when_allowed() {
        let c = check(None, None, true);
        assert_eq!(
            run(&c, &[None, Some(5.0), None]),
            [Level::Ok, Level::Error, Level::Ok]
        );
    }

    #[test]
    fn a_gate_needs_n_bad_of_the_last_m_and_recovery_is_immediate() {
        let c = check(Some(Gate { bad: 2, of: 3 }), None, false);
        let s = |v: f64| Some(v);
        assert_eq!(
            run(&c, &[s(5.0), s(0.0), s(5.0), s(5.0), s(0.0), s(5.0)]),
            [
                Level::Ok,
                Level::Ok,
                Level::Error,
                Level::Error,
                Level::Ok,
                Level::Error
            ]
        );
        // One bad evaluation alone never counts.
        assert_eq!(run(&c, &[s(5.0), s(0.0), s(0.0), s(5.0)]), [Level::Ok; 4]);
    }

    #[test]
    fn a_for_duration_waits_for_the_raw_level_to_stay_bad() {
        let c = check(None, Some(Duration::from_secs(25)), false);
        let s = |v: f64| Some(v);
        // Evaluations 10 s apart: bad at 0, 10, 20, 30 counts from 30 (30 - 0 >= 25).
        assert_eq!(
            run(&c, &[s(5.0), s(5.0), s(5.0), s(5.0), s(0.0)]),
            [Level::Ok, Level::Ok, Level::Ok, Level::Error, Level::Ok]
        );
        // A break restarts the clock.
        assert_eq!(
            run(&c, &[s(5.0), s(5.0), s(0.0), s(5.0), s(5.0)]),
            [Level::Ok; 5]
        );
    }

    #[test]
    fn a_bad_value_waiting_for_its_gate_or_for_duration_never_resolves() {
        let c = check(None, Some(Duration::from_secs(25)), false);
        let s = |v: f64| Some(v);
        // ERROR, one evaluation without data (UNKNOWN), then bad again: never OK in between.
        assert_eq!(
            run(&c, &[s(5.0), s(5.0), s(5.0), s(5.0), None, s(5.0)]),
            [
                Level::Ok,
                Level::Ok,
                Level::Ok,
                Level::Error,
                Level::Unknown,
                Level::Unknown
            ]
        );
        let g = check(Some(Gate { bad: 3, of: 3 }), None, false);
        assert_eq!(
            run(&g, &[s(5.0), s(5.0), s(5.0), None, s(5.0)]),
            [
                Level::Ok,
                Level::Ok,
                Level::Error,
                Level::Unknown,
                Level::Unknown
            ]
        );
    }
}

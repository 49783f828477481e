//! A check's service level objective: its availability target, its latency objective, the
//! rolling window both are judged over, and whether scheduled maintenance counts against it.
//!
//! The collector owns every check's `Slo` and serves it with every figure; nothing else in
//! Lookout holds a target of its own. The defaults below are DESIGN.md's (MixRadio's): under
//! 0.8 s, 99.99 % over a rolling 90 days, maintenance left out.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sla::Tally;

const DAY: Duration = Duration::from_secs(86_400);

/// The shortest SLO window: a shorter one would page on noise and budget nothing useful.
pub const MIN_WINDOW: Duration = DAY;
/// The longest SLO window: the collector keeps rollups for 400 days.
pub const MAX_WINDOW: Duration = Duration::from_secs(400 * 86_400);
/// The slowest latency objective a check may have (the longest timeout a check may have).
pub const MAX_LATENCY_OBJECTIVE: Duration = Duration::from_secs(120);

/// Why an objective was refused. Messages name the value, not the field: the config and the
/// API each say where it was written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SloError {
    #[error("{0:?} is not a number: write a percentage such as 99.9% or a ratio such as 0.999")]
    TargetNotANumber(String),
    #[error(
        "{0} is ambiguous: write a percentage with its % sign (99.9%) or a ratio below 1 (0.999)"
    )]
    TargetAmbiguous(String),
    #[error(
        "{0} is not between 0 and 100 % (both excluded): a target of 100 % allows no downtime at all"
    )]
    TargetOutOfRange(String),
    #[error("must be more than 0 ms")]
    ObjectiveZero,
    #[error("must be at most {} s, got {}", MAX_LATENCY_OBJECTIVE.as_secs(), humanize(*.0))]
    ObjectiveTooLong(Duration),
    #[error("must be from 1 day to 400 days, got {}", humanize(*.0))]
    WindowOutOfRange(Duration),
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_nanos() == 0 && s.is_multiple_of(86_400) && s > 0 {
        format!("{}d", s / 86_400)
    } else if d.subsec_nanos() == 0 && s.is_multiple_of(3_600) && s > 0 {
        format!("{}h", s / 3_600)
    } else if d.subsec_nanos() == 0 {
        format!("{s}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// An availability target: a share of the measured time the check must be up, strictly
/// between 0 and 1.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Target(f64);

impl Target {
    /// A ratio, as the API takes it: `0.999`.
    pub fn from_ratio(ratio: f64) -> Result<Target, SloError> {
        if ratio.is_finite() && ratio > 0.0 && ratio < 1.0 {
            Ok(Target(ratio))
        } else if ratio.is_finite() && ratio > 1.0 && ratio < 100.0 {
            Err(SloError::TargetAmbiguous(ratio.to_string()))
        } else {
            Err(SloError::TargetOutOfRange(ratio.to_string()))
        }
    }

    /// As people write it: `99.9%` or `0.999`. A bare number of 1 or more could be either a
    /// percentage without its sign or a mistaken ratio, so it is refused rather than guessed.
    pub fn parse(text: &str) -> Result<Target, SloError> {
        let t = text.trim();
        match t.strip_suffix('%') {
            Some(p) => {
                let v: f64 = p
                    .trim()
                    .parse()
                    .map_err(|_| SloError::TargetNotANumber(t.to_owned()))?;
                if !(v.is_finite() && v > 0.0 && v < 100.0) {
                    return Err(SloError::TargetOutOfRange(t.to_owned()));
                }
                // Rounded to twelve decimals, so that `99.99%` is the same number as
                // `0.9999` (99.99 / 100 alone is 0.9998999999999999).
                Target::from_ratio((v / 100.0 * 1e12).round() / 1e12)
                    .map_err(|_| SloError::TargetOutOfRange(t.to_owned()))
            }
            None => {
                let v: f64 = t
                    .parse()
                    .map_err(|_| SloError::TargetNotANumber(t.to_owned()))?;
                if v >= 1.0 && v.is_finite() && v < 100.0 {
                    Err(SloError::TargetAmbiguous(t.to_owned()))
                } else {
                    Target::from_ratio(v).map_err(|_| SloError::TargetOutOfRange(t.to_owned()))
                }
            }
        }
    }

    pub fn ratio(self) -> f64 {
        self.0
    }

    /// The share of time that may be bad: `1 - target`.
    pub fn allowed_bad(self) -> f64 {
        1.0 - self.0
    }
}

impl fmt::Display for Target {
    /// `99.99%`: as many digits as the target has, no float noise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let percent = format!("{:.6}", self.0 * 100.0);
        let percent = percent.trim_end_matches('0').trim_end_matches('.');
        write!(f, "{percent}%")
    }
}

/// One check's objectives, validated: every `Slo` that exists is a valid one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "SloWire", into = "SloWire")]
pub struct Slo {
    target: Target,
    latency_objective: Duration,
    window: Duration,
    maintenance_in_sla: bool,
}

impl Default for Slo {
    /// DESIGN.md's: 99.99 % over a rolling 90 days, under 800 ms, maintenance left out.
    fn default() -> Self {
        Slo {
            target: Target(0.9999),
            latency_objective: Duration::from_millis(800),
            window: Duration::from_secs(90 * 86_400),
            maintenance_in_sla: false,
        }
    }
}

/// What is written where an objective is given (the config, the API): every part optional,
/// each missing one taken from the defaults it is laid over.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SloOverrides {
    pub target: Option<Target>,
    pub latency_objective: Option<Duration>,
    pub window: Option<Duration>,
    pub maintenance_in_sla: Option<bool>,
}

impl Slo {
    pub fn new(
        target: Target,
        latency_objective: Duration,
        window: Duration,
        maintenance_in_sla: bool,
    ) -> Result<Slo, SloError> {
        check_objective(latency_objective)?;
        check_window(window)?;
        Ok(Slo {
            target,
            latency_objective,
            window,
            maintenance_in_sla,
        })
    }

    /// These objectives with `o`'s parts in place of theirs.
    pub fn with(self, o: SloOverrides) -> Result<Slo, SloError> {
        Slo::new(
            o.target.unwrap_or(self.target),
            o.latency_objective.unwrap_or(self.latency_objective),
            o.window.unwrap_or(self.window),
            o.maintenance_in_sla.unwrap_or(self.maintenance_in_sla),
        )
    }

    pub fn target(&self) -> Target {
        self.target
    }

    pub fn availability_target(&self) -> f64 {
        self.target.ratio()
    }

    pub fn latency_objective(&self) -> Duration {
        self.latency_objective
    }

    pub fn latency_objective_us(&self) -> i64 {
        i64::try_from(self.latency_objective.as_micros()).unwrap_or(i64::MAX)
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    pub fn window_us(&self) -> i64 {
        i64::try_from(self.window.as_micros()).unwrap_or(i64::MAX)
    }

    pub fn maintenance_in_sla(&self) -> bool {
        self.maintenance_in_sla
    }

    /// The downtime the whole SLO window allows when every instant of it is measured.
    pub fn window_budget_us(&self) -> f64 {
        self.target.allowed_bad() * self.window_us() as f64
    }

    /// The SLA figures of a window's tally, by this SLO's rules: maintenance left out or
    /// counted, the budget from the target. The one place they are computed.
    pub fn figures(&self, t: &Tally) -> SlaFigures {
        let (down_us, no_data_us, left_out_maintenance) = if self.maintenance_in_sla {
            (t.down_us, t.no_data_us, 0)
        } else {
            (
                t.down_us - t.maintenance_down_us,
                t.no_data_us - t.maintenance_no_data_us,
                t.maintenance_us,
            )
        };
        let counted_us = (t.window_us - no_data_us - left_out_maintenance).max(0);
        let budget_us = self.target.allowed_bad() * counted_us as f64;
        let bad_fraction = (counted_us > 0).then(|| down_us as f64 / counted_us as f64);
        SlaFigures {
            window_us: t.window_us,
            down_us,
            no_data_us,
            maintenance_us: t.maintenance_us,
            maintenance_down_us: t.maintenance_down_us,
            counted_us,
            availability: bad_fraction.map(|b| 1.0 - b),
            budget_us,
            budget_remaining_us: budget_us - down_us as f64,
            burn_rate: bad_fraction.map(|b| b / self.target.allowed_bad()),
        }
    }
}

/// A latency objective a check may have.
pub fn check_objective(d: Duration) -> Result<(), SloError> {
    if d.is_zero() {
        Err(SloError::ObjectiveZero)
    } else if d > MAX_LATENCY_OBJECTIVE {
        Err(SloError::ObjectiveTooLong(d))
    } else {
        Ok(())
    }
}

/// A window the SLO may be judged over.
pub fn check_window(d: Duration) -> Result<(), SloError> {
    if d < MIN_WINDOW || d > MAX_WINDOW {
        Err(SloError::WindowOutOfRange(d))
    } else {
        Ok(())
    }
}

/// A window's SLA figures as a check's SLO reads its tally. Downtime and no-data time are
/// those that count: with maintenance left out, what happened inside a maintenance window is
/// neither (it is reported as maintenance).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlaFigures {
    pub window_us: i64,
    /// Downtime counted against the target.
    pub down_us: i64,
    /// Time without data, left out of the availability.
    pub no_data_us: i64,
    /// Time inside maintenance windows, whether or not it counts.
    pub maintenance_us: i64,
    /// Of which down (counted in `down_us` only when the SLO counts maintenance).
    pub maintenance_down_us: i64,
    /// The time availability is measured over: the window less what is left out.
    pub counted_us: i64,
    /// `1 - down / counted`; `None` when nothing of the window counts.
    pub availability: Option<f64>,
    /// The downtime `counted_us` allows: `(1 - target) x counted`.
    pub budget_us: f64,
    /// Negative once overspent.
    pub budget_remaining_us: f64,
    /// The bad fraction over the allowed one; 1 spends the budget exactly over the window.
    pub burn_rate: Option<f64>,
}

/// An `Slo` as the API writes it and reads it back.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SloWire {
    /// A ratio: 0.9999.
    availability_target: f64,
    latency_objective_ms: f64,
    window_seconds: u64,
    maintenance_in_sla: bool,
}

impl From<Slo> for SloWire {
    fn from(s: Slo) -> Self {
        SloWire {
            availability_target: s.target.ratio(),
            latency_objective_ms: s.latency_objective.as_secs_f64() * 1e3,
            window_seconds: s.window.as_secs(),
            maintenance_in_sla: s.maintenance_in_sla,
        }
    }
}

impl TryFrom<SloWire> for Slo {
    type Error = String;

    fn try_from(w: SloWire) -> Result<Self, Self::Error> {
        let target = Target::from_ratio(w.availability_target)
            .map_err(|e| format!("`availability_target`: {e}"))?;
        if !(w.latency_objective_ms.is_finite() && w.latency_objective_ms >= 0.0) {
            return Err("`latency_objective_ms` must be a positive number".into());
        }
        let objective = Duration::from_secs_f64(w.latency_objective_ms / 1e3);
        check_objective(objective).map_err(|e| format!("`latency_objective_ms`: {e}"))?;
        let window = Duration::from_secs(w.window_seconds);
        check_window(window).map_err(|e| format!("`window_seconds`: {e}"))?;
        Ok(Slo {
            target,
            latency_objective: objective,
            window,
            maintenance_in_sla: w.maintenance_in_sla,
        })
    }
}

#[cfg(test)]
mod tests;

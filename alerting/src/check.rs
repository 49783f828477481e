//! Checks and subscriptions, as in Seyren, with what its users asked for: per-check
//! schedules, an "N bad out of the last M" gate, a `for` duration, dependencies and groups.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::notify::Level;
use crate::target::{self, Expr};

/// Where a check came from: the config, the API, or generated for every collector check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Config,
    Api,
    Generated,
}

/// What a check measures.
#[derive(Debug, Clone, PartialEq)]
pub enum Measure {
    /// A target expression.
    Target(Expr),
    /// Whether Lookout can see: 0 while results arrive, else how many regions are silent on
    /// every check (all of them when nothing arrives, or the collector is unreachable).
    Blind,
    /// How many services the replacer holds for a person (a mass failure), from the events it
    /// sends the collector: 0 when none, or when no replacer runs.
    ReplacerHeld,
}

/// Which way is worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Worse {
    Higher,
    Lower,
}

/// Warn and error thresholds. At least one is set; when both are, `warn > error` means lower
/// values are worse (as in Seyren).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub warn: Option<f64>,
    pub error: Option<f64>,
    pub worse: Worse,
}

impl Thresholds {
    /// Seyren's rule for the direction when both are given; `worse` is needed with one.
    pub fn new(
        warn: Option<f64>,
        error: Option<f64>,
        worse: Option<Worse>,
    ) -> Result<Self, String> {
        for (name, v) in [("warn", warn), ("error", error)] {
            if v.is_some_and(|v| !v.is_finite()) {
                return Err(format!("`{name}` must be a finite number"));
            }
        }
        let inferred = match (warn, error) {
            (None, None) => return Err("give `warn`, `error` or both".into()),
            (Some(w), Some(e)) if w > e => Some(Worse::Lower),
            (Some(w), Some(e)) if w < e => Some(Worse::Higher),
            _ => None,
        };
        let worse = match (inferred, worse) {
            (Some(i), Some(w)) if i != w => {
                return Err(format!(
                    "`worse: {}` contradicts the thresholds (warn {} error {} means {} is worse)",
                    name(w),
                    warn.unwrap_or_default(),
                    error.unwrap_or_default(),
                    name(i)
                ));
            }
            (Some(i), _) => i,
            (None, Some(w)) => w,
            (None, None) => Worse::Higher,
        };
        Ok(Thresholds { warn, error, worse })
    }

    /// The level of one value.
    pub fn level(&self, value: f64) -> Level {
        let reached = |t: Option<f64>| match (t, self.worse) {
            (Some(t), Worse::Higher) => value >= t,
            (Some(t), Worse::Lower) => value <= t,
            (None, _) => false,
        };
        if reached(self.error) {
            Level::Error
        } else if reached(self.warn) {
            Level::Warn
        } else {
            Level::Ok
        }
    }

    /// How the threshold a level was judged by reads, e.g. `>= 0.8`.
    pub fn describe(&self, level: Level) -> Option<String> {
        let t = match level {
            Level::Error => self.error?,
            Level::Warn => self.warn?,
            _ => return None,
        };
        Some(match self.worse {
            Worse::Higher => format!(">= {t}"),
            Worse::Lower => format!("<= {t}"),
        })
    }
}

fn name(w: Worse) -> &'static str {
    match w {
        Worse::Higher => "higher",
        Worse::Lower => "lower",
    }
}

/// When a check is evaluated.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    Every(Duration),
    Cron(lookout_conf::Cron),
}

impl Schedule {
    /// The next evaluation strictly after `after`.
    pub fn next_after(
        &self,
        after: chrono::DateTime<chrono::Utc>,
    ) -> chrono::DateTime<chrono::Utc> {
        match self {
            Schedule::Every(d) => {
                after + chrono::Duration::from_std(*d).unwrap_or(chrono::Duration::seconds(60))
            }
            Schedule::Cron(c) => c
                .next_after(after)
                .unwrap_or(after + chrono::Duration::days(365)),
        }
    }

    pub fn parse_cron(text: &str) -> Result<Schedule, String> {
        lookout_conf::Cron::parse(text).map(Schedule::Cron)
    }

    pub fn describe(&self) -> String {
        match self {
            Schedule::Every(d) => format!("every {}", humantime::format_duration(*d)),
            Schedule::Cron(c) => format!("cron {c}"),
        }
    }
}

/// "At least `bad` bad evaluations out of the last `of`".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gate {
    pub bad: u32,
    pub of: u32,
}

impl Gate {
    pub fn new(bad: u32, of: u32) -> Result<Gate, String> {
        if bad == 0 || of == 0 || bad > of || of > 100 {
            return Err(format!(
                "a gate needs 1 <= bad <= of <= 100, got {bad} out of {of}"
            ));
        }
        Ok(Gate { bad, of })
    }
}

/// Only for SLO burn-rate checks: not bad unless the check was down in at least `count`
/// distinct minutes of the window, so one failed probe under 99.99 % never pages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinBadMinutes {
    pub check: String,
    #[serde(with = "humantime_serde_compat")]
    pub window: Duration,
    pub count: u32,
}

/// One alerting check.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub id: String,
    pub name: String,
    pub description: String,
    /// The target as written (or generated).
    pub target_text: String,
    pub measure: Measure,
    pub thresholds: Thresholds,
    pub enabled: bool,
    /// When there is no data: OK if allowed, else UNKNOWN.
    pub allow_no_data: bool,
    pub schedule: Schedule,
    pub gate: Option<Gate>,
    /// Bad only once the raw level has been bad this long without a break.
    pub for_duration: Option<Duration>,
    pub min_bad_minutes: Option<MinBadMinutes>,
    /// Checks failing in one group make one problem, so one page.
    pub group: Option<String>,
    /// While any of these checks is not OK, this one records but does not notify.
    pub depends_on: Vec<String>,
    /// Notifications stay held this long after a dependency recovers: a burn-rate alert
    /// explained by an outage already paged (and resolved) must not page again afterwards.
    pub dependency_grace: Option<Duration>,
    /// The collector check this one is about, for regions, reasons and the fast path.
    pub about: Option<String>,
    pub origin: Origin,
}

impl Check {
    /// The group its problems are kept in: its own id unless it names one.
    pub fn group_key(&self) -> String {
        match &self.group {
            Some(g) => format!("group:{g}"),
            None => format!("check:{}", self.id),
        }
    }

    /// Whether a change of the collector's live state should evaluate it at once.
    pub fn fast_path(&self) -> bool {
        match &self.measure {
            Measure::Blind => true,
            Measure::ReplacerHeld => false,
            Measure::Target(e) => e.series().iter().any(|s| s.window.is_none()),
        }
    }

    pub fn parse_target(text: &str) -> Result<Measure, String> {
        target::parse(text)
            .map(Measure::Target)
            .map_err(|e| format!("{e}\n{}", e.pointer(text)))
    }
}

/// Check ids: also used in URLs, so kept to a safe alphabet.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// Durations in JSON as humantime text (`5m`), as in the config.
pub mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!("{text:?} is not a duration ({e}); write e.g. `5m`"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warn_above_error_means_lower_is_worse_as_in_seyren() {
        let t = Thresholds::new(Some(0.999), Some(0.99), None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.worse, Worse::Lower);
        assert_eq!(t.level(1.0), Level::Ok);
        assert_eq!(t.level(0.999), Level::Warn);
        assert_eq!(t.level(0.995), Level::Warn);
        assert_eq!(t.level(0.98), Level::Error);
    }

    #[test]
    fn higher_is_worse_by_default_and_equal_thresholds_mean_error() {
        let t = Thresholds::new(Some(1.0), Some(1.0), None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.level(0.0), Level::Ok);
        assert_eq!(t.level(1.0), Level::Error);
        let w = Thresholds::new(Some(0.8), None, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.level(5.0), Level::Warn);
    }

    #[test]
    fn contradictions_and_missing_thresholds_are_refused() {
        assert!(Thresholds::new(None, None, None).is_err());
        assert!(Thresholds::new(Some(2.0), Some(1.0), Some(Worse::Higher)).is_err());
        assert!(Thresholds::new(Some(f64::NAN), None, None).is_err());
        assert!(Gate::new(3, 2).is_err());
        assert!(Gate::new(0, 2).is_err());
    }

    #[test]
    fn five_field_crontab_lines_are_accepted() {
        let s = Schedule::parse_cron("*/5 * * * *").unwrap_or_else(|e| panic!("{e}"));
        let t0 = chrono::DateTime::from_timestamp(1_000_000_020, 0).unwrap_or_default();
        let next = s.next_after(t0);
        assert_eq!(next.timestamp() % 300, 0);
        assert!(Schedule::parse_cron("nonsense").is_err());
    }
}

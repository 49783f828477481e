//! Checks as people write them, in the config or through the API: one serde shape for both,
//! validated into a [`Check`] with every error naming its field.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::check::{self, Check, Gate, Origin, Schedule, Thresholds, Worse};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// Made from the name when not given.
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub target: String,
    #[serde(default)]
    pub warn: Option<f64>,
    #[serde(default)]
    pub error: Option<f64>,
    /// `higher` or `lower`; needed only when one threshold is given.
    #[serde(default)]
    pub worse: Option<Worse>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub allow_no_data: bool,
    /// `30s`, `1m`... (default 1m), or a cron expression in `cron`.
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub cron: Option<String>,
    #[serde(default)]
    pub gate: Option<Gate>,
    /// Bad only after staying bad this long, e.g. `5m`.
    #[serde(default, rename = "for")]
    pub for_duration: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Subscriptions made with the check (the config's way; the API also has its own route).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<SubscriptionSpec>,
}

fn yes() -> bool {
    true
}

/// What is wrong with a spec, and in which field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{field}`: {message}")]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

fn err(field: &str, message: impl Into<String>) -> SpecError {
    SpecError {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// The default evaluation interval of a check that names none.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

fn duration(field: &str, text: &str) -> Result<Duration, SpecError> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        err(
            field,
            format!("{text:?} is not a duration ({e}); write e.g. `30s` or `5m`"),
        )
    })
}

/// An id made from a name: lowercase, with anything unsafe in a URL turned into `-`.
pub fn slug(name: &str) -> String {
    let s: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    s.trim_matches('-').to_owned()
}

impl CheckSpec {
    pub fn to_check(&self, origin: Origin) -> Result<Check, SpecError> {
        if self.name.trim().is_empty() {
            return Err(err("name", "must not be empty"));
        }
        let id = self.id.clone().unwrap_or_else(|| slug(&self.name));
        if !check::valid_id(&id) {
            return Err(err(
                "id",
                format!("{id:?} is not an id: up to 128 letters, digits, `-`, `_`, `.` or `:`"),
            ));
        }
        let measure = Check::parse_target(&self.target).map_err(|m| err("target", m))?;
        let thresholds =
            Thresholds::new(self.warn, self.error, self.worse).map_err(|m| err("warn/error", m))?;
        let schedule = match (&self.interval, &self.cron) {
            (Some(_), Some(_)) => {
                return Err(err("interval", "give `interval` or `cron`, not both"));
            }
            (Some(i), None) => {
                let d = duration("interval", i)?;
                if d < Duration::from_secs(1) || d > Duration::from_secs(86_400) {
                    return Err(err("interval", format!("{i:?} must be from 1s to 24h")));
                }
                Schedule::Every(d)
            }
            (None, Some(c)) => Schedule::parse_cron(c).map_err(|m| err("cron", m))?,
            (None, None) => Schedule::Every(DEFAULT_INTERVAL),
        };
        let for_duration = self
            .for_duration
            .as_deref()
            .map(|f| duration("for", f))
            .transpose()?;
        if let Some(g) = self.gate {
            Gate::new(g.bad, g.of).map_err(|m| err("gate", m))?;
        }
        if let Some(g) = &self.group
            && !check::valid_id(g)
        {
            return Err(err("group", format!("{g:?} is not a group name")));
        }
        if self.depends_on.contains(&id) {
            return Err(err("depends_on", "a check cannot depend on itself"));
        }
        let about = match &measure {
            check::Measure::Target(e) => e.checks().first().map(|c| c.to_string()),
            check::Measure::Blind | check::Measure::ReplacerHeld => None,
        };
        Ok(Check {
            id,
            name: self.name.trim().to_owned(),
            description: self.description.clone(),
            target_text: self.target.clone(),
            measure,
            thresholds,
            enabled: self.enabled,
            allow_no_data: self.allow_no_data,
            schedule,
            gate: self.gate,
            for_duration,
            min_bad_minutes: None,
            group: self.group.clone(),
            depends_on: self.depends_on.clone(),
            dependency_grace: None,
            about,
            origin,
        })
    }
}

/// A subscription as written; the id is made when not given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionSpec {
    #[serde(default)]
    pub id: Option<String>,
    pub notifier: String,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub ignore_warn: bool,
    #[serde(default)]
    pub ignore_error: bool,
    #[serde(default)]
    pub ignore_ok: bool,
    #[serde(default)]
    pub window: Option<crate::subscription::Window>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl SubscriptionSpec {
    /// To the alerter's own log: what the generated checks have when the config names none.
    pub fn log() -> SubscriptionSpec {
        SubscriptionSpec {
            id: None,
            notifier: "log".into(),
            target: None,
            ignore_warn: false,
            ignore_error: false,
            ignore_ok: false,
            window: None,
            enabled: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(target: &str) -> CheckSpec {
        CheckSpec {
            id: None,
            name: "Search availability".into(),
            description: String::new(),
            target: target.into(),
            warn: Some(0.9999),
            error: Some(0.999),
            worse: None,
            enabled: true,
            allow_no_data: false,
            interval: Some("30s".into()),
            cron: None,
            gate: None,
            for_duration: None,
            group: None,
            depends_on: Vec::new(),
            subscriptions: Vec::new(),
        }
    }

    #[test]
    fn a_spec_becomes_a_check_with_an_id_from_its_name() {
        let c = spec("availability(search, 1h)")
            .to_check(Origin::Api)
            .unwrap();
        assert_eq!(c.id, "search-availability");
        assert_eq!(c.thresholds.worse, Worse::Lower);
        assert_eq!(c.about.as_deref(), Some("search"));
    }

    #[test]
    fn errors_name_the_field() {
        let e = spec("availability(search")
            .to_check(Origin::Api)
            .unwrap_err();
        assert_eq!(e.field, "target");
        let mut s = spec("availability(search, 1h)");
        s.interval = Some("often".into());
        assert_eq!(s.to_check(Origin::Api).unwrap_err().field, "interval");
        let mut s = spec("availability(search, 1h)");
        s.cron = Some("* * *".into());
        s.interval = None;
        assert_eq!(s.to_check(Origin::Api).unwrap_err().field, "cron");
        let mut s = spec("availability(search, 1h)");
        s.gate = Some(Gate { bad: 4, of: 3 });
        assert_eq!(s.to_check(Origin::Api).unwrap_err().field, "gate");
    }
}

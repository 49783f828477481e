//! `slo:` (the suite's defaults, and each check's own) and the top-level `maintenance:`: what the
//! collector, which owns both, judges every figure by. Validated here with positions by the
//! rules of their owners (`lookout_model::slo`, `lookout_collector::maintenance`), so that
//! `lookout check-config` refuses what they would.

use lookout_collector::MaintenanceSpec;
use lookout_model::slo::{self, Slo, SloOverrides, Target};
use serde::Deserialize;

use super::Report;
use super::raw::{Dur, Spanned};

/// An SLO as written: every key optional, each missing one taken from what it is laid over
/// (the defaults for `slo:` at the top, the top for a check's).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSlo {
    /// `99.9%` or `0.999`.
    pub availability_target: Option<Spanned<Written>>,
    pub latency_objective: Option<Spanned<Dur>>,
    /// The rolling window, 1 to 400 days.
    pub window: Option<Spanned<Dur>>,
    /// `false` (default): maintenance is left out of availability; `true`: it counts.
    pub maintenance_in_sla: Option<Spanned<Written>>,
}

/// A value YAML may read as a number, a boolean or text: each key says which it takes.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Written {
    Bool(bool),
    Number(f64),
    Text(String),
}

impl Written {
    fn text(&self) -> String {
        match self {
            Written::Bool(b) => b.to_string(),
            Written::Number(n) => n.to_string(),
            Written::Text(t) => t.clone(),
        }
    }
}

/// The objectives `raw` lays over `base`; every problem reported at its key.
pub fn validate_slo(
    raw: Option<Spanned<RawSlo>>,
    base: Slo,
    path: &str,
    report: &mut Report,
) -> Slo {
    let Some(raw) = raw else {
        return base;
    };
    let (loc, r) = (raw.loc(), raw.value);
    let mut o = SloOverrides::default();
    if let Some(t) = &r.availability_target {
        let text = t.value.text();
        match (&t.value, Target::parse(&text)) {
            (Written::Bool(_), _) => report(
                t.loc(),
                &format!("{path}.availability_target"),
                format!(
                    "{text} is not a target: write a percentage such as 99.9% or a ratio such as 0.999"
                ),
            ),
            (_, Ok(target)) => o.target = Some(target),
            (_, Err(e)) => report(
                t.loc(),
                &format!("{path}.availability_target"),
                e.to_string(),
            ),
        }
    }
    if let Some(d) = &r.latency_objective {
        match slo::check_objective(d.value.0) {
            Ok(()) => o.latency_objective = Some(d.value.0),
            Err(e) => report(d.loc(), &format!("{path}.latency_objective"), e.to_string()),
        }
    }
    if let Some(d) = &r.window {
        match slo::check_window(d.value.0) {
            Ok(()) => o.window = Some(d.value.0),
            Err(e) => report(d.loc(), &format!("{path}.window"), e.to_string()),
        }
    }
    if let Some(m) = &r.maintenance_in_sla {
        match &m.value {
            Written::Bool(b) => o.maintenance_in_sla = Some(*b),
            other => report(
                m.loc(),
                &format!("{path}.maintenance_in_sla"),
                format!(
                    "{:?} is not true or false: `false` (the default) leaves maintenance out of availability, `true` counts it as any other time",
                    other.text()
                ),
            ),
        }
    }
    base.with(o).unwrap_or_else(|e| {
        report(loc, path, e.to_string());
        base
    })
}

/// A maintenance window as written in the config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMaintenance {
    pub name: String,
    #[serde(default)]
    pub checks: Vec<String>,
    pub starts: String,
    pub ends: String,
    #[serde(default)]
    pub message: String,
}

/// The config's maintenance windows, by the collector's rules; `known`: the config's checks.
pub fn validate_maintenance(
    raw: Vec<Spanned<RawMaintenance>>,
    known: &[&str],
    report: &mut Report,
) -> Vec<MaintenanceSpec> {
    let mut out = Vec::new();
    for (i, m) in raw.into_iter().enumerate() {
        let (loc, m) = (m.loc(), m.value);
        let path = format!("maintenance[{i}]");
        let time = |v: &str| lookout_collector::maintenance::parse_time(v).ok();
        let (Some(starts_us), Some(ends_us)) = (time(&m.starts), time(&m.ends)) else {
            report(
                loc,
                &path,
                "`starts` and `ends` must be RFC 3339 times, e.g. 2026-12-01T02:00:00Z".into(),
            );
            continue;
        };
        let problems = lookout_collector::maintenance::problems(
            &m.name,
            &m.message,
            &m.checks,
            (starts_us, ends_us),
            known,
        );
        if !problems.is_empty() {
            for (field, message) in problems {
                report(loc, &format!("{path}.{field}"), message);
            }
            continue;
        }
        out.push(MaintenanceSpec {
            name: m.name.trim().to_owned(),
            message: m.message.trim().to_owned(),
            checks: m.checks,
            starts_us,
            ends_us,
        });
    }
    out
}

/// A key that moved elsewhere: where it went, reported where it is written.
pub fn moved<T>(v: &Option<Spanned<T>>, path: &str, to: &str, report: &mut Report) {
    if let Some(v) = v {
        report(v.loc(), path, format!("has moved: {to}"));
    }
}

/// Where an availability target is written now.
pub const TARGET_MOVED: &str = "the availability target is each check's SLO: write `slo: { availability_target: 99.99% }` at the top level (every check) or in a check";
/// Where maintenance is written now.
pub const MAINTENANCE_MOVED: &str = "scheduled maintenance is the collector's: write it in the top-level `maintenance:` list, with `checks:` (or schedule it with POST /api/v1/maintenance)";

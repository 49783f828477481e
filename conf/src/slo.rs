//! `slo:` as written, at the top level (the suite's defaults) and in each check (its own
//! parts): what the collector judges every figure by. Validated with positions by the rules of
//! [`lookout_model::slo`], so that `lookout check-config` refuses what the collector would.

use lookout_model::slo::{self, Slo, SloOverrides, Target};
use serde::Deserialize;

use crate::{Dur, Report, Spanned};

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

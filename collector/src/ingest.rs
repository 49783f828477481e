//! Checks a batch before anything of it is stored: nothing partially applied, and every
//! rejection names the result and the field at fault.

use std::collections::BTreeMap;

use lookout_model::probe::{ProbeResult, ResultBatch};
use lookout_model::slo::Slo;

pub use lookout_model::probe::MAX_BATCH;
/// A run longer than this is not a probe run.
const MAX_DURATION_US: u64 = 3_600 * 1_000_000;
/// How far from the collector's clock a start time may be.
const MAX_FUTURE_US: i64 = 5 * 60 * 1_000_000;

/// What the collector knows of a check: where it runs, how often, and its SLO, which the
/// collector owns and serves with every figure.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckInfo {
    /// What it is, for people (the alerter's messages).
    pub description: String,
    /// The regions that run it (empty: any region).
    pub regions: Vec<String>,
    pub interval_us: i64,
    pub timeout_us: i64,
    pub slo: Slo,
    /// A check no agent runs: a job reports to it (`POST /api/v1/heartbeats/{check}`).
    pub heartbeat: Option<lookout_model::heartbeat::Heartbeat>,
}

impl CheckInfo {
    /// A check the collector was told nothing about: the platform's defaults.
    pub fn unknown() -> Self {
        CheckInfo {
            description: String::new(),
            regions: Vec::new(),
            interval_us: 10_000_000,
            timeout_us: 5_000_000,
            slo: Slo::default(),
            heartbeat: None,
        }
    }

    /// The quorum in place of the default: one for a heartbeat's one region.
    pub fn quorum(&self) -> Option<usize> {
        self.heartbeat.as_ref().map(|_| 1)
    }
}

/// What the collector knows of checks, by name. An empty map accepts any check.
pub type Known = BTreeMap<String, CheckInfo>;

fn text_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && !s.chars().any(char::is_control)
}

/// `max_past_us`: the raw retention; an older result could not correct its rollups.
pub fn validate(
    batch: &ResultBatch,
    known: &Known,
    now_us: i64,
    max_past_us: i64,
) -> Result<(), String> {
    if batch.results.is_empty() {
        return Err("the batch holds no results".into());
    }
    if batch.results.len() > MAX_BATCH {
        return Err(format!(
            "{} results in one batch; at most {MAX_BATCH}",
            batch.results.len()
        ));
    }
    for (i, r) in batch.results.iter().enumerate() {
        check_one(r, known, now_us, max_past_us)
            .map_err(|e| format!("results[{i}] ({} seq {}): {e}", r.agent, r.seq))?;
    }
    Ok(())
}

fn check_one(r: &ProbeResult, known: &Known, now_us: i64, max_past_us: i64) -> Result<(), String> {
    for (field, v) in [
        ("check", &r.check),
        ("region", &r.region),
        ("agent", &r.agent),
    ] {
        if !text_ok(v) {
            return Err(format!("`{field}` must be 1 to 128 printable characters"));
        }
    }
    if !known.is_empty() {
        match known.get(&r.check) {
            None => return Err(format!("unknown check {:?}", r.check)),
            Some(info) if info.heartbeat.is_some() => {
                return Err(format!(
                    "check {:?} is a heartbeat: its job reports to POST /api/v1/heartbeats/{}",
                    r.check, r.check
                ));
            }
            Some(info) if !info.regions.is_empty() && !info.regions.contains(&r.region) => {
                return Err(format!(
                    "check {:?} does not run in region {:?}",
                    r.check, r.region
                ));
            }
            Some(_) => {}
        }
    }
    if r.started_at_us > now_us + MAX_FUTURE_US {
        return Err(format!(
            "`started_at_us` is {} s ahead of the collector's clock: the agent's clock is wrong",
            (r.started_at_us - now_us) / 1_000_000
        ));
    }
    if r.started_at_us < now_us.saturating_sub(max_past_us) {
        return Err(format!(
            "`started_at_us` is older than the collector keeps raw results ({} days)",
            max_past_us / 86_400_000_000
        ));
    }
    if r.duration_us > MAX_DURATION_US {
        return Err(format!(
            "`duration_us` of {} s is longer than any run can be",
            r.duration_us / 1_000_000
        ));
    }
    if r.steps.len() > 64 {
        return Err("more than 64 steps".into());
    }
    Ok(())
}

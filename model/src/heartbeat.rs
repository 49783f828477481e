//! Heartbeat checks: no prober runs them; a job (a cron job, a pipeline) reports to the
//! collector at least every `period`, and the check is up while it does. The collector turns
//! each report, and each deadline missed, into a result of the check's one region, so that
//! heartbeats go through the same state, rollups, alerts, status page and reports as probed
//! checks; with one region, one failing is down (no quorum applies).

use std::time::Duration;

use crate::secret::Secret;

/// The one region of a heartbeat check.
pub const REGION: &str = "heartbeat";
/// The agent of the results made from reports.
pub const REPORTS: &str = "heartbeat";
/// The agent of the results the collector makes while a report is missing or said it failed.
pub const HELD: &str = "heartbeat-held";
/// While a heartbeat is missing or failed, the collector says so again this often (or every
/// half period, if that is sooner, so that the region never falls silent in between): the
/// state stays fresh, and the alerter's confirmation (a failure again after the check went
/// down) comes within seconds, not a period later.
pub const REPEAT_US: i64 = 5_000_000;
/// The shortest period a heartbeat may have.
pub const MIN_PERIOD: Duration = Duration::from_secs(1);
/// The longest: a monthly job.
pub const MAX_PERIOD: Duration = Duration::from_secs(31 * 86_400);

/// A heartbeat check's promise, validated.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    /// A report is due at least this often.
    pub period: Duration,
    /// How late a report may be before it counts as missed.
    pub grace: Duration,
    /// What a report must carry as its bearer token (its own, not the collector's).
    pub token: Secret,
}

/// Equal when the promise and the token are (the token compared as `Secret` compares).
impl PartialEq for Heartbeat {
    fn eq(&self, other: &Self) -> bool {
        self.period == other.period
            && self.grace == other.grace
            && self.token.matches(other.token.expose())
    }
}

impl Heartbeat {
    /// How often a missing or failed heartbeat is said again.
    pub fn repeat_us(&self) -> i64 {
        REPEAT_US.min(micros(self.period) / 2).max(1)
    }

    /// When a report made at `at_us` stops vouching for the check.
    pub fn deadline_us(&self, at_us: i64) -> i64 {
        at_us
            .saturating_add(micros(self.period))
            .saturating_add(micros(self.grace))
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// What a report says: `POST /api/v1/heartbeats/{check}`'s body (all of it optional).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// `ok` (the default) or `fail`.
    #[serde(default)]
    pub status: ReportStatus,
    /// What the job has to say (why it failed, what it did).
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    #[default]
    Ok,
    Fail,
}

//! The collector's read contract: what its query API answers, typed once. The collector builds
//! these to answer; every reader (the alerter, the status page, the benchmarks) reads them
//! back through the one client in `lookout-api`, so that a field means the same everywhere.
//!
//! Times are microseconds since the Unix epoch; durations in answers are seconds (`f64`), as
//! the API has always written them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::StoredEvent;
use crate::slo::{SlaFigures, Slo};

/// A check's live state: `up`, `down` (a quorum of regions failing) or `no_data` (fewer than a
/// quorum reporting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveState {
    Up,
    Down,
    NoData,
}

impl LiveState {
    pub fn as_str(self) -> &'static str {
        match self {
            LiveState::Up => "up",
            LiveState::Down => "down",
            LiveState::NoData => "no_data",
        }
    }
}

/// A region's state for a check: its latest result passed, passed degraded, failed, or is too
/// old (`silent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionState {
    Ok,
    Degraded,
    Failing,
    Silent,
}

/// One region in `GET /api/v1/states`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionLive {
    pub region: String,
    pub state: RegionState,
    /// When the region's current state began (for `silent`: when it went silent); `null`
    /// for a region that has never reported.
    #[serde(default)]
    pub since_us: Option<i64>,
    /// The start of its latest result.
    #[serde(default)]
    pub last_result_us: Option<i64>,
    /// While `failing`: the latest failure's message and kind; while `degraded`: why, and no
    /// kind.
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
}

/// One check in `GET /api/v1/states`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckLive {
    pub check: String,
    pub state: LiveState,
    /// When the current state began: the start of the result that brought it, or the instant
    /// a region went silent; `null` for a check that has had no data since the start.
    #[serde(default)]
    pub since_us: Option<i64>,
    #[serde(default)]
    pub quorum: usize,
    #[serde(default)]
    pub regions: Vec<RegionLive>,
}

impl CheckLive {
    pub fn failing(&self) -> impl Iterator<Item = &RegionLive> {
        self.regions
            .iter()
            .filter(|r| r.state == RegionState::Failing)
    }

    pub fn degraded(&self) -> impl Iterator<Item = &RegionLive> {
        self.regions
            .iter()
            .filter(|r| r.state == RegionState::Degraded)
    }
}

/// `GET /api/v1/states`: every check's live state and the maintenance not yet over, with a
/// version that moves on every change (long-poll with `after`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct States {
    pub version: u64,
    /// By name.
    pub checks: Vec<CheckLive>,
    /// Windows in progress or scheduled, by start.
    #[serde(default)]
    pub maintenance: Vec<Maintenance>,
}

impl States {
    pub fn check(&self, name: &str) -> Option<&CheckLive> {
        self.checks.iter().find(|c| c.check == name)
    }

    /// The window in progress at `now_us` that covers `check`, if any.
    pub fn maintenance_of(&self, check: &str, now_us: i64) -> Option<&Maintenance> {
        self.maintenance.iter().find(|m| m.covers(check, now_us))
    }
}

/// Latency of the successful journeys in a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub objective_ms: f64,
    /// The latency SLI: the share of successful journeys faster than the objective.
    pub share_under_objective: Option<f64>,
}

/// A region's latest result, for the state now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionNow {
    pub region: String,
    /// `None` while the region is silent.
    pub failing: Option<bool>,
    pub last_result_us: Option<i64>,
}

/// A check's state now, whatever the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Current {
    pub state: LiveState,
    pub regions: Vec<RegionNow>,
}

fn seconds(us: i64) -> f64 {
    us as f64 / 1e6
}

/// `GET /api/v1/checks/{check}/availability`: one check's SLA figures over one window, by its
/// SLO (which comes with them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub check: String,
    pub from_us: i64,
    pub to_us: i64,
    pub window_seconds: f64,
    /// `null` when nothing of the window counts (no data, or all maintenance).
    pub availability: Option<f64>,
    /// The downtime that counts against the target.
    pub down_seconds: f64,
    /// Time without data, left out of the availability.
    pub no_data_seconds: f64,
    /// Time inside maintenance windows (left out unless the SLO counts maintenance).
    #[serde(default)]
    pub maintenance_seconds: f64,
    /// Downtime during maintenance (counted in `down_seconds` only when the SLO counts
    /// maintenance).
    #[serde(default)]
    pub maintenance_down_seconds: f64,
    /// The time the availability is measured over: the window less what is left out.
    #[serde(default)]
    pub counted_seconds: f64,
    /// The SLO's availability target, as a ratio (also in `slo`).
    pub target: f64,
    pub slo: Slo,
    pub error_budget_seconds: f64,
    /// Negative once overspent.
    pub error_budget_remaining_seconds: f64,
    /// The window's bad fraction over the target's allowed one.
    pub burn_rate: Option<f64>,
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub quorum: usize,
    #[serde(default)]
    pub latency: Latency,
    /// The region `latency` is of, when one was asked for; absent: all regions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_region: Option<String>,
    /// Each region's latency, when asked for with `by_region=true`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub latency_by_region: BTreeMap<String, Latency>,
    /// The state now, whatever the window.
    #[serde(default)]
    pub current: Option<Current>,
}

/// What a window's figures are made of, besides its SLA math.
#[derive(Debug, Clone)]
pub struct FiguresParts {
    pub check: String,
    pub from_us: i64,
    pub to_us: i64,
    pub slo: Slo,
    pub regions: Vec<String>,
    pub quorum: usize,
    pub latency: Latency,
    pub current: Option<Current>,
}

impl Figures {
    pub fn new(p: FiguresParts, f: &SlaFigures) -> Figures {
        Figures {
            check: p.check,
            from_us: p.from_us,
            to_us: p.to_us,
            window_seconds: seconds(f.window_us),
            availability: f.availability,
            down_seconds: seconds(f.down_us),
            no_data_seconds: seconds(f.no_data_us),
            maintenance_seconds: seconds(f.maintenance_us),
            maintenance_down_seconds: seconds(f.maintenance_down_us),
            counted_seconds: seconds(f.counted_us),
            target: p.slo.availability_target(),
            slo: p.slo,
            error_budget_seconds: f.budget_us / 1e6,
            error_budget_remaining_seconds: f.budget_remaining_us / 1e6,
            burn_rate: f.burn_rate,
            regions: p.regions,
            quorum: p.quorum,
            latency: p.latency,
            latency_region: None,
            latency_by_region: BTreeMap::new(),
            current: p.current,
        }
    }

    /// The share of the window's budget not yet spent; `None` without a budget.
    pub fn budget_remaining_ratio(&self) -> Option<f64> {
        (self.error_budget_seconds > 0.0)
            .then(|| self.error_budget_remaining_seconds / self.error_budget_seconds)
    }
}

/// `GET /api/v1/checks`: every check's figures over one window, worst availability first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FiguresList {
    pub from_us: i64,
    pub to_us: i64,
    pub checks: Vec<Figures>,
}

impl FiguresList {
    pub fn check(&self, name: &str) -> Option<&Figures> {
        self.checks.iter().find(|f| f.check == name)
    }
}

/// One UTC day of a check, by its SLO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Day {
    /// `YYYY-MM-DD`.
    pub date: String,
    pub from_us: i64,
    /// The next midnight, or now for today.
    pub to_us: i64,
    pub availability: Option<f64>,
    pub down_seconds: f64,
    pub no_data_seconds: f64,
    #[serde(default)]
    pub maintenance_seconds: f64,
}

/// A check's days, oldest first, today (so far) last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyFigures {
    pub check: String,
    pub days: Vec<Day>,
}

/// `GET /api/v1/daily?days=N`: every check's days.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DailyList {
    pub checks: Vec<DailyFigures>,
}

/// The first failed run of an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FirstFailure {
    pub region: String,
    pub started_at_us: i64,
    pub kind: String,
    pub message: String,
}

/// An interval a check was down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub start_us: i64,
    /// `None` while it lasts.
    pub end_us: Option<i64>,
    pub down_seconds: f64,
    /// The regions with a failed run during it (empty once the raw results are gone).
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub first_failure: Option<FirstFailure>,
    /// Whether start and end are exact, or (from rolled-up minutes) to the minute.
    #[serde(default)]
    pub exact: bool,
}

/// `GET /api/v1/checks/{check}/incidents`: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incidents {
    pub check: String,
    pub from_us: i64,
    pub to_us: i64,
    pub incidents: Vec<Incident>,
}

/// `GET /api/v1/incidents`: every check's incidents over one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IncidentsList {
    pub from_us: i64,
    pub to_us: i64,
    pub checks: Vec<Incidents>,
}

impl IncidentsList {
    pub fn check(&self, name: &str) -> Option<&Incidents> {
        self.checks.iter().find(|i| i.check == name)
    }
}

/// `GET /api/v1/results`: raw results in the order they were stored, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub results: Vec<crate::probe::ProbeResult>,
}

/// `GET /api/v1/events`: oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Events {
    pub events: Vec<StoredEvent>,
}

/// Where a maintenance window was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceSource {
    /// In the config file: changed there, kept in step at each start.
    Config,
    /// Through `POST /api/v1/maintenance` (by a person, or the status page's admin API).
    Api,
}

/// Where a maintenance window stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceStatus {
    Scheduled,
    InProgress,
    Completed,
}

impl MaintenanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MaintenanceStatus::Scheduled => "scheduled",
            MaintenanceStatus::InProgress => "in_progress",
            MaintenanceStatus::Completed => "completed",
        }
    }
}

/// A scheduled maintenance window of some checks: it holds pages, is announced on the status
/// page, and its time is left out of availability unless a check's SLO counts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintenance {
    pub id: i64,
    pub name: String,
    /// Public text: the status page shows it.
    #[serde(default)]
    pub message: String,
    pub checks: Vec<String>,
    pub starts_us: i64,
    pub ends_us: i64,
    pub source: MaintenanceSource,
    #[serde(default)]
    pub created_by: String,
    pub created_us: i64,
}

impl Maintenance {
    pub fn status(&self, now_us: i64) -> MaintenanceStatus {
        if now_us < self.starts_us {
            MaintenanceStatus::Scheduled
        } else if now_us < self.ends_us {
            MaintenanceStatus::InProgress
        } else {
            MaintenanceStatus::Completed
        }
    }

    /// Whether it is in progress at `now_us` for `check`.
    pub fn covers(&self, check: &str, now_us: i64) -> bool {
        self.status(now_us) == MaintenanceStatus::InProgress
            && self.checks.iter().any(|c| c == check)
    }
}

/// `POST /api/v1/maintenance`: a window to schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMaintenance {
    pub name: String,
    #[serde(default)]
    pub message: String,
    pub checks: Vec<String>,
    /// RFC 3339, e.g. `2026-12-01T02:00:00Z`.
    pub starts: String,
    pub ends: String,
    #[serde(default)]
    pub created_by: String,
}

/// `GET /api/v1/maintenance`: windows ending at or after `since_us`, by start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MaintenanceList {
    pub maintenance: Vec<Maintenance>,
}

/// A check the collector watches, with its SLO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckSlo {
    pub check: String,
    #[serde(default)]
    pub description: String,
    /// The regions that run it.
    pub regions: Vec<String>,
    pub slo: Slo,
    /// Since when the collector has judged the check by this SLO (it logs a change as an
    /// event: figures of older windows are recomputed against the new one).
    #[serde(default)]
    pub slo_since_us: Option<i64>,
}

/// `GET /api/v1/slos`: every check's SLO, by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Slos {
    pub checks: Vec<CheckSlo>,
}

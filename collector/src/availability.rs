//! `GET /api/v1/checks/{check}/availability`: availability, downtime, time without data and
//! the error budget of one check over a window, by the SLA math in `lookout-model`.
//!
//! Computed from the raw results for now; per-minute rollups will make windows longer than
//! the raw retention cheap.

use std::sync::Arc;

use axum::extract::State;
use lookout_api::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use lookout_model::sla::{self, Observation, Rules};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::ingest::CheckInfo;
use crate::store::{ResultStore, Stored};

/// The longest window served from raw results.
const MAX_WINDOW_US: i64 = 400 * 24 * 3_600 * 1_000_000;

#[derive(Deserialize)]
pub struct WindowQuery {
    /// A duration back from now: `5m`, `1h`, `30d`, `90d`.
    window: Option<String>,
    /// Or an explicit range, in microseconds since the epoch.
    from_us: Option<i64>,
    to_us: Option<i64>,
}

#[derive(Serialize)]
pub struct AvailabilityBody {
    check: String,
    from_us: i64,
    to_us: i64,
    window_seconds: f64,
    /// `null` when no instant of the window had data.
    availability: Option<f64>,
    down_seconds: f64,
    no_data_seconds: f64,
    target: f64,
    error_budget_seconds: f64,
    error_budget_remaining_seconds: f64,
    /// The window's bad fraction over the target's allowed fraction.
    burn_rate: Option<f64>,
    regions: Vec<String>,
    quorum: usize,
    latency: Latency,
}

fn window(q: &WindowQuery, now: i64) -> Result<(i64, i64), ApiError> {
    let (from, to) = match (&q.window, q.from_us, q.to_us) {
        (Some(w), None, None) => {
            let d = humantime::parse_duration(w).map_err(|e| {
                ApiError::BadRequest(format!(
                    "`window`: {w:?} is not a duration ({e}); write e.g. `1h` or `90d`"
                ))
            })?;
            let us = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
            (now.saturating_sub(us), now)
        }
        (None, Some(from), to) => (from, to.unwrap_or(now)),
        (None, None, None) => (now - 3_600_000_000, now),
        _ => {
            return Err(ApiError::BadRequest(
                "give `window`, or `from_us` (and optionally `to_us`), not both".into(),
            ));
        }
    };
    if from < 0 || to > now + 300_000_000 {
        return Err(ApiError::BadRequest(
            "the window must start after 1970 and end at most 5 minutes from now".into(),
        ));
    }
    if to <= from {
        return Err(ApiError::BadRequest(
            "the window ends before it starts".into(),
        ));
    }
    if to - from > MAX_WINDOW_US {
        return Err(ApiError::BadRequest(
            "the window is longer than 400 days".into(),
        ));
    }
    Ok((from, to))
}

/// Latency of the successful journeys in a window.
#[derive(Debug, Serialize, PartialEq)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub objective_ms: f64,
    /// The latency SLI: the share of successful journeys faster than the objective.
    pub share_under_objective: Option<f64>,
}

pub(crate) struct Computed {
    pub tally: sla::Tally,
    pub regions: Vec<String>,
    pub quorum: usize,
    pub latency: Latency,
}

fn quantile(sorted: &[i64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    Some(sorted[((last as f64) * q).round() as usize] as f64 / 1e3)
}

/// The SLA figures of one check over `[from, to)`, from its stored results.
pub(crate) fn compute(
    store: &dyn ResultStore,
    check: &str,
    info: &CheckInfo,
    from: i64,
    to: i64,
) -> Computed {
    let lookback = sla::silence_us(info.interval_us, info.timeout_us);
    compute_from(
        &store.observations(check, from - lookback, to),
        info,
        from,
        to,
    )
}

/// The same figures from results already read (any superset of the window and its lookback),
/// so that several windows of one check cost one read of the store.
pub(crate) fn compute_from(all: &[Stored], info: &CheckInfo, from: i64, to: i64) -> Computed {
    let lookback = sla::silence_us(info.interval_us, info.timeout_us);
    let raw: Vec<&Stored> = all
        .iter()
        .filter(|o| o.start_us >= from - lookback && o.start_us < to)
        .collect();
    // Regions: the configured ones, else those seen.
    let mut regions = info.regions.clone();
    if regions.is_empty() {
        for o in &raw {
            if !regions.contains(&o.region) {
                regions.push(o.region.clone());
            }
        }
        regions.sort();
    }
    let rules = Rules::new(regions.len(), info.interval_us, info.timeout_us);
    let observations: Vec<Observation> = raw
        .iter()
        .filter_map(|o| {
            regions
                .iter()
                .position(|x| *x == o.region)
                .map(|region| Observation {
                    region,
                    start_us: o.start_us,
                    ok: o.ok,
                })
        })
        .collect();
    let tally = sla::tally(&rules, &observations, from, to);
    let mut durations: Vec<i64> = raw
        .iter()
        .filter(|o| o.ok && o.start_us >= from)
        .map(|o| o.duration_us)
        .collect();
    durations.sort_unstable();
    let under = durations.iter().filter(|d| **d < info.objective_us).count();
    let latency = Latency {
        count: durations.len(),
        p50_ms: quantile(&durations, 0.50),
        p95_ms: quantile(&durations, 0.95),
        p99_ms: quantile(&durations, 0.99),
        max_ms: durations.last().map(|d| *d as f64 / 1e3),
        objective_ms: info.objective_us as f64 / 1e3,
        share_under_objective: (!durations.is_empty())
            .then(|| under as f64 / durations.len() as f64),
    };
    Computed {
        tally,
        regions,
        quorum: rules.quorum,
        latency,
    }
}

pub async fn get_availability(
    State(s): State<Arc<AppState>>,
    ApiPath(check): ApiPath<String>,
    ApiQuery(q): ApiQuery<WindowQuery>,
) -> ApiResult<ApiJson<AvailabilityBody>> {
    let info = match s.settings.known.get(&check) {
        Some(i) => i.clone(),
        None if s.settings.known.is_empty() => CheckInfo::unknown(),
        None => return Err(ApiError::NotFound(format!("no check named {check:?}"))),
    };
    let now = chrono::Utc::now().timestamp_micros();
    let (from, to) = window(&q, now)?;
    let Computed {
        tally,
        regions,
        quorum,
        latency,
    } = compute(s.store.as_ref(), &check, &info, from, to);
    let budget = sla::error_budget_us(info.target, tally.window_us - tally.no_data_us);
    let observed = tally.window_us - tally.no_data_us;
    let secs = |us: i64| us as f64 / 1e6;
    Ok(ApiJson(AvailabilityBody {
        check,
        from_us: from,
        to_us: to,
        window_seconds: secs(tally.window_us),
        availability: tally.availability(),
        down_seconds: secs(tally.down_us),
        no_data_seconds: secs(tally.no_data_us),
        target: info.target,
        error_budget_seconds: budget / 1e6,
        error_budget_remaining_seconds: (budget - tally.down_us as f64) / 1e6,
        burn_rate: (observed > 0)
            .then(|| sla::burn_rate(tally.down_us as f64 / observed as f64, info.target)),
        regions,
        quorum,
        latency,
    }))
}

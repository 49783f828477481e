//! `GET /api/v1/checks/{check}/availability`: availability, downtime, time without data and
//! the error budget of one check over a window, by the SLA math in `lookout-model`.
//!
//! Read from the rollups in memory (`rollup/`), so any window up to 400 days costs the same.

use std::sync::Arc;

use axum::extract::State;
use lookout_api::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use lookout_model::sla;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::ingest::CheckInfo;
use crate::rollup::{Computed, Current, Latency, RegionLatencyError};

/// The longest window served (the rollups' retention).
const MAX_WINDOW_US: i64 = 400 * 24 * 3_600 * 1_000_000;

#[derive(Deserialize)]
pub struct WindowQuery {
    /// A duration back from now: `5m`, `1h`, `30d`, `90d`.
    window: Option<String>,
    /// Or an explicit range, in microseconds since the epoch.
    from_us: Option<i64>,
    to_us: Option<i64>,
}

/// [`WindowQuery`] and, for one check, a region to take the latency of. Not flattened: the
/// query-string parser cannot read numbers through `#[serde(flatten)]`.
#[derive(Deserialize)]
pub struct AvailabilityQuery {
    window: Option<String>,
    from_us: Option<i64>,
    to_us: Option<i64>,
    /// Latency of this region's journeys only; availability stays the check's.
    region: Option<String>,
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
    /// The region `latency` is of, when one was asked for; absent: all regions.
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_region: Option<String>,
    /// The state now, whatever the window.
    current: Option<Current>,
}

pub(crate) fn window(q: &WindowQuery, now: i64) -> Result<(i64, i64), ApiError> {
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

fn body(
    check: String,
    info: &CheckInfo,
    from: i64,
    to: i64,
    c: Computed,
    current: Option<Current>,
) -> AvailabilityBody {
    let Computed {
        tally,
        regions,
        quorum,
        latency,
    } = c;
    let observed = tally.window_us - tally.no_data_us;
    let budget = sla::error_budget_us(info.target, observed);
    let secs = |us: i64| us as f64 / 1e6;
    AvailabilityBody {
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
        latency_region: None,
        current,
    }
}

/// Runs `f` on a blocking thread after settling late results (which may read the store).
async fn settled<T: Send + 'static>(
    s: &Arc<AppState>,
    now: i64,
    f: impl FnOnce(&AppState) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let s = s.clone();
    tokio::task::spawn_blocking(move || {
        s.rollups.settle(now);
        f(&s)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("rollup task failed: {e}")))
}

pub async fn get_availability(
    State(s): State<Arc<AppState>>,
    ApiPath(check): ApiPath<String>,
    ApiQuery(q): ApiQuery<AvailabilityQuery>,
) -> ApiResult<ApiJson<AvailabilityBody>> {
    let now = chrono::Utc::now().timestamp_micros();
    let AvailabilityQuery {
        window: w,
        from_us,
        to_us,
        region,
    } = q;
    let (from, to) = window(
        &WindowQuery {
            window: w,
            from_us,
            to_us,
        },
        now,
    )?;
    let info = s.check_info(&check)?;
    let name = check.clone();
    let asked = region.clone();
    let (computed, current, latency) = settled(&s, now, move |s| {
        let latency = asked.map(|r| s.rollups.region_latency(&name, &r, from, to, now));
        (
            s.rollups.compute(&name, from, to, now),
            s.rollups.current(&name, now),
            latency,
        )
    })
    .await?;
    let computed = computed
        .ok_or_else(|| ApiError::NotFound(format!("no results for a check named {check:?} yet")))?;
    let mut out = body(check, &info, from, to, computed, current);
    if let Some(latency) = latency {
        match latency {
            Ok(Some(l)) => out.latency = l,
            Ok(None) => {
                return Err(ApiError::NotFound(format!(
                    "no results for a check named {:?} yet",
                    out.check
                )));
            }
            Err(e @ RegionLatencyError::Unknown { .. }) => {
                return Err(ApiError::BadRequest(e.to_string()));
            }
            Err(RegionLatencyError::Store(e)) => return Err(ApiError::Internal(e.to_string())),
        }
        out.latency_region = region;
    }
    Ok(ApiJson(out))
}

#[derive(Serialize)]
pub struct AllBody {
    from_us: i64,
    to_us: i64,
    checks: Vec<AvailabilityBody>,
}

/// `GET /api/v1/checks`: every check's figures over one window, worst availability first.
pub async fn get_all(
    State(s): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<WindowQuery>,
) -> ApiResult<ApiJson<AllBody>> {
    let now = chrono::Utc::now().timestamp_micros();
    let (from, to) = window(&q, now)?;
    let mut checks = settled(&s, now, move |s| {
        s.rollups
            .checks()
            .into_iter()
            .filter_map(|check| {
                let info = s.check_info(&check).ok()?;
                let c = s.rollups.compute(&check, from, to, now)?;
                let current = s.rollups.current(&check, now);
                Some(body(check, &info, from, to, c, current))
            })
            .collect::<Vec<_>>()
    })
    .await?;
    checks.sort_by(|a, b| {
        a.availability
            .unwrap_or(1.0)
            .total_cmp(&b.availability.unwrap_or(1.0))
            .then_with(|| a.check.cmp(&b.check))
    });
    Ok(ApiJson(AllBody {
        from_us: from,
        to_us: to,
        checks,
    }))
}

#[derive(Deserialize)]
pub struct DailyQuery {
    days: Option<i64>,
}

#[derive(Serialize)]
pub struct Day {
    /// The UTC day, `YYYY-MM-DD`.
    date: String,
    availability: Option<f64>,
    down_seconds: f64,
    no_data_seconds: f64,
}

/// `GET /api/v1/checks/{check}/daily?days=90`: one figure per UTC day, oldest first, today
/// (so far) last: the status page's bars.
pub async fn get_daily(
    State(s): State<Arc<AppState>>,
    ApiPath(check): ApiPath<String>,
    ApiQuery(q): ApiQuery<DailyQuery>,
) -> ApiResult<ApiJson<Vec<Day>>> {
    let days = q.days.unwrap_or(90);
    if !(1..=400).contains(&days) {
        return Err(ApiError::BadRequest(format!(
            "`days` must be from 1 to 400, got {days}"
        )));
    }
    s.check_info(&check)?;
    let now = chrono::Utc::now().timestamp_micros();
    let name = check.clone();
    let daily = settled(&s, now, move |s| s.rollups.daily(&name, days, now))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no results for a check named {check:?} yet")))?;
    Ok(ApiJson(
        daily
            .into_iter()
            .map(|(day, t)| Day {
                date: chrono::DateTime::from_timestamp_micros(day)
                    .map(|d| d.format("%Y-%m-%d").to_string())
                    .unwrap_or_default(),
                availability: t.availability(),
                down_seconds: t.down_us as f64 / 1e6,
                no_data_seconds: t.no_data_us as f64 / 1e6,
            })
            .collect(),
    ))
}

#[derive(Serialize)]
pub struct IncidentsBody {
    check: String,
    from_us: i64,
    to_us: i64,
    /// Newest first.
    incidents: Vec<crate::rollup::Incident>,
}

/// `GET /api/v1/checks/{check}/incidents?window=90d`: the intervals the check was down.
pub async fn get_incidents(
    State(s): State<Arc<AppState>>,
    ApiPath(check): ApiPath<String>,
    ApiQuery(q): ApiQuery<WindowQuery>,
) -> ApiResult<ApiJson<IncidentsBody>> {
    let now = chrono::Utc::now().timestamp_micros();
    let (from, to) = window(&q, now)?;
    s.check_info(&check)?;
    let name = check.clone();
    let mut incidents = settled(&s, now, move |s| s.rollups.incidents(&name, from, to, now))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no results for a check named {check:?} yet")))?;
    incidents.reverse();
    Ok(ApiJson(IncidentsBody {
        check,
        from_us: from,
        to_us: to,
        incidents,
    }))
}

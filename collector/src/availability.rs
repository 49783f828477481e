//! The read API: a check's availability, downtime, time without data and in maintenance, its
//! error budget and latency over a window, per UTC day, and its incidents, by the SLA math in
//! `lookout-model` and the check's own SLO; and the same for every check at once, so that a
//! reader's round costs a fixed number of requests however many checks there are.
//!
//! Read from the rollups in memory (`rollup/`), so any window up to 400 days costs the same.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::response::IntoResponse;
use lookout_api::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use lookout_model::read::{
    CheckSlo, DailyFigures, DailyList, Day, Figures, FiguresList, FiguresParts, Incidents,
    IncidentsList, Slos,
};
use lookout_model::sla::Tally;
use serde::Deserialize;

use crate::AppState;
use crate::ingest::CheckInfo;
use crate::rollup::{DAY_US, RegionLatencyError};

/// The longest window served (the rollups' retention).
const MAX_WINDOW_US: i64 = 400 * DAY_US;

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

/// [`WindowQuery`] for every check: optionally only some, optionally with each region's
/// latency.
#[derive(Deserialize)]
pub struct AllQuery {
    window: Option<String>,
    from_us: Option<i64>,
    to_us: Option<i64>,
    /// Comma-separated check names; all checks when absent.
    checks: Option<String>,
    /// Each region's latency in `latency_by_region`.
    by_region: Option<bool>,
}

/// An [`AllQuery`] checked: its window, and which checks.
struct Selection {
    from: i64,
    to: i64,
    checks: Option<String>,
    by_region: bool,
}

impl AllQuery {
    fn selection(self, now: i64) -> Result<Selection, ApiError> {
        let (from, to) = window(
            &WindowQuery {
                window: self.window,
                from_us: self.from_us,
                to_us: self.to_us,
            },
            now,
        )?;
        Ok(Selection {
            from,
            to,
            checks: self.checks,
            by_region: self.by_region.unwrap_or(false),
        })
    }
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

/// Runs `f` on a blocking thread after settling late results and maintenance changes (which
/// may read the store).
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

fn no_results(check: &str) -> ApiError {
    ApiError::NotFound(format!("no results for a check named {check:?} yet"))
}

/// One check's figures over `[from, to)`; `None` for a check with no results yet. Blocking.
pub(crate) fn figures_of(
    s: &AppState,
    check: &str,
    info: &CheckInfo,
    (from, to, now): (i64, i64, i64),
) -> Option<Figures> {
    let c = s.rollups.compute(check, from, to, now)?;
    let sla = info.slo.figures(&c.tally);
    Some(Figures::new(
        FiguresParts {
            check: check.to_owned(),
            from_us: from,
            to_us: to,
            slo: info.slo,
            regions: c.regions,
            quorum: c.quorum,
            latency: c.latency,
            current: s.rollups.current(check, now),
        },
        &sla,
    ))
}

pub async fn get_availability(
    State(s): State<Arc<AppState>>,
    ApiPath(check): ApiPath<String>,
    ApiQuery(q): ApiQuery<AvailabilityQuery>,
) -> ApiResult<ApiJson<Figures>> {
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
    let (figures, latency) = settled(&s, now, move |s| {
        let latency = asked.map(|r| s.rollups.region_latency(&name, &r, from, to, now));
        (figures_of(s, &name, &info, (from, to, now)), latency)
    })
    .await?;
    let mut out = figures.ok_or_else(|| no_results(&check))?;
    if let Some(latency) = latency {
        out.latency = region_answer(&check, latency)?;
        out.latency_region = region;
    }
    Ok(ApiJson(out))
}

fn region_answer(
    check: &str,
    latency: Result<Option<lookout_model::read::Latency>, RegionLatencyError>,
) -> Result<lookout_model::read::Latency, ApiError> {
    match latency {
        Ok(Some(l)) => Ok(l),
        Ok(None) => Err(no_results(check)),
        Err(e @ RegionLatencyError::Unknown { .. }) => Err(ApiError::BadRequest(e.to_string())),
        Err(RegionLatencyError::Store(e)) => Err(ApiError::Internal(e.to_string())),
    }
}

/// The checks an all-checks read is about: those named, else every check the rollups hold,
/// with what the collector knows of each. A name it does not know is left out, as a check
/// without results is: a reader whose config names a check this collector was not told of
/// still reads the others.
fn selected(s: &AppState, names: Option<&str>) -> Vec<(String, CheckInfo)> {
    let named: Vec<String> = match names {
        None => s.rollups.checks(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    named
        .into_iter()
        .filter_map(|c| s.check_info(&c).ok().map(|i| (c, i)))
        .collect()
}

/// The figures of `checks` (those with results), with each region's latency if asked. Blocking.
fn figures_of_all(
    s: &AppState,
    checks: &[(String, CheckInfo)],
    (from, to, now): (i64, i64, i64),
    by_region: bool,
) -> Result<Vec<Figures>, ApiError> {
    let mut out = Vec::with_capacity(checks.len());
    for (check, info) in checks {
        let Some(mut f) = figures_of(s, check, info, (from, to, now)) else {
            continue;
        };
        if by_region {
            let mut per: BTreeMap<String, lookout_model::read::Latency> = BTreeMap::new();
            for region in f.regions.clone() {
                let l = s.rollups.region_latency(check, &region, from, to, now);
                per.insert(region, region_answer(check, l)?);
            }
            f.latency_by_region = per;
        }
        out.push(f);
    }
    Ok(out)
}

/// `GET /api/v1/checks`: every check's figures over one window, worst availability first;
/// `by_region=true` adds each region's latency.
pub async fn get_all(
    State(s): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<AllQuery>,
) -> ApiResult<axum::response::Response> {
    let now = chrono::Utc::now().timestamp_micros();
    let Selection {
        from,
        to,
        checks: names,
        by_region,
    } = q.selection(now)?;
    let body = settled(&s, now, move |s| {
        let picked = selected(s, names.as_deref());
        // Each check's figures are its own (its own lock, its own merges): at thousands of
        // checks the answer is that many independent computations, spread over the cores.
        let threads = std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .min(picked.len())
            .max(1);
        let per_thread = picked.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let parts: Vec<_> = picked
                .chunks(per_thread)
                .map(|part| {
                    scope.spawn(move || figures_of_all(s, part, (from, to, now), by_region))
                })
                .collect();
            let mut out = Vec::with_capacity(picked.len());
            for part in parts {
                let figures = part
                    .join()
                    .map_err(|_| ApiError::Internal("a figures thread panicked".into()))??;
                out.extend(figures);
            }
            out.sort_by(|a, b| {
                a.availability
                    .unwrap_or(1.0)
                    .total_cmp(&b.availability.unwrap_or(1.0))
                    .then_with(|| a.check.cmp(&b.check))
            });
            list_body(from, to, out, threads)
        })
    })
    .await??;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// A [`FiguresList`] as JSON, its checks written by `threads` threads at once: at 5,000 checks
/// the answer is 5.7 MB, and writing it (then freeing what it was written from) on one thread
/// took longer than computing it on all of them. The list's own fields come from the type
/// itself, so the two cannot drift apart.
fn list_body(
    from_us: i64,
    to_us: i64,
    checks: Vec<Figures>,
    threads: usize,
) -> Result<Vec<u8>, ApiError> {
    let json_error = |e: serde_json::Error| ApiError::Internal(format!("the answer as JSON: {e}"));
    let head = serde_json::to_vec(&FiguresList {
        from_us,
        to_us,
        checks: Vec::new(),
    })
    .map_err(json_error)?;
    // `checks` is the last field: the empty list is the head's last three bytes.
    let Some(open) = head.strip_suffix(b"[]}") else {
        return Err(ApiError::Internal(
            "the answer's shape: `checks` is not its last field".into(),
        ));
    };
    let per_thread = checks.len().div_ceil(threads.max(1)).max(1);
    let mut chunks = Vec::new();
    let mut rest = checks;
    while rest.len() > per_thread {
        let tail = rest.split_off(per_thread);
        chunks.push(rest);
        rest = tail;
    }
    chunks.push(rest);
    let parts = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    // About 1.2 KB a check, five regions' states included.
                    let mut out = Vec::with_capacity(chunk.len() * 1_280);
                    for (i, f) in chunk.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        serde_json::to_writer(&mut out, f)?;
                    }
                    Ok::<_, serde_json::Error>(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| ApiError::Internal("a JSON thread panicked".into()))?
                    .map_err(json_error)
            })
            .collect::<Result<Vec<_>, ApiError>>()
    })?;
    let mut body = Vec::with_capacity(open.len() + parts.iter().map(Vec::len).sum::<usize>() + 8);
    body.extend_from_slice(open);
    body.push(b'[');
    for part in parts.iter().filter(|p| !p.is_empty()) {
        if body.last() != Some(&b'[') {
            body.push(b',');
        }
        body.extend_from_slice(part);
    }
    body.extend_from_slice(b"]}");
    Ok(body)
}

#[derive(Deserialize)]
pub struct DailyQuery {
    days: Option<i64>,
    /// Comma-separated check names, for `GET /api/v1/daily`; all checks when absent.
    checks: Option<String>,
}

fn days_param(days: Option<i64>) -> Result<i64, ApiError> {
    let days = days.unwrap_or(90);
    if !(1..=400).contains(&days) {
        return Err(ApiError::BadRequest(format!(
            "`days` must be from 1 to 400, got {days}"
        )));
    }
    Ok(days)
}

/// One check's days by its SLO; `None` with no results yet. Blocking.
fn days_of(s: &AppState, check: &str, info: &CheckInfo, days: i64, now: i64) -> Option<Vec<Day>> {
    let daily = s.rollups.daily(check, days, now)?;
    Some(
        daily
            .into_iter()
            .map(|(day, t): (i64, Tally)| {
                let f = info.slo.figures(&t);
                Day {
                    date: chrono::DateTime::from_timestamp_micros(day)
                        .map(|d| d.format("%Y-%m-%d").to_string())
                        .unwrap_or_default(),
                    from_us: day,
                    to_us: day + t.window_us,
                    availability: f.availability,
                    down_seconds: f.down_us as f64 / 1e6,
                    no_data_seconds: f.no_data_us as f64 / 1e6,
                    maintenance_seconds: f.maintenance_us as f64 / 1e6,
                }
            })
            .collect(),
    )
}

/// `GET /api/v1/checks/{check}/daily?days=90`: one figure per UTC day, oldest first, today
/// (so far) last: the status page's bars.
pub async fn get_daily(
    State(s): State<Arc<AppState>>,
    ApiPath(check): ApiPath<String>,
    ApiQuery(q): ApiQuery<DailyQuery>,
) -> ApiResult<ApiJson<Vec<Day>>> {
    let days = days_param(q.days)?;
    let info = s.check_info(&check)?;
    let now = chrono::Utc::now().timestamp_micros();
    let name = check.clone();
    let daily = settled(&s, now, move |s| days_of(s, &name, &info, days, now))
        .await?
        .ok_or_else(|| no_results(&check))?;
    Ok(ApiJson(daily))
}

/// `GET /api/v1/daily?days=90`: every check's days at once.
pub async fn get_daily_all(
    State(s): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<DailyQuery>,
) -> ApiResult<ApiJson<DailyList>> {
    let days = days_param(q.days)?;
    let now = chrono::Utc::now().timestamp_micros();
    let names = q.checks;
    let checks = settled(&s, now, move |s| {
        selected(s, names.as_deref())
            .into_iter()
            .filter_map(|(check, info)| {
                let days = days_of(s, &check, &info, days, now)?;
                Some(DailyFigures { check, days })
            })
            .collect()
    })
    .await?;
    Ok(ApiJson(DailyList { checks }))
}

/// One check's incidents in `[from, to)`, newest first; `None` with no results yet. Blocking.
fn incidents_of(s: &AppState, check: &str, (from, to, now): (i64, i64, i64)) -> Option<Incidents> {
    let mut incidents = s.rollups.incidents(check, from, to, now)?;
    incidents.reverse();
    Some(Incidents {
        check: check.to_owned(),
        from_us: from,
        to_us: to,
        incidents,
    })
}

/// `GET /api/v1/checks/{check}/incidents?window=90d`: the intervals the check was down.
pub async fn get_incidents(
    State(s): State<Arc<AppState>>,
    ApiPath(check): ApiPath<String>,
    ApiQuery(q): ApiQuery<WindowQuery>,
) -> ApiResult<ApiJson<Incidents>> {
    let now = chrono::Utc::now().timestamp_micros();
    let (from, to) = window(&q, now)?;
    s.check_info(&check)?;
    let name = check.clone();
    let incidents = settled(&s, now, move |s| incidents_of(s, &name, (from, to, now)))
        .await?
        .ok_or_else(|| no_results(&check))?;
    Ok(ApiJson(incidents))
}

/// `GET /api/v1/incidents?window=90d`: every check's down intervals over one window.
pub async fn get_incidents_all(
    State(s): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<AllQuery>,
) -> ApiResult<ApiJson<IncidentsList>> {
    let now = chrono::Utc::now().timestamp_micros();
    let Selection {
        from,
        to,
        checks: names,
        ..
    } = q.selection(now)?;
    let checks = settled(&s, now, move |s| {
        selected(s, names.as_deref())
            .into_iter()
            .filter_map(|(check, _)| incidents_of(s, &check, (from, to, now)))
            .collect()
    })
    .await?;
    Ok(ApiJson(IncidentsList {
        from_us: from,
        to_us: to,
        checks,
    }))
}

/// `GET /api/v1/slos`: every check the collector knows, with its SLO.
pub async fn get_slos(State(s): State<Arc<AppState>>) -> ApiJson<Slos> {
    let mut names: Vec<String> = s.known().keys().cloned().collect();
    if names.is_empty() {
        names = s.rollups.checks();
    }
    ApiJson(Slos {
        checks: names
            .into_iter()
            .filter_map(|check| {
                let info = s.check_info(&check).ok()?;
                Some(CheckSlo {
                    slo_since_us: s.slo_since().get(&check).copied(),
                    description: info.description,
                    regions: info.regions,
                    slo: info.slo,
                    check,
                })
            })
            .collect(),
    })
}

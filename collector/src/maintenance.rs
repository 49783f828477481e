//! Scheduled maintenance, owned by the collector: windows written in the config (kept in step
//! at each start) and scheduled through `POST /api/v1/maintenance` (by people, or by the status
//! page's admin API on their behalf). The collector keeps the time of a window in its rollups
//! beside down and no-data time, serves the windows in its live state (the alerter holds pages
//! with them) and to the status page (which announces them).
//!
//! A change that touches minutes already rolled up has them rolled up again from the raw
//! results, so that every figure of every window agrees with the windows as they are now.
//!
//! On a replica, a window scheduled or cancelled through the API is a [`Change`] on the
//! replicated log, applied by every replica in the log's order among the results; the answer
//! waits for this replica's own apply. A window is known by what it is (its source, name,
//! checks, start and when it was made), not by the store's id, so applying a change read
//! again (a restart) changes nothing, whatever ids each replica's store gave its windows.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use axum::extract::State;
use axum::http::StatusCode;
use lookout_api::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use lookout_model::read::{
    Maintenance, MaintenanceList, MaintenanceSource, MaintenanceStatus, NewMaintenance,
};
use lookout_model::sla::Spans;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::rollup::Rollups;
use crate::store::{MaintenanceChange, ResultStore, StoreError};

/// Longer maintenance is a project, not a window.
pub const MAX_LENGTH_US: i64 = 31 * 86_400_000_000;
pub const MAX_NAME: usize = 200;
pub const MAX_MESSAGE: usize = 10_000;

/// A window written in the config, validated by [`problems`].
#[derive(Debug, Clone, PartialEq)]
pub struct MaintenanceSpec {
    pub name: String,
    pub message: String,
    pub checks: Vec<String>,
    pub starts_us: i64,
    pub ends_us: i64,
}

/// What is wrong with a window, field by field: the rules the config and the API share.
/// `known` (the checks there are) empty accepts any check.
pub fn problems(
    name: &str,
    message: &str,
    checks: &[String],
    (starts_us, ends_us): (i64, i64),
    known: &[&str],
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if name.trim().is_empty() {
        out.push(("name", "must not be empty".to_owned()));
    } else if name.chars().count() > MAX_NAME {
        out.push(("name", format!("is longer than {MAX_NAME} characters")));
    }
    if message.chars().count() > MAX_MESSAGE {
        out.push((
            "message",
            format!("is longer than {MAX_MESSAGE} characters"),
        ));
    }
    if checks.is_empty() {
        out.push(("checks", "must name at least one check".to_owned()));
    }
    for c in checks {
        if !known.is_empty() && !known.contains(&c.as_str()) {
            out.push((
                "checks",
                format!("{c:?} is not a check; the checks are {}", known.join(", ")),
            ));
        }
    }
    if ends_us <= starts_us {
        out.push(("ends", "must be after `starts`".to_owned()));
    } else if ends_us - starts_us > MAX_LENGTH_US {
        out.push((
            "ends",
            "a maintenance window may last at most 31 days".to_owned(),
        ));
    }
    out
}

/// Each check's maintenance, merged: overlapping windows count once.
pub fn spans_by_check(windows: &[Maintenance]) -> HashMap<String, Spans> {
    let mut by: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    for m in windows {
        for c in &m.checks {
            by.entry(c.clone())
                .or_default()
                .push((m.starts_us, m.ends_us));
        }
    }
    by.into_iter().map(|(c, v)| (c, Spans::new(v))).collect()
}

/// A change of the windows, as the replicated log carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    Schedule {
        window: Maintenance,
    },
    /// Cancelled at `at_us`: removed if it had not begun by then, ended then if it had.
    Cancel {
        window: Maintenance,
        at_us: i64,
    },
}

/// Whether two windows are the same one, whichever store numbered them.
fn same(a: &Maintenance, b: &Maintenance) -> bool {
    a.source == b.source
        && a.name == b.name
        && a.checks == b.checks
        && a.starts_us == b.starts_us
        && a.created_us == b.created_us
}

/// Applies `change` (blocking): the window it scheduled or cancelled, as this store numbers
/// it; `None` for a cancel of a window gone already or over by then.
pub(crate) fn apply(state: &AppState, change: &Change) -> Result<Option<i64>, StoreError> {
    let held = |w: &Maintenance| state.maintenance.all().into_iter().find(|m| same(m, w));
    let outcome = match change {
        Change::Schedule { window } => match held(window) {
            Some(m) => Some(m.id),
            None => Some(state.maintenance.change(
                &state.rollups,
                MaintenanceChange::Put(window),
                &touched(window, window.starts_us),
            )?),
        },
        Change::Cancel { window, at_us } => match held(window) {
            None => None,
            Some(m) => match m.status(*at_us) {
                MaintenanceStatus::Completed => None,
                MaintenanceStatus::Scheduled => Some(state.maintenance.change(
                    &state.rollups,
                    MaintenanceChange::Delete(m.id),
                    &touched(&m, m.starts_us),
                )?),
                MaintenanceStatus::InProgress if m.ends_us == *at_us => Some(m.id),
                MaintenanceStatus::InProgress => {
                    let ended = Maintenance {
                        ends_us: *at_us,
                        ..m.clone()
                    };
                    Some(state.maintenance.change(
                        &state.rollups,
                        MaintenanceChange::Put(&ended),
                        &touched(&m, *at_us),
                    )?)
                }
            },
        },
    };
    let now = chrono::Utc::now().timestamp_micros();
    state
        .live
        .set_maintenance(state.maintenance.not_over(now), now);
    Ok(outcome)
}

/// Makes `change` here, or on a replica through the log; the window's id once this replica
/// has it.
async fn make(s: &Arc<AppState>, change: Change) -> ApiResult<Option<i64>> {
    if let Some(replica) = &s.replica {
        replica
            .publish_change(crate::replica::MAINTENANCE, &change)
            .await?;
        let window = match &change {
            Change::Schedule { window } | Change::Cancel { window, .. } => window,
        };
        return Ok(match &change {
            Change::Schedule { .. } => s
                .maintenance
                .all()
                .into_iter()
                .find(|m| same(m, window))
                .map(|m| m.id),
            Change::Cancel { .. } => None,
        });
    }
    let state = s.clone();
    tokio::task::spawn_blocking(move || apply(&state, &change))
        .await
        .map_err(|e| ApiError::Internal(format!("maintenance task failed: {e}")))?
        .map_err(internal)
}

/// The windows held, in memory as in the store.
#[derive(Default)]
pub struct Registry {
    windows: RwLock<Vec<Maintenance>>,
}

fn same_window(m: &Maintenance, s: &MaintenanceSpec) -> bool {
    m.name == s.name
        && m.message == s.message
        && m.checks == s.checks
        && m.starts_us == s.starts_us
        && m.ends_us == s.ends_us
}

/// Every `(check, from)` that a window's change touches from `from` on.
fn touched(m: &Maintenance, from: i64) -> Vec<(String, i64)> {
    m.checks.iter().map(|c| (c.clone(), from)).collect()
}

impl Registry {
    /// Brings the store's config windows in line with `config` (removing those no longer
    /// written, adding new ones) and loads every window. Before the rollups open: they read
    /// the windows from the store.
    pub fn load(
        store: &dyn ResultStore,
        config: &[MaintenanceSpec],
        now_us: i64,
    ) -> Result<Registry, StoreError> {
        let held = store.maintenances()?;
        for m in held
            .iter()
            .filter(|m| m.source == MaintenanceSource::Config)
        {
            if !config.iter().any(|s| same_window(m, s)) {
                store.change_maintenance(
                    MaintenanceChange::Delete(m.id),
                    &touched(m, m.starts_us),
                )?;
            }
        }
        for s in config {
            let exists = held
                .iter()
                .any(|m| m.source == MaintenanceSource::Config && same_window(m, s));
            if !exists {
                let m = Maintenance {
                    id: 0,
                    name: s.name.clone(),
                    message: s.message.clone(),
                    checks: s.checks.clone(),
                    starts_us: s.starts_us,
                    ends_us: s.ends_us,
                    source: MaintenanceSource::Config,
                    created_by: "config".into(),
                    created_us: now_us,
                };
                store.change_maintenance(MaintenanceChange::Put(&m), &touched(&m, m.starts_us))?;
            }
        }
        Ok(Registry {
            windows: RwLock::new(store.maintenances()?),
        })
    }

    pub fn all(&self) -> Vec<Maintenance> {
        self.windows
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Windows in progress or still to come, by start: what the live state carries.
    pub fn not_over(&self, now_us: i64) -> Vec<Maintenance> {
        let mut v: Vec<Maintenance> = self
            .all()
            .into_iter()
            .filter(|m| m.status(now_us) != MaintenanceStatus::Completed)
            .collect();
        v.sort_by_key(|m| (m.starts_us, m.id));
        v
    }

    pub fn in_progress(&self, now_us: i64) -> Vec<Maintenance> {
        self.not_over(now_us)
            .into_iter()
            .filter(|m| m.status(now_us) == MaintenanceStatus::InProgress)
            .collect()
    }

    /// Applies one change everywhere it matters, in order: the store (with the minutes to
    /// roll up again), the rollups, this registry. Blocking.
    fn change(
        &self,
        rollups: &Rollups,
        change: MaintenanceChange<'_>,
        dirty: &[(String, i64)],
    ) -> Result<i64, StoreError> {
        let mut windows = self.windows.write().unwrap_or_else(PoisonError::into_inner);
        let mut after = windows.clone();
        let id = rollups.change_maintenance(dirty, |store| {
            let id = store.change_maintenance(change, dirty)?;
            match change {
                MaintenanceChange::Put(m) => {
                    after.retain(|w| w.id != id);
                    after.push(Maintenance { id, ..m.clone() });
                }
                MaintenanceChange::Delete(gone) => after.retain(|w| w.id != gone),
            }
            Ok((id, spans_by_check(&after)))
        })?;
        *windows = after;
        Ok(id)
    }
}

/// A window's start or end as written (RFC 3339), in microseconds since the epoch.
pub fn parse_time(v: &str) -> Result<i64, chrono::ParseError> {
    chrono::DateTime::parse_from_rfc3339(v.trim()).map(|t| t.timestamp_micros())
}

fn rfc3339(field: &'static str, v: &str) -> Result<i64, (&'static str, String)> {
    parse_time(v).map_err(|e| {
        (
            field,
            format!("{v:?} is not an RFC 3339 time ({e}); write e.g. 2026-12-01T02:00:00Z"),
        )
    })
}

fn bad_request(problems: &[(&'static str, String)]) -> ApiError {
    ApiError::BadRequest(
        problems
            .iter()
            .map(|(field, m)| format!("`{field}`: {m}"))
            .collect::<Vec<_>>()
            .join("; "),
    )
}

fn internal(e: StoreError) -> ApiError {
    ApiError::Unavailable(format!("the maintenance could not be stored: {e}"))
}

/// `POST /api/v1/maintenance`: schedules a window. It may start in the past (work already
/// under way), as far back as the raw results are kept, but not be over already.
pub(crate) async fn create(
    State(s): State<Arc<AppState>>,
    ApiJson(body): ApiJson<NewMaintenance>,
) -> ApiResult<(StatusCode, ApiJson<Maintenance>)> {
    let now = chrono::Utc::now().timestamp_micros();
    let times = (rfc3339("starts", &body.starts), rfc3339("ends", &body.ends));
    let mut bad: Vec<(&'static str, String)> = Vec::new();
    let (starts_us, ends_us) = match times {
        (Ok(a), Ok(b)) => (a, b),
        (a, b) => {
            bad.extend(a.err());
            bad.extend(b.err());
            (0, 1)
        }
    };
    let mut checks: Vec<String> = Vec::new();
    for c in &body.checks {
        if !checks.contains(c) {
            checks.push(c.clone());
        }
    }
    let known = s.known();
    let known: Vec<&str> = known.keys().map(String::as_str).collect();
    bad.extend(problems(
        &body.name,
        &body.message,
        &checks,
        (starts_us, ends_us),
        &known,
    ));
    if bad.is_empty() && ends_us <= now {
        bad.push((
            "ends",
            "the window is already over; maintenance is scheduled ahead or while it goes on".into(),
        ));
    }
    let oldest = now - s.settings.rollup.raw_retention_us;
    if bad.is_empty() && starts_us < oldest {
        bad.push((
            "starts",
            format!(
                "is before the oldest raw results kept ({} days back): their minutes cannot be counted again",
                s.settings.rollup.raw_retention_us / 86_400_000_000
            ),
        ));
    }
    if !bad.is_empty() {
        return Err(bad_request(&bad));
    }
    let m = Maintenance {
        id: 0,
        name: body.name.trim().to_owned(),
        message: body.message.trim().to_owned(),
        checks,
        starts_us,
        ends_us,
        source: MaintenanceSource::Api,
        created_by: body.created_by.trim().chars().take(MAX_NAME).collect(),
        created_us: now,
    };
    let id = make(&s, Change::Schedule { window: m.clone() })
        .await?
        .ok_or_else(|| ApiError::Internal("the window was applied but is not held".into()))?;
    let stored = Maintenance { id, ..m };
    tracing::info!(id = stored.id, name = %stored.name, checks = ?stored.checks, "maintenance scheduled");
    Ok((StatusCode::CREATED, ApiJson(stored)))
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    /// Windows ending at or after this instant; default: 90 days back.
    since_us: Option<i64>,
}

/// `GET /api/v1/maintenance?since_us=T`: windows ending at or after `T`, by start.
pub(crate) async fn list(
    State(s): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiJson<MaintenanceList> {
    let now = chrono::Utc::now().timestamp_micros();
    let since = q.since_us.unwrap_or(now - 90 * 86_400_000_000);
    let mut maintenance: Vec<Maintenance> = s
        .maintenance
        .all()
        .into_iter()
        .filter(|m| m.ends_us >= since)
        .collect();
    maintenance.sort_by_key(|m| (m.starts_us, m.id));
    ApiJson(MaintenanceList { maintenance })
}

/// `DELETE /api/v1/maintenance/{id}`: a window not yet begun is removed; one in progress ends
/// now (what was maintenance stays so); one over, or written in the config, stays.
pub(crate) async fn cancel(
    State(s): State<Arc<AppState>>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let missing = || ApiError::NotFound(format!("no maintenance window {id:?}"));
    let n: i64 = id.parse().map_err(|_| missing())?;
    let m = s
        .maintenance
        .all()
        .into_iter()
        .find(|m| m.id == n)
        .ok_or_else(missing)?;
    if m.source == MaintenanceSource::Config {
        return Err(ApiError::Conflict(format!(
            "maintenance window {n} ({}) is written in the config; remove it there",
            m.name
        )));
    }
    let now = chrono::Utc::now().timestamp_micros();
    if m.status(now) == MaintenanceStatus::Completed {
        return Err(ApiError::Conflict(format!(
            "maintenance window {n} is over; it stays in the history"
        )));
    }
    make(
        &s,
        Change::Cancel {
            window: m,
            at_us: now,
        },
    )
    .await?;
    tracing::info!(id = n, "maintenance cancelled");
    Ok(StatusCode::NO_CONTENT)
}

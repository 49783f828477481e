//! `GET /api/v1/states`: the live state of every check, long-polled.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use lookout_api::{ApiError, ApiJson, ApiQuery, ApiResult};
use serde::Deserialize;

use crate::{AppState, live};

/// How long a states poll is held by default: under the 30 s or so after which proxies
/// commonly cut an idle request; a change is answered at once anyway.
const STATES_WAIT: Duration = Duration::from_secs(25);
/// The longest a states poll is held.
const MAX_STATES_WAIT: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
pub(super) struct StatesQuery {
    after: Option<String>,
    wait: Option<String>,
}

/// `GET /api/v1/states?after=N&wait=25s`: every check's live state, at once when it differs
/// from version `after` (or without `after`), else as soon as it changes or after `wait`.
pub(super) async fn get_states(
    State(s): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<StatesQuery>,
) -> ApiResult<ApiJson<live::States>> {
    let wait = match q.wait.as_deref() {
        None => STATES_WAIT,
        Some(w) => humantime::parse_duration(w).map_err(|e| {
            ApiError::BadRequest(format!(
                "`wait`: {w:?} is not a duration ({e}); write e.g. `25s`"
            ))
        })?,
    }
    .min(MAX_STATES_WAIT);
    let after = match q.after.as_deref() {
        None => None,
        Some(a) => Some(a.parse::<u64>().map_err(|_| {
            ApiError::BadRequest(format!(
                "`after`: {a:?} is not a version (the `version` of an earlier answer)"
            ))
        })?),
    };
    if let Some(after) = after {
        let mut changes = s.live.subscribe();
        let mut stopping = s.stopping.clone();
        // Any other version answers at once, a lower one too: a version from before a
        // restart of the collector must not hold the poll.
        tokio::select! {
            _ = tokio::time::timeout(wait, changes.wait_for(|v| *v != after)) => {}
            _ = stopping.wait_for(|stop| *stop) => {}
        }
    }
    Ok(ApiJson(
        s.live.states(chrono::Utc::now().timestamp_micros()),
    ))
}

//! `POST/GET /api/v1/events`: what happened around the checks (replacements, brakes, SLO
//! changes), kept with the results.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use lookout_api::{ApiError, ApiJson, ApiQuery, ApiResult};
use serde::{Deserialize, Serialize};

use crate::AppState;

/// The most events one post may carry, and the longest text of one.
const MAX_EVENTS: usize = 1_000;
const MAX_EVENT_TEXT: usize = 2_000;

/// `POST /api/v1/events`: events from other components (the replacer's decisions), kept for
/// dashboards to annotate with and the alerter to read.
pub(super) async fn post_events(
    State(s): State<Arc<AppState>>,
    ApiJson(batch): ApiJson<lookout_model::event::EventBatch>,
) -> ApiResult<(StatusCode, ApiJson<serde_json::Value>)> {
    if batch.events.len() > MAX_EVENTS {
        return Err(ApiError::PayloadTooLarge(format!(
            "at most {MAX_EVENTS} events per post, got {}",
            batch.events.len()
        )));
    }
    for (i, e) in batch.events.iter().enumerate() {
        for (field, value, max) in [
            ("source", &e.source, 100),
            ("kind", &e.kind, 100),
            ("service", &e.service, 200),
            ("message", &e.message, MAX_EVENT_TEXT),
        ] {
            if value.trim().is_empty() && field != "message" {
                return Err(ApiError::BadRequest(format!(
                    "events[{i}].{field} must not be empty"
                )));
            }
            if value.chars().count() > max {
                return Err(ApiError::BadRequest(format!(
                    "events[{i}].{field} is longer than {max} characters"
                )));
            }
        }
    }
    let stored = batch.events.len();
    let store = s.store().clone();
    tokio::task::spawn_blocking(move || store.insert_events(&batch.events))
        .await
        .map_err(|e| ApiError::Internal(format!("store task failed: {e}")))?
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(serde_json::json!({ "stored": stored })),
    ))
}

#[derive(Deserialize)]
pub(super) struct EventsQuery {
    /// Events after this id.
    after: Option<i64>,
    /// Events that happened at or after this instant.
    since_us: Option<i64>,
    limit: Option<usize>,
}

#[derive(Serialize)]
pub(super) struct EventsBody {
    events: Vec<lookout_model::event::StoredEvent>,
}

/// `GET /api/v1/events?after=ID&since_us=T&limit=N`: oldest first.
pub(super) async fn get_events(
    State(s): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<ApiJson<EventsBody>> {
    let limit = q.limit.unwrap_or(1_000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "`limit` must be from 1 to 10000, got {limit}"
        )));
    }
    let store = s.store().clone();
    let events = tokio::task::spawn_blocking(move || {
        store.events(q.after.unwrap_or(0), q.since_us.unwrap_or(0), limit)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("store task failed: {e}")))?
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(ApiJson(EventsBody { events }))
}

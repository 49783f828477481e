//! `POST /api/v1/results` (an agent's batch: checked, stored with its group commit, handed
//! on) and `GET /api/v1/results` (raw results, for people and tests).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use lookout_api::{ApiError, ApiFastJson, ApiJson, ApiQuery, ApiResult};
use serde::Deserialize;

use lookout_model::probe::{BatchAck, ProbeResult, ResultBatch};

use crate::store::ResultFilter;
use crate::{AppState, CheckInfo, ingest, sink, store};

pub(super) async fn post_results(
    State(s): State<Arc<AppState>>,
    ApiFastJson(batch): ApiFastJson<ResultBatch>,
) -> ApiResult<Response> {
    let now = chrono::Utc::now().timestamp_micros();
    if let Err(e) = ingest::validate(
        &batch,
        &s.settings.known,
        now,
        s.settings.rollup.raw_retention_us,
    ) {
        s.metrics
            .results
            .with_label_values(&["rejected"])
            .inc_by(batch.results.len() as u64);
        return Err(ApiError::BadRequest(e));
    }
    // Stored by the commit thread (a sync to disk never stalls the async workers), together
    // with whatever else arrived meanwhile; the results come back, uncopied.
    let (results, inserted) = match s.committer.insert(batch.results).await {
        Ok(x) => x,
        Err(e) => (Vec::new(), Err(e)),
    };
    let batch = ResultBatch { results };
    let inserted = match inserted {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "results not stored; the agents keep them and retry");
            // Nothing acknowledged, nothing lost: the agent retries after this.
            return Ok((
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
                axum::Json(serde_json::json!({"error": "results could not be stored; retry later", "status": 503})),
            )
                .into_response());
        }
    };
    let (stored, duplicates) = store::counts(&inserted);
    sink::offer_stored(&s.settings.sinks, &batch.results, &inserted);
    s.metrics
        .results
        .with_label_values(&["stored"])
        .inc_by(stored as u64);
    s.metrics
        .results
        .with_label_values(&["duplicate"])
        .inc_by(duplicates as u64);
    s.metrics.stored.set(s.store().len() as i64);
    s.rollups.observe(&batch.results, &inserted);
    // Only once stored: a waiter told of a change must find it in every answer after.
    s.live.observe(
        &batch.results,
        &inserted,
        chrono::Utc::now().timestamp_micros(),
    );
    if let Some(first) = batch.results.first() {
        s.metrics
            .agent_last_result
            .with_label_values(&[first.agent.as_str(), first.region.as_str()])
            .set(now as f64 / 1e6);
    }
    if let Some(agent) = batch.results.first().map(|r| r.agent.clone())
        && let Some(offset) = clock_offset(&batch.results, now)
    {
        s.metrics
            .clock_offset
            .with_label_values(&[agent.as_str()])
            .set(offset);
        if offset < -1.0 {
            tracing::warn!(%agent, ahead_seconds = -offset, "the agent's clock is ahead of the collector's: its results' times are off");
        }
        s.clock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(agent, offset);
    }
    for (r, new) in batch.results.iter().zip(&inserted) {
        // A replay is acknowledged, not counted again.
        if *new {
            let objective_us = s.settings.known.get(&r.check).map_or_else(
                || CheckInfo::unknown().slo.latency_objective_us(),
                |i| i.slo.latency_objective_us(),
            );
            s.metrics.observe(r, objective_us);
        }
        let asked = s.hub.observe(r);
        if !asked.is_empty() {
            tracing::info!(check = %r.check, region = %r.region, agents = ?asked, "new failure; asking other regions to confirm");
            s.metrics
                .confirmations
                .with_label_values(&[&r.check])
                .inc_by(asked.len() as u64);
        }
    }
    Ok((
        StatusCode::OK,
        axum::Json(BatchAck {
            accepted: stored,
            duplicates,
        }),
    )
        .into_response())
}

#[derive(Deserialize)]
pub(super) struct ResultsQuery {
    check: Option<String>,
    region: Option<String>,
    agent: Option<String>,
    limit: Option<usize>,
}

pub(super) async fn get_results(
    State(s): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<ResultsQuery>,
) -> ApiResult<ApiJson<lookout_model::read::Results>> {
    let limit = q.limit.unwrap_or(1000);
    if !(1..=100_000).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "`limit` must be from 1 to 100000, got {limit}"
        )));
    }
    let filter = ResultFilter {
        check: q.check,
        region: q.region,
        agent: q.agent,
        limit,
    };
    let store = s.store().clone();
    let results = tokio::task::spawn_blocking(move || store.query(&filter))
        .await
        .map_err(|e| ApiError::Internal(format!("store task failed: {e}")))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(ApiJson(lookout_model::read::Results { results }))
}

/// least time between a run's end (by the agent's clock) and its arrival (by ours). Delivery
/// makes it a little positive (a second or so); a negative figure can only be the agent's
/// clock running ahead, and a large positive one on a fresh batch, behind (or a spool being
/// replayed).
fn clock_offset(results: &[ProbeResult], now_us: i64) -> Option<f64> {
    results
        .iter()
        .map(|r| {
            now_us
                - r.started_at_us
                    .saturating_add(i64::try_from(r.duration_us).unwrap_or(0))
        })
        .min()
        .map(|us| us as f64 / 1e6)
}

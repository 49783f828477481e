//! `POST /api/v1/results` (an agent's batch: checked, stored with its group commit, handed
//! on) and `GET /api/v1/results` (raw results, for people and tests).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use lookout_api::{ApiError, ApiFastJsonBytes, ApiJson, ApiQuery, ApiResult};
use serde::Deserialize;

use lookout_model::probe::{BatchAck, ProbeResult, ResultBatch};

use crate::store::ResultFilter;
use crate::{AppState, ingest, store};

pub(super) async fn post_results(
    State(s): State<Arc<AppState>>,
    ApiFastJsonBytes(batch, body): ApiFastJsonBytes<ResultBatch>,
) -> ApiResult<Response> {
    let now = chrono::Utc::now().timestamp_micros();
    if let Err(e) = ingest::validate(&batch, &s.known(), now, s.settings.rollup.raw_retention_us) {
        s.metrics
            .results
            .with_label_values(&["rejected"])
            .inc_by(batch.results.len() as u64);
        return Err(ApiError::BadRequest(e));
    }
    Ok(match take(&s, batch.results, body, now).await {
        Ok((accepted, duplicates)) => (
            StatusCode::OK,
            axum::Json(BatchAck {
                accepted,
                duplicates,
            }),
        )
            .into_response(),
        Err(refused) => refused,
    })
}

/// Stores valid results: through the replicated log on a replica (acknowledged once the log
/// holds them; `body` is their batch as JSON), else with the commit thread's group commit.
/// (stored, duplicates); a 503 to answer when nothing was acknowledged, and nothing lost: the
/// sender keeps them and tries again.
pub(crate) async fn take(
    s: &Arc<AppState>,
    results: Vec<ProbeResult>,
    body: bytes::Bytes,
    now: i64,
) -> Result<(usize, usize), Response> {
    if let Some(replica) = &s.replica {
        return match replica.append(&results, body).await {
            Ok(counts) => Ok(counts),
            Err(e) => {
                tracing::warn!(error = %e, "results not acknowledged by the log; their senders keep them and retry");
                Err(unavailable(
                    "the replicated log did not take the results; retry later",
                ))
            }
        };
    }
    // Stored by the commit thread (a sync to disk never stalls the async workers), together
    // with whatever else arrived meanwhile; the results come back, uncopied.
    let (results, inserted) = match s.committer.insert(results).await {
        Ok(x) => x,
        Err(e) => (Vec::new(), Err(e)),
    };
    let inserted = match inserted {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "results not stored; their senders keep them and retry");
            return Err(unavailable("results could not be stored; retry later"));
        }
    };
    crate::stored::after_stored(s, &results, &inserted, now);
    Ok(store::counts(&inserted))
}

fn unavailable(message: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "5")],
        axum::Json(serde_json::json!({"error": message, "status": 503})),
    )
        .into_response()
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

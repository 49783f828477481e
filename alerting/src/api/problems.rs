//! `/api/problems`: open and past problems, and their acknowledgement.

use axum::extract::State;
use lookout_api::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use serde::{Deserialize, Serialize};

use super::checks::Page;
use super::{S, internal};
use crate::notify::Level;
use crate::problem::{Delivery, Problem};
use crate::store::rfc3339;

#[derive(Deserialize)]
pub(super) struct ProblemsQuery {
    open: Option<bool>,
    start: Option<u32>,
    items: Option<u32>,
}

#[derive(Serialize)]
pub(super) struct ProblemView {
    #[serde(flatten)]
    problem: Problem,
    level: Level,
    opened: String,
    closed: Option<String>,
    deliveries: Vec<Delivery>,
}

pub(super) async fn list_problems(
    State(s): S,
    ApiQuery(q): ApiQuery<ProblemsQuery>,
) -> ApiResult<ApiJson<Vec<ProblemView>>> {
    let (start, items) = Page {
        start: q.start,
        items: q.items,
    }
    .get()?;
    let problems = s
        .store
        .problems(q.open.unwrap_or(false), items, start)
        .await
        .map_err(internal)?;
    let mut out = Vec::new();
    for p in problems {
        let deliveries = s.store.deliveries(&p.id).await.map_err(internal)?;
        out.push(ProblemView {
            level: p.level(),
            opened: rfc3339(p.opened_us),
            closed: p.closed_us.map(rfc3339),
            problem: p,
            deliveries,
        });
    }
    Ok(ApiJson(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AckSpec {
    by: String,
    #[serde(default)]
    comment: String,
}

pub(super) async fn ack_problem(
    State(s): S,
    ApiPath(id): ApiPath<String>,
    ApiJson(ack): ApiJson<AckSpec>,
) -> ApiResult<ApiJson<Problem>> {
    if ack.by.trim().is_empty() {
        return Err(ApiError::BadRequest("`by`: say who acknowledges".into()));
    }
    let open = s.engine.lock().await.problems.values().any(|p| p.id == id);
    if !open {
        return Err(match s.store.problem(&id).await.map_err(internal)? {
            Some(_) => ApiError::Conflict(format!(
                "problem {id:?} is over; acknowledgements end with it"
            )),
            None => ApiError::NotFound(format!("no problem with id {id:?}")),
        });
    }
    let ack = crate::problem::Ack {
        by: ack.by,
        comment: ack.comment,
        at_us: chrono::Utc::now().timestamp_micros(),
    };
    crate::changes::make(
        &s,
        crate::changes::Change::Ack {
            problem_id: id.clone(),
            ack,
        },
    )
    .await?;
    let e = s.engine.lock().await;
    e.problems
        .values()
        .find(|p| p.id == id)
        .cloned()
        .map(ApiJson)
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "problem {id:?} closed as it was acknowledged; acknowledgements end with it"
            ))
        })
}

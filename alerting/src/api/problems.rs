//! `/api/problems`: open and past problems, and their acknowledgement.

use axum::extract::State;
use lookout_api::{ApiJson, ApiPath, ApiQuery, ApiResult};
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
    Ok(ApiJson(
        crate::actions::ack(&s, &id, &ack.by, &ack.comment, None).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UnackSpec {
    by: String,
    #[serde(default)]
    comment: String,
}

pub(super) async fn unack_problem(
    State(s): S,
    ApiPath(id): ApiPath<String>,
    ApiJson(u): ApiJson<UnackSpec>,
) -> ApiResult<ApiJson<Problem>> {
    Ok(ApiJson(
        crate::actions::unack(&s, &id, &u.by, &u.comment).await?,
    ))
}

//! The admin API (bearer token): incidents, their updates and impact, scheduled maintenance,
//! and sending a month's report now. Every write re-renders the site before it answers, so
//! what was posted is on the page, the JSON and the feed by the time the caller hears back.
//! On a replica, a write goes through the replicated log ([`changes`]) and answers once this
//! replica has applied it; every other replica applies it too.
//!
//! Maintenance is the collector's (it holds the alerter's pages and leaves its time out of
//! availability): these routes schedule and cancel it there, by component.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, post};
use lookout_api::error::{ApiError, ApiJson, ApiPath};
use serde::Deserialize;

use crate::Shared;
use crate::changes::{self, Change};
use crate::model::{Impact, Incident, IncidentStatus, Maintenance};
use crate::refresh::now_us;
use crate::store::StoreError;
use lookout_api::client::ClientError;
use lookout_model::read::NewMaintenance as CollectorMaintenance;

type S = State<Arc<Shared>>;
type ApiResult<T> = Result<T, ApiError>;

const MAX_NAME: usize = 200;
const MAX_MESSAGE: usize = 10_000;

pub fn router(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    let token = shared.settings().admin_token.clone();
    Router::new()
        .route(
            "/api/v1/incidents",
            get(list_incidents).post(create_incident),
        )
        .route(
            "/api/v1/incidents/{id}",
            get(get_incident).patch(patch_incident),
        )
        .route("/api/v1/incidents/{id}/updates", post(post_update))
        .route(
            "/api/v1/maintenances",
            get(list_maintenances).post(create_maintenance),
        )
        .route(
            "/api/v1/maintenances/{id}",
            axum::routing::delete(delete_maintenance),
        )
        .route(
            "/api/v1/reports/{month}/send",
            post(crate::report::send_now),
        )
        .layer(middleware::from_fn_with_state(
            token,
            lookout_api::auth::require_bearer,
        ))
}

fn internal(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "status page admin API");
    ApiError::Internal("the store failed".into())
}

fn text_field(field: &str, value: &str, max: usize) -> ApiResult<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ApiError::BadRequest(format!("`{field}` must not be empty")));
    }
    if v.chars().count() > max {
        return Err(ApiError::BadRequest(format!(
            "`{field}` is longer than {max} characters"
        )));
    }
    Ok(v.to_owned())
}

fn status_field(v: &str) -> ApiResult<IncidentStatus> {
    IncidentStatus::parse(v).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "`status`: {v:?} is not one of investigating, identified, monitoring, resolved"
        ))
    })
}

fn impact_field(v: &str) -> ApiResult<Impact> {
    Impact::parse(v).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "`impact`: {v:?} is not one of none, minor, major, critical"
        ))
    })
}

fn components_field(s: &Shared, ids: &[String]) -> ApiResult<Vec<String>> {
    if ids.is_empty() {
        return Err(ApiError::BadRequest(
            "`components` must name at least one component".into(),
        ));
    }
    let mut out = Vec::new();
    let settings = s.settings();
    for (i, id) in ids.iter().enumerate() {
        if settings.component(id).is_none() {
            let known: Vec<&str> = settings.components().map(|c| c.id.as_str()).collect();
            return Err(ApiError::BadRequest(format!(
                "`components[{i}]`: no component {id:?}; the components are {}",
                known.join(", ")
            )));
        }
        if !out.contains(id) {
            out.push(id.clone());
        }
    }
    Ok(out)
}

fn incident_id(raw: &str) -> ApiResult<i64> {
    raw.parse()
        .map_err(|_| ApiError::NotFound(format!("no incident {raw:?}")))
}

async fn find(s: &Shared, id: i64) -> ApiResult<Incident> {
    s.store
        .incident(id)
        .map_err(internal)?
        .ok_or_else(|| ApiError::NotFound(format!("no incident {id}")))
}

async fn list_incidents(State(s): S) -> ApiResult<ApiJson<Vec<Incident>>> {
    Ok(ApiJson(s.store.incidents().map_err(internal)?))
}

async fn get_incident(State(s): S, ApiPath(id): ApiPath<String>) -> ApiResult<ApiJson<Incident>> {
    Ok(ApiJson(find(&s, incident_id(&id)?).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewIncident {
    name: String,
    message: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    impact: Option<String>,
    components: Vec<String>,
}

async fn create_incident(
    State(s): S,
    ApiJson(body): ApiJson<NewIncident>,
) -> ApiResult<(StatusCode, ApiJson<Incident>)> {
    let name = text_field("name", &body.name, MAX_NAME)?;
    let message = text_field("message", &body.message, MAX_MESSAGE)?;
    let status = status_field(body.status.as_deref().unwrap_or("investigating"))?;
    let impact = impact_field(body.impact.as_deref().unwrap_or("minor"))?;
    let components = components_field(&s, &body.components)?;
    let id = changes::make(
        &s,
        Change::Open {
            origin: changes::origin("open"),
            name,
            message,
            status,
            impact,
            components,
            at_us: now_us(),
        },
    )
    .await?;
    crate::refresh::rerender(&s).await;
    Ok((StatusCode::CREATED, ApiJson(find(&s, id).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUpdate {
    status: String,
    message: String,
    #[serde(default)]
    impact: Option<String>,
}

async fn post_update(
    State(s): S,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NewUpdate>,
) -> ApiResult<(StatusCode, ApiJson<Incident>)> {
    let id = incident_id(&id)?;
    let status = status_field(&body.status)?;
    let message = text_field("message", &body.message, MAX_MESSAGE)?;
    let impact = body.impact.as_deref().map(impact_field).transpose()?;
    find(&s, id).await?;
    changes::make(
        &s,
        Change::Update {
            origin: changes::origin("update"),
            incident: id,
            status,
            message,
            impact,
            at_us: now_us(),
        },
    )
    .await?;
    crate::refresh::rerender(&s).await;
    Ok((StatusCode::CREATED, ApiJson(find(&s, id).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentPatch {
    #[serde(default)]
    impact: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

async fn patch_incident(
    State(s): S,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<IncidentPatch>,
) -> ApiResult<ApiJson<Incident>> {
    let id = incident_id(&id)?;
    if body.impact.is_none() && body.name.is_none() {
        return Err(ApiError::BadRequest(
            "give `impact` or `name` (or both) to change".into(),
        ));
    }
    let impact = body.impact.as_deref().map(impact_field).transpose()?;
    let name = body
        .name
        .as_deref()
        .map(|n| text_field("name", n, MAX_NAME))
        .transpose()?;
    find(&s, id).await?;
    changes::make(
        &s,
        Change::Correct {
            origin: changes::origin("correct"),
            incident: id,
            impact,
            name,
            at_us: now_us(),
        },
    )
    .await?;
    crate::refresh::rerender(&s).await;
    Ok(ApiJson(find(&s, id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMaintenance {
    name: String,
    components: Vec<String>,
    /// RFC 3339.
    starts: String,
    ends: String,
    #[serde(default)]
    message: String,
}

/// The collector's refusal of a request as this API's: its own message for what it refused
/// (the fields are the same), a 502 for a collector that could not answer.
fn collector_error(e: ClientError) -> ApiError {
    match e.status {
        Some(400) => ApiError::BadRequest(e.message),
        Some(404) => ApiError::NotFound(e.message),
        Some(409) => ApiError::Conflict(e.message),
        _ => {
            tracing::warn!(error = %e, "status page admin API: the collector did not answer");
            ApiError::BadGateway(
                "the collector, which keeps scheduled maintenance, did not answer; try again"
                    .into(),
            )
        }
    }
}

async fn create_maintenance(
    State(s): S,
    ApiJson(body): ApiJson<NewMaintenance>,
) -> ApiResult<(StatusCode, ApiJson<Maintenance>)> {
    let name = text_field("name", &body.name, MAX_NAME)?;
    let components = components_field(&s, &body.components)?;
    let settings = s.settings();
    let checks: Vec<String> = components
        .iter()
        .filter_map(|id| settings.component(id))
        .map(|c| c.check.clone())
        .collect();
    let window = s
        .client
        .schedule_maintenance(&CollectorMaintenance {
            name,
            message: body.message,
            checks,
            starts: body.starts,
            ends: body.ends,
            created_by: "status-page".into(),
        })
        .await
        .map_err(collector_error)?;
    crate::refresh::refresh(&s).await;
    let shown = Maintenance::of(window, &s.settings())
        .ok_or_else(|| ApiError::Internal("a window of no component".into()))?;
    Ok((StatusCode::CREATED, ApiJson(shown)))
}

async fn list_maintenances(State(s): S) -> ApiResult<ApiJson<Vec<Maintenance>>> {
    let since = now_us() - i64::from(crate::snapshot::DAYS) * 86_400_000_000;
    let windows = s.client.maintenance(since).await.map_err(collector_error)?;
    Ok(ApiJson(
        windows
            .maintenance
            .into_iter()
            .filter_map(|m| Maintenance::of(m, &s.settings()))
            .collect(),
    ))
}

async fn delete_maintenance(State(s): S, ApiPath(id): ApiPath<String>) -> ApiResult<StatusCode> {
    let missing = || ApiError::NotFound(format!("no maintenance {id:?}"));
    let n: i64 = id.parse().map_err(|_| missing())?;
    if !s
        .client
        .cancel_maintenance(n)
        .await
        .map_err(collector_error)?
    {
        return Err(missing());
    }
    crate::refresh::refresh(&s).await;
    Ok(StatusCode::NO_CONTENT)
}

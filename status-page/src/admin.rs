//! The admin API (bearer token): incidents, their updates and impact, scheduled maintenance,
//! and sending a month's report now. Every write re-renders the site before it answers, so
//! what was posted is on the page, the JSON and the feed by the time the caller hears back.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, post};
use lookout_api::error::{ApiError, ApiJson, ApiPath};
use serde::Deserialize;

use crate::Shared;
use crate::model::{Impact, Incident, IncidentStatus, Maintenance};
use crate::refresh::now_us;
use crate::settings::MaintenanceSpec;
use crate::store::{Store, StoreError};

type S = State<Arc<Shared>>;
type ApiResult<T> = Result<T, ApiError>;

const MAX_NAME: usize = 200;
const MAX_MESSAGE: usize = 10_000;
/// Longer maintenance is a project, not a window.
const MAX_MAINTENANCE_US: i64 = 31 * 86_400_000_000;

pub fn router(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    let token = shared.settings.admin_token.clone();
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
    for (i, id) in ids.iter().enumerate() {
        if s.settings.component(id).is_none() {
            let known: Vec<&str> = s.settings.components().map(|c| c.id.as_str()).collect();
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
    let now = now_us();
    let id = s
        .store
        .create_incident(
            &name,
            impact,
            status,
            &message,
            &components,
            now,
            now,
            false,
        )
        .map_err(internal)?;
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
    let now = now_us();
    s.store
        .add_update(id, status, &message, now, false)
        .map_err(internal)?;
    if let Some(impact) = impact {
        s.store.set_impact(id, impact, now).map_err(internal)?;
    }
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
    let now = now_us();
    if let Some(impact) = impact {
        s.store.set_impact(id, impact, now).map_err(internal)?;
    }
    if let Some(name) = name {
        s.store.set_name(id, &name, now).map_err(internal)?;
    }
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

fn rfc3339(field: &str, v: &str) -> ApiResult<i64> {
    chrono::DateTime::parse_from_rfc3339(v.trim())
        .map(|t| t.timestamp_micros())
        .map_err(|e| {
            ApiError::BadRequest(format!(
                "`{field}`: {v:?} is not an RFC 3339 time ({e}); write e.g. 2026-12-01T02:00:00Z"
            ))
        })
}

/// The checks a window's times must pass, for the API and the config alike.
pub fn check_window(starts_us: i64, ends_us: i64, now: i64) -> Result<(), String> {
    if ends_us <= starts_us {
        return Err("`ends` must be after `starts`".into());
    }
    if ends_us - starts_us > MAX_MAINTENANCE_US {
        return Err("a maintenance window may last at most 31 days".into());
    }
    if ends_us <= now {
        return Err("the window is already over".into());
    }
    Ok(())
}

async fn create_maintenance(
    State(s): S,
    ApiJson(body): ApiJson<NewMaintenance>,
) -> ApiResult<(StatusCode, ApiJson<Maintenance>)> {
    let name = text_field("name", &body.name, MAX_NAME)?;
    let components = components_field(&s, &body.components)?;
    let starts_us = rfc3339("starts", &body.starts)?;
    let ends_us = rfc3339("ends", &body.ends)?;
    if body.message.chars().count() > MAX_MESSAGE {
        return Err(ApiError::BadRequest(format!(
            "`message` is longer than {MAX_MESSAGE} characters"
        )));
    }
    let now = now_us();
    check_window(starts_us, ends_us, now).map_err(ApiError::BadRequest)?;
    let mut m = Maintenance {
        id: 0,
        name,
        components,
        starts_us,
        ends_us,
        message: body.message.trim().to_owned(),
        created_us: now,
        from_config: false,
        silence_id: None,
    };
    m.id = s.store.create_maintenance(&m).map_err(internal)?;
    if let Some(alerter) = &s.alerter {
        let checks: Vec<String> = m
            .components
            .iter()
            .filter_map(|id| s.settings.component(id))
            .map(|c| c.check.clone())
            .collect();
        // Not taken now: offered again on every refresh until it is.
        match alerter.hold(&m, &checks).await {
            Ok(id) => {
                s.store.set_silence(m.id, &id).map_err(internal)?;
                m.silence_id = Some(id);
            }
            Err(e) => {
                tracing::warn!(error = %e, "status page: the alerter did not take the maintenance yet")
            }
        }
    }
    crate::refresh::rerender(&s).await;
    Ok((StatusCode::CREATED, ApiJson(m)))
}

async fn list_maintenances(State(s): S) -> ApiResult<ApiJson<Vec<Maintenance>>> {
    Ok(ApiJson(s.store.maintenances().map_err(internal)?))
}

async fn delete_maintenance(State(s): S, ApiPath(id): ApiPath<String>) -> ApiResult<StatusCode> {
    let missing = || ApiError::NotFound(format!("no maintenance {id:?}"));
    let n: i64 = id.parse().map_err(|_| missing())?;
    let all = s.store.maintenances().map_err(internal)?;
    let m = all.iter().find(|m| m.id == n).ok_or_else(missing)?;
    if m.from_config {
        return Err(ApiError::Conflict(
            "this maintenance is written in the config; remove it there".into(),
        ));
    }
    if let (Some(alerter), Some(silence)) = (&s.alerter, &m.silence_id) {
        alerter.release(silence).await.map_err(|e| {
            ApiError::BadGateway(format!("{e}; the maintenance is kept, try again"))
        })?;
    }
    s.store.delete_maintenance(n).map_err(internal)?;
    crate::refresh::rerender(&s).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Puts the config's maintenance windows in the store, and removes those no longer there.
pub fn sync_config_maintenance(
    store: &Store,
    specs: &[MaintenanceSpec],
    now: i64,
) -> Result<(), StoreError> {
    let existing: Vec<Maintenance> = store
        .maintenances()?
        .into_iter()
        .filter(|m| m.from_config)
        .collect();
    let same = |m: &Maintenance, s: &MaintenanceSpec| {
        m.name == s.name
            && m.starts_us == s.starts_us
            && m.ends_us == s.ends_us
            && m.components == s.components
    };
    for m in &existing {
        if !specs.iter().any(|s| same(m, s)) {
            store.delete_maintenance(m.id)?;
        }
    }
    for s in specs {
        if !existing.iter().any(|m| same(m, s)) {
            store.create_maintenance(&Maintenance {
                id: 0,
                name: s.name.clone(),
                components: s.components.clone(),
                starts_us: s.starts_us,
                ends_us: s.ends_us,
                message: s.message.clone(),
                created_us: now,
                from_config: true,
                silence_id: None,
            })?;
        }
    }
    Ok(())
}

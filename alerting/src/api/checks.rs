//! `/api/checks`: checks in Seyren's shape, each with its state, and their alerts.

use axum::extract::State;
use axum::http::StatusCode;
use lookout_api::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use serde::{Deserialize, Serialize};

use super::{S, internal};
use crate::changes::Change;
use crate::check::{Check, Origin};
use crate::engine::Shared;
use crate::notify::Level;
use crate::problem::AlertRecord;
use crate::spec::CheckSpec;
use crate::store::rfc3339;

#[derive(Serialize)]
pub struct CheckView {
    id: String,
    name: String,
    description: String,
    target: String,
    warn: Option<f64>,
    error: Option<f64>,
    worse: crate::check::Worse,
    enabled: bool,
    allow_no_data: bool,
    schedule: String,
    gate: Option<crate::check::Gate>,
    #[serde(rename = "for")]
    for_duration: Option<String>,
    group: Option<String>,
    depends_on: Vec<String>,
    origin: Origin,
    state: Level,
    state_since: Option<String>,
    value: Option<f64>,
    last_check: Option<String>,
    /// The instant of the last evaluation, exactly: its windows end there.
    last_check_us: Option<i64>,
    /// Why the last evaluation could not read its source, if it could not.
    last_error: Option<String>,
}

pub(super) fn view(c: &Check, e: &crate::engine::Engine) -> CheckView {
    let st = e.states.get(&c.id);
    CheckView {
        id: c.id.clone(),
        name: c.name.clone(),
        description: c.description.clone(),
        target: c.target_text.clone(),
        warn: c.thresholds.warn,
        error: c.thresholds.error,
        worse: c.thresholds.worse,
        enabled: c.enabled,
        allow_no_data: c.allow_no_data,
        schedule: c.schedule.describe(),
        gate: c.gate,
        for_duration: c
            .for_duration
            .map(|d| humantime::format_duration(d).to_string()),
        group: c.group.clone(),
        depends_on: c.depends_on.clone(),
        origin: c.origin,
        state: st.map_or(Level::Ok, |s| s.level),
        state_since: st.map(|s| rfc3339(s.since_us)),
        value: st.and_then(|s| s.value),
        last_check: st.and_then(|s| s.last_eval_us).map(rfc3339),
        last_check_us: st.and_then(|s| s.last_eval_us),
        last_error: e.errors.get(&c.id).cloned(),
    }
}

#[derive(Serialize)]
pub(super) struct Listing<T> {
    values: Vec<T>,
    items: usize,
    start: usize,
    total: u64,
}

#[derive(Deserialize)]
pub(super) struct ChecksQuery {
    /// Only checks in these states (comma-separated), as Seyren's `state` filter.
    state: Option<String>,
    enabled: Option<bool>,
}

pub(super) async fn list_checks(
    State(s): S,
    ApiQuery(q): ApiQuery<ChecksQuery>,
) -> ApiResult<ApiJson<Listing<CheckView>>> {
    let states: Option<Vec<String>> = q
        .state
        .map(|v| v.split(',').map(|x| x.trim().to_uppercase()).collect());
    let e = s.engine.lock().await;
    let mut values: Vec<CheckView> = e
        .checks
        .values()
        .map(|c| view(c, &e))
        .filter(|v| q.enabled.is_none_or(|en| en == v.enabled))
        .filter(|v| {
            states
                .as_ref()
                .is_none_or(|st| st.iter().any(|x| x == v.state.as_str()))
        })
        .collect();
    // Worst first, as people scan the list.
    values.sort_by(|a, b| b.state.cmp(&a.state).then(a.id.cmp(&b.id)));
    let n = values.len();
    Ok(ApiJson(Listing {
        values,
        items: n,
        start: 0,
        total: n as u64,
    }))
}

pub(super) async fn get_check(
    State(s): S,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<CheckView>> {
    let e = s.engine.lock().await;
    let c = e.checks.get(&id).ok_or_else(|| no_check(&id))?;
    Ok(ApiJson(view(c, &e)))
}

pub(super) fn no_check(id: &str) -> ApiError {
    ApiError::NotFound(format!("no check with id {id:?}"))
}

pub(super) fn bad_spec(e: crate::spec::SpecError) -> ApiError {
    ApiError::BadRequest(e.to_string())
}

pub(super) fn check_dependencies(e: &crate::engine::Engine, c: &Check) -> Result<(), ApiError> {
    for d in &c.depends_on {
        if !e.checks.contains_key(d) {
            return Err(ApiError::BadRequest(format!(
                "`depends_on`: no check with id {d:?}"
            )));
        }
    }
    Ok(())
}

pub(super) async fn create_check(
    State(s): S,
    ApiJson(spec): ApiJson<CheckSpec>,
) -> ApiResult<(StatusCode, ApiJson<CheckView>)> {
    let c = spec.to_check(Origin::Api).map_err(bad_spec)?;
    let e = s.engine.lock().await;
    if e.checks.contains_key(&c.id) {
        return Err(ApiError::Conflict(format!(
            "a check with id {:?} exists; PUT /api/checks/{} changes it",
            c.id, c.id
        )));
    }
    check_dependencies(&e, &c)?;
    drop(e);
    let mut stored = spec.clone();
    stored.id = Some(c.id.clone());
    crate::changes::make(&s, Change::PutCheck { spec: stored }).await?;
    let e = s.engine.lock().await;
    let v = view(e.checks.get(&c.id).unwrap_or(&c), &e);
    Ok((StatusCode::CREATED, ApiJson(v)))
}

pub(super) async fn update_check(
    State(s): S,
    ApiPath(id): ApiPath<String>,
    ApiJson(mut spec): ApiJson<CheckSpec>,
) -> ApiResult<ApiJson<CheckView>> {
    let e = s.engine.lock().await;
    let existing = e.checks.get(&id).ok_or_else(|| no_check(&id))?;
    if existing.origin != Origin::Api {
        return Err(ApiError::Conflict(format!(
            "check {id:?} comes from the {}; change it there",
            if existing.origin == Origin::Config {
                "config file"
            } else {
                "collector's checks (generated)"
            }
        )));
    }
    if spec.id.as_ref().is_some_and(|x| *x != id) {
        return Err(ApiError::BadRequest(format!(
            "`id`: the body says {:?} but the path says {id:?}",
            spec.id
        )));
    }
    spec.id = Some(id.clone());
    let c = spec.to_check(Origin::Api).map_err(bad_spec)?;
    check_dependencies(&e, &c)?;
    drop(e);
    crate::changes::make(&s, Change::PutCheck { spec }).await?;
    let e = s.engine.lock().await;
    let v = view(e.checks.get(&c.id).unwrap_or(&c), &e);
    Ok(ApiJson(v))
}

pub(super) async fn delete_check(
    State(s): S,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let e = s.engine.lock().await;
    let existing = e.checks.get(&id).ok_or_else(|| no_check(&id))?;
    if existing.origin != Origin::Api {
        return Err(ApiError::Conflict(format!(
            "check {id:?} is not one made through the API; remove it from where it is defined"
        )));
    }
    drop(e);
    crate::changes::make(&s, Change::DeleteCheck { id }).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub(super) struct Page {
    /// Seyren's paging: `start` (offset) and `items` (count).
    pub(super) start: Option<u32>,
    pub(super) items: Option<u32>,
}

impl Page {
    pub(super) fn get(&self) -> Result<(u32, u32), ApiError> {
        let items = self.items.unwrap_or(50);
        if !(1..=1000).contains(&items) {
            return Err(ApiError::BadRequest(format!(
                "`items` must be from 1 to 1000, got {items}"
            )));
        }
        Ok((self.start.unwrap_or(0), items))
    }
}

pub(super) async fn alerts_of(
    s: &Shared,
    check: Option<String>,
    page: Page,
) -> ApiResult<ApiJson<Listing<AlertRecord>>> {
    let (start, items) = page.get()?;
    let (values, total) = s
        .store
        .alerts(check, items, start)
        .await
        .map_err(internal)?;
    Ok(ApiJson(Listing {
        items: values.len(),
        values,
        start: start as usize,
        total,
    }))
}

pub(super) async fn check_alerts(
    State(s): S,
    ApiPath(id): ApiPath<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<ApiJson<Listing<AlertRecord>>> {
    if !s.engine.lock().await.checks.contains_key(&id) {
        return Err(no_check(&id));
    }
    alerts_of(&s, Some(id), page).await
}

pub(super) async fn all_alerts(
    State(s): S,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<ApiJson<Listing<AlertRecord>>> {
    alerts_of(&s, None, page).await
}

//! The REST API, in Seyren's shape: `/api/checks`, `/api/checks/{id}`, its alerts and
//! subscriptions, `/api/alerts`; plus silences, problems and their acknowledgement. Every
//! `/api` route needs the bearer token; secrets (notifier keys, URLs) are never in a response.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use axum::{Router, middleware};
use lookout_api::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use serde::{Deserialize, Serialize};

use crate::check::{Check, Origin, Schedule};
use crate::engine::{Feed, Shared, notification};
use crate::notify::{Kind, Level};
use crate::problem::{AlertRecord, Delivery, Problem, Silence};
use crate::spec::{CheckSpec, SubscriptionSpec};
use crate::store::rfc3339;
use crate::subscription::Subscription;

type S = State<Arc<Shared>>;

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

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

fn view(c: &Check, e: &crate::engine::Engine) -> CheckView {
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
struct Listing<T> {
    values: Vec<T>,
    items: usize,
    start: usize,
    total: u64,
}

#[derive(Deserialize)]
struct ChecksQuery {
    /// Only checks in these states (comma-separated), as Seyren's `state` filter.
    state: Option<String>,
    enabled: Option<bool>,
}

async fn list_checks(
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

async fn get_check(State(s): S, ApiPath(id): ApiPath<String>) -> ApiResult<ApiJson<CheckView>> {
    let e = s.engine.lock().await;
    let c = e.checks.get(&id).ok_or_else(|| no_check(&id))?;
    Ok(ApiJson(view(c, &e)))
}

fn no_check(id: &str) -> ApiError {
    ApiError::NotFound(format!("no check with id {id:?}"))
}

fn bad_spec(e: crate::spec::SpecError) -> ApiError {
    ApiError::BadRequest(e.to_string())
}

fn check_dependencies(e: &crate::engine::Engine, c: &Check) -> Result<(), ApiError> {
    for d in &c.depends_on {
        if !e.checks.contains_key(d) {
            return Err(ApiError::BadRequest(format!(
                "`depends_on`: no check with id {d:?}"
            )));
        }
    }
    Ok(())
}

async fn create_check(
    State(s): S,
    ApiJson(spec): ApiJson<CheckSpec>,
) -> ApiResult<(StatusCode, ApiJson<CheckView>)> {
    let c = spec.to_check(Origin::Api).map_err(bad_spec)?;
    let mut e = s.engine.lock().await;
    if e.checks.contains_key(&c.id) {
        return Err(ApiError::Conflict(format!(
            "a check with id {:?} exists; PUT /api/checks/{} changes it",
            c.id, c.id
        )));
    }
    check_dependencies(&e, &c)?;
    let mut stored = spec.clone();
    stored.id = Some(c.id.clone());
    s.store
        .put_api_check(c.id.clone(), &stored)
        .await
        .map_err(internal)?;
    e.api_specs.insert(c.id.clone(), stored);
    e.add_check(c.clone());
    let v = view(&c, &e);
    drop(e);
    s.wake.notify_one();
    Ok((StatusCode::CREATED, ApiJson(v)))
}

async fn update_check(
    State(s): S,
    ApiPath(id): ApiPath<String>,
    ApiJson(mut spec): ApiJson<CheckSpec>,
) -> ApiResult<ApiJson<CheckView>> {
    let mut e = s.engine.lock().await;
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
    s.store
        .put_api_check(id.clone(), &spec)
        .await
        .map_err(internal)?;
    e.api_specs.insert(id.clone(), spec);
    e.add_check(c.clone());
    let v = view(&c, &e);
    drop(e);
    s.wake.notify_one();
    Ok(ApiJson(v))
}

async fn delete_check(State(s): S, ApiPath(id): ApiPath<String>) -> ApiResult<StatusCode> {
    let mut e = s.engine.lock().await;
    let existing = e.checks.get(&id).ok_or_else(|| no_check(&id))?;
    if existing.origin != Origin::Api {
        return Err(ApiError::Conflict(format!(
            "check {id:?} is not one made through the API; remove it from where it is defined"
        )));
    }
    s.store
        .delete_api_check(id.clone())
        .await
        .map_err(internal)?;
    e.api_specs.remove(&id);
    e.remove_check(&id);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct Page {
    /// Seyren's paging: `start` (offset) and `items` (count).
    start: Option<u32>,
    items: Option<u32>,
}

impl Page {
    fn get(&self) -> Result<(u32, u32), ApiError> {
        let items = self.items.unwrap_or(50);
        if !(1..=1000).contains(&items) {
            return Err(ApiError::BadRequest(format!(
                "`items` must be from 1 to 1000, got {items}"
            )));
        }
        Ok((self.start.unwrap_or(0), items))
    }
}

async fn alerts_of(
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

async fn check_alerts(
    State(s): S,
    ApiPath(id): ApiPath<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<ApiJson<Listing<AlertRecord>>> {
    if !s.engine.lock().await.checks.contains_key(&id) {
        return Err(no_check(&id));
    }
    alerts_of(&s, Some(id), page).await
}

async fn all_alerts(
    State(s): S,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<ApiJson<Listing<AlertRecord>>> {
    alerts_of(&s, None, page).await
}

async fn list_subscriptions(
    State(s): S,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<ApiJson<Vec<Subscription>>> {
    let e = s.engine.lock().await;
    if !e.checks.contains_key(&id) {
        return Err(no_check(&id));
    }
    Ok(ApiJson(
        e.subscriptions
            .iter()
            .filter(|x| x.check_id == id)
            .cloned()
            .collect(),
    ))
}

/// Validates a subscription against the configured notifiers.
pub fn subscription(
    shared_notifiers: &std::collections::BTreeMap<String, Arc<dyn crate::notify::Notifier>>,
    check_id: &str,
    spec: SubscriptionSpec,
    id: String,
) -> Result<Subscription, String> {
    let notifier = shared_notifiers.get(&spec.notifier).ok_or_else(|| {
        let known: Vec<&str> = shared_notifiers.keys().map(String::as_str).collect();
        format!(
            "`notifier`: no notifier named {:?}; configured: {}",
            spec.notifier,
            known.join(", ")
        )
    })?;
    notifier
        .check_target(spec.target.as_deref())
        .map_err(|m| format!("`target`: {m}"))?;
    let window = spec.window.unwrap_or_default();
    window.parse()?;
    Ok(Subscription {
        id,
        check_id: check_id.to_owned(),
        notifier: spec.notifier,
        target: spec.target,
        ignore_warn: spec.ignore_warn,
        ignore_error: spec.ignore_error,
        ignore_ok: spec.ignore_ok,
        window,
        enabled: spec.enabled,
    })
}

async fn create_subscription(
    State(s): S,
    ApiPath(id): ApiPath<String>,
    ApiJson(spec): ApiJson<SubscriptionSpec>,
) -> ApiResult<(StatusCode, ApiJson<Subscription>)> {
    let mut e = s.engine.lock().await;
    if !e.checks.contains_key(&id) {
        return Err(no_check(&id));
    }
    let sub_id = match &spec.id {
        Some(x) if crate::check::valid_id(x) => x.clone(),
        Some(x) => {
            return Err(ApiError::BadRequest(format!("`id`: {x:?} is not an id")));
        }
        None => format!(
            "{id}:{}:{}",
            spec.notifier,
            chrono::Utc::now().timestamp_micros()
        ),
    };
    if e.subscriptions.iter().any(|x| x.id == sub_id) {
        return Err(ApiError::Conflict(format!(
            "a subscription with id {sub_id:?} exists"
        )));
    }
    let sub = subscription(&s.notifiers, &id, spec, sub_id).map_err(ApiError::BadRequest)?;
    s.store.put_api_subscription(&sub).await.map_err(internal)?;
    e.subscriptions.push(sub.clone());
    Ok((StatusCode::CREATED, ApiJson(sub)))
}

async fn delete_subscription(
    State(s): S,
    ApiPath((id, sub)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let mut e = s.engine.lock().await;
    if !e
        .subscriptions
        .iter()
        .any(|x| x.id == sub && x.check_id == id)
    {
        return Err(ApiError::NotFound(format!(
            "check {id:?} has no subscription {sub:?}"
        )));
    }
    if !s
        .store
        .delete_api_subscription(sub.clone())
        .await
        .map_err(internal)?
    {
        return Err(ApiError::Conflict(format!(
            "subscription {sub:?} comes from the config; change it there"
        )));
    }
    e.subscriptions.retain(|x| x.id != sub);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct TestResult {
    sent: bool,
    notifier: String,
    error: Option<String>,
}

/// Sends a test message through one subscription now, outside the outbox, and says how it went.
async fn test_subscription(
    State(s): S,
    ApiPath((id, sub)): ApiPath<(String, String)>,
) -> ApiResult<(StatusCode, ApiJson<TestResult>)> {
    let (n, subscription) = {
        let e = s.engine.lock().await;
        let check = e.checks.get(&id).ok_or_else(|| no_check(&id))?;
        let subscription = e
            .subscriptions
            .iter()
            .find(|x| x.id == sub && x.check_id == id)
            .cloned()
            .ok_or_else(|| {
                ApiError::NotFound(format!("check {id:?} has no subscription {sub:?}"))
            })?;
        let now = chrono::Utc::now();
        let level = e.states.get(&id).map_or(Level::Ok, |st| st.level);
        let mut p = Problem::open(
            &format!("test:{}", check.id),
            &check.id,
            level,
            now.timestamp_micros(),
        );
        p.id = format!("test-{}-{}", check.id, now.timestamp_micros());
        let feed = Feed::default();
        let n = notification(&s, &e, &p, &subscription, Kind::Test, &feed, now);
        (n, subscription)
    };
    let notifier = s
        .notifiers
        .get(&subscription.notifier)
        .cloned()
        .ok_or_else(|| {
            ApiError::Internal(format!("notifier {:?} is gone", subscription.notifier))
        })?;
    let result = notifier.send(subscription.target.as_deref(), &n).await;
    let body = TestResult {
        sent: result.is_ok(),
        notifier: subscription.notifier.clone(),
        error: result.err().map(|e| e.message),
    };
    let code = if body.sent {
        StatusCode::OK
    } else {
        StatusCode::BAD_GATEWAY
    };
    Ok((code, ApiJson(body)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceSpec {
    #[serde(default)]
    matchers: Vec<String>,
    /// RFC 3339; now when not given.
    starts: Option<String>,
    /// RFC 3339, or give `duration`.
    ends: Option<String>,
    duration: Option<String>,
    #[serde(default)]
    created_by: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    kind: Option<String>,
}

fn time(field: &str, v: &str) -> Result<i64, ApiError> {
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.timestamp_micros())
        .map_err(|e| {
            ApiError::BadRequest(format!("`{field}`: {v:?} is not an RFC 3339 time ({e})"))
        })
}

/// Validates a silence (the API's and the config's).
pub fn silence_from(
    known: &std::collections::BTreeMap<String, Check>,
    matchers: Vec<String>,
    starts_us: i64,
    ends_us: i64,
    kind: &str,
) -> Result<(), String> {
    if ends_us <= starts_us {
        return Err("the silence ends before it starts".into());
    }
    if kind == "maintenance" {
        return Err(
            "`kind`: scheduled maintenance is the collector's: schedule it with POST \
             /api/v1/maintenance on the collector, which holds these pages for it"
                .into(),
        );
    }
    if !matches!(kind, "silence" | "replacer") {
        return Err(format!("`kind`: {kind:?} is not one of silence, replacer"));
    }
    for m in &matchers {
        let group_known = m
            .strip_prefix("group:")
            .is_some_and(|g| known.values().any(|c| c.group.as_deref() == Some(g)));
        let about_known = m
            .strip_prefix("about:")
            .is_some_and(|a| known.values().any(|c| c.about.as_deref() == Some(a)));
        if !known.contains_key(m) && !group_known && !about_known {
            return Err(format!(
                "`matchers`: {m:?} is neither a check id, a group (`group:NAME`) nor a probe \
                 check that alert checks are about (`about:CHECK`)"
            ));
        }
    }
    Ok(())
}

async fn create_silence(
    State(s): S,
    ApiJson(spec): ApiJson<SilenceSpec>,
) -> ApiResult<(StatusCode, ApiJson<Silence>)> {
    let now = chrono::Utc::now().timestamp_micros();
    let starts = spec
        .starts
        .as_deref()
        .map(|v| time("starts", v))
        .transpose()?
        .unwrap_or(now);
    let ends = match (&spec.ends, &spec.duration) {
        (Some(e), None) => time("ends", e)?,
        (None, Some(d)) => {
            let d = humantime::parse_duration(d).map_err(|e| {
                ApiError::BadRequest(format!("`duration`: {d:?} is not a duration ({e})"))
            })?;
            starts.saturating_add(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give `ends` or `duration` (not both)".into(),
            ));
        }
    };
    let kind = spec.kind.unwrap_or_else(|| "silence".into());
    let mut e = s.engine.lock().await;
    silence_from(&e.checks, spec.matchers.clone(), starts, ends, &kind)
        .map_err(ApiError::BadRequest)?;
    let silence = Silence {
        id: format!("silence-{now}"),
        matchers: spec.matchers,
        starts_us: starts,
        ends_us: ends,
        created_by: spec.created_by,
        comment: spec.comment,
        kind,
    };
    s.store.put_silence(&silence).await.map_err(internal)?;
    e.silences.push(silence.clone());
    drop(e);
    s.wake.notify_one();
    Ok((StatusCode::CREATED, ApiJson(silence)))
}

/// The collector's maintenance windows not yet over, as the silences they are to the alerter:
/// read-only, holding every check about a check in maintenance.
fn maintenance_silences(feed: &crate::engine::Feed) -> Vec<Silence> {
    feed.states
        .maintenance
        .iter()
        .map(|m| Silence {
            id: format!("maintenance-{}", m.id),
            matchers: m.checks.iter().map(|c| format!("about:{c}")).collect(),
            starts_us: m.starts_us,
            ends_us: m.ends_us,
            created_by: if m.created_by.is_empty() {
                "collector".into()
            } else {
                m.created_by.clone()
            },
            comment: format!("scheduled maintenance: {}", m.name),
            kind: "maintenance".into(),
        })
        .collect()
}

async fn list_silences(State(s): S) -> ApiJson<Vec<Silence>> {
    let mut all = s.engine.lock().await.silences.clone();
    all.extend(maintenance_silences(&s.feed.borrow()));
    ApiJson(all)
}

async fn delete_silence(State(s): S, ApiPath(id): ApiPath<String>) -> ApiResult<StatusCode> {
    if let Some(m) = id.strip_prefix("maintenance-")
        && maintenance_silences(&s.feed.borrow())
            .iter()
            .any(|x| x.id == id)
    {
        return Err(ApiError::Conflict(format!(
            "silence {id:?} is the collector's scheduled maintenance; cancel it there \
             (DELETE /api/v1/maintenance/{m})"
        )));
    }
    let mut e = s.engine.lock().await;
    if !e.silences.iter().any(|x| x.id == id) {
        return Err(ApiError::NotFound(format!("no silence with id {id:?}")));
    }
    if !s.store.delete_silence(id.clone()).await.map_err(internal)? {
        return Err(ApiError::Conflict(format!(
            "silence {id:?} comes from the config; change it there"
        )));
    }
    e.silences.retain(|x| x.id != id);
    drop(e);
    s.wake.notify_one();
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct ProblemsQuery {
    open: Option<bool>,
    start: Option<u32>,
    items: Option<u32>,
}

#[derive(Serialize)]
struct ProblemView {
    #[serde(flatten)]
    problem: Problem,
    level: Level,
    opened: String,
    closed: Option<String>,
    deliveries: Vec<Delivery>,
}

async fn list_problems(
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
struct AckSpec {
    by: String,
    #[serde(default)]
    comment: String,
}

async fn ack_problem(
    State(s): S,
    ApiPath(id): ApiPath<String>,
    ApiJson(ack): ApiJson<AckSpec>,
) -> ApiResult<ApiJson<Problem>> {
    if ack.by.trim().is_empty() {
        return Err(ApiError::BadRequest("`by`: say who acknowledges".into()));
    }
    let mut e = s.engine.lock().await;
    let Some(p) = e.problems.values_mut().find(|p| p.id == id) else {
        return Err(match s.store.problem(&id).await.map_err(internal)? {
            Some(_) => ApiError::Conflict(format!(
                "problem {id:?} is over; acknowledgements end with it"
            )),
            None => ApiError::NotFound(format!("no problem with id {id:?}")),
        });
    };
    p.ack = Some(crate::problem::Ack {
        by: ack.by,
        comment: ack.comment,
        at_us: chrono::Utc::now().timestamp_micros(),
    });
    let p = p.clone();
    s.store
        .apply(crate::store::Batch {
            problems: vec![p.clone()],
            ..Default::default()
        })
        .await
        .map_err(internal)?;
    Ok(ApiJson(p))
}

async fn healthcheck(State(s): S) -> impl IntoResponse {
    let feed_ok = s
        .feed
        .borrow()
        .answered
        .is_some_and(|t| t.elapsed().as_secs() < 30);
    let body = serde_json::json!({
        "name": "lookout-alerting",
        "status": if feed_ok { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": s.started.elapsed().as_secs(),
        "dependencies": [{"name": "collector", "healthy": feed_ok}],
    });
    ApiJson(body)
}

async fn metrics(State(s): S) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            lookout_api::metrics::CONTENT_TYPE,
        )],
        lookout_api::metrics::encode(&s.metrics.registry),
    )
}

async fn openapi() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no such resource: {}", uri.path()))
}

pub fn router(shared: Arc<Shared>, token: lookout_model::secret::Secret) -> Router {
    let api = Router::new()
        .route("/api/checks", get(list_checks).post(create_check))
        .route(
            "/api/checks/{id}",
            get(get_check).put(update_check).delete(delete_check),
        )
        .route("/api/checks/{id}/alerts", get(check_alerts))
        .route(
            "/api/checks/{id}/subscriptions",
            get(list_subscriptions).post(create_subscription),
        )
        .route(
            "/api/checks/{id}/subscriptions/{sub}",
            axum::routing::delete(delete_subscription),
        )
        .route(
            "/api/checks/{id}/subscriptions/{sub}/test",
            post(test_subscription),
        )
        .route("/api/alerts", get(all_alerts))
        .route("/api/silences", get(list_silences).post(create_silence))
        .route("/api/silences/{id}", axum::routing::delete(delete_silence))
        .route("/api/problems", get(list_problems))
        .route("/api/problems/{id}/ack", post(ack_problem))
        .layer(middleware::from_fn_with_state(
            token,
            lookout_api::auth::require_bearer,
        ));
    Router::new()
        .merge(api)
        .route("/", get(page))
        .route("/api/openapi.json", get(openapi))
        .route("/healthcheck", get(healthcheck))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(64 * 1024))
        .with_state(shared)
}

/// A plain page for people on the internal network: every check with its state, and the
/// latest alerts. Names only; no secrets, no script.
async fn page(State(s): S) -> ApiResult<Html<String>> {
    let (alerts, _) = s.store.alerts(None, 30, 0).await.map_err(internal)?;
    let e = s.engine.lock().await;
    let mut checks: Vec<&Check> = e.checks.values().collect();
    let level = |c: &Check| e.states.get(&c.id).map_or(Level::Ok, |st| st.level);
    checks.sort_by(|a, b| level(b).cmp(&level(a)).then(a.id.cmp(&b.id)));
    let mut html = String::from(
        "<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>\
         <title>Lookout alerting</title><style>body{font:14px system-ui;margin:1em}td,th{padding:2px 8px;text-align:left}\
         .ERROR{color:#b00}.WARN{color:#a60}.UNKNOWN{color:#666}</style><h1>Lookout alerting</h1><h2>Checks</h2>\
         <table><tr><th>State</th><th>Check</th><th>Value</th><th>Target</th><th>Schedule</th></tr>",
    );
    for c in checks {
        let l = level(c);
        let value = e
            .states
            .get(&c.id)
            .and_then(|st| st.value)
            .map_or("no data".into(), |v| format!("{v:.4}"));
        html.push_str(&format!(
            "<tr id='check-{id}'><td class={l}>{l}</td><td>{name}</td><td>{value}</td><td><code>{target}</code></td><td>{sched}</td></tr>",
            id = escape(&c.id),
            name = escape(&c.name),
            target = escape(&c.target_text),
            sched = escape(&match &c.schedule {
                Schedule::Every(_) | Schedule::Cron(..) => c.schedule.describe(),
            }),
        ));
    }
    html.push_str("</table><h2>Recent alerts</h2><table><tr><th>Time</th><th>Check</th><th>From</th><th>To</th><th>Value</th></tr>");
    for a in alerts {
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td class={}>{}</td><td class={}>{}</td><td>{}</td></tr>",
            escape(&a.time),
            escape(&a.check_id),
            a.from,
            a.from,
            a.to,
            a.to,
            a.value.map_or("no data".into(), |v| format!("{v:.4}")),
        ));
    }
    html.push_str("</table></html>");
    Ok(Html(html))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&#39;")
        .replace('"', "&quot;")
}

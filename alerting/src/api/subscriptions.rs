//! `/api/checks/{id}/subscriptions`: who hears about a check, and a test send to them.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use lookout_api::{ApiError, ApiJson, ApiPath, ApiResult};
use serde::Serialize;

use super::checks::no_check;
use super::{S, internal};
use crate::engine::{Feed, notification};
use crate::notify::{Kind, Level};
use crate::problem::Problem;
use crate::spec::SubscriptionSpec;
use crate::subscription::Subscription;

pub(super) async fn list_subscriptions(
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

pub(super) async fn create_subscription(
    State(s): S,
    ApiPath(id): ApiPath<String>,
    ApiJson(spec): ApiJson<SubscriptionSpec>,
) -> ApiResult<(StatusCode, ApiJson<Subscription>)> {
    let e = s.engine.lock().await;
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
    let sub = subscription(&s.notifiers.load(), &id, spec, sub_id).map_err(ApiError::BadRequest)?;
    drop(e);
    crate::changes::make(
        &s,
        crate::changes::Change::Subscribe {
            subscription: sub.clone(),
        },
    )
    .await?;
    Ok((StatusCode::CREATED, ApiJson(sub)))
}

pub(super) async fn delete_subscription(
    State(s): S,
    ApiPath((id, sub)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let e = s.engine.lock().await;
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
        .is_api_subscription(sub.clone())
        .await
        .map_err(internal)?
    {
        return Err(ApiError::Conflict(format!(
            "subscription {sub:?} comes from the config; change it there"
        )));
    }
    drop(e);
    crate::changes::make(&s, crate::changes::Change::Unsubscribe { id: sub }).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub struct TestResult {
    pub sent: bool,
    pub notifier: String,
    pub error: Option<String>,
}

/// Sends a test message through one subscription now, outside the outbox, and says how it went.
pub(super) async fn test_subscription(
    State(s): S,
    ApiPath((id, sub)): ApiPath<(String, String)>,
) -> ApiResult<(StatusCode, ApiJson<TestResult>)> {
    let body = test_send(&s, &id, &sub).await?;
    let code = if body.sent {
        StatusCode::OK
    } else {
        StatusCode::BAD_GATEWAY
    };
    Ok((code, ApiJson(body)))
}

/// Sends a test notification of check `id` to its subscription `sub`, at once and outside the
/// outbox: whether the channel works is the answer.
pub async fn test_send(
    s: &crate::engine::Shared,
    id: &str,
    sub: &str,
) -> Result<TestResult, ApiError> {
    let (n, subscription) = {
        let e = s.engine.lock().await;
        let check = e.checks.get(id).ok_or_else(|| no_check(id))?;
        let subscription = e
            .subscriptions
            .iter()
            .find(|x| x.id == sub && x.check_id == id)
            .cloned()
            .ok_or_else(|| {
                ApiError::NotFound(format!("check {id:?} has no subscription {sub:?}"))
            })?;
        let now = chrono::Utc::now();
        let level = e.states.get(id).map_or(Level::Ok, |st| st.level);
        let mut p = Problem::open(
            &format!("test:{}", check.id),
            &check.id,
            level,
            now.timestamp_micros(),
        );
        p.id = format!("test-{}-{}", check.id, now.timestamp_micros());
        let feed = Feed::default();
        let n = notification(s, &e, &p, &subscription, Kind::Test, &feed, now);
        (n, subscription)
    };
    let notifier = s
        .notifiers
        .load()
        .get(&subscription.notifier)
        .cloned()
        .ok_or_else(|| {
            ApiError::Internal(format!("notifier {:?} is gone", subscription.notifier))
        })?;
    let result = notifier.send(subscription.target.as_deref(), &n).await;
    Ok(TestResult {
        sent: result.is_ok(),
        notifier: subscription.notifier.clone(),
        error: result.err().map(|e| e.message),
    })
}

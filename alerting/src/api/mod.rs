//! The REST API, in Seyren's shape: `/api/checks`, `/api/checks/{id}`, its alerts and
//! subscriptions, `/api/alerts`; plus silences, problems and their acknowledgement. Every
//! `/api` route needs the bearer token; secrets (notifier keys, URLs) are never in a response.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use axum::{Router, middleware};
use lookout_api::{ApiError, ApiJson, ApiResult};

use crate::check::{Check, Schedule};
use crate::engine::Shared;
use crate::notify::Level;

mod checks;
mod problems;
mod silences;
mod subscriptions;

pub use checks::CheckView;
use checks::*;
use problems::*;
pub use silences::silence_from;
use silences::*;
pub use subscriptions::subscription;
use subscriptions::*;

type S = State<Arc<Shared>>;

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
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
        include_str!("../openapi.json"),
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

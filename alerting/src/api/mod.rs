//! The REST API, in Seyren's shape: `/api/checks`, `/api/checks/{id}`, its alerts and
//! subscriptions, `/api/alerts`; plus silences, problems and their acknowledgement. Every
//! `/api` route needs the bearer token; secrets (notifier keys, URLs) are never in a response.

use std::sync::Arc;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Router, middleware};
use lookout_api::{ApiError, ApiJson};

use crate::engine::Shared;

mod auth;
mod checks;
mod problems;
mod silences;
mod subscriptions;

pub use auth::{Access, Tokens, require_token};
pub use checks::CheckView;
use checks::*;
use problems::*;
use silences::*;
pub use silences::{maintenance_silences, silence_from};
use subscriptions::*;
pub use subscriptions::{TestResult, subscription, test_send};

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

pub fn router(shared: Arc<Shared>, tokens: Arc<Tokens>) -> Router {
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
        .route("/api/problems/{id}/unack", post(unack_problem))
        .layer(middleware::from_fn_with_state(tokens, require_token));
    Router::new()
        .merge(api)
        .route("/api/openapi.json", get(openapi))
        .route("/healthcheck", get(healthcheck))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(64 * 1024))
        .with_state(shared)
}

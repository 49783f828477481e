//! `GET /api/v1/instances`, `GET /api/v1/events?after=SEQ`, `GET /api/v1/held`,
//! `GET /api/v1/targets` (Prometheus discovery),
//! `/healthcheck`, `/metrics`. Read-only: the replacer acts on its own, and a person acts
//! through the provider.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use lookout_api::discovery::TargetGroup;
use lookout_api::error::{ApiError, ApiJson, ApiQuery};
use serde::Deserialize;

use crate::engine::Shared;

type S = State<Arc<Shared>>;

#[derive(Deserialize)]
struct EventsQuery {
    after: Option<u64>,
}

async fn instances(State(s): S) -> impl IntoResponse {
    ApiJson(s.instances().await)
}

/// `GET /api/v1/targets`: every watched instance's `/metrics`, in the format of Prometheus's
/// `http_sd_configs`. Instances come and go with replacements (a new one on a new port), so a
/// scrape config cannot list them; the replacer always knows them.
async fn targets(State(s): S) -> impl IntoResponse {
    let groups: Vec<TargetGroup> = s
        .instances()
        .await
        .into_iter()
        .filter_map(|v| {
            let i = v.instance;
            let metrics = i
                .metrics_url
                .clone()
                .unwrap_or_else(|| format!("{}/metrics", i.url.trim_end_matches('/')));
            TargetGroup::scraping(
                &metrics,
                &[("component", &i.service), ("platform_instance", &i.id)],
            )
        })
        .collect();
    (
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        ApiJson(groups),
    )
}

async fn events(State(s): S, ApiQuery(q): ApiQuery<EventsQuery>) -> impl IntoResponse {
    ApiJson(s.events.since(q.after.unwrap_or(0)))
}

async fn held(State(s): S) -> impl IntoResponse {
    ApiJson(s.held().await)
}

async fn healthcheck(State(s): S) -> impl IntoResponse {
    let held = !s.held().await.is_empty();
    ApiJson(serde_json::json!({
        "service": "replacer",
        "status": if held { "degraded" } else { "ok" },
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": s.started.elapsed().as_secs_f64(),
        "provider": s.provider.kind(),
        "dry_run": s.settings.dry_run,
    }))
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

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no such resource: {}", uri.path()))
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/instances", get(instances))
        .route("/api/v1/events", get(events))
        .route("/api/v1/targets", get(targets))
        .route("/api/v1/held", get(held))
        .route("/healthcheck", get(healthcheck))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(shared)
}

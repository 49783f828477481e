//! The collector's HTTP API, one file per resource; availability and maintenance have their
//! own modules beside ingest. This file holds the router and what every service answers
//! (`/healthcheck`, `/metrics`, the OpenAPI document, the agents' scrape targets).

mod agents;
mod events;
mod results;
mod states;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};
use lookout_api::ApiError;
use lookout_api::discovery::TargetGroup;
use lookout_model::health::{Dependency, Health, HealthStatus, InstanceHealth};

use crate::{AppState, availability, maintenance};
use agents::{get_agents, get_commands, post_recheck};
use events::{get_events, post_events};
pub(crate) use results::take;
use results::{get_results, post_results};
use states::get_states;

/// Largest request body: a full batch of results with room to spare.
const MAX_BODY: usize = 16 << 20;

async fn healthcheck(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    let dependencies = s
        .replica
        .as_ref()
        .map(|r| {
            let now = chrono::Utc::now().timestamp_micros();
            let lag = r.lag(now);
            let trouble = r.refuse_reads(now).or_else(|| {
                (!lag.connected).then(|| "not connected to NATS; reconnecting".to_owned())
            });
            vec![Dependency::from_instances(
                "replicated log",
                vec![InstanceHealth {
                    url: r.settings.log.stream().to_owned(),
                    status: if trouble.is_some() {
                        HealthStatus::Down
                    } else {
                        HealthStatus::Ok
                    },
                    reason: trouble.or_else(|| {
                        Some(format!("applied {}, {} behind", lag.applied, lag.behind))
                    }),
                }],
            )]
        })
        .unwrap_or_default();
    let health = Health {
        status: lookout_model::health::overall(true, &dependencies),
        service: "collector".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_seconds: s.started.elapsed().as_secs_f64(),
        dependencies,
    };
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(health))
}

async fn metrics(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    // The refresh reads the store: a blocking thread, not an async worker.
    let out = tokio::task::spawn_blocking(move || {
        let _one_at_a_time = s
            .scrape
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.metrics.refresh(&s);
        s.metrics.sinks.refresh(&s.settings.sinks);
        lookout_api::metrics::encode(&s.metrics.registry)
    })
    .await
    .unwrap_or_default();
    (
        [(header::CONTENT_TYPE, lookout_api::metrics::CONTENT_TYPE)],
        out,
    )
}

/// `GET /api/v1/targets`: the agents' `/metrics`, in the format of Prometheus's
/// `http_sd_configs`, so a scrape config needs no list of agents (they live in other regions,
/// come and go, and listen where they like). Open, like `/metrics`: it names addresses only.
async fn get_targets(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    let groups: Vec<TargetGroup> = s
        .hub
        .metrics_targets()
        .into_iter()
        .filter_map(|(agent, region, url)| {
            TargetGroup::scraping(&url, &[("agent", &agent), ("region", &region)])
        })
        .collect();
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(groups))
}

/// The API described (OpenAPI 3.0); open, like `/healthcheck`: it holds nothing secret.
async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../openapi.json"),
    )
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

/// Counts each API request under its route's pattern, so the label stays bounded.
async fn count_requests(
    State(s): State<Arc<AppState>>,
    matched: Option<axum::extract::MatchedPath>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    if let Some(route) = matched {
        s.metrics
            .api_requests
            .with_label_values(&[route.as_str(), request.method().as_str()])
            .inc();
    }
    next.run(request).await
}

/// On a replica, every answer says where in the log it stands (never silently stale), and
/// reads are refused while it catches up (or, by `cluster.when_behind`, while far behind).
async fn mark_replica_lag(
    State(s): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    let Some(replica) = &s.replica else {
        return next.run(request).await;
    };
    let now = chrono::Utc::now().timestamp_micros();
    let is_read = request.method() == axum::http::Method::GET;
    let mut response = match replica.refuse_reads(now) {
        Some(why) if is_read => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "2")],
            axum::Json(serde_json::json!({"error": why, "status": 503})),
        )
            .into_response(),
        _ => next.run(request).await,
    };
    let lag = replica.lag(now);
    let headers = response.headers_mut();
    for (name, value) in [
        ("lookout-log-applied", lag.applied.to_string()),
        ("lookout-log-behind", lag.behind.to_string()),
        ("lookout-log-behind-seconds", format!("{:.1}", lag.seconds)),
    ] {
        if let Ok(v) = axum::http::HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    response
}

pub(crate) fn router(state: Arc<AppState>) -> Router {
    let token = state.settings.token.clone();
    let api = Router::new()
        .route("/api/v1/results", post(post_results).get(get_results))
        .route("/api/v1/agents", get(get_agents))
        .route("/api/v1/events", post(post_events).get(get_events))
        .route("/api/v1/checks", get(availability::get_all))
        .route("/api/v1/daily", get(availability::get_daily_all))
        .route("/api/v1/incidents", get(availability::get_incidents_all))
        .route("/api/v1/slos", get(availability::get_slos))
        .route(
            "/api/v1/maintenance",
            get(maintenance::list).post(maintenance::create),
        )
        .route(
            "/api/v1/maintenance/{id}",
            axum::routing::delete(maintenance::cancel),
        )
        .route(
            "/api/v1/checks/{check}/availability",
            get(availability::get_availability),
        )
        .route("/api/v1/checks/{check}/daily", get(availability::get_daily))
        .route(
            "/api/v1/checks/{check}/incidents",
            get(availability::get_incidents),
        )
        .route("/api/v1/agents/{agent}/commands", get(get_commands))
        .route("/api/v1/states", get(get_states))
        .route("/api/v1/checks/{check}/recheck", post(post_recheck))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            mark_replica_lag,
        ))
        .route_layer(middleware::from_fn_with_state(
            token,
            lookout_api::auth::require_bearer,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ));
    // Its own token per check, not the collector's: a cron job holds only its heartbeat's.
    let heartbeats = Router::new()
        .route(
            "/api/v1/heartbeats/{check}",
            post(crate::heartbeat::post_heartbeat),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            mark_replica_lag,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ));
    let reload = state.settings.reload.clone();
    let reload_token = state.settings.token.clone();
    let app = Router::new()
        .merge(api)
        .merge(heartbeats)
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/targets", get(get_targets))
        .route("/healthcheck", get(healthcheck))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state);
    match reload {
        Some(trigger) => app.merge(lookout_api::reload::router(trigger, reload_token)),
        None => app,
    }
}

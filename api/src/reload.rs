//! Reloading the config without a restart, asked for by `POST /-/reload` (Prometheus'
//! convention) or SIGHUP; and the two gauges that say how the last reload went
//! (`lookout_config_last_reload_successful`, `lookout_config_last_reload_success_timestamp_seconds`,
//! as Prometheus and Alertmanager name theirs). Whoever owns the config (the `lookout`
//! binary) answers the requests; a component only passes them on.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use lookout_model::secret::Secret;
pub use prometheus::Registry;
use prometheus::{Gauge, IntGauge, Opts};
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;

/// What a reload did: a summary of what changed, or every error of the refused config (each
/// with its file, line and column).
pub type Outcome = Result<String, Vec<String>>;

type Reply = oneshot::Sender<Outcome>;

/// Asks the config's owner to reload.
#[derive(Clone, Debug)]
pub struct Trigger(mpsc::Sender<Reply>);

/// The requests to reload, for the config's owner.
pub struct Requests(mpsc::Receiver<Reply>);

pub fn channel() -> (Trigger, Requests) {
    let (tx, rx) = mpsc::channel(4);
    (Trigger(tx), Requests(rx))
}

impl Trigger {
    pub async fn reload(&self) -> Option<Outcome> {
        let (tx, rx) = oneshot::channel();
        self.0.send(tx).await.ok()?;
        rx.await.ok()
    }
}

impl Requests {
    /// The next request: answer it with its reload's outcome.
    pub async fn next(&mut self) -> Option<oneshot::Sender<Outcome>> {
        self.0.recv().await
    }
}

struct RouteState {
    trigger: Trigger,
    token: Secret,
}

async fn reload(State(s): State<std::sync::Arc<RouteState>>, request: Request) -> Response {
    match crate::auth::bearer(&request) {
        None => {
            return ApiError::Unauthorized(
                "send the admin token as `Authorization: Bearer <token>`".into(),
            )
            .into_response();
        }
        Some(t) if !s.token.matches(t) => {
            return ApiError::Forbidden("the token was not accepted".into()).into_response();
        }
        Some(_) => {}
    }
    match s.trigger.reload().await {
        Some(Ok(summary)) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "success", "summary": summary})),
        )
            .into_response(),
        Some(Err(errors)) => (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({
                "status": "error",
                "error": "the new config is invalid; the running one stays",
                "errors": errors,
            })),
        )
            .into_response(),
        None => ApiError::Unavailable("nothing here reloads the config".into()).into_response(),
    }
}

/// `POST /-/reload`, guarded by `token`.
pub fn router(trigger: Trigger, token: Secret) -> Router {
    Router::new()
        .route("/-/reload", post(reload))
        .with_state(std::sync::Arc::new(RouteState { trigger, token }))
}

/// How the last reload went: 1 or 0, and when the config last loaded well (its start, then
/// each successful reload).
#[derive(Clone)]
pub struct ReloadMetrics {
    successful: IntGauge,
    success_timestamp: Gauge,
}

impl ReloadMetrics {
    pub fn new() -> Result<ReloadMetrics, prometheus::Error> {
        let m = ReloadMetrics {
            successful: IntGauge::with_opts(Opts::new(
                "lookout_config_last_reload_successful",
                "Whether the last config reload succeeded (1) or was refused (0).",
            ))?,
            success_timestamp: Gauge::with_opts(Opts::new(
                "lookout_config_last_reload_success_timestamp_seconds",
                "When the config last loaded successfully, in Unix seconds.",
            ))?,
        };
        m.record(true);
        Ok(m)
    }

    /// Shows the gauges in `registry` too (each component's `/metrics` has them).
    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.successful.clone()))?;
        registry.register(Box::new(self.success_timestamp.clone()))
    }

    pub fn record(&self, ok: bool) {
        self.successful.set(i64::from(ok));
        if ok {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            self.success_timestamp.set(now.as_secs_f64());
        }
    }
}

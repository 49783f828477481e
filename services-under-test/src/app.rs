//! What every platform service has in common, assembled around its own API: healthcheck,
//! metrics, the fault admin API, JSON errors for unknown routes, and the middleware stack.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, Uri, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use lookout_model::health::{Dependency, Health, overall};
use lookout_model::secret::Secret;
use tower_http::catch_panic::CatchPanicLayer;

use crate::ServiceKind;
use crate::error::ApiError;
use crate::faults::{self, Faults};
use crate::metrics::{self, Metrics};

/// The largest request body any service accepts.
pub const MAX_BODY: usize = 256 * 1024;

/// Reports the health of a service's dependencies, for `/healthcheck`.
pub type DependencyReport = Arc<dyn Fn() -> Vec<Dependency> + Send + Sync>;

/// Per-instance facilities every service shares.
#[derive(Clone)]
pub struct Common {
    pub kind: ServiceKind,
    pub started: Instant,
    pub faults: Arc<Faults>,
    pub metrics: Arc<Metrics>,
    pub admin_token: Secret,
}

/// The routers of one instance: the public one, and the admin-only one that stays reachable
/// while a `down` fault has closed the public listener.
pub struct Routers {
    pub main: Router,
    pub admin: Router,
}

#[derive(Clone)]
struct HealthState {
    kind: ServiceKind,
    started: Instant,
    dependencies: Option<DependencyReport>,
}

async fn healthcheck(State(state): State<HealthState>) -> Response {
    let dependencies = state.dependencies.as_ref().map(|f| f()).unwrap_or_default();
    let health = Health {
        status: overall(true, &dependencies),
        service: state.kind.name().to_owned(),
        version: crate::VERSION.to_owned(),
        uptime_seconds: state.started.elapsed().as_secs_f64(),
        dependencies,
    };
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(health)).into_response()
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}

fn admin_routes(common: &Common, extra: Router) -> Router {
    Router::new()
        .route(
            "/admin/faults",
            get(faults::list_faults)
                .post(faults::post_fault)
                .delete(faults::delete_faults),
        )
        .route("/admin/faults/{id}", delete(faults::delete_fault))
        .with_state(common.faults.clone())
        .merge(extra)
        .layer(middleware::from_fn_with_state(
            common.admin_token.clone(),
            lookout_api::auth::require_bearer,
        ))
}

fn finish(router: Router) -> Router {
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("a handler panicked".into()).into_response()
        }))
}

/// Wraps a service's own API (`api`, whose state is already applied) with the shared routes
/// and middleware. `admin` holds service-specific admin routes (token-protected here).
pub fn assemble(
    common: &Common,
    api: Router,
    admin: Router,
    dependencies: Option<DependencyReport>,
) -> Routers {
    let health = HealthState {
        kind: common.kind,
        started: common.started,
        dependencies,
    };
    // Also on the admin listener, which a `down` fault leaves open: Prometheus still sees the
    // instance's counters while its main listener is closed.
    let telemetry = Router::new().route(
        "/metrics",
        get(metrics::handler).with_state((common.metrics.clone(), common.faults.clone())),
    );
    let shared = Router::new()
        .route("/healthcheck", get(healthcheck).with_state(health))
        .merge(telemetry.clone());
    let admin_only = admin_routes(common, admin);
    let main = finish(api.merge(shared).merge(admin_only.clone()))
        .layer(middleware::from_fn_with_state(
            common.faults.clone(),
            faults::middleware,
        ))
        .layer(middleware::from_fn_with_state(
            common.metrics.clone(),
            metrics::middleware,
        ));
    let admin = finish(admin_only.merge(telemetry));
    Routers { main, admin }
}

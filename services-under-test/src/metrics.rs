//! Prometheus metrics every platform service exports, named in one place.
//!
//! The `prometheus` crate is used because it keeps a registry per instance (no globals, so
//! several instances can live in one test process) and writes the classic text format that
//! `promtool check metrics` lints.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::faults::Faults;

/// Latency buckets in seconds, dense around the platform's 0.8 s objective.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 0.8, 1.0, 2.5, 5.0, 10.0,
];

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    faults_active: IntGaugeVec,
    uptime: GaugeVec,
    started: Instant,
}

/// Builds a metric and registers it; registration can only fail on a duplicate name, which
/// is a programming error caught by the tests, so it is reported, not unwrapped.
pub fn register<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: M,
) -> M {
    if let Err(err) = registry.register(Box::new(metric.clone())) {
        tracing::error!(error = %err, "metric registration failed");
    }
    metric
}

impl Metrics {
    pub fn new(service: &str, version: &str) -> Result<Arc<Self>, prometheus::Error> {
        let registry = Registry::new();
        let requests = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "platform_http_requests_total",
                    "HTTP requests served, by route, method and status.",
                ),
                &["route", "method", "status"],
            )?,
        );
        let duration = register(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "platform_http_request_duration_seconds",
                    "Time from a request's arrival to its response head, injected faults included.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["route", "method"],
            )?,
        );
        let faults_active = register(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    "platform_faults_active",
                    "Injected faults currently active, by kind.",
                ),
                &["kind"],
            )?,
        );
        let info = register(
            &registry,
            IntGaugeVec::new(
                Opts::new("platform_service_info", "Which service this is; always 1."),
                &["service", "version"],
            )?,
        );
        info.with_label_values(&[service, version]).set(1);
        let uptime = register(
            &registry,
            GaugeVec::new(
                Opts::new(
                    "platform_uptime_seconds",
                    "Seconds since this instance started.",
                ),
                &[],
            )?,
        );
        Ok(Arc::new(Metrics {
            registry,
            requests,
            duration,
            faults_active,
            uptime,
            started: Instant::now(),
        }))
    }

    /// For services that add metrics of their own.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn render(&self, faults: &Faults) -> String {
        for (kind, n) in faults.active_kinds() {
            self.faults_active.with_label_values(&[kind]).set(n as i64);
        }
        self.uptime
            .with_label_values(&[] as &[&str])
            .set(self.started.elapsed().as_secs_f64());
        let mut out = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %err, "metrics encoding failed");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts and times every request; the route label is the router's pattern, so it is bounded.
pub async fn middleware(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let arrived = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(request.method());
    let mut response = next.run(request).await;
    let elapsed = arrived.elapsed();
    metrics
        .requests
        .with_label_values(&[route.as_str(), method, response.status().as_str()])
        .inc();
    metrics
        .duration
        .with_label_values(&[route.as_str(), method])
        .observe(elapsed.as_secs_f64());
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={:.3}", elapsed.as_secs_f64() * 1e3)) {
        response.headers_mut().append("server-timing", v);
    }
    response
}

pub async fn handler(State((metrics, faults)): State<(Arc<Metrics>, Arc<Faults>)>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(&faults),
    )
        .into_response()
}

//! Calls to upstream services: pick an instance, retry idempotent requests on the next one,
//! and turn failures into errors that name the service, never an internal address.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use bytes::Bytes;
use prometheus::IntCounterVec;

use super::pool::Pool;
use crate::error::ApiError;

/// Request headers a client may send that upstreams need to see.
pub const FORWARDED_REQUEST_HEADERS: &[HeaderName] = &[
    axum::http::header::RANGE,
    axum::http::header::IF_RANGE,
    axum::http::header::IF_NONE_MATCH,
    axum::http::header::CONTENT_TYPE,
];

/// Response headers passed back to clients.
pub const FORWARDED_RESPONSE_HEADERS: &[HeaderName] = &[
    axum::http::header::CONTENT_TYPE,
    axum::http::header::CACHE_CONTROL,
    axum::http::header::ETAG,
    axum::http::header::CONTENT_RANGE,
    axum::http::header::ACCEPT_RANGES,
    axum::http::header::WWW_AUTHENTICATE,
];

pub struct UpstreamResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub struct Upstreams {
    pub client: reqwest::Client,
    pub timeout: Duration,
    pub requests: IntCounterVec,
    pub retries: IntCounterVec,
}

impl Upstreams {
    /// Sends one request to `pool`. GETs are retried on the next instance after a connection
    /// failure, a timeout or a 5xx; other methods are tried once, as they may have had effect.
    pub async fn send(
        &self,
        pool: &Arc<Pool>,
        method: Method,
        path_and_query: &str,
        headers: HeaderMap,
        body: Option<Bytes>,
        sticky: Option<u64>,
    ) -> Result<UpstreamResponse, ApiError> {
        let order = pool.order(sticky);
        if order.is_empty() {
            return Err(ApiError::Unavailable(format!(
                "{} has no instances configured",
                pool.service
            )));
        }
        let idempotent = method == Method::GET || method == Method::HEAD;
        let attempts = if idempotent { order.len().min(3) } else { 1 };
        let mut last_error = None;
        for (n, instance) in order.iter().take(attempts).enumerate() {
            if n > 0 {
                self.retries.with_label_values(&[pool.service]).inc();
            }
            let url = format!("{}{}", instance.url, path_and_query);
            let mut request = self
                .client
                .request(method.clone(), &url)
                .headers(headers.clone())
                .timeout(self.timeout);
            if let Some(b) = &body {
                request = request.body(b.clone());
            }
            let outcome = async {
                let response = request.send().await?;
                let status = response.status();
                let headers = response.headers().clone();
                let body = response.bytes().await?;
                Ok::<_, reqwest::Error>(UpstreamResponse {
                    status,
                    headers,
                    body,
                })
            }
            .await;
            match outcome {
                Ok(r) if r.status.is_server_error() && idempotent => {
                    self.count(pool, "status_5xx");
                    last_error = Some(ApiError::BadGateway(format!(
                        "{} answered {}",
                        pool.service,
                        r.status.as_u16()
                    )));
                    if n + 1 == attempts {
                        // Nothing else to try: pass the upstream's own answer on.
                        return Ok(r);
                    }
                }
                Ok(r) => {
                    self.count(pool, "ok");
                    return Ok(r);
                }
                Err(e) if e.is_timeout() => {
                    self.count(pool, "timeout");
                    instance.mark(
                        false,
                        Some(format!(
                            "request timed out after {}",
                            humantime::format_duration(self.timeout)
                        )),
                    );
                    last_error = Some(ApiError::GatewayTimeout(format!(
                        "{} did not answer within {}",
                        pool.service,
                        humantime::format_duration(self.timeout)
                    )));
                }
                Err(e) if e.is_connect() => {
                    self.count(pool, "refused");
                    instance.mark(false, Some("connection refused".into()));
                    last_error = Some(ApiError::BadGateway(format!(
                        "{} is unreachable",
                        pool.service
                    )));
                }
                Err(e) => {
                    self.count(pool, "error");
                    tracing::warn!(service = pool.service, instance = %instance.url, error = %e, "upstream request failed");
                    last_error = Some(ApiError::BadGateway(format!(
                        "{} failed to answer",
                        pool.service
                    )));
                }
            }
        }
        Err(last_error
            .unwrap_or_else(|| ApiError::BadGateway(format!("{} failed to answer", pool.service))))
    }

    fn count(&self, pool: &Pool, outcome: &str) {
        self.requests
            .with_label_values(&[pool.service, outcome])
            .inc();
    }
}

//! The public side: every page straight from the rendered site, with ETag/304, gzip, short
//! caching and strict security headers; `/healthcheck` and `/metrics`; the admin API merged in.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lookout_api::error::ApiError;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::Shared;
use crate::render::Page;

/// Pages may be a little old in a reader's cache: a rush re-validates at most this often.
const MAX_AGE: &str = "public, max-age=10";
/// The stylesheet's URL changes with its content.
const STATIC_MAX_AGE: &str = "public, max-age=86400";
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";
pub const MAX_BODY: usize = 64 * 1024;

type S = State<Arc<Shared>>;

pub fn router(shared: Arc<Shared>) -> Router {
    let reload =
        shared.settings().reload.clone().map(|trigger| {
            lookout_api::reload::router(trigger, shared.settings().admin_token.clone())
        });
    let app = Router::new()
        .merge(crate::admin::router(shared.clone()))
        .route("/reports", get(crate::report::index))
        .route("/reports/{month}", get(crate::report::get))
        .route("/healthcheck", get(healthcheck))
        .route("/metrics", get(metrics))
        .fallback(serve)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        // On every answer, public or admin; plain layers with static values, so the hot path
        // has no boxed future for them.
        .layer(always("content-security-policy", CSP))
        .layer(always("x-content-type-options", "nosniff"))
        .layer(always("x-frame-options", "DENY"))
        .layer(always("referrer-policy", "no-referrer"))
        .layer(always("cross-origin-opener-policy", "same-origin"))
        .layer(always(
            "permissions-policy",
            "interest-cohort=(), geolocation=(), camera=(), microphone=()",
        ))
        .with_state(shared);
    match reload {
        Some(reload) => app.merge(reload),
        None => app,
    }
}

fn always(name: &'static str, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(
        axum::http::HeaderName::from_static(name),
        HeaderValue::from_static(value),
    )
}

/// The site's key for a request: the path, and for the history its page number.
fn key(path: &str, query: Option<&str>) -> Option<String> {
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    if path == "/history" {
        let page = query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .find_map(|kv| kv.strip_prefix("page="));
        return match page {
            None => Some(path.to_owned()),
            Some(n) => n
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .map(|n| format!("/history?page={n}")),
        };
    }
    Some(path.to_owned())
}

async fn serve(State(s): S, method: Method, uri: axum::http::Uri, headers: HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return ApiError::MethodNotAllowed(format!(
            "{method} is not served here: the status page is read-only"
        ))
        .into_response();
    }
    let site = s.site.load();
    let found = key(uri.path(), uri.query()).and_then(|k| site.get(&k));
    match found {
        Some(page) => {
            let kind = kind(uri.path());
            s.metrics.request(kind).inc();
            let cache = if kind == "static" {
                STATIC_MAX_AGE
            } else {
                MAX_AGE
            };
            respond(&s, &page, &headers, cache, kind == "json")
        }
        None if uri.path().starts_with("/api/") => {
            ApiError::NotFound(format!("no such resource: {}", uri.path())).into_response()
        }
        None => match site.not_found() {
            Some(page) => respond(&s, &page, &headers, MAX_AGE, false),
            None => (StatusCode::NOT_FOUND, "Not found").into_response(),
        },
    }
}

fn kind(path: &str) -> &'static str {
    if path.starts_with("/api/") {
        "json"
    } else if path.starts_with("/badge/") {
        "badge"
    } else if path.starts_with("/static/") {
        "static"
    } else if path.ends_with(".atom") {
        "feed"
    } else {
        "page"
    }
}

/// One rendered page: 304 when the reader has it, gzip when the reader takes it.
pub fn respond(
    s: &Shared,
    page: &Page,
    request: &HeaderMap,
    cache: &'static str,
    cross_origin: bool,
) -> Response {
    let etag = HeaderValue::from_str(&page.etag).unwrap_or(HeaderValue::from_static("\"\""));
    let mut builder = Response::builder()
        .header(header::ETAG, etag)
        .header(header::CACHE_CONTROL, cache)
        .header(header::VARY, "Accept-Encoding");
    if cross_origin {
        // Widgets on partners' own pages read the JSON from the browser.
        builder = builder.header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
    }
    let fresh = page.status == 200
        && request
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| {
                let t = t.trim();
                t == "*" || t.trim_start_matches("W/") == page.etag
            });
    if fresh {
        s.metrics.not_modified.inc();
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(axum::body::Body::empty())
            .unwrap_or_default();
    }
    let builder = builder
        .status(page.status)
        .header(header::CONTENT_TYPE, page.content_type);
    let response = match (&page.gzip, accepts_gzip(request)) {
        (Some(gz), true) => builder
            .header(header::CONTENT_ENCODING, "gzip")
            .body(axum::body::Body::from(gz.clone())),
        _ => builder.body(axum::body::Body::from(page.body.clone())),
    };
    response.unwrap_or_default()
}

fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| {
            let mut parts = e.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

async fn healthcheck(State(s): S) -> impl IntoResponse {
    // Whether the collector answers, never its address or its error: this port is public.
    let stale = s.metrics.stale.get() != 0;
    axum::Json(serde_json::json!({
        "service": "status-page",
        "status": if stale { "degraded" } else { "ok" },
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": s.started.elapsed().as_secs_f64(),
        "dependencies": [{"name": "collector", "status": if stale { "failing" } else { "ok" }}],
    }))
}

async fn metrics(State(s): S) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, lookout_api::metrics::CONTENT_TYPE)],
        lookout_api::metrics::encode(&s.metrics.registry),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(
            key("/history", Some("page=2")).as_deref(),
            Some("/history?page=2")
        );
        assert_eq!(key("/history/", None).as_deref(), Some("/history"));
        assert_eq!(key("/history", Some("page=abc")), None);
        assert_eq!(key("/", None).as_deref(), Some("/"));
    }

    #[test]
    fn gzip_negotiation() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("br, gzip;q=0.8"),
        );
        assert!(accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip;q=0, br"),
        );
        assert!(!accepts_gzip(&h));
    }
}

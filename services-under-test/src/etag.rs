//! ETags and conditional GETs for cacheable resources.
//!
//! A handler marks a response cacheable by giving it a `Cache-Control` with `max-age`; this
//! middleware then hashes the body into a weak ETag (weak, because the gateway may gzip the
//! same representation) and answers `If-None-Match` with 304.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Bodies larger than this are not hashed (none of the platform's JSON comes close).
const MAX_HASHED: usize = 1 << 20;

pub fn etag_of(body: &[u8]) -> String {
    format!("W/\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(body))
}

/// Weak comparison, as RFC 9110 asks for `If-None-Match`.
pub fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let ours = strip(etag);
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || strip(t) == ours)
}

fn cacheable(response: &Response) -> bool {
    response.status() == StatusCode::OK
        && !response.headers().contains_key(header::ETAG)
        && response
            .headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("max-age") && !v.contains("no-store"))
}

pub async fn middleware(request: Request, next: Next) -> Response {
    let conditional = matches!(*request.method(), Method::GET | Method::HEAD);
    let mut if_none_match = HeaderMap::new();
    for v in request.headers().get_all(header::IF_NONE_MATCH) {
        if_none_match.append(header::IF_NONE_MATCH, v.clone());
    }
    let response = next.run(request).await;
    if !conditional || !cacheable(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match to_bytes(body, MAX_HASHED).await {
        Ok(b) => b,
        Err(err) => {
            tracing::warn!(error = %err, "response body could not be read for its ETag");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let etag = etag_of(&bytes);
    if let Ok(v) = HeaderValue::from_str(&etag) {
        parts.headers.insert(header::ETAG, v);
    }
    if none_match(&if_none_match, &etag) {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.remove(header::CONTENT_TYPE);
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists() {
        let etag = etag_of(b"hello");
        let mut h = HeaderMap::new();
        assert!(!none_match(&h, &etag));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"x\", {}", etag.trim_start_matches("W/"))).unwrap(),
        );
        assert!(none_match(&h, &etag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(none_match(&h, &etag));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("W/\"other\""),
        );
        assert!(!none_match(&h, &etag));
    }
}

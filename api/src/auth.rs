//! Bearer-token checks for write and admin APIs.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lookout_model::secret::Secret;

use crate::error::ApiError;

/// The token presented as `Authorization: Bearer <token>`, if any.
pub fn bearer(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Middleware: 401 without a token, 403 with a wrong one; the token is never echoed.
pub async fn require_bearer(State(token): State<Secret>, request: Request, next: Next) -> Response {
    match bearer(&request) {
        None => {
            ApiError::Unauthorized("send the API token as `Authorization: Bearer <token>`".into())
                .into_response()
        }
        Some(p) if !token.matches(p) => {
            ApiError::Forbidden("the token was not accepted".into()).into_response()
        }
        Some(_) => next.run(request).await,
    }
}

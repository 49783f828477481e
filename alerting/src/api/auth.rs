//! Who may do what: the API token reads and writes; read-only tokens (`alerting.read_tokens`)
//! read. The console signs people in with the same tokens and the same rules.

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lookout_api::ApiError;
use lookout_model::secret::Secret;

/// The write token is the alerter's own (a restart changes it); the read-only ones follow the
/// config, so a reload that drops one revokes it at once.
#[derive(Debug)]
pub struct Tokens {
    write: Secret,
    read: arc_swap::ArcSwap<Vec<Secret>>,
}

/// What a token allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl Tokens {
    pub fn new(write: Secret, read: Vec<Secret>) -> Tokens {
        Tokens {
            write,
            read: arc_swap::ArcSwap::from_pointee(read),
        }
    }

    /// Takes the config's read-only tokens; answers whether one that worked no longer does.
    pub fn set_read(&self, read: Vec<Secret>) -> bool {
        let old = self.read.swap(std::sync::Arc::new(read));
        let new = self.read.load();
        old.iter()
            .any(|t| !t.is_empty() && !new.iter().any(|n| n.matches(t.expose())))
    }

    pub fn access(&self, presented: &str) -> Option<Access> {
        if self.write.matches(presented) {
            Some(Access::Write)
        } else if self
            .read
            .load()
            .iter()
            .any(|t| !t.is_empty() && t.matches(presented))
        {
            Some(Access::Read)
        } else {
            None
        }
    }
}

/// Middleware: 401 without a token, 403 with a wrong one or a read-only one on a change; the
/// token is never echoed.
pub async fn require_token(
    State(tokens): State<std::sync::Arc<Tokens>>,
    request: Request,
    next: Next,
) -> Response {
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    match lookout_api::auth::bearer(&request).map(|p| tokens.access(p)) {
        None => {
            ApiError::Unauthorized("send the API token as `Authorization: Bearer <token>`".into())
                .into_response()
        }
        Some(None) => ApiError::Forbidden("the token was not accepted".into()).into_response(),
        Some(Some(Access::Read)) if !reads => ApiError::Forbidden(
            "this token reads only; changes need the alerter's API token".into(),
        )
        .into_response(),
        Some(Some(_)) => next.run(request).await,
    }
}

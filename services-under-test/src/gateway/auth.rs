//! Who is calling: an app with an API key (`X-Api-Key` or MixRadio's `client_id` query
//! parameter), or a signed-in user with a bearer token. The gateway is the only place that
//! checks credentials; it tells upstreams the user, country and language in headers.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lookout_model::secret::Secret;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// A user who may sign in with a bearer token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserToken {
    pub token: Secret,
    pub user: String,
    #[serde(default = "default_country")]
    pub country: String,
    #[serde(default = "default_language")]
    pub language: String,
}

pub fn default_country() -> String {
    "GB".into()
}

pub fn default_language() -> String {
    "en".into()
}

#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub user: Option<String>,
    pub country: String,
    pub language: String,
}

pub struct Credentials {
    pub api_keys: Vec<Secret>,
    pub users: Vec<UserToken>,
    pub default_country: String,
}

fn client_id(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("client_id="))
}

fn language_of(request: &Request) -> Option<String> {
    let value = request
        .headers()
        .get(header::ACCEPT_LANGUAGE)?
        .to_str()
        .ok()?;
    let first = value.split([',', ';']).next()?.trim();
    let lang = first.split('-').next()?.to_ascii_lowercase();
    (lang.len() == 2 && lang.chars().all(|c| c.is_ascii_lowercase())).then_some(lang)
}

impl Credentials {
    pub fn authenticate(&self, request: &Request) -> Result<Caller, ApiError> {
        if let Some(auth) = request.headers().get(header::AUTHORIZATION) {
            let token = auth
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or_else(|| {
                    ApiError::Unauthorized("`Authorization` must be `Bearer <token>`".into())
                })?;
            let user = self
                .users
                .iter()
                .find(|u| u.token.matches(token))
                .ok_or_else(|| {
                    ApiError::Unauthorized("bearer token not recognised; sign in again".into())
                })?;
            return Ok(Caller {
                user: Some(user.user.clone()),
                country: user.country.clone(),
                language: user.language.clone(),
            });
        }
        let key = request
            .headers()
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .or_else(|| client_id(request.uri().query()));
        match key {
            None => Err(ApiError::Unauthorized(
                "missing credentials: send an API key as `X-Api-Key` (or `client_id=`), or a user's `Authorization: Bearer` token".into(),
            )),
            Some(k) if self.api_keys.iter().any(|s| s.matches(k)) => Ok(Caller {
                user: None,
                country: self.default_country.clone(),
                language: language_of(request).unwrap_or_else(default_language),
            }),
            Some(_) => Err(ApiError::Unauthorized("API key not recognised".into())),
        }
    }
}

pub async fn middleware(
    State(credentials): State<Arc<Credentials>>,
    mut request: Request,
    next: Next,
) -> Response {
    match credentials.authenticate(&request) {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(err) => err.into_response(),
    }
}

//! Signing in: a person's token, exchanged for a session cookie (`HttpOnly`, `SameSite=Strict`,
//! `Secure` over TLS), and a CSRF token per session that every form carries. The store keeps
//! the SHA-256 of the cookie, so a copy of the store opens no session; signing out ends the
//! session there, so a copied cookie stops working too.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use sha2::{Digest, Sha256};

use super::Console;
use crate::api::Access;
use crate::store::Session;

pub const COOKIE: &str = "lookout_session";
/// The sign-in form's own CSRF token, before there is a session (double-submit).
pub const SIGN_IN_COOKIE: &str = "lookout_sign_in";

pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// The value of cookie `name`, if the request sent it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value with the console's attributes.
pub fn set_cookie(name: &str, value: &str, max_age_s: u64, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The signed-in person of a request.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub name: String,
    pub access: Access,
    pub csrf: String,
    pub id_hash: String,
}

impl Viewer {
    pub fn can_write(&self) -> bool {
        self.access == Access::Write
    }
}

/// Why a request has no viewer.
pub enum NoViewer {
    /// No cookie: to the sign-in page.
    SignIn,
    Refused(Response),
}

impl IntoResponse for NoViewer {
    fn into_response(self) -> Response {
        match self {
            NoViewer::SignIn => Redirect::to("/sign-in").into_response(),
            NoViewer::Refused(r) => r,
        }
    }
}

impl FromRequestParts<Arc<Console>> for Viewer {
    type Rejection = NoViewer;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Arc<Console>,
    ) -> Result<Self, Self::Rejection> {
        let reading = matches!(parts.method, Method::GET | Method::HEAD);
        let Some(value) = cookie(&parts.headers, COOKIE) else {
            return Err(if reading {
                NoViewer::SignIn
            } else {
                NoViewer::Refused(console.refuse(
                    StatusCode::UNAUTHORIZED,
                    "no_session",
                    "Not signed in",
                    "Sign in before you act: nothing was changed.",
                ))
            });
        };
        let id_hash = hash(value);
        let session = console
            .shared
            .store
            .session(id_hash.clone())
            .await
            .map_err(|e| NoViewer::Refused(console.internal(e)))?;
        let now = chrono::Utc::now().timestamp_micros();
        match session {
            Some(Session {
                ended: false,
                expires_us,
                name,
                write,
                csrf,
                ..
            }) if expires_us > now => Ok(Viewer {
                name,
                access: if write { Access::Write } else { Access::Read },
                csrf,
                id_hash,
            }),
            Some(Session { ended: true, .. }) => Err(NoViewer::Refused(console.refuse(
                StatusCode::UNAUTHORIZED,
                "signed_out",
                "Signed out",
                "This session was signed out. Sign in again.",
            ))),
            _ => Err(NoViewer::Refused(console.refuse(
                StatusCode::UNAUTHORIZED,
                "no_session",
                "Session expired",
                "This session is over or unknown. Sign in again.",
            ))),
        }
    }
}

/// Whether the form's CSRF token is the session's (compared in constant time).
pub fn csrf_ok(viewer: &Viewer, presented: &str) -> bool {
    !presented.is_empty()
        && lookout_model::secret::constant_time_eq(viewer.csrf.as_bytes(), presented.as_bytes())
}

/// A new session for `name`, with what its token allows.
pub async fn open(
    console: &Console,
    name: &str,
    access: Access,
) -> Result<(String, Session), crate::store::StoreError> {
    let value = random_token();
    let now = chrono::Utc::now().timestamp_micros();
    let session = Session {
        id_hash: hash(&value),
        name: name.to_owned(),
        write: access == Access::Write,
        csrf: random_token(),
        created_us: now,
        expires_us: now + i64::try_from(console.session_ttl.as_micros()).unwrap_or(i64::MAX / 2),
        ended: false,
    };
    console.shared.store.put_session(session.clone()).await?;
    Ok((value, session))
}

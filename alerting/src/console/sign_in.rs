//! `/sign-in` and `/sign-out`.

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tera::Context;

use super::Console;
use super::session::{self, COOKIE, SIGN_IN_COOKIE, Viewer};

type S = State<Arc<Console>>;

pub(super) async fn form(State(c): S) -> Response {
    let token = session::random_token();
    let mut ctx = Context::new();
    ctx.insert("form_token", &token);
    ctx.insert("title", "Sign in");
    let mut r = c.page("sign_in.html", None, ctx);
    if let Ok(v) = session::set_cookie(SIGN_IN_COOKIE, &token, 600, c.secure).parse() {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize)]
pub(super) struct SignIn {
    #[serde(default)]
    name: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    form_token: String,
}

pub(super) async fn submit(State(c): S, headers: HeaderMap, Form(f): Form<SignIn>) -> Response {
    let sent = session::cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if f.form_token.is_empty()
        || !lookout_model::secret::constant_time_eq(sent.as_bytes(), f.form_token.as_bytes())
    {
        return c.refuse(
            StatusCode::FORBIDDEN,
            "csrf",
            "Sign-in refused",
            "This sign-in form did not come from this console (its CSRF token is missing or wrong). Open the sign-in page again.",
        );
    }
    let name = f.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return c.message(
            StatusCode::BAD_REQUEST,
            "Sign-in refused",
            "Say who you are (up to 100 characters): acknowledgements and silences carry your name.",
        );
    }
    let Some(access) = c.tokens.access(f.token.trim()) else {
        return c.refuse(
            StatusCode::FORBIDDEN,
            "bad_token",
            "Sign-in refused",
            "That token was not accepted. Use the alerter's API token, or a read-only one from alerting.read_tokens.",
        );
    };
    match session::open(&c, name, access).await {
        Ok((value, _)) => {
            tracing::info!(name, ?access, "console: signed in");
            let mut r = Redirect::to("/").into_response();
            let ttl = c.session_ttl.as_secs();
            if let Ok(v) = session::set_cookie(COOKIE, &value, ttl, c.secure).parse() {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            if let Ok(v) = session::set_cookie(SIGN_IN_COOKIE, "", 0, c.secure).parse() {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => c.internal(e),
    }
}

#[derive(Deserialize)]
pub(super) struct Csrf {
    #[serde(default)]
    csrf: String,
}

pub(super) async fn sign_out(State(c): S, viewer: Viewer, Form(f): Form<Csrf>) -> Response {
    if !session::csrf_ok(&viewer, &f.csrf) {
        return c.refuse(
            StatusCode::FORBIDDEN,
            "csrf",
            "Form refused",
            "This form did not come from this console. You are still signed in.",
        );
    }
    if let Err(e) = c.shared.store.end_session(viewer.id_hash.clone()).await {
        return c.internal(e);
    }
    tracing::info!(name = %viewer.name, "console: signed out");
    let mut r = Redirect::to("/sign-in").into_response();
    if let Ok(v) = session::set_cookie(COOKIE, "", 0, c.secure).parse() {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

//! The on-call console: what is wrong now, and acting on it (acknowledge, silence) from a
//! browser or a phone. Server-rendered with autoescaping templates; the only script-free
//! interaction is forms, each with its session's CSRF token. Every action goes through the
//! same [`crate::actions`] as the API, so it is recorded in the problem's history and, on a
//! replica, goes through the replicated log.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use tera::{Context, Tera};

use crate::ack_link::AckLinks;
use crate::api::Tokens;
use crate::engine::Shared;

mod ack;
pub mod chart;
mod check_page;
pub mod html;
mod now;
mod problem_page;
pub mod session;
mod sign_in;
mod silences;

pub use session::Viewer;

const TEMPLATES: &[(&str, &str)] = &[
    (
        "base.html",
        include_str!("../../templates/console/base.html"),
    ),
    (
        "message.html",
        include_str!("../../templates/console/message.html"),
    ),
    (
        "sign_in.html",
        include_str!("../../templates/console/sign_in.html"),
    ),
    ("now.html", include_str!("../../templates/console/now.html")),
    (
        "problem.html",
        include_str!("../../templates/console/problem.html"),
    ),
    (
        "check.html",
        include_str!("../../templates/console/check.html"),
    ),
    (
        "silences.html",
        include_str!("../../templates/console/silences.html"),
    ),
    ("ack.html", include_str!("../../templates/console/ack.html")),
];
const CSS: &str = include_str!("../../templates/console/console.css");

/// What the console's pages need beside the alerter's state.
pub struct Console {
    pub shared: Arc<Shared>,
    pub tokens: Arc<Tokens>,
    pub links: AckLinks,
    pub session_ttl: Duration,
    /// Served over TLS: cookies are `Secure`.
    pub secure: bool,
    templates: Tera,
}

#[derive(Debug, thiserror::Error)]
#[error("console templates: {0}")]
pub struct TemplateError(String);

impl Console {
    pub fn new(
        shared: Arc<Shared>,
        tokens: Arc<Tokens>,
        links: AckLinks,
        session_ttl: Duration,
        secure: bool,
    ) -> Result<Console, TemplateError> {
        let templates = templates()?;
        Ok(Console {
            shared,
            tokens,
            links,
            session_ttl,
            secure,
            templates,
        })
    }

    /// A page from `template`, with what every page shows.
    pub fn page(&self, template: &str, viewer: Option<&Viewer>, mut ctx: Context) -> Response {
        if let Some(v) = viewer {
            ctx.insert("viewer", &v.name);
            ctx.insert("can_write", &v.can_write());
            ctx.insert("csrf", &v.csrf);
        }
        ctx.insert(
            "generated",
            &html::time(chrono::Utc::now().timestamp_micros()),
        );
        if !ctx.contains_key("title") {
            ctx.insert("title", "Console");
        }
        match self.templates.render(template, &ctx) {
            Ok(body) => (
                [
                    (header::CACHE_CONTROL, "no-store"),
                    (header::X_FRAME_OPTIONS, "DENY"),
                    (
                        header::CONTENT_SECURITY_POLICY,
                        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
                    ),
                ],
                Html(body),
            )
                .into_response(),
            Err(e) => {
                let msg = chain(&e);
                tracing::error!(template, error = %msg, "console: a page could not be rendered");
                (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
            }
        }
    }

    /// A clear page saying what was refused and why, counted and logged (never with a token).
    pub fn refuse(&self, status: StatusCode, reason: &str, title: &str, message: &str) -> Response {
        self.shared
            .metrics
            .console_refusals
            .with_label_values(&[reason])
            .inc();
        tracing::warn!(reason, status = status.as_u16(), "console: refused");
        self.message(status, title, message)
    }

    pub fn message(&self, status: StatusCode, title: &str, message: &str) -> Response {
        let mut ctx = Context::new();
        ctx.insert("title", title);
        ctx.insert("message", message);
        let mut r = self.page("message.html", None, ctx);
        *r.status_mut() = status;
        r
    }

    pub fn internal(&self, e: impl std::fmt::Display) -> Response {
        tracing::error!(error = %e, "console: internal error");
        self.message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The alerter could not answer: see its log. Nothing was changed.",
        )
    }

    /// An API error from an action, as a page.
    pub fn failed(&self, e: lookout_api::ApiError) -> Response {
        let status = e.status();
        self.message(status, "Not done", &e.to_string())
    }

    /// The refusal of a change the viewer may not make, or of a form without the session's
    /// CSRF token; `None` when it may go ahead.
    pub fn refusal(&self, viewer: &Viewer, csrf: &str) -> Option<Response> {
        if !session::csrf_ok(viewer, csrf) {
            return Some(self.refuse(
                StatusCode::FORBIDDEN,
                "csrf",
                "Form refused",
                "This form did not come from this console (its CSRF token is missing or wrong). Nothing was changed; reload the page and try again.",
            ));
        }
        if !viewer.can_write() {
            return Some(self.refuse(
                StatusCode::FORBIDDEN,
                "read_only",
                "Read-only",
                "You signed in with a read-only token: you can look, not act. Nothing was changed.",
            ));
        }
        None
    }

    /// The page after an action: `then` when it was done (counted as `action`), else a page
    /// saying why not.
    pub fn outcome<T>(
        &self,
        action: &str,
        done: Result<T, lookout_api::ApiError>,
        then: impl FnOnce(T) -> Response,
    ) -> Response {
        match done {
            Ok(v) => {
                self.counted(action);
                then(v)
            }
            Err(e) => self.failed(e),
        }
    }

    pub fn counted(&self, action: &str) {
        self.shared
            .metrics
            .console_actions
            .with_label_values(&[action])
            .inc();
        self.shared.wake.notify_one();
    }
}

fn templates() -> Result<Tera, TemplateError> {
    let mut templates = Tera::default();
    // Everything from checks, reasons and people is escaped on every page.
    templates.autoescape_on(vec![".html"]);
    templates.register_filter("seg", segment);
    templates
        .add_raw_templates(TEMPLATES.iter().copied())
        .map_err(|e| TemplateError(chain(&e)))?;
    Ok(templates)
}

/// An error with its causes: Tera's own message says only which template failed.
fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    msg
}

/// Tera's filter for a value put into a URL path segment.
fn segment(
    v: &tera::Value,
    _: &std::collections::HashMap<String, tera::Value>,
) -> tera::Result<tera::Value> {
    let s = tera::try_get_value!("seg", "value", String, v);
    Ok(tera::Value::String(html::path_segment(&s)))
}

async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        CSS,
    )
}

pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(now::page))
        .route("/console.css", get(css))
        .route("/sign-in", get(sign_in::form).post(sign_in::submit))
        .route("/sign-out", post(sign_in::sign_out))
        .route("/problems/{id}", get(problem_page::page))
        .route("/problems/{id}/ack", post(problem_page::ack))
        .route("/problems/{id}/unack", post(problem_page::unack))
        .route("/problems/{id}/silence", post(problem_page::silence))
        .route("/checks/{id}", get(check_page::page))
        .route("/checks/{id}/chart.svg", get(check_page::chart))
        .route(
            "/checks/{id}/subscriptions/{sub}/test",
            post(check_page::test_send),
        )
        .route("/silences", get(silences::page).post(silences::create))
        .route("/silences/{id}/expire", post(silences::expire))
        .route("/ack/{link}", get(ack::confirm).post(ack::acknowledge))
        .with_state(console)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sign_in_and_message_pages_render() {
        let t = templates().expect("templates");
        let mut ctx = Context::new();
        ctx.insert("form_token", "t");
        ctx.insert("generated", "now");
        let page = t.render("sign_in.html", &ctx);
        assert!(page.is_err(), "every page is given a title");
        ctx.insert("title", "<script>x</script>");
        ctx.insert("message", "\"><img onerror=alert(1)>");
        let page = t.render("sign_in.html", &ctx).map_err(|e| chain(&e));
        assert!(
            page.expect("sign-in")
                .contains("name=\"form_token\" value=\"t\"")
        );
        let page = t
            .render("message.html", &ctx)
            .map_err(|e| chain(&e))
            .expect("message");
        assert!(
            !page.contains("<script>x") && !page.contains("<img onerror"),
            "{page}"
        );
    }
}

//! `/ack/{link}`: the acknowledge link of an email or a Slack message. Opening it shows the
//! problem and one button; only the button's POST acknowledges, because mail scanners and
//! chat previews open every link in a message, and must not acknowledge a page unseen.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use tera::Context;

use super::Console;
use super::html::{relative, time};
use crate::ack_link::{AckClaim, receiver_name as engine_receiver_name};

type S = State<Arc<Console>>;

/// The link's claim, if it may still be used; else the page saying why not.
async fn usable(c: &Console, link: &str) -> Result<AckClaim, Response> {
    let now = chrono::Utc::now().timestamp_micros();
    let claim = c.links.verify(link, now).map_err(|e| {
        c.refuse(
            StatusCode::FORBIDDEN,
            e.reason(),
            "Link refused",
            &e.to_string(),
        )
    })?;
    match c.shared.store.link_used(claim.nonce.clone()).await {
        Ok(Some(at)) => Err(c.refuse(
            StatusCode::CONFLICT,
            "ack_link_used",
            "Link already used",
            &format!(
                "This acknowledge link was used {} ({}); each link works once. The problem's page shows who did what.",
                relative(at, now),
                time(at)
            ),
        )),
        Ok(None) => Ok(claim),
        Err(e) => Err(c.internal(e)),
    }
}

pub(super) async fn confirm(State(c): S, Path(link): Path<String>) -> Response {
    let claim = match usable(&c, &link).await {
        Ok(claim) => claim,
        Err(r) => return r,
    };
    let p = match crate::actions::open_problem(&c.shared, &claim.problem_id).await {
        Ok(p) => p,
        Err(e) => return c.failed(e),
    };
    let now = chrono::Utc::now().timestamp_micros();
    let mut ctx = Context::new();
    {
        let e = c.shared.engine.lock().await;
        ctx.insert("problem", &super::now::problem_row(&e, &p, now));
    }
    ctx.insert("link", &link);
    ctx.insert("as", &engine_receiver_name(&claim.receiver));
    ctx.insert("expires", &time(claim.expires_us));
    ctx.insert("title", "Acknowledge");
    c.page("ack.html", None, ctx)
}

pub(super) async fn acknowledge(State(c): S, Path(link): Path<String>) -> Response {
    let claim = match usable(&c, &link).await {
        Ok(claim) => claim,
        Err(r) => return r,
    };
    let by = engine_receiver_name(&claim.receiver);
    match crate::actions::ack(
        &c.shared,
        &claim.problem_id,
        &by,
        "acknowledged from the link in the notification",
        Some(claim.nonce.clone()),
    )
    .await
    {
        Ok(p) => {
            c.counted("ack_link");
            tracing::info!(problem = %p.id, by = %by, "console: acknowledged through a link");
            c.message(
                StatusCode::OK,
                "Acknowledged",
                &format!(
                    "Problem {} is acknowledged by {by}: its reminders stop. Resolves are still sent.",
                    p.id
                ),
            )
        }
        Err(e) => c.failed(e),
    }
}

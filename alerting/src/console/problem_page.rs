//! `/problems/{id}`: a problem's timeline and what can be done about it.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use tera::Context;

use super::html::{relative, time};
use super::now::problem_row;
use super::{Console, Viewer};
use crate::problem::DeliveryStatus;

type S = State<Arc<Console>>;

#[derive(Serialize)]
struct Step {
    at: String,
    at_us: i64,
    what: String,
    detail: String,
    class: &'static str,
}

#[derive(Serialize)]
struct SilenceChoice {
    matcher: String,
    label: String,
}

pub(super) async fn page(State(c): S, viewer: Viewer, Path(id): Path<String>) -> Response {
    let now_us = chrono::Utc::now().timestamp_micros();
    let stored = match c.shared.store.problem(&id).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return c.message(
                StatusCode::NOT_FOUND,
                "No such problem",
                &format!("There is no problem with id {id:?}."),
            );
        }
        Err(e) => return c.internal(e),
    };
    let (deliveries, events) =
        match tokio::try_join!(c.shared.store.deliveries(&id), c.shared.store.events(&id)) {
            Ok(x) => x,
            Err(e) => return c.internal(e),
        };
    let mut ctx = Context::new();
    let settings = c.shared.settings.load();
    let links = &settings.links;
    {
        let e = c.shared.engine.lock().await;
        // The live copy when it is open: members' levels change before the store hears.
        let p = e
            .problems
            .values()
            .find(|p| p.id == id)
            .cloned()
            .unwrap_or(stored);
        let row = problem_row(&e, &p, now_us);
        let lead = e.checks.get(&p.lead);
        let mut choices = vec![SilenceChoice {
            matcher: p.lead.clone(),
            label: format!("this check ({})", row.lead),
        }];
        if let Some(g) = lead.and_then(|c| c.group.as_ref()) {
            choices.push(SilenceChoice {
                matcher: format!("group:{g}"),
                label: format!("every check of group {g}"),
            });
        }
        if let Some(a) = lead.and_then(|c| c.about.as_ref()) {
            choices.push(SilenceChoice {
                matcher: format!("about:{a}"),
                label: format!("every alert about probe check {a}"),
            });
        }
        ctx.insert("silence_choices", &choices);
        // Deliveries are kept by receiver (notifier and target), whoever the subscription was.
        let sub_name = crate::ack_link::receiver_name;
        let mut steps = vec![Step {
            at: time(p.opened_us),
            at_us: p.opened_us,
            what: format!("opened: {} {}", row.symbol, row.level),
            detail: p.reason.clone().unwrap_or_default(),
            class: "opened",
        }];
        for d in &deliveries {
            let status = match d.status {
                DeliveryStatus::Sent => {
                    format!("delivered {}", d.sent_us.map(time).unwrap_or_default())
                }
                DeliveryStatus::Pending => format!(
                    "pending, {} attempt(s) so far, next {}",
                    d.attempts,
                    relative(d.next_attempt_us, now_us)
                ),
                DeliveryStatus::Failed => format!("failed after {} attempt(s)", d.attempts),
                DeliveryStatus::Skipped => "skipped: a later notification replaced it".into(),
            };
            let detail = match &d.last_error {
                Some(err) => format!("{status}; last error: {err}"),
                None => status,
            };
            steps.push(Step {
                at: time(d.created_us),
                at_us: d.created_us,
                what: format!(
                    "{} {} to {}",
                    d.kind.as_str(),
                    d.level,
                    sub_name(&d.subscription_id)
                ),
                detail,
                class: "notified",
            });
        }
        for ev in &events {
            steps.push(Step {
                at: time(ev.at_us),
                at_us: ev.at_us,
                what: format!("{} by {}", ev.what, ev.by),
                detail: ev.detail.clone(),
                class: "action",
            });
        }
        if let Some(closed) = p.closed_us {
            steps.push(Step {
                at: time(closed),
                at_us: closed,
                what: "resolved: ✓ OK".into(),
                detail: String::new(),
                class: "resolved",
            });
        }
        steps.sort_by_key(|s| s.at_us);
        ctx.insert("steps", &steps);
        ctx.insert("open", &p.is_open());
        ctx.insert("acked", &p.ack.is_some());
        ctx.insert("closed", &p.closed_us.map(time));
        let members: Vec<(String, String, &str, &str)> = p
            .members
            .iter()
            .map(|(m, l)| {
                (
                    m.clone(),
                    e.checks.get(m).map_or(m.clone(), |c| c.name.clone()),
                    l.as_str(),
                    super::html::symbol(*l),
                )
            })
            .collect();
        ctx.insert("members", &members);
        ctx.insert(
            "dashboard",
            &links.dashboard.as_ref().map(|d| {
                d.replace(
                    "{check}",
                    lead.and_then(|c| c.about.as_deref()).unwrap_or(&p.lead),
                )
            }),
        );
        ctx.insert("title", &format!("Problem: {}", row.lead));
        ctx.insert("problem", &row);
    }
    ctx.insert("status_page", &links.status_page);
    c.page("problem.html", Some(&viewer), ctx)
}

#[derive(Deserialize)]
pub(super) struct AckForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    comment: String,
}

fn back(id: &str) -> Response {
    Redirect::to(&format!("/problems/{}", super::html::path_segment(id))).into_response()
}

pub(super) async fn ack(
    State(c): S,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(f): Form<AckForm>,
) -> Response {
    if let Some(r) = c.refusal(&viewer, &f.csrf) {
        return r;
    }
    let done = crate::actions::ack(&c.shared, &id, &viewer.name, &f.comment, None).await;
    c.outcome("ack", done, |_| back(&id))
}

pub(super) async fn unack(
    State(c): S,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(f): Form<AckForm>,
) -> Response {
    if let Some(r) = c.refusal(&viewer, &f.csrf) {
        return r;
    }
    let done = crate::actions::unack(&c.shared, &id, &viewer.name, &f.comment).await;
    c.outcome("unack", done, |_| back(&id))
}

#[derive(Deserialize)]
pub(super) struct SilenceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    matcher: String,
    #[serde(default)]
    duration: String,
    #[serde(default)]
    comment: String,
}

/// `1h`, `30m`: a silence's length from the form, at most 30 days.
pub(super) fn duration_us(text: &str) -> Result<i64, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration such as 30m, 2h or 1d ({e})"))?;
    if d.is_zero() || d > std::time::Duration::from_secs(30 * 86_400) {
        return Err(format!(
            "{text:?}: a silence lasts from a second to 30 days"
        ));
    }
    Ok(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

pub(super) async fn silence(
    State(c): S,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(f): Form<SilenceForm>,
) -> Response {
    if let Some(r) = c.refusal(&viewer, &f.csrf) {
        return r;
    }
    let d = match duration_us(&f.duration) {
        Ok(d) => d,
        Err(e) => return c.message(StatusCode::BAD_REQUEST, "Not silenced", &e),
    };
    if let Err(e) = crate::actions::open_problem(&c.shared, &id).await {
        return c.failed(e);
    }
    let now = chrono::Utc::now().timestamp_micros();
    let made = crate::actions::silence(
        &c.shared,
        crate::actions::NewSilence {
            matchers: vec![f.matcher.trim().to_owned()],
            starts_us: now,
            ends_us: now.saturating_add(d),
            created_by: viewer.name.clone(),
            comment: f.comment.trim().to_owned(),
            kind: "silence".into(),
            from_problem: Some(id.clone()),
        },
    )
    .await;
    c.outcome("silence", made, |_| back(&id))
}

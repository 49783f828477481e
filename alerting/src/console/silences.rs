//! `/silences`: the silences in force and ahead (the collector's maintenance among them), a
//! new silence from matchers with a preview of what it would hold, and expiring one.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use tera::Context;

use super::html::{relative, time};
use super::problem_page::duration_us;
use super::{Console, Viewer};

type S = State<Arc<Console>>;

#[derive(Serialize)]
struct Row {
    id: String,
    kind: String,
    matchers: String,
    from: String,
    until: String,
    state: String,
    by: String,
    comment: String,
    expirable: bool,
}

#[derive(Deserialize, Default)]
pub(super) struct Preview {
    #[serde(default)]
    matchers: String,
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    comment: String,
}

fn split(matchers: &str) -> Vec<String> {
    matchers
        .split([',', '\n', ' '])
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(super) async fn page(State(c): S, viewer: Viewer, Query(q): Query<Preview>) -> Response {
    let now_us = chrono::Utc::now().timestamp_micros();
    let mut ctx = Context::new();
    let matchers = split(&q.matchers);
    let api_made = match c.shared.store.silences().await {
        Ok(s) => s
            .into_iter()
            .map(|s| s.id)
            .collect::<std::collections::BTreeSet<_>>(),
        Err(e) => return c.internal(e),
    };
    {
        let e = c.shared.engine.lock().await;
        let mut all = e.silences.clone();
        all.extend(crate::api::maintenance_silences(&c.shared.feed.borrow()));
        all.retain(|s| s.ends_us > now_us);
        all.sort_by_key(|s| s.starts_us);
        let rows: Vec<Row> = all
            .iter()
            .map(|s| Row {
                id: s.id.clone(),
                kind: s.kind.clone(),
                matchers: if s.matchers.is_empty() {
                    "every check".into()
                } else {
                    s.matchers.join(", ")
                },
                from: time(s.starts_us),
                until: time(s.ends_us),
                state: if s.active(now_us) {
                    format!("in force, ends {}", relative(s.ends_us, now_us))
                } else {
                    format!("starts {}", relative(s.starts_us, now_us))
                },
                by: s.created_by.clone(),
                comment: s.comment.clone(),
                expirable: api_made.contains(&s.id),
            })
            .collect();
        ctx.insert("silences", &rows);
        if !matchers.is_empty() {
            let error =
                crate::api::silence_from(&e.checks, matchers.clone(), 0, 1, "silence").err();
            let probe = crate::problem::Silence {
                id: String::new(),
                matchers: matchers.clone(),
                starts_us: 0,
                ends_us: i64::MAX,
                created_by: String::new(),
                comment: String::new(),
                kind: "silence".into(),
            };
            let held: Vec<String> = e
                .checks
                .values()
                .filter(|c| probe.matches(&c.id, c.group.as_deref(), c.about.as_deref()))
                .map(|c| c.name.clone())
                .collect();
            let problems: Vec<String> = e
                .problems
                .values()
                .filter(|p| {
                    p.members.keys().any(|m| {
                        e.checks.get(m).is_some_and(|c| {
                            probe.matches(&c.id, c.group.as_deref(), c.about.as_deref())
                        })
                    })
                })
                .map(|p| p.id.clone())
                .collect();
            ctx.insert("preview_error", &error);
            ctx.insert("preview_checks", &held);
            ctx.insert("preview_problems", &problems);
            ctx.insert("preview", &true);
        }
    }
    ctx.insert("matchers", &q.matchers);
    ctx.insert("duration", q.duration.as_deref().unwrap_or("1h"));
    ctx.insert("comment", &q.comment);
    ctx.insert("title", "Silences");
    c.page("silences.html", Some(&viewer), ctx)
}

#[derive(Deserialize)]
pub(super) struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    matchers: String,
    #[serde(default)]
    duration: String,
    #[serde(default)]
    comment: String,
}

pub(super) async fn create(State(c): S, viewer: Viewer, Form(f): Form<CreateForm>) -> Response {
    if let Some(r) = c.refusal(&viewer, &f.csrf) {
        return r;
    }
    let d = match duration_us(&f.duration) {
        Ok(d) => d,
        Err(e) => return c.message(StatusCode::BAD_REQUEST, "Not silenced", &e),
    };
    let matchers = split(&f.matchers);
    if matchers.is_empty() {
        return c.message(
            StatusCode::BAD_REQUEST,
            "Not silenced",
            "Name what to silence: check ids, group:NAME or about:CHECK. A silence of everything is made through the API, on purpose.",
        );
    }
    let now = chrono::Utc::now().timestamp_micros();
    let made = crate::actions::silence(
        &c.shared,
        crate::actions::NewSilence {
            matchers,
            starts_us: now,
            ends_us: now.saturating_add(d),
            created_by: viewer.name.clone(),
            comment: f.comment.trim().to_owned(),
            kind: "silence".into(),
            from_problem: None,
        },
    )
    .await;
    c.outcome("silence", made, |_| {
        Redirect::to("/silences").into_response()
    })
}

#[derive(Deserialize)]
pub(super) struct ExpireForm {
    #[serde(default)]
    csrf: String,
}

pub(super) async fn expire(
    State(c): S,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(f): Form<ExpireForm>,
) -> Response {
    if let Some(r) = c.refusal(&viewer, &f.csrf) {
        return r;
    }
    let done = crate::actions::expire_silence(&c.shared, &id, &viewer.name).await;
    c.outcome("expire_silence", done, |()| {
        Redirect::to("/silences").into_response()
    })
}

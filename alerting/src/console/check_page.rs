//! `/checks/{id}`: a check's value over time with its thresholds and state changes, its
//! alert history, its subscriptions (with a test-send button), its target and schedule.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tera::Context;

use super::chart::{self, Chart};
use super::html::{symbol, time};
use super::now::value_text;
use super::{Console, Viewer};
use crate::notify::Level;

type S = State<Arc<Console>>;

/// The ranges a chart shows, as links on the page.
const RANGES: &[(&str, i64)] = &[
    ("6h", 6 * 3_600_000_000),
    ("1d", 86_400_000_000),
    ("7d", 7 * 86_400_000_000),
];

#[derive(Deserialize)]
pub(super) struct RangeQuery {
    range: Option<String>,
}

fn range_of(q: &RangeQuery) -> (&'static str, i64) {
    let wanted = q.range.as_deref().unwrap_or("6h");
    RANGES
        .iter()
        .find(|(n, _)| *n == wanted)
        .copied()
        .unwrap_or(RANGES[0])
}

/// The chart of check `id` over the `span_us` before now: its values and state changes read
/// from the store, then drawn.
pub async fn chart_of(
    shared: &crate::engine::Shared,
    id: &str,
    span_us: i64,
    width: u32,
) -> Result<Option<String>, crate::store::StoreError> {
    let to = chrono::Utc::now().timestamp_micros();
    let from = to - span_us;
    let (title, warn, error) = {
        let e = shared.engine.lock().await;
        let Some(c) = e.checks.get(id) else {
            return Ok(None);
        };
        (c.name.clone(), c.thresholds.warn, c.thresholds.error)
    };
    let values = shared.store.values(id, from, to).await?;
    let (alerts, _) = shared.store.alerts(Some(id.to_owned()), 500, 0).await?;
    let changes: Vec<(i64, Level)> = alerts.iter().map(|a| (a.time_us, a.to)).collect();
    Ok(Some(chart::render(&Chart {
        title: &title,
        values: &values,
        from_us: from,
        to_us: to,
        warn,
        error,
        changes: &changes,
        width,
        height: 260,
    })))
}

#[derive(Serialize)]
struct Alert {
    time: String,
    from: String,
    to: String,
    to_symbol: &'static str,
    value: String,
}

#[derive(Serialize)]
struct Sub {
    id: String,
    notifier: String,
    target: Option<String>,
    when: String,
    ignores: String,
    enabled: bool,
}

pub(super) async fn page(
    State(c): S,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Response {
    let (range, span) = range_of(&q);
    let mut ctx = Context::new();
    {
        let e = c.shared.engine.lock().await;
        let Some(check) = e.checks.get(&id) else {
            return c.message(
                StatusCode::NOT_FOUND,
                "No such check",
                &format!("The alerter has no check {id:?} (a removed check's history stays in /api/alerts)."),
            );
        };
        let st = e.states.get(&id);
        let level = st.map_or(Level::Ok, |s| s.level);
        ctx.insert("title", &check.name);
        ctx.insert("id", &check.id);
        ctx.insert("name", &check.name);
        ctx.insert("description", &check.description);
        ctx.insert("target", &check.target_text);
        ctx.insert("schedule", &check.schedule.describe());
        ctx.insert("level", level.as_str());
        ctx.insert("symbol", symbol(level));
        ctx.insert("value", &value_text(st.and_then(|s| s.value)));
        ctx.insert("warn", &check.thresholds.warn.map(|v| value_text(Some(v))));
        ctx.insert(
            "error",
            &check.thresholds.error.map(|v| value_text(Some(v))),
        );
        ctx.insert(
            "worse",
            match check.thresholds.worse {
                crate::check::Worse::Higher => "higher",
                crate::check::Worse::Lower => "lower",
            },
        );
        ctx.insert("group", &check.group);
        ctx.insert("about", &check.about);
        ctx.insert("origin", &format!("{:?}", check.origin).to_lowercase());
        ctx.insert("source_error", &e.errors.get(&id));
        let subs: Vec<Sub> = e
            .subscriptions
            .iter()
            .filter(|s| s.check_id == id)
            .map(|s| Sub {
                id: s.id.clone(),
                notifier: s.notifier.clone(),
                target: s.target.clone(),
                when: s.window.describe(),
                ignores: [
                    (s.ignore_warn, "WARN"),
                    (s.ignore_error, "ERROR"),
                    (s.ignore_ok, "OK"),
                ]
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, l)| *l)
                .collect::<Vec<_>>()
                .join(", "),
                enabled: s.enabled,
            })
            .collect();
        ctx.insert("subscriptions", &subs);
    }
    let chart = match chart_of(&c.shared, &id, span, 900).await {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => return c.internal(e),
    };
    ctx.insert("chart", &chart);
    ctx.insert("range", range);
    ctx.insert(
        "ranges",
        &RANGES.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
    );
    let alerts = match c.shared.store.alerts(Some(id.clone()), 50, 0).await {
        Ok((a, _)) => a,
        Err(e) => return c.internal(e),
    };
    let alerts: Vec<Alert> = alerts
        .iter()
        .map(|a| Alert {
            time: time(a.time_us),
            from: a.from.as_str().into(),
            to: a.to.as_str().into(),
            to_symbol: symbol(a.to),
            value: value_text(a.value),
        })
        .collect();
    ctx.insert("alerts", &alerts);
    c.page("check.html", Some(&viewer), ctx)
}

pub(super) async fn chart(
    State(c): S,
    _viewer: Viewer,
    Path(id): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Response {
    let (_, span) = range_of(&q);
    match chart_of(&c.shared, &id, span, 900).await {
        Ok(Some(svg)) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            svg,
        )
            .into_response(),
        Ok(None) => c.message(
            StatusCode::NOT_FOUND,
            "No such check",
            &format!("No check {id:?}."),
        ),
        Err(e) => c.internal(e),
    }
}

#[derive(Deserialize)]
pub(super) struct TestForm {
    #[serde(default)]
    csrf: String,
}

pub(super) async fn test_send(
    State(c): S,
    viewer: Viewer,
    Path((id, sub)): Path<(String, String)>,
    Form(f): Form<TestForm>,
) -> Response {
    if let Some(r) = c.refusal(&viewer, &f.csrf) {
        return r;
    }
    match crate::api::test_send(&c.shared, &id, &sub).await {
        Ok(r) if r.sent => {
            c.counted("test_send");
            c.message(
                StatusCode::OK,
                "Test sent",
                &format!("A test notification went out through {}.", r.notifier),
            )
        }
        Ok(r) => c.message(
            StatusCode::BAD_GATEWAY,
            "Test not delivered",
            &format!(
                "{} refused the test: {}",
                r.notifier,
                r.error.unwrap_or_default()
            ),
        ),
        Err(e) => c.failed(e),
    }
}

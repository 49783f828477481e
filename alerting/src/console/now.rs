//! `/`: what is wrong now, worst first.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use tera::Context;

use super::html::{relative, symbol, time};
use super::{Console, Viewer};
use crate::check::Measure;
use crate::notify::Level;
use crate::problem::Problem;

#[derive(Serialize)]
pub(super) struct ProblemRow {
    pub id: String,
    pub level: &'static str,
    pub symbol: &'static str,
    pub lead: String,
    pub lead_id: String,
    pub others: Vec<String>,
    pub regions: Vec<String>,
    pub since: String,
    pub since_ago: String,
    pub reason: Option<String>,
    pub notified: Vec<String>,
    pub ack: Option<String>,
    pub silenced: Option<String>,
}

#[derive(Serialize)]
struct CheckRow {
    id: String,
    name: String,
    level: &'static str,
    symbol: &'static str,
    value: String,
    since: String,
    error: Option<String>,
}

#[derive(Serialize)]
struct Line {
    what: String,
    detail: String,
}

pub(super) fn value_text(v: Option<f64>) -> String {
    v.map_or("no data".into(), |v| {
        if v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.4}")
        }
    })
}

/// A problem as the console lists it.
pub(super) fn problem_row(e: &crate::engine::Engine, p: &Problem, now_us: i64) -> ProblemRow {
    let name = |id: &str| e.checks.get(id).map_or(id.to_owned(), |c| c.name.clone());
    let level = p.level();
    let lead = e.checks.get(&p.lead);
    let silenced = lead.and_then(|c| {
        e.silences
            .iter()
            .find(|s| s.active(now_us) && s.matches(&c.id, c.group.as_deref(), c.about.as_deref()))
            .map(|s| {
                format!(
                    "silenced by {} until {}",
                    if s.created_by.is_empty() {
                        "the config"
                    } else {
                        &s.created_by
                    },
                    time(s.ends_us)
                )
            })
    });
    // Keyed by receiver (notifier and target): whoever was told, even if the subscription
    // is gone since.
    let mut notified: Vec<String> = p
        .notified
        .iter()
        .map(|(receiver, n)| {
            format!(
                "{}: {} at {}",
                crate::ack_link::receiver_name(receiver),
                n.level,
                time(n.last_us)
            )
        })
        .collect();
    notified.sort();
    ProblemRow {
        id: p.id.clone(),
        level: level.as_str(),
        symbol: symbol(level),
        lead: name(&p.lead),
        lead_id: p.lead.clone(),
        others: p
            .bad_members()
            .into_iter()
            .filter(|m| *m != p.lead)
            .map(name)
            .collect(),
        regions: p.regions.clone(),
        since: time(p.opened_us),
        since_ago: relative(p.opened_us, now_us),
        reason: p.reason.clone(),
        notified,
        ack: p.ack.as_ref().map(|a| {
            if a.comment.is_empty() {
                format!("acknowledged by {} {}", a.by, relative(a.at_us, now_us))
            } else {
                format!(
                    "acknowledged by {} {}: {}",
                    a.by,
                    relative(a.at_us, now_us),
                    a.comment
                )
            }
        }),
        silenced,
    }
}

pub(super) async fn page(State(c): State<Arc<Console>>, viewer: Viewer) -> Response {
    let now_us = chrono::Utc::now().timestamp_micros();
    let feed = c.shared.feed.borrow().clone();
    let mut ctx = Context::new();
    {
        let e = c.shared.engine.lock().await;
        let mut problems: Vec<&Problem> = e.problems.values().filter(|p| p.is_open()).collect();
        problems.sort_by(|a, b| {
            b.level()
                .cmp(&a.level())
                .then(a.ack.is_some().cmp(&b.ack.is_some()))
                .then(a.opened_us.cmp(&b.opened_us))
        });
        let rows: Vec<ProblemRow> = problems
            .iter()
            .map(|p| problem_row(&e, p, now_us))
            .collect();
        ctx.insert("problems", &rows);
        let mut bad: Vec<CheckRow> = e
            .checks
            .values()
            .filter_map(|c| {
                let st = e.states.get(&c.id)?;
                (st.level != Level::Ok).then(|| CheckRow {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    level: st.level.as_str(),
                    symbol: symbol(st.level),
                    value: value_text(st.value),
                    since: relative(st.since_us, now_us),
                    error: e.errors.get(&c.id).cloned(),
                })
            })
            .collect();
        bad.sort_by(|a, b| b.level.cmp(a.level).then(a.name.cmp(&b.name)));
        ctx.insert("checks", &bad);
        let blind: Vec<Line> = e
            .checks
            .values()
            .filter(|c| matches!(c.measure, Measure::Blind))
            .filter_map(|c| {
                let st = e.states.get(&c.id)?;
                (st.level != Level::Ok).then(|| Line {
                    what: c.name.clone(),
                    detail: format!("{} since {}", st.level, relative(st.since_us, now_us)),
                })
            })
            .collect();
        ctx.insert("blind", &blind);
        let held: Vec<Line> = e
            .checks
            .values()
            .filter(|c| matches!(c.measure, Measure::ReplacerHeld))
            .filter_map(|c| {
                let st = e.states.get(&c.id)?;
                let n = st.value.filter(|v| *v > 0.0)?;
                Some(Line {
                    what: c.name.clone(),
                    detail: format!("{n:.0} service(s) held by the replacer's brake"),
                })
            })
            .collect();
        ctx.insert("held", &held);
        ctx.insert("checks_total", &e.checks.len());
    }
    let regional: Vec<Line> = feed
        .states
        .checks
        .iter()
        .filter(|l| l.state != lookout_model::read::LiveState::Down)
        .filter_map(|l| {
            let failing: Vec<&str> = l.failing().map(|r| r.region.as_str()).collect();
            (!failing.is_empty()).then(|| Line {
                what: l.check.clone(),
                detail: format!("failing in {}", failing.join(", ")),
            })
        })
        .collect();
    ctx.insert("regional", &regional);
    let collector = match feed.answered {
        Some(t) if t.elapsed().as_secs() < 30 => None,
        Some(t) => Some(format!(
            "the collector has not answered for {}s: what is shown may be old",
            t.elapsed().as_secs()
        )),
        None => Some("the collector has not answered since the alerter started".into()),
    };
    ctx.insert("collector_trouble", &collector);
    let maintenance: Vec<Line> = feed
        .states
        .maintenance
        .iter()
        .filter(|m| m.ends_us > now_us)
        .map(|m| Line {
            what: m.name.clone(),
            detail: format!(
                "{} to {} ({}), {}",
                time(m.starts_us),
                time(m.ends_us),
                if m.starts_us <= now_us {
                    "in progress".to_owned()
                } else {
                    relative(m.starts_us, now_us)
                },
                if m.checks.is_empty() {
                    "every check".to_owned()
                } else {
                    m.checks.join(", ")
                }
            ),
        })
        .collect();
    ctx.insert("maintenance", &maintenance);
    ctx.insert("title", "Now");
    c.page("now.html", Some(&viewer), ctx)
}

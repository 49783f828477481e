//! Monthly SLA reports per component: availability against the target, downtime, no-data and
//! maintenance minutes, incidents, latency percentiles and the share under the objective, the
//! error budget used. Served as a printable page, CSV and JSON; mailed on a schedule.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use lookout_api::error::ApiError;
use serde::Serialize;
use tokio::sync::Mutex;

use lookout_api::client::{ClientError, Select, Window};

use crate::Shared;
use crate::render::{self, Page};
use crate::text;

mod mail;

pub use mail::{Sent, schedule, send, send_now};

/// A report of a month still running is made again after this; a closed month's after
/// `CLOSED_TTL` (late results, incidents edited by people).
const OPEN_TTL: Duration = Duration::from_secs(60);
const CLOSED_TTL: Duration = Duration::from_secs(600);
/// The months listed on `/reports`.
const LISTED_MONTHS: u32 = 13;

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub component: String,
    pub name: String,
    pub availability: Option<f64>,
    pub availability_text: String,
    /// The check's SLO's; `None` without figures.
    pub target: Option<f64>,
    pub target_text: String,
    pub met: bool,
    /// `✔ yes`, `✖ no` or `– no data`: never the colour alone.
    pub met_text: &'static str,
    pub downtime_minutes: f64,
    pub no_data_minutes: f64,
    pub maintenance_minutes: f64,
    /// Whether maintenance counts in this component's availability (its SLO says).
    pub maintenance_counted: bool,
    pub incidents: usize,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p50_text: String,
    pub p95_text: String,
    pub p99_text: String,
    pub objective_ms: f64,
    pub share_under_objective: Option<f64>,
    pub share_text: String,
    pub error_budget_minutes: f64,
    /// Negative once overspent.
    pub error_budget_remaining_minutes: f64,
    /// Downtime over the budget: 1.0 is all of it.
    pub error_budget_used: Option<f64>,
    pub budget_text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `2026-11`.
    pub month: String,
    pub month_name: String,
    pub period: String,
    pub from: String,
    pub to: String,
    /// The window of the figures: the month, or up to now while it lasts.
    pub from_us: i64,
    pub to_us: i64,
    /// The month is over.
    pub complete: bool,
    /// The targets, in words.
    pub targets: String,
    pub maintenance_rule: String,
    pub rows: Vec<Row>,
}

/// A month's report in its three forms.
pub struct Rendered {
    pub report: Report,
    pub html: Page,
    pub csv: Page,
    pub json: Page,
}

#[derive(Default)]
pub struct Cache {
    months: Mutex<HashMap<String, (Instant, Arc<Rendered>)>>,
}

/// `2026-11` -> its first instant and the next month's.
pub fn month_bounds(month: &str) -> Option<(i64, i64)> {
    let (y, m) = month.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let first = NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1)?;
    let next = first.checked_add_months(chrono::Months::new(1))?;
    let at = |d: NaiveDate| -> Option<i64> {
        Some(
            Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0)?)
                .timestamp_micros(),
        )
    };
    Some((at(first)?, at(next)?))
}

pub fn previous_month(now_us: i64) -> String {
    let now = text::time(now_us).unwrap_or_default();
    let first = NaiveDate::from_ymd_opt(now.year(), now.month(), 1).unwrap_or_default();
    first
        .checked_sub_months(chrono::Months::new(1))
        .unwrap_or(first)
        .format("%Y-%m")
        .to_string()
}

fn month_name(month_start_us: i64) -> String {
    text::time(month_start_us)
        .map(|t| t.format("%B %Y").to_string())
        .unwrap_or_default()
}

/// Reads the collector (one request for every component) and the store for one month. The
/// SLA math is the collector's, by each check's SLO.
pub async fn compute(
    shared: &Shared,
    month: &str,
    now: i64,
) -> Result<Option<Report>, ClientError> {
    let Some((from, next)) = month_bounds(month) else {
        return Ok(None);
    };
    if from > now {
        return Ok(None);
    }
    let to = next.min(now);
    let settings = &shared.settings();
    let checks = settings.checks();
    let figures = if checks.is_empty() {
        Default::default()
    } else {
        shared
            .client
            .figures_all(
                Window::Range {
                    from_us: from,
                    to_us: to,
                },
                &Select {
                    checks: Some(checks),
                    by_region: false,
                },
            )
            .await?
    };
    let incidents = shared.store.incidents().unwrap_or_default();
    let mut rows = Vec::new();
    for c in settings.components() {
        let f = figures.check(&c.check);
        let availability = f.and_then(|f| f.availability);
        let target = f.map(|f| f.target);
        let latency = f.map(|f| f.latency.clone()).unwrap_or_default();
        let budget_s = f.map_or(0.0, |f| f.error_budget_seconds);
        let down_s = f.map_or(0.0, |f| f.down_seconds);
        let used = (budget_s > 0.0).then(|| down_s / budget_s);
        let met = availability.zip(target).is_some_and(|(a, t)| a >= t);
        let objective_ms = latency.objective_ms;
        let ms = |v: Option<f64>| v.map(text::millis).unwrap_or_else(|| "–".into());
        rows.push(Row {
            component: c.id.clone(),
            name: c.name.clone(),
            availability,
            availability_text: availability
                .map(text::percent)
                .unwrap_or_else(|| "no data".into()),
            target,
            target_text: target.map(text::percent).unwrap_or_else(|| "–".into()),
            met,
            met_text: match availability {
                None => "– no data",
                Some(_) if met => "✔ yes",
                Some(_) => "✖ no",
            },
            downtime_minutes: down_s / 60.0,
            no_data_minutes: f.map_or(0.0, |f| f.no_data_seconds) / 60.0,
            maintenance_minutes: f.map_or(0.0, |f| f.maintenance_seconds) / 60.0,
            maintenance_counted: f.is_some_and(|f| f.slo.maintenance_in_sla()),
            incidents: incidents
                .iter()
                .filter(|i| i.components.contains(&c.id))
                .filter(|i| i.started_us < to && i.resolved_us.is_none_or(|r| r >= from))
                .count(),
            p50_text: ms(latency.p50_ms),
            p95_text: ms(latency.p95_ms),
            p99_text: ms(latency.p99_ms),
            p50_ms: latency.p50_ms,
            p95_ms: latency.p95_ms,
            p99_ms: latency.p99_ms,
            objective_ms,
            share_under_objective: latency.share_under_objective,
            share_text: latency
                .share_under_objective
                .map(|s| format!("{:.2}% under {}", s * 100.0, text::millis(objective_ms)))
                .unwrap_or_else(|| "–".into()),
            error_budget_minutes: budget_s / 60.0,
            error_budget_remaining_minutes: f.map_or(0.0, |f| f.error_budget_remaining_seconds)
                / 60.0,
            error_budget_used: used,
            budget_text: used
                .map(|u| format!("{:.1}%", u * 100.0))
                .unwrap_or_else(|| "–".into()),
        });
    }
    Ok(Some(Report {
        month: month.to_owned(),
        month_name: month_name(from),
        period: format!("{} to {}", text::clock(from), text::clock(to)),
        from: text::rfc3339(from),
        to: text::rfc3339(to),
        from_us: from,
        to_us: to,
        complete: next <= now,
        targets: targets_text(&rows),
        maintenance_rule: maintenance_rule(&rows),
        rows,
    }))
}

/// `99.99% availability per component`, or the targets' range when they differ.
fn targets_text(rows: &[Row]) -> String {
    let mut shown: Vec<&str> = rows
        .iter()
        .filter(|r| r.target.is_some())
        .map(|r| r.target_text.as_str())
        .collect();
    shown.dedup();
    match shown.as_slice() {
        [] => "Targets: no data yet.".into(),
        [one] => format!("Target: {one} availability per component."),
        _ => "Targets: each component's own, as shown.".into(),
    }
}

/// How maintenance counts, in words, as the components' SLOs say.
fn maintenance_rule(rows: &[Row]) -> String {
    let counted: Vec<&str> = rows
        .iter()
        .filter(|r| r.maintenance_counted)
        .map(|r| r.name.as_str())
        .collect();
    if counted.is_empty() {
        "Scheduled maintenance is left out of availability, as the contract says.".into()
    } else if counted.len() == rows.len() {
        "Scheduled maintenance counts as any other time.".into()
    } else {
        format!(
            "Scheduled maintenance is left out of availability, except for {}, where it counts as any other time.",
            text::and_list(&counted.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>())
        )
    }
}

/// RFC 4180: quoted where it must be.
fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_owned()
    }
}

pub fn csv(r: &Report) -> String {
    let opt =
        |v: Option<f64>, places: usize| v.map(|x| format!("{x:.places$}")).unwrap_or_default();
    let mut out = String::from(
        "month,component,name,availability,target,target_met,downtime_minutes,no_data_minutes,maintenance_minutes,incidents,p50_ms,p95_ms,p99_ms,objective_ms,share_under_objective,error_budget_minutes,error_budget_used\r\n",
    );
    for row in &r.rows {
        let fields = [
            r.month.clone(),
            row.component.clone(),
            row.name.clone(),
            opt(row.availability, 6),
            row.target.map(|t| t.to_string()).unwrap_or_default(),
            row.met.to_string(),
            format!("{:.2}", row.downtime_minutes),
            format!("{:.2}", row.no_data_minutes),
            format!("{:.2}", row.maintenance_minutes),
            row.incidents.to_string(),
            opt(row.p50_ms, 1),
            opt(row.p95_ms, 1),
            opt(row.p99_ms, 1),
            format!("{:.0}", row.objective_ms),
            opt(row.share_under_objective, 6),
            format!("{:.2}", row.error_budget_minutes),
            opt(row.error_budget_used, 4),
        ];
        out.push_str(
            &fields
                .iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    out
}

fn render(shared: &Shared, report: Report, now: i64) -> Result<Rendered, render::RenderError> {
    let snap = shared.bare_snapshot(now);
    let settings = shared.settings();
    let v = render::views::Views::new(&settings, &snap);
    let mut ctx = v.common();
    ctx.insert("r", &report);
    let html = shared.templates.render("report.html", &ctx)?;
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
    Ok(Rendered {
        html: Page::new(html, render::HTML),
        csv: Page::new(csv(&report), "text/csv; charset=utf-8"),
        json: Page::new(json, render::JSON),
        report,
    })
}

/// The month's report, from the cache while it is fresh.
pub async fn rendered(shared: &Shared, month: &str) -> Result<Option<Arc<Rendered>>, ApiError> {
    let now = crate::refresh::now_us();
    let mut cache = shared.reports.months.lock().await;
    if let Some((at, r)) = cache.get(month) {
        let ttl = if r.report.complete {
            CLOSED_TTL
        } else {
            OPEN_TTL
        };
        if at.elapsed() < ttl {
            return Ok(Some(r.clone()));
        }
    }
    let report = match compute(shared, month, now).await {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(None),
        Err(e) => {
            tracing::warn!(error = %e, month, "status page: report unavailable");
            // The last one made, however old, beats none.
            return match cache.get(month) {
                Some((_, r)) => Ok(Some(r.clone())),
                None => Err(ApiError::Unavailable(
                    "the report cannot be made right now; try again in a minute".into(),
                )),
            };
        }
    };
    let r = Arc::new(render(shared, report, now).map_err(|e| {
        tracing::error!(error = %e, "status page: report render failed");
        ApiError::Internal("the report could not be rendered".into())
    })?);
    cache.insert(month.to_owned(), (Instant::now(), r.clone()));
    Ok(Some(r))
}

/// `GET /reports/2026-11`, `.csv`, `.json`.
pub async fn get(
    State(s): State<Arc<Shared>>,
    axum::extract::Path(name): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let (month, form) = match name.rsplit_once('.') {
        Some((m, "csv")) => (m, "csv"),
        Some((m, "json")) => (m, "json"),
        Some(_) => ("", ""),
        None => (name.as_str(), "html"),
    };
    let not_found = |s: &Shared| match s.site.load().not_found() {
        Some(p) => crate::server::respond(s, &p, &headers, "public, max-age=10", false),
        None => (StatusCode::NOT_FOUND, "Not found").into_response(),
    };
    match rendered(&s, month).await {
        Ok(Some(r)) => {
            let page = match form {
                "csv" => &r.csv,
                "json" => &r.json,
                _ => &r.html,
            };
            s.metrics.request("report").inc();
            crate::server::respond(&s, page, &headers, "public, max-age=60", form != "html")
        }
        Ok(None) => not_found(&s),
        Err(e) => {
            if form == "html" {
                (StatusCode::SERVICE_UNAVAILABLE, axum::response::Html(format!(
                    "<!doctype html><meta charset=utf-8><title>Report unavailable</title><p>{e}</p><p><a href=\"/\">Current status</a></p>"
                )))
                    .into_response()
            } else {
                e.into_response()
            }
        }
    }
}

/// `GET /reports`: the last months.
pub async fn index(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let now = crate::refresh::now_us();
    let t = text::time(now).unwrap_or_default();
    let first = NaiveDate::from_ymd_opt(t.year(), t.month(), 1).unwrap_or_default();
    let months: Vec<serde_json::Value> = (0..LISTED_MONTHS)
        .filter_map(|back| first.checked_sub_months(chrono::Months::new(back)))
        .map(|d| serde_json::json!({"id": d.format("%Y-%m").to_string(), "name": d.format("%B %Y").to_string()}))
        .collect();
    let snap = s.bare_snapshot(now);
    let settings = s.settings();
    let v = render::views::Views::new(&settings, &snap);
    let mut ctx = v.common();
    ctx.insert("months", &months);
    match s.templates.render("reports.html", &ctx) {
        Ok(html) => crate::server::respond(
            &s,
            &Page::new(html, render::HTML),
            &headers,
            "public, max-age=60",
            false,
        ),
        Err(e) => {
            tracing::error!(error = %e, "status page: reports index render failed");
            ApiError::Internal("the page could not be rendered".into()).into_response()
        }
    }
}

#[cfg(test)]
mod tests;

//! Mailing a month's report to partners: now, through the admin API, or on the schedule. The
//! SMTP settings and transport are `lookout_mail`'s, as the alerter's email notifier uses them.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use chrono::Utc;
use lettre::AsyncTransport;
use lettre::message::{Attachment, Mailbox, Message, MultiPart, SinglePart, header::ContentType};
use lookout_api::error::{ApiError, ApiJson, ApiPath};
use serde::Serialize;

use super::{Report, month_bounds, previous_month, rendered};
use crate::Shared;

#[derive(Serialize)]
pub struct Sent {
    month: String,
    recipients: usize,
}

/// `POST /api/v1/reports/{month}/send` (admin): mail the month's report now.
pub async fn send_now(
    State(s): State<Arc<Shared>>,
    ApiPath(month): ApiPath<String>,
) -> Result<ApiJson<Sent>, ApiError> {
    if month_bounds(&month).is_none() {
        return Err(ApiError::BadRequest(format!(
            "{month:?} is not a month; write YYYY-MM, e.g. 2026-11"
        )));
    }
    let recipients = send(&s, &month).await?;
    Ok(ApiJson(Sent { month, recipients }))
}

/// Mails the month's report to the configured partners; how many were sent to.
pub async fn send(s: &Shared, month: &str) -> Result<usize, ApiError> {
    let Some(reports) = &s.settings().reports else {
        return Err(ApiError::Conflict(
            "reports are not configured: add status_page.reports to the config".into(),
        ));
    };
    let r = rendered(s, month)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no report for {month}: it has not begun")))?;
    let email = &reports.email;
    let from: Mailbox = email
        .from
        .trim()
        .parse()
        .map_err(|e| ApiError::Internal(format!("reports: `from` is not an address: {e}")))?;
    let mut builder = Message::builder().from(from).subject(format!(
        "{}: SLA report for {}",
        s.settings().title,
        r.report.month_name
    ));
    if email.to.is_empty() {
        return Err(ApiError::Conflict("reports: no recipients in `to`".into()));
    }
    for to in &email.to {
        builder = builder.to(lookout_mail::mailbox(to).map_err(ApiError::Internal)?);
    }
    let link = s
        .settings()
        .public_url
        .as_ref()
        .map(|u| {
            format!(
                "{}reports/{}",
                u.as_str().trim_end_matches('/').to_owned() + "/",
                r.report.month
            )
        })
        .unwrap_or_default();
    let message = builder
        .multipart(
            MultiPart::mixed()
                .multipart(
                    MultiPart::alternative()
                        .singlepart(SinglePart::plain(plain(&r.report, &link)))
                        .singlepart(SinglePart::html(
                            String::from_utf8_lossy(&r.html.body).into_owned(),
                        )),
                )
                .singlepart(
                    Attachment::new(format!("sla-report-{}.csv", r.report.month)).body(
                        r.csv.body.to_vec(),
                        ContentType::parse("text/csv").unwrap_or(ContentType::TEXT_PLAIN),
                    ),
                ),
        )
        .map_err(|e| ApiError::Internal(format!("reports: the message cannot be built: {e}")))?;
    let transport = lookout_mail::transport(email)
        .map_err(ApiError::Internal)?
        .timeout(Some(email.timeout))
        .build::<lettre::Tokio1Executor>();
    let sent = tokio::time::timeout(email.timeout, transport.send(message)).await;
    let server = format!("{}:{}", email.host, email.port);
    match sent {
        Ok(Ok(_)) => {
            s.metrics.reports_sent.inc();
            let _ = s.store.mark_report_sent(month, crate::refresh::now_us());
            Ok(email.to.len())
        }
        Ok(Err(e)) => {
            s.metrics.report_failures.inc();
            let password = email
                .password
                .as_ref()
                .map(|p| p.expose().to_owned())
                .unwrap_or_default();
            let mut message = format!("reports: {server}: {e}");
            if !password.is_empty() {
                message = message.replace(&password, "[redacted]");
            }
            Err(ApiError::BadGateway(message))
        }
        Err(_) => {
            s.metrics.report_failures.inc();
            Err(ApiError::GatewayTimeout(format!(
                "reports: {server} gave no answer in time"
            )))
        }
    }
}

/// The mail's text part: the table, readable in any client.
fn plain(r: &Report, link: &str) -> String {
    let mut out = format!(
        "SLA report for {} ({}).\n{} {}\n\n",
        r.month_name, r.period, r.targets, r.maintenance_rule
    );
    for row in &r.rows {
        out.push_str(&format!(
            "{}: {} against {} ({}), {:.1} min down, {:.1} min without data, {} incident(s), p95 {}, {}, error budget used {}\n",
            row.name,
            row.availability_text,
            row.target_text,
            if row.met { "target met" } else if row.availability.is_none() { "no data" } else { "TARGET MISSED" },
            row.downtime_minutes,
            row.no_data_minutes,
            row.incidents,
            row.p95_text,
            row.share_text,
            row.budget_text,
        ));
    }
    if !link.is_empty() {
        out.push_str(&format!("\nThe report online: {link}\n"));
    }
    out.push_str("The CSV attached holds the same figures.\n");
    out
}

/// How often a replica looks again at a report another replica has claimed.
const HELD_POLL: Duration = Duration::from_secs(1);

/// Sends last month's report at each time of the schedule.
pub async fn schedule(shared: Arc<Shared>) {
    let Some(reports) = &shared.settings().reports else {
        return;
    };
    loop {
        let Some(next) = reports.schedule.next_after(Utc::now()) else {
            tracing::warn!("status page: the report schedule has no next time; no more reports");
            return;
        };
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
        let month = previous_month(next.timestamp_micros());
        // On replicas, each scheduled send is claimed: one replica mails it.
        let key = lookout_cluster::claim_key(&["report", &month, &next.timestamp().to_string()]);
        let at = next.timestamp();
        let mut delay = Duration::from_secs(60);
        // A relay that is away is tried again for a while; the month is not skipped silently.
        let mut attempts = 0;
        let settings = shared.settings();
        while attempts < 6 {
            let claim = match &settings.claims {
                None => None,
                Some(claims) => match claims.claim(&key, crate::refresh::now_us()).await {
                    Ok(lookout_cluster::Claim::Won(revision)) => Some((claims, revision)),
                    Ok(lookout_cluster::Claim::Done) => {
                        tracing::info!(
                            month,
                            at,
                            "status page: SLA report sent by another replica"
                        );
                        break;
                    }
                    // Another replica is sending it: look again soon, to see it done or,
                    // should that replica die, to take the claim over once it lapses.
                    Ok(lookout_cluster::Claim::Held) => {
                        tokio::time::sleep(HELD_POLL).await;
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, month, "status page: cannot claim the SLA report; trying again");
                        attempts += 1;
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                },
            };
            match send(&shared, &month).await {
                Ok(n) => {
                    tracing::info!(month, at, recipients = n, "status page: SLA report sent");
                    if let Some((claims, revision)) = claim
                        && !claims.done(&key, revision).await.unwrap_or(false)
                    {
                        tracing::warn!(
                            month,
                            "status page: SLA report sent, but its claim was taken over meanwhile; it may be mailed twice"
                        );
                    }
                    break;
                }
                Err(e) => {
                    if let Some((claims, revision)) = claim {
                        let _ = claims.release(&key, revision).await;
                    }
                    tracing::error!(error = %e, month, "status page: SLA report not sent; trying again");
                    attempts += 1;
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
    }
}

//! Heartbeat checks (`lookout_model::heartbeat`) in the collector. `POST
//! /api/v1/heartbeats/{check}` turns a job's report into a result of the check's one region;
//! the watch turns a report missing past its deadline, or a failure reported, into failing
//! results, said again every few seconds while it lasts. Stored like an agent's results, they
//! go through the same live state, rollups, alerts, status page and reports.
//!
//! What the watch adds is decided from the region's latest result alone, and the result it
//! makes is named by when it stands for (agent `heartbeat-held`, its start as its sequence
//! number), so every replica of a cluster, and a collector after a restart, makes the same one
//! and the store keeps it once.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use lookout_api::{ApiError, ApiPath, ApiResult};
use lookout_model::heartbeat::{self, Heartbeat, Report, ReportStatus};
use lookout_model::probe::{Failure, FailureKind, Outcome, ProbeResult, ResultBatch, Verdict};

use crate::AppState;

/// The longest message a report may carry is kept to this many characters.
const MAX_MESSAGE: usize = 1_000;

pub(crate) async fn post_heartbeat(
    State(s): State<Arc<AppState>>,
    ApiPath(check): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let Some(hb) = s.known().get(&check).and_then(|i| i.heartbeat.clone()) else {
        return Err(ApiError::NotFound(format!(
            "no heartbeat check named {check:?}"
        )));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        None => {
            return Err(ApiError::Unauthorized(
                "send the heartbeat's own token as `Authorization: Bearer <token>`".into(),
            ));
        }
        Some(p) if !hb.token.matches(p) => {
            return Err(ApiError::Forbidden(
                "the token was not accepted for this heartbeat".into(),
            ));
        }
        Some(_) => {}
    }
    let report: Report = if body.iter().all(u8::is_ascii_whitespace) {
        Report::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::BadRequest(format!(
                "the body is not a heartbeat report ({e}): send nothing, or {{\"status\": \"ok\" or \"fail\", \"message\": \"...\"}}"
            ))
        })?
    };
    let now = chrono::Utc::now().timestamp_micros();
    let result = reported(&check, &report, now);
    let status = report.status;
    let body = serde_json::to_vec(&ResultBatch {
        results: vec![result.clone()],
    })
    .map_err(|e| ApiError::Internal(format!("cannot encode the report: {e}")))?;
    if let Err(refused) = crate::http::take(&s, vec![result], body.into(), now).await {
        return Ok(refused);
    }
    let due = hb.deadline_us(now);
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({
            "check": check,
            "status": status,
            "received_at_us": now,
            // Past this without another report, the check is down.
            "due_by_us": due,
        })),
    )
        .into_response())
}

/// A report as its check's result.
fn reported(check: &str, report: &Report, now: i64) -> ProbeResult {
    let message = report.message.as_deref().map(|m| {
        let mut m: String = m.chars().take(MAX_MESSAGE).collect();
        if m.len() < report.message.as_deref().map_or(0, str::len) {
            m.push('…');
        }
        m
    });
    let outcome = match report.status {
        ReportStatus::Ok => Outcome::Ok,
        ReportStatus::Fail => Outcome::Fail(Failure {
            kind: FailureKind::Assertion,
            message: match message {
                Some(m) => format!("the job reported a failure: {m}"),
                None => "the job reported a failure".into(),
            },
            step: None,
        }),
    };
    result(check, heartbeat::REPORTS, now, outcome)
}

fn result(check: &str, agent: &str, at_us: i64, outcome: Outcome) -> ProbeResult {
    ProbeResult {
        check: check.to_owned(),
        region: heartbeat::REGION.to_owned(),
        agent: agent.to_owned(),
        // A report a microsecond after another is a new one; the same instant is a replay.
        seq: u64::try_from(at_us).unwrap_or(0),
        started_at_us: at_us,
        outcome,
        // A job's run time is not a latency the check promises: none is counted.
        duration_us: 0,
        steps: Vec::new(),
        confirmation: false,
    }
}

/// What the watch must add at `now`, given the region's latest result `(start, verdict,
/// reason)`: a failure at the deadline of a report that passed, or the failure again
/// `Heartbeat::repeat_us` after the latest one. `oldest_us`: results before it are no longer taken (a
/// collector back after a long time says the failure from now).
pub(crate) fn due(
    check: &str,
    hb: &Heartbeat,
    latest: Option<(i64, Verdict, Option<String>)>,
    now: i64,
    oldest_us: i64,
) -> Option<ProbeResult> {
    let (at, verdict, reason) = latest?;
    let (at, message) = if verdict.is_up() {
        let deadline = hb.deadline_us(at);
        if now < deadline {
            return None;
        }
        let since = chrono::DateTime::from_timestamp_micros(at)
            .map_or_else(|| at.to_string(), |t| t.to_rfc3339());
        let message = format!(
            "no heartbeat since {since} (one is due every {}, with {} of grace)",
            humantime::format_duration(hb.period),
            humantime::format_duration(hb.grace)
        );
        (deadline, message)
    } else {
        let every = hb.repeat_us();
        let repeats = (now - at) / every;
        if repeats < 1 {
            return None;
        }
        let message = reason.unwrap_or_else(|| "the heartbeat is failing".into());
        (at + repeats * every, message)
    };
    let at = if at < oldest_us { now } else { at };
    Some(result(
        check,
        heartbeat::HELD,
        at,
        Outcome::Fail(Failure {
            kind: FailureKind::Timeout,
            message,
            step: None,
        }),
    ))
}

/// Every second, for every heartbeat check, what `due` says is stored.
pub(crate) async fn watch(s: Arc<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = chrono::Utc::now().timestamp_micros();
        // A minute inside the raw retention: what is stored is still taken by the rollups.
        let oldest = now - s.settings.rollup.raw_retention_us + 60_000_000;
        let known = s.known();
        for (check, info) in known.iter() {
            let Some(hb) = &info.heartbeat else { continue };
            let latest = s.live.latest(check, heartbeat::REGION);
            let Some(r) = due(check, hb, latest, now, oldest) else {
                continue;
            };
            let body = match serde_json::to_vec(&ResultBatch {
                results: vec![r.clone()],
            }) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(%check, error = %e, "heartbeat: cannot encode a missed heartbeat");
                    continue;
                }
            };
            // Not taken now (a store or log unavailable): the next tick makes it again.
            let _ = crate::http::take(&s, vec![r], body.into(), now).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_model::secret::Secret;

    const S: i64 = 1_000_000;
    const T0: i64 = 1_800_000_000 * S;

    fn hb() -> Heartbeat {
        Heartbeat {
            period: Duration::from_secs(60),
            grace: Duration::from_secs(30),
            token: Secret::new("t"),
        }
    }

    #[test]
    fn a_report_past_its_deadline_is_missed_from_the_deadline_on() {
        let latest = Some((T0, Verdict::Ok, None));
        assert_eq!(due("job", &hb(), latest.clone(), T0 + 89 * S, 0), None);
        let r = due("job", &hb(), latest, T0 + 95 * S, 0).unwrap();
        assert_eq!(
            (r.started_at_us, r.seq),
            (T0 + 90 * S, (T0 + 90 * S) as u64)
        );
        assert_eq!(r.agent, heartbeat::HELD);
        match &r.outcome {
            Outcome::Fail(f) => assert!(
                f.message.starts_with("no heartbeat since 2027-01-15T08:00:00+00:00 (one is due every 1m, with 30s of grace)"),
                "{f:?}"
            ),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn a_failure_is_said_again_every_few_seconds_at_instants_any_replica_agrees_on() {
        let latest = Some((T0, Verdict::Fail, Some("the job reported a failure".into())));
        assert_eq!(due("job", &hb(), latest.clone(), T0 + 4 * S, 0), None);
        let a = due("job", &hb(), latest.clone(), T0 + 5 * S, 0).unwrap();
        let b = due("job", &hb(), latest, T0 + 9 * S, 0).unwrap();
        assert_eq!(a.started_at_us, T0 + 5 * S);
        assert_eq!((a.seq, a.outcome.clone()), (b.seq, b.outcome));
        assert_eq!(
            due("job", &hb(), None, T0, 0),
            None,
            "never reported: no data"
        );
    }

    #[test]
    fn long_missed_results_are_said_from_now() {
        let latest = Some((T0, Verdict::Ok, None));
        let now = T0 + 90 * 86_400 * S;
        let r = due("job", &hb(), latest, now, now - 86_400 * S).unwrap();
        assert_eq!(r.started_at_us, now);
    }

    #[test]
    fn reports_are_results_of_the_one_region() {
        let r = reported(
            "job",
            &Report {
                status: ReportStatus::Fail,
                message: Some("x".repeat(5_000)),
            },
            T0,
        );
        assert_eq!((r.region.as_str(), r.duration_us), (heartbeat::REGION, 0));
        match r.outcome {
            Outcome::Fail(f) => assert!(f.message.ends_with('…') && f.message.len() < 1_100),
            o => panic!("{o:?}"),
        }
    }
}

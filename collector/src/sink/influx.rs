//! The InfluxDB v2 sink: every stored result becomes one point written to `/api/v2/write`.
//!
//! This is the only file that uses the `influxdb2` crate, whose client brings its own, older
//! HTTP and TLS stack (reqwest 0.11, rustls 0.21); nothing else may depend on it, so that
//! building without the `influxdb` feature drops that stack whole.
//!
//! A point: measurement `probe`; tags `check`, `region`, `agent`, `outcome` (`ok`, `fail`) and,
//! on a failure, `reason` (the failure kind); fields in integer microseconds, exact and named
//! with their unit as in the result itself: `duration_us` (the journey) and `dns_us`,
//! `connect_us`, `tls_us`, `ttfb_us`, `transfer_us` (each summed over the steps); `bytes` (body
//! bytes over the steps), `status` (the last step's HTTP status, absent when it got none),
//! `seq`; the timestamp is the run's start, written with microsecond precision.

use std::sync::Arc;

use influxdb2::api::write::TimestampPrecision;
use influxdb2::models::{DataPoint, WriteDataPoint};
use influxdb2::{ClientBuilder, RequestError};
use lookout_model::probe::{Outcome, ProbeResult};
use tokio::task::JoinHandle;

use super::queue::{self, Queue, WriteError};
use super::{InfluxConfig, ResultSink, SinkError, SinkStats};

const NAME: &str = "influxdb";
const MEASUREMENT: &str = "probe";
/// The most of a server's error body kept in a log line.
const MAX_ERROR_TEXT: usize = 300;

/// Points are held as encoded lines: smaller than the results they came from, and ready to
/// send again as they are when a write is retried.
pub struct InfluxSink {
    queue: Arc<Queue<Vec<u8>>>,
    task: JoinHandle<()>,
}

impl InfluxSink {
    /// Checks `config` and starts delivering on the current tokio runtime.
    pub fn start(config: InfluxConfig) -> Result<InfluxSink, SinkError> {
        config.check()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| SinkError::Start {
            sink: NAME,
            message: format!("needs a tokio runtime ({e})"),
        })?;
        // `check` parsed the URL as the client will, so the client's own parse cannot panic.
        let client = ClientBuilder::new(&config.url, &config.org, config.token.expose())
            .build()
            .map_err(|e| SinkError::Start {
                sink: NAME,
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        let queue = Arc::new(Queue::new(config.delivery.max_buffered));
        let org: Arc<str> = config.org.into();
        let bucket: Arc<str> = config.bucket.into();
        let write = move |batch: &[Vec<u8>]| {
            let (client, org, bucket) = (client.clone(), org.clone(), bucket.clone());
            let body = batch.concat();
            async move {
                client
                    .write_line_protocol_with_precision(
                        &org,
                        &bucket,
                        body,
                        TimestampPrecision::Microseconds,
                    )
                    .await
                    .map_err(classify)
            }
        };
        let task = runtime.spawn(queue::deliver(NAME, queue.clone(), config.delivery, write));
        tracing::info!(sink = NAME, url = %config.url, "sink started");
        Ok(InfluxSink { queue, task })
    }
}

impl Drop for InfluxSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ResultSink for InfluxSink {
    fn name(&self) -> &'static str {
        NAME
    }

    fn offer(&self, results: &[ProbeResult]) {
        // When the queue is full, encoding would be wasted: count the drop and return.
        let room = self.queue.room();
        let (fit, over) = results.split_at(room.min(results.len()));
        self.queue.drop_count(over.len());
        let lines: Vec<Vec<u8>> = fit.iter().filter_map(line).collect();
        self.queue.drop_count(fit.len() - lines.len());
        self.queue.push(lines);
    }

    fn stats(&self) -> SinkStats {
        self.queue.stats()
    }
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// One result as a line of InfluxDB line protocol (escaping is the crate's).
fn line(r: &ProbeResult) -> Option<Vec<u8>> {
    let mut p = DataPoint::builder(MEASUREMENT)
        .tag("check", r.check.as_str())
        .tag("region", r.region.as_str())
        .tag("agent", r.agent.as_str())
        .timestamp(r.started_at_us);
    p = match &r.outcome {
        Outcome::Ok => p.tag("outcome", "ok"),
        Outcome::Degraded(_) => p.tag("outcome", "degraded"),
        Outcome::Fail(f) => p.tag("outcome", "fail").tag("reason", f.kind.as_str()),
    };
    let mut phases = [0u64; 5];
    for step in &r.steps {
        for (sum, (_, us)) in phases.iter_mut().zip(step.phases.by_name()) {
            *sum = sum.saturating_add(us);
        }
    }
    let names = lookout_model::probe::PHASES;
    for (name, sum) in names.iter().zip(phases) {
        p = p.field(format!("{name}_us"), int(sum));
    }
    let bytes = r.steps.iter().map(|s| s.bytes).fold(0, u64::saturating_add);
    p = p
        .field("duration_us", int(r.duration_us))
        .field("bytes", int(bytes))
        .field("seq", int(r.seq));
    if let Some(status) = r.steps.last().and_then(|s| s.status) {
        p = p.field("status", i64::from(status));
    }
    let point = p.build().ok()?;
    let mut out = Vec::with_capacity(256);
    point.write_data_point_to(&mut out).ok()?;
    Some(out)
}

/// Which failures sending the batch again may cure. The token travels in a header and is never
/// part of these messages.
fn classify(e: RequestError) -> WriteError {
    match e {
        RequestError::Http { status, text } => by_status(status.as_u16(), &text),
        other => WriteError::Transient(other.to_string()),
    }
}

fn by_status(status: u16, text: &str) -> WriteError {
    let text: String = text.chars().take(MAX_ERROR_TEXT).collect();
    let message = format!("HTTP {status}: {text}");
    // 400 is a malformed batch and 413 one too large for the server: neither changes on a
    // resend. Anything else (401, 404, 429, 5xx) may be put right on the server's side.
    if status == 400 || status == 413 {
        WriteError::Rejected(message)
    } else {
        WriteError::Transient(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_model::probe::{Failure, FailureKind, Phases, StepResult};

    fn step(status: Option<u16>, bytes: u64, base: u64) -> StepResult {
        StepResult {
            name: "s".into(),
            status,
            bytes,
            phases: Phases {
                dns_us: base + 1,
                connect_us: base + 2,
                tls_us: base + 3,
                ttfb_us: base + 4,
                transfer_us: base + 5,
                total_us: base + 15,
            },
            cert_days_left: None,
            reused_connection: false,
        }
    }

    fn result(outcome: Outcome, steps: Vec<StepResult>) -> ProbeResult {
        ProbeResult {
            check: "artist view".into(),
            region: "eu-west".into(),
            agent: "eu-west-1".into(),
            seq: 42,
            started_at_us: 1_700_000_000_123_456,
            outcome,
            duration_us: 98_765,
            steps,
            confirmation: false,
        }
    }

    fn text(r: &ProbeResult) -> String {
        String::from_utf8(line(r).unwrap()).unwrap()
    }

    #[test]
    fn an_ok_result_is_one_point_with_phases_summed_over_the_steps() {
        let r = result(
            Outcome::Ok,
            vec![step(Some(302), 10, 100), step(Some(200), 2_000, 1_000)],
        );
        assert_eq!(
            text(&r),
            "probe,agent=eu-west-1,check=artist\\ view,outcome=ok,region=eu-west \
             bytes=2010i,connect_us=1104i,dns_us=1102i,duration_us=98765i,seq=42i,status=200i,\
             tls_us=1106i,transfer_us=1110i,ttfb_us=1108i 1700000000123456\n"
        );
    }

    #[test]
    fn a_failure_carries_its_kind_and_no_status_when_the_last_step_got_none() {
        let r = result(
            Outcome::Fail(Failure {
                kind: FailureKind::BodyTooLarge,
                message: "secret-free but long, with, commas".into(),
                step: Some(1),
            }),
            vec![step(Some(200), 5, 0), step(None, 0, 0)],
        );
        let t = text(&r);
        assert!(
            t.starts_with(
                "probe,agent=eu-west-1,check=artist\\ view,outcome=fail,reason=body_too_large,region=eu-west "
            ),
            "{t}"
        );
        assert!(!t.contains("status="), "{t}");
        assert!(!t.contains("commas"), "the message is not a tag: {t}");
        let none = result(
            Outcome::Fail(Failure {
                kind: FailureKind::Refused,
                message: String::new(),
                step: None,
            }),
            vec![],
        );
        assert!(
            text(&none)
                .contains(" bytes=0i,connect_us=0i,dns_us=0i,duration_us=98765i,seq=42i,tls_us=0i"),
            "{}",
            text(&none)
        );
    }

    #[test]
    fn only_malformed_or_oversized_batches_are_given_up() {
        let long = "x".repeat(1000);
        assert!(matches!(by_status(400, &long), WriteError::Rejected(m) if m.len() < 400));
        assert!(matches!(by_status(413, ""), WriteError::Rejected(_)));
        for code in [401, 403, 404, 429, 500, 503] {
            assert!(
                matches!(by_status(code, ""), WriteError::Transient(_)),
                "{code}"
            );
        }
    }
}

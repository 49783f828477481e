//! Probe results: what one run of one check by one agent saw. The contract between the probe
//! agents and the collector (DESIGN.md, "Probe result").

use serde::{Deserialize, Serialize};

/// Durations are carried as microseconds: exact in JSON, and finer than any phase we time.
pub type Micros = u64;

/// One run of one check by one agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeResult {
    pub check: String,
    pub region: String,
    pub agent: String,
    /// Per agent, strictly increasing; ingest is idempotent on `(agent, seq)`.
    pub seq: u64,
    /// When the run started, UTC, in microseconds since the Unix epoch.
    pub started_at_us: i64,
    pub outcome: Outcome,
    /// The whole journey, on a monotonic clock.
    pub duration_us: Micros,
    pub steps: Vec<StepResult>,
    /// A run asked for by the collector to confirm (or rule out) a failure seen elsewhere.
    #[serde(default)]
    pub confirmation: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    /// Passed, but not as a user wants it (a stream delivered slower than 1.5x real time
    /// plays, but would stutter on a worse day): up for availability, against the latency
    /// SLI, "degraded performance" on the status page, a WARN in the alerter.
    Degraded(Degradation),
    Fail(Failure),
}

impl Outcome {
    /// Passed, and as a user wants it.
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok)
    }

    /// Passed, degraded or not: what availability counts.
    pub fn is_up(&self) -> bool {
        self.verdict().is_up()
    }

    pub fn verdict(&self) -> Verdict {
        match self {
            Outcome::Ok => Verdict::Ok,
            Outcome::Degraded(_) => Verdict::Degraded,
            Outcome::Fail(_) => Verdict::Fail,
        }
    }
}

/// An outcome without its reason: what the SLA math, the latency SLI and the live state keep
/// of a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Ok,
    Degraded,
    Fail,
}

impl Verdict {
    /// Counted up for availability.
    pub fn is_up(self) -> bool {
        self != Verdict::Fail
    }

    /// The latency the SLI counts for a run of `duration_us` against `objective_us`: a failed
    /// run none; a degraded one no less than the first value the histograms do not count as
    /// under the objective, so that it counts against the SLI however fast it was, while its
    /// percentiles stay near the objective rather than at an arbitrary ceiling.
    pub fn counted_latency_us(self, duration_us: u64, objective_us: i64) -> Option<u64> {
        match self {
            Verdict::Ok => Some(duration_us),
            Verdict::Degraded => {
                Some(duration_us.max(crate::latency::first_not_under(objective_us)))
            }
            Verdict::Fail => None,
        }
    }
}

/// Why a run that passed is degraded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Degradation {
    pub message: String,
    /// The step that was degraded (0-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
}

/// Why a run failed: a machine-readable kind and a message a person can act on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
    /// The step that failed (0-based), when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The name did not resolve.
    Dns,
    /// The connection was refused or reset before a response.
    Refused,
    /// TCP connect did not complete.
    Connect,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// A phase took longer than the time left; the message names the phase.
    Timeout,
    /// The server broke HTTP (malformed response, closed mid-body).
    Protocol,
    /// An assertion did not hold; the message says expected and got.
    Assertion,
    /// A capture found nothing to capture.
    Capture,
    /// Too many redirects, or a loop.
    Redirect,
    /// The body was larger than the check allows to read.
    BodyTooLarge,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Dns => "dns",
            FailureKind::Refused => "refused",
            FailureKind::Connect => "connect",
            FailureKind::Tls => "tls",
            FailureKind::Timeout => "timeout",
            FailureKind::Protocol => "protocol",
            FailureKind::Assertion => "assertion",
            FailureKind::Capture => "capture",
            FailureKind::Redirect => "redirect",
            FailureKind::BodyTooLarge => "body_too_large",
        }
    }
}

/// One HTTP request of a journey, timed like a browser's waterfall.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Body bytes read.
    pub bytes: u64,
    pub phases: Phases,
    /// Days until the server certificate expires, for HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_days_left: Option<i64>,
    /// Whether the step reused a connection of an earlier step or run.
    #[serde(default)]
    pub reused_connection: bool,
}

/// Phases of one request; a phase that did not happen (no DNS for an IP, no TLS for http, a
/// reused connection) is zero. `total` is the step's wall time, redirects included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phases {
    pub dns_us: Micros,
    pub connect_us: Micros,
    pub tls_us: Micros,
    /// From the request's first byte written to the response head read.
    pub ttfb_us: Micros,
    /// From the response head to the last body byte read.
    pub transfer_us: Micros,
    pub total_us: Micros,
}

/// The names of the phases, as used in metric labels.
pub const PHASES: [&str; 5] = ["dns", "connect", "tls", "ttfb", "transfer"];

impl Phases {
    pub fn by_name(&self) -> [(&'static str, Micros); 5] {
        [
            ("dns", self.dns_us),
            ("connect", self.connect_us),
            ("tls", self.tls_us),
            ("ttfb", self.ttfb_us),
            ("transfer", self.transfer_us),
        ]
    }
}

/// Most results one batch may carry: the collector refuses more, agents send no more.
pub const MAX_BATCH: usize = 5_000;

/// A batch of results as an agent sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultBatch {
    pub results: Vec<ProbeResult>,
}

/// The collector's answer to a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchAck {
    /// Results stored by this request.
    pub accepted: usize,
    /// Results already held (replays, retries): acknowledged, not stored twice.
    pub duplicates: usize,
}

/// "Run check X now": how the collector asks agents to confirm a failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunNow {
    pub check: String,
    /// The region whose failure prompted this.
    pub reason_region: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commands {
    pub run: Vec<RunNow>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_round_trip_with_tagged_outcomes() {
        let r = ProbeResult {
            check: "search".into(),
            region: "eu-west".into(),
            agent: "eu-west-1".into(),
            seq: 7,
            started_at_us: 1_700_000_000_000_000,
            outcome: Outcome::Fail(Failure {
                kind: FailureKind::Timeout,
                message: "timed out waiting for the first byte".into(),
                step: Some(0),
            }),
            duration_us: 2_000_000,
            steps: vec![StepResult::default()],
            confirmation: true,
        };
        let text = serde_json::to_string(&r).unwrap();
        assert!(
            text.contains(r#""outcome":{"status":"fail","kind":"timeout""#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<ProbeResult>(&text).unwrap(), r);
        let ok: Outcome = serde_json::from_str(r#"{"status":"ok"}"#).unwrap();
        assert!(ok.is_ok());
        let degraded: Outcome = serde_json::from_str(
            r#"{"status":"degraded","message":"delivered at 1.2x real time","step":1}"#,
        )
        .unwrap();
        assert!(degraded.is_up() && !degraded.is_ok());
        assert_eq!(
            degraded,
            Outcome::Degraded(Degradation {
                message: "delivered at 1.2x real time".into(),
                step: Some(1),
            })
        );
    }
}

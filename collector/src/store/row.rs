//! How a result's detail (steps, failure) is kept beside its indexed columns: postcard (a
//! compact, stable serde format of varints) over tuple structs, so a stored result's detail
//! costs about 25 bytes, not the 300 of its JSON. Raw results are most of the store's size.

use lookout_model::probe::{
    Degradation, Failure, FailureKind, Outcome, Phases, ProbeResult, StepResult,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Body(Vec<Step>, Verdict, bool);

/// Written as postcard writes `Option<Fail>` (a varint 0 or 1, then the failure), which
/// bodies held before `degraded` existed were: they read back unchanged.
#[derive(Serialize, Deserialize)]
enum Verdict {
    Ok,
    Fail(Fail),
    Degraded(String, Option<usize>),
}

#[derive(Serialize, Deserialize)]
struct Step(String, Option<u16>, u64, [u64; 6], Option<i64>, bool);

#[derive(Serialize, Deserialize)]
struct Fail(FailureKind, String, Option<usize>);

pub fn encode(r: &ProbeResult) -> Result<Vec<u8>, postcard::Error> {
    let steps = r
        .steps
        .iter()
        .map(|s| {
            let p = &s.phases;
            Step(
                s.name.clone(),
                s.status,
                s.bytes,
                [
                    p.dns_us,
                    p.connect_us,
                    p.tls_us,
                    p.ttfb_us,
                    p.transfer_us,
                    p.total_us,
                ],
                s.cert_days_left,
                s.reused_connection,
            )
        })
        .collect();
    let verdict = match &r.outcome {
        Outcome::Ok => Verdict::Ok,
        Outcome::Fail(f) => Verdict::Fail(Fail(f.kind, f.message.clone(), f.step)),
        Outcome::Degraded(d) => Verdict::Degraded(d.message.clone(), d.step),
    };
    postcard::to_allocvec(&Body(steps, verdict, r.confirmation))
}

/// The columns a result is stored under, besides its body.
pub struct Columns {
    pub check: String,
    pub region: String,
    pub agent: String,
    pub seq: u64,
    pub started_at_us: i64,
    pub duration_us: u64,
}

pub fn decode(c: Columns, body: &[u8]) -> Result<ProbeResult, postcard::Error> {
    let Body(steps, verdict, confirmation) = postcard::from_bytes(body)?;
    Ok(ProbeResult {
        check: c.check,
        region: c.region,
        agent: c.agent,
        seq: c.seq,
        started_at_us: c.started_at_us,
        outcome: match verdict {
            Verdict::Ok => Outcome::Ok,
            Verdict::Fail(Fail(kind, message, step)) => Outcome::Fail(Failure {
                kind,
                message,
                step,
            }),
            Verdict::Degraded(message, step) => Outcome::Degraded(Degradation { message, step }),
        },
        duration_us: c.duration_us,
        steps: steps
            .into_iter()
            .map(
                |Step(
                    name,
                    status,
                    bytes,
                    [dns, connect, tls, ttfb, transfer, total],
                    cert,
                    reused,
                )| {
                    StepResult {
                        name,
                        status,
                        bytes,
                        phases: Phases {
                            dns_us: dns,
                            connect_us: connect,
                            tls_us: tls,
                            ttfb_us: ttfb,
                            transfer_us: transfer,
                            total_us: total,
                        },
                        cert_days_left: cert,
                        reused_connection: reused,
                    }
                },
            )
            .collect(),
        confirmation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(r: &ProbeResult) -> Columns {
        Columns {
            check: r.check.clone(),
            region: r.region.clone(),
            agent: r.agent.clone(),
            seq: r.seq,
            started_at_us: r.started_at_us,
            duration_us: r.duration_us,
        }
    }

    fn result(outcome: Outcome) -> ProbeResult {
        ProbeResult {
            check: "listen".into(),
            region: "eu".into(),
            agent: "eu-1".into(),
            seq: 3,
            started_at_us: 1_700_000_000_000_000,
            outcome,
            duration_us: 412_000,
            steps: vec![StepResult {
                name: "play".into(),
                status: Some(200),
                bytes: 400_000,
                ..StepResult::default()
            }],
            confirmation: false,
        }
    }

    #[test]
    fn every_outcome_reads_back_as_written() {
        for outcome in [
            Outcome::Ok,
            Outcome::Degraded(Degradation {
                message: "delivered at 1.20x real time".into(),
                step: Some(0),
            }),
            Outcome::Fail(Failure {
                kind: FailureKind::Timeout,
                message: "timed out".into(),
                step: None,
            }),
        ] {
            let r = result(outcome);
            let body = encode(&r).unwrap();
            assert_eq!(decode(columns(&r), &body).unwrap(), r);
        }
    }

    /// Bodies stored before `degraded` existed held `Option<Fail>`: they must read back.
    #[test]
    fn bodies_written_before_degraded_read_back() {
        #[derive(Serialize)]
        struct OldBody(Vec<Step>, Option<Fail>, bool);
        let step = || Step("play".into(), Some(200), 400_000, [0; 6], None, false);
        let fail = Fail(FailureKind::Refused, "refused".into(), Some(0));
        for (old, outcome) in [
            (OldBody(vec![step()], None, true), Outcome::Ok),
            (
                OldBody(vec![step()], Some(fail), true),
                Outcome::Fail(Failure {
                    kind: FailureKind::Refused,
                    message: "refused".into(),
                    step: Some(0),
                }),
            ),
        ] {
            let bytes = postcard::to_allocvec(&old).unwrap();
            let mut r = result(outcome);
            r.confirmation = true;
            assert_eq!(decode(columns(&r), &bytes).unwrap(), r);
        }
    }
}

//! How a result's detail (steps, failure) is kept beside its indexed columns: postcard (a
//! compact, stable serde format of varints) over tuple structs, so a stored result's detail
//! costs about 25 bytes, not the 300 of its JSON. Raw results are most of the store's size.

use lookout_model::probe::{Failure, FailureKind, Outcome, Phases, ProbeResult, StepResult};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Body(Vec<Step>, Option<Fail>, bool);

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
    let fail = match &r.outcome {
        Outcome::Ok => None,
        Outcome::Fail(f) => Some(Fail(f.kind, f.message.clone(), f.step)),
    };
    postcard::to_allocvec(&Body(steps, fail, r.confirmation))
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
    let Body(steps, fail, confirmation) = postcard::from_bytes(body)?;
    Ok(ProbeResult {
        check: c.check,
        region: c.region,
        agent: c.agent,
        seq: c.seq,
        started_at_us: c.started_at_us,
        outcome: match fail {
            None => Outcome::Ok,
            Some(Fail(kind, message, step)) => Outcome::Fail(Failure {
                kind,
                message,
                step,
            }),
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

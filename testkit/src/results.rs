//! Probe results built by what a test cares about, with everything else filled in the same way
//! everywhere: one step named after the check, answered 200 with plausible phases.

use lookout_model::probe::{Failure, FailureKind, Outcome, Phases, ProbeResult, StepResult};

/// A result of `check` in `region` by agent `agent`, started at `started_at_us`, numbered
/// `seq`: `ok`, or refused at its first step. It took `duration_us` (its phases add up to it).
pub fn result(
    check: &str,
    region: &str,
    agent: &str,
    seq: u64,
    started_at_us: i64,
    ok: bool,
    duration_us: u64,
) -> ProbeResult {
    let outcome = if ok {
        Outcome::Ok
    } else {
        Outcome::Fail(Failure {
            kind: FailureKind::Refused,
            message: "connection refused".into(),
            step: Some(0),
        })
    };
    let part = duration_us / 5;
    ProbeResult {
        check: check.into(),
        region: region.into(),
        agent: agent.into(),
        seq,
        started_at_us,
        outcome,
        duration_us,
        steps: vec![StepResult {
            name: check.into(),
            status: ok.then_some(200),
            bytes: if ok { 4321 } else { 0 },
            phases: Phases {
                dns_us: part,
                connect_us: part,
                tls_us: part,
                ttfb_us: part,
                transfer_us: duration_us - 4 * part,
                total_us: duration_us,
            },
            cert_days_left: Some(30),
            reused_connection: false,
        }],
        confirmation: false,
    }
}

/// Results of one agent, numbered in the order they are made.
pub struct Agent {
    pub name: String,
    pub region: String,
    seq: u64,
}

impl Agent {
    pub fn new(region: &str) -> Agent {
        Agent {
            name: format!("{region}-1"),
            region: region.into(),
            seq: 0,
        }
    }

    /// The next result of `check`: `ok` or refused, taking `duration_us`, started at `at_us`.
    pub fn run(&mut self, check: &str, at_us: i64, ok: bool, duration_us: u64) -> ProbeResult {
        self.seq += 1;
        result(
            check,
            &self.region,
            &self.name,
            self.seq,
            at_us,
            ok,
            duration_us,
        )
    }
}

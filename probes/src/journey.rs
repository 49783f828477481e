//! Runs one check once: its steps in order, whatever their kinds, each timed, captures
//! feeding the next step. A failed run is data (an outcome with a reason), never
//! an error: the only thing that stops a run early is its own failure.

use std::time::Instant;

use lookout_model::probe::{Outcome, ProbeResult};

use crate::check::Check;
use crate::http::{Limits, Pool};
use crate::kind::StepContext;
use crate::template::Vars;

/// Who is running the check, and which run this is.
pub struct RunContext<'a> {
    pub region: &'a str,
    pub agent: &'a str,
    pub confirmation: bool,
}

/// Runs `check` with `vars` (global variables); `pool` keeps connections when the check
/// reuses them.
pub async fn run(check: &Check, vars: &Vars, pool: &mut Pool, ctx: RunContext<'_>) -> ProbeResult {
    let started_at = chrono::Utc::now();
    let started = Instant::now();
    let limits = Limits {
        deadline: started + check.timeout,
        timeout: check.timeout,
        max_body: check.max_body,
    };
    let mut vars = vars.clone();
    let mut steps = Vec::with_capacity(check.steps.len());
    let mut outcome = Outcome::Ok;
    // Time in steps that the journey's latency does not count (a playback's listening).
    let mut uncounted_us = 0u64;
    if !check.reuse_connections {
        *pool = Pool::default();
    }
    for (index, step) in check.steps.iter().enumerate() {
        let ctx = StepContext {
            check,
            index,
            name: &step.name,
            vars: &mut vars,
            pool: &mut *pool,
            limits: &limits,
        };
        let (result, step_outcome) = step.probe.run(ctx).await;
        uncounted_us += result
            .phases
            .total_us
            .saturating_sub(step.probe.counted_us(&result));
        steps.push(result);
        match step_outcome {
            Outcome::Ok => {}
            // The journey goes on: a stream that would stutter does not stop the next step.
            // The first degraded step is the one named.
            Outcome::Degraded(d) => {
                if outcome.is_ok() {
                    outcome = Outcome::Degraded(d);
                }
            }
            Outcome::Fail(f) => {
                outcome = Outcome::Fail(f);
                break;
            }
        }
    }
    if !check.reuse_connections {
        // A cold user's view: nothing carries over to the next run.
        *pool = Pool::default();
    }
    ProbeResult {
        check: check.name.clone(),
        region: ctx.region.to_owned(),
        agent: ctx.agent.to_owned(),
        // Numbered when spooled, so that numbers follow the order results are kept in.
        seq: 0,
        started_at_us: started_at.timestamp_micros(),
        outcome,
        duration_us: (started.elapsed().as_micros() as u64).saturating_sub(uncounted_us),
        steps,
        confirmation: ctx.confirmation,
    }
}

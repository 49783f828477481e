//! What a step of a journey does. Each kind is one file implementing [`Probe`], plus one
//! field of the step as written (`config::RawStep`) and its arm where steps are built; the
//! journey, scheduling, spooling and everything after the agent see only results.

pub mod dns;
pub mod http;
pub mod icmp;
pub mod playback;
pub mod tcp;
pub mod tls;
pub mod websocket;

use std::time::Instant;

use futures_util::future::BoxFuture;
use lookout_model::probe::{Failure, Outcome, StepResult};

use crate::check::Check;
use crate::http::{Limits, Pool};
use crate::template::Vars;

/// What one step may use while it runs.
pub struct StepContext<'a> {
    pub check: &'a Check,
    /// The step's place in the journey (0-based), for its failure.
    pub index: usize,
    pub name: &'a str,
    /// Variables so far; a step may capture more for the steps after it.
    pub vars: &'a mut Vars,
    /// Connections kept between steps and runs (HTTP's, for checks that reuse them).
    pub pool: &'a mut Pool,
    pub limits: &'a Limits,
}

impl StepContext<'_> {
    /// The step's result so far, named.
    pub fn result(&self) -> StepResult {
        StepResult {
            name: self.name.to_owned(),
            ..StepResult::default()
        }
    }

    /// A step's end: its wall time since `started` as `total`, and its failure tied to it.
    pub fn finish(
        &self,
        started: Instant,
        result: StepResult,
        outcome: Result<(), Failure>,
    ) -> (StepResult, Outcome) {
        let outcome = match outcome {
            Ok(()) => Outcome::Ok,
            Err(f) => Outcome::Fail(f),
        };
        self.finish_with(started, result, outcome)
    }

    /// The same for a step that may also pass degraded.
    pub fn finish_with(
        &self,
        started: Instant,
        mut result: StepResult,
        mut outcome: Outcome,
    ) -> (StepResult, Outcome) {
        result.phases.total_us = crate::http::us(started.elapsed());
        match &mut outcome {
            Outcome::Ok => {}
            Outcome::Degraded(d) => d.step = Some(self.index),
            Outcome::Fail(f) => f.step = Some(self.index),
        }
        (result, outcome)
    }
}

/// One kind of step. A failed step is data (its result as far as it got, and why), never an
/// error; every phase ends by the journey's deadline.
pub trait Probe: Send + Sync + std::fmt::Debug {
    /// Boxed, so that steps of different kinds sit in one journey (`dyn Probe`).
    fn run<'a>(&'a self, ctx: StepContext<'a>) -> BoxFuture<'a, (StepResult, Outcome)>;

    /// The part of the step's time, in microseconds, that the journey's latency counts.
    fn counted_us(&self, result: &StepResult) -> u64 {
        result.phases.total_us
    }
}

//! What a step of a journey does. Each kind is one file implementing [`Probe`], plus one
//! field of the step as written (`config::RawStep`) and its arm where steps are built; the
//! journey, scheduling, spooling and everything after the agent see only results.

pub mod dns;
pub mod http;
pub mod icmp;
pub mod tcp;
pub mod tls;
pub mod websocket;

use std::time::Instant;

use futures_util::future::BoxFuture;
use lookout_model::probe::{Failure, StepResult};

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
        mut result: StepResult,
        outcome: Result<(), Failure>,
    ) -> (StepResult, Option<Failure>) {
        result.phases.total_us = crate::http::us(started.elapsed());
        let failure = outcome.err().map(|mut f| {
            f.step = Some(self.index);
            f
        });
        (result, failure)
    }
}

/// One kind of step. A failed step is data (its result as far as it got, and why), never an
/// error; every phase ends by the journey's deadline.
pub trait Probe: Send + Sync + std::fmt::Debug {
    /// Boxed, so that steps of different kinds sit in one journey (`dyn Probe`).
    fn run<'a>(&'a self, ctx: StepContext<'a>) -> BoxFuture<'a, (StepResult, Option<Failure>)>;
}

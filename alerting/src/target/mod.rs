//! Targets: what a check measures, written as a small expression over Lookout's series or as
//! a PromQL query. The grammar is in docs/alerting.md; [`parse`] points at the position of
//! any error.

use std::time::Duration;

mod display;
mod parse;

pub use parse::{ParseError, parse};

/// A parsed target.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Number(f64),
    Series(Series),
    /// `min(a, b, ...)`, `max(a, b, ...)`: with them one threshold expresses "both windows
    /// burn fast" (the multiwindow burn-rate alert) or "either".
    Min(Vec<Expr>),
    Max(Vec<Expr>),
    /// `promql("...")`: the first sample of an instant query against the configured server.
    PromQl(String),
}

/// One of Lookout's series for one check.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub metric: Metric,
    pub check: String,
    /// The window back from now; `None` for the metrics about the present (`down`,
    /// `failing_regions`).
    pub window: Option<Duration>,
    /// Only for latency and `under_objective`: one region's journeys.
    pub region: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// 0..1, over the window.
    Availability,
    /// Seconds down in the window.
    Downtime,
    /// Seconds without data in the window.
    NoData,
    /// Share of the window's error budget left, 1 = untouched, below 0 = overspent.
    BudgetRemaining,
    /// The window's bad fraction over the allowed fraction.
    BurnRate,
    /// Seconds.
    Latency(Percentile),
    /// 0..1: the share of successful journeys faster than the objective.
    UnderObjective,
    /// 1 while the check is down now (a quorum of regions failing), else 0.
    Down,
    /// How many regions are failing now.
    FailingRegions,
    /// How many regions' latest runs passed degraded (a stream that would stutter).
    DegradedRegions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Percentile {
    P50,
    P95,
    P99,
    Max,
}

impl Expr {
    /// Every series the expression reads, for fetching them in one round.
    pub fn series(&self) -> Vec<&Series> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Series(s) = e {
                out.push(s);
            }
        });
        out
    }

    /// Every check the expression names.
    pub fn checks(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.series().iter().map(|s| s.check.as_str()).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Expr)) {
        f(self);
        if let Expr::Min(args) | Expr::Max(args) = self {
            for a in args {
                a.walk(f);
            }
        }
    }
}

//! The agent's Prometheus metrics, named in one place.

use lookout_model::probe::{Outcome, ProbeResult, Verdict};
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

pub struct AgentMetrics {
    registry: Registry,
    runs: IntCounterVec,
    failures: IntCounterVec,
    phase_seconds: HistogramVec,
    duration_seconds: HistogramVec,
    pub skipped: IntCounterVec,
    pub confirmations: IntCounterVec,
    pub lag_seconds: Histogram,
    pub spool_results: IntGauge,
    pub spool_bytes: IntGauge,
    pub spool_dropped: IntCounter,
    pub pushes: IntCounterVec,
    pub rejected: IntCounter,
    pub collector_up: IntGauge,
}

const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 0.8, 1.0, 2.5, 5.0, 10.0,
];

use lookout_api::metrics::register as reg;

impl AgentMetrics {
    /// Every series carries the agent's `region` (one constant label, so the label order is
    /// stable); which agent it is comes from the scrape target.
    pub fn new(region: &str) -> Result<Self, prometheus::Error> {
        let labels = std::collections::HashMap::from([("region".to_owned(), region.to_owned())]);
        let registry = Registry::new_custom(None, Some(labels))?;
        Ok(AgentMetrics {
            runs: reg(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "lookout_probe_runs_total",
                        "Check runs, by check and outcome (ok, degraded, fail).",
                    ),
                    &["check", "outcome"],
                )?,
            )?,
            failures: reg(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "lookout_probe_failures_total",
                        "Failed runs, by check and failure kind.",
                    ),
                    &["check", "kind"],
                )?,
            )?,
            phase_seconds: reg(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "lookout_probe_phase_duration_seconds",
                        "Time per HTTP phase of each step, summed over a journey's steps.",
                    )
                    .buckets(BUCKETS.to_vec()),
                    &["check", "phase"],
                )?,
            )?,
            duration_seconds: reg(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "lookout_probe_duration_seconds",
                        "Whole-journey time of each run.",
                    )
                    .buckets(BUCKETS.to_vec()),
                    &["check", "outcome"],
                )?,
            )?,
            skipped: reg(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "lookout_probe_skipped_total",
                        "Scheduled starts skipped because the previous run was still going.",
                    ),
                    &["check"],
                )?,
            )?,
            confirmations: reg(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "lookout_probe_confirmation_runs_total",
                        "Runs made at the collector's request to confirm a failure.",
                    ),
                    &["check"],
                )?,
            )?,
            lag_seconds: reg(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "lookout_probe_scheduling_lag_seconds",
                        "How late runs started against their schedule.",
                    )
                    .buckets(vec![
                        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
                        1.0,
                    ]),
                )?,
            )?,
            spool_results: reg(
                &registry,
                IntGauge::new(
                    "lookout_probe_spool_results",
                    "Results spooled and not yet acknowledged by the collector.",
                )?,
            )?,
            spool_bytes: reg(
                &registry,
                IntGauge::new(
                    "lookout_probe_spool_bytes",
                    "Bytes the spool holds on disk.",
                )?,
            )?,
            spool_dropped: reg(
                &registry,
                IntCounter::new(
                    "lookout_probe_spool_dropped_total",
                    "Results dropped because the spool was full.",
                )?,
            )?,
            pushes: reg(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "lookout_probe_pushes_total",
                        "Batches sent to the collector, by outcome.",
                    ),
                    &["outcome"],
                )?,
            )?,
            rejected: reg(
                &registry,
                IntCounter::new(
                    "lookout_probe_rejected_results_total",
                    "Results the collector refused as invalid (dropped, logged).",
                )?,
            )?,
            collector_up: reg(
                &registry,
                IntGauge::new(
                    "lookout_probe_collector_up",
                    "Whether the last push to the collector succeeded.",
                )?,
            )?,
            registry,
        })
    }

    /// Makes the check's counters exist at zero, so the first failure, skip or confirmation
    /// shows in a rate (a series born at 1 has none) and dashboards list every check at once.
    pub fn known_check(&self, check: &str) {
        for outcome in ["ok", "degraded", "fail"] {
            self.runs.with_label_values(&[check, outcome]);
        }
        self.skipped.with_label_values(&[check]);
        self.confirmations.with_label_values(&[check]);
    }

    pub fn record(&self, r: &ProbeResult) {
        let outcome = match r.outcome.verdict() {
            Verdict::Ok => "ok",
            Verdict::Degraded => "degraded",
            Verdict::Fail => "fail",
        };
        self.runs.with_label_values(&[&r.check, outcome]).inc();
        if let Outcome::Fail(f) = &r.outcome {
            self.failures
                .with_label_values(&[&r.check, f.kind.as_str()])
                .inc();
        }
        self.duration_seconds
            .with_label_values(&[&r.check, outcome])
            .observe(r.duration_us as f64 / 1e6);
        let mut sums = [0u64; 5];
        for s in &r.steps {
            for (i, (_, v)) in s.phases.by_name().iter().enumerate() {
                sums[i] += v;
            }
        }
        for (i, name) in lookout_model::probe::PHASES.iter().enumerate() {
            self.phase_seconds
                .with_label_values(&[r.check.as_str(), name])
                .observe(sums[i] as f64 / 1e6);
        }
    }

    pub fn runs(&self, check: &str, outcome: &str) -> u64 {
        self.runs.with_label_values(&[check, outcome]).get()
    }

    /// The agent's registry, for gauges that belong beside its own (a config reload's).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn render(&self) -> String {
        String::from_utf8_lossy(&lookout_api::metrics::encode(&self.registry)).into_owned()
    }
}

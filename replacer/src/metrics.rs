//! The replacer's `/metrics`.

use std::collections::BTreeMap;
use std::time::Duration;

use lookout_api::metrics::register;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::health::{Poll, State};

pub struct Metrics {
    pub registry: Registry,
    pub instances: IntGaugeVec,
    pub polls: IntCounterVec,
    pub replacements: IntCounterVec,
    pub replacement_seconds: HistogramVec,
    pub held: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        Ok(Metrics {
            instances: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "lookout_replacer_instances",
                        "Instances watched, by service and state.",
                    ),
                    &["service", "state"],
                )?,
            )?,
            polls: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "lookout_replacer_polls_total",
                        "Healthcheck polls, by outcome.",
                    ),
                    &["outcome"],
                )?,
            )?,
            replacements: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "lookout_replacer_replacements_total",
                        "Replacements, by service and outcome (done, failed).",
                    ),
                    &["service", "outcome"],
                )?,
            )?,
            replacement_seconds: register(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "lookout_replacer_replacement_duration_seconds",
                        "From a replacement's start to the new instance serving.",
                    )
                    .buckets(vec![0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0]),
                    &["service"],
                )?,
            )?,
            held: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "lookout_replacer_held",
                        "1 while a brake holds the service's replacements for a person (mass failure).",
                    ),
                    &["service"],
                )?,
            )?,
            registry,
        })
    }

    pub fn poll(&self, p: &Poll) {
        let outcome = match p {
            Poll::Serving => "serving",
            Poll::ServingDegraded(_) => "degraded",
            Poll::Failed(_) => "failed",
        };
        self.polls.with_label_values(&[outcome]).inc();
    }

    pub fn replaced(&self, service: &str, outcome: &str, took: Duration) {
        self.replacements
            .with_label_values(&[service, outcome])
            .inc();
        if outcome == "done" {
            self.replacement_seconds
                .with_label_values(&[service])
                .observe(took.as_secs_f64());
        }
    }

    pub fn gauges<'a>(&self, watched: impl Iterator<Item = (&'a String, State)>) {
        let mut counts: BTreeMap<(&str, &str), i64> = BTreeMap::new();
        for (service, state) in watched {
            let state = match state {
                State::Starting => "starting",
                State::Healthy => "healthy",
                State::Unhealthy => "unhealthy",
            };
            *counts.entry((service.as_str(), state)).or_default() += 1;
            // Every watched service's series exist from the start, at zero: the first
            // replacement then shows in a rate, and a dashboard lists the service at once.
            for outcome in ["done", "failed"] {
                self.replacements.with_label_values(&[service, outcome]);
            }
            self.held.with_label_values(&[service]);
        }
        self.instances.reset();
        for ((service, state), n) in counts {
            self.instances.with_label_values(&[service, state]).set(n);
        }
    }
}

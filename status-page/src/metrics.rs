//! The status page's own `/metrics`.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use lookout_api::metrics::register;

/// The kinds of public request counted apart.
pub const KINDS: [&str; 6] = ["page", "json", "feed", "badge", "static", "report"];

pub struct Metrics {
    pub registry: Registry,
    pub requests: IntCounterVec,
    /// `requests` for each of [`KINDS`], resolved once: no label lookup per request.
    by_kind: Vec<IntCounter>,
    pub not_modified: IntCounter,
    pub renders: IntCounter,
    pub render_seconds: Histogram,
    pub collector_errors: IntCounter,
    pub stale: IntGauge,
    pub reports_sent: IntCounter,
    pub report_failures: IntCounter,
    /// On a replica: changes in the log this version cannot read, and changes it read but
    /// could not store. Never skipped silently.
    pub log_changes_failed: IntCounterVec,
    pub log_applied: IntGauge,
}

impl Metrics {
    pub fn request(&self, kind: &str) -> &IntCounter {
        let i = KINDS.iter().position(|k| *k == kind).unwrap_or(0);
        &self.by_kind[i]
    }

    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let requests = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "lookout_status_page_requests_total",
                    "Public requests answered, by kind of page.",
                ),
                &["kind"],
            )?,
        )?;
        Ok(Metrics {
            by_kind: KINDS
                .iter()
                .map(|k| requests.with_label_values(&[k]))
                .collect(),
            requests,
            not_modified: register(
                &registry,
                IntCounter::new(
                    "lookout_status_page_not_modified_total",
                    "Requests answered 304 Not Modified from an ETag.",
                )?,
            )?,
            renders: register(
                &registry,
                IntCounter::new(
                    "lookout_status_page_renders_total",
                    "Times the whole site was rendered.",
                )?,
            )?,
            render_seconds: register(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "lookout_status_page_render_duration_seconds",
                        "Time to render the whole site.",
                    )
                    .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0]),
                )?,
            )?,
            collector_errors: register(
                &registry,
                IntCounter::new(
                    "lookout_status_page_collector_errors_total",
                    "Reads of the collector that failed.",
                )?,
            )?,
            stale: register(
                &registry,
                IntGauge::new(
                    "lookout_status_page_stale",
                    "1 while the page shows the last known state because the collector is away.",
                )?,
            )?,
            reports_sent: register(
                &registry,
                IntCounter::new(
                    "lookout_status_page_reports_sent_total",
                    "SLA reports mailed.",
                )?,
            )?,
            report_failures: register(
                &registry,
                IntCounter::new(
                    "lookout_status_page_report_failures_total",
                    "SLA reports that could not be mailed.",
                )?,
            )?,
            log_changes_failed: register(
                &registry,
                IntCounterVec::new(
                    Opts::new(
                        "lookout_status_page_log_changes_failed_total",
                        "Changes read from the replicated log and not applied: undecodable (this version cannot read it) or unstored.",
                    ),
                    &["reason"],
                )?,
            )?,
            log_applied: register(
                &registry,
                IntGauge::new(
                    "lookout_status_page_log_applied",
                    "On a replica: the replicated log's position applied.",
                )?,
            )?,
            registry,
        })
    }
}

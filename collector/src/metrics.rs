//! The collector's `/metrics`: every metric named in one place, counters fed as results
//! arrive, and the per-check SLA gauges computed at scrape time from the rollups by each
//! check's SLO (the same math the query API answers with).

use lookout_api::metrics::register as reg;
use lookout_model::probe::{ProbeResult, Verdict};
use prometheus::{GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

use crate::AppState;
use crate::sink;

/// The collector's metrics, named in one place.
pub(crate) struct Metrics {
    pub(crate) registry: Registry,
    pub(crate) results: IntCounterVec,
    pub(crate) confirmations: IntCounterVec,
    pub(crate) stored: IntGauge,
    /// Per check and region, as results arrive.
    pub(crate) outcomes: IntCounterVec,
    pub(crate) durations: HistogramVec,
    /// Per check, computed at scrape time from the store.
    pub(crate) availability: GaugeVec,
    pub(crate) budget_remaining: GaugeVec,
    pub(crate) budget_remaining_seconds: GaugeVec,
    pub(crate) burn_rate: GaugeVec,
    pub(crate) downtime: GaugeVec,
    pub(crate) maintenance: GaugeVec,
    pub(crate) slo_window: GaugeVec,
    pub(crate) in_maintenance: GaugeVec,
    pub(crate) availability_objective: GaugeVec,
    pub(crate) latency_objective: GaugeVec,
    pub(crate) within_objective: IntCounterVec,
    pub(crate) agent_last_result: GaugeVec,
    pub(crate) store_bytes: IntGauge,
    pub(crate) rollup_lag: prometheus::Gauge,
    pub(crate) up: GaugeVec,
    pub(crate) no_data: GaugeVec,
    pub(crate) region_failing: GaugeVec,
    pub(crate) sinks: sink::SinkMetrics,
    pub(crate) clock_offset: GaugeVec,
    pub(crate) state_changes: IntCounterVec,
    /// API requests by route: what each reader costs the collector.
    pub(crate) api_requests: IntCounterVec,
    /// A replica's place in the replicated log (0 on a single collector).
    pub(crate) log_applied: IntGauge,
    pub(crate) log_behind: IntGauge,
    pub(crate) undecodable: prometheus::IntCounter,
}

/// The windows `/metrics` reports availability over.
/// Those of multiwindow burn-rate alerts (5m/1h, 30m/6h, 6h/3d) and of SLA reports (30d, 90d).
pub(crate) const METRIC_WINDOWS: [(&str, i64); 8] = [
    ("5m", 300_000_000),
    ("30m", 1_800_000_000),
    ("1h", 3_600_000_000),
    ("6h", 21_600_000_000),
    ("24h", 86_400_000_000),
    ("3d", 259_200_000_000),
    ("30d", 2_592_000_000_000),
    ("90d", 7_776_000_000_000),
];

impl Metrics {
    pub(crate) fn new() -> Result<Self, prometheus::Error> {
        let r = Registry::new();
        let gauge =
            |name: &str, help: &str, labels: &[&str]| GaugeVec::new(Opts::new(name, help), labels);
        Ok(Metrics {
            log_applied: reg(
                &r,
                IntGauge::new(
                    "lookout_collector_log_applied_position",
                    "The replicated log's position this replica has applied up to.",
                )?,
            )?,
            log_behind: reg(
                &r,
                IntGauge::new(
                    "lookout_collector_log_behind_messages",
                    "Messages in the replicated log after the last one this replica applied.",
                )?,
            )?,
            undecodable: reg(
                &r,
                prometheus::IntCounter::new(
                    "lookout_collector_log_undecodable_total",
                    "Messages of the replicated log this replica could not apply (each is logged with its position).",
                )?,
            )?,
            results: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "lookout_collector_results_total",
                        "Results received, by what became of them (stored, duplicate, rejected).",
                    ),
                    &["outcome"],
                )?,
            )?,
            confirmations: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "lookout_collector_confirmations_requested_total",
                        "Confirmation runs asked of agents, by check.",
                    ),
                    &["check"],
                )?,
            )?,
            stored: reg(
                &r,
                IntGauge::new(
                    "lookout_collector_stored_results",
                    "Results held by the store.",
                )?,
            )?,
            outcomes: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "lookout_check_results_total",
                        "Probe results stored, by check, region and outcome (ok, degraded, fail).",
                    ),
                    &["check", "region", "outcome"],
                )?,
            )?,
            durations: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "lookout_check_duration_seconds",
                        "Journey time of successful runs (degraded ones too), by check and region.",
                    )
                    .buckets(vec![
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.5, 2.5, 5.0, 10.0,
                    ]),
                    &["check", "region"],
                )?,
            )?,
            availability: reg(
                &r,
                gauge(
                    "lookout_check_availability_ratio",
                    "Availability over the window by the check's SLO: 1 - down / (window - no data - maintenance, unless the SLO counts maintenance).",
                    &["check", "window"],
                )?,
            )?,
            budget_remaining_seconds: reg(
                &r,
                gauge(
                    "lookout_check_error_budget_remaining_seconds",
                    "Downtime the window's error budget still allows (negative when overspent); the budget is the counted part of the window times (1 - target).",
                    &["check", "window"],
                )?,
            )?,
            availability_objective: reg(
                &r,
                gauge(
                    "lookout_check_availability_objective_ratio",
                    "The availability target of the check's SLO, as a ratio.",
                    &["check"],
                )?,
            )?,
            latency_objective: reg(
                &r,
                gauge(
                    "lookout_check_latency_objective_seconds",
                    "The check's latency objective for a successful journey.",
                    &["check"],
                )?,
            )?,
            within_objective: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "lookout_check_within_objective_total",
                        "Successful runs faster than the check's latency objective and not degraded, by check and region (over the successful runs: the latency SLI).",
                    ),
                    &["check", "region"],
                )?,
            )?,
            agent_last_result: reg(
                &r,
                gauge(
                    "lookout_collector_agent_last_result_timestamp_seconds",
                    "When the collector last received results from the agent (its clock); an agent silent for long is down or cut off.",
                    &["agent", "region"],
                )?,
            )?,
            burn_rate: reg(
                &r,
                gauge(
                    "lookout_check_burn_rate",
                    "The window's bad fraction over the target's allowed one (1: the budget lasts exactly the SLA period).",
                    &["check", "window"],
                )?,
            )?,
            downtime: reg(
                &r,
                gauge(
                    "lookout_check_downtime_seconds",
                    "Downtime over the window that counts against the target (with maintenance left out unless the check's SLO counts it).",
                    &["check", "window"],
                )?,
            )?,
            maintenance: reg(
                &r,
                gauge(
                    "lookout_check_maintenance_seconds",
                    "Time of the window inside scheduled maintenance of the check.",
                    &["check", "window"],
                )?,
            )?,
            slo_window: reg(
                &r,
                gauge(
                    "lookout_check_slo_window_seconds",
                    "The rolling window of the check's SLO (its budget and burn-rate alerts are judged over it).",
                    &["check"],
                )?,
            )?,
            in_maintenance: reg(
                &r,
                gauge(
                    "lookout_check_in_maintenance",
                    "1 while a scheduled maintenance window of the check is in progress.",
                    &["check"],
                )?,
            )?,
            store_bytes: reg(
                &r,
                IntGauge::new(
                    "lookout_collector_store_bytes",
                    "Bytes the store takes on disk.",
                )?,
            )?,
            rollup_lag: reg(
                &r,
                prometheus::Gauge::new(
                    "lookout_collector_rollup_lag_seconds",
                    "How far the oldest rollup frontier is behind now (about a minute plus a check's timeout when all is well).",
                )?,
            )?,
            budget_remaining: reg(
                &r,
                gauge(
                    "lookout_check_error_budget_remaining_ratio",
                    "Share of the window's error budget not yet spent (negative when overspent).",
                    &["check", "window"],
                )?,
            )?,
            up: reg(
                &r,
                gauge(
                    "lookout_check_up",
                    "1 while the check is up, 0 while it is down (a quorum of regions failing); absent without data.",
                    &["check"],
                )?,
            )?,
            no_data: reg(
                &r,
                gauge(
                    "lookout_check_no_data",
                    "1 while fewer than a quorum of regions report.",
                    &["check"],
                )?,
            )?,
            region_failing: reg(
                &r,
                gauge(
                    "lookout_check_region_failing",
                    "1 while a region's latest result for the check failed, 0 while it passed; absent while silent.",
                    &["check", "region"],
                )?,
            )?,
            sinks: sink::SinkMetrics::new(&r)?,
            clock_offset: reg(
                &r,
                gauge(
                    "lookout_collector_agent_clock_offset_seconds",
                    "Least time from a run's end (agent's clock) to its arrival (collector's clock) in the agent's last batch; negative means the agent's clock is ahead.",
                    &["agent"],
                )?,
            )?,
            state_changes: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "lookout_check_state_changes_total",
                        "Changes of a check's live state (up, down, no_data), by check and the state entered.",
                    ),
                    &["check", "state"],
                )?,
            )?,
            api_requests: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "lookout_collector_api_requests_total",
                        "Requests to the collector's API, by route (its path pattern) and method.",
                    ),
                    &["route", "method"],
                )?,
            )?,
            registry: r,
        })
    }

    pub(crate) fn observe(&self, r: &ProbeResult, objective_us: i64) {
        let verdict = r.outcome.verdict();
        let (check, region) = (r.check.as_str(), r.region.as_str());
        // Every outcome and the SLI counter exist from a region's first result, so a rate
        // over the first failure (or first fast run) counts it: a series born at 1 has no rate.
        for (outcome, v) in [
            ("ok", Verdict::Ok),
            ("degraded", Verdict::Degraded),
            ("fail", Verdict::Fail),
        ] {
            let counter = self.outcomes.with_label_values(&[check, region, outcome]);
            if v == verdict {
                counter.inc();
            }
        }
        let within = self.within_objective.with_label_values(&[check, region]);
        if let Some(latency) = verdict.counted_latency_us(r.duration_us, objective_us) {
            // The journey's time as it was; the SLI counts a degraded run against it.
            self.durations
                .with_label_values(&[check, region])
                .observe(r.duration_us as f64 / 1e6);
            if i64::try_from(latency).is_ok_and(|d| d < objective_us) {
                within.inc();
            }
        }
    }

    /// Sets the per-check gauges from the rollups, just before a scrape is answered.
    pub(crate) fn refresh(&self, state: &AppState) {
        let now = chrono::Utc::now().timestamp_micros();
        state.rollups.settle(now);
        self.store_bytes
            .set(i64::try_from(state.store().size_bytes()).unwrap_or(i64::MAX));
        if let Some(frontier) = state.rollups.oldest_frontier() {
            self.rollup_lag.set((now - frontier) as f64 / 1e6);
        }
        for g in [
            &self.availability,
            &self.budget_remaining,
            &self.budget_remaining_seconds,
            &self.burn_rate,
            &self.downtime,
            &self.maintenance,
            &self.availability_objective,
            &self.latency_objective,
            &self.slo_window,
            &self.in_maintenance,
            &self.up,
            &self.no_data,
            &self.region_failing,
        ] {
            g.reset();
        }
        let maintenance = state.maintenance.in_progress(now);
        for check in state.rollups.checks() {
            let info = state.info_or_default(&check);
            let slo = info.slo;
            let c = [check.as_str()];
            self.availability_objective
                .with_label_values(&c)
                .set(slo.availability_target());
            self.latency_objective
                .with_label_values(&c)
                .set(slo.latency_objective().as_secs_f64());
            self.slo_window
                .with_label_values(&c)
                .set(slo.window().as_secs_f64());
            self.in_maintenance.with_label_values(&c).set(
                if maintenance.iter().any(|m| m.checks.contains(&check)) {
                    1.0
                } else {
                    0.0
                },
            );
            for (name, window) in METRIC_WINDOWS {
                let Some(t) = state.rollups.tally(&check, now - window, now, now) else {
                    continue;
                };
                let f = slo.figures(&t);
                let at = [check.as_str(), name];
                self.downtime
                    .with_label_values(&at)
                    .set(f.down_us as f64 / 1e6);
                self.maintenance
                    .with_label_values(&at)
                    .set(f.maintenance_us as f64 / 1e6);
                let (Some(a), Some(burn)) = (f.availability, f.burn_rate) else {
                    continue;
                };
                self.availability.with_label_values(&at).set(a);
                if f.budget_us > 0.0 {
                    self.budget_remaining
                        .with_label_values(&at)
                        .set(f.budget_remaining_us / f.budget_us);
                }
                self.budget_remaining_seconds
                    .with_label_values(&at)
                    .set(f.budget_remaining_us / 1e6);
                self.burn_rate.with_label_values(&at).set(burn);
            }
            if let Some(t) = state.rollups.tally(&check, now - 1, now, now) {
                if t.no_data_us > 0 {
                    self.no_data.with_label_values(&c).set(1.0);
                } else {
                    self.no_data.with_label_values(&c).set(0.0);
                    self.up
                        .with_label_values(&c)
                        .set(if t.down_us > 0 { 0.0 } else { 1.0 });
                }
            }
            for r in state.rollups.regions_now(&check, now).unwrap_or_default() {
                if let Some(failing) = r.failing {
                    self.region_failing
                        .with_label_values(&[check.as_str(), r.region.as_str()])
                        .set(if failing { 1.0 } else { 0.0 });
                }
            }
        }
    }
}

//! The alerter's `/metrics`: check states, changes, notifications, the outbox, and whether it
//! can see the collector, for the dashboards and for monitoring the monitor.

use lookout_api::metrics::register as reg;
use prometheus::{GaugeVec, IntCounterVec, IntGauge, Opts, Registry};

use crate::notify::Level;

pub struct Metrics {
    pub registry: Registry,
    pub evaluations: IntCounterVec,
    pub changes: IntCounterVec,
    pub state: GaugeVec,
    pub notifications: IntCounterVec,
    pub outbox_pending: IntGauge,
    pub outbox_failed: IntGauge,
    pub problems_open: IntGauge,
    pub collector_up: IntGauge,
    pub heartbeats: IntCounterVec,
    pub console_refusals: IntCounterVec,
    pub console_actions: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let r = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels)
        };
        Ok(Metrics {
            console_refusals: reg(
                &r,
                counter(
                    "lookout_alerting_console_refusals_total",
                    "Console requests refused, by reason (no_session, signed_out, csrf, read_only, bad_token, ack_link_forged, ack_link_expired, ack_link_used).",
                    &["reason"],
                )?,
            )?,
            console_actions: reg(
                &r,
                counter(
                    "lookout_alerting_console_actions_total",
                    "What people did through the console, by action.",
                    &["action"],
                )?,
            )?,
            evaluations: reg(
                &r,
                counter(
                    "lookout_alerting_evaluations_total",
                    "Check evaluations, by outcome (ok, or error when a source could not be read).",
                    &["outcome"],
                )?,
            )?,
            changes: reg(
                &r,
                counter(
                    "lookout_alerting_state_changes_total",
                    "Changes of check state (alerts), by the state changed to.",
                    &["to"],
                )?,
            )?,
            state: reg(
                &r,
                GaugeVec::new(
                    Opts::new(
                        "lookout_alerting_check_state",
                        "1 for each check's current state (OK, WARN, ERROR, UNKNOWN).",
                    ),
                    &["check", "state"],
                )?,
            )?,
            notifications: reg(
                &r,
                counter(
                    "lookout_alerting_notifications_total",
                    "Notification attempts, by notifier kind, notification kind and outcome (sent, retry, failed).",
                    &["notifier", "kind", "outcome"],
                )?,
            )?,
            outbox_pending: reg(
                &r,
                IntGauge::new(
                    "lookout_alerting_outbox_pending",
                    "Notifications waiting to be delivered (or retried).",
                )?,
            )?,
            outbox_failed: reg(
                &r,
                IntGauge::new(
                    "lookout_alerting_outbox_failed",
                    "Notifications given up on: refused by the receiver or out of attempts.",
                )?,
            )?,
            problems_open: reg(
                &r,
                IntGauge::new("lookout_alerting_problems_open", "Problems open now.")?,
            )?,
            collector_up: reg(
                &r,
                IntGauge::new(
                    "lookout_alerting_collector_up",
                    "1 while the collector's live state feed answers.",
                )?,
            )?,
            heartbeats: reg(
                &r,
                counter(
                    "lookout_alerting_heartbeats_total",
                    "Heartbeats to the dead-man's switch, by outcome.",
                    &["outcome"],
                )?,
            )?,
            registry: r,
        })
    }

    /// Makes the state-change counters exist at zero, so the first alert shows in a rate
    /// (a series born at 1 has none).
    pub fn init_changes(&self) {
        for l in [Level::Ok, Level::Warn, Level::Error, Level::Unknown] {
            self.changes.with_label_values(&[l.as_str()]);
        }
    }

    pub fn set_state(&self, check: &str, level: Level) {
        for l in [Level::Ok, Level::Warn, Level::Error, Level::Unknown] {
            self.state
                .with_label_values(&[check, l.as_str()])
                .set(if l == level { 1.0 } else { 0.0 });
        }
    }
}

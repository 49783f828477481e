//! A check, validated: a named journey of steps (HTTP requests with captures and
//! assertions, TCP exchanges, ...), its schedule, timeout and latency objective. Built once from the config; never re-checked.

use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;

use crate::kind::Probe;

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bodies beyond this are not read (a huge or endless body ends the run).
pub const DEFAULT_MAX_BODY: usize = 1 << 20;
pub const DEFAULT_MAX_REDIRECTS: u8 = 5;

/// One step of a journey: its name, and what it does.
#[derive(Debug)]
pub struct Step {
    pub name: String,
    pub probe: Box<dyn Probe>,
}

/// How a check is scheduled, before it is placed in a region.
#[derive(Debug, Clone)]
pub enum ScheduleSpec {
    Every(Duration),
    Cron(lookout_conf::Cron),
}

#[derive(Debug)]
pub struct Check {
    pub name: String,
    pub description: String,
    pub schedule: ScheduleSpec,
    pub timeout: Duration,
    /// The regions that run it; empty means every region.
    pub regions: Vec<String>,
    /// Keep connections between runs (a warm client) instead of a cold user's fresh ones.
    pub reuse_connections: bool,
    pub max_body: usize,
    pub max_redirects: u8,
    pub tls: Arc<ClientConfig>,
    pub steps: Vec<Step>,
    /// A check no agent runs: a job reports to the collector (its steps are empty).
    pub heartbeat: Option<lookout_model::heartbeat::Heartbeat>,
}

impl Check {
    /// Whether an agent of `region` runs it: never a heartbeat check.
    pub fn runs_in(&self, region: &str) -> bool {
        self.heartbeat.is_none()
            && (self.regions.is_empty() || self.regions.iter().any(|r| r == region))
    }

    pub fn schedule_in(&self, region: &str) -> crate::schedule::Schedule {
        match &self.schedule {
            ScheduleSpec::Every(interval) => {
                crate::schedule::Schedule::every(*interval, &self.name, region)
            }
            ScheduleSpec::Cron(c) => crate::schedule::Schedule::Cron(c.clone()),
        }
    }
}

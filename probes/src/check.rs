//! A check, validated: a named journey of HTTP steps with captures and assertions, its
//! schedule, timeout and latency objective. Built once from the config; never re-checked.

use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use hyper::header::HeaderName;
use rustls::ClientConfig;

use crate::assert::Assertion;
use crate::capture::Capture;
use crate::template::Template;

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bodies beyond this are not read (a huge or endless body ends the run).
pub const DEFAULT_MAX_BODY: usize = 1 << 20;
pub const DEFAULT_MAX_REDIRECTS: u8 = 5;

#[derive(Debug)]
pub struct Step {
    pub name: String,
    pub method: Method,
    pub url: Template,
    pub headers: Vec<(HeaderName, Template)>,
    pub body: Option<Template>,
    pub captures: Vec<Capture>,
    pub assertions: Vec<Box<dyn Assertion>>,
}

impl Step {
    /// Whether the step says which statuses are fine (else 2xx and 3xx are).
    pub fn judges_status(&self) -> bool {
        self.assertions.iter().any(|a| a.judges_status())
    }
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
}

impl Check {
    pub fn runs_in(&self, region: &str) -> bool {
        self.regions.is_empty() || self.regions.iter().any(|r| r == region)
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

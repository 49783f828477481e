//! Something that happened to the platform that is not a probe result: a replacement, a brake
//! held. Components send them to the collector; dashboards annotate with them and the alerter
//! reads them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Who says so: `replacer`.
    pub source: String,
    /// What happened: `replacement_started`, `held`, ...
    pub kind: String,
    /// The service concerned.
    pub service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    pub message: String,
    pub time_us: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// An event as the collector keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub id: i64,
    #[serde(flatten)]
    pub event: Event,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventBatch {
    pub events: Vec<Event>,
}

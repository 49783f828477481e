//! Every decision, as an event: kept for `GET /api/v1/events`, logged, and counted.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

/// Events kept for the API; older ones are dropped (they were logged).
const KEPT: usize = 2_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Unhealthy,
    Recovered,
    ProcessDied,
    ReplacementStarted,
    ReplacementDone,
    ReplacementFailed,
    /// A brake that needs a person: mass failure.
    Held,
    /// The brake let go: the failures are gone.
    Released,
    /// Dry run: what would have been done.
    WouldReplace,
    Added,
    Removed,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Unhealthy => "unhealthy",
            Kind::Recovered => "recovered",
            Kind::ProcessDied => "process_died",
            Kind::ReplacementStarted => "replacement_started",
            Kind::ReplacementDone => "replacement_done",
            Kind::ReplacementFailed => "replacement_failed",
            Kind::Held => "held",
            Kind::Released => "released",
            Kind::WouldReplace => "would_replace",
            Kind::Added => "added",
            Kind::Removed => "removed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub seq: u64,
    pub time_us: i64,
    /// RFC 3339, for people.
    pub time: String,
    pub kind: Kind,
    pub service: String,
    pub instance: Option<String>,
    pub message: String,
    /// How long the step took, where it has a length (a replacement).
    pub duration_ms: Option<u64>,
}

#[derive(Default)]
pub struct Log {
    inner: Mutex<(u64, VecDeque<Event>)>,
}

impl Log {
    pub fn push(
        &self,
        kind: Kind,
        service: &str,
        instance: Option<&str>,
        message: String,
        duration_ms: Option<u64>,
    ) -> Event {
        let now = chrono::Utc::now();
        let mut g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.0 += 1;
        let event = Event {
            seq: g.0,
            time_us: now.timestamp_micros(),
            time: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            kind,
            service: service.to_owned(),
            instance: instance.map(str::to_owned),
            message,
            duration_ms,
        };
        match kind {
            Kind::Held | Kind::ReplacementFailed | Kind::ProcessDied => {
                tracing::error!(kind = kind.as_str(), service, instance, message = %event.message, "replacer")
            }
            Kind::Unhealthy => {
                tracing::warn!(kind = kind.as_str(), service, instance, message = %event.message, "replacer")
            }
            _ => {
                tracing::info!(kind = kind.as_str(), service, instance, message = %event.message, duration_ms, "replacer")
            }
        }
        g.1.push_back(event.clone());
        while g.1.len() > KEPT {
            g.1.pop_front();
        }
        event
    }

    /// Events after `after` (a seq), oldest first.
    pub fn since(&self, after: u64) -> Vec<Event> {
        let g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.1.iter().filter(|e| e.seq > after).cloned().collect()
    }
}

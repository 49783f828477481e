//! Step assertions. Each kind is one file implementing [`Assertion`], plus one variant of
//! [`AssertionConfig`] and its arm in [`AssertionConfig::build`]; nothing else to touch.

mod body_contains;
mod cert_days_left;
mod header;
mod json;
mod max_time;
mod status;

use std::sync::OnceLock;
use std::time::Duration;

use hyper::header::HeaderMap;
use serde::Deserialize;
use serde_json::Value;

/// The response a step's assertions and captures look at.
pub struct Response<'a> {
    pub status: u16,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// The step's time, redirects included.
    pub elapsed: Duration,
    pub cert_days_left: Option<i64>,
    json: OnceLock<Result<Value, String>>,
}

impl<'a> Response<'a> {
    pub fn new(
        status: u16,
        headers: &'a HeaderMap,
        body: &'a [u8],
        elapsed: Duration,
        cert_days_left: Option<i64>,
    ) -> Self {
        Response {
            status,
            headers,
            body,
            elapsed,
            cert_days_left,
            json: OnceLock::new(),
        }
    }

    /// The body parsed as JSON, once, however many assertions ask.
    pub fn json(&self) -> Result<&Value, &str> {
        self.json
            .get_or_init(|| serde_json::from_slice(self.body).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(String::as_str)
    }
}

/// One assertion on a step's response. A failure says what was expected and what came back.
pub trait Assertion: Send + Sync + std::fmt::Debug {
    fn check(&self, response: &Response<'_>) -> Result<(), String>;

    /// Whether this assertion decides which statuses are acceptable (else 2xx/3xx is implied).
    fn judges_status(&self) -> bool {
        false
    }
}

/// An assertion as written in the config: `{ type: status, equals: 200 }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AssertionConfig {
    Status(status::StatusConfig),
    Json(json::JsonConfig),
    BodyContains(body_contains::BodyContainsConfig),
    Header(header::HeaderConfig),
    MaxTime(max_time::MaxTimeConfig),
    CertDaysLeft(cert_days_left::CertDaysLeftConfig),
}

impl AssertionConfig {
    /// Validates once, at load: regexes compiled, paths parsed, exactly one operator.
    pub fn build(self) -> Result<Box<dyn Assertion>, String> {
        match self {
            AssertionConfig::Status(c) => c.build(),
            AssertionConfig::Json(c) => c.build(),
            AssertionConfig::BodyContains(c) => c.build(),
            AssertionConfig::Header(c) => c.build(),
            AssertionConfig::MaxTime(c) => c.build(),
            AssertionConfig::CertDaysLeft(c) => c.build(),
        }
    }
}

/// The statuses accepted when a step has no status assertion, as blackbox_exporter does.
pub fn default_status_ok(status: u16) -> Result<(), String> {
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(format!("status: expected 2xx or 3xx, got {status}"))
    }
}

pub use lookout_conf::one_line;

/// Shortens a value for a failure message.
pub fn shown(text: &str) -> String {
    const MAX: usize = 120;
    if text.chars().count() <= MAX {
        format!("{text:?}")
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut:?}…")
    }
}

#[cfg(test)]
mod tests;

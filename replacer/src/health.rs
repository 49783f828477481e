//! One instance's health as the replacer sees it: `/healthcheck` polled with a timeout, and
//! consecutive results counted against thresholds, as a Kubernetes liveness probe does. An
//! instance that serves but reports a dead dependency (the gateway with a dead upstream) is
//! serving: replacing it would not bring the dependency back.

use std::time::Duration;

use lookout_model::health::Health;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthSettings {
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive failed polls that make an instance unhealthy.
    pub failure_threshold: u32,
    /// Consecutive good polls that make it healthy again.
    pub success_threshold: u32,
    /// After an instance starts, failures do not count for this long (AWS Auto Scaling's
    /// health check grace period).
    pub grace: Duration,
}

impl Default for HealthSettings {
    /// Kubernetes' liveness defaults: every 10 s, 1 s timeout, 3 failures, 1 success.
    fn default() -> Self {
        HealthSettings {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(1),
            failure_threshold: 3,
            success_threshold: 1,
            grace: Duration::from_secs(30),
        }
    }
}

impl HealthSettings {
    /// Thresholds that cannot work, named.
    pub fn check(&self) -> Result<(), String> {
        if self.failure_threshold == 0 || self.success_threshold == 0 {
            return Err("failure_threshold and success_threshold must be at least 1".into());
        }
        if self.timeout.is_zero() || self.interval.is_zero() {
            return Err("interval and timeout must be more than 0".into());
        }
        if self.timeout > self.interval {
            return Err(format!(
                "timeout ({}) must not be longer than interval ({}): polls would overlap",
                humantime::format_duration(self.timeout),
                humantime::format_duration(self.interval)
            ));
        }
        Ok(())
    }
}

/// One poll's result.
#[derive(Debug, Clone, PartialEq)]
pub enum Poll {
    Serving,
    /// Serving, but a dependency is not: noted, never a reason to replace.
    ServingDegraded(String),
    Failed(String),
}

/// Reads `{url}/healthcheck` once, within `timeout`, whatever the instance does.
pub async fn poll(http: &reqwest::Client, url: &str, timeout: Duration) -> Poll {
    let target = format!("{}/healthcheck", url.trim_end_matches('/'));
    let answer = tokio::time::timeout(timeout, async {
        let response = http.get(&target).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        Ok::<_, reqwest::Error>((status, body))
    })
    .await;
    let (status, body) = match answer {
        Err(_) => {
            return Poll::Failed(format!(
                "no answer within {}",
                humantime::format_duration(timeout)
            ));
        }
        Ok(Err(e)) if e.is_connect() => return Poll::Failed("connection refused".into()),
        Ok(Err(e)) => return Poll::Failed(format!("request failed: {}", without_url(&e))),
        Ok(Ok(a)) => a,
    };
    match serde_json::from_slice::<Health>(&body) {
        Ok(h) if h.status.is_serving() => {
            let failing: Vec<&str> = h
                .dependencies
                .iter()
                .filter(|d| d.status != lookout_model::health::HealthStatus::Ok)
                .map(|d| d.name.as_str())
                .collect();
            if failing.is_empty() {
                Poll::Serving
            } else {
                Poll::ServingDegraded(format!("dependencies not ok: {}", failing.join(", ")))
            }
        }
        Ok(_) => Poll::Failed(format!("reports itself down (HTTP {})", status.as_u16())),
        Err(e) => Poll::Failed(format!(
            "unreadable healthcheck (HTTP {}): {e}",
            status.as_u16()
        )),
    }
}

fn without_url(e: &reqwest::Error) -> String {
    match std::error::Error::source(e) {
        Some(s) => s.to_string(),
        None => "request failed".into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// In its grace period, or not polled yet.
    Starting,
    Healthy,
    Unhealthy,
}

/// A change of an instance's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub to: State,
    pub reason: String,
}

/// Counts consecutive polls.
#[derive(Debug, Clone, Serialize)]
pub struct Tracker {
    pub state: State,
    pub failures: u32,
    pub successes: u32,
    /// The last poll's words: why it failed, or what is degraded.
    pub last: Option<String>,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker {
            state: State::Starting,
            failures: 0,
            successes: 0,
            last: None,
        }
    }
}

impl Tracker {
    /// Counts one poll; `in_grace`: failures do not count yet.
    pub fn observe(
        &mut self,
        poll: &Poll,
        settings: &HealthSettings,
        in_grace: bool,
    ) -> Option<Transition> {
        match poll {
            Poll::Serving | Poll::ServingDegraded(_) => {
                self.failures = 0;
                self.successes = self.successes.saturating_add(1);
                self.last = match poll {
                    Poll::ServingDegraded(why) => Some(why.clone()),
                    _ => None,
                };
                if self.state != State::Healthy && self.successes >= settings.success_threshold {
                    self.state = State::Healthy;
                    return Some(Transition {
                        to: State::Healthy,
                        reason: self
                            .last
                            .clone()
                            .unwrap_or_else(|| "healthcheck passes".into()),
                    });
                }
            }
            Poll::Failed(why) => {
                self.successes = 0;
                self.last = Some(why.clone());
                if in_grace {
                    return None;
                }
                self.failures = self.failures.saturating_add(1);
                if self.state != State::Unhealthy && self.failures >= settings.failure_threshold {
                    self.state = State::Unhealthy;
                    return Some(Transition {
                        to: State::Unhealthy,
                        reason: format!("{} failed healthchecks in a row: {why}", self.failures),
                    });
                }
            }
        }
        None
    }

    /// The provider sees the process dead: unhealthy at once.
    pub fn dead(&mut self) -> Option<Transition> {
        if self.state == State::Unhealthy {
            return None;
        }
        self.state = State::Unhealthy;
        self.last = Some("the process is dead".into());
        Some(Transition {
            to: State::Unhealthy,
            reason: "the process is dead".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_count_consecutive_polls_and_grace_ignores_failures() {
        let s = HealthSettings {
            failure_threshold: 3,
            success_threshold: 2,
            ..Default::default()
        };
        let mut t = Tracker::default();
        let fail = Poll::Failed("connection refused".into());
        assert_eq!(t.observe(&fail, &s, true), None);
        assert_eq!(t.failures, 0, "failures in the grace period do not count");
        assert_eq!(t.observe(&Poll::Serving, &s, false), None);
        let up = t.observe(&Poll::Serving, &s, false);
        assert_eq!(up.map(|t| t.to), Some(State::Healthy));
        assert_eq!(t.observe(&fail, &s, false), None);
        assert_eq!(t.observe(&fail, &s, false), None);
        // A good poll in between starts the count again.
        assert_eq!(
            t.observe(&Poll::ServingDegraded("dep".into()), &s, false),
            None
        );
        assert_eq!(t.observe(&fail, &s, false), None);
        assert_eq!(t.observe(&fail, &s, false), None);
        let down = t.observe(&fail, &s, false);
        assert_eq!(down.map(|t| t.to), Some(State::Unhealthy));
        assert_eq!(t.observe(&fail, &s, false), None, "told once");
    }

    #[test]
    fn impossible_thresholds_are_named() {
        let bad = HealthSettings {
            failure_threshold: 0,
            ..Default::default()
        };
        assert!(bad.check().is_err());
        let overlap = HealthSettings {
            timeout: Duration::from_secs(20),
            ..Default::default()
        };
        assert!(overlap.check().unwrap_err().contains("overlap"));
    }
}

use std::time::Duration;

use serde::Deserialize;

use super::{Assertion, Response};

/// `{ type: max_time, max: 300ms }`: the step (redirects included) must take no longer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxTimeConfig {
    pub max: String,
}

#[derive(Debug)]
struct MaxTime(Duration);

impl MaxTimeConfig {
    pub fn build(self) -> Result<Box<dyn Assertion>, String> {
        let d = humantime::parse_duration(self.max.trim()).map_err(|e| {
            format!(
                "`max`: {:?} is not a duration ({e}); write e.g. `300ms`",
                self.max
            )
        })?;
        if d.is_zero() {
            return Err("`max` must be more than zero".into());
        }
        Ok(Box::new(MaxTime(d)))
    }
}

impl Assertion for MaxTime {
    fn check(&self, r: &Response<'_>) -> Result<(), String> {
        if r.elapsed <= self.0 {
            Ok(())
        } else {
            Err(format!(
                "time: expected at most {} ms, took {:.1} ms",
                self.0.as_millis(),
                r.elapsed.as_secs_f64() * 1e3
            ))
        }
    }
}

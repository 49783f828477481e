use serde::Deserialize;

use super::{Assertion, Response};

/// `{ type: status, equals: 200 }` or `{ type: status, one_of: [200, 204] }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusConfig {
    pub equals: Option<u16>,
    pub one_of: Option<Vec<u16>>,
}

#[derive(Debug)]
struct Status(Vec<u16>);

impl StatusConfig {
    pub fn build(self) -> Result<Box<dyn Assertion>, String> {
        let codes = match (self.equals, self.one_of) {
            (Some(c), None) => vec![c],
            (None, Some(list)) if !list.is_empty() => list,
            _ => {
                return Err(
                    "a status assertion needs exactly one of `equals` or `one_of` (non-empty)"
                        .into(),
                );
            }
        };
        if let Some(bad) = codes.iter().find(|c| !(100..=599).contains(*c)) {
            return Err(format!("{bad} is not an HTTP status code"));
        }
        Ok(Box::new(Status(codes)))
    }
}

impl Assertion for Status {
    fn check(&self, r: &Response<'_>) -> Result<(), String> {
        if self.0.contains(&r.status) {
            Ok(())
        } else if self.0.len() == 1 {
            Err(format!("status: expected {}, got {}", self.0[0], r.status))
        } else {
            Err(format!(
                "status: expected one of {:?}, got {}",
                self.0, r.status
            ))
        }
    }

    fn judges_status(&self) -> bool {
        true
    }
}

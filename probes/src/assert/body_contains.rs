use serde::Deserialize;

use super::{Assertion, Response};

/// `{ type: body_contains, text: "paging" }`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyContainsConfig {
    pub text: String,
}

#[derive(Debug)]
struct BodyContains(String);

impl BodyContainsConfig {
    pub fn build(self) -> Result<Box<dyn Assertion>, String> {
        if self.text.is_empty() {
            return Err("`text` must not be empty".into());
        }
        Ok(Box::new(BodyContains(self.text)))
    }
}

impl Assertion for BodyContains {
    fn check(&self, r: &Response<'_>) -> Result<(), String> {
        let needle = self.0.as_bytes();
        if r.body.windows(needle.len()).any(|w| w == needle) {
            Ok(())
        } else {
            Err(format!(
                "body: expected to contain {:?}, it does not ({} bytes)",
                self.0,
                r.body.len()
            ))
        }
    }
}

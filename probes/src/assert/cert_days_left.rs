use serde::Deserialize;

use super::{Assertion, Response};

/// `{ type: cert_days_left, min: 14 }`: the server certificate must be valid that much longer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertDaysLeftConfig {
    pub min: i64,
}

#[derive(Debug)]
struct CertDaysLeft(i64);

impl CertDaysLeftConfig {
    pub fn build(self) -> Result<Box<dyn Assertion>, String> {
        Ok(Box::new(CertDaysLeft(self.min)))
    }
}

impl Assertion for CertDaysLeft {
    fn check(&self, r: &Response<'_>) -> Result<(), String> {
        match r.cert_days_left {
            None => {
                Err("certificate: none (the step did not use HTTPS on a new connection)".into())
            }
            Some(d) if d >= self.0 => Ok(()),
            Some(d) => Err(format!(
                "certificate: expected at least {} days left, {d} left",
                self.0
            )),
        }
    }
}

//! `/metrics` the same way everywhere: one registry per process part, the classic text format
//! that `promtool check metrics` lints.

use prometheus::core::Collector;
use prometheus::{Encoder, Registry, TextEncoder};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Registers `metric` and hands it back, ready to use.
pub fn register<M: Collector + Clone + 'static>(
    registry: &Registry,
    metric: M,
) -> Result<M, prometheus::Error> {
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// The registry's current values in the text format.
pub fn encode(registry: &Registry) -> Vec<u8> {
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&registry.gather(), &mut out) {
        tracing::error!(error = %e, "metrics encoding failed");
    }
    out
}

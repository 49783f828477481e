//! One instance of one service, as every provider describes it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Unique and stable for the instance's life: `catalogue#1`, `i-0abc12...`.
    pub id: String,
    /// The service it runs: `catalogue`, `mixes`, ...
    pub service: String,
    /// Its base URL; its health is read at `{url}/healthcheck`.
    pub url: String,
    /// When it started, in microseconds since the epoch: the grace period counts from here.
    pub started_us: i64,
    /// Where its `/metrics` is, when not at `{url}/metrics`: the local platform's admin
    /// listener, which stays open while a `down` fault closes the main one, so Prometheus
    /// sees the fault instead of a gap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_url: Option<String>,
}

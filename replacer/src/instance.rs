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
}

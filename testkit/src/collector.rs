//! A real collector in the test's own process, on a free port of 127.0.0.1, its store in
//! memory unless the test hands one: what a test of a reader (the alerter, the status page, an
//! agent) starts first.

use std::collections::BTreeMap;
use std::sync::Arc;

use lookout_collector::store::{ResultStore, StoreConfig};
use lookout_collector::{CheckInfo, Collector, CollectorSettings, Known};
use lookout_model::secret::Secret;

/// What the collector is told of a check: the regions that run it, how often, and how long
/// a run may take (the live state's silence and staleness follow from these).
pub fn check(regions: &[&str], interval_us: i64, timeout_us: i64) -> CheckInfo {
    CheckInfo {
        regions: regions.iter().map(|r| r.to_string()).collect(),
        interval_us,
        timeout_us,
        ..CheckInfo::unknown()
    }
}

/// The same `info` for each of `names`.
pub fn known(names: &[&str], info: &CheckInfo) -> Known {
    names
        .iter()
        .map(|n| (n.to_string(), info.clone()))
        .collect::<BTreeMap<_, _>>()
}

/// A collector guarded by `token` that knows `known`, its store in memory.
pub async fn start(token: &str, known: Known) -> Collector {
    let store = StoreConfig::Memory.open().unwrap();
    start_with(CollectorSettings::new(Secret::new(token), known), store).await
}

/// A collector with these settings and this store.
pub async fn start_with(settings: CollectorSettings, store: Arc<dyn ResultStore>) -> Collector {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Collector::start(settings, store, listener).await.unwrap()
}

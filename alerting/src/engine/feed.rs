//! The collector's live state as the loop sees it: followed by long poll, and judged for
//! whether the monitoring itself has gone blind.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::sync::watch;

use super::{FEED_STALE, Shared};
use crate::check::Check;
use crate::source::{SourceError, Sources};
use lookout_api::client::Feed;
use lookout_model::read::{LiveState, RegionState, States};

/// How many regions are blind: all of them when the feed is stale, else those silent on
/// every check they run.
pub(super) fn blind(
    shared: &Shared,
    check: &Check,
    feed: &Feed,
) -> Result<Option<f64>, SourceError> {
    if shared.started.elapsed() < shared.settings.load().blind_grace {
        // Keeps the state as it was: a restart during an outage of the collector must
        // neither resolve the blind page nor page again.
        return Err(SourceError(
            "just started: regions may not have reported yet".into(),
        ));
    }
    let regions: BTreeSet<&str> = feed
        .states
        .checks
        .iter()
        .flat_map(|c| c.regions.iter().map(|r| r.region.as_str()))
        .collect();
    // Everything blind counts as every region, whether or not the regions are known.
    let all = check
        .thresholds
        .error
        .unwrap_or(regions.len().max(1) as f64);
    let stale = match feed.answered {
        Some(t) => t.elapsed() > FEED_STALE,
        // Never answered: blind once that has lasted as long as a stale feed would.
        None => shared.started.elapsed() > FEED_STALE,
    };
    if stale {
        return Ok(Some(all));
    }
    if feed.answered.is_none() {
        return Err(SourceError("waiting for the collector's live state".into()));
    }
    let silent = regions
        .iter()
        .filter(|region| {
            feed.states.checks.iter().all(|c| {
                c.regions
                    .iter()
                    .filter(|r| r.region == **region)
                    .all(|r| r.state == RegionState::Silent)
            })
        })
        .count();
    Ok(Some(silent as f64))
}

/// While a down check waits for its confirmation, the feed is read every second instead of
/// waiting for a change: a new failure from an already failing region changes nothing the
/// feed reports as a change.
pub fn feed_wait(states: &States) -> Duration {
    let pending = states.checks.iter().any(|c| c.state == LiveState::Down);
    if pending {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(25)
    }
}

/// Keeps the latest feed in `tx`: long polls, quicker while something is down.
pub async fn follow_feed(
    sources: Sources,
    tx: watch::Sender<Feed>,
    metrics_up: prometheus::IntGauge,
    stop: watch::Receiver<bool>,
) {
    lookout_api::client::follow(
        sources.collector(),
        &tx,
        feed_wait,
        |outcome| match outcome {
            Ok(_) => metrics_up.set(1),
            Err(e) => {
                metrics_up.set(0);
                tracing::warn!(error = %e, "alerter: the collector's live state feed failed; retrying");
            }
        },
        stop,
    )
    .await;
}

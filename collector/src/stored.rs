//! What follows a batch being stored, wherever it was stored from (an agent's request on a
//! single collector, or the replicated log on a replica): sinks, metrics, rollups, the live
//! state and the confirmations it asks for. Both paths call [`after_stored`], so a replica
//! does exactly what a single collector does with the same results.

use lookout_model::probe::ProbeResult;

use crate::{AppState, CheckInfo, sink, store};

/// `inserted` says, for each of `results`, whether it is new; `now_us` is when it was stored.
pub(crate) fn after_stored(s: &AppState, results: &[ProbeResult], inserted: &[bool], now_us: i64) {
    let (stored, duplicates) = store::counts(inserted);
    sink::offer_stored(&s.settings.sinks, results, inserted);
    s.metrics
        .results
        .with_label_values(&["stored"])
        .inc_by(stored as u64);
    s.metrics
        .results
        .with_label_values(&["duplicate"])
        .inc_by(duplicates as u64);
    s.metrics.stored.set(s.store().len() as i64);
    s.rollups.observe(results, inserted);
    // Only once stored: a waiter told of a change must find it in every answer after.
    s.live
        .observe(results, inserted, chrono::Utc::now().timestamp_micros());
    if let Some(first) = results.first() {
        s.metrics
            .agent_last_result
            .with_label_values(&[first.agent.as_str(), first.region.as_str()])
            .set(now_us as f64 / 1e6);
    }
    if let Some(agent) = results.first().map(|r| r.agent.clone())
        && let Some(offset) = clock_offset(results, now_us)
    {
        s.metrics
            .clock_offset
            .with_label_values(&[agent.as_str()])
            .set(offset);
        if offset < -1.0 {
            tracing::warn!(%agent, ahead_seconds = -offset, "the agent's clock is ahead of the collector's: its results' times are off");
        }
        s.clock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(agent, offset);
    }
    for (r, new) in results.iter().zip(inserted) {
        // A replay is acknowledged, not counted again.
        if *new {
            let objective_us = s.known().get(&r.check).map_or_else(
                || CheckInfo::unknown().slo.latency_objective_us(),
                |i| i.slo.latency_objective_us(),
            );
            s.metrics.observe(r, objective_us);
        }
        let asked = s.hub.observe(r);
        if !asked.is_empty() {
            tracing::info!(check = %r.check, region = %r.region, agents = ?asked, "new failure; asking other regions to confirm");
            s.metrics
                .confirmations
                .with_label_values(&[&r.check])
                .inc_by(asked.len() as u64);
        }
    }
}

/// least time between a run's end (by the agent's clock) and its arrival (by ours). Delivery
/// makes it a little positive (a second or so); a negative figure can only be the agent's
/// clock running ahead, and a large positive one on a fresh batch, behind (or a spool being
/// replayed).
fn clock_offset(results: &[ProbeResult], now_us: i64) -> Option<f64> {
    results
        .iter()
        .map(|r| {
            now_us
                - r.started_at_us
                    .saturating_add(i64::try_from(r.duration_us).unwrap_or(0))
        })
        .min()
        .map(|us| us as f64 / 1e6)
}

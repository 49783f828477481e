//! Since when each check has been judged by its SLO. Changing a check's target rewrites no
//! history: every window is judged by the SLO as it is now, and the change is recorded as an
//! event (`GET /api/v1/events`, the dashboards' annotations), so that a budget that moved
//! overnight can be explained.

use std::collections::BTreeMap;

use lookout_model::event::Event;
use lookout_model::slo::Slo;

use crate::ingest::Known;
use crate::store::{ResultStore, StoreError};

fn describe(slo: &Slo) -> String {
    format!(
        "{} over {} days, {} ms, maintenance {}",
        slo.target(),
        slo.window().as_secs_f64() / 86_400.0,
        slo.latency_objective().as_millis(),
        if slo.maintenance_in_sla() {
            "counted"
        } else {
            "left out"
        }
    )
}

/// Records the SLO of every known check, an event for each that changed since the last start,
/// and answers since when each has held. Blocking.
pub fn record(
    store: &dyn ResultStore,
    known: &Known,
    now_us: i64,
) -> Result<BTreeMap<String, i64>, StoreError> {
    let held = store.slos()?;
    let mut since = BTreeMap::new();
    let (mut writes, mut events) = (Vec::new(), Vec::new());
    for (check, info) in known {
        let body = serde_json::to_string(&info.slo)
            .map_err(|e| StoreError::Unavailable(format!("SLO of {check}: {e}")))?;
        match held.get(check) {
            Some((old, at)) if *old == body => {
                since.insert(check.clone(), *at);
            }
            old => {
                if let Some(before) = old.and_then(|(b, _)| serde_json::from_str::<Slo>(b).ok()) {
                    events.push(Event {
                        source: "collector".into(),
                        kind: "slo_changed".into(),
                        service: check.clone(),
                        instance: None,
                        message: format!(
                            "{check}: SLO changed from {} to {}; every window is now judged by the new one",
                            describe(&before),
                            describe(&info.slo)
                        ),
                        time_us: now_us,
                        duration_ms: None,
                    });
                    tracing::info!(%check, from = %describe(&before), to = %describe(&info.slo), "SLO changed");
                }
                writes.push((check.clone(), body, now_us));
                since.insert(check.clone(), now_us);
            }
        }
    }
    if !writes.is_empty() {
        store.put_slos(&writes, &events)?;
    }
    Ok(since)
}

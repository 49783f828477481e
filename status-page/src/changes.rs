//! Everything that changes the page's incidents, applied the same way on every status page
//! replica: the down intervals read from the collector (which open, join and resolve the
//! automatic incidents) and people's incidents, updates and corrections. Alone, a change is
//! applied at once. On a replica it is published to the replicated log (`STREAM.status.…`) and
//! every replica, the one that published included, applies the log in order: the same changes
//! in the same order make the same incidents with the same ids, so any replica can answer for
//! the page.
//!
//! Applying is idempotent: a person's change is applied once by its origin (recorded in the
//! same transaction), and a down interval already stored as it is changes nothing. So the
//! position applied is written after each batch rather than with it, and a restart that reads
//! a batch again does no harm.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use lookout_api::ApiError;
use lookout_cluster::{Applied, Changes, Log};
use lookout_model::read::Incident as DownInterval;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::Shared;
use crate::model::{Impact, IncidentStatus};
use crate::store::{self, StoreError};
use crate::sync::{self, Seen};

/// The kind of message (the subject's second token) of the status page's changes.
const KIND: &str = "status";
/// How long an answer waits for this replica to apply its own change.
const OWN_APPLY: Duration = Duration::from_secs(10);

/// A down interval of the check behind a component, as a replica read it from its collector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeenInterval {
    pub component: String,
    pub interval: DownInterval,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// Down intervals new to the store, or changed (ended) since it stored them.
    Seen { intervals: Vec<SeenInterval> },
    /// A person opens an incident.
    Open {
        origin: String,
        name: String,
        message: String,
        status: IncidentStatus,
        impact: Impact,
        components: Vec<String>,
        at_us: i64,
    },
    /// A person posts an update, and may change the impact with it.
    Update {
        origin: String,
        incident: i64,
        status: IncidentStatus,
        message: String,
        impact: Option<Impact>,
        at_us: i64,
    },
    /// A person corrects an incident's impact or name.
    Correct {
        origin: String,
        incident: i64,
        impact: Option<Impact>,
        name: Option<String>,
        at_us: i64,
    },
}

impl Change {
    /// The id the log dedupes by: a person's change by its origin, an observation by what it
    /// saw, so that two replicas reading the same interval publish it once.
    fn id(&self) -> String {
        match self {
            Change::Open { origin, .. }
            | Change::Update { origin, .. }
            | Change::Correct { origin, .. } => origin.clone(),
            Change::Seen { intervals } => {
                let mut seen = String::new();
                for s in intervals {
                    let iv = &s.interval;
                    seen.push_str(&format!(
                        "{}@{}-{:?}{:?};",
                        s.component, iv.start_us, iv.end_us, iv.regions
                    ));
                }
                format!("seen-{:016x}", xxhash_rust::xxh3::xxh3_64(seen.as_bytes()))
            }
        }
    }
}

/// A person's change's origin: unique across replicas and restarts.
pub fn origin(what: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "{what}-{}-{}-{n}",
        chrono::Utc::now().timestamp_micros(),
        std::process::id()
    )
}

/// On a replica: the status page's changes on the log, applied up to `applied` already.
pub fn changes(log: Log, applied: u64) -> Changes {
    Changes::new(log, KIND, applied)
}

fn internal(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "status page: a change could not be stored");
    ApiError::Internal("the store failed".into())
}

async fn publish(changes: &Changes, change: &Change) -> Result<u64, ApiError> {
    let payload =
        serde_json::to_vec(change).map_err(|e| ApiError::Internal(format!("a change: {e}")))?;
    changes
        .make(change.id(), Bytes::from(payload), OWN_APPLY)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))
}

/// A person's change: applied here, or through the log on a replica; answers with the incident
/// it made or changed once this replica has applied it.
pub async fn make(shared: &Shared, change: Change) -> Result<i64, ApiError> {
    let Some(changes) = &shared.changes else {
        return apply(shared, &change)
            .map_err(internal)?
            .ok_or_else(|| ApiError::Internal("the change named no incident".into()));
    };
    publish(changes, &change).await?;
    shared
        .store
        .applied_change(&change.id())
        .map_err(internal)?
        .ok_or_else(|| ApiError::Internal("the change was read but not applied".into()))
}

/// The down intervals read from the collector: applied here, or, on a replica, those new to
/// its store published for every replica to apply (the page shows them once applied).
pub async fn observe(shared: &Shared, seen: &mut [Seen<'_>]) -> Result<(), StoreError> {
    let Some(changes) = &shared.changes else {
        sync::apply(&shared.store, seen, &shared.settings())?;
        return Ok(());
    };
    let mut intervals = Vec::new();
    for s in seen.iter() {
        let iv = &s.interval;
        let known = shared
            .store
            .source(&s.component.check, iv.start_us, iv.end_us)?;
        if known.is_none_or(|(_, src)| src.end_us != iv.end_us) {
            intervals.push(SeenInterval {
                component: s.component.id.clone(),
                interval: iv.clone(),
            });
        }
    }
    if intervals.is_empty() {
        return Ok(());
    }
    if let Err(e) = publish(changes, &Change::Seen { intervals }).await {
        // Read again at the next refresh, and published then.
        tracing::warn!(error = %e, "status page: down intervals not published to the log");
    }
    Ok(())
}

/// The change itself, the same on every replica; the incident a person's change made or
/// changed.
pub fn apply(shared: &Shared, change: &Change) -> Result<Option<i64>, StoreError> {
    let store = &shared.store;
    match change {
        Change::Seen { intervals } => {
            let mut seen: Vec<Seen<'_>> = Vec::new();
            let settings = shared.settings();
            for s in intervals {
                match settings.component(&s.component) {
                    Some(component) => seen.push(Seen {
                        component,
                        interval: s.interval.clone(),
                    }),
                    None => tracing::warn!(
                        component = %s.component,
                        "status page: a down interval of a component this config does not have; skipped"
                    ),
                }
            }
            sync::apply(store, &mut seen, &shared.settings())?;
            Ok(None)
        }
        Change::Open {
            origin,
            name,
            message,
            status,
            impact,
            components,
            at_us,
        } => store
            .once(origin, |tx| {
                store::insert_incident(
                    tx,
                    &store::NewIncident {
                        name,
                        impact: *impact,
                        status: *status,
                        body: message,
                        components,
                        started_us: *at_us,
                        at_us: *at_us,
                        auto: false,
                    },
                )
            })
            .map(Some),
        Change::Update {
            origin,
            incident,
            status,
            message,
            impact,
            at_us,
        } => store
            .once(origin, |tx| {
                store::add_update(tx, *incident, *status, message, *at_us, false)?;
                if let Some(impact) = impact {
                    store::set_impact(tx, *incident, *impact, *at_us)?;
                }
                Ok(*incident)
            })
            .map(Some),
        Change::Correct {
            origin,
            incident,
            impact,
            name,
            at_us,
        } => store
            .once(origin, |tx| {
                if let Some(impact) = impact {
                    store::set_impact(tx, *incident, *impact, *at_us)?;
                }
                if let Some(name) = name {
                    store::set_name(tx, *incident, name, *at_us)?;
                }
                Ok(*incident)
            })
            .map(Some),
    }
}

/// On a replica: applies the log's changes from where this store left off, for as long as
/// the page runs, and has the site made again after each batch.
pub async fn follow(shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let Some(changes) = shared.changes.as_ref() else {
        return;
    };
    changes
        .follow("status page", stop, |entries| {
            let shared = shared.clone();
            async move { apply_batch(&shared, &entries) }
        })
        .await;
}

/// Applies a batch in order, stopping at a change the store would not take (it is read
/// again once the store takes writes); records how far it got.
fn apply_batch(shared: &Shared, entries: &[lookout_cluster::Entry]) -> Applied {
    let mut through = None;
    let mut again = false;
    for entry in entries {
        match serde_json::from_slice::<Change>(&entry.payload) {
            Ok(change) => {
                if let Err(e) = apply(shared, &change) {
                    tracing::error!(position = entry.position, error = %e, "status page: a change from the log could not be stored; trying again");
                    shared
                        .metrics
                        .log_changes_failed
                        .with_label_values(&["unstored"])
                        .inc();
                    again = true;
                    break;
                }
            }
            Err(e) => {
                tracing::error!(position = entry.position, error = %e, "status page: a change in the log this version cannot read; skipped");
                shared
                    .metrics
                    .log_changes_failed
                    .with_label_values(&["undecodable"])
                    .inc();
            }
        }
        through = Some(entry.position);
    }
    if let Some(done) = through {
        if let Err(e) = shared.store.set_log_applied(done) {
            tracing::warn!(error = %e, "status page: the position applied could not be stored; the changes are read again at the next start");
        }
        shared
            .metrics
            .log_applied
            .set(i64::try_from(done).unwrap_or(i64::MAX));
        shared.rerender.notify_one();
    }
    Applied { through, again }
}

//! What people change through the API (acknowledgements, silences made and expired, checks
//! and subscriptions made, changed and removed), applied the same way on every alerter
//! replica. Alone, a change is applied at once. On a replica it
//! is published to the replicated log (`STREAM.alerting.changes`), and every replica, the one
//! that answered included, applies it as it reads the log; the answer waits for this replica's
//! own apply, so it reads its write. Applying is idempotent (an ack sets the same fields, a
//! silence is put by its id), so a replica reads the changes from the start of the log at every
//! start and needs no position of its own.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use lookout_api::ApiError;
use lookout_cluster::{Applied, Changes, Log};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::check::Origin;
use crate::engine::Shared;
use crate::problem::{Ack, Problem, Silence};
use crate::subscription::Subscription;

/// The kind of message (the subject's second token) of the alerter's changes.
const KIND: &str = "alerting";
/// How long an answer waits for this replica to apply its own change.
const OWN_APPLY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    Ack {
        problem_id: String,
        ack: Ack,
        /// The nonce of the acknowledge link it came through: used once, on every replica.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        link: Option<String>,
    },
    /// An acknowledgement withdrawn: the reminders start again.
    Unack {
        problem_id: String,
        by: String,
        #[serde(default)]
        comment: String,
        at_us: i64,
    },
    Silence {
        silence: Silence,
        /// The problem it was made from, whose history records it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from_problem: Option<String>,
    },
    Unsilence {
        id: String,
        /// Who expired it and when, for the history of the problems it held (absent in
        /// changes written before they were recorded).
        #[serde(default)]
        by: String,
        #[serde(default)]
        at_us: i64,
    },
    /// A check made or changed through the API (validated by the replica that took it).
    PutCheck {
        spec: crate::spec::CheckSpec,
    },
    DeleteCheck {
        id: String,
    },
    Subscribe {
        subscription: Subscription,
    },
    Unsubscribe {
        id: String,
    },
}

/// On a replica: the alerter's changes on the log.
pub fn changes(log: Log) -> Changes {
    // Applying is idempotent: a replica reads them from the start of the log at every start.
    Changes::new(log, KIND, 0)
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// Applies `change` here, or through the log on a replica; answers once this replica has it.
pub async fn make(shared: &Shared, change: Change) -> Result<(), ApiError> {
    let Some(changes) = &shared.changes else {
        return apply(shared, &change).await;
    };
    let payload = serde_json::to_vec(&change).map_err(internal)?;
    changes
        .make(
            format!("change-{}", chrono::Utc::now().timestamp_micros()),
            Bytes::from(payload),
            OWN_APPLY,
        )
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(())
}

/// The change itself, the same on every replica.
pub async fn apply(shared: &Shared, change: &Change) -> Result<(), ApiError> {
    match change {
        Change::Ack {
            problem_id,
            ack,
            link,
        } => {
            let mut e = shared.engine.lock().await;
            if let Some(nonce) = link {
                shared
                    .store
                    .use_link(nonce.clone(), problem_id.clone(), ack.at_us)
                    .await
                    .map_err(internal)?;
            }
            let Some(p) = e.problems.values_mut().find(|p| &p.id == problem_id) else {
                // Over (or never opened) here: an ack ends with its problem.
                return Ok(());
            };
            p.ack = Some(ack.clone());
            save(shared, p.clone()).await?;
            record(
                shared,
                problem_id,
                ack.at_us,
                "acknowledged",
                &ack.by,
                &ack.comment,
            )
            .await?;
        }
        Change::Unack {
            problem_id,
            by,
            comment,
            at_us,
        } => {
            let mut e = shared.engine.lock().await;
            let Some(p) = e.problems.values_mut().find(|p| &p.id == problem_id) else {
                return Ok(());
            };
            if p.ack.as_ref().is_some_and(|a| a.at_us <= *at_us) {
                p.ack = None;
                save(shared, p.clone()).await?;
            }
            record(shared, problem_id, *at_us, "unacknowledged", by, comment).await?;
        }
        Change::Silence {
            silence,
            from_problem,
        } => {
            let mut e = shared.engine.lock().await;
            shared.store.put_silence(silence).await.map_err(internal)?;
            e.silences.retain(|s| s.id != silence.id);
            e.silences.push(silence.clone());
            if let Some(problem_id) = from_problem {
                let until = crate::store::rfc3339(silence.ends_us);
                let detail = if silence.comment.is_empty() {
                    format!("until {until}")
                } else {
                    format!("until {until}: {}", silence.comment)
                };
                record(
                    shared,
                    problem_id,
                    silence.starts_us.max(silence_made_us(silence)),
                    "silenced",
                    &silence.created_by,
                    &detail,
                )
                .await?;
            }
        }
        Change::Unsilence { id, by, at_us } => {
            let mut e = shared.engine.lock().await;
            shared
                .store
                .delete_silence(id.clone())
                .await
                .map_err(internal)?;
            let held = e
                .silences
                .iter()
                .find(|s| &s.id == id)
                .filter(|s| s.active(*at_us))
                .map(|s| e.open_problems_held_by(s))
                .unwrap_or_default();
            e.silences.retain(|s| &s.id != id);
            drop(e);
            for problem_id in held {
                record(shared, &problem_id, *at_us, "silence expired", by, id).await?;
            }
        }
        Change::PutCheck { spec } => {
            let check = spec
                .to_check(Origin::Api)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            let mut e = shared.engine.lock().await;
            shared
                .store
                .put_api_check(check.id.clone(), spec)
                .await
                .map_err(internal)?;
            e.api_specs.insert(check.id.clone(), spec.clone());
            e.add_check(check);
        }
        Change::DeleteCheck { id } => {
            let mut e = shared.engine.lock().await;
            shared
                .store
                .delete_api_check(id.clone())
                .await
                .map_err(internal)?;
            e.api_specs.remove(id);
            if e.checks.get(id).is_some_and(|c| c.origin == Origin::Api) {
                e.remove_check(id);
            }
        }
        Change::Subscribe { subscription } => {
            let mut e = shared.engine.lock().await;
            shared
                .store
                .put_api_subscription(subscription)
                .await
                .map_err(internal)?;
            e.subscriptions.retain(|s| s.id != subscription.id);
            e.subscriptions.push(subscription.clone());
        }
        Change::Unsubscribe { id } => {
            let mut e = shared.engine.lock().await;
            if shared
                .store
                .delete_api_subscription(id.clone())
                .await
                .map_err(internal)?
            {
                e.subscriptions.retain(|s| &s.id != id);
            }
        }
    }
    shared.wake.notify_one();
    Ok(())
}

/// When a silence was made: its id is `silence-MICROS` when made through the API or console.
fn silence_made_us(s: &Silence) -> i64 {
    s.id.strip_prefix("silence-")
        .and_then(|t| t.parse().ok())
        .unwrap_or(s.starts_us)
}

async fn save(shared: &Shared, p: Problem) -> Result<(), ApiError> {
    shared
        .store
        .apply(crate::store::Batch {
            problems: vec![p],
            ..Default::default()
        })
        .await
        .map(drop)
        .map_err(internal)
}

async fn record(
    shared: &Shared,
    problem_id: &str,
    at_us: i64,
    what: &str,
    by: &str,
    detail: &str,
) -> Result<(), ApiError> {
    shared
        .store
        .record_event(crate::store::ProblemEvent {
            problem_id: problem_id.to_owned(),
            at_us,
            what: what.to_owned(),
            by: by.to_owned(),
            detail: detail.to_owned(),
        })
        .await
        .map_err(internal)
}

/// Applies the log's changes, from its start, for as long as the alerter runs.
pub async fn follow(shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let Some(changes) = shared.changes.as_ref() else {
        return;
    };
    changes
        .follow("alerter", stop, |entries| {
            let shared = shared.clone();
            async move {
                let mut through = None;
                for entry in entries {
                    match serde_json::from_slice::<Change>(&entry.payload) {
                        Ok(change) => {
                            if let Err(e) = apply(&shared, &change).await {
                                tracing::error!(position = entry.position, error = %e, "alerter: a change from the log could not be applied");
                            }
                        }
                        Err(e) => {
                            tracing::error!(position = entry.position, error = %e, "alerter: a change in the log this version cannot read; skipped");
                        }
                    }
                    through = Some(entry.position);
                }
                Applied {
                    through,
                    again: false,
                }
            }
        })
        .await;
}

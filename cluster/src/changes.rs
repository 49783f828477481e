//! What people change through a replica's API, as one kind of message on the log: published by
//! whichever replica took the change, applied by every replica in the log's order (the one that
//! took it too, and the answer waits for that), and followed for as long as the replica runs.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use crate::{Entry, Log, Outgoing};

/// How long to wait before reading the log again after it could not be read.
const RETRY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The log did not take it: nothing changed anywhere.
    #[error("the change was not taken: {0}")]
    NotTaken(String),
    /// In the log, so every replica will apply it, but not yet here.
    #[error("the change is in the log but not yet applied here; every replica will apply it")]
    NotYetApplied,
}

/// What applying a batch came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The last position applied (`None`: none of the batch).
    pub through: Option<u64>,
    /// The rest could not be applied now: read again from after `through` in a moment.
    pub again: bool,
}

/// A kind of change on the log, and how far this replica has applied it.
pub struct Changes {
    log: Log,
    kind: &'static str,
    applied: watch::Sender<u64>,
}

impl Changes {
    /// Changes of `kind` (the subject's second token), applied here up to `applied` already.
    pub fn new(log: Log, kind: &'static str, applied: u64) -> Changes {
        Changes {
            log,
            kind,
            applied: watch::channel(applied).0,
        }
    }

    /// Publishes a change as `id` (the log keeps one message per id within its duplicate
    /// window) and answers its position once this replica has applied it.
    pub async fn make(
        &self,
        id: String,
        payload: Bytes,
        wait: Duration,
    ) -> Result<u64, ChangeError> {
        let published = self
            .log
            .publish_all(vec![Outgoing {
                subject: self.log.subject(self.kind, "changes"),
                id,
                payload,
            }])
            .await
            .map_err(|e| ChangeError::NotTaken(e.to_string()))?;
        let position = published.first().map_or(0, |p| p.position);
        wait_applied(&self.applied, position, wait).await?;
        Ok(position)
    }

    /// Applies the log's changes from after the last applied, batch by batch, until `stop`.
    /// `apply` says how far it got; the position is then this replica's (and `make`'s
    /// callers hear of it).
    pub async fn follow<F, Fut>(&self, what: &str, mut stop: watch::Receiver<bool>, mut apply: F)
    where
        F: FnMut(Vec<Entry>) -> Fut,
        Fut: Future<Output = Applied>,
    {
        loop {
            let from = *self.applied.borrow() + 1;
            let mut reader = match self.log.read_kinds_from(from, &[self.kind]).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "{what}: cannot read the changes from the log; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY) => continue,
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            };
            loop {
                let entries = tokio::select! {
                    e = reader.next_batch(64) => e,
                    _ = stop.wait_for(|s| *s) => return,
                };
                let entries = match entries {
                    Ok(e) if e.is_empty() => continue,
                    Ok(e) => e,
                    Err(e) => {
                        tracing::warn!(error = %e, "{what}: reading the changes stopped; reading again");
                        break;
                    }
                };
                let applied = apply(entries).await;
                if let Some(through) = applied.through {
                    self.applied.send_replace(through);
                }
                if applied.again {
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY) => break,
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            }
        }
    }
}

/// Waits until `applied` reaches `position`, for at most `wait`.
pub async fn wait_applied(
    applied: &watch::Sender<u64>,
    position: u64,
    wait: Duration,
) -> Result<(), ChangeError> {
    let mut rx = applied.subscribe();
    match tokio::time::timeout(wait, rx.wait_for(|p| *p >= position)).await {
        Ok(Ok(_)) => Ok(()),
        _ => Err(ChangeError::NotYetApplied),
    }
}

//! A collector as one replica of several: an agent's batch goes to the replicated log (and is
//! acknowledged once the log has it), and every replica applies the whole log, in order, to
//! its own store, with the position it applied in the same commit. Given the same log, every
//! replica holds the same results and computes the same figures; a new or wiped one catches
//! up from the log before it answers reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use lookout_cluster::{Log, Outgoing, Unacknowledged, WhenBehind};
use lookout_model::probe::{ProbeResult, ResultBatch};
use tokio::sync::watch;

use crate::AppState;

/// Messages applied in one commit at most.
const MAX_APPLY: usize = 512;
/// The kind of message (the subject's second token) that carries results.
pub const RESULTS: &str = "results";
/// The kind that carries maintenance scheduled and cancelled through the API.
pub const MAINTENANCE: &str = "maintenance";
/// How long an answer waits for this replica to apply its own change.
const OWN_APPLY: Duration = Duration::from_secs(10);

/// How a collector joins the cluster.
#[derive(Clone, Debug)]
pub struct ReplicaSettings {
    pub log: Log,
    pub when_behind: WhenBehind,
    pub max_behind: Duration,
}

/// Where this replica stands in the log.
pub(crate) struct Replica {
    pub(crate) settings: ReplicaSettings,
    applied: watch::Sender<u64>,
    /// Messages the log held after the last one applied, as counted on its delivery.
    behind: AtomicU64,
    /// When the log took the last message applied (µs since the epoch; 0: none yet).
    last_published_us: AtomicI64,
    /// The log's last position when this replica started: it answers reads once there.
    start_target: u64,
    caught_up: AtomicBool,
}

/// How far behind the log a replica is, for answers and health.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Lag {
    pub applied: u64,
    pub behind: u64,
    /// Age of the last applied message while messages wait after it; 0 when none wait.
    pub seconds: f64,
    pub caught_up: bool,
    pub connected: bool,
}

impl Replica {
    pub(crate) async fn start(
        settings: ReplicaSettings,
        applied: u64,
    ) -> Result<Replica, lookout_cluster::ClusterError> {
        let start_target = settings.log.last_position().await?;
        let (tx, _) = watch::channel(applied);
        Ok(Replica {
            settings,
            applied: tx,
            behind: AtomicU64::new(start_target.saturating_sub(applied)),
            last_published_us: AtomicI64::new(0),
            start_target,
            caught_up: AtomicBool::new(applied >= start_target),
        })
    }

    pub(crate) fn lag(&self, now_us: i64) -> Lag {
        let applied = *self.applied.borrow();
        let behind = self.behind.load(Ordering::Relaxed);
        let published = self.last_published_us.load(Ordering::Relaxed);
        let seconds = if behind == 0 || published == 0 {
            0.0
        } else {
            (now_us - published).max(0) as f64 / 1e6
        };
        Lag {
            applied,
            behind,
            seconds,
            caught_up: self.caught_up.load(Ordering::Relaxed),
            connected: self.settings.log.connected(),
        }
    }

    /// Whether reads must be refused now, and why.
    pub(crate) fn refuse_reads(&self, now_us: i64) -> Option<String> {
        let lag = self.lag(now_us);
        if !lag.caught_up {
            return Some(format!(
                "catching up with the log: applied {} of {}",
                lag.applied, self.start_target
            ));
        }
        let too_far = lag.behind > 0 && lag.seconds > self.settings.max_behind.as_secs_f64();
        (self.settings.when_behind == WhenBehind::Refuse && too_far).then(|| {
            format!(
                "{} messages ({:.0} s) behind the log, more than cluster.max_behind",
                lag.behind, lag.seconds
            )
        })
    }

    /// Publishes an agent's batch and answers (new, duplicates) once the log has acknowledged
    /// it. Not after this replica applied it too: waiting for that halved the ingest rate
    /// (`lookout bench cluster`), and every read says how far behind the log it is instead.
    pub(crate) async fn append(
        &self,
        results: &[ProbeResult],
        body: Bytes,
    ) -> Result<(usize, usize), Unacknowledged> {
        let total = results.len();
        let published = self
            .settings
            .log
            .publish_all(vec![message(&self.settings.log, results, body)])
            .await?;
        // The log tells duplicates by message; a replayed batch is one message.
        let duplicated = published.iter().all(|p| p.duplicate);
        Ok(if duplicated { (0, total) } else { (total, 0) })
    }
}

impl Replica {
    /// Publishes a change people made (`kind`, JSON) and answers once this replica has
    /// applied it, so that the caller reads its own write.
    pub(crate) async fn publish_change(
        &self,
        kind: &str,
        change: &impl serde::Serialize,
    ) -> Result<(), lookout_api::ApiError> {
        use lookout_api::ApiError;
        let payload =
            serde_json::to_vec(change).map_err(|e| ApiError::Internal(format!("a change: {e}")))?;
        let log = &self.settings.log;
        let id = format!("{kind}-{:016x}", xxhash_rust::xxh3::xxh3_64(&payload));
        let published = log
            .publish_all(vec![Outgoing {
                subject: log.subject(kind, "changes"),
                id,
                payload: Bytes::from(payload),
            }])
            .await
            .map_err(|e| ApiError::Unavailable(format!("the change was not taken: {e}")))?;
        let position = published.first().map_or(0, |p| p.position);
        lookout_cluster::wait_applied(&self.applied, position, OWN_APPLY)
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        Ok(())
    }
}

/// The batch as one message, as the agent sent it (checked, not encoded again), with an id
/// that the same batch sent again repeats. Its subject carries the agent
/// (`STREAM.results.AGENT`), not the check: an agent's batch spans all of its checks, and one
/// message per check made ingest three times slower (docs/ha.md, "Subjects").
fn message(log: &Log, results: &[ProbeResult], body: Bytes) -> Outgoing {
    let first = results.first().map_or(0, |r| r.seq);
    let last = results.last().map_or(0, |r| r.seq);
    let agent = results.first().map_or("", |r| r.agent.as_str());
    Outgoing {
        subject: log.subject(RESULTS, agent),
        id: format!("{agent}:{first}-{last}:{}", results.len()),
        payload: body,
    }
}

/// Applies the log to this replica's store for as long as the collector runs: in order,
/// several messages a commit, from the position after the last applied; a lost connection
/// or a failed commit starts reading again from there.
pub(crate) async fn apply_loop(s: Arc<AppState>, replica: Arc<Replica>) {
    loop {
        let position = *replica.applied.borrow();
        let mut reader = match replica
            .settings
            .log
            .read_kinds_from(position + 1, &[RESULTS, MAINTENANCE])
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the log; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            let entries = match reader.next_batch(MAX_APPLY).await {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the log stopped; reading again");
                    break;
                }
            };
            let applied = *replica.applied.borrow();
            let entries: Vec<_> = entries
                .into_iter()
                .filter(|e| e.position > applied)
                .collect();
            // Results are applied several messages a commit; a maintenance change between
            // them is applied in its place in the log's order.
            let mut results = Vec::with_capacity(entries.len());
            let mut failed = false;
            for e in entries {
                match kind_of(&replica.settings.log, &e.subject) {
                    Some(MAINTENANCE) => {
                        if !apply_results(&s, &replica, std::mem::take(&mut results)).await
                            || !apply_maintenance(&s, &replica, &e).await
                        {
                            failed = true;
                            break;
                        }
                    }
                    _ => results.push(e),
                }
            }
            if failed || !apply_results(&s, &replica, results).await {
                tokio::time::sleep(Duration::from_secs(1)).await;
                break;
            }
        }
    }
}

/// Applies a run of result messages in one commit with the last one's position; false when
/// the store refused it (the caller reads again from the last position applied).
async fn apply_results(
    s: &Arc<AppState>,
    replica: &Arc<Replica>,
    entries: Vec<lookout_cluster::Entry>,
) -> bool {
    let Some(last) = entries.last() else {
        return true;
    };
    let (last_position, behind, published) = (last.position, last.behind, last.published_us);
    let mut batches = Vec::with_capacity(entries.len());
    for e in &entries {
        match decode(&replica.settings.log, &e.subject, &e.payload) {
            Ok(b) => batches.push(b),
            Err(why) => {
                // Counted and named, never silently skipped; it cannot block the rest.
                s.metrics.undecodable.inc();
                tracing::error!(position = e.position, subject = %e.subject, error = %why, "a log message this replica cannot apply; skipped");
            }
        }
    }
    let st = s.store().clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let refs: Vec<&[ProbeResult]> = batches.iter().map(|b| b.results.as_slice()).collect();
        let inserted = st.insert_applied(&refs, last_position);
        (batches, inserted)
    })
    .await;
    match outcome {
        Ok((batches, Ok(inserted))) => {
            let now = chrono::Utc::now().timestamp_micros();
            for (b, new) in batches.iter().zip(&inserted) {
                crate::stored::after_stored(s, &b.results, new, now);
            }
            applied(s, replica, last_position, behind, published);
            true
        }
        Ok((_, Err(e))) => {
            tracing::error!(error = %e, position = last_position, "cannot apply the log; trying again");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "applying the log panicked; trying again");
            false
        }
    }
}

/// Applies a maintenance change, then records its position (a change applied twice, after a
/// crash between the two, changes nothing the second time).
async fn apply_maintenance(
    s: &Arc<AppState>,
    replica: &Arc<Replica>,
    entry: &lookout_cluster::Entry,
) -> bool {
    let change = match serde_json::from_slice::<crate::maintenance::Change>(&entry.payload) {
        Ok(c) => Some(c),
        Err(e) => {
            s.metrics.undecodable.inc();
            tracing::error!(position = entry.position, subject = %entry.subject, error = %e, "a maintenance change this replica cannot read; skipped");
            None
        }
    };
    let (state, position) = (s.clone(), entry.position);
    let outcome = tokio::task::spawn_blocking(move || {
        if let Some(change) = &change {
            crate::maintenance::apply(&state, change)?;
        }
        state.store().insert_applied(&[], position)
    })
    .await;
    match outcome {
        Ok(Ok(_)) => {
            applied(s, replica, position, entry.behind, entry.published_us);
            true
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, position, "cannot apply a maintenance change; trying again");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "applying a maintenance change panicked; trying again");
            false
        }
    }
}

/// Records that the log is applied up to `position`.
fn applied(s: &AppState, replica: &Replica, position: u64, behind: u64, published_us: i64) {
    replica.behind.store(behind, Ordering::Relaxed);
    replica
        .last_published_us
        .store(published_us, Ordering::Relaxed);
    if position >= replica.start_target && !replica.caught_up.swap(true, Ordering::Relaxed) {
        tracing::info!(position, "caught up with the log; serving reads");
    }
    s.metrics.log_applied.set(position as i64);
    s.metrics.log_behind.set(behind as i64);
    replica.applied.send_replace(position);
}

/// The kind of message a subject carries (`STREAM.kind.key`).
fn kind_of<'a>(log: &Log, subject: &'a str) -> Option<&'a str> {
    subject
        .strip_prefix(log.stream())
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.split('.').next())
}

fn decode(log: &Log, subject: &str, payload: &[u8]) -> Result<ResultBatch, String> {
    match kind_of(log, subject) {
        Some(RESULTS) => serde_json::from_slice(payload).map_err(|e| format!("not a batch: {e}")),
        _ => Err("not a kind of message this version knows".into()),
    }
}

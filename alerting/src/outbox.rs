//! Delivers the outbox: every notification until its receiver takes it, with backoff, in
//! order per subscription (a resolve never overtakes its page), and one slow receiver never
//! holding up another's.
//!
//! A delivery is marked sent only after the receiver accepted it; a crash in between sends it
//! again after the restart, with the same notification id (`X-Lookout-Delivery`, PagerDuty's
//! dedup key) so that receivers can drop the repeat.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use crate::engine::Shared;
use crate::notify::{Kind, Notification, Retry};
use crate::problem::Delivery;

#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// A notification not delivered within this is given up (counted and logged).
    pub give_up_after: Duration,
    pub max_backoff: Duration,
    /// Bounds one attempt whatever the notifier's own timeouts.
    pub attempt_timeout: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            give_up_after: Duration::from_secs(24 * 3600),
            max_backoff: Duration::from_secs(300),
            attempt_timeout: Duration::from_secs(30),
        }
    }
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// The backoff after `attempts` failed attempts: 1 s, 2 s, 4 s ... up to `max`.
pub fn backoff(attempts: u32, max: Duration) -> Duration {
    Duration::from_secs(1u64 << attempts.min(16)).min(max)
}

pub async fn run(shared: Arc<Shared>, settings: DeliverySettings, mut stop: watch::Receiver<bool>) {
    let in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
    loop {
        match shared.store.due(now_us(), 200).await {
            Ok(due) => {
                for (d, n) in due {
                    let claimed = {
                        let mut f = in_flight.lock().unwrap_or_else(PoisonError::into_inner);
                        !f.contains(&d.subscription_id) && f.insert(d.subscription_id.clone())
                    };
                    if !claimed {
                        continue;
                    }
                    let (shared, settings, in_flight) =
                        (shared.clone(), settings.clone(), in_flight.clone());
                    tokio::spawn(async move {
                        let sub = d.subscription_id.clone();
                        let acted = deliver(&shared, &settings, d, n).await;
                        in_flight
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .remove(&sub);
                        // A delivery that waited for an older one must not spin the loop.
                        if acted {
                            shared.outbox_wake.notify_one();
                        }
                    });
                }
            }
            Err(e) => tracing::error!(error = %e, "alerter: cannot read the outbox"),
        }
        if let Ok((pending, failed)) = shared.store.outbox_counts().await {
            shared
                .metrics
                .outbox_pending
                .set(i64::try_from(pending).unwrap_or(i64::MAX));
            shared
                .metrics
                .outbox_failed
                .set(i64::try_from(failed).unwrap_or(i64::MAX));
        }
        tokio::select! {
            _ = shared.outbox_wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// One attempt; false when it did not try (an older delivery to the same subscriber first).
async fn deliver(
    shared: &Shared,
    settings: &DeliverySettings,
    d: Delivery,
    n: Notification,
) -> bool {
    match shared.store.next_for_receiver(d.id).await {
        Ok(true) => {}
        Ok(false) => return false,
        Err(e) => {
            tracing::error!(error = %e, "alerter: cannot read the outbox");
            return false;
        }
    }
    // Reminders queued while the receiver was down would arrive in a burst, some for a
    // problem already over: a later notification to the same receiver makes them moot.
    if d.kind == Kind::Reminder {
        match shared.store.skip_if_superseded(d.id).await {
            Ok(true) => return true,
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e, "alerter: cannot read the outbox"),
        }
    }
    let (notifier_name, target) = crate::engine::receiver(&d.subscription_id);
    let Some(notifier) = shared.notifiers.load().get(&notifier_name).cloned() else {
        fail(
            shared,
            &d,
            format!("no notifier named {notifier_name:?}"),
            "unknown",
        )
        .await;
        return true;
    };
    let kind = notifier.kind();
    let claim = match claim(shared, &d, &n).await {
        Claimed::Send(c) => c,
        Claimed::NotNow => return true,
    };
    let result = tokio::time::timeout(
        settings.attempt_timeout,
        notifier.send(target.as_deref(), &n),
    )
    .await
    .unwrap_or_else(|_| {
        Err(crate::notify::SendError {
            retry: Retry::Backoff,
            message: format!("no answer within {:?}", settings.attempt_timeout),
        })
    });
    let label = d.kind.as_str();
    match result {
        Ok(()) => {
            shared
                .metrics
                .notifications
                .with_label_values(&[kind, label, "sent"])
                .inc();
            tracing::info!(
                notifier = %notifier_name, kind = label, problem = %d.problem_id,
                check = %n.check_id, state = %n.state, "alerter: notification sent"
            );
            if let Err(e) = shared.store.mark_sent(d.id, now_us()).await {
                tracing::error!(error = %e, "alerter: a sent notification could not be marked; it may be sent again");
            }
            if let (Some(claims), Some((key, revision))) = (&shared.claims, &claim)
                && !claims.done(key, *revision).await.unwrap_or(false)
            {
                tracing::warn!(problem = %d.problem_id, "alerter: sent, but the claim was taken over meanwhile; the receiver may get it twice, with the same delivery id");
            }
        }
        Err(err) if err.retry == Retry::Never => {
            release(shared, &claim).await;
            fail(shared, &d, err.message, kind).await;
        }
        Err(err) => {
            // Whichever replica tries next may have the better path to the receiver.
            release(shared, &claim).await;
            let age = Duration::from_micros(u64::try_from(now_us() - d.created_us).unwrap_or(0));
            if age > settings.give_up_after {
                fail(
                    shared,
                    &d,
                    format!("gave up after {age:?}: {}", err.message),
                    kind,
                )
                .await;
                return true;
            }
            let mut wait = backoff(d.attempts, settings.max_backoff);
            if let Retry::After(after) = err.retry {
                wait = wait.max(after.min(settings.max_backoff));
            }
            shared
                .metrics
                .notifications
                .with_label_values(&[kind, label, "retry"])
                .inc();
            tracing::warn!(
                notifier = %notifier_name, kind = label, problem = %d.problem_id,
                attempt = d.attempts + 1, retry_in = ?wait, error = %err.message,
                "alerter: notification not delivered; will retry"
            );
            let next = now_us() + i64::try_from(wait.as_micros()).unwrap_or(i64::MAX);
            if let Err(e) = shared.store.mark_retry(d.id, next, err.message).await {
                tracing::error!(error = %e, "alerter: cannot record a retry");
            }
        }
    }
    true
}

/// How often a replica looks again at a notification another replica has claimed.
const CLAIM_POLL: Duration = Duration::from_secs(1);

enum Claimed {
    /// Send it: on a replica, with the claim's key and revision.
    Send(Option<(String, u64)>),
    /// Not this replica's to send now (held, or done by another).
    NotNow,
}

/// On a replica: claims the notification, or says why not now. Alone: always send.
async fn claim(shared: &Shared, d: &Delivery, n: &Notification) -> Claimed {
    let Some(claims) = &shared.claims else {
        return Claimed::Send(None);
    };
    // The notification's id is the same on every replica (and the receivers' dedup key).
    let key = lookout_cluster::claim_key(&[&n.id]);
    let later = now_us() + i64::try_from(CLAIM_POLL.as_micros()).unwrap_or(i64::MAX);
    let outcome = claims.claim(&key, now_us()).await;
    let revision = match outcome {
        Ok(lookout_cluster::Claim::Won(r)) => r,
        Ok(lookout_cluster::Claim::Done) => {
            tracing::info!(problem = %d.problem_id, kind = d.kind.as_str(), "alerter: sent by another replica");
            if let Err(e) = shared.store.mark_sent(d.id, now_us()).await {
                tracing::error!(error = %e, "alerter: cannot record a notification sent by another replica");
            }
            return Claimed::NotNow;
        }
        Ok(lookout_cluster::Claim::Held) => {
            let _ = shared.store.postpone(d.id, later).await;
            return Claimed::NotNow;
        }
        Err(e) => {
            // No claim, no send: a page twice is what the claims are there to prevent.
            tracing::warn!(error = %e, "alerter: cannot claim a notification; trying again");
            let _ = shared.store.postpone(d.id, later).await;
            return Claimed::NotNow;
        }
    };
    // Fencing: a replica frozen since it claimed must not send what another took over.
    match claims.still_mine(&key, revision).await {
        Ok(true) => Claimed::Send(Some((key, revision))),
        _ => {
            let _ = shared.store.postpone(d.id, later).await;
            Claimed::NotNow
        }
    }
}

async fn release(shared: &Shared, claim: &Option<(String, u64)>) {
    if let (Some(claims), Some((key, revision))) = (&shared.claims, claim)
        && let Err(e) = claims.release(key, *revision).await
    {
        tracing::warn!(error = %e, "alerter: cannot release a claim; it lapses after its timeout");
    }
}

async fn fail(shared: &Shared, d: &Delivery, message: String, kind: &str) {
    shared
        .metrics
        .notifications
        .with_label_values(&[kind, d.kind.as_str(), "failed"])
        .inc();
    tracing::error!(
        subscription = %d.subscription_id, problem = %d.problem_id, error = %message,
        "alerter: notification given up"
    );
    if let Err(e) = shared.store.mark_failed(d.id, message).await {
        tracing::error!(error = %e, "alerter: cannot record a failed notification");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let max = Duration::from_secs(300);
        assert_eq!(backoff(0, max), Duration::from_secs(1));
        assert_eq!(backoff(3, max), Duration::from_secs(8));
        assert_eq!(backoff(40, max), max);
    }
}

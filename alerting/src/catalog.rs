//! The generated checks, kept in step with the collector's checks and their SLOs: read at
//! start (or, with the collector away, the last answer kept in the store, so that a restart
//! during its outage neither forgets a check nor resolves its open problems), then again every
//! so often; a check added, removed or given another SLO changes the generated checks.

use std::sync::Arc;
use std::time::Duration;

use lookout_model::read::Slos;
use tokio::sync::watch;

use crate::check::{Check, Origin};
use crate::engine::{Engine, Shared};
use crate::generate::{self, GenerateSettings};
use crate::spec::SubscriptionSpec;
use crate::subscription::Subscription;

/// How often the collector's SLOs are read again once they have been read.
const EVERY: Duration = Duration::from_secs(60);
/// How often while they never were.
const UNTIL_READ: Duration = Duration::from_secs(2);
/// How long the start waits for the collector's first answer.
pub const AT_START: Duration = Duration::from_secs(3);

/// What generation makes of a catalog: checks and their subscriptions.
pub fn generated(
    slos: &Slos,
    g: &GenerateSettings,
    subscribe: &[SubscriptionSpec],
) -> (Vec<Check>, Vec<Subscription>) {
    let checks = generate::checks(&generate::watched(slos), g);
    let subscriptions = generate::subscriptions(&checks, subscribe);
    (checks, subscriptions)
}

/// Replaces the generated checks (and their subscriptions) of `e` with those of `slos`. A
/// check of the config or the API keeps its id. Whether anything changed.
pub fn apply(
    e: &mut Engine,
    slos: &Slos,
    g: &GenerateSettings,
    subscribe: &[SubscriptionSpec],
) -> bool {
    let (checks, subscriptions) = generated(slos, g, subscribe);
    let old: Vec<String> = e
        .checks
        .values()
        .filter(|c| c.origin == Origin::Generated)
        .map(|c| c.id.clone())
        .collect();
    let mut changed = false;
    for id in &old {
        if !checks.iter().any(|c| &c.id == id) {
            // A check the collector no longer watches: its problems close as if it recovered.
            e.remove_check(id);
            changed = true;
        }
    }
    let generated_sub = |s: &Subscription| s.id.starts_with(&format!("{}:", s.check_id));
    for c in checks {
        if e.checks
            .get(&c.id)
            .is_some_and(|x| x.origin != Origin::Generated)
        {
            continue; // the config's or the API's check of that id wins
        }
        if e.checks.get(&c.id) != Some(&c) {
            changed = true;
            e.subscriptions
                .retain(|s| !(s.check_id == c.id && generated_sub(s)));
            e.subscriptions
                .extend(subscriptions.iter().filter(|s| s.check_id == c.id).cloned());
            e.add_check(c);
        }
    }
    changed
}

/// Reads the collector's SLOs now and again, applying each change; returns when `stop` turns
/// true.
pub async fn follow(shared: Arc<Shared>, mut read: bool, mut stop: watch::Receiver<bool>) {
    loop {
        let wait = if read { EVERY } else { UNTIL_READ };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match shared.sources.collector().slos().await {
            Ok(slos) => {
                read = true;
                let settings = shared.settings.load();
                let changed = {
                    let mut e = shared.engine.lock().await;
                    apply(&mut e, &slos, &settings.generate, &settings.subscribe)
                };
                if changed {
                    tracing::info!(
                        checks = slos.checks.len(),
                        "alerter: the collector's checks or SLOs changed; generated checks follow"
                    );
                    if let Err(e) = shared.store.put_catalog(&slos).await {
                        tracing::warn!(error = %e, "alerter: could not keep the collector's SLOs");
                    }
                    shared.wake.notify_one();
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "alerter: the collector's SLOs unavailable; retrying")
            }
        }
    }
}

//! A new config applied to a running alerter: its checks, subscriptions and notifiers, and the
//! settings of generation and reminders. Open problems stay open; a removed check's own
//! problems close as if it recovered (their resolve goes out), and its alert history stays
//! queryable. What the API made (checks, subscriptions, silences, acknowledgements) is kept.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::check::{Check, Origin};
use crate::engine::{EngineSettings, LinkSettings, Shared};
use crate::generate::GenerateSettings;
use crate::notify::Notifier;
use crate::spec::SubscriptionSpec;
use crate::store::StoreError;
use crate::subscription::Subscription;

/// The parts of the config a running alerter takes.
#[derive(Clone)]
pub struct Reloaded {
    pub checks: Vec<Check>,
    pub subscriptions: Vec<Subscription>,
    pub notifiers: BTreeMap<String, Arc<dyn Notifier>>,
    pub generate: GenerateSettings,
    /// Who hears about the generated checks.
    pub subscribe: Vec<SubscriptionSpec>,
    pub reminder_every: Option<Duration>,
    pub recheck_every: Duration,
    pub links: LinkSettings,
    /// `alerting.read_tokens`: one dropped is revoked at once.
    pub read_tokens: Vec<lookout_model::secret::Secret>,
}

/// What a reload changed, for the log and the answer to `POST /-/reload`.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct ReloadReport {
    pub checks_added: usize,
    pub checks_changed: usize,
    pub checks_removed: usize,
    pub subscriptions: usize,
    pub notifiers: usize,
    /// Read-only console sessions ended because a read-only token was dropped.
    pub read_sessions_ended: usize,
}

/// How long a reload waits for the collector's checks (new ones may have come with it).
const CATALOG_WAIT: Duration = Duration::from_secs(3);

pub async fn reload(shared: &Shared, r: Reloaded) -> Result<ReloadReport, StoreError> {
    let old = shared.settings.load_full();
    let mut links = r.links.clone();
    if links.alerter.is_none() {
        // The default (the address it listens on) was filled in at start.
        links.alerter = old.links.alerter.clone();
    }
    shared.settings.store(Arc::new(EngineSettings {
        reminder_every: r.reminder_every,
        recheck_every: r.recheck_every,
        links,
        blind_grace: old.blind_grace,
        generate: r.generate.clone(),
        subscribe: r.subscribe.clone(),
    }));
    shared.notifiers.store(Arc::new(r.notifiers.clone()));
    // The collector's checks now: the same reload may have added one.
    let catalog = if r.generate.enabled {
        match tokio::time::timeout(CATALOG_WAIT, shared.sources.collector().slos()).await {
            Ok(Ok(slos)) => {
                shared.store.put_catalog(&slos).await?;
                Some(slos)
            }
            _ => shared.store.catalog().await?,
        }
    } else {
        None
    };
    let api_subscriptions = shared.store.api_subscriptions().await?;
    let mut report = ReloadReport {
        notifiers: r.notifiers.len(),
        ..ReloadReport::default()
    };
    let mut e = shared.engine.lock().await;
    let config_ids: Vec<String> = e
        .checks
        .values()
        .filter(|c| c.origin == Origin::Config)
        .map(|c| c.id.clone())
        .collect();
    for id in config_ids {
        if r.checks.iter().any(|c| c.id == id) {
            continue;
        }
        report.checks_removed += 1;
        // A check of the API of that id, hidden by the config's, comes back.
        match e.api_specs.get(&id).map(|s| s.to_check(Origin::Api)) {
            Some(Ok(api)) => e.add_check(api),
            _ => e.remove_check(&id),
        }
    }
    for c in &r.checks {
        match e.checks.get(&c.id) {
            Some(old) if old == c => {}
            Some(_) => {
                report.checks_changed += 1;
                e.add_check(c.clone());
            }
            None => {
                report.checks_added += 1;
                e.add_check(c.clone());
            }
        }
    }
    let mut generated_subscriptions = Vec::new();
    if let Some(slos) = &catalog {
        crate::catalog::apply(&mut e, slos, &r.generate, &r.subscribe);
        let (_, subs) = crate::catalog::generated(slos, &r.generate, &r.subscribe);
        generated_subscriptions = subs;
    } else {
        let generated: Vec<String> = e
            .checks
            .values()
            .filter(|c| c.origin == Origin::Generated)
            .map(|c| c.id.clone())
            .collect();
        for id in generated {
            e.remove_check(&id);
        }
    }
    // Every subscription again, from its source: the API's (kept), the config's (as it is
    // now), the generated checks' (by the new `subscribe`).
    let mut subscriptions: Vec<Subscription> = Vec::new();
    for s in api_subscriptions
        .into_iter()
        .chain(r.subscriptions.iter().cloned())
        .chain(generated_subscriptions.into_iter().filter(|s| {
            e.checks
                .get(&s.check_id)
                .is_some_and(|c| c.origin == Origin::Generated)
        }))
    {
        if e.checks.contains_key(&s.check_id) && !subscriptions.iter().any(|x| x.id == s.id) {
            subscriptions.push(s);
        }
    }
    report.subscriptions = subscriptions.len();
    e.subscriptions = subscriptions;
    for (id, st) in &e.states {
        shared.metrics.set_state(id, st.level);
    }
    drop(e);
    shared.wake.notify_one();
    tracing::info!(?report, "alerter: config reloaded");
    Ok(report)
}

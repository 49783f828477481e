//! The loop: keeps the inventory, polls each instance on its interval, notices dead processes
//! at once, asks the brakes, and runs replacements (one task each; never two for an instance).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Mutex;

use crate::brakes::{self, BrakeSettings, Decision, Hold, Situation};
use crate::events::{Kind, Log};
use crate::health::{self, HealthSettings, State, Tracker};
use crate::instance::Instance;
use crate::metrics::Metrics;
use crate::provider::{Provider, Replaced};

const TICK: Duration = Duration::from_millis(200);
/// An instance handed to its platform (an Auto Scaling group) is not handed again this soon.
const HANDED_FOR: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct ReplacerSettings {
    pub health: HealthSettings,
    pub brakes: BrakeSettings,
    /// Decide and report, act on nothing.
    pub dry_run: bool,
    /// A replacement that is not healthy and serving within this is rolled back.
    pub replace_timeout: Duration,
    /// How often the provider's inventory is read again.
    pub inventory_every: Duration,
    /// Where every event is sent too (`POST /api/v1/events`), so that dashboards annotate
    /// with them and the alerter sees replacements.
    pub collector: Option<CollectorLink>,
}

#[derive(Debug, Clone)]
pub struct CollectorLink {
    pub url: url::Url,
    pub token: lookout_model::secret::Secret,
}

impl Default for ReplacerSettings {
    fn default() -> Self {
        ReplacerSettings {
            health: HealthSettings::default(),
            brakes: BrakeSettings::default(),
            dry_run: false,
            replace_timeout: Duration::from_secs(30),
            inventory_every: Duration::from_secs(5),
            collector: None,
        }
    }
}

struct Watched {
    instance: Instance,
    tracker: Tracker,
    next_poll: Instant,
    handed_at: Option<Instant>,
    /// A dry run already said it would replace it.
    reported: bool,
}

#[derive(Default)]
pub struct Engine {
    watched: BTreeMap<String, Watched>,
    /// Instance id -> service.
    in_flight: BTreeMap<String, String>,
    /// Replacements started: (service, when).
    started: Vec<(String, i64)>,
    /// Services held by a brake that needs a person, with the hold.
    held: BTreeMap<String, Hold>,
    /// Instances waiting on a transient brake, so that it is told once.
    waiting: BTreeSet<String>,
}

/// One instance, as `GET /api/v1/instances` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceView {
    #[serde(flatten)]
    pub instance: Instance,
    pub state: State,
    pub consecutive_failures: u32,
    pub last: Option<String>,
    pub replacing: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct HeldView {
    pub service: String,
    #[serde(flatten)]
    pub hold: Hold,
    pub message: String,
}

pub struct Shared {
    pub settings: ReplacerSettings,
    pub provider: Arc<dyn Provider>,
    pub events: Log,
    pub engine: Mutex<Engine>,
    pub metrics: Metrics,
    pub http: reqwest::Client,
    pub started: Instant,
}

impl Shared {
    pub async fn instances(&self) -> Vec<InstanceView> {
        let e = self.engine.lock().await;
        e.watched
            .values()
            .map(|w| InstanceView {
                instance: w.instance.clone(),
                state: w.tracker.state,
                consecutive_failures: w.tracker.failures,
                last: w.tracker.last.clone(),
                replacing: e.in_flight.contains_key(&w.instance.id),
            })
            .collect()
    }

    pub async fn held(&self) -> Vec<HeldView> {
        let e = self.engine.lock().await;
        e.held
            .iter()
            .map(|(service, hold)| HeldView {
                service: service.clone(),
                hold: hold.clone(),
                message: hold.describe(service),
            })
            .collect()
    }
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

fn in_grace(w: &Watched, grace: Duration) -> bool {
    let grace_us = i64::try_from(grace.as_micros()).unwrap_or(i64::MAX);
    now_us() - w.instance.started_us < grace_us
}

pub async fn run(shared: Arc<Shared>) {
    let mut last_inventory: Option<Instant> = None;
    loop {
        if last_inventory.is_none_or(|t| t.elapsed() >= shared.settings.inventory_every) {
            inventory(&shared, last_inventory.is_none()).await;
            last_inventory = Some(Instant::now());
        }
        poll_due(&shared).await;
        decide(&shared).await;
        tokio::time::sleep(TICK).await;
    }
}

/// Reads the provider's instances: new ones are watched, vanished ones forgotten.
async fn inventory(shared: &Shared, first: bool) {
    let listed = match shared.provider.instances().await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "replacer: the inventory cannot be read; keeping the last one");
            return;
        }
    };
    let mut e = shared.engine.lock().await;
    let ids: BTreeSet<&str> = listed.iter().map(|i| i.id.as_str()).collect();
    let gone: Vec<String> = e
        .watched
        .keys()
        .filter(|id| !ids.contains(id.as_str()) && !e.in_flight.contains_key(*id))
        .cloned()
        .collect();
    for id in gone {
        if let Some(w) = e.watched.remove(&id) {
            shared.events.push(
                Kind::Removed,
                &w.instance.service,
                Some(&id),
                "no longer in the inventory".into(),
                None,
            );
        }
    }
    for i in listed {
        if !e.watched.contains_key(&i.id) {
            if !first {
                shared.events.push(
                    Kind::Added,
                    &i.service,
                    Some(&i.id),
                    format!("watching {}", i.url),
                    None,
                );
            }
            e.watched.insert(
                i.id.clone(),
                Watched {
                    instance: i,
                    tracker: Tracker::default(),
                    next_poll: Instant::now(),
                    handed_at: None,
                    reported: false,
                },
            );
        }
    }
}

/// Dead processes at once; healthchecks that are due, all at once, each bounded.
async fn poll_due(shared: &Shared) {
    let due: Vec<Instance> = {
        let mut e = shared.engine.lock().await;
        let in_flight: BTreeSet<String> = e.in_flight.keys().cloned().collect();
        let mut due = Vec::new();
        for w in e.watched.values_mut() {
            if in_flight.contains(&w.instance.id) {
                continue;
            }
            if shared.provider.alive(&w.instance) == Some(false) {
                if let Some(t) = w.tracker.dead() {
                    shared.events.push(
                        Kind::ProcessDied,
                        &w.instance.service,
                        Some(&w.instance.id),
                        t.reason,
                        None,
                    );
                }
                continue;
            }
            if w.next_poll <= Instant::now() {
                w.next_poll = Instant::now() + shared.settings.health.interval;
                due.push(w.instance.clone());
            }
        }
        due
    };
    if due.is_empty() {
        return;
    }
    let timeout = shared.settings.health.timeout;
    let polls = futures_util::future::join_all(
        due.iter()
            .map(|i| health::poll(&shared.http, &i.url, timeout)),
    )
    .await;
    let mut e = shared.engine.lock().await;
    for (i, p) in due.iter().zip(polls) {
        shared.metrics.poll(&p);
        let Some(w) = e.watched.get_mut(&i.id) else {
            continue;
        };
        let grace = in_grace(w, shared.settings.health.grace);
        let was = w.tracker.state;
        if let Some(t) = w.tracker.observe(&p, &shared.settings.health, grace) {
            // A new instance passing its first checks is no news.
            if !(was == State::Starting && t.to == State::Healthy) {
                let kind = match t.to {
                    State::Unhealthy => Kind::Unhealthy,
                    _ => Kind::Recovered,
                };
                shared
                    .events
                    .push(kind, &i.service, Some(&i.id), t.reason, None);
            }
            w.reported = false;
        }
    }
}

/// Asks the brakes; starts replacements; raises and releases holds.
async fn decide(shared: &Arc<Shared>) {
    let mut e = shared.engine.lock().await;
    let mut situation = Situation {
        now_us: now_us(),
        in_flight: e.in_flight.clone(),
        started: e.started.clone(),
        ..Default::default()
    };
    for w in e.watched.values() {
        let s = situation
            .services
            .entry(w.instance.service.clone())
            .or_default();
        s.instances += 1;
        let handed = w.handed_at.is_some_and(|t| t.elapsed() < HANDED_FOR);
        if w.tracker.state == State::Unhealthy
            && !e.in_flight.contains_key(&w.instance.id)
            && !handed
        {
            s.unhealthy.push(w.instance.id.clone());
        }
    }
    let decisions = brakes::decide(&situation, &shared.settings.brakes);
    let mut holding: BTreeMap<String, Hold> = BTreeMap::new();
    let mut waiting = BTreeSet::new();
    for d in decisions {
        match d {
            Decision::Hold {
                service,
                instance,
                hold,
            } => {
                if hold.needs_a_person() {
                    holding.insert(service, hold);
                } else if let Some(id) = instance {
                    if !e.waiting.contains(&id) {
                        tracing::info!(service, instance = %id, "replacer: {}", hold.describe(&service));
                    }
                    waiting.insert(id);
                }
            }
            Decision::Replace { service, instance } => {
                let Some(w) = e.watched.get_mut(&instance) else {
                    continue;
                };
                if shared.settings.dry_run {
                    if !w.reported {
                        w.reported = true;
                        shared.events.push(
                            Kind::WouldReplace,
                            &service,
                            Some(&instance),
                            format!(
                                "dry run: would replace it ({})",
                                w.tracker.last.clone().unwrap_or_default()
                            ),
                            None,
                        );
                    }
                    continue;
                }
                let old = w.instance.clone();
                e.in_flight.insert(instance.clone(), service.clone());
                e.started.push((service.clone(), now_us()));
                let shared = shared.clone();
                tokio::spawn(async move { replace(shared, old).await });
            }
        }
    }
    e.waiting = waiting;
    for (service, hold) in &holding {
        if !e.held.contains_key(service) {
            shared
                .events
                .push(Kind::Held, service, None, hold.describe(service), None);
            shared.metrics.held.with_label_values(&[service]).set(1);
        }
    }
    let released: Vec<String> = e
        .held
        .keys()
        .filter(|s| !holding.contains_key(*s))
        .cloned()
        .collect();
    for service in released {
        shared.events.push(
            Kind::Released,
            &service,
            None,
            "the mass failure is over; replacing again".into(),
            None,
        );
        shared.metrics.held.with_label_values(&[&service]).set(0);
    }
    e.held = holding;
    let hour_ago = now_us() - 3_600_000_000;
    e.started.retain(|(_, t)| *t > hour_ago);
    shared.metrics.gauges(
        e.watched
            .values()
            .map(|w| (&w.instance.service, w.tracker.state)),
    );
}

async fn replace(shared: Arc<Shared>, old: Instance) {
    let began = Instant::now();
    shared.events.push(
        Kind::ReplacementStarted,
        &old.service,
        Some(&old.id),
        format!("replacing {} through {}", old.url, shared.provider.kind()),
        None,
    );
    let result = shared
        .provider
        .replace(&old, shared.settings.replace_timeout)
        .await;
    let ms = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut e = shared.engine.lock().await;
    e.in_flight.remove(&old.id);
    match result {
        Ok(Replaced::New(new)) => {
            shared.events.push(
                Kind::ReplacementDone,
                &old.service,
                Some(&old.id),
                format!("{} replaced by {} at {}, serving", old.id, new.id, new.url),
                Some(ms),
            );
            shared
                .metrics
                .replaced(&old.service, "done", began.elapsed());
            e.watched.remove(&old.id);
            e.watched.insert(
                new.id.clone(),
                Watched {
                    instance: new,
                    tracker: Tracker {
                        state: State::Healthy,
                        ..Tracker::default()
                    },
                    next_poll: Instant::now() + shared.settings.health.interval,
                    handed_at: None,
                    reported: false,
                },
            );
        }
        Ok(Replaced::Handed { detail }) => {
            shared.events.push(
                Kind::ReplacementDone,
                &old.service,
                Some(&old.id),
                detail,
                Some(ms),
            );
            shared
                .metrics
                .replaced(&old.service, "done", began.elapsed());
            if let Some(w) = e.watched.get_mut(&old.id) {
                w.handed_at = Some(Instant::now());
            }
        }
        Err(err) => {
            shared.events.push(
                Kind::ReplacementFailed,
                &old.service,
                Some(&old.id),
                format!("{err}; the instance stays as it was"),
                Some(ms),
            );
            shared
                .metrics
                .replaced(&old.service, "failed", began.elapsed());
        }
    }
}

/// Sends the events to the collector in order, once a second; a collector that is away gets
/// them when it is back (as long as the event log still holds them).
pub async fn forward(shared: Arc<Shared>, link: CollectorLink) {
    let mut sent = 0u64;
    let url = match link.url.join("api/v1/events") {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "replacer: bad collector URL; events stay local");
            return;
        }
    };
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let pending = shared.events.since(sent);
        if pending.is_empty() {
            continue;
        }
        let last = pending.last().map_or(sent, |e| e.seq);
        let body = serde_json::json!({
            "events": pending.iter().map(|e| serde_json::json!({
                "source": "replacer",
                "kind": e.kind.as_str(),
                "service": e.service,
                "instance": e.instance,
                "message": e.message,
                "time_us": e.time_us,
                "duration_ms": e.duration_ms,
            })).collect::<Vec<_>>()
        });
        let answer = shared
            .http
            .post(url.clone())
            .bearer_auth(link.token.expose())
            .timeout(Duration::from_secs(5))
            .json(&body)
            .send()
            .await;
        match answer {
            Ok(r) if r.status().is_success() => sent = last,
            Ok(r) => {
                tracing::warn!(status = %r.status(), "replacer: the collector refused events; retrying")
            }
            Err(_) => tracing::debug!("replacer: the collector is away; events wait"),
        }
    }
}

//! The alerter's loop: evaluates checks on their schedules and at once when the collector's
//! live state changes (the fast path), turns changes into alerts and problems, asks the
//! collector for fresh evidence while a check is down, and queues notifications.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{Mutex, Notify, watch};

use crate::check::{Check, Measure};
use crate::metrics::Metrics;
use crate::notify::{Level, Notifier};
use crate::problem::{AlertRecord, Problem, Silence};
use crate::source::{SourceError, Sources};
use crate::spec::CheckSpec;
use crate::state::{self, CheckState};
use crate::store::{Batch, Store, StoreError, rfc3339};
use crate::subscription::Subscription;
pub use lookout_api::client::Feed;
use lookout_model::read::LiveState;

mod feed;
mod notifications;

use feed::blind;
pub use feed::{feed_wait, follow_feed};
use notifications::plan_notifications;
pub use notifications::{destination, notification, receiver};

/// The longest the loop sleeps: holds, silences and reminders are looked at this often.
const TICK: Duration = Duration::from_secs(1);
/// A feed that has not answered for this long makes the monitoring blind.
const FEED_STALE: Duration = Duration::from_secs(30);

/// What the engine knows; behind one lock, never held across a network call.
pub struct Engine {
    pub checks: BTreeMap<String, Check>,
    pub api_specs: BTreeMap<String, CheckSpec>,
    pub states: BTreeMap<String, CheckState>,
    pub next_due: BTreeMap<String, DateTime<Utc>>,
    pub subscriptions: Vec<Subscription>,
    /// Open problems by group key.
    pub problems: BTreeMap<String, Problem>,
    pub silences: Vec<Silence>,
    /// Last recheck asked per collector check.
    rechecked: HashMap<String, i64>,
    /// The last value kept for each check's chart, and when.
    charted: HashMap<String, (i64, Option<f64>)>,
    /// The last source error per check, for the API.
    pub errors: BTreeMap<String, String>,
    /// Ticks started, and per check the latest tick whose evaluation was recorded: ticks may
    /// run at once (the loop's and [`crate::Alerter::tick`]), and an older one must not undo
    /// what a newer one recorded.
    ticks: u64,
    applied: HashMap<String, u64>,
    /// What the store could not take yet (a full disk): written first next round.
    unsaved: Option<Batch>,
}

pub struct Shared {
    pub engine: Mutex<Engine>,
    pub store: Store,
    pub sources: Sources,
    /// The channels by name; swapped whole when the config is reloaded.
    pub notifiers: arc_swap::ArcSwap<BTreeMap<String, Arc<dyn Notifier>>>,
    pub metrics: Metrics,
    pub feed: watch::Receiver<Feed>,
    /// Wakes the loop (a change through the API).
    pub wake: Notify,
    /// Wakes the outbox (new deliveries).
    pub outbox_wake: Notify,
    /// Swapped whole when the config is reloaded.
    pub settings: arc_swap::ArcSwap<EngineSettings>,
    pub started: Instant,
    /// Whether a round of slow checks is under way.
    pub slow_round: std::sync::atomic::AtomicBool,
    /// `Some` on a replica: the claims that let one replica send each notification.
    pub claims: Option<lookout_cluster::Claims>,
    /// `Some` on a replica: people's changes go through the replicated log.
    pub changes: Option<lookout_cluster::Changes>,
    /// Signs the acknowledge links of notifications, and checks them.
    pub ack_links: crate::ack_link::AckLinks,
}

#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub reminder_every: Option<Duration>,
    /// While a check is down, ask every region to run it again this often (quicker resolves).
    pub recheck_every: Duration,
    pub links: LinkSettings,
    pub blind_grace: Duration,
    pub generate: crate::generate::GenerateSettings,
    pub subscribe: Vec<crate::spec::SubscriptionSpec>,
}

#[derive(Debug, Clone, Default)]
pub struct LinkSettings {
    pub status_page: Option<String>,
    /// `{check}` is replaced by the check's collector name.
    pub dashboard: Option<String>,
    /// Where the alerter is reached by people, for links to its console (problem pages,
    /// acknowledge links); the address it listens on when not set.
    pub alerter: Option<String>,
}

fn us(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl Engine {
    pub fn new(
        checks: Vec<Check>,
        api_specs: BTreeMap<String, CheckSpec>,
        states: Vec<(String, CheckState)>,
        subscriptions: Vec<Subscription>,
        problems: Vec<Problem>,
        silences: Vec<Silence>,
    ) -> Engine {
        let now = Utc::now();
        let checks: BTreeMap<String, Check> =
            checks.into_iter().map(|c| (c.id.clone(), c)).collect();
        let next_due = checks.keys().map(|id| (id.clone(), now)).collect();
        let mut engine = Engine {
            checks,
            api_specs,
            states: states.into_iter().collect(),
            next_due,
            subscriptions,
            problems: problems
                .into_iter()
                .map(|p| (p.group_key.clone(), p))
                .collect(),
            silences,
            rechecked: HashMap::new(),
            charted: HashMap::new(),
            errors: BTreeMap::new(),
            ticks: 0,
            applied: HashMap::new(),
            unsaved: None,
        };
        let stale: BTreeSet<String> = engine
            .problems
            .values()
            .flat_map(|p| p.members.keys().map(move |m| (m, &p.group_key)))
            .filter(|(id, key)| {
                !engine
                    .checks
                    .get(*id)
                    .is_some_and(|c| c.enabled && &c.group_key() == *key)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            engine.retire(&id);
        }
        engine
    }

    pub fn add_check(&mut self, c: Check) {
        let moved = self
            .checks
            .get(&c.id)
            .is_some_and(|old| old.group_key() != c.group_key());
        if moved || !c.enabled {
            self.retire(&c.id);
        }
        self.next_due.insert(c.id.clone(), Utc::now());
        self.checks.insert(c.id.clone(), c);
    }

    pub fn remove_check(&mut self, id: &str) {
        self.retire(id);
        self.checks.remove(id);
        self.next_due.remove(id);
        self.states.remove(id);
        self.subscriptions.retain(|s| s.check_id != id);
    }

    /// A check that is gone, disabled or moved to another group leaves its problems as if it
    /// recovered: a problem it alone kept open closes, and its resolve goes out.
    fn retire(&mut self, id: &str) {
        let now = Utc::now().timestamp_micros();
        for p in self.problems.values_mut() {
            if p.members.get(id).is_some_and(|l| *l != Level::Ok) {
                p.members.insert(id.to_owned(), Level::Ok);
                if p.level() == Level::Ok {
                    p.closed_us = Some(now);
                }
            }
        }
        if let Some(st) = self.states.get_mut(id) {
            st.level = Level::Ok;
            st.since_us = now;
        }
    }

    fn subscriptions_of(&self, check_id: &str) -> impl Iterator<Item = &Subscription> {
        self.subscriptions
            .iter()
            .filter(move |s| s.check_id == check_id)
    }

    /// The open problems with a check that `silence` matches: whose history records it.
    pub fn open_problems_held_by(&self, silence: &crate::problem::Silence) -> Vec<String> {
        self.problems
            .values()
            .filter(|p| p.closed_us.is_none())
            .filter(|p| {
                p.members.keys().any(|id| {
                    self.checks.get(id).is_some_and(|c| {
                        silence.matches(&c.id, c.group.as_deref(), c.about.as_deref())
                    })
                })
            })
            .map(|p| p.id.clone())
            .collect()
    }

    /// Whether a silence, or the collector's maintenance of the check it is about, holds its
    /// notifications now.
    fn silenced(&self, check: &Check, feed: &Feed, now: i64) -> bool {
        let in_maintenance = check
            .about
            .as_deref()
            .is_some_and(|a| feed.states.maintenance_of(a, now).is_some());
        in_maintenance
            || self.silences.iter().any(|s| {
                s.active(now)
                    && s.matches(&check.id, check.group.as_deref(), check.about.as_deref())
            })
    }

    /// Whether a dependency of the check is not OK (and not part of the same problem), or
    /// recovered less than the check's grace ago, or is a down check whose outage the
    /// collector sees now and the confirmation is still deciding on.
    fn held_by_dependency(&self, check: &Check, group_key: &str, feed: &Feed, now_us: i64) -> bool {
        let grace = check.dependency_grace.map_or(0, us);
        check.depends_on.iter().any(|d| {
            let Some(dep) = self.checks.get(d) else {
                return false;
            };
            if dep.group_key() == group_key {
                return false;
            }
            let st = self.states.get(d);
            let bad = st.is_some_and(|s| s.level != Level::Ok);
            let recent = st.is_some_and(|s| s.level == Level::Ok && now_us - s.since_us < grace);
            let deciding = dep.fast_path()
                && dep.about.as_ref().is_some_and(|a| {
                    feed.states
                        .checks
                        .iter()
                        .any(|c| &c.check == a && c.state == LiveState::Down)
                });
            bad || recent || deciding
        })
    }
}

/// The loop; returns when `stop` turns true.
pub async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut feed = shared.feed.clone();
    let mut last_version = None;
    loop {
        let fast = {
            let f = feed.borrow_and_update();
            let changed = last_version != Some(f.states.clone());
            last_version = Some(f.states.clone());
            changed
        };
        // The fast path never waits for a slow query (a hung Prometheus, a 3-day window):
        // slow checks are evaluated in a round of their own, one at a time.
        if let Err(e) = tick(&shared, fast, Which::Fast).await {
            tracing::error!(error = %e, "alerter: could not record an evaluation; retrying");
        }
        if !shared
            .slow_round
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            let shared = shared.clone();
            tokio::spawn(async move {
                if let Err(e) = tick(&shared, false, Which::Slow).await {
                    tracing::error!(error = %e, "alerter: could not record an evaluation; retrying");
                }
                shared
                    .slow_round
                    .store(false, std::sync::atomic::Ordering::Release);
            });
        }
        let sleep = next_sleep(&shared).await;
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            r = feed.changed() => { if r.is_err() { return; } }
            _ = shared.wake.notified() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

async fn next_sleep(shared: &Shared) -> Duration {
    let e = shared.engine.lock().await;
    let now = Utc::now();
    e.next_due
        .iter()
        // Slow checks due while a slow round runs wait for it, not in a busy loop.
        .filter(|(id, _)| {
            e.checks.get(*id).is_some_and(|c| {
                c.enabled
                    && (c.fast_path()
                        || !shared.slow_round.load(std::sync::atomic::Ordering::Acquire))
            })
        })
        .map(|(_, t)| t)
        .min()
        .map(|t| (*t - now).to_std().unwrap_or(Duration::ZERO))
        .unwrap_or(TICK)
        .min(TICK)
}

/// One round: due (and, on a feed change, fast-path) checks evaluated, changes recorded,
/// problems updated, notifications queued, rechecks asked.
/// Which checks a round evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Those reading the live feed (down, failing regions, blind): local and quick.
    Fast,
    /// Those querying the collector or Prometheus, which may take seconds.
    Slow,
    All,
}

impl Which {
    fn takes(self, c: &Check) -> bool {
        match self {
            Which::Fast => c.fast_path(),
            Which::Slow => !c.fast_path(),
            Which::All => true,
        }
    }
}

pub async fn tick(
    shared: &Arc<Shared>,
    feed_changed: bool,
    which: Which,
) -> Result<(), StoreError> {
    let (now, feed, seq, due) = {
        let mut e = shared.engine.lock().await;
        // Read under the lock, so that ticks are ordered as they read the feed.
        let now = Utc::now();
        let feed = shared.feed.borrow().clone();
        e.ticks += 1;
        let seq = e.ticks;
        let ids: Vec<String> = e
            .checks
            .values()
            .filter(|c| c.enabled && which.takes(c))
            .filter(|c| {
                e.next_due.get(&c.id).is_none_or(|t| *t <= now) || (feed_changed && c.fast_path())
            })
            .map(|c| c.id.clone())
            .collect();
        for id in &ids {
            if let Some(c) = e.checks.get(id) {
                let next = c.schedule.next_after(now);
                e.next_due.insert(id.clone(), next);
            }
        }
        let due: Vec<Check> = ids
            .iter()
            .filter_map(|id| e.checks.get(id).cloned())
            .collect();
        (now, feed, seq, due)
    };
    let evaluated = evaluate(shared, &due, &feed, now.timestamp_micros()).await;
    let mut batch = Batch::default();
    let mut e = shared.engine.lock().await;
    let now_us = now.timestamp_micros();
    for (check, result) in due.iter().zip(evaluated) {
        if e.applied.get(&check.id).is_some_and(|s| *s > seq) {
            continue; // stale: a newer tick recorded this check already
        }
        if !e.checks.get(&check.id).is_some_and(|c| c.enabled) {
            continue; // deleted or disabled while it was evaluated
        }
        e.applied.insert(check.id.clone(), seq);
        let (value, bad_allowed) = match result {
            Ok(v) => {
                shared.metrics.evaluations.with_label_values(&["ok"]).inc();
                e.errors.remove(&check.id);
                v
            }
            Err(err) => {
                // A source that cannot be read says nothing about the platform: the state is
                // kept (the blind check reports an unreachable collector).
                shared
                    .metrics
                    .evaluations
                    .with_label_values(&["error"])
                    .inc();
                if e.errors.get(&check.id) != Some(&err.0) {
                    tracing::warn!(check = %check.id, error = %err, "alerter: cannot evaluate");
                }
                e.errors.insert(check.id.clone(), err.0);
                continue;
            }
        };
        let st = e
            .states
            .entry(check.id.clone())
            .or_insert_with(|| CheckState::new(now_us));
        let change = state::step(check, st, value, bad_allowed, now_us);
        let st = st.clone();
        shared.metrics.set_state(&check.id, st.level);
        batch.states.push((check.id.clone(), st));
        // Kept for the chart when it changed, else once per interval: a check of the live
        // state is evaluated at every change of the feed, and must not fill the store.
        let gap = match &check.schedule {
            crate::check::Schedule::Every(d) => us(*d),
            crate::check::Schedule::Cron(_) => 60_000_000,
        };
        let chart = e
            .charted
            .get(&check.id)
            .is_none_or(|(t, v)| *v != value || now_us - t >= gap);
        if chart {
            e.charted.insert(check.id.clone(), (now_us, value));
            batch.values.push((check.id.clone(), now_us, value));
        }
        if let Some(ch) = change {
            shared
                .metrics
                .changes
                .with_label_values(&[ch.to.as_str()])
                .inc();
            tracing::info!(check = %check.id, from = %ch.from, to = %ch.to, value = ?ch.value, "alerter: state changed");
            batch.alerts.push(AlertRecord {
                id: 0,
                check_id: check.id.clone(),
                target: check.target_text.clone(),
                value: ch.value,
                warn: check.thresholds.warn,
                error: check.thresholds.error,
                from: ch.from,
                to: ch.to,
                time_us: now_us,
                time: rfc3339(now_us),
            });
            update_problem(&mut e, check, ch.to, &feed, now_us);
            // Recorded now, not only when a notification is planned: a problem opened while
            // held (silenced, outside a window, no subscriber) must be listed and survive a
            // restart, and so must a member's new level.
            if let Some(p) = e.problems.get(&check.group_key()) {
                batch.problems.push(p.clone());
            }
        }
    }
    plan_notifications(shared, &mut e, &mut batch, &feed, now_us);
    let rechecks = due_rechecks(shared, &mut e, &feed, now_us);
    shared.metrics.problems_open.set(e.problems.len() as i64);
    let touched_outbox = !batch.deliveries.is_empty();
    // Memory already holds this round's changes: a batch the store refused is kept and
    // written with the next one, or a page (or a resolve) would be lost with it.
    if let Some(mut unsaved) = e.unsaved.take() {
        unsaved.append(batch);
        batch = unsaved;
    }
    // Written while the lock is held: the next round sees what this one recorded.
    if let Err(err) = shared.store.apply(batch.clone()).await {
        e.unsaved = Some(batch);
        return Err(err);
    }
    drop(e);
    if touched_outbox {
        shared.outbox_wake.notify_one();
    }
    for check in rechecks {
        let sources = shared.sources.clone();
        tokio::spawn(async move {
            if let Err(err) = sources.recheck(&check).await {
                tracing::warn!(check = %check, error = %err, "alerter: recheck not asked");
            }
        });
    }
    Ok(())
}

/// Each due check's value now, and whether a bad value may count (SLO alerts need enough bad
/// minutes). What the checks read is read once for all of them (`Sources::read`): a round
/// costs the collector a request per distinct window, however many checks it evaluates.
async fn evaluate(
    shared: &Shared,
    due: &[Check],
    feed: &Feed,
    now_us: i64,
) -> Vec<Result<(Option<f64>, bool), SourceError>> {
    let reads = shared.sources.read(due, now_us).await;
    let confirm = shared.sources.confirm_after;
    let values: Vec<Result<Option<f64>, SourceError>> = due
        .iter()
        .map(|check| {
            if feed.answered.is_none()
                && check.fast_path()
                && !matches!(check.measure, Measure::Blind)
            {
                return Err(SourceError("waiting for the collector's live state".into()));
            }
            match &check.measure {
                Measure::Blind => blind(shared, check, feed),
                _ => reads.value(check, &feed.states, confirm),
            }
        })
        .collect();
    // Only a bad value of an SLO alert needs its bad minutes: read for those alone.
    let wanted: Vec<&crate::check::MinBadMinutes> = due
        .iter()
        .zip(&values)
        .filter_map(|(check, value)| match (&check.min_bad_minutes, value) {
            (Some(m), Ok(v))
                if matches!(state::raw_level(check, *v), Level::Warn | Level::Error) =>
            {
                Some(m)
            }
            _ => None,
        })
        .collect();
    let bad_minutes = if wanted.is_empty() {
        BTreeMap::new()
    } else {
        shared.sources.bad_minutes(&wanted, now_us).await
    };
    due.iter()
        .zip(values)
        .map(|(check, value)| {
            let value = value?;
            let bad_allowed = match (&check.min_bad_minutes, state::raw_level(check, value)) {
                (Some(m), Level::Warn | Level::Error) => {
                    match bad_minutes.get(&(m.check.clone(), m.window)) {
                        Some(Ok(n)) => *n >= m.count,
                        Some(Err(e)) => return Err(e.clone()),
                        None => true,
                    }
                }
                _ => true,
            };
            Ok((value, bad_allowed))
        })
        .collect()
}

fn update_problem(e: &mut Engine, check: &Check, to: Level, feed: &Feed, now_us: i64) {
    let key = check.group_key();
    let live = check
        .about
        .as_ref()
        .and_then(|a| feed.states.checks.iter().find(|c| &c.check == a));
    match (to, e.problems.get_mut(&key)) {
        (Level::Ok, Some(p)) => {
            p.members.insert(check.id.clone(), Level::Ok);
            if p.level() == Level::Ok {
                p.closed_us = Some(now_us);
            }
        }
        (Level::Ok, None) => {}
        (bad, Some(p)) => {
            p.members.insert(check.id.clone(), bad);
            // Another member may have closed it earlier in this same round.
            p.closed_us = None;
        }
        (bad, None) => {
            // Opened at the start of the collector's down, when there is one: a time from the
            // results, the same on every alerter replica, so they name the problem alike.
            let opened = live
                .filter(|l| l.state == LiveState::Down)
                .and_then(|l| l.since_us)
                .unwrap_or(now_us);
            let mut p = Problem::open(&key, &check.id, bad, opened);
            if let Some(l) = live {
                p.regions = l.failing().map(|r| r.region.clone()).collect();
                p.reason = l.failing().find_map(|r| r.reason.clone());
            }
            e.problems.insert(key.clone(), p);
        }
    }
    if let (Some(p), Some(l)) = (e.problems.get_mut(&key), live) {
        for r in l.failing() {
            if !p.regions.contains(&r.region) {
                p.regions.push(r.region.clone());
            }
        }
    }
}

/// Collector checks to run again in every region: once `confirm_after` past the start of a
/// down (the second round that tells an outage from a blip), then every `recheck_every`
/// while it lasts (so the resolve is seen within seconds of recovery).
fn due_rechecks(shared: &Shared, e: &mut Engine, feed: &Feed, now_us: i64) -> Vec<String> {
    let confirm = us(shared.sources.confirm_after);
    let every = us(shared.settings.load().recheck_every);
    let watched: BTreeSet<&str> = e
        .checks
        .values()
        .filter_map(|c| c.about.as_deref())
        .collect();
    let mut out = Vec::new();
    for c in &feed.states.checks {
        if c.state != LiveState::Down || !watched.contains(c.check.as_str()) {
            continue;
        }
        let Some(since) = c.since_us else { continue };
        let first = since + confirm;
        if now_us < first {
            continue;
        }
        let last = e.rechecked.get(&c.check).copied().unwrap_or(i64::MIN);
        if last < first || now_us - last >= every {
            e.rechecked.insert(c.check.clone(), now_us);
            out.push(c.check.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests;

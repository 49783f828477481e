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
use crate::notify::{Kind, Level, Links, Notification, Notifier};
use crate::plan::{self, Hold};
use crate::problem::{AlertRecord, Problem, Silence};
use crate::source::{SourceError, Sources};
use crate::spec::CheckSpec;
use crate::state::{self, CheckState};
use crate::store::{Batch, NewDelivery, Store, StoreError, rfc3339};
use crate::subscription::Subscription;
pub use lookout_api::client::Feed;
use lookout_model::read::{LiveState, RegionState, States};

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
    pub notifiers: BTreeMap<String, Arc<dyn Notifier>>,
    pub metrics: Metrics,
    pub feed: watch::Receiver<Feed>,
    /// Wakes the loop (a change through the API).
    pub wake: Notify,
    /// Wakes the outbox (new deliveries).
    pub outbox_wake: Notify,
    pub settings: EngineSettings,
    pub started: Instant,
    /// Whether a round of slow checks is under way.
    pub slow_round: std::sync::atomic::AtomicBool,
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
    /// Where the alerter is reached by people, for links to its page.
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

/// How many regions are blind: all of them when the feed is stale, else those silent on
/// every check they run.
fn blind(shared: &Shared, check: &Check, feed: &Feed) -> Result<Option<f64>, SourceError> {
    if shared.started.elapsed() < shared.settings.blind_grace {
        // Keeps the state as it was: a restart during an outage of the collector must
        // neither resolve the blind page nor page again.
        return Err(SourceError(
            "just started: regions may not have reported yet".into(),
        ));
    }
    let regions: BTreeSet<&str> = feed
        .states
        .checks
        .iter()
        .flat_map(|c| c.regions.iter().map(|r| r.region.as_str()))
        .collect();
    // Everything blind counts as every region, whether or not the regions are known.
    let all = check
        .thresholds
        .error
        .unwrap_or(regions.len().max(1) as f64);
    let stale = match feed.answered {
        Some(t) => t.elapsed() > FEED_STALE,
        // Never answered: blind once that has lasted as long as a stale feed would.
        None => shared.started.elapsed() > FEED_STALE,
    };
    if stale {
        return Ok(Some(all));
    }
    if feed.answered.is_none() {
        return Err(SourceError("waiting for the collector's live state".into()));
    }
    let silent = regions
        .iter()
        .filter(|region| {
            feed.states.checks.iter().all(|c| {
                c.regions
                    .iter()
                    .filter(|r| r.region == **region)
                    .all(|r| r.state == RegionState::Silent)
            })
        })
        .count();
    Ok(Some(silent as f64))
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
            let mut p = Problem::open(&key, &check.id, bad, now_us);
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

/// Queues what every open problem needs now, and the resolves of those just closed.
fn plan_notifications(
    shared: &Shared,
    e: &mut Engine,
    batch: &mut Batch,
    feed: &Feed,
    now_us: i64,
) {
    let now = DateTime::from_timestamp_micros(now_us).unwrap_or_default();
    let keys: Vec<String> = e.problems.keys().cloned().collect();
    for key in keys {
        let Some(mut p) = e.problems.get(&key).cloned() else {
            continue;
        };
        let before = p.clone();
        let members: Vec<&Check> = p.members.keys().filter_map(|id| e.checks.get(id)).collect();
        let bad: Vec<&Check> = members
            .iter()
            .copied()
            .filter(|c| p.members.get(&c.id).is_some_and(|l| *l != Level::Ok))
            .collect();
        let silenced = !bad.is_empty() && bad.iter().all(|c| e.silenced(c, feed, now_us));
        let dependent = !bad.is_empty()
            && bad
                .iter()
                .all(|c| e.held_by_dependency(c, &key, feed, now_us));
        // One message per receiver, however many of the problem's checks it subscribes to.
        let mut dests: BTreeMap<String, (Subscription, Option<Hold>)> = BTreeMap::new();
        for m in &members {
            for s in e.subscriptions_of(&m.id) {
                let hold = if silenced {
                    Some(Hold::Silenced)
                } else if dependent {
                    Some(Hold::Dependency)
                } else if s.window.parse().is_ok_and(|w| !w.contains(now)) {
                    Some(Hold::Window)
                } else {
                    None
                };
                let k = destination(s);
                match dests.get_mut(&k) {
                    None => {
                        let mut rep = s.clone();
                        rep.id = k.clone();
                        dests.insert(k, (rep, hold));
                    }
                    Some((rep, h)) => {
                        rep.ignore_warn &= s.ignore_warn;
                        rep.ignore_error &= s.ignore_error;
                        rep.ignore_ok &= s.ignore_ok;
                        rep.enabled |= s.enabled;
                        if hold.is_none() {
                            *h = None;
                        }
                    }
                }
            }
        }
        if !p.is_open() {
            for key in p.notified.keys() {
                if !dests.contains_key(key) {
                    let (notifier, target) = receiver(key);
                    let rep = Subscription {
                        id: key.clone(),
                        check_id: p.lead.clone(),
                        notifier,
                        target,
                        ignore_warn: false,
                        ignore_error: false,
                        ignore_ok: false,
                        window: Default::default(),
                        enabled: true,
                    };
                    dests.insert(key.clone(), (rep, None));
                }
            }
        }
        let subs: Vec<&Subscription> = dests.values().map(|(s, _)| s).collect();
        let planned = if p.is_open() {
            let with_holds: Vec<(&Subscription, Option<Hold>)> =
                dests.values().map(|(s, h)| (s, *h)).collect();
            plan::open_problem(&mut p, &with_holds, shared.settings.reminder_every, now_us)
        } else {
            plan::closed_problem(&p, &subs, &|s| {
                shared
                    .notifiers
                    .get(&s.notifier)
                    .is_some_and(|n| n.stateful())
            })
        };
        for pl in planned {
            let Some(sub) = subs.iter().find(|s| s.id == pl.subscription_id) else {
                continue;
            };
            // `before`: what the subscriber was told until now (`previous`), not what
            // planning has just recorded.
            let n = notification(shared, e, &before, sub, pl.kind, feed, now);
            batch.deliveries.push(NewDelivery {
                problem_id: p.id.clone(),
                subscription_id: sub.id.clone(),
                kind: pl.kind,
                level: pl.level,
                notification: n,
                not_before_us: now_us,
            });
        }
        if p != before || !p.is_open() {
            batch.problems.push(p.clone());
        }
        if p.is_open() {
            e.problems.insert(key, p);
        } else {
            e.problems.remove(&key);
        }
    }
}

/// The message of one notification.
pub fn notification(
    shared: &Shared,
    e: &Engine,
    p: &Problem,
    sub: &Subscription,
    kind: Kind,
    feed: &Feed,
    now: DateTime<Utc>,
) -> Notification {
    let lead = e.checks.get(&p.lead);
    let state = e.states.get(&p.lead);
    let level = if kind == Kind::Resolve {
        Level::Ok
    } else {
        p.level()
    };
    let previous = p.notified.get(&sub.id).map_or(Level::Ok, |n| n.level);
    let others: Vec<String> = p
        .bad_members()
        .into_iter()
        .filter(|c| *c != p.lead)
        .map(|c| e.checks.get(c).map_or(c.to_owned(), |x| x.name.clone()))
        .collect();
    let mut description = lead.map(|c| c.description.clone()).unwrap_or_default();
    if !others.is_empty() {
        description.push_str(&format!(
            "\nAlso failing in this problem: {}",
            others.join(", ")
        ));
    }
    let about = lead.and_then(|c| c.about.clone());
    let reason = p.reason.clone().or_else(|| {
        let a = about.as_ref()?;
        let live = feed.states.check(a)?;
        live.failing().find_map(|r| r.reason.clone())
    });
    let links = &shared.settings.links;
    // What this receiver was paged for decides too, so a resolve carries the labels of its
    // page (Alertmanager tells alerts apart by their labels).
    let told = p.notified.get(&sub.id).map_or(Level::Ok, |n| n.level);
    let severity = if p.level().max(told) == Level::Error {
        "page"
    } else {
        "ticket"
    };
    let mut labels = BTreeMap::from([
        ("check".to_owned(), p.lead.clone()),
        ("severity".to_owned(), severity.to_owned()),
        ("problem".to_owned(), p.id.clone()),
    ]);
    if let Some(g) = lead.and_then(|c| c.group.clone()) {
        labels.insert("group".into(), g);
    }
    let (warn, error, worse) = lead.map_or((None, None, "higher"), |c| {
        (
            c.thresholds.warn,
            c.thresholds.error,
            match c.thresholds.worse {
                crate::check::Worse::Higher => "higher",
                crate::check::Worse::Lower => "lower",
            },
        )
    });
    Notification {
        id: format!(
            "{}/{}/{}/{}",
            p.id,
            sub.id,
            kind.as_str(),
            now.timestamp_micros()
        ),
        problem_id: p.id.clone(),
        kind,
        check_id: p.lead.clone(),
        check_name: lead.map_or(p.lead.clone(), |c| c.name.clone()),
        description,
        target: lead.map(|c| c.target_text.clone()).unwrap_or_default(),
        state: level,
        previous,
        value: state.and_then(|s| s.value),
        warn,
        error,
        worse: worse.into(),
        regions: p.regions.clone(),
        since: DateTime::from_timestamp_micros(p.opened_us).unwrap_or_default(),
        at: now,
        reason,
        severity: severity.into(),
        labels,
        links: Links {
            status_page: links.status_page.clone(),
            dashboard: links
                .dashboard
                .as_ref()
                .map(|d| d.replace("{check}", about.as_deref().unwrap_or(&p.lead))),
            alerter: links
                .alerter
                .as_ref()
                .map(|a| format!("{}/#check-{}", a.trim_end_matches('/'), p.lead)),
        },
    }
}

/// A receiver: a notifier and its target. Problems notify each receiver once.
pub fn destination(s: &Subscription) -> String {
    format!("{}>{}", s.notifier, s.target.as_deref().unwrap_or(""))
}

/// The notifier and target of a receiver key (notifier names never hold `>`): deliveries and
/// resolves go to whoever was paged, even if the subscription is gone since.
pub fn receiver(key: &str) -> (String, Option<String>) {
    match key.split_once('>') {
        Some((n, "")) => (n.to_owned(), None),
        Some((n, t)) => (n.to_owned(), Some(t.to_owned())),
        None => (key.to_owned(), None),
    }
}

/// Collector checks to run again in every region: once `confirm_after` past the start of a
/// down (the second round that tells an outage from a blip), then every `recheck_every`
/// while it lasts (so the resolve is seen within seconds of recovery).
fn due_rechecks(shared: &Shared, e: &mut Engine, feed: &Feed, now_us: i64) -> Vec<String> {
    let confirm = us(shared.sources.confirm_after);
    let every = us(shared.settings.recheck_every);
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

/// While a down check waits for its confirmation, the feed is read every second instead of
/// waiting for a change: a new failure from an already failing region changes nothing the
/// feed reports as a change.
pub fn feed_wait(states: &States) -> Duration {
    let pending = states.checks.iter().any(|c| c.state == LiveState::Down);
    if pending {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(25)
    }
}

/// Keeps the latest feed in `tx`: long polls, quicker while something is down.
pub async fn follow_feed(
    sources: Sources,
    tx: watch::Sender<Feed>,
    metrics_up: prometheus::IntGauge,
    stop: watch::Receiver<bool>,
) {
    lookout_api::client::follow(
        sources.collector(),
        &tx,
        feed_wait,
        |outcome| match outcome {
            Ok(_) => metrics_up.set(1),
            Err(e) => {
                metrics_up.set(0);
                tracing::warn!(error = %e, "alerter: the collector's live state feed failed; retrying");
            }
        },
        stop,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{Origin, Schedule, Thresholds};
    use crate::target::Expr;

    fn member(id: &str) -> Check {
        Check {
            id: id.into(),
            name: id.into(),
            description: String::new(),
            target_text: "1".into(),
            measure: Measure::Target(Expr::Number(1.0)),
            thresholds: Thresholds::new(None, Some(1.0), None).unwrap(),
            enabled: true,
            allow_no_data: false,
            schedule: Schedule::Every(Duration::from_secs(10)),
            gate: None,
            for_duration: None,
            min_bad_minutes: None,
            group: Some("storefront".into()),
            depends_on: Vec::new(),
            dependency_grace: None,
            about: None,
            origin: Origin::Config,
        }
    }

    fn engine(checks: Vec<Check>, problems: Vec<Problem>) -> Engine {
        Engine::new(
            checks,
            BTreeMap::new(),
            Vec::new(),
            Vec::new(),
            problems,
            Vec::new(),
        )
    }

    #[test]
    fn a_member_failing_in_the_round_another_recovers_keeps_the_problem_open() {
        let (a, b) = (member("a"), member("b"));
        let mut e = engine(vec![a.clone(), b.clone()], Vec::new());
        let feed = Feed::default();
        update_problem(&mut e, &a, Level::Error, &feed, 1);
        update_problem(&mut e, &a, Level::Ok, &feed, 2);
        update_problem(&mut e, &b, Level::Error, &feed, 2);
        let p = &e.problems["group:storefront"];
        assert!(p.is_open(), "{p:?}");
        assert_eq!(p.level(), Level::Error);
    }

    #[test]
    fn a_deleted_or_disabled_member_no_longer_holds_its_problem_open() {
        let (a, b) = (member("a"), member("b"));
        let mut e = engine(vec![a.clone(), b.clone()], Vec::new());
        let feed = Feed::default();
        update_problem(&mut e, &a, Level::Error, &feed, 1);
        update_problem(&mut e, &b, Level::Error, &feed, 1);
        e.remove_check("a");
        assert!(e.problems["group:storefront"].is_open());
        let mut off = b.clone();
        off.enabled = false;
        e.add_check(off);
        assert!(
            !e.problems["group:storefront"].is_open(),
            "closed: its resolve goes out"
        );
        // A restart with a problem whose member is gone closes it too.
        let p = e.problems["group:storefront"].clone();
        let mut reopened = p.clone();
        reopened.closed_us = None;
        reopened.members.insert("gone".into(), Level::Error);
        let e2 = engine(vec![member("b")], vec![reopened]);
        assert!(!e2.problems["group:storefront"].is_open());
    }
}

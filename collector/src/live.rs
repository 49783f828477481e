//! Live check state: every check's `up` / `down` / `no_data` now, each region's `ok` /
//! `degraded` / `failing` / `silent`, and a version that moves on every change, so that the alerter can
//! long-poll `GET /api/v1/states` and learn of a confirmed outage the moment the batch that
//! confirms it is stored, instead of polling on a schedule.
//!
//! The rules are DESIGN.md's, as `lookout_model::sla` states them: a region's state is its
//! latest result's outcome, held until the next result or until it goes silent
//! (`2 x interval + timeout` later); a check is down while at least `quorum` regions fail and
//! has no data while fewer than `quorum` report. Only the latest result per region matters
//! here, so the state is kept as such rather than recomputed from the live tail on each call.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use lookout_model::probe::{Failure, FailureKind, Outcome, ProbeResult, Verdict};
pub use lookout_model::read::{
    CheckLive as CheckView, LiveState as CheckStatus, RegionLive as RegionView,
    RegionState as RegionStatus, States,
};
use lookout_model::read::{Maintenance, MaintenanceStatus};
use lookout_model::sla::{self, Rules};
use prometheus::IntCounterVec;
use tokio::sync::watch;

use crate::ingest::{CheckInfo, Known};

/// How often silence is looked for: a region goes silent with no result to announce it.
pub const TICK: Duration = Duration::from_secs(1);

/// A region's latest result, reduced to what the state and the alerter need.
#[derive(Debug, Clone)]
struct Latest {
    start_us: i64,
    verdict: Verdict,
    /// Why it failed or was degraded; `None` when it passed, or when the reason is not known
    /// (a result replayed at start whose row could not be read).
    reason: Option<Reason>,
}

#[derive(Debug, Clone)]
struct Reason {
    message: String,
    /// A failure's kind; a degradation has none.
    kind: Option<FailureKind>,
}

impl Reason {
    fn of(outcome: &Outcome) -> Option<Reason> {
        match outcome {
            Outcome::Ok => None,
            Outcome::Degraded(d) => Some(Reason {
                message: d.message.clone(),
                kind: None,
            }),
            Outcome::Fail(f) => Some(Reason::failure(f)),
        }
    }

    fn failure(f: &Failure) -> Reason {
        Reason {
            message: f.message.clone(),
            kind: Some(f.kind),
        }
    }
}

#[derive(Debug, Clone)]
struct Region {
    name: String,
    latest: Option<Latest>,
    status: RegionStatus,
    /// When `status` began; `None` for a region that never reported.
    since_us: Option<i64>,
}

impl Region {
    fn new(name: &str) -> Self {
        Region {
            name: name.to_owned(),
            latest: None,
            status: RegionStatus::Silent,
            since_us: None,
        }
    }
}

#[derive(Debug, Clone)]
struct Check {
    name: String,
    interval_us: i64,
    timeout_us: i64,
    quorum: Option<usize>,
    /// The configured regions, then any other seen, in the order first seen (as the rollups
    /// hold them: the quorum depends on how many there are).
    regions: Vec<Region>,
    status: CheckStatus,
    since_us: Option<i64>,
}

/// What one update changed: each change moves the version by one.
#[derive(Default)]
struct Changes {
    count: u64,
    /// (check, state entered), for `lookout_check_state_changes_total`.
    entered: Vec<(String, CheckStatus)>,
}

impl Check {
    fn new(name: &str, info: &CheckInfo) -> Self {
        Check {
            name: name.to_owned(),
            interval_us: info.interval_us,
            timeout_us: info.timeout_us,
            quorum: info.quorum(),
            regions: info.regions.iter().map(|r| Region::new(r)).collect(),
            status: CheckStatus::NoData,
            since_us: None,
        }
    }

    fn rules(&self) -> Rules {
        Rules::new(self.regions.len(), self.interval_us, self.timeout_us).with_quorum(self.quorum)
    }

    fn region_index(&mut self, name: &str) -> usize {
        match self.regions.iter().position(|r| r.name == name) {
            Some(i) => i,
            None => {
                self.regions.push(Region::new(name));
                self.regions.len() - 1
            }
        }
    }

    /// The state the regions make, by the instant rule of `sla::tally_split`.
    fn derive(&self) -> CheckStatus {
        let quorum = self.rules().quorum;
        let reporting = self
            .regions
            .iter()
            .filter(|r| r.status != RegionStatus::Silent)
            .count();
        let failing = self
            .regions
            .iter()
            .filter(|r| r.status == RegionStatus::Failing)
            .count();
        if quorum > 0 && failing >= quorum {
            CheckStatus::Down
        } else if reporting < quorum.max(1) {
            CheckStatus::NoData
        } else {
            CheckStatus::Up
        }
    }

    /// Re-derives the check's state after its regions changed at `at`.
    fn settle(&mut self, at: i64, ch: &mut Changes) {
        let status = self.derive();
        if status != self.status {
            self.status = status;
            self.since_us = Some(at);
            ch.count += 1;
            ch.entered.push((self.name.clone(), status));
        }
    }

    /// Silences the regions whose latest result is too old at `now`, one at a time in the
    /// order they went silent, so that the check's state changes at the right instant.
    fn advance(&mut self, now: i64, ch: &mut Changes) {
        let silence = sla::silence_us(self.interval_us, self.timeout_us);
        loop {
            let next = self
                .regions
                .iter()
                .enumerate()
                .filter(|(_, r)| r.status != RegionStatus::Silent)
                .filter_map(|(i, r)| {
                    r.latest
                        .as_ref()
                        .map(|l| (l.start_us.saturating_add(silence), i))
                })
                .filter(|(at, _)| *at <= now)
                .min();
            let Some((at, i)) = next else { break };
            if let Some(r) = self.regions.get_mut(i) {
                r.status = RegionStatus::Silent;
                r.since_us = Some(at);
                ch.count += 1;
            }
            self.settle(at, ch);
        }
    }

    /// Takes a region's new result, unless it is older than the one held: a late result (a
    /// replayed spool) says nothing about now.
    fn apply(
        &mut self,
        region: &str,
        start_us: i64,
        verdict: Verdict,
        reason: Option<Reason>,
        now: i64,
        ch: &mut Changes,
    ) {
        self.advance(now, ch);
        let silence = sla::silence_us(self.interval_us, self.timeout_us);
        let i = self.region_index(region);
        let Some(r) = self.regions.get_mut(i) else {
            return;
        };
        if r.latest.as_ref().is_some_and(|l| l.start_us > start_us) {
            return;
        }
        r.latest = Some(Latest {
            start_us,
            verdict,
            reason,
        });
        // A result older than the silence is stored history: the region stays silent.
        let silent_at = start_us.saturating_add(silence);
        let (status, since) = if silent_at <= now {
            (RegionStatus::Silent, silent_at)
        } else {
            let status = match verdict {
                Verdict::Ok => RegionStatus::Ok,
                Verdict::Degraded => RegionStatus::Degraded,
                Verdict::Fail => RegionStatus::Failing,
            };
            (status, start_us)
        };
        if status != r.status {
            r.status = status;
            r.since_us = Some(since);
            ch.count += 1;
        } else if r.since_us.is_none() {
            r.since_us = Some(since);
        }
        // A region seen for the first time changes the quorum as well.
        self.settle(start_us, ch);
    }

    fn view(&self) -> CheckView {
        CheckView {
            check: self.name.clone(),
            state: self.status,
            since_us: self.since_us,
            quorum: self.rules().quorum,
            regions: self
                .regions
                .iter()
                .map(|r| {
                    let reason = r
                        .latest
                        .as_ref()
                        .filter(|_| {
                            matches!(r.status, RegionStatus::Failing | RegionStatus::Degraded)
                        })
                        .and_then(|l| l.reason.as_ref());
                    RegionView {
                        region: r.name.clone(),
                        state: r.status,
                        since_us: r.since_us,
                        last_result_us: r.latest.as_ref().map(|l| l.start_us),
                        reason: reason.map(|f| f.message.clone()),
                        kind: reason.and_then(|f| f.kind).map(|k| k.as_str().to_owned()),
                    }
                })
                .collect(),
        }
    }
}

struct Inner {
    version: u64,
    checks: BTreeMap<String, Check>,
    known: Known,
    /// Maintenance not yet over, by start; each window's start and end move the version.
    maintenance: Vec<Maintenance>,
    /// When the maintenance was last looked at.
    maintenance_seen_us: i64,
}

impl Inner {
    /// Drops the windows over by `now`; each start or end passed is a change.
    fn advance_maintenance(&mut self, now: i64, ch: &mut Changes) {
        for m in &self.maintenance {
            if m.status(now) != m.status(self.maintenance_seen_us) {
                ch.count += 1;
            }
        }
        self.maintenance
            .retain(|m| m.status(now) != MaintenanceStatus::Completed);
        self.maintenance_seen_us = now;
    }
}

impl Inner {
    fn check_mut(&mut self, name: &str, ch: &mut Changes) -> &mut Check {
        let known = &self.known;
        self.checks.entry(name.to_owned()).or_insert_with(|| {
            // A check seen for the first time is news to a waiter too.
            ch.count += 1;
            let info = known.get(name).cloned().unwrap_or_else(CheckInfo::unknown);
            Check::new(name, &info)
        })
    }
}

/// The live state of every check, shared by ingest, the ticker and the long polls.
pub struct Live {
    inner: Mutex<Inner>,
    version: watch::Sender<u64>,
    /// Check-level changes, by check and the state entered.
    changes: IntCounterVec,
}

impl Live {
    /// Every known check, with no data until its regions report.
    pub fn new(known: &Known, changes: IntCounterVec) -> Self {
        let checks = known
            .iter()
            .map(|(name, info)| (name.clone(), Check::new(name, info)))
            .collect();
        Live {
            inner: Mutex::new(Inner {
                version: 0,
                checks,
                known: known.clone(),
                maintenance: Vec::new(),
                maintenance_seen_us: i64::MIN,
            }),
            version: watch::Sender::new(0),
            changes,
        }
    }

    /// New settings of the checks: a new check is live from now with no data, a removed one
    /// leaves the live state (its history stays in the store), a changed one takes its new
    /// schedule and regions.
    pub fn set_known(&self, known: &Known) {
        let mut inner = self.lock();
        let mut ch = Changes::default();
        // Told of no checks, the collector takes any: none of those it has seen is removed.
        if !known.is_empty() {
            inner.checks.retain(|name, _| known.contains_key(name));
        }
        for (name, info) in known {
            let c = inner.check_mut(name, &mut ch);
            c.interval_us = info.interval_us;
            c.timeout_us = info.timeout_us;
            c.quorum = info.quorum();
            for r in &info.regions {
                c.region_index(r);
            }
        }
        inner.known = known.clone();
        inner.version += 1;
        let v = inner.version;
        drop(inner);
        self.version.send_replace(v);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes what an update changed; called with the lock held, so that versions are sent
    /// in order.
    fn publish(&self, inner: &mut Inner, ch: Changes, count: bool) {
        if ch.count == 0 {
            return;
        }
        inner.version += ch.count;
        self.version.send_replace(inner.version);
        if count {
            for (check, status) in ch.entered {
                self.changes
                    .with_label_values(&[check.as_str(), status.as_str()])
                    .inc();
            }
        }
    }

    /// Takes results just stored (`inserted[i]`: result `i` was new; a replayed one was
    /// already taken when it was first stored).
    pub fn observe(&self, results: &[ProbeResult], inserted: &[bool], now: i64) {
        let mut inner = self.lock();
        let mut ch = Changes::default();
        for (r, new) in results.iter().zip(inserted) {
            if !*new {
                continue;
            }
            inner.check_mut(&r.check, &mut ch).apply(
                &r.region,
                r.started_at_us,
                r.outcome.verdict(),
                Reason::of(&r.outcome),
                now,
                &mut ch,
            );
        }
        self.publish(&mut inner, ch, true);
    }

    /// The latest result of `check` in `region`: its start, verdict and reason (a heartbeat's
    /// watch reads its one region here).
    pub fn latest(&self, check: &str, region: &str) -> Option<(i64, Verdict, Option<String>)> {
        let inner = self.lock();
        let c = inner.checks.get(check)?;
        let r = c.regions.iter().find(|r| r.name == region)?;
        r.latest.as_ref().map(|l| {
            (
                l.start_us,
                l.verdict,
                l.reason.as_ref().map(|x| x.message.clone()),
            )
        })
    }

    /// Looks for regions gone silent, and maintenance begun or over, by `now`.
    pub fn advance(&self, now: i64) {
        let mut inner = self.lock();
        let mut ch = Changes::default();
        for c in inner.checks.values_mut() {
            c.advance(now, &mut ch);
        }
        inner.advance_maintenance(now, &mut ch);
        self.publish(&mut inner, ch, true);
    }

    /// Takes the maintenance not over at `now` (after a change): news to every waiter.
    pub fn set_maintenance(&self, windows: Vec<Maintenance>, now: i64) {
        let mut inner = self.lock();
        let mut ch = Changes::default();
        if inner.maintenance != windows {
            inner.maintenance = windows;
            ch.count += 1;
        }
        inner.maintenance_seen_us = now;
        self.publish(&mut inner, ch, false);
    }

    /// The state of every check at `now`.
    pub fn states(&self, now: i64) -> States {
        let mut inner = self.lock();
        let mut ch = Changes::default();
        for c in inner.checks.values_mut() {
            c.advance(now, &mut ch);
        }
        inner.advance_maintenance(now, &mut ch);
        self.publish(&mut inner, ch, true);
        States {
            version: inner.version,
            checks: inner.checks.values().map(Check::view).collect(),
            maintenance: inner.maintenance.clone(),
        }
    }

    pub fn version(&self) -> u64 {
        self.lock().version
    }

    /// Wakes on every change of the version.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// After a restart: replays a check's live tail (`(region, start, verdict)`, any order)
    /// so that its state, and since when, are what they were. `reason(region, start)` reads a
    /// failure's reason back, asked only for the regions failing at the end (a degraded
    /// region's reason is not read back: it shows again with the region's next result).
    pub fn replay(
        &self,
        check: &str,
        regions: &[String],
        mut tail: Vec<(String, i64, Verdict)>,
        reason: impl Fn(&str, i64) -> Option<Failure>,
        now: i64,
    ) {
        let mut inner = self.lock();
        // The store may hold checks since removed from the configuration: not live.
        if !inner.known.is_empty() && !inner.known.contains_key(check) {
            return;
        }
        let mut ch = Changes::default();
        let c = inner.check_mut(check, &mut ch);
        for r in regions {
            c.region_index(r);
        }
        tail.sort_by_key(|(_, start, _)| *start);
        for (region, start, verdict) in tail {
            c.apply(&region, start, verdict, None, start, &mut ch);
        }
        c.advance(now, &mut ch);
        for r in &mut c.regions {
            if r.status == RegionStatus::Failing
                && let Some(l) = &mut r.latest
                && l.reason.is_none()
            {
                l.reason = reason(&r.name, l.start_us).as_ref().map(Reason::failure);
            }
        }
        // History, not news: not counted as changes seen by this collector.
        self.publish(&mut inner, ch, false);
    }
}

#[cfg(test)]
mod tests;

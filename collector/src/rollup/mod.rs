//! Rollups: what makes a 90-day question cost microseconds instead of a scan of a billion
//! results.
//!
//! A pass (once a minute, and at start) turns the raw results of minutes that are complete
//! into: the minutes of each check that had downtime or no data (a healthy minute is not
//! stored at all), per-region latency histograms per hour and per day, and the check's
//! coverage (every minute in `[covered_from, frontier)` is rolled up). Results that arrive for
//! minutes already rolled up (a spool replaying an hour) are found by their store id, and the
//! minutes, hours and days they touch are computed again from the raw results.
//!
//! In memory each check keeps its bad minutes, per-day sums of them, latency per day and, for
//! the last two days, per hour (regions merged), and the raw results after its frontier (the
//! live tail). Queries read only memory: rollups up to the frontier, exact math after it.

mod incidents;
mod query;
mod state;

pub use incidents::{FirstFailure, Incident};
pub use query::{Computed, Current, Latency, LiveTail, RegionLatencyError, RegionNow};

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use lookout_model::latency::{Accumulator, Sparse};
use lookout_model::probe::ProbeResult;
use lookout_model::sla::{self, MINUTE_US, Rules, Spans};

use crate::ingest::{CheckInfo, Known};
use crate::store::{Bucket, CheckRollup, Coverage, ResultStore, Retention, StoreError, Stored};
use state::CheckState;

pub const HOUR_US: i64 = 60 * MINUTE_US;
pub const DAY_US: i64 = 24 * HOUR_US;

#[derive(Debug, Clone, Copy)]
pub struct RollupSettings {
    /// Raw results older than this are removed (the rollups stay).
    pub raw_retention_us: i64,
    /// Rollups older than this are removed.
    pub rollup_retention_us: i64,
    /// How long after a minute ends its results are expected to have arrived.
    pub settle_us: i64,
}

impl Default for RollupSettings {
    fn default() -> Self {
        RollupSettings {
            raw_retention_us: 14 * DAY_US,
            rollup_retention_us: 400 * DAY_US,
            settle_us: 15_000_000,
        }
    }
}

/// Hourly latency kept in memory for this long; older windows use days.
const HOURS_IN_MEMORY_US: i64 = 2 * DAY_US;
/// Raw results removed per pass at most, so a pass never holds the store for long.
const PRUNE_PER_PASS: usize = 200_000;
/// The most one pass rolls up of a check. A pass holds every check's raw results of its span
/// (and the silence before it) at once: at 5,000 checks x 5 regions every 10 s ten minutes
/// are 1.5 million results, about 200 MiB while they are grouped; an hour was 1.1 GiB.
const MAX_SPAN_US: i64 = 10 * MINUTE_US;

pub fn floor_to(t: i64, step: i64) -> i64 {
    t - t.rem_euclid(step)
}

/// The figures of one pass, for logs and the collector's own metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct PassReport {
    pub checks: usize,
    pub minutes: i64,
    pub raw_removed: usize,
    /// Passes run (more than one when there was more than a pass's worth to do).
    pub passes: usize,
}

pub struct Rollups {
    store: Arc<dyn ResultStore>,
    known: RwLock<Known>,
    settings: RollupSettings,
    checks: RwLock<HashMap<String, Arc<Mutex<CheckState>>>>,
    /// Each check's maintenance, for checks first seen after it was set.
    maintenance: RwLock<HashMap<String, Spans>>,
    /// Every result with a store id up to this is rolled up; also keeps passes one at a time
    /// (and a change of maintenance out of a pass).
    rolled_id: Mutex<i64>,
    /// Set when results arrived for minutes already rolled up: the next answer waits for a
    /// pass, so that what was acknowledged is what is answered.
    late: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Rollups {
    /// Loads what the store holds and the raw results after each check's frontier.
    pub fn open(
        store: Arc<dyn ResultStore>,
        known: Known,
        settings: RollupSettings,
        now_us: i64,
    ) -> Result<Rollups, StoreError> {
        let mut loaded = store.load_rollups(now_us - HOURS_IN_MEMORY_US - DAY_US)?;
        let maintenance = crate::maintenance::spans_by_check(&store.maintenances()?);
        let mut names: Vec<String> = known.keys().cloned().collect();
        names.extend(loaded.checks.keys().cloned());
        names.sort();
        names.dedup();
        let mut states = BTreeMap::new();
        for name in names {
            let info = known.get(&name).cloned().unwrap_or_else(CheckInfo::unknown);
            let mut st = CheckState::new(info);
            if let Some(l) = loaded.checks.remove(&name) {
                st.load(l);
            }
            st.maintenance = maintenance.get(&name).cloned().unwrap_or_default();
            states.insert(name, st);
        }
        // The live tails, from one read: results are indexed by time, not by check. Results
        // stored but not rolled up before a restart may belong to checks without coverage.
        let unrolled = store.stored_since(loaded.rolled_id)?;
        let lookback = states
            .values()
            .map(CheckState::silence_us)
            .chain([CheckState::new(CheckInfo::unknown()).silence_us()])
            .max()
            .unwrap_or(0);
        let since = states
            .values()
            .map(CheckState::live_from)
            .chain(
                unrolled
                    .earliest
                    .values()
                    .map(|t| t.saturating_sub(lookback)),
            )
            .min();
        if let Some(since) = since {
            for (check, o) in store.observations_all(since, i64::MAX)? {
                let st = match states.get_mut(&check) {
                    Some(st) => st,
                    None => states.entry(check.clone()).or_insert_with(|| {
                        let mut st = CheckState::new(CheckInfo::unknown());
                        st.maintenance = maintenance.get(&check).cloned().unwrap_or_default();
                        st
                    }),
                };
                if o.start_us >= st.live_from() {
                    st.push_recent(&o.region, o.start_us, o.verdict, o.duration_us);
                }
            }
        }
        let checks: HashMap<String, Arc<Mutex<CheckState>>> = states
            .into_iter()
            .map(|(name, st)| (name, Arc::new(Mutex::new(st))))
            .collect();
        Ok(Rollups {
            store,
            known: RwLock::new(known),
            settings,
            checks: RwLock::new(checks),
            maintenance: RwLock::new(maintenance),
            rolled_id: Mutex::new(loaded.rolled_id),
            // What was stored but not rolled up before a restart is as good as late.
            late: AtomicBool::new(true),
        })
    }

    /// New settings of the checks: each known one's rollups go on with its new settings
    /// from the next minute; a check no longer known keeps what it has.
    pub fn set_known(&self, known: &Known) {
        for (name, info) in known {
            let st = self.state_or_new(name);
            let mut st = lock(&st);
            for r in &info.regions {
                if !st.regions.contains(r) {
                    st.regions.push(r.clone());
                }
            }
            st.info = info.clone();
        }
        *self.known.write().unwrap_or_else(PoisonError::into_inner) = known.clone();
    }

    pub fn store(&self) -> &Arc<dyn ResultStore> {
        &self.store
    }

    /// What a check was when last configured, while its rollups are held (a check the config
    /// no longer names still answers for its history).
    pub fn last_info(&self, check: &str) -> Option<CheckInfo> {
        let st = self.state(check)?;
        let info = lock(&st).info.clone();
        Some(info)
    }

    pub(crate) fn state(&self, check: &str) -> Option<Arc<Mutex<CheckState>>> {
        self.checks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(check)
            .cloned()
    }

    fn state_or_new(&self, check: &str) -> Arc<Mutex<CheckState>> {
        if let Some(s) = self.state(check) {
            return s;
        }
        let info = self
            .known
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(check)
            .cloned()
            .unwrap_or_else(CheckInfo::unknown);
        let mut st = CheckState::new(info);
        st.maintenance = self
            .maintenance
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(check)
            .cloned()
            .unwrap_or_default();
        self.checks
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(check.to_owned())
            .or_insert_with(|| Arc::new(Mutex::new(st)))
            .clone()
    }

    /// Changes the maintenance windows: `write` stores the change (marking `dirty`'s checks
    /// for rolling up again from their instant, in its transaction) and answers each check's
    /// maintenance after it, which the rollups then take. No pass runs meanwhile, so none
    /// can save rollups made with the old windows over the new marks. Blocking.
    pub fn change_maintenance<T>(
        &self,
        dirty: &[(String, i64)],
        write: impl FnOnce(&dyn ResultStore) -> Result<(T, HashMap<String, Spans>), StoreError>,
    ) -> Result<T, StoreError> {
        let _no_pass = lock(&self.rolled_id);
        let (out, spans) = write(self.store.as_ref())?;
        for (name, st) in self
            .checks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            lock(st).maintenance = spans.get(name).cloned().unwrap_or_default();
        }
        *self
            .maintenance
            .write()
            .unwrap_or_else(PoisonError::into_inner) = spans;
        for (check, from) in dirty {
            let Some(st) = self.state(check) else {
                continue;
            };
            let mut st = lock(&st);
            if let Some(c) = &mut st.coverage
                && *from < c.frontier
            {
                c.dirty_from = Some(c.dirty_from.map_or(*from, |d| d.min(*from)));
                // The next answer waits for the pass that rolls those minutes up again.
                self.late.store(true, Ordering::Release);
            }
        }
        Ok(out)
    }

    /// Takes results just stored (`inserted[i]`: result `i` was new) into the live tails.
    pub fn observe(&self, results: &[ProbeResult], inserted: &[bool]) {
        for (r, new) in results.iter().zip(inserted) {
            if !*new {
                continue;
            }
            let st = self.state_or_new(&r.check);
            let mut st = lock(&st);
            // Before the frontier, a result changes minutes already rolled up; shortly before
            // it, it also decides the state the live tail starts from.
            if r.started_at_us < st.frontier() {
                self.late.store(true, Ordering::Release);
            }
            if r.started_at_us >= st.live_from() {
                st.push_recent(
                    &r.region,
                    r.started_at_us,
                    r.outcome.verdict(),
                    i64::try_from(r.duration_us).unwrap_or(i64::MAX),
                );
            }
        }
    }

    /// Rolls up every complete minute, corrects those that late results touched, and applies
    /// retention. Blocking: run it on a blocking thread.
    pub fn pass(&self, now_us: i64) -> Result<PassReport, StoreError> {
        let mut rolled_id = lock(&self.rolled_id);
        // Cleared before reading what is new: a result flagged after this is read next time.
        let was_late = self.late.swap(false, Ordering::AcqRel);
        let mut total = PassReport::default();
        loop {
            match self.pass_locked(&mut rolled_id, now_us) {
                Ok((report, more)) => {
                    total.checks = total.checks.max(report.checks);
                    total.minutes += report.minutes;
                    total.raw_removed += report.raw_removed;
                    total.passes += 1;
                    if !more {
                        return Ok(total);
                    }
                }
                Err(e) => {
                    if was_late {
                        self.late.store(true, Ordering::Release);
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Runs a pass first if results arrived late since the last one; answers then reflect
    /// every acknowledged result. Blocking.
    pub fn settle(&self, now_us: i64) {
        if self.late.load(Ordering::Acquire)
            && let Err(e) = self.pass(now_us)
        {
            tracing::error!(error = %e, "rollup pass failed; answering from the rollups held");
        }
    }

    fn pass_locked(
        &self,
        rolled_id: &mut i64,
        now_us: i64,
    ) -> Result<(PassReport, bool), StoreError> {
        let new = self.store.stored_since(*rolled_id)?;
        let mut names = self.checks();
        names.extend(new.earliest.keys().cloned());
        names.sort();
        names.dedup();
        let mut writes = Vec::new();
        let mut report = PassReport::default();
        let mut plans = Vec::new();
        for name in names {
            let st = self.state_or_new(&name);
            let plan = {
                let st = lock(&st);
                plan(
                    &st,
                    new.earliest.get(&name).copied(),
                    now_us,
                    &self.settings,
                )
            };
            if let Some(plan) = plan {
                plans.push((name, st, plan));
            }
        }
        // One read of the store for every check: the range that covers all plans, of which
        // each check keeps only its own plan's range (one check rolling up an hour again
        // for a late result must not hold the hour of every other check).
        let read_from = plans.iter().map(|(_, _, p)| p.read_from()).min();
        let read_to = plans.iter().map(|(_, _, p)| p.end).max();
        let mut raw: HashMap<String, (i64, i64, Vec<Stored>)> = plans
            .iter()
            .map(|(name, _, p)| (name.clone(), (p.read_from(), p.end, Vec::new())))
            .collect();
        if let (Some(from), Some(to)) = (read_from, read_to) {
            self.store.visit_observations(from, to, &mut |check, o| {
                if let Some((from, to, kept)) = raw.get_mut(check)
                    && o.start_us >= *from
                    && o.start_us < *to
                {
                    kept.push(o);
                }
            })?;
        }
        let more = plans.iter().any(|(_, _, p)| p.more);
        for (name, st, plan) in plans {
            let mut mine = raw.remove(&name).map(|(_, _, v)| v).unwrap_or_default();
            mine.sort_by_key(|o| o.start_us);
            let computed = self.roll_up(&name, &st, &plan, &mine)?;
            report.checks += 1;
            report.minutes += (plan.end - plan.start) / MINUTE_US;
            writes.push((st, plan, computed));
        }
        let rollups: Vec<CheckRollup> = writes.iter().map(|(_, _, c)| c.write.clone()).collect();
        self.store.save_rollups(new.max_id, &rollups)?;
        *rolled_id = new.max_id;
        let hours_from = now_us - HOURS_IN_MEMORY_US - DAY_US;
        for (st, plan, computed) in writes {
            lock(&st).apply(
                &plan,
                computed.write,
                &computed.merged_hours,
                &computed.merged_days,
                hours_from,
            );
        }
        // Results stored while this pass ran, for minutes it has just rolled up, were missed
        // by it and by the live tails: the next answer must wait for another pass.
        let during = self.store.stored_since(new.max_id)?;
        for (check, earliest) in &during.earliest {
            if self
                .state(check)
                .is_some_and(|st| *earliest < lock(&st).frontier())
            {
                self.late.store(true, Ordering::Release);
            }
        }
        report.raw_removed = self.store.prune(
            Retention {
                raw_before_us: now_us - self.settings.raw_retention_us,
                hours_before_us: now_us
                    - self.settings.raw_retention_us.max(HOURS_IN_MEMORY_US)
                    - DAY_US,
                rollups_before_us: now_us - self.settings.rollup_retention_us,
            },
            PRUNE_PER_PASS,
        )?;
        Ok((report, more))
    }

    /// The rollups of one check's planned range, from its raw results.
    fn roll_up(
        &self,
        name: &str,
        st: &Arc<Mutex<CheckState>>,
        plan: &Plan,
        raw: &[Stored],
    ) -> Result<RolledUp, StoreError> {
        let (regions, maintenance) = {
            let mut st = lock(st);
            for o in raw {
                st.region_index(&o.region);
            }
            (st.regions.clone(), st.maintenance.clone())
        };
        let rules =
            Rules::new(regions.len(), plan.interval_us, plan.timeout_us).with_quorum(plan.quorum);
        let observations = state::to_observations(&regions, raw);
        let bad_minutes =
            sla::minute_rollups(&rules, &observations, &maintenance, plan.start, plan.end)
                .into_iter()
                .filter(|(_, t)| t.is_notable())
                .collect();
        let (hours, days) = if plan.extends {
            self.extended_hists(name, &regions, raw, plan)?
        } else {
            self.recomputed_hists(name, &regions, raw, plan)?
        };
        let merged_hours = merge_regions(&hours);
        let merged_days = merge_regions(&days);
        Ok(RolledUp {
            write: CheckRollup {
                check: name.to_owned(),
                coverage: Some(Coverage {
                    covered_from: plan.covered_from,
                    frontier: plan.frontier,
                    dirty_from: plan.dirty_from,
                }),
                minutes: (plan.start, plan.end),
                bad_minutes,
                hours,
                days,
            },
            merged_hours,
            merged_days,
        })
    }

    /// The histograms of the hours and days `plan` touches, rebuilt: each hour from all its
    /// raw results, each day from its hours.
    fn recomputed_hists(
        &self,
        name: &str,
        regions: &[String],
        raw: &[Stored],
        plan: &Plan,
    ) -> Result<(Vec<Hist>, Vec<Hist>), StoreError> {
        let hour_from = floor_to(plan.start, HOUR_US);
        let hours = hour_histograms(raw, regions, (hour_from, plan.end), plan.objective_us);
        let day_from = floor_to(hour_from, DAY_US);
        let held = self.store.hists(name, Bucket::Hour, day_from, hour_from)?;
        let days = by_day(held.into_iter().chain(hours.iter().cloned()));
        Ok((hours, days))
    }

    /// The histograms of the hours and days `plan` touches, as held up to the frontier plus
    /// the runs after it. Exact because nothing before the frontier changed since (that would
    /// have made the plan a recomputation), and cheap: a pass late in an hour reads its
    /// minutes, not the whole hour again.
    fn extended_hists(
        &self,
        name: &str,
        regions: &[String],
        raw: &[Stored],
        plan: &Plan,
    ) -> Result<(Vec<Hist>, Vec<Hist>), StoreError> {
        let hour_from = floor_to(plan.start, HOUR_US);
        let fresh = hour_histograms(raw, regions, (plan.start, plan.end), plan.objective_us);
        let mut hours = sum_by_key(
            self.store
                .hists(name, Bucket::Hour, hour_from, hour_from + HOUR_US)?
                .into_iter()
                .chain(fresh.iter().cloned()),
        );
        // A plan with no minute to roll up (a check's first) has no hour to write either.
        hours.retain(|(_, hour, _)| *hour < plan.end);
        let day_from = floor_to(plan.start, DAY_US);
        let days = by_day(
            self.store
                .hists(name, Bucket::Day, day_from, plan.end)?
                .into_iter()
                .chain(fresh),
        );
        Ok((hours, days))
    }

    /// The frontier furthest behind, among checks with rollups.
    pub fn oldest_frontier(&self) -> Option<i64> {
        self.checks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter_map(|st| lock(st).coverage.map(|c| c.frontier))
            .min()
    }

    /// The checks the rollups know of: configured ones and any seen.
    pub fn checks(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .checks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }
}

/// What a pass does for one check: roll up `[start, end)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub start: i64,
    pub end: i64,
    /// The coverage after this plan: the frontier never goes back, and minutes from
    /// `dirty_from` still wait for their turn.
    pub frontier: i64,
    pub dirty_from: Option<i64>,
    /// Whether another pass has work right away.
    pub more: bool,
    /// Whether the plan starts at the frontier, extending what is rolled up rather than
    /// rolling some of it up again.
    pub extends: bool,
    pub covered_from: i64,
    pub silence: i64,
    pub interval_us: i64,
    pub timeout_us: i64,
    /// The latency objective a degraded run is counted against.
    pub objective_us: i64,
    pub quorum: Option<usize>,
}

impl Plan {
    /// The earliest start the plan needs: the lookback before `start`, and whole hours for
    /// the latency histograms it rebuilds.
    fn read_from(&self) -> i64 {
        let lookback = self.start - self.silence;
        if self.extends {
            lookback
        } else {
            lookback.min(floor_to(self.start, HOUR_US))
        }
    }
}

struct RolledUp {
    write: CheckRollup,
    merged_hours: BTreeMap<i64, Sparse>,
    merged_days: BTreeMap<i64, Sparse>,
}

fn plan(st: &CheckState, dirty: Option<i64>, now: i64, s: &RollupSettings) -> Option<Plan> {
    let info = &st.info;
    let target = floor_to(now - info.timeout_us - s.settle_us, MINUTE_US);
    let (covered_from, frontier, held_dirty) = match (st.coverage, dirty) {
        (Some(c), _) => (c.covered_from, c.frontier, c.dirty_from),
        (None, Some(d)) => (floor_to(d, MINUTE_US), floor_to(d, MINUTE_US), None),
        (None, None) => return None,
    };
    // Raw results older than the retention are gone; what they made stays as it was.
    let oldest = floor_to(now - s.raw_retention_us, MINUTE_US);
    let dirty = match (dirty, held_dirty) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let start = match dirty {
        Some(d) if d < frontier => floor_to(d, MINUTE_US).max(oldest).min(frontier),
        _ => frontier,
    };
    // At most MAX_SPAN per pass, so that a pass never reads more than a couple of hours of
    // raw results; what is left is taken by the next pass, which follows at once.
    let end = target.min(start.saturating_add(MAX_SPAN_US)).max(start);
    let frontier_after = frontier.max(end);
    let dirty_after = (end < frontier).then_some(end);
    // A check seen for the first time gets its coverage even before a minute of it is complete:
    // its results are past the rolled-up id from now on.
    if start >= end && st.coverage.is_some() && dirty_after == held_dirty {
        return None;
    }
    Some(Plan {
        start,
        end,
        frontier: frontier_after,
        dirty_from: dirty_after,
        more: dirty_after.is_some() || frontier_after < target,
        extends: st.coverage.is_some() && start == frontier,
        covered_from: covered_from.min(start),
        silence: sla::silence_us(info.interval_us, info.timeout_us),
        interval_us: info.interval_us,
        timeout_us: info.timeout_us,
        objective_us: info.slo.latency_objective_us(),
        quorum: info.quorum(),
    })
}

/// (region, start, histogram) of an hour or a day.
type Hist = (String, i64, Sparse);

/// Per region and hour, the successful runs' latency of those started in `[from, end)` (a
/// degraded run's as the SLI counts it against `objective_us`). Every region and hour from
/// `from`'s is listed, empty ones too, so that what they replace is replaced.
fn hour_histograms(
    raw: &[Stored],
    regions: &[String],
    (from, end): (i64, i64),
    objective_us: i64,
) -> Vec<Hist> {
    let hour_from = floor_to(from, HOUR_US);
    let mut by: BTreeMap<(usize, i64), Vec<u64>> = BTreeMap::new();
    for o in raw
        .iter()
        .filter(|o| o.start_us >= from && o.start_us < end)
    {
        let Some(latency) = o.counted_latency_us(objective_us) else {
            continue;
        };
        if let Some(region) = regions.iter().position(|r| *r == o.region) {
            by.entry((region, floor_to(o.start_us, HOUR_US)))
                .or_default()
                .push(latency);
        }
    }
    let mut out = Vec::new();
    for (i, region) in regions.iter().enumerate() {
        let mut hour = hour_from;
        while hour < end {
            let hist = by
                .remove(&(i, hour))
                .map(Sparse::from_durations)
                .unwrap_or_default();
            out.push((region.clone(), hour, hist));
            hour += HOUR_US;
        }
    }
    out
}

/// Hours summed into their days, per region.
fn by_day(hours: impl Iterator<Item = Hist>) -> Vec<Hist> {
    sum_by_key(hours.map(|(region, hour, hist)| (region, floor_to(hour, DAY_US), hist)))
}

/// Histograms of the same region and start summed into one, by region then start.
fn sum_by_key(rows: impl Iterator<Item = Hist>) -> Vec<Hist> {
    let mut acc: BTreeMap<(String, i64), Accumulator> = BTreeMap::new();
    for (region, at, hist) in rows {
        acc.entry((region, at)).or_default().add(&hist);
    }
    acc.into_iter()
        .map(|((region, at), a)| (region, at, a.to_sparse()))
        .collect()
}

fn merge_regions(rows: &[Hist]) -> BTreeMap<i64, Sparse> {
    let mut acc: BTreeMap<i64, Accumulator> = BTreeMap::new();
    for (_, at, hist) in rows {
        acc.entry(*at).or_default().add(hist);
    }
    acc.into_iter().map(|(at, a)| (at, a.to_sparse())).collect()
}

#[cfg(test)]
mod tests;

//! One check's rollups in memory, and how a pass updates them.

use std::collections::BTreeMap;

use lookout_model::latency::Sparse;
use lookout_model::probe::Verdict;
use lookout_model::sla::{self, MINUTE_US, Observation, Spans, Tally};

use super::{DAY_US, Plan, floor_to};
use crate::ingest::CheckInfo;
use crate::store::{CheckRollup, Coverage, LoadedCheck, Stored};

/// A raw result after the frontier (or just before it: it decides the state at the frontier).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Recent {
    pub region: usize,
    pub start_us: i64,
    pub verdict: Verdict,
    pub duration_us: i64,
}

impl Recent {
    /// Its latency as the SLI counts it (`Verdict::counted_latency_us`).
    pub fn counted_latency_us(&self, objective_us: i64) -> Option<u64> {
        self.verdict
            .counted_latency_us(u64::try_from(self.duration_us).unwrap_or(0), objective_us)
    }
}

pub(crate) struct CheckState {
    pub info: CheckInfo,
    /// The configured regions, then any other seen, in the order first seen.
    pub regions: Vec<String>,
    pub coverage: Option<Coverage>,
    /// The check's maintenance windows, merged: what its rollups and live math leave apart.
    pub maintenance: Spans,
    /// Minutes with downtime, no data or maintenance (their `window_us` unused).
    pub bad: BTreeMap<i64, Tally>,
    /// The same, summed per day.
    pub day_tally: BTreeMap<i64, Tally>,
    /// Latency of successful runs, regions merged.
    pub day_hist: BTreeMap<i64, Sparse>,
    pub hour_hist: BTreeMap<i64, Sparse>,
    /// The merge of `day_hist` over the last range a query asked for.
    pub day_memo: Option<((i64, i64), Sparse)>,
    /// The same for `hour_hist`.
    pub hour_memo: Option<((i64, i64), Sparse)>,
    /// Raw results from `live_from()` on, in the order they arrived.
    pub recent: Vec<Recent>,
}

impl CheckState {
    pub fn new(info: CheckInfo) -> Self {
        CheckState {
            regions: info.regions.clone(),
            info,
            coverage: None,
            maintenance: Spans::default(),
            bad: BTreeMap::new(),
            day_tally: BTreeMap::new(),
            day_hist: BTreeMap::new(),
            hour_hist: BTreeMap::new(),
            day_memo: None,
            hour_memo: None,
            recent: Vec::new(),
        }
    }

    pub fn silence_us(&self) -> i64 {
        sla::silence_us(self.info.interval_us, self.info.timeout_us)
    }

    pub fn frontier(&self) -> i64 {
        self.coverage.map_or(i64::MIN, |c| c.frontier)
    }

    /// The earliest start the live tail must hold.
    pub fn live_from(&self) -> i64 {
        self.coverage
            .map_or(i64::MIN, |c| c.frontier.saturating_sub(self.silence_us()))
    }

    pub fn region_index(&mut self, region: &str) -> usize {
        match self.regions.iter().position(|r| r == region) {
            Some(i) => i,
            None => {
                self.regions.push(region.to_owned());
                self.regions.len() - 1
            }
        }
    }

    pub fn push_recent(&mut self, region: &str, start_us: i64, verdict: Verdict, duration_us: i64) {
        let region = self.region_index(region);
        let r = Recent {
            region,
            start_us,
            verdict,
            duration_us,
        };
        // Kept in arrival order: the math sorts what it reads, and a busy ingest never pays
        // for keeping a long tail in order.
        self.recent.push(r);
    }

    /// Takes the check's stored rollups over (moved, not copied: at start-up they are most of
    /// the collector's memory, and two copies of them were its peak).
    pub fn load(&mut self, l: LoadedCheck) {
        self.coverage = l.coverage;
        // Collected, not inserted one by one: a map built from a sorted run packs its nodes
        // full, where one-by-one inserts leave them half empty (at 5,000 checks the bad
        // minutes were the largest part of the collector's memory).
        let mut loaded: BTreeMap<i64, Tally> = l.bad_minutes.into_iter().collect();
        self.bad.append(&mut loaded);
        self.day_tally = sum_days(&self.bad, i64::MIN, i64::MAX);
        self.day_hist = l.days;
        self.hour_hist = l.hours;
    }

    /// Takes in what a pass computed for `plan` (already saved).
    pub fn apply(
        &mut self,
        plan: &Plan,
        write: CheckRollup,
        hours: &BTreeMap<i64, Sparse>,
        days: &BTreeMap<i64, Sparse>,
        keep_hours_from: i64,
    ) {
        self.coverage = write.coverage;
        let stale: Vec<i64> = self
            .bad
            .range(plan.start..plan.end)
            .map(|(m, _)| *m)
            .collect();
        for m in stale {
            self.bad.remove(&m);
        }
        for (minute, t) in write.bad_minutes {
            self.bad.insert(minute, t);
        }
        let (day_from, day_to) = (floor_to(plan.start, DAY_US), plan.end);
        let stale: Vec<i64> = self
            .day_tally
            .range(day_from..day_to)
            .map(|(d, _)| *d)
            .collect();
        for d in stale {
            self.day_tally.remove(&d);
        }
        let end_day = floor_to(plan.end - 1, DAY_US) + DAY_US;
        self.day_tally
            .extend(sum_days(&self.bad, day_from, end_day));
        for (hour, hist) in hours {
            if hist.is_empty() {
                self.hour_hist.remove(hour);
            } else {
                self.hour_hist.insert(*hour, hist.clone());
            }
        }
        self.hour_hist = self.hour_hist.split_off(&keep_hours_from);
        if let Some(((from, to), _)) = &self.hour_memo
            && hours.keys().any(|h| (*from..*to).contains(h))
        {
            self.hour_memo = None;
        }
        if let Some(((from, to), _)) = &self.day_memo
            && days.keys().any(|d| (*from..*to).contains(d))
        {
            self.day_memo = None;
        }
        for (day, hist) in days {
            if hist.is_empty() {
                self.day_hist.remove(day);
            } else {
                self.day_hist.insert(*day, hist.clone());
            }
        }
        let keep = self.live_from();
        self.recent.retain(|r| r.start_us >= keep);
    }
}

/// Stored results as the SLA math wants them: regions by their index in `regions` (results of
/// other regions left out).
pub(crate) fn to_observations(regions: &[String], raw: &[Stored]) -> Vec<Observation> {
    raw.iter()
        .filter_map(|o| {
            regions
                .iter()
                .position(|r| *r == o.region)
                .map(|region| Observation {
                    region,
                    start_us: o.start_us,
                    ok: o.verdict.is_up(),
                })
        })
        .collect()
}

/// Bad minutes in `[from, to)` summed per day.
fn sum_days(bad: &BTreeMap<i64, Tally>, from: i64, to: i64) -> BTreeMap<i64, Tally> {
    let mut out: Vec<(i64, Tally)> = Vec::new();
    for (minute, t) in bad.range(from..to) {
        let day = floor_to(*minute, DAY_US);
        match out.last_mut() {
            Some((d, sum)) if *d == day => sum.add(t),
            _ => {
                let mut sum = Tally::default();
                sum.add(t);
                out.push((day, sum));
            }
        }
    }
    // In order already: collected into full nodes (see `load`).
    out.into_iter().collect()
}

/// A minute's share of `[from, to)` within it, for window edges inside a rolled-up minute.
fn pro_rata(value: i64, from: i64, to: i64) -> i64 {
    let len = (to - from).clamp(0, MINUTE_US);
    // i128: a whole minute times a minute's worth of microseconds overflows nothing there.
    i64::try_from(i128::from(value) * i128::from(len) / i128::from(MINUTE_US)).unwrap_or(0)
}

/// [`pro_rata`] of each of a minute's figures (the window is the caller's).
pub(crate) fn pro_rata_tally(t: &Tally, from: i64, to: i64) -> Tally {
    Tally {
        window_us: 0,
        down_us: pro_rata(t.down_us, from, to),
        no_data_us: pro_rata(t.no_data_us, from, to),
        maintenance_us: pro_rata(t.maintenance_us, from, to),
        maintenance_down_us: pro_rata(t.maintenance_down_us, from, to),
        maintenance_no_data_us: pro_rata(t.maintenance_no_data_us, from, to),
    }
}

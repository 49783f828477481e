//! Answers from memory: rollups up to a check's frontier, the SLA math on the live tail after.
//!
//! Precision, as the docs state it: downtime and time without data are exact to the
//! microsecond for the live tail and at minute resolution before it (a window edge inside a
//! rolled-up minute with downtime takes its share pro rata). Latency percentiles come from
//! histograms with two significant digits; before the live tail a window's edges are rounded
//! to the nearest hour within the last two days, and to the nearest day before that.

use std::collections::BTreeMap;

use lookout_model::latency::{Accumulator, Sparse};
use lookout_model::probe::Verdict;
use lookout_model::read::LiveState;
pub use lookout_model::read::{Current, Latency, RegionNow};
use lookout_model::sla::{self, MINUTE_US, Observation, Rules, Tally};

use super::state::{CheckState, Recent, pro_rata_tally, to_observations};
use super::{DAY_US, HOUR_US, HOURS_IN_MEMORY_US, Rollups, floor_to, lock};
use crate::store::{Bucket, StoreError};

#[derive(Debug, Clone)]
pub struct Computed {
    pub tally: Tally,
    pub regions: Vec<String>,
    pub quorum: usize,
    pub latency: Latency,
}

/// Exact down and no-data time of a part of a rolled-up minute, from raw results, or `None`
/// when they are no longer kept.
pub(crate) type Edge<'a> = dyn Fn(&CheckState, i64, i64) -> Option<Tally> + 'a;

fn round_to(t: i64, step: i64) -> i64 {
    floor_to(t + step / 2, step)
}

fn ceil_to(t: i64, step: i64) -> i64 {
    let f = floor_to(t, step);
    if f == t { t } else { f + step }
}

impl CheckState {
    pub(crate) fn rules(&self) -> Rules {
        Rules::new(
            self.regions.len(),
            self.info.interval_us,
            self.info.timeout_us,
        )
        .with_quorum(self.info.quorum())
    }

    pub(crate) fn live(&self) -> Vec<Observation> {
        self.recent
            .iter()
            .map(|r| Observation {
                region: r.region,
                start_us: r.start_us,
                ok: r.verdict.is_up(),
            })
            .collect()
    }

    /// Down, no-data and maintenance time of rolled-up `[a, b)` (within the coverage; the
    /// window is the caller's). `edge` answers a part of a minute exactly from raw results
    /// while they are kept.
    fn rolled(&self, a: i64, b: i64, edge: &Edge<'_>) -> Tally {
        let mut sum = Tally::default();
        let mut add_part = |minute: i64, from: i64, to: i64| {
            if let Some(m) = self.bad.get(&minute) {
                let part = edge(self, from, to).unwrap_or_else(|| pro_rata_tally(m, from, to));
                sum.add(&Tally {
                    window_us: 0,
                    ..part
                });
            }
        };
        let (ma, mb) = (ceil_to(a, MINUTE_US), floor_to(b, MINUTE_US));
        if ma > mb {
            add_part(mb, a, b);
            return sum;
        }
        if a < ma {
            add_part(floor_to(a, MINUTE_US), a, ma);
        }
        if mb < b {
            add_part(mb, mb, b);
        }
        let (da, db) = (ceil_to(ma, DAY_US), floor_to(mb, DAY_US));
        let mut minutes = |from: i64, to: i64| {
            for m in self.bad.range(from..to).map(|(_, v)| v) {
                sum.add(m);
            }
        };
        if da < db {
            minutes(ma, da);
            minutes(db, mb);
            for d in self.day_tally.range(da..db).map(|(_, v)| v) {
                sum.add(d);
            }
        } else {
            minutes(ma, mb);
        }
        Tally {
            window_us: 0,
            ..sum
        }
    }

    pub(crate) fn tally(&self, from: i64, to: i64, edge: &Edge<'_>) -> Tally {
        let mut t = Tally {
            window_us: to - from,
            ..Tally::default()
        };
        let frontier = self.frontier();
        let (covered_from, rolled_to) = match self.coverage {
            Some(c) => (c.covered_from, c.frontier.min(to)),
            None => (from, from),
        };
        if self.coverage.is_some() {
            // Before the first rollup there was nothing: no data (inside maintenance or not).
            let unknown_to = covered_from.min(to);
            if from < unknown_to {
                let in_maintenance = self.maintenance.overlap_us(from, unknown_to);
                t.add(&Tally {
                    window_us: 0,
                    no_data_us: unknown_to - from,
                    maintenance_us: in_maintenance,
                    maintenance_no_data_us: in_maintenance,
                    ..Tally::default()
                });
            }
            let a = from.max(covered_from);
            if a < rolled_to {
                t.add(&self.rolled(a, rolled_to, edge));
            }
        }
        let live_from = from.max(frontier);
        if live_from < to {
            let live = sla::tally(
                &self.rules(),
                &self.live(),
                &self.maintenance,
                live_from,
                to,
            );
            t.add(&Tally {
                window_us: 0,
                ..live
            });
        }
        t
    }

    /// `raw` gives the successful runs' durations of a part of an hour while raw results are
    /// kept, so that windows within the raw retention are exact.
    pub(crate) fn latency(
        &mut self,
        from: i64,
        to: i64,
        now: i64,
        raw: &dyn Fn(i64, i64) -> Option<Vec<u64>>,
    ) -> Latency {
        let frontier = self.frontier();
        let hists = Hists {
            days: &self.day_hist,
            day_memo: &mut self.day_memo,
            hours: &self.hour_hist,
            hour_memo: &mut self.hour_memo,
        };
        latency_of(
            hists,
            frontier,
            self.recent.iter(),
            self.info.slo.latency_objective_us(),
            (from, to, now),
            raw,
        )
    }

    /// The same for one region (its index in `regions`), from that region's histograms per
    /// day and per hour (`days`, `hours`: those the store holds around the window); `raw`
    /// gives that region's durations only.
    pub(crate) fn region_latency(
        &self,
        region: usize,
        days: &BTreeMap<i64, Sparse>,
        hours: &BTreeMap<i64, Sparse>,
        (from, to, now): (i64, i64, i64),
        raw: &dyn Fn(i64, i64) -> Option<Vec<u64>>,
    ) -> Latency {
        // A region's merges are not kept: such questions are rare, and a merge is made of
        // at most a window's days and two days of hours.
        let (mut day_memo, mut hour_memo) = (None, None);
        let hists = Hists {
            days,
            day_memo: &mut day_memo,
            hours,
            hour_memo: &mut hour_memo,
        };
        latency_of(
            hists,
            self.frontier(),
            self.recent.iter().filter(|r| r.region == region),
            self.info.slo.latency_objective_us(),
            (from, to, now),
            raw,
        )
    }

    pub(crate) fn regions_now(&self, now: i64) -> Vec<RegionNow> {
        let silence = self.silence_us();
        self.regions
            .iter()
            .enumerate()
            .map(|(i, region)| {
                let last = self
                    .recent
                    .iter()
                    .filter(|r| r.region == i && r.start_us <= now)
                    .max_by_key(|r| r.start_us);
                RegionNow {
                    region: region.clone(),
                    failing: last
                        .filter(|r| r.start_us + silence > now)
                        .map(|r| !r.verdict.is_up()),
                    last_result_us: last.map(|r| r.start_us),
                }
            })
            .collect()
    }
}

/// The histograms a latency answer reads up to the frontier, with their kept merges.
pub(crate) struct Hists<'a> {
    pub days: &'a BTreeMap<i64, Sparse>,
    pub day_memo: &'a mut Option<((i64, i64), Sparse)>,
    pub hours: &'a BTreeMap<i64, Sparse>,
    pub hour_memo: &'a mut Option<((i64, i64), Sparse)>,
}

/// Latency of the successful runs of `[from, to)`: histograms up to the frontier (days, then
/// the last two days' hours), the live tail after it. `raw` gives the successful runs'
/// durations of a part of an hour while raw results are kept, so that windows within the raw
/// retention are exact.
fn latency_of<'r>(
    h: Hists<'_>,
    frontier: i64,
    recent: impl Iterator<Item = &'r Recent>,
    objective_us: i64,
    (from, to, now): (i64, i64, i64),
    raw: &dyn Fn(i64, i64) -> Option<Vec<u64>>,
) -> Latency {
    let mut acc = Accumulator::new();
    let rolled_to = to.min(frontier);
    if from < rolled_to {
        let hour_floor = ceil_to(now - HOURS_IN_MEMORY_US, DAY_US);
        let day_from = round_to(from, DAY_US);
        let day_to = round_to(rolled_to, DAY_US).min(hour_floor);
        if day_from < day_to {
            // Days before the last two rarely change and long windows are asked again and
            // again (status page, alerter): their merge is kept until a pass changes them.
            acc.add(merged(h.days, h.day_memo, day_from, day_to));
        }
        let mut hour_from = if from < hour_floor {
            hour_floor
        } else {
            round_to(from, HOUR_US)
        };
        // Up to the frontier the partial hour holds exactly the results before it.
        let mut hour_to = if to >= frontier {
            frontier
        } else {
            round_to(to, HOUR_US)
        };
        if from >= hour_floor && from % HOUR_US != 0 {
            let whole = ceil_to(from, HOUR_US);
            if let Some(d) = raw(from, whole.min(rolled_to)) {
                d.into_iter().for_each(|v| acc.record(v));
                hour_from = whole;
            }
        }
        if to < frontier && to % HOUR_US != 0 {
            let whole = floor_to(to, HOUR_US);
            if whole >= hour_from
                && let Some(d) = raw(whole, to)
            {
                d.into_iter().for_each(|v| acc.record(v));
                hour_to = whole;
            }
        }
        if hour_from < hour_to {
            // Complete hours change only with late results: their merge is kept as well;
            // the hour the frontier is in is added as it is.
            let complete_to = hour_to.min(floor_to(frontier, HOUR_US));
            if hour_from < complete_to {
                acc.add(merged(h.hours, h.hour_memo, hour_from, complete_to));
            }
            for hist in h
                .hours
                .range(complete_to.max(hour_from)..hour_to)
                .map(|(_, hist)| hist)
            {
                acc.add(hist);
            }
        }
    }
    let live_from = from.max(frontier);
    for r in recent {
        if r.start_us >= live_from
            && r.start_us < to
            && let Some(latency) = r.counted_latency_us(objective_us)
        {
            acc.record(latency);
        }
    }
    let ms = |us: Option<u64>| us.map(|v| v as f64 / 1e3);
    let objective = u64::try_from(objective_us).unwrap_or(0);
    let count = acc.count();
    Latency {
        count,
        p50_ms: ms(acc.quantile(0.50)),
        p95_ms: ms(acc.quantile(0.95)),
        p99_ms: ms(acc.quantile(0.99)),
        max_ms: ms(acc.max()),
        objective_ms: objective_us as f64 / 1e3,
        share_under_objective: (count > 0)
            .then(|| acc.count_below(objective) as f64 / count as f64),
    }
}

/// The merge of `hists` over `[from, to)`, from `memo` when it holds that range: a long
/// window merges hundreds of histograms, a repeated one none.
fn merged<'m>(
    hists: &BTreeMap<i64, Sparse>,
    memo: &'m mut Option<((i64, i64), Sparse)>,
    from: i64,
    to: i64,
) -> &'m Sparse {
    if memo.as_ref().is_some_and(|(key, _)| *key != (from, to)) {
        *memo = None;
    }
    &memo
        .get_or_insert_with(|| {
            let mut acc = Accumulator::new();
            for h in hists.range(from..to).map(|(_, h)| h) {
                acc.add(h);
            }
            ((from, to), acc.to_sparse())
        })
        .1
}

/// A check's regions and the results after its frontier, see [`Rollups::tails`].
#[derive(Debug, Clone)]
pub struct LiveTail {
    pub check: String,
    pub regions: Vec<String>,
    /// (region, start, verdict).
    pub results: Vec<(String, i64, Verdict)>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegionLatencyError {
    #[error("`region`: check {check:?} does not run in region {region:?} (its regions: {regions})")]
    Unknown {
        check: String,
        region: String,
        regions: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Rollups {
    pub fn current(&self, check: &str, now: i64) -> Option<Current> {
        let st = self.state(check)?;
        let st = lock(&st);
        let t = sla::tally(&st.rules(), &st.live(), &st.maintenance, now - 1, now);
        let state = if t.down_us > 0 {
            LiveState::Down
        } else if t.no_data_us > 0 {
            LiveState::NoData
        } else {
            LiveState::Up
        };
        Some(Current {
            state,
            regions: st.regions_now(now),
        })
    }

    /// Raw results of `[from, to)` with the lookback the math needs, while they are kept.
    fn raw_edge(
        &self,
        check: &str,
        now: i64,
    ) -> impl Fn(&CheckState, i64, i64) -> Option<Tally> + '_ {
        let check = check.to_owned();
        move |st: &CheckState, from: i64, to: i64| {
            if from < now - self.settings.raw_retention_us + MINUTE_US {
                return None;
            }
            let raw = self
                .store
                .observations(&check, from - st.silence_us(), to)
                .ok()?;
            let obs = to_observations(&st.regions, &raw);
            Some(sla::tally(&st.rules(), &obs, &st.maintenance, from, to))
        }
    }

    /// Availability, downtime and latency of `check` over `[from, to)`; `None` for a check
    /// the collector has never heard of.
    pub fn compute(&self, check: &str, from: i64, to: i64, now: i64) -> Option<Computed> {
        let st = self.state(check)?;
        let mut st = lock(&st);
        let edge = self.raw_edge(check, now);
        let objective_us = st.info.slo.latency_objective_us();
        let durations = |a: i64, b: i64| -> Option<Vec<u64>> {
            if a < now - self.settings.raw_retention_us + MINUTE_US {
                return None;
            }
            let raw = self.store.observations(check, a, b).ok()?;
            Some(
                raw.iter()
                    .filter_map(|o| o.counted_latency_us(objective_us))
                    .collect(),
            )
        };
        Some(Computed {
            tally: st.tally(from, to, &edge),
            regions: st.regions.clone(),
            quorum: st.rules().quorum,
            latency: st.latency(from, to, now, &durations),
        })
    }

    /// Latency of one region's successful journeys over `[from, to)`: what [`Self::compute`]
    /// answers for all regions, from that region's histograms, which the store keeps per
    /// region (memory holds them merged). `Ok(None)` for a check the collector has never
    /// heard of. Blocking: it reads the store.
    pub fn region_latency(
        &self,
        check: &str,
        region: &str,
        from: i64,
        to: i64,
        now: i64,
    ) -> Result<Option<Latency>, RegionLatencyError> {
        let Some(st) = self.state(check) else {
            return Ok(None);
        };
        // No pass between reading the store's histograms and the frontier in memory: a pass
        // saves its rollups before it moves the frontier, and the runs in between would
        // count twice.
        let _no_pass = lock(&self.rolled_id);
        let st = lock(&st);
        let Some(index) = st.regions.iter().position(|r| r == region) else {
            return Err(RegionLatencyError::Unknown {
                check: check.to_owned(),
                region: region.to_owned(),
                regions: st.regions.join(", "),
            });
        };
        // Buckets around the window: the rounding of its edges may take the next one.
        let days = self.store.region_hists(
            check,
            region,
            Bucket::Day,
            floor_to(from, DAY_US) - DAY_US,
            to.saturating_add(DAY_US),
        )?;
        let hours = self.store.region_hists(
            check,
            region,
            Bucket::Hour,
            floor_to(from, HOUR_US) - HOUR_US,
            to.saturating_add(HOUR_US),
        )?;
        let objective_us = st.info.slo.latency_objective_us();
        let durations = |a: i64, b: i64| -> Option<Vec<u64>> {
            if a < now - self.settings.raw_retention_us + MINUTE_US {
                return None;
            }
            let raw = self.store.observations(check, a, b).ok()?;
            Some(
                raw.iter()
                    .filter(|o| o.region == region)
                    .filter_map(|o| o.counted_latency_us(objective_us))
                    .collect(),
            )
        };
        Ok(Some(st.region_latency(
            index,
            &days,
            &hours,
            (from, to, now),
            &durations,
        )))
    }

    /// Each check's regions and live tail (region, start, ok), in no order: what the live
    /// state is rebuilt from after a restart.
    pub fn tails(&self) -> Vec<LiveTail> {
        self.checks()
            .into_iter()
            .filter_map(|name| {
                let st = self.state(&name)?;
                let st = lock(&st);
                let results = st
                    .recent
                    .iter()
                    .filter_map(|r| {
                        let region = st.regions.get(r.region)?;
                        Some((region.clone(), r.start_us, r.verdict))
                    })
                    .collect();
                Some(LiveTail {
                    check: name,
                    regions: st.regions.clone(),
                    results,
                })
            })
            .collect()
    }

    /// Down and no-data time only: what `/metrics` and the daily bars need.
    pub fn tally(&self, check: &str, from: i64, to: i64, now: i64) -> Option<Tally> {
        let st = self.state(check)?;
        let st = lock(&st);
        Some(st.tally(from, to, &self.raw_edge(check, now)))
    }

    /// One tally per UTC day for the `days` days up to and including today's (partial) one.
    pub fn daily(&self, check: &str, days: i64, now: i64) -> Option<Vec<(i64, Tally)>> {
        let st = self.state(check)?;
        let st = lock(&st);
        let edge = self.raw_edge(check, now);
        let today = floor_to(now, DAY_US);
        Some(
            (0..days)
                .rev()
                .map(|back| {
                    let d = today - back * DAY_US;
                    (d, st.tally(d, (d + DAY_US).min(now), &edge))
                })
                .collect(),
        )
    }

    pub fn regions_now(&self, check: &str, now: i64) -> Option<Vec<RegionNow>> {
        let st = self.state(check)?;
        let st = lock(&st);
        Some(st.regions_now(now))
    }
}

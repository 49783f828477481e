//! Incidents: the intervals a check was down, with the regions that saw them fail and the first
//! failure's reason. Exact while the raw results are kept; older ones come from the rolled-up
//! minutes (to the minute, without regions or reasons).

pub use lookout_model::read::{FirstFailure, Incident};
use lookout_model::sla::{self, MINUTE_US, Observation};

use super::state::{CheckState, to_observations};
use super::{Rollups, lock};

/// Runs of consecutive rolled-up minutes with downtime in `[from, to)`, as (first, last) minute.
fn down_runs(st: &CheckState, from: i64, to: i64) -> Vec<(i64, i64)> {
    let mut runs: Vec<(i64, i64)> = Vec::new();
    let first = from - from.rem_euclid(MINUTE_US);
    for (minute, t) in st.bad.range(first..to) {
        if t.down_us == 0 {
            continue;
        }
        match runs.last_mut() {
            Some((_, last)) if *last + MINUTE_US == *minute => *last = *minute,
            _ => runs.push((*minute, *minute)),
        }
    }
    runs
}

impl Rollups {
    /// The incidents of `check` overlapping `[from, to)`, oldest first.
    pub fn incidents(&self, check: &str, from: i64, to: i64, now: i64) -> Option<Vec<Incident>> {
        let st = self.state(check)?;
        let st = lock(&st);
        let frontier = st.frontier();
        let raw_kept_from = now - self.settings.raw_retention_us + MINUTE_US;
        let silence = st.silence_us();
        let observations = |a: i64, b: i64| -> Option<Vec<Observation>> {
            let raw = self.store.observations(check, a, b).ok()?;
            Some(to_observations(&st.regions, &raw))
        };
        // (start, end, exact)
        let mut spans: Vec<(i64, i64, bool)> = Vec::new();
        let rolled_to = to.min(frontier);
        for (first, last) in down_runs(&st, from, rolled_to) {
            let (a, b) = (first, last + MINUTE_US);
            let exact = (a - silence >= raw_kept_from)
                .then(|| observations(a - silence, b))
                .flatten()
                .map(|obs| sla::down_intervals(&st.rules(), &obs, a, b));
            match exact {
                Some(intervals) => spans.extend(intervals.into_iter().map(|(s, e)| (s, e, true))),
                None => {
                    let down = |m: i64| st.bad.get(&m).map_or(0, |t| t.down_us);
                    // Down at the end of its first minute and the start of its last.
                    let start = if first == last {
                        a
                    } else {
                        b.min(a + MINUTE_US - down(first))
                    };
                    let end = if first == last {
                        a + down(first)
                    } else {
                        last + down(last)
                    };
                    spans.push((start, end.max(start), false));
                }
            }
        }
        let live_from = from.max(frontier);
        if live_from < to {
            for (s, e) in sla::down_intervals(&st.rules(), &st.live(), live_from, to) {
                match spans.last_mut() {
                    // One outage across the frontier is one incident.
                    Some(last) if last.1 >= s => last.1 = last.1.max(e),
                    _ => spans.push((s, e, true)),
                }
            }
        }
        let incidents = spans
            .into_iter()
            .filter(|(s, e, _)| *e > from && *s < to)
            .map(|(start, end, exact)| {
                let ongoing = end >= now.min(to) && to >= now;
                let failures = if start - silence >= raw_kept_from {
                    self.store
                        .failures(check, start - silence, end, 10_000)
                        .unwrap_or_default()
                } else {
                    Vec::new()
                };
                let mut regions: Vec<String> = failures.iter().map(|f| f.region.clone()).collect();
                regions.sort();
                regions.dedup();
                let first_failure = failures.iter().find_map(|f| match &f.outcome {
                    lookout_model::probe::Outcome::Fail(failure) => Some(FirstFailure {
                        region: f.region.clone(),
                        started_at_us: f.started_at_us,
                        kind: failure.kind.as_str().to_owned(),
                        message: failure.message.clone(),
                    }),
                    lookout_model::probe::Outcome::Ok
                    | lookout_model::probe::Outcome::Degraded(_) => None,
                });
                Incident {
                    start_us: start,
                    end_us: (!ongoing).then_some(end),
                    down_seconds: (end - start) as f64 / 1e6,
                    regions,
                    first_failure,
                    exact,
                }
            })
            .collect();
        Some(incidents)
    }
}

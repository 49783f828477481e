//! The SLA math (DESIGN.md, "Definitions"), pure and synchronous.
//!
//! A region's state is the outcome of its latest result, held from that result's start until
//! the next result, or until it goes silent (no result for `2 x interval + timeout`). A check
//! is *down* at an instant when at least `quorum` regions are failing, and has *no data* when
//! fewer than `quorum` regions are reporting. Availability over a window is
//! `1 - down / (window - no data)`. All times are microseconds since the Unix epoch.

use serde::{Deserialize, Serialize};

pub const MINUTE_US: i64 = 60_000_000;

/// One result, reduced to what the availability math needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// Index of the region among the check's configured regions.
    pub region: usize,
    pub start_us: i64,
    pub ok: bool,
}

/// How a check's regions combine into up, down or no data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    pub regions: usize,
    pub quorum: usize,
    /// A region with no result for this long is silent.
    pub silence_us: i64,
}

impl Rules {
    /// With `quorum` in place of the default, when given (a heartbeat check's one region).
    pub fn with_quorum(mut self, quorum: Option<usize>) -> Self {
        if let Some(q) = quorum {
            self.quorum = q.clamp(1, self.regions.max(1));
        }
        self
    }
}

/// A majority of the regions, at least 2 (DESIGN.md): one region failing alone is never
/// downtime, so a check watched from a single region can only ever report no data.
pub fn default_quorum(regions: usize) -> usize {
    (regions / 2 + 1).max(2)
}

/// `2 x interval + timeout`: a region silent for longer has stopped reporting.
pub fn silence_us(interval_us: i64, timeout_us: i64) -> i64 {
    2 * interval_us + timeout_us
}

impl Rules {
    pub fn new(regions: usize, interval_us: i64, timeout_us: i64) -> Self {
        Rules {
            regions,
            quorum: default_quorum(regions),
            silence_us: silence_us(interval_us, timeout_us),
        }
    }
}

/// Time down and time without data within a window, and how much of the window (and of
/// each) fell inside scheduled maintenance. `down_us` and `no_data_us` are all of it, inside
/// maintenance or not: whether maintenance counts is the check's SLO's to say
/// ([`crate::slo::Slo::figures`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub window_us: i64,
    pub down_us: i64,
    pub no_data_us: i64,
    #[serde(default)]
    pub maintenance_us: i64,
    #[serde(default)]
    pub maintenance_down_us: i64,
    #[serde(default)]
    pub maintenance_no_data_us: i64,
}

impl Tally {
    pub fn add(&mut self, other: &Tally) {
        self.window_us += other.window_us;
        self.down_us += other.down_us;
        self.no_data_us += other.no_data_us;
        self.maintenance_us += other.maintenance_us;
        self.maintenance_down_us += other.maintenance_down_us;
        self.maintenance_no_data_us += other.maintenance_no_data_us;
    }

    /// Whether anything of the window was other than up and outside maintenance: a minute
    /// worth keeping in the rollups.
    pub fn is_notable(&self) -> bool {
        self.down_us > 0 || self.no_data_us > 0 || self.maintenance_us > 0
    }
}

/// Instants of scheduled maintenance: sorted, non-overlapping `[start, end)` spans.
/// Overlapping windows count once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spans(Vec<(i64, i64)>);

impl Spans {
    /// Merges `spans` (any order, overlapping or touching ones joined, empty ones dropped).
    pub fn new(spans: impl IntoIterator<Item = (i64, i64)>) -> Spans {
        let mut v: Vec<(i64, i64)> = spans.into_iter().filter(|(a, b)| a < b).collect();
        v.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(v.len());
        for (a, b) in v {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        Spans(merged)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[(i64, i64)] {
        &self.0
    }

    /// The parts of the spans inside `[from, to)`.
    pub fn clipped(&self, from: i64, to: i64) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.0
            .iter()
            .map(move |(a, b)| ((*a).max(from), (*b).min(to)))
            .filter(|(a, b)| a < b)
    }

    /// How much of `[from, to)` the spans cover.
    pub fn overlap_us(&self, from: i64, to: i64) -> i64 {
        self.clipped(from, to).map(|(a, b)| b - a).sum()
    }

    pub fn contains(&self, t: i64) -> bool {
        self.0.iter().any(|(a, b)| *a <= t && t < *b)
    }
}

/// Each region's state as intervals: `(from, to, ok)`, from its results.
fn segments(rules: &Rules, observations: &[Observation]) -> Vec<(i64, i64, bool, usize)> {
    let mut by_region: Vec<Vec<Observation>> = vec![Vec::new(); rules.regions];
    for o in observations {
        if let Some(v) = by_region.get_mut(o.region) {
            v.push(*o);
        }
    }
    let mut out = Vec::new();
    for (region, mut obs) in by_region.into_iter().enumerate() {
        obs.sort_by_key(|o| o.start_us);
        for (i, o) in obs.iter().enumerate() {
            let silent_at = o.start_us + rules.silence_us;
            let end = obs
                .get(i + 1)
                .map_or(silent_at, |n| n.start_us.min(silent_at));
            if end > o.start_us {
                out.push((o.start_us, end, o.ok, region));
            }
        }
    }
    out
}

/// Down, no-data and maintenance time in `[from, to)`, split at every multiple of `split_us`
/// (for rollups); one `Tally` per piece, in order. `observations` must include the last
/// result before `from` in each region (it decides the state at `from`).
pub fn tally_split(
    rules: &Rules,
    observations: &[Observation],
    maintenance: &Spans,
    from: i64,
    to: i64,
    split_us: i64,
) -> Vec<(i64, Tally)> {
    if to <= from || split_us <= 0 {
        return Vec::new();
    }
    // Events: (time, Δreporting, Δfailing, Δin maintenance).
    let mut events: Vec<(i64, i32, i32, i32)> = Vec::new();
    for (a, b, ok, _) in segments(rules, observations) {
        let (a, b) = (a.max(from), b.min(to));
        if a >= b {
            continue;
        }
        let f = i32::from(!ok);
        events.push((a, 1, f, 0));
        events.push((b, -1, -f, 0));
    }
    for (a, b) in maintenance.clipped(from, to) {
        events.push((a, 0, 0, 1));
        events.push((b, 0, 0, -1));
    }
    events.sort_unstable();
    let first_piece = from - from.rem_euclid(split_us);
    let mut pieces: Vec<(i64, Tally)> = Vec::new();
    let mut piece_start = first_piece;
    while piece_start < to {
        let a = piece_start.max(from);
        let b = piece_start.saturating_add(split_us).min(to);
        pieces.push((
            piece_start,
            Tally {
                window_us: b - a,
                ..Tally::default()
            },
        ));
        piece_start = match piece_start.checked_add(split_us) {
            Some(next) => next,
            None => break,
        };
    }
    let (mut reporting, mut failing, mut in_maintenance) = (0i32, 0i32, 0i32);
    let mut t = from;
    let mut i = 0;
    let quorum = rules.quorum as i32;
    let mut account = |from_t: i64, to_t: i64, reporting: i32, failing: i32, maint: i32| {
        if to_t <= from_t {
            return;
        }
        let down = failing >= quorum && quorum > 0;
        let no_data = !down && reporting < quorum.max(1);
        let maintenance = maint > 0;
        if !down && !no_data && !maintenance {
            return;
        }
        // Spread [from_t, to_t) over the pieces it covers.
        let mut s = from_t;
        while s < to_t {
            let idx = ((s - first_piece) / split_us) as usize;
            let piece_end = first_piece
                .saturating_add((idx as i64 + 1).saturating_mul(split_us))
                .min(to_t);
            if let Some((_, tally)) = pieces.get_mut(idx) {
                let len = piece_end - s;
                if down {
                    tally.down_us += len;
                } else if no_data {
                    tally.no_data_us += len;
                }
                if maintenance {
                    tally.maintenance_us += len;
                    if down {
                        tally.maintenance_down_us += len;
                    } else if no_data {
                        tally.maintenance_no_data_us += len;
                    }
                }
            }
            s = piece_end;
        }
    };
    while i < events.len() {
        let at = events[i].0;
        account(t, at, reporting, failing, in_maintenance);
        while i < events.len() && events[i].0 == at {
            reporting += events[i].1;
            failing += events[i].2;
            in_maintenance += events[i].3;
            i += 1;
        }
        t = at;
    }
    account(t, to, reporting, failing, in_maintenance);
    pieces
}

/// The intervals of `[from, to)` during which the check was down, in order. Their lengths add
/// up to [`tally`]'s downtime for the same window.
pub fn down_intervals(
    rules: &Rules,
    observations: &[Observation],
    from: i64,
    to: i64,
) -> Vec<(i64, i64)> {
    let mut events: Vec<(i64, i32)> = Vec::new();
    for (a, b, ok, _) in segments(rules, observations) {
        let (a, b) = (a.max(from), b.min(to));
        if a < b && !ok {
            events.push((a, 1));
            events.push((b, -1));
        }
    }
    events.sort_unstable();
    let quorum = rules.quorum as i32;
    let (mut failing, mut open, mut out) = (0i32, None, Vec::new());
    let mut i = 0;
    while i < events.len() {
        let at = events[i].0;
        while i < events.len() && events[i].0 == at {
            failing += events[i].1;
            i += 1;
        }
        let down = quorum > 0 && failing >= quorum;
        match (down, open) {
            (true, None) => open = Some(at),
            (false, Some(start)) => {
                out.push((start, at));
                open = None;
            }
            _ => {}
        }
    }
    if let Some(start) = open {
        out.push((start, to));
    }
    out
}

/// Down, no-data and maintenance time in `[from, to)`.
pub fn tally(
    rules: &Rules,
    observations: &[Observation],
    maintenance: &Spans,
    from: i64,
    to: i64,
) -> Tally {
    let mut total = Tally::default();
    for (_, t) in tally_split(
        rules,
        observations,
        maintenance,
        from,
        to,
        (to - from).max(1),
    ) {
        total.add(&t);
    }
    total
}

/// Per-minute rollups of `[from, to)`, aligned to whole minutes.
pub fn minute_rollups(
    rules: &Rules,
    observations: &[Observation],
    maintenance: &Spans,
    from: i64,
    to: i64,
) -> Vec<(i64, Tally)> {
    tally_split(rules, observations, maintenance, from, to, MINUTE_US)
}

#[cfg(test)]
mod tests;

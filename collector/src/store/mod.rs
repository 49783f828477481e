//! Where results and their rollups are kept. The query API, ingest and the rollup task see
//! only the trait, [`ResultStore`]. A back end is one file here implementing it, one variant of
//! [`StoreConfig`] and its arm in [`StoreConfig::open`]; `collector/tests/store.rs` runs the
//! conformance suite over every back end, and `collector.store` in the config chooses one.

pub mod block;
mod row;
mod sqlite;

pub use sqlite::SqliteStore;

use std::path::PathBuf;
use std::sync::Arc;

use lookout_model::latency::Sparse;
use lookout_model::probe::{ProbeResult, Verdict};
use lookout_model::sla::Tally;
use std::collections::BTreeMap;

/// Which back end keeps the collector's results (`collector.store` in the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// SQLite in WAL mode, in one file: survives restarts and SIGKILL; the default, at
    /// `DATA_DIR/collector.db`.
    Sqlite { path: PathBuf },
    /// SQLite in memory: gone with the process, for trying things out.
    Memory,
}

impl StoreConfig {
    /// Opens the store, creating it (and its directory) when there is none.
    pub fn open(&self) -> Result<Arc<dyn ResultStore>, StoreError> {
        Ok(match self {
            StoreConfig::Sqlite { path } => Arc::new(SqliteStore::open(path)?),
            StoreConfig::Memory => Arc::new(SqliteStore::in_memory()?),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store cannot take writes: {0}")]
    Unavailable(String),
    #[error("cannot open the store at {0}")]
    Open(String),
    #[error("reading the store failed: {0}")]
    Read(String),
}

/// Which results to read back.
#[derive(Debug, Default, Clone)]
pub struct ResultFilter {
    pub check: Option<String>,
    pub region: Option<String>,
    pub agent: Option<String>,
    pub limit: usize,
}

/// What the SLA math and the latency figures need of one stored result.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub region: String,
    pub start_us: i64,
    pub verdict: Verdict,
    pub duration_us: i64,
}

impl Stored {
    /// Its latency as the SLI counts it (`Verdict::counted_latency_us`).
    pub fn counted_latency_us(&self, objective_us: i64) -> Option<u64> {
        self.verdict
            .counted_latency_us(u64::try_from(self.duration_us).unwrap_or(0), objective_us)
    }
}

/// (stored, duplicates) of an [`ResultStore::insert`] answer.
pub fn counts(inserted: &[bool]) -> (usize, usize) {
    let stored = inserted.iter().filter(|n| **n).count();
    (stored, inserted.len() - stored)
}

/// Which minutes of a check are rolled up: every minute in `[covered_from, frontier)`; those
/// from `dirty_from` on wait to be rolled up again for results that arrived late.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    pub covered_from: i64,
    pub frontier: i64,
    pub dirty_from: Option<i64>,
}

/// What one rollup pass writes for one check.
#[derive(Debug, Clone, Default)]
pub struct CheckRollup {
    pub check: String,
    pub coverage: Option<Coverage>,
    /// The minutes in `[from, to)` that had downtime or no data replace those held there;
    /// a minute not listed was wholly up.
    pub minutes: (i64, i64),
    pub bad_minutes: Vec<(i64, Tally)>,
    /// Latency of the successful runs per (region, hour start) and (region, day start),
    /// replacing what is held for them.
    pub hours: Vec<(String, i64, Sparse)>,
    pub days: Vec<(String, i64, Sparse)>,
}

/// The rollups of one check as loaded at start, regions merged.
#[derive(Debug, Clone, Default)]
pub struct LoadedCheck {
    pub coverage: Option<Coverage>,
    pub bad_minutes: Vec<(i64, Tally)>,
    pub days: BTreeMap<i64, Sparse>,
    pub hours: BTreeMap<i64, Sparse>,
}

#[derive(Debug, Clone, Default)]
pub struct LoadedRollups {
    /// Every result stored with an id up to this one is rolled up.
    pub rolled_id: i64,
    pub checks: BTreeMap<String, LoadedCheck>,
}

/// Results stored after a given id: the highest id, and the earliest start per check.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewResults {
    pub max_id: i64,
    pub earliest: BTreeMap<String, i64>,
}

/// What [`ResultStore::change_maintenance`] does to a window.
#[derive(Debug, Clone, Copy)]
pub enum MaintenanceChange<'a> {
    /// Adds it (id 0) or replaces the one of its id.
    Put(&'a lookout_model::read::Maintenance),
    Delete(i64),
}

/// The span of a latency histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
}

/// What retention removes.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub raw_before_us: i64,
    pub hours_before_us: i64,
    pub rollups_before_us: i64,
}

pub trait ResultStore: Send + Sync {
    /// Stores a batch all or nothing; results already held (same agent and seq) are not
    /// stored again. Answers once the batch is as durable as the store is.
    /// Says, for each result, whether it was stored now (`false`: it was already held).
    fn insert(&self, results: &[ProbeResult]) -> Result<Vec<bool>, StoreError> {
        self.insert_many(&[results])
            .map(|mut v| v.pop().unwrap_or_default())
    }

    /// Stores several batches in one commit (group commit: concurrent agents share the cost
    /// of making their batches durable), all or nothing; one answer per batch.
    fn insert_many(&self, batches: &[&[ProbeResult]]) -> Result<Vec<Vec<bool>>, StoreError>;

    /// [`insert_many`](Self::insert_many) for batches read from the replicated log, with the
    /// log position they end at written in the same commit: a replica that restarts goes on
    /// after it, so each message is applied once however often the log delivers it.
    fn insert_applied(
        &self,
        batches: &[&[ProbeResult]],
        position: u64,
    ) -> Result<Vec<Vec<bool>>, StoreError>;

    /// The log position of the last message applied (0: none).
    fn applied(&self) -> Result<u64, StoreError>;

    /// Results in the order they were stored, oldest first, the last `limit` of them.
    fn query(&self, filter: &ResultFilter) -> Result<Vec<ProbeResult>, StoreError>;

    /// The results of `check` started in `[from, to)`, by start time.
    fn observations(
        &self,
        check: &str,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<Stored>, StoreError>;

    /// The failed runs of `check` started in `[from, to)`, by start time, at most `limit`.
    fn failures(
        &self,
        check: &str,
        from_us: i64,
        to_us: i64,
        limit: usize,
    ) -> Result<Vec<ProbeResult>, StoreError>;

    /// Every check's results started in `[from, to)`, each handed to `visit` with its check as
    /// it is read, in no particular order: one read for a pass, which keeps only what it needs
    /// (at 5,000 checks x 5 regions, ten minutes are 1.5 million results).
    fn visit_observations(
        &self,
        from_us: i64,
        to_us: i64,
        visit: &mut dyn FnMut(&str, Stored),
    ) -> Result<(), StoreError>;

    /// Every check's results started in `[from, to)`, by start time.
    fn observations_all(
        &self,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<(String, Stored)>, StoreError> {
        let mut out = Vec::new();
        self.visit_observations(from_us, to_us, &mut |check, o| {
            out.push((check.to_owned(), o));
        })?;
        out.sort_by_key(|(_, o)| o.start_us);
        Ok(out)
    }

    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What was stored after `after_id` (the rollup task's to-do list).
    fn stored_since(&self, after_id: i64) -> Result<NewResults, StoreError>;

    /// Per-region latency of `check`, per hour or per day, for the buckets starting in
    /// `[from, to)`, as (region, start, histogram).
    fn hists(
        &self,
        check: &str,
        bucket: Bucket,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<(String, i64, Sparse)>, StoreError>;

    /// One region's latency histograms of `check`, per hour or per day, for the buckets
    /// starting in `[from, to)`, by their start.
    fn region_hists(
        &self,
        check: &str,
        region: &str,
        bucket: Bucket,
        from_us: i64,
        to_us: i64,
    ) -> Result<BTreeMap<i64, Sparse>, StoreError>;

    /// Writes a rollup pass all or nothing, with the id it rolled up to.
    fn save_rollups(&self, rolled_id: i64, checks: &[CheckRollup]) -> Result<(), StoreError>;

    /// Every rollup held, with hourly latency from `hours_since` on.
    fn load_rollups(&self, hours_since_us: i64) -> Result<LoadedRollups, StoreError>;

    /// Removes what retention no longer keeps, at most `max_rows` raw results at a time so
    /// that ingest never waits long; answers how many raw results went.
    fn prune(&self, retention: Retention, max_rows: usize) -> Result<usize, StoreError>;

    /// Moves the raw results of spans that ended before `before_us` into the back end's
    /// compact form, once the rollups have read them; reads answer the same before and after.
    /// Answers how many results moved. Blocking, and long at thousands of checks: run it on
    /// its own thread, not in a rollup pass.
    fn compact(&self, before_us: i64) -> Result<usize, StoreError>;

    /// Bytes on disk (0 in memory).
    fn size_bytes(&self) -> u64;

    /// Every maintenance window held, by id.
    fn maintenances(&self) -> Result<Vec<lookout_model::read::Maintenance>, StoreError>;

    /// Adds (id 0), replaces or removes a maintenance window, and in the same transaction
    /// marks each `(check, from)` of `dirty` for rolling up again from `from` (where it is
    /// rolled up past it). Answers the window's id.
    fn change_maintenance(
        &self,
        change: MaintenanceChange<'_>,
        dirty: &[(String, i64)],
    ) -> Result<i64, StoreError>;

    /// Each check's SLO as last recorded: (its JSON, since when).
    fn slos(&self) -> Result<BTreeMap<String, (String, i64)>, StoreError>;

    /// Records checks' SLOs `(check, JSON, since)` and the events that tell of the change,
    /// together.
    fn put_slos(
        &self,
        slos: &[(String, String, i64)],
        events: &[lookout_model::event::Event],
    ) -> Result<(), StoreError>;

    /// Keeps events (replacements, brakes) as they come.
    fn insert_events(&self, events: &[lookout_model::event::Event]) -> Result<(), StoreError>;

    /// Events after `after_id` that happened at or after `since_us`, oldest first.
    fn events(
        &self,
        after_id: i64,
        since_us: i64,
        limit: usize,
    ) -> Result<Vec<lookout_model::event::StoredEvent>, StoreError>;
}

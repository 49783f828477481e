//! Where results are kept. One trait, one implementation per file; the query API and ingest
//! see only the trait.

mod memory;
mod sqlite;

pub use memory::MemoryStore;
pub use sqlite::SqliteStore;

use lookout_model::probe::ProbeResult;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store cannot take writes: {0}")]
    Unavailable(String),
    #[error("cannot open the store at {0}")]
    Open(String),
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
    pub ok: bool,
    pub duration_us: i64,
}

/// (stored, duplicates) of an [`ResultStore::insert`] answer.
pub fn counts(inserted: &[bool]) -> (usize, usize) {
    let stored = inserted.iter().filter(|n| **n).count();
    (stored, inserted.len() - stored)
}

pub trait ResultStore: Send + Sync {
    /// Stores a batch all or nothing; results already held (same agent and seq) are not
    /// stored again. Returns (stored, duplicates) once the batch is as durable as the store is.
    /// Says, for each result, whether it was stored now (`false`: it was already held).
    fn insert(&self, results: &[ProbeResult]) -> Result<Vec<bool>, StoreError>;

    /// Results in the order they were stored, oldest first, the last `limit` of them.
    fn query(&self, filter: &ResultFilter) -> Vec<ProbeResult>;

    /// The results of `check` started in `[from, to)`, by start time.
    fn observations(&self, check: &str, from_us: i64, to_us: i64) -> Vec<Stored>;

    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

//! Results in memory: for tests and for running without a disk. Not durable.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use lookout_model::probe::ProbeResult;

use super::{ResultFilter, ResultStore, StoreError, Stored};

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    results: Vec<ProbeResult>,
    seen: HashMap<String, HashSet<u64>>,
}

impl ResultStore for MemoryStore {
    fn insert(&self, results: &[ProbeResult]) -> Result<Vec<bool>, StoreError> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut inserted = Vec::with_capacity(results.len());
        for r in results {
            let new = inner.seen.entry(r.agent.clone()).or_default().insert(r.seq);
            if new {
                inner.results.push(r.clone());
            }
            inserted.push(new);
        }
        Ok(inserted)
    }

    fn query(&self, f: &ResultFilter) -> Vec<ProbeResult> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let matching: Vec<&ProbeResult> = inner
            .results
            .iter()
            .filter(|r| f.check.as_ref().is_none_or(|c| *c == r.check))
            .filter(|r| f.region.as_ref().is_none_or(|c| *c == r.region))
            .filter(|r| f.agent.as_ref().is_none_or(|c| *c == r.agent))
            .collect();
        let skip = matching.len().saturating_sub(f.limit);
        matching.into_iter().skip(skip).cloned().collect()
    }

    fn observations(&self, check: &str, from_us: i64, to_us: i64) -> Vec<Stored> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut v: Vec<Stored> = inner
            .results
            .iter()
            .filter(|r| r.check == check && r.started_at_us >= from_us && r.started_at_us < to_us)
            .map(|r| Stored {
                region: r.region.clone(),
                start_us: r.started_at_us,
                ok: r.outcome.is_ok(),
                duration_us: r.duration_us as i64,
            })
            .collect();
        v.sort_by_key(|o| o.start_us);
        v
    }

    fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .results
            .len()
    }
}

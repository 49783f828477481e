//! Latency distributions that merge over any window: an HdrHistogram per rollup bucket,
//! kept sparse (only the buckets that were hit) so that 400 days of them fit in memory.
//!
//! HdrHistogram (the `hdrhistogram` crate) rather than a hand-made bucketing: its error bound
//! is stated (two significant digits here: a reported percentile is within 1 % of the true
//! value) and merging is exact.

use hdrhistogram::Histogram;

/// The longest duration recorded, in microseconds; longer ones count as this.
pub const MAX_US: u64 = 3_600_000_000;
const SIGFIG: u8 = 2;

/// A latency distribution in microseconds: `(bucket value, count)` of the buckets that were
/// hit, the value being the lowest the bucket holds (it records back into the same bucket).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sparse {
    buckets: Vec<(u32, u32)>,
}

fn empty() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, MAX_US, SIGFIG) {
        Ok(h) => h,
        // Only invalid bounds fail, and these are constants the crate accepts.
        Err(e) => unreachable!("histogram bounds: {e}"),
    }
}

impl Sparse {
    pub fn from_durations(durations_us: impl IntoIterator<Item = u64>) -> Sparse {
        let mut acc = Accumulator::new();
        for d in durations_us {
            acc.record(d);
        }
        acc.to_sparse()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|(_, n)| u64::from(*n)).sum()
    }

    /// Little-endian `(u32 value, u32 count)` pairs: the store's blob.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buckets.len() * 8);
        for (i, n) in &self.buckets {
            out.extend_from_slice(&i.to_le_bytes());
            out.extend_from_slice(&n.to_le_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Sparse> {
        if !bytes.len().is_multiple_of(8) {
            return None;
        }
        let buckets = bytes
            .chunks_exact(8)
            .map(|c| {
                (
                    u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                    u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
                )
            })
            .collect();
        Some(Sparse { buckets })
    }
}

/// A dense histogram to merge sparse ones into and read percentiles from.
pub struct Accumulator {
    hist: Histogram<u64>,
}

impl Default for Accumulator {
    fn default() -> Self {
        Self::new()
    }
}

impl Accumulator {
    pub fn new() -> Self {
        Accumulator { hist: empty() }
    }

    pub fn record(&mut self, duration_us: u64) {
        self.hist.saturating_record(duration_us.clamp(1, MAX_US));
    }

    /// `count` runs of `duration_us` each.
    pub fn record_n(&mut self, duration_us: u64, count: u64) {
        self.hist
            .saturating_record_n(duration_us.clamp(1, MAX_US), count);
    }

    pub fn add(&mut self, sparse: &Sparse) {
        for (value, count) in &sparse.buckets {
            self.hist
                .saturating_record_n(u64::from(*value).clamp(1, MAX_US), u64::from(*count));
        }
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The value at quantile `q` (0..=1), in microseconds; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        (!self.hist.is_empty())
            .then(|| self.hist.highest_equivalent(self.hist.value_at_quantile(q)))
    }

    pub fn max(&self) -> Option<u64> {
        (!self.hist.is_empty()).then(|| self.hist.max())
    }

    /// How many recorded durations are below `limit_us` (to histogram precision).
    pub fn count_below(&self, limit_us: u64) -> u64 {
        if limit_us == 0 {
            return 0;
        }
        self.hist
            .count_between(0, limit_us.saturating_sub(1).min(MAX_US))
    }

    pub fn to_sparse(&self) -> Sparse {
        let mut buckets = Vec::new();
        for v in self.hist.iter_recorded() {
            let value = self.hist.lowest_equivalent(v.value_iterated_to());
            let count = u32::try_from(v.count_at_value()).unwrap_or(u32::MAX);
            buckets.push((u32::try_from(value).unwrap_or(u32::MAX), count));
        }
        // Rollups hold hundreds of thousands of these for months: no spare capacity.
        buckets.shrink_to_fit();
        Sparse { buckets }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_sparse_histograms_give_percentiles_within_one_percent() {
        let a = Sparse::from_durations((1..=500).map(|i| i * 1000));
        let b = Sparse::from_durations((501..=1000).map(|i| i * 1000));
        let b = Sparse::decode(&b.encode()).unwrap();
        let mut acc = Accumulator::new();
        acc.add(&a);
        acc.add(&b);
        assert_eq!(acc.count(), 1000);
        let p99 = acc.quantile(0.99).unwrap() as f64;
        assert!((p99 - 990_000.0).abs() / 990_000.0 < 0.01, "{p99}");
        let p50 = acc.quantile(0.50).unwrap() as f64;
        assert!((p50 - 500_000.0).abs() / 500_000.0 < 0.01, "{p50}");
        let under = acc.count_below(800_000);
        assert!((790..=810).contains(&under), "{under}");
        assert_eq!(acc.to_sparse().count(), 1000);
    }

    #[test]
    fn extremes_are_clamped_not_lost() {
        let s = Sparse::from_durations([0, u64::MAX, 5]);
        assert_eq!(s.count(), 3);
        assert!(Sparse::decode(&[1, 2, 3]).is_none());
        assert_eq!(Sparse::decode(&s.encode()), Some(s));
    }
}

//! Latency distributions that merge over any window: an HdrHistogram per rollup bucket,
//! kept sparse (only the buckets that were hit) so that 400 days of them fit in memory.
//!
//! HdrHistogram (the `hdrhistogram` crate) rather than a hand-made bucketing: its error bound
//! is stated (two significant digits here: a reported percentile is within 1 % of the true
//! value) and merging is exact.

use std::sync::OnceLock;

use hdrhistogram::Histogram;

/// The longest duration recorded, in microseconds; longer ones count as this.
pub const MAX_US: u64 = 3_600_000_000;
const SIGFIG: u8 = 2;

/// A latency distribution in microseconds: `(bucket value, count)` of the buckets that were
/// hit, by value, the value being the lowest the bucket holds (it records back into the same
/// bucket).
///
/// Held packed, each pair as the value's step from the previous one and the count, both as
/// LEB128 varints: a collector holds one per check and day for months (445,000 at 5,000
/// checks), and a bucket's step and count mostly fit in a byte or two each where the pairs of
/// `u32` took eight (`lookout bench collector`'s memory at 5,000 checks x 5 regions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sparse {
    packed: Box<[u8]>,
}

fn empty() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, MAX_US, SIGFIG) {
        Ok(h) => h,
        // Only invalid bounds fail, and these are constants the crate accepts.
        Err(e) => unreachable!("histogram bounds: {e}"),
    }
}

fn varint_len(v: u32) -> usize {
    match v {
        0..0x80 => 1,
        0x80..0x4000 => 2,
        0x4000..0x20_0000 => 3,
        0x20_0000..0x1000_0000 => 4,
        _ => 5,
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The next varint of `bytes` from `*at`; `None` at the end (or at a cut one, which packing
/// never writes).
fn take_varint(bytes: &[u8], at: &mut usize) -> Option<u32> {
    let mut v: u32 = 0;
    for shift in (0..35).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        v |= u32::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

impl Sparse {
    pub fn from_durations(durations_us: impl IntoIterator<Item = u64>) -> Sparse {
        let mut acc = Accumulator::new();
        for d in durations_us {
            acc.record(d);
        }
        acc.to_sparse()
    }

    /// From pairs in increasing order of value, each value once. Sized exactly before it is
    /// written: growing the buffer byte by byte, then shrinking it into the box, was a third
    /// of the collector's start-up at 5,000 checks (two million of these are built).
    fn pack<I: Iterator<Item = (u32, u32)> + Clone>(pairs: I) -> Sparse {
        let mut previous = 0u32;
        let len: usize = pairs
            .clone()
            .map(|(value, count)| {
                let step = value.wrapping_sub(previous);
                previous = value;
                varint_len(step) + varint_len(count)
            })
            .sum();
        let mut out = Vec::with_capacity(len);
        previous = 0;
        for (value, count) in pairs {
            put_varint(&mut out, value.wrapping_sub(previous));
            put_varint(&mut out, count);
            previous = value;
        }
        Sparse {
            packed: out.into_boxed_slice(),
        }
    }

    /// The `(bucket value, count)` pairs, by value.
    pub fn buckets(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let mut at = 0;
        let mut value = 0u32;
        std::iter::from_fn(move || {
            let step = take_varint(&self.packed, &mut at)?;
            let count = take_varint(&self.packed, &mut at)?;
            value = value.wrapping_add(step);
            Some((value, count))
        })
    }

    pub fn is_empty(&self) -> bool {
        self.packed.is_empty()
    }

    pub fn count(&self) -> u64 {
        self.buckets().map(|(_, n)| u64::from(n)).sum()
    }

    /// Little-endian `(u32 value, u32 count)` pairs: the store's blob.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, n) in self.buckets() {
            out.extend_from_slice(&i.to_le_bytes());
            out.extend_from_slice(&n.to_le_bytes());
        }
        out
    }

    /// A blob of [`Sparse::encode`]'s; one not in order of value is put in order (counts of
    /// the same value added), so that whatever the store holds packs the same way.
    pub fn decode(bytes: &[u8]) -> Option<Sparse> {
        let mut pairs: Vec<(u32, u32)> = encoded_pairs(bytes)?.collect();
        if !pairs.is_sorted_by(|a, b| a.0 < b.0) {
            pairs.sort_unstable_by_key(|(v, _)| *v);
            pairs.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    kept.1 = kept.1.saturating_add(later.1);
                }
                same
            });
        }
        Some(Sparse::pack(pairs.into_iter()))
    }
}

/// The `(value, count)` pairs of a blob of [`Sparse::encode`]'s, as they come; `None` for a
/// blob that is not whole pairs.
fn encoded_pairs(bytes: &[u8]) -> Option<impl Iterator<Item = (u32, u32)> + '_> {
    if !bytes.len().is_multiple_of(8) {
        return None;
    }
    Some(bytes.chunks_exact(8).map(|c| {
        (
            u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
            u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        )
    }))
}

/// The bucket layout every distribution shares: used only for its arithmetic (which bucket a
/// value falls in, and that bucket's bounds), never recorded into.
fn shape() -> &'static Histogram<u64> {
    static SHAPE: OnceLock<Histogram<u64>> = OnceLock::new();
    SHAPE.get_or_init(empty)
}

/// The lowest value of the bucket `duration_us` falls in, after clamping to what is tracked.
fn bucket_of(duration_us: u64) -> u64 {
    shape().lowest_equivalent(duration_us.clamp(1, MAX_US))
}

/// Sparse histograms merged, to read percentiles from.
///
/// Kept sparse as a sorted `(bucket, count)` list rather than in a dense `Histogram`: a dense
/// one at this range and precision is about 2,300 counters (18 KiB) to allocate, zero, fill
/// and walk for every merge (each check's answer, each day loaded at start-up), where a
/// merge hits a few hundred buckets at most. Every reading follows `hdrhistogram`'s
/// definitions exactly (a test holds them to it).
#[derive(Debug, Clone, Default)]
pub struct Accumulator {
    /// `(bucket's lowest value, count)`, by bucket, no bucket twice.
    buckets: Vec<(u64, u64)>,
    total: u64,
    /// What `add` merges in, then the merge: kept between merges, so that merging many
    /// histograms into one allocates only while it grows.
    incoming: Vec<(u64, u64)>,
    merged: Vec<(u64, u64)>,
}

/// The smallest duration that [`Accumulator::count_below`]`(limit_us)` does not count: the
/// first value of the bucket after the one holding `limit_us - 1`.
pub fn first_not_under(limit_us: i64) -> u64 {
    let limit = u64::try_from(limit_us).unwrap_or(0);
    if limit == 0 {
        return 0;
    }
    let last = limit.saturating_sub(1).min(MAX_US);
    shape()
        .highest_equivalent(bucket_of(last))
        .saturating_add(1)
}

impl Accumulator {
    pub fn new() -> Self {
        Accumulator::default()
    }

    pub fn record(&mut self, duration_us: u64) {
        self.record_n(duration_us, 1);
    }

    /// `count` runs of `duration_us` each.
    pub fn record_n(&mut self, duration_us: u64, count: u64) {
        if count == 0 {
            return;
        }
        let bucket = bucket_of(duration_us);
        match self.buckets.binary_search_by_key(&bucket, |(b, _)| *b) {
            Ok(i) => self.buckets[i].1 = self.buckets[i].1.saturating_add(count),
            Err(i) => self.buckets.insert(i, (bucket, count)),
        }
        self.total = self.total.saturating_add(count);
    }

    pub fn add(&mut self, sparse: &Sparse) {
        self.merge_in(sparse.buckets());
    }

    /// Adds a blob of [`Sparse::encode`]'s without building the `Sparse` first (the
    /// collector's start-up merges two million of them); `false`, adding nothing, for a blob
    /// that is not whole pairs.
    pub fn add_encoded(&mut self, blob: &[u8]) -> bool {
        match encoded_pairs(blob) {
            Some(pairs) => {
                self.merge_in(pairs);
                true
            }
            None => false,
        }
    }

    /// Empty again, keeping what it allocated.
    pub fn clear(&mut self) {
        self.buckets.clear();
        self.total = 0;
    }

    fn merge_in(&mut self, pairs: impl Iterator<Item = (u32, u32)>) {
        // Re-bucketed, and put in order if it is not: a blob read from disk is not trusted
        // to be what `to_sparse` wrote.
        let mut incoming = std::mem::take(&mut self.incoming);
        incoming.clear();
        incoming.extend(
            pairs
                .filter(|(_, n)| *n > 0)
                .map(|(v, n)| (bucket_of(u64::from(v)), u64::from(n))),
        );
        if !incoming.is_sorted_by_key(|(b, _)| *b) {
            incoming.sort_unstable_by_key(|(b, _)| *b);
        }
        let mut merged = std::mem::take(&mut self.merged);
        merged.clear();
        merged.reserve(self.buckets.len() + incoming.len());
        let mut mine = self.buckets.iter().copied().peekable();
        let mut theirs = incoming.iter().copied().peekable();
        loop {
            let next = match (mine.peek(), theirs.peek()) {
                (Some(a), Some(b)) if a.0 <= b.0 => mine.next(),
                (Some(_), Some(_)) | (None, Some(_)) => theirs.next(),
                (Some(_), None) => mine.next(),
                (None, None) => break,
            };
            let Some((bucket, count)) = next else { break };
            match merged.last_mut() {
                Some((b, n)) if *b == bucket => *n = u64::saturating_add(*n, count),
                _ => merged.push((bucket, count)),
            }
        }
        self.total = merged.iter().fold(0u64, |t, (_, n)| t.saturating_add(*n));
        self.merged = std::mem::replace(&mut self.buckets, merged);
        self.incoming = incoming;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The value at quantile `q` (0..=1), in microseconds; `None` when empty. As
    /// `Histogram::value_at_quantile`: the bucket holding the `ceil(q * n)`th run (at least
    /// the first), read as its highest value.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let q = q.min(1.0);
        let target = ((q * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        let bucket = self
            .buckets
            .iter()
            .find(|(_, n)| {
                seen = seen.saturating_add(*n);
                seen >= target
            })
            .or(self.buckets.last())
            .map(|(b, _)| *b)?;
        Some(shape().highest_equivalent(bucket))
    }

    pub fn max(&self) -> Option<u64> {
        self.buckets
            .last()
            .map(|(b, _)| shape().highest_equivalent(*b))
    }

    /// How many recorded durations are below `limit_us` (to histogram precision: the bucket
    /// holding `limit_us - 1` counts whole; [`first_not_under`] is the first value not
    /// counted).
    pub fn count_below(&self, limit_us: u64) -> u64 {
        if limit_us == 0 {
            return 0;
        }
        let last = limit_us.saturating_sub(1).min(MAX_US);
        self.buckets
            .iter()
            .take_while(|(b, _)| *b <= last)
            .fold(0u64, |t, (_, n)| t.saturating_add(*n))
    }

    pub fn to_sparse(&self) -> Sparse {
        // Bucket values are at most MAX_US, which fits: only counts can saturate.
        Sparse::pack(self.buckets.iter().map(|(b, n)| {
            (
                u32::try_from(*b).unwrap_or(u32::MAX),
                u32::try_from(*n).unwrap_or(u32::MAX),
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

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
    fn the_first_value_not_under_an_objective_is_counted_above_it() {
        for objective in [
            1,
            2,
            999,
            800_000,
            799_999,
            1_000_000,
            59_999_999,
            120_000_000,
        ] {
            let v = first_not_under(objective);
            let mut acc = Accumulator::new();
            acc.record(v);
            assert_eq!(acc.count_below(objective as u64), 0, "{objective}: {v}");
            acc.record(v - 1);
            // Nothing is under 1 µs: durations are tracked from 1.
            if objective > 1 {
                assert_eq!(acc.count_below(objective as u64), 1, "{objective}: {v}");
                // Not far above: within the histogram's precision.
                assert!(v - 1 <= objective as u64 + objective as u64 / 50, "{v}");
            }
        }
        assert_eq!(first_not_under(0), 0);
        assert_eq!(first_not_under(-5), 0);
    }

    proptest::proptest! {
        /// The sparse merge reads exactly what `hdrhistogram` itself reads from the same runs.
        #[test]
        fn sparse_merge_reads_as_a_dense_histogram(
            parts in proptest::collection::vec(
                proptest::collection::vec((0u64..5_000_000_000, 1u64..40), 0..60),
                1..6,
            ),
            q in 0.0f64..=1.0,
            limit in 0u64..5_000_000_000,
        ) {
            let mut dense = empty();
            let mut acc = Accumulator::new();
            for part in &parts {
                let mut one = Accumulator::new();
                for (v, n) in part {
                    dense.saturating_record_n((*v).clamp(1, MAX_US), *n);
                    one.record_n(*v, *n);
                }
                acc.add(&one.to_sparse());
            }
            proptest::prop_assert_eq!(acc.count(), dense.len());
            if dense.is_empty() {
                proptest::prop_assert_eq!(acc.quantile(q), None);
                proptest::prop_assert_eq!(acc.max(), None);
            } else {
                for q in [q, 0.5, 0.95, 0.99, 1.0] {
                    let want = dense.highest_equivalent(dense.value_at_quantile(q));
                    proptest::prop_assert_eq!(acc.quantile(q), Some(want), "q {}", q);
                }
                proptest::prop_assert_eq!(acc.max(), Some(dense.max()));
            }
            let want_below = if limit == 0 {
                0
            } else {
                dense.count_between(0, (limit - 1).min(MAX_US))
            };
            proptest::prop_assert_eq!(acc.count_below(limit), want_below);
        }
    }

    proptest::proptest! {
        /// Any blob of pairs reads back as its pairs in order of value (counts of one value
        /// added), whatever the packing made of the steps and counts.
        #[test]
        fn a_stored_blob_reads_back_as_its_pairs_in_order(
            pairs in proptest::collection::vec((0u32..=u32::MAX, 0u32..=u32::MAX), 0..80),
        ) {
            let blob: Vec<u8> = pairs
                .iter()
                .flat_map(|(v, n)| v.to_le_bytes().into_iter().chain(n.to_le_bytes()))
                .collect();
            let mut want: BTreeMap<u32, u32> = BTreeMap::new();
            for (v, n) in &pairs {
                let c = want.entry(*v).or_default();
                *c = c.saturating_add(*n);
            }
            let s = Sparse::decode(&blob).unwrap();
            let got: Vec<(u32, u32)> = s.buckets().collect();
            proptest::prop_assert_eq!(got, want.into_iter().collect::<Vec<_>>());
            proptest::prop_assert_eq!(Sparse::decode(&s.encode()), Some(s));
        }

        /// Merging blobs straight from the store, one accumulator reused, reads as decoding
        /// each and merging fresh ones.
        #[test]
        fn blobs_merged_encoded_read_as_decoded_ones(
            blobs in proptest::collection::vec(
                proptest::collection::vec((1u32..=4_000_000, 0u32..=1_000), 0..40),
                1..6,
            ),
        ) {
            let encoded: Vec<Vec<u8>> = blobs
                .iter()
                .map(|pairs| {
                    pairs
                        .iter()
                        .flat_map(|(v, n)| v.to_le_bytes().into_iter().chain(n.to_le_bytes()))
                        .collect()
                })
                .collect();
            let mut reused = Accumulator::new();
            reused.add_encoded(&Sparse::from_durations([7, 900_000]).encode());
            reused.clear();
            let mut fresh = Accumulator::new();
            for blob in &encoded {
                proptest::prop_assert!(reused.add_encoded(blob));
                fresh.add(&Sparse::decode(blob).unwrap());
            }
            proptest::prop_assert_eq!(reused.count(), fresh.count());
            proptest::prop_assert_eq!(reused.to_sparse(), fresh.to_sparse());
            proptest::prop_assert_eq!(reused.quantile(0.99), fresh.quantile(0.99));
        }
    }

    #[test]
    fn extremes_are_clamped_not_lost() {
        let s = Sparse::from_durations([0, u64::MAX, 5]);
        assert_eq!(s.count(), 3);
        assert!(Sparse::decode(&[1, 2, 3]).is_none());
        let mut acc = Accumulator::new();
        assert!(!acc.add_encoded(&[1, 2, 3]));
        assert_eq!(acc.count(), 0);
        assert_eq!(Sparse::decode(&s.encode()), Some(s));
    }
}

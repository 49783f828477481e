//! Raw results kept compactly: one block holds the results of one check in one region over one
//! span of time ([`SPAN_US`]), column by column, each column encoded for what it holds, and the
//! whole compressed with zstd.
//!
//! Why this shape (figures from `lookout bench collector`, 500 checks x 3 regions every 10 s):
//! a row per result (`row.rs`, postcard over a row of indexed columns) cost about 107 bytes on
//! disk, most of it SQLite's row and index overhead and numbers that repeat from one result to
//! the next. Within one check and region they barely change: the start advances by the
//! interval, the sequence by the agent's checks, the status, sizes and names repeat, and only
//! the timings carry news. So:
//!
//! - times and sequence numbers are stored as deltas from the previous result, less the
//!   smallest delta (a regular schedule leaves only the scheduler's jitter);
//! - timings are integers of microseconds less the block's smallest, and a step's total and
//!   its time to first byte are stored as what the other figures do not already say (a total
//!   is mostly its phases, a journey's duration mostly its steps);
//! - outcomes, failure kinds, reasons, agents and step names are small codes into the block's
//!   own table of strings, so a reason repeated 300 times is written once;
//! - every column of integers is written as byte planes (all the low bytes, then the next),
//!   which leaves zstd long runs of equal high bytes to take to nothing.
//!
//! zstd (the `zstd` crate, bindings to the reference library) over LZ4 because its entropy
//! stage is what turns the noisy low bytes of the timings into fewer bits: blocks are written
//! once an hour and read rarely, so its slower compression costs nothing that matters.

use std::collections::HashMap;

use lookout_model::probe::{Failure, FailureKind, Outcome, Phases, ProbeResult, StepResult};

/// The time one block spans: an hour holds 360 results of a check run every 10 s, enough for
/// the columns to compress, few enough that reading a moment decodes little besides it.
pub const SPAN_US: i64 = 3_600_000_000;

/// The first byte of a block: its layout. A block of a layout this version does not know is
/// refused by name rather than misread.
const LAYOUT: u8 = 1;

/// zstd's level: 19 compresses the timings' noise about a fifth better than the default 3, and
/// a collector writes a few kilobytes of blocks a second even at 5,000 checks.
const LEVEL: i32 = 19;

/// The most a block may expand to: far above any real block (360 results take tens of
/// kilobytes), low enough that a damaged length cannot make a read allocate gigabytes.
const MAX_RAW: usize = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("a block of layout {0} (this Lookout reads layout {LAYOUT})")]
    Layout(u8),
    #[error("a damaged block: {0}")]
    Damaged(&'static str),
    #[error("a block that does not decompress: {0}")]
    Compression(String),
}

/// The start of the span `start_us` falls in.
pub fn span_of(start_us: i64) -> i64 {
    start_us.div_euclid(SPAN_US) * SPAN_US
}

/// What a read of availability needs of a result, without building the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Light {
    pub start_us: i64,
    pub ok: bool,
    pub duration_us: u64,
}

/// Encodes results of one check and region. They are written by start time (then agent and
/// sequence), which is also the order they read back in.
pub fn encode(results: &[ProbeResult]) -> Result<Vec<u8>, BlockError> {
    let mut rows: Vec<&ProbeResult> = results.iter().collect();
    rows.sort_by(|a, b| {
        (a.started_at_us, &a.agent, a.seq).cmp(&(b.started_at_us, &b.agent, b.seq))
    });
    let mut strings = Strings::default();
    let mut out = Out::default();
    out.varint(rows.len() as u64);

    // Read by `light`: the start, the outcome and the duration come first.
    out.deltas(rows.iter().map(|r| r.started_at_us as u64));
    let outcome: Vec<u64> = rows
        .iter()
        .map(|r| match &r.outcome {
            Outcome::Ok => 0,
            Outcome::Fail(f) => 1 + strings.code(kind_name(f.kind)),
        })
        .collect();
    out.column(&outcome);
    out.column(&rows.iter().map(|r| r.duration_us).collect::<Vec<_>>());

    let agents: Vec<u64> = rows.iter().map(|r| strings.code(&r.agent)).collect();
    out.column(&agents);
    out.deltas(rows.iter().map(|r| r.seq));
    out.column(
        &rows
            .iter()
            .map(|r| u64::from(r.confirmation))
            .collect::<Vec<_>>(),
    );
    let failures: Vec<&Failure> = rows
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Ok => None,
            Outcome::Fail(f) => Some(f),
        })
        .collect();
    let messages: Vec<u64> = failures.iter().map(|f| strings.code(&f.message)).collect();
    out.column(&messages);
    out.optional(failures.iter().map(|f| f.step.map(|s| s as u64)));

    out.column(
        &rows
            .iter()
            .map(|r| r.steps.len() as u64)
            .collect::<Vec<_>>(),
    );
    let steps: Vec<(&ProbeResult, usize, &StepResult)> = rows
        .iter()
        .flat_map(|r| r.steps.iter().enumerate().map(move |(i, s)| (*r, i, s)))
        .collect();
    let names: Vec<u64> = steps
        .iter()
        .map(|(_, _, s)| strings.code(&s.name))
        .collect();
    out.column(&names);
    out.optional(steps.iter().map(|(_, _, s)| s.status.map(u64::from)));
    out.column(&steps.iter().map(|(_, _, s)| s.bytes).collect::<Vec<_>>());
    let totals: Vec<u64> = steps
        .iter()
        .map(|(r, i, s)| zigzag(s.phases.total_us.wrapping_sub(expected_total(r, *i))))
        .collect();
    out.column(&totals);
    let phases = |f: fn(&Phases) -> u64| -> Vec<u64> {
        steps.iter().map(|(_, _, s)| f(&s.phases)).collect()
    };
    out.column(&phases(|p| p.dns_us));
    out.column(&phases(|p| p.connect_us));
    out.column(&phases(|p| p.tls_us));
    out.column(&phases(|p| p.transfer_us));
    out.column(&phases(|p| {
        zigzag(p.ttfb_us.wrapping_sub(expected_ttfb(p)))
    }));
    out.optional(
        steps
            .iter()
            .map(|(_, _, s)| s.cert_days_left.map(|d| zigzag(d as u64))),
    );
    out.column(
        &steps
            .iter()
            .map(|(_, _, s)| u64::from(s.reused_connection))
            .collect::<Vec<_>>(),
    );

    let mut raw = Out::default();
    strings.write(&mut raw);
    raw.bytes.extend_from_slice(&out.bytes);
    let packed = zstd::bulk::compress(&raw.bytes, LEVEL)
        .map_err(|e| BlockError::Compression(e.to_string()))?;
    let mut block = Out::default();
    block.bytes.push(LAYOUT);
    block.varint(raw.bytes.len() as u64);
    block.bytes.extend_from_slice(&packed);
    Ok(block.bytes)
}

/// Every result of a block, each field as it was given to [`encode`].
pub fn decode(check: &str, region: &str, block: &[u8]) -> Result<Vec<ProbeResult>, BlockError> {
    let raw = unpack(block)?;
    let mut input = In::new(&raw);
    let strings = input.strings()?;
    let n = input.count()?;
    let starts = input.deltas(n)?;
    let outcomes = input.column(n)?;
    let durations = input.column(n)?;
    let agents = input.column(n)?;
    let seqs = input.deltas(n)?;
    let confirmations = input.column(n)?;
    let failed = outcomes.iter().filter(|o| **o != 0).count();
    let messages = input.column(failed)?;
    let fail_steps = input.optional(failed)?;
    let step_counts = input.column(n)?;
    let total_steps = step_counts
        .iter()
        .try_fold(0usize, |sum, c| sum.checked_add(usize::try_from(*c).ok()?))
        .filter(|s| *s <= raw.len().saturating_mul(8))
        .ok_or(BlockError::Damaged("step counts"))?;
    let names = input.column(total_steps)?;
    let statuses = input.optional(total_steps)?;
    let bytes = input.column(total_steps)?;
    let totals = input.column(total_steps)?;
    let dns = input.column(total_steps)?;
    let connect = input.column(total_steps)?;
    let tls = input.column(total_steps)?;
    let transfer = input.column(total_steps)?;
    let ttfb = input.column(total_steps)?;
    let certs = input.optional(total_steps)?;
    let reused = input.column(total_steps)?;

    let string = |code: u64| -> Result<&str, BlockError> {
        usize::try_from(code)
            .ok()
            .and_then(|i| strings.get(i))
            .map(String::as_str)
            .ok_or(BlockError::Damaged("a string code"))
    };
    let mut out = Vec::with_capacity(n);
    let mut failure_no = 0;
    let mut step_no = 0;
    for i in 0..n {
        let outcome = match outcomes[i] {
            0 => Outcome::Ok,
            code => {
                let f = Failure {
                    kind: kind_from(string(code - 1)?)?,
                    message: string(messages[failure_no])?.to_owned(),
                    step: fail_steps[failure_no]
                        .map(|s| usize::try_from(s).map_err(|_| BlockError::Damaged("a step")))
                        .transpose()?,
                };
                failure_no += 1;
                Outcome::Fail(f)
            }
        };
        let mut r = ProbeResult {
            check: check.to_owned(),
            region: region.to_owned(),
            agent: string(agents[i])?.to_owned(),
            seq: seqs[i],
            started_at_us: starts[i] as i64,
            outcome,
            duration_us: durations[i],
            steps: Vec::new(),
            confirmation: confirmations[i] != 0,
        };
        // In step order: each total is told from the steps before it.
        for k in 0..step_counts[i] as usize {
            let j = step_no + k;
            let mut phases = Phases {
                dns_us: dns[j],
                connect_us: connect[j],
                tls_us: tls[j],
                ttfb_us: 0,
                transfer_us: transfer[j],
                total_us: 0,
            };
            phases.total_us =
                expected_total_of(&r, k, step_counts[i] as usize).wrapping_add(unzigzag(totals[j]));
            phases.ttfb_us = expected_ttfb(&phases).wrapping_add(unzigzag(ttfb[j]));
            r.steps.push(StepResult {
                name: string(names[j])?.to_owned(),
                status: statuses[j]
                    .map(|s| u16::try_from(s).map_err(|_| BlockError::Damaged("a status")))
                    .transpose()?,
                bytes: bytes[j],
                phases,
                cert_days_left: certs[j].map(|d| unzigzag(d) as i64),
                reused_connection: reused[j] != 0,
            });
        }
        step_no += step_counts[i] as usize;
        out.push(r);
    }
    Ok(out)
}

/// The start, outcome and duration of every result of a block, by start time: what the SLA
/// math reads, without the strings and steps.
pub fn light(block: &[u8]) -> Result<Vec<Light>, BlockError> {
    let raw = unpack(block)?;
    let mut input = In::new(&raw);
    input.strings_skipped()?;
    let n = input.count()?;
    let starts = input.deltas(n)?;
    let outcomes = input.column(n)?;
    let durations = input.column(n)?;
    Ok((0..n)
        .map(|i| Light {
            start_us: starts[i] as i64,
            ok: outcomes[i] == 0,
            duration_us: durations[i],
        })
        .collect())
}

/// The (agent, seq) of every result of a block: what a replay is checked against.
pub fn keys(block: &[u8]) -> Result<Vec<(String, u64)>, BlockError> {
    let raw = unpack(block)?;
    let mut input = In::new(&raw);
    let strings = input.strings()?;
    let n = input.count()?;
    input.deltas(n)?;
    input.column(n)?;
    input.column(n)?;
    let agents = input.column(n)?;
    let seqs = input.deltas(n)?;
    agents
        .iter()
        .zip(seqs)
        .map(|(a, s)| {
            usize::try_from(*a)
                .ok()
                .and_then(|a| strings.get(a))
                .map(|a| (a.clone(), s))
                .ok_or(BlockError::Damaged("a string code"))
        })
        .collect()
}

fn unpack(block: &[u8]) -> Result<Vec<u8>, BlockError> {
    let (&layout, rest) = block.split_first().ok_or(BlockError::Damaged("empty"))?;
    if layout != LAYOUT {
        return Err(BlockError::Layout(layout));
    }
    let mut input = In::new(rest);
    let len = usize::try_from(input.varint()?)
        .ok()
        .filter(|l| *l <= MAX_RAW)
        .ok_or(BlockError::Damaged("its length"))?;
    let raw = zstd::bulk::decompress(&rest[input.at..], len)
        .map_err(|e| BlockError::Compression(e.to_string()))?;
    if raw.len() != len {
        return Err(BlockError::Damaged("its length"));
    }
    Ok(raw)
}

/// What a step's total is told from: for the last step, the journey's duration less the steps
/// before it (a one-step journey's total is its duration, give or take the agent's own time);
/// nothing for the others, whose phases are told from their total instead.
fn expected_total(r: &ProbeResult, step: usize) -> u64 {
    expected_total_of(r, step, r.steps.len())
}

fn expected_total_of(r: &ProbeResult, step: usize, steps: usize) -> u64 {
    if step + 1 == steps {
        r.steps[..step].iter().fold(r.duration_us, |left, s| {
            left.wrapping_sub(s.phases.total_us)
        })
    } else {
        0
    }
}

/// The time to first byte, if the total held nothing but the phases.
fn expected_ttfb(p: &Phases) -> u64 {
    p.total_us
        .wrapping_sub(p.dns_us)
        .wrapping_sub(p.connect_us)
        .wrapping_sub(p.tls_us)
        .wrapping_sub(p.transfer_us)
}

fn kind_name(kind: FailureKind) -> &'static str {
    kind.as_str()
}

fn kind_from(name: &str) -> Result<FailureKind, BlockError> {
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
        .map_err(|_| BlockError::Damaged("a failure kind"))
}

fn zigzag(v: u64) -> u64 {
    let v = v as i64;
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> u64 {
    (v >> 1) ^ (v & 1).wrapping_neg()
}

/// The block's strings, each written once, referred to by the order they first appeared.
#[derive(Default)]
struct Strings {
    codes: HashMap<String, u64>,
    list: Vec<String>,
}

impl Strings {
    fn code(&mut self, s: &str) -> u64 {
        if let Some(c) = self.codes.get(s) {
            return *c;
        }
        let c = self.list.len() as u64;
        self.codes.insert(s.to_owned(), c);
        self.list.push(s.to_owned());
        c
    }

    fn write(&self, out: &mut Out) {
        out.varint(self.list.len() as u64);
        for s in &self.list {
            out.varint(s.len() as u64);
            out.bytes.extend_from_slice(s.as_bytes());
        }
    }
}

#[derive(Default)]
struct Out {
    bytes: Vec<u8>,
}

impl Out {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.bytes.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.bytes.push(v as u8);
    }

    /// Integers as their smallest, the width of the rest in bytes, and the rest in byte planes.
    fn column(&mut self, values: &[u64]) {
        let min = values.iter().copied().min().unwrap_or(0);
        let spread = values.iter().map(|v| v - min).max().unwrap_or(0);
        let width = (64 - spread.leading_zeros()).div_ceil(8) as usize;
        self.varint(min);
        self.bytes.push(width as u8);
        for plane in 0..width {
            self.bytes
                .extend(values.iter().map(|v| ((v - min) >> (8 * plane)) as u8));
        }
    }

    /// A sequence as its first value and then [`column`](Self::column) of the differences.
    fn deltas(&mut self, values: impl Iterator<Item = u64>) {
        let values: Vec<u64> = values.collect();
        self.varint(values.first().copied().unwrap_or(0));
        let deltas: Vec<u64> = values
            .windows(2)
            .map(|w| zigzag(w[1].wrapping_sub(w[0])))
            .collect();
        self.column(&deltas);
    }

    /// Which values are there, then those that are.
    fn optional(&mut self, values: impl Iterator<Item = Option<u64>>) {
        let values: Vec<Option<u64>> = values.collect();
        self.column(
            &values
                .iter()
                .map(|v| u64::from(v.is_some()))
                .collect::<Vec<_>>(),
        );
        self.column(&values.iter().flatten().copied().collect::<Vec<_>>());
    }
}

/// A bounds-checked reader: a damaged block is an error, never a panic.
struct In<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> In<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        In { bytes, at: 0 }
    }

    fn byte(&mut self) -> Result<u8, BlockError> {
        let b = *self
            .bytes
            .get(self.at)
            .ok_or(BlockError::Damaged("it ends early"))?;
        self.at += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], BlockError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or(BlockError::Damaged("it ends early"))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn varint(&mut self) -> Result<u64, BlockError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(BlockError::Damaged("a number too long"))
    }

    /// A count of things each at least a byte long somewhere: never more than the bytes left.
    fn count(&mut self) -> Result<usize, BlockError> {
        usize::try_from(self.varint()?)
            .ok()
            .filter(|n| *n <= self.bytes.len().saturating_mul(8))
            .ok_or(BlockError::Damaged("a count"))
    }

    fn strings(&mut self) -> Result<Vec<String>, BlockError> {
        let n = self.count()?;
        let mut out = Vec::with_capacity(n.min(self.bytes.len()));
        for _ in 0..n {
            let len = self.count()?;
            let s = std::str::from_utf8(self.take(len)?)
                .map_err(|_| BlockError::Damaged("a string"))?;
            out.push(s.to_owned());
        }
        Ok(out)
    }

    fn strings_skipped(&mut self) -> Result<(), BlockError> {
        for _ in 0..self.count()? {
            let len = self.count()?;
            self.take(len)?;
        }
        Ok(())
    }

    fn column(&mut self, n: usize) -> Result<Vec<u64>, BlockError> {
        let min = self.varint()?;
        let width = usize::from(self.byte()?);
        if width > 8 {
            return Err(BlockError::Damaged("a column's width"));
        }
        let mut values = vec![0u64; n];
        for plane in 0..width {
            let bytes = self.take(n)?;
            for (v, b) in values.iter_mut().zip(bytes) {
                *v |= u64::from(*b) << (8 * plane);
            }
        }
        Ok(values.into_iter().map(|v| v.wrapping_add(min)).collect())
    }

    fn deltas(&mut self, n: usize) -> Result<Vec<u64>, BlockError> {
        let first = self.varint()?;
        let deltas = self.column(n.saturating_sub(1))?;
        let mut out = Vec::with_capacity(n);
        if n > 0 {
            out.push(first);
        }
        let mut at = first;
        for d in deltas {
            at = at.wrapping_add(unzigzag(d));
            out.push(at);
        }
        Ok(out)
    }

    fn optional(&mut self, n: usize) -> Result<Vec<Option<u64>>, BlockError> {
        let present = self.column(n)?;
        let there = present.iter().filter(|p| **p != 0).count();
        let mut values = self.column(there)?.into_iter();
        Ok(present
            .iter()
            .map(|p| if *p != 0 { values.next() } else { None })
            .collect())
    }
}

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

use lookout_model::probe::{
    Degradation, Failure, FailureKind, Outcome, Phases, ProbeResult, StepResult, Verdict,
};

/// The time one block spans: an hour holds 360 results of a check run every 10 s, enough for
/// the columns to compress, few enough that reading a moment decodes little besides it.
pub const SPAN_US: i64 = 3_600_000_000;

/// The first byte of a block: its layout. A block of a layout this version does not know is
/// refused by name rather than misread. Layout 2 gave `degraded` an outcome code of its own
/// (0 ok, 1 degraded, 2 + a failure kind's string); layout 1's blocks (0 ok, 1 + a failure
/// kind's string) are still read.
const LAYOUT: u8 = 2;
const LAYOUT_BEFORE_DEGRADED: u8 = 1;

/// zstd's level: 19 compresses the timings' noise about a fifth better than the default 3, and
/// a collector writes a few kilobytes of blocks a second even at 5,000 checks.
const LEVEL: i32 = 19;

/// The most a block may expand to: far above any real block (360 results take tens of
/// kilobytes), low enough that a damaged length cannot make a read allocate gigabytes.
const MAX_RAW: usize = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error(
        "a block of layout {0} (this Lookout reads layouts {LAYOUT_BEFORE_DEGRADED} and {LAYOUT})"
    )]
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
    pub verdict: Verdict,
    pub duration_us: u64,
}

/// A result's outcome column, which `light` reads without the string table.
#[derive(Clone, Copy)]
enum Code {
    Ok,
    Degraded,
    /// The code of the failure kind's name in the string table.
    Fail(u64),
}

impl Code {
    fn write(self) -> u64 {
        match self {
            Code::Ok => 0,
            Code::Degraded => 1,
            Code::Fail(kind) => 2 + kind,
        }
    }

    fn read(layout: u8, code: u64) -> Code {
        match (layout, code) {
            (_, 0) => Code::Ok,
            (LAYOUT_BEFORE_DEGRADED, kind) => Code::Fail(kind - 1),
            (_, 1) => Code::Degraded,
            (_, kind) => Code::Fail(kind - 2),
        }
    }
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
        .map(|r| {
            match &r.outcome {
                Outcome::Ok => Code::Ok,
                Outcome::Degraded(_) => Code::Degraded,
                Outcome::Fail(f) => Code::Fail(strings.code(kind_name(f.kind))),
            }
            .write()
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
    // Failures' and degradations' reasons, in the rows' order.
    let reasons: Vec<(&str, Option<usize>)> = rows
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Ok => None,
            Outcome::Degraded(d) => Some((d.message.as_str(), d.step)),
            Outcome::Fail(f) => Some((f.message.as_str(), f.step)),
        })
        .collect();
    let messages: Vec<u64> = reasons.iter().map(|(m, _)| strings.code(m)).collect();
    out.column(&messages);
    out.optional(reasons.iter().map(|(_, s)| s.map(|s| s as u64)));

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
    let (layout, raw) = unpack(block)?;
    let mut input = In::new(&raw);
    let strings = input.strings()?;
    let n = input.count()?;
    let starts = input.deltas(n)?;
    let outcomes = input.column(n)?;
    let durations = input.column(n)?;
    let agents = input.column(n)?;
    let seqs = input.deltas(n)?;
    let confirmations = input.column(n)?;
    let not_ok = outcomes.iter().filter(|o| **o != 0).count();
    let messages = input.column(not_ok)?;
    let reason_steps = input.optional(not_ok)?;
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
    let mut reason_no = 0;
    let mut step_no = 0;
    for i in 0..n {
        let mut reason = || -> Result<(String, Option<usize>), BlockError> {
            let message = string(messages[reason_no])?.to_owned();
            let step = reason_steps[reason_no]
                .map(|s| usize::try_from(s).map_err(|_| BlockError::Damaged("a step")))
                .transpose()?;
            reason_no += 1;
            Ok((message, step))
        };
        let outcome = match Code::read(layout, outcomes[i]) {
            Code::Ok => Outcome::Ok,
            Code::Degraded => {
                let (message, step) = reason()?;
                Outcome::Degraded(Degradation { message, step })
            }
            Code::Fail(kind) => {
                let kind = kind_from(string(kind)?)?;
                let (message, step) = reason()?;
                Outcome::Fail(Failure {
                    kind,
                    message,
                    step,
                })
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
    let (layout, raw) = unpack(block)?;
    let mut input = In::new(&raw);
    input.strings_skipped()?;
    let n = input.count()?;
    let starts = input.deltas(n)?;
    let outcomes = input.column(n)?;
    let durations = input.column(n)?;
    Ok((0..n)
        .map(|i| Light {
            start_us: starts[i] as i64,
            verdict: match Code::read(layout, outcomes[i]) {
                Code::Ok => Verdict::Ok,
                Code::Degraded => Verdict::Degraded,
                Code::Fail(_) => Verdict::Fail,
            },
            duration_us: durations[i],
        })
        .collect())
}

/// The (agent, seq) of every result of a block: what a replay is checked against.
pub fn keys(block: &[u8]) -> Result<Vec<(String, u64)>, BlockError> {
    let (_, raw) = unpack(block)?;
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

/// The block's layout and its bytes unpacked.
fn unpack(block: &[u8]) -> Result<(u8, Vec<u8>), BlockError> {
    let (&layout, rest) = block.split_first().ok_or(BlockError::Damaged("empty"))?;
    if layout != LAYOUT && layout != LAYOUT_BEFORE_DEGRADED {
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
    Ok((layout, raw))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn run(seq: u64, outcome: Outcome) -> ProbeResult {
        ProbeResult {
            check: "listen".into(),
            region: "eu".into(),
            agent: "eu-1".into(),
            seq,
            started_at_us: 1_800_000_000_000_000 + (seq as i64 - 1) * 10_000_000,
            outcome,
            duration_us: 120_000,
            steps: vec![StepResult {
                name: "play".into(),
                status: Some(200),
                bytes: 4096,
                phases: Phases {
                    dns_us: 10,
                    connect_us: 200,
                    tls_us: 0,
                    ttfb_us: 50_000,
                    transfer_us: 60_000,
                    total_us: 119_000,
                },
                cert_days_left: None,
                reused_connection: false,
            }],
            confirmation: false,
        }
    }

    fn failure(kind: FailureKind, message: &str, step: Option<usize>) -> Outcome {
        Outcome::Fail(Failure {
            kind,
            message: message.into(),
            step,
        })
    }

    /// Written by the encoder of layout 1 (before `degraded`) from the three runs below.
    const LAYOUT_ONE: &str = "017128b52ffd20714503001286161fa0ab030fd6094f1e34d6800a2720e0f6cf5bf90254d507aff6d8e9bfb79429ffff7f25eb70eb7ee18376a27eb3efe379f73feff9b2ba78bf7f8071154ed48779b5c2e8589c386943208151d08e484334e9474eda34a34c09040404012ed5b286a2e31403";

    #[test]
    fn blocks_written_before_degraded_read_back() {
        let block: Vec<u8> = (0..LAYOUT_ONE.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&LAYOUT_ONE[i..i + 2], 16).unwrap())
            .collect();
        let runs = vec![
            run(1, Outcome::Ok),
            run(2, failure(FailureKind::Timeout, "timed out", Some(0))),
            run(3, failure(FailureKind::Refused, "refused", None)),
        ];
        assert_eq!(decode("listen", "eu", &block).unwrap(), runs);
        let verdicts: Vec<Verdict> = light(&block).unwrap().iter().map(|l| l.verdict).collect();
        assert_eq!(verdicts, [Verdict::Ok, Verdict::Fail, Verdict::Fail]);
    }

    #[test]
    fn degraded_runs_keep_their_reason_beside_failures() {
        let degraded = |message: &str| {
            Outcome::Degraded(Degradation {
                message: message.into(),
                step: Some(0),
            })
        };
        let runs = vec![
            run(1, degraded("delivered at 1.20x real time")),
            run(2, failure(FailureKind::Timeout, "timed out", Some(0))),
            run(3, Outcome::Ok),
            run(4, degraded("delivered at 1.31x real time")),
        ];
        let block = encode(&runs).unwrap();
        assert_eq!(block[0], LAYOUT);
        assert_eq!(decode("listen", "eu", &block).unwrap(), runs);
        let verdicts: Vec<Verdict> = light(&block).unwrap().iter().map(|l| l.verdict).collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Degraded,
                Verdict::Fail,
                Verdict::Ok,
                Verdict::Degraded
            ]
        );
    }

    #[test]
    fn a_block_of_an_unknown_layout_is_refused_by_name() {
        let mut block = encode(&[run(1, Outcome::Ok)]).unwrap();
        block[0] = 9;
        let e = decode("listen", "eu", &block).unwrap_err().to_string();
        assert_eq!(
            e,
            "a block of layout 9 (this Lookout reads layouts 1 and 2)"
        );
    }
}

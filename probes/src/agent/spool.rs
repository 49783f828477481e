//! The agent's on-disk spool: every result is written here first and removed only once the
//! collector has acknowledged it, so results survive both a collector outage and an agent
//! restart, and are replayed in order. Bounded: past its limit the oldest results are dropped,
//! and counted.
//!
//! Layout: `seg-<first seq>.jsonl` segment files of JSON lines, `acked` (the highest
//! acknowledged seq) and `seq` (the highest seq handed out, reserved ahead in blocks so that
//! a restart never reuses a number without a write per result).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use lookout_model::probe::ProbeResult;

/// A segment is closed and a new one started past this size.
const SEGMENT_BYTES: u64 = 256 * 1024;
/// Sequence numbers reserved on disk at a time.
const SEQ_BLOCK: u64 = 10_000;

#[derive(Debug)]
struct Segment {
    first_seq: u64,
    last_seq: u64,
    path: PathBuf,
    bytes: u64,
    count: u64,
}

#[derive(Debug)]
struct State {
    segments: VecDeque<Segment>,
    writer: Option<File>,
    acked: u64,
    next_seq: u64,
    reserved_to: u64,
    dropped: u64,
    /// The unacknowledged results, also on disk: kept in memory so that a push never reads
    /// and parses files on the agent's hot path (the disk copy is for restarts).
    pending: VecDeque<ProbeResult>,
    /// `acked`, held open: it is rewritten after every push.
    acked_file: Option<File>,
}

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    state: Mutex<State>,
}

fn read_u64(path: &Path) -> io::Result<Option<u64>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(s.trim().parse().ok()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes a small file so that a crash leaves either the old or the new value.
fn write_u64(path: &Path, value: u64) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, value.to_string())?;
    fs::rename(tmp, path)
}

fn read_segment(path: &Path) -> io::Result<Vec<ProbeResult>> {
    let file = File::open(path)?;
    let mut out = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line?;
        // A torn last line (a crash mid-write) is skipped; everything before it is intact.
        if let Ok(r) = serde_json::from_str::<ProbeResult>(&line) {
            out.push(r);
        }
    }
    Ok(out)
}

impl Spool {
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        let acked = read_u64(&dir.join("acked"))?.unwrap_or(0);
        let mut paths: Vec<PathBuf> = fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("seg-") && n.ends_with(".jsonl"))
            })
            .collect();
        paths.sort();
        let mut segments = VecDeque::new();
        let mut highest = acked;
        let mut pending = VecDeque::new();
        for path in paths {
            let results = read_segment(&path)?;
            let bytes = fs::metadata(&path)?.len();
            let (Some(first), Some(last)) = (results.first(), results.last()) else {
                fs::remove_file(&path)?;
                continue;
            };
            highest = highest.max(last.seq);
            let count = results.len() as u64;
            let (first_seq, last_seq) = (first.seq, last.seq);
            pending.extend(results.into_iter().filter(|r| r.seq > acked));
            segments.push_back(Segment {
                first_seq,
                last_seq,
                path,
                bytes,
                count,
            });
        }
        let reserved = read_u64(&dir.join("seq"))?;
        // Never hand out a number that may already have been used before a restart. A spool
        // with no history at all (wiped, or a new disk) starts from the clock: numbers from an
        // earlier life of this agent id are below it, so the collector does not take the new
        // results for replays of old ones.
        let next_seq = match (reserved, highest) {
            (None, 0) => chrono::Utc::now().timestamp_micros().max(1) as u64,
            (reserved, highest) => highest.max(reserved.unwrap_or(0)) + 1,
        };
        let spool = Spool {
            dir: dir.to_owned(),
            max_bytes,
            state: Mutex::new(State {
                segments,
                writer: None,
                acked,
                next_seq,
                reserved_to: next_seq - 1,
                dropped: 0,
                pending,
                acked_file: None,
            }),
        };
        spool.gc()?;
        Ok(spool)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take_seq(&self, s: &mut State) -> io::Result<u64> {
        let seq = s.next_seq;
        if seq > s.reserved_to {
            let to = seq + SEQ_BLOCK;
            write_u64(&self.dir.join("seq"), to)?;
            s.reserved_to = to;
        }
        s.next_seq += 1;
        Ok(seq)
    }

    /// Numbers the result (the agent's next seq) and writes it. Numbering here, under the same
    /// lock as the write, keeps the spool in seq order even when runs finish out of order.
    /// Durable against a crash of the agent (the OS holds the write), not against the machine
    /// losing power, which would also have lost the run itself.
    pub fn append(&self, result: &mut ProbeResult) -> io::Result<u64> {
        let mut s = self.lock();
        result.seq = self.take_seq(&mut s)?;
        let mut line = serde_json::to_vec(&*result).map_err(io::Error::other)?;
        line.push(b'\n');
        let rotate = s
            .segments
            .back()
            .is_none_or(|seg| seg.bytes >= SEGMENT_BYTES)
            || s.writer.is_none();
        if rotate {
            let path = self.dir.join(format!("seg-{:020}.jsonl", result.seq));
            let file = OpenOptions::new().create(true).append(true).open(&path)?;
            s.writer = Some(file);
            s.segments.push_back(Segment {
                first_seq: result.seq,
                last_seq: result.seq,
                path,
                bytes: 0,
                count: 0,
            });
        }
        if let Some(w) = s.writer.as_mut()
            && let Err(e) = w.write_all(&line)
        {
            // A torn line stays behind; the next result starts a new segment, not glued to it.
            s.writer = None;
            return Err(e);
        }
        if let Some(seg) = s.segments.back_mut() {
            seg.bytes += line.len() as u64;
            seg.count += 1;
            seg.last_seq = result.seq;
        }
        s.pending.push_back(result.clone());
        let seq = result.seq;
        drop(s);
        self.enforce_limit()?;
        Ok(seq)
    }

    /// Drops the oldest segments while the spool is over its limit.
    fn enforce_limit(&self) -> io::Result<()> {
        let mut s = self.lock();
        let mut total: u64 = s.segments.iter().map(|seg| seg.bytes).sum();
        while total > self.max_bytes && s.segments.len() > 1 {
            let Some(oldest) = s.segments.pop_front() else {
                break;
            };
            total -= oldest.bytes;
            let mut lost = 0;
            while s.pending.front().is_some_and(|r| r.seq <= oldest.last_seq) {
                s.pending.pop_front();
                lost += 1;
            }
            s.dropped += lost;
            if lost > 0 {
                tracing::warn!(
                    lost,
                    first_seq = oldest.first_seq,
                    "spool full: oldest results dropped"
                );
            }
            fs::remove_file(&oldest.path)?;
        }
        Ok(())
    }

    /// Up to `max` unacknowledged results, oldest first.
    pub fn peek(&self, max: usize) -> Vec<ProbeResult> {
        self.lock().pending.iter().take(max).cloned().collect()
    }

    /// Marks everything up to `seq` acknowledged and deletes segments no longer needed.
    pub fn ack(&self, seq: u64) -> io::Result<()> {
        {
            let mut s = self.lock();
            if seq <= s.acked {
                return Ok(());
            }
            self.write_acked(&mut s, seq)?;
            s.acked = seq;
            while s.pending.front().is_some_and(|r| r.seq <= seq) {
                s.pending.pop_front();
            }
        }
        self.gc()
    }

    /// Overwrites `acked` in place with a fixed-width number: one write, where a new file
    /// and a rename per push cost a twentieth of a busy agent's CPU. A crash of the agent
    /// cannot tear a 20-byte write within a page; a value left behind is at worst older, and
    /// the collector drops what it is sent twice.
    fn write_acked(&self, s: &mut State, seq: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let file = match s.acked_file.take() {
            Some(f) => f,
            None => OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(self.dir.join("acked"))?,
        };
        file.write_all_at(format!("{seq:020}").as_bytes(), 0)?;
        s.acked_file = Some(file);
        Ok(())
    }

    fn gc(&self) -> io::Result<()> {
        let mut s = self.lock();
        let acked = s.acked;
        // Keep the segment being written to.
        while s.segments.len() > 1 && s.segments.front().is_some_and(|seg| seg.last_seq <= acked) {
            if let Some(seg) = s.segments.pop_front() {
                fs::remove_file(&seg.path)?;
            }
        }
        if s.segments.len() == 1
            && s.segments
                .front()
                .is_some_and(|seg| seg.last_seq <= acked && seg.bytes >= SEGMENT_BYTES)
            && let Some(seg) = s.segments.pop_front()
        {
            s.writer = None;
            fs::remove_file(&seg.path)?;
        }
        Ok(())
    }

    /// (results waiting, bytes on disk, results dropped since start).
    pub fn depth(&self) -> (u64, u64, u64) {
        let s = self.lock();
        (
            s.pending.len() as u64,
            s.segments.iter().map(|seg| seg.bytes).sum(),
            s.dropped,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_model::probe::Outcome;

    fn result(seq: u64) -> ProbeResult {
        ProbeResult {
            check: "c".into(),
            region: "r".into(),
            agent: "a".into(),
            seq,
            started_at_us: 0,
            outcome: Outcome::Ok,
            duration_us: 1,
            steps: vec![],
            confirmation: false,
        }
    }

    #[test]
    fn replays_in_order_after_a_restart_and_never_reuses_a_seq() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 30).unwrap();
        let seqs: Vec<u64> = (0..5)
            .map(|_| spool.append(&mut result(0)).unwrap())
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] + 1 == w[1]));
        spool.ack(seqs[1]).unwrap();
        drop(spool);
        let spool = Spool::open(dir.path(), 1 << 30).unwrap();
        let pending: Vec<u64> = spool.peek(100).iter().map(|r| r.seq).collect();
        assert_eq!(pending, seqs[2..]);
        assert!(
            spool.append(&mut result(0)).unwrap() > seqs[4],
            "numbers are never reused"
        );
        assert_eq!(spool.depth().0, 4);
    }

    /// An `acked` written by an agent of before (a whole file, unpadded) is read, then
    /// overwritten in place without a digit of the old value left behind.
    #[test]
    fn an_acked_file_from_before_is_read_and_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 30).unwrap();
        let seqs: Vec<u64> = (0..3)
            .map(|_| spool.append(&mut result(0)).unwrap())
            .collect();
        drop(spool);
        fs::write(dir.path().join("acked"), format!("{}\n", seqs[0])).unwrap();
        let spool = Spool::open(dir.path(), 1 << 30).unwrap();
        let pending: Vec<u64> = spool.peek(100).iter().map(|r| r.seq).collect();
        assert_eq!(pending, seqs[1..]);
        spool.ack(seqs[1]).unwrap();
        drop(spool);
        assert_eq!(read_u64(&dir.path().join("acked")).unwrap(), Some(seqs[1]));
        let spool = Spool::open(dir.path(), 1 << 30).unwrap();
        let pending: Vec<u64> = spool.peek(100).iter().map(|r| r.seq).collect();
        assert_eq!(pending, seqs[2..]);
    }

    #[test]
    fn a_spool_with_no_history_numbers_from_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 1 << 30).unwrap();
        let before = chrono::Utc::now().timestamp_micros() as u64;
        let seq = spool.append(&mut result(0)).unwrap();
        assert!(
            seq + 10_000_000 >= before,
            "a wiped spool never reuses an old agent's numbers"
        );
    }

    #[test]
    fn drops_the_oldest_past_its_limit_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 600 * 1024).unwrap();
        for _ in 0..20_000 {
            spool.append(&mut result(0)).unwrap();
        }
        let (waiting, bytes, dropped) = spool.depth();
        assert!(bytes <= 600 * 1024 + SEGMENT_BYTES, "{bytes}");
        assert!(dropped > 0);
        assert_eq!(waiting + dropped, 20_000);
        let pending = spool.peek(usize::MAX);
        assert_eq!(pending.len() as u64, waiting);
        let first = pending.first().unwrap().seq - dropped;
        assert_eq!(
            pending.last().unwrap().seq,
            first + 19_999,
            "the newest are kept"
        );
        assert!(pending.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
    }
}

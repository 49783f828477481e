//! Results and rollups in an embedded SQLite database: nothing to install, and crash-safe.
//! SQLite was chosen over a key-value store because its write-ahead log with
//! `synchronous = FULL` makes a committed batch survive a crash of the process or the
//! machine, it is the most tested embedded store there is, and the collector's reads (a
//! check's results by time, rollups by check and time) are plain SQL over an index.
//! A batch is acknowledged only after its transaction has committed.
//!
//! Check, region and agent names are stored once each and referred to by number, and a
//! result's detail is kept compact (`row.rs`): raw results are most of the file.
//!
//! Once their hour has passed, raw results move into compressed blocks per check, region and
//! hour (`blocks.rs`, `store/block.rs`): a tenth of the bytes of a row each.
//!
//! Results are indexed by start time, not by check and time: the results of one moment
//! arrive together, so each commit appends to the same few index pages (a per-check index
//! would touch a page per check in every commit, and the write-ahead log would carry each of
//! them). The rollup pass reads all checks' results of a time range at once anyway.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError, mpsc};

use lookout_model::latency::Sparse;
use lookout_model::probe::{ProbeResult, Verdict};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::row::{self, Columns};
use super::{
    Bucket, CheckRollup, LoadedRollups, MaintenanceChange, NewResults, ResultFilter, ResultStore,
    Retention, StoreError, Stored,
};
use lookout_model::read::Maintenance;

mod blocks;
mod names;
mod records;
mod rollups;
mod schema;

use names::{Kind, Names};
use schema::{
    SCHEMA, SCHEMA_VERSION, flags, migrate_from_3, migrate_from_4, migrate_from_5,
    start_checkpoints,
};

struct Inner {
    conn: Connection,
    names: Names,
}

pub struct SqliteStore {
    path: Option<PathBuf>,
    inner: Mutex<Inner>,
    /// Where compaction reads (a file's second connection), so that it never holds `inner`
    /// while it sorts; `None` in memory.
    reader: Option<Mutex<Connection>>,
    compacting: Mutex<()>,
    /// Results started before this may be in blocks (`blocks.rs`).
    sealed_before: AtomicI64,
    count: AtomicUsize,
    /// Dropped with the store, which ends the checkpoint thread.
    _checkpoints: Option<mpsc::Sender<()>>,
}

fn open_error(path: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Open(format!("{path}: {e}"))
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn read_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Read(e.to_string())
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let shown = path.display().to_string();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| open_error(&shown, e))?;
        }
        let conn = Connection::open_with_flags(path, flags()).map_err(|e| open_error(&shown, e))?;
        let mut store = Self::setup(conn, &shown, Some(path.to_owned()))?;
        store
            .lock()
            .conn
            .execute_batch("PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;")
            .map_err(|e| open_error(&shown, e))?;
        store._checkpoints = Some(start_checkpoints(path)?);
        let reader =
            Connection::open_with_flags(path, flags()).map_err(|e| open_error(&shown, e))?;
        reader
            .execute_batch("PRAGMA busy_timeout = 5000; PRAGMA cache_size = -16384;")
            .map_err(|e| open_error(&shown, e))?;
        store.reader = Some(Mutex::new(reader));
        Ok(store)
    }

    /// A store that lives as long as the value: for tests and trying things out.
    pub fn in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(|e| open_error(":memory:", e))?;
        Self::setup(conn, ":memory:", None)
    }

    fn setup(conn: Connection, shown: &str, path: Option<PathBuf>) -> Result<Self, StoreError> {
        // Every commit walks the whole page cache (SQLite truncates it at the end of a
        // transaction), so it is kept moderate: ingest appends, it does not need many pages.
        let pragmas = "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA busy_timeout = 5000;
             PRAGMA cache_size = -16384;";
        conn.execute_batch(pragmas)
            .and_then(|()| conn.execute_batch(SCHEMA))
            .map_err(|e| {
                open_error(
                    shown,
                    format!("{e} (is it a Lookout store? a file left by a crash is recovered, any other file is refused)"),
                )
            })?;
        let version: Option<i64> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| open_error(shown, e))?;
        match version {
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                    params![SCHEMA_VERSION],
                )
                .map_err(|e| open_error(shown, e))?;
            }
            Some(SCHEMA_VERSION) => {}
            Some(5) => migrate_from_5(&conn).map_err(|e| open_error(shown, e))?,
            Some(4) => migrate_from_4(&conn)
                .and_then(|()| migrate_from_5(&conn))
                .map_err(|e| open_error(shown, e))?,
            Some(3) => migrate_from_3(&conn)
                .and_then(|()| migrate_from_4(&conn))
                .and_then(|()| migrate_from_5(&conn))
                .map_err(|e| open_error(shown, e))?,
            Some(other) => {
                return Err(open_error(
                    shown,
                    format!(
                        "written by store schema version {other}; this Lookout reads version {SCHEMA_VERSION} (move the file away to start afresh)"
                    ),
                ));
            }
        }
        let count: i64 = conn
            .query_row("SELECT COUNT(*) FROM results", [], |r| r.get(0))
            .and_then(|rows: i64| Ok(rows + blocks::held(&conn)?))
            .map_err(|e| open_error(shown, e))?;
        let sealed_before = blocks::sealed_before(&conn).map_err(|e| open_error(shown, e))?;
        let mut names = Names::default();
        {
            let mut stmt = conn
                .prepare("SELECT id, kind, name FROM names")
                .map_err(|e| open_error(shown, e))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, u8>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(|e| open_error(shown, e))?;
            for (id, kind, name) in rows {
                if let Some(ids) = names.ids.get_mut(usize::from(kind)) {
                    ids.insert(name.clone(), id);
                }
                names.names.insert(id, name);
            }
        }
        Ok(SqliteStore {
            path,
            inner: Mutex::new(Inner { conn, names }),
            reader: None,
            compacting: Mutex::new(()),
            sealed_before: AtomicI64::new(sealed_before),
            count: AtomicUsize::new(usize::try_from(count).unwrap_or(0)),
            _checkpoints: None,
        })
    }

    fn sealed(&self) -> i64 {
        self.sealed_before.load(Ordering::Acquire)
    }

    /// Copies the whole write-ahead log into the file and empties it, waiting for readers:
    /// for measuring what the file itself holds (`lookout bench collector`). `false` when
    /// another checkpoint (the store's own thread) held it off: the log is then not empty, and
    /// the caller tries again.
    pub fn checkpoint(&self) -> Result<bool, StoreError> {
        // The row is (busy, frames in the log, frames copied in); busy says SQLite gave up.
        self.lock()
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|busy| busy == 0)
            .map_err(unavailable)
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One write, all or nothing, in a transaction that takes the write lock at once. When it
    /// fails, the names it interned are forgotten: the rows that named them were never written.
    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>, &mut Names) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut inner = self.lock();
        let Inner { conn, names } = &mut *inner;
        let last_name = names.last_id();
        let outcome = (|| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let out = f(&tx, names)?;
            tx.commit().map_err(unavailable)?;
            Ok(out)
        })();
        if outcome.is_err() {
            names.forget_after(last_name);
        }
        outcome
    }
}

fn insert_batch(
    tx: &Transaction<'_>,
    names: &mut Names,
    results: &[ProbeResult],
    sealed_before: i64,
) -> Result<Vec<bool>, StoreError> {
    let mut inserted = Vec::with_capacity(results.len());
    // A result of a span already compacted may be a replay of one its block holds.
    let old: Vec<&ProbeResult> = results
        .iter()
        .filter(|r| r.started_at_us < sealed_before)
        .collect();
    let replayed = if old.is_empty() {
        Default::default()
    } else {
        blocks::replayed(tx, names, &old)?
    };
    let mut stmt = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO results (agent, seq, check_id, region, started_us, ok, duration_us, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(unavailable)?;
    for r in results {
        if r.started_at_us < sealed_before && replayed.contains(&(r.agent.clone(), r.seq)) {
            inserted.push(false);
            continue;
        }
        let body = row::encode(r).map_err(unavailable)?;
        let agent = names
            .intern(tx, Kind::Agent, &r.agent)
            .map_err(unavailable)?;
        let check = names
            .intern(tx, Kind::Check, &r.check)
            .map_err(unavailable)?;
        let region = names
            .intern(tx, Kind::Region, &r.region)
            .map_err(unavailable)?;
        let n = stmt
            .execute(params![
                agent,
                i64::try_from(r.seq).map_err(unavailable)?,
                check,
                region,
                r.started_at_us,
                verdict_code(r.outcome.verdict()),
                i64::try_from(r.duration_us).map_err(unavailable)?,
                body
            ])
            .map_err(unavailable)?;
        inserted.push(n == 1);
    }
    Ok(inserted)
}

/// The columns a whole result is read back from, in the order of [`ResultRow`].
const RESULT_COLUMNS: &str = "agent, seq, check_id, region, started_us, duration_us, body";

type ResultRow = (i64, i64, i64, i64, i64, i64, Vec<u8>);

fn result_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ResultRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn decode_result(names: &Names, row: ResultRow) -> Result<ProbeResult, StoreError> {
    let (agent, seq, check, region, started, duration, body) = row;
    let columns = Columns {
        check: names.name(check),
        region: names.name(region),
        agent: names.name(agent),
        seq: u64::try_from(seq).unwrap_or(0),
        started_at_us: started,
        duration_us: u64::try_from(duration).unwrap_or(0),
    };
    row::decode(columns, &body).map_err(read_error)
}

/// Every row of a query, each made into a `T` by `row`.
fn rows<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.query_map(params, row)?.collect())
        .map_err(read_error)
}

/// Results started in `[from, to)`, of one check or all, through the time index, each handed to
/// `visit` as it is read: blocks, then rows, so not by start time.
fn visit_observations(
    inner: &Inner,
    sealed_before: i64,
    check: Option<i64>,
    from_us: i64,
    to_us: i64,
    visit: &mut dyn FnMut(i64, Stored),
) -> Result<(), StoreError> {
    if from_us < sealed_before {
        blocks::visit_observations(inner, check, from_us, to_us, visit)?;
    }
    let mut stmt = inner
        .conn
        .prepare_cached(
            "SELECT check_id, region, started_us, ok, duration_us FROM results INDEXED BY results_by_time
             WHERE started_us >= ?2 AND started_us < ?3 AND (?1 IS NULL OR check_id = ?1)",
        )
        .map_err(read_error)?;
    let mut rows = stmt
        .query(params![check, from_us, to_us])
        .map_err(read_error)?;
    while let Some(r) = rows.next().map_err(read_error)? {
        let (check, region, start_us, ok, duration_us) = (|| {
            Ok::<_, rusqlite::Error>((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })()
        .map_err(read_error)?;
        visit(
            check,
            Stored {
                region: inner.names.name(region),
                start_us,
                verdict: verdict_of(ok),
                duration_us,
            },
        );
    }
    Ok(())
}

/// The `results.ok` column: 0 failed (which `failures` selects, as before `degraded`
/// existed), 1 passed, 2 passed degraded.
fn verdict_code(v: Verdict) -> i64 {
    match v {
        Verdict::Fail => 0,
        Verdict::Ok => 1,
        Verdict::Degraded => 2,
    }
}

fn verdict_of(code: i64) -> Verdict {
    match code {
        0 => Verdict::Fail,
        2 => Verdict::Degraded,
        _ => Verdict::Ok,
    }
}

/// [`visit_observations`] collected by start time.
fn read_observations(
    inner: &Inner,
    sealed_before: i64,
    check: Option<i64>,
    from_us: i64,
    to_us: i64,
) -> Result<Vec<(i64, Stored)>, StoreError> {
    let mut out = Vec::new();
    visit_observations(inner, sealed_before, check, from_us, to_us, &mut |c, o| {
        out.push((c, o));
    })?;
    // Blocks and rows each come by start time; a late row may start before a block's end.
    out.sort_by_key(|(_, o)| o.start_us);
    Ok(out)
}

impl SqliteStore {
    fn insert_at(
        &self,
        batches: &[&[ProbeResult]],
        position: Option<u64>,
    ) -> Result<Vec<Vec<bool>>, StoreError> {
        // Nothing is acknowledged before this returns: the batches are in the log, synced.
        let sealed_before = self.sealed_before.load(Ordering::Acquire);
        let inserted = self.write(|tx, names| {
            let inserted = batches
                .iter()
                .map(|batch| insert_batch(tx, names, batch, sealed_before))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(p) = position {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('log_applied', ?1)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    params![i64::try_from(p).unwrap_or(i64::MAX)],
                )
                .map_err(unavailable)?;
            }
            Ok(inserted)
        })?;
        let new = inserted.iter().flatten().filter(|n| **n).count();
        self.count.fetch_add(new, Ordering::Relaxed);
        Ok(inserted)
    }
}

impl ResultStore for SqliteStore {
    fn insert_many(&self, batches: &[&[ProbeResult]]) -> Result<Vec<Vec<bool>>, StoreError> {
        self.insert_at(batches, None)
    }

    fn insert_applied(
        &self,
        batches: &[&[ProbeResult]],
        position: u64,
    ) -> Result<Vec<Vec<bool>>, StoreError> {
        self.insert_at(batches, Some(position))
    }

    fn applied(&self) -> Result<u64, StoreError> {
        let inner = self.lock();
        let held: Option<i64> = inner
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'log_applied'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| StoreError::Read(e.to_string()))?;
        Ok(held.map_or(0, |v| u64::try_from(v).unwrap_or(0)))
    }

    fn query(&self, f: &ResultFilter) -> Result<Vec<ProbeResult>, StoreError> {
        let inner = self.lock();
        let limit = i64::try_from(f.limit).unwrap_or(i64::MAX);
        // A name never seen matches nothing (-1 is no id).
        let id = |kind, name: &Option<String>| {
            name.as_deref()
                .map(|n| inner.names.id(kind, n).unwrap_or(-1))
        };
        let rows = rows(
            &inner.conn,
            &format!(
                "SELECT {RESULT_COLUMNS} FROM results
                 WHERE (?1 IS NULL OR check_id = ?1) AND (?2 IS NULL OR region = ?2) AND (?3 IS NULL OR agent = ?3)
                 ORDER BY id DESC LIMIT ?4"
            ),
            params![
                id(Kind::Check, &f.check),
                id(Kind::Region, &f.region),
                id(Kind::Agent, &f.agent),
                limit
            ],
            result_row,
        )?;
        let mut out = Vec::with_capacity(rows.len());
        if rows.len() < f.limit && self.sealed() > i64::MIN {
            out = blocks::newest(
                &inner,
                id(Kind::Check, &f.check),
                id(Kind::Region, &f.region),
                f.agent.as_deref(),
                f.limit - rows.len(),
            )?;
        }
        for row in rows.into_iter().rev() {
            out.push(decode_result(&inner.names, row)?);
        }
        Ok(out)
    }

    fn observations(
        &self,
        check: &str,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<Stored>, StoreError> {
        let inner = self.lock();
        let Some(check) = inner.names.id(Kind::Check, check) else {
            return Ok(Vec::new());
        };
        Ok(
            read_observations(&inner, self.sealed(), Some(check), from_us, to_us)?
                .into_iter()
                .map(|(_, o)| o)
                .collect(),
        )
    }

    fn failures(
        &self,
        check: &str,
        from_us: i64,
        to_us: i64,
        limit: usize,
    ) -> Result<Vec<ProbeResult>, StoreError> {
        let inner = self.lock();
        let Some(check_id) = inner.names.id(Kind::Check, check) else {
            return Ok(Vec::new());
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = rows(
            &inner.conn,
            &format!(
                "SELECT {RESULT_COLUMNS} FROM results INDEXED BY results_by_time
                 WHERE started_us >= ?2 AND started_us < ?3 AND check_id = ?1 AND ok = 0
                 ORDER BY started_us LIMIT ?4"
            ),
            params![check_id, from_us, to_us, limit],
            result_row,
        )?;
        let mut out = if from_us < self.sealed() {
            blocks::failures(&inner, check_id, from_us, to_us)?
        } else {
            Vec::new()
        };
        for row in rows {
            out.push(decode_result(&inner.names, row)?);
        }
        out.sort_by_key(|r| r.started_at_us);
        out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(out)
    }

    fn visit_observations(
        &self,
        from_us: i64,
        to_us: i64,
        visit: &mut dyn FnMut(&str, Stored),
    ) -> Result<(), StoreError> {
        let inner = self.lock();
        visit_observations(
            &inner,
            self.sealed(),
            None,
            from_us,
            to_us,
            &mut |check, o| {
                visit(inner.names.name_ref(check), o);
            },
        )
    }

    fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    fn stored_since(&self, after_id: i64) -> Result<NewResults, StoreError> {
        let inner = self.lock();
        // Ids start again at 1 only after retention emptied the table: all is new then.
        let max: i64 = inner
            .conn
            .query_row("SELECT COALESCE(MAX(id), 0) FROM results", [], |r| r.get(0))
            .map_err(read_error)?;
        let after_id = if max < after_id { 0 } else { after_id };
        let rows = rows(
            &inner.conn,
            "SELECT check_id, MIN(started_us), MAX(id) FROM results WHERE id > ?1 GROUP BY check_id",
            params![after_id],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            },
        )?;
        let mut out = NewResults {
            max_id: after_id,
            earliest: BTreeMap::new(),
        };
        for (check, earliest, max_id) in rows {
            out.max_id = out.max_id.max(max_id);
            out.earliest.insert(inner.names.name(check), earliest);
        }
        Ok(out)
    }

    fn hists(
        &self,
        check: &str,
        bucket: Bucket,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<(String, i64, Sparse)>, StoreError> {
        rollups::hists(self, check, bucket, from_us, to_us)
    }

    fn region_hists(
        &self,
        check: &str,
        region: &str,
        bucket: Bucket,
        from_us: i64,
        to_us: i64,
    ) -> Result<BTreeMap<i64, Sparse>, StoreError> {
        rollups::region_hists(self, check, region, bucket, from_us, to_us)
    }

    fn save_rollups(&self, rolled_id: i64, checks: &[CheckRollup]) -> Result<(), StoreError> {
        rollups::save(self, rolled_id, checks)
    }

    fn load_rollups(&self, hours_since_us: i64) -> Result<LoadedRollups, StoreError> {
        rollups::load(self, hours_since_us)
    }

    fn prune(&self, r: Retention, max_rows: usize) -> Result<usize, StoreError> {
        rollups::prune(self, r, max_rows)
    }

    fn compact(&self, before_us: i64) -> Result<usize, StoreError> {
        blocks::compact(self, before_us)
    }

    fn maintenances(&self) -> Result<Vec<Maintenance>, StoreError> {
        records::maintenances(self)
    }

    fn change_maintenance(
        &self,
        change: MaintenanceChange<'_>,
        dirty: &[(String, i64)],
    ) -> Result<i64, StoreError> {
        records::change_maintenance(self, change, dirty)
    }

    fn slos(&self) -> Result<BTreeMap<String, (String, i64)>, StoreError> {
        records::slos(self)
    }

    fn put_slos(
        &self,
        slos: &[(String, String, i64)],
        events: &[lookout_model::event::Event],
    ) -> Result<(), StoreError> {
        records::put_slos(self, slos, events)
    }

    fn insert_events(&self, events: &[lookout_model::event::Event]) -> Result<(), StoreError> {
        records::insert_events(self, events)
    }

    fn events(
        &self,
        after_id: i64,
        since_us: i64,
        limit: usize,
    ) -> Result<Vec<lookout_model::event::StoredEvent>, StoreError> {
        records::events(self, after_id, since_us, limit)
    }

    fn size_bytes(&self) -> u64 {
        let Some(path) = &self.path else { return 0 };
        let mut total = 0;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            total += std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        }
        total
    }
}

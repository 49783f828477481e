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
//! Results are indexed by start time, not by check and time: the results of one moment
//! arrive together, so each commit appends to the same few index pages (a per-check index
//! would touch a page per check in every commit, and the write-ahead log would carry each of
//! them). The rollup pass reads all checks' results of a time range at once anyway.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError, mpsc};
use std::time::Duration;

use lookout_model::latency::{Accumulator, Sparse};
use lookout_model::probe::ProbeResult;
use lookout_model::sla::Tally;
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};

use super::row::{self, Columns};
use super::{
    Bucket, CheckRollup, Coverage, LoadedCheck, LoadedRollups, MaintenanceChange, NewResults,
    ResultFilter, ResultStore, Retention, StoreError, Stored,
};
use lookout_model::read::Maintenance;

/// Bumped when the layout changes; a store written by a newer version is refused by name,
/// one written by an older one is migrated (`migrate`).
const SCHEMA_VERSION: i64 = 4;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time_us INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS events_by_time ON events (time_us);
    CREATE TABLE IF NOT EXISTS names (
        id INTEGER PRIMARY KEY,
        kind INTEGER NOT NULL,
        name TEXT NOT NULL,
        UNIQUE (kind, name)
    );
    CREATE TABLE IF NOT EXISTS results (
        id INTEGER PRIMARY KEY,
        agent INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        check_id INTEGER NOT NULL,
        region INTEGER NOT NULL,
        started_us INTEGER NOT NULL,
        ok INTEGER NOT NULL,
        duration_us INTEGER NOT NULL,
        body BLOB NOT NULL,
        UNIQUE (agent, seq)
    );
    CREATE INDEX IF NOT EXISTS results_by_time ON results (started_us);
    CREATE TABLE IF NOT EXISTS coverage (
        check_id INTEGER PRIMARY KEY,
        covered_from INTEGER NOT NULL,
        frontier INTEGER NOT NULL,
        dirty_from INTEGER
    );
    CREATE TABLE IF NOT EXISTS bad_minutes (
        check_id INTEGER NOT NULL,
        minute INTEGER NOT NULL,
        down_us INTEGER NOT NULL,
        no_data_us INTEGER NOT NULL,
        maintenance_us INTEGER NOT NULL DEFAULT 0,
        maintenance_down_us INTEGER NOT NULL DEFAULT 0,
        maintenance_no_data_us INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (check_id, minute)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS maintenance (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        body TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS slos (
        check_name TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        since_us INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS hours (
        check_id INTEGER NOT NULL,
        region INTEGER NOT NULL,
        hour INTEGER NOT NULL,
        hist BLOB NOT NULL,
        PRIMARY KEY (check_id, hour, region)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS days (
        check_id INTEGER NOT NULL,
        region INTEGER NOT NULL,
        day INTEGER NOT NULL,
        hist BLOB NOT NULL,
        PRIMARY KEY (check_id, day, region)
    ) WITHOUT ROWID;";

#[derive(Clone, Copy)]
enum Kind {
    Check = 0,
    Region = 1,
    Agent = 2,
}

/// Names by number and numbers by name, as held in the `names` table. One map per kind, so
/// that a lookup borrows the name instead of building a key: ingest looks up three per result.
#[derive(Default)]
struct Names {
    ids: [HashMap<String, i64>; 3],
    names: HashMap<i64, String>,
}

struct Inner {
    conn: Connection,
    names: Names,
}

pub struct SqliteStore {
    path: Option<PathBuf>,
    inner: Mutex<Inner>,
    count: AtomicUsize,
    /// Dropped with the store, which ends the checkpoint thread.
    _checkpoints: Option<mpsc::Sender<()>>,
}

/// How often the log is copied into the database file, off the committing thread.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// Pages of log (4 KiB each) past which a checkpoint makes the log start over: 64 MiB.
const MAX_LOG_FRAMES: i64 = 16_384;

/// Our own connections are each used by one thread at a time (the store's mutex, the
/// checkpoint thread): SQLite's own locking would only cost time.
fn flags() -> OpenFlags {
    OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
}

/// Copies the write-ahead log into the database on its own connection and thread, so that a
/// commit never waits for a checkpoint (SQLite would otherwise run them in the committing
/// thread, every 4 MB of log).
fn start_checkpoints(path: &Path) -> Result<mpsc::Sender<()>, StoreError> {
    let shown = path.display().to_string();
    let conn = Connection::open_with_flags(path, flags()).map_err(|e| open_error(&shown, e))?;
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("lookout-checkpoint".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
                // A passive checkpoint never blocks a commit, but under steady ingest it never
                // catches the log's end either, and the log only starts over once one has. When
                // the log is long, a restarting checkpoint holds commits back for the moment it
                // takes to finish, and the log starts over.
                let frames: rusqlite::Result<i64> =
                    conn.query_row("PRAGMA wal_checkpoint(PASSIVE);", [], |r| r.get(1));
                let outcome = match frames {
                    Ok(n) if n > MAX_LOG_FRAMES => conn
                        .query_row("PRAGMA wal_checkpoint(RESTART);", [], |r| r.get::<_, i64>(0))
                        .map(|_| ()),
                    other => other.map(|_| ()),
                };
                if let Err(e) = outcome {
                    tracing::warn!(error = %e, "checkpoint failed; the log grows until the next one");
                }
            }
        })
        .map_err(|e| open_error(&shown, e))?;
    Ok(stop)
}

/// Version 4 keeps maintenance time in the rolled-up minutes (none before: zero), and the
/// maintenance and SLO tables, which `SCHEMA` has just made.
fn migrate_from_3(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "BEGIN IMMEDIATE;
         ALTER TABLE bad_minutes ADD COLUMN maintenance_us INTEGER NOT NULL DEFAULT 0;
         ALTER TABLE bad_minutes ADD COLUMN maintenance_down_us INTEGER NOT NULL DEFAULT 0;
         ALTER TABLE bad_minutes ADD COLUMN maintenance_no_data_us INTEGER NOT NULL DEFAULT 0;
         UPDATE meta SET value = 4 WHERE key = 'schema_version';
         COMMIT;",
    )
    .inspect_err(|_| {
        let _ = conn.execute_batch("ROLLBACK");
    })
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
            Some(3) => migrate_from_3(&conn).map_err(|e| open_error(shown, e))?,
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
            .map_err(|e| open_error(shown, e))?;
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
            count: AtomicUsize::new(usize::try_from(count).unwrap_or(0)),
            _checkpoints: None,
        })
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Names {
    /// The number of a name, adding it (inside the caller's transaction) when new.
    fn intern(&mut self, tx: &Transaction<'_>, kind: Kind, name: &str) -> rusqlite::Result<i64> {
        if let Some(id) = self.ids[kind as usize].get(name) {
            return Ok(*id);
        }
        tx.execute(
            "INSERT INTO names (kind, name) VALUES (?1, ?2)",
            params![kind as u8, name],
        )?;
        let id = tx.last_insert_rowid();
        self.ids[kind as usize].insert(name.to_owned(), id);
        self.names.insert(id, name.to_owned());
        Ok(id)
    }

    fn id(&self, kind: Kind, name: &str) -> Option<i64> {
        self.ids[kind as usize].get(name).copied()
    }

    fn name(&self, id: i64) -> String {
        self.names.get(&id).cloned().unwrap_or_default()
    }

    /// Forgets names added by a transaction that rolled back.
    fn forget_after(&mut self, last_kept: i64) {
        for ids in &mut self.ids {
            ids.retain(|_, id| *id <= last_kept);
        }
        self.names.retain(|id, _| *id <= last_kept);
    }

    fn last_id(&self) -> i64 {
        self.names.keys().copied().max().unwrap_or(0)
    }
}

fn insert_batch(
    tx: &Transaction<'_>,
    names: &mut Names,
    results: &[ProbeResult],
) -> Result<Vec<bool>, StoreError> {
    let mut inserted = Vec::with_capacity(results.len());
    let mut stmt = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO results (agent, seq, check_id, region, started_us, ok, duration_us, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(unavailable)?;
    for r in results {
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
                r.outcome.is_ok(),
                i64::try_from(r.duration_us).map_err(unavailable)?,
                body
            ])
            .map_err(unavailable)?;
        inserted.push(n == 1);
    }
    Ok(inserted)
}

fn write_rollups(
    tx: &Transaction<'_>,
    names: &mut Names,
    rolled_id: i64,
    checks: &[CheckRollup],
) -> rusqlite::Result<()> {
    for c in checks {
        let check = names.intern(tx, Kind::Check, &c.check)?;
        if let Some(cov) = c.coverage {
            tx.prepare_cached(
                "INSERT INTO coverage (check_id, covered_from, frontier, dirty_from) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (check_id) DO UPDATE SET covered_from = ?2, frontier = ?3, dirty_from = ?4",
            )?
            .execute(params![check, cov.covered_from, cov.frontier, cov.dirty_from])?;
        }
        let (from, to) = c.minutes;
        tx.prepare_cached(
            "DELETE FROM bad_minutes WHERE check_id = ?1 AND minute >= ?2 AND minute < ?3",
        )?
        .execute(params![check, from, to])?;
        let mut put = tx.prepare_cached(
            "INSERT OR REPLACE INTO bad_minutes (check_id, minute, down_us, no_data_us,
             maintenance_us, maintenance_down_us, maintenance_no_data_us)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (minute, t) in &c.bad_minutes {
            put.execute(params![
                check,
                minute,
                t.down_us,
                t.no_data_us,
                t.maintenance_us,
                t.maintenance_down_us,
                t.maintenance_no_data_us
            ])?;
        }
        for (table, rows) in [("hours", &c.hours), ("days", &c.days)] {
            let column = if table == "hours" { "hour" } else { "day" };
            let mut put = tx.prepare_cached(&format!(
                "INSERT OR REPLACE INTO {table} (check_id, region, {column}, hist) VALUES (?1, ?2, ?3, ?4)"
            ))?;
            let mut delete = tx.prepare_cached(&format!(
                "DELETE FROM {table} WHERE check_id = ?1 AND region = ?2 AND {column} = ?3"
            ))?;
            for (region, at, hist) in rows {
                let region = names.intern(tx, Kind::Region, region)?;
                if hist.is_empty() {
                    delete.execute(params![check, region, at])?;
                } else {
                    put.execute(params![check, region, at, hist.encode()])?;
                }
            }
        }
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('rolled_id', ?1)
         ON CONFLICT (key) DO UPDATE SET value = ?1",
        params![rolled_id],
    )?;
    Ok(())
}

/// Sparse histograms of many regions merged into one per (check, time) bucket, from rows
/// that come ordered by check and time: one dense accumulator at a time, never one per bucket.
#[derive(Default)]
struct MergeByTime {
    out: BTreeMap<i64, BTreeMap<i64, Sparse>>,
    current: Option<(i64, i64, Accumulator)>,
}

impl MergeByTime {
    fn push(&mut self, check: i64, at: i64, blob: &[u8]) {
        let Some(s) = Sparse::decode(blob) else {
            return;
        };
        match &mut self.current {
            Some((c, t, acc)) if *c == check && *t == at => acc.add(&s),
            _ => {
                self.flush();
                let mut acc = Accumulator::new();
                acc.add(&s);
                self.current = Some((check, at, acc));
            }
        }
    }

    fn flush(&mut self) {
        if let Some((c, t, acc)) = self.current.take() {
            self.out.entry(c).or_default().insert(t, acc.to_sparse());
        }
    }

    fn finish(mut self) -> BTreeMap<i64, BTreeMap<i64, Sparse>> {
        self.flush();
        self.out
    }
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

/// Results started in `[from, to)`, of one check or all, by start time, through the time index.
fn read_observations(
    inner: &Inner,
    check: Option<i64>,
    from_us: i64,
    to_us: i64,
) -> Result<Vec<(i64, Stored)>, StoreError> {
    let rows = rows(
            &inner.conn,
            "SELECT check_id, region, started_us, ok, duration_us FROM results INDEXED BY results_by_time
             WHERE started_us >= ?2 AND started_us < ?3 AND (?1 IS NULL OR check_id = ?1)
             ORDER BY started_us",
            params![check, from_us, to_us],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            },
        )?;
    Ok(rows
        .into_iter()
        .map(|(check, region, start_us, ok, duration_us)| {
            (
                check,
                Stored {
                    region: inner.names.name(region),
                    start_us,
                    ok,
                    duration_us,
                },
            )
        })
        .collect())
}

impl ResultStore for SqliteStore {
    fn insert_many(&self, batches: &[&[ProbeResult]]) -> Result<Vec<Vec<bool>>, StoreError> {
        let mut inner = self.lock();
        let Inner { conn, names } = &mut *inner;
        let last_name = names.last_id();
        let outcome = (|| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let mut inserted = Vec::with_capacity(batches.len());
            for batch in batches {
                inserted.push(insert_batch(&tx, names, batch)?);
            }
            // Nothing is acknowledged before this returns: the batches are in the log, synced.
            tx.commit().map_err(unavailable)?;
            Ok(inserted)
        })();
        match outcome {
            Ok(inserted) => {
                let new = inserted.iter().flatten().filter(|n| **n).count();
                self.count.fetch_add(new, Ordering::Relaxed);
                Ok(inserted)
            }
            Err(e) => {
                names.forget_after(last_name);
                Err(e)
            }
        }
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
        rows.into_iter()
            .rev()
            .map(|row| decode_result(&inner.names, row))
            .collect()
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
        Ok(read_observations(&inner, Some(check), from_us, to_us)?
            .into_iter()
            .map(|(_, o)| o)
            .collect())
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
        rows.into_iter()
            .map(|row| decode_result(&inner.names, row))
            .collect()
    }

    fn observations_all(
        &self,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<(String, Stored)>, StoreError> {
        let inner = self.lock();
        Ok(read_observations(&inner, None, from_us, to_us)?
            .into_iter()
            .map(|(check, o)| (inner.names.name(check), o))
            .collect())
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

    fn hours(
        &self,
        check: &str,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<(String, i64, Sparse)>, StoreError> {
        let inner = self.lock();
        let Some(check) = inner.names.id(Kind::Check, check) else {
            return Ok(Vec::new());
        };
        let rows = rows(
            &inner.conn,
            "SELECT region, hour, hist FROM hours WHERE check_id = ?1 AND hour >= ?2 AND hour < ?3",
            params![check, from_us, to_us],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            },
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|(region, hour, blob)| {
                Sparse::decode(&blob).map(|s| (inner.names.name(region), hour, s))
            })
            .collect())
    }

    fn region_hists(
        &self,
        check: &str,
        region: &str,
        bucket: Bucket,
        from_us: i64,
        to_us: i64,
    ) -> Result<BTreeMap<i64, Sparse>, StoreError> {
        let inner = self.lock();
        let (Some(check), Some(region)) = (
            inner.names.id(Kind::Check, check),
            inner.names.id(Kind::Region, region),
        ) else {
            return Ok(BTreeMap::new());
        };
        let sql = match bucket {
            Bucket::Hour => {
                "SELECT hour, hist FROM hours WHERE check_id = ?1 AND hour >= ?2 AND hour < ?3 AND region = ?4"
            }
            Bucket::Day => {
                "SELECT day, hist FROM days WHERE check_id = ?1 AND day >= ?2 AND day < ?3 AND region = ?4"
            }
        };
        let rows = rows(
            &inner.conn,
            sql,
            params![check, from_us, to_us, region],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|(at, blob)| Sparse::decode(&blob).map(|s| (at, s)))
            .collect())
    }

    fn save_rollups(&self, rolled_id: i64, checks: &[CheckRollup]) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let Inner { conn, names } = &mut *inner;
        let last_name = names.last_id();
        let outcome = (|| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            write_rollups(&tx, names, rolled_id, checks).map_err(unavailable)?;
            tx.commit().map_err(unavailable)
        })();
        if outcome.is_err() {
            names.forget_after(last_name);
        }
        outcome
    }

    fn load_rollups(&self, hours_since_us: i64) -> Result<LoadedRollups, StoreError> {
        let inner = self.lock();
        let conn = &inner.conn;
        let rolled_id = conn
            .query_row("SELECT value FROM meta WHERE key = 'rolled_id'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(read_error)?
            .unwrap_or(0);
        let mut out = LoadedRollups {
            rolled_id,
            ..Default::default()
        };
        let name = |id: i64| inner.names.name(id);
        let mut checks: BTreeMap<i64, LoadedCheck> = BTreeMap::new();
        let coverage: Vec<(i64, i64, i64, Option<i64>)> = conn
            .prepare("SELECT check_id, covered_from, frontier, dirty_from FROM coverage")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect()
            })
            .map_err(read_error)?;
        for (check, covered_from, frontier, dirty_from) in coverage {
            checks.entry(check).or_default().coverage = Some(Coverage {
                covered_from,
                frontier,
                dirty_from,
            });
        }
        let bad: Vec<(i64, i64, Tally)> = conn
            .prepare(
                "SELECT check_id, minute, down_us, no_data_us, maintenance_us, maintenance_down_us,
                 maintenance_no_data_us FROM bad_minutes ORDER BY check_id, minute",
            )
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        Tally {
                            window_us: lookout_model::sla::MINUTE_US,
                            down_us: r.get(2)?,
                            no_data_us: r.get(3)?,
                            maintenance_us: r.get(4)?,
                            maintenance_down_us: r.get(5)?,
                            maintenance_no_data_us: r.get(6)?,
                        },
                    ))
                })?
                .collect()
            })
            .map_err(read_error)?;
        for (check, minute, tally) in bad {
            checks
                .entry(check)
                .or_default()
                .bad_minutes
                .push((minute, tally));
        }
        // Streamed: 400 days of histograms are far more than what they merge into.
        let read_hists =
            |sql: &str, since: i64| -> Result<BTreeMap<i64, BTreeMap<i64, Sparse>>, StoreError> {
                let mut merge = MergeByTime::default();
                let mut stmt = conn.prepare(sql).map_err(read_error)?;
                let mut rows = stmt.query(params![since]).map_err(read_error)?;
                while let Some(row) = rows.next().map_err(read_error)? {
                    let (check, at): (i64, i64) = (
                        row.get(0).map_err(read_error)?,
                        row.get(1).map_err(read_error)?,
                    );
                    let blob = row
                        .get_ref(2)
                        .map_err(read_error)?
                        .as_blob()
                        .map_err(read_error)?;
                    merge.push(check, at, blob);
                }
                Ok(merge.finish())
            };
        let days = read_hists(
            "SELECT check_id, day, hist FROM days WHERE day >= ?1 ORDER BY check_id, day",
            i64::MIN,
        )?;
        for (check, by_day) in days {
            checks.entry(check).or_default().days = by_day;
        }
        let hours = read_hists(
            "SELECT check_id, hour, hist FROM hours WHERE hour >= ?1 ORDER BY check_id, hour",
            hours_since_us,
        )?;
        for (check, by_hour) in hours {
            checks.entry(check).or_default().hours = by_hour;
        }
        out.checks = checks.into_iter().map(|(id, c)| (name(id), c)).collect();
        Ok(out)
    }

    fn prune(&self, r: Retention, max_rows: usize) -> Result<usize, StoreError> {
        let inner = self.lock();
        let conn = &inner.conn;
        let limit = i64::try_from(max_rows).unwrap_or(i64::MAX);
        let removed = conn
            .execute(
                // The newest row stays, so that ids never go back while the table has rows
                // (the rollups find new results by id).
                "DELETE FROM results WHERE id IN
                 (SELECT id FROM results INDEXED BY results_by_time WHERE started_us < ?1 LIMIT ?2)
                 AND id < (SELECT MAX(id) FROM results)",
                params![r.raw_before_us, limit],
            )
            .map_err(unavailable)?;
        conn.execute_batch("BEGIN IMMEDIATE")
            .and_then(|()| {
                conn.execute(
                    "DELETE FROM hours WHERE hour < ?1",
                    params![r.hours_before_us],
                )?;
                conn.execute(
                    "DELETE FROM days WHERE day < ?1",
                    params![r.rollups_before_us],
                )?;
                conn.execute(
                    "DELETE FROM bad_minutes WHERE minute < ?1",
                    params![r.rollups_before_us],
                )?;
                conn.execute(
                    "UPDATE coverage SET covered_from = MIN(frontier, ?1) WHERE covered_from < ?1",
                    params![r.rollups_before_us],
                )?;
                conn.execute_batch("COMMIT")
            })
            .map_err(|e| {
                let _ = conn.execute_batch("ROLLBACK");
                unavailable(e)
            })?;
        self.count
            .fetch_sub(removed.min(self.len()), Ordering::Relaxed);
        Ok(removed)
    }

    fn maintenances(&self) -> Result<Vec<Maintenance>, StoreError> {
        let inner = self.lock();
        let mut stmt = inner
            .conn
            .prepare("SELECT id, body FROM maintenance ORDER BY id")
            .map_err(read_error)?;
        let rows: Vec<(i64, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(read_error)?;
        rows.into_iter()
            .map(|(id, body)| {
                serde_json::from_str::<Maintenance>(&body)
                    .map(|m| Maintenance { id, ..m })
                    .map_err(|e| read_error(format!("maintenance {id}: {e}")))
            })
            .collect()
    }

    fn change_maintenance(
        &self,
        change: MaintenanceChange<'_>,
        dirty: &[(String, i64)],
    ) -> Result<i64, StoreError> {
        let mut inner = self.lock();
        let Inner { conn, names } = &mut *inner;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(unavailable)?;
        let id = match change {
            MaintenanceChange::Put(m) => {
                let body = serde_json::to_string(m).map_err(unavailable)?;
                if m.id > 0 {
                    tx.execute(
                        "UPDATE maintenance SET body = ?2 WHERE id = ?1",
                        params![m.id, body],
                    )
                    .map_err(unavailable)?;
                    m.id
                } else {
                    tx.execute("INSERT INTO maintenance (body) VALUES (?1)", params![body])
                        .map_err(unavailable)?;
                    tx.last_insert_rowid()
                }
            }
            MaintenanceChange::Delete(id) => {
                tx.execute("DELETE FROM maintenance WHERE id = ?1", params![id])
                    .map_err(unavailable)?;
                id
            }
        };
        // The minutes already rolled up that the change touches are rolled up again: marked
        // in the same transaction, so a crash right after cannot leave them as they were.
        for (check, from) in dirty {
            let Some(check_id) = names.id(Kind::Check, check) else {
                continue;
            };
            tx.execute(
                "UPDATE coverage SET dirty_from = MIN(COALESCE(dirty_from, ?2), ?2)
                 WHERE check_id = ?1 AND frontier > ?2",
                params![check_id, from],
            )
            .map_err(unavailable)?;
        }
        tx.commit().map_err(unavailable)?;
        Ok(id)
    }

    fn slos(&self) -> Result<BTreeMap<String, (String, i64)>, StoreError> {
        let inner = self.lock();
        let mut stmt = inner
            .conn
            .prepare("SELECT check_name, body, since_us FROM slos")
            .map_err(read_error)?;
        stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
            .and_then(|rows| rows.collect())
            .map_err(read_error)
    }

    fn put_slos(
        &self,
        slos: &[(String, String, i64)],
        events: &[lookout_model::event::Event],
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let tx = inner.conn.transaction().map_err(unavailable)?;
        for (check, body, since) in slos {
            tx.execute(
                "INSERT INTO slos (check_name, body, since_us) VALUES (?1, ?2, ?3)
                 ON CONFLICT (check_name) DO UPDATE SET body = ?2, since_us = ?3",
                params![check, body, since],
            )
            .map_err(unavailable)?;
        }
        for e in events {
            let body = serde_json::to_string(e).map_err(unavailable)?;
            tx.execute(
                "INSERT INTO events (time_us, body) VALUES (?1, ?2)",
                params![e.time_us, body],
            )
            .map_err(unavailable)?;
        }
        tx.commit().map_err(unavailable)
    }

    fn insert_events(&self, events: &[lookout_model::event::Event]) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let write = |e: rusqlite::Error| StoreError::Unavailable(e.to_string());
        let tx = inner.conn.transaction().map_err(write)?;
        for e in events {
            let body =
                serde_json::to_string(e).map_err(|e| StoreError::Unavailable(e.to_string()))?;
            tx.execute(
                "INSERT INTO events (time_us, body) VALUES (?1, ?2)",
                params![e.time_us, body],
            )
            .map_err(write)?;
        }
        tx.commit().map_err(write)
    }

    fn events(
        &self,
        after_id: i64,
        since_us: i64,
        limit: usize,
    ) -> Result<Vec<lookout_model::event::StoredEvent>, StoreError> {
        let inner = self.lock();
        let read = |e: rusqlite::Error| StoreError::Read(e.to_string());
        let mut stmt = inner
            .conn
            .prepare(
                "SELECT id, body FROM events WHERE id > ?1 AND time_us >= ?2 ORDER BY id LIMIT ?3",
            )
            .map_err(read)?;
        let rows = stmt
            .query_map(
                params![after_id, since_us, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
            )
            .map_err(read)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, body) = row.map_err(read)?;
            // A row this version cannot read is skipped, not fatal to every reader.
            if let Ok(event) = serde_json::from_str(&body) {
                out.push(lookout_model::event::StoredEvent { id, event });
            }
        }
        Ok(out)
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

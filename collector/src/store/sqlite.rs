//! Results in an embedded SQLite database: nothing to install, and crash-safe. SQLite was
//! chosen over a key-value store because its write-ahead log with `synchronous = FULL` makes a
//! committed batch survive a crash of the process or the machine, it is the most tested
//! embedded store there is, and the queries the collector needs (by check and time) are plain
//! SQL over an index. A batch is acknowledged only after its transaction has committed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use lookout_model::probe::ProbeResult;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{ResultFilter, ResultStore, StoreError, Stored};

/// Bumped when the layout changes; a store written by another version is refused by name.
const SCHEMA_VERSION: i64 = 1;

pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    count: AtomicUsize,
}

fn open_error(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Open(format!("{}: {e}", path.display()))
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| open_error(path, e))?;
        }
        let conn = Connection::open(path).map_err(|e| open_error(path, e))?;
        let setup = "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS results (
                 agent TEXT NOT NULL,
                 seq INTEGER NOT NULL,
                 check_name TEXT NOT NULL,
                 region TEXT NOT NULL,
                 started_us INTEGER NOT NULL,
                 ok INTEGER NOT NULL,
                 duration_us INTEGER NOT NULL,
                 body BLOB NOT NULL,
                 UNIQUE (agent, seq)
             );
             CREATE INDEX IF NOT EXISTS results_by_check_time ON results (check_name, started_us);";
        conn.execute_batch(setup).map_err(|e| {
            open_error(path, format!("{e} (is it a Lookout store? a file left by a crash is recovered, any other file is refused)"))
        })?;
        let version: Option<i64> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| open_error(path, e))?;
        match version {
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                    params![SCHEMA_VERSION],
                )
                .map_err(|e| open_error(path, e))?;
            }
            Some(SCHEMA_VERSION) => {}
            Some(other) => {
                return Err(open_error(
                    path,
                    format!(
                        "written by store schema version {other}; this Lookout reads version {SCHEMA_VERSION}"
                    ),
                ));
            }
        }
        let count: i64 = conn
            .query_row("SELECT COUNT(*) FROM results", [], |r| r.get(0))
            .map_err(|e| open_error(path, e))?;
        Ok(SqliteStore {
            path: path.to_owned(),
            conn: Mutex::new(conn),
            count: AtomicUsize::new(count as usize),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl ResultStore for SqliteStore {
    fn insert(&self, results: &[ProbeResult]) -> Result<Vec<bool>, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(unavailable)?;
        let mut inserted = Vec::with_capacity(results.len());
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO results (agent, seq, check_name, region, started_us, ok, duration_us, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(unavailable)?;
            for r in results {
                let body =
                    serde_json::to_vec(r).map_err(|e| StoreError::Unavailable(e.to_string()))?;
                let n = stmt
                    .execute(params![
                        r.agent,
                        r.seq as i64,
                        r.check,
                        r.region,
                        r.started_at_us,
                        r.outcome.is_ok(),
                        r.duration_us as i64,
                        body
                    ])
                    .map_err(unavailable)?;
                inserted.push(n == 1);
            }
        }
        // Nothing is acknowledged before this returns: the batch is in the log, synced.
        tx.commit().map_err(unavailable)?;
        self.count
            .fetch_add(inserted.iter().filter(|n| **n).count(), Ordering::Relaxed);
        Ok(inserted)
    }

    fn query(&self, f: &ResultFilter) -> Vec<ProbeResult> {
        let conn = self.lock();
        let limit = i64::try_from(f.limit).unwrap_or(i64::MAX);
        let rows = conn
            .prepare_cached(
                "SELECT body FROM results
                 WHERE (?1 IS NULL OR check_name = ?1) AND (?2 IS NULL OR region = ?2) AND (?3 IS NULL OR agent = ?3)
                 ORDER BY rowid DESC LIMIT ?4",
            )
            .and_then(|mut stmt| {
                stmt.query_map(params![f.check, f.region, f.agent, limit], |r| r.get::<_, Vec<u8>>(0))?
                    .collect::<Result<Vec<_>, _>>()
            });
        match rows {
            Ok(bodies) => {
                let mut out: Vec<ProbeResult> = bodies
                    .iter()
                    .filter_map(|b| serde_json::from_slice(b).ok())
                    .collect();
                out.reverse();
                out
            }
            Err(e) => {
                tracing::error!(error = %e, "reading results failed");
                Vec::new()
            }
        }
    }

    fn observations(&self, check: &str, from_us: i64, to_us: i64) -> Vec<Stored> {
        let conn = self.lock();
        let rows = conn
            .prepare_cached(
                "SELECT region, started_us, ok, duration_us FROM results
                 WHERE check_name = ?1 AND started_us >= ?2 AND started_us < ?3 ORDER BY started_us",
            )
            .and_then(|mut stmt| {
                stmt.query_map(params![check, from_us, to_us], |r| Ok(Stored { region: r.get(0)?, start_us: r.get(1)?, ok: r.get(2)?, duration_us: r.get(3)? }))?
                    .collect::<Result<Vec<_>, _>>()
            });
        rows.unwrap_or_else(|e| {
            tracing::error!(error = %e, "reading observations failed");
            Vec::new()
        })
    }

    fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}

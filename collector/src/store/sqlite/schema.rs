//! The file's layout and its upkeep: the schema and its version, the migration from the
//! version before, how the file is opened, and the checkpoints that keep the log short.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::open_error;
use crate::store::StoreError;

/// Bumped when the layout changes; a store written by a newer version is refused by name,
/// one written by an older one is migrated (`migrate`).
pub(super) const SCHEMA_VERSION: i64 = 6;

pub(super) const SCHEMA: &str = "
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
        -- 0 failed, 1 passed, 2 passed degraded (sqlite::verdict_code)
        ok INTEGER NOT NULL,
        duration_us INTEGER NOT NULL,
        body BLOB NOT NULL,
        UNIQUE (agent, seq)
    );
    CREATE INDEX IF NOT EXISTS results_by_time ON results (started_us);
    CREATE TABLE IF NOT EXISTS blocks (
        id INTEGER PRIMARY KEY,
        check_id INTEGER NOT NULL,
        span INTEGER NOT NULL,
        region INTEGER NOT NULL,
        results INTEGER NOT NULL,
        failures INTEGER NOT NULL,
        body BLOB NOT NULL,
        UNIQUE (check_id, span, region)
    );
    CREATE INDEX IF NOT EXISTS blocks_by_span ON blocks (span);
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
        id INTEGER PRIMARY KEY,
        check_id INTEGER NOT NULL,
        region INTEGER NOT NULL,
        hour INTEGER NOT NULL,
        hist BLOB NOT NULL,
        UNIQUE (hour, check_id, region)
    );
    CREATE INDEX IF NOT EXISTS hours_by_check ON hours (check_id, hour);
    CREATE TABLE IF NOT EXISTS days (
        id INTEGER PRIMARY KEY,
        check_id INTEGER NOT NULL,
        region INTEGER NOT NULL,
        day INTEGER NOT NULL,
        hist BLOB NOT NULL,
        UNIQUE (day, check_id, region)
    );
    CREATE INDEX IF NOT EXISTS days_by_check ON days (check_id, day);";

/// How often the log is copied into the database file, off the committing thread.
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// Pages of log (4 KiB each) past which a checkpoint makes the log start over: 64 MiB.
pub(super) const MAX_LOG_FRAMES: i64 = 16_384;

/// Our own connections are each used by one thread at a time (the store's mutex, the
/// checkpoint thread): SQLite's own locking would only cost time.
pub(super) fn flags() -> OpenFlags {
    OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
}

/// Copies the write-ahead log into the database on its own connection and thread, so that a
/// commit never waits for a checkpoint (SQLite would otherwise run them in the committing
/// thread, every 4 MB of log).
pub(super) fn start_checkpoints(path: &Path) -> Result<mpsc::Sender<()>, StoreError> {
    let shown = path.display().to_string();
    let conn = Connection::open_with_flags(path, flags()).map_err(|e| open_error(&shown, e))?;
    // No waiting: a restarting checkpoint holds the writer's lock while it waits for readers,
    // and compaction reads for seconds at a time (`blocks.rs`). Waited for, commits would
    // stall behind it and fail; not waited for, the log just starts over at a later try.
    conn.busy_timeout(Duration::ZERO)
        .map_err(|e| open_error(&shown, e))?;
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

/// Version 6 keeps the hourly and daily histograms in tables with rowids, in the order they
/// were first written, found through indexes by time and by check, and updated where they
/// are (`rollups::write_rollups`). Version 5 held them in the key's own tree (`WITHOUT
/// ROWID`), where a row keeps at most about 1,000 bytes on its page and puts the rest on an
/// overflow page of its own, and a histogram of a busy hour takes about 1,500. With the hour
/// the frontier is in written again by the next pass, `lookout bench collector` measured
/// 161 MiB for a day of 500 checks x 3 regions' hours, 109 of them unused: more than the
/// day's raw results took in blocks, and 15.7 bytes on disk a raw result in all. Version 6:
/// 70.5 MiB, 18.3 unused, and 8.1 bytes a raw result. The tables are copied over in time
/// order, in one transaction.
pub(super) fn migrate_from_5(conn: &Connection) -> rusqlite::Result<()> {
    let mut sql = String::from("BEGIN IMMEDIATE;\n");
    for (table, column) in [("hours", "hour"), ("days", "day")] {
        sql.push_str(&format!(
            "CREATE TABLE {table}_by_time (
                 id INTEGER PRIMARY KEY,
                 check_id INTEGER NOT NULL,
                 region INTEGER NOT NULL,
                 {column} INTEGER NOT NULL,
                 hist BLOB NOT NULL,
                 UNIQUE ({column}, check_id, region)
             );
             INSERT INTO {table}_by_time (check_id, region, {column}, hist)
                 SELECT check_id, region, {column}, hist FROM {table}
                 ORDER BY {column}, check_id, region;
             DROP TABLE {table};
             ALTER TABLE {table}_by_time RENAME TO {table};
             CREATE INDEX {table}_by_check ON {table} (check_id, {column});\n"
        ));
    }
    sql.push_str("UPDATE meta SET value = 6 WHERE key = 'schema_version';\nCOMMIT;");
    conn.execute_batch(&sql).inspect_err(|_| {
        // Left in a transaction, the connection would hold the write lock.
        let _ = conn.execute_batch("ROLLBACK");
    })
}

/// Version 5 keeps raw results in blocks too (`SCHEMA` has just made their table); the rows
/// a version 4 wrote are compacted like any others.
pub(super) fn migrate_from_4(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute("UPDATE meta SET value = 5 WHERE key = 'schema_version'", [])
        .map(|_| ())
}

/// Version 4 keeps maintenance time in the rolled-up minutes (none before: zero), and the
/// maintenance and SLO tables, which `SCHEMA` has just made.
pub(super) fn migrate_from_3(conn: &Connection) -> rusqlite::Result<()> {
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

//! Rollups in the file: per-minute downtime, hourly and daily latency per region, coverage;
//! written a pass at a time, read back at start, and pruned with the raw results.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use lookout_model::latency::{Accumulator, Sparse};
use lookout_model::sla::Tally;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{Kind, Names, SqliteStore, read_error, rows, unavailable};
use crate::store::{
    Bucket, CheckRollup, Coverage, LoadedCheck, LoadedRollups, ResultStore, Retention, StoreError,
};

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
            // Updated where it is, not replaced: a replaced row moves to the end of the table,
            // and the hour the frontier is in is written again by the next pass, so that every
            // page ended half empty (`schema::migrate_from_5` has the figures).
            let mut put = tx.prepare_cached(&format!(
                "INSERT INTO {table} (check_id, region, {column}, hist) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT ({column}, check_id, region) DO UPDATE SET hist = excluded.hist"
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

/// Sparse histograms of many regions merged into one per (check, time) bucket, from rows in
/// the order the table holds them (read straight through, with no index to follow): a
/// bucket's regions mostly one after the other, merged as they come; a bucket met again
/// later is merged at the end.
#[derive(Default)]
struct MergeByTime {
    /// Per check, as read: sorted and collected into maps at the end, whose nodes a sorted
    /// run packs full (one-by-one inserts leave them half empty).
    out: BTreeMap<i64, Vec<(i64, Sparse)>>,
    current: Option<(i64, i64)>,
    /// The current bucket's merge, one for the whole read: its buffers are allocated once.
    acc: Accumulator,
}

impl MergeByTime {
    fn push(&mut self, check: i64, at: i64, blob: &[u8]) {
        if self.current != Some((check, at)) {
            self.flush();
            self.current = Some((check, at));
        }
        // A blob this version cannot read is left out, as `Sparse::decode` leaves it.
        self.acc.add_encoded(blob);
    }

    fn flush(&mut self) {
        if let Some((c, t)) = self.current.take() {
            if self.acc.count() > 0 {
                self.out
                    .entry(c)
                    .or_default()
                    .push((t, self.acc.to_sparse()));
            }
            self.acc.clear();
        }
    }

    fn finish(mut self) -> BTreeMap<i64, BTreeMap<i64, Sparse>> {
        self.flush();
        self.out
            .into_iter()
            .map(|(c, mut by_time)| {
                by_time.sort_by_key(|(t, _)| *t);
                let mut merged: Vec<(i64, Sparse)> = Vec::with_capacity(by_time.len());
                for (t, s) in by_time {
                    match merged.last_mut() {
                        Some((last, kept)) if *last == t => {
                            let mut acc = Accumulator::new();
                            acc.add(kept);
                            acc.add(&s);
                            *kept = acc.to_sparse();
                        }
                        _ => merged.push((t, s)),
                    }
                }
                (c, merged.into_iter().collect())
            })
            .collect()
    }
}

pub(super) fn hists(
    store: &SqliteStore,
    check: &str,
    bucket: Bucket,
    from_us: i64,
    to_us: i64,
) -> Result<Vec<(String, i64, Sparse)>, StoreError> {
    let inner = store.lock();
    let Some(check) = inner.names.id(Kind::Check, check) else {
        return Ok(Vec::new());
    };
    let sql = match bucket {
        Bucket::Hour => {
            "SELECT region, hour, hist FROM hours WHERE check_id = ?1 AND hour >= ?2 AND hour < ?3"
        }
        Bucket::Day => {
            "SELECT region, day, hist FROM days WHERE check_id = ?1 AND day >= ?2 AND day < ?3"
        }
    };
    let rows = rows(&inner.conn, sql, params![check, from_us, to_us], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Vec<u8>>(2)?,
        ))
    })?;
    Ok(rows
        .into_iter()
        .filter_map(|(region, hour, blob)| {
            Sparse::decode(&blob).map(|s| (inner.names.name(region), hour, s))
        })
        .collect())
}

pub(super) fn region_hists(
    store: &SqliteStore,
    check: &str,
    region: &str,
    bucket: Bucket,
    from_us: i64,
    to_us: i64,
) -> Result<BTreeMap<i64, Sparse>, StoreError> {
    let inner = store.lock();
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

pub(super) fn save(
    store: &SqliteStore,
    rolled_id: i64,
    checks: &[CheckRollup],
) -> Result<(), StoreError> {
    store.write(|tx, names| write_rollups(tx, names, rolled_id, checks).map_err(unavailable))
}

pub(super) fn load(store: &SqliteStore, hours_since_us: i64) -> Result<LoadedRollups, StoreError> {
    let inner = store.lock();
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
    const DAYS: &str = "SELECT check_id, day, hist FROM days NOT INDEXED WHERE day >= ?1";
    const HOURS: &str = "SELECT check_id, hour, hist FROM hours NOT INDEXED WHERE hour >= ?1";
    // One after the other: read beside each other on the store's second connection, they
    // started no sooner at 5,000 x 5 (2.0 s either way, once the merge stopped allocating).
    let days = read_hists(conn, DAYS, i64::MIN);
    let hours = read_hists(conn, HOURS, hours_since_us);
    for (check, by_day) in days? {
        checks.entry(check).or_default().days = by_day;
    }
    for (check, by_hour) in hours? {
        checks.entry(check).or_default().hours = by_hour;
    }
    out.checks = checks.into_iter().map(|(id, c)| (name(id), c)).collect();
    Ok(out)
}

/// Streamed: 400 days of histograms are far more than what they merge into.
fn read_hists(
    conn: &Connection,
    sql: &str,
    since: i64,
) -> Result<BTreeMap<i64, BTreeMap<i64, Sparse>>, StoreError> {
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
}

pub(super) fn prune(
    store: &SqliteStore,
    r: Retention,
    max_rows: usize,
) -> Result<usize, StoreError> {
    let inner = store.lock();
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
        .map_err(unavailable)?
        + super::blocks::prune(&inner, r.raw_before_us, max_rows)?;
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
    store
        .count
        .fetch_sub(removed.min(store.len()), Ordering::Relaxed);
    Ok(removed)
}

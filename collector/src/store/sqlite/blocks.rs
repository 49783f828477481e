//! Raw results in blocks (`store/block.rs`): how they get there, how they are read back beside
//! the rows not yet compacted, and how a replay is recognised once its result is in a block.
//!
//! A result is first a row in `results`, committed (and acknowledged) as before: a block
//! cannot be appended to at the rate results arrive, 500 checks at a time. Once the span it
//! falls in has ended and the rollups have read it, [`compact`] moves it, with the rest of its
//! check's and region's span, into that span's block, in one transaction per chunk: a result
//! is in exactly one of the two places at every commit. Blocks are read only for time before
//! `sealed_before` (kept in `meta`, raised before any result of a span is moved), so the reads
//! of the last minutes, by far the most frequent, never touch them.
//!
//! The move reads on a connection of its own, so that sorting an hour of results (SQLite's
//! sorter, in bounded memory and temporary files) never holds the store's lock: only the
//! writes of each chunk do.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use lookout_model::probe::ProbeResult;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::names::{Kind, Names};
use super::{Inner, ResultRow, SqliteStore, decode_result, read_error, unavailable};
use crate::store::block::{self, BlockError, Light, SPAN_US, span_of};
use crate::store::{StoreError, Stored};

/// Results moved per transaction: the store's lock is held for the writes of about this
/// many, a few tens of milliseconds.
const CHUNK: usize = 20_000;

fn block_error(e: BlockError) -> StoreError {
    StoreError::Read(e.to_string())
}

pub(super) fn sealed_before(conn: &Connection) -> rusqlite::Result<i64> {
    Ok(conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'sealed_before'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(i64::MIN))
}

/// Of the results in `batch` (its index, the result) that start before `sealed_before`, those
/// already held in their span's block: a replay of what was acknowledged long ago.
pub(super) fn replayed(
    tx: &Transaction<'_>,
    names: &Names,
    old: &[&ProbeResult],
) -> Result<HashSet<(String, u64)>, StoreError> {
    let mut held = HashSet::new();
    let mut seen: HashSet<(i64, i64, i64)> = HashSet::new();
    let mut stmt = tx
        .prepare_cached("SELECT body FROM blocks WHERE check_id = ?1 AND span = ?2 AND region = ?3")
        .map_err(unavailable)?;
    for r in old {
        let (Some(check), Some(region)) = (
            names.id(Kind::Check, &r.check),
            names.id(Kind::Region, &r.region),
        ) else {
            continue;
        };
        let key = (check, span_of(r.started_at_us), region);
        if !seen.insert(key) {
            continue;
        }
        let body: Option<Vec<u8>> = stmt
            .query_row(params![key.0, key.1, key.2], |row| row.get(0))
            .optional()
            .map_err(unavailable)?;
        if let Some(body) = body {
            held.extend(block::keys(&body).map_err(|e| unavailable(e.to_string()))?);
        }
    }
    Ok(held)
}

/// One check's results in one region and span, ready to replace what its block holds.
struct Pending {
    check: i64,
    region: i64,
    span: i64,
    results: usize,
    failures: usize,
    body: Vec<u8>,
    ids: Vec<i64>,
}

/// Moves every row of `results` that starts before `before_us` (a span's start) and that the
/// rollups have read into its span's block, merging with the block already there. Answers how
/// many results moved.
pub(super) fn compact(store: &SqliteStore, before_us: i64) -> Result<usize, StoreError> {
    let _one_at_a_time = store
        .compacting
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let before_us = span_of(before_us);
    let (names, rolled, newest) = {
        let inner = store.lock();
        let conn = &inner.conn;
        let rolled: i64 = conn
            .query_row("SELECT value FROM meta WHERE key = 'rolled_id'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(read_error)?
            .unwrap_or(0);
        let newest: i64 = conn
            .query_row("SELECT COALESCE(MAX(id), 0) FROM results", [], |r| r.get(0))
            .map_err(read_error)?;
        // Raised first, in its own commit: from now on a replay of a result of these spans
        // is looked for in its block too, before any result is there.
        if before_us > store.sealed_before.load(Ordering::Acquire) {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('sealed_before', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![before_us],
            )
            .map_err(unavailable)?;
            store.sealed_before.store(before_us, Ordering::Release);
        }
        (inner.names.clone(), rolled, newest)
    };
    let mut moved = 0;
    match &store.reader {
        Some(reader) => {
            let reader = reader
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut chunk = Vec::new();
            let mut held = 0;
            read_groups(&reader, &names, before_us, rolled, newest, &mut |p| {
                held += p.results;
                chunk.push(p);
                if held >= CHUNK {
                    moved += write(store, std::mem::take(&mut chunk))?;
                    held = 0;
                }
                Ok(())
            })?;
            moved += write(store, chunk)?;
        }
        // In memory there is no second connection to read on (and little to move).
        None => {
            let mut all = Vec::new();
            {
                let inner = store.lock();
                read_groups(&inner.conn, &names, before_us, rolled, newest, &mut |p| {
                    all.push(p);
                    Ok(())
                })?;
            }
            moved += write(store, all)?;
        }
    }
    Ok(moved)
}

/// Streams the rows to move, grouped by check, region and span, each group merged with its
/// block and encoded. The newest row stays, so that ids never go back (the rollups find new
/// results by id), and so do rows the rollups have not read.
fn read_groups(
    conn: &Connection,
    names: &Names,
    before_us: i64,
    rolled: i64,
    newest: i64,
    sink: &mut dyn FnMut(Pending) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT id, {} FROM results INDEXED BY results_by_time
             WHERE started_us < ?1 AND id <= ?2 AND id < ?3
             ORDER BY check_id, region, started_us",
            super::RESULT_COLUMNS
        ))
        .map_err(read_error)?;
    let mut existing = conn
        .prepare("SELECT body FROM blocks WHERE check_id = ?1 AND span = ?2 AND region = ?3")
        .map_err(read_error)?;
    let mut rows = stmt
        .query(params![before_us, rolled, newest])
        .map_err(read_error)?;
    let mut group: Option<(i64, i64, i64)> = None;
    let mut results: Vec<ProbeResult> = Vec::new();
    let mut ids = Vec::new();
    let mut finish = |key: (i64, i64, i64),
                      results: &mut Vec<ProbeResult>,
                      ids: &mut Vec<i64>|
     -> Result<(), StoreError> {
        let (check, region, span) = key;
        let body: Option<Vec<u8>> = existing
            .query_row(params![check, span, region], |r| r.get(0))
            .optional()
            .map_err(read_error)?;
        if let Some(body) = body {
            results.extend(
                block::decode(&names.name(check), &names.name(region), &body)
                    .map_err(block_error)?,
            );
        }
        let failures = results.iter().filter(|r| !r.outcome.is_up()).count();
        let body = block::encode(results).map_err(|e| unavailable(e.to_string()))?;
        sink(Pending {
            check,
            region,
            span,
            results: results.len(),
            failures,
            body,
            ids: std::mem::take(ids),
        })?;
        results.clear();
        Ok(())
    };
    while let Some(row) = rows.next().map_err(read_error)? {
        let id: i64 = row.get(0).map_err(read_error)?;
        let r: ResultRow = (
            row.get(1).map_err(read_error)?,
            row.get(2).map_err(read_error)?,
            row.get(3).map_err(read_error)?,
            row.get(4).map_err(read_error)?,
            row.get(5).map_err(read_error)?,
            row.get(6).map_err(read_error)?,
            row.get(7).map_err(read_error)?,
        );
        let key = (r.2, r.3, span_of(r.4));
        if group.is_some_and(|g| g != key)
            && let Some(g) = group
        {
            finish(g, &mut results, &mut ids)?;
        }
        group = Some(key);
        results.push(decode_result(names, r)?);
        ids.push(id);
    }
    if let Some(g) = group {
        finish(g, &mut results, &mut ids)?;
    }
    Ok(())
}

/// Replaces the blocks and removes the rows they now hold, together.
fn write(store: &SqliteStore, chunk: Vec<Pending>) -> Result<usize, StoreError> {
    if chunk.is_empty() {
        return Ok(0);
    }
    store.write(|tx, _| {
        let mut put = tx
            .prepare_cached(
                "INSERT INTO blocks (check_id, span, region, results, failures, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (check_id, span, region) DO UPDATE SET
                 results = excluded.results, failures = excluded.failures, body = excluded.body",
            )
            .map_err(unavailable)?;
        let mut delete = tx
            .prepare_cached("DELETE FROM results WHERE id = ?1")
            .map_err(unavailable)?;
        let mut moved = 0;
        for p in &chunk {
            put.execute(params![
                p.check,
                p.span,
                p.region,
                p.results as i64,
                p.failures as i64,
                p.body
            ])
            .map_err(unavailable)?;
            for id in &p.ids {
                moved += delete.execute(params![id]).map_err(unavailable)?;
            }
        }
        Ok(moved)
    })
}

/// The blocks of one check (or all) that may hold results started in `[from, to)`.
fn blocks_in(
    inner: &Inner,
    check: Option<i64>,
    from_us: i64,
    to_us: i64,
    failed_only: bool,
) -> Result<Vec<(i64, i64, Vec<u8>)>, StoreError> {
    let from_us = from_us.saturating_sub(SPAN_US);
    let decode = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?, r.get(2)?));
    match check {
        Some(check) => super::rows(
            &inner.conn,
            "SELECT check_id, region, body FROM blocks
             WHERE check_id = ?1 AND span > ?2 AND span < ?3 AND (?4 = 0 OR failures > 0)
             ORDER BY span",
            params![check, from_us, to_us, failed_only],
            decode,
        ),
        None => super::rows(
            &inner.conn,
            "SELECT check_id, region, body FROM blocks INDEXED BY blocks_by_span
             WHERE span > ?1 AND span < ?2 AND (?3 = 0 OR failures > 0)
             ORDER BY span",
            params![from_us, to_us, failed_only],
            decode,
        ),
    }
}

/// The light view of the results in blocks started in `[from, to)`, each handed to `visit` as
/// (check id, stored), block by block.
pub(super) fn visit_observations(
    inner: &Inner,
    check: Option<i64>,
    from_us: i64,
    to_us: i64,
    visit: &mut dyn FnMut(i64, Stored),
) -> Result<(), StoreError> {
    for (check, region, body) in blocks_in(inner, check, from_us, to_us, false)? {
        let region = inner.names.name_ref(region);
        for Light {
            start_us,
            verdict,
            duration_us,
        } in block::light(&body).map_err(block_error)?
        {
            if start_us >= from_us && start_us < to_us {
                visit(
                    check,
                    Stored {
                        region: region.to_owned(),
                        start_us,
                        verdict,
                        duration_us: i64::try_from(duration_us).unwrap_or(i64::MAX),
                    },
                );
            }
        }
    }
    Ok(())
}

/// The failed results of `check` in blocks, started in `[from, to)`, by start time.
pub(super) fn failures(
    inner: &Inner,
    check: i64,
    from_us: i64,
    to_us: i64,
) -> Result<Vec<ProbeResult>, StoreError> {
    let mut out = Vec::new();
    let name = inner.names.name(check);
    for (_, region, body) in blocks_in(inner, Some(check), from_us, to_us, true)? {
        out.extend(
            block::decode(&name, &inner.names.name(region), &body)
                .map_err(block_error)?
                .into_iter()
                .filter(|r| {
                    !r.outcome.is_up() && r.started_at_us >= from_us && r.started_at_us < to_us
                }),
        );
    }
    out.sort_by_key(|r| r.started_at_us);
    Ok(out)
}

/// The newest `limit` results in blocks that pass the filter (ids: -1 matches nothing, `None`
/// everything), oldest first.
pub(super) fn newest(
    inner: &Inner,
    check: Option<i64>,
    region: Option<i64>,
    agent: Option<&str>,
    limit: usize,
) -> Result<Vec<ProbeResult>, StoreError> {
    let mut found: Vec<ProbeResult> = Vec::new();
    let mut stmt = inner
        .conn
        .prepare_cached(
            "SELECT check_id, region, span, body FROM blocks
             WHERE (?1 IS NULL OR check_id = ?1) AND (?2 IS NULL OR region = ?2)
             ORDER BY span DESC",
        )
        .map_err(read_error)?;
    let mut rows = stmt.query(params![check, region]).map_err(read_error)?;
    // Spans are taken whole, newest first, until they hold enough.
    let mut span_done: Option<i64> = None;
    while let Some(row) = rows.next().map_err(read_error)? {
        let (check, region, span): (i64, i64, i64) = (
            row.get(0).map_err(read_error)?,
            row.get(1).map_err(read_error)?,
            row.get(2).map_err(read_error)?,
        );
        if found.len() >= limit && span_done.is_some_and(|s| s != span) {
            break;
        }
        span_done = Some(span);
        let body = row
            .get_ref(3)
            .map_err(read_error)?
            .as_blob()
            .map_err(read_error)?;
        found.extend(
            block::decode(&inner.names.name(check), &inner.names.name(region), body)
                .map_err(block_error)?
                .into_iter()
                .filter(|r| agent.is_none_or(|a| r.agent == a)),
        );
    }
    found.sort_by_key(|r| r.started_at_us);
    let skip = found.len().saturating_sub(limit);
    Ok(found.split_off(skip))
}

/// Removes the blocks wholly before `before_us`, oldest first, about `max_rows` results'
/// worth (at least one block); answers how many results went.
pub(super) fn prune(inner: &Inner, before_us: i64, max_rows: usize) -> Result<usize, StoreError> {
    let candidates = super::rows(
        &inner.conn,
        "SELECT id, results FROM blocks INDEXED BY blocks_by_span WHERE span <= ?1 ORDER BY span LIMIT 10000",
        params![before_us.saturating_sub(SPAN_US)],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
    )?;
    let mut removed = 0usize;
    let mut delete = inner
        .conn
        .prepare_cached("DELETE FROM blocks WHERE id = ?1")
        .map_err(unavailable)?;
    for (id, results) in candidates {
        if removed >= max_rows.max(1) {
            break;
        }
        delete.execute(params![id]).map_err(unavailable)?;
        removed += usize::try_from(results).unwrap_or(0);
    }
    Ok(removed)
}

/// How many results the blocks hold.
pub(super) fn held(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT COALESCE(SUM(results), 0) FROM blocks", [], |r| {
        r.get(0)
    })
}

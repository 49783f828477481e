//! What the collector keeps besides results: maintenance windows (with the dirty marks their
//! changes leave on rolled-up minutes), each check's SLO as last recorded, and events.

use std::collections::BTreeMap;

use lookout_model::read::Maintenance;
use rusqlite::{TransactionBehavior, params};

use super::{Inner, Kind, SqliteStore, read_error, unavailable};
use crate::store::{MaintenanceChange, StoreError};

pub(super) fn maintenances(store: &SqliteStore) -> Result<Vec<Maintenance>, StoreError> {
    let inner = store.lock();
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

pub(super) fn change_maintenance(
    store: &SqliteStore,
    change: MaintenanceChange<'_>,
    dirty: &[(String, i64)],
) -> Result<i64, StoreError> {
    let mut inner = store.lock();
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

pub(super) fn slos(store: &SqliteStore) -> Result<BTreeMap<String, (String, i64)>, StoreError> {
    let inner = store.lock();
    let mut stmt = inner
        .conn
        .prepare("SELECT check_name, body, since_us FROM slos")
        .map_err(read_error)?;
    stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .and_then(|rows| rows.collect())
        .map_err(read_error)
}

pub(super) fn put_slos(
    store: &SqliteStore,
    slos: &[(String, String, i64)],
    events: &[lookout_model::event::Event],
) -> Result<(), StoreError> {
    let mut inner = store.lock();
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

pub(super) fn insert_events(
    store: &SqliteStore,
    events: &[lookout_model::event::Event],
) -> Result<(), StoreError> {
    let mut inner = store.lock();
    let write = |e: rusqlite::Error| StoreError::Unavailable(e.to_string());
    let tx = inner.conn.transaction().map_err(write)?;
    for e in events {
        let body = serde_json::to_string(e).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        tx.execute(
            "INSERT INTO events (time_us, body) VALUES (?1, ?2)",
            params![e.time_us, body],
        )
        .map_err(write)?;
    }
    tx.commit().map_err(write)
}

pub(super) fn events(
    store: &SqliteStore,
    after_id: i64,
    since_us: i64,
    limit: usize,
) -> Result<Vec<lookout_model::event::StoredEvent>, StoreError> {
    let inner = store.lock();
    let read = |e: rusqlite::Error| StoreError::Read(e.to_string());
    let mut stmt = inner
        .conn
        .prepare("SELECT id, body FROM events WHERE id > ?1 AND time_us >= ?2 ORDER BY id LIMIT ?3")
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

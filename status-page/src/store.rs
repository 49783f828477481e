//! Incidents, their updates and the down intervals they came from, in SQLite. (Maintenance
//! is the collector's; a `maintenances` table left by an older version is not read.)
//! Small and rarely written, so one connection behind a mutex; every write is one transaction.

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension, params};

use crate::model::{Impact, Incident, IncidentStatus, Update};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("status page store {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("status page store: {0}")]
    Sql(#[from] rusqlite::Error),
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    impact TEXT NOT NULL,
    started_us INTEGER NOT NULL,
    created_us INTEGER NOT NULL,
    updated_us INTEGER NOT NULL,
    monitoring_us INTEGER,
    resolved_us INTEGER,
    auto INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS incident_components (
    incident_id INTEGER NOT NULL,
    component TEXT NOT NULL,
    PRIMARY KEY (incident_id, component)
);
CREATE TABLE IF NOT EXISTS updates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    auto INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS updates_by_incident ON updates (incident_id);
-- Each collector down interval and the incident it opened or joined.
CREATE TABLE IF NOT EXISTS sources (
    check_name TEXT NOT NULL,
    start_us INTEGER NOT NULL,
    end_us INTEGER,
    incident_id INTEGER NOT NULL,
    PRIMARY KEY (check_name, start_us)
);
-- People's changes applied, by their origin: a change read from the replicated log again (a
-- replica's restart) is applied once. incident_id is the incident it made or changed.
CREATE TABLE IF NOT EXISTS changes_applied (
    origin TEXT PRIMARY KEY,
    incident_id INTEGER NOT NULL
);
-- On a replica: how far it has applied the replicated log.
CREATE TABLE IF NOT EXISTS log_applied (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reports_sent (
    month TEXT PRIMARY KEY,
    sent_us INTEGER NOT NULL
);
";

/// A down interval already turned into (part of) an incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub incident_id: i64,
    pub end_us: Option<i64>,
}

pub struct Store {
    conn: Mutex<Connection>,
}

fn status(s: &str) -> IncidentStatus {
    IncidentStatus::parse(s).unwrap_or(IncidentStatus::Investigating)
}

fn impact(s: &str) -> Impact {
    Impact::parse(s).unwrap_or(Impact::None)
}

impl Store {
    pub fn open(path: Option<&Path>) -> Result<Store, StoreError> {
        let conn = match path {
            Some(p) => {
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                        path: p.display().to_string(),
                        source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
                    })?;
                }
                Connection::open(p).map_err(|source| StoreError::Open {
                    path: p.display().to_string(),
                    source,
                })?
            }
            None => Connection::open_in_memory()?,
        };
        conn.execute_batch(SCHEMA)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every incident, newest first, with its components and updates.
    pub fn incidents(&self) -> Result<Vec<Incident>, StoreError> {
        let conn = self.conn();
        let mut incidents: Vec<Incident> = conn
            .prepare(
                "SELECT id, name, status, impact, started_us, created_us, updated_us,
                        monitoring_us, resolved_us, auto
                 FROM incidents ORDER BY started_us DESC, id DESC",
            )?
            .query_map([], |r| {
                Ok(Incident {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    status: status(&r.get::<_, String>(2)?),
                    impact: impact(&r.get::<_, String>(3)?),
                    started_us: r.get(4)?,
                    created_us: r.get(5)?,
                    updated_us: r.get(6)?,
                    monitoring_us: r.get(7)?,
                    resolved_us: r.get(8)?,
                    auto: r.get(9)?,
                    components: Vec::new(),
                    updates: Vec::new(),
                })
            })?
            .collect::<Result<_, _>>()?;
        let index: std::collections::HashMap<i64, usize> = incidents
            .iter()
            .enumerate()
            .map(|(i, inc)| (inc.id, i))
            .collect();
        let mut components = conn.prepare(
            "SELECT incident_id, component FROM incident_components ORDER BY incident_id, rowid",
        )?;
        for row in
            components.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
        {
            let (id, component) = row?;
            if let Some(&i) = index.get(&id) {
                incidents[i].components.push(component);
            }
        }
        let mut updates = conn.prepare(
            "SELECT id, incident_id, status, body, created_us, auto FROM updates
             ORDER BY created_us DESC, id DESC",
        )?;
        for row in updates.query_map([], |r| {
            Ok(Update {
                id: r.get(0)?,
                incident_id: r.get(1)?,
                status: status(&r.get::<_, String>(2)?),
                body: r.get(3)?,
                created_us: r.get(4)?,
                auto: r.get(5)?,
            })
        })? {
            let u = row?;
            if let Some(&i) = index.get(&u.incident_id) {
                incidents[i].updates.push(u);
            }
        }
        Ok(incidents)
    }

    pub fn incident(&self, id: i64) -> Result<Option<Incident>, StoreError> {
        Ok(self.incidents()?.into_iter().find(|i| i.id == id))
    }

    /// Opens an incident with its first update; returns its id.
    #[allow(clippy::too_many_arguments)]
    pub fn create_incident(
        &self,
        name: &str,
        impact: Impact,
        status: IncidentStatus,
        body: &str,
        components: &[String],
        started_us: i64,
        at_us: i64,
        auto: bool,
    ) -> Result<i64, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let id = insert_incident(
            &tx,
            &NewIncident {
                name,
                impact,
                status,
                body,
                components,
                started_us,
                at_us,
                auto,
            },
        )?;
        tx.commit()?;
        Ok(id)
    }

    /// Runs `change` in one transaction, unless a change from `origin` was applied before;
    /// either way, the incident it made or changed.
    pub fn once(
        &self,
        origin: &str,
        change: impl FnOnce(&Connection) -> Result<i64, StoreError>,
    ) -> Result<i64, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if let Some(id) = origin_of(&tx, origin)? {
            return Ok(id);
        }
        let id = change(&tx)?;
        tx.execute(
            "INSERT INTO changes_applied (origin, incident_id) VALUES (?1, ?2)",
            params![origin, id],
        )?;
        tx.commit()?;
        Ok(id)
    }

    /// The incident a change from `origin` made or changed, once applied.
    pub fn applied_change(&self, origin: &str) -> Result<Option<i64>, StoreError> {
        origin_of(&self.conn(), origin)
    }

    /// How far this replica has applied the replicated log (0: nothing yet).
    pub fn log_applied(&self) -> Result<u64, StoreError> {
        let p: Option<i64> = self
            .conn()
            .query_row("SELECT position FROM log_applied WHERE one = 1", [], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(p.map_or(0, |p| u64::try_from(p).unwrap_or(0)))
    }

    pub fn set_log_applied(&self, position: u64) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO log_applied (one, position) VALUES (1, ?1)
             ON CONFLICT (one) DO UPDATE SET position = excluded.position",
            [i64::try_from(position).unwrap_or(i64::MAX)],
        )?;
        Ok(())
    }

    /// Posts an update; the incident takes its status.
    pub fn add_update(
        &self,
        incident_id: i64,
        status: IncidentStatus,
        body: &str,
        at_us: i64,
        auto: bool,
    ) -> Result<i64, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let id = add_update(&tx, incident_id, status, body, at_us, auto)?;
        tx.commit()?;
        Ok(id)
    }

    pub fn set_impact(
        &self,
        incident_id: i64,
        impact: Impact,
        at_us: i64,
    ) -> Result<(), StoreError> {
        set_impact(&self.conn(), incident_id, impact, at_us)
    }

    pub fn set_name(&self, incident_id: i64, name: &str, at_us: i64) -> Result<(), StoreError> {
        set_name(&self.conn(), incident_id, name, at_us)
    }

    /// Rewrites an update's text (the page's own first message, made whole while an outage
    /// spreads); people's updates are never rewritten.
    pub fn set_update_body(&self, update_id: i64, body: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE updates SET body = ?2 WHERE id = ?1 AND auto = 1",
            params![update_id, body],
        )?;
        Ok(())
    }

    pub fn add_component(&self, incident_id: i64, component: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR IGNORE INTO incident_components (incident_id, component) VALUES (?1, ?2)",
            params![incident_id, component],
        )?;
        Ok(())
    }

    /// The stored down interval of `check` that this one is: the same outage read again,
    /// possibly with a start a little different (a window's edge, raw results rolled up).
    pub fn source(
        &self,
        check: &str,
        start_us: i64,
        end_us: Option<i64>,
    ) -> Result<Option<(i64, Source)>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT start_us, incident_id, end_us FROM sources
                 WHERE check_name = ?1 AND start_us <= ?3 + 60000000
                   AND (end_us IS NULL OR end_us >= ?2)
                 ORDER BY start_us DESC LIMIT 1",
                params![check, start_us, end_us.unwrap_or(i64::MAX - 60_000_000)],
                |r| {
                    Ok((
                        r.get(0)?,
                        Source {
                            incident_id: r.get(1)?,
                            end_us: r.get(2)?,
                        },
                    ))
                },
            )
            .optional()?)
    }

    pub fn put_source(
        &self,
        check: &str,
        start_us: i64,
        end_us: Option<i64>,
        incident_id: i64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO sources (check_name, start_us, end_us, incident_id) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (check_name, start_us) DO UPDATE SET end_us = excluded.end_us",
            params![check, start_us, end_us, incident_id],
        )?;
        Ok(())
    }

    /// The incident's down intervals: (start, end) each.
    pub fn sources_of(&self, incident_id: i64) -> Result<Vec<(i64, Option<i64>)>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT start_us, end_us FROM sources WHERE incident_id = ?1")?;
        let rows = stmt
            .query_map([incident_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// The latest start of any down interval seen, to read only newer ones.
    pub fn latest_source_start(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT MAX(start_us) FROM sources", [], |r| r.get(0))?)
    }

    pub fn report_sent(&self, month: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM reports_sent WHERE month = ?1",
                [month],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    pub fn mark_report_sent(&self, month: &str, at_us: i64) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO reports_sent (month, sent_us) VALUES (?1, ?2)",
            params![month, at_us],
        )?;
        Ok(())
    }
}

/// An incident to open, with its first update.
pub struct NewIncident<'a> {
    pub name: &'a str,
    pub impact: Impact,
    pub status: IncidentStatus,
    pub body: &'a str,
    pub components: &'a [String],
    pub started_us: i64,
    pub at_us: i64,
    pub auto: bool,
}

/// Opens `new` within the caller's transaction; its id.
pub fn insert_incident(tx: &Connection, new: &NewIncident<'_>) -> Result<i64, StoreError> {
    tx.execute(
        "INSERT INTO incidents (name, status, impact, started_us, created_us, updated_us, auto)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
        params![
            new.name,
            new.status.as_str(),
            new.impact.as_str(),
            new.started_us,
            new.at_us,
            new.auto
        ],
    )?;
    let id = tx.last_insert_rowid();
    for c in new.components {
        tx.execute(
            "INSERT OR IGNORE INTO incident_components (incident_id, component) VALUES (?1, ?2)",
            params![id, c],
        )?;
    }
    add_update(tx, id, new.status, new.body, new.at_us, new.auto)?;
    Ok(id)
}

pub fn set_impact(
    conn: &Connection,
    incident_id: i64,
    impact: Impact,
    at_us: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE incidents SET impact = ?2, updated_us = ?3 WHERE id = ?1",
        params![incident_id, impact.as_str(), at_us],
    )?;
    Ok(())
}

pub fn set_name(
    conn: &Connection,
    incident_id: i64,
    name: &str,
    at_us: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE incidents SET name = ?2, updated_us = ?3 WHERE id = ?1",
        params![incident_id, name, at_us],
    )?;
    Ok(())
}

fn origin_of(conn: &Connection, origin: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT incident_id FROM changes_applied WHERE origin = ?1",
            [origin],
            |r| r.get(0),
        )
        .optional()?)
}

/// Posts an update within the caller's transaction; the incident takes its status.
pub fn add_update(
    tx: &Connection,
    incident_id: i64,
    status: IncidentStatus,
    body: &str,
    at_us: i64,
    auto: bool,
) -> Result<i64, StoreError> {
    tx.execute(
        "INSERT INTO updates (incident_id, status, body, created_us, auto) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![incident_id, status.as_str(), body, at_us, auto],
    )?;
    let id = tx.last_insert_rowid();
    let (monitoring, resolved) = match status {
        IncidentStatus::Monitoring => (Some(at_us), None),
        IncidentStatus::Resolved => (None, Some(at_us)),
        _ => (None, None),
    };
    tx.execute(
        "UPDATE incidents SET status = ?2, updated_us = ?3,
            monitoring_us = COALESCE(?4, monitoring_us),
            resolved_us = CASE WHEN ?2 = 'resolved' THEN COALESCE(?5, resolved_us) ELSE NULL END
         WHERE id = ?1",
        params![incident_id, status.as_str(), at_us, monitoring, resolved],
    )?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_sets_the_incident_status_and_a_reopen_clears_resolved() -> Result<(), StoreError> {
        let s = Store::open(None)?;
        let id = s.create_incident(
            "Search outage",
            Impact::Major,
            IncidentStatus::Investigating,
            "looking",
            &["search".into()],
            100,
            110,
            true,
        )?;
        s.add_update(id, IncidentStatus::Resolved, "fixed", 200, false)?;
        let i = s
            .incident(id)?
            .ok_or(rusqlite::Error::QueryReturnedNoRows)?;
        assert_eq!(i.status, IncidentStatus::Resolved);
        assert_eq!(i.resolved_us, Some(200));
        assert_eq!(i.updates.len(), 2);
        assert_eq!(i.updates[0].body, "fixed");
        assert_eq!(i.components, vec!["search".to_string()]);
        s.add_update(id, IncidentStatus::Identified, "back again", 300, false)?;
        let i = s
            .incident(id)?
            .ok_or(rusqlite::Error::QueryReturnedNoRows)?;
        assert_eq!(i.resolved_us, None);
        Ok(())
    }

    #[test]
    fn a_change_read_again_is_applied_once_and_the_position_survives_a_reopen()
    -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Open {
            path: "a temporary directory".into(),
            source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
        })?;
        let path = dir.path().join("status-page.db");
        let s = Store::open(Some(&path))?;
        let open = |s: &Store| {
            s.once("open-1", |tx| {
                insert_incident(
                    tx,
                    &NewIncident {
                        name: "Search slow",
                        impact: Impact::Minor,
                        status: IncidentStatus::Investigating,
                        body: "looking",
                        components: &["search".into()],
                        started_us: 100,
                        at_us: 100,
                        auto: false,
                    },
                )
            })
        };
        let first = open(&s)?;
        assert_eq!(open(&s)?, first, "the same change names the same incident");
        let update = |s: &Store| {
            s.once("update-1", |tx| {
                add_update(
                    tx,
                    first,
                    IncidentStatus::Identified,
                    "found it",
                    200,
                    false,
                )?;
                Ok(first)
            })
        };
        update(&s)?;
        update(&s)?;
        assert_eq!(s.incidents()?.len(), 1);
        assert_eq!(s.incidents()?[0].updates.len(), 2, "one update, not two");
        assert_eq!(s.applied_change("update-1")?, Some(first));
        assert_eq!(s.applied_change("update-2")?, None);
        s.set_log_applied(42)?;
        drop(s);
        let s = Store::open(Some(&path))?;
        assert_eq!(s.log_applied()?, 42);
        update(&s)?;
        assert_eq!(s.incidents()?[0].updates.len(), 2, "nor after a reopen");
        Ok(())
    }
}

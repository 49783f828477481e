//! The alerter's durable state in SQLite: check states, alert history, problems, the outbox,
//! silences, and the checks and subscriptions made through the API.
//!
//! A state change, the problem it opens or closes and the notifications it queues are written
//! in one transaction, so a restart at any instant neither loses a resolve nor pages twice.
//! SQLite (WAL, synchronous=FULL) because the collector already ships it and the alerter's
//! writes are few: one per change of state, not per evaluation of a steady check.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::notify::{Kind, Level, Notification};
use crate::problem::{AlertRecord, Problem, Silence};
use crate::spec::CheckSpec;
use crate::state::CheckState;
use crate::subscription::Subscription;

const SCHEMA_VERSION: i64 = 1;
const APPLICATION_ID: i64 = 0x4c4b_414c; // "LKAL": refuses to open some other program's file

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("alerter store {path}: {message}")]
    Open { path: String, message: String },
    #[error("alerter store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("alerter store: a stored record does not decode: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("alerter store: the store task failed: {0}")]
    Task(String),
}

/// A change to apply at once.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub states: Vec<(String, CheckState)>,
    pub alerts: Vec<AlertRecord>,
    pub problems: Vec<Problem>,
    pub deliveries: Vec<NewDelivery>,
    /// Each evaluation's value (check, time, value), for the console's charts.
    pub values: Vec<(String, i64, Option<f64>)>,
}

impl Batch {
    /// Adds a later batch: states and problems are written in order, so the later win.
    pub fn append(&mut self, later: Batch) {
        self.states.extend(later.states);
        self.alerts.extend(later.alerts);
        self.problems.extend(later.problems);
        self.deliveries.extend(later.deliveries);
        self.values.extend(later.values);
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
            && self.alerts.is_empty()
            && self.problems.is_empty()
            && self.deliveries.is_empty()
            && self.values.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub problem_id: String,
    pub subscription_id: String,
    pub kind: Kind,
    pub level: Level,
    pub notification: Notification,
    pub not_before_us: i64,
}

#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

fn json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    Ok(serde_json::to_string(v)?)
}

fn parse<T: DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    Ok(serde_json::from_str(s)?)
}

fn level_parse(s: &str) -> Level {
    match s {
        "WARN" => Level::Warn,
        "ERROR" => Level::Error,
        "UNKNOWN" => Level::Unknown,
        _ => Level::Ok,
    }
}

fn kind_parse(s: &str) -> Kind {
    match s {
        "reminder" => Kind::Reminder,
        "resolve" => Kind::Resolve,
        "test" => Kind::Test,
        _ => Kind::Trigger,
    }
}

pub fn rfc3339(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let fail = |message: String| StoreError::Open {
            path: path.display().to_string(),
            message,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| fail(format!("cannot create its directory: {e}")))?;
        }
        let conn = Connection::open(path).map_err(|e| fail(e.to_string()))?;
        Self::init(conn).map_err(|e| match e {
            StoreError::Open { message, .. } => fail(message),
            other => fail(other.to_string()),
        })
    }

    pub fn in_memory() -> Result<Store, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Store, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let app: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        if app != APPLICATION_ID && tables > 0 {
            return Err(StoreError::Open {
                path: String::new(),
                message: "this file is not an alerter store (another program's database?)".into(),
            });
        }
        if tables > 0 && version != SCHEMA_VERSION {
            return Err(StoreError::Open {
                path: String::new(),
                message: format!(
                    "schema version {version}, this alerter reads version {SCHEMA_VERSION}"
                ),
            });
        }
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS check_state(check_id TEXT PRIMARY KEY, state TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS alerts(
                 id INTEGER PRIMARY KEY, check_id TEXT NOT NULL, target TEXT NOT NULL,
                 value REAL, warn REAL, error REAL, from_level TEXT NOT NULL,
                 to_level TEXT NOT NULL, time_us INTEGER NOT NULL);
             CREATE INDEX IF NOT EXISTS alerts_by_check ON alerts(check_id, id);
             CREATE TABLE IF NOT EXISTS problems(
                 id TEXT PRIMARY KEY, open INTEGER NOT NULL, opened_us INTEGER NOT NULL,
                 body TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS problems_open ON problems(open, opened_us);
             CREATE TABLE IF NOT EXISTS outbox(
                 id INTEGER PRIMARY KEY, problem_id TEXT NOT NULL, subscription_id TEXT NOT NULL,
                 kind TEXT NOT NULL, level TEXT NOT NULL, status TEXT NOT NULL,
                 attempts INTEGER NOT NULL, next_attempt_us INTEGER NOT NULL,
                 created_us INTEGER NOT NULL, sent_us INTEGER, last_error TEXT,
                 notification TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS outbox_due ON outbox(status, next_attempt_us);
             CREATE INDEX IF NOT EXISTS outbox_by_problem ON outbox(problem_id, subscription_id);
             CREATE TABLE IF NOT EXISTS api_checks(id TEXT PRIMARY KEY, spec TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS api_subscriptions(
                 id TEXT PRIMARY KEY, check_id TEXT NOT NULL, body TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS silences(
                 id TEXT PRIMARY KEY, ends_us INTEGER NOT NULL, body TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS catalog(id INTEGER PRIMARY KEY CHECK (id = 1), body TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS check_values(
                 check_id TEXT NOT NULL, time_us INTEGER NOT NULL, value REAL,
                 PRIMARY KEY (check_id, time_us)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS problem_events(
                 problem_id TEXT NOT NULL, at_us INTEGER NOT NULL, what TEXT NOT NULL,
                 by TEXT NOT NULL, detail TEXT NOT NULL,
                 PRIMARY KEY (problem_id, at_us, what)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS used_links(
                 nonce TEXT PRIMARY KEY, problem_id TEXT NOT NULL, used_us INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS sessions(
                 id_hash TEXT PRIMARY KEY, name TEXT NOT NULL, write INTEGER NOT NULL,
                 csrf TEXT NOT NULL, created_us INTEGER NOT NULL, expires_us INTEGER NOT NULL,
                 ended INTEGER NOT NULL DEFAULT 0);",
        )?;
        conn.pragma_update(None, "application_id", APPLICATION_ID)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on a blocking thread: a commit waits for the disk.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut c)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Applies a batch in one transaction; returns the new deliveries' ids.
    pub async fn apply(&self, batch: Batch) -> Result<Vec<i64>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        self.run(move |c| {
            let tx = c.transaction()?;
            for (id, st) in &batch.states {
                tx.execute(
                    "INSERT INTO check_state(check_id, state) VALUES (?1, ?2)
                     ON CONFLICT(check_id) DO UPDATE SET state = excluded.state",
                    params![id, json(st)?],
                )?;
            }
            for a in &batch.alerts {
                tx.execute(
                    "INSERT INTO alerts(check_id, target, value, warn, error, from_level, to_level, time_us)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        a.check_id,
                        a.target,
                        a.value,
                        a.warn,
                        a.error,
                        a.from.as_str(),
                        a.to.as_str(),
                        a.time_us
                    ],
                )?;
            }
            for p in &batch.problems {
                tx.execute(
                    "INSERT INTO problems(id, open, opened_us, body) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(id) DO UPDATE SET open = excluded.open, body = excluded.body",
                    params![p.id, p.is_open(), p.opened_us, json(p)?],
                )?;
            }
            for (check, time_us, value) in &batch.values {
                tx.execute(
                    "INSERT OR REPLACE INTO check_values(check_id, time_us, value) VALUES (?1, ?2, ?3)",
                    params![check, time_us, value],
                )?;
            }
            let mut ids = Vec::new();
            for d in &batch.deliveries {
                tx.execute(
                    "INSERT INTO outbox(problem_id, subscription_id, kind, level, status, attempts,
                         next_attempt_us, created_us, notification)
                     VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?6, ?7)",
                    params![
                        d.problem_id,
                        d.subscription_id,
                        d.kind.as_str(),
                        d.level.as_str(),
                        d.not_before_us,
                        d.notification.at.timestamp_micros(),
                        json(&d.notification)?
                    ],
                )?;
                ids.push(tx.last_insert_rowid());
            }
            tx.commit()?;
            Ok(ids)
        })
        .await
    }

    pub async fn check_states(&self) -> Result<Vec<(String, CheckState)>, StoreError> {
        self.run(|c| {
            let mut stmt = c.prepare("SELECT check_id, state FROM check_state")?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (id, s) = row?;
                out.push((id, parse(&s)?));
            }
            Ok(out)
        })
        .await
    }

    pub async fn open_problems(&self) -> Result<Vec<Problem>, StoreError> {
        self.problems(true, 1000, 0).await
    }

    /// Newest first.
    pub async fn problems(
        &self,
        only_open: bool,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Problem>, StoreError> {
        self.run(move |c| {
            let mut stmt = c.prepare(
                "SELECT body FROM problems WHERE (?1 = 0 OR open = 1)
                 ORDER BY opened_us DESC LIMIT ?2 OFFSET ?3",
            )?;
            let rows =
                stmt.query_map(params![only_open, limit, offset], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for row in rows {
                out.push(parse(&row?)?);
            }
            Ok(out)
        })
        .await
    }

    pub async fn problem(&self, id: &str) -> Result<Option<Problem>, StoreError> {
        let id = id.to_owned();
        self.run(move |c| {
            let body: Option<String> = c
                .query_row("SELECT body FROM problems WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?;
            body.map(|b| parse(&b)).transpose()
        })
        .await
    }

    /// Newest first; `check` narrows to one check.
    pub async fn alerts(
        &self,
        check: Option<String>,
        limit: u32,
        offset: u32,
    ) -> Result<(Vec<AlertRecord>, u64), StoreError> {
        self.run(move |c| {
            let total: i64 = c.query_row(
                "SELECT count(*) FROM alerts WHERE (?1 IS NULL OR check_id = ?1)",
                [&check],
                |r| r.get(0),
            )?;
            let mut stmt = c.prepare(
                "SELECT id, check_id, target, value, warn, error, from_level, to_level, time_us
                 FROM alerts WHERE (?1 IS NULL OR check_id = ?1)
                 ORDER BY id DESC LIMIT ?2 OFFSET ?3",
            )?;
            let rows = stmt.query_map(params![check, limit, offset], |r| {
                let time_us: i64 = r.get(8)?;
                Ok(AlertRecord {
                    id: r.get(0)?,
                    check_id: r.get(1)?,
                    target: r.get(2)?,
                    value: r.get(3)?,
                    warn: r.get(4)?,
                    error: r.get(5)?,
                    from: level_parse(&r.get::<_, String>(6)?),
                    to: level_parse(&r.get::<_, String>(7)?),
                    time_us,
                    time: rfc3339(time_us),
                })
            })?;
            let alerts = rows.collect::<Result<Vec<_>, _>>()?;
            Ok((alerts, u64::try_from(total).unwrap_or(0)))
        })
        .await
    }

    pub async fn api_checks(&self) -> Result<Vec<CheckSpec>, StoreError> {
        self.bodies("SELECT spec FROM api_checks ORDER BY id").await
    }

    pub async fn put_api_check(&self, id: String, spec: &CheckSpec) -> Result<(), StoreError> {
        let body = json(spec)?;
        self.run(move |c| {
            c.execute(
                "INSERT INTO api_checks(id, spec) VALUES (?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET spec = excluded.spec",
                params![id, body],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn delete_api_check(&self, id: String) -> Result<(), StoreError> {
        self.run(move |c| {
            c.execute("DELETE FROM api_checks WHERE id = ?1", [&id])?;
            c.execute("DELETE FROM api_subscriptions WHERE check_id = ?1", [&id])?;
            Ok(())
        })
        .await
    }

    pub async fn api_subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        self.bodies("SELECT body FROM api_subscriptions ORDER BY id")
            .await
    }

    pub async fn put_api_subscription(&self, s: &Subscription) -> Result<(), StoreError> {
        let (id, check, body) = (s.id.clone(), s.check_id.clone(), json(s)?);
        self.run(move |c| {
            c.execute(
                "INSERT INTO api_subscriptions(id, check_id, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET body = excluded.body",
                params![id, check, body],
            )?;
            Ok(())
        })
        .await
    }

    /// Whether subscription `id` was made through the API (and so can be removed through it).
    pub async fn is_api_subscription(&self, id: String) -> Result<bool, StoreError> {
        self.run(move |c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM api_subscriptions WHERE id = ?1",
                [&id],
                |r| r.get::<_, i64>(0),
            )? > 0)
        })
        .await
    }

    pub async fn delete_api_subscription(&self, id: String) -> Result<bool, StoreError> {
        self.run(move |c| Ok(c.execute("DELETE FROM api_subscriptions WHERE id = ?1", [&id])? > 0))
            .await
    }

    /// The collector's checks and SLOs as last read: what the generated checks are made of
    /// while the collector is away at start.
    pub async fn catalog(&self) -> Result<Option<lookout_model::read::Slos>, StoreError> {
        Ok(self
            .bodies("SELECT body FROM catalog WHERE id = 1")
            .await?
            .pop())
    }

    pub async fn put_catalog(&self, slos: &lookout_model::read::Slos) -> Result<(), StoreError> {
        let body = json(slos)?;
        self.run(move |c| {
            c.execute(
                "INSERT INTO catalog(id, body) VALUES (1, ?1)
                 ON CONFLICT(id) DO UPDATE SET body = excluded.body",
                [body],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn silences(&self) -> Result<Vec<Silence>, StoreError> {
        self.bodies("SELECT body FROM silences ORDER BY id").await
    }

    pub async fn put_silence(&self, s: &Silence) -> Result<(), StoreError> {
        let (id, ends, body) = (s.id.clone(), s.ends_us, json(s)?);
        self.run(move |c| {
            c.execute(
                "INSERT INTO silences(id, ends_us, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET ends_us = excluded.ends_us, body = excluded.body",
                params![id, ends, body],
            )?;
            Ok(())
        })
        .await
    }

    /// Whether a silence made through the API (not one of the config's) is held.
    pub async fn holds_silence(&self, id: String) -> Result<bool, StoreError> {
        self.run(move |c| {
            Ok(
                c.query_row("SELECT COUNT(*) FROM silences WHERE id = ?1", [&id], |r| {
                    r.get::<_, i64>(0)
                })? > 0,
            )
        })
        .await
    }

    pub async fn delete_silence(&self, id: String) -> Result<bool, StoreError> {
        self.run(move |c| Ok(c.execute("DELETE FROM silences WHERE id = ?1", [&id])? > 0))
            .await
    }

    async fn bodies<T: DeserializeOwned + Send + 'static>(
        &self,
        sql: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        self.run(move |c| {
            let mut stmt = c.prepare(sql)?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for row in rows {
                out.push(parse(&row?)?);
            }
            Ok(out)
        })
        .await
    }
}

mod console;
mod outbox;

pub use console::{ProblemEvent, Session};

#[cfg(test)]
mod tests;

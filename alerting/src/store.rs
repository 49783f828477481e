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
use crate::problem::{AlertRecord, Delivery, DeliveryStatus, Problem, Silence};
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
}

impl Batch {
    /// Adds a later batch: states and problems are written in order, so the later win.
    pub fn append(&mut self, later: Batch) {
        self.states.extend(later.states);
        self.alerts.extend(later.alerts);
        self.problems.extend(later.problems);
        self.deliveries.extend(later.deliveries);
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
            && self.alerts.is_empty()
            && self.problems.is_empty()
            && self.deliveries.is_empty()
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
             CREATE TABLE IF NOT EXISTS catalog(id INTEGER PRIMARY KEY CHECK (id = 1), body TEXT NOT NULL);",
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

    /// For each receiver its oldest pending delivery, when its time has come, oldest first:
    /// deliveries queued behind one that backs off are not even read, so they can never crowd
    /// out another receiver's.
    pub async fn due(
        &self,
        now_us: i64,
        limit: u32,
    ) -> Result<Vec<(Delivery, Notification)>, StoreError> {
        self.run(move |c| {
            let mut stmt = c.prepare(
                "SELECT id, problem_id, subscription_id, kind, level, status, attempts,
                        next_attempt_us, created_us, sent_us, last_error, notification
                 FROM outbox
                 WHERE id IN (SELECT min(id) FROM outbox WHERE status = 'pending'
                              GROUP BY subscription_id)
                   AND next_attempt_us <= ?1
                 ORDER BY id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![now_us, limit], row_delivery)?;
            let mut out = Vec::new();
            for row in rows {
                let (d, n) = row?;
                out.push((d, parse(&n)?));
            }
            Ok(out)
        })
        .await
    }

    /// Every delivery of a problem, oldest first.
    pub async fn deliveries(&self, problem_id: &str) -> Result<Vec<Delivery>, StoreError> {
        let id = problem_id.to_owned();
        self.run(move |c| {
            let mut stmt = c.prepare(
                "SELECT id, problem_id, subscription_id, kind, level, status, attempts,
                        next_attempt_us, created_us, sent_us, last_error, notification
                 FROM outbox WHERE problem_id = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([id], row_delivery)?;
            Ok(rows
                .map(|r| r.map(|(d, _)| d))
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Whether a delivery is still the next to go to its receiver: pending itself (another
    /// task may have sent it since it was read) and no older one pending, so deliveries to one
    /// receiver go in order and a resolve never overtakes its page.
    pub async fn next_for_receiver(&self, id: i64) -> Result<bool, StoreError> {
        self.run(move |c| {
            let next: Option<bool> = c
                .query_row(
                    "SELECT o.status = 'pending' AND NOT EXISTS (
                         SELECT 1 FROM outbox p WHERE p.subscription_id = o.subscription_id
                             AND p.status = 'pending' AND p.id < o.id)
                     FROM outbox o WHERE o.id = ?1",
                    [id],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(next.unwrap_or(false))
        })
        .await
    }

    /// Marks a reminder skipped when a later notification of its problem to its receiver is
    /// queued; says whether it did.
    pub async fn skip_if_superseded(&self, id: i64) -> Result<bool, StoreError> {
        self.run(move |c| {
            let n = c.execute(
                "UPDATE outbox SET status = 'skipped' WHERE id = ?1 AND kind = 'reminder'
                 AND EXISTS (SELECT 1 FROM outbox l WHERE l.problem_id = outbox.problem_id
                     AND l.subscription_id = outbox.subscription_id AND l.id > outbox.id)",
                [id],
            )?;
            Ok(n > 0)
        })
        .await
    }

    pub async fn mark_sent(&self, id: i64, now_us: i64) -> Result<(), StoreError> {
        self.run(move |c| {
            c.execute(
                "UPDATE outbox SET status = 'sent', sent_us = ?2, attempts = attempts + 1,
                     last_error = NULL WHERE id = ?1",
                params![id, now_us],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn mark_retry(
        &self,
        id: i64,
        next_us: i64,
        error: String,
    ) -> Result<u32, StoreError> {
        self.run(move |c| {
            c.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_us = ?2, last_error = ?3
                 WHERE id = ?1",
                params![id, next_us, error],
            )?;
            let n: u32 = c.query_row("SELECT attempts FROM outbox WHERE id = ?1", [id], |r| {
                r.get(0)
            })?;
            Ok(n)
        })
        .await
    }

    pub async fn mark_failed(&self, id: i64, error: String) -> Result<(), StoreError> {
        self.run(move |c| {
            c.execute(
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?2
                 WHERE id = ?1",
                params![id, error],
            )?;
            Ok(())
        })
        .await
    }

    /// (pending, failed) deliveries.
    pub async fn outbox_counts(&self) -> Result<(u64, u64), StoreError> {
        self.run(|c| {
            let count = |status: &str| -> Result<u64, rusqlite::Error> {
                c.query_row(
                    "SELECT count(*) FROM outbox WHERE status = ?1",
                    [status],
                    |r| r.get::<_, i64>(0),
                )
                .map(|n| u64::try_from(n).unwrap_or(0))
            };
            Ok((count("pending")?, count("failed")?))
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

fn row_delivery(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Delivery, String)> {
    Ok((
        Delivery {
            id: r.get(0)?,
            problem_id: r.get(1)?,
            subscription_id: r.get(2)?,
            kind: kind_parse(&r.get::<_, String>(3)?),
            level: level_parse(&r.get::<_, String>(4)?),
            status: DeliveryStatus::parse(&r.get::<_, String>(5)?),
            attempts: r.get(6)?,
            next_attempt_us: r.get(7)?,
            created_us: r.get(8)?,
            sent_us: r.get(9)?,
            last_error: r.get(10)?,
        },
        r.get(11)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Links;

    fn delivery(kind: Kind, receiver: &str) -> NewDelivery {
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        NewDelivery {
            problem_id: "p".into(),
            subscription_id: receiver.into(),
            kind,
            level: Level::Error,
            notification: Notification {
                id: format!("{kind:?}"),
                problem_id: "p".into(),
                kind,
                check_id: "c".into(),
                check_name: "c".into(),
                description: String::new(),
                target: "down(c)".into(),
                state: Level::Error,
                previous: Level::Ok,
                value: Some(1.0),
                warn: None,
                error: Some(1.0),
                worse: "higher".into(),
                regions: Vec::new(),
                since: at,
                at,
                reason: None,
                severity: "page".into(),
                labels: Default::default(),
                links: Links::default(),
            },
            not_before_us: 0,
        }
    }

    #[tokio::test]
    async fn each_receivers_next_delivery_only_and_stale_reminders_are_skipped() {
        let s = Store::in_memory().unwrap();
        let ids = s
            .apply(Batch {
                deliveries: vec![
                    delivery(Kind::Trigger, "slack>"),
                    delivery(Kind::Reminder, "slack>"),
                    delivery(Kind::Resolve, "slack>"),
                    delivery(Kind::Trigger, "pager>"),
                ],
                ..Batch::default()
            })
            .await
            .unwrap();
        let due: Vec<i64> = s
            .due(1, 10)
            .await
            .unwrap()
            .iter()
            .map(|(d, _)| d.id)
            .collect();
        assert_eq!(due, [ids[0], ids[3]], "one per receiver, oldest first");
        assert!(s.next_for_receiver(ids[0]).await.unwrap());
        assert!(
            !s.next_for_receiver(ids[1]).await.unwrap(),
            "behind the trigger"
        );
        s.mark_sent(ids[0], 2).await.unwrap();
        assert!(!s.next_for_receiver(ids[0]).await.unwrap(), "sent already");
        assert!(
            s.skip_if_superseded(ids[1]).await.unwrap(),
            "the resolve came after it"
        );
        assert!(
            !s.skip_if_superseded(ids[2]).await.unwrap(),
            "resolves are never skipped"
        );
        assert_eq!(s.outbox_counts().await.unwrap(), (2, 0));
    }
}

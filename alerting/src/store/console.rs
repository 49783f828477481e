//! What the console keeps: each check's evaluated values (its chart), what people did to a
//! problem (its history), the acknowledge links used, and sign-in sessions.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Store, StoreError};

/// Something that happened to a problem besides its notifications: an acknowledgement, its
/// withdrawal, a silence made from it. Recorded once per (problem, time, what), so applying
/// the same change again (a replica reading the log from its start) adds nothing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProblemEvent {
    pub problem_id: String,
    pub at_us: i64,
    /// `acknowledged`, `unacknowledged`, `silenced`, `silence expired`.
    pub what: String,
    pub by: String,
    pub detail: String,
}

/// A signed-in person. The store keeps the SHA-256 of the cookie's value, never the value.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub id_hash: String,
    pub name: String,
    pub write: bool,
    pub csrf: String,
    pub created_us: i64,
    pub expires_us: i64,
    pub ended: bool,
}

impl Store {
    pub async fn record_event(&self, ev: ProblemEvent) -> Result<(), StoreError> {
        self.run(move |c| {
            c.execute(
                "INSERT OR IGNORE INTO problem_events(problem_id, at_us, what, by, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![ev.problem_id, ev.at_us, ev.what, ev.by, ev.detail],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn events(&self, problem_id: &str) -> Result<Vec<ProblemEvent>, StoreError> {
        let id = problem_id.to_owned();
        self.run(move |c| {
            let mut stmt = c.prepare(
                "SELECT problem_id, at_us, what, by, detail FROM problem_events
                 WHERE problem_id = ?1 ORDER BY at_us",
            )?;
            let rows = stmt.query_map([&id], |r| {
                Ok(ProblemEvent {
                    problem_id: r.get(0)?,
                    at_us: r.get(1)?,
                    what: r.get(2)?,
                    by: r.get(3)?,
                    detail: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Records an acknowledge link as used; `false` when it already was.
    pub async fn use_link(
        &self,
        nonce: String,
        problem_id: String,
        at_us: i64,
    ) -> Result<bool, StoreError> {
        self.run(move |c| {
            Ok(c.execute(
                "INSERT OR IGNORE INTO used_links(nonce, problem_id, used_us) VALUES (?1, ?2, ?3)",
                params![nonce, problem_id, at_us],
            )? > 0)
        })
        .await
    }

    /// When the link of `nonce` was used, if it was.
    pub async fn link_used(&self, nonce: String) -> Result<Option<i64>, StoreError> {
        self.run(move |c| {
            Ok(c.query_row(
                "SELECT used_us FROM used_links WHERE nonce = ?1",
                [&nonce],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    /// A check's values from `from_us` to `to_us`, oldest first.
    pub async fn values(
        &self,
        check: &str,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<(i64, Option<f64>)>, StoreError> {
        let check = check.to_owned();
        self.run(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT time_us, value FROM check_values
                 WHERE check_id = ?1 AND time_us >= ?2 AND time_us <= ?3 ORDER BY time_us",
            )?;
            let rows = stmt.query_map(params![check, from_us, to_us], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Forgets values older than `before_us`; returns how many.
    pub async fn prune_values(&self, before_us: i64) -> Result<usize, StoreError> {
        self.run(
            move |c| Ok(c.execute("DELETE FROM check_values WHERE time_us < ?1", [before_us])?),
        )
        .await
    }

    pub async fn put_session(&self, s: Session) -> Result<(), StoreError> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO sessions(id_hash, name, write, csrf, created_us, expires_us, ended)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
                params![
                    s.id_hash,
                    s.name,
                    s.write,
                    s.csrf,
                    s.created_us,
                    s.expires_us
                ],
            )?;
            // Expired sessions are of no use to anyone: each sign-in clears them.
            c.execute("DELETE FROM sessions WHERE expires_us < ?1", [s.created_us])?;
            Ok(())
        })
        .await
    }

    pub async fn session(&self, id_hash: String) -> Result<Option<Session>, StoreError> {
        self.run(move |c| {
            Ok(c.query_row(
                "SELECT id_hash, name, write, csrf, created_us, expires_us, ended FROM sessions
                 WHERE id_hash = ?1",
                [&id_hash],
                |r| {
                    Ok(Session {
                        id_hash: r.get(0)?,
                        name: r.get(1)?,
                        write: r.get(2)?,
                        csrf: r.get(3)?,
                        created_us: r.get(4)?,
                        expires_us: r.get(5)?,
                        ended: r.get(6)?,
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    /// Signs every read-only session out (a read-only token was revoked); answers how many.
    pub async fn end_read_sessions(&self) -> Result<usize, StoreError> {
        self.run(|c| {
            Ok(c.execute(
                "UPDATE sessions SET ended = 1 WHERE write = 0 AND ended = 0",
                [],
            )?)
        })
        .await
    }

    /// Signs a session out; it stays known, so its cookie is refused as signed out.
    pub async fn end_session(&self, id_hash: String) -> Result<(), StoreError> {
        self.run(move |c| {
            c.execute(
                "UPDATE sessions SET ended = 1 WHERE id_hash = ?1",
                [&id_hash],
            )?;
            Ok(())
        })
        .await
    }
}

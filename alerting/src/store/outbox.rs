//! The outbox's side of the store: which deliveries are due, one receiver at a time, and what
//! became of each attempt.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, kind_parse, level_parse, parse};
use crate::notify::Notification;
use crate::problem::{Delivery, DeliveryStatus};

impl Store {
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

    /// Looks at a delivery again at `next_us` without counting an attempt: another replica
    /// holds its claim, and its backoff is not this one's.
    pub async fn postpone(&self, id: i64, next_us: i64) -> Result<(), StoreError> {
        self.run(move |c| {
            c.execute(
                "UPDATE outbox SET next_attempt_us = ?2 WHERE id = ?1",
                params![id, next_us],
            )?;
            Ok(())
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

//! What people do to problems and silences, one way for the API and the console: each checks
//! what it acts on, then goes through [`crate::changes`] (the replicated log on a replica).

use lookout_api::ApiError;

use crate::changes::{Change, make};
use crate::engine::Shared;
use crate::problem::{Ack, Problem, Silence};

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// The open problem `id`, or why there is none to act on.
pub async fn open_problem(shared: &Shared, id: &str) -> Result<Problem, ApiError> {
    if let Some(p) = shared
        .engine
        .lock()
        .await
        .problems
        .values()
        .find(|p| p.id == id)
    {
        return Ok(p.clone());
    }
    Err(match shared.store.problem(id).await.map_err(internal)? {
        Some(_) => ApiError::Conflict(format!(
            "problem {id:?} is over; acknowledgements end with it"
        )),
        None => ApiError::NotFound(format!("no problem with id {id:?}")),
    })
}

/// Acknowledges an open problem: its reminders stop. `link` is the nonce of the acknowledge
/// link it came through, if any.
pub async fn ack(
    shared: &Shared,
    id: &str,
    by: &str,
    comment: &str,
    link: Option<String>,
) -> Result<Problem, ApiError> {
    if by.trim().is_empty() {
        return Err(ApiError::BadRequest("`by`: say who acknowledges".into()));
    }
    open_problem(shared, id).await?;
    let ack = Ack {
        by: by.trim().to_owned(),
        comment: comment.trim().to_owned(),
        at_us: now_us(),
    };
    make(
        shared,
        Change::Ack {
            problem_id: id.to_owned(),
            ack,
            link,
        },
    )
    .await?;
    after(shared, id, "acknowledged").await
}

/// Withdraws an acknowledgement: the reminders start again.
pub async fn unack(
    shared: &Shared,
    id: &str,
    by: &str,
    comment: &str,
) -> Result<Problem, ApiError> {
    let p = open_problem(shared, id).await?;
    if p.ack.is_none() {
        return Err(ApiError::Conflict(format!(
            "problem {id:?} is not acknowledged"
        )));
    }
    make(
        shared,
        Change::Unack {
            problem_id: id.to_owned(),
            by: by.trim().to_owned(),
            comment: comment.trim().to_owned(),
            at_us: now_us(),
        },
    )
    .await?;
    after(shared, id, "unacknowledged").await
}

async fn after(shared: &Shared, id: &str, what: &str) -> Result<Problem, ApiError> {
    let e = shared.engine.lock().await;
    e.problems
        .values()
        .find(|p| p.id == id)
        .cloned()
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "problem {id:?} closed as it was {what}; acknowledgements end with it"
            ))
        })
}

/// What a new silence is to be.
#[derive(Debug, Clone)]
pub struct NewSilence {
    pub matchers: Vec<String>,
    pub starts_us: i64,
    pub ends_us: i64,
    pub created_by: String,
    pub comment: String,
    pub kind: String,
    /// The problem it is made from, whose history records it.
    pub from_problem: Option<String>,
}

/// Validates and makes a silence.
pub async fn silence(shared: &Shared, new: NewSilence) -> Result<Silence, ApiError> {
    {
        let e = shared.engine.lock().await;
        crate::api::silence_from(
            &e.checks,
            new.matchers.clone(),
            new.starts_us,
            new.ends_us,
            &new.kind,
        )
        .map_err(ApiError::BadRequest)?;
    }
    let silence = Silence {
        id: format!("silence-{}", now_us()),
        matchers: new.matchers,
        starts_us: new.starts_us,
        ends_us: new.ends_us,
        created_by: new.created_by,
        comment: new.comment,
        kind: new.kind,
    };
    make(
        shared,
        Change::Silence {
            silence: silence.clone(),
            from_problem: new.from_problem,
        },
    )
    .await?;
    Ok(silence)
}

/// Expires a silence made through the API or the console; `by` is who, for the history of
/// the problems it held.
pub async fn expire_silence(shared: &Shared, id: &str, by: &str) -> Result<(), ApiError> {
    if let Some(m) = id.strip_prefix("maintenance-")
        && crate::api::maintenance_silences(&shared.feed.borrow())
            .iter()
            .any(|x| x.id == id)
    {
        return Err(ApiError::Conflict(format!(
            "silence {id:?} is the collector's scheduled maintenance; cancel it there \
             (DELETE /api/v1/maintenance/{m})"
        )));
    }
    if !shared
        .engine
        .lock()
        .await
        .silences
        .iter()
        .any(|x| x.id == id)
    {
        return Err(ApiError::NotFound(format!("no silence with id {id:?}")));
    }
    if !shared
        .store
        .holds_silence(id.to_owned())
        .await
        .map_err(internal)?
    {
        return Err(ApiError::Conflict(format!(
            "silence {id:?} comes from the config; change it there"
        )));
    }
    make(
        shared,
        Change::Unsilence {
            id: id.to_owned(),
            by: by.trim().to_owned(),
            at_us: now_us(),
        },
    )
    .await
}

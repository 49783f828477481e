//! `/api/silences`: silences made through the API, and the collector's maintenance shown as
//! read-only ones.

use axum::extract::State;
use axum::http::StatusCode;
use lookout_api::{ApiError, ApiJson, ApiPath, ApiResult};
use serde::Deserialize;

use super::S;
use crate::check::Check;
use crate::problem::Silence;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SilenceSpec {
    #[serde(default)]
    matchers: Vec<String>,
    /// RFC 3339; now when not given.
    starts: Option<String>,
    /// RFC 3339, or give `duration`.
    ends: Option<String>,
    duration: Option<String>,
    #[serde(default)]
    created_by: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    kind: Option<String>,
}

pub(super) fn time(field: &str, v: &str) -> Result<i64, ApiError> {
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.timestamp_micros())
        .map_err(|e| {
            ApiError::BadRequest(format!("`{field}`: {v:?} is not an RFC 3339 time ({e})"))
        })
}

/// Validates a silence (the API's and the config's).
pub fn silence_from(
    known: &std::collections::BTreeMap<String, Check>,
    matchers: Vec<String>,
    starts_us: i64,
    ends_us: i64,
    kind: &str,
) -> Result<(), String> {
    if ends_us <= starts_us {
        return Err("the silence ends before it starts".into());
    }
    if kind == "maintenance" {
        return Err(
            "`kind`: scheduled maintenance is the collector's: schedule it with POST \
             /api/v1/maintenance on the collector, which holds these pages for it"
                .into(),
        );
    }
    if !matches!(kind, "silence" | "replacer") {
        return Err(format!("`kind`: {kind:?} is not one of silence, replacer"));
    }
    for m in &matchers {
        let group_known = m
            .strip_prefix("group:")
            .is_some_and(|g| known.values().any(|c| c.group.as_deref() == Some(g)));
        let about_known = m
            .strip_prefix("about:")
            .is_some_and(|a| known.values().any(|c| c.about.as_deref() == Some(a)));
        if !known.contains_key(m) && !group_known && !about_known {
            return Err(format!(
                "`matchers`: {m:?} is neither a check id, a group (`group:NAME`) nor a probe \
                 check that alert checks are about (`about:CHECK`)"
            ));
        }
    }
    Ok(())
}

pub(super) async fn create_silence(
    State(s): S,
    ApiJson(spec): ApiJson<SilenceSpec>,
) -> ApiResult<(StatusCode, ApiJson<Silence>)> {
    let now = chrono::Utc::now().timestamp_micros();
    let starts = spec
        .starts
        .as_deref()
        .map(|v| time("starts", v))
        .transpose()?
        .unwrap_or(now);
    let ends = match (&spec.ends, &spec.duration) {
        (Some(e), None) => time("ends", e)?,
        (None, Some(d)) => {
            let d = humantime::parse_duration(d).map_err(|e| {
                ApiError::BadRequest(format!("`duration`: {d:?} is not a duration ({e})"))
            })?;
            starts.saturating_add(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give `ends` or `duration` (not both)".into(),
            ));
        }
    };
    let silence = crate::actions::silence(
        &s,
        crate::actions::NewSilence {
            matchers: spec.matchers,
            starts_us: starts,
            ends_us: ends,
            created_by: spec.created_by,
            comment: spec.comment,
            kind: spec.kind.unwrap_or_else(|| "silence".into()),
            from_problem: None,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, ApiJson(silence)))
}

/// The collector's maintenance windows not yet over, as the silences they are to the alerter:
/// read-only, holding every check about a check in maintenance.
pub fn maintenance_silences(feed: &crate::engine::Feed) -> Vec<Silence> {
    feed.states
        .maintenance
        .iter()
        .map(|m| Silence {
            id: format!("maintenance-{}", m.id),
            matchers: m.checks.iter().map(|c| format!("about:{c}")).collect(),
            starts_us: m.starts_us,
            ends_us: m.ends_us,
            created_by: if m.created_by.is_empty() {
                "collector".into()
            } else {
                m.created_by.clone()
            },
            comment: format!("scheduled maintenance: {}", m.name),
            kind: "maintenance".into(),
        })
        .collect()
}

pub(super) async fn list_silences(State(s): S) -> ApiJson<Vec<Silence>> {
    let mut all = s.engine.lock().await.silences.clone();
    all.extend(maintenance_silences(&s.feed.borrow()));
    ApiJson(all)
}

pub(super) async fn delete_silence(
    State(s): S,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    crate::actions::expire_silence(&s, &id, "the API").await?;
    Ok(StatusCode::NO_CONTENT)
}

//! What agents ask and are told: `GET /api/v1/agents`, their command poll, and rechecks asked
//! for through the API.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use lookout_api::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use serde::{Deserialize, Serialize};

use std::collections::HashSet;

use lookout_model::probe::Commands;

use crate::AppState;

/// The longest an agent's command poll is held.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// What a recheck's runs carry as `reason_region`: no region's failure asked for them.
const RECHECK_REASON: &str = "recheck";

#[derive(Serialize)]
pub(super) struct AgentView {
    agent: String,
    region: String,
    last_poll_seconds_ago: f64,
    /// See [`clock_offset`]; `null` before the agent's first batch.
    clock_offset_seconds: Option<f64>,
}

pub(super) async fn get_agents(State(s): State<Arc<AppState>>) -> ApiJson<Vec<AgentView>> {
    let offsets = s
        .clock
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    ApiJson(
        s.hub
            .agents()
            .into_iter()
            .map(|(agent, region, ago)| AgentView {
                clock_offset_seconds: offsets.get(&agent).copied(),
                agent,
                region,
                last_poll_seconds_ago: ago,
            })
            .collect(),
    )
}

/// How far an agent's clock seems behind the collector's, in seconds, from one batch: the

#[derive(Deserialize)]
pub(super) struct CommandsQuery {
    region: String,
    #[serde(default)]
    checks: String,
    wait: Option<String>,
    /// Where the agent serves `/metrics`, for `GET /api/v1/targets`.
    metrics_url: Option<String>,
}

pub(super) async fn get_commands(
    State(s): State<Arc<AppState>>,
    ApiPath(agent): ApiPath<String>,
    ApiQuery(q): ApiQuery<CommandsQuery>,
) -> ApiResult<ApiJson<Commands>> {
    let wait = match q.wait.as_deref() {
        None => Duration::ZERO,
        Some(w) => humantime::parse_duration(w)
            .map_err(|e| ApiError::BadRequest(format!("`wait`: {w:?} is not a duration ({e})")))?,
    }
    .min(MAX_WAIT);
    let checks: HashSet<String> = q
        .checks
        .split(',')
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(url) = q.metrics_url {
        let parsed = url::Url::parse(&url).ok().filter(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.port_or_known_default().is_some()
                && u.host_str().is_some()
        });
        if parsed.is_none() {
            return Err(ApiError::BadRequest(format!(
                "`metrics_url`: {url:?} is not an http(s) URL with a host"
            )));
        }
        s.hub.advertise(&agent, &q.region, url);
    }
    let run = s.hub.poll(&agent, &q.region, checks, wait).await;
    Ok(ApiJson(Commands { run }))
}

#[derive(Serialize)]
pub(super) struct RecheckBody {
    check: String,
    /// The agents that will run it now, sorted (empty when none runs it or none polls).
    asked: Vec<String>,
}

/// `POST /api/v1/checks/{check}/recheck`: every live agent that runs the check, in every
/// region, runs it now; their results come in as confirmation runs.
pub(super) async fn post_recheck(
    State(s): State<Arc<AppState>>,
    ApiPath(check): ApiPath<String>,
) -> ApiResult<(StatusCode, ApiJson<RecheckBody>)> {
    s.check_info(&check)?;
    let (asked, queued) = s.hub.ask_all(&check, RECHECK_REASON);
    tracing::info!(%check, agents = ?asked, "recheck asked");
    s.metrics
        .confirmations
        .with_label_values(&[check.as_str()])
        .inc_by(queued as u64);
    Ok((StatusCode::ACCEPTED, ApiJson(RecheckBody { check, asked })))
}

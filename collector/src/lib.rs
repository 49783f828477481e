//! The collector: takes probe results from the agents (authenticated, idempotent on
//! `(agent, seq)`, answered only once stored), keeps them, asks other regions to confirm a new
//! failure, owns every check's SLO and the scheduled maintenance, and serves the SLA figures
//! of any window by them.
#![forbid(unsafe_code)]

mod availability;
mod commit;
pub mod config;
pub mod confirm;
pub mod ingest;
pub mod live;
pub mod maintenance;
mod metrics;
pub mod rollup;
pub mod sink;
mod slo_history;
pub mod store;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};
use lookout_api::discovery::TargetGroup;
use lookout_api::{ApiError, ApiFastJson, ApiJson, ApiPath, ApiQuery, ApiResult};
use lookout_model::health::{Health, HealthStatus};
use lookout_model::probe::{BatchAck, Commands, Outcome, ProbeResult, ResultBatch};
use lookout_model::secret::Secret;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use ingest::{CheckInfo, Known};
pub use maintenance::MaintenanceSpec;
use metrics::Metrics;
use rollup::LiveTail;
pub use rollup::{RollupSettings, Rollups};
use store::{ResultFilter, ResultStore};

/// Largest request body: a full batch of results with room to spare.
const MAX_BODY: usize = 16 << 20;
/// The longest an agent's command poll is held.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// How long a states poll is held by default: under the 30 s or so after which proxies
/// commonly cut an idle request; a change is answered at once anyway.
const STATES_WAIT: Duration = Duration::from_secs(25);
/// The longest a states poll is held.
const MAX_STATES_WAIT: Duration = Duration::from_secs(60);
/// What a recheck's runs carry as `reason_region`: no region's failure asked for them.
const RECHECK_REASON: &str = "recheck";

#[derive(Clone)]
pub struct CollectorSettings {
    pub token: Secret,
    pub known: Known,
    /// Where every newly stored result is copied to (InfluxDB); empty for none.
    pub sinks: Vec<Arc<dyn sink::ResultSink>>,
    pub rollup: RollupSettings,
    /// How often complete minutes are rolled up (late results are corrected as often).
    pub rollup_every: Duration,
    /// The maintenance windows written in the config (validated by
    /// [`maintenance::problems`]); more come through the API.
    pub maintenance: Vec<MaintenanceSpec>,
}

impl CollectorSettings {
    /// Default rollups and retention, no sinks, no maintenance.
    pub fn new(token: Secret, known: Known) -> Self {
        CollectorSettings {
            token,
            known,
            sinks: Vec::new(),
            rollup: RollupSettings::default(),
            rollup_every: Duration::from_secs(60),
            maintenance: Vec::new(),
        }
    }
}

pub(crate) struct AppState {
    pub(crate) settings: CollectorSettings,
    pub(crate) rollups: Arc<Rollups>,
    committer: commit::Committer,
    /// Each agent's clock offset from its last batch.
    clock: std::sync::Mutex<BTreeMap<String, f64>>,
    hub: confirm::Hub,
    live: Arc<live::Live>,
    /// Set when the collector stops: long polls answer at once instead of holding it up.
    stopping: watch::Receiver<bool>,
    metrics: Metrics,
    started: Instant,
    /// One scrape at a time: a refresh resets the gauges before it fills them again.
    scrape: std::sync::Mutex<()>,
    pub(crate) maintenance: maintenance::Registry,
    /// Since when each known check has had its SLO.
    pub(crate) slo_since: BTreeMap<String, i64>,
}

impl AppState {
    fn store(&self) -> &Arc<dyn ResultStore> {
        self.rollups.store()
    }

    /// What the collector knows of a check, or the defaults for one it was not told of.
    pub(crate) fn info_or_default(&self, check: &str) -> CheckInfo {
        self.settings
            .known
            .get(check)
            .cloned()
            .unwrap_or_else(CheckInfo::unknown)
    }

    /// What the collector knows of a check; any check when it was told of none.
    pub(crate) fn check_info(&self, check: &str) -> Result<CheckInfo, ApiError> {
        match self.settings.known.get(check) {
            Some(i) => Ok(i.clone()),
            None if self.settings.known.is_empty() => Ok(CheckInfo::unknown()),
            None => Err(ApiError::NotFound(format!("no check named {check:?}"))),
        }
    }
}

pub struct Collector {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    passes: JoinHandle<()>,
    ticker: JoinHandle<()>,
}

/// Rolls up now, then at every interval, off the async workers.
async fn rollup_passes(rollups: Arc<Rollups>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let r = rollups.clone();
        let now = chrono::Utc::now().timestamp_micros();
        match tokio::task::spawn_blocking(move || r.pass(now)).await {
            Ok(Ok(report)) => {
                tracing::debug!(
                    checks = report.checks,
                    minutes = report.minutes,
                    raw_removed = report.raw_removed,
                    "rollup pass"
                )
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "rollup pass failed; the next one tries again")
            }
            Err(e) => tracing::error!(error = %e, "rollup pass panicked"),
        }
    }
}

/// Looks for regions gone silent every second: silence comes with no request to notice it.
async fn live_ticks(live: Arc<live::Live>) {
    let mut tick = tokio::time::interval(live::TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        live.advance(chrono::Utc::now().timestamp_micros());
    }
}

/// After a restart: the live state from the rollups' live tails, with the reasons of the
/// failures still current read back from the store. Blocking.
fn replay_live(rollups: &Rollups, live: &live::Live, now: i64) {
    for LiveTail {
        check,
        regions,
        results,
    } in rollups.tails()
    {
        let reason = |region: &str, start: i64| {
            rollups
                .store()
                .failures(&check, start, start.saturating_add(1), 64)
                .ok()?
                .into_iter()
                .find(|r| r.region == region)
                .and_then(|r| match r.outcome {
                    Outcome::Fail(f) => Some(f),
                    Outcome::Ok => None,
                })
        };
        live.replay(&check, &regions, results, reason, now);
    }
}

impl Collector {
    pub async fn start(
        settings: CollectorSettings,
        store: Arc<dyn ResultStore>,
        listener: TcpListener,
    ) -> Result<Collector, std::io::Error> {
        let metrics = Metrics::new().map_err(std::io::Error::other)?;
        let (known, rollup_settings) = (settings.known.clone(), settings.rollup);
        let live = Arc::new(live::Live::new(
            &settings.known,
            metrics.state_changes.clone(),
        ));
        let now = chrono::Utc::now().timestamp_micros();
        let config_maintenance = settings.maintenance.clone();
        // Loading reads the store: a blocking thread. The maintenance windows and SLOs are
        // in the store before the rollups read it.
        let (rollups, registry, slo_since) = tokio::task::spawn_blocking({
            let live = live.clone();
            move || {
                let registry =
                    maintenance::Registry::load(store.as_ref(), &config_maintenance, now)?;
                let slo_since = slo_history::record(store.as_ref(), &known, now)?;
                let r = Rollups::open(store, known, rollup_settings, now)?;
                replay_live(&r, &live, now);
                live.set_maintenance(registry.not_over(now), now);
                Ok::<_, store::StoreError>((r, registry, slo_since))
            }
        })
        .await
        .map_err(std::io::Error::other)?
        .map_err(std::io::Error::other)?;
        let rollups = Arc::new(rollups);
        let passes = tokio::spawn(rollup_passes(rollups.clone(), settings.rollup_every));
        let ticker = tokio::spawn(live_ticks(live.clone()));
        let (stop, stopping) = watch::channel(false);
        let committer = commit::Committer::start(rollups.store().clone())?;
        let state = Arc::new(AppState {
            settings,
            rollups,
            committer,
            clock: std::sync::Mutex::new(BTreeMap::new()),
            hub: confirm::Hub::default(),
            live,
            stopping: stopping.clone(),
            metrics,
            started: Instant::now(),
            scrape: std::sync::Mutex::new(()),
            maintenance: registry,
            slo_since,
        });
        let addr = listener.local_addr()?;
        let mut stopped = stopping;
        let app = router(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
        });
        tracing::info!(%addr, "collector listening");
        Ok(Collector {
            addr,
            stop,
            task,
            passes,
            ticker,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn shutdown(self) {
        self.passes.abort();
        self.ticker.abort();
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

async fn post_results(
    State(s): State<Arc<AppState>>,
    ApiFastJson(batch): ApiFastJson<ResultBatch>,
) -> ApiResult<Response> {
    let now = chrono::Utc::now().timestamp_micros();
    if let Err(e) = ingest::validate(
        &batch,
        &s.settings.known,
        now,
        s.settings.rollup.raw_retention_us,
    ) {
        s.metrics
            .results
            .with_label_values(&["rejected"])
            .inc_by(batch.results.len() as u64);
        return Err(ApiError::BadRequest(e));
    }
    // Stored by the commit thread (a sync to disk never stalls the async workers), together
    // with whatever else arrived meanwhile; the results come back, uncopied.
    let (results, inserted) = match s.committer.insert(batch.results).await {
        Ok(x) => x,
        Err(e) => (Vec::new(), Err(e)),
    };
    let batch = ResultBatch { results };
    let inserted = match inserted {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "results not stored; the agents keep them and retry");
            // Nothing acknowledged, nothing lost: the agent retries after this.
            return Ok((
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
                axum::Json(serde_json::json!({"error": "results could not be stored; retry later", "status": 503})),
            )
                .into_response());
        }
    };
    let (stored, duplicates) = store::counts(&inserted);
    sink::offer_stored(&s.settings.sinks, &batch.results, &inserted);
    s.metrics
        .results
        .with_label_values(&["stored"])
        .inc_by(stored as u64);
    s.metrics
        .results
        .with_label_values(&["duplicate"])
        .inc_by(duplicates as u64);
    s.metrics.stored.set(s.store().len() as i64);
    s.rollups.observe(&batch.results, &inserted);
    // Only once stored: a waiter told of a change must find it in every answer after.
    s.live.observe(
        &batch.results,
        &inserted,
        chrono::Utc::now().timestamp_micros(),
    );
    if let Some(first) = batch.results.first() {
        s.metrics
            .agent_last_result
            .with_label_values(&[first.agent.as_str(), first.region.as_str()])
            .set(now as f64 / 1e6);
    }
    if let Some(agent) = batch.results.first().map(|r| r.agent.clone())
        && let Some(offset) = clock_offset(&batch.results, now)
    {
        s.metrics
            .clock_offset
            .with_label_values(&[agent.as_str()])
            .set(offset);
        if offset < -1.0 {
            tracing::warn!(%agent, ahead_seconds = -offset, "the agent's clock is ahead of the collector's: its results' times are off");
        }
        s.clock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(agent, offset);
    }
    for (r, new) in batch.results.iter().zip(&inserted) {
        // A replay is acknowledged, not counted again.
        if *new {
            let objective_us = s.settings.known.get(&r.check).map_or_else(
                || CheckInfo::unknown().slo.latency_objective_us(),
                |i| i.slo.latency_objective_us(),
            );
            s.metrics.observe(r, objective_us);
        }
        let asked = s.hub.observe(r);
        if !asked.is_empty() {
            tracing::info!(check = %r.check, region = %r.region, agents = ?asked, "new failure; asking other regions to confirm");
            s.metrics
                .confirmations
                .with_label_values(&[&r.check])
                .inc_by(asked.len() as u64);
        }
    }
    Ok((
        StatusCode::OK,
        axum::Json(BatchAck {
            accepted: stored,
            duplicates,
        }),
    )
        .into_response())
}

#[derive(Deserialize)]
struct ResultsQuery {
    check: Option<String>,
    region: Option<String>,
    agent: Option<String>,
    limit: Option<usize>,
}

async fn get_results(
    State(s): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<ResultsQuery>,
) -> ApiResult<ApiJson<lookout_model::read::Results>> {
    let limit = q.limit.unwrap_or(1000);
    if !(1..=100_000).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "`limit` must be from 1 to 100000, got {limit}"
        )));
    }
    let filter = ResultFilter {
        check: q.check,
        region: q.region,
        agent: q.agent,
        limit,
    };
    let store = s.store().clone();
    let results = tokio::task::spawn_blocking(move || store.query(&filter))
        .await
        .map_err(|e| ApiError::Internal(format!("store task failed: {e}")))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(ApiJson(lookout_model::read::Results { results }))
}

#[derive(Deserialize)]
struct CommandsQuery {
    region: String,
    #[serde(default)]
    checks: String,
    wait: Option<String>,
    /// Where the agent serves `/metrics`, for `GET /api/v1/targets`.
    metrics_url: Option<String>,
}

async fn get_commands(
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

#[derive(Deserialize)]
struct StatesQuery {
    after: Option<String>,
    wait: Option<String>,
}

/// `GET /api/v1/states?after=N&wait=25s`: every check's live state, at once when it differs
/// from version `after` (or without `after`), else as soon as it changes or after `wait`.
async fn get_states(
    State(s): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<StatesQuery>,
) -> ApiResult<ApiJson<live::States>> {
    let wait = match q.wait.as_deref() {
        None => STATES_WAIT,
        Some(w) => humantime::parse_duration(w).map_err(|e| {
            ApiError::BadRequest(format!(
                "`wait`: {w:?} is not a duration ({e}); write e.g. `25s`"
            ))
        })?,
    }
    .min(MAX_STATES_WAIT);
    let after = match q.after.as_deref() {
        None => None,
        Some(a) => Some(a.parse::<u64>().map_err(|_| {
            ApiError::BadRequest(format!(
                "`after`: {a:?} is not a version (the `version` of an earlier answer)"
            ))
        })?),
    };
    if let Some(after) = after {
        let mut changes = s.live.subscribe();
        let mut stopping = s.stopping.clone();
        // Any other version answers at once, a lower one too: a version from before a
        // restart of the collector must not hold the poll.
        tokio::select! {
            _ = tokio::time::timeout(wait, changes.wait_for(|v| *v != after)) => {}
            _ = stopping.wait_for(|stop| *stop) => {}
        }
    }
    Ok(ApiJson(
        s.live.states(chrono::Utc::now().timestamp_micros()),
    ))
}

#[derive(Serialize)]
struct RecheckBody {
    check: String,
    /// The agents that will run it now, sorted (empty when none runs it or none polls).
    asked: Vec<String>,
}

/// `POST /api/v1/checks/{check}/recheck`: every live agent that runs the check, in every
/// region, runs it now; their results come in as confirmation runs.
async fn post_recheck(
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

/// The most events one post may carry, and the longest text of one.
const MAX_EVENTS: usize = 1_000;
const MAX_EVENT_TEXT: usize = 2_000;

/// `POST /api/v1/events`: events from other components (the replacer's decisions), kept for
/// dashboards to annotate with and the alerter to read.
async fn post_events(
    State(s): State<Arc<AppState>>,
    ApiJson(batch): ApiJson<lookout_model::event::EventBatch>,
) -> ApiResult<(StatusCode, ApiJson<serde_json::Value>)> {
    if batch.events.len() > MAX_EVENTS {
        return Err(ApiError::PayloadTooLarge(format!(
            "at most {MAX_EVENTS} events per post, got {}",
            batch.events.len()
        )));
    }
    for (i, e) in batch.events.iter().enumerate() {
        for (field, value, max) in [
            ("source", &e.source, 100),
            ("kind", &e.kind, 100),
            ("service", &e.service, 200),
            ("message", &e.message, MAX_EVENT_TEXT),
        ] {
            if value.trim().is_empty() && field != "message" {
                return Err(ApiError::BadRequest(format!(
                    "events[{i}].{field} must not be empty"
                )));
            }
            if value.chars().count() > max {
                return Err(ApiError::BadRequest(format!(
                    "events[{i}].{field} is longer than {max} characters"
                )));
            }
        }
    }
    let stored = batch.events.len();
    let store = s.store().clone();
    tokio::task::spawn_blocking(move || store.insert_events(&batch.events))
        .await
        .map_err(|e| ApiError::Internal(format!("store task failed: {e}")))?
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(serde_json::json!({ "stored": stored })),
    ))
}

#[derive(Deserialize)]
struct EventsQuery {
    /// Events after this id.
    after: Option<i64>,
    /// Events that happened at or after this instant.
    since_us: Option<i64>,
    limit: Option<usize>,
}

#[derive(Serialize)]
struct EventsBody {
    events: Vec<lookout_model::event::StoredEvent>,
}

/// `GET /api/v1/events?after=ID&since_us=T&limit=N`: oldest first.
async fn get_events(
    State(s): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<ApiJson<EventsBody>> {
    let limit = q.limit.unwrap_or(1_000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "`limit` must be from 1 to 10000, got {limit}"
        )));
    }
    let store = s.store().clone();
    let events = tokio::task::spawn_blocking(move || {
        store.events(q.after.unwrap_or(0), q.since_us.unwrap_or(0), limit)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("store task failed: {e}")))?
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(ApiJson(EventsBody { events }))
}

#[derive(Serialize)]
struct AgentView {
    agent: String,
    region: String,
    last_poll_seconds_ago: f64,
    /// See [`clock_offset`]; `null` before the agent's first batch.
    clock_offset_seconds: Option<f64>,
}

async fn get_agents(State(s): State<Arc<AppState>>) -> ApiJson<Vec<AgentView>> {
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
/// least time between a run's end (by the agent's clock) and its arrival (by ours). Delivery
/// makes it a little positive (a second or so); a negative figure can only be the agent's
/// clock running ahead, and a large positive one on a fresh batch, behind (or a spool being
/// replayed).
fn clock_offset(results: &[ProbeResult], now_us: i64) -> Option<f64> {
    results
        .iter()
        .map(|r| {
            now_us
                - r.started_at_us
                    .saturating_add(i64::try_from(r.duration_us).unwrap_or(0))
        })
        .min()
        .map(|us| us as f64 / 1e6)
}

async fn healthcheck(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    let health = Health {
        status: HealthStatus::Ok,
        service: "collector".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_seconds: s.started.elapsed().as_secs_f64(),
        dependencies: vec![],
    };
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(health))
}

async fn metrics(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    // The refresh reads the store: a blocking thread, not an async worker.
    let out = tokio::task::spawn_blocking(move || {
        let _one_at_a_time = s
            .scrape
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.metrics.refresh(&s);
        s.metrics.sinks.refresh(&s.settings.sinks);
        lookout_api::metrics::encode(&s.metrics.registry)
    })
    .await
    .unwrap_or_default();
    (
        [(header::CONTENT_TYPE, lookout_api::metrics::CONTENT_TYPE)],
        out,
    )
}

/// `GET /api/v1/targets`: the agents' `/metrics`, in the format of Prometheus's
/// `http_sd_configs`, so a scrape config needs no list of agents (they live in other regions,
/// come and go, and listen where they like). Open, like `/metrics`: it names addresses only.
async fn get_targets(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    let groups: Vec<TargetGroup> = s
        .hub
        .metrics_targets()
        .into_iter()
        .filter_map(|(agent, region, url)| {
            TargetGroup::scraping(&url, &[("agent", &agent), ("region", &region)])
        })
        .collect();
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(groups))
}

/// The API described (OpenAPI 3.0); open, like `/healthcheck`: it holds nothing secret.
async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

/// Counts each API request under its route's pattern, so the label stays bounded.
async fn count_requests(
    State(s): State<Arc<AppState>>,
    matched: Option<axum::extract::MatchedPath>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    if let Some(route) = matched {
        s.metrics
            .api_requests
            .with_label_values(&[route.as_str(), request.method().as_str()])
            .inc();
    }
    next.run(request).await
}

fn router(state: Arc<AppState>) -> Router {
    let token = state.settings.token.clone();
    let api = Router::new()
        .route("/api/v1/results", post(post_results).get(get_results))
        .route("/api/v1/agents", get(get_agents))
        .route("/api/v1/events", post(post_events).get(get_events))
        .route("/api/v1/checks", get(availability::get_all))
        .route("/api/v1/daily", get(availability::get_daily_all))
        .route("/api/v1/incidents", get(availability::get_incidents_all))
        .route("/api/v1/slos", get(availability::get_slos))
        .route(
            "/api/v1/maintenance",
            get(maintenance::list).post(maintenance::create),
        )
        .route(
            "/api/v1/maintenance/{id}",
            axum::routing::delete(maintenance::cancel),
        )
        .route(
            "/api/v1/checks/{check}/availability",
            get(availability::get_availability),
        )
        .route("/api/v1/checks/{check}/daily", get(availability::get_daily))
        .route(
            "/api/v1/checks/{check}/incidents",
            get(availability::get_incidents),
        )
        .route("/api/v1/agents/{agent}/commands", get(get_commands))
        .route("/api/v1/states", get(get_states))
        .route("/api/v1/checks/{check}/recheck", post(post_recheck))
        .route_layer(middleware::from_fn_with_state(
            token,
            lookout_api::auth::require_bearer,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ));
    Router::new()
        .merge(api)
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/targets", get(get_targets))
        .route("/healthcheck", get(healthcheck))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

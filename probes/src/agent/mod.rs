//! The probe agent: runs its region's checks on their schedules, spools every result to disk,
//! pushes them to the collector in batches (in order, replaying after an outage), and keeps a
//! long poll open through which the collector can ask it to run a check now. Given several
//! collectors (replicas of one cluster), it talks to one and fails over to the next.

mod metrics;
mod schedules;
pub mod spool;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use lookout_model::health::{Dependency, Health, HealthStatus, InstanceHealth, overall};
use lookout_model::probe::{BatchAck, Commands, ProbeResult, ResultBatch};
use lookout_model::secret::Secret;
use reqwest::Url;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

pub use metrics::AgentMetrics;
use spool::Spool;

use crate::check::Check;
use crate::template::Vars;

#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub region: String,
    pub agent_id: String,
    /// The collectors' base URLs: one, or the replicas of a cluster (any one takes results;
    /// the agent moves to the next when one does not answer). Never empty.
    pub collectors: Vec<Url>,
    pub token: Secret,
    /// Every configured check; the agent runs those assigned to its region.
    pub checks: Vec<Arc<Check>>,
    pub variables: Vars,
    pub spool_dir: PathBuf,
    pub spool_max_bytes: u64,
    pub batch_max: usize,
    /// How long results may wait to be batched.
    pub flush_interval: Duration,
    /// Run every check once at start, instead of waiting for its first slot.
    pub run_on_start: bool,
    /// Where Prometheus reaches this agent's `/metrics`, told to the collector for its
    /// discovery endpoint. `None`: the listener's own address, unless it listens on every
    /// interface (0.0.0.0 names no host anyone can reach), when the agent is not listed.
    pub metrics_url: Option<Url>,
    /// Roots trusted beyond the public ones when pushing to a collector over https.
    pub trust: lookout_api::tls::Trust,
    /// `Some`: `POST /-/reload` (with the collector's token, the agent's one secret) asks the
    /// config's owner to reload.
    pub reload: Option<lookout_api::reload::Trigger>,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("spool at {path}: {source}")]
    Spool {
        path: String,
        source: std::io::Error,
    },
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no collector URL given: an agent needs at least one to push its results to")]
    NoCollector,
}

struct Shared {
    settings: AgentSettings,
    spool: Spool,
    metrics: AgentMetrics,
    /// Wakes the pusher when a result is spooled.
    spooled: Notify,
    collector_ok: AtomicBool,
    /// Which of the collectors the agent talks to now (modulo their number).
    current: AtomicUsize,
    started: Instant,
    http: reqwest::Client,
    /// What [`AgentSettings::metrics_url`] resolved to.
    metrics_url: Option<Url>,
    /// Each scheduled check's "run now" (confirmation runs), by name.
    triggers: std::sync::Mutex<HashMap<String, mpsc::Sender<bool>>>,
    /// The checks changed: the long poll asks again with the new list.
    checks_changed: Notify,
}

/// A running agent.
pub struct Agent {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    schedules: tokio::sync::Mutex<schedules::Schedules>,
}

impl Agent {
    pub async fn start(
        settings: AgentSettings,
        listener: TcpListener,
    ) -> Result<Agent, AgentError> {
        if settings.collectors.is_empty() {
            return Err(AgentError::NoCollector);
        }
        let spool =
            Spool::open(&settings.spool_dir, settings.spool_max_bytes).map_err(|source| {
                AgentError::Spool {
                    path: settings.spool_dir.display().to_string(),
                    source,
                }
            })?;
        let metrics = AgentMetrics::new(&settings.region)?;
        let addr = listener.local_addr()?;
        let metrics_url = settings.metrics_url.clone().or_else(|| {
            (!addr.ip().is_unspecified())
                .then(|| Url::parse(&format!("http://{addr}/metrics")).ok())
                .flatten()
        });
        let http = settings
            .trust
            .apply(reqwest::Client::builder())
            .no_proxy()
            .build()
            .unwrap_or_default();
        let shared = Arc::new(Shared {
            settings,
            spool,
            metrics,
            spooled: Notify::new(),
            // Optimistic until a push fails: a fresh agent has nothing wrong to report.
            collector_ok: AtomicBool::new(true),
            current: AtomicUsize::new(0),
            started: Instant::now(),
            http,
            metrics_url,
            triggers: std::sync::Mutex::new(HashMap::new()),
            checks_changed: Notify::new(),
        });
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut schedules = schedules::Schedules::default();
        let checks = shared.settings.checks.clone();
        let variables = Arc::new(shared.settings.variables.clone());
        schedules.set(&shared, &checks, &variables, &stopped, true);
        tasks.push(tokio::spawn(push_loop(shared.clone(), stopped.clone())));
        tasks.push(tokio::spawn(command_loop(shared.clone(), stopped.clone())));
        let mut app = Router::new()
            .route("/healthcheck", get(healthcheck))
            .route("/metrics", get(metrics_handler))
            .with_state(shared.clone());
        if let Some(trigger) = shared.settings.reload.clone() {
            app = app.merge(lookout_api::reload::router(
                trigger,
                shared.settings.token.clone(),
            ));
        }
        let mut server_stop = stopped.clone();
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = server_stop.wait_for(|s| *s).await;
                })
                .await;
        }));
        tracing::info!(region = %shared.settings.region, agent = %shared.settings.agent_id, %addr, "probe agent started");
        Ok(Agent {
            addr,
            shared,
            stop,
            tasks,
            schedules: tokio::sync::Mutex::new(schedules),
        })
    }

    /// The config changed: checks added start on their schedules (and at once, if
    /// `run_on_start`), removed ones stop after any run in progress, changed ones go on with
    /// their new definition; the spool, the pushes and the long poll are not interrupted.
    /// Returns how many checks of this region were (added, changed, removed).
    pub async fn set_checks(
        &self,
        checks: Vec<Arc<Check>>,
        variables: Vars,
    ) -> (usize, usize, usize) {
        let stopped = self.stop.subscribe();
        let changed = self.schedules.lock().await.set(
            &self.shared,
            &checks,
            &Arc::new(variables),
            &stopped,
            self.shared.settings.run_on_start,
        );
        self.shared.checks_changed.notify_one();
        tracing::info!(region = %self.shared.settings.region, added = changed.0, changed = changed.1, removed = changed.2, "probe agent: checks reloaded");
        changed
    }

    pub fn metrics(&self) -> &AgentMetrics {
        &self.shared.metrics
    }

    /// (results waiting, bytes, dropped).
    pub fn spool_depth(&self) -> (u64, u64, u64) {
        self.shared.spool.depth()
    }

    /// Stops scheduling, lets running checks finish, makes one last push attempt.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.schedules.into_inner().stop_all().await;
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

fn utc_to_instant(at: chrono::DateTime<chrono::Utc>) -> tokio::time::Instant {
    let now_utc = chrono::Utc::now();
    let now = tokio::time::Instant::now();
    match (at - now_utc).to_std() {
        Ok(d) => now + d,
        Err(_) => now,
    }
}

const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl Shared {
    /// The collector talked to now, and which one it is.
    fn collector(&self) -> (usize, &Url) {
        let urls = &self.settings.collectors;
        let i = self.current.load(Ordering::Relaxed) % urls.len().max(1);
        (i, &urls[i])
    }

    /// Moves on from collector `from` to the next (unless another task already has).
    fn fail_over(&self, from: usize, why: &str) {
        let n = self.settings.collectors.len();
        if n < 2 {
            return;
        }
        let next = (from + 1) % n;
        if self
            .current
            .compare_exchange(from, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            tracing::warn!(
                from = %self.settings.collectors[from],
                to = %self.settings.collectors[next],
                error = %why,
                "collector not answering; failing over"
            );
        }
    }
}

async fn push_loop(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(200);
    // Failed pushes in a row: the agent waits only once every collector has failed.
    let mut failures = 0usize;
    // Shrinks when the collector refuses a batch, to find the one bad result by halving
    // instead of dropping the good ones sent with it; back to full after a success.
    let mut limit = shared.settings.batch_max;
    let gather = shared
        .settings
        .flush_interval
        .min(Duration::from_millis(50));
    loop {
        let (waiting, bytes, dropped) = shared.spool.depth();
        shared.metrics.spool_results.set(waiting as i64);
        shared.metrics.spool_bytes.set(bytes as i64);
        let counted = shared.metrics.spool_dropped.get();
        if dropped > counted {
            shared.metrics.spool_dropped.inc_by(dropped - counted);
        }
        let stopping = *stopped.borrow();
        let batch = shared.spool.peek(limit);
        if batch.is_empty() {
            if stopping {
                return;
            }
            tokio::select! {
                _ = shared.spooled.notified() => {
                    // Gather what else finishes shortly, so batches are worth sending.
                    tokio::time::sleep(gather).await;
                }
                _ = tokio::time::sleep(shared.settings.flush_interval) => {}
                _ = stopped.changed() => {}
            }
            continue;
        }
        let (which, base) = shared.collector();
        let Ok(url) = base.join("api/v1/results") else {
            tracing::error!(collector = %base, "collector URL cannot take a path; results stay spooled");
            return;
        };
        let full = batch.len() >= limit;
        match push(&shared, &url, &batch).await {
            Ok(()) => {
                backoff = Duration::from_millis(200);
                failures = 0;
                limit = shared.settings.batch_max;
                if !shared.collector_ok.swap(true, Ordering::Relaxed) {
                    tracing::info!("collector reachable; results flowing");
                }
                shared.metrics.collector_up.set(1);
                // A busy agent sends a batch a gathering, not one per result finished during
                // the push before; a full batch means a backlog, sent without a pause.
                if !full && !stopping {
                    tokio::select! {
                        _ = tokio::time::sleep(gather) => {}
                        _ = stopped.changed() => {}
                    }
                }
            }
            Err(PushError::Rejected(_)) if batch.len() > 1 => {
                limit = (batch.len() / 2).max(1);
            }
            Err(PushError::Rejected(msg)) => {
                // The collector will never take this one; keeping it would block the rest.
                tracing::error!(error = %msg, "collector rejected a result as invalid; dropped");
                shared.metrics.rejected.inc();
                if let Some(last) = batch.last() {
                    let _ = shared.spool.ack(last.seq);
                }
            }
            Err(PushError::Unavailable(msg)) => {
                shared.fail_over(which, &msg);
                failures += 1;
                if failures < shared.settings.collectors.len() {
                    continue;
                }
                if shared.collector_ok.swap(false, Ordering::Relaxed) {
                    tracing::warn!(error = %msg, "no collector reachable; spooling results");
                }
                shared.metrics.collector_up.set(0);
                if stopping {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stopped.changed() => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

enum PushError {
    Unavailable(String),
    Rejected(String),
}

async fn push(shared: &Shared, url: &Url, batch: &[ProbeResult]) -> Result<(), PushError> {
    let body = ResultBatch {
        results: batch.to_vec(),
    };
    let response = shared
        .http
        .post(url.clone())
        .bearer_auth(shared.settings.token.expose())
        .timeout(Duration::from_secs(10))
        .json(&body)
        .send()
        .await;
    let outcome = match response {
        Err(e) => Err(PushError::Unavailable(e.to_string())),
        Ok(r) if r.status().is_success() => match r.json::<BatchAck>().await {
            Ok(_) => {
                if let Some(last) = batch.last() {
                    shared
                        .spool
                        .ack(last.seq)
                        .map_err(|e| PushError::Unavailable(format!("spool: {e}")))?;
                }
                Ok(())
            }
            Err(e) => Err(PushError::Unavailable(format!(
                "unreadable acknowledgement: {e}"
            ))),
        },
        Ok(r)
            if r.status() == reqwest::StatusCode::BAD_REQUEST
                || r.status() == reqwest::StatusCode::UNPROCESSABLE_ENTITY
                || r.status() == reqwest::StatusCode::PAYLOAD_TOO_LARGE =>
        {
            Err(PushError::Rejected(r.text().await.unwrap_or_default()))
        }
        // 401/403 (a token to fix), 413, 5xx, 503 with Retry-After: keep the results, retry.
        Ok(r) => Err(PushError::Unavailable(format!(
            "collector answered {}",
            r.status()
        ))),
    };
    shared
        .metrics
        .pushes
        .with_label_values(&[if outcome.is_ok() { "ok" } else { "failed" }])
        .inc();
    outcome
}

/// The long poll through which the collector asks for confirmation runs.
async fn command_loop(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let s = &shared.settings;
    let mut backoff = Duration::from_millis(200);
    loop {
        let mut checks: Vec<String> = shared
            .triggers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        checks.sort_unstable();
        // The collector the results go to: confirmations are asked by whichever took them.
        let (_, base) = shared.collector();
        let Ok(mut url) = base.join(&format!("api/v1/agents/{}/commands", s.agent_id)) else {
            return;
        };
        url.query_pairs_mut()
            .append_pair("region", &s.region)
            .append_pair("checks", &checks.join(","))
            .append_pair("wait", "20s");
        if let Some(m) = &shared.metrics_url {
            url.query_pairs_mut().append_pair("metrics_url", m.as_str());
        }
        let request = shared
            .http
            .get(url.clone())
            .bearer_auth(s.token.expose())
            .timeout(Duration::from_secs(30))
            .send();
        let response = tokio::select! {
            r = request => r,
            _ = stopped.wait_for(|s| *s) => return,
            // Asked again at once with the new checks.
            _ = shared.checks_changed.notified() => continue,
        };
        let commands = match response {
            Ok(r) if r.status().is_success() => r.json::<Commands>().await.ok(),
            _ => None,
        };
        match commands {
            Some(c) => {
                backoff = Duration::from_millis(200);
                let triggers = shared
                    .triggers
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                for cmd in c.run {
                    if let Some(tx) = triggers.get(&cmd.check) {
                        tracing::info!(check = %cmd.check, after_failure_in = %cmd.reason_region, "confirmation run requested");
                        let _ = tx.try_send(true);
                    }
                }
            }
            None => {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stopped.wait_for(|s| *s) => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

async fn healthcheck(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let ok = shared.collector_ok.load(Ordering::Relaxed);
    let (current, _) = shared.collector();
    let instances = shared
        .settings
        .collectors
        .iter()
        .enumerate()
        // "Not ok" is said only once every collector failed; the spares are not probed.
        .map(|(i, url)| InstanceHealth {
            url: url.to_string(),
            status: if ok {
                HealthStatus::Ok
            } else {
                HealthStatus::Down
            },
            reason: if !ok {
                let (waiting, _, dropped) = shared.spool.depth();
                Some(format!(
                    "no collector reachable; {waiting} results spooled, {dropped} dropped"
                ))
            } else {
                (i != current).then(|| "standby".to_owned())
            },
        })
        .collect();
    let collector = Dependency::from_instances("collector", instances);
    let dependencies = vec![collector];
    let health = Health {
        status: overall(true, &dependencies),
        service: "probe-agent".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_seconds: shared.started.elapsed().as_secs_f64(),
        dependencies,
    };
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(health))
}

async fn metrics_handler(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let (waiting, bytes, _) = shared.spool.depth();
    shared.metrics.spool_results.set(waiting as i64);
    shared.metrics.spool_bytes.set(bytes as i64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        shared.metrics.render(),
    )
}

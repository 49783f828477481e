//! The collector: takes probe results from the agents (authenticated, idempotent on
//! `(agent, seq)`, answered only once stored), keeps them, asks other regions to confirm a new
//! failure, owns every check's SLO and the scheduled maintenance, and serves the SLA figures
//! of any window by them.
#![forbid(unsafe_code)]

mod availability;
mod commit;
pub mod config;
pub mod confirm;
mod heartbeat;
mod http;
pub mod ingest;
pub mod live;
pub mod maintenance;
mod metrics;
pub mod replica;
pub mod rollup;
pub mod sink;
mod slo_history;
pub mod store;
mod stored;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lookout_api::ApiError;
use lookout_model::probe::Outcome;
use lookout_model::secret::Secret;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use ingest::{CheckInfo, Known};
pub use maintenance::MaintenanceSpec;
use metrics::Metrics;
use rollup::LiveTail;
pub use rollup::{RollupSettings, Rollups};
use store::ResultStore;

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
    /// `Some`: one replica of several, fed by the replicated log (docs/ha.md).
    pub replica: Option<replica::ReplicaSettings>,
    /// `Some`: the API is served over TLS with this certificate.
    pub tls: Option<lookout_api::tls::ServerTls>,
    /// `Some`: `POST /-/reload` (with the collector's token) asks the config's owner to reload.
    pub reload: Option<lookout_api::reload::Trigger>,
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
            replica: None,
            tls: None,
            reload: None,
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
    /// The checks it accepts, with their regions and SLOs: the config's, swapped whole when
    /// the config is reloaded.
    known: arc_swap::ArcSwap<Known>,
    /// Since when each known check has had its SLO.
    slo_since: arc_swap::ArcSwap<BTreeMap<String, i64>>,
    /// `Some` on a replica: where it stands in the log.
    pub(crate) replica: Option<Arc<replica::Replica>>,
}

impl AppState {
    fn store(&self) -> &Arc<dyn ResultStore> {
        self.rollups.store()
    }

    pub(crate) fn known(&self) -> Arc<Known> {
        self.known.load_full()
    }

    pub(crate) fn slo_since(&self) -> Arc<BTreeMap<String, i64>> {
        self.slo_since.load_full()
    }

    /// What the collector knows of a check, or the defaults for one it was not told of.
    pub(crate) fn info_or_default(&self, check: &str) -> CheckInfo {
        self.known()
            .get(check)
            .cloned()
            .unwrap_or_else(CheckInfo::unknown)
    }

    /// What the collector knows of a check; any check when it was told of none.
    pub(crate) fn check_info(&self, check: &str) -> Result<CheckInfo, ApiError> {
        let known = self.known();
        match known.get(check) {
            Some(i) => Ok(i.clone()),
            None if known.is_empty() => Ok(CheckInfo::unknown()),
            // A check a reload removed: its history stays queryable, by what it was.
            None => self
                .rollups
                .last_info(check)
                .ok_or_else(|| ApiError::NotFound(format!("no check named {check:?}"))),
        }
    }
}

pub struct Collector {
    pub addr: SocketAddr,
    /// `https` when served over TLS.
    scheme: &'static str,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    passes: JoinHandle<()>,
    ticker: JoinHandle<()>,
    heartbeats: JoinHandle<()>,
    compactions: JoinHandle<()>,
    applier: Option<JoinHandle<()>>,
    state: Arc<AppState>,
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

/// How long after a span ends its raw results are compacted: results that arrive later still
/// are stored, and merged into their block at the next compaction.
const COMPACT_AFTER_US: i64 = 10 * 60 * 1_000_000;

/// Compacts raw results once a minute, on its own thread: at thousands of checks an hour's
/// results take seconds to sort, which a rollup pass (and the answers waiting on it) must not.
async fn compactions(store: Arc<dyn store::ResultStore>) {
    // Not at once: a start (and its first answers) should not wait behind an hour's sort.
    let every = Duration::from_secs(60);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let store = store.clone();
        let before = chrono::Utc::now().timestamp_micros() - COMPACT_AFTER_US;
        match tokio::task::spawn_blocking(move || store.compact(before)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(moved)) => tracing::debug!(moved, "raw results compacted"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "compacting raw results failed; they stay as rows until the next try")
            }
            Err(e) => tracing::error!(error = %e, "compacting raw results panicked"),
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
                    Outcome::Ok | Outcome::Degraded(_) => None,
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
        let compactions = tokio::spawn(compactions(rollups.store().clone()));
        let (stop, stopping) = watch::channel(false);
        let committer = commit::Committer::start(rollups.store().clone())?;
        let replica = match settings.replica.clone() {
            None => None,
            Some(r) => {
                let store = rollups.store().clone();
                let applied = tokio::task::spawn_blocking(move || store.applied())
                    .await
                    .map_err(std::io::Error::other)?
                    .map_err(std::io::Error::other)?;
                let replica = replica::Replica::start(r, applied)
                    .await
                    .map_err(std::io::Error::other)?;
                Some(Arc::new(replica))
            }
        };
        let state = Arc::new(AppState {
            known: arc_swap::ArcSwap::from_pointee(settings.known.clone()),
            slo_since: arc_swap::ArcSwap::from_pointee(slo_since),
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
            replica: replica.clone(),
        });
        let applier = replica.map(|r| tokio::spawn(replica::apply_loop(state.clone(), r)));
        let heartbeats = tokio::spawn(heartbeat::watch(state.clone()));
        let addr = listener.local_addr()?;
        let mut stopped = stopping;
        let scheme = if state.settings.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let listener = lookout_api::tls::Listener::new(listener, state.settings.tls.clone())?;
        let app = http::router(state.clone());
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
            scheme,
            stop,
            task,
            passes,
            ticker,
            heartbeats,
            compactions,
            applier,
            state,
        })
    }

    /// The config's checks changed: new ones are accepted from now, removed ones no longer
    /// (their history stays queryable), and a changed one's regions, schedule and SLO apply
    /// from now. A changed SLO is recorded as the store records one at start.
    pub async fn set_known(&self, known: Known) -> Result<(), store::StoreError> {
        let now = chrono::Utc::now().timestamp_micros();
        let store = self.state.store().clone();
        let for_history = known.clone();
        let slo_since = tokio::task::spawn_blocking(move || {
            slo_history::record(store.as_ref(), &for_history, now)
        })
        .await
        .map_err(|e| store::StoreError::Read(e.to_string()))??;
        self.state.rollups.set_known(&known);
        self.state.live.set_known(&known);
        self.state.known.store(Arc::new(known));
        self.state.slo_since.store(Arc::new(slo_since));
        tracing::info!(
            checks = self.state.known().len(),
            "collector: checks reloaded"
        );
        Ok(())
    }

    /// The collector's metrics, for gauges that belong beside its own (a config reload's).
    pub fn registry(&self) -> &prometheus::Registry {
        &self.state.metrics.registry
    }

    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    pub async fn shutdown(self) {
        self.passes.abort();
        self.ticker.abort();
        self.heartbeats.abort();
        self.compactions.abort();
        if let Some(a) = &self.applier {
            a.abort();
        }
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

//! Lookout's alerter: Seyren-style threshold checks over Lookout's series (or PromQL), SLO
//! burn-rate alerts, subscriptions with quiet windows, a persistent outbox, and notifiers.
//! It sits above `lookout-model` and below the `lookout` binary, and talks to the collector
//! only over its HTTP API.
#![forbid(unsafe_code)]

pub mod ack_link;
pub mod actions;
pub mod api;
pub mod catalog;
pub mod changes;
pub mod check;
pub mod config;
pub mod console;
pub mod engine;
pub mod generate;
pub mod metrics;
pub mod notify;
pub mod outbox;
pub mod plan;
pub mod problem;
pub mod reload;
pub mod source;
pub mod spec;
pub mod state;
pub mod store;
pub mod subscription;
pub mod target;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lookout_model::secret::Secret;
use tokio::sync::{Mutex, Notify, watch};

use check::Check;
use engine::{Engine, EngineSettings, Feed, LinkSettings, Shared};
use generate::GenerateSettings;
use lookout_api::client::CollectorClient;
use notify::Notifier;
use problem::Silence;
use source::Sources;
use spec::SubscriptionSpec;
use store::{Store, StoreError};
use subscription::Subscription;

/// Everything the alerter needs, validated (the `lookout` binary builds it from the config).
#[derive(Clone)]
pub struct AlerterSettings {
    pub collector: url::Url,
    pub collector_token: Secret,
    /// Guards the API: reads and changes.
    pub token: Secret,
    /// Tokens that read the API and the console, and change nothing.
    pub read_tokens: Vec<Secret>,
    /// How long a console sign-in lasts.
    pub session_ttl: Duration,
    /// How long a notification's acknowledge link works.
    pub ack_link_ttl: Duration,
    /// The store file; `None` keeps everything in memory (tests).
    pub store: Option<PathBuf>,
    pub prometheus: Option<url::Url>,
    /// Checks of the config, and their subscriptions.
    pub checks: Vec<Check>,
    pub subscriptions: Vec<Subscription>,
    /// The checks made for every check the collector watches, by its SLO (off in `new`).
    pub generate: GenerateSettings,
    /// Who hears about the generated checks.
    pub subscribe: Vec<SubscriptionSpec>,
    /// The channels by name, built once from their config ([`notify::build`]).
    pub notifiers: BTreeMap<String, Arc<dyn Notifier>>,
    /// Silences from the config. Scheduled maintenance is the collector's: its windows hold
    /// pages through the live state.
    pub silences: Vec<Silence>,
    pub reminder_every: Option<Duration>,
    /// A down seen again this long after it began, in fresh runs of a quorum of regions,
    /// pages; a shorter blip does not.
    pub confirm_after: Duration,
    pub recheck_every: Duration,
    pub links: LinkSettings,
    pub delivery: outbox::DeliverySettings,
    pub heartbeat: Option<Heartbeat>,
    /// Regions without results this soon after start are not yet reported blind.
    pub blind_grace: Duration,
    /// `Some` on one alerter replica of several: each notification is sent by the replica
    /// that claims it (docs/ha.md).
    pub claims: Option<lookout_cluster::Claims>,
    /// `Some` on a replica: acknowledgements and silences made through the API go through the
    /// replicated log, so that every replica holds them.
    pub changes: Option<lookout_cluster::Log>,
    /// `Some`: the API and console are served over TLS with this certificate.
    pub tls: Option<lookout_api::tls::ServerTls>,
    /// Roots trusted beyond the public ones when calling the collector.
    pub trust: lookout_api::tls::Trust,
    /// `Some`: `POST /-/reload` (with the API token) asks the config's owner to reload.
    pub reload: Option<lookout_api::reload::Trigger>,
}

/// A dead-man's switch: Lookout calls `url` every `every` while it is healthy, so that
/// someone outside knows when it dies.
#[derive(Clone, Debug)]
pub struct Heartbeat {
    pub url: Secret,
    pub every: Duration,
}

impl AlerterSettings {
    pub fn new(collector: url::Url, collector_token: Secret, token: Secret) -> Self {
        AlerterSettings {
            collector,
            collector_token,
            token,
            read_tokens: Vec::new(),
            session_ttl: Duration::from_secs(12 * 3600),
            ack_link_ttl: Duration::from_secs(24 * 3600),
            store: None,
            prometheus: None,
            checks: Vec::new(),
            subscriptions: Vec::new(),
            generate: GenerateSettings {
                enabled: false,
                ..GenerateSettings::default()
            },
            subscribe: vec![SubscriptionSpec::log()],
            notifiers: BTreeMap::from([(
                "log".to_owned(),
                Arc::new(notify::log::LogNotifier) as Arc<dyn Notifier>,
            )]),
            silences: Vec::new(),
            reminder_every: Some(Duration::from_secs(3600)),
            confirm_after: Duration::from_secs(7),
            recheck_every: Duration::from_secs(3),
            links: LinkSettings::default(),
            delivery: outbox::DeliverySettings::default(),
            heartbeat: None,
            blind_grace: Duration::from_secs(60),
            claims: None,
            changes: None,
            tls: None,
            trust: Default::default(),
            reload: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
    #[error("alerter: cannot serve: {0}")]
    Io(#[from] std::io::Error),
}

/// A running alerter.
pub struct Alerter {
    addr: std::net::SocketAddr,
    /// `https` when served over TLS.
    scheme: &'static str,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    shared: Arc<Shared>,
    tokens: Arc<api::Tokens>,
}

impl Alerter {
    pub async fn start(
        settings: AlerterSettings,
        listener: tokio::net::TcpListener,
    ) -> Result<Alerter, StartError> {
        let store = match &settings.store {
            Some(p) => Store::open(p)?,
            None => Store::in_memory()?,
        };
        let notifiers = settings.notifiers.clone();
        let client = CollectorClient::trusting(
            settings.collector.clone(),
            settings.collector_token.clone(),
            &settings.trust,
        )
        .map_err(|e| StartError::Invalid(e.to_string()))?;
        let sources = Sources::new(client, settings.prometheus.clone(), settings.confirm_after)
            .map_err(|e| StartError::Invalid(e.0))?;
        let mut checks = settings.checks.clone();
        let mut subscriptions = settings.subscriptions.clone();
        // The collector's checks, as it answers now, else as it last did.
        let mut catalog_read = false;
        let catalog = if settings.generate.enabled {
            match tokio::time::timeout(catalog::AT_START, sources.collector().slos()).await {
                Ok(Ok(slos)) => {
                    store.put_catalog(&slos).await?;
                    catalog_read = true;
                    Some(slos)
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "alerter: the collector's SLOs unavailable at start; using the last ones read");
                    store.catalog().await?
                }
                Err(_) => {
                    tracing::warn!(
                        "alerter: the collector did not answer for its SLOs at start; using the last ones read"
                    );
                    store.catalog().await?
                }
            }
        } else {
            None
        };
        if let Some(slos) = &catalog {
            let (generated, subs) =
                catalog::generated(slos, &settings.generate, &settings.subscribe);
            for g in generated {
                if checks.iter().any(|c| c.id == g.id) {
                    continue; // the config's own check of that id wins
                }
                subscriptions.extend(subs.iter().filter(|s| s.check_id == g.id).cloned());
                checks.push(g);
            }
        }
        let mut api_specs = BTreeMap::new();
        for spec in store.api_checks().await? {
            match spec.to_check(check::Origin::Api) {
                Ok(c) if !checks.iter().any(|x| x.id == c.id) => {
                    api_specs.insert(c.id.clone(), spec);
                    checks.push(c);
                }
                Ok(c) => {
                    tracing::warn!(check = %c.id, "alerter: a check made through the API has the id of one in the config; the config's is used")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "alerter: a stored API check no longer validates; skipped")
                }
            }
        }
        subscriptions.extend(store.api_subscriptions().await?);
        let mut silences = settings.silences.clone();
        silences.extend(store.silences().await?);
        let engine = Engine::new(
            checks,
            api_specs,
            store.check_states().await?,
            subscriptions,
            store.open_problems().await?,
            silences,
        );
        let metrics = metrics::Metrics::new().map_err(|e| StartError::Invalid(e.to_string()))?;
        metrics.init_changes();
        for (id, st) in &engine.states {
            metrics.set_state(id, st.level);
        }
        let addr = listener.local_addr()?;
        let scheme = if settings.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let mut links = settings.links.clone();
        // Links into the console need an address; the one it listens on, unless told better.
        links
            .alerter
            .get_or_insert_with(|| format!("{scheme}://{addr}"));
        let (feed_tx, feed_rx) = watch::channel(Feed::default());
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            engine: Mutex::new(engine),
            store,
            sources: sources.clone(),
            notifiers: arc_swap::ArcSwap::from_pointee(notifiers),
            metrics,
            feed: feed_rx,
            wake: Notify::new(),
            outbox_wake: Notify::new(),
            settings: arc_swap::ArcSwap::from_pointee(EngineSettings {
                reminder_every: settings.reminder_every,
                recheck_every: settings.recheck_every,
                links,
                blind_grace: settings.blind_grace,
                generate: settings.generate.clone(),
                subscribe: settings.subscribe.clone(),
            }),
            started: Instant::now(),
            slow_round: std::sync::atomic::AtomicBool::new(false),
            claims: settings.claims.clone(),
            changes: settings.changes.clone().map(changes::changes),
            ack_links: ack_link::AckLinks::new(&settings.token, settings.ack_link_ttl),
        });
        let mut tasks = vec![
            tokio::spawn(engine::follow_feed(
                sources,
                feed_tx,
                shared.metrics.collector_up.clone(),
                stop_rx.clone(),
            )),
            tokio::spawn(engine::run(shared.clone(), stop_rx.clone())),
            tokio::spawn(changes::follow(shared.clone(), stop_rx.clone())),
            tokio::spawn(outbox::run(
                shared.clone(),
                settings.delivery.clone(),
                stop_rx.clone(),
            )),
        ];
        if settings.generate.enabled {
            tasks.push(tokio::spawn(catalog::follow(
                shared.clone(),
                catalog_read,
                stop_rx.clone(),
            )));
        }
        tasks.push(tokio::spawn(prune_values(shared.clone(), stop_rx.clone())));
        if let Some(h) = settings.heartbeat.clone() {
            tasks.push(tokio::spawn(heartbeat(shared.clone(), h, stop_rx.clone())));
        }
        let tokens = Arc::new(api::Tokens::new(
            settings.token.clone(),
            settings.read_tokens.clone(),
        ));
        let console = console::Console::new(
            shared.clone(),
            tokens.clone(),
            shared.ack_links.clone(),
            settings.session_ttl,
            settings.tls.is_some(),
        )
        .map_err(|e| StartError::Invalid(e.to_string()))?;
        let mut app =
            api::router(shared.clone(), tokens.clone()).merge(console::router(Arc::new(console)));
        if let Some(trigger) = settings.reload.clone() {
            app = app.merge(lookout_api::reload::router(trigger, settings.token.clone()));
        }
        let listener = lookout_api::tls::Listener::new(listener, settings.tls.clone())
            .map_err(|e| StartError::Invalid(format!("listener: {e}")))?;
        let mut serve_stop = stop_rx;
        tasks.push(tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = serve_stop.wait_for(|s| *s).await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "alerter: the API server stopped");
            }
        }));
        tracing::info!(%addr, "alerter: listening");
        Ok(Alerter {
            addr,
            scheme,
            stop,
            tasks,
            shared,
            tokens,
        })
    }

    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Applies a new config's checks, subscriptions, notifiers and settings (see [`reload`]).
    pub async fn reload(&self, r: reload::Reloaded) -> Result<reload::ReloadReport, StoreError> {
        let read_tokens = r.read_tokens.clone();
        let mut report = reload::reload(&self.shared, r).await?;
        if self.tokens.set_read(read_tokens) {
            // A session does not say which read-only token signed it in: every read-only
            // session ends, and whoever still holds a token signs in again.
            report.read_sessions_ended = self.shared.store.end_read_sessions().await?;
        }
        Ok(report)
    }

    /// The alerter's metrics, for gauges that belong beside its own (a config reload's).
    pub fn registry(&self) -> &prometheus::Registry {
        &self.shared.metrics.registry
    }

    /// Evaluates every due check now (tests and the benchmark use it to skip waiting).
    pub async fn tick(&self) -> Result<(), StoreError> {
        engine::tick(&self.shared, true, engine::Which::All).await
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

/// How long the charts' values are kept: the check page's longest range, and a day more.
const VALUES_KEPT: Duration = Duration::from_secs(8 * 86_400);

/// Forgets chart values older than [`VALUES_KEPT`], at start and every ten minutes.
async fn prune_values(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let before = chrono::Utc::now().timestamp_micros()
            - i64::try_from(VALUES_KEPT.as_micros()).unwrap_or(i64::MAX);
        match shared.store.prune_values(before).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(removed = n, "alerter: old chart values forgotten"),
            Err(e) => tracing::warn!(error = %e, "alerter: old chart values could not be removed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(600)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Calls the dead-man's switch while the alerter can see the collector.
async fn heartbeat(shared: Arc<Shared>, h: Heartbeat, mut stop: watch::Receiver<bool>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build();
    let Ok(http) = http else {
        tracing::error!("alerter: cannot build the heartbeat's HTTP client");
        return;
    };
    loop {
        let healthy = shared
            .feed
            .borrow()
            .answered
            .is_some_and(|t| t.elapsed() < Duration::from_secs(30));
        if healthy {
            let outcome = match http.get(h.url.expose()).send().await {
                Ok(r) if r.status().is_success() => "ok",
                Ok(r) => {
                    tracing::warn!(status = %r.status(), "alerter: the heartbeat was refused");
                    "error"
                }
                Err(e) => {
                    tracing::warn!(error = %e.without_url(), "alerter: the heartbeat failed");
                    "error"
                }
            };
            shared
                .metrics
                .heartbeats
                .with_label_values(&[outcome])
                .inc();
        }
        tokio::select! {
            _ = tokio::time::sleep(h.every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

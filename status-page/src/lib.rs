//! Lookout's public status page: the platform's key use cases as components partners
//! understand, their state now and over 90 days, incidents opened and resolved from the
//! collector's down intervals and kept up to date by people, scheduled maintenance, the same
//! in Statuspage's JSON shape, an Atom feed, badges, and monthly SLA reports by mail.
//!
//! Everything public is rendered when the data changes ([`refresh`]) and served from memory
//! ([`server`]); the admin API ([`admin`]) writes to the store and asks for a re-render.

pub mod admin;
pub mod changes;
pub mod config;
pub mod metrics;
pub mod model;
pub mod refresh;
pub mod render;
pub mod report;
pub mod server;
pub mod settings;
pub mod snapshot;
pub mod status;
pub mod store;
pub mod sync;
pub mod text;

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use lookout_api::client::{CollectorClient, Feed};
use lookout_model::read::States;
use tokio::sync::{Mutex, Notify, watch};
use tokio::task::JoinHandle;

pub use settings::StatusPageSettings;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Render(#[from] render::RenderError),
    #[error("status page: {0}")]
    Setup(String),
}

/// What the server, the render loop and the admin API share.
pub struct Shared {
    /// Swapped whole when the config is reloaded (title, components, regions).
    settings: ArcSwap<StatusPageSettings>,
    pub client: CollectorClient,
    pub store: store::Store,
    pub templates: render::Templates,
    pub site: ArcSwap<render::Site>,
    /// The collector's live state, as the follower keeps it.
    pub feed: watch::Sender<Feed>,
    pub state: Mutex<refresh::RefreshState>,
    /// Held by the one refresh running.
    pub refreshing: Mutex<()>,
    pub kick: Notify,
    /// Asks for the site to be made again from the store, without reading the collector.
    pub rerender: Notify,
    /// `Some` on a replica: the log the incidents are made from.
    pub changes: Option<lookout_cluster::Changes>,
    pub reports: report::Cache,
    pub metrics: metrics::Metrics,
    pub started: std::time::Instant,
}

impl Shared {
    pub fn settings(&self) -> Arc<StatusPageSettings> {
        self.settings.load_full()
    }
}

pub struct StatusPage {
    addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
    server: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl StatusPage {
    /// Opens the store, reads the collector once (a collector that is away leaves a page that
    /// says so), and serves on `listener`.
    pub async fn start(
        mut settings: StatusPageSettings,
        listener: tokio::net::TcpListener,
    ) -> Result<StatusPage, StartError> {
        let addr = listener
            .local_addr()
            .map_err(|e| StartError::Setup(format!("listener: {e}")))?;
        if settings.public_url.is_none() {
            let scheme = if settings.tls.is_some() {
                "https"
            } else {
                "http"
            };
            settings.public_url = url::Url::parse(&format!("{scheme}://{addr}/")).ok();
        }
        let store = store::Store::open(settings.store.as_deref())?;
        let changes = match settings.changes.clone() {
            Some(log) => Some(changes::changes(log, store.log_applied()?)),
            None => None,
        };
        let client = CollectorClient::trusting(
            settings.collector_url.clone(),
            settings.collector_token.clone(),
            &settings.trust,
        )
        .map_err(|e| StartError::Setup(e.to_string()))?;
        let shared = Arc::new(Shared {
            client,
            store,
            templates: render::Templates::new()?,
            site: ArcSwap::from_pointee(render::Site::default()),
            feed: watch::Sender::new(Feed::default()),
            state: Mutex::new(refresh::RefreshState::default()),
            refreshing: Mutex::new(()),
            kick: Notify::new(),
            rerender: Notify::new(),
            changes,
            reports: report::Cache::default(),
            metrics: metrics::Metrics::new()
                .map_err(|e| StartError::Setup(format!("metrics: {e}")))?,
            started: std::time::Instant::now(),
            settings: ArcSwap::from_pointee(settings),
        });
        refresh::refresh(&shared).await;
        let (stop, mut stopped) = watch::channel(false);
        let mut tasks = vec![
            tokio::spawn(refresh::follow_feed(shared.clone(), stopped.clone())),
            tokio::spawn(refresh::kick_on_change(shared.clone())),
            tokio::spawn(refresh::run(shared.clone())),
            tokio::spawn(changes::follow(shared.clone(), stopped.clone())),
        ];
        if shared.settings().reports.is_some() {
            tasks.push(tokio::spawn(report::schedule(shared.clone())));
        }
        let app = server::router(shared.clone());
        let listener = lookout_api::tls::Listener::new(listener, shared.settings().tls.clone())
            .map_err(|e| StartError::Setup(format!("listener: {e}")))?;
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "status page server stopped");
            }
        });
        Ok(StatusPage {
            addr,
            shared,
            tasks,
            server,
            stop,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        let scheme = if self.shared.settings().tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The config's text changed: the title, the components and the regions' names. The
    /// site is made again at once; incidents and their history stay.
    pub fn set_text(
        &self,
        title: String,
        groups: Vec<settings::GroupSpec>,
        regions: Vec<(String, String)>,
    ) {
        let mut s = (*self.shared.settings()).clone();
        s.title = title;
        s.groups = groups;
        s.regions = regions;
        self.shared.settings.store(Arc::new(s));
        self.shared.kick.notify_one();
        tracing::info!("status page: title and components reloaded");
    }

    /// The status page's metrics, for gauges that belong beside its own (a config reload's).
    pub fn registry(&self) -> &prometheus::Registry {
        &self.shared.metrics.registry
    }

    /// Reads and renders now, rather than at the next change or tick (tests, after a write).
    pub async fn refresh(&self) {
        refresh::refresh(&self.shared).await;
    }

    pub async fn shutdown(self) {
        for t in &self.tasks {
            t.abort();
        }
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.server).await;
    }
}

impl Shared {
    /// The collector's live state, once it has answered.
    pub fn live(&self) -> Option<States> {
        let f = self.feed.borrow();
        f.answered.map(|_| f.states.clone())
    }

    /// What pages outside the rendered site (reports) need for their frame: no components.
    pub fn bare_snapshot(&self, now_us: i64) -> snapshot::Snapshot {
        snapshot::Snapshot {
            groups: Vec::new(),
            overall: status::overall([]),
            incidents: Vec::new(),
            maintenances: Vec::new(),
            data_as_of_us: Some(now_us),
            stale: false,
            now_us,
        }
    }
}

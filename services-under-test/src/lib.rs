//! The streaming platform Lookout watches, modelled on MixRadio's back end: five independent
//! HTTP services (gateway, catalogue, mixes, media, analytics), each able to run as its own
//! process, each with `/healthcheck`, `/metrics` and a fault-injection admin API.
#![forbid(unsafe_code)]

pub mod analytics;
pub mod app;
pub mod catalogue;
pub mod config;
pub mod data;
pub mod dns;
pub mod etag;
/// The shared API conventions, re-exported where the services have always found them.
pub use lookout_api::error;
pub mod faults;
pub mod gateway;
pub mod link;
pub mod media;
pub mod metrics;
pub mod mixes;
pub mod paging;
pub mod server;
pub mod timer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use lookout_model::secret::Secret;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use app::{Common, DependencyReport};
use data::Dataset;
use faults::Faults;
use metrics::Metrics;
use timer::PreciseTimer;

pub use gateway::GatewaySettings;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    Gateway,
    Catalogue,
    Mixes,
    Media,
    Analytics,
}

impl ServiceKind {
    pub const ALL: [ServiceKind; 5] = [
        ServiceKind::Catalogue,
        ServiceKind::Mixes,
        ServiceKind::Media,
        ServiceKind::Analytics,
        ServiceKind::Gateway,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ServiceKind::Gateway => "gateway",
            ServiceKind::Catalogue => "catalogue",
            ServiceKind::Mixes => "mixes",
            ServiceKind::Media => "media",
            ServiceKind::Analytics => "analytics",
        }
    }

    fn needs_dataset(self) -> bool {
        matches!(
            self,
            ServiceKind::Catalogue | ServiceKind::Mixes | ServiceKind::Media
        )
    }
}

impl std::fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ServiceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServiceKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown service {s:?}; expected one of gateway, catalogue, mixes, media, analytics"))
    }
}

/// Settings for the analytics service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnalyticsSettings {
    pub queue_capacity: usize,
    /// Base URLs of every mixes instance, to forward thumbs to.
    pub mixes: Vec<String>,
}

/// Everything one instance needs to start; the `lookout` binary builds it from its config
/// and hands it to a child process as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceSpec {
    pub kind: ServiceKind,
    pub seed: u64,
    pub artists: u32,
    pub admin_token: Secret,
    #[serde(default)]
    pub gateway: Option<GatewaySettings>,
    #[serde(default)]
    pub analytics: Option<AnalyticsSettings>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0} needs its settings section")]
    MissingSettings(ServiceKind),
    #[error("metrics registry: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the gateway's TLS: {0}")]
    Tls(#[from] lookout_api::tls::TlsError),
}

/// A running instance: its addresses and a way to stop it.
pub struct Instance {
    pub kind: ServiceKind,
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
}

impl Instance {
    /// Binds both listeners (`main` and `admin`) and starts serving. `data` may be shared by
    /// instances in one process; it is generated from the spec's seed when not given.
    pub async fn start(
        spec: InstanceSpec,
        main: SocketAddr,
        admin: SocketAddr,
        data: Option<Arc<Dataset>>,
    ) -> Result<Instance, ServiceError> {
        let main_listener =
            server::bind(main).map_err(|source| ServiceError::Bind { addr: main, source })?;
        let admin_listener = server::bind(admin).map_err(|source| ServiceError::Bind {
            addr: admin,
            source,
        })?;
        Self::start_on(spec, main_listener, admin_listener, data).await
    }

    pub async fn start_on(
        spec: InstanceSpec,
        main: TcpListener,
        admin: TcpListener,
        data: Option<Arc<Dataset>>,
    ) -> Result<Instance, ServiceError> {
        let kind = spec.kind;
        let data = match data {
            Some(d) => Some(d),
            None if kind.needs_dataset() => {
                let (seed, artists) = (spec.seed, spec.artists);
                Some(Arc::new(
                    tokio::task::spawn_blocking(move || Dataset::generate(seed, artists))
                        .await
                        .map_err(|e| {
                            std::io::Error::other(format!("catalogue generation failed: {e}"))
                        })?,
                ))
            }
            None => None,
        };
        let metrics = Metrics::new(kind.name(), VERSION)?;
        let common = Common {
            kind,
            started: Instant::now(),
            faults: Faults::new(PreciseTimer::new()),
            metrics: metrics.clone(),
            admin_token: spec.admin_token.clone(),
        };
        let dataset = || data.clone().ok_or(ServiceError::MissingSettings(kind));
        let mut dns_server = None;
        let mut tls_listener = None;
        let (api, admin_api, deps): (axum::Router, axum::Router, Option<DependencyReport>) =
            match kind {
                ServiceKind::Catalogue => {
                    (catalogue::router(dataset()?), axum::Router::new(), None)
                }
                ServiceKind::Mixes => (
                    mixes::router(mixes::Mixes::new(dataset()?)),
                    axum::Router::new(),
                    None,
                ),
                ServiceKind::Media => (media::router(dataset()?), axum::Router::new(), None),
                ServiceKind::Analytics => {
                    let settings = spec
                        .analytics
                        .clone()
                        .ok_or(ServiceError::MissingSettings(kind))?;
                    let client = reqwest::Client::builder()
                        .no_proxy()
                        .build()
                        .unwrap_or_default();
                    let a = analytics::Analytics::start(
                        settings.queue_capacity,
                        settings.mixes,
                        metrics.registry(),
                        client,
                    )?;
                    (analytics::router(a), axum::Router::new(), None)
                }
                ServiceKind::Gateway => {
                    let settings = spec
                        .gateway
                        .clone()
                        .ok_or(ServiceError::MissingSettings(kind))?;
                    if let Some(d) = &settings.dns {
                        let bound = dns::DnsServer::bind(d, main.local_addr()?.ip())
                            .await
                            .map_err(|source| ServiceError::Bind {
                                addr: d.listen,
                                source,
                            })?;
                        dns_server = Some(bound);
                    }
                    if let Some(addr) = settings.tls_listen {
                        let tcp = TcpListener::bind(addr)
                            .await
                            .map_err(|source| ServiceError::Bind { addr, source })?;
                        tls_listener = Some(lookout_api::tls::Listener::new(
                            tcp,
                            Some(gateway::demo_tls()?),
                        )?);
                    }
                    let (gw, credentials) =
                        gateway::Gateway::start(settings, metrics.registry()).await?;
                    let report_gw = gw.clone();
                    let deps: DependencyReport = Arc::new(move || report_gw.dependencies());
                    (
                        gateway::router(gw.clone(), credentials),
                        gateway::admin_router(gw),
                        Some(deps),
                    )
                }
            };
        let routers = app::assemble(&common, api, admin_api, deps);
        let addr = main.local_addr()?;
        let admin_addr = admin.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let until_stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let mut tasks = Vec::new();
        if let Some(d) = dns_server {
            tasks.push(tokio::spawn(d.serve(stopped.clone())));
        }
        if let Some(listener) = tls_listener {
            // The same API, faults included; a `down` fault closes the plain listener only.
            let app = routers.main.clone();
            let stop = until_stopped(stopped.clone());
            tasks.push(tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop)
                    .await
            }));
        }
        tasks.extend([
            tokio::spawn(server::serve(
                main,
                routers.main,
                Some(common.faults.clone()),
                until_stopped(stopped.clone()),
            )),
            tokio::spawn(server::serve(
                admin,
                routers.admin,
                None,
                until_stopped(stopped),
            )),
        ]);
        tracing::info!(service = %kind, %addr, %admin_addr, "instance listening");
        Ok(Instance {
            kind,
            addr,
            admin_addr,
            stop,
            tasks,
        })
    }

    /// Stops accepting, lets open requests finish (briefly), and returns once both listeners
    /// are closed.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.stop.send(true);
        for t in self.tasks {
            t.await
                .map_err(|e| std::io::Error::other(e.to_string()))??;
        }
        Ok(())
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr)
    }
}

//! Lookout's host-health replacer: polls every instance's `/healthcheck`, replaces the ones
//! that stay unhealthy through a [`provider::Provider`], and never makes things worse: brakes
//! hold it when many instances fail at once (the checker or the network is then the likelier
//! culprit) and leave the decision to a person. Every decision is an event
//! (`GET /api/v1/events`), a log line and a metric.

pub mod api;
pub mod brakes;
pub mod config;
pub mod engine;
pub mod events;
pub mod health;
pub mod instance;
pub mod metrics;
pub mod provider;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::task::JoinHandle;

pub use engine::ReplacerSettings;

#[derive(Debug, thiserror::Error)]
#[error("replacer: {0}")]
pub struct StartError(pub String);

pub struct Replacer {
    addr: SocketAddr,
    shared: Arc<engine::Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Replacer {
    pub async fn start(
        settings: ReplacerSettings,
        provider: Arc<dyn provider::Provider>,
        listener: tokio::net::TcpListener,
    ) -> Result<Replacer, StartError> {
        settings.health.check().map_err(StartError)?;
        settings.brakes.check().map_err(StartError)?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartError(format!("listener: {e}")))?;
        let shared = Arc::new(engine::Shared {
            provider,
            events: events::Log::default(),
            engine: tokio::sync::Mutex::new(engine::Engine::default()),
            metrics: metrics::Metrics::new().map_err(|e| StartError(format!("metrics: {e}")))?,
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap_or_default(),
            started: std::time::Instant::now(),
            settings,
        });
        let app = api::router(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "replacer API stopped");
            }
        });
        let mut tasks = vec![server, tokio::spawn(engine::run(shared.clone()))];
        if let Some(link) = shared.settings.collector.clone() {
            tasks.push(tokio::spawn(engine::forward(shared.clone(), link)));
        }
        Ok(Replacer {
            addr,
            shared,
            tasks,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn shared(&self) -> &Arc<engine::Shared> {
        &self.shared
    }

    pub async fn shutdown(self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

//! The `local` provider: the platform's instances as child processes on this machine (`lookout
//! up`). A replacement starts a new instance, waits until its healthcheck passes, puts it into
//! the gateway's pool beside the old one, then takes the old one out and stops it (SIGTERM,
//! then SIGKILL): the pool never has fewer serving instances than before. A new instance that
//! does not become healthy in time is stopped and the old one stays: the rollback.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use lookout_model::secret::Secret;
use serde::Deserialize;

use super::{Provider, ProviderError, Replaced};
use crate::health::{self, Poll};
use crate::instance::Instance;

const KIND: &str = "local";

/// `type: local` takes no other keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLocal {}

#[derive(Debug, Clone)]
pub struct LocalConfig;

impl super::ProviderKind for LocalConfig {
    type Raw = RawLocal;

    fn from_raw(
        _: RawLocal,
        _: Option<lookout_conf::Located>,
        _: &mut lookout_conf::Report,
    ) -> Self {
        LocalConfig
    }

    fn needs_platform(&self) -> bool {
        true
    }

    fn build(&self, platform: &super::Platform) -> Result<Arc<dyn Provider>, ProviderError> {
        let Some((launcher, gateway)) = &platform.local else {
            return Err(LocalProvider::fail(
                "the local provider replaces `lookout up`'s own child processes and runs inside `lookout up`; give `lookout replacer` the aws provider".into(),
            ));
        };
        Ok(Arc::new(LocalProvider::new(
            launcher.clone(),
            gateway.clone(),
        )))
    }
}
/// How long the old instance has to stop after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Starts and stops the platform's processes: the `lookout` binary implements it.
pub trait Launcher: Send + Sync {
    /// Every instance running now (the gateway aside: it is not in a pool).
    fn instances(&self) -> Vec<Instance>;
    /// Starts one more instance of `service`, not yet in any pool.
    fn launch<'a>(&'a self, service: &'a str) -> BoxFuture<'a, Result<Instance, String>>;
    /// Stops it: SIGTERM, then SIGKILL after `grace`; it is forgotten either way.
    fn stop<'a>(&'a self, id: &'a str, grace: Duration) -> BoxFuture<'a, Result<(), String>>;
    /// Whether its process is alive; `None` for an unknown id.
    fn alive(&self, id: &str) -> Option<bool>;
}

/// The gateway's pools, through its admin API (`/admin/upstreams`).
#[derive(Clone)]
pub struct Gateway {
    pub admin_url: String,
    pub token: Secret,
}

/// `GET /admin/upstreams`: each pool as a healthcheck dependency.
#[derive(Deserialize)]
struct Upstreams {
    upstreams: Vec<lookout_model::health::Dependency>,
}

pub struct LocalProvider {
    launcher: Arc<dyn Launcher>,
    gateway: Gateway,
    http: reqwest::Client,
}

impl LocalProvider {
    pub fn new(launcher: Arc<dyn Launcher>, gateway: Gateway) -> Self {
        LocalProvider {
            launcher,
            gateway,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
        }
    }

    fn fail(message: String) -> ProviderError {
        ProviderError::Failed {
            provider: KIND,
            message,
        }
    }

    async fn pool(&self, service: &str) -> Result<Vec<String>, ProviderError> {
        let url = format!(
            "{}/admin/upstreams",
            self.gateway.admin_url.trim_end_matches('/')
        );
        let r = self
            .http
            .get(&url)
            .bearer_auth(self.gateway.token.expose())
            .send()
            .await
            .map_err(|e| {
                Self::fail(format!(
                    "the gateway's pools cannot be read: {}",
                    source(&e)
                ))
            })?;
        if !r.status().is_success() {
            return Err(Self::fail(format!(
                "the gateway answered {} for its pools",
                r.status()
            )));
        }
        let body: Upstreams = r
            .json()
            .await
            .map_err(|e| Self::fail(format!("the gateway's pools are unreadable: {e}")))?;
        body.upstreams
            .into_iter()
            .find(|p| p.name == service)
            .map(|p| p.instances.into_iter().map(|i| i.url).collect())
            .ok_or_else(|| Self::fail(format!("the gateway has no pool for {service}")))
    }

    async fn set_pool(&self, service: &str, urls: &[String]) -> Result<(), ProviderError> {
        let url = format!(
            "{}/admin/upstreams/{service}",
            self.gateway.admin_url.trim_end_matches('/')
        );
        let r = self
            .http
            .put(&url)
            .bearer_auth(self.gateway.token.expose())
            .json(&serde_json::json!({ "instances": urls }))
            .send()
            .await
            .map_err(|e| Self::fail(format!("the gateway's pool cannot be set: {}", source(&e))))?;
        if !r.status().is_success() {
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            return Err(Self::fail(format!(
                "the gateway refused the new pool for {service} ({status}): {}",
                text.chars().take(200).collect::<String>()
            )));
        }
        Ok(())
    }

    /// Waits until the new instance's healthcheck passes, or the deadline.
    async fn healthy(&self, new: &Instance, until: Instant) -> Result<(), String> {
        let mut last = String::from("not polled");
        while Instant::now() < until {
            match health::poll(&self.http, &new.url, Duration::from_secs(1)).await {
                Poll::Serving | Poll::ServingDegraded(_) => return Ok(()),
                Poll::Failed(why) => last = why,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(last)
    }

    async fn replace_inner(
        &self,
        old: &Instance,
        deadline: Duration,
    ) -> Result<Replaced, ProviderError> {
        let until = Instant::now() + deadline;
        let new = self.launcher.launch(&old.service).await.map_err(|e| {
            Self::fail(format!("a new {} instance did not start: {e}", old.service))
        })?;
        if let Err(why) = self.healthy(&new, until).await {
            let _ = self.launcher.stop(&new.id, STOP_GRACE).await;
            return Err(Self::fail(format!(
                "the new instance {} did not become healthy within {} ({why}); it was stopped and {} kept",
                new.id,
                humantime::format_duration(deadline),
                old.id
            )));
        }
        // Into the pool first, then the old one out: never fewer serving instances.
        let mut urls = self.pool(&old.service).await.inspect_err(|_| {
            let launcher = self.launcher.clone();
            let id = new.id.clone();
            tokio::spawn(async move { launcher.stop(&id, STOP_GRACE).await });
        })?;
        if !urls.contains(&new.url) {
            urls.push(new.url.clone());
        }
        if let Err(e) = self.set_pool(&old.service, &urls).await {
            let _ = self.launcher.stop(&new.id, STOP_GRACE).await;
            return Err(e);
        }
        urls.retain(|u| u != &old.url);
        self.set_pool(&old.service, &urls).await?;
        if let Err(e) = self.launcher.stop(&old.id, STOP_GRACE).await {
            tracing::warn!(instance = %old.id, error = %e, "replacer: the old instance did not stop cleanly");
        }
        Ok(Replaced::New(new))
    }
}

fn source(e: &reqwest::Error) -> String {
    match std::error::Error::source(e) {
        Some(s) => s.to_string(),
        None => "request failed".into(),
    }
}

impl Provider for LocalProvider {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn instances(&self) -> BoxFuture<'_, Result<Vec<Instance>, ProviderError>> {
        Box::pin(async move { Ok(self.launcher.instances()) })
    }

    fn alive(&self, instance: &Instance) -> Option<bool> {
        self.launcher.alive(&instance.id)
    }

    fn replace<'a>(
        &'a self,
        instance: &'a Instance,
        deadline: Duration,
    ) -> BoxFuture<'a, Result<Replaced, ProviderError>> {
        Box::pin(async move {
            // Past the deadline plus the stop grace, something hangs: say so and move on.
            match tokio::time::timeout(
                deadline + STOP_GRACE * 2,
                self.replace_inner(instance, deadline),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => Err(ProviderError::Timeout {
                    provider: KIND,
                    timeout: deadline + STOP_GRACE * 2,
                }),
            }
        })
    }
}

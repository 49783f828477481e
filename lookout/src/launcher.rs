//! The platform's instances as the replacer's `local` provider sees them: it adopts the
//! instances `lookout up` started (the gateway aside: it is not in a pool), starts new ones on
//! free ports, and stops old ones.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use lookout_replacer::instance::Instance;
use lookout_replacer::provider::local::Launcher;
use lookout_services::{AnalyticsSettings, ServiceKind};

use crate::config::LogConfig;
use crate::supervisor::{Platform, RunningInstance, spawn};
use lookout_services::config::PlatformConfig;

struct Running {
    instance: RunningInstance,
    started_us: i64,
}

pub struct PlatformLauncher {
    running: Mutex<Vec<Running>>,
    /// The next index per kind, so that names (`catalogue#3`) are never reused.
    next: Mutex<BTreeMap<ServiceKind, usize>>,
    platform: PlatformConfig,
    log: LogConfig,
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl PlatformLauncher {
    /// Takes every instance but the gateway out of `platform`.
    pub fn adopt(platform: &mut Platform, config: &PlatformConfig, log: &LogConfig) -> Self {
        let (gateway, others): (Vec<_>, Vec<_>) = platform
            .children
            .drain(..)
            .partition(|c| c.kind == ServiceKind::Gateway);
        platform.children = gateway;
        let mut next = BTreeMap::new();
        for c in &others {
            let n = next.entry(c.kind).or_insert(0);
            *n = (*n).max(c.index + 1);
        }
        let now = now_us();
        PlatformLauncher {
            running: Mutex::new(
                others
                    .into_iter()
                    .map(|instance| Running {
                        instance,
                        started_us: now,
                    })
                    .collect(),
            ),
            next: Mutex::new(next),
            platform: config.clone(),
            log: log.clone(),
        }
    }

    fn running(&self) -> MutexGuard<'_, Vec<Running>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every instance, for the list `lookout up` prints.
    pub fn describe(&self) -> Vec<(String, String, String)> {
        self.running()
            .iter()
            .map(|r| (r.instance.name(), r.instance.url(), r.instance.admin_url()))
            .collect()
    }

    /// Stops them all (`lookout up` stopping).
    pub async fn stop_all(&self) {
        let all: Vec<Running> = self.running().drain(..).collect();
        let stops = all
            .into_iter()
            .map(|r| r.instance.stop(Duration::from_secs(6)));
        for result in futures_util::future::join_all(stops).await {
            if let Err(e) = result {
                tracing::warn!("{e}");
            }
        }
    }

    fn describe_one(r: &Running) -> Instance {
        Instance {
            id: r.instance.name(),
            service: r.instance.kind.name().to_owned(),
            url: r.instance.url(),
            started_us: r.started_us,
            metrics_url: Some(format!("{}/metrics", r.instance.admin_url())),
        }
    }
}

impl Launcher for PlatformLauncher {
    fn instances(&self) -> Vec<Instance> {
        self.running().iter().map(Self::describe_one).collect()
    }

    fn launch<'a>(&'a self, service: &'a str) -> BoxFuture<'a, Result<Instance, String>> {
        Box::pin(async move {
            let kind: ServiceKind = service
                .parse()
                .map_err(|_| format!("no service {service:?} to start"))?;
            if kind == ServiceKind::Gateway {
                return Err("the gateway is not replaced by the local provider".into());
            }
            let index = {
                let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
                let n = next.entry(kind).or_insert(0);
                let index = *n;
                *n += 1;
                index
            };
            let mut spec = self.platform.instance_spec(kind);
            if kind == ServiceKind::Analytics {
                let mixes: Vec<String> = self
                    .running()
                    .iter()
                    .filter(|r| r.instance.kind == ServiceKind::Mixes)
                    .map(|r| r.instance.url())
                    .collect();
                spec.analytics = Some(AnalyticsSettings {
                    queue_capacity: self.platform.analytics_queue_capacity,
                    mixes,
                });
            }
            let any = SocketAddr::from(([127, 0, 0, 1], 0));
            let started = spawn(spec, index, any, any, &self.log)
                .await
                .map_err(|e| format!("{e:#}"))?;
            let running = Running {
                instance: started,
                started_us: now_us(),
            };
            let described = Self::describe_one(&running);
            self.running().push(running);
            Ok(described)
        })
    }

    fn stop<'a>(&'a self, id: &'a str, grace: Duration) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let taken = {
                let mut running = self.running();
                let at = running.iter().position(|r| r.instance.name() == id);
                at.map(|i| running.remove(i))
            };
            match taken {
                Some(r) => r.instance.stop(grace).await,
                None => Err(format!("no instance {id:?} to stop")),
            }
        })
    }

    fn alive(&self, id: &str) -> Option<bool> {
        self.running()
            .iter_mut()
            .find(|r| r.instance.name() == id)
            .and_then(|r| r.instance.alive())
    }
}

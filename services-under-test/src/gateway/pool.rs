//! A pool of instances of one upstream service: who is healthy, and in which order to try them.
//!
//! Health is learnt two ways: a poller reads each instance's `/healthcheck` (an instance is
//! healthy when it answers 200 within the timeout), and a request that cannot connect marks
//! its instance down at once instead of waiting for the next poll.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use lookout_model::health::{Dependency, HealthStatus, InstanceHealth};
use prometheus::IntGaugeVec;

pub struct Instance {
    pub url: String,
    healthy: AtomicBool,
    reason: Mutex<Option<String>>,
}

impl Instance {
    fn new(url: String) -> Arc<Self> {
        Arc::new(Instance {
            url,
            healthy: AtomicBool::new(true),
            reason: Mutex::new(None),
        })
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub fn mark(&self, healthy: bool, reason: Option<String>) {
        let was = self.healthy.swap(healthy, Ordering::Relaxed);
        if was != healthy {
            match &reason {
                Some(r) => {
                    tracing::warn!(instance = %self.url, reason = %r, "upstream instance marked down")
                }
                None => tracing::info!(instance = %self.url, "upstream instance healthy again"),
            }
        }
        *self.reason.lock().unwrap_or_else(PoisonError::into_inner) = reason;
    }
}

pub struct Pool {
    pub service: &'static str,
    instances: RwLock<Arc<Vec<Arc<Instance>>>>,
    next: AtomicUsize,
    up_gauge: IntGaugeVec,
}

impl Pool {
    pub fn new(service: &'static str, urls: Vec<String>, up_gauge: IntGaugeVec) -> Arc<Self> {
        let pool = Arc::new(Pool {
            service,
            instances: RwLock::new(Arc::new(Vec::new())),
            next: AtomicUsize::new(0),
            up_gauge,
        });
        pool.replace(urls);
        pool
    }

    pub fn instances(&self) -> Arc<Vec<Arc<Instance>>> {
        self.instances
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the pool's members; instances kept keep their health state.
    pub fn replace(&self, urls: Vec<String>) {
        let mut guard = self
            .instances
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let old = guard.clone();
        let fresh: Vec<Arc<Instance>> = urls
            .into_iter()
            .map(|u| {
                let u = u.trim_end_matches('/').to_owned();
                old.iter()
                    .find(|i| i.url == u)
                    .cloned()
                    .unwrap_or_else(|| Instance::new(u))
            })
            .collect();
        for gone in old.iter().filter(|o| !fresh.iter().any(|f| f.url == o.url)) {
            let _ = self
                .up_gauge
                .remove_label_values(&[self.service, &gone.url]);
        }
        *guard = Arc::new(fresh);
    }

    /// The order to try instances in: healthy ones first, starting at `start` (round robin,
    /// or a user's hash for sticky routing), then the unhealthy ones as a last resort.
    pub fn order(&self, sticky: Option<u64>) -> Vec<Arc<Instance>> {
        let all = self.instances();
        let n = all.len();
        if n == 0 {
            return Vec::new();
        }
        let healthy: Vec<&Arc<Instance>> = all.iter().filter(|i| i.is_healthy()).collect();
        let mut order = Vec::with_capacity(n);
        if !healthy.is_empty() {
            let start = match sticky {
                Some(h) => (h % healthy.len() as u64) as usize,
                None => self.next.fetch_add(1, Ordering::Relaxed) % healthy.len(),
            };
            for k in 0..healthy.len() {
                order.push(healthy[(start + k) % healthy.len()].clone());
            }
        }
        order.extend(all.iter().filter(|i| !i.is_healthy()).cloned());
        order
    }

    pub fn dependency(&self) -> Dependency {
        let instances = self
            .instances()
            .iter()
            .map(|i| InstanceHealth {
                url: i.url.clone(),
                status: if i.is_healthy() {
                    HealthStatus::Ok
                } else {
                    HealthStatus::Down
                },
                reason: i
                    .reason
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone(),
            })
            .collect();
        Dependency::from_instances(self.service, instances)
    }

    /// Polls every instance once.
    pub async fn check(&self, client: &reqwest::Client, timeout: Duration) {
        let instances = self.instances();
        let checks = instances.iter().map(|i| async move {
            let url = format!("{}/healthcheck", i.url);
            let verdict = match client.get(&url).timeout(timeout).send().await {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => Some(format!("healthcheck answered {}", r.status().as_u16())),
                Err(e) if e.is_timeout() => Some(format!(
                    "healthcheck timed out after {}",
                    humantime::format_duration(timeout)
                )),
                Err(e) if e.is_connect() => Some("connection refused".to_owned()),
                Err(e) => Some(format!("healthcheck failed: {e}")),
            };
            i.mark(verdict.is_none(), verdict);
            self.up_gauge
                .with_label_values(&[self.service, &i.url])
                .set(i64::from(i.is_healthy()));
        });
        futures_util::future::join_all(checks).await;
    }

    /// Polls until the pool is dropped.
    pub fn spawn_poller(
        self: &Arc<Self>,
        client: reqwest::Client,
        interval: Duration,
        timeout: Duration,
    ) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(pool) = weak.upgrade() else { return };
                pool.check(&client, timeout).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::Opts;

    fn pool(urls: &[&str]) -> Arc<Pool> {
        let gauge = IntGaugeVec::new(Opts::new("g", "g"), &["service", "instance"]).unwrap();
        Pool::new(
            "catalogue",
            urls.iter().map(|s| s.to_string()).collect(),
            gauge,
        )
    }

    #[test]
    fn round_robin_skips_the_unhealthy_and_keeps_them_last() {
        let p = pool(&["http://a", "http://b", "http://c"]);
        p.instances()[1].mark(false, Some("refused".into()));
        let firsts: Vec<String> = (0..4).map(|_| p.order(None)[0].url.clone()).collect();
        assert_eq!(firsts, ["http://a", "http://c", "http://a", "http://c"]);
        assert_eq!(p.order(None).last().unwrap().url, "http://b");
        assert_eq!(p.dependency().status, HealthStatus::Degraded);
    }

    #[test]
    fn sticky_routing_is_stable_and_replace_keeps_state() {
        let p = pool(&["http://a/", "http://b"]);
        let first = p.order(Some(7))[0].url.clone();
        assert_eq!(p.order(Some(7))[0].url, first);
        p.instances()[0].mark(false, None);
        p.replace(vec!["http://a".into(), "http://d".into()]);
        let urls: Vec<_> = p
            .instances()
            .iter()
            .map(|i| (i.url.clone(), i.is_healthy()))
            .collect();
        assert_eq!(
            urls,
            [
                ("http://a".to_string(), false),
                ("http://d".to_string(), true)
            ]
        );
    }
}

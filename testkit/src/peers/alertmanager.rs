//! Prometheus Alertmanager, with one route to a receiver that sends nothing and clustering off.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Guard;

const INSTALL: &str = "the Alertmanager tests need Debian's prometheus-alertmanager package \
                       (`apt-get install prometheus-alertmanager`; ./scripts/test installs it)";

pub struct Alertmanager {
    pub url: String,
    guard: Guard,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    pub async fn start() -> Alertmanager {
        let served = super::serve_prometheus_like(
            "alertmanager",
            &[
                "/usr/bin/prometheus-alertmanager",
                "/usr/local/bin/alertmanager",
            ],
            INSTALL,
            "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
            |dir| {
                vec![
                    format!("--storage.path={}", dir.join("data").display()),
                    // An empty address turns clustering (and its gossip port) off.
                    "--cluster.listen-address=".to_owned(),
                    "--log.level=warn".to_owned(),
                ]
            },
        )
        .await;
        Alertmanager {
            url: served.url,
            guard: served.guard,
            _dir: served.dir,
        }
    }

    pub fn log(&self) -> String {
        self.guard.log()
    }

    /// The alerts it shows for `alertname`.
    pub async fn alerts(&self, alertname: &str) -> Vec<Value> {
        let url = format!("{}/api/v2/alerts", self.url);
        let all: Vec<Value> = reqwest::get(&url).await.unwrap().json().await.unwrap();
        all.into_iter()
            .filter(|a| a["labels"]["alertname"] == alertname)
            .collect()
    }

    /// Polls the alerts for `alertname` until `done` says so or 10 s pass.
    pub async fn alerts_until(
        &self,
        alertname: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let alerts = self.alerts(alertname).await;
            if done(&alerts) || Instant::now() > end {
                return alerts;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

//! A Prometheus server: with no scrape targets for PromQL, or with the config a test writes.

use crate::Guard;

const INSTALL: &str = "install Debian's `prometheus` package \
                       (apt-get install --no-install-recommends prometheus; ./scripts/test does)";

pub struct Prometheus {
    pub url: String,
    pub port: u16,
    guard: Guard,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Scrapes nothing: for answering PromQL.
    pub async fn start() -> Prometheus {
        Self::with_config("global:\n  scrape_interval: 15s\nscrape_configs: []\n", &[]).await
    }

    /// With `config` as its prometheus.yml and `args` added to its command line.
    pub async fn with_config(config: &str, args: &[&str]) -> Prometheus {
        let served = super::serve_prometheus_like(
            "prometheus",
            &["/usr/bin/prometheus", "/usr/local/bin/prometheus"],
            INSTALL,
            config,
            |dir| {
                let mut all = vec![format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                )];
                all.extend(args.iter().map(|a| a.to_string()));
                all
            },
        )
        .await;
        Prometheus {
            url: served.url,
            port: served.port,
            guard: served.guard,
            _dir: served.dir,
        }
    }

    pub fn log(&self) -> String {
        self.guard.log()
    }
}

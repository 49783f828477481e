//! A Prometheus server: with no scrape targets for PromQL, or with the config a test writes.

use std::process::Command;
use std::time::Duration;

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
        let binary = super::binary(
            &["/usr/bin/prometheus", "/usr/local/bin/prometheus"],
            INSTALL,
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, config).unwrap();
        let port = crate::free_port();
        let mut command = Command::new(binary);
        command
            .arg(format!("--config.file={}", file.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .args(args);
        let mut guard = Guard::spawn("prometheus", command, INSTALL);
        let url = format!("http://127.0.0.1:{port}");
        super::ready(
            &mut guard,
            &format!("{url}/-/ready"),
            Duration::from_secs(30),
        )
        .await;
        Prometheus {
            url,
            port,
            guard,
            _dir: dir,
        }
    }

    pub fn log(&self) -> String {
        self.guard.log()
    }
}

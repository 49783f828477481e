//! The real servers the suite talks to, each behind the same API: `start()` waits until it
//! answers (or fails the test with its log and what to install), and it dies with the test.
//! `./scripts/test` installs every one of them.

mod alertmanager;
mod moto;
mod nats;
mod prometheus;
mod promtool;
mod smtp;
mod victoria;

pub use alertmanager::Alertmanager;
pub use moto::Moto;
pub use nats::NatsCluster;
pub use prometheus::Prometheus;
pub use promtool::promtool_check;
pub use smtp::Smtp;
pub use victoria::Victoria;

use std::time::Duration;

use crate::Guard;

/// Waits until `url` answers 2xx; fails the test with the peer's log otherwise.
async fn ready(guard: &mut Guard, url: &str, limit: Duration) {
    let http = reqwest::Client::new();
    let up = crate::eventually(limit, || async {
        http.get(url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    if !up {
        panic!(
            "{url} did not answer within {limit:?} ({:?}):\n{}",
            guard.exited(),
            guard.tail()
        );
    }
}

/// One of the Prometheus family (Prometheus, Alertmanager): `config` in a fresh directory as
/// `--config.file`, a free port as `--web.listen-address`, `args(dir)` after them; ready once
/// `/-/ready` answers. Its URL, port, guard and directory.
struct Served {
    url: String,
    port: u16,
    guard: Guard,
    dir: tempfile::TempDir,
}

async fn serve_prometheus_like(
    name: &str,
    paths: &[&'static str],
    install: &str,
    config: &str,
    args: impl FnOnce(&std::path::Path) -> Vec<String>,
) -> Served {
    let binary = binary(paths, install);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{name}.yml"));
    std::fs::write(&file, config).unwrap();
    let port = crate::free_port();
    let mut command = std::process::Command::new(binary);
    command
        .arg(format!("--config.file={}", file.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(args(dir.path()));
    let mut guard = Guard::spawn(name, command, install);
    let url = format!("http://127.0.0.1:{port}");
    ready(
        &mut guard,
        &format!("{url}/-/ready"),
        Duration::from_secs(30),
    )
    .await;
    Served {
        url,
        port,
        guard,
        dir,
    }
}

/// The first of `paths` that exists, for peers Debian and upstream install in different places.
fn binary(paths: &[&'static str], install: &str) -> &'static str {
    paths
        .iter()
        .copied()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| panic!("none of {paths:?} exists: {install}"))
}

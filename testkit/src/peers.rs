//! The real servers the suite talks to, each behind the same API: `start()` waits until it
//! answers (or fails the test with its log and what to install), and it dies with the test.
//! `./scripts/test` installs every one of them.

mod alertmanager;
mod moto;
mod prometheus;
mod promtool;
mod smtp;
mod victoria;

pub use alertmanager::Alertmanager;
pub use moto::Moto;
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

/// The first of `paths` that exists, for peers Debian and upstream install in different places.
fn binary(paths: &[&'static str], install: &str) -> &'static str {
    paths
        .iter()
        .copied()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| panic!("none of {paths:?} exists: {install}"))
}

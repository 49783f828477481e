//! Waiting for something to become true: a test waits for an event, never a fixed time.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(50);

/// Polls `ok` until it holds and says how long that took; fails the test naming `what` after
/// `limit`.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, ok: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    if eventually(limit, ok).await {
        start.elapsed()
    } else {
        panic!("{what}: not within {limit:?}")
    }
}

/// Polls `ok` until it holds (true) or `limit` passes (false).
pub async fn eventually<F, Fut>(limit: Duration, mut ok: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = Instant::now() + limit;
    loop {
        if ok().await {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// [`eventually`] for a condition that needs no waiting of its own (a counter, a file).
pub async fn within(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    eventually(limit, || {
        let holds = ok();
        async move { holds }
    })
    .await
}

/// Polls `f` until it gives a value, which it returns; panics after `limit`
/// naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if start.elapsed() > limit {
            panic!("{what}: not within {limit:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

//! Keeps the rendered site current: follows the collector's live state (a change re-renders
//! within a second), re-reads the figures every `refresh_every`, and re-renders at once after
//! an admin write. A collector that does not answer leaves the last site up, marked stale.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use lookout_api::client::{ClientError, Window};

use crate::Shared;
use crate::model::Maintenance;
use crate::snapshot::{self, ComponentFigures, Snapshot};
use crate::sync::Seen;

const DAY_US: i64 = 86_400_000_000;
/// Long-poll wait on the live state feed.
const FEED_WAIT: Duration = Duration::from_secs(25);
/// Changes that come together are rendered together.
const SETTLE: Duration = Duration::from_millis(150);
/// The longest a page goes without being made again, so its times stay honest.
const MAX_AGE_US: i64 = 5 * 60 * 1_000_000;

#[derive(Default)]
pub struct RefreshState {
    pub figures: BTreeMap<String, ComponentFigures>,
    /// The collector's maintenance windows of the page's components, as last read.
    pub maintenances: Vec<Maintenance>,
    pub data_as_of_us: Option<i64>,
    pub synced_once: bool,
    pub last: Option<Snapshot>,
}

pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Follows `/api/v1/states` into the shared feed until the page stops.
pub async fn follow_feed(shared: Arc<Shared>, stop: tokio::sync::watch::Receiver<bool>) {
    let metrics = &shared.metrics;
    lookout_api::client::follow(
        &shared.client,
        &shared.feed,
        |_| FEED_WAIT,
        |outcome| {
            if let Err(e) = outcome {
                tracing::debug!(error = %e, "status page: live state unavailable");
                metrics.collector_errors.inc();
            }
        },
        stop,
    )
    .await;
}

/// Wakes the renderer on each new version of the live state.
pub async fn kick_on_change(shared: Arc<Shared>) {
    let mut feed = shared.feed.subscribe();
    let mut seen = None;
    while feed.changed().await.is_ok() {
        let version = {
            let f = feed.borrow_and_update();
            f.answered.map(|_| f.states.version)
        };
        if version.is_some() && version != seen {
            seen = version;
            shared.kick.notify_one();
        }
    }
}

/// The render loop.
pub async fn run(shared: Arc<Shared>) {
    loop {
        let timer = tokio::time::sleep(shared.settings().refresh_every);
        tokio::select! {
            _ = timer => {}
            _ = shared.kick.notified() => tokio::time::sleep(SETTLE).await,
            _ = shared.rerender.notified() => {
                rerender(&shared).await;
                continue;
            }
        }
        refresh(&shared).await;
    }
}

/// Reads everything, renders if anything shown changed, swaps the site in.
pub async fn refresh(shared: &Arc<Shared>) {
    let _one_at_a_time = shared.refreshing.lock().await;
    let now = now_us();
    let mut st = shared.state.lock().await;
    let read = read(shared, &mut st, now).await;
    let stale = match &read {
        Ok(()) => {
            // A collector replica behind the log answers with what it has applied: the
            // page's data is as old as that, and says so once it is too old.
            let behind = shared.client.behind();
            st.data_as_of_us =
                Some(now - i64::try_from(behind.as_micros()).unwrap_or(i64::MAX / 2));
            let too_old = shared.settings().max_behind.is_some_and(|max| behind > max);
            if too_old {
                tracing::warn!(behind = ?behind, "status page: the collector replica is behind the replicated log; the page says its data is old");
            }
            too_old
        }
        Err(e) => {
            tracing::warn!(error = %e, "status page: showing the last known state");
            shared.metrics.collector_errors.inc();
            true
        }
    };
    shared.metrics.stale.set(i64::from(stale));
    let incidents = match shared.store.incidents() {
        Ok(i) => i,
        Err(e) => {
            tracing::error!(error = %e, "status page: store unreadable; the site is left as it was");
            return;
        }
    };
    let live = shared.live();
    let snap = snapshot::assemble(
        &shared.settings(),
        live.as_ref(),
        &st.figures,
        incidents,
        st.maintenances.clone(),
        snapshot::Freshness {
            data_as_of_us: st.data_as_of_us,
            stale: stale || st.data_as_of_us.is_none(),
            now_us: now,
        },
    );
    let due = match &st.last {
        None => true,
        Some(last) => snap.stale || !same_content(last, &snap) || now - last.now_us > MAX_AGE_US,
    };
    if !due {
        return;
    }
    publish(shared, &mut st, snap).await;
}

/// Renders the snapshot and swaps the site in. Rendering (templates, gzip of every page) takes
/// milliseconds of CPU: it runs on a blocking thread, so that the runtime's workers go on
/// answering readers meanwhile.
async fn publish(shared: &Arc<Shared>, st: &mut RefreshState, snap: Snapshot) {
    let started = std::time::Instant::now();
    let job = {
        let shared = shared.clone();
        let snap = snap.clone();
        tokio::task::spawn_blocking(move || {
            crate::render::site(&shared.templates, &shared.settings(), &snap)
        })
    };
    match job.await {
        Ok(Ok(site)) => {
            shared.site.store(Arc::new(site));
            shared.metrics.renders.inc();
            shared
                .metrics
                .render_seconds
                .observe(started.elapsed().as_secs_f64());
            st.last = Some(snap);
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "status page: render failed; the last site stays")
        }
        Err(e) => tracing::error!(error = %e, "status page: render stopped; the last site stays"),
    }
}

/// Whether two snapshots show the same thing (their times aside).
fn same_content(a: &Snapshot, b: &Snapshot) -> bool {
    if a.stale || b.stale {
        return false;
    }
    // The window's end and the budget it allows move with every read; a page whose figures
    // are otherwise the same is not made again for them (a page shows its figures with the
    // window they are of, so an older one stays consistent).
    let strip = |s: &Snapshot| {
        let mut s = Snapshot {
            now_us: 0,
            data_as_of_us: None,
            ..s.clone()
        };
        for g in &mut s.groups {
            for c in &mut g.components {
                if let Some(u) = &mut c.figures.uptime {
                    u.to_us = 0;
                    u.error_budget_seconds = 0.0;
                    u.error_budget_remaining_seconds = 0.0;
                }
            }
        }
        s
    };
    // A new UTC day moves every bar.
    a.now_us / DAY_US == b.now_us / DAY_US && strip(a) == strip(b)
}

/// Reads the collector: its live state when the feed has none yet, and in a fixed number of
/// requests whatever the number of components, the down intervals (into incidents), every
/// component's figures and the maintenance windows.
async fn read(
    shared: &Arc<Shared>,
    st: &mut crate::refresh::RefreshState,
    now: i64,
) -> Result<(), ClientError> {
    if shared.live().is_none() {
        // The feed has not answered yet (or lost the collector): ask once, directly.
        let states = shared.client.states(None, Duration::ZERO).await?;
        shared.feed.send_modify(|f| {
            f.states = states;
            f.answered = Some(std::time::Instant::now());
        });
    }
    let checks = shared.settings().checks();
    // Down intervals into incidents: the whole 90 days once, then the last two days.
    let from = if st.synced_once {
        now - 2 * DAY_US
    } else {
        now - 90 * DAY_US
    };
    let intervals = if checks.is_empty() {
        Default::default()
    } else {
        shared
            .client
            .incidents_all(Window::Since(from), Some(&checks))
            .await?
    };
    let mut seen = Vec::new();
    let settings = shared.settings();
    for c in settings.components() {
        for interval in intervals
            .check(&c.check)
            .map(|i| i.incidents.as_slice())
            .unwrap_or_default()
        {
            seen.push(Seen {
                component: c,
                interval: interval.clone(),
            });
        }
    }
    match crate::changes::observe(shared, &mut seen).await {
        Ok(_) => st.synced_once = true,
        Err(e) => tracing::error!(error = %e, "status page: incidents could not be stored"),
    }
    let reads = snapshot::read(&shared.client, &shared.settings(), now).await?;
    let windows = shared
        .client
        .maintenance(now - i64::from(snapshot::DAYS) * DAY_US)
        .await?;
    st.maintenances = windows
        .maintenance
        .into_iter()
        .filter_map(|m| Maintenance::of(m, &shared.settings()))
        .collect();
    let incidents = shared.store.incidents().unwrap_or_default();
    for c in shared.settings().components() {
        let f = snapshot::figures(&reads, &shared.settings(), c, &incidents);
        st.figures.insert(c.id.clone(), f);
    }
    Ok(())
}

/// Renders again from the figures already read and the store as it is now: what an admin
/// write needs, without waiting on the collector.
pub async fn rerender(shared: &Arc<Shared>) {
    let _one_at_a_time = shared.refreshing.lock().await;
    let now = now_us();
    let mut st = shared.state.lock().await;
    let Ok(incidents) = shared.store.incidents() else {
        tracing::error!("status page: store unreadable; the site is left as it was");
        return;
    };
    let live = shared.live();
    let stale = st.last.as_ref().is_none_or(|l| l.stale);
    let snap = snapshot::assemble(
        &shared.settings(),
        live.as_ref(),
        &st.figures,
        incidents,
        st.maintenances.clone(),
        snapshot::Freshness {
            data_as_of_us: st.data_as_of_us,
            stale,
            now_us: now,
        },
    );
    publish(shared, &mut st, snap).await;
}

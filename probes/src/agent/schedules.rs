//! The agent's scheduled checks: one loop per check of its region, each started, replaced
//! or stopped on its own when the config changes.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{Shared, utc_to_instant};
use crate::check::Check;
use crate::http::Pool;
use crate::journey::{self, RunContext};
use crate::template::Vars;

struct Loop {
    /// What the check was when its loop started: a loop is replaced when this differs.
    fingerprint: String,
    removed: watch::Sender<bool>,
    task: JoinHandle<()>,
}

#[derive(Default)]
pub(super) struct Schedules {
    loops: HashMap<String, Loop>,
}

impl Schedules {
    /// Runs `checks` (those of the agent's region) from now; returns how many were (added,
    /// changed, removed). `run_new`: a check new to this agent runs at once.
    pub(super) fn set(
        &mut self,
        shared: &Arc<Shared>,
        checks: &[Arc<Check>],
        variables: &Arc<Vars>,
        stopped: &watch::Receiver<bool>,
        run_new: bool,
    ) -> (usize, usize, usize) {
        let region = &shared.settings.region;
        let wanted: HashMap<&str, &Arc<Check>> = checks
            .iter()
            .filter(|c| c.runs_in(region))
            .map(|c| (c.name.as_str(), c))
            .collect();
        let mut vars: Vec<(&String, &String)> = variables.iter().collect();
        vars.sort();
        // A check's definition and the variables it reads, as text: `Check` holds compiled
        // parts (regexes, templates) that compare by what they were made from.
        let fingerprint = |c: &Check| format!("{c:?} {vars:?}");
        let (mut added, mut changed, mut removed) = (0, 0, 0);
        self.loops.retain(|name, l| {
            let keep = wanted
                .get(name.as_str())
                .is_some_and(|c| fingerprint(c) == l.fingerprint);
            if !keep {
                // A run in progress finishes; the loop starts no other.
                let _ = l.removed.send(true);
                if wanted.contains_key(name.as_str()) {
                    changed += 1;
                } else {
                    removed += 1;
                }
            }
            keep
        });
        let mut triggers = shared
            .triggers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        triggers.retain(|name, _| wanted.contains_key(name.as_str()));
        for (name, check) in wanted {
            if self.loops.contains_key(name) {
                continue;
            }
            let new = !triggers.contains_key(name);
            if new {
                added += 1;
            }
            shared.metrics.known_check(name);
            let (tx, rx) = mpsc::channel(8);
            let (removed_tx, removed_rx) = watch::channel(false);
            triggers.insert(name.to_owned(), tx);
            let task = tokio::spawn(schedule_loop(
                shared.clone(),
                check.clone(),
                variables.clone(),
                new && run_new,
                rx,
                stopped.clone(),
                removed_rx,
            ));
            self.loops.insert(
                name.to_owned(),
                Loop {
                    fingerprint: fingerprint(check),
                    removed: removed_tx,
                    task,
                },
            );
        }
        (added, changed, removed)
    }

    /// Waits for every loop to end (the agent stops: each lets its run in progress finish).
    pub(super) async fn stop_all(self) {
        for (_, l) in self.loops {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), l.task).await;
        }
    }
}

async fn run_once(
    shared: &Arc<Shared>,
    check: &Arc<Check>,
    variables: &Vars,
    pool: &mut Pool,
    confirmation: bool,
) {
    let ctx = RunContext {
        region: &shared.settings.region,
        agent: &shared.settings.agent_id,
        confirmation,
    };
    let mut result = journey::run(check, variables, pool, ctx).await;
    shared.metrics.record(&result);
    if confirmation {
        shared
            .metrics
            .confirmations
            .with_label_values(&[&check.name])
            .inc();
    }
    if let Err(e) = shared.spool.append(&mut result) {
        tracing::error!(error = %e, check = %check.name, "cannot spool a result; it is lost");
        shared.metrics.spool_dropped.inc();
    }
    shared.spooled.notify_one();
}

/// One check's schedule. Runs never overlap: a start that finds the last run still going is
/// skipped and counted, and a slow run never delays the next start beyond its own end.
async fn schedule_loop(
    shared: Arc<Shared>,
    check: Arc<Check>,
    variables: Arc<Vars>,
    run_now: bool,
    mut triggered: mpsc::Receiver<bool>,
    mut stopped: watch::Receiver<bool>,
    mut removed: watch::Receiver<bool>,
) {
    let schedule = check.schedule_in(&shared.settings.region);
    let running = Arc::new(tokio::sync::Mutex::new(Pool::default()));
    let start_run = |confirmation: bool| {
        let (shared, check, running) = (shared.clone(), check.clone(), running.clone());
        let variables = variables.clone();
        match running.clone().try_lock_owned() {
            Ok(mut pool) => {
                tokio::spawn(async move {
                    run_once(&shared, &check, &variables, &mut pool, confirmation).await;
                });
                true
            }
            Err(_) => {
                shared
                    .metrics
                    .skipped
                    .with_label_values(&[&check.name])
                    .inc();
                false
            }
        }
    };
    if run_now {
        start_run(false);
    }
    loop {
        let Some(next) = schedule.next_after(chrono::Utc::now()) else {
            tracing::warn!(check = %check.name, "the schedule has no next start; the check stops");
            return;
        };
        let due = utc_to_instant(next);
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => break,
            _ = removed.wait_for(|s| *s) => break,
            _ = tokio::time::sleep_until(due) => {
                let lag = (chrono::Utc::now() - next).to_std().unwrap_or_default();
                shared.metrics.lag_seconds.observe(lag.as_secs_f64());
                if !start_run(false) {
                    tracing::warn!(check = %check.name, "previous run still going; this start is skipped");
                }
            }
            Some(_) = triggered.recv() => {
                start_run(true);
            }
        }
    }
    // Let a running check finish before the agent stops.
    let _ = running.lock().await;
}

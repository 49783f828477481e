//! Confirmation: when a region reports a failure for a check that was passing there, every
//! other region's agents are asked to run that check now, so that a real outage is confirmed
//! (or a regional blip ruled out) within seconds instead of a whole interval.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use lookout_model::probe::{ProbeResult, RunNow};
use tokio::sync::Notify;

/// An agent that has not polled for this long is not asked (it is likely gone).
const AGENT_STALE: Duration = Duration::from_secs(90);

struct AgentEntry {
    region: String,
    checks: HashSet<String>,
    pending: Vec<RunNow>,
    notify: Arc<Notify>,
    last_seen: Instant,
    /// Where the agent serves `/metrics`, as it said when it last polled.
    metrics_url: Option<String>,
}

impl AgentEntry {
    fn new(region: &str) -> AgentEntry {
        AgentEntry {
            region: region.to_owned(),
            checks: HashSet::new(),
            pending: Vec::new(),
            notify: Arc::new(Notify::new()),
            last_seen: Instant::now(),
            metrics_url: None,
        }
    }
}

#[derive(Default)]
struct State {
    agents: HashMap<String, AgentEntry>,
    /// (check, region) -> (started_at of the latest result, whether it passed).
    latest: HashMap<(String, String), (i64, bool)>,
}

#[derive(Default)]
pub struct Hub {
    state: Mutex<State>,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Looks at a stored result; returns the agents asked to confirm.
    pub fn observe(&self, r: &ProbeResult) -> Vec<String> {
        let mut s = self.lock();
        let key = (r.check.clone(), r.region.clone());
        // A degraded run passed: nothing to confirm.
        let ok = r.outcome.is_up();
        let previous = s.latest.get(&key).copied();
        if previous.is_some_and(|(t, _)| t > r.started_at_us) {
            return Vec::new(); // a late result (a replayed spool) says nothing about now
        }
        s.latest.insert(key, (r.started_at_us, ok));
        let newly_failing = !ok && !r.confirmation && previous.is_none_or(|(_, was_ok)| was_ok);
        if !newly_failing {
            return Vec::new();
        }
        let mut asked = Vec::new();
        for (id, agent) in s.agents.iter_mut() {
            let eligible = agent.region != r.region
                && agent.checks.contains(&r.check)
                && agent.last_seen.elapsed() < AGENT_STALE
                && !agent.pending.iter().any(|p| p.check == r.check);
            if eligible {
                agent.pending.push(RunNow {
                    check: r.check.clone(),
                    reason_region: r.region.clone(),
                });
                agent.notify.notify_one();
                asked.push(id.clone());
            }
        }
        asked
    }

    /// Asks every live agent that runs `check`, whatever its region, to run it now (a
    /// recheck: fresh evidence from everywhere, to tell a blip from an outage or to see a
    /// recovery early). An agent that already has a run of it pending is not asked twice.
    /// Answers the agents that will run it, sorted, and how many of them were asked now.
    pub fn ask_all(&self, check: &str, reason: &str) -> (Vec<String>, usize) {
        let mut s = self.lock();
        let (mut asked, mut queued) = (Vec::new(), 0);
        for (id, agent) in s.agents.iter_mut() {
            if !agent.checks.contains(check) || agent.last_seen.elapsed() >= AGENT_STALE {
                continue;
            }
            if !agent.pending.iter().any(|p| p.check == check) {
                agent.pending.push(RunNow {
                    check: check.to_owned(),
                    reason_region: reason.to_owned(),
                });
                agent.notify.notify_one();
                queued += 1;
            }
            asked.push(id.clone());
        }
        asked.sort();
        (asked, queued)
    }

    /// An agent's long poll: pending commands at once, or whatever arrives within `wait`.
    pub async fn poll(
        &self,
        agent: &str,
        region: &str,
        checks: HashSet<String>,
        wait: Duration,
    ) -> Vec<RunNow> {
        let notify = {
            let mut s = self.lock();
            let entry = s
                .agents
                .entry(agent.to_owned())
                .or_insert_with(|| AgentEntry::new(region));
            entry.region = region.to_owned();
            entry.checks = checks;
            entry.last_seen = Instant::now();
            if !entry.pending.is_empty() {
                return std::mem::take(&mut entry.pending);
            }
            entry.notify.clone()
        };
        let _ = tokio::time::timeout(wait, notify.notified()).await;
        let mut s = self.lock();
        match s.agents.get_mut(agent) {
            Some(e) => {
                e.last_seen = Instant::now();
                std::mem::take(&mut e.pending)
            }
            None => Vec::new(),
        }
    }

    /// (agent, region, seconds since its last poll) for every known agent.
    /// Records where `agent` serves its metrics, for Prometheus's discovery of agents.
    pub fn advertise(&self, agent: &str, region: &str, metrics_url: String) {
        let mut s = self.lock();
        let entry = s
            .agents
            .entry(agent.to_owned())
            .or_insert_with(|| AgentEntry::new(region));
        entry.metrics_url = Some(metrics_url);
    }

    /// Every live agent that said where its metrics are: (agent, region, metrics URL), sorted.
    /// A gone agent drops out with the staleness that stops it being asked to confirm.
    pub fn metrics_targets(&self) -> Vec<(String, String, String)> {
        let s = self.lock();
        let mut v: Vec<_> = s
            .agents
            .iter()
            .filter(|(_, a)| a.last_seen.elapsed() < AGENT_STALE)
            .filter_map(|(id, a)| {
                let url = a.metrics_url.clone()?;
                Some((id.clone(), a.region.clone(), url))
            })
            .collect();
        v.sort();
        v
    }

    pub fn agents(&self) -> Vec<(String, String, f64)> {
        let s = self.lock();
        let mut v: Vec<_> = s
            .agents
            .iter()
            .map(|(id, a)| {
                (
                    id.clone(),
                    a.region.clone(),
                    a.last_seen.elapsed().as_secs_f64(),
                )
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(region: &str, ok: bool, t: i64, confirmation: bool) -> ProbeResult {
        let agent = format!("{region}-1");
        ProbeResult {
            confirmation,
            ..lookout_testkit::results::result("search", region, &agent, t as u64, t, ok, 1)
        }
    }

    #[tokio::test]
    async fn a_new_failure_asks_the_other_regions_once() {
        let hub = Arc::new(Hub::default());
        let checks: HashSet<String> = ["search".to_string()].into();
        for (agent, region) in [
            ("eu-west-1", "eu-west"),
            ("us-east-1", "us-east"),
            ("ap-south-1", "ap-south"),
        ] {
            hub.poll(agent, region, checks.clone(), Duration::ZERO)
                .await;
        }
        assert!(hub.observe(&result("eu-west", true, 1, false)).is_empty());
        let mut asked = hub.observe(&result("eu-west", false, 2, false));
        asked.sort();
        assert_eq!(asked, ["ap-south-1", "us-east-1"]);
        assert!(
            hub.observe(&result("eu-west", false, 3, false)).is_empty(),
            "still failing: not asked again"
        );
        assert!(
            hub.observe(&result("us-east", false, 3, true)).is_empty(),
            "confirmations never cascade"
        );
        let got = hub
            .poll(
                "us-east-1",
                "us-east",
                checks.clone(),
                Duration::from_secs(5),
            )
            .await;
        assert_eq!(
            got,
            [RunNow {
                check: "search".into(),
                reason_region: "eu-west".into()
            }]
        );
        assert!(
            hub.observe(&result("eu-west", true, 1, false)).is_empty(),
            "late results are ignored"
        );
    }

    #[tokio::test]
    async fn a_recheck_asks_every_region_once() {
        let hub = Arc::new(Hub::default());
        let checks: HashSet<String> = ["search".to_string()].into();
        for (agent, region) in [("eu-west-1", "eu-west"), ("us-east-1", "us-east")] {
            hub.poll(agent, region, checks.clone(), Duration::ZERO)
                .await;
        }
        hub.poll("ap-south-1", "ap-south", HashSet::new(), Duration::ZERO)
            .await;
        assert_eq!(
            hub.ask_all("search", "recheck"),
            (vec!["eu-west-1".to_string(), "us-east-1".to_string()], 2),
            "not the agent that does not run it"
        );
        assert_eq!(
            hub.ask_all("search", "recheck").1,
            0,
            "already pending: not queued twice"
        );
        hub.observe(&result("eu-west", false, 2, false));
        let got = hub
            .poll("us-east-1", "us-east", checks.clone(), Duration::ZERO)
            .await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].reason_region, "recheck");
    }

    #[tokio::test]
    async fn a_waiting_poll_wakes_when_asked() {
        let hub = Arc::new(Hub::default());
        let checks: HashSet<String> = ["search".to_string()].into();
        hub.poll("us-east-1", "us-east", checks.clone(), Duration::ZERO)
            .await;
        let waiter = tokio::spawn({
            let hub = hub.clone();
            async move {
                hub.poll("us-east-1", "us-east", checks, Duration::from_secs(10))
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        hub.observe(&result("eu-west", false, 5, false));
        let got = tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.len(), 1);
    }
}

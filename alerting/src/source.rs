//! Where values come from: the collector's query API and live state feed, and a
//! Prometheus-compatible server for PromQL targets. Every request is bounded in time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;

use crate::check::MinBadMinutes;
use crate::target::{Expr, Metric, Percentile, Series};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The collector's `GET /api/v1/states`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct States {
    pub version: u64,
    pub checks: Vec<CheckLive>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct CheckLive {
    pub check: String,
    /// `up`, `down` or `no_data`.
    pub state: String,
    #[serde(default)]
    pub since_us: Option<i64>,
    #[serde(default)]
    pub quorum: usize,
    #[serde(default)]
    pub regions: Vec<RegionLive>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct RegionLive {
    pub region: String,
    /// `ok`, `failing` or `silent`.
    pub state: String,
    #[serde(default)]
    pub since_us: Option<i64>,
    #[serde(default)]
    pub last_result_us: Option<i64>,
    #[serde(default)]
    pub reason: Option<String>,
}

impl CheckLive {
    pub fn failing(&self) -> Vec<&RegionLive> {
        self.regions
            .iter()
            .filter(|r| r.state == "failing")
            .collect()
    }

    /// Down, and confirmed: at least a quorum of regions failed again in runs that started
    /// `confirm_after` or more after the check went down. A blip shorter than that is over
    /// before the second round and never counts; a real outage is still there.
    pub fn confirmed_down(&self, confirm_after_us: i64) -> bool {
        let (Some(since), true) = (self.since_us, self.state == "down") else {
            return false;
        };
        let fresh = self
            .failing()
            .iter()
            .filter(|r| {
                r.last_result_us
                    .is_some_and(|t| t >= since + confirm_after_us)
            })
            .count();
        fresh >= self.quorum.max(1)
    }
}

#[derive(Deserialize)]
struct EventsBody {
    events: Vec<lookout_model::event::StoredEvent>,
}

/// Services whose latest replacer `held`/`released` event is `held`.
pub fn held_services(events: &[lookout_model::event::StoredEvent]) -> usize {
    let mut held: BTreeMap<&str, bool> = BTreeMap::new();
    for e in events.iter().filter(|e| e.event.source == "replacer") {
        match e.event.kind.as_str() {
            "held" => {
                held.insert(&e.event.service, true);
            }
            "released" => {
                held.insert(&e.event.service, false);
            }
            _ => {}
        }
    }
    held.values().filter(|h| **h).count()
}

/// Figures of one check over one window (the collector's availability body).
#[derive(Debug, Clone, Default, Deserialize)]
struct Figures {
    availability: Option<f64>,
    #[serde(default)]
    down_seconds: f64,
    #[serde(default)]
    no_data_seconds: f64,
    #[serde(default)]
    error_budget_seconds: f64,
    #[serde(default)]
    error_budget_remaining_seconds: f64,
    burn_rate: Option<f64>,
    #[serde(default)]
    latency: LatencyFigures,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct LatencyFigures {
    p50_ms: Option<f64>,
    p95_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: Option<f64>,
    share_under_objective: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
struct Incidents {
    incidents: Vec<IncidentSpan>,
}

#[derive(Debug, Clone, Deserialize)]
struct IncidentSpan {
    start_us: i64,
    end_us: Option<i64>,
}

/// Why a value could not be read. Kept apart from "no data" (a value of `None`), which is an
/// answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

#[derive(Clone)]
pub struct Sources {
    http: reqwest::Client,
    collector: url::Url,
    collector_token: lookout_model::secret::Secret,
    prometheus: Option<url::Url>,
    /// How long after a check went down a second round of failures confirms it.
    pub confirm_after: Duration,
}

fn base(mut u: url::Url) -> url::Url {
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    u
}

fn us(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl Sources {
    pub fn new(
        collector: url::Url,
        collector_token: lookout_model::secret::Secret,
        prometheus: Option<url::Url>,
        confirm_after: Duration,
    ) -> Result<Sources, SourceError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| SourceError(format!("cannot build an HTTP client: {e}")))?;
        Ok(Sources {
            http,
            collector: base(collector),
            collector_token,
            prometheus: prometheus.map(base),
            confirm_after,
        })
    }

    pub fn collector_url(&self) -> &url::Url {
        &self.collector
    }

    fn api(&self, path: &str) -> Result<url::Url, SourceError> {
        self.collector
            .join(path)
            .map_err(|e| SourceError(format!("collector URL for {path}: {e}")))
    }

    /// The collector's live states: at once when newer than `after`, else within `wait`.
    pub async fn states(&self, after: Option<u64>, wait: Duration) -> Result<States, SourceError> {
        let mut url = self.api("api/v1/states")?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(v) = after {
                q.append_pair("after", &v.to_string());
            }
            q.append_pair("wait", &format!("{}ms", wait.as_millis()));
        }
        let resp = self
            .http
            .get(url)
            .bearer_auth(self.collector_token.expose())
            .timeout(wait + REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| SourceError(format!("collector states: {}", e.without_url())))?;
        if !resp.status().is_success() {
            return Err(SourceError(format!(
                "collector states: HTTP {}",
                resp.status()
            )));
        }
        resp.json()
            .await
            .map_err(|e| SourceError(format!("collector states: {}", e.without_url())))
    }

    /// How many services the replacer holds now: its `held` events not followed by a
    /// `released` one, over the last week of events the collector keeps.
    pub async fn replacer_held(&self, now_us: i64) -> Result<usize, SourceError> {
        let mut url = self.api("api/v1/events")?;
        url.query_pairs_mut()
            .append_pair("since_us", &(now_us - 7 * 86_400_000_000).to_string())
            .append_pair("limit", "10000");
        let resp = self
            .http
            .get(url)
            .bearer_auth(self.collector_token.expose())
            .send()
            .await
            .map_err(|e| SourceError(format!("collector events: {}", e.without_url())))?;
        if !resp.status().is_success() {
            return Err(SourceError(format!(
                "collector events: HTTP {}",
                resp.status()
            )));
        }
        let body: EventsBody = resp
            .json()
            .await
            .map_err(|e| SourceError(format!("collector events: {}", e.without_url())))?;
        Ok(held_services(&body.events))
    }

    /// Asks every region to run a check now (fresh evidence for a confirmation or a resolve).
    pub async fn recheck(&self, check: &str) -> Result<(), SourceError> {
        let url = self.api(&format!("api/v1/checks/{}/recheck", encode(check)))?;
        let resp = self
            .http
            .post(url)
            .bearer_auth(self.collector_token.expose())
            .send()
            .await
            .map_err(|e| SourceError(format!("recheck {check}: {}", e.without_url())))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(SourceError(format!(
                "recheck {check}: HTTP {}",
                resp.status()
            )))
        }
    }

    /// A collector query for one check over `[from, to)`: its JSON, or `None` when the
    /// collector has no results for the check yet (an answer, not a failure).
    async fn check_query<T: serde::de::DeserializeOwned>(
        &self,
        check: &str,
        what: &str,
        from_us: i64,
        to_us: i64,
        region: Option<&str>,
    ) -> Result<Option<T>, SourceError> {
        let mut url = self.api(&format!("api/v1/checks/{}/{what}", encode(check)))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("from_us", &from_us.to_string());
            q.append_pair("to_us", &to_us.to_string());
            if let Some(r) = region {
                q.append_pair("region", r);
            }
        }
        let failed = |e: reqwest::Error| SourceError(format!("{check}: {}", e.without_url()));
        let resp = self
            .http
            .get(url)
            .bearer_auth(self.collector_token.expose())
            .send()
            .await
            .map_err(failed)?;
        match resp.status().as_u16() {
            200 => resp.json().await.map(Some).map_err(failed),
            404 => Ok(None),
            code => {
                let body = resp.text().await.unwrap_or_default();
                Err(SourceError(format!(
                    "collector answered {code} for {check}: {}",
                    body.chars().take(300).collect::<String>()
                )))
            }
        }
    }

    async fn figures(&self, s: &Series, now_us: i64) -> Result<Option<Figures>, SourceError> {
        let window = s.window.unwrap_or(Duration::from_secs(3600));
        self.check_query(
            &s.check,
            "availability",
            now_us - us(window),
            now_us,
            s.region.as_deref(),
        )
        .await
    }

    /// Distinct minutes with downtime in the window.
    pub async fn bad_minutes(&self, m: &MinBadMinutes, now_us: i64) -> Result<u32, SourceError> {
        let Some(body) = self
            .check_query::<Incidents>(&m.check, "incidents", now_us - us(m.window), now_us, None)
            .await?
        else {
            return Ok(0);
        };
        let mut minutes = BTreeSet::new();
        for i in body.incidents {
            let end = i.end_us.unwrap_or(now_us);
            let mut t = i.start_us.div_euclid(60_000_000);
            while t * 60_000_000 < end && minutes.len() < 100_000 {
                minutes.insert(t);
                t += 1;
            }
        }
        Ok(u32::try_from(minutes.len()).unwrap_or(u32::MAX))
    }

    async fn promql(&self, query: &str) -> Result<Option<f64>, SourceError> {
        let Some(base) = &self.prometheus else {
            return Err(SourceError(
                "a promql() target needs `alerting.prometheus.url` in the config".into(),
            ));
        };
        let mut url = base
            .join("api/v1/query")
            .map_err(|e| SourceError(format!("Prometheus URL: {e}")))?;
        url.query_pairs_mut().append_pair("query", query);
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| SourceError(format!("Prometheus: {}", e.without_url())))?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.map_err(|e| {
            SourceError(format!("Prometheus answered {status}: {}", e.without_url()))
        })?;
        if body["status"] != "success" {
            return Err(SourceError(format!(
                "Prometheus refused the query: {}",
                body["error"].as_str().unwrap_or("no reason given")
            )));
        }
        let data = &body["data"];
        let sample = match data["resultType"].as_str() {
            Some("scalar") => Some(&data["result"]),
            Some("vector") => data["result"].get(0).map(|s| &s["value"]),
            other => {
                return Err(SourceError(format!(
                    "a promql() target must give a scalar or an instant vector, got {}",
                    other.unwrap_or("nothing")
                )));
            }
        };
        // Samples are [time, "value"], the value a string (it may be NaN or +Inf).
        Ok(sample
            .and_then(|s| s.get(1))
            .and_then(|v| v.as_str())
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite()))
    }

    /// Evaluates an expression; `live` is the latest feed (for `down` and `failing_regions`).
    pub async fn evaluate(
        &self,
        expr: &Expr,
        live: &States,
        now_us: i64,
    ) -> Result<Option<f64>, SourceError> {
        let mut cache: BTreeMap<(String, Option<Duration>, Option<String>), Option<Figures>> =
            BTreeMap::new();
        for s in expr.series() {
            if s.window.is_none() {
                continue;
            }
            let key = (s.check.clone(), s.window, s.region.clone());
            if let std::collections::btree_map::Entry::Vacant(slot) = cache.entry(key) {
                slot.insert(self.figures(s, now_us).await?);
            }
        }
        let mut promql = BTreeMap::new();
        collect_promql(expr, &mut promql);
        for (q, v) in promql.iter_mut() {
            *v = self.promql(q).await?;
        }
        let confirm = us(self.confirm_after);
        Ok(compute(
            expr,
            &|s: &Series| {
                if s.window.is_none() {
                    let c = live.checks.iter().find(|c| c.check == s.check)?;
                    return match s.metric {
                        Metric::Down => Some(if c.confirmed_down(confirm) { 1.0 } else { 0.0 }),
                        _ => Some(c.failing().len() as f64),
                    };
                }
                let f = cache
                    .get(&(s.check.clone(), s.window, s.region.clone()))?
                    .as_ref()?;
                series_value(s.metric, f)
            },
            &promql,
        ))
    }
}

fn collect_promql(e: &Expr, out: &mut BTreeMap<String, Option<f64>>) {
    match e {
        Expr::PromQl(q) => {
            out.insert(q.clone(), None);
        }
        Expr::Min(a) | Expr::Max(a) => a.iter().for_each(|x| collect_promql(x, out)),
        _ => {}
    }
}

fn series_value(m: Metric, f: &Figures) -> Option<f64> {
    let ms = |v: Option<f64>| v.map(|v| v / 1000.0);
    match m {
        Metric::Availability => f.availability,
        Metric::Downtime => Some(f.down_seconds),
        Metric::NoData => Some(f.no_data_seconds),
        Metric::BudgetRemaining => (f.error_budget_seconds > 0.0)
            .then(|| f.error_budget_remaining_seconds / f.error_budget_seconds),
        Metric::BurnRate => f.burn_rate,
        Metric::Latency(Percentile::P50) => ms(f.latency.p50_ms),
        Metric::Latency(Percentile::P95) => ms(f.latency.p95_ms),
        Metric::Latency(Percentile::P99) => ms(f.latency.p99_ms),
        Metric::Latency(Percentile::Max) => ms(f.latency.max_ms),
        Metric::UnderObjective => f.latency.share_under_objective,
        Metric::Down | Metric::FailingRegions => None,
    }
}

/// The value of an expression; `None` (no data) when any part has none.
fn compute(
    e: &Expr,
    series: &dyn Fn(&Series) -> Option<f64>,
    promql: &BTreeMap<String, Option<f64>>,
) -> Option<f64> {
    match e {
        Expr::Number(n) => Some(*n),
        Expr::Series(s) => series(s),
        Expr::PromQl(q) => promql.get(q).copied().flatten(),
        Expr::Min(args) => fold(args, series, promql, f64::min),
        Expr::Max(args) => fold(args, series, promql, f64::max),
    }
}

fn fold(
    args: &[Expr],
    series: &dyn Fn(&Series) -> Option<f64>,
    promql: &BTreeMap<String, Option<f64>>,
    f: fn(f64, f64) -> f64,
) -> Option<f64> {
    let mut acc: Option<f64> = None;
    for a in args {
        let v = compute(a, series, promql)?;
        acc = Some(acc.map_or(v, |x| f(x, v)));
    }
    acc
}

/// A check name in a URL path.
fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod held_tests {
    use super::held_services;
    use lookout_model::event::{Event, StoredEvent};

    fn e(id: i64, kind: &str, service: &str) -> StoredEvent {
        StoredEvent {
            id,
            event: Event {
                source: "replacer".into(),
                kind: kind.into(),
                service: service.into(),
                instance: None,
                message: String::new(),
                time_us: id,
                duration_ms: None,
            },
        }
    }

    #[test]
    fn a_service_is_held_until_its_release() {
        assert_eq!(held_services(&[]), 0);
        let events = [
            e(1, "held", "catalogue"),
            e(2, "replacement_started", "mixes"),
            e(3, "held", "mixes"),
            e(4, "released", "catalogue"),
        ];
        assert_eq!(held_services(&events), 1);
        assert_eq!(held_services(&events[..3]), 2);
    }
}

//! Where values come from: the collector (through the one client of its API, with its typed
//! answers) and a Prometheus-compatible server for PromQL targets. A round reads what all of
//! its due checks need at once: one collector request per distinct window, whatever the number
//! of checks, then computes every check's value from those answers.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::future::join_all;
use lookout_api::client::{ClientError, CollectorClient, Select, Window};
use lookout_model::read::{CheckLive, Figures, FiguresList, LiveState, States};

use crate::check::{Check, Measure, MinBadMinutes};
use crate::target::{Expr, Metric, Percentile, Series};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A round names the checks it reads while they are this few; more are read as "all checks",
/// so that the request stays short.
const MAX_NAMED: usize = 64;

/// Down, and confirmed: at least a quorum of regions failed again in runs that started
/// `confirm_after` or more after the check went down. A blip shorter than that is over before
/// the second round and never counts; a real outage is still there.
pub fn confirmed_down(c: &CheckLive, confirm_after_us: i64) -> bool {
    let (Some(since), LiveState::Down) = (c.since_us, c.state) else {
        return false;
    };
    let fresh = c
        .failing()
        .filter(|r| {
            r.last_result_us
                .is_some_and(|t| t >= since + confirm_after_us)
        })
        .count();
    fresh >= c.quorum.max(1)
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

/// Why a value could not be read. Kept apart from "no data" (a value of `None`), which is an
/// answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

impl From<ClientError> for SourceError {
    fn from(e: ClientError) -> Self {
        SourceError(e.to_string())
    }
}

#[derive(Clone)]
pub struct Sources {
    collector: CollectorClient,
    http: reqwest::Client,
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

/// What one round read: each window's figures, each PromQL query's value, the replacer's
/// holds; every check's value is computed from these.
#[derive(Debug, Default)]
pub struct Reads {
    figures: BTreeMap<Duration, Result<FiguresList, SourceError>>,
    promql: BTreeMap<String, Result<Option<f64>, SourceError>>,
    held: Option<Result<usize, SourceError>>,
}

/// The checks a read covers: named while few, else all of them.
fn select(checks: BTreeSet<String>, by_region: bool) -> Select {
    Select {
        checks: (checks.len() <= MAX_NAMED).then(|| checks.into_iter().collect()),
        by_region,
    }
}

impl Sources {
    pub fn new(
        collector: CollectorClient,
        prometheus: Option<url::Url>,
        confirm_after: Duration,
    ) -> Result<Sources, SourceError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| SourceError(format!("cannot build an HTTP client: {e}")))?;
        Ok(Sources {
            collector,
            http,
            prometheus: prometheus.map(base),
            confirm_after,
        })
    }

    pub fn collector(&self) -> &CollectorClient {
        &self.collector
    }

    /// Reads everything `due` needs at `now_us`: one collector request per distinct window
    /// (each region's latency only where a series asks for a region), each PromQL query once,
    /// the collector's events once if the replacer is watched. Requests run concurrently.
    pub async fn read(&self, due: &[Check], now_us: i64) -> Reads {
        let mut windows: BTreeMap<Duration, (BTreeSet<String>, bool)> = BTreeMap::new();
        let mut promql = BTreeSet::new();
        let mut replacer = false;
        for c in due {
            match &c.measure {
                Measure::Target(expr) => {
                    for s in expr.series() {
                        if let Some(w) = s.window {
                            let e = windows.entry(w).or_default();
                            e.0.insert(s.check.clone());
                            e.1 |= s.region.is_some();
                        }
                    }
                    collect_promql(expr, &mut promql);
                }
                Measure::ReplacerHeld => replacer = true,
                Measure::Blind => {}
            }
        }
        let figures = join_all(
            windows
                .into_iter()
                .map(|(w, (checks, by_region))| async move {
                    let window = Window::Range {
                        from_us: now_us - us(w),
                        to_us: now_us,
                    };
                    let answer = self
                        .collector
                        .figures_all(window, &select(checks, by_region))
                        .await
                        .map_err(SourceError::from);
                    (w, answer)
                }),
        );
        let queries = join_all(
            promql
                .into_iter()
                .map(|q| async move { (q.clone(), self.promql(&q).await) }),
        );
        let held = async {
            if replacer {
                Some(self.replacer_held(now_us).await)
            } else {
                None
            }
        };
        let (figures, queries, held) = tokio::join!(figures, queries, held);
        Reads {
            figures: figures.into_iter().collect(),
            promql: queries.into_iter().collect(),
            held,
        }
    }

    /// How many services the replacer holds now: its `held` events not followed by a
    /// `released` one, over the last week of events the collector keeps.
    async fn replacer_held(&self, now_us: i64) -> Result<usize, SourceError> {
        let events = self
            .collector
            .events(now_us - 7 * 86_400_000_000, 10_000)
            .await?;
        Ok(held_services(&events.events))
    }

    /// Asks every region to run a check now (fresh evidence for a confirmation or a resolve).
    pub async fn recheck(&self, check: &str) -> Result<(), SourceError> {
        Ok(self.collector.recheck(check).await?)
    }

    /// Distinct minutes with downtime in each window of `wanted`, by (check, window): one
    /// collector request per distinct window.
    pub async fn bad_minutes(
        &self,
        wanted: &[&MinBadMinutes],
        now_us: i64,
    ) -> BTreeMap<(String, Duration), Result<u32, SourceError>> {
        let mut windows: BTreeMap<Duration, BTreeSet<String>> = BTreeMap::new();
        for m in wanted {
            windows.entry(m.window).or_default().insert(m.check.clone());
        }
        let answers = join_all(windows.into_iter().map(|(w, checks)| async move {
            let named = select(checks.clone(), false).checks;
            let answer = self
                .collector
                .incidents_all(
                    Window::Range {
                        from_us: now_us - us(w),
                        to_us: now_us,
                    },
                    named.as_deref(),
                )
                .await;
            (w, checks, answer)
        }))
        .await;
        let mut out = BTreeMap::new();
        for (w, checks, answer) in answers {
            for check in checks {
                let count = match &answer {
                    Ok(list) => Ok(list.check(&check).map_or(0, |i| {
                        let mut minutes = BTreeSet::new();
                        for i in &i.incidents {
                            let end = i.end_us.unwrap_or(now_us);
                            let mut t = i.start_us.div_euclid(60_000_000);
                            while t * 60_000_000 < end && minutes.len() < 100_000 {
                                minutes.insert(t);
                                t += 1;
                            }
                        }
                        u32::try_from(minutes.len()).unwrap_or(u32::MAX)
                    })),
                    Err(e) => Err(SourceError::from(e.clone())),
                };
                out.insert((check, w), count);
            }
        }
        out
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
}

impl Reads {
    /// The value of `check` now from what the round read; `live` is the latest feed (for
    /// `down`, `failing_regions` and `degraded_regions`).
    pub fn value(
        &self,
        check: &Check,
        live: &States,
        confirm_after: Duration,
    ) -> Result<Option<f64>, SourceError> {
        match &check.measure {
            Measure::Blind => Err(SourceError("the blind check reads the feed".into())),
            Measure::ReplacerHeld => match &self.held {
                Some(Ok(n)) => Ok(Some(*n as f64)),
                Some(Err(e)) => Err(e.clone()),
                None => Err(SourceError("the replacer's events were not read".into())),
            },
            Measure::Target(expr) => self.evaluate(expr, live, confirm_after),
        }
    }

    fn evaluate(
        &self,
        expr: &Expr,
        live: &States,
        confirm_after: Duration,
    ) -> Result<Option<f64>, SourceError> {
        // A source that failed, or a series it cannot answer, is an error, not "no data".
        for s in expr.series() {
            if let Some(f) = self.figures_of(s)?
                && let Some(r) = &s.region
                && !f.latency_by_region.contains_key(r)
            {
                return Err(SourceError(format!(
                    "`region`: check {:?} does not run in region {r:?} (its regions: {})",
                    s.check,
                    f.regions.join(", ")
                )));
            }
        }
        let mut wanted = BTreeSet::new();
        collect_promql(expr, &mut wanted);
        let mut promql = BTreeMap::new();
        for q in wanted {
            let v = match self.promql.get(&q) {
                Some(v) => v.clone()?,
                None => return Err(SourceError(format!("{q:?} was not queried"))),
            };
            promql.insert(q, v);
        }
        let confirm = us(confirm_after);
        Ok(compute(
            expr,
            &|s: &Series| {
                if s.window.is_none() {
                    let c = live.check(&s.check)?;
                    return match s.metric {
                        Metric::Down => Some(if confirmed_down(c, confirm) { 1.0 } else { 0.0 }),
                        Metric::DegradedRegions => Some(c.degraded().count() as f64),
                        _ => Some(c.failing().count() as f64),
                    };
                }
                let f = self.figures_of(s).ok().flatten()?;
                series_value(s, f)
            },
            &promql,
        ))
    }

    /// The figures a windowed series reads; `Ok(None)` for a check without results yet.
    fn figures_of(&self, s: &Series) -> Result<Option<&Figures>, SourceError> {
        let Some(w) = s.window else {
            return Ok(None);
        };
        match self.figures.get(&w) {
            Some(Ok(list)) => Ok(list.check(&s.check)),
            Some(Err(e)) => Err(SourceError(format!("{}: {e}", s.check))),
            None => Err(SourceError(format!(
                "{}: the window {} was not read",
                s.check,
                humantime::format_duration(w)
            ))),
        }
    }
}

fn collect_promql(e: &Expr, out: &mut BTreeSet<String>) {
    match e {
        Expr::PromQl(q) => {
            out.insert(q.clone());
        }
        Expr::Min(a) | Expr::Max(a) => a.iter().for_each(|x| collect_promql(x, out)),
        _ => {}
    }
}

fn series_value(s: &Series, f: &Figures) -> Option<f64> {
    let latency = match &s.region {
        Some(r) => f.latency_by_region.get(r)?,
        None => &f.latency,
    };
    let secs = |v: Option<f64>| v.map(|v| v / 1000.0);
    match s.metric {
        Metric::Availability => f.availability,
        Metric::Downtime => Some(f.down_seconds),
        Metric::NoData => Some(f.no_data_seconds),
        Metric::BudgetRemaining => f.budget_remaining_ratio(),
        Metric::BurnRate => f.burn_rate,
        Metric::Latency(Percentile::P50) => secs(latency.p50_ms),
        Metric::Latency(Percentile::P95) => secs(latency.p95_ms),
        Metric::Latency(Percentile::P99) => secs(latency.p99_ms),
        Metric::Latency(Percentile::Max) => secs(latency.max_ms),
        Metric::UnderObjective => latency.share_under_objective,
        Metric::Down | Metric::FailingRegions | Metric::DegradedRegions => None,
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

//! The one client of the collector's API, shared by every reader (the alerter, the status page,
//! the benchmarks): typed answers from `lookout_model::read`, every request bounded in time,
//! and errors that name what failed without the token, the URL or the collector's internals.
//!
//! [`follow`] keeps a reader's copy of the live state current with long polls, under one
//! backoff policy, until it is told to stop.

use std::time::{Duration, Instant};

use lookout_model::read::{
    DailyList, Events, Figures, FiguresList, Incidents, IncidentsList, Maintenance,
    MaintenanceList, NewMaintenance, Results, Slos, States,
};
use lookout_model::secret::Secret;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use url::Url;

/// The longest a request may take (a long poll: this beyond its wait).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the collector could not answer a question. `status` is its HTTP status when it
/// answered with an error; `message` is then its own (JSON) message, which names the field at
/// fault for a request it refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("collector: {what}: {message}")]
pub struct ClientError {
    pub what: String,
    pub status: Option<u16>,
    pub message: String,
}

/// The window of a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Back from the collector's own now.
    Last(Duration),
    /// `[from_us, to_us)`.
    Range { from_us: i64, to_us: i64 },
    /// From `from_us` to the collector's now: an outage still on is reported open.
    Since(i64),
}

impl Window {
    fn query(self) -> Vec<(&'static str, String)> {
        match self {
            Window::Last(d) => vec![("window", format!("{}ms", d.as_millis()))],
            Window::Range { from_us, to_us } => vec![
                ("from_us", from_us.to_string()),
                ("to_us", to_us.to_string()),
            ],
            Window::Since(from_us) => vec![("from_us", from_us.to_string())],
        }
    }
}

/// Which checks an all-checks read covers, and whether with each region's latency.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Select {
    /// Only these (a name the collector does not know is left out); all checks when `None`.
    pub checks: Option<Vec<String>>,
    pub by_region: bool,
}

#[derive(Clone)]
pub struct CollectorClient {
    base: Url,
    token: Secret,
    http: reqwest::Client,
    /// How far behind the replicated log the collector said it was in its last answer, in
    /// milliseconds (0 for a collector that is no replica).
    behind_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// The header a collector replica puts on every answer: how far behind the log it is.
pub const BEHIND_HEADER: &str = "lookout-log-behind-seconds";

/// reqwest's errors name the URL; the message stays useful without it.
pub fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_decode() || e.is_body() {
        "broken answer"
    } else {
        "request failed"
    };
    match std::error::Error::source(e) {
        Some(s) => format!("{kind}: {s}"),
        None => kind.to_owned(),
    }
}

/// A check name as one path segment.
fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    error: String,
}

impl CollectorClient {
    /// `base` is the collector's root URL (a path is kept: it may sit behind a prefix).
    pub fn new(base: Url, token: Secret) -> Result<CollectorClient, ClientError> {
        Self::trusting(base, token, &crate::tls::Trust::default())
    }

    /// A client that also trusts `trust`'s roots, for a collector serving its own CA's
    /// certificate.
    pub fn trusting(
        mut base: Url,
        token: Secret,
        trust: &crate::tls::Trust,
    ) -> Result<CollectorClient, ClientError> {
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let http = trust
            .apply(reqwest::Client::builder())
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| ClientError {
                what: "client".into(),
                status: None,
                message: format!("cannot build an HTTP client: {}", without_url(&e)),
            })?;
        Ok(CollectorClient {
            base,
            token,
            http,
            behind_ms: Default::default(),
        })
    }

    /// How far behind the replicated log the collector was in its last answer: what it
    /// answered is that old.
    pub fn behind(&self) -> Duration {
        Duration::from_millis(self.behind_ms.load(std::sync::atomic::Ordering::Relaxed))
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    fn error(what: &str, status: Option<u16>, message: String) -> ClientError {
        ClientError {
            what: what.to_owned(),
            status,
            message,
        }
    }

    fn url(&self, what: &str, path: &str) -> Result<Url, ClientError> {
        self.base
            .join(path)
            .map_err(|e| Self::error(what, None, format!("bad path {path:?}: {e}")))
    }

    /// Sends `request`; its answer read as `T`, `None` for a 404 when `absent_ok` (a check
    /// with no results yet is an answer: there is nothing to show).
    async fn send<T: DeserializeOwned>(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
        absent_ok: bool,
    ) -> Result<Option<T>, ClientError> {
        let response = request
            .bearer_auth(self.token.expose())
            .send()
            .await
            .map_err(|e| Self::error(what, None, without_url(&e)))?;
        let status = response.status();
        let behind_s = response
            .headers()
            .get(BEHIND_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(0.0);
        self.behind_ms.store(
            (behind_s * 1000.0) as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        if absent_ok && status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| Self::error(what, Some(status.as_u16()), without_url(&e)))?;
        if !status.is_success() {
            let message = serde_json::from_slice::<ErrorBody>(&body)
                .map(|b| b.error)
                .unwrap_or_else(|_| format!("answered {status}"));
            return Err(Self::error(what, Some(status.as_u16()), message));
        }
        if body.is_empty() {
            // A 204: nothing to read, which only `()`-like answers ask for.
            return serde_json::from_slice(b"null")
                .map(Some)
                .map_err(|e| Self::error(what, Some(status.as_u16()), e.to_string()));
        }
        serde_json::from_slice(&body).map(Some).map_err(|e| {
            Self::error(
                what,
                Some(status.as_u16()),
                format!("unreadable answer: {e}"),
            )
        })
    }

    async fn get<T: DeserializeOwned>(
        &self,
        what: &str,
        path: &str,
        query: &[(&str, String)],
        timeout: Duration,
        absent_ok: bool,
    ) -> Result<Option<T>, ClientError> {
        let url = self.url(what, path)?;
        self.send(
            what,
            self.http.get(url).query(query).timeout(timeout),
            absent_ok,
        )
        .await
    }

    async fn get_some<T: DeserializeOwned>(
        &self,
        what: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ClientError> {
        self.get(what, path, query, REQUEST_TIMEOUT, false)
            .await?
            .ok_or_else(|| Self::error(what, Some(404), "not found".into()))
    }

    /// The live state; with `after`, waits up to `wait` for a version past it.
    pub async fn states(&self, after: Option<u64>, wait: Duration) -> Result<States, ClientError> {
        let mut query = vec![("wait", format!("{}ms", wait.as_millis()))];
        if let Some(v) = after {
            query.push(("after", v.to_string()));
        }
        self.get(
            "live state",
            "api/v1/states",
            &query,
            wait + REQUEST_TIMEOUT,
            false,
        )
        .await?
        .ok_or_else(|| Self::error("live state", Some(404), "not found".into()))
    }

    /// One check's figures; `None` while it has no results. With `region`, the latency is
    /// that region's journeys' only.
    pub async fn figures(
        &self,
        check: &str,
        window: Window,
        region: Option<&str>,
    ) -> Result<Option<Figures>, ClientError> {
        let mut query = window.query();
        if let Some(r) = region {
            query.push(("region", r.to_owned()));
        }
        self.get(
            "figures",
            &format!("api/v1/checks/{}/availability", segment(check)),
            &query,
            REQUEST_TIMEOUT,
            true,
        )
        .await
    }

    /// Every selected check's figures over one window, in one request.
    pub async fn figures_all(
        &self,
        window: Window,
        select: &Select,
    ) -> Result<FiguresList, ClientError> {
        let mut query = window.query();
        if let Some(c) = &select.checks {
            query.push(("checks", c.join(",")));
        }
        if select.by_region {
            query.push(("by_region", "true".into()));
        }
        self.get_some("figures", "api/v1/checks", &query).await
    }

    /// Every selected check's days (all checks for `None`), oldest first.
    pub async fn daily_all(
        &self,
        days: u32,
        checks: Option<&[String]>,
    ) -> Result<DailyList, ClientError> {
        let mut query = vec![("days", days.to_string())];
        if let Some(c) = checks {
            query.push(("checks", c.join(",")));
        }
        self.get_some("daily figures", "api/v1/daily", &query).await
    }

    /// One check's down intervals; `None` while it has no results.
    pub async fn incidents(
        &self,
        check: &str,
        window: Window,
    ) -> Result<Option<Incidents>, ClientError> {
        self.get(
            "down intervals",
            &format!("api/v1/checks/{}/incidents", segment(check)),
            &window.query(),
            REQUEST_TIMEOUT,
            true,
        )
        .await
    }

    /// Every selected check's down intervals over one window, in one request.
    pub async fn incidents_all(
        &self,
        window: Window,
        checks: Option<&[String]>,
    ) -> Result<IncidentsList, ClientError> {
        let mut query = window.query();
        if let Some(c) = checks {
            query.push(("checks", c.join(",")));
        }
        self.get_some("down intervals", "api/v1/incidents", &query)
            .await
    }

    /// The last `limit` raw results (of `check` when given), oldest first.
    pub async fn results(&self, check: Option<&str>, limit: usize) -> Result<Results, ClientError> {
        let mut query = vec![("limit", limit.to_string())];
        if let Some(c) = check {
            query.push(("check", c.to_owned()));
        }
        self.get_some("results", "api/v1/results", &query).await
    }

    /// Events that happened at or after `since_us`, oldest first.
    pub async fn events(&self, since_us: i64, limit: usize) -> Result<Events, ClientError> {
        self.get_some(
            "events",
            "api/v1/events",
            &[
                ("since_us", since_us.to_string()),
                ("limit", limit.to_string()),
            ],
        )
        .await
    }

    /// Every check the collector watches, with its SLO.
    pub async fn slos(&self) -> Result<Slos, ClientError> {
        self.get_some("SLOs", "api/v1/slos", &[]).await
    }

    /// Maintenance windows ending at or after `since_us`.
    pub async fn maintenance(&self, since_us: i64) -> Result<MaintenanceList, ClientError> {
        self.get_some(
            "maintenance",
            "api/v1/maintenance",
            &[("since_us", since_us.to_string())],
        )
        .await
    }

    pub async fn schedule_maintenance(
        &self,
        window: &NewMaintenance,
    ) -> Result<Maintenance, ClientError> {
        let what = "schedule maintenance";
        let url = self.url(what, "api/v1/maintenance")?;
        self.send(what, self.http.post(url).json(window), false)
            .await?
            .ok_or_else(|| Self::error(what, None, "no answer".into()))
    }

    /// Cancels a window; `Ok(false)` when the collector has no such window.
    pub async fn cancel_maintenance(&self, id: i64) -> Result<bool, ClientError> {
        let what = "cancel maintenance";
        let url = self.url(what, &format!("api/v1/maintenance/{id}"))?;
        Ok(self
            .send::<serde_json::Value>(what, self.http.delete(url), true)
            .await?
            .is_some())
    }

    /// Asks every region to run a check now (fresh evidence for a confirmation or a resolve).
    pub async fn recheck(&self, check: &str) -> Result<(), ClientError> {
        let what = "recheck";
        let url = self.url(what, &format!("api/v1/checks/{}/recheck", segment(check)))?;
        self.send::<serde_json::Value>(what, self.http.post(url), false)
            .await
            .map(|_| ())
    }
}

/// A reader's copy of the live state, as [`follow`] keeps it.
#[derive(Debug, Clone, Default)]
pub struct Feed {
    pub states: States,
    /// When the collector last answered; `None` before it ever did.
    pub answered: Option<Instant>,
}

/// The first wait after a failed poll, doubled after each failure up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(200);
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Follows `GET /api/v1/states` into `tx` until `stop` turns true: each answer replaces the
/// feed's states, and each failure wakes the feed's readers (so that they can tell it grows
/// stale) and waits before the next try. `wait` is how long to hold each poll, given the
/// states held; `outcome` hears of every answer and failure (for the reader's metrics).
pub async fn follow(
    client: &CollectorClient,
    tx: &watch::Sender<Feed>,
    wait: impl Fn(&States) -> Duration,
    outcome: impl Fn(Result<&States, &ClientError>),
    mut stop: watch::Receiver<bool>,
) {
    let mut version = None;
    let mut backoff = FIRST_BACKOFF;
    loop {
        let hold = wait(&tx.borrow().states);
        let result = tokio::select! {
            r = client.states(version, hold) => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        match result {
            Ok(states) => {
                outcome(Ok(&states));
                backoff = FIRST_BACKOFF;
                version = Some(states.version);
                tx.send_modify(|f| {
                    f.states = states;
                    f.answered = Some(Instant::now());
                });
            }
            Err(e) => {
                outcome(Err(&e));
                // The next answer comes at once, whatever its version: after a restart of the
                // collector the old version means nothing.
                version = None;
                tx.send_modify(|_| {});
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A collector that answers `/api/v1/slos` marked `behind` seconds behind the log.
    async fn replica_answering(behind: &'static str) -> Url {
        let app = axum::Router::new().route(
            "/api/v1/slos",
            axum::routing::get(move || async move {
                (
                    [(BEHIND_HEADER, behind)],
                    axum::Json(serde_json::json!({"checks": []})),
                )
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Url::parse(&format!("http://{addr}/")).unwrap()
    }

    #[tokio::test]
    async fn an_answer_says_how_far_behind_the_log_it_is() {
        let client =
            CollectorClient::new(replica_answering("42.5").await, Secret::new("t")).unwrap();
        assert_eq!(client.behind(), Duration::ZERO);
        client.slos().await.unwrap();
        assert_eq!(client.behind(), Duration::from_millis(42_500));
        let garbage =
            CollectorClient::new(replica_answering("-1").await, Secret::new("t")).unwrap();
        garbage.slos().await.unwrap();
        assert_eq!(
            garbage.behind(),
            Duration::ZERO,
            "a nonsense header is no lag"
        );
    }
}

//! The collector's query API, as the status page reads it. Every request is bounded in time,
//! and an error says what failed without the token or the collector's own message leaking to
//! the public side (callers log it; pages only say the data is delayed).

use std::time::Duration;

use lookout_model::secret::Secret;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[error("collector: {what}: {message}")]
pub struct CollectorError {
    pub what: String,
    pub message: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
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
    pub regions: Vec<RegionLive>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct RegionLive {
    pub region: String,
    /// `ok`, `failing` or `silent`.
    pub state: String,
    #[serde(default)]
    pub since_us: Option<i64>,
}

/// One check's figures over one window (the collector's availability body).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Figures {
    pub from_us: i64,
    pub to_us: i64,
    pub availability: Option<f64>,
    #[serde(default)]
    pub down_seconds: f64,
    #[serde(default)]
    pub no_data_seconds: f64,
    #[serde(default)]
    pub window_seconds: f64,
    #[serde(default)]
    pub latency: Latency,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Latency {
    #[serde(default)]
    pub count: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub share_under_objective: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Day {
    pub date: String,
    pub availability: Option<f64>,
    pub down_seconds: f64,
    pub no_data_seconds: f64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct DownInterval {
    pub start_us: i64,
    pub end_us: Option<i64>,
    #[serde(default)]
    pub regions: Vec<String>,
}

#[derive(Deserialize)]
struct IncidentsBody {
    incidents: Vec<DownInterval>,
}

#[derive(Clone)]
pub struct CollectorClient {
    base: Url,
    token: Secret,
    http: reqwest::Client,
}

impl CollectorClient {
    pub fn new(base: Url, token: Secret) -> Self {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap_or_default();
        CollectorClient { base, token, http }
    }

    async fn get<T: DeserializeOwned>(
        &self,
        what: &str,
        path: &str,
        query: &[(&str, String)],
        timeout: Duration,
    ) -> Result<Option<T>, CollectorError> {
        let err = |message: String| CollectorError {
            what: what.to_owned(),
            message,
        };
        let url = self
            .base
            .join(path)
            .map_err(|e| err(format!("bad path {path:?}: {e}")))?;
        let response = self
            .http
            .get(url)
            .bearer_auth(self.token.expose())
            .query(query)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| err(without_url(&e)))?;
        let status = response.status();
        // A check with no results yet is not an error: there is nothing to show.
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(err(format!("answered {status}")));
        }
        let body = response.bytes().await.map_err(|e| err(without_url(&e)))?;
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| err(format!("unreadable answer: {e}")))
    }

    /// The live state; with `after`, waits up to `wait` for a version past it.
    pub async fn states(
        &self,
        after: Option<u64>,
        wait: Duration,
    ) -> Result<States, CollectorError> {
        let mut query = Vec::new();
        if let Some(v) = after {
            query.push(("after", v.to_string()));
            query.push(("wait", format!("{}s", wait.as_secs())));
        }
        self.get(
            "live state",
            "api/v1/states",
            &query,
            wait + REQUEST_TIMEOUT,
        )
        .await?
        .ok_or_else(|| CollectorError {
            what: "live state".into(),
            message: "not found".into(),
        })
    }

    pub async fn figures(
        &self,
        check: &str,
        from_us: i64,
        to_us: i64,
        region: Option<&str>,
    ) -> Result<Option<Figures>, CollectorError> {
        let mut query = vec![
            ("from_us", from_us.to_string()),
            ("to_us", to_us.to_string()),
        ];
        if let Some(r) = region {
            query.push(("region", r.to_owned()));
        }
        self.get(
            "figures",
            &format!("api/v1/checks/{}/availability", path_segment(check)),
            &query,
            REQUEST_TIMEOUT,
        )
        .await
    }

    pub async fn daily(&self, check: &str, days: u32) -> Result<Vec<Day>, CollectorError> {
        Ok(self
            .get(
                "daily figures",
                &format!("api/v1/checks/{}/daily", path_segment(check)),
                &[("days", days.to_string())],
                REQUEST_TIMEOUT,
            )
            .await?
            .unwrap_or_default())
    }

    pub async fn down_intervals(
        &self,
        check: &str,
        from_us: i64,
    ) -> Result<Vec<DownInterval>, CollectorError> {
        let body: Option<IncidentsBody> = self
            .get(
                "down intervals",
                &format!("api/v1/checks/{}/incidents", path_segment(check)),
                // Up to the collector's own now: an outage still on is then reported open.
                &[("from_us", from_us.to_string())],
                REQUEST_TIMEOUT,
            )
            .await?;
        Ok(body.map(|b| b.incidents).unwrap_or_default())
    }
}

/// reqwest's errors name the URL; the message stays useful without it.
fn without_url(e: &reqwest::Error) -> String {
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

/// Check names are `[a-z0-9-]` by the config's rules; anything else is percent-encoded anyway.
fn path_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

//! What the alerter's integration tests share: a real collector fed probe results over its
//! HTTP API, a real alerter driven over HTTP, and webhook receivers that are small axum
//! servers. Every response is checked for the test secrets.
#![allow(dead_code)] // each test file uses its own part

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use lookout_alerting::check::{Check, Origin};
use lookout_alerting::notify::{NotifierConfig, WebhookConfig};
use lookout_alerting::spec::CheckSpec;
use lookout_alerting::{Alerter, AlerterSettings};
use lookout_collector::Collector;
use lookout_model::secret::Secret;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

pub const COLLECTOR_TOKEN: &str = "collector-token-for-tests";
pub const API_TOKEN: &str = "alerter-api-token-for-tests";
/// In the webhook's URL path: no API response may show it.
pub const SECRET: &str = "SECRET123";
pub const HMAC_SECRET: &str = "hmac-key-never-shown";
pub const REGIONS: [&str; 3] = ["eu", "us", "ap"];
/// How long a condition may take to hold before a test fails.
pub const DEADLINE: Duration = Duration::from_secs(15);

pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

// ---------------------------------------------------------------------------------------------
// A webhook receiver: answers from a script of statuses, then with a default one, and keeps
// every request it got.

#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub event: String,
    pub delivery: String,
    pub signature: Option<String>,
    pub body: Bytes,
    /// What the receiver answered.
    pub status: u16,
    pub at: Instant,
}

impl Hit {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

pub struct Script {
    pub hits: Vec<Hit>,
    pub statuses: VecDeque<u16>,
    pub default: u16,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub state: Arc<Mutex<Script>>,
}

impl Receiver {
    pub async fn start(script: &[u16], default: u16) -> Receiver {
        let state = Arc::new(Mutex::new(Script {
            hits: Vec::new(),
            statuses: script.iter().copied().collect(),
            default,
        }));
        let app = Router::new().fallback(receive).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { url, state }
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.state.lock().unwrap().hits.clone()
    }

    /// Bodies accepted (answered 2xx) with this `X-Lookout-Event`.
    pub fn accepted(&self, event: &str) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| h.event == event && h.status < 300)
            .collect()
    }

    /// A webhook notifier that posts here, under a path holding a token.
    pub fn notifier(&self, hmac: bool) -> Arc<dyn lookout_alerting::notify::Notifier> {
        lookout_alerting::notify::build(&NotifierConfig::Webhook(WebhookConfig {
            url: Secret::new(format!("{}/hook/{SECRET}", self.url)),
            hmac_secret: hmac.then(|| Secret::new(HMAC_SECRET)),
            headers: BTreeMap::new(),
            timeout: Duration::from_secs(5),
        }))
        .unwrap()
    }
}

pub async fn receive(
    State(state): State<Arc<Mutex<Script>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let status = {
        let mut s = state.lock().unwrap();
        let status = s.statuses.pop_front().unwrap_or(s.default);
        s.hits.push(Hit {
            path: uri.path().to_owned(),
            event: header("x-lookout-event").unwrap_or_default(),
            delivery: header("x-lookout-delivery").unwrap_or_default(),
            signature: header("x-lookout-signature"),
            body,
            status,
            at: Instant::now(),
        });
        status
    };
    let code = StatusCode::from_u16(status).unwrap();
    if code.is_success() {
        (code, "thanks").into_response()
    } else {
        // A receiver that echoes what it was sent: the alerter must mask the token.
        (code, format!("cannot take a delivery to {}", uri.path())).into_response()
    }
}

pub fn verify_signature(hit: &Hit) {
    let mut mac = Hmac::<Sha256>::new_from_slice(HMAC_SECRET.as_bytes()).unwrap();
    mac.update(&hit.body);
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(
        hit.signature.as_deref(),
        Some(want.as_str()),
        "X-Lookout-Signature of a {} delivery",
        hit.event
    );
}

// ---------------------------------------------------------------------------------------------
// A collector, an alerter, and the helpers to drive them.

pub async fn collector() -> Collector {
    let info = lookout_testkit::collector::check(&REGIONS, 10_000_000, 5_000_000);
    lookout_testkit::collector::start(
        COLLECTOR_TOKEN,
        lookout_testkit::collector::known(&["search"], &info),
    )
    .await
}

pub fn settings(collector: &Collector) -> AlerterSettings {
    let mut s = AlerterSettings::new(
        url::Url::parse(&collector.url()).unwrap(),
        Secret::new(COLLECTOR_TOKEN),
        Secret::new(API_TOKEN),
    );
    s.confirm_after = Duration::from_secs(1);
    s
}

pub async fn alerter(settings: AlerterSettings) -> Alerter {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Alerter::start(settings, listener).await.unwrap()
}

/// A check spec from JSON, as the config and the API take it.
pub fn spec(body: Value) -> CheckSpec {
    serde_json::from_value(body).unwrap()
}

pub fn config_check(body: Value) -> Check {
    spec(body).to_check(Origin::Config).unwrap()
}

pub struct World {
    pub collector: Collector,
    pub alerter: Alerter,
    pub http: reqwest::Client,
    pub seq: AtomicU64,
}

impl World {
    /// A world whose `search-down` check pages `hook` (signed or not), evaluated once;
    /// with the check as that first evaluation left it.
    pub async fn paging(hook: &Receiver, signed: bool) -> (World, Value) {
        let w = World::start(|s| {
            s.notifiers.insert("hook".into(), hook.notifier(signed));
        })
        .await;
        w.create(down_check("search-down")).await;
        w.subscribe("search-down", "hook").await;
        let first = w.until_evaluated("search-down").await;
        (w, first)
    }

    pub async fn start(configure: impl FnOnce(&mut AlerterSettings)) -> World {
        let collector = collector().await;
        let mut s = settings(&collector);
        configure(&mut s);
        let alerter = alerter(s).await;
        World {
            collector,
            alerter,
            http: reqwest::Client::new(),
            seq: AtomicU64::new(1),
        }
    }

    pub async fn stop(self) {
        self.alerter.shutdown().await;
        self.collector.shutdown().await;
    }

    /// One request to the alerter; `token` `None` sends none. No response may show a secret.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self
            .http
            .request(method.clone(), format!("{}{path}", self.alerter.url()));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        for secret in [SECRET, HMAC_SECRET, COLLECTOR_TOKEN, API_TOKEN] {
            assert!(
                !text.contains(secret),
                "{method} {path} answered {status} with a secret: {text}"
            );
        }
        assert_ne!(status, 500, "{method} {path}: {text}");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub async fn api(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.raw(method, path, Some(API_TOKEN), body).await
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.api(Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.api(Method::POST, path, Some(body)).await
    }

    /// Makes a check through the API.
    pub async fn create(&self, body: Value) -> Value {
        let (status, v) = self.post("/api/checks", body.clone()).await;
        assert_eq!(status, 201, "{body} -> {v}");
        v
    }

    /// Subscribes a notifier to a check through the API.
    pub async fn subscribe(&self, check: &str, notifier: &str) -> Value {
        let (status, v) = self
            .post(
                &format!("/api/checks/{check}/subscriptions"),
                json!({"id": format!("{check}-{notifier}"), "notifier": notifier}),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        v
    }

    /// Posts probe results `(region, start, ok, duration)` of the check `search`.
    pub async fn results(&self, results: &[(&str, i64, bool, u64)]) {
        let body: Vec<Value> = results
            .iter()
            .map(|(region, t, ok, duration_us)| {
                let outcome = if *ok {
                    json!({"status": "ok"})
                } else {
                    json!({"status": "fail", "kind": "refused", "step": 0,
                        "message": format!("connection refused in {region}")})
                };
                json!({"check": "search", "region": region, "agent": format!("{region}-1"),
                    "seq": self.seq.fetch_add(1, Ordering::Relaxed), "started_at_us": t,
                    "outcome": outcome, "duration_us": duration_us, "steps": []})
            })
            .collect();
        let r = self
            .http
            .post(format!("{}/api/v1/results", self.collector.url()))
            .bearer_auth(COLLECTOR_TOKEN)
            .json(&json!({ "results": body }))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert_eq!(status, 200, "{}", r.text().await.unwrap());
    }

    /// Two of three regions fail, twice, the rounds `confirm_after` (1 s) and more apart:
    /// a confirmed down.
    pub async fn take_down(&self) {
        let t = now_us() - 3_000_000;
        self.results(&[
            ("ap", t, true, 100_000),
            ("eu", t, false, 100_000),
            ("us", t + 1_000, false, 100_000),
        ])
        .await;
        let t2 = t + 1_500_000;
        self.results(&[
            ("ap", t2, true, 100_000),
            ("eu", t2, false, 100_000),
            ("us", t2 + 1_000, false, 100_000),
        ])
        .await;
    }

    /// Every region passes again.
    pub async fn recover(&self) {
        let t = now_us() - 100_000;
        let rows: Vec<(&str, i64, bool, u64)> =
            REGIONS.iter().map(|r| (*r, t, true, 100_000)).collect();
        self.results(&rows).await;
    }

    /// Evaluates (as the loop would) until the check satisfies `done`; returns its view.
    pub async fn until_check(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            self.alerter.tick().await.unwrap();
            let v = self.get(&format!("/api/checks/{id}")).await;
            if done(&v) {
                return v;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "check {id}: {what} not reached within {DEADLINE:?}; last: {v}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn until_state(&self, id: &str, state: &str) -> Value {
        self.until_check(id, &format!("state {state}"), |v| {
            v["state"] == state && !v["last_check"].is_null()
        })
        .await
    }

    /// Evaluated at least once against the collector's live state.
    pub async fn until_evaluated(&self, id: &str) -> Value {
        self.until_check(id, "an evaluation", |v| {
            !v["last_check"].is_null() && v["last_error"].is_null()
        })
        .await
    }

    /// Ticks until `done` holds.
    pub async fn until(&self, what: &str, done: impl Fn() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(
                start.elapsed() < DEADLINE,
                "{what}: not within {DEADLINE:?}"
            );
            self.alerter.tick().await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ticks for a while, giving the alerter every chance to do what it must not.
    pub async fn idle(&self, d: Duration) {
        let start = Instant::now();
        while start.elapsed() < d {
            self.alerter.tick().await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub fn error_of(body: &Value) -> &str {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("an error body: {body}"))
}

/// The `down(search)` check most tests page on.
pub fn down_check(id: &str) -> Value {
    json!({"id": id, "name": format!("Search down ({id})"), "target": "down(search)",
        "error": 1, "allow_no_data": true, "interval": "1s",
        "description": "Search fails in a quorum of regions."})
}

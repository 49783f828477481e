//! The collector owns every check's SLO and the scheduled maintenance, against a real collector
//! on loopback: windows are scheduled, listed, cancelled and refused field by field, overlapping
//! ones count once, the config's are its own; a changed SLO between two starts on one store is
//! an event and judges every window anew, rewriting nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lookout_collector::store::SqliteStore;
use lookout_collector::{CheckInfo, Collector, CollectorSettings, MaintenanceSpec};
use lookout_model::secret::Secret;
use lookout_model::slo::{Slo, SloOverrides, Target};
use serde_json::{Value, json};

const TOKEN: &str = "slo-test-token";
const S: i64 = 1_000_000;

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

fn rfc3339(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .unwrap()
        .to_rfc3339()
}

fn known(slo: Slo) -> BTreeMap<String, CheckInfo> {
    ["search", "listen"]
        .iter()
        .map(|c| {
            (
                c.to_string(),
                CheckInfo {
                    regions: vec!["eu".into(), "us".into(), "ap".into()],
                    slo,
                    ..CheckInfo::unknown()
                },
            )
        })
        .collect()
}

async fn start(store: Arc<SqliteStore>, settings: CollectorSettings) -> Collector {
    lookout_testkit::collector::start_with(settings, store).await
}

struct Api<'a> {
    http: reqwest::Client,
    c: &'a Collector,
}

impl Api<'_> {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.c.url()))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        let (status, v) = self.send(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    async fn schedule(&self, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, "/api/v1/maintenance", Some(body))
            .await
    }

    async fn cancel(&self, id: &Value) -> u16 {
        self.send(
            reqwest::Method::DELETE,
            &format!("/api/v1/maintenance/{id}"),
            None,
        )
        .await
        .0
    }

    /// Three regions report every second over `[from, to)`, all failing in `[down_from,
    /// down_to)`.
    async fn results(&self, check: &str, (from, to): (i64, i64), (down_from, down_to): (i64, i64)) {
        let mut body = Vec::new();
        let mut t = from;
        while t < to {
            for r in ["eu", "us", "ap"] {
                let ok = !(down_from..down_to).contains(&t);
                let outcome = if ok {
                    json!({"status": "ok"})
                } else {
                    json!({"status": "fail", "kind": "refused", "message": "refused", "step": 0})
                };
                body.push(
                    json!({"check": check, "region": r, "agent": format!("{check}-{r}"),
                    "seq": t, "started_at_us": t, "outcome": outcome, "duration_us": 100_000,
                    "steps": []}),
                );
            }
            t += S;
        }
        let r = self
            .http
            .post(format!("{}/api/v1/results", self.c.url()))
            .bearer_auth(TOKEN)
            .json(&json!({ "results": body }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

fn error(v: &Value) -> &str {
    v["error"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_is_scheduled_listed_cancelled_and_refused_field_by_field() {
    let now = now_us();
    let mut settings = CollectorSettings::new(Secret::new(TOKEN), known(Slo::default()));
    settings.rollup.raw_retention_us = 3_600 * S;
    settings.maintenance = vec![MaintenanceSpec {
        name: "Quarterly patching".into(),
        message: String::new(),
        checks: vec!["listen".into()],
        starts_us: now + 86_400 * S,
        ends_us: now + 86_400 * S + 3_600 * S,
    }];
    let c = start(Arc::new(SqliteStore::in_memory().unwrap()), settings).await;
    let api = Api {
        http: reqwest::Client::new(),
        c: &c,
    };

    for (body, expected) in [
        (
            json!({"name": " ", "checks": [], "starts": "soon", "ends": "later"}),
            vec![
                "`starts`: \"soon\" is not an RFC 3339 time",
                "`ends`: \"later\"",
                "`name`: must not be empty",
                "`checks`: must name at least one check",
            ],
        ),
        (
            json!({"name": "x", "checks": ["nosuch"], "starts": rfc3339(now), "ends": rfc3339(now + 60 * S)}),
            vec!["`checks`: \"nosuch\" is not a check; the checks are listen, search"],
        ),
        (
            json!({"name": "x", "checks": ["search"], "starts": rfc3339(now + 60 * S), "ends": rfc3339(now)}),
            vec!["`ends`: must be after `starts`"],
        ),
        (
            json!({"name": "x", "checks": ["search"], "starts": rfc3339(now), "ends": rfc3339(now + 32 * 86_400 * S)}),
            vec!["`ends`: a maintenance window may last at most 31 days"],
        ),
        (
            json!({"name": "x", "checks": ["search"], "starts": rfc3339(now - 120 * S), "ends": rfc3339(now - 60 * S)}),
            vec!["`ends`: the window is already over"],
        ),
        (
            json!({"name": "x", "checks": ["search"], "starts": rfc3339(now - 7_200 * S), "ends": rfc3339(now + 60 * S)}),
            vec!["`starts`: is before the oldest raw results kept"],
        ),
    ] {
        let (status, v) = api.schedule(body.clone()).await;
        assert_eq!(status, 400, "{body}: {v}");
        for e in expected {
            assert!(error(&v).contains(e), "{body}: {v} lacks {e:?}");
        }
    }
    let (status, v) = api
        .schedule(
            json!({"name": "x", "checks": ["search"], "starts": rfc3339(now),
            "ends": rfc3339(now + S), "colour": "red"}),
        )
        .await;
    assert_eq!(status, 400, "an unknown field: {v}");
    assert!(error(&v).contains("colour"), "{v}");
    // Nothing refused was kept: only the config's window.
    let listed = api.get("/api/v1/maintenance").await;
    assert_eq!(
        listed["maintenance"].as_array().unwrap().len(),
        1,
        "{listed}"
    );
    assert_eq!(listed["maintenance"][0]["source"], "config");

    // Results for the last 10 minutes, then two overlapping windows under way, and one ahead.
    api.results("search", (now - 600 * S, now), (0, 0)).await;
    let (status, first) = api
        .schedule(
            json!({"name": "Index rebuild", "checks": ["search", "search"],
            "starts": rfc3339(now - 300 * S), "ends": rfc3339(now - 100 * S + 3_600 * S),
            "message": "Slower search.", "created_by": "alice"}),
        )
        .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["checks"], json!(["search"]), "each check once");
    assert_eq!(first["source"], "api");
    assert_eq!(first["created_by"], "alice");
    let (status, second) = api
        .schedule(json!({"name": "Database upgrade", "checks": ["search"],
            "starts": rfc3339(now - 400 * S), "ends": rfc3339(now - 200 * S + 3_600 * S)}))
        .await;
    assert_eq!(status, 201, "{second}");
    let (status, ahead) = api
        .schedule(json!({"name": "Cache flush", "checks": ["search"],
            "starts": rfc3339(now + 3_600 * S), "ends": rfc3339(now + 7_200 * S)}))
        .await;
    assert_eq!(status, 201, "{ahead}");
    let states = api.get("/api/v1/states").await;
    assert_eq!(
        states["maintenance"].as_array().unwrap().len(),
        4,
        "{states}"
    );

    // Overlapping windows count once: from 400 s ago to the end of the query.
    let f = api
        .get(&format!(
            "/api/v1/checks/search/availability?from_us={}&to_us={}",
            now - 600 * S,
            now
        ))
        .await;
    assert_eq!(f["maintenance_seconds"], 400.0, "{f}");
    assert_eq!(f["counted_seconds"], 200.0, "{f}");
    assert_eq!(f["availability"], 1.0);
    let daily = api.get("/api/v1/daily?days=2&checks=search").await;
    let days = daily["checks"][0]["days"].as_array().unwrap();
    let in_days: f64 = days
        .iter()
        .map(|d| d["maintenance_seconds"].as_f64().unwrap())
        .sum();
    assert!(in_days >= 400.0, "{daily}");
    // A name the collector was not told of is left out: a reader still reads the others.
    let some = api
        .get("/api/v1/checks?window=10m&checks=search,nosuch")
        .await;
    let names: Vec<&str> = some["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["search"], "{some}");

    // Cancelled: ahead, gone; under way, ended now (what was maintenance stays so); over, kept.
    assert_eq!(api.cancel(&ahead["id"]).await, 204);
    assert_eq!(api.cancel(&first["id"]).await, 204);
    assert_eq!(api.cancel(&first["id"]).await, 409, "over: it stays");
    assert_eq!(api.cancel(&json!(999)).await, 404);
    assert_eq!(
        api.cancel(&listed["maintenance"][0]["id"]).await,
        409,
        "the config's"
    );
    let listed = api.get("/api/v1/maintenance").await;
    let names: Vec<&str> = listed["maintenance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Database upgrade", "Index rebuild", "Quarterly patching"]
    );
    let ended = &listed["maintenance"][1];
    assert!(ended["ends_us"].as_i64().unwrap() <= now_us(), "{ended}");
    c.shutdown().await;
}

fn with_target(target: &str, window_days: u64) -> Slo {
    Slo::default()
        .with(SloOverrides {
            target: Some(Target::parse(target).unwrap()),
            window: Some(Duration::from_secs(window_days * 86_400)),
            ..Default::default()
        })
        .unwrap()
}

async fn restart(path: &Path, slo: Slo) -> Collector {
    let store = Arc::new(SqliteStore::open(path).unwrap());
    start(
        store,
        CollectorSettings::new(Secret::new(TOKEN), known(slo)),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_slo_is_an_event_and_judges_every_window_anew_rewriting_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("collector.db");
    let now = now_us();
    let window = (now - 600 * S, now - 60 * S);
    let figures_path = format!(
        "/api/v1/checks/search/availability?from_us={}&to_us={}",
        window.0, window.1
    );

    let c = restart(&path, Slo::default()).await;
    let api = Api {
        http: reqwest::Client::new(),
        c: &c,
    };
    api.results(
        "search",
        (now - 600 * S, now),
        (now - 300 * S, now - 240 * S),
    )
    .await;
    let before = api.get(&figures_path).await;
    let slos = api.get("/api/v1/slos").await;
    let search = |slos: &Value| {
        slos["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "search")
            .unwrap()
            .clone()
    };
    let since = search(&slos)["slo_since_us"].as_i64().unwrap();
    assert_eq!(search(&slos)["slo"]["availability_target"], 0.9999);
    c.shutdown().await;

    let c = restart(&path, with_target("99.9%", 30)).await;
    let api = Api {
        http: reqwest::Client::new(),
        c: &c,
    };
    let after = api.get(&figures_path).await;
    let slos = api.get("/api/v1/slos").await;
    assert_eq!(
        search(&slos)["slo"],
        json!({"availability_target": 0.999, "latency_objective_ms": 800.0,
            "window_seconds": 2_592_000, "maintenance_in_sla": false})
    );
    assert!(search(&slos)["slo_since_us"].as_i64().unwrap() > since);
    // The same history, judged by the new SLO: availability as it was, ten times the budget.
    for k in ["availability", "down_seconds", "counted_seconds"] {
        assert_eq!(before[k], after[k], "{k}");
    }
    let budget = |v: &Value| v["error_budget_seconds"].as_f64().unwrap();
    assert!((budget(&after) - 10.0 * budget(&before)).abs() < 1e-6);
    assert_eq!(after["target"], 0.999);
    let events = api.get("/api/v1/events").await;
    let changed: Vec<&Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "slo_changed")
        .collect();
    assert_eq!(changed.len(), 2, "search and listen: {events}");
    let message = changed.iter().find(|e| e["service"] == "search").unwrap()["message"]
        .as_str()
        .unwrap();
    assert!(
        message.contains("from 99.99% over 90 days") && message.contains("to 99.9% over 30 days"),
        "{message}"
    );
    c.shutdown().await;

    // The same SLO again: nothing new to tell.
    let c = restart(&path, with_target("99.9%", 30)).await;
    let api = Api {
        http: reqwest::Client::new(),
        c: &c,
    };
    let events = api.get("/api/v1/events").await;
    assert_eq!(
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "slo_changed")
            .count(),
        2
    );
    c.shutdown().await;
}

//! The alerter's REST API and engine against real servers on loopback: a real collector fed
//! probe results over its HTTP API, a real alerter driven over HTTP, webhook receivers that
//! are small axum servers, and a real Prometheus (Debian's `prometheus` package) for PromQL
//! targets. Every response the API gives is checked for the webhook's secret.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

mod world;

use std::time::{Duration, Instant};

use std::sync::atomic::AtomicU64;

use reqwest::Method;
use serde_json::{Value, json};
use world::*;

// ---------------------------------------------------------------------------------------------
// 1. Auth, the open routes, and the OpenAPI document.

/// Every path the router serves, as the OpenAPI document must list them.
const ROUTES: [&str; 16] = [
    "/",
    "/api/alerts",
    "/api/checks",
    "/api/checks/{id}",
    "/api/checks/{id}/alerts",
    "/api/checks/{id}/subscriptions",
    "/api/checks/{id}/subscriptions/{sub}",
    "/api/checks/{id}/subscriptions/{sub}/test",
    "/api/openapi.json",
    "/api/problems",
    "/api/problems/{id}/ack",
    "/api/problems/{id}/unack",
    "/api/silences",
    "/api/silences/{id}",
    "/healthcheck",
    "/metrics",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_route_needs_the_token_and_the_openapi_document_lists_exactly_the_routes() {
    let w = World::start(|_| {}).await;
    let (status, doc) = w.raw(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(status, 200, "the OpenAPI document is open: {doc}");
    let mut paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    paths.sort_unstable();
    assert_eq!(paths, ROUTES, "the document's paths");
    // And the list is the router's: every `.route("...")` of src/api/mod.rs, and the
    // console's front page (its other pages are for people, not programs).
    let source = include_str!("../src/api/mod.rs");
    let mut routed: Vec<&str> = source
        .match_indices(".route(")
        .filter_map(|(i, _)| source[i..].split('"').nth(1))
        .collect();
    assert!(include_str!("../src/console/mod.rs").contains(".route(\"/\", get(now::page))"));
    routed.push("/");
    routed.sort_unstable();
    assert_eq!(routed, ROUTES, "the router's paths");

    let mut protected = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let concrete = path.replace("{id}", "nope").replace("{sub}", "nope");
        let mut documented = Vec::new();
        for method in ops.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            documented.push(method.clone());
            let body = matches!(method, Method::POST | Method::PUT).then(|| json!({}));
            let open = !path.starts_with("/api/") || path == "/api/openapi.json";
            if open {
                let (status, v) = w.raw(method.clone(), &concrete, None, None).await;
                assert_eq!(status, 200, "{method} {path} is open: {v}");
                continue;
            }
            protected += 1;
            let (status, v) = w.raw(method.clone(), &concrete, None, body.clone()).await;
            assert_eq!(status, 401, "{method} {path} without a token: {v}");
            assert!(error_of(&v).contains("Bearer"), "{v}");
            let (status, v) = w
                .raw(
                    method.clone(),
                    &concrete,
                    Some("not-the-token"),
                    body.clone(),
                )
                .await;
            assert_eq!(status, 403, "{method} {path} with a wrong token: {v}");
            // With the token, the route answers: not the router's fallback.
            let (status, v) = w
                .raw(method.clone(), &concrete, Some(API_TOKEN), body)
                .await;
            let fallback = status == 404
                && v["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("no such resource"));
            assert!(
                !fallback,
                "{method} {path} is documented but not served: {v}"
            );
        }
        // Methods the document does not list are not served on a listed path.
        for method in [Method::GET, Method::POST, Method::PUT, Method::DELETE] {
            if documented.contains(&method) {
                continue;
            }
            let (status, v) = w
                .raw(method.clone(), &concrete, Some(API_TOKEN), None)
                .await;
            assert_eq!(
                status, 405,
                "{method} {path} is not documented but answered {status}: {v}"
            );
        }
    }
    assert_eq!(protected, 17, "every documented /api operation was tried");

    let (status, v) = w.raw(Method::GET, "/api/nope", Some(API_TOKEN), None).await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(error_of(&v), "no such resource: /api/nope");

    let (_, health) = w.raw(Method::GET, "/healthcheck", None, None).await;
    assert_eq!(health["name"], "lookout-alerting", "{health}");
    assert!(health["version"].is_string(), "{health}");
    assert_eq!(health["dependencies"][0]["name"], "collector", "{health}");
    // The console's front page sends a visitor without a session to sign in.
    let (_, page) = w.raw(Method::GET, "/", None, None).await;
    let page = page.as_str().unwrap();
    assert!(
        page.contains("Lookout alerting</a></h1>") && page.contains("<h2>Sign in</h2>"),
        "{page}"
    );
    w.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 2. Checks: create, read, change, delete; every refusal names its field.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_are_made_read_changed_and_deleted_and_refusals_name_the_field() {
    let w = World::start(|s| {
        s.checks.push(config_check(json!({"id": "from-config",
            "name": "From the config", "target": "down(search)", "error": 1})));
    })
    .await;
    let made = w
        .create(json!({"id": "search-avail", "name": "Search availability",
            "target": "availability(search, 1h)", "warn": 0.9999, "error": 0.99,
            "interval": "30s", "group": "search"}))
        .await;
    assert_eq!(made["id"], "search-avail", "{made}");
    assert_eq!(made["origin"], "api");
    assert_eq!(made["worse"], "lower", "warn above error: lower is worse");
    assert_eq!(made["schedule"], "every 30s");
    assert_eq!(made["state"], "OK");

    let list = w.get("/api/checks").await;
    let mut ids: Vec<&str> = list["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["from-config", "search-avail"], "{list}");
    assert_eq!(
        (list["total"].as_u64(), list["items"].as_u64()),
        (Some(2), Some(2))
    );
    let one = w.get("/api/checks/search-avail").await;
    assert_eq!(one["target"], "availability(search, 1h)");
    assert_eq!(one["group"], "search");
    for field in ["state", "state_since", "value", "last_check", "last_error"] {
        assert!(one.get(field).is_some(), "{field} in {one}");
    }
    // Evaluated against the collector: no results yet, so no data, so UNKNOWN.
    let evaluated = w.until_state("search-avail", "UNKNOWN").await;
    assert_eq!(evaluated["value"], Value::Null, "{evaluated}");
    w.until_evaluated("from-config").await;
    // Worst first, as people scan the list; and Seyren's `state` filter.
    let list = w.get("/api/checks").await;
    assert_eq!(list["values"][0]["id"], "search-avail", "{list}");
    assert_eq!(list["values"][1]["state"], "OK", "{list}");
    let unknown = w.get("/api/checks?state=unknown,error").await;
    assert_eq!(unknown["total"], 1, "{unknown}");
    assert_eq!(unknown["values"][0]["id"], "search-avail", "{unknown}");

    // A target that does not parse: the field, the column, and a caret under it.
    let target = "availability(search, 30d, region=eu)";
    let column = target.find("region").unwrap() + 1;
    let (status, v) = w
        .post(
            "/api/checks",
            json!({"name": "bad", "target": target, "error": 1}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    let message = error_of(&v);
    assert!(message.starts_with("`target`: "), "{message}");
    assert!(
        message.contains(&format!("at column {column}")),
        "{message}"
    );
    let lines: Vec<&str> = message.lines().collect();
    let at = lines.iter().position(|l| *l == target).unwrap();
    assert_eq!(
        lines[at + 1],
        format!("{}^", " ".repeat(column - 1)),
        "{message}"
    );
    let (status, v) = w
        .post(
            "/api/checks",
            json!({"name": "typo", "target": "availabilty(search, 1h)", "error": 1}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(error_of(&v).contains("availability"), "the closest: {v}");

    let refusals = [
        (json!({"interval": "often"}), "`interval`"),
        (json!({"interval": "0s"}), "`interval`"),
        (json!({"interval": "1m", "cron": "* * * * *"}), "`interval`"),
        (json!({"cron": "* * *"}), "`cron`"),
        (json!({"gate": {"bad": 4, "of": 3}}), "`gate`"),
        (json!({"depends_on": ["nope"]}), "`depends_on`"),
        (json!({"depends_on": ["bad-one"]}), "`depends_on`"),
        (json!({"for": "a while"}), "`for`"),
        (json!({"group": "no spaces"}), "`group`"),
        (json!({"warn": null, "error": null}), "`warn/error`"),
        (json!({"id": "has a space"}), "`id`"),
        (json!({"name": " "}), "`name`"),
    ];
    for (extra, field) in refusals {
        let mut body = json!({"id": "bad-one", "name": "bad", "target": "down(search)",
            "error": 1});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, v) = w.post("/api/checks", body.clone()).await;
        assert_eq!(status, 400, "{body} -> {v}");
        assert!(error_of(&v).contains(field), "{body}: {field} in {v}");
    }
    // An unknown field is refused by name too, rather than ignored.
    let (status, v) = w
        .post(
            "/api/checks",
            json!({"name": "x", "target": "down(search)", "error": 1, "treshold": 3}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(error_of(&v).contains("treshold"), "{v}");
    assert_eq!(
        w.get("/api/checks").await["total"],
        2,
        "nothing refused was kept"
    );

    let (status, v) = w
        .post(
            "/api/checks",
            json!({"id": "search-avail", "name": "again", "target": "down(search)", "error": 1}),
        )
        .await;
    assert_eq!(status, 409, "{v}");
    assert!(error_of(&v).contains("search-avail"), "{v}");

    let (status, v) = w
        .api(
            Method::PUT,
            "/api/checks/search-avail",
            Some(
                json!({"name": "Search availability, 1h", "target": "availability(search, 1h)",
                "warn": 0.999, "error": 0.99, "interval": "1m", "depends_on": ["from-config"]}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let changed = w.get("/api/checks/search-avail").await;
    assert_eq!(changed["name"], "Search availability, 1h", "{changed}");
    assert_eq!(changed["warn"], 0.999);
    assert_eq!(changed["schedule"], "every 1m");
    assert_eq!(changed["depends_on"], json!(["from-config"]));
    assert_eq!(
        changed["group"],
        Value::Null,
        "a PUT replaces the whole check"
    );
    let (status, v) = w
        .api(
            Method::PUT,
            "/api/checks/search-avail",
            Some(json!({"id": "other", "name": "x", "target": "down(search)", "error": 1})),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(error_of(&v).contains("`id`"), "{v}");
    let (status, v) = w
        .api(
            Method::PUT,
            "/api/checks/search-avail",
            Some(json!({"name": "x", "target": "down(", "error": 1})),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(error_of(&v).contains("`target`"), "{v}");
    let (status, v) = w
        .api(
            Method::PUT,
            "/api/checks/nope",
            Some(json!({"name": "x", "target": "down(search)", "error": 1})),
        )
        .await;
    assert_eq!(status, 404, "{v}");

    // A check from the config is changed there, not here.
    let (status, v) = w
        .api(
            Method::PUT,
            "/api/checks/from-config",
            Some(json!({"name": "x", "target": "down(search)", "error": 1})),
        )
        .await;
    assert_eq!(status, 409, "{v}");
    assert!(error_of(&v).contains("config"), "{v}");
    let (status, v) = w.api(Method::DELETE, "/api/checks/from-config", None).await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(w.get("/api/checks/from-config").await["origin"], "config");

    let (status, v) = w
        .api(Method::DELETE, "/api/checks/search-avail", None)
        .await;
    assert_eq!(status, 204, "{v}");
    let (status, v) = w.api(Method::GET, "/api/checks/search-avail", None).await;
    assert_eq!(status, 404, "{v}");
    assert!(error_of(&v).contains("search-avail"), "{v}");
    let (status, _) = w
        .api(Method::DELETE, "/api/checks/search-avail", None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(w.get("/api/checks").await["total"], 1);
    w.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 3. Subscriptions.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_validated_test_sent_and_never_show_the_webhook_secret() {
    let good = Receiver::start(&[], 200).await;
    let bad = Receiver::start(&[], 500).await;
    let w = World::start(|s| {
        s.notifiers.insert("hook".into(), good.notifier(true));
        s.notifiers.insert("broken".into(), bad.notifier(false));
    })
    .await;
    w.create(down_check("search-down")).await;
    let path = "/api/checks/search-down/subscriptions";

    let (status, v) = w.post(path, json!({"notifier": "pager"})).await;
    assert_eq!(status, 400, "{v}");
    let message = error_of(&v);
    assert!(message.starts_with("`notifier`"), "{message}");
    assert!(
        message.contains("configured: broken, hook, log"),
        "{message}"
    );
    let window = |from: &str, tz: &str| json!({"notifier": "hook", "window": {"from": from, "to": "17:00", "timezone": tz}});
    let (status, v) = w.post(path, window("09:00", "Mars/Olympus")).await;
    assert_eq!(status, 400, "{v}");
    assert!(error_of(&v).contains("`window.timezone`"), "{v}");
    let (status, v) = w.post(path, window("9am", "Europe/London")).await;
    assert_eq!(status, 400, "{v}");
    assert!(error_of(&v).contains("`window.from`"), "{v}");
    let (status, v) = w
        .post(path, json!({"notifier": "hook", "target": "#ops"}))
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(error_of(&v).contains("`target`"), "{v}");
    let (status, v) = w
        .post(
            "/api/checks/nope/subscriptions",
            json!({"notifier": "hook"}),
        )
        .await;
    assert_eq!(status, 404, "{v}");
    assert!(w.get(path).await.as_array().unwrap().is_empty());

    let (status, made) = w
        .post(
            path,
            json!({"id": "ops", "notifier": "hook", "ignore_warn": true,
                "window": {"from": "00:00", "to": "23:59", "timezone": "Europe/London"}}),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["check_id"], "search-down");
    assert_eq!(made["window"]["timezone"], "Europe/London");
    let (status, v) = w.post(path, json!({"id": "ops", "notifier": "hook"})).await;
    assert_eq!(status, 409, "{v}");
    let (status, v) = w
        .post(path, json!({"id": "broken", "notifier": "broken"}))
        .await;
    assert_eq!(status, 201, "{v}");
    let listed = w.get(path).await;
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ops", "broken"], "{listed}");

    let (status, v) = w.post(&format!("{path}/ops/test"), json!({})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v, json!({"sent": true, "notifier": "hook", "error": null}));
    let hits = good.hits();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].path, format!("/hook/{SECRET}"));
    assert_eq!(hits[0].event, "test");
    verify_signature(&hits[0]);
    let n = hits[0].json();
    assert_eq!(n["kind"], "test", "{n}");
    assert_eq!(n["check_id"], "search-down");
    assert_eq!(n["check_name"], "Search down (search-down)");

    let (status, v) = w.post(&format!("{path}/broken/test"), json!({})).await;
    assert_eq!(status, 502, "{v}");
    assert_eq!(v["sent"], false, "{v}");
    assert_eq!(v["notifier"], "broken");
    let error = v["error"].as_str().unwrap();
    assert!(error.contains("500"), "{error}");
    assert!(
        error.contains("cannot take a delivery to /***"),
        "the receiver's words, with the echoed token masked: {error}"
    );
    assert_eq!(bad.hits().len(), 1, "one attempt, outside the outbox");

    let (status, v) = w.post(&format!("{path}/nope/test"), json!({})).await;
    assert_eq!(status, 404, "{v}");

    // A subscription made without an id gets one, and can be deleted by it.
    let (status, made) = w.post(path, json!({"notifier": "log"})).await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().unwrap().to_owned();
    let encoded: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
    let (status, v) = w
        .api(Method::DELETE, &format!("{path}/{encoded}"), None)
        .await;
    assert_eq!(status, 204, "DELETE {id}: {v}");

    let (status, v) = w.api(Method::DELETE, &format!("{path}/broken"), None).await;
    assert_eq!(status, 204, "{v}");
    let (status, v) = w.api(Method::DELETE, &format!("{path}/broken"), None).await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(w.get(path).await.as_array().unwrap().len(), 1);
    w.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 4. The state machine through real data.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_down_pages_once_and_its_recovery_resolves_once_signed() {
    let hook = Receiver::start(&[], 200).await;
    let (w, before) = World::paging(&hook, true).await;
    assert_eq!(
        (before["state"].as_str(), before["value"].as_f64()),
        (Some("OK"), Some(0.0))
    );

    // One region failing alone is not a page.
    let t = now_us() - 5_000_000;
    w.results(&[("eu", t, false, 100_000), ("us", t, true, 100_000)])
        .await;
    w.idle(Duration::from_millis(500)).await;
    assert_eq!(w.get("/api/checks/search-down").await["state"], "OK");

    w.take_down().await;
    let down = w.until_state("search-down", "ERROR").await;
    assert_eq!(down["value"], 1.0, "{down}");

    let alerts = w.get("/api/checks/search-down/alerts").await;
    assert_eq!(alerts["total"], 1, "{alerts}");
    let a = &alerts["values"][0];
    assert_eq!(
        (
            &a["check_id"],
            &a["from"],
            &a["to"],
            &a["value"],
            &a["error"]
        ),
        (
            &json!("search-down"),
            &json!("OK"),
            &json!("ERROR"),
            &json!(1.0),
            &json!(1.0)
        ),
        "{a}"
    );
    assert_eq!(a["target"], "down(search)");
    assert!(a["time"].as_str().unwrap().ends_with('Z'), "{a}");
    let all = w.get("/api/alerts").await;
    assert_eq!(all["values"][0], *a, "{all}");

    w.until("the trigger", || !hook.accepted("trigger").is_empty())
        .await;
    let trigger = &hook.accepted("trigger")[0];
    verify_signature(trigger);
    let n = trigger.json();
    assert_eq!(n["kind"], "trigger", "{n}");
    assert_eq!(n["state"], "ERROR");
    assert_eq!(n["previous"], "OK");
    assert_eq!(n["check_id"], "search-down");
    assert_eq!(n["value"], 1.0);
    assert_eq!(n["severity"], "page");
    assert_eq!(n["regions"], json!(["eu", "us"]), "{n}");
    assert_eq!(n["reason"], "connection refused in eu", "{n}");
    assert_eq!(trigger.delivery, n["id"].as_str().unwrap());
    let problem_id = n["problem_id"].as_str().unwrap().to_owned();

    // Still down: no storm.
    w.take_down().await;
    w.idle(Duration::from_millis(1500)).await;
    assert_eq!(hook.accepted("trigger").len(), 1, "{:?}", hook.hits());

    w.recover().await;
    let up = w.until_state("search-down", "OK").await;
    assert_eq!(up["value"], 0.0, "{up}");
    w.until("the resolve", || !hook.accepted("resolve").is_empty())
        .await;
    w.idle(Duration::from_millis(1000)).await;
    let resolves = hook.accepted("resolve");
    assert_eq!(resolves.len(), 1, "{:?}", hook.hits());
    verify_signature(&resolves[0]);
    let r = resolves[0].json();
    assert_eq!(r["problem_id"], problem_id.as_str(), "{r}");
    assert_eq!(r["state"], "OK");
    assert_eq!(r["previous"], "ERROR");
    assert_eq!(hook.accepted("trigger").len(), 1);
    assert_eq!(hook.hits().len(), 2, "nothing else: {:?}", hook.hits());

    let alerts = w.get("/api/checks/search-down/alerts").await;
    assert_eq!(alerts["total"], 2, "{alerts}");
    assert_eq!(
        (&alerts["values"][0]["from"], &alerts["values"][0]["to"]),
        (&json!("ERROR"), &json!("OK")),
        "newest first: {alerts}"
    );
    w.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 5. Thresholds over the collector's query API.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threshold_checks_over_the_query_api_follow_the_data() {
    let w = World::start(|_| {}).await;
    w.create(json!({"id": "avail", "name": "Search availability",
        "target": "availability(search, 1h)", "warn": 0.9999, "error": 0.99, "interval": "1s"}))
        .await;
    w.create(json!({"id": "p95", "name": "Search p95",
        "target": "latency(search, p95, 5m)", "warn": 0.5, "error": 0.8, "interval": "1s"}))
        .await;
    w.create(json!({"id": "p95-eu", "name": "Search p95 in eu",
        "target": "latency(search, p95, 5m, region=eu)", "warn": 0.5, "error": 0.8,
        "interval": "1s"}))
        .await;
    // No results yet: no data.
    w.until_state("avail", "UNKNOWN").await;
    w.until_state("p95", "UNKNOWN").await;

    // 29 rounds 10 s apart over the last 5 minutes. eu and us both fail for one second
    // (availability about 1 - 1/290: a WARN), and the last nine rounds are slow outside eu.
    let start = now_us() - 290_000_000;
    let mut rows = Vec::new();
    for i in 0..29i64 {
        let t = start + i * 10_000_000;
        for region in REGIONS {
            let slow = i >= 20 && region != "eu";
            let ok = !(i == 10 && region == "eu");
            rows.push((region, t, ok, if slow { 900_000 } else { 100_000 }));
        }
        if i == 10 {
            rows.push(("us", t + 9_000_000, false, 100_000));
        }
    }
    w.results(&rows).await;

    let avail = w.until_state("avail", "WARN").await;
    let v = avail["value"].as_f64().unwrap();
    assert!((0.99..0.9999).contains(&v), "{avail}");
    assert!((v - (1.0 - 1.0 / 290.0)).abs() < 0.001, "{avail}");
    let p95 = w.until_state("p95", "ERROR").await;
    let v = p95["value"].as_f64().unwrap();
    assert!((0.85..0.95).contains(&v), "about 900 ms: {p95}");
    let eu = w.until_state("p95-eu", "OK").await;
    let v = eu["value"].as_f64().unwrap();
    assert!((0.09..0.11).contains(&v), "eu alone is fast: {eu}");

    let alerts = w.get("/api/checks/avail/alerts").await;
    let last = &alerts["values"][0];
    assert_eq!(
        (&last["from"], &last["to"]),
        (&json!("UNKNOWN"), &json!("WARN")),
        "{alerts}"
    );
    w.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 6. Silences.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_holds_a_page_until_it_ends_but_never_holds_a_resolve() {
    let hook = Receiver::start(&[], 200).await;
    let (w, _) = World::paging(&hook, false).await;

    let (status, v) = w
        .post(
            "/api/silences",
            json!({"matchers": ["search-down"], "starts": "2030-01-02T00:00:00Z",
                "ends": "2030-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(error_of(&v).contains("ends before it starts"), "{v}");
    let (status, v) = w
        .post(
            "/api/silences",
            json!({"matchers": ["nope"], "duration": "1h"}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(error_of(&v).contains("`matchers`"), "{v}");
    assert!(error_of(&v).contains("\"nope\""), "{v}");
    let (status, v) = w
        .post("/api/silences", json!({"matchers": ["search-down"]}))
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(error_of(&v).contains("`ends` or `duration`"), "{v}");
    let (status, v) = w
        .post(
            "/api/silences",
            json!({"matchers": ["search-down"], "starts": "yesterday", "duration": "1h"}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(error_of(&v).contains("`starts`"), "{v}");
    let (status, v) = w
        .post(
            "/api/silences",
            json!({"matchers": ["search-down"], "duration": "1h", "kind": "holiday"}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(error_of(&v).contains("`kind`"), "{v}");
    assert_eq!(w.get("/api/silences").await, json!([]));

    let (status, silence) = w
        .post(
            "/api/silences",
            json!({"matchers": ["search-down"], "duration": "1h", "created_by": "alice",
                "comment": "deploying search"}),
        )
        .await;
    assert_eq!(status, 201, "{silence}");
    let silence_id = silence["id"].as_str().unwrap().to_owned();
    assert_eq!(w.get("/api/silences").await[0]["created_by"], "alice");

    w.take_down().await;
    w.until_state("search-down", "ERROR").await;
    w.idle(Duration::from_millis(1500)).await;
    assert!(hook.hits().is_empty(), "held: {:?}", hook.hits());
    let open = w.get("/api/problems?open=true").await;
    assert_eq!(open.as_array().unwrap().len(), 1, "{open}");
    assert_eq!(open[0]["deliveries"], json!([]), "nothing queued: {open}");

    let (status, v) = w
        .api(Method::DELETE, &format!("/api/silences/{silence_id}"), None)
        .await;
    assert_eq!(status, 204, "{v}");
    let (status, v) = w
        .api(Method::DELETE, &format!("/api/silences/{silence_id}"), None)
        .await;
    assert_eq!(status, 404, "{v}");
    w.until("the held trigger", || hook.accepted("trigger").len() == 1)
        .await;
    let problem_id = hook.accepted("trigger")[0].json()["problem_id"].clone();

    // Silenced after the page: the resolve still goes out.
    let (status, v) = w
        .post(
            "/api/silences",
            json!({"matchers": ["search-down"], "duration": "1h"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    w.recover().await;
    w.until_state("search-down", "OK").await;
    w.until("the resolve", || hook.accepted("resolve").len() == 1)
        .await;
    w.idle(Duration::from_millis(800)).await;
    assert_eq!(hook.hits().len(), 2, "{:?}", hook.hits());
    assert_eq!(hook.accepted("resolve")[0].json()["problem_id"], problem_id);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collectors_maintenance_holds_a_page_until_it_ends_and_is_not_the_alerters_to_cancel() {
    let hook = Receiver::start(&[], 200).await;
    let (w, _) = World::paging(&hook, false).await;
    let (status, v) = w
        .post(
            "/api/silences",
            json!({"matchers": ["search-down"], "duration": "1h", "kind": "maintenance"}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        error_of(&v).contains("scheduled maintenance is the collector's"),
        "{v}"
    );

    let now = chrono::Utc::now();
    let r = w
        .http
        .post(format!("{}/api/v1/maintenance", w.collector.url()))
        .bearer_auth(COLLECTOR_TOKEN)
        .json(&json!({"name": "Index rebuild", "checks": ["search"],
            "starts": (now - chrono::Duration::seconds(10)).to_rfc3339(),
            "ends": (now + chrono::Duration::hours(1)).to_rfc3339()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let window: Value = r.json().await.unwrap();
    let silence_id = format!("maintenance-{}", window["id"]);
    // The alerter learns of it from the collector's live state.
    let start = Instant::now();
    let mut silences = w.get("/api/silences").await;
    while !silences
        .as_array()
        .is_some_and(|a| a.iter().any(|s| s["id"] == silence_id.as_str()))
    {
        assert!(
            start.elapsed() < DEADLINE,
            "the window reached the alerter: {silences}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        silences = w.get("/api/silences").await;
    }
    let held = silences
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == silence_id.as_str())
        .unwrap();
    assert_eq!(held["kind"], "maintenance");
    assert_eq!(held["matchers"], json!(["about:search"]));

    w.take_down().await;
    w.until_state("search-down", "ERROR").await;
    w.idle(Duration::from_millis(1500)).await;
    assert!(hook.hits().is_empty(), "held: {:?}", hook.hits());
    let (status, v) = w
        .api(Method::DELETE, &format!("/api/silences/{silence_id}"), None)
        .await;
    assert_eq!(status, 409, "{v}");
    assert!(error_of(&v).contains("cancel it there"), "{v}");

    let r = w
        .http
        .delete(format!(
            "{}/api/v1/maintenance/{}",
            w.collector.url(),
            window["id"]
        ))
        .bearer_auth(COLLECTOR_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    w.until("the held trigger", || hook.accepted("trigger").len() == 1)
        .await;
    w.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 7. Problems and acknowledgements.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_problems_are_listed_with_their_deliveries_and_acknowledged() {
    let hook = Receiver::start(&[], 200).await;
    let (w, _) = World::paging(&hook, false).await;
    assert_eq!(w.get("/api/problems?open=true").await, json!([]));

    w.take_down().await;
    w.until_state("search-down", "ERROR").await;
    w.until("the trigger", || hook.accepted("trigger").len() == 1)
        .await;
    // The outbox marks it sent just after the receiver took it.
    let start = Instant::now();
    let open = loop {
        let open = w.get("/api/problems?open=true").await;
        if open[0]["deliveries"][0]["status"] == "sent" || start.elapsed() > DEADLINE {
            break open;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let problems = open.as_array().unwrap();
    assert_eq!(problems.len(), 1, "{open}");
    let p = &problems[0];
    let id = p["id"].as_str().unwrap().to_owned();
    assert_eq!(p["level"], "ERROR", "{p}");
    assert_eq!(p["lead"], "search-down");
    assert_eq!(p["members"], json!({"search-down": "ERROR"}));
    assert_eq!(p["closed"], Value::Null);
    assert_eq!(p["ack"], Value::Null);
    assert!(p["opened"].as_str().unwrap().ends_with('Z'), "{p}");
    let deliveries = p["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{p}");
    assert_eq!(deliveries[0]["kind"], "trigger");
    assert_eq!(deliveries[0]["level"], "ERROR");
    assert_eq!(deliveries[0]["status"], "sent", "{p}");
    assert_eq!(deliveries[0]["attempts"], 1);
    assert_eq!(deliveries[0]["problem_id"], id.as_str());
    assert_eq!(
        hook.accepted("trigger")[0].json()["problem_id"],
        id.as_str()
    );

    let ack = format!("/api/problems/{id}/ack");
    let (status, v) = w.post(&ack, json!({"by": " "})).await;
    assert_eq!(status, 400, "{v}");
    assert!(error_of(&v).contains("`by`"), "{v}");
    let (status, v) = w.post(&ack, json!({"who": "alice"})).await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = w
        .post(&ack, json!({"by": "alice", "comment": "looking"}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["ack"]["by"], "alice", "{v}");
    assert_eq!(v["ack"]["comment"], "looking");
    let open = w.get("/api/problems?open=true").await;
    assert_eq!(open[0]["ack"]["by"], "alice", "kept: {open}");
    let (status, v) = w
        .post("/api/problems/no-such-problem/ack", json!({"by": "alice"}))
        .await;
    assert_eq!(status, 404, "{v}");
    assert!(error_of(&v).contains("no-such-problem"), "{v}");
    let (status, v) = w.api(Method::GET, "/api/problems?items=0", None).await;
    assert_eq!(status, 400, "{v}");
    assert!(error_of(&v).contains("`items`"), "{v}");

    w.recover().await;
    w.until_state("search-down", "OK").await;
    w.until("the resolve", || hook.accepted("resolve").len() == 1)
        .await;
    assert_eq!(w.get("/api/problems?open=true").await, json!([]));
    let all = w.get("/api/problems").await;
    assert_eq!(all[0]["id"], id.as_str(), "{all}");
    assert!(all[0]["closed"].is_string(), "{all}");
    assert_eq!(all[0]["level"], "OK");
    let (status, v) = w.post(&ack, json!({"by": "alice"})).await;
    assert_eq!(status, 409, "a closed problem: {v}");
    w.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 8. Delivery with retries.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_notification_is_retried_with_backoff_and_delivered_once() {
    let hook = Receiver::start(&[500, 500], 200).await;
    let (w, _) = World::paging(&hook, false).await;
    w.take_down().await;
    w.until_state("search-down", "ERROR").await;
    w.until("the third attempt", || hook.hits().len() >= 3)
        .await;
    w.idle(Duration::from_millis(1500)).await;

    let hits = hook.hits();
    let statuses: Vec<u16> = hits.iter().map(|h| h.status).collect();
    assert_eq!(statuses, [500, 500, 200], "{hits:?}");
    assert!(hits.iter().all(|h| h.event == "trigger"), "{hits:?}");
    assert!(
        hits.iter()
            .all(|h| h.delivery == hits[0].delivery && h.body == hits[0].body),
        "the same notification each time: {hits:?}"
    );
    // Backoff: 1 s after the first refusal, 2 s after the second.
    let first_wait = hits[1].at - hits[0].at;
    let second_wait = hits[2].at - hits[1].at;
    assert!(first_wait >= Duration::from_millis(900), "{first_wait:?}");
    assert!(
        second_wait >= Duration::from_millis(1900),
        "{second_wait:?}"
    );

    let open = w.get("/api/problems?open=true").await;
    let d = &open[0]["deliveries"];
    assert_eq!(d.as_array().unwrap().len(), 1, "{open}");
    assert_eq!(d[0]["status"], "sent", "{open}");
    assert_eq!(d[0]["attempts"], 3, "{open}");
    assert_eq!(d[0]["last_error"], Value::Null, "{open}");
    w.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 9. A restart on the same store.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_the_same_store_neither_pages_again_nor_forgets_the_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start(&[], 200).await;
    let collector = collector().await;
    let mut s = settings(&collector);
    s.store = Some(dir.path().join("alerting.db"));
    s.notifiers.insert("hook".into(), hook.notifier(false));
    let first = World {
        alerter: alerter(s.clone()).await,
        collector,
        http: reqwest::Client::new(),
        seq: AtomicU64::new(1),
    };
    first.create(down_check("search-down")).await;
    first.subscribe("search-down", "hook").await;
    first.until_evaluated("search-down").await;
    first.take_down().await;
    first.until_state("search-down", "ERROR").await;
    first
        .until("the trigger", || hook.accepted("trigger").len() == 1)
        .await;
    // Until the outbox has marked it sent.
    let start = Instant::now();
    while first.get("/api/problems?open=true").await[0]["deliveries"][0]["status"] != "sent" {
        assert!(start.elapsed() < DEADLINE, "the trigger marked sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let World {
        alerter: old,
        collector,
        http,
        seq,
    } = first;
    let stopped_at = now_us();
    old.shutdown().await;

    let second = World {
        alerter: alerter(s).await,
        collector,
        http,
        seq,
    };
    let restored = second.get("/api/checks/search-down").await;
    assert_eq!(restored["origin"], "api", "{restored}");
    assert_eq!(restored["state"], "ERROR", "the state is kept: {restored}");
    let subs = second.get("/api/checks/search-down/subscriptions").await;
    assert_eq!(subs[0]["notifier"], "hook", "{subs}");
    // Evaluated again after the restart, still down: nothing new to say.
    second
        .until_check("search-down", "an evaluation after the restart", |v| {
            v["last_check"].as_str().is_some_and(|t| {
                chrono::DateTime::parse_from_rfc3339(t)
                    .unwrap()
                    .timestamp_micros()
                    > stopped_at
            })
        })
        .await;
    second.idle(Duration::from_millis(2000)).await;
    assert_eq!(
        second.get("/api/checks/search-down").await["state"],
        "ERROR"
    );
    assert_eq!(hook.hits().len(), 1, "no second page: {:?}", hook.hits());
    let problem_id = hook.accepted("trigger")[0].json()["problem_id"].clone();
    let open = second.get("/api/problems?open=true").await;
    assert_eq!(open[0]["id"], problem_id, "{open}");

    second.recover().await;
    second.until_state("search-down", "OK").await;
    second
        .until("the resolve", || hook.accepted("resolve").len() == 1)
        .await;
    second.idle(Duration::from_millis(800)).await;
    assert_eq!(hook.hits().len(), 2, "{:?}", hook.hits());
    assert_eq!(hook.accepted("resolve")[0].json()["problem_id"], problem_id);
    second.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 10. PromQL against a real Prometheus.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promql_targets_are_read_from_a_real_prometheus() {
    let prometheus = lookout_testkit::peers::Prometheus::start().await;
    let w = World::start(|s| {
        s.prometheus = Some(url::Url::parse(&prometheus.url).unwrap());
    })
    .await;
    let promql = |id: &str, query: &str, allow_no_data: bool| {
        json!({"id": id, "name": id, "target": format!("promql({})", json!(query)),
            "warn": 10, "error": 40, "interval": "1s", "allow_no_data": allow_no_data})
    };
    w.create(promql("p42", "vector(42)", false)).await;
    w.create(promql("p1", "vector(1)", false)).await;
    w.create(promql("p-scalar", "scalar(vector(12))", false))
        .await;
    w.create(promql("p-empty", "vector(1) > 2", false)).await;
    w.create(promql("p-empty-ok", "vector(1) > 2", true)).await;

    let v = w.until_state("p42", "ERROR").await;
    assert_eq!(v["value"], 42.0, "{v}");
    let v = w.until_check("p1", "value 1", |v| v["value"] == 1.0).await;
    assert_eq!(v["state"], "OK", "{v}");
    let v = w.until_state("p-scalar", "WARN").await;
    assert_eq!(v["value"], 12.0, "{v}");
    let v = w.until_state("p-empty", "UNKNOWN").await;
    assert_eq!(v["value"], Value::Null, "no data: {v}");
    let v = w.until_evaluated("p-empty-ok").await;
    assert_eq!(
        (&v["state"], &v["value"]),
        (&json!("OK"), &Value::Null),
        "{v}"
    );

    // A query Prometheus refuses: the state is kept, and the check says why.
    let (status, v) = w
        .api(
            Method::PUT,
            "/api/checks/p42",
            Some(promql("p42", "sum(rate(", false)),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let v = w
        .until_check("p42", "a last_error", |v| v["last_error"].is_string())
        .await;
    assert_eq!(v["state"], "ERROR", "kept: {v}");
    assert_eq!(v["value"], 42.0, "{v}");
    let error = v["last_error"].as_str().unwrap();
    assert!(error.contains("Prometheus refused the query"), "{error}");
    assert!(
        error.contains("parse error"),
        "Prometheus's own words: {error}"
    );
    w.idle(Duration::from_millis(1200)).await;
    assert_eq!(w.get("/api/checks/p42").await["state"], "ERROR");
    let alerts = w.get("/api/checks/p42/alerts").await;
    assert_eq!(
        alerts["total"], 1,
        "no change for a refused query: {alerts}"
    );

    // Fixed: evaluated again, down to OK.
    let (status, v) = w
        .api(
            Method::PUT,
            "/api/checks/p42",
            Some(promql("p42", "vector(2)", false)),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let v = w.until_state("p42", "OK").await;
    assert_eq!(
        (&v["value"], &v["last_error"]),
        (&json!(2.0), &Value::Null),
        "{v}"
    );
    w.stop().await;
    drop(prometheus);
}

// ---------------------------------------------------------------------------------------------
// 11. /metrics.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_show_every_checks_state() {
    let w = World::start(|s| {
        s.checks.push(config_check(
            json!({"id": "always-bad", "name": "Always bad",
            "target": "1", "error": 1, "interval": "1s"}),
        ));
    })
    .await;
    w.create(down_check("search-down")).await;
    w.until_state("always-bad", "ERROR").await;
    w.until_evaluated("search-down").await;
    let (status, text) = w.raw(Method::GET, "/metrics", None, None).await;
    assert_eq!(status, 200);
    let text = text.as_str().unwrap().to_owned();
    for (check, state, value) in [
        ("always-bad", "ERROR", 1),
        ("always-bad", "OK", 0),
        ("search-down", "OK", 1),
        ("search-down", "ERROR", 0),
    ] {
        let line =
            format!("lookout_alerting_check_state{{check=\"{check}\",state=\"{state}\"}} {value}");
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }
    assert!(
        text.contains("lookout_alerting_evaluations_total{outcome=\"ok\"}"),
        "{text}"
    );
    if let Err(e) = lookout_testkit::peers::promtool_check(&text) {
        panic!("{e}\n{text}");
    }
    w.stop().await;
}

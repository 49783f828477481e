//! The status page against real servers on loopback: a real collector fed probe results over
//! its HTTP API, aiosmtpd taking the monthly report, and
//! the page read over HTTP as a browser, a Statuspage client and a feed reader would.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lookout_collector::Collector;
use lookout_model::secret::Secret;
use lookout_status_page::settings::{ComponentSpec, GroupSpec, ReportSettings};
use lookout_status_page::{StatusPage, StatusPageSettings};
use reqwest::Method;
use serde_json::{Value, json};

const COLLECTOR_TOKEN: &str = "collector-token-for-tests";
const ADMIN_TOKEN: &str = "status-admin-token-for-tests";
/// `hidden-dc` is a region with no public name: it must never be shown.
const REGIONS: [&str; 3] = ["eu", "us", "hidden-dc"];
/// What a failing probe reports: internal, never on the public side.
const INTERNAL_REASON: &str = "connection refused by 10.1.2.3:8080 (db-7.internal)";

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

async fn collector() -> Collector {
    let info = lookout_testkit::collector::check(&REGIONS, 10_000_000, 5_000_000);
    let known =
        lookout_testkit::collector::known(&["search", "artist-view", "internal-canary"], &info);
    lookout_testkit::collector::start(COLLECTOR_TOKEN, known).await
}

fn settings(collector_url: &str) -> StatusPageSettings {
    let mut s = StatusPageSettings::new(
        url::Url::parse(&format!("{collector_url}/")).unwrap(),
        Secret::new(COLLECTOR_TOKEN),
        Secret::new(ADMIN_TOKEN),
    );
    s.title = "Example platform status".into();
    let component = |id: &str, name: &str, check: &str| ComponentSpec {
        id: id.into(),
        name: name.into(),
        description: format!("{name} for listeners"),
        check: check.into(),
    };
    s.groups = vec![GroupSpec {
        id: "discovery".into(),
        name: "Discovery".into(),
        components: vec![
            component("search", "Search", "search"),
            component("artist-pages", "Artist pages", "artist-view"),
        ],
    }];
    s.regions = vec![
        ("eu".into(), "Europe".into()),
        ("us".into(), "North America".into()),
    ];
    // Tests refresh by hand; the timer must not race them.
    s.refresh_every = Duration::from_secs(3600);
    s
}

async fn start(settings: StatusPageSettings) -> StatusPage {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    StatusPage::start(settings, listener).await.unwrap()
}

struct World {
    collector: Collector,
    page: StatusPage,
    http: reqwest::Client,
    seq: AtomicU64,
}

impl World {
    async fn new() -> World {
        let collector = collector().await;
        let page = start(settings(&collector.url())).await;
        World::with(collector, page)
    }

    fn with(collector: Collector, page: StatusPage) -> World {
        World {
            collector,
            page,
            http: reqwest::Client::new(),
            seq: AtomicU64::new(1),
        }
    }

    /// Posts one round of results `(region, ok)` of `check`, `ago_us` before now.
    async fn round(&self, check: &str, regions: &[(&str, bool)], ago_us: i64) {
        let t = now_us() - ago_us;
        let body: Vec<Value> = regions
            .iter()
            .map(|(region, ok)| {
                let outcome = if *ok {
                    json!({"status": "ok"})
                } else {
                    json!({"status": "fail", "kind": "refused", "step": 0, "message": INTERNAL_REASON})
                };
                json!({"check": check, "region": region, "agent": format!("{region}-1"),
                    "seq": self.seq.fetch_add(1, Ordering::Relaxed), "started_at_us": t,
                    "outcome": outcome, "duration_us": 120_000, "steps": []})
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
        assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    }

    async fn all_ok(&self, ago_us: i64) {
        for check in ["search", "artist-view", "internal-canary"] {
            self.round(
                check,
                &[("eu", true), ("us", true), ("hidden-dc", true)],
                ago_us,
            )
            .await;
        }
    }

    /// Search down: two of three regions fail, for two rounds a second apart.
    async fn search_down(&self) {
        let failing = [("eu", false), ("us", true), ("hidden-dc", false)];
        self.round("search", &failing, 2_000_000).await;
        self.round("search", &failing, 1_000_000).await;
        self.round("internal-canary", &failing, 1_000_000).await;
    }

    async fn get(&self, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.page.url()))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.text().await.unwrap())
    }

    async fn json(&self, path: &str) -> Value {
        let (status, _, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.page.url()))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Every public document, for checks that hold across all of them.
    async fn everything_public(&self) -> String {
        let mut all = String::new();
        for path in [
            "/",
            "/history",
            "/history.atom",
            "/api/v2/summary.json",
            "/api/v2/incidents.json",
            "/api/v2/components.json",
            "/api/v2/scheduled-maintenances.json",
            "/badge/search/status.svg",
            "/healthcheck",
        ] {
            let (status, _, body) = self.get(path).await;
            assert_eq!(status, 200, "GET {path}");
            all.push_str(&body);
        }
        all
    }
}

fn assert_nothing_internal(text: &str) {
    for secret in [
        "10.1.2.3",
        "db-7.internal",
        "connection refused",
        "hidden-dc",
        "internal-canary",
        "artist-view",
        COLLECTOR_TOKEN,
        ADMIN_TOKEN,
    ] {
        assert!(!text.contains(secret), "the public side shows {secret:?}");
    }
}

/// The documented fields of Statuspage's public API v2 objects
/// (https://metastatuspage.com/api/v2/): a client written for Statuspage finds each of them.
const PAGE_FIELDS: [&str; 5] = ["id", "name", "url", "time_zone", "updated_at"];
const COMPONENT_FIELDS: [&str; 13] = [
    "id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "position",
    "description",
    "showcase",
    "start_date",
    "group_id",
    "page_id",
    "group",
    "only_show_if_degraded",
];
const INCIDENT_FIELDS: [&str; 13] = [
    "id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "monitoring_at",
    "resolved_at",
    "impact",
    "shortlink",
    "started_at",
    "page_id",
    "incident_updates",
    "components",
];
const UPDATE_FIELDS: [&str; 11] = [
    "id",
    "status",
    "body",
    "incident_id",
    "created_at",
    "updated_at",
    "display_at",
    "affected_components",
    "deliver_notifications",
    "custom_tweet",
    "tweet_id",
];
const COMPONENT_STATUSES: [&str; 5] = [
    "operational",
    "degraded_performance",
    "partial_outage",
    "major_outage",
    "under_maintenance",
];

fn has_fields(v: &Value, fields: &[&str], what: &str) {
    for f in fields {
        assert!(
            v.get(f).is_some(),
            "{what} lacks the documented field {f:?}: {v}"
        );
    }
}

fn is_time(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok())
}

fn check_statuspage_shape(summary: &Value) {
    has_fields(&summary["page"], &PAGE_FIELDS, "page");
    assert!(is_time(&summary["page"]["updated_at"]));
    let status = &summary["status"];
    assert!(
        ["none", "minor", "major", "critical", "maintenance"]
            .contains(&status["indicator"].as_str().unwrap())
    );
    assert!(status["description"].is_string());
    for c in summary["components"].as_array().unwrap() {
        has_fields(c, &COMPONENT_FIELDS, "component");
        assert!(
            COMPONENT_STATUSES.contains(&c["status"].as_str().unwrap()),
            "{c}"
        );
        assert!(c["id"].is_string() && c["position"].is_u64() && c["group"].is_boolean());
    }
    for i in summary["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .chain(summary["scheduled_maintenances"].as_array().unwrap())
    {
        has_fields(i, &INCIDENT_FIELDS, "incident");
        assert!(
            is_time(&i["created_at"]) && is_time(&i["started_at"]),
            "{i}"
        );
        for u in i["incident_updates"].as_array().unwrap() {
            has_fields(u, &UPDATE_FIELDS, "incident update");
        }
        for c in i["components"].as_array().unwrap() {
            has_fields(c, &COMPONENT_FIELDS, "incident component");
        }
    }
    for m in summary["scheduled_maintenances"].as_array().unwrap() {
        assert!(
            is_time(&m["scheduled_for"]) && is_time(&m["scheduled_until"]),
            "{m}"
        );
        assert_eq!(m["impact"], "maintenance");
    }
}

/// The feed parsed by Python's XML parser: well-formed, and its entries' titles.
fn atom_titles(feed: &str) -> Vec<String> {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E\n\
             ns={'a':'http://www.w3.org/2005/Atom'}\n\
             root=E.fromstring(sys.stdin.read())\n\
             assert root.find('a:id',ns).text.startswith('http')\n\
             for e in root.findall('a:entry',ns):\n\
             \x20   assert e.find('a:updated',ns).text and e.find('a:id',ns).text.startswith('http')\n\
             \x20   print(e.find('a:title',ns).text)\n\
             \x20   print(e.find('a:content',ns).text, file=sys.stderr)",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs the Atom check");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(feed.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the feed is not valid Atom: {}\n{feed}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_opens_an_incident_everywhere_updates_show_and_it_resolves() {
    let w = World::new().await;
    let (_, _, html) = w.get("/").await;
    assert!(
        html.contains("Status unknown: no current measurements"),
        "never \"fine\" unmeasured"
    );
    w.all_ok(5_000_000).await;
    w.page.refresh().await;
    let (status, _, html) = w.get("/").await;
    assert_eq!(status, 200);
    assert!(html.contains("All systems operational"), "{html}");
    for id in ["search", "artist-pages"] {
        let start = html.find(&format!("data-component=\"{id}\"")).unwrap();
        let section = &html[start..];
        let end = section.find("</ol>").unwrap();
        assert_eq!(
            section[..end].matches("<li class=\"bar ").count(),
            90,
            "{id}: 90 bars"
        );
    }
    let summary = w.json("/api/v2/summary.json").await;
    check_statuspage_shape(&summary);
    assert_eq!(summary["status"]["indicator"], "none");

    w.search_down().await;
    w.page.refresh().await;
    let status = w.json("/api/v2/status.json").await;
    assert_eq!(status["status"]["indicator"], "major", "{status}");
    let summary = w.json("/api/v2/summary.json").await;
    check_statuspage_shape(&summary);
    let search = summary["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "search")
        .unwrap();
    assert_eq!(
        search["status"], "partial_outage",
        "us still passes: {search}"
    );
    let unresolved = w.json("/api/v2/incidents/unresolved.json").await;
    let incidents = unresolved["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{unresolved}");
    let incident = &incidents[0];
    assert_eq!(incident["name"], "Search unavailable");
    assert_eq!(incident["status"], "investigating");
    assert_eq!(incident["components"][0]["id"], "search");
    let body = incident["incident_updates"][0]["body"].as_str().unwrap();
    assert!(body.contains("from Europe"), "{body}");
    let id = incident["id"].as_str().unwrap().to_owned();

    let (_, _, html) = w.get("/").await;
    assert!(
        html.contains("Partial outage") && html.contains("Search unavailable"),
        "{html}"
    );
    let titles = atom_titles(&w.get("/history.atom").await.2);
    assert_eq!(
        titles,
        vec!["Search unavailable [Investigating]".to_string()]
    );
    assert_nothing_internal(&w.everything_public().await);

    // A person's update, with markup that must never run anywhere.
    let (status, v) = w
        .admin(
            Method::POST,
            &format!("/api/v1/incidents/{id}/updates"),
            Some(json!({"status": "identified", "message": "A bad <script>alert(1)</script> deploy & rollback", "impact": "critical"})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let (_, _, html) = w.get("/").await;
    assert!(
        html.contains("A bad &lt;script&gt;alert(1)&lt;&#x2F;script&gt; deploy &amp; rollback"),
        "{html}"
    );
    assert!(
        !html.contains("<script"),
        "no script on the page, escaped or not"
    );
    let (_, _, incident_page) = w.get(&format!("/incidents/{id}")).await;
    assert!(incident_page.contains("Identified"), "{incident_page}");
    let unresolved = w.json("/api/v2/incidents/unresolved.json").await;
    assert_eq!(unresolved["incidents"][0]["status"], "identified");
    assert_eq!(unresolved["incidents"][0]["impact"], "critical");
    assert_eq!(
        unresolved["incidents"][0]["incident_updates"][0]["body"],
        "A bad <script>alert(1)</script> deploy & rollback"
    );
    let feed = w.get("/history.atom").await.2;
    assert!(
        feed.contains("&amp;lt;script&amp;gt;"),
        "HTML in the feed is escaped twice: {feed}"
    );
    assert_eq!(
        atom_titles(&feed),
        vec!["Search unavailable [Identified]".to_string()]
    );

    // Recovery closes it, with the time the collector measured.
    w.all_ok(0).await;
    w.page.refresh().await;
    let incidents = w.json("/api/v2/incidents.json").await;
    let incident = &incidents["incidents"][0];
    assert_eq!(incident["status"], "resolved", "{incident}");
    assert!(is_time(&incident["resolved_at"]));
    assert!(
        incident["incident_updates"][0]["body"]
            .as_str()
            .unwrap()
            .starts_with("Recovered at")
    );
    assert_eq!(
        w.json("/api/v2/incidents/unresolved.json").await["incidents"],
        json!([])
    );
    assert_eq!(
        w.json("/api/v2/status.json").await["status"]["indicator"],
        "none"
    );
    let (_, _, html) = w.get("/").await;
    assert!(!html.contains("Active incidents"));
    let (_, _, history) = w.get("/history").await;
    assert!(history.contains("Search unavailable") && history.contains("Resolved"));
    assert_eq!(
        atom_titles(&w.get("/history.atom").await.2),
        vec!["Search unavailable [Resolved]".to_string()]
    );
    assert_nothing_internal(&w.everything_public().await);
    w.page.shutdown().await;
    w.collector.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_refuses_bad_input_with_a_clear_4xx() {
    let w = World::new().await;
    let url = |p: &str| format!("{}{p}", w.page.url());
    let good = json!({"name": "Slow search", "message": "Looking", "components": ["search"]});
    let r = w
        .http
        .post(url("/api/v1/incidents"))
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = w
        .http
        .post(url("/api/v1/incidents"))
        .bearer_auth("wrong")
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(!r.text().await.unwrap().contains("wrong"));

    let cases = [
        (
            json!({"name": "x", "message": "y", "components": ["nope"]}),
            "components[0]",
        ),
        (
            json!({"name": "x", "message": "y", "components": []}),
            "components",
        ),
        (
            json!({"name": "x", "message": "y", "components": ["search"], "status": "fixed"}),
            "status",
        ),
        (
            json!({"name": "x", "message": "y", "components": ["search"], "impact": "huge"}),
            "impact",
        ),
        (
            json!({"name": " ", "message": "y", "components": ["search"]}),
            "name",
        ),
        (
            json!({"name": "x", "message": "y", "components": ["search"], "colour": "red"}),
            "colour",
        ),
    ];
    for (body, field) in cases {
        let (status, v) = w
            .admin(Method::POST, "/api/v1/incidents", Some(body.clone()))
            .await;
        assert!((400..500).contains(&status), "{body} -> {status} {v}");
        assert!(
            v.to_string().contains(field),
            "{body}: the error names {field}: {v}"
        );
    }
    let r = w
        .http
        .post(url("/api/v1/incidents"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let huge = "x".repeat(100_000);
    let (status, _) = w
        .admin(
            Method::POST,
            "/api/v1/incidents",
            Some(json!({"name": "x", "message": huge, "components": ["search"]})),
        )
        .await;
    assert_eq!(status, 413);
    let (status, v) = w
        .admin(
            Method::POST,
            "/api/v1/incidents/999/updates",
            Some(json!({"status": "resolved", "message": "ok"})),
        )
        .await;
    assert_eq!(status, 404, "{v}");
    let soon = chrono::Utc::now() + chrono::Duration::hours(2);
    let (status, v) = w
        .admin(
            Method::POST,
            "/api/v1/maintenances",
            Some(json!({"name": "Upgrade", "components": ["search"],
                "starts": soon.to_rfc3339(), "ends": (soon - chrono::Duration::hours(1)).to_rfc3339()})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(v.to_string().contains("after `starts`"), "{v}");
    let (status, v) = w
        .admin(
            Method::POST,
            "/api/v1/maintenances",
            Some(json!({"name": "Upgrade", "components": ["search"], "starts": "tomorrow", "ends": "later"})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(v.to_string().contains("starts"), "{v}");
    let (status, _) = w
        .admin(Method::DELETE, "/api/v1/maintenances/42", None)
        .await;
    assert_eq!(status, 404);
    let (status, v) = w
        .admin(Method::POST, "/api/v1/reports/2026-11/send", None)
        .await;
    assert_eq!(status, 409, "no reports configured: {v}");
    let (status, v) = w
        .admin(Method::POST, "/api/v1/reports/November/send", None)
        .await;
    assert_eq!(status, 400, "{v}");
    // Nothing of it reached the page.
    assert_eq!(
        w.json("/api/v2/incidents.json").await["incidents"],
        json!([])
    );
    w.page.shutdown().await;
    w.collector.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_cached_compressed_and_locked_down_and_unknown_pages_are_friendly() {
    let w = World::new().await;
    w.all_ok(1_000_000).await;
    w.page.refresh().await;
    let (status, headers, html) = w.get("/").await;
    assert_eq!(status, 200);
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=10")
    );
    assert!(
        !html.contains("<script") && !html.contains("style=\""),
        "no inline script or style"
    );
    let etag = headers["etag"].to_str().unwrap().to_owned();

    let again = w
        .http
        .get(w.page.url())
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 304);
    assert!(again.bytes().await.unwrap().is_empty());

    let gz = w
        .http
        .get(w.page.url())
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    let compressed = gz.bytes().await.unwrap();
    let mut plain = String::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_string(&mut plain)
        .unwrap();
    assert_eq!(plain, html, "the gzipped page is the page");
    assert!(
        compressed.len() * 4 < html.len(),
        "{} -> {}",
        html.len(),
        compressed.len()
    );

    let (status, headers, body) = w.get("/no/such/page").await;
    assert_eq!(status, 404);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(body.contains("There is no such page") && body.contains("href=\"/\""));
    let (status, _, body) = w.get("/api/v2/nothing.json").await;
    assert_eq!(status, 404);
    assert!(
        serde_json::from_str::<Value>(&body).is_ok(),
        "JSON 404 under /api: {body}"
    );
    let (status, _, _) = w.get("/history?page=0").await;
    assert_eq!(status, 404);
    let (status, _, _) = w.get("/reports/2031-01").await;
    assert_eq!(status, 404, "a month to come has no report");
    let r = w.http.post(w.page.url()).body("x").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let (status, headers, svg) = w.get("/badge/search/uptime.svg").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "image/svg+xml");
    assert!(svg.contains("100%"), "{svg}");
    let (_, _, css) = w.get("/static/status.css").await;
    assert!(css.contains("prefers-color-scheme: dark"));
    let (status, _, metrics) = w.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("lookout_status_page_requests_total{kind=\"page\"}"),
        "{metrics}"
    );
    if let Err(e) = lookout_testkit::peers::promtool_check(&metrics) {
        panic!("promtool: {e}");
    }
    w.page.shutdown().await;
    w.collector.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_away_leaves_the_last_known_state_with_its_age() {
    let w = World::new().await;
    w.all_ok(1_000_000).await;
    w.page.refresh().await;
    let (_, _, before) = w.get("/").await;
    assert!(!before.contains("Live data is delayed"));
    let World {
        collector,
        page,
        http,
        seq,
    } = w;
    collector.shutdown().await;
    page.refresh().await;
    let w = World {
        collector: self::collector().await,
        page,
        http,
        seq,
    };
    let (status, _, html) = w.get("/").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Live data is delayed") && html.contains("as of"),
        "{html}"
    );
    assert!(html.contains("data-component=\"search\"") && html.contains("Operational"));
    let summary = w.json("/api/v2/summary.json").await;
    assert_eq!(summary["components"].as_array().unwrap().len(), 3);
    let health = w.json("/healthcheck").await;
    assert_eq!(health["status"], "degraded");
    assert!(!health.to_string().contains("127.0.0.1"), "{health}");
    w.page.shutdown().await;
    w.collector.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_is_announced_and_lifted() {
    // That the alerter holds its pages for these windows is shown with `lookout up`
    // (lookout/tests/status_page.rs): the page reaches the alerter only through the collector.
    let collector = collector().await;
    let s = settings(&collector.url());
    let w = World::with(collector, start(s).await);
    w.all_ok(1_000_000).await;
    w.page.refresh().await;

    let now = chrono::Utc::now();
    let (status, active) = w
        .admin(
            Method::POST,
            "/api/v1/maintenances",
            Some(
                json!({"name": "Search index rebuild", "components": ["search"],
                "starts": (now - chrono::Duration::minutes(1)).to_rfc3339(),
                "ends": (now + chrono::Duration::hours(1)).to_rfc3339(),
                "message": "Search may be slow."}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{active}");
    let (status, upcoming) = w
        .admin(
            Method::POST,
            "/api/v1/maintenances",
            Some(json!({"name": "Database upgrade", "components": ["search", "artist-pages"],
                "starts": (now + chrono::Duration::days(2)).to_rfc3339(),
                "ends": (now + chrono::Duration::days(2) + chrono::Duration::hours(1)).to_rfc3339()})),
        )
        .await;
    assert_eq!(status, 201, "{upcoming}");

    let active_json = w.json("/api/v2/scheduled-maintenances/active.json").await;
    assert_eq!(
        active_json["scheduled_maintenances"][0]["name"],
        "Search index rebuild"
    );
    assert_eq!(
        active_json["scheduled_maintenances"][0]["status"],
        "in_progress"
    );
    let upcoming_json = w.json("/api/v2/scheduled-maintenances/upcoming.json").await;
    assert_eq!(
        upcoming_json["scheduled_maintenances"][0]["name"],
        "Database upgrade"
    );
    assert_eq!(
        upcoming_json["scheduled_maintenances"][0]["status"],
        "scheduled"
    );
    let summary = w.json("/api/v2/summary.json").await;
    check_statuspage_shape(&summary);
    assert_eq!(summary["status"]["indicator"], "maintenance");
    assert_eq!(
        summary["scheduled_maintenances"].as_array().unwrap().len(),
        2
    );
    let (_, _, html) = w.get("/").await;
    assert!(html.contains("Under maintenance") && html.contains("Search index rebuild"));
    assert!(html.contains("Database upgrade") && html.contains("Scheduled"));

    let id = active["id"].as_i64().unwrap();
    let (status, _) = w
        .admin(Method::DELETE, &format!("/api/v1/maintenances/{id}"), None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        w.json("/api/v2/status.json").await["status"]["indicator"],
        "none"
    );
    w.page.shutdown().await;
    w.collector.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// The monthly report, through aiosmtpd

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monthly_report_is_served_and_mailed_to_partners() {
    let smtp = lookout_testkit::peers::Smtp::start().await;
    let collector = collector().await;
    let mut s = settings(&collector.url());
    s.reports = Some(ReportSettings {
        schedule: "0 0 6 1 * *".parse().unwrap(),
        email: lookout_mail::EmailConfig {
            host: "127.0.0.1".into(),
            port: smtp.port,
            tls: lookout_mail::SmtpTls::None,
            username: None,
            password: None,
            from: "status@example.com".into(),
            to: vec![
                "partner-a@example.com".into(),
                "partner-b@example.com".into(),
            ],
            timeout: Duration::from_secs(10),
        },
    });
    let w = World::with(collector, start(s).await);
    w.all_ok(3_000_000).await;
    w.search_down().await;
    w.all_ok(0).await;
    w.page.refresh().await;
    let month = chrono::Utc::now().format("%Y-%m").to_string();

    let report = w.json(&format!("/reports/{month}.json")).await;
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let search = rows.iter().find(|r| r["component"] == "search").unwrap();
    assert!(
        search["downtime_minutes"].as_f64().unwrap() > 0.0,
        "{search}"
    );
    assert_eq!(search["met"], false);
    assert_eq!(search["incidents"], 1);
    assert!(search["p95_ms"].as_f64().unwrap() > 100.0, "{search}");
    assert!(search["error_budget_used"].as_f64().unwrap() > 0.0);
    let (status, headers, csv) = w.get(&format!("/reports/{month}.csv")).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("month,component,name,availability"));
    let (status, _, html) = w.get(&format!("/reports/{month}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("SLA report") && html.contains("Artist pages") && html.contains("✖ no"));
    assert_nothing_internal(&html);

    let (status, v) = w
        .admin(Method::POST, &format!("/api/v1/reports/{month}/send"), None)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["recipients"], 2);
    let mut messages = Vec::new();
    for _ in 0..100 {
        messages = smtp.messages();
        if !messages.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(
        m["to"],
        json!(["partner-a@example.com", "partner-b@example.com"])
    );
    assert!(
        m["headers"]["Subject"]
            .as_str()
            .unwrap()
            .contains("SLA report for"),
        "{m}"
    );
    let body = m["body"].as_str().unwrap();
    assert!(
        body.contains("Search:") && body.contains("TARGET MISSED"),
        "{body}"
    );
    let parts = m["parts"].as_array().unwrap();
    assert!(parts.iter().any(|p| {
        p["content_type"] == "text/html"
            && p["content"]
                .as_str()
                .unwrap()
                .contains("<table class=\"report\">")
    }));
    let attached = parts
        .iter()
        .find(|p| p["filename"] == format!("sla-report-{month}.csv"))
        .unwrap_or_else(|| panic!("a CSV attachment: {parts:?}"));
    assert_eq!(
        attached["content"].as_str().unwrap().replace("\r\n", "\n"),
        csv.replace("\r\n", "\n")
    );
    w.page.shutdown().await;
    w.collector.shutdown().await;
}

//! The Grafana dashboards in `dashboards/`: what Grafana needs to load them (ids, uids, data
//! source references that match the provisioning, no dangling variables), the shipped scrape
//! config passing `promtool check config`, and, against a real Prometheus scraping `lookout up`
//! with that config through an outage and a replacement, every panel's query returning data and
//! the SLA panels agreeing with the collector's own query API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use common::wait_until;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

const TOKEN: &str = "dashboards-token";
const ADMIN: &str = "dashboards-admin";
/// dashboards/prometheus.yml's scrape interval, which the provisioned data source repeats.
const SCRAPE_SECONDS: u64 = 5;
/// One dashboard per view.
const UIDS: [&str; 6] = [
    "lookout-sla",
    "lookout-latency",
    "lookout-regions",
    "lookout-alerting",
    "lookout-platform",
    "lookout-self",
];
/// Grafana's own variables, always defined.
const BUILTINS: [&str; 9] = [
    "__rate_interval",
    "__interval",
    "__interval_ms",
    "__range",
    "__range_s",
    "__range_ms",
    "__all",
    "__from",
    "__to",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn dashboards() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(repo().join("dashboards")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
            out.push((path.file_name().unwrap().to_string_lossy().into_owned(), v));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(path)).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every panel, rows' nested ones included.
fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        out.push(p);
        if let Some(inner) = p["panels"].as_array() {
            out.extend(inner);
        }
    }
    out
}

/// Every PromQL query of a dashboard: (where, expr, instant, the panel's least interval in
/// seconds). Panels' targets and the Prometheus annotations; variables' queries are
/// [`variable_queries`].
fn queries(d: &Value) -> Vec<(String, String, bool, u64)> {
    let mut out = Vec::new();
    for p in panels(d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((
                format!("panel {:?} target {}", p["title"], t["refId"]),
                t["expr"].as_str().unwrap_or_default().to_owned(),
                t["instant"] == true,
                p["interval"]
                    .as_str()
                    .map_or(SCRAPE_SECONDS, |i| seconds(i) as u64),
            ));
        }
    }
    for a in d["annotations"]["list"].as_array().unwrap() {
        if let Some(expr) = a["expr"].as_str() {
            out.push((
                format!("annotation {:?}", a["name"]),
                expr.to_owned(),
                false,
                SCRAPE_SECONDS,
            ));
        }
    }
    out
}

/// Query variables: name -> (metric, label) of their `label_values(metric, label)`.
fn variable_queries(d: &Value) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    for v in d["templating"]["list"].as_array().unwrap() {
        if v["type"] != "query" {
            continue;
        }
        let q = v["query"]["query"]
            .as_str()
            .or(v["query"].as_str())
            .unwrap();
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or_else(|| panic!("variable {}: {q:?} is not label_values(...)", v["name"]));
        let (metric, label) = inner.split_once(',').unwrap();
        out.insert(
            v["name"].as_str().unwrap().to_owned(),
            (metric.trim().to_owned(), label.trim().to_owned()),
        );
    }
    out
}

/// The variables a text refers to: `$name`, `${name}`, `${name:format}`, `[[name]]`.
fn referenced(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let word = |from: usize| {
        text[from..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect::<String>()
    };
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'$' {
            let name = if bytes.get(i + 1) == Some(&b'{') {
                word(i + 2)
            } else {
                word(i + 1)
            };
            if !name.is_empty() {
                out.insert(name);
            }
        } else if text[i..].starts_with("[[") {
            let name = word(i + 2);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

#[test]
fn the_dashboards_are_what_grafana_loads() {
    let boards = dashboards();
    let uids: BTreeSet<&str> = boards
        .iter()
        .map(|(_, d)| d["uid"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(uids, BTreeSet::from(UIDS), "one dashboard per view, by uid");
    let titles: BTreeSet<&str> = boards
        .iter()
        .map(|(_, d)| d["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles.len(), boards.len(), "titles are unique");

    let sources = yaml("dashboards/provisioning/datasources/lookout.yaml");
    assert_eq!(sources["apiVersion"], 1);
    let source = &sources["datasources"][0];
    let (ds_type, ds_uid) = (
        source["type"].as_str().unwrap(),
        source["uid"].as_str().unwrap(),
    );
    assert_eq!(ds_type, "prometheus");
    assert_eq!(
        source["jsonData"]["timeInterval"],
        format!("{SCRAPE_SECONDS}s"),
        "the data source's interval is the scrape interval"
    );
    let providers = yaml("dashboards/provisioning/dashboards/lookout.yaml");
    assert_eq!(providers["apiVersion"], 1);
    assert_eq!(providers["providers"][0]["type"], "file");
    assert!(providers["providers"][0]["options"]["path"].is_string());

    let panel_source = json!({"type": ds_type, "uid": "${datasource}"});
    for (file, d) in &boards {
        let at = |what: &str| format!("{file}: {what}");
        assert!(
            d["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{}",
            at("title")
        );
        assert!(
            d["schemaVersion"].as_u64().is_some_and(|v| v >= 39),
            "{}",
            at("schemaVersion of Grafana 11 or later")
        );
        // The data source variable picks the provisioned one by default.
        let vars = d["templating"]["list"].as_array().unwrap();
        let ds_var = vars.iter().find(|v| v["type"] == "datasource").unwrap();
        assert_eq!(
            ds_var["name"],
            "datasource",
            "{}",
            at("data source variable")
        );
        assert_eq!(
            ds_var["query"],
            ds_type,
            "{}",
            at("data source variable's type")
        );
        assert_eq!(
            ds_var["current"]["value"],
            ds_uid,
            "{}",
            at("default data source")
        );

        let mut ids = BTreeSet::new();
        for p in panels(d) {
            let title = p["title"].as_str().unwrap_or_default();
            let id = p["id"].as_u64().unwrap_or_else(|| panic!("{}", at(title)));
            assert!(ids.insert(id), "{}", at(&format!("panel id {id} twice")));
            let g = &p["gridPos"];
            let (x, w) = (g["x"].as_u64().unwrap(), g["w"].as_u64().unwrap());
            assert!(x + w <= 24 && g["h"].as_u64().unwrap() > 0, "{}", at(title));
            if p["type"] == "row" {
                continue;
            }
            assert!(
                !title.is_empty(),
                "{}",
                at(&format!("panel {id} has a title"))
            );
            assert!(
                p["description"].as_str().is_some_and(|t| !t.is_empty()),
                "{}",
                at(&format!("panel {title:?} says what it means"))
            );
            assert_eq!(p["datasource"], panel_source, "{}", at(title));
            let targets = p["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{}", at(title));
            let mut refs = BTreeSet::new();
            for t in targets {
                assert_eq!(t["datasource"], panel_source, "{}", at(title));
                assert!(refs.insert(t["refId"].as_str().unwrap()), "{}", at(title));
                assert!(
                    t["expr"].as_str().is_some_and(|e| !e.is_empty()),
                    "{}",
                    at(title)
                );
            }
        }
        for a in d["annotations"]["list"].as_array().unwrap() {
            if a["expr"].is_string() {
                assert_eq!(a["datasource"], panel_source, "{}", at("annotation"));
            }
        }

        // No dangling variables: every reference is defined (or Grafana's own), and every
        // variable defined is used.
        let defined: BTreeSet<String> = vars
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_owned())
            .collect();
        let mut used = BTreeSet::new();
        for p in panels(d) {
            for t in p["targets"].as_array().into_iter().flatten() {
                used.extend(referenced(t["expr"].as_str().unwrap_or_default()));
                used.extend(referenced(&t["datasource"]["uid"].to_string()));
            }
            used.extend(referenced(&p["datasource"]["uid"].to_string()));
            used.extend(referenced(p["title"].as_str().unwrap_or_default()));
        }
        for a in d["annotations"]["list"].as_array().unwrap() {
            used.extend(referenced(a["expr"].as_str().unwrap_or_default()));
        }
        for v in vars {
            used.extend(referenced(&v["datasource"]["uid"].to_string()));
            used.extend(referenced(v["definition"].as_str().unwrap_or_default()));
        }
        for name in &used {
            assert!(
                defined.contains(name) || BUILTINS.contains(&name.as_str()),
                "{}",
                at(&format!("${name} is used but not defined"))
            );
        }
        for name in &defined {
            assert!(
                used.contains(name),
                "{}",
                at(&format!("${name} is defined but unused"))
            );
        }
    }
}

#[test]
fn promtool_accepts_the_scrape_config() {
    let out = Command::new("promtool")
        .args(["check", "config"])
        .arg(repo().join("dashboards/prometheus.yml"))
        .output()
        .expect("promtool (Debian's prometheus package; scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn config(dir: &Path) -> PathBuf {
    let platform = common::platform_yaml(ADMIN, "dash-key", [2, 2, 1, 1], true);
    let text = format!(
        r#"data_dir: {data}
log: {{ level: error }}
{platform}collector:
  listen: 127.0.0.1:0
  token: {TOKEN}
  # A sink whose server is away: its failed writes and waiting points are what shows.
  influxdb: {{ url: "http://127.0.0.1:9", org: lookout, bucket: probes, token: influx-token }}
probes:
  regions: [eu-west, us-east, ap-south]
variables:
  gateway: http://unused
checks:
  - name: search
    interval: 1s
    timeout: 900ms
    steps:
      - url: "{{{{gateway}}}}/1.x/search?q=the"
        headers: {{ X-Api-Key: dash-key }}
        assert:
          - {{ type: status, equals: 200 }}
  - name: artist-view
    interval: 2s
    timeout: 1500ms
    steps:
      - name: search
        url: "{{{{gateway}}}}/1.x/search?q=wolf&itemsperpage=1"
        headers: {{ X-Api-Key: dash-key }}
        capture:
          - {{ name: artist_id, json: "$.items[0].id" }}
      - name: view
        url: "{{{{gateway}}}}/1.x/artists/{{{{artist_id}}}}/view"
        headers: {{ X-Api-Key: dash-key }}
        assert:
          - {{ type: status, equals: 200 }}
alerting:
  listen: 127.0.0.1:0
  confirm_after: 3s
  recheck_every: 2s
  notifiers:
    log: {{ type: log }}
    gone: {{ type: webhook, url: "http://127.0.0.1:9/nobody-listens" }}
  subscribe:
    - {{ notifier: log }}
    - {{ notifier: gone }}
status_page:
  listen: 127.0.0.1:0
  regions: {{ eu-west: Europe, us-east: North America, ap-south: Asia Pacific }}
  groups:
    - name: Discovery
      components:
        - {{ name: Search, check: search }}
        - {{ name: Artist pages, check: artist-view }}
replacer:
  listen: 127.0.0.1:0
  health: {{ interval: 500ms, timeout: 400ms, failure_threshold: 3, success_threshold: 1, grace: 3s }}
  brakes: {{ cooldown: 1s, max_per_hour: 10 }}
  replace_timeout: 20s
"#,
        data = dir.join("data").display()
    );
    let path = dir.join("lookout.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn host_port(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// The shipped scrape config with `lookout up`'s example addresses swapped for this run's.
fn scrape_config(components: &common::Components, dir: &Path) -> PathBuf {
    let mut text = std::fs::read_to_string(repo().join("dashboards/prometheus.yml")).unwrap();
    let swaps = [
        ("127.0.0.1:8090", host_port(&components["collector"].0)),
        ("127.0.0.1:8091", host_port(&components["alerting"].0)),
        ("127.0.0.1:8092", host_port(&components["status-page"].0)),
        ("127.0.0.1:8093", host_port(&components["replacer"].0)),
        ("127.0.0.1:8081", host_port(&components["gateway#1"].1)),
    ];
    for (example, here) in swaps {
        assert!(
            text.contains(example),
            "prometheus.yml no longer scrapes {example}"
        );
        text = text.replace(example, &here);
    }
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, text).unwrap();
    path
}

struct Prom {
    url: String,
    http: reqwest::Client,
}

impl Prom {
    async fn get(&self, path: &str, params: &[(&str, String)]) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .query(params)
            .send()
            .await
            .unwrap();
        let text = r.text().await.unwrap();
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path} {params:?}: {e}: {text}"));
        assert_eq!(v["status"], "success", "{path} {params:?}: {v}");
        v["data"].clone()
    }

    async fn instant(&self, expr: &str, at: f64) -> Vec<Value> {
        let d = self
            .get(
                "/api/v1/query",
                &[("query", expr.to_owned()), ("time", format!("{at:.3}"))],
            )
            .await;
        d["result"].as_array().cloned().unwrap_or_default()
    }

    async fn range(&self, expr: &str, start: f64, end: f64, step: u64) -> Vec<Value> {
        let d = self
            .get(
                "/api/v1/query_range",
                &[
                    ("query", expr.to_owned()),
                    ("start", format!("{start:.3}")),
                    ("end", format!("{end:.3}")),
                    ("step", format!("{step}s")),
                ],
            )
            .await;
        d["result"].as_array().cloned().unwrap_or_default()
    }

    async fn targets(&self) -> Vec<Value> {
        self.get("/api/v1/targets", &[("state", "active".to_owned())])
            .await["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// Whether a result holds at least one finite number: a series of NaNs shows nothing.
fn has_data(result: &[Value]) -> bool {
    result.iter().any(|s| {
        let values: Vec<&Value> = match s["values"].as_array() {
            Some(v) => v.iter().collect(),
            None => vec![&s["value"]],
        };
        values.iter().any(|v| {
            v[1].as_str()
                .and_then(|x| x.parse::<f64>().ok())
                .is_some_and(f64::is_finite)
        })
    })
}

fn now_s() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1e6
}

fn seconds(window: &str) -> i64 {
    humantime::parse_duration(window).unwrap().as_secs() as i64
}

#[tokio::test(flavor = "multi_thread")]
async fn every_panel_query_returns_data_from_a_real_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let (_up, components) = common::up(&config(dir.path()));
    let started = now_s();
    let config = std::fs::read_to_string(scrape_config(&components, dir.path())).unwrap();
    let prometheus = lookout_testkit::peers::Prometheus::with_config(&config, &[]).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let prom = Prom {
        url: prometheus.url.clone(),
        http: http.clone(),
    };

    // Every component scraped, the discovered ones included: 3 agents (from the collector's
    // list), the gateway and 6 instances (from the replacer's).
    let expected = BTreeMap::from([
        ("lookout-collector", 1),
        ("lookout-alerting", 1),
        ("lookout-status-page", 1),
        ("lookout-replacer", 1),
        ("lookout-probes", 3),
        ("platform-gateway", 1),
        ("platform", 6),
    ]);
    let took = wait_until(
        "every component scraped and up",
        Duration::from_secs(60),
        || async {
            let mut up: BTreeMap<&str, usize> = BTreeMap::new();
            for t in prom.targets().await {
                if t["health"] == "up" {
                    let job = t["labels"]["job"].as_str().unwrap_or_default().to_owned();
                    if let Some((k, _)) = expected.get_key_value(job.as_str()) {
                        *up.entry(k).or_default() += 1;
                    }
                }
            }
            up == expected
        },
    )
    .await;
    println!("every component scraped within {took:?}");
    tokio::time::sleep(Duration::from_secs(10)).await;

    // The fault: both catalogue instances down at once for 20 s. Search and the artist page
    // fail in every region (down, alerts, notifications: one of them to a receiver that is
    // gone), the gateway answers 5xx, and the replacer holds (mass failure) instead of
    // replacing. Then a mixes instance dies and is replaced.
    let fault = |admin: String| {
        let http = http.clone();
        async move {
            let r = http
                .post(format!("{admin}/admin/faults"))
                .bearer_auth(ADMIN)
                .json(&json!({"kind": "down", "duration": "20s"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        }
    };
    fault(components["catalogue#1"].1.clone()).await;
    fault(components["catalogue#2"].1.clone()).await;
    let fault_at = now_s();
    let collector = components["collector"].0.clone();
    let state_of = |check: &'static str| {
        let (http, collector) = (http.clone(), collector.clone());
        async move {
            let url = format!("{collector}/api/v1/checks/{check}/availability?window=5m");
            let v = common::get_json(&http, &url, TOKEN).await;
            v["current"]["state"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
    };
    wait_until("search down", Duration::from_secs(15), || async {
        state_of("search").await == "down"
    })
    .await;
    // Partners look at the status page meanwhile (and their browsers ask again with the ETag).
    let page = &components["status-page"].0;
    for _ in 0..3 {
        let r = http.get(page.as_str()).send().await.unwrap();
        let etag = r.headers()["etag"].clone();
        assert_eq!(r.status(), 200);
        let again = http
            .get(page.as_str())
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        // 200 when the page changed in between (it re-renders on every change).
        assert!(
            matches!(again.status().as_u16(), 200 | 304),
            "{}",
            again.status()
        );
    }
    wait_until("search up again", Duration::from_secs(60), || async {
        state_of("search").await == "up"
    })
    .await;
    let replacer = components["replacer"].0.clone();
    let events = || async {
        http.get(format!("{replacer}/api/v1/events"))
            .send()
            .await
            .unwrap()
            .json::<Vec<Value>>()
            .await
            .unwrap()
    };
    wait_until(
        "the replacer's hold released",
        Duration::from_secs(40),
        || async { events().await.iter().any(|e| e["kind"] == "released") },
    )
    .await;
    let pid = common::pid_of(&components["mixes#1"].0).to_string();
    assert!(
        Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap()
            .success()
    );
    wait_until("mixes#1 replaced", Duration::from_secs(20), || async {
        events()
            .await
            .iter()
            .any(|e| e["instance"] == "mixes#1" && e["kind"] == "replacement_done")
    })
    .await;
    // A few scrapes of the aftermath, the replacement's new instance among them.
    tokio::time::sleep(Duration::from_secs(4 * SCRAPE_SECONDS)).await;
    println!(
        "fault at +{:.0} s; querying at +{:.0} s",
        fault_at - started,
        now_s() - started
    );

    // Every panel's query, and every annotation's, over the run, as Grafana would ask it.
    let end = now_s();
    let range = (end - started).ceil() as u64;
    let mut failures = Vec::new();
    let mut asked = 0;
    for (file, d) in dashboards() {
        let mut values = BTreeMap::new();
        for (name, (metric, label)) in variable_queries(&d) {
            let got = prom
                .get(
                    &format!("/api/v1/label/{label}/values"),
                    &[
                        ("match[]", metric.clone()),
                        ("start", format!("{started:.0}")),
                        ("end", format!("{end:.0}")),
                    ],
                )
                .await;
            if got.as_array().is_none_or(Vec::is_empty) {
                failures.push(format!(
                    "{file}: variable ${name} ({metric}, {label}) has no values"
                ));
            }
            let all = d["templating"]["list"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == name)
                .unwrap()["allValue"]
                .as_str()
                .unwrap()
                .to_owned();
            values.insert(name, all);
        }
        for (at, expr, instant, interval) in queries(&d) {
            // As Grafana sets them for a short range: $__interval is the panel's least interval
            // (else the data source's), and the step of a range query.
            let mut q = expr
                .replace("$__rate_interval", &format!("{}s", 4 * SCRAPE_SECONDS))
                .replace("$__interval", &format!("{interval}s"))
                .replace("$__range", &format!("{range}s"));
            for (name, value) in &values {
                q = q.replace(&format!("${name}"), value);
            }
            assert!(!q.contains('$'), "{file} {at}: {q}");
            let result = if instant {
                prom.instant(&q, end).await
            } else {
                prom.range(&q, started, end, interval).await
            };
            asked += 1;
            if !has_data(&result) {
                failures.push(format!("{file} {at}: no data for {q}"));
            }
        }
    }
    println!("{asked} queries asked of Prometheus");
    assert!(
        failures.is_empty(),
        "{} without data:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // And what the panels read shows the fault, not just data.
    let over = format!("{range}s");
    for (shows, expr, least) in [
        (
            "search down (SLA: Up or down)",
            format!(r#"1 - min_over_time(lookout_check_up{{check="search"}}[{over}])"#),
            1.0,
        ),
        (
            "the catalogue's down faults (Platform: Faults injected)",
            format!(r#"max_over_time(platform_faults_active{{component="catalogue", kind="down"}}[{over}])"#),
            1.0,
        ),
        (
            "the catalogue held (Alerting and replacer: Brakes)",
            format!(r#"max_over_time(lookout_replacer_held{{service="catalogue"}}[{over}])"#),
            1.0,
        ),
        (
            "mixes replaced (Alerting and replacer: Replacements)",
            format!(r#"sum(increase(lookout_replacer_replacements_total{{service="mixes", outcome="done"}}[{over}]))"#),
            0.5,
        ),
        (
            "pages sent (Alerting and replacer: Notifications)",
            r#"sum(lookout_alerting_notifications_total{notifier="log", outcome="sent"})"#.to_owned(),
            1.0,
        ),
        (
            "pages to the gone webhook failing (Alerting and replacer: Notifications)",
            r#"sum(lookout_alerting_notifications_total{notifier="webhook", outcome=~"retry|failed"})"#.to_owned(),
            1.0,
        ),
        (
            "other regions asked to confirm (Regions and probes: Confirmation runs)",
            format!("sum(increase(lookout_probe_confirmation_runs_total[{over}]))"),
            0.5,
        ),
        (
            "5xx at the gateway (Platform: Errors)",
            format!(r#"sum(increase(platform_http_requests_total{{component="gateway", status=~"5.."}}[{over}]))"#),
            0.5,
        ),
    ] {
        let got = prom.instant(&expr, end).await;
        let value = got
            .first()
            .and_then(|s| s["value"][1].as_str())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        assert!(value >= least, "{shows}: {expr} = {value}");
    }
    // What a scrape costs each component, against the interval it must fit in.
    for s in prom
        .instant(
            "max by (job) (max_over_time(scrape_duration_seconds[5m]))",
            end,
        )
        .await
    {
        println!(
            "slowest scrape of {}: {:.1} ms (interval {SCRAPE_SECONDS} s)",
            s["metric"]["job"].as_str().unwrap_or_default(),
            s["value"][1].as_str().unwrap().parse::<f64>().unwrap() * 1e3
        );
    }

    sla_panels_agree_with_the_collector(&prom, &http, &collector).await;
}

/// The collector's figures named by an SLA panel's metric: (metric, how to read the API's).
const SLA_METRICS: [&str; 6] = [
    "lookout_check_availability_ratio",
    "lookout_check_error_budget_remaining_seconds",
    "lookout_check_error_budget_remaining_ratio",
    "lookout_check_burn_rate",
    "lookout_check_availability_objective_ratio",
    "lookout_check_up",
];

/// How long after a scrape's start the collector may compute the figures it answers.
const SCRAPE_SKEW_US: i64 = 100_000;

async fn availability(
    http: &reqwest::Client,
    collector: &str,
    check: &str,
    window: &str,
    to_us: i64,
) -> Value {
    let from_us = to_us - seconds(window) * 1_000_000;
    let url =
        format!("{collector}/api/v1/checks/{check}/availability?from_us={from_us}&to_us={to_us}");
    common::get_json(http, &url, TOKEN).await
}

/// The API's figure an SLA metric shows.
fn api_figure(metric: &str, api: &Value) -> f64 {
    let f = |k: &str| api[k].as_f64().unwrap_or_else(|| panic!("{k} in {api}"));
    match metric {
        "lookout_check_availability_ratio" => f("availability"),
        "lookout_check_error_budget_remaining_seconds" => f("error_budget_remaining_seconds"),
        "lookout_check_error_budget_remaining_ratio" => {
            f("error_budget_remaining_seconds") / f("error_budget_seconds")
        }
        "lookout_check_burn_rate" => f("burn_rate"),
        "lookout_check_availability_objective_ratio" => f("target"),
        _ => match api["current"]["state"].as_str() {
            Some("down") => 0.0,
            Some("up") => 1.0,
            _ => 2.0,
        },
    }
}

/// Every SLA panel's query, at one instant, against `/api/v1/checks/{check}/availability` for
/// the same window ending at the scrape the panel's figure came from.
async fn sla_panels_agree_with_the_collector(prom: &Prom, http: &reqwest::Client, collector: &str) {
    let (_, sla) = dashboards()
        .into_iter()
        .find(|(_, d)| d["uid"] == "lookout-sla")
        .unwrap();
    // Pinned, so every query sees the same scrape: the newest one before it.
    let at = now_s() - 2.0;
    let scraped = prom
        .instant("timestamp(lookout_collector_stored_results)", at)
        .await;
    let scraped_s: f64 = scraped[0]["value"][1].as_str().unwrap().parse().unwrap();
    let to_us = (scraped_s * 1e6).round() as i64;
    let mut compared = 0;
    for (where_, expr, _, _) in queries(&sla) {
        if where_.starts_with("annotation") {
            continue;
        }
        let metric = SLA_METRICS
            .iter()
            .find(|m| expr.contains(*m))
            .unwrap_or_else(|| {
                panic!("SLA {where_}: {expr} shows none of the collector's SLA figures")
            });
        let q = expr.replace("$check", ".+");
        for sample in prom.instant(&q, at).await {
            let check = sample["metric"]["check"].as_str().unwrap().to_owned();
            let window = sample["metric"]["window"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| {
                    expr.split("window=\"")
                        .nth(1)
                        .and_then(|r| r.split('"').next())
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| "5m".to_owned());
            let shown: f64 = sample["value"][1].as_str().unwrap().parse().unwrap();
            // Prometheus stamps a sample with the scrape's start; the collector computes it a
            // moment later, on the request. So the panel's figure lies between the API's for
            // windows ending at the scrape's start and a little after it.
            let mut bounds = Vec::new();
            for late_us in [0, SCRAPE_SKEW_US] {
                let api = availability(http, collector, &check, &window, to_us + late_us).await;
                bounds.push(api_figure(metric, &api));
            }
            let (lo, hi) = (bounds[0].min(bounds[1]), bounds[0].max(bounds[1]));
            let slack = 1e-9 * hi.abs().max(1.0);
            assert!(
                shown >= lo - slack && shown <= hi + slack,
                "SLA {where_}, {check} over {window}: the panel shows {shown}, the collector's API {lo}..{hi} for the window ending at the scrape"
            );
            compared += 1;
        }
    }
    println!("{compared} SLA figures agree with the collector's API");
    assert!(
        compared >= 2 * 8,
        "too few SLA figures compared: {compared}"
    );
}

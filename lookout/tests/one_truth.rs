//! One truth for every SLA figure, in `lookout up`: an outage half inside a maintenance window,
//! for a check with its own SLO (99.9 % over 30 days) beside one with the defaults (99.99 % over
//! 90 days). The collector's API, `/metrics`, the status page's JSON, the monthly report and the
//! alerter's burn rate give the same availability, downtime and remaining budget for the same
//! window, the maintenance half left out of all of them; and each check's budget, burn rate and
//! burn-rate thresholds come from its own SLO.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::wait_until;
use serde_json::{Value, json};

const ADMIN: &str = "one-truth-admin";
const TOKEN: &str = "one-truth-token";
const ALERT_TOKEN: &str = "one-truth-alerting";
const STATUS_TOKEN: &str = "one-truth-status";
const HOUR_US: i64 = 3_600_000_000;

fn config(dir: &Path) -> PathBuf {
    let platform = common::platform_yaml(ADMIN, "truth-key", [1, 1, 1, 1], false);
    let check = |name: &str, slo: &str| {
        format!(
            r#"  - name: {name}
    interval: 2s
    timeout: 1s
{slo}    steps:
      - url: "{{{{gateway}}}}/1.x/search?q=the"
        headers: {{ X-Api-Key: truth-key }}
        assert:
          - {{ type: status, equals: 200 }}
"#
        )
    };
    let text = format!(
        r#"data_dir: {data}
{platform}collector:
  listen: 127.0.0.1:0
  token: {TOKEN}
variables:
  gateway: http://unused
checks:
{search}{artist}alerting:
  listen: 127.0.0.1:0
  token: {ALERT_TOKEN}
  notifiers:
    log: {{ type: log }}
  checks:
    - name: search-burn
      description: The search burn rate over the last hour.
      target: burn_rate(search, 1h)
      warn: 1000000
      interval: 2s
      allow_no_data: true
status_page:
  listen: 127.0.0.1:0
  admin_token: {STATUS_TOKEN}
  refresh_every: 1s
  regions: {{ eu-west: Europe, us-east: North America, ap-south: Asia Pacific }}
  groups:
    - name: Discovery
      components:
        - {{ name: Search, check: search }}
        - {{ name: Artist pages, check: artist-view }}
"#,
        data = dir.join("data").display(),
        search = check(
            "search",
            "    slo: { availability_target: 99.9%, window: 30d }\n"
        ),
        artist = check("artist-view", ""),
    );
    let path = dir.join("lookout.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

struct Suite {
    http: reqwest::Client,
    collector: String,
    alerter: String,
    page: String,
}

impl Suite {
    async fn api(&self, path: &str) -> Value {
        common::get_json(&self.http, &format!("{}{path}", self.collector), TOKEN).await
    }

    async fn figures(&self, check: &str, from_us: i64, to_us: i64) -> Value {
        let f = self
            .api(&format!(
                "/api/v1/checks/{check}/availability?from_us={from_us}&to_us={to_us}"
            ))
            .await;
        assert!(f["availability"].is_number(), "{f}");
        f
    }

    async fn public(&self, path: &str) -> Value {
        let text = lookout_testkit::http::get_ok(&self.http, format!("{}{path}", self.page)).await;
        serde_json::from_str(&text).unwrap()
    }

    async fn alerter_check(&self, id: &str) -> Value {
        common::get_json(
            &self.http,
            &format!("{}/api/checks/{id}", self.alerter),
            ALERT_TOKEN,
        )
        .await
    }

    /// `/metrics` samples of `check` over `window`, by metric name.
    async fn metrics(&self, check: &str, window: &str) -> std::collections::BTreeMap<String, f64> {
        let labels = format!("{{check=\"{check}\",window=\"{window}\"}}");
        common::samples(&self.http, &self.collector, "lookout_check_")
            .await
            .into_iter()
            .filter_map(|(series, v)| {
                let name = series.strip_suffix(&labels)?;
                Some((format!("lookout_check_{name}"), v))
            })
            .collect()
    }
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64()
        .unwrap_or_else(|| panic!("`{k}` is not a number in {v}"))
}

/// Equal to the microsecond (the API's seconds have six decimals).
fn same(what: &str, a: f64, b: f64) {
    assert!((a - b).abs() < 2e-6, "{what}: {a} and {b} differ");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_surface_gives_the_same_figures_with_maintenance_left_out_and_each_checks_own_slo() {
    let dir = tempfile::tempdir().unwrap();
    let (_up, components) = common::up(&config(dir.path()));
    let s = Suite {
        http: reqwest::Client::new(),
        collector: components["collector"].0.clone(),
        alerter: components["alerting"].0.clone(),
        page: components["status-page"].0.clone(),
    };
    let gateway_admin = components["gateway#1"].1.clone();
    wait_until("both checks up", Duration::from_secs(60), || async {
        let states = s.api("/api/v1/states").await;
        states["checks"]
            .as_array()
            .is_some_and(|c| c.len() == 2 && c.iter().all(|c| c["state"] == "up"))
    })
    .await;

    // Each check's SLO is the collector's, served with it.
    let slos = s.api("/api/v1/slos").await;
    let slo = |check: &str| {
        slos["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == check)
            .unwrap()["slo"]
            .clone()
    };
    assert_eq!(
        slo("search"),
        json!({"availability_target": 0.999, "latency_objective_ms": 800.0,
            "window_seconds": 2_592_000, "maintenance_in_sla": false})
    );
    assert_eq!(slo("artist-view")["availability_target"], 0.9999);

    // Maintenance from 12 s from now for 23 s; the platform down from 2 s for 20 s: the second
    // half of the outage is inside the window.
    let now = chrono::Utc::now();
    let at = |s: i64| (now + chrono::Duration::seconds(s)).to_rfc3339();
    let r = s
        .http
        .post(format!("{}/api/v1/maintenance", s.collector))
        .bearer_auth(TOKEN)
        .json(
            &json!({"name": "Index rebuild", "checks": ["search", "artist-view"],
            "starts": at(12), "ends": at(35), "message": "Search may be unavailable."}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = s
        .http
        .post(format!("{gateway_admin}/admin/faults"))
        .bearer_auth(ADMIN)
        .json(&json!({"kind": "down", "duration": "20s"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    // The status page announces the window while it lasts, and holds the pages meanwhile.
    wait_until(
        "the status page shows the maintenance in progress",
        Duration::from_secs(20),
        || async {
            s.public("/api/v2/scheduled-maintenances/active.json").await["scheduled_maintenances"]
                .as_array()
                .is_some_and(|m| m.len() == 1 && m[0]["name"] == "Index rebuild")
        },
    )
    .await;
    // Over: the fault, the window, and both checks up again.
    tokio::time::sleep(Duration::from_secs(34)).await;
    wait_until("both checks up again", Duration::from_secs(30), || async {
        let states = s.api("/api/v1/states").await;
        states["checks"]
            .as_array()
            .is_some_and(|c| c.iter().all(|c| c["state"] == "up"))
            && states["maintenance"].as_array().is_some_and(Vec::is_empty)
    })
    .await;

    // The collector's API over the last hour: half the outage is maintenance, left out.
    let end = chrono::Utc::now().timestamp_micros();
    let api = s.figures("search", end - HOUR_US, end).await;
    let down = f(&api, "down_seconds");
    let in_maintenance = f(&api, "maintenance_down_seconds");
    let incidents = s
        .api(&format!(
            "/api/v1/checks/search/incidents?from_us={}&to_us={end}",
            end - HOUR_US
        ))
        .await;
    let outage: f64 = incidents["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| f(i, "down_seconds"))
        .sum();
    println!(
        "outage {outage:.3} s: {down:.3} s counted, {in_maintenance:.3} s inside the maintenance window ({} s)",
        f(&api, "maintenance_seconds")
    );
    assert!(outage >= 14.0, "the outage lasted {outage} s: {incidents}");
    same(
        "downtime counted + inside maintenance",
        down + in_maintenance,
        outage,
    );
    assert!(
        down >= 5.0 && in_maintenance >= 5.0,
        "the outage is half inside the maintenance: {api}"
    );
    same("maintenance_seconds", f(&api, "maintenance_seconds"), 23.0);
    same(
        "counted_seconds",
        f(&api, "counted_seconds"),
        f(&api, "window_seconds") - f(&api, "no_data_seconds") - 23.0,
    );
    same(
        "availability",
        f(&api, "availability"),
        1.0 - down / f(&api, "counted_seconds"),
    );
    same(
        "error budget",
        f(&api, "error_budget_seconds"),
        0.001 * f(&api, "counted_seconds"),
    );

    // The same outage, the other SLO: a tenth of the budget, ten times the burn.
    let other = s.figures("artist-view", end - HOUR_US, end).await;
    assert_eq!(other["target"], 0.9999);
    same(
        "artist-view's budget",
        f(&other, "error_budget_seconds"),
        0.0001 * f(&other, "counted_seconds"),
    );
    let ratio = f(&other, "burn_rate") / f(&api, "burn_rate");
    let bad = |v: &Value| f(v, "down_seconds") / f(v, "counted_seconds");
    assert!(
        (ratio - 10.0 * bad(&other) / bad(&api)).abs() < 1e-6,
        "burn rates: {ratio}"
    );

    // `/metrics`, scraped between two API reads of the window ending then: its figures lie
    // between theirs (the collector computes a scrape on the request), the downtime exactly.
    let before = chrono::Utc::now().timestamp_micros();
    let scraped = s.metrics("search", "1h").await;
    let after = chrono::Utc::now().timestamp_micros();
    let (lo, hi) = (
        s.figures("search", before - HOUR_US, before).await,
        s.figures("search", after - HOUR_US, after).await,
    );
    for (metric, key) in [
        ("lookout_check_availability_ratio", "availability"),
        (
            "lookout_check_error_budget_remaining_seconds",
            "error_budget_remaining_seconds",
        ),
        ("lookout_check_downtime_seconds", "down_seconds"),
        ("lookout_check_maintenance_seconds", "maintenance_seconds"),
    ] {
        let shown = scraped[metric];
        let (a, b) = (f(&lo, key), f(&hi, key));
        assert!(
            shown >= a.min(b) - 1e-9 && shown <= a.max(b) + 1e-9,
            "{metric}: /metrics {shown}, the API {a}..{b}"
        );
    }
    same(
        "downtime on /metrics",
        scraped["lookout_check_downtime_seconds"],
        down,
    );

    // The status page's JSON: the 90 days it shows, as the collector answers for them.
    wait_until(
        "the status page refreshed after the window",
        Duration::from_secs(20),
        || async {
            let u = s.public("/api/v2/uptime.json").await;
            u["components"][0]["to_us"]
                .as_i64()
                .is_some_and(|t| t > end)
        },
    )
    .await;
    let uptime = s.public("/api/v2/uptime.json").await;
    let search = &uptime["components"][0];
    assert_eq!(search["id"], "search");
    let shown = s
        .figures(
            "search",
            search["from_us"].as_i64().unwrap(),
            search["to_us"].as_i64().unwrap(),
        )
        .await;
    same(
        "page availability",
        f(search, "availability"),
        f(&shown, "availability"),
    );
    same("page downtime", f(search, "downtime_seconds"), down);
    same("page maintenance", f(search, "maintenance_seconds"), 23.0);
    same(
        "page budget left",
        f(search, "error_budget_remaining_seconds"),
        f(&shown, "error_budget_remaining_seconds"),
    );
    assert_eq!(search["target"], 0.999);

    // The month's report (JSON): its window, as the collector answers for it.
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let report = s.public(&format!("/reports/{month}.json")).await;
    let row = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["component"] == "search")
        .unwrap();
    let (from_us, to_us) = (
        report["from_us"].as_i64().unwrap(),
        report["to_us"].as_i64().unwrap(),
    );
    let month_figures = s.figures("search", from_us, to_us).await;
    same(
        "report availability",
        f(row, "availability"),
        f(&month_figures, "availability"),
    );
    same("report downtime", f(row, "downtime_minutes") * 60.0, down);
    same(
        "report maintenance",
        f(row, "maintenance_minutes") * 60.0,
        f(&month_figures, "maintenance_seconds"),
    );
    same(
        "report budget left",
        f(row, "error_budget_remaining_minutes") * 60.0,
        f(&month_figures, "error_budget_remaining_seconds"),
    );
    assert_eq!(row["target"], 0.999);

    // The alerter's burn rate: its last evaluation's window, as the collector answers for it.
    wait_until(
        "the alerter evaluated the burn rate after the window",
        Duration::from_secs(20),
        || async {
            s.alerter_check("search-burn").await["last_check_us"]
                .as_i64()
                .is_some_and(|t| t > end)
        },
    )
    .await;
    let burn = s.alerter_check("search-burn").await;
    let t = burn["last_check_us"].as_i64().unwrap();
    let at_t = s.figures("search", t - HOUR_US, t).await;
    same(
        "alerter burn rate",
        f(&burn, "value"),
        f(&at_t, "burn_rate"),
    );
    same("downtime the alerter saw", f(&at_t, "down_seconds"), down);

    // Each check's generated burn-rate alerts scale to its own SLO window.
    for (id, threshold) in [("search-burn-1h", 14.4), ("artist-view-burn-1h", 43.2)] {
        let c = s.alerter_check(id).await;
        assert!(
            (f(&c, "error") - threshold).abs() < 1e-6,
            "{id}: ERROR at {}, not {threshold}",
            c["error"]
        );
    }
    println!(
        "search: availability {:.6} over the hour, {:.3} s down counted, budget left {:.3} s; artist-view: budget {:.3} s, burn {:.1}x search's",
        f(&api, "availability"),
        down,
        f(&api, "error_budget_remaining_seconds"),
        f(&other, "error_budget_seconds"),
        ratio
    );
}

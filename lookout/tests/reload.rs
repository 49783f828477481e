//! The config changed under a running `lookout up`, during an outage: SIGHUP applies it
//! without a restart. A new probe check is probed in every region; an alert check's changed
//! threshold applies; a subscription removed from `subscribe` is told nothing of the next
//! problem; the open problem stays open, is not paged again, and its resolve still reaches
//! everyone it paged; the status page takes its new title. An invalid config is refused with its errors (file, line, column),
//! through `POST /-/reload` too, and everything goes on as before. Each component takes
//! `POST /-/reload` with its own token; a check removed stops being probed and its history
//! stays. The reload gauges follow Prometheus' convention.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{receiver, wait_until};
use lookout_testkit::wait_for;
use serde_json::{Value, json};

const ADMIN: &str = "reload-admin";
const TOKEN: &str = "reload-collector-token";
const ALERT_TOKEN: &str = "reload-alert-token";
/// A read-only token of the first config, dropped by the second.
const READER: &str = "reload-read-only-token";

struct Version<'a> {
    hook_a: &'a str,
    hook_b: &'a str,
    /// Whether `artist-view` is a check.
    artist_view: bool,
    /// The error threshold of the `search-down-twice` alert check.
    error: f64,
    /// Whether hook-b hears about the generated checks.
    b_subscribed: bool,
}

fn write(path: &Path, data: &Path, v: &Version<'_>) {
    let artist = if v.artist_view {
        r#"  - name: artist-view
    interval: 2s
    timeout: 2s
    steps:
      - url: "{{gateway}}/1.x/artists/1"
        headers: { X-Api-Key: reload-key }
        assert:
          - { type: status, equals: 200 }
"#
    } else {
        ""
    };
    let b_sub = if v.b_subscribed {
        "    - { notifier: hook-b }\n"
    } else {
        ""
    };
    let suite = common::suite_yaml(data, ADMIN, "reload-key", TOKEN, "2s");
    let text = format!(
        r#"{suite}{artist}alerting:
  listen: 127.0.0.1:0
  token: {ALERT_TOKEN}
{readers}  confirm_after: 2s
  notifiers:
    hook-a: {{ type: webhook, url: "{a}" }}
    hook-b: {{ type: webhook, url: "{b}" }}
  subscribe:
    - {{ notifier: hook-a }}
{b_sub}  checks:
    - id: search-down-twice
      name: search down (threshold check)
      target: "down(search)"
      error: {error}
      allow_no_data: true
      interval: 1s
      subscriptions:
        - {{ notifier: hook-a }}
status_page:
  listen: 127.0.0.1:0
  title: {title}
  groups:
    - name: Discovery
      components:
        - {{ name: Search, check: search }}
"#,
        title = if v.artist_view {
            "Platform status (after)"
        } else {
            "Platform status (before)"
        },
        a = v.hook_a,
        b = v.hook_b,
        error = v.error,
        readers = if v.artist_view {
            String::new()
        } else {
            format!("  read_tokens: [{READER}]\n")
        },
    );
    std::fs::write(path, text).unwrap();
}

fn hup(pid: u32) {
    let ok = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

async fn get(http: &reqwest::Client, url: &str, token: &str) -> Value {
    let r = http.get(url).bearer_auth(token).send().await.unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.json().await.unwrap()
}

/// The value of one metric at `url`/metrics.
async fn gauge(http: &reqwest::Client, url: &str, name: &str) -> f64 {
    common::samples(http, url, name)
        .await
        .into_iter()
        .find(|(series, _)| series.is_empty())
        .unwrap_or_else(|| panic!("no {name} at {url}"))
        .1
}

async fn fault(http: &reqwest::Client, gateway_admin: &str, duration: &str) {
    let r = http
        .post(format!("{gateway_admin}/admin/faults"))
        .bearer_auth(ADMIN)
        .json(&json!({"kind": "down", "duration": duration}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
}

/// `POST /-/reload` on a component's listener, with `token` (`None`: without one).
async fn reload(http: &reqwest::Client, url: &str, token: Option<&str>) -> reqwest::Response {
    let mut r = http.post(format!("{url}/-/reload"));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().await.unwrap()
}

async fn open_problems(http: &reqwest::Client, alerter: &str) -> Vec<Value> {
    get(
        http,
        &format!("{alerter}/api/problems?open=true"),
        ALERT_TOKEN,
    )
    .await
    .as_array()
    .unwrap()
    .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_applies_a_new_config_mid_outage_and_an_invalid_one_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (url_a, hook_a) = receiver().await;
    let (url_b, hook_b) = receiver().await;
    let path = dir.path().join("lookout.yaml");
    let data = dir.path().join("data");
    let mut v = Version {
        hook_a: &url_a,
        hook_b: &url_b,
        artist_view: false,
        error: 2.0,
        b_subscribed: true,
    };
    write(&path, &data, &v);
    let (up, components) = common::up(&path);
    let pid = up.0.id();
    let alerter = components["alerting"].0.clone();
    let collector = components["collector"].0.clone();
    let gateway_admin = components["gateway#1"].1.clone();
    let http = reqwest::Client::new();
    let started = gauge(
        &http,
        &alerter,
        "lookout_config_last_reload_success_timestamp_seconds",
    )
    .await;
    assert_eq!(
        gauge(&http, &collector, "lookout_config_last_reload_successful").await,
        1.0
    );
    wait_until("search-down evaluated", Duration::from_secs(60), || async {
        get(
            &http,
            &format!("{alerter}/api/checks/search-down"),
            ALERT_TOKEN,
        )
        .await["last_check"]
            .is_string()
    })
    .await;

    // An outage pages both hooks.
    fault(&http, &gateway_admin, "25s").await;
    let problem = wait_for("the outage paged both", Duration::from_secs(30), || async {
        let open = open_problems(&http, &alerter).await;
        let p = open.iter().find(|p| p["lead"] == "search-down")?;
        let id = p["id"].as_str()?.to_owned();
        (hook_a.of("trigger", &id) == 1 && hook_b.of("trigger", &id) == 1).then_some(id)
    })
    .await;
    assert_eq!(
        get(
            &http,
            &format!("{alerter}/api/checks/search-down-twice"),
            ALERT_TOKEN
        )
        .await["state"],
        "OK",
        "down(search) is 1, below the error threshold of 2"
    );

    let read_only = || async {
        http.get(format!("{alerter}/api/problems"))
            .bearer_auth(READER)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(read_only().await, 200);

    // The new config, mid-outage: a new probe check, the threshold at 1, hook-b unsubscribed,
    // the read-only token dropped.
    v.artist_view = true;
    v.error = 1.0;
    v.b_subscribed = false;
    write(&path, &data, &v);
    hup(pid);
    wait_until(
        "the changed threshold applies",
        Duration::from_secs(20),
        || async {
            get(
                &http,
                &format!("{alerter}/api/checks/search-down-twice"),
                ALERT_TOKEN,
            )
            .await["state"]
                == "ERROR"
        },
    )
    .await;
    let reloaded = gauge(
        &http,
        &alerter,
        "lookout_config_last_reload_success_timestamp_seconds",
    )
    .await;
    assert!(reloaded > started, "{reloaded} > {started}");
    assert_eq!(
        read_only().await,
        403,
        "a dropped read-only token is revoked at once"
    );
    // The status page's text follows.
    let page = components["status-page"].0.clone();
    wait_until(
        "the status page's new title",
        Duration::from_secs(20),
        || async {
            reqwest::get(&page)
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
                .contains("Platform status (after)")
        },
    )
    .await;
    assert_eq!(
        gauge(&http, &page, "lookout_config_last_reload_successful").await,
        1.0
    );
    // The open problem is kept, and not paged again.
    let open = open_problems(&http, &alerter).await;
    assert!(open.iter().any(|p| p["id"] == problem.as_str()), "{open:?}");
    // The new check is probed in every region.
    wait_until(
        "artist-view probed in every region",
        Duration::from_secs(30),
        || async {
            let r = get(
                &http,
                &format!("{collector}/api/v1/results?check=artist-view&limit=100"),
                TOKEN,
            )
            .await;
            let regions: std::collections::BTreeSet<String> = r["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["region"].as_str().unwrap().to_owned())
                .collect();
            regions.len() == 3
        },
    )
    .await;

    // The fault clears: the resolve reaches both, hook-b included (it was paged).
    wait_until(
        "the resolve reached both",
        Duration::from_secs(45),
        || async { hook_a.of("resolve", &problem) == 1 && hook_b.of("resolve", &problem) == 1 },
    )
    .await;
    assert_eq!(
        hook_a.of("trigger", &problem),
        1,
        "the reload repeated no page"
    );
    assert_eq!(hook_b.of("trigger", &problem), 1);

    // An invalid config: refused, with its place; the running one stays.
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        good.replace(
            "interval: 2s\n    timeout: 2s\n    steps:\n      - url: \"{{gateway}}/1.x/artists",
            "interval: soon\n    timeout: 2s\n    steps:\n      - url: \"{{gateway}}/1.x/artists",
        ),
    )
    .unwrap();
    let r = reload(&http, &alerter, Some(ALERT_TOKEN)).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    let errors = body["errors"].as_array().unwrap();
    // Named at its file, line and column: the `interval: soon` of artist-view.
    let at = format!("{}:29:15: ", path.display());
    assert!(
        errors.iter().any(|e| {
            let e = e.as_str().unwrap();
            e.starts_with(&at) && e.contains("\"soon\" is not a duration")
        }),
        "{body}"
    );
    let r = reload(&http, &alerter, None).await;
    assert_eq!(r.status(), 401, "the reload needs the token");
    hup(pid);
    wait_until("the refusal counted", Duration::from_secs(10), || async {
        gauge(&http, &collector, "lookout_config_last_reload_successful").await == 0.0
    })
    .await;
    assert_eq!(
        gauge(&http, &alerter, "lookout_config_last_reload_successful").await,
        0.0
    );
    assert_eq!(
        gauge(
            &http,
            &alerter,
            "lookout_config_last_reload_success_timestamp_seconds"
        )
        .await,
        reloaded,
        "a refused reload is no success"
    );

    // Everything goes on as before: the next outage pages hook-a only (hook-b was removed).
    fault(&http, &gateway_admin, "20s").await;
    let second = wait_for(
        "the second outage paged hook-a",
        Duration::from_secs(30),
        || async {
            let open = open_problems(&http, &alerter).await;
            // One problem for the group: its lead may be artist-view's down check now.
            let p = open.iter().find(|p| p["group_key"] == "group:platform")?;
            let id = p["id"].as_str()?.to_owned();
            (id != problem && hook_a.of("trigger", &id) == 1).then_some(id)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        hook_b.of("trigger", &second),
        0,
        "a removed subscription is told nothing"
    );
    let r = get(
        &http,
        &format!("{collector}/api/v1/results?check=artist-view&limit=1"),
        TOKEN,
    )
    .await;
    assert_eq!(
        r["results"].as_array().unwrap().len(),
        1,
        "artist-view still probed"
    );
    // A valid config again: accepted through the API.
    std::fs::write(&path, good).unwrap();
    let r = reload(&http, &alerter, Some(ALERT_TOKEN)).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    assert_eq!(
        gauge(&http, &alerter, "lookout_config_last_reload_successful").await,
        1.0
    );

    // Every component takes `POST /-/reload`, each with its own token: here artist-view is
    // removed through the collector's. Its agents stop probing it; its history stays.
    v.artist_view = false;
    write(&path, &data, &v);
    let unauthorized = reload(&http, &collector, Some("not-the-token")).await;
    assert_eq!(unauthorized.status(), 403);
    let r = reload(&http, &collector, Some(TOKEN)).await;
    assert_eq!(r.status(), 200);
    let summary = r.json::<Value>().await.unwrap()["summary"]
        .as_str()
        .unwrap()
        .to_owned();
    for region in ["eu-west", "us-east", "ap-south"] {
        assert!(
            summary.contains(&format!("probe@{region}: 0 added, 0 changed, 1 removed")),
            "{summary}"
        );
    }
    let last_probed = || async {
        let r = get(
            &http,
            &format!("{collector}/api/v1/results?check=artist-view&limit=100"),
            TOKEN,
        )
        .await;
        let results = r["results"].as_array().unwrap().clone();
        let newest = results
            .iter()
            .filter_map(|x| x["started_at_us"].as_i64())
            .max();
        (results.len(), newest)
    };
    let (kept, newest) = last_probed().await;
    assert!(kept > 0, "the removed check's results are still there");
    // Three of its 2 s intervals: a check still scheduled anywhere would have run again.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (_, newest_later) = last_probed().await;
    assert!(
        newest_later <= newest.map(|n| n + 1_000_000),
        "no agent probes artist-view once it is removed: {newest:?} then {newest_later:?}"
    );
    let availability = get(
        &http,
        &format!("{collector}/api/v1/checks/artist-view/availability?window=1h"),
        TOKEN,
    )
    .await;
    assert!(
        availability["availability"].is_number(),
        "the removed check's figures still answer: {availability}"
    );
    // The status page's and an agent's own reload routes, with their tokens.
    let agent = components["probe@eu-west"].0.clone();
    for (url, token) in [(&page, TOKEN), (&agent, TOKEN)] {
        assert_eq!(reload(&http, url, None).await.status(), 401, "{url}");
        let r = reload(&http, url, Some(token)).await;
        assert_eq!(r.status(), 200, "{url}: {:?}", r.text().await);
    }
    // The agent's metrics carry its region and id as labels.
    let agent_gauge = common::samples(&http, &agent, "lookout_config_last_reload_successful").await;
    assert!(
        agent_gauge.len() == 1 && agent_gauge[0].1 == 1.0,
        "{agent_gauge:?}"
    );
}

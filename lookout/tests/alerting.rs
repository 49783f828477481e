//! Paging end to end: `lookout up` runs the platform, the collector and three regions'
//! agents; `lookout alerting` runs alone beside it (so it can be killed mid-outage), paging
//! a webhook receiver and a real SMTP server (aiosmtpd). Faults go through the platform's own
//! fault API and region links, as an outage would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)] // a test may panic; process waits are synchronous

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

use common::{LOOKOUT, Proc, up};
use common::{receiver, wait_until};
use lookout_testkit::free_port;
use lookout_testkit::peers::Smtp;

const TOKEN: &str = "page-token";
const ALERT_TOKEN: &str = "page-alert-token";
const ADMIN: &str = "page-admin";

fn subjects(smtp: &Smtp) -> Vec<String> {
    smtp.messages()
        .iter()
        .map(|m| m["headers"]["Subject"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn config(dir: &Path, hook: &str, smtp_port: u16, alerting_port: u16) -> PathBuf {
    let platform = common::platform_yaml(ADMIN, "page-key", [1, 1, 1, 1], false);
    let text = format!(
        r#"data_dir: {data}
{platform}collector:
  listen: 127.0.0.1:0
  token: {TOKEN}
variables:
  gateway: http://unused
checks:
  - name: search
    interval: 10s
    timeout: 3s
    slo: {{ latency_objective: 800ms }}
    steps:
      - url: "{{{{gateway}}}}/1.x/search?q=the"
        headers: {{ X-Api-Key: page-key }}
        assert:
          - {{ type: status, equals: 200 }}
alerting:
  enabled: false           # `lookout alerting` runs it, apart, so that it can be killed
  listen: 127.0.0.1:{alerting_port}
  token: {ALERT_TOKEN}
  notifiers:
    hook: {{ type: webhook, url: "{hook}", hmac_secret: page-hmac }}
    mail: {{ type: email, host: 127.0.0.1, port: {smtp_port}, tls: none, from: lookout@example.com, to: [oncall@example.com] }}
  subscribe:
    - {{ notifier: hook }}
    - {{ notifier: mail, ignore_warn: true }}
"#,
        data = dir.join("data").display()
    );
    let path = dir.join("lookout.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn alerting(config: &Path, collector: &str, log: &Path) -> Proc {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = Command::new(LOOKOUT)
        .args(["alerting", "--config"])
        .arg(config)
        .args(["--collector", collector])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Proc(child)
}

struct World {
    http: reqwest::Client,
    alerter: String,
    gateway_admin: String,
}

impl World {
    async fn fault(&self, body: Value) {
        let r = self
            .http
            .post(format!("{}/admin/faults", self.gateway_admin))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{:?}", r.text().await);
    }

    async fn check(&self, id: &str) -> Value {
        match self
            .http
            .get(format!("{}/api/checks/{id}", self.alerter))
            .bearer_auth(ALERT_TOKEN)
            .send()
            .await
        {
            Ok(r) if r.status() == 200 => r.json().await.unwrap(),
            _ => Value::Null,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn outages_page_blips_and_one_region_do_not_and_every_page_is_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let (hook_url, received) = receiver().await;
    let smtp = Smtp::start().await;
    let alerting_port = free_port();
    let config = config(dir.path(), &hook_url, smtp.port, alerting_port);
    let (_up, components) = up(&config);
    let collector = components["collector"].0.clone();
    let log = dir.path().join("alerting.log");
    let mut alerter = alerting(&config, &collector, &log);
    let world = World {
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
        alerter: format!("http://127.0.0.1:{alerting_port}"),
        gateway_admin: components["gateway#1"].1.clone(),
    };
    let link_admin = components["link@eu-west"].1.clone();

    // Every region reports, and the alerter has seen the platform healthy.
    wait_until(
        "the alerter evaluates search-down",
        Duration::from_secs(60),
        || async { world.check("search-down").await["last_check"].is_string() },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(world.check("search-down").await["state"], "OK");

    // 1. A 6 s blip of the whole platform: measured, but nobody is paged.
    world.fault(json!({"kind": "down", "duration": "6s"})).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(
        received.pages().is_empty(),
        "a 6 s blip paged: {:?}",
        received.all()
    );

    // 2. One region cut off for 40 s: regional trouble, never a page.
    let r = world
        .http
        .post(format!("{link_admin}/admin/link"))
        .bearer_auth(ADMIN)
        .json(&json!({"cut": "reset"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_secs(40)).await;
    let r = world
        .http
        .delete(format!("{link_admin}/admin/link"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        received.pages().is_empty(),
        "one region alone paged: {:?}",
        received.all()
    );
    assert!(
        subjects(&smtp).is_empty(),
        "mail sent: {:?}",
        subjects(&smtp)
    );

    // 3. A full outage pages (webhook and mail) within seconds.
    world
        .fault(json!({"kind": "down", "duration": "60s"}))
        .await;
    let outage_start = Instant::now();
    let to_page = wait_until("a page for the outage", Duration::from_secs(30), || async {
        !received.pages().is_empty()
    })
    .await;
    let page = received.pages()[0].clone();
    let problem = page["problem_id"].as_str().unwrap().to_owned();
    assert_eq!(page["check_id"], "search-down", "{page}");
    assert_eq!(page["state"], "ERROR", "{page}");
    assert!(
        page["regions"].as_array().unwrap().len() >= 2,
        "a page says where: {page}"
    );
    assert!(page["reason"].is_string(), "a page says what broke: {page}");
    wait_until("the page by mail", Duration::from_secs(15), || async {
        subjects(&smtp)
            .iter()
            .any(|s| s.starts_with("[ERROR]") && s.contains("search"))
    })
    .await;
    eprintln!("outage paged after {to_page:?}");

    // A silence started after the page, and the alerter killed and restarted mid-outage:
    // the page is not repeated and the resolve still comes.
    let r = world
        .http
        .post(format!("{}/api/silences", world.alerter))
        .bearer_auth(ALERT_TOKEN)
        .json(&json!({"matchers": ["group:platform"], "duration": "10m", "created_by": "test", "comment": "mid-outage"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    alerter.kill_now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _alerter = alerting(&config, &collector, &log);
    let until_end = Duration::from_secs(60).saturating_sub(outage_start.elapsed());
    tokio::time::sleep(until_end).await;
    let to_resolve = wait_until("the resolve", Duration::from_secs(30), || async {
        received.of("resolve", &problem) == 1
    })
    .await;
    eprintln!("outage resolved {to_resolve:?} after it ended");
    wait_until("the resolve by mail", Duration::from_secs(15), || async {
        subjects(&smtp).iter().any(|s| s.starts_with("[RESOLVED]"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(received.of("trigger", &problem), 1, "{:?}", received.all());
    assert_eq!(received.of("resolve", &problem), 1, "{:?}", received.all());
    let mails = subjects(&smtp);
    assert_eq!(
        mails.iter().filter(|s| s.starts_with("[ERROR]")).count(),
        1,
        "{mails:?}"
    );

    // 4. While the silence lasts, a new outage records but pages nobody.
    let before = received.all().len();
    world
        .fault(json!({"kind": "down", "duration": "25s"}))
        .await;
    wait_until(
        "the silenced outage is recorded",
        Duration::from_secs(30),
        || async { world.check("search-down").await["state"] == "ERROR" },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let after: Vec<_> = received.all().into_iter().skip(before).collect();
    assert!(after.is_empty(), "a silenced outage notified: {after:?}");

    // 5. The platform slows beyond the 0.8 s objective: the latency check warns.
    world
        .fault(json!({"kind": "latency", "latency": "2s", "duration": "90s"}))
        .await;
    wait_until(
        "search-latency WARN or ERROR",
        Duration::from_secs(90),
        || async {
            let c = world.check("search-latency").await;
            c["state"] == "WARN" || c["state"] == "ERROR"
        },
    )
    .await;
    let c = world.check("search-latency").await;
    assert!(c["value"].as_f64().unwrap() > 0.8, "{c}");
}

//! The replacer in `lookout up` with the `local` provider: a killed instance and an instance
//! made unhealthy through the fault API are replaced while the gateway keeps serving (probes
//! see no failure) and the event trail shows every step with its timing; most of a service
//! failing at once replaces nothing and raises the "held" alert.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use common::wait_until;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ADMIN: &str = "replacer-admin-token";
const TOKEN: &str = "replacer-collector-token";

fn config(dir: &Path) -> PathBuf {
    let platform = common::platform_yaml(ADMIN, "page-key", [2, 1, 1, 1], true);
    let text = format!(
        r#"data_dir: {data}
{platform}collector:
  listen: 127.0.0.1:0
  token: {TOKEN}
variables:
  gateway: http://unused
checks:
  - name: search
    interval: 1s
    timeout: 900ms
    steps:
      - url: "{{{{gateway}}}}/1.x/search?q=the"
        headers: {{ X-Api-Key: page-key }}
        assert:
          - {{ type: status, equals: 200 }}
alerting:
  listen: 127.0.0.1:0
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

struct World {
    http: reqwest::Client,
    replacer: String,
    collector: String,
    gateway_admin: String,
    components: common::Components,
}

impl World {
    async fn events(&self) -> Vec<Value> {
        self.get_json(format!("{}/api/v1/events", self.replacer), None)
            .await
    }

    async fn events_of(&self, instance: &str) -> Vec<(String, Value)> {
        self.events()
            .await
            .into_iter()
            .filter(|e| e["instance"] == instance)
            .map(|e| (e["kind"].as_str().unwrap_or("").to_owned(), e))
            .collect()
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: String,
        token: Option<&str>,
    ) -> T {
        let mut r = self.http.get(url);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.unwrap().json().await.unwrap()
    }

    /// The kinds of the instance's events, in order.
    async fn trail(&self, instance: &str) -> Vec<String> {
        self.events_of(instance)
            .await
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    async fn replaced(&self, instance: &str) -> bool {
        self.trail(instance)
            .await
            .iter()
            .any(|k| k == "replacement_done")
    }

    async fn instances(&self) -> Vec<Value> {
        self.get_json(format!("{}/api/v1/instances", self.replacer), None)
            .await
    }

    async fn pool(&self, service: &str) -> Vec<String> {
        let v: Value = self
            .get_json(
                format!("{}/admin/upstreams", self.gateway_admin),
                Some(ADMIN),
            )
            .await;
        v["upstreams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == service)
            .unwrap()["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["url"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn fault(&self, admin_url: &str, body: Value) {
        let r = self
            .http
            .post(format!("{admin_url}/admin/faults"))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{:?}", r.text().await);
    }

    /// Failed probe results since `from_us`.
    async fn failed_probes(&self, from_us: i64) -> (usize, Vec<Value>) {
        let v: Value = self
            .get_json(
                format!("{}/api/v1/results?limit=100000", self.collector),
                Some(TOKEN),
            )
            .await;
        let all: Vec<Value> = v
            .as_array()
            .cloned()
            .or_else(|| v["results"].as_array().cloned())
            .unwrap()
            .into_iter()
            .filter(|r| r["started_at_us"].as_i64().unwrap() >= from_us)
            .collect();
        let failed = all
            .iter()
            .filter(|r| r["outcome"]["status"] != "ok")
            .cloned()
            .collect();
        (all.len(), failed)
    }
}

fn start(dir: &Path) -> (common::Proc, World) {
    let (proc, components) = common::up(&config(dir));
    let world = World {
        http: reqwest::Client::new(),
        replacer: components["replacer"].0.clone(),
        collector: components["collector"].0.clone(),
        gateway_admin: components["gateway#1"].1.clone(),
        components,
    };
    (proc, world)
}

/// The pid of the process listening on the URL's port.
async fn all_healthy(w: &World) -> bool {
    let list = w.instances().await;
    list.len() == 5 && list.iter().all(|i| i["state"] == "healthy")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_or_sick_instance_is_replaced_while_probes_see_no_failure() {
    let dir = tempfile::tempdir().unwrap();
    let (_up, w) = start(dir.path());
    wait_until("every instance healthy", Duration::from_secs(30), || {
        all_healthy(&w)
    })
    .await;
    let from_us = chrono::Utc::now().timestamp_micros();

    // Killed: the provider sees the process dead at once.
    let (old_url, _) = w.components["catalogue#1"].clone();
    let pid = common::pid_of(&old_url);
    let killed = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let took = wait_until("catalogue#1 replaced", Duration::from_secs(10), || {
        w.replaced("catalogue#1")
    })
    .await;
    println!(
        "killed -> replacement serving: {took:?} (since the kill: {:?})",
        killed.elapsed()
    );
    let trail = w.trail("catalogue#1").await;
    assert_eq!(
        trail,
        ["process_died", "replacement_started", "replacement_done"],
        "{trail:?}"
    );
    let done = &w.events_of("catalogue#1").await[2].1;
    assert!(done["duration_ms"].as_u64().unwrap() < 10_000, "{done}");
    let pool = w.pool("catalogue").await;
    assert_eq!(pool.len(), 2, "{pool:?}");
    assert!(
        !pool.contains(&old_url),
        "the dead instance left the pool: {pool:?}"
    );

    // Sick: the fault API closes catalogue#2's listener; three failed polls, then replaced.
    let (sick_url, sick_admin) = w.components["catalogue#2"].clone();
    w.fault(&sick_admin, json!({"kind": "down", "duration": "60s"}))
        .await;
    wait_until("catalogue#2 replaced", Duration::from_secs(15), || {
        w.replaced("catalogue#2")
    })
    .await;
    let trail = w.trail("catalogue#2").await;
    assert_eq!(
        trail,
        ["unhealthy", "replacement_started", "replacement_done"],
        "{trail:?}"
    );
    let unhealthy = &w.events_of("catalogue#2").await[0].1;
    assert!(
        unhealthy["message"]
            .as_str()
            .unwrap()
            .contains("3 failed healthchecks"),
        "{unhealthy}"
    );
    assert!(!w.pool("catalogue").await.contains(&sick_url));
    // The sick process was stopped, not left behind.
    assert!(
        std::net::TcpStream::connect(sick_admin.trim_start_matches("http://")).is_err(),
        "the replaced instance's process is gone"
    );

    // The collector has the trail too, for dashboards and the alerter.
    let collected: Value = w
        .get_json(format!("{}/api/v1/events", w.collector), Some(TOKEN))
        .await;
    let forwarded: Vec<(&str, &str)> = collected["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == "replacer")
        .map(|e| {
            (
                e["instance"].as_str().unwrap_or(""),
                e["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        forwarded.contains(&("catalogue#1", "replacement_done")),
        "{forwarded:?}"
    );

    // The gateway routed around both: not one probe failed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (runs, failed) = w.failed_probes(from_us).await;
    assert!(runs >= 10, "probes ran meanwhile: {runs}");
    println!(
        "{runs} probe runs during the replacements, {} failed",
        failed.len()
    );
    assert!(failed.is_empty(), "probe-visible failures: {failed:?}");
    wait_until(
        "every instance healthy again",
        Duration::from_secs(10),
        || all_healthy(&w),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn most_of_a_service_failing_at_once_replaces_nothing_and_raises_the_held_alert() {
    let dir = tempfile::tempdir().unwrap();
    let (_up, w) = start(dir.path());
    wait_until("every instance healthy", Duration::from_secs(30), || {
        all_healthy(&w)
    })
    .await;
    for name in ["catalogue#1", "catalogue#2"] {
        let (_, admin) = w.components[name].clone();
        w.fault(&admin, json!({"kind": "down", "duration": "20s"}))
            .await;
    }
    wait_until("the held alert", Duration::from_secs(10), || async {
        w.events().await.iter().any(|e| e["kind"] == "held")
    })
    .await;
    let held: Vec<Value> = w
        .get_json(format!("{}/api/v1/held", w.replacer), None)
        .await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["service"], "catalogue");
    assert!(
        held[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("replacer held: mass failure, suspect the checker or the network"),
        "{held:?}"
    );
    let health: Value = w
        .get_json(format!("{}/healthcheck", w.replacer), None)
        .await;
    assert_eq!(health["status"], "degraded");
    let metrics = lookout_testkit::http::get_text(&w.http, format!("{}/metrics", w.replacer)).await;
    assert!(
        metrics.contains("lookout_replacer_held{service=\"catalogue\"} 1"),
        "{metrics}"
    );
    // The alerter raises it for people, from the events the collector has.
    let alerter = w.components["alerting"].0.clone();
    let level = |alerter: String| {
        let http = w.http.clone();
        async move {
            let v: Value = lookout_testkit::http::get_json(
                &http,
                format!("{alerter}/api/checks/replacer-held"),
                TOKEN,
            )
            .await;
            v["state"].as_str().unwrap_or("").to_owned()
        }
    };
    wait_until(
        "the alerter's replacer-held check at ERROR",
        Duration::from_secs(20),
        || {
            let l = level(alerter.clone());
            async move { l.await == "ERROR" }
        },
    )
    .await;
    // While held, nothing is replaced; when the faults end, the hold lets go by itself.
    wait_until("the hold released", Duration::from_secs(40), || async {
        w.events().await.iter().any(|e| e["kind"] == "released")
    })
    .await;
    wait_until(
        "the alerter's replacer-held check back to OK",
        Duration::from_secs(25),
        || {
            let l = level(alerter.clone());
            async move { l.await == "OK" }
        },
    )
    .await;
    let kinds: Vec<String> = w
        .events()
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !kinds.iter().any(|k| k.starts_with("replacement")),
        "{kinds:?}"
    );
    wait_until(
        "every instance healthy again",
        Duration::from_secs(10),
        || all_healthy(&w),
    )
    .await;
}

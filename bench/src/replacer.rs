//! `lookout bench replacer`: how long from an instance's death to a healthy replacement serving
//! traffic, and what probes see meanwhile, in `lookout up` with the `local` provider.
//!
//! Two ways an instance goes, taking turns, so that both see the same machine:
//!
//! - **killed** (`kill -9`): the provider sees the process dead and the replacement starts at
//!   once;
//! - **hung** (the fault API closes the instance's listener; the process lives on): only the
//!   healthchecks can tell, so detection takes `failure_threshold` polls. This is the reference:
//!   what a load balancer or an orchestrator that only polls would need before it even starts.
//!
//! For each run: the time from the fault to `replacement_done` (the new instance healthy and in
//! the gateway's pool), and the probe results that failed from the fault to 10 s after the
//! replacement. Targets: serving within 10 s of the death, and no failed probe.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::alerting::{Listeners, start_up};

const ADMIN: &str = "bench-replacer-admin";
const TOKEN: &str = "bench-replacer-token";

#[derive(clap::Args)]
pub struct Args {
    /// Rounds; each kills one instance and hangs another.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// The replacer's healthcheck interval (failure threshold 3, timeout 1 s at most).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    interval: Duration,
}

fn config(dir: &Path, interval: Duration) -> String {
    let timeout = interval.min(Duration::from_secs(1)) / 2;
    format!(
        r#"data_dir: {data}
log: {{ level: error }}
platform:
  artists: 2000
  admin_token: {ADMIN}
  gateway:
    listen: 127.0.0.1:0
    admin_listen: 127.0.0.1:0
    api_keys: [bench-key]
    health_interval: 500ms
    health_timeout: 300ms
  catalogue: {{ instances: 2 }}
  mixes: {{ instances: 2 }}
  media: {{ instances: 2 }}
  analytics: {{ instances: 2 }}
collector:
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
        headers: {{ X-Api-Key: bench-key }}
        assert:
          - {{ type: status, equals: 200 }}
  - name: artist-view
    interval: 1s
    timeout: 900ms
    steps:
      - url: "{{{{gateway}}}}/1.x/artists/1/view"
        headers: {{ X-Api-Key: bench-key }}
        assert:
          - {{ type: status, equals: 200 }}
replacer:
  listen: 127.0.0.1:0
  health: {{ interval: {interval}, timeout: {timeout}, failure_threshold: 3, success_threshold: 1, grace: 5s }}
  brakes: {{ cooldown: 1s, max_per_hour: 100 }}
  replace_timeout: 20s
"#,
        data = dir.join("data").display(),
        interval = humantime::format_duration(interval),
        timeout = humantime::format_duration(timeout),
    )
}

struct Bench {
    http: reqwest::Client,
    listeners: Listeners,
    replacer: String,
    collector: lookout_api::client::CollectorClient,
}

impl Bench {
    async fn get(&self, url: String, token: Option<&str>) -> anyhow::Result<Value> {
        let mut r = self.http.get(&url);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        Ok(r.send().await?.error_for_status()?.json().await?)
    }

    async fn instances(&self) -> anyhow::Result<Vec<Value>> {
        let v = self
            .get(format!("{}/api/v1/instances", self.replacer), None)
            .await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    async fn all_healthy(&self) -> bool {
        self.instances()
            .await
            .is_ok_and(|l| l.len() == 8 && l.iter().all(|i| i["state"] == "healthy"))
    }

    async fn done(&self, id: &str) -> anyhow::Result<Option<Value>> {
        let events = self
            .get(format!("{}/api/v1/events", self.replacer), None)
            .await?;
        Ok(events.as_array().and_then(|e| {
            e.iter()
                .find(|e| e["instance"] == id && e["kind"] == "replacement_done")
                .cloned()
        }))
    }

    /// Failed probe results (and all results) that started in `[from_us, to_us)`.
    async fn probes(&self, from_us: i64, to_us: i64) -> anyhow::Result<(usize, usize)> {
        let all: Vec<lookout_model::probe::ProbeResult> = self
            .collector
            .results(None, 100_000)
            .await?
            .results
            .into_iter()
            .filter(|r| r.started_at_us >= from_us && r.started_at_us < to_us)
            .collect();
        let failed = all.iter().filter(|r| !r.outcome.is_ok()).count();
        Ok((all.len(), failed))
    }

    /// The pid of the process listening on the URL's port (`ss`, iproute2).
    async fn pid_of(url: &str) -> anyhow::Result<u32> {
        let port = url.rsplit(':').next().context("a port")?;
        let out = tokio::process::Command::new("ss")
            .args(["-ltnpH", &format!("sport = :{port}")])
            .output()
            .await
            .context("ss (iproute2) finds the instance's process")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let at = text.find("pid=").context("no process listens there")?;
        text[at + 4..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .context("pid")
    }

    async fn admin_of(&self, url: &str) -> Option<String> {
        self.listeners
            .values()
            .find(|(u, _)| u == url)
            .map(|(_, admin)| admin.clone())
    }

    /// Takes one healthy instance of `service` down the given way; the seconds to a
    /// replacement serving, and the probes' (runs, failures) meanwhile.
    async fn one(&self, service: &str, kill: bool) -> anyhow::Result<(f64, usize, usize)> {
        // Hanging needs the instance's admin URL, which `lookout up` printed for the first
        // generation only.
        let victim = self
            .instances()
            .await?
            .into_iter()
            .find(|i| {
                i["service"] == service
                    && i["state"] == "healthy"
                    && (kill
                        || i["url"]
                            .as_str()
                            .is_some_and(|u| self.listeners.values().any(|(url, _)| url == u)))
            })
            .context("no healthy instance to take down")?;
        let id = victim["id"].as_str().context("id")?.to_owned();
        let url = victim["url"].as_str().context("url")?.to_owned();
        let from_us = chrono::Utc::now().timestamp_micros();
        let t0 = Instant::now();
        if kill {
            let pid = Self::pid_of(&url).await?;
            let status = tokio::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .await?;
            anyhow::ensure!(status.success(), "kill -9 {pid} failed");
        } else {
            let admin = self
                .admin_of(&url)
                .await
                .context("no admin URL for the instance")?;
            self.http
                .post(format!("{admin}/admin/faults"))
                .bearer_auth(ADMIN)
                .json(&json!({"kind": "down", "duration": "120s"}))
                .send()
                .await?
                .error_for_status()?;
        }
        let took = loop {
            if self.done(&id).await?.is_some() {
                break t0.elapsed();
            }
            if t0.elapsed() > Duration::from_secs(60) {
                bail!("{id} was not replaced within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        tokio::time::sleep(Duration::from_secs(10)).await;
        let (runs, failed) = self
            .probes(from_us, chrono::Utc::now().timestamp_micros())
            .await?;
        Ok((took.as_secs_f64(), runs, failed))
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("lookout.yaml");
    std::fs::write(&path, config(dir.path(), args.interval))?;
    let log = dir.path().join("lookout-up.log");
    println!(
        "lookout bench replacer: starting `lookout up` (2 instances per service, local provider)"
    );
    let (mut up, listeners) = start_up(&path, &log).await?;
    let bench = Bench {
        http: reqwest::Client::new(),
        replacer: listeners
            .get("replacer")
            .context("no replacer in `lookout up`")?
            .0
            .clone(),
        collector: lookout_api::client::CollectorClient::new(
            url::Url::parse(&listeners.get("collector").context("no collector")?.0)?,
            lookout_model::secret::Secret::new(TOKEN),
        )?,
        listeners,
    };
    let started = Instant::now();
    while !bench.all_healthy().await {
        if started.elapsed() > Duration::from_secs(60) {
            up.stop().await;
            bail!("the instances did not all become healthy within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let services = ["catalogue", "mixes", "media"];
    let mut killed = Vec::new();
    let mut hung = Vec::new();
    let result: anyhow::Result<()> = async {
        for round in 0..args.runs {
            for kill in [true, false] {
                let service = services[(round * 2 + usize::from(!kill)) % services.len()];
                let (secs, runs, failed) = bench.one(service, kill).await?;
                println!(
                    "  round {}: {:<6} {service:<9} -> replacement serving after {secs:5.2} s; probes {runs}, failed {failed}",
                    round + 1,
                    if kill { "killed" } else { "hung" }
                );
                if kill {
                    killed.push((secs, failed));
                } else {
                    hung.push((secs, failed));
                }
                while !bench.all_healthy().await {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        Ok(())
    }
    .await;
    up.stop().await;
    result?;
    let summary = |what: &str, v: &[(f64, usize)]| {
        let mut t: Vec<f64> = v.iter().map(|(s, _)| *s).collect();
        t.sort_by(f64::total_cmp);
        let median = t.get(t.len() / 2).copied().unwrap_or(0.0);
        let max = t.last().copied().unwrap_or(0.0);
        let failed: usize = v.iter().map(|(_, f)| f).sum();
        println!("{what:<44} median {median:5.2} s, max {max:5.2} s, failed probes {failed}");
        (max, failed)
    };
    println!();
    let (kmax, kfail) = summary("killed (process seen dead at once):", &killed);
    let (_, hfail) = summary(
        &format!(
            "hung (reference: 3 polls every {}):",
            humantime::format_duration(args.interval)
        ),
        &hung,
    );
    println!(
        "target (serving within 10 s of the death, no failed probe): {}",
        if kmax <= 10.0 && kfail == 0 && hfail == 0 {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}

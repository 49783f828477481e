//! `lookout bench console`: the console's check page draws a week of a check's values, at a
//! 10 s interval (60,480 values), as an SVG chart with its thresholds and state changes. The
//! target is under 50 ms to render. The reference, in the same run: the time to read those
//! same 60,480 values from the collector (its raw results of one check and region over its
//! HTTP API, as any reader of them would), since a chart cannot be drawn faster than its
//! numbers can be had.
//!
//! Measured, each the median of `--rounds` (after a warm-up):
//! - the render alone (`console::chart::render`), in process;
//! - the alerter's read of the values from its SQLite store;
//! - `GET /checks/{id}/chart.svg?range=7d` end to end (read, render, HTTP), signed in;
//! - the collector's `GET /api/v1/results?check=..&region=..&limit=60480`, decoded.

use std::time::Instant;

use anyhow::{Context, ensure};
use lookout_alerting::console::chart::{Chart, render};
use lookout_alerting::notify::Level;
use lookout_alerting::store::{Batch, Store};
use lookout_alerting::{Alerter, AlerterSettings};
use lookout_collector::store::StoreConfig;
use lookout_collector::{CollectorSettings, Known};
use lookout_model::secret::Secret;
use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct Args {
    /// Measurements per figure (the median is reported).
    #[arg(long, default_value_t = 15)]
    rounds: usize,
}

const TOKEN: &str = "bench-console-token";
const COLLECTOR_TOKEN: &str = "bench-console-collector";
const WEEK_US: i64 = 7 * 86_400_000_000;
const STEP_US: i64 = 10_000_000;
const VALUES: usize = (WEEK_US / STEP_US) as usize;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn time<F, Fut, T>(rounds: usize, mut f: F) -> anyhow::Result<(f64, T)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut last = f().await?; // warm-up
    let mut ms = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        last = f().await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok((median(ms), last))
}

/// A latency-like value with an outage in the middle: what a real chart draws.
fn value(i: usize) -> Option<f64> {
    if i % 2_000 == 17 {
        return None;
    }
    let wave = ((i as f64) / 360.0).sin() * 40.0;
    let outage = (30_000..30_360).contains(&i);
    Some(if outage {
        2_400.0
    } else {
        180.0 + wave + (i % 13) as f64
    })
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let rounds = args.rounds.max(3);
    let dir = tempfile::tempdir()?;
    let now = chrono::Utc::now().timestamp_micros();
    let from = now - WEEK_US;

    // The collector, holding a week of one check's results from one region.
    let info = lookout_testkit::collector::check(&["eu-west"], STEP_US, 5_000_000);
    let known: Known = lookout_testkit::collector::known(&["search"], &info);
    let store = StoreConfig::Sqlite {
        path: dir.path().join("collector.db"),
    }
    .open()
    .context("collector store")?;
    let mut settings = CollectorSettings::new(Secret::new(COLLECTOR_TOKEN), known);
    settings.rollup.raw_retention_us = 14 * 86_400_000_000;
    let collector = lookout_testkit::collector::start_with(settings, store).await;
    let http = reqwest::Client::new();
    let results: Vec<Value> = (0..VALUES)
        .map(|i| {
            let t = from + i as i64 * STEP_US;
            let outcome = match value(i) {
                Some(_) if (30_000..30_360).contains(&i) => {
                    json!({"status": "fail", "kind": "timeout", "step": 0, "message": "timed out"})
                }
                _ => json!({"status": "ok"}),
            };
            json!({"check": "search", "region": "eu-west", "agent": "eu-west-1", "seq": i + 1,
                "started_at_us": t, "outcome": outcome,
                "duration_us": (value(i).unwrap_or(0.0) * 1000.0) as u64, "steps": []})
        })
        .collect();
    let loaded = Instant::now();
    for chunk in results.chunks(500) {
        let r = http
            .post(format!("{}/api/v1/results", collector.url()))
            .bearer_auth(COLLECTOR_TOKEN)
            .json(&json!({"results": chunk}))
            .send()
            .await?;
        ensure!(r.status().is_success(), "ingest: {}", r.status());
    }
    println!(
        "loaded {VALUES} results (7 days at 10 s) into the collector in {:.1} s",
        loaded.elapsed().as_secs_f64()
    );
    let read_url = format!(
        "{}/api/v1/results?check=search&region=eu-west&limit={VALUES}",
        collector.url()
    );
    let (collector_ms, n) = time(rounds, || async {
        let v: Value = http
            .get(&read_url)
            .bearer_auth(COLLECTOR_TOKEN)
            .send()
            .await?
            .json()
            .await?;
        Ok(v["results"].as_array().map_or(0, Vec::len))
    })
    .await?;
    ensure!(
        n == VALUES,
        "the collector answered {n} of {VALUES} results"
    );

    // The alerter, with the same week of its check's values in its store.
    let db = dir.path().join("alerting.db");
    {
        let store = Store::open(&db)?;
        for chunk in (0..VALUES).collect::<Vec<_>>().chunks(10_000) {
            store
                .apply(Batch {
                    values: chunk
                        .iter()
                        .map(|&i| {
                            (
                                "search-latency".to_owned(),
                                from + i as i64 * STEP_US,
                                value(i),
                            )
                        })
                        .collect(),
                    ..Batch::default()
                })
                .await?;
        }
    }
    let mut s = AlerterSettings::new(
        url::Url::parse(&collector.url())?,
        Secret::new(COLLECTOR_TOKEN),
        Secret::new(TOKEN),
    );
    s.store = Some(db.clone());
    s.checks.push(
        serde_json::from_value::<lookout_alerting::spec::CheckSpec>(json!({
            "id": "search-latency", "name": "Search latency (p95)",
            "target": "latency(search, p95, 5m)", "warn": 800, "error": 1600, "interval": "1h"}))?
        .to_check(lookout_alerting::check::Origin::Config)
        .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let alerter = Alerter::start(s, listener).await?;
    let store = Store::open(&db)?;
    let (read_ms, values) = time(rounds, || async {
        Ok(store.values("search-latency", from, now).await?)
    })
    .await?;
    ensure!(
        values.len() == VALUES,
        "the store gave {} values",
        values.len()
    );
    let changes = [
        (from + 30_000 * STEP_US, Level::Error),
        (from + 30_360 * STEP_US, Level::Ok),
    ];
    let (render_ms, svg) = time(rounds, || async {
        Ok(render(&Chart {
            title: "Search latency (p95)",
            values: &values,
            from_us: from,
            to_us: now,
            warn: Some(800.0),
            error: Some(1600.0),
            changes: &changes,
            width: 900,
            height: 260,
        }))
    })
    .await?;

    // End to end, signed in as a person would be.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let form = browser
        .get(format!("{}/sign-in", alerter.url()))
        .send()
        .await?;
    let cookie = form
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .context("sign-in cookie")?
        .to_owned();
    let form_token = cookie
        .split_once('=')
        .map(|x| x.1.to_owned())
        .unwrap_or_default();
    let signed = browser
        .post(format!("{}/sign-in", alerter.url()))
        .header("cookie", &cookie)
        .form(&[
            ("name", "bench"),
            ("token", TOKEN),
            ("form_token", &form_token),
        ])
        .send()
        .await?;
    let session = signed
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("lookout_session="))
        .and_then(|c| c.split(';').next())
        .context("session cookie")?
        .to_owned();
    let chart_url = format!("{}/checks/search-latency/chart.svg?range=7d", alerter.url());
    let (http_ms, bytes) = time(rounds, || async {
        let r = browser
            .get(&chart_url)
            .header("cookie", &session)
            .send()
            .await?;
        ensure!(r.status().is_success(), "chart: {}", r.status());
        Ok(r.bytes().await?.len())
    })
    .await?;

    println!();
    println!("| the check page's chart, 7 days of 10 s values ({VALUES}) | median of {rounds} |");
    println!("| --- | --- |");
    println!(
        "| render the SVG (target < 50 ms) | **{render_ms:.2} ms** ({} bytes) |",
        svg.len()
    );
    println!("| read the values from the alerter's store | {read_ms:.1} ms |");
    println!("| GET /checks/ID/chart.svg?range=7d, end to end | {http_ms:.1} ms ({bytes} bytes) |");
    println!(
        "| reference: read the same {VALUES} results from the collector's API | {collector_ms:.1} ms |"
    );
    println!();
    println!(
        "render is {:.1}% of reading the values from the collector; the whole chart request {:.2}x it",
        render_ms / collector_ms * 100.0,
        http_ms / collector_ms
    );
    alerter.shutdown().await;
    collector.shutdown().await;
    Ok(())
}

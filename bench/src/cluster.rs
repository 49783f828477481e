//! `lookout bench cluster`: the clustered shape (three `nats-server` nodes, a stream of three
//! replicas, two collector replicas) beside a single `lookout collector` in the same run.
//!
//! Reports: durable ingest through the replicated stream (results acknowledged per second, each
//! batch acknowledged only after the stream's PubAck, posted to both replicas) beside the
//! single collector's rate for the same batches; how long each replica takes to have applied
//! everything after the last acknowledgement; and a wiped replica's catch-up rate (it rebuilds
//! its store from the log), with what that makes of a day of results for 500 checks x 3 regions
//! every 10 s (12.96 million). Then the time to page, alone and in the cluster, and with the
//! claiming alerter replica killed mid-send (`cluster_page`).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use lookout_testkit::peers::NatsCluster;

use super::collector::{Running, TOKEN, agent_batches, config, post_all, start_collector_with};
use super::probes::stop;

#[derive(clap::Args)]
pub struct Args {
    /// Checks the results are spread over.
    #[arg(long, default_value_t = 500)]
    checks: usize,
    /// Results posted in each run.
    #[arg(long, default_value_t = 300_000)]
    results: usize,
    /// Outages per side in the time-to-page run.
    #[arg(long, default_value_t = 3)]
    pages: usize,
    /// Concurrent connections posting batches, to each side alike. The replicated side waits a
    /// network round trip more per batch (the PubAck), so it needs more batches in flight.
    #[arg(long, default_value_t = 16)]
    clients: usize,
}

/// A day of results of 500 checks from 3 regions every 10 s.
const DAY_OF_RESULTS: f64 = 500.0 * 3.0 * 8_640.0;

async fn applied(http: &reqwest::Client, url: &str) -> u64 {
    let Ok(r) = http
        .get(format!("{url}/api/v1/checks"))
        .bearer_auth(TOKEN)
        .send()
        .await
    else {
        return 0;
    };
    r.headers()
        .get("lookout-log-applied")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Waits until `url` has applied `position`; how long that took.
async fn until_applied(http: &reqwest::Client, url: &str, position: u64) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    while applied(http, url).await < position {
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(1800),
            "{url} did not apply the log"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(t0.elapsed().as_secs_f64())
}

/// The bench's own view of the cluster's log: the last position, the claims.
pub(crate) async fn watch_log(nats: &NatsCluster) -> anyhow::Result<lookout_cluster::Log> {
    // The stream's retention as the replicas create it (the default raw retention), so that
    // connecting does not report a difference.
    let retention = Duration::from_secs(14 * 86_400);
    let cluster = lookout_cluster::ClusterConfig::new(nats.urls());
    Ok(
        lookout_cluster::Log::connect(&cluster, "bench", retention, Duration::from_secs(30))
            .await?,
    )
}

async fn replica(dir: &Path, config: &Path, i: usize) -> anyhow::Result<Running> {
    let port = lookout_testkit::free_port();
    let args = vec![
        "--listen".to_owned(),
        format!("127.0.0.1:{port}"),
        "--store".to_owned(),
        dir.join(format!("replica-{i}.db")).display().to_string(),
    ];
    Ok(start_collector_with(config, &args).await?.0)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let bodies = agent_batches(args.results, args.checks)?;
    let http = reqwest::Client::builder().no_proxy().build()?;

    // The reference: one collector, on its own SQLite file, the same batches.
    let single_dir = tempfile::tempdir()?;
    let port = lookout_testkit::free_port();
    let single_config = single_dir.path().join("bench.yaml");
    std::fs::write(
        &single_config,
        config(single_dir.path(), port, args.checks, ""),
    )?;
    let (mut single, _) = start_collector_with(&single_config, &[]).await?;
    let (single_acked, single_s) = post_all(
        std::slice::from_ref(&single.url),
        bodies.clone(),
        args.clients,
    )
    .await?;
    stop(std::mem::replace(
        &mut single.child,
        tokio::process::Command::new("true").spawn()?,
    ))
    .await;
    let single_rate = single_acked as f64 / single_s;

    // The cluster: three NATS nodes, two replicas, batches posted to both.
    let nats = NatsCluster::start().await;
    let dir = tempfile::tempdir()?;
    let cluster = format!("cluster:\n  nats: [{}]\n", nats.urls().join(", "));
    let cluster_config = dir.path().join("bench.yaml");
    std::fs::write(
        &cluster_config,
        config(dir.path(), port, args.checks, &cluster),
    )?;
    let mut replicas = Vec::new();
    for i in 0..2 {
        replicas.push(replica(dir.path(), &cluster_config, i).await?);
    }
    let urls: Vec<String> = replicas.iter().map(|r| r.url.clone()).collect();
    let (acked, cluster_s) = post_all(&urls, bodies, args.clients).await?;
    let rate = acked as f64 / cluster_s;
    let log = watch_log(&nats).await?;
    let last = log.last_position().await?;
    let mut settle = Vec::new();
    for u in &urls {
        settle.push(until_applied(&http, u, last).await?);
    }

    // A wiped replica: a new store, the whole log to apply before it serves.
    let t0 = Instant::now();
    let wiped = replica(dir.path(), &cluster_config, 9).await?;
    until_applied(&http, &wiped.url, last)
        .await
        .context("the wiped replica catching up")?;
    let catch_up_s = t0.elapsed().as_secs_f64();
    let catch_up_rate = acked as f64 / catch_up_s;

    println!(
        "cluster: {acked} results in batches of 500 from {} connections, 3 NATS nodes (R3 stream), 2 collector replicas",
        args.clients
    );
    println!(
        "  replicated ingest   {rate:>10.0} results/s acknowledged after the stream's PubAck ({cluster_s:.1} s)"
    );
    println!(
        "  reference: single   {single_rate:>10.0} results/s acknowledged after SQLite's synced commit ({single_s:.1} s)"
    );
    println!(
        "  ratio {:.2} of the single collector; target >= 0.5: {}",
        rate / single_rate,
        if rate >= 0.5 * single_rate {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "  every replica applied the last acknowledged batch within {:.2} s of it",
        settle.iter().copied().fold(0.0, f64::max)
    );
    println!(
        "  a wiped replica caught up on {last} messages ({acked} results) in {catch_up_s:.1} s: {catch_up_rate:.0} results/s, so a day of 500 checks x 3 regions (12.96 M results) in about {:.0} s",
        DAY_OF_RESULTS / catch_up_rate
    );
    drop(wiped);
    drop(replicas);
    drop(nats);
    super::cluster_page::run(args.pages).await
}

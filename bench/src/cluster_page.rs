//! The time to page of the clustered shape, beside one collector and one alerter in the same
//! run, with the same checks, agents and outages: a target that starts failing for every
//! region, and a webhook receiver in this process that notes when the page arrives. Then the
//! same outage with the claiming alerter replica SIGKILLed while its page is in flight: the
//! page still arrives once another replica takes the claim over.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::State;
use axum::http::HeaderMap;
use tokio::process::{Child, Command};

use lookout_testkit::peers::NatsCluster;
use lookout_testkit::target::Target;

const CLAIM_TIMEOUT_S: u64 = 3;
const REGIONS: [&str; 3] = ["eu", "us", "ap"];

/// What the webhook got: (event, delivery id, when), and a first trigger to hold unanswered.
#[derive(Default)]
struct Inbox {
    got: Mutex<Vec<(String, String, Instant)>>,
    hold_next: AtomicBool,
    released: tokio::sync::Notify,
}

impl Inbox {
    fn triggers(&self) -> Vec<(String, Instant)> {
        self.got
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(e, _, _)| e == "trigger")
            .map(|(_, id, at)| (id.clone(), *at))
            .collect()
    }

    fn count(&self, event: &str) -> usize {
        self.got
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(e, _, _)| e == event)
            .count()
    }
}

async fn hook(State(inbox): State<Arc<Inbox>>, headers: HeaderMap) -> &'static str {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let event = header("x-lookout-event");
    let hold = event == "trigger" && inbox.hold_next.swap(false, Ordering::SeqCst);
    inbox
        .got
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((event, header("x-lookout-delivery"), Instant::now()));
    if hold {
        inbox.released.notified().await;
    }
    "ok"
}

/// The webhook receiver's port.
async fn receiver(inbox: Arc<Inbox>) -> anyhow::Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook_port = listener.local_addr()?.port();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(inbox);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(hook_port)
}

fn config(dir: &Path, target: u16, hook: u16, nats: Option<&[String]>) -> anyhow::Result<PathBuf> {
    let cluster = nats.map_or(String::new(), |urls| {
        format!(
            "cluster:\n  nats: [{}]\n  claim_timeout: {CLAIM_TIMEOUT_S}s\n",
            urls.join(", ")
        )
    });
    let text = format!(
        "data_dir: {data}\nlog:\n  level: error\nplatform:\n  admin_token: x\n  gateway:\n    api_keys: [k]\n\
         collector:\n  token: {token}\n{cluster}probes:\n  regions: [{regions}]\n  flush_interval: 200ms\n\
         checks:\n  - name: play\n    interval: 2s\n    timeout: 1s\n    steps:\n      - url: http://127.0.0.1:{target}/play\n\
         alerting:\n  enabled: false\n  token: alert-token\n  confirm_after: 2s\n  recheck_every: 1s\n\
         \x20 notifiers:\n    hook: {{ type: webhook, url: \"http://127.0.0.1:{hook}/hook\" }}\n  subscribe:\n    - {{ notifier: hook }}\n",
        data = dir.join("data").display(),
        token = super::collector::TOKEN,
        regions = REGIONS.join(", "),
    );
    let path = dir.join("page.yaml");
    std::fs::write(&path, text)?;
    Ok(path)
}

fn spawn(args: &[String]) -> anyhow::Result<Child> {
    Ok(Command::new(lookout::lookout_exe()?)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?)
}

fn s(v: impl std::fmt::Display) -> String {
    v.to_string()
}

/// One side of the comparison: `collectors` collectors and `alerters` alerters (one each,
/// alone; or replicas of a cluster), and an agent per region.
struct Side {
    children: Vec<Child>,
    alerter_ports: Vec<u16>,
    /// Where the alerters start among `children` (after the collectors).
    first_alerter: usize,
}

async fn start_side(config: &Path, dir: &Path, replicas: usize) -> anyhow::Result<Side> {
    let cfg = config.display().to_string();
    let mut children = Vec::new();
    let mut urls = Vec::new();
    for i in 0..replicas {
        let port = lookout_testkit::free_port();
        let store = dir.join(format!("collector-{i}.db")).display().to_string();
        children.push(spawn(&[
            s("collector"),
            s("--config"),
            cfg.clone(),
            s("--listen"),
            format!("127.0.0.1:{port}"),
            s("--store"),
            store,
        ])?);
        urls.push(format!("http://127.0.0.1:{port}"));
    }
    let http = reqwest::Client::builder().no_proxy().build()?;
    for u in &urls {
        let t0 = Instant::now();
        while !http
            .get(format!("{u}/api/v1/checks"))
            .bearer_auth(super::collector::TOKEN)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            anyhow::ensure!(t0.elapsed() < Duration::from_secs(60), "{u} did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut alerter_ports = Vec::new();
    let first_alerter = children.len();
    for (i, collector) in urls.iter().enumerate() {
        let port = lookout_testkit::free_port();
        let store = dir.join(format!("alerting-{i}.db")).display().to_string();
        children.push(spawn(&[
            s("alerting"),
            s("--config"),
            cfg.clone(),
            s("--collector"),
            collector.clone(),
            s("--listen"),
            format!("127.0.0.1:{port}"),
            s("--store"),
            store,
        ])?);
        alerter_ports.push(port);
    }
    for region in REGIONS {
        children.push(spawn(&[
            s("probe"),
            s("--config"),
            cfg.clone(),
            s("--region"),
            s(region),
            s("--agent-id"),
            format!("{region}-1"),
            s("--collector"),
            urls.join(","),
        ])?);
    }
    Ok(Side {
        children,
        alerter_ports,
        first_alerter,
    })
}

async fn wait_for(what: &str, limit: Duration, ok: impl Fn() -> bool) -> anyhow::Result<()> {
    let t0 = Instant::now();
    while !ok() {
        anyhow::ensure!(t0.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Outages one after another: the seconds from each outage's start to its page.
async fn times_to_page(inbox: &Inbox, target: &Target, runs: usize) -> anyhow::Result<Vec<f64>> {
    let mut out = Vec::new();
    // Let every region report before the first outage.
    tokio::time::sleep(Duration::from_secs(6)).await;
    for _ in 0..runs {
        let before = inbox.count("trigger");
        let resolved = inbox.count("resolve");
        let t0 = Instant::now();
        target.fail(true);
        wait_for("a page", Duration::from_secs(60), || {
            inbox.count("trigger") > before
        })
        .await?;
        let at = inbox
            .triggers()
            .last()
            .map(|(_, at)| *at)
            .context("a page")?;
        out.push(at.duration_since(t0).as_secs_f64());
        target.fail(false);
        wait_for("its resolve", Duration::from_secs(60), || {
            inbox.count("resolve") > resolved
        })
        .await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    Ok(out)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Prints the time to page alone, in the cluster, and in the cluster with its claimant killed.
pub async fn run(runs: usize) -> anyhow::Result<()> {
    let inbox = Arc::new(Inbox::default());
    let target = Target::start().await;
    let hook = receiver(inbox.clone()).await?;

    let single_dir = tempfile::tempdir()?;
    let single_config = config(single_dir.path(), target.port, hook, None)?;
    let single = start_side(&single_config, single_dir.path(), 1).await?;
    let alone = times_to_page(&inbox, &target, runs).await?;
    drop(single);

    let nats = NatsCluster::start().await;
    let dir = tempfile::tempdir()?;
    let cluster_config = config(dir.path(), target.port, hook, Some(&nats.urls()))?;
    let mut side = start_side(&cluster_config, dir.path(), 2).await?;
    let clustered = times_to_page(&inbox, &target, runs).await?;

    // The claimant killed with its page in flight (the webhook holds it unanswered).
    let log = super::cluster::watch_log(&nats).await?;
    let claims = lookout_cluster::Claims::open(
        &log,
        &lookout_cluster::ClusterConfig::new(Vec::new()).claims_bucket(),
        3,
        Duration::from_secs(CLAIM_TIMEOUT_S),
        "bench",
    )
    .await?;
    let before = inbox.triggers().len();
    inbox.hold_next.store(true, Ordering::SeqCst);
    let t0 = Instant::now();
    target.fail(true);
    wait_for("the held page", Duration::from_secs(60), || {
        inbox.triggers().len() > before
    })
    .await?;
    let mut killed = false;
    for key in claims.keys().await? {
        if let Some(owner) = claims.holder(&key).await? {
            for (i, port) in side.alerter_ports.iter().enumerate() {
                if owner.ends_with(&format!(":{port}")) {
                    let child = side.first_alerter + i;
                    side.children[child].start_kill()?;
                    killed = true;
                }
            }
        }
    }
    anyhow::ensure!(killed, "no alerter replica held the page's claim");
    wait_for(
        "the page after the takeover",
        Duration::from_secs(60),
        || inbox.triggers().len() > before + 1,
    )
    .await?;
    let takeover = inbox
        .triggers()
        .last()
        .map(|(_, at)| at.duration_since(t0).as_secs_f64())
        .context("the takeover's page")?;
    inbox.released.notify_waiters();
    target.fail(false);
    drop(side);

    let (alone_m, clustered_m) = (median(alone.clone()), median(clustered.clone()));
    println!(
        "time to page: a full outage, checks every 2 s, confirm_after 2 s, {runs} outages each"
    );
    println!("  single collector + alerter   median {alone_m:.2} s  {alone:.2?}");
    println!(
        "  cluster (2 + 2 replicas)     median {clustered_m:.2} s  {clustered:.2?}; target within 2 s of the single: {}",
        if clustered_m <= alone_m + 2.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "  cluster, claimant SIGKILLed with its page in flight: {takeover:.2} s; target within the claim timeout ({CLAIM_TIMEOUT_S} s) + 5 s of the single's: {}",
        if takeover <= alone_m + CLAIM_TIMEOUT_S as f64 + 5.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}

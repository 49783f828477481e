//! `lookout up`: starts the platform's instances as child processes (so that one can be killed
//! like a real host, and later replaced), prints where each one listens, and stops them all on
//! Ctrl-C or SIGTERM. If any instance fails to start, everything started is stopped again.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use lookout_services::{AnalyticsSettings, InstanceSpec, ServiceKind};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use crate::UsageError;
use crate::config::{Config, LogConfig};
use crate::service::{ChildLaunch, ChildReady, READY};
use lookout_services::config::PlatformConfig;

/// How long an instance may take to generate its data and bind.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an instance gets to stop by itself before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(6);

/// One running child instance.
pub struct RunningInstance {
    pub kind: ServiceKind,
    pub index: usize,
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    process: Child,
    /// Held open: closing it tells the child to stop.
    stdin: Option<ChildStdin>,
}

impl RunningInstance {
    pub fn name(&self) -> String {
        format!("{}#{}", self.kind, self.index + 1)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr)
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.id()
    }

    /// Whether the process still runs; `None` when that cannot be told.
    pub fn alive(&mut self) -> Option<bool> {
        match self.process.try_wait() {
            Ok(None) => Some(true),
            Ok(Some(_)) => Some(false),
            Err(_) => None,
        }
    }

    /// SIGTERM (and stdin closed, the child's other stop signal), then SIGKILL after `grace`.
    pub async fn stop(mut self, grace: Duration) -> Result<(), String> {
        self.stdin = None;
        if let Some(pid) = self.process.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .stderr(Stdio::null())
                .status()
                .await;
        }
        match tokio::time::timeout(grace, self.process.wait()).await {
            Ok(_) => Ok(()),
            Err(_) => {
                let name = self.name();
                self.process
                    .kill()
                    .await
                    .map_err(|e| format!("{name} did not stop and cannot be killed: {e}"))?;
                Err(format!(
                    "{name} did not stop within {} of SIGTERM; it was killed",
                    humantime::format_duration(grace)
                ))
            }
        }
    }
}

/// The platform's running instances.
pub struct Platform {
    pub children: Vec<RunningInstance>,
}

impl Platform {
    /// Starts every instance: the leaf services first, then analytics (which forwards to
    /// mixes), then the gateway (which needs them all).
    pub async fn start(config: &Config) -> anyhow::Result<Platform> {
        let mut platform = Platform {
            children: Vec::new(),
        };
        match platform.start_all(&config.platform, &config.log).await {
            Ok(()) => Ok(platform),
            Err(err) => {
                platform.stop().await;
                Err(err)
            }
        }
    }

    async fn start_all(&mut self, p: &PlatformConfig, log: &LogConfig) -> anyhow::Result<()> {
        let base = |kind| p.instance_spec(kind);
        let mut leaves = Vec::new();
        for kind in [
            ServiceKind::Catalogue,
            ServiceKind::Mixes,
            ServiceKind::Media,
        ] {
            let Some(service) = p.service(kind) else {
                continue;
            };
            for (i, addr) in service.listen.iter().enumerate() {
                let admin = SocketAddr::new(addr.ip(), 0);
                leaves.push(spawn(base(kind), i, *addr, admin, log));
            }
        }
        for started in futures_util::future::join_all(leaves).await {
            self.children.push(started?);
        }
        let urls = |kind: ServiceKind, children: &[RunningInstance]| -> Vec<String> {
            children
                .iter()
                .filter(|c| c.kind == kind)
                .map(RunningInstance::url)
                .collect()
        };
        if let Some(service) = p.service(ServiceKind::Analytics) {
            let mut starts = Vec::new();
            for (i, addr) in service.listen.iter().enumerate() {
                let mut spec = base(ServiceKind::Analytics);
                spec.analytics = Some(AnalyticsSettings {
                    queue_capacity: p.analytics_queue_capacity,
                    mixes: urls(ServiceKind::Mixes, &self.children),
                });
                starts.push(spawn(spec, i, *addr, SocketAddr::new(addr.ip(), 0), log));
            }
            for started in futures_util::future::join_all(starts).await {
                self.children.push(started?);
            }
        }
        let mut upstreams = BTreeMap::new();
        for kind in [
            ServiceKind::Catalogue,
            ServiceKind::Mixes,
            ServiceKind::Media,
            ServiceKind::Analytics,
        ] {
            upstreams.insert(kind.name().to_owned(), urls(kind, &self.children));
        }
        let mut spec = base(ServiceKind::Gateway);
        spec.gateway = Some(p.gateway_settings(upstreams));
        let gateway = spawn(spec, 0, p.gateway.listen, p.gateway.admin_listen, log).await?;
        self.children.push(gateway);
        Ok(())
    }

    pub fn gateway(&self) -> Option<&RunningInstance> {
        self.children
            .iter()
            .find(|c| c.kind == ServiceKind::Gateway)
    }

    /// Stops every instance, the gateway first: close stdin, wait, then kill.
    pub async fn stop(&mut self) {
        self.children
            .sort_by_key(|c| c.kind != ServiceKind::Gateway);
        for c in &mut self.children {
            c.stdin = None;
        }
        for c in &mut self.children {
            match tokio::time::timeout(STOP_TIMEOUT, c.process.wait()).await {
                Ok(_) => {}
                Err(_) => {
                    tracing::warn!(instance = %c.name(), "did not stop in time; killing it");
                    let _ = c.process.kill().await;
                }
            }
        }
        self.children.clear();
    }
}

/// Launches one child and waits for it to report where it listens.
pub async fn spawn(
    spec: InstanceSpec,
    index: usize,
    listen: SocketAddr,
    admin_listen: SocketAddr,
    log: &LogConfig,
) -> anyhow::Result<RunningInstance> {
    let kind = spec.kind;
    let name = format!("{kind}#{}", index + 1);
    let exe =
        crate::lookout_exe().context("cannot find the lookout executable to start instances")?;
    let mut process = Command::new(exe)
        .args(["service", "--spec-stdin"])
        .env(crate::logging::LEVEL_ENV, &log.level)
        .env(
            crate::logging::FORMAT_ENV,
            match log.format {
                crate::config::LogFormat::Json => "json",
                crate::config::LogFormat::Text => "text",
            },
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {name}"))?;
    let mut stdin = process.stdin.take().context("child stdin")?;
    let stdout = process.stdout.take().context("child stdout")?;
    let launch = ChildLaunch {
        spec,
        listen,
        admin_listen,
    };
    let mut line = serde_json::to_string(&launch)?;
    line.push('\n');
    stdin
        .write_all(line.as_bytes())
        .await
        .with_context(|| format!("cannot hand {name} its settings"))?;
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(START_TIMEOUT, async {
        while let Ok(Some(l)) = lines.next_line().await {
            if let Some(json) = l.strip_prefix(READY) {
                return serde_json::from_str::<ChildReady>(json).ok();
            }
        }
        None
    })
    .await;
    let ready = match ready {
        Ok(Some(r)) => r,
        Ok(None) => {
            let status = process.wait().await.ok().and_then(|s| s.code());
            // Exit code 2 is the child's "your setup is wrong" (its message is on stderr).
            return Err(if status == Some(2) {
                UsageError(format!(
                    "{name} could not start on {listen} (see above); nothing was left running"
                ))
                .into()
            } else {
                anyhow::anyhow!("{name} exited before it was ready (exit code {status:?})")
            });
        }
        Err(_) => {
            let _ = process.kill().await;
            anyhow::bail!(
                "{name} was not ready within {}",
                humantime::format_duration(START_TIMEOUT)
            );
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(RunningInstance {
        kind,
        index,
        addr: ready.addr,
        admin_addr: ready.admin_addr,
        process,
        stdin: Some(stdin),
    })
}

/// Prints a line to stdout; a closed stdout (`lookout up | head`) must not stop the suite.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub async fn up(config: Config, path: Option<PathBuf>) -> anyhow::Result<()> {
    // Caught from the start: SIGHUP's default would end the suite.
    let mut hangup = crate::reload::hangup_signal();
    let mut reloader = crate::reload::Reloader::new(path.clone(), config.clone())?;
    let (trigger, reload_requests) = lookout_api::reload::channel();
    let source = path
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| crate::config::DEFAULT_CONFIG_NAME.to_owned());
    let mut platform = tokio::select! {
        p = Platform::start(&config) => p?,
        _ = crate::service::shutdown_signal() => return Ok(()),
    };
    let monitor = if config.checks.is_empty() {
        None
    } else {
        let gateway = platform
            .gateway()
            .map(|g| g.addr)
            .context("no gateway started")?;
        match crate::monitor::Monitor::start(&config, gateway, Some(trigger)).await {
            Ok(m) => Some(m),
            Err(e) => {
                platform.stop().await;
                return Err(e);
            }
        }
    };
    let replacer = match config.replacer.as_ref().filter(|r| r.enabled) {
        Some(r) => match crate::monitor::start_local_replacer(
            &config,
            r,
            &mut platform,
            monitor.as_ref().and_then(|m| {
                Some(lookout_replacer::engine::CollectorLink {
                    url: url::Url::parse(&format!("{}/", m.collector.url())).ok()?,
                    token: config.collector.token.clone(),
                })
            }),
        )
        .await
        {
            Ok(started) => Some(started),
            Err(e) => {
                platform.stop().await;
                if let Some(m) = monitor {
                    m.stop().await;
                }
                return Err(e);
            }
        },
        None => None,
    };
    say!("lookout up: running from {source}");
    if let Some((_, launcher)) = &replacer {
        for (name, url, admin) in launcher.describe() {
            say!("  {name:<16} {url:<24} admin {admin}");
        }
    }
    for c in &platform.children {
        say!("  {:<16} {:<24} admin {}", c.name(), c.url(), c.admin_url());
    }
    if let Some((r, _)) = &replacer {
        say!("  {:<16} {:<24} admin -", "replacer", r.url());
    }
    if let Some(m) = &monitor {
        say!("  {:<16} {:<24} admin -", "collector", m.collector.url());
        if let Some(a) = &m.alerter {
            say!("  {:<16} {:<24} admin -", "alerting", a.url());
        }
        if let Some(p) = &m.status_page {
            say!("  {:<16} {:<24} admin -", "status-page", p.url());
        }
        for (region, link) in &m.links {
            say!(
                "  {:<16} {:<24} admin {}",
                format!("link@{region}"),
                link.url(),
                link.admin_url()
            );
        }
        for (region, agent) in &m.agents {
            say!(
                "  {:<16} {:<24} admin -",
                format!("probe@{region}"),
                format!("http://{}", agent.addr)
            );
        }
    }
    if let Some(g) = platform.gateway() {
        say!(
            "Try: curl -H 'X-Api-Key: <an api_keys entry>' '{}/1.x/search?q=silver'",
            g.url()
        );
    }
    if let Some(m) = &monitor {
        m.register(&reloader.metrics);
    }
    say!(
        "Press Ctrl-C to stop; send SIGHUP (or POST /-/reload to the alerter) to reload the config."
    );
    crate::reload::until_stopped(
        &mut reloader,
        crate::reload::Part::Suite(monitor.as_ref()),
        Some(reload_requests),
        &mut hangup,
    )
    .await;
    say!("lookout up: stopping");
    if let Some(m) = monitor {
        m.stop().await;
    }
    if let Some((r, launcher)) = replacer {
        r.shutdown().await;
        launcher.stop_all().await;
    }
    platform.stop().await;
    say!("lookout up: stopped");
    Ok(())
}

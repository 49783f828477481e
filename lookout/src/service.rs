//! `lookout service KIND`: one instance of one platform service, alone or as a child of
//! `lookout up` (which passes its settings as JSON on stdin and keeps stdin open: when the
//! parent dies, stdin closes and the child stops, so no instance outlives its supervisor).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use lookout_services::{AnalyticsSettings, Instance, InstanceSpec, ServiceError, ServiceKind};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::UsageError;
use crate::config::Config;

#[derive(clap::Args)]
pub struct ServiceArgs {
    /// gateway, catalogue, mixes, media or analytics.
    kind: Option<ServiceKind>,
    /// Address for the service's API; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Address for the admin API (faults), which stays up during a `down` fault.
    #[arg(long, default_value = "127.0.0.1:0")]
    admin_listen: SocketAddr,
    /// Config file for the platform's settings (the built-in example when not given).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// For the gateway: an upstream's instances, e.g. `catalogue=http://127.0.0.1:9001,http://127.0.0.1:9002`.
    #[arg(long = "upstream", value_name = "SERVICE=URL[,URL...]")]
    upstreams: Vec<String>,
    /// For analytics: a mixes instance to forward thumbs to (repeatable).
    #[arg(long = "mixes", value_name = "URL")]
    mixes: Vec<String>,
    /// Read the instance's settings as JSON from stdin (how `lookout up` starts its children).
    #[arg(long, hide = true)]
    spec_stdin: bool,
}

/// What `lookout up` writes to a child's stdin.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChildLaunch {
    pub spec: InstanceSpec,
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
}

/// What a child prints on stdout once it listens, after [`READY`].
#[derive(Debug, Serialize, Deserialize)]
pub struct ChildReady {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
}

pub const READY: &str = "READY ";

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

fn start_error(kind: ServiceKind, err: ServiceError) -> anyhow::Error {
    match err {
        ServiceError::Bind { .. } => UsageError(format!("{kind}: {err}")).into(),
        other => anyhow::Error::new(other).context(format!("{kind} could not start")),
    }
}

pub async fn run(args: ServiceArgs) -> anyhow::Result<()> {
    if args.spec_stdin {
        return run_child().await;
    }
    let kind = args.kind.ok_or_else(|| {
        UsageError("name the service to run: gateway, catalogue, mixes, media or analytics".into())
    })?;
    let config = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::builtin()?,
    };
    let p = &config.platform;
    let mut spec = p.instance_spec(kind);
    match kind {
        ServiceKind::Gateway => {
            let mut upstreams = BTreeMap::new();
            for u in &args.upstreams {
                let (name, urls) = u.split_once('=').ok_or_else(|| {
                    UsageError(format!("--upstream {u:?}: write SERVICE=URL[,URL...]"))
                })?;
                if !lookout_services::gateway::UPSTREAMS.contains(&name) {
                    return Err(
                        UsageError(format!("--upstream {u:?}: unknown service {name:?}")).into(),
                    );
                }
                upstreams.insert(
                    name.to_owned(),
                    urls.split(',').map(str::to_owned).collect::<Vec<_>>(),
                );
            }
            for name in lookout_services::gateway::UPSTREAMS {
                if !upstreams.contains_key(name) {
                    return Err(UsageError(format!(
                        "the gateway needs --upstream {name}=URL[,URL...]"
                    ))
                    .into());
                }
            }
            spec.gateway = Some(p.gateway_settings(upstreams));
        }
        ServiceKind::Analytics => {
            if args.mixes.is_empty() {
                tracing::warn!("no --mixes given: thumbs events will be counted but not forwarded");
            }
            spec.analytics = Some(AnalyticsSettings {
                queue_capacity: p.analytics_queue_capacity,
                mixes: args.mixes.clone(),
            });
        }
        _ => {}
    }
    let instance = Instance::start(spec, args.listen, args.admin_listen, None)
        .await
        .map_err(|e| start_error(kind, e))?;
    println!("{kind} {} (admin {})", instance.url(), instance.admin_url());
    shutdown_signal().await;
    instance.shutdown().await?;
    Ok(())
}

async fn run_child() -> anyhow::Result<()> {
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut line = String::new();
    stdin
        .read_line(&mut line)
        .await
        .context("reading the launch settings from stdin")?;
    let launch: ChildLaunch =
        serde_json::from_str(&line).context("launch settings on stdin are not valid")?;
    let kind = launch.spec.kind;
    let instance = Instance::start(launch.spec, launch.listen, launch.admin_listen, None)
        .await
        .map_err(|e| start_error(kind, e))?;
    let ready = ChildReady {
        addr: instance.addr,
        admin_addr: instance.admin_addr,
    };
    println!("{READY}{}", serde_json::to_string(&ready)?);
    let parent_gone = async move {
        let mut sink = Vec::new();
        let _ = stdin.read_to_end(&mut sink).await;
    };
    tokio::select! {
        _ = parent_gone => tracing::info!(service = %kind, "supervisor closed stdin; stopping"),
        _ = shutdown_signal() => {}
    }
    instance.shutdown().await?;
    Ok(())
}

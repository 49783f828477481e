//! `lookout probe` and `lookout collector`: one part of the monitoring alone.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::UsageError;
use crate::config::Config;
use crate::monitor;

#[derive(clap::Args)]
pub struct ProbeArgs {
    /// The region this agent stands in; one of the config's probes.regions.
    #[arg(long)]
    region: String,
    /// The collector's base URL; for a cluster, every replica's, comma-separated (the agent
    /// fails over between them).
    #[arg(long, default_value = "http://127.0.0.1:8090")]
    collector: String,
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// This agent's id (default: REGION-HOSTNAME); sequence numbers are per agent id.
    #[arg(long)]
    agent_id: Option<String>,
    /// Address for the agent's /healthcheck and /metrics.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where Prometheus reaches this agent's /metrics (say so when listening on 0.0.0.0 or
    /// behind NAT); the collector lists it at /api/v1/targets for Prometheus's discovery.
    #[arg(long, value_name = "URL")]
    metrics_url: Option<url::Url>,
    /// The platform's gateway, as `{{gateway}}` in the checks' URLs (overriding a `gateway`
    /// variable of the config).
    #[arg(long, value_name = "URL")]
    gateway: Option<String>,
}

#[derive(clap::Args)]
pub struct CollectorArgs {
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Overrides collector.listen.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// This collector's own SQLite file, overriding collector.store: replicas of one cluster
    /// on one host each need their own.
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct AlertingArgs {
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The collector's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8090")]
    collector: String,
    /// Overrides alerting.listen.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// This alerter's own SQLite file (default DATA_DIR/alerting.db): replicas of one cluster
    /// on one host each need their own.
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct StatusPageArgs {
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The collector's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8090")]
    collector: String,
    /// Overrides status_page.listen.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// This status page's own SQLite file (default DATA_DIR/status-page.db): replicas of one
    /// cluster on one host each need their own.
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct ReplacerArgs {
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Overrides replacer.listen.
    #[arg(long)]
    listen: Option<SocketAddr>,
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        })
        .unwrap_or_else(|| "probe".into())
}

pub async fn run_probe(config: Config, args: ProbeArgs) -> anyhow::Result<()> {
    if !config.probes.regions.contains(&args.region) {
        return Err(UsageError(format!(
            "--region {:?} is not one of probes.regions ({})",
            args.region,
            config.probes.regions.join(", ")
        ))
        .into());
    }
    if config.checks.is_empty() {
        return Err(UsageError("the config defines no checks: nothing to probe".into()).into());
    }
    let agent_id = args
        .agent_id
        .unwrap_or_else(|| format!("{}-{}", args.region, hostname()));
    let mut settings = monitor::agent_settings(
        &config,
        &args.region,
        &agent_id,
        &args.collector,
        args.gateway,
    )?;
    settings.metrics_url = args.metrics_url;
    let gateway = settings.variables.get("gateway").cloned();
    let mut hangup = crate::reload::hangup_signal();
    let (trigger, requests) = lookout_api::reload::channel();
    settings.reload = Some(trigger);
    let mut reloader = crate::reload::Reloader::new(args.config.clone(), config)?;
    let agent = monitor::start_agent(settings, args.listen).await?;
    crate::reload::register(&reloader.metrics, agent.metrics().registry());
    println!(
        "probe {agent_id} in {} http://{} -> {}",
        args.region, agent.addr, args.collector
    );
    crate::reload::until_stopped(
        &mut reloader,
        crate::reload::Part::Agent {
            agent: &agent,
            region: &args.region,
            gateway: gateway.as_deref(),
        },
        Some(requests),
        &mut hangup,
    )
    .await;
    agent.shutdown().await;
    Ok(())
}

pub async fn run_collector(mut config: Config, args: CollectorArgs) -> anyhow::Result<()> {
    if let Some(path) = args.store {
        config.collector.store = lookout_collector::store::StoreConfig::Sqlite { path };
    }
    if config.collector.token.is_empty() {
        return Err(
            UsageError("collector.token is required: agents authenticate with it".into()).into(),
        );
    }
    let mut hangup = crate::reload::hangup_signal();
    let (trigger, requests) = lookout_api::reload::channel();
    let collector = monitor::start_collector(
        &config,
        args.listen.unwrap_or(config.collector.listen),
        Some(trigger),
    )
    .await?;
    let mut reloader = crate::reload::Reloader::new(args.config.clone(), config)?;
    crate::reload::register(&reloader.metrics, collector.registry());
    println!("collector {}", collector.url());
    crate::reload::until_stopped(
        &mut reloader,
        crate::reload::Part::Collector(&collector),
        Some(requests),
        &mut hangup,
    )
    .await;
    collector.shutdown().await;
    Ok(())
}

pub async fn run_alerting(config: Config, args: AlertingArgs) -> anyhow::Result<()> {
    let Some(alerting) = config.alerting.clone() else {
        return Err(UsageError(
            "the config has no `alerting:` section: nothing to alert on (see docs/alerting.md)"
                .into(),
        )
        .into());
    };
    if alerting.token.is_empty() {
        return Err(UsageError(
            "alerting.token (or collector.token) is required: it guards the alerter's API".into(),
        )
        .into());
    }
    let mut settings = monitor::alerter_settings(&config, &alerting, &args.collector)?;
    if let Some(path) = args.store {
        settings.store = Some(path);
    }
    if config.cluster.is_some() {
        let listen = args.listen.unwrap_or(alerting.listen);
        let name = format!("lookout-alerting@{listen}");
        let (log, claims) = monitor::claiming_replica(&config, &name).await?;
        settings.claims = Some(claims);
        settings.changes = Some(log);
    }
    let mut hangup = crate::reload::hangup_signal();
    let (trigger, requests) = lookout_api::reload::channel();
    settings.reload = Some(trigger);
    let alerter = monitor::start_alerter(settings, args.listen.unwrap_or(alerting.listen)).await?;
    let mut reloader = crate::reload::Reloader::new(args.config.clone(), config)?;
    crate::reload::register(&reloader.metrics, alerter.registry());
    println!("alerting {} -> {}", alerter.url(), args.collector);
    crate::reload::until_stopped(
        &mut reloader,
        crate::reload::Part::Alerter(&alerter),
        Some(requests),
        &mut hangup,
    )
    .await;
    alerter.shutdown().await;
    Ok(())
}

pub async fn run_status_page(config: Config, args: StatusPageArgs) -> anyhow::Result<()> {
    let Some(sp) = config.status_page.clone() else {
        return Err(UsageError(
            "the config has no `status_page:` section: nothing to show (see docs/status-page.md)"
                .into(),
        )
        .into());
    };
    if sp.admin_token.is_empty() {
        return Err(UsageError(
            "status_page.admin_token (or collector.token) is required: it guards the admin API"
                .into(),
        )
        .into());
    }
    let mut settings = monitor::status_page_settings(&config, &sp, &args.collector)?;
    if let Some(path) = args.store {
        settings.store = Some(path);
    }
    let listen = args.listen.unwrap_or(sp.listen);
    if let Some(cluster) = &config.cluster {
        settings.max_behind = Some(cluster.max_behind);
        let name = format!("lookout-status-page@{listen}");
        let (log, claims) = monitor::claiming_replica(&config, &name).await?;
        settings.changes = Some(log);
        settings.claims = Some(claims);
    }
    let mut hangup = crate::reload::hangup_signal();
    let (trigger, requests) = lookout_api::reload::channel();
    settings.reload = Some(trigger);
    let page = monitor::start_status_page(settings, listen).await?;
    let mut reloader = crate::reload::Reloader::new(args.config.clone(), config)?;
    crate::reload::register(&reloader.metrics, page.registry());
    println!("status page {} -> {}", page.url(), args.collector);
    crate::reload::until_stopped(
        &mut reloader,
        crate::reload::Part::StatusPage(&page),
        Some(requests),
        &mut hangup,
    )
    .await;
    page.shutdown().await;
    Ok(())
}

pub async fn run_replacer(config: Config, args: ReplacerArgs) -> anyhow::Result<()> {
    let Some(r) = config.replacer.clone() else {
        return Err(UsageError(
            "the config has no `replacer:` section: nothing to watch (see docs/replacer.md)".into(),
        )
        .into());
    };
    if r.provider.needs_platform() {
        return Err(UsageError(
            "replacer.provider: the local provider replaces `lookout up`'s own child \
             processes and runs inside `lookout up`; give `lookout replacer` the aws provider"
                .into(),
        )
        .into());
    }
    let provider = r
        .provider
        .build(&lookout_replacer::provider::Platform::default())
        .map_err(|e| UsageError(format!("replacer.provider: {e}")))?;
    let listen = args.listen.unwrap_or(r.listen);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| UsageError(format!("replacer: cannot listen on {listen}: {e}")))?;
    let replacer = lookout_replacer::Replacer::start(r.settings.clone(), provider, listener)
        .await
        .map_err(|e| UsageError(e.to_string()))?;
    println!(
        "replacer {} ({})",
        replacer.url(),
        if r.settings.dry_run {
            "dry run"
        } else {
            "acting"
        }
    );
    crate::service::shutdown_signal().await;
    replacer.shutdown().await;
    Ok(())
}

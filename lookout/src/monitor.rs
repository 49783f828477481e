//! Lookout's own parts as `lookout up` runs them beside the platform: the collector, one probe
//! agent per region, and (for regional trouble on demand) a link proxy in front of the gateway
//! per region. `lookout probe` and `lookout collector` build theirs the same way.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use lookout_collector::sink::{InfluxSink, ResultSink};
use lookout_collector::{CheckInfo, Collector, CollectorSettings, Known};
use lookout_probes::agent::{Agent, AgentSettings};
use lookout_probes::check::ScheduleSpec;
use lookout_services::link::Link;
use reqwest::Url;

use crate::UsageError;
use crate::config::Config;
use lookout_alerting::config::AlertingConfig;
use lookout_alerting::{Alerter, AlerterSettings};
use lookout_status_page::config::StatusPageConfig;
use lookout_status_page::{StatusPage, StatusPageSettings};

/// The checks the collector accepts, with their regions.
pub fn known_checks(config: &Config) -> Known {
    config
        .checks
        .iter()
        .map(|c| {
            let regions = if c.regions.is_empty() {
                config.probes.regions.clone()
            } else {
                c.regions.clone()
            };
            let interval = match &c.schedule {
                ScheduleSpec::Every(d) => *d,
                ScheduleSpec::Cron(_) => c
                    .schedule_in("any")
                    .nominal_interval(chrono::Utc::now())
                    .unwrap_or(lookout_probes::check::DEFAULT_INTERVAL),
            };
            let slo = config.slos.get(&c.name).copied().unwrap_or_default();
            let mut info = CheckInfo {
                description: c.description.clone(),
                regions,
                interval_us: interval.as_micros() as i64,
                timeout_us: c.timeout.as_micros() as i64,
                slo,
                heartbeat: c.heartbeat.clone(),
            };
            // A heartbeat's one region is its reports; it is silent (no data) past two
            // periods and the grace, as a probed check past two intervals and its timeout.
            if let Some(h) = &c.heartbeat {
                info.regions = vec![lookout_model::heartbeat::REGION.to_owned()];
                info.interval_us = h.period.as_micros() as i64;
                info.timeout_us = h.grace.as_micros() as i64;
            }
            (c.name.clone(), info)
        })
        .collect()
}

/// `reload`: where `POST /-/reload` on the collector goes (`None`: no such route).
pub async fn start_collector(
    config: &Config,
    listen: SocketAddr,
    reload: Option<lookout_api::reload::Trigger>,
) -> anyhow::Result<Collector> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| UsageError(format!("collector: cannot listen on {listen}: {e}")))?;
    let store = config
        .collector
        .store
        .open()
        .map_err(|e| UsageError(format!("collector: {e}")))?;
    let mut sinks: Vec<Arc<dyn ResultSink>> = Vec::new();
    if let Some(influx) = &config.collector.influxdb {
        let sink =
            InfluxSink::start(influx.clone()).map_err(|e| UsageError(format!("collector: {e}")))?;
        sinks.push(Arc::new(sink));
    }
    let settings = CollectorSettings {
        token: config.collector.token.clone(),
        known: known_checks(config),
        sinks,
        rollup: lookout_collector::RollupSettings {
            raw_retention_us: i64::try_from(config.collector.raw_retention.as_micros())
                .unwrap_or(i64::MAX),
            ..Default::default()
        },
        rollup_every: std::time::Duration::from_secs(60),
        maintenance: config.collector.maintenance.clone(),
        replica: match &config.cluster {
            None => None,
            Some(cluster) => Some(
                replica_settings(
                    cluster,
                    &format!("lookout-collector@{listen}"),
                    config.collector.raw_retention,
                )
                .await?,
            ),
        },
        tls: config.tls.server.clone(),
        reload,
    };
    Ok(Collector::start(settings, store, listener).await?)
}

/// How long a replica keeps trying to reach NATS at start, saying so as it goes.
const NATS_PATIENCE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Joins the replicated log. The stream keeps what the collector keeps raw: a wiped replica
/// can rebuild every raw result from it.
async fn replica_settings(
    cluster: &lookout_cluster::ClusterConfig,
    name: &str,
    retention: std::time::Duration,
) -> anyhow::Result<lookout_collector::replica::ReplicaSettings> {
    let log = lookout_cluster::Log::connect(cluster, name, retention, NATS_PATIENCE)
        .await
        .map_err(|e| UsageError(format!("cluster: {e}")))?;
    tracing::info!(stream = %log.stream(), "joined the replicated log");
    Ok(lookout_collector::replica::ReplicaSettings {
        log,
        when_behind: cluster.when_behind,
        max_behind: cluster.max_behind,
    })
}

/// An alerter replica's part of the cluster: the replicated log (people's changes) and the
/// claims beside it (one sender per notification).
/// The replicated log of the config's `cluster:`, for a replica called `name`.
pub async fn cluster_log(config: &Config, name: &str) -> anyhow::Result<lookout_cluster::Log> {
    let Some(cluster) = &config.cluster else {
        return Err(UsageError("a replica needs the config's `cluster:` section".into()).into());
    };
    // The stream's retention is the collector's, whichever component creates it first.
    Ok(
        lookout_cluster::Log::connect(cluster, name, config.collector.raw_retention, NATS_PATIENCE)
            .await
            .map_err(|e| UsageError(format!("cluster: {e}")))?,
    )
}

/// The replicated log and the claims bucket, for a replica that sends things (pages, reports)
/// only when it holds their claim.
pub async fn claiming_replica(
    config: &Config,
    name: &str,
) -> anyhow::Result<(lookout_cluster::Log, lookout_cluster::Claims)> {
    let Some(cluster) = &config.cluster else {
        return Err(UsageError("claims need the config's `cluster:` section".into()).into());
    };
    let log = cluster_log(config, name).await?;
    let claims = lookout_cluster::Claims::open(
        &log,
        &cluster.claims_bucket(),
        cluster.replicas,
        cluster.claim_timeout,
        name,
    )
    .await
    .map_err(|e| UsageError(format!("cluster: {e}")))?;
    Ok((log, claims))
}

pub fn agent_settings(
    config: &Config,
    region: &str,
    agent_id: &str,
    collector: &str,
    gateway: Option<String>,
) -> anyhow::Result<AgentSettings> {
    let collectors = collector
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| {
            // A base URL with a path must end in `/`, or joining the API path would drop its
            // last part.
            let with_slash = if c.ends_with('/') {
                c.to_owned()
            } else {
                format!("{c}/")
            };
            Url::parse(&with_slash).map_err(|e| UsageError(format!("collector URL {c:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if collectors.is_empty() {
        return Err(UsageError("give at least one collector URL".into()).into());
    }
    let mut variables: lookout_probes::template::Vars =
        config.variables.clone().into_iter().collect();
    if let Some(g) = gateway {
        variables.insert("gateway".into(), g);
    }
    Ok(AgentSettings {
        region: region.to_owned(),
        agent_id: agent_id.to_owned(),
        collectors,
        token: config.collector.token.clone(),
        checks: config.checks.clone(),
        variables,
        spool_dir: config.data_dir.join("spool").join(agent_id),
        spool_max_bytes: config.probes.spool_max_bytes,
        batch_max: config.probes.batch_max,
        flush_interval: config.probes.flush_interval,
        run_on_start: config.probes.run_on_start,
        metrics_url: None,
        trust: config.tls.trust.clone(),
        reload: None,
    })
}

pub async fn start_agent(settings: AgentSettings, listen: SocketAddr) -> anyhow::Result<Agent> {
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        UsageError(format!(
            "probe agent {}: cannot listen on {listen}: {e}",
            settings.agent_id
        ))
    })?;
    Agent::start(settings, listener)
        .await
        .context("probe agent could not start")
}

/// The alerter's settings from the config, watching the collector at `collector`.
pub fn alerter_settings(
    config: &Config,
    alerting: &AlertingConfig,
    collector: &str,
) -> anyhow::Result<AlerterSettings> {
    let collector_url = url::Url::parse(collector)
        .map_err(|e| UsageError(format!("collector URL {collector:?}: {e}")))?;
    let mut settings = AlerterSettings::new(
        collector_url,
        config.collector.token.clone(),
        alerting.token.clone(),
    );
    settings.read_tokens = alerting.read_tokens.clone();
    settings.session_ttl = alerting.session_ttl;
    settings.ack_link_ttl = alerting.ack_link_ttl;
    settings.store = Some(config.data_dir.join("alerting.db"));
    settings.prometheus = alerting.prometheus.clone();
    settings.checks = alerting.checks.clone();
    settings.subscriptions = alerting.subscriptions.clone();
    settings.generate = alerting.generate.clone();
    if !alerting.subscribe.is_empty() {
        settings.subscribe = alerting.subscribe.clone();
    }
    settings.notifiers = alerting.notifiers.clone();
    settings.reminder_every = alerting.reminder_every;
    settings.confirm_after = alerting.confirm_after;
    settings.recheck_every = alerting.recheck_every;
    settings.links = alerting.links.clone();
    settings.heartbeat = alerting.heartbeat.clone();
    settings.tls = config.tls.server.clone();
    settings.trust = config.tls.trust.clone();
    Ok(settings)
}

pub async fn start_alerter(
    settings: AlerterSettings,
    listen: SocketAddr,
) -> anyhow::Result<Alerter> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| UsageError(format!("alerter: cannot listen on {listen}: {e}")))?;
    Alerter::start(settings, listener)
        .await
        .map_err(|e| UsageError(format!("alerter: {e}")).into())
}

/// The status page's settings from the config, reading the collector at `collector`.
pub fn status_page_settings(
    config: &Config,
    sp: &StatusPageConfig,
    collector: &str,
) -> anyhow::Result<StatusPageSettings> {
    let parse = |what: &str, u: &str| {
        let with_slash = if u.ends_with('/') {
            u.to_owned()
        } else {
            format!("{u}/")
        };
        url::Url::parse(&with_slash).map_err(|e| UsageError(format!("{what} URL {u:?}: {e}")))
    };
    let mut settings = StatusPageSettings::new(
        parse("collector", collector)?,
        config.collector.token.clone(),
        sp.admin_token.clone(),
    );
    settings.title = sp.title.clone();
    settings.public_url = sp.public_url.clone();
    settings.groups = sp.groups.clone();
    settings.regions = sp.regions.clone();
    settings.store = Some(config.data_dir.join("status-page.db"));
    settings.reports = sp.reports.clone();
    settings.refresh_every = sp.refresh_every;
    settings.latency_window = sp.latency_window;
    settings.history_page_size = sp.history_page_size;
    settings.tls = config.tls.server.clone();
    settings.trust = config.tls.trust.clone();
    Ok(settings)
}

pub async fn start_status_page(
    settings: StatusPageSettings,
    listen: SocketAddr,
) -> anyhow::Result<StatusPage> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| UsageError(format!("status page: cannot listen on {listen}: {e}")))?;
    StatusPage::start(settings, listener)
        .await
        .map_err(|e| UsageError(format!("status page: {e}")).into())
}

/// The replacer with the `local` provider: it adopts the platform's instances (the gateway
/// stays with `platform`) and replaces them through the gateway's admin API.
pub async fn start_local_replacer(
    config: &Config,
    r: &lookout_replacer::config::ReplacerConfig,
    platform: &mut crate::supervisor::Platform,
    collector: Option<lookout_replacer::engine::CollectorLink>,
) -> anyhow::Result<(
    lookout_replacer::Replacer,
    Arc<crate::launcher::PlatformLauncher>,
)> {
    if !r.provider.needs_platform() {
        return Err(UsageError(
            "replacer.provider: `lookout up` replaces its own instances with the local provider; \
             run `lookout replacer` for the aws provider"
                .into(),
        )
        .into());
    }
    let gateway = platform
        .gateway()
        .map(|g| g.admin_url())
        .context("no gateway started")?;
    let launcher = Arc::new(crate::launcher::PlatformLauncher::adopt(
        platform,
        &config.platform,
        &config.log,
    ));
    let local = lookout_replacer::provider::Platform {
        local: Some((
            launcher.clone(),
            lookout_replacer::provider::local::Gateway {
                admin_url: gateway,
                token: config.platform.admin_token.clone(),
            },
        )),
    };
    let provider = r
        .provider
        .build(&local)
        .map_err(|e| UsageError(format!("replacer.provider: {e}")))?;
    let listener = tokio::net::TcpListener::bind(r.listen)
        .await
        .map_err(|e| UsageError(format!("replacer: cannot listen on {}: {e}", r.listen)))?;
    let mut settings = r.settings.clone();
    settings.collector = collector;
    let replacer = lookout_replacer::Replacer::start(settings, provider, listener)
        .await
        .map_err(|e| UsageError(e.to_string()))?;
    Ok((replacer, launcher))
}

/// The monitoring side of `lookout up`.
pub struct Monitor {
    pub collector: Collector,
    pub alerter: Option<Alerter>,
    pub status_page: Option<StatusPage>,
    pub links: BTreeMap<String, Link>,
    pub agents: BTreeMap<String, Agent>,
    /// Each region's way to the gateway (its link, or the gateway itself): the agents'
    /// `gateway` variable.
    targets: BTreeMap<String, String>,
}

impl Monitor {
    pub async fn start(
        config: &Config,
        gateway: SocketAddr,
        reload: Option<lookout_api::reload::Trigger>,
    ) -> anyhow::Result<Monitor> {
        let collector = start_collector(config, config.collector.listen, reload.clone()).await?;
        let mut links = BTreeMap::new();
        let mut agents = BTreeMap::new();
        let mut targets = BTreeMap::new();
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        for region in &config.probes.regions {
            let target = if config.probes.region_links {
                let link =
                    Link::start(any, any, gateway, config.platform.admin_token.clone()).await?;
                let url = link.url();
                links.insert(region.clone(), link);
                url
            } else {
                format!("http://{gateway}")
            };
            let agent_id = format!("{region}-1");
            targets.insert(region.clone(), target.clone());
            let mut settings =
                agent_settings(config, region, &agent_id, &collector.url(), Some(target))?;
            settings.reload = reload.clone();
            agents.insert(region.clone(), start_agent(settings, any).await?);
        }
        let alerter = match config.alerting.as_ref().filter(|a| a.enabled) {
            Some(a) => {
                let mut settings = alerter_settings(config, a, &collector.url())?;
                settings.reload = reload.clone();
                Some(start_alerter(settings, a.listen).await?)
            }
            None => None,
        };
        let status_page = match config.status_page.as_ref().filter(|s| s.enabled) {
            Some(sp) => {
                let mut settings = status_page_settings(config, sp, &collector.url())?;
                settings.reload = reload.clone();
                Some(start_status_page(settings, sp.listen).await?)
            }
            None => None,
        };
        Ok(Monitor {
            collector,
            alerter,
            status_page,
            links,
            agents,
            targets,
        })
    }

    /// Applies a new config to the running parts: the collector's checks, each agent's
    /// checks and variables, the alerter's checks, subscriptions and notifiers, the status
    /// page's text. Returns what changed, in words.
    pub async fn apply(&self, config: &Config) -> anyhow::Result<String> {
        let mut said = vec![crate::reload::apply_collector(&self.collector, config).await?];
        for (region, agent) in &self.agents {
            let gateway = self.targets.get(region).map(String::as_str);
            said.push(crate::reload::apply_agent(agent, config, region, gateway).await);
        }
        if let Some(a) = &self.alerter {
            said.push(crate::reload::apply_alerter(a, config).await?);
        }
        if let Some(p) = &self.status_page {
            said.push(crate::reload::apply_status_page(p, config));
        }
        Ok(said.join("; "))
    }

    /// Registers the reload gauges beside each part's own metrics.
    pub fn register(&self, metrics: &lookout_api::reload::ReloadMetrics) {
        let mut registries = vec![self.collector.registry()];
        if let Some(a) = &self.alerter {
            registries.push(a.registry());
        }
        if let Some(p) = &self.status_page {
            registries.push(p.registry());
        }
        registries.extend(self.agents.values().map(|a| a.metrics().registry()));
        for r in registries {
            crate::reload::register(metrics, r);
        }
    }

    pub async fn stop(self) {
        if let Some(p) = self.status_page {
            p.shutdown().await;
        }
        if let Some(a) = self.alerter {
            a.shutdown().await;
        }
        for (_, agent) in self.agents {
            agent.shutdown().await;
        }
        for (_, link) in self.links {
            link.shutdown().await;
        }
        self.collector.shutdown().await;
    }
}

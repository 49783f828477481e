//! Reloading the config of a running `lookout up` or of one component (SIGHUP, or
//! `POST /-/reload` on any of its listeners with that component's own token): the file is
//! read and validated whole; a config with errors is refused with each error (file, line,
//! column), logged, and the running config stays; a good one is applied to every running part
//! without a restart ([`crate::monitor::Monitor::apply`]). What only a restart can change
//! (listeners, tokens but the alerter's read-only ones, the platform, the data directory, the
//! regions, the store, TLS, the cluster, ...) is named in the log and in the answer when it
//! differs ([`needs_restart`]).

use std::path::PathBuf;

use anyhow::Context;
use lookout_api::reload::{Outcome, ReloadMetrics};

use crate::config::Config;
use crate::monitor::Monitor;

/// What a process runs, and so what a reload changes.
pub enum Part<'a> {
    /// `lookout up`: everything it started (nothing is monitored without checks).
    Suite(Option<&'a Monitor>),
    Collector(&'a lookout_collector::Collector),
    Alerter(&'a lookout_alerting::Alerter),
    StatusPage(&'a lookout_status_page::StatusPage),
    Agent {
        agent: &'a lookout_probes::agent::Agent,
        region: &'a str,
        gateway: Option<&'a str>,
    },
}

impl Part<'_> {
    async fn apply(&self, config: &Config) -> anyhow::Result<String> {
        match self {
            Part::Suite(Some(m)) => m.apply(config).await,
            Part::Suite(None) => Ok("nothing is monitored; the config is valid".to_owned()),
            Part::Collector(c) => apply_collector(c, config).await,
            Part::Alerter(a) => apply_alerter(a, config).await,
            Part::StatusPage(p) => Ok(apply_status_page(p, config)),
            Part::Agent {
                agent,
                region,
                gateway,
            } => Ok(apply_agent(agent, config, region, *gateway).await),
        }
    }
}

pub async fn apply_collector(
    c: &lookout_collector::Collector,
    config: &Config,
) -> anyhow::Result<String> {
    c.set_known(crate::monitor::known_checks(config))
        .await
        .context("the collector could not take the new checks")?;
    Ok(format!("collector: {} checks", config.checks.len()))
}

/// `gateway`: the agent's own `gateway` variable (its region's link), kept over the config's.
pub async fn apply_agent(
    agent: &lookout_probes::agent::Agent,
    config: &Config,
    region: &str,
    gateway: Option<&str>,
) -> String {
    let mut variables: lookout_probes::template::Vars =
        config.variables.clone().into_iter().collect();
    if let Some(g) = gateway {
        variables.insert("gateway".into(), g.to_owned());
    }
    let (added, changed, removed) = agent.set_checks(config.checks.clone(), variables).await;
    format!("probe@{region}: {added} added, {changed} changed, {removed} removed")
}

pub async fn apply_alerter(
    a: &lookout_alerting::Alerter,
    config: &Config,
) -> anyhow::Result<String> {
    let Some(cfg) = config.alerting.as_ref() else {
        return Ok("alerting: the section is gone; it runs on until a restart".into());
    };
    let r = a
        .reload(cfg.reloaded())
        .await
        .context("the alerter could not take the new config")?;
    Ok(format!(
        "alerting: checks {} added, {} changed, {} removed; {} subscriptions; {} notifiers",
        r.checks_added, r.checks_changed, r.checks_removed, r.subscriptions, r.notifiers
    ))
}

pub fn apply_status_page(p: &lookout_status_page::StatusPage, config: &Config) -> String {
    match config.status_page.as_ref() {
        Some(sp) => {
            p.set_text(sp.title.clone(), sp.groups.clone(), sp.regions.clone());
            "status page: title, components and regions".into()
        }
        None => "status page: the section is gone; it runs on until a restart".into(),
    }
}

/// Shows the reload gauges in `registry` too.
pub fn register(metrics: &ReloadMetrics, registry: &lookout_api::reload::Registry) {
    if let Err(e) = metrics.register(registry) {
        tracing::warn!(error = %e, "the config reload gauges could not be registered");
    }
}

/// Runs until SIGINT or SIGTERM, reloading the config at each SIGHUP and each request.
pub async fn until_stopped(
    reloader: &mut Reloader,
    part: Part<'_>,
    mut requests: Option<lookout_api::reload::Requests>,
    hangup: &mut Option<tokio::signal::unix::Signal>,
) {
    loop {
        let request = async {
            match requests.as_mut() {
                Some(r) => r.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = crate::service::shutdown_signal() => return,
            _ = hangup_of(hangup) => {
                let _ = reloader.reload(&part).await;
            }
            Some(reply) = request => {
                let outcome = reloader.reload(&part).await;
                let _ = reply.send(outcome);
            }
        }
    }
}

pub struct Reloader {
    path: Option<PathBuf>,
    current: Config,
    pub metrics: ReloadMetrics,
}

impl Reloader {
    pub fn new(path: Option<PathBuf>, current: Config) -> anyhow::Result<Reloader> {
        Ok(Reloader {
            path,
            current,
            metrics: ReloadMetrics::new()?,
        })
    }

    fn load(&self) -> Result<Config, crate::config::ConfigErrors> {
        match &self.path {
            Some(p) => Config::load(p),
            None => Config::builtin(),
        }
    }

    /// Reads, validates and applies the config; says what it did.
    pub async fn reload(&mut self, part: &Part<'_>) -> Outcome {
        let source = self
            .path
            .as_ref()
            .map_or("the built-in config".to_owned(), |p| {
                p.display().to_string()
            });
        let new = match self.load() {
            Ok(c) => c,
            Err(errors) => {
                let errors: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
                for e in &errors {
                    tracing::error!(error = %e, "config reload refused");
                }
                tracing::error!(
                    %source,
                    errors = errors.len(),
                    "config reload refused: the running config stays"
                );
                self.metrics.record(false);
                return Err(errors);
            }
        };
        let restart = needs_restart(&self.current, &new);
        for what in &restart {
            tracing::warn!(
                what,
                "config reload: this changed but only takes effect after a restart"
            );
        }
        let summary = match part.apply(&new).await {
            Ok(s) if restart.is_empty() => s,
            Ok(s) => format!(
                "{s}; changed but not applied until a restart: {}",
                restart.join("; ")
            ),
            Err(e) => {
                let e = format!("{e:#}");
                tracing::error!(error = %e, "config reload could not be applied");
                self.metrics.record(false);
                return Err(vec![e]);
            }
        };
        tracing::info!(%source, %summary, "config reloaded");
        self.metrics.record(true);
        self.current = new;
        Ok(summary)
    }
}

/// What differs between two configs that a running suite does not take, so that a reload
/// never changes something silently: everything a reload applies (checks, SLOs, variables,
/// the alerter's checks, subscriptions, notifiers, intervals, links and read-only tokens, the
/// status page's title, components and regions) is left out, everything else is named.
fn needs_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut differs = |what: &'static str, a: String, b: String| {
        if a != b {
            out.push(what);
        }
    };
    differs("log", format!("{:?}", old.log), format!("{:?}", new.log));
    differs(
        "data_dir",
        format!("{:?}", old.data_dir),
        format!("{:?}", new.data_dir),
    );
    differs(
        "platform",
        format!("{:?}", old.platform),
        format!("{:?}", new.platform),
    );
    differs(
        "probes (regions, spool, batches, region links)",
        format!("{:?}", old.probes),
        format!("{:?}", new.probes),
    );
    // Secrets show as redacted in `Debug`: each is compared by what it is.
    let collector = |c: &Config| {
        let c = &c.collector;
        format!(
            "{} {} {:?} {:?} {:?} {:?}",
            c.listen,
            c.token.expose(),
            c.influxdb,
            c.raw_retention,
            c.maintenance,
            c.store
        )
    };
    differs(
        "collector (listen, token, influxdb, raw_retention, maintenance, store)",
        collector(old),
        collector(new),
    );
    let alerting = |c: &Config| {
        c.alerting.as_ref().map(|a| {
            format!(
                "{} {} {} {:?} {:?} {:?} {:?} {:?}",
                a.enabled,
                a.listen,
                a.token.expose(),
                a.confirm_after,
                a.session_ttl,
                a.ack_link_ttl,
                a.prometheus,
                a.heartbeat
            )
        })
    };
    differs(
        "alerting (enabled, listen, token, confirm_after, console, prometheus, heartbeat)",
        format!("{:?}", alerting(old)),
        format!("{:?}", alerting(new)),
    );
    let status_page = |c: &Config| {
        c.status_page.as_ref().map(|p| {
            format!(
                "{} {} {:?} {} {:?} {:?} {} {:?}",
                p.enabled,
                p.listen,
                p.public_url,
                p.admin_token.expose(),
                p.refresh_every,
                p.latency_window,
                p.history_page_size,
                p.reports
            )
        })
    };
    differs(
        "status_page (enabled, listen, public_url, admin_token, refresh, latency window, history, reports)",
        format!("{:?}", status_page(old)),
        format!("{:?}", status_page(new)),
    );
    differs(
        "replacer",
        format!("{:?}", old.replacer),
        format!("{:?}", new.replacer),
    );
    differs(
        "cluster",
        format!("{:?}", old.cluster),
        format!("{:?}", new.cluster),
    );
    differs("tls", format!("{:?}", old.tls), format!("{:?}", new.tls));
    out
}

/// Completes at each SIGHUP (never where there are no signals).
async fn hangup_of(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

pub fn hangup_signal() -> Option<tokio::signal::unix::Signal> {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "SIGHUP cannot be caught here: reload with POST /-/reload");
            None
        }
    }
}

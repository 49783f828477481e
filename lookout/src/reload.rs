//! Reloading the config of a running `lookout up` (SIGHUP, or `POST /-/reload` on the
//! alerter with its token): the file is read and validated whole; a config with errors is
//! refused with each error (file, line, column), logged, and the running config stays; a good
//! one is applied to every running part without a restart ([`crate::monitor::Monitor::apply`]).
//! What only a restart can change (listeners, tokens, the platform, the data directory, the
//! regions, TLS, the cluster) is named in the log when it differs.

use std::path::PathBuf;

use lookout_api::reload::{Outcome, ReloadMetrics};

use crate::config::Config;
use crate::monitor::Monitor;

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
    pub async fn reload(&mut self, monitor: Option<&Monitor>) -> Outcome {
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
        for what in needs_restart(&self.current, &new) {
            tracing::warn!(
                what,
                "config reload: this changed but only takes effect after a restart"
            );
        }
        let summary = match monitor {
            Some(m) => match m.apply(&new).await {
                Ok(s) => s,
                Err(e) => {
                    let e = format!("{e:#}");
                    tracing::error!(error = %e, "config reload could not be applied");
                    self.metrics.record(false);
                    return Err(vec![e]);
                }
            },
            None => "nothing is monitored; the config is valid".to_owned(),
        };
        tracing::info!(%source, %summary, "config reloaded");
        self.metrics.record(true);
        self.current = new;
        Ok(summary)
    }
}

/// What differs between two configs that a running suite cannot take.
fn needs_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut differs = |what: &'static str, a: String, b: String| {
        if a != b {
            out.push(what);
        }
    };
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
        "probes.regions",
        format!("{:?}", old.probes.regions),
        format!("{:?}", new.probes.regions),
    );
    differs(
        "collector.listen",
        old.collector.listen.to_string(),
        new.collector.listen.to_string(),
    );
    differs(
        "collector.token",
        old.collector.token.expose().to_owned(),
        new.collector.token.expose().to_owned(),
    );
    let alerting = |c: &Config| {
        c.alerting.as_ref().map(|a| {
            (
                a.enabled,
                a.listen,
                a.token.expose().to_owned(),
                a.confirm_after,
            )
        })
    };
    differs(
        "alerting (listen, token, confirm_after)",
        format!("{:?}", alerting(old)),
        format!("{:?}", alerting(new)),
    );
    differs(
        "status_page",
        format!("{:?}", old.status_page),
        format!("{:?}", new.status_page),
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
pub async fn hangup(signal: &mut Option<tokio::signal::unix::Signal>) {
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

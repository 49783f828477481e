//! Lookout's one YAML file: loaded once, with `${ENV}` interpolation, every error collected
//! with its file, line and column before anything starts, and turned into validated types
//! that the rest of the program uses without checking again.

mod interpolate;
mod raw;
pub mod tls;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;

use lookout_alerting::config::AlertingConfig;
use lookout_collector::config::CollectorConfig;
use lookout_conf::{Located, Report, Spanned};
use lookout_probes::config::ProbesConfig;
use lookout_replacer::config::ReplacerConfig;
use lookout_services::config::PlatformConfig;
use lookout_status_page::config::{KnownCheck, StatusPageConfig};

pub use raw::LogFormat;
use raw::RawConfig;

/// The config `lookout up` uses when given none.
pub const DEFAULT_CONFIG: &str = include_str!("../../../examples/lookout.yaml");
pub const DEFAULT_CONFIG_NAME: &str = "<built-in examples/lookout.yaml>";

/// One problem in a config file, with where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// Where in the document, e.g. `platform.gateway.users[1].token`; empty for syntax errors.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a config file, in file order.
#[derive(Debug, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

/// A validated config.
#[derive(Debug, Clone)]
pub struct Config {
    pub log: LogConfig,
    /// Where spools (and, later, the collector's store) live.
    pub data_dir: std::path::PathBuf,
    pub platform: PlatformConfig,
    pub collector: CollectorConfig,
    pub probes: ProbesConfig,
    pub variables: BTreeMap<String, String>,
    pub checks: Vec<std::sync::Arc<lookout_probes::check::Check>>,
    /// Each check's SLO, by name: the collector's to serve.
    pub slos: BTreeMap<String, lookout_model::slo::Slo>,
    /// `None` when the config has no `alerting:` section.
    pub alerting: Option<AlertingConfig>,
    /// `None` when the config has no `status_page:` section.
    pub status_page: Option<StatusPageConfig>,
    /// `None` when the config has no `replacer:` section.
    pub replacer: Option<ReplacerConfig>,
    /// `None` when the config has no `cluster:` section: one process, no replicated log.
    pub cluster: Option<lookout_cluster::ClusterConfig>,
    /// TLS on the collector's, alerter's and status page's listeners, and the roots their
    /// clients trust.
    pub tls: tls::TlsConfig,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: name.clone(),
                line: 0,
                column: 0,
                path: String::new(),
                message: format!("cannot read the config file: {e}"),
            }])
        })?;
        Self::parse(&text, &name, &|k| std::env::var(k).ok())
    }

    pub fn builtin() -> Result<Config, ConfigErrors> {
        Self::parse(DEFAULT_CONFIG, DEFAULT_CONFIG_NAME, &|k| {
            std::env::var(k).ok()
        })
    }

    /// Parses and validates `text`; `file` names it in errors, `env` resolves `${VAR}`.
    pub fn parse(
        text: &str,
        file: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigErrors> {
        let at = |line: usize, column: usize, path: &str, message: String| ConfigError {
            file: file.to_owned(),
            line,
            column,
            path: path.to_owned(),
            message,
        };
        let interpolated = interpolate::interpolate(text, env).map_err(|errs| {
            ConfigErrors(
                errs.into_iter()
                    .map(|e| at(e.line, e.column, "", e.message))
                    .collect(),
            )
        })?;
        let options = serde_saphyr::options! { with_snippet: false };
        let raw: RawConfig = serde_saphyr::from_str_with_options(&interpolated.text, options)
            .map_err(|e| {
                let (line, column) = e
                    .location()
                    .map(|l| interpolated.original_position(l.line() as usize, l.column() as usize))
                    .unwrap_or((1, 1));
                ConfigErrors(vec![at(
                    line,
                    column,
                    "",
                    interpolated.redact(&raw::describe(&e)),
                )])
            })?;
        let mut errors = Vec::new();
        let base_dir = Path::new(file)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let config = validate(
            raw,
            &base_dir,
            &mut |loc: Option<Located>, path: &str, message: String| {
                let (line, column) = loc
                    .map(|l| interpolated.original_position(l.line, l.column))
                    .unwrap_or((1, 1));
                errors.push(at(line, column, path, interpolated.redact(&message)));
            },
        );
        if errors.is_empty() {
            Ok(config)
        } else {
            errors.sort_by_key(|e| (e.line, e.column));
            Err(ConfigErrors(errors))
        }
    }
}

/// Listeners with a fixed port, each claimed once across the whole file.
#[derive(Default)]
struct Listeners(HashSet<SocketAddr>);

impl Listeners {
    fn claim(&mut self, addr: SocketAddr, loc: Option<Located>, path: &str, report: &mut Report) {
        if addr.port() != 0 && !self.0.insert(addr) {
            report(
                loc,
                path,
                format!("{addr} is already used by another listener in this file"),
            );
        }
    }
}

fn loc_of<T>(v: &Option<Spanned<T>>) -> Option<Located> {
    v.as_ref().and_then(Spanned::loc)
}

/// Each section is validated by its component; what crosses sections is checked here: one
/// listener per address, check names that other sections refer to, the suite's token.
fn validate(raw: RawConfig, base_dir: &Path, report: &mut Report) -> Config {
    let log = LogConfig {
        format: raw.log.format.unwrap_or(LogFormat::Text),
        level: match raw.log.level {
            Some(level) => {
                if let Err(e) = tracing_subscriber::EnvFilter::try_new(&level.value) {
                    report(
                        level.loc(),
                        "log.level",
                        format!(
                            "{:?} is not a log filter: {e}; write e.g. `info` or `lookout=debug,warn`",
                            level.value
                        ),
                    );
                }
                level.value
            }
            None => "info".into(),
        },
    };
    let mut listeners = Listeners::default();

    let gateway = raw.platform.gateway.as_ref().map(|g| &g.value);
    let gateway_locs = (
        gateway.and_then(|g| loc_of(&g.listen)),
        gateway.and_then(|g| loc_of(&g.admin_listen)),
    );
    let p = &raw.platform;
    let service_locs: Vec<Vec<Option<Located>>> = [
        &p.catalogue.listen,
        &p.mixes.listen,
        &p.media.listen,
        &p.analytics.listen,
    ]
    .iter()
    .map(|l| {
        l.as_ref()
            .map(|l| l.value.iter().map(Spanned::loc).collect())
            .unwrap_or_default()
    })
    .collect();
    let platform = lookout_services::config::validate(raw.platform, report);
    let g = &platform.gateway;
    listeners.claim(g.listen, gateway_locs.0, "platform.gateway.listen", report);
    listeners.claim(
        g.admin_listen,
        gateway_locs.1,
        "platform.gateway.admin_listen",
        report,
    );
    for (service, locs) in platform.services.iter().zip(&service_locs) {
        if locs.is_empty() {
            continue;
        }
        for (i, addr) in service.listen.iter().enumerate() {
            let path = format!("platform.{}.listen[{i}]", service.kind);
            listeners.claim(*addr, locs.get(i).copied().flatten(), &path, report);
        }
    }

    let probes = lookout_probes::config::validate_probes(raw.probes, report);
    let variables = lookout_probes::config::validate_variables(&raw.variables, report);
    let slo_defaults =
        lookout_conf::slo::validate_slo(raw.slo, lookout_model::slo::Slo::default(), "slo", report);
    let (checks, slos) = lookout_probes::config::validate_checks(
        raw.checks,
        &probes.regions,
        &variables,
        slo_defaults,
        base_dir,
        report,
    );
    let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();

    let collector_loc = loc_of(&raw.collector.listen);
    let data_dir: std::path::PathBuf = raw
        .data_dir
        .map(|d| d.value.into())
        .unwrap_or_else(|| "lookout-data".into());
    let collector = lookout_collector::config::validate(
        raw.collector,
        raw.maintenance,
        &names,
        &data_dir,
        report,
    );
    if !checks.is_empty() {
        listeners.claim(collector.listen, collector_loc, "collector.listen", report);
    }
    let token = collector.token.clone();

    let alerting = raw.alerting.map(|a| {
        let loc = loc_of(&a.listen);
        let written = a.listen.is_some();
        let known: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut cfg = lookout_alerting::config::validate(a, &known, report);
        if written && cfg.enabled {
            listeners.claim(cfg.listen, loc, "alerting.listen", report);
        }
        if cfg.token.is_empty() {
            // One token for the whole suite unless the alerter is given its own.
            cfg.token = token.clone();
        }
        cfg
    });
    let status_page = raw.status_page.map(|sp| {
        let loc = loc_of(&sp.listen);
        let written = sp.listen.is_some();
        let known: Vec<KnownCheck> = checks
            .iter()
            .map(|c| KnownCheck {
                name: &c.name,
                description: &c.description,
            })
            .collect();
        let mut cfg = lookout_status_page::config::validate(sp, &known, &probes.regions, report);
        if written && cfg.enabled {
            listeners.claim(cfg.listen, loc, "status_page.listen", report);
        }
        if cfg.admin_token.is_empty() {
            cfg.admin_token = token.clone();
        }
        cfg
    });
    let replacer = raw.replacer.map(|r| {
        let loc = loc_of(&r.listen);
        let written = r.listen.is_some();
        let cfg = lookout_replacer::config::validate(r, report);
        if written && cfg.enabled {
            listeners.claim(cfg.listen, loc, "replacer.listen", report);
        }
        cfg
    });
    let cluster = raw
        .cluster
        .map(|c| lookout_cluster::config::validate(c, report));
    let tls = tls::validate(raw.tls, report);
    Config {
        tls,
        alerting,
        status_page,
        replacer,
        cluster,
        log,
        data_dir,
        collector,
        probes,
        variables,
        checks,
        slos,
        platform,
    }
}

#[cfg(test)]
mod tests;

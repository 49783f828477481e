//! Lookout's one YAML file: loaded once, with `${ENV}` interpolation, every error collected
//! with its file, line and column before anything starts, and turned into validated types
//! that the rest of the program uses without checking again.

pub mod alerting;
mod checks;
mod interpolate;
mod raw;
pub mod replacer;
pub mod slo;
pub mod status_page;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use lookout_model::secret::Secret;
use lookout_services::ServiceKind;
use lookout_services::gateway::UserToken;

pub use raw::LogFormat;
use raw::{Located, RawConfig};

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

/// One service's instances.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub kind: ServiceKind,
    /// One address per instance; port 0 picks a free port.
    pub listen: Vec<SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    /// Everything but the upstreams, which are known only once the instances run.
    pub settings: lookout_services::GatewaySettings,
}

#[derive(Debug, Clone)]
pub struct PlatformConfig {
    pub seed: u64,
    pub artists: u32,
    pub admin_token: Secret,
    pub gateway: GatewayConfig,
    /// catalogue, mixes, media and analytics, in start order.
    pub services: Vec<ServiceConfig>,
    pub analytics_queue_capacity: usize,
}

#[derive(Debug, Clone)]
pub struct CollectorConfig {
    pub listen: SocketAddr,
    pub token: Secret,
    /// Copy every stored result to InfluxDB v2; `None` when not configured.
    pub influxdb: Option<lookout_collector::sink::InfluxConfig>,
    /// How long raw results are kept; results older than this are refused.
    pub raw_retention: Duration,
    /// The config's maintenance windows, for the collector.
    pub maintenance: Vec<lookout_collector::MaintenanceSpec>,
}

#[derive(Debug, Clone)]
pub struct ProbesConfig {
    pub regions: Vec<String>,
    pub spool_max_bytes: u64,
    pub batch_max: usize,
    pub flush_interval: Duration,
    pub run_on_start: bool,
    pub region_links: bool,
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
    pub alerting: Option<alerting::AlertingConfig>,
    /// `None` when the config has no `status_page:` section.
    pub status_page: Option<status_page::StatusPageConfig>,
    /// `None` when the config has no `replacer:` section.
    pub replacer: Option<replacer::ReplacerConfig>,
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

type Report<'a> = dyn FnMut(Option<Located>, &str, String) + 'a;

fn check_duration(
    report: &mut Report,
    v: &raw::Spanned<raw::Dur>,
    path: &str,
    min: Duration,
    max: Duration,
) {
    let d = v.value.0;
    if d < min || d > max {
        report(
            v.loc(),
            path,
            format!(
                "must be from {} to {}, got {}",
                humantime::format_duration(min),
                humantime::format_duration(max),
                humantime::format_duration(d)
            ),
        );
    }
}

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
    let p = raw.platform;
    let artists = p
        .artists
        .as_ref()
        .map(|a| a.value)
        .unwrap_or(lookout_services::data::DEFAULT_ARTISTS);
    if let Some(a) = &p.artists
        && !(100..=200_000).contains(&a.value)
    {
        report(
            a.loc(),
            "platform.artists",
            format!("must be from 100 to 200000, got {}", a.value),
        );
    }
    let admin_token = match p.admin_token {
        Some(t) if t.value.is_empty() => {
            report(
                t.loc(),
                "platform.admin_token",
                "must not be empty: it guards the fault-injection API".into(),
            );
            t.value
        }
        Some(t) => t.value,
        None => {
            report(None, "platform.admin_token", "is required: it guards the fault-injection API (e.g. `admin_token: ${LOOKOUT_ADMIN_TOKEN}`)".into());
            Secret::default()
        }
    };

    let mut fixed_addresses: HashSet<SocketAddr> = HashSet::new();
    let mut claim = |addr: &raw::Spanned<SocketAddr>, path: &str, report: &mut Report| {
        if addr.value.port() != 0 && !fixed_addresses.insert(addr.value) {
            report(
                addr.loc(),
                path,
                format!(
                    "{} is already used by another listener in this file",
                    addr.value
                ),
            );
        }
    };

    let gateway_loc = p.gateway.as_ref().and_then(|g| g.loc());
    let g = p.gateway.map(|g| g.value).unwrap_or_default();
    let listen = g
        .listen
        .unwrap_or_else(|| raw::Spanned::unlocated(SocketAddr::from(([127, 0, 0, 1], 8080))));
    claim(&listen, "platform.gateway.listen", report);
    let admin_listen = g
        .admin_listen
        .unwrap_or_else(|| raw::Spanned::unlocated(SocketAddr::new(listen.value.ip(), 0)));
    claim(&admin_listen, "platform.gateway.admin_listen", report);
    let mut seen_keys: Vec<&Secret> = Vec::new();
    for (i, key) in g.api_keys.iter().enumerate() {
        let path = format!("platform.gateway.api_keys[{i}]");
        if key.value.is_empty() {
            report(key.loc(), &path, "must not be empty".into());
        } else if seen_keys.contains(&&key.value) {
            report(key.loc(), &path, "is listed twice".into());
        }
        seen_keys.push(&key.value);
    }
    let mut users: Vec<UserToken> = Vec::new();
    for (i, u) in g.users.iter().enumerate() {
        let path = format!("platform.gateway.users[{i}]");
        let user = &u.value;
        let valid_id = !user.user.is_empty()
            && user.user.len() <= 64
            && user
                .user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
        if !valid_id {
            report(
                u.loc(),
                &format!("{path}.user"),
                format!(
                    "{:?} is not a user id: 1 to 64 letters, digits, `-`, `_`, `.` or `@`",
                    user.user
                ),
            );
        }
        if user.token.is_empty() {
            report(
                u.loc(),
                &format!("{path}.token"),
                "must not be empty".into(),
            );
        }
        if users.iter().any(|o| o.token == user.token) || seen_keys.contains(&&user.token) {
            report(
                u.loc(),
                &format!("{path}.token"),
                "is already used by another user or API key".into(),
            );
        }
        if users.iter().any(|o| o.user == user.user) {
            report(
                u.loc(),
                &format!("{path}.user"),
                format!("user {:?} is listed twice", user.user),
            );
        }
        if !(user.country.len() == 2 && user.country.chars().all(|c| c.is_ascii_uppercase())) {
            report(
                u.loc(),
                &format!("{path}.country"),
                format!(
                    "{:?} is not an ISO 3166 country code such as GB",
                    user.country
                ),
            );
        }
        if !(user.language.len() == 2 && user.language.chars().all(|c| c.is_ascii_lowercase())) {
            report(
                u.loc(),
                &format!("{path}.language"),
                format!(
                    "{:?} is not an ISO 639-1 language code such as en",
                    user.language
                ),
            );
        }
        users.push(user.clone());
    }
    if g.api_keys.is_empty() && g.users.is_empty() {
        report(
            gateway_loc,
            "platform.gateway",
            "needs at least one of `api_keys` or `users`, or nobody can call the platform".into(),
        );
    }
    if let Some(c) = &g.default_country
        && !(c.value.len() == 2 && c.value.chars().all(|x| x.is_ascii_uppercase()))
    {
        report(
            c.loc(),
            "platform.gateway.default_country",
            format!("{:?} is not an ISO 3166 country code such as GB", c.value),
        );
    }
    if let Some(k) = &g.signing_key
        && k.value.expose().len() < 16
    {
        report(
            k.loc(),
            "platform.gateway.signing_key",
            "must be at least 16 characters: it signs play URLs".into(),
        );
    }
    let default_country = g
        .default_country
        .map(|c| c.value)
        .unwrap_or_else(|| "GB".into());
    let ms = Duration::from_millis;
    let health_interval = g
        .health_interval
        .as_ref()
        .map(|d| d.value.0)
        .unwrap_or(ms(1000));
    let health_timeout = g
        .health_timeout
        .as_ref()
        .map(|d| d.value.0)
        .unwrap_or(ms(500));
    let upstream_timeout = g
        .upstream_timeout
        .as_ref()
        .map(|d| d.value.0)
        .unwrap_or(ms(2000));
    if let Some(d) = &g.health_interval {
        check_duration(
            report,
            d,
            "platform.gateway.health_interval",
            ms(100),
            Duration::from_secs(300),
        );
    }
    if let Some(d) = &g.health_timeout {
        check_duration(
            report,
            d,
            "platform.gateway.health_timeout",
            ms(10),
            Duration::from_secs(60),
        );
    }
    if health_timeout >= health_interval {
        let at = g
            .health_timeout
            .as_ref()
            .or(g.health_interval.as_ref())
            .and_then(|d| d.loc());
        report(
            at,
            "platform.gateway.health_timeout",
            format!(
                "({}) must be shorter than health_interval ({})",
                humantime::format_duration(health_timeout),
                humantime::format_duration(health_interval)
            ),
        );
    }
    if let Some(d) = &g.upstream_timeout {
        check_duration(
            report,
            d,
            "platform.gateway.upstream_timeout",
            ms(10),
            Duration::from_secs(60),
        );
    }
    if let Some(u) = &g.public_url {
        let ok = reqwest_like_url(&u.value);
        if !ok {
            report(
                u.loc(),
                "platform.gateway.public_url",
                format!("{:?} is not an http(s) URL", u.value),
            );
        }
    }
    let gateway = GatewayConfig {
        listen: listen.value,
        admin_listen: admin_listen.value,
        settings: lookout_services::GatewaySettings {
            upstreams: BTreeMap::new(),
            api_keys: g.api_keys.into_iter().map(|k| k.value).collect(),
            users,
            default_country,
            health_interval,
            health_timeout,
            upstream_timeout,
            signing_key: g.signing_key.map(|s| s.value),
            public_url: g.public_url.map(|u| u.value),
        },
    };

    let mut services = Vec::new();
    let sections = [
        (ServiceKind::Catalogue, p.catalogue),
        (ServiceKind::Mixes, p.mixes),
        (ServiceKind::Media, p.media),
        (
            ServiceKind::Analytics,
            raw::RawService {
                instances: p.analytics.instances,
                listen: p.analytics.listen,
            },
        ),
    ];
    for (kind, section) in sections {
        let path = format!("platform.{kind}");
        let instances = match &section.instances {
            Some(n) if !(1..=16).contains(&n.value) => {
                report(
                    n.loc(),
                    &format!("{path}.instances"),
                    format!("must be from 1 to 16, got {}", n.value),
                );
                1
            }
            Some(n) => n.value as usize,
            None => 2,
        };
        let listen = match &section.listen {
            Some(list) => {
                if list.value.len() != instances {
                    report(
                        list.loc(),
                        &format!("{path}.listen"),
                        format!(
                            "lists {} addresses for {instances} instances; give one per instance, or leave it out for free ports",
                            list.value.len()
                        ),
                    );
                }
                for (i, a) in list.value.iter().enumerate() {
                    claim(a, &format!("{path}.listen[{i}]"), report);
                }
                list.value.iter().map(|a| a.value).collect()
            }
            None => vec![SocketAddr::from(([127, 0, 0, 1], 0)); instances],
        };
        services.push(ServiceConfig { kind, listen });
    }
    let analytics_queue_capacity = match &p.analytics.queue_capacity {
        Some(q) if !(1..=10_000_000).contains(&q.value) => {
            report(
                q.loc(),
                "platform.analytics.queue_capacity",
                format!("must be from 1 to 10000000, got {}", q.value),
            );
            1
        }
        Some(q) => q.value,
        None => 10_000,
    };
    let regions = checks::validate_regions(raw.probes.regions, report);
    let variables = checks::validate_variables(&raw.variables, report);
    let slo_defaults =
        slo::validate_slo(raw.slo, lookout_model::slo::Slo::default(), "slo", report);
    let (checks, slos) = checks::validate_checks(
        raw.checks,
        &regions,
        &variables,
        slo_defaults,
        base_dir,
        report,
    );
    let maintenance = {
        let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
        slo::validate_maintenance(raw.maintenance, &names, report)
    };
    let ms = Duration::from_millis;
    let flush_interval = match &raw.probes.flush_interval {
        Some(d) => {
            check_duration(
                report,
                d,
                "probes.flush_interval",
                ms(10),
                Duration::from_secs(60),
            );
            d.value.0
        }
        None => ms(250),
    };
    let spool_max_bytes = match &raw.probes.spool_max_mb {
        Some(m) if !(1..=100_000).contains(&m.value) => {
            report(
                m.loc(),
                "probes.spool_max_mb",
                format!("must be from 1 to 100000, got {}", m.value),
            );
            64 << 20
        }
        Some(m) => m.value << 20,
        None => 64 << 20,
    };
    let batch_max = match &raw.probes.batch_max {
        Some(b) if !(1..=lookout_collector::ingest::MAX_BATCH).contains(&b.value) => {
            report(
                b.loc(),
                "probes.batch_max",
                format!(
                    "must be from 1 to {}, got {}",
                    lookout_collector::ingest::MAX_BATCH,
                    b.value
                ),
            );
            500
        }
        Some(b) => b.value,
        None => 500,
    };
    let collector_listen = raw
        .collector
        .listen
        .unwrap_or_else(|| raw::Spanned::unlocated(SocketAddr::from(([127, 0, 0, 1], 8090))));
    if !checks.is_empty() {
        claim(&collector_listen, "collector.listen", report);
    }
    let token = match raw.collector.token {
        Some(t) if t.value.is_empty() => {
            report(
                t.loc(),
                "collector.token",
                "must not be empty: agents authenticate with it".into(),
            );
            t.value
        }
        Some(t) => t.value,
        None => {
            if !checks.is_empty() {
                report(None, "collector.token", "is required when there are checks: agents send it to the collector (e.g. `token: ${LOOKOUT_TOKEN}`)".into());
            }
            Secret::default()
        }
    };
    let influxdb = raw
        .collector
        .influxdb
        .map(|i| validate_influx(i.value, report));
    let raw_retention = checks::duration_in(
        report,
        &raw.collector.raw_retention,
        "collector.raw_retention",
        Duration::from_secs(14 * 86_400),
        Duration::from_secs(3_600),
        Duration::from_secs(400 * 86_400),
    );
    let alerting = raw.alerting.map(|a| {
        let listen = a.listen.clone();
        let known: Vec<String> = checks.iter().map(|c| c.name.clone()).collect();
        let mut cfg = alerting::validate(a, &known, report);
        if let Some(l) = listen
            && cfg.enabled
        {
            claim(&l, "alerting.listen", report);
        }
        if cfg.token.is_empty() {
            // One token for the whole suite unless the alerter is given its own.
            cfg.token = token.clone();
        }
        cfg
    });
    let status_page = raw.status_page.map(|sp| {
        let listen = sp.listen.clone();
        let mut cfg = status_page::validate(sp, &checks, &regions, report);
        if let Some(l) = listen
            && cfg.enabled
        {
            claim(&l, "status_page.listen", report);
        }
        if cfg.admin_token.is_empty() {
            cfg.admin_token = token.clone();
        }
        cfg
    });
    let replacer = raw.replacer.map(|r| {
        let listen = r.listen.clone();
        let cfg = replacer::validate(r, report);
        if let Some(l) = listen
            && cfg.enabled
        {
            claim(&l, "replacer.listen", report);
        }
        cfg
    });
    Config {
        alerting,
        status_page,
        replacer,
        log,
        data_dir: raw
            .data_dir
            .map(|d| d.value.into())
            .unwrap_or_else(|| "lookout-data".into()),
        collector: CollectorConfig {
            listen: collector_listen.value,
            token,
            influxdb,
            raw_retention,
            maintenance,
        },
        probes: ProbesConfig {
            regions,
            spool_max_bytes,
            batch_max,
            flush_interval,
            run_on_start: raw.probes.run_on_start.unwrap_or(true),
            region_links: raw.probes.region_links.unwrap_or(true),
        },
        variables,
        checks,
        slos,
        platform: PlatformConfig {
            seed: p.seed.unwrap_or(42),
            artists,
            admin_token,
            gateway,
            services,
            analytics_queue_capacity,
        },
    }
}

/// `collector.influxdb`, held to the sink's own rules so that it starts without a complaint.
fn validate_influx(
    i: raw::RawInflux,
    report: &mut Report,
) -> lookout_collector::sink::InfluxConfig {
    use lookout_collector::sink;
    if let Err(e) = sink::check_base_url(&i.url.value) {
        report(i.url.loc(), "collector.influxdb.url", e);
    }
    for (v, key) in [
        (&i.org, "collector.influxdb.org"),
        (&i.bucket, "collector.influxdb.bucket"),
    ] {
        if v.value.trim().is_empty() {
            report(v.loc(), key, "must not be empty".into());
        }
    }
    if i.token.value.is_empty() {
        report(
            i.token.loc(),
            "collector.influxdb.token",
            "must not be empty: InfluxDB authenticates writes with it (e.g. `token: ${INFLUX_TOKEN}`)".into(),
        );
    }
    let mut config =
        sink::InfluxConfig::new(&i.url.value, &i.org.value, &i.bucket.value, i.token.value);
    let d = &mut config.delivery;
    d.batch_size = count_in(
        report,
        i.batch_size.as_ref(),
        "collector.influxdb.batch_size",
        50_000,
        sink::DEFAULT_BATCH_SIZE,
    );
    d.max_buffered = count_in(
        report,
        i.max_buffered.as_ref(),
        "collector.influxdb.max_buffered",
        10_000_000,
        sink::DEFAULT_MAX_BUFFERED,
    );
    if let Some(f) = &i.flush_interval {
        check_duration(
            report,
            f,
            "collector.influxdb.flush_interval",
            Duration::from_millis(10),
            Duration::from_secs(60),
        );
        d.flush_interval = f.value.0;
    }
    config
}

/// A count from 1 to `max`, or `default` when not given.
fn count_in(
    report: &mut Report,
    v: Option<&raw::Spanned<usize>>,
    path: &str,
    max: usize,
    default: usize,
) -> usize {
    match v {
        Some(n) if !(1..=max).contains(&n.value) => {
            report(
                n.loc(),
                path,
                format!("must be from 1 to {max}, got {}", n.value),
            );
            default
        }
        Some(n) => n.value,
        None => default,
    }
}

fn reqwest_like_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace))
}

impl PlatformConfig {
    pub fn service(&self, kind: ServiceKind) -> Option<&ServiceConfig> {
        self.services.iter().find(|s| s.kind == kind)
    }

    /// The gateway's settings, given the base URLs of every upstream instance.
    pub fn gateway_settings(
        &self,
        upstreams: BTreeMap<String, Vec<String>>,
    ) -> lookout_services::GatewaySettings {
        lookout_services::GatewaySettings {
            upstreams,
            ..self.gateway.settings.clone()
        }
    }

    /// What every instance of `kind` is started with; service-specific settings come after.
    pub fn instance_spec(
        &self,
        kind: lookout_services::ServiceKind,
    ) -> lookout_services::InstanceSpec {
        lookout_services::InstanceSpec {
            kind,
            seed: self.seed,
            artists: self.artists,
            admin_token: self.admin_token.clone(),
            gateway: None,
            analytics: None,
        }
    }
}

#[cfg(test)]
mod tests;

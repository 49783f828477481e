//! `collector:` and the top-level `maintenance:` in the config: the collector's listener and
//! token, its InfluxDB copy, how long raw results are kept, and the config's maintenance windows
//! (held to the same rules as windows made through the API).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use lookout_conf::{Dur, Report, Spanned, check_duration, duration_in, number_in};
use lookout_model::secret::Secret;
use serde::Deserialize;

use crate::MaintenanceSpec;
use crate::sink;
use crate::store::StoreConfig;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCollector {
    pub listen: Option<Spanned<SocketAddr>>,
    /// Agents send it; the collector's API requires it.
    pub token: Option<Spanned<Secret>>,
    /// Copy every stored result to InfluxDB v2 (or a server that speaks its write API).
    pub influxdb: Option<Spanned<RawInflux>>,
    /// How long raw results are kept (rollups are kept for 400 days).
    pub raw_retention: Option<Spanned<Dur>>,
    /// Where results are kept: `{ type: sqlite, path: FILE }` (the default, at
    /// `DATA_DIR/collector.db`) or `{ type: memory }`.
    pub store: Option<Spanned<RawStore>>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum RawStore {
    Sqlite {
        /// Relative to `data_dir`.
        path: Option<String>,
    },
    Memory,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInflux {
    pub url: Spanned<String>,
    pub org: Spanned<String>,
    pub bucket: Spanned<String>,
    pub token: Spanned<Secret>,
    pub batch_size: Option<Spanned<usize>>,
    pub flush_interval: Option<Spanned<Dur>>,
    pub max_buffered: Option<Spanned<usize>>,
}

#[derive(Debug, Clone)]
pub struct CollectorConfig {
    pub listen: SocketAddr,
    pub token: Secret,
    /// Copy every stored result to InfluxDB v2; `None` when not configured.
    pub influxdb: Option<sink::InfluxConfig>,
    /// How long raw results are kept; results older than this are refused.
    pub raw_retention: Duration,
    /// The config's maintenance windows.
    pub maintenance: Vec<MaintenanceSpec>,
    pub store: StoreConfig,
}

/// Where the collector listens unless the config says.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8090);

/// `collector:` and `maintenance:`. `checks`: the config's check names, which windows may
/// name; without any, the collector has nothing to serve and needs no token. A store's relative
/// path is under `data_dir`.
pub fn validate(
    raw: RawCollector,
    maintenance: Vec<Spanned<RawMaintenance>>,
    checks: &[&str],
    data_dir: &Path,
    report: &mut Report,
) -> CollectorConfig {
    let token = match raw.token {
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
    CollectorConfig {
        listen: raw.listen.map_or(DEFAULT_LISTEN, |l| l.value),
        token,
        influxdb: raw.influxdb.map(|i| validate_influx(i.value, report)),
        raw_retention: duration_in(
            report,
            &raw.raw_retention,
            "collector.raw_retention",
            Duration::from_secs(14 * 86_400),
            Duration::from_secs(3_600),
            Duration::from_secs(400 * 86_400),
        ),
        maintenance: validate_maintenance(maintenance, checks, report),
        store: validate_store(raw.store, data_dir, report),
    }
}

fn validate_store(
    raw: Option<Spanned<RawStore>>,
    data_dir: &Path,
    report: &mut Report,
) -> StoreConfig {
    let default = || data_dir.join("collector.db");
    let Some(raw) = raw else {
        return StoreConfig::Sqlite { path: default() };
    };
    let loc = raw.loc();
    match raw.value {
        RawStore::Memory => StoreConfig::Memory,
        RawStore::Sqlite { path: None } => StoreConfig::Sqlite { path: default() },
        RawStore::Sqlite { path: Some(p) } if p.trim().is_empty() => {
            report(
                loc,
                "collector.store.path",
                "must not be empty: leave it out for DATA_DIR/collector.db".into(),
            );
            StoreConfig::Sqlite { path: default() }
        }
        RawStore::Sqlite { path: Some(p) } => StoreConfig::Sqlite {
            path: data_dir.join(p),
        },
    }
}

/// `collector.influxdb`, held to the sink's own rules so that it starts without a complaint.
fn validate_influx(i: RawInflux, report: &mut Report) -> sink::InfluxConfig {
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
    d.batch_size = number_in(
        report,
        i.batch_size.as_ref(),
        "collector.influxdb.batch_size",
        sink::DEFAULT_BATCH_SIZE,
        1,
        50_000,
    );
    d.max_buffered = number_in(
        report,
        i.max_buffered.as_ref(),
        "collector.influxdb.max_buffered",
        sink::DEFAULT_MAX_BUFFERED,
        1,
        10_000_000,
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

/// A maintenance window as written in the config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMaintenance {
    pub name: String,
    #[serde(default)]
    pub checks: Vec<String>,
    pub starts: String,
    pub ends: String,
    #[serde(default)]
    pub message: String,
}

/// The config's maintenance windows, by the collector's rules; `known`: the config's checks.
pub fn validate_maintenance(
    raw: Vec<Spanned<RawMaintenance>>,
    known: &[&str],
    report: &mut Report,
) -> Vec<MaintenanceSpec> {
    let mut out = Vec::new();
    for (i, m) in raw.into_iter().enumerate() {
        let (loc, m) = (m.loc(), m.value);
        let path = format!("maintenance[{i}]");
        let time = |v: &str| crate::maintenance::parse_time(v).ok();
        let (Some(starts_us), Some(ends_us)) = (time(&m.starts), time(&m.ends)) else {
            report(
                loc,
                &path,
                "`starts` and `ends` must be RFC 3339 times, e.g. 2026-12-01T02:00:00Z".into(),
            );
            continue;
        };
        let problems = crate::maintenance::problems(
            &m.name,
            &m.message,
            &m.checks,
            (starts_us, ends_us),
            known,
        );
        if !problems.is_empty() {
            for (field, message) in problems {
                report(loc, &format!("{path}.{field}"), message);
            }
            continue;
        }
        out.push(MaintenanceSpec {
            name: m.name.trim().to_owned(),
            message: m.message.trim().to_owned(),
            checks: m.checks,
            starts_us,
            ends_us,
        });
    }
    out
}

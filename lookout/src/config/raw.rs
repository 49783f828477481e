//! The config as written: serde structs that reject unknown keys, with source positions kept
//! for every value that validation may need to complain about.

use std::net::SocketAddr;
use std::time::Duration;

use lookout_model::secret::Secret;
use lookout_services::gateway::UserToken;
use serde::{Deserialize, Deserializer};

/// A 1-based line and column in the interpolated text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Located {
    pub line: usize,
    pub column: usize,
}

/// A value and where it was written.
#[derive(Debug, Clone)]
pub struct Spanned<T> {
    pub value: T,
    loc: Option<Located>,
}

impl<T> Spanned<T> {
    pub fn unlocated(value: T) -> Self {
        Spanned { value, loc: None }
    }

    pub fn loc(&self) -> Option<Located> {
        self.loc
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
        let loc = (s.referenced.line() > 0).then(|| Located {
            line: s.referenced.line() as usize,
            column: s.referenced.column() as usize,
        });
        Ok(Spanned {
            value: s.value,
            loc,
        })
    }
}

/// A duration written with its unit: `500ms`, `10s`, `1m30s`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Text(String),
            Number(f64),
        }
        match Written::deserialize(d)? {
            Written::Text(s) => humantime::parse_duration(s.trim()).map(Dur).map_err(|e| {
                serde::de::Error::custom(format!(
                    "{s:?} is not a duration ({e}); write e.g. `500ms`, `10s` or `1m`"
                ))
            }),
            Written::Number(n) => Err(serde::de::Error::custom(format!(
                "a duration needs a unit: write `{n}s` or `{n}ms`, not `{n}`"
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub log: RawLog,
    pub data_dir: Option<Spanned<String>>,
    pub platform: RawPlatform,
    pub collector: RawCollector,
    pub probes: RawProbes,
    pub variables: std::collections::BTreeMap<String, Spanned<String>>,
    /// The SLO of every check, unless a check gives its own parts.
    pub slo: Option<Spanned<super::slo::RawSlo>>,
    pub checks: Vec<Spanned<RawCheck>>,
    /// Scheduled maintenance windows (the collector's; more come through its API).
    pub maintenance: Vec<Spanned<super::slo::RawMaintenance>>,
    /// The alerter: runs in `lookout up` when this section is there.
    pub alerting: Option<super::alerting::RawAlerting>,
    /// The public status page: runs in `lookout up` when this section is there.
    pub status_page: Option<super::status_page::RawStatusPage>,
    /// The host-health replacer: runs in `lookout up` when this section is there.
    pub replacer: Option<super::replacer::RawReplacer>,
}

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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawProbes {
    pub regions: Option<Spanned<Vec<Spanned<String>>>>,
    pub spool_max_mb: Option<Spanned<u64>>,
    pub batch_max: Option<Spanned<usize>>,
    pub flush_interval: Option<Spanned<Dur>>,
    pub run_on_start: Option<bool>,
    /// Put a controllable TCP proxy (delay, cut) between each region's agent and the gateway.
    pub region_links: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: String,
    pub interval: Option<Spanned<Dur>>,
    pub cron: Option<Spanned<String>>,
    pub timeout: Option<Spanned<Dur>>,
    /// The check's own SLO parts, over the top-level `slo:`.
    pub slo: Option<Spanned<super::slo::RawSlo>>,
    /// Moved into `slo:`; kept to say so.
    pub latency_objective: Option<Spanned<Dur>>,
    pub regions: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub reuse_connections: bool,
    pub ca: Option<Spanned<String>>,
    pub max_body_bytes: Option<Spanned<usize>>,
    pub max_redirects: Option<Spanned<u8>>,
    pub steps: Spanned<Vec<Spanned<RawStep>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub name: Option<String>,
    pub method: Option<Spanned<String>>,
    pub url: Spanned<String>,
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, Spanned<String>>,
    pub body: Option<Spanned<String>>,
    #[serde(default)]
    pub capture: Vec<Spanned<lookout_probes::capture::CaptureConfig>>,
    #[serde(default)]
    pub assert: Vec<Spanned<lookout_probes::assert::AssertionConfig>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    pub format: Option<LogFormat>,
    pub level: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPlatform {
    pub seed: Option<u64>,
    pub artists: Option<Spanned<u32>>,
    pub admin_token: Option<Spanned<Secret>>,
    pub gateway: Option<Spanned<RawGateway>>,
    pub catalogue: RawService,
    pub mixes: RawService,
    pub media: RawService,
    pub analytics: RawAnalytics,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawGateway {
    pub listen: Option<Spanned<SocketAddr>>,
    pub admin_listen: Option<Spanned<SocketAddr>>,
    pub api_keys: Vec<Spanned<Secret>>,
    pub users: Vec<Spanned<UserToken>>,
    pub default_country: Option<Spanned<String>>,
    pub health_interval: Option<Spanned<Dur>>,
    pub health_timeout: Option<Spanned<Dur>>,
    pub upstream_timeout: Option<Spanned<Dur>>,
    pub signing_key: Option<Spanned<Secret>>,
    pub public_url: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawService {
    pub instances: Option<Spanned<u32>>,
    pub listen: Option<Spanned<Vec<Spanned<SocketAddr>>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAnalytics {
    pub instances: Option<Spanned<u32>>,
    pub listen: Option<Spanned<Vec<Spanned<SocketAddr>>>>,
    pub queue_capacity: Option<Spanned<usize>>,
}

/// The parser's message without its own position (we print ours, mapped to the file), and
/// in the terms of this file rather than of Rust or of the parser's options.
pub fn describe(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    let text = match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    };
    let text = text.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
    match text.as_str() {
        "invalid u32" | "invalid u64" | "invalid usize" => "expected a whole number".to_owned(),
        "invalid socket address syntax" => "expected an address such as 127.0.0.1:8080".to_owned(),
        _ => text,
    }
}

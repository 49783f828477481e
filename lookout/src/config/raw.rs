//! The config as written: each section is its component's own raw type (serde structs that
//! reject unknown keys and keep the position of every value); the binary owns only the top
//! level, `log:` and `data_dir:`.

use lookout_conf::Spanned;
use serde::Deserialize;

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
    pub platform: lookout_services::config::RawPlatform,
    pub collector: lookout_collector::config::RawCollector,
    pub probes: lookout_probes::config::RawProbes,
    pub variables: std::collections::BTreeMap<String, Spanned<String>>,
    /// The SLO of every check, unless a check gives its own parts.
    pub slo: Option<Spanned<lookout_conf::slo::RawSlo>>,
    pub checks: Vec<Spanned<lookout_probes::config::RawCheck>>,
    /// Scheduled maintenance windows (the collector's; more come through its API).
    pub maintenance: Vec<Spanned<lookout_collector::config::RawMaintenance>>,
    /// The alerter: runs in `lookout up` when this section is there.
    pub alerting: Option<lookout_alerting::config::RawAlerting>,
    /// The public status page: runs in `lookout up` when this section is there.
    pub status_page: Option<lookout_status_page::config::RawStatusPage>,
    /// The host-health replacer: runs in `lookout up` when this section is there.
    pub replacer: Option<lookout_replacer::config::RawReplacer>,
    /// The replicated log: with this section, the collector runs as one replica of several.
    pub cluster: Option<lookout_cluster::config::RawCluster>,
    /// TLS on Lookout's own listeners, and the CA their clients trust.
    pub tls: Option<super::tls::RawTls>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    pub format: Option<LogFormat>,
    pub level: Option<Spanned<String>>,
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

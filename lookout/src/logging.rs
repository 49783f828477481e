//! Logs go to stderr through `tracing`: text for people, JSON (one object per line) for
//! pipelines. `RUST_LOG`, when set, overrides the configured level.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat, level: &str) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The environment variables a parent passes to its children so they log alike.
pub const LEVEL_ENV: &str = "LOOKOUT_LOG";
pub const FORMAT_ENV: &str = "LOOKOUT_LOG_FORMAT";

pub fn from_env() -> (LogFormat, String) {
    let format = match std::env::var(FORMAT_ENV).as_deref() {
        Ok("json") => LogFormat::Json,
        _ => LogFormat::Text,
    };
    let level = std::env::var(LEVEL_ENV).unwrap_or_else(|_| "info".into());
    (format, level)
}

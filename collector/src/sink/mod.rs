//! Where stored results are copied to: external stores such as InfluxDB. One trait, one
//! implementation per file behind its own cargo feature; ingest sees only the trait.
//!
//! The store is the record: it acknowledges results to the agents, and the SLA math reads it.
//! A sink is a copy made on the side, so it must never hold up ingest nor make it fail. `offer`
//! only queues, a background task delivers in batches and retries, and what does not fit in
//! the bounded queue is dropped and counted, so an outage of the external store costs memory
//! up to a known bound and then data in that store, never ingest.
//!
//! Adding a sink: `FILE.rs` implementing [`ResultSink`] (with `queue::Queue` and
//! `queue::deliver` doing the queueing, batching and retrying), its config struct, and its
//! `mod` line below.

#[cfg(feature = "influxdb")]
mod influx;
// Every sink uses it; with the sinks' features off, none does.
#[cfg_attr(not(feature = "influxdb"), allow(dead_code))]
pub(crate) mod queue;

#[cfg(feature = "influxdb")]
pub use influx::InfluxSink;

use std::sync::Arc;
use std::time::Duration;

use lookout_api::metrics::register as reg;
use lookout_model::probe::ProbeResult;
use lookout_model::secret::Secret;
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

/// A copy of every newly stored result, sent somewhere else.
pub trait ResultSink: Send + Sync {
    /// The sink's `sink` label in metrics and logs, e.g. `influxdb`.
    fn name(&self) -> &'static str;

    /// Takes results that were just stored, each once (replays are not offered again). Returns
    /// at once: it queues what fits, and drops and counts the rest.
    fn offer(&self, results: &[ProbeResult]);

    /// Counters since start, for `/metrics`.
    fn stats(&self) -> SinkStats;
}

/// What a sink did with the points it was offered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Points the external store accepted.
    pub written: u64,
    /// Points given up: offered while the queue was full, or refused by the external store as
    /// malformed.
    pub dropped: u64,
    /// Failed write attempts (each retry counts).
    pub write_errors: u64,
    /// Points held now, waiting or being written.
    pub queued: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{sink}.{field}: {message}")]
    Config {
        sink: &'static str,
        field: &'static str,
        message: String,
    },
    #[error("{sink}: cannot start: {message}")]
    Start { sink: &'static str, message: String },
}

/// How a sink batches, bounds and retries; the same knobs for every sink.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Delivery {
    /// Points per write.
    pub batch_size: usize,
    /// The longest a point waits for its batch to fill before it is written anyway.
    pub flush_interval: Duration,
    /// Points held at most, waiting or being written; past it new points are dropped.
    pub max_buffered: usize,
    /// The wait after a first failed write, doubled after each further failure up to
    /// `retry_max`.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// A write that has not answered by then has failed, and is retried.
    pub write_timeout: Duration,
}

pub const DEFAULT_BATCH_SIZE: usize = 5_000;
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_MAX_BUFFERED: usize = 100_000;

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            batch_size: DEFAULT_BATCH_SIZE,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            max_buffered: DEFAULT_MAX_BUFFERED,
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
        }
    }
}

impl Delivery {
    /// Refuses values that would stall the queue or spin on retries.
    pub fn check(&self, sink: &'static str) -> Result<(), SinkError> {
        let bad = |field, message: &str| {
            Err(SinkError::Config {
                sink,
                field,
                message: message.into(),
            })
        };
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if self.max_buffered == 0 {
            return bad("max_buffered", "must be at least 1");
        }
        if self.retry_initial.is_zero() || self.retry_max < self.retry_initial {
            return bad(
                "retry_initial",
                "must be above zero and at most `retry_max`",
            );
        }
        if self.write_timeout.is_zero() {
            return bad("write_timeout", "must be above zero");
        }
        Ok(())
    }
}

/// The InfluxDB v2 sink's settings. Every result becomes one point of measurement `probe`
/// (docs/collector.md lists its tags and fields).
#[derive(Debug, Clone, PartialEq)]
pub struct InfluxConfig {
    /// The server's base URL, e.g. `http://influxdb:8086`: writes go to `/api/v2/write`.
    pub url: String,
    pub org: String,
    pub bucket: String,
    /// Sent as `Authorization: Token ...`; never logged.
    pub token: Secret,
    pub delivery: Delivery,
}

impl InfluxConfig {
    /// The settings with the default batching, bounds and retries.
    pub fn new(url: &str, org: &str, bucket: &str, token: Secret) -> Self {
        InfluxConfig {
            url: url.into(),
            org: org.into(),
            bucket: bucket.into(),
            token,
            delivery: Delivery::default(),
        }
    }

    pub fn check(&self) -> Result<(), SinkError> {
        let bad = |field, message: String| {
            Err(SinkError::Config {
                sink: "influxdb",
                field,
                message,
            })
        };
        if let Err(e) = check_base_url(&self.url) {
            return bad("url", e);
        }
        if self.org.trim().is_empty() {
            return bad("org", "must not be empty".into());
        }
        if self.bucket.trim().is_empty() {
            return bad("bucket", "must not be empty".into());
        }
        self.delivery.check("influxdb")
    }
}

/// Whether `url` can be a sink's base URL: http(s) with a host, and nothing after it. The
/// client puts its API path in place of any path given, and a URL may end up in an error
/// message, so credentials belong in the token, not in the URL.
pub fn check_base_url(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url:?} is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") || !parsed.has_host() {
        return Err(format!("{url:?} is not an http(s) URL with a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not hold credentials: give them as the token".into());
    }
    if parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!(
            "{url:?} has a path, query or fragment: give only scheme, host and port, e.g. `http://influxdb:8086`"
        ));
    }
    Ok(())
}

/// Offers the results of a batch that were stored now (`inserted[i]`) to every sink.
pub fn offer_stored(sinks: &[Arc<dyn ResultSink>], results: &[ProbeResult], inserted: &[bool]) {
    if sinks.is_empty() {
        return;
    }
    let fresh: Vec<ProbeResult>;
    // The usual batch is all new: offer it as it is rather than copy it.
    let new = if inserted.iter().all(|n| *n) {
        results
    } else {
        fresh = results
            .iter()
            .zip(inserted)
            .filter(|(_, n)| **n)
            .map(|(r, _)| r.clone())
            .collect();
        &fresh
    };
    if new.is_empty() {
        return;
    }
    for sink in sinks {
        sink.offer(new);
    }
}

/// The sinks' figures in the collector's `/metrics`, named in one place.
pub(crate) struct SinkMetrics {
    written: IntCounterVec,
    dropped: IntCounterVec,
    write_errors: IntCounterVec,
    queued: IntGaugeVec,
}

impl SinkMetrics {
    pub(crate) fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        let counter =
            |name: &str, help: &str| reg(r, IntCounterVec::new(Opts::new(name, help), &["sink"])?);
        Ok(SinkMetrics {
            written: counter(
                "lookout_collector_sink_points_written_total",
                "Points an external store accepted, by sink.",
            )?,
            dropped: counter(
                "lookout_collector_sink_points_dropped_total",
                "Points given up, by sink: offered while its queue was full, or refused as malformed.",
            )?,
            write_errors: counter(
                "lookout_collector_sink_write_errors_total",
                "Failed writes to an external store, by sink; each retry counts.",
            )?,
            queued: reg(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "lookout_collector_sink_queued_points",
                        "Points held for an external store, waiting or being written, by sink.",
                    ),
                    &["sink"],
                )?,
            )?,
        })
    }

    /// Brings the metrics up to the sinks' own counters, just before a scrape is answered.
    /// The sinks count in atomics of their own so that they need no registry; scrapes run one
    /// at a time, so raising each counter by what it lags keeps it monotonic and exact.
    pub(crate) fn refresh(&self, sinks: &[Arc<dyn ResultSink>]) {
        for sink in sinks {
            let s = sink.stats();
            let label = [sink.name()];
            for (counter, value) in [
                (&self.written, s.written),
                (&self.dropped, s.dropped),
                (&self.write_errors, s.write_errors),
            ] {
                let c = counter.with_label_values(&label);
                c.inc_by(value.saturating_sub(c.get()));
            }
            self.queued
                .with_label_values(&label)
                .set(i64::try_from(s.queued).unwrap_or(i64::MAX));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_http_with_a_host_and_nothing_more() {
        for ok in [
            "http://influxdb:8086",
            "https://eu.influx.example.com",
            "http://127.0.0.1:8428/",
        ] {
            assert_eq!(check_base_url(ok), Ok(()), "{ok}");
        }
        for (bad, says) in [
            ("influxdb:8086", "not an http(s) URL"),
            ("ftp://influxdb", "not an http(s) URL"),
            ("not a url", "is not a URL"),
            ("http://user:pw@influxdb:8086", "must not hold credentials"),
            ("http://influxdb:8086/api", "has a path"),
            ("http://influxdb:8086?org=x", "has a path, query"),
        ] {
            let e = check_base_url(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(!e.contains("pw"), "{e}");
        }
    }

    #[test]
    fn config_checks_name_the_field() {
        let good = InfluxConfig::new("http://i:8086", "o", "b", Secret::new("t"));
        assert!(good.check().is_ok());
        let mut c = good.clone();
        c.bucket = " ".into();
        assert_eq!(
            c.check().unwrap_err().to_string(),
            "influxdb.bucket: must not be empty"
        );
        let mut c = good.clone();
        c.delivery.retry_max = Duration::from_millis(1);
        assert!(c.check().unwrap_err().to_string().contains("retry_initial"));
        let mut c = good;
        c.delivery.max_buffered = 0;
        assert!(c.check().unwrap_err().to_string().contains("max_buffered"));
    }
}

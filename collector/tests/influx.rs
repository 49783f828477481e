//! The InfluxDB v2 sink against a real server that speaks the InfluxDB v2 write API:
//! VictoriaMetrics (Debian's `victoria-metrics`, which `./scripts/test` installs). Results go in
//! through the collector's ingest, and the points are read back from VictoriaMetrics, which
//! names a field `probe_FIELD`, turns tags into labels, and keeps milliseconds.
#![cfg(feature = "influxdb")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)] // a test may panic; process waits are synchronous

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use lookout_collector::sink::{InfluxConfig, InfluxSink, ResultSink, SinkStats};
use lookout_collector::store::SqliteStore;
use lookout_collector::{Collector, CollectorSettings};
use lookout_model::probe::{
    Failure, FailureKind, Outcome, Phases, ProbeResult, ResultBatch, StepResult,
};
use lookout_model::secret::Secret;
use lookout_testkit::{eventually, free_port, peers};

const TOKEN: &str = "collector-token";
const INFLUX_TOKEN: &str = "influx-token-never-logged";

/// VictoriaMetrics, read back the way this test needs.
struct Victoria(peers::Victoria);

impl Victoria {
    async fn start(port: u16) -> Victoria {
        Victoria(peers::Victoria::start_on(port).await)
    }

    fn url(&self) -> String {
        self.0.url()
    }

    /// Every `probe_*` sample held, by series (name and labels), as timestamp (ms) to value.
    async fn points(&self, since_us: i64) -> Points {
        let http = reqwest::Client::new();
        // Rows wait in memory for a second or more before they can be searched; this makes them
        // searchable now.
        http.get(format!("{}/internal/force_flush", self.url()))
            .send()
            .await
            .unwrap();
        let text = http
            .get(format!("{}/api/v1/export", self.url()))
            .query(&[
                ("match[]", r#"{__name__=~"probe_.*"}"#.to_string()),
                ("start", (since_us / 1_000_000 - 60).to_string()),
            ])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut points = Points::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let labels: BTreeMap<String, String> = v["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            let series = points.entry(labels).or_default();
            let times = v["timestamps"].as_array().unwrap();
            let values = v["values"].as_array().unwrap();
            for (t, v) in times.iter().zip(values) {
                let old = series.insert(t.as_i64().unwrap(), v.as_f64().unwrap());
                assert!(old.is_none(), "a sample written twice: {line}");
            }
        }
        points
    }

    /// Polls until the server holds exactly `want`, and says what it holds last.
    async fn wait_for_points(&self, want: &Points, since_us: i64) -> Points {
        let mut got = Points::new();
        for _ in 0..100 {
            got = self.points(since_us).await;
            if &got == want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        got
    }
}

/// Series labels (`__name__` included) to samples: timestamp in ms to value.
type Points = BTreeMap<BTreeMap<String, String>, BTreeMap<i64, f64>>;

/// The points a result must become, written out from the documented mapping.
fn expected(results: &[ProbeResult]) -> Points {
    let mut points = Points::new();
    for r in results {
        let mut labels = BTreeMap::from([
            ("check".to_string(), r.check.clone()),
            ("region".to_string(), r.region.clone()),
            ("agent".to_string(), r.agent.clone()),
        ]);
        match &r.outcome {
            Outcome::Ok => {
                labels.insert("outcome".into(), "ok".into());
            }
            Outcome::Degraded(_) => {
                labels.insert("outcome".into(), "degraded".into());
            }
            Outcome::Fail(f) => {
                labels.insert("outcome".into(), "fail".into());
                labels.insert("reason".into(), f.kind.as_str().into());
            }
        }
        let sum = |f: fn(&Phases) -> u64| r.steps.iter().map(|s| f(&s.phases)).sum::<u64>();
        let mut fields = vec![
            ("duration_us", r.duration_us),
            ("dns_us", sum(|p| p.dns_us)),
            ("connect_us", sum(|p| p.connect_us)),
            ("tls_us", sum(|p| p.tls_us)),
            ("ttfb_us", sum(|p| p.ttfb_us)),
            ("transfer_us", sum(|p| p.transfer_us)),
            ("bytes", r.steps.iter().map(|s| s.bytes).sum()),
            ("seq", r.seq),
        ];
        if let Some(status) = r.steps.last().and_then(|s| s.status) {
            fields.push(("status", u64::from(status)));
        }
        // The server keeps milliseconds; the sink writes microseconds, which it truncates.
        let ms = r.started_at_us.div_euclid(1000);
        for (field, value) in fields {
            let mut series = labels.clone();
            series.insert("__name__".into(), format!("probe_{field}"));
            let old = points.entry(series).or_default().insert(ms, value as f64);
            assert!(
                old.is_none(),
                "two test results share a series and a millisecond"
            );
        }
    }
    points
}

fn step(name: &str, status: Option<u16>, bytes: u64, scale: u64) -> StepResult {
    StepResult {
        name: name.into(),
        status,
        bytes,
        phases: Phases {
            dns_us: 11 * scale,
            connect_us: 230 * scale,
            tls_us: 1_200 * scale,
            ttfb_us: 4_567 * scale,
            transfer_us: 89 * scale,
            total_us: 6_097 * scale,
        },
        cert_days_left: None,
        reused_connection: false,
    }
}

/// `n` results over 3 checks and 3 regions, about a second apart and with sub-millisecond
/// start times, a quarter of them failing in different ways, some degraded, with 0 to 2 steps, and the last
/// step without a status now and then.
fn results(n: usize, start_us: i64) -> Vec<ProbeResult> {
    let checks = ["search", "artist-view", "play"];
    let regions = ["eu-west", "us-east", "ap-south"];
    let kinds = [
        FailureKind::Refused,
        FailureKind::Timeout,
        FailureKind::Assertion,
    ];
    (0..n)
        .map(|i| {
            let region = regions[i % 3];
            let failing = i % 4 == 1;
            let last_status = (!failing || i % 8 == 1).then_some(200);
            let steps = match i % 5 {
                0 => vec![],
                1 | 2 => vec![step("home", last_status, 1_500 + i as u64, 1)],
                _ => vec![
                    step("login", Some(302), 40, 2),
                    step("list", last_status, 70_000 + i as u64, 3),
                ],
            };
            ProbeResult {
                check: checks[(i / 3) % 3].into(),
                region: region.into(),
                agent: format!("{region}-1"),
                seq: 1 + (i / 3) as u64,
                started_at_us: start_us + i as i64 * 1_000_337,
                outcome: if failing {
                    Outcome::Fail(Failure {
                        kind: kinds[(i / 4) % 3],
                        message: "what went wrong, with \"quotes\", commas and spaces".into(),
                        step: Some(0),
                    })
                } else if i % 7 == 3 {
                    Outcome::Degraded(lookout_model::probe::Degradation {
                        message: "delivered at 1.20x real time".into(),
                        step: Some(0),
                    })
                } else {
                    Outcome::Ok
                },
                duration_us: 10_000 + 7 * i as u64,
                steps,
                confirmation: false,
            }
        })
        .collect()
}

fn influx_config(url: &str) -> InfluxConfig {
    let mut c = InfluxConfig::new(url, "lookout", "probes", Secret::new(INFLUX_TOKEN));
    c.delivery.flush_interval = Duration::from_millis(50);
    c.delivery.retry_initial = Duration::from_millis(100);
    c.delivery.retry_max = Duration::from_millis(400);
    c
}

struct Running {
    collector: Collector,
    sink: Arc<InfluxSink>,
    _dir: tempfile::TempDir,
}

async fn collector(config: InfluxConfig) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("c.db")).unwrap());
    let sink = Arc::new(InfluxSink::start(config).unwrap());
    let collector = Collector::start(
        CollectorSettings {
            sinks: vec![sink.clone()],
            ..CollectorSettings::new(Secret::new(TOKEN), BTreeMap::new())
        },
        store,
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap();
    Running {
        collector,
        sink,
        _dir: dir,
    }
}

impl Running {
    async fn post(&self, results: &[ProbeResult]) -> serde_json::Value {
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/results", self.collector.url()))
            .bearer_auth(TOKEN)
            .json(&ResultBatch {
                results: results.to_vec(),
            })
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// The sink's figures as `/metrics` shows them, and the whole text.
    async fn scraped(&self) -> (SinkStats, String) {
        let text = reqwest::get(format!("{}/metrics", self.collector.url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let n = |name: &str| {
            let prefix = format!("lookout_collector_sink_{name}{{sink=\"influxdb\"}} ");
            let v = text.lines().find_map(|l| l.strip_prefix(&prefix));
            v.unwrap_or_else(|| panic!("no {name}:\n{text}"))
                .parse()
                .unwrap()
        };
        let stats = SinkStats {
            written: n("points_written_total"),
            dropped: n("points_dropped_total"),
            write_errors: n("write_errors_total"),
            queued: n("queued_points"),
        };
        (stats, text)
    }

    async fn wait_for_stats(&self, ok: impl Fn(SinkStats) -> bool) -> SinkStats {
        let ok = &ok;
        eventually(
            Duration::from_secs(20),
            || async move { ok(self.sink.stats()) },
        )
        .await;
        self.sink.stats()
    }
}

fn promtool_check(metrics: &str) {
    if let Err(e) = peers::promtool_check(metrics) {
        panic!("{e}\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stored_result_is_read_back_with_its_tags_fields_and_time() {
    let vm = Victoria::start(free_port()).await;
    let mut config = influx_config(&vm.url());
    // Several batches per post, and one left waiting for its flush interval.
    config.delivery.batch_size = 7;
    let c = collector(config).await;
    let start = chrono::Utc::now().timestamp_micros() - 120_000_000;
    let all = results(27, start);

    let ack = c.post(&all[..15]).await;
    assert_eq!(ack["accepted"], 15);
    // A replay of stored results is acknowledged but not offered again.
    let ack = c.post(&all[10..]).await;
    assert_eq!(
        (ack["accepted"].as_u64(), ack["duplicates"].as_u64()),
        (Some(12), Some(5))
    );

    let stats = c.wait_for_stats(|s| s.written >= 27).await;
    assert_eq!(
        stats,
        SinkStats {
            written: 27,
            dropped: 0,
            write_errors: 0,
            queued: 0
        }
    );
    let want = expected(&all);
    let got = vm.wait_for_points(&want, start).await;
    assert_eq!(got, want);

    let (scraped, metrics) = c.scraped().await;
    assert_eq!(scraped, stats);
    promtool_check(&metrics);
    c.collector.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_offered_while_the_server_is_away_arrive_once_it_is_up() {
    let port = free_port();
    let c = collector(influx_config(&format!("http://127.0.0.1:{port}"))).await;
    let start = chrono::Utc::now().timestamp_micros() - 60_000_000;
    let all = results(12, start);
    c.post(&all[..6]).await;
    c.post(&all[6..]).await;

    // Retried, kept, and shown so in /metrics.
    c.wait_for_stats(|s| s.write_errors >= 3).await;
    let (scraped, _) = c.scraped().await;
    assert_eq!(
        (scraped.written, scraped.dropped, scraped.queued),
        (0, 0, 12)
    );
    assert!(scraped.write_errors >= 3, "{scraped:?}");

    let vm = Victoria::start(port).await;
    let stats = c.wait_for_stats(|s| s.written >= 12).await;
    assert_eq!((stats.written, stats.dropped, stats.queued), (12, 0, 0));
    let want = expected(&all);
    assert_eq!(vm.wait_for_points(&want, start).await, want);
    let (scraped, _) = c.scraped().await;
    assert_eq!(
        (scraped.written, scraped.dropped, scraped.queued),
        (12, 0, 0)
    );
    c.collector.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_drops_exactly_the_overflow_and_keeps_the_rest() {
    let port = free_port();
    let mut config = influx_config(&format!("http://127.0.0.1:{port}"));
    config.delivery.max_buffered = 4;
    config.delivery.batch_size = 2;
    let c = collector(config).await;
    let start = chrono::Utc::now().timestamp_micros() - 60_000_000;
    let all = results(15, start);
    for batch in all.chunks(5) {
        c.post(batch).await;
    }

    // Offered by the time each post is answered: 4 held, 1 + 5 + 5 dropped.
    let (scraped, _) = c.scraped().await;
    assert_eq!(
        (scraped.written, scraped.dropped, scraped.queued),
        (0, 11, 4)
    );

    // What was held is delivered once the server is up: the first four offered.
    let vm = Victoria::start(port).await;
    let stats = c.wait_for_stats(|s| s.written >= 4).await;
    assert_eq!((stats.written, stats.dropped, stats.queued), (4, 11, 0));
    let want = expected(&all[..4]);
    assert_eq!(vm.wait_for_points(&want, start).await, want);
    c.collector.shutdown().await;
}

//! Streaming playback against the platform's media service, with and without its bandwidth
//! fault: the time to the first audio byte is what the journey counts, the delivery rate
//! decides ok, degraded (under 1.5x real time) or failed (under 1x); and a stream that stalls,
//! ends short or cannot say its bitrate fails with its kind and reason, before the timeout.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use lookout_model::probe::{FailureKind, Outcome, ProbeResult};
use lookout_model::secret::Secret;
use lookout_probes::check::Step;
use lookout_probes::kind::playback::RawPlayback;
use lookout_services::data::Dataset;
use lookout_services::media::{FILE_LEN, SAMPLE_RATE};
use lookout_services::{Instance, InstanceSpec, ServiceKind};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ADMIN: &str = "playback-test-admin";
/// The media service's tracks: mono 16-bit PCM.
const BYTES_PER_SECOND: u64 = SAMPLE_RATE as u64 * 2;

async fn media() -> Instance {
    let spec = InstanceSpec {
        kind: ServiceKind::Media,
        seed: 1,
        artists: 20,
        admin_token: Secret::new(ADMIN),
        gateway: None,
        analytics: None,
    };
    let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    Instance::start(spec, any, any, Some(Arc::new(Dataset::generate(1, 20))))
        .await
        .unwrap()
}

async fn bandwidth(i: &Instance, bytes_per_second: u64) {
    let r = reqwest::Client::new()
        .post(format!("{}/admin/faults", i.admin_url()))
        .bearer_auth(ADMIN)
        .json(&json!({"kind": "bandwidth", "bytes_per_second": bytes_per_second, "route": "/1.x/tracks"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

/// One run of a check whose one step fetches `url` and plays it as `playback` says.
async fn play(url: &str, headers: &[(&str, &str)], playback: Value) -> ProbeResult {
    let mut step = http_step(url, &[json!({"type": "status", "one_of": [200, 206]})], &[]);
    step.headers = headers
        .iter()
        .map(|(n, v)| {
            (
                n.parse().unwrap(),
                lookout_probes::template::Template::parse(v).unwrap(),
            )
        })
        .collect();
    step.playback = Some(built(playback, RawPlayback::build));
    let mut c = check(
        "listen",
        vec![Step {
            name: "play".into(),
            probe: Box::new(step),
        }],
    );
    c.timeout = Duration::from_secs(5);
    run(&c).await
}

fn track(i: &Instance) -> String {
    format!("{}/1.x/tracks/7/audio.wav", i.url())
}

#[tokio::test]
async fn a_stream_delivered_fast_plays_and_counts_to_its_first_audio_byte() {
    let m = media().await;
    let r = play(&track(&m), &[], json!({"seconds": 2})).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    let s = &r.steps[0];
    assert!(s.bytes >= 44 + 2 * BYTES_PER_SECOND, "{s:?}");
    assert!(s.bytes <= FILE_LEN, "{s:?}");
    assert!(
        r.duration_us > 0 && r.duration_us <= s.phases.total_us,
        "{r:?}"
    );
}

#[tokio::test]
async fn the_bandwidth_fault_makes_a_stream_degraded_then_failed() {
    let m = media().await;
    // 1.25x real time: it plays, but under the 1.5x a listener needs to be safe.
    bandwidth(&m, BYTES_PER_SECOND * 5 / 4).await;
    let started = Instant::now();
    let r = play(&track(&m), &[], json!({"seconds": 1.5})).await;
    let took = started.elapsed();
    let d = match &r.outcome {
        Outcome::Degraded(d) => d,
        o => panic!("expected degraded, got {o:?}: {r:?}"),
    };
    assert_eq!(d.step, Some(0));
    let ratio: f64 = d
        .message
        .split("delivered at ")
        .nth(1)
        .and_then(|t| t.split('x').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!((1.2..1.4).contains(&ratio), "{}", d.message);
    assert!(d.message.contains("under 1.5x"), "{}", d.message);
    // It took more than a second to deliver, but the journey counts to the first audio only.
    let s = &r.steps[0];
    assert!(s.phases.transfer_us > 900_000, "{s:?}");
    assert!(took > Duration::from_millis(900), "{took:?}");
    assert!(
        r.duration_us < 200_000 && r.duration_us >= s.phases.total_us - s.phases.transfer_us,
        "{r:?}"
    );

    // A stricter check calls the same delivery fine at 1.2x.
    let r = play(
        &track(&m),
        &[],
        json!({"seconds": 1, "degraded_below": 1.2}),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");

    // Slower than it plays: a player would stall.
    reqwest::Client::new()
        .delete(format!("{}/admin/faults", m.admin_url()))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    bandwidth(&m, BYTES_PER_SECOND * 7 / 10).await;
    let r = play(&track(&m), &[], json!({"seconds": 1})).await;
    let (kind, message) = failure_of(&r);
    assert_eq!(kind, FailureKind::Assertion, "{message}");
    assert!(
        message.contains("delivered slower than it plays") && message.contains("would stall"),
        "{message}"
    );
}

#[tokio::test]
async fn a_stream_that_ends_short_or_cannot_say_its_bitrate_fails_saying_why() {
    let m = media().await;
    let r = play(&track(&m), &[], json!({"seconds": 10})).await;
    let (kind, message) = failure_of(&r);
    assert_eq!(kind, FailureKind::Protocol);
    assert!(
        message.contains("the stream ended after 3.00 s of the 10.00 s of playback asked for"),
        "{message}"
    );
    // From past the WAV header, the stream is raw samples: no way to tell the bitrate...
    let r = play(&track(&m), &[("Range", "bytes=44-")], json!({"seconds": 1})).await;
    let (kind, message) = failure_of(&r);
    assert_eq!(kind, FailureKind::Protocol);
    assert!(message.contains("give `playback.bitrate`"), "{message}");
    // ...unless the step says it.
    let r = play(
        &track(&m),
        &[("Range", "bytes=44-")],
        json!({"seconds": 1, "bitrate": "352.8kbps"}),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
}

#[tokio::test]
async fn a_stream_that_stalls_times_out_at_the_deadline() {
    // A WAV header and a little audio, then nothing, the connection held open.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut tcp, _)) = listener.accept().await {
            let mut buf = [0u8; 2048];
            let _ = tcp.read(&mut buf).await;
            let head = lookout_services::media::wav_range(1, 0, 4_095);
            let _ = tcp
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: audio/wav\r\ncontent-length: {FILE_LEN}\r\n\r\n"
                    )
                    .as_bytes(),
                )
                .await;
            let _ = tcp.write_all(&head).await;
            held.push(tcp);
        }
    });
    let started = Instant::now();
    let r = play(
        &format!("http://127.0.0.1:{port}/audio.wav"),
        &[],
        json!({"seconds": 2}),
    )
    .await;
    let took = started.elapsed();
    let (kind, message) = failure_of(&r);
    assert_eq!(kind, FailureKind::Timeout, "{message}");
    assert!(message.contains("transfer"), "{message}");
    assert!(
        took < Duration::from_millis(5_500),
        "the check's timeout is 5 s: {took:?}"
    );
}

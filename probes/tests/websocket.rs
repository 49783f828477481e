//! WebSocket steps against the platform's live feed (analytics' "now playing", plain and over
//! TLS with an rcgen certificate in front of it), and against servers that never upgrade,
//! never speak, or hang up: phases timed, messages matched by regex and JSON path, and every
//! failure of its kind before the timeout.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use lookout_model::probe::{FailureKind, Outcome, ProbeResult};
use lookout_model::secret::Secret;
use lookout_probes::kind::websocket::{RawWebSocket, WebSocketStep};
use lookout_services::{AnalyticsSettings, Instance, InstanceSpec, ServiceKind};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

async fn analytics() -> Instance {
    let spec = InstanceSpec {
        kind: ServiceKind::Analytics,
        seed: 1,
        artists: 10,
        admin_token: Secret::new("admin"),
        gateway: None,
        analytics: Some(AnalyticsSettings {
            queue_capacity: 100,
            mixes: vec![],
        }),
    };
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    Instance::start(spec, any, any, None).await.unwrap()
}

#[tokio::test]
async fn the_live_feed_is_followed_and_a_play_arrives_as_now_playing() {
    let a = analytics().await;
    let live = format!("ws://{}/1.x/events/live", a.addr);
    // The hello, at once; a ping answered.
    let r = talk(
        ws(json!({"url": live, "json_path": "$.type", "equals": "hello"})),
        None,
    )
    .await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    let s = &r.steps[0];
    assert_eq!(s.status, Some(101));
    assert!(s.phases.connect_us > 0 && s.phases.ttfb_us > 0, "{s:?}");
    assert!(s.bytes > 0, "{s:?}");
    let r = talk(
        ws(json!({"url": live, "send": "ping", "expect": "\"pong\""})),
        None,
    )
    .await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");

    // A play posted while the probe waits reaches it through the feed.
    let events = format!("{}/1.x/events", a.url());
    let post = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        reqwest::Client::new()
            .post(events)
            .json(&json!({"type": "playback", "trackid": 4242, "position_ms": 0}))
            .send()
            .await
            .unwrap()
            .status()
    });
    let r = talk(
        ws(json!({"url": live, "json_path": "$.trackid", "equals": 4242, "within": "1500ms"})),
        None,
    )
    .await;
    assert!(post.await.unwrap().is_success());
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert!(
        r.steps[0].phases.transfer_us >= 300_000,
        "the wait for the play is the transfer: {:?}",
        r.steps[0].phases
    );

    // None comes: the wait ends at `within`, saying what came instead.
    let started = Instant::now();
    let (kind, message) = failure_of(
        &talk(
            ws(json!({"url": live, "json_path": "$.trackid", "within": "300ms"})),
            None,
        )
        .await,
    );
    assert_eq!(kind, FailureKind::Timeout);
    assert!(
        message.contains("no message matched the JSON path $.trackid within 300ms")
            && message.contains(r#"\"type\":\"hello\""#),
        "{message}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    a.shutdown().await.unwrap();
}

/// Forwards every TLS connection, decrypted, to `to`: the feed behind a TLS front.
async fn tls_front(to: SocketAddr, acceptor: tokio_rustls::TlsAcceptor) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let (Ok(mut tls), Ok(mut back)) =
                    (acceptor.accept(tcp).await, TcpStream::connect(to).await)
                {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut back).await;
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn wss_is_verified_against_the_checks_ca_and_timed() {
    let a = analytics().await;
    let pki = pki(30);
    let port = tls_front(a.addr, pki.acceptor()).await;
    let live = format!("wss://localhost:{port}/1.x/events/live");
    let r = talk(
        ws(json!({"url": live, "expect": "hello"})),
        Some(&pki.ca_pem),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    let s = &r.steps[0];
    assert!(s.phases.tls_us > 0, "{s:?}");
    assert!(matches!(s.cert_days_left, Some(29..=30)), "{s:?}");
    let (kind, message) =
        failure_of(&talk(ws(json!({"url": live, "expect": "hello"})), None).await);
    assert_eq!(kind, FailureKind::Tls, "{message}");
    a.shutdown().await.unwrap();
}

#[tokio::test]
async fn servers_that_never_upgrade_or_speak_fail_with_their_kind_before_the_timeout() {
    // An HTTP server that answers 200 to everything.
    let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_addr = plain.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = plain.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = tcp.read(&mut buf).await;
                let _ = tcp
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
            });
        }
    });
    let (kind, message) = failure_of(
        &talk(
            ws(json!({"url": format!("ws://{plain_addr}/live"), "expect": "x"})),
            None,
        )
        .await,
    );
    assert_eq!(kind, FailureKind::Protocol);
    assert!(
        message.contains("answered 200 OK, not 101 Switching Protocols"),
        "{message}"
    );

    // One that takes the connection and never answers the upgrade.
    let mute_port = silent_server().await;
    let started = Instant::now();
    let (kind, message) = failure_of(
        &talk(
            ws(json!({"url": format!("ws://127.0.0.1:{mute_port}/live")})),
            None,
        )
        .await,
    );
    assert_eq!(kind, FailureKind::Timeout);
    assert!(message.contains("the WebSocket upgrade"), "{message}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(3),
        "{took:?}"
    );

    // One that upgrades, then says goodbye before anything matched.
    let bye = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bye_addr = bye.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = bye.accept().await {
            tokio::spawn(async move {
                if let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await {
                    let _ = ws
                        .close(Some(CloseFrame {
                            code: CloseCode::Away,
                            reason: "going home".into(),
                        }))
                        .await;
                }
            });
        }
    });
    let (kind, message) = failure_of(
        &talk(
            ws(json!({"url": format!("ws://{bye_addr}/"), "expect": "never said"})),
            None,
        )
        .await,
    );
    assert_eq!(kind, FailureKind::Protocol);
    assert!(
        message.contains(r#"the server closed the connection (1001 "going home") before a message matched "never said" (0 received)"#),
        "{message}"
    );
}

fn ws(fields: Value) -> WebSocketStep {
    built(fields, RawWebSocket::build)
}

async fn talk(step: WebSocketStep, ca_pem: Option<&str>) -> ProbeResult {
    run_one(Box::new(step), ca_pem).await
}

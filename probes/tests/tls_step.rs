//! TLS steps (a handshake alone) against real TLS servers on loopback with rcgen certificates:
//! the chain verified against the check's CA or the public roots, the leaf held to its days
//! left, issuer and names, the session to its version; servers that never shake hands or
//! speak something else fail with their kind before the timeout.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use lookout_model::probe::{FailureKind, Outcome, ProbeResult};
use lookout_probes::kind::tls::{RawTls, TlsStep};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// Shakes hands on every connection with `acceptor`, then hangs up.
async fn tls_server(acceptor: tokio_rustls::TlsAcceptor) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn a_certificate_is_verified_and_held_to_its_days_issuer_names_and_version() {
    let pki = pki(30);
    let port = tls_server(pki.acceptor()).await;
    let address = format!("localhost:{port}");
    let ca = Some(pki.ca_pem.as_str());
    let r = shake(
        tls(json!({
            "address": address, "min_days_left": 20, "issuer": "CN=Lookout test CA",
            "names": ["localhost"], "min_version": "1.3",
        })),
        ca,
    )
    .await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    let s = &r.steps[0];
    assert!(s.phases.connect_us > 0 && s.phases.tls_us > 0, "{s:?}");
    assert_eq!(s.phases.ttfb_us, 0, "nothing is asked after the handshake");
    assert!(matches!(s.cert_days_left, Some(29..=30)), "{s:?}");

    for (fields, said) in [
        (
            json!({"min_days_left": 45}),
            "the certificate for localhost expires in",
        ),
        (
            json!({"issuer": "Let's Encrypt"}),
            r#"the certificate's issuer "CN=Lookout test CA" does not match "Let's Encrypt""#,
        ),
        (
            json!({"names": ["gateway.mixradio.test"]}),
            r#"does not name "gateway.mixradio.test": it names ["localhost"]"#,
        ),
    ] {
        let mut step = json!({"address": address});
        for (k, v) in fields.as_object().unwrap() {
            step[k] = v.clone();
        }
        let (kind, message) = failure_of(&shake(tls(step), ca).await);
        assert_eq!(kind, FailureKind::Assertion, "{message}");
        assert!(message.contains(said), "{message} lacks {said}");
    }

    // Against the public roots the chain is not trusted.
    let (kind, message) = failure_of(&shake(tls(json!({"address": address})), None).await);
    assert_eq!(kind, FailureKind::Tls);
    assert!(
        message.contains("TLS handshake with localhost failed"),
        "{message}"
    );
    // A name the certificate lacks, sent as the server name, fails verification too.
    let (kind, message) = failure_of(
        &shake(
            tls(json!({"address": format!("127.0.0.1:{port}"), "server_name": "other.test"})),
            ca,
        )
        .await,
    );
    assert_eq!(kind, FailureKind::Tls, "{message}");
}

#[tokio::test]
async fn a_server_that_offers_only_tls_1_2_is_older_than_asked() {
    let pki = pki(30);
    let only_1_2 = {
        let leaf_and_key = pki.certified();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(leaf_and_key.0, leaf_and_key.1)
        .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    };
    let port = tls_server(only_1_2).await;
    let address = format!("localhost:{port}");
    let ca = Some(pki.ca_pem.as_str());
    let r = shake(tls(json!({"address": address, "min_version": "1.2"})), ca).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    let (kind, message) =
        failure_of(&shake(tls(json!({"address": address, "min_version": "1.3"})), ca).await);
    assert_eq!(kind, FailureKind::Assertion);
    assert!(
        message.contains("the session is TLSv1_2, older than min_version TLS 1.3"),
        "{message}"
    );
}

#[tokio::test]
async fn servers_that_never_shake_hands_fail_with_their_kind_before_the_timeout() {
    let silent_port = silent_server().await;
    let started = Instant::now();
    let (kind, message) = failure_of(
        &shake(
            tls(json!({"address": format!("127.0.0.1:{silent_port}")})),
            None,
        )
        .await,
    );
    assert_eq!(kind, FailureKind::Timeout);
    assert!(message.contains("TLS handshake"), "{message}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(3),
        "{took:?}"
    );

    let other = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_port = other.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = other.accept().await {
            let _ = tcp.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").await;
        }
    });
    let (kind, message) = failure_of(
        &shake(
            tls(json!({"address": format!("127.0.0.1:{other_port}")})),
            None,
        )
        .await,
    );
    assert_eq!(kind, FailureKind::Tls, "{message}");
}

fn tls(fields: Value) -> TlsStep {
    built(fields, RawTls::build)
}

async fn shake(step: TlsStep, ca_pem: Option<&str>) -> ProbeResult {
    run_one(Box::new(step), ca_pem).await
}

/// The platform's gateway over TLS, with the demo certificate `lookout up`'s example checks:
/// valid against the demo CA, named, issued as it says, and with years left.
#[tokio::test]
async fn the_platform_gateway_serves_its_demo_certificate() {
    use lookout_services::gateway::DEMO_CA;
    let port = lookout_testkit::port::free_port();
    let gw = gateway(|s| {
        s.api_keys = vec![lookout_model::secret::Secret::new("k")];
        s.tls_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    })
    .await;
    let r = shake(
        tls(
            json!({"address": format!("127.0.0.1:{port}"), "server_name": "gateway.platform.test",
            "min_days_left": 3650, "names": ["gateway.platform.test"],
            "issuer": "CN=Lookout demo platform CA", "min_version": "1.2"}),
        ),
        Some(DEMO_CA),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert!(r.steps[0].cert_days_left.unwrap() > 3650, "{r:?}");
    // By its IP too, which the certificate also names; not against the public roots.
    let by_ip = json!({"address": format!("127.0.0.1:{port}")});
    assert_eq!(
        shake(tls(by_ip.clone()), Some(DEMO_CA)).await.outcome,
        Outcome::Ok
    );
    let (kind, _) = failure_of(&shake(tls(by_ip), None).await);
    assert_eq!(kind, FailureKind::Tls);
    // The same API answers over it.
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(DEMO_CA.as_bytes()).unwrap())
        .resolve(
            "gateway.platform.test",
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        )
        .build()
        .unwrap();
    let health = client
        .get(format!("https://gateway.platform.test:{port}/healthcheck"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    gw.shutdown().await.unwrap();
}

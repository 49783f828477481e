//! HTTPS: every phase timed, TLS included; the certificate verified against the check's CA; its
//! days left reported and assertable. The certificates are made here, for this test.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

mod common;

use common::*;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use lookout_model::probe::FailureKind;
use serde_json::json;

/// What the server saw of each handshake: resumed or full, and the suite.
type Handshake = (
    Option<rustls::HandshakeKind>,
    Option<rustls::SupportedCipherSuite>,
);

/// Serves `{"secure":true}` over TLS with the pki's leaf; each handshake is told to `seen`.
async fn https_server(
    pki: &Pki,
    seen: Option<tokio::sync::mpsc::UnboundedSender<Handshake>>,
) -> u16 {
    let acceptor = pki.acceptor();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, seen) = (acceptor.clone(), seen.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Some(seen) = seen {
                    let session = tls.get_ref().1;
                    let _ =
                        seen.send((session.handshake_kind(), session.negotiated_cipher_suite()));
                }
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from_static(b"{\"secure\":true}")),
                    ))
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    port
}

#[tokio::test]
async fn https_is_timed_phase_by_phase_and_reports_days_left() {
    let pki = pki(90);
    let port = https_server(&pki, None).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, &pki.ca_pem).unwrap();
    let url = format!("https://localhost:{port}/");

    let mut c = check(
        "tls",
        vec![step(
            &url,
            &[
                json!({"type": "json", "path": "$.secure", "equals": true}),
                json!({"type": "cert_days_left", "min": 30}),
            ],
            &[],
        )],
    );
    c.tls = lookout_probes::http::tls::load_ca(ca_path.to_str().unwrap()).unwrap();
    let r = run(&c).await;
    assert!(r.outcome.is_ok(), "{r:?}");
    let s = &r.steps[0];
    let p = s.phases;
    assert!(
        p.dns_us > 0 && p.connect_us > 0 && p.tls_us > 0 && p.ttfb_us > 0,
        "{p:?}"
    );
    let days = s.cert_days_left.unwrap();
    assert!((89..=90).contains(&days), "{days} days left");

    // The same certificate fails an assertion that wants more time left.
    let mut strict = check(
        "tls-strict",
        vec![step(
            &url,
            &[json!({"type": "cert_days_left", "min": 120})],
            &[],
        )],
    );
    strict.tls = c.tls.clone();
    let r = run(&strict).await;
    let f = failure(&r);
    assert_eq!(f.kind, FailureKind::Assertion);
    assert!(
        f.message.contains("expected at least 120 days left"),
        "{}",
        f.message
    );

    // Without the test CA the certificate is not trusted: a TLS failure naming why.
    let r = run(&check("tls-untrusted", vec![step(&url, &[], &[])])).await;
    let f = failure(&r);
    assert_eq!(f.kind, FailureKind::Tls);
    assert!(
        f.message.contains("TLS handshake with localhost failed")
            && f.message.contains("UnknownIssuer"),
        "{}",
        f.message
    );
}

#[tokio::test]
async fn a_ca_file_that_is_not_pem_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.pem");
    std::fs::write(&path, "not a certificate").unwrap();
    let err = lookout_probes::http::tls::load_ca(path.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("junk.pem") && err.contains("holds no PEM certificate"),
        "{err}"
    );
    let err = lookout_probes::http::tls::load_ca("/no/such/ca.pem")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("cannot read CA file /no/such/ca.pem"),
        "{err}"
    );
}

/// A server that issues session tickets (rustls' default) sees a full handshake from every run,
/// and the suite browsers offer first: a probe never reports a resumed session's certificate.
#[tokio::test]
async fn every_run_makes_a_full_handshake_in_the_suite_browsers_offer_first() {
    let pki = pki(90);
    let (seen, mut handshakes) = tokio::sync::mpsc::unbounded_channel();
    let port = https_server(&pki, Some(seen)).await;
    let mut c = check(
        "full-handshakes",
        vec![step(&format!("https://localhost:{port}/"), &[], &[])],
    );
    c.tls = lookout_probes::http::tls::from_ca_pem("test CA", pki.ca_pem.as_bytes()).unwrap();
    for run_no in 0..3 {
        let r = run(&c).await;
        assert!(r.outcome.is_ok(), "run {run_no}: {r:?}");
        let (kind, suite) = handshakes.recv().await.unwrap();
        assert_eq!(kind, Some(rustls::HandshakeKind::Full), "run {run_no}");
        assert_eq!(
            suite.map(|s| s.suite()),
            Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256),
            "run {run_no}"
        );
    }
}

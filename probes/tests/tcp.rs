//! TCP steps against real servers on loopback (IPv4 and IPv6, plain and TLS with an rcgen
//! certificate): each phase timed, the reply matched, and every way a server lets a probe
//! down (refusing, never answering, answering wrong, hanging up, never finishing a TLS
//! handshake) a failure of its kind before the timeout.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

mod common;

use std::time::{Duration, Instant};

use common::*;
use lookout_model::probe::{FailureKind, Outcome};
use lookout_probes::check::Step;
use lookout_probes::http::IpFamily;
use lookout_probes::kind::tcp::TcpStep;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// Answers `PING` with `PONG` after `delay`, anything else with `ERR`, line by line.
async fn serve_lines<S: AsyncRead + AsyncWrite + Unpin>(stream: S, delay: Duration) {
    let mut lines = BufReader::new(stream);
    let mut line = String::new();
    while lines.read_line(&mut line).await.unwrap_or(0) > 0 {
        tokio::time::sleep(delay).await;
        let reply: &[u8] = if line.trim_end() == "PING" {
            b"PONG\n"
        } else {
            b"ERR unknown command\n"
        };
        if lines.get_mut().write_all(reply).await.is_err() {
            return;
        }
        line.clear();
    }
}

async fn line_server(bind: &str, delay: Duration) -> u16 {
    let listener = TcpListener::bind(bind).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(serve_lines(tcp, delay));
        }
    });
    port
}

/// Writes `reply` to every connection, then hangs up.
async fn hang_up_server(reply: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let _ = tcp.write_all(reply).await;
            let _ = tcp.shutdown().await;
        }
    });
    port
}

fn tcp(host: &str, port: u16, send: Option<&str>, expect: Option<&str>) -> TcpStep {
    TcpStep {
        host: host.into(),
        port,
        tls: false,
        ip: None,
        send: send.map(|s| format!("{s}\n").into_bytes()),
        expect: expect.map(|e| regex::bytes::Regex::new(e).unwrap()),
    }
}

fn one_step(step: TcpStep) -> lookout_probes::check::Check {
    check(
        "tcp",
        vec![Step {
            name: "talk".into(),
            probe: Box::new(step),
        }],
    )
}

#[tokio::test]
async fn a_line_sent_and_its_reply_matched_are_timed_phase_by_phase() {
    let delay = Duration::from_millis(60);
    let port = line_server("127.0.0.1:0", delay).await;
    let r = run(&one_step(tcp(
        "127.0.0.1",
        port,
        Some("PING"),
        Some("^PONG\n"),
    )))
    .await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    let s = &r.steps[0];
    assert_eq!(s.name, "talk");
    assert_eq!(s.bytes, 5);
    let p = s.phases;
    assert_eq!(p.dns_us, 0, "an IP address needs no resolving");
    assert!(p.connect_us > 0);
    assert_eq!(p.tls_us, 0);
    // The server's delay is the time to the reply's first byte (the bound above is loose for
    // a loaded CI machine; `lookout bench probes` measures the error).
    assert!(
        p.ttfb_us >= 60_000 && p.ttfb_us < 310_000,
        "ttfb {} us for a 60 ms delay",
        p.ttfb_us
    );
    assert!(p.total_us >= p.connect_us + p.ttfb_us, "{p:?}");

    // A name resolves (the DNS phase is timed), and a connect with nothing to say is up.
    let r = run(&one_step(tcp("localhost", port, None, None))).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert_eq!(r.steps[0].bytes, 0);
    assert_eq!(r.steps[0].phases.ttfb_us, 0);
}

#[tokio::test]
async fn ipv6_is_probed_when_asked_and_a_family_the_name_lacks_is_a_dns_failure() {
    let port = line_server("[::1]:0", Duration::ZERO).await;
    let mut step = tcp("::1", port, Some("PING"), Some("PONG"));
    step.ip = Some(IpFamily::V6);
    let r = run(&one_step(step)).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");

    let mut step = tcp("::1", port, Some("PING"), Some("PONG"));
    step.ip = Some(IpFamily::V4);
    let (kind, message) = failure_of(&run(&one_step(step)).await);
    assert_eq!(kind, FailureKind::Dns);
    assert!(message.contains("::1 is not an IPv4 address"), "{message}");
}

#[tokio::test]
async fn tls_is_verified_against_the_checks_ca_and_timed() {
    let pki = pki(30);
    let acceptor = pki.acceptor();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    serve_lines(tls, Duration::ZERO).await;
                }
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let mut step = tcp("localhost", port, Some("PING"), Some("PONG"));
    step.tls = true;
    let mut c = one_step(step);
    c.tls = lookout_probes::http::tls::load_ca(ca.to_str().unwrap()).unwrap();
    let r = run(&c).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    let s = &r.steps[0];
    assert!(s.phases.tls_us > 0, "{s:?}");
    assert!(matches!(s.cert_days_left, Some(29..=30)), "{s:?}");

    // Against the public roots the same server is not trusted.
    let mut step = tcp("localhost", port, Some("PING"), Some("PONG"));
    step.tls = true;
    let (kind, message) = failure_of(&run(&one_step(step)).await);
    assert_eq!(kind, FailureKind::Tls);
    assert!(
        message.contains("TLS handshake with localhost failed"),
        "{message}"
    );
}

#[tokio::test]
async fn servers_that_let_the_probe_down_fail_with_their_kind_before_the_timeout() {
    let refused = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let (kind, message) = failure_of(&run(&one_step(tcp("127.0.0.1", refused, None, None))).await);
    assert_eq!(kind, FailureKind::Refused, "{message}");

    let lines = line_server("127.0.0.1:0", Duration::ZERO).await;
    let (kind, message) = failure_of(
        &run(&one_step(tcp(
            "127.0.0.1",
            lines,
            Some("HELLO"),
            Some("^PONG"),
        )))
        .await,
    );
    assert_eq!(kind, FailureKind::Timeout, "{message}");
    assert!(
        message.contains("reading the reply") && message.contains("ERR unknown command"),
        "a wrong reply waits for the right one until the timeout, and says what came: {message}"
    );

    let hangs_up = hang_up_server(b"220 busy\n").await;
    let (kind, message) = failure_of(
        &run(&one_step(tcp(
            "127.0.0.1",
            hangs_up,
            None,
            Some("^220 ready"),
        )))
        .await,
    );
    assert_eq!(kind, FailureKind::Assertion);
    assert!(
        message.contains(r#""220 busy\n""#) && message.contains("closed the connection"),
        "{message}"
    );
    let mute = hang_up_server(b"").await;
    let (kind, message) =
        failure_of(&run(&one_step(tcp("127.0.0.1", mute, None, Some("x")))).await);
    assert_eq!(kind, FailureKind::Refused);
    assert!(message.contains("without replying"), "{message}");

    let silent = silent_server().await;
    let started = Instant::now();
    let (kind, message) = failure_of(
        &run(&one_step(tcp(
            "127.0.0.1",
            silent,
            Some("PING"),
            Some("PONG"),
        )))
        .await,
    );
    assert_eq!(kind, FailureKind::Timeout);
    assert!(message.contains("nothing was received"), "{message}");
    let mut step = tcp("127.0.0.1", silent, None, None);
    step.tls = true;
    let (kind, message) = failure_of(&run(&one_step(step)).await);
    assert_eq!(kind, FailureKind::Timeout);
    assert!(message.contains("TLS handshake"), "{message}");
    // Two runs against a server that never answers, each ended by the check's 2 s timeout.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(6),
        "{took:?}"
    );
}

/// The platform's gateway over plain TCP and over its TLS listener (the demo certificate, which
/// names 127.0.0.1, against the demo CA): a line that is not HTTP is answered with HTTP's own
/// `400`, the whole exchange timed.
#[tokio::test]
async fn the_platform_gateway_answers_a_line_over_tcp_and_over_tls() {
    use lookout_services::gateway::DEMO_CA;
    let tls_port = lookout_testkit::port::free_port();
    let gw = gateway(|s| {
        s.tls_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], tls_port)));
    })
    .await;
    let plain = tcp(
        "127.0.0.1",
        gw.addr.port(),
        Some("PING"),
        Some(r"^HTTP/1\.1 400"),
    );
    let r = run(&one_step(plain)).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    let mut over_tls = tcp("127.0.0.1", tls_port, Some("PING"), Some(r"^HTTP/1\.1 400"));
    over_tls.tls = true;
    let mut c = one_step(over_tls);
    c.tls = lookout_probes::http::tls::from_ca_pem("the demo CA", DEMO_CA.as_bytes()).unwrap();
    let r = run(&c).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    let s = &r.steps[0];
    assert!(s.phases.connect_us > 0 && s.phases.tls_us > 0, "{s:?}");
    assert!(s.cert_days_left.unwrap() > 3650, "{s:?}");
    gw.shutdown().await.unwrap();
}

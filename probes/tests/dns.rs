//! DNS steps against a real DNS server the test starts (Debian's dnsmasq, serving records of
//! every type a step may ask for, over UDP and TCP), and against servers that answer garbage
//! (the wrong id, a cut datagram, the truncation bit, nothing at all, a TCP reply that stops
//! short): each a failure of its kind and reason before the timeout.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use lookout_model::probe::{FailureKind, Outcome, ProbeResult};
use lookout_probes::kind::dns::{DnsStep, RawDns};
use lookout_testkit::child::Guard;
use lookout_testkit::port::free_port;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// dnsmasq answering for `mixradio.test` alone, on loopback, from its command line: no
/// configuration file, no upstream, nothing of the machine's.
struct Dnsmasq {
    addr: SocketAddr,
    _guard: Guard,
}

async fn dnsmasq() -> Dnsmasq {
    let port = free_port();
    let mut cmd = Command::new("dnsmasq");
    cmd.args([
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--pid-file=",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        "--listen-address=127.0.0.1",
        "--log-facility=-",
        "--local=/mixradio.test/",
        "--local-ttl=300",
        "--host-record=gateway.mixradio.test,127.0.0.10,fd00::10",
        "--cname=www.mixradio.test,gateway.mixradio.test",
        "--mx-host=mixradio.test,mail.mixradio.test,10",
        "--txt-record=mixradio.test,v=spf1 -all",
        "--srv-host=_http._tcp.mixradio.test,gateway.mixradio.test,8080,0,5",
    ])
    .arg(format!("--port={port}"));
    let guard = Guard::spawn("dnsmasq", cmd, "install Debian's dnsmasq-base");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "dnsmasq did not listen: {}",
            guard.tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Dnsmasq {
        addr,
        _guard: guard,
    }
}

#[tokio::test]
async fn every_record_type_is_asked_over_udp_and_tcp_and_its_answers_checked() {
    let server = dnsmasq().await;
    let at = server.addr.to_string();
    for transport in ["udp", "tcp"] {
        let r = ask(dns(json!({
            "server": at, "name": "gateway.mixradio.test", "transport": transport,
            "contains": ["127.0.0.10"], "equals": ["127.0.0.10"],
            "min_ttl": 300, "max_ttl": 300,
        })))
        .await;
        assert_eq!(r.outcome, Outcome::Ok, "{transport}: {r:?}");
        let p = r.steps[0].phases;
        assert!(p.dns_us > 0, "the answer time is the dns phase: {p:?}");
        assert!(p.total_us >= p.dns_us + p.connect_us, "{p:?}");
        assert_eq!(p.connect_us > 0, transport == "tcp", "{transport}: {p:?}");
        assert!(r.steps[0].bytes > 12, "{r:?}");
    }
    for (kind, name, answer) in [
        ("AAAA", "gateway.mixradio.test", "fd00::10"),
        ("CNAME", "www.mixradio.test", "gateway.mixradio.test"),
        ("MX", "mixradio.test", "10 mail.mixradio.test"),
        (
            "SRV",
            "_http._tcp.mixradio.test",
            "0 5 8080 gateway.mixradio.test",
        ),
    ] {
        let r = ask(dns(json!({
            "server": at, "name": name, "type": kind, "equals": [answer],
        })))
        .await;
        assert_eq!(r.outcome, Outcome::Ok, "{kind}: {r:?}");
    }
    // Names compare without regard to case or the root's dot.
    let r = ask(dns(json!({
        "server": at, "name": "www.mixradio.test", "type": "CNAME",
        "contains": ["Gateway.MixRadio.test."],
    })))
    .await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    let r = ask(dns(json!({
        "server": at, "name": "mixradio.test", "type": "TXT", "matches": "^v=spf1 ",
    })))
    .await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    // A name that does not exist is expected to, unless the step says otherwise.
    let missing = json!({"server": at, "name": "nope.mixradio.test"});
    let (kind, message) = failure_of(&ask(dns(missing.clone())).await);
    assert_eq!(kind, FailureKind::Assertion);
    assert!(
        message.contains("NXDOMAIN") && message.contains("not NOERROR"),
        "{message}"
    );
    let mut expect_missing = missing;
    expect_missing["rcode"] = json!("NXDOMAIN");
    let r = ask(dns(expect_missing)).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
}

#[tokio::test]
async fn answers_that_differ_from_the_step_fail_saying_what_came() {
    let server = dnsmasq().await;
    let at = server.addr.to_string();
    for (fields, said) in [
        (
            json!({"contains": ["127.0.0.99"]}),
            r#""127.0.0.99" is not among the A answers ["127.0.0.10"]"#,
        ),
        (
            json!({"equals": ["127.0.0.10", "127.0.0.11"]}),
            r#"are not exactly ["127.0.0.10", "127.0.0.11"]"#,
        ),
        (
            json!({"matches": "^10\\."}),
            r#"the answer "127.0.0.10" does not match "^10\\.""#,
        ),
        (json!({"min_ttl": 600}), "TTL of 300 s, below min_ttl 600"),
        (json!({"max_ttl": 60}), "TTL of 300 s, above max_ttl 60"),
        (
            json!({"type": "MX", "matches": "mail"}),
            r#"no MX answer to match "mail""#,
        ),
    ] {
        let mut step = json!({"server": at, "name": "gateway.mixradio.test"});
        for (k, v) in fields.as_object().unwrap() {
            step[k] = v.clone();
        }
        let (kind, message) = failure_of(&ask(dns(step)).await);
        assert_eq!(kind, FailureKind::Assertion, "{message}");
        assert!(message.contains(said), "{message} lacks {said}");
    }
}

/// Answers every query with what `reply` makes of it, over UDP; `None` answers nothing.
async fn udp_server(reply: fn(&[u8]) -> Option<Vec<u8>>) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            if let Some(out) = reply(&buf[..n]) {
                let _ = socket.send_to(&out, from).await;
            }
        }
    });
    addr
}

/// The query sent back as a reply (QR set) with the given header flags set as well.
fn echoed(query: &[u8], flags: u8) -> Vec<u8> {
    let mut out = query.to_vec();
    out[2] |= 0x80 | flags;
    out
}

#[tokio::test]
async fn servers_that_answer_garbage_fail_with_their_kind_before_the_timeout() {
    let step = |addr: SocketAddr| dns(json!({"server": addr.to_string(), "name": "a.test"}));
    let wrong_id = udp_server(|q| {
        let mut out = echoed(q, 0);
        out[0] ^= 0xff;
        Some(out)
    })
    .await;
    let (kind, message) = failure_of(&ask(step(wrong_id)).await);
    assert_eq!(kind, FailureKind::Protocol);
    assert!(message.contains("is not the query's"), "{message}");

    let cut = udp_server(|q| Some(echoed(q, 0)[..7].to_vec())).await;
    let (kind, message) = failure_of(&ask(step(cut)).await);
    assert_eq!(kind, FailureKind::Protocol);
    assert!(
        message.contains("the reply (7 bytes) is not a DNS message"),
        "{message}"
    );

    let truncated = udp_server(|q| Some(echoed(q, 0x02))).await;
    let (kind, message) = failure_of(&ask(step(truncated)).await);
    assert_eq!(kind, FailureKind::Protocol);
    assert!(message.contains("transport: tcp"), "{message}");

    // Nothing listening: the kernel's "port unreachable" ends the wait at once.
    let closed = {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.local_addr().unwrap()
    };
    let started = Instant::now();
    let (kind, message) = failure_of(&ask(step(closed)).await);
    assert_eq!(kind, FailureKind::Refused, "{message}");
    assert!(started.elapsed() < Duration::from_secs(1));

    let mute = udp_server(|_| None).await;
    let started = Instant::now();
    let (kind, message) = failure_of(&ask(step(mute)).await);
    assert_eq!(kind, FailureKind::Timeout);
    assert!(message.contains("waiting for the answer"), "{message}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(3),
        "ended by the check's 2 s timeout: {took:?}"
    );

    // Over TCP, a reply that announces more than it sends before hanging up.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let short = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let mut len = [0u8; 2];
            if tcp.read_exact(&mut len).await.is_ok() {
                let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if tcp.read_exact(&mut q).await.is_ok() {
                    let reply = echoed(&q, 0);
                    let mut out = ((reply.len() + 40) as u16).to_be_bytes().to_vec();
                    out.extend_from_slice(&reply);
                    let _ = tcp.write_all(&out).await;
                }
            }
        }
    });
    let (kind, message) = failure_of(
        &ask(dns(
            json!({"server": short.to_string(), "name": "a.test", "transport": "tcp"}),
        ))
        .await,
    );
    assert_eq!(kind, FailureKind::Protocol);
    assert!(message.contains("the reply is truncated"), "{message}");
}

fn dns(fields: Value) -> DnsStep {
    built(fields, RawDns::build)
}

async fn ask(step: DnsStep) -> ProbeResult {
    run_one(Box::new(step), None).await
}

/// The platform's gateway answers DNS for its own name, over UDP and TCP: what `lookout up`'s
/// example DNS check asks.
#[tokio::test]
async fn the_platform_gateway_answers_for_its_own_name() {
    use lookout_services::dns::DnsSettings;
    let port = free_port();
    let gw = gateway(|s| {
        s.dns = Some(DnsSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            name: "gateway.platform.test.".into(),
            ttl: 60,
        })
    })
    .await;
    let server = format!("127.0.0.1:{port}");
    for transport in ["udp", "tcp"] {
        let r = ask(dns(
            json!({"server": server, "name": "gateway.platform.test",
            "transport": transport, "equals": ["127.0.0.1"], "min_ttl": 60}),
        ))
        .await;
        assert_eq!(r.outcome, Outcome::Ok, "{transport}: {r:?}");
    }
    let r = ask(dns(
        json!({"server": server, "name": "other.platform.test"}),
    ))
    .await;
    let (kind, message) = failure_of(&r);
    assert_eq!(kind, FailureKind::Assertion);
    assert!(message.contains("NXDOMAIN"), "{message}");
    gw.shutdown().await.unwrap();
}

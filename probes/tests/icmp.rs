//! ICMP steps against the host's own loopback (IPv4 and IPv6), which answers every echo, and
//! against addresses that never do (TEST-NET-3, RFC 5737, which a router may call unreachable,
//! and a peer in a network namespace whose kernel ignores echo): round trips timed, and a host
//! that does not answer a failure before the timeout, never a hang.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

mod common;

use std::time::{Duration, Instant};

use common::*;
use lookout_model::probe::{FailureKind, Outcome, ProbeResult};
use lookout_probes::kind::icmp::{IcmpStep, RawIcmp};
use serde_json::{Value, json};

#[tokio::test]
async fn loopback_answers_every_echo_and_its_round_trip_is_timed() {
    for host in ["127.0.0.1", "::1", "localhost"] {
        let r = ping(icmp(json!({"host": host, "count": 3, "interval": "20ms"}))).await;
        // Where neither ping sockets nor raw ones are allowed, this says what the agent needs.
        assert_eq!(r.outcome, Outcome::Ok, "{host}: {r:?}");
        let s = &r.steps[0];
        assert!(s.phases.ttfb_us > 0, "{host}: the mean round trip: {s:?}");
        assert_eq!(s.bytes, 3 * 56, "{host}: {s:?}");
        // Three requests 20 ms apart: at least the two gaps between them.
        assert!(s.phases.total_us >= 40_000, "{host}: {s:?}");
    }
    let r = ping(icmp(
        json!({"host": "127.0.0.1", "count": 1, "max_rtt": "1us"}),
    ))
    .await;
    match &r.outcome {
        Outcome::Fail(f) => {
            assert_eq!(f.kind, FailureKind::Assertion);
            assert!(f.message.contains("not below max_rtt 1us"), "{f:?}");
        }
        Outcome::Ok | Outcome::Degraded(_) => panic!("a round trip under a microsecond: {r:?}"),
    }
}

#[tokio::test]
async fn an_address_that_never_answers_fails_before_the_timeout() {
    let started = Instant::now();
    let r = ping(icmp(
        json!({"host": "203.0.113.1", "count": 2, "interval": "100ms"}),
    ))
    .await;
    let took = started.elapsed();
    match &r.outcome {
        // Where a router (or the kernel) says there is no way there, at once.
        Outcome::Fail(f) if f.kind == FailureKind::Connect => {
            assert!(
                f.message.contains("echo request 1 to 203.0.113.1")
                    && (f.message.contains("unreachable") || f.message.contains("failed")),
                "{f:?}"
            );
        }
        Outcome::Fail(f) => {
            assert_eq!(f.kind, FailureKind::Timeout, "{f:?}");
            assert!(
                f.message
                    .contains("no reply to any of 2 echo requests to 203.0.113.1"),
                "{f:?}"
            );
        }
        Outcome::Ok | Outcome::Degraded(_) => panic!("TEST-NET-3 answered: {r:?}"),
    }
    assert!(
        took < Duration::from_secs(3),
        "the check's timeout is 2 s: {took:?}"
    );
}

fn icmp(fields: Value) -> IcmpStep {
    built(fields, RawIcmp::build)
}

async fn ping(step: IcmpStep) -> ProbeResult {
    run_one(Box::new(step), None).await
}

/// A peer whose kernel ignores echo requests, in a namespace of its own: no reply and no
/// "unreachable" either, so the step can only time out, and says so before the check's timeout.
#[tokio::test]
async fn a_peer_that_never_answers_is_a_timeout_before_the_check_timeout() {
    let ns = lookout_testkit::netns::Namespace::create(
        &format!("lookout-test-icmp-{}", std::process::id()),
        "lkticmp0",
        [10, 215, 0],
    )
    .unwrap();
    let host = ns.peer.to_string();
    let started = Instant::now();
    let r = ping(icmp(json!({"host": host, "count": 2, "interval": "100ms"}))).await;
    let took = started.elapsed();
    let (kind, message) = failure_of(&r);
    assert_eq!(kind, FailureKind::Timeout, "{message}");
    assert!(
        message.contains(&format!("no reply to any of 2 echo requests to {host}")),
        "{message}"
    );
    assert!(
        took < Duration::from_secs(3),
        "the check's timeout is 2 s: {took:?}"
    );
}

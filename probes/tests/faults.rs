//! Every fault the platform can inject, and every way a server can misbehave, ends a run with
//! the right outcome and a precise reason; an injected 150 ms is measured within 2 ms.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use lookout_model::probe::FailureKind;
use lookout_model::secret::Secret;
use lookout_probes::check::Step;
use lookout_probes::template::Template;
use lookout_services::data::Dataset;
use lookout_services::{Instance, InstanceSpec, ServiceKind};
use serde_json::json;

const ADMIN: &str = "probe-test-admin";

async fn catalogue() -> Instance {
    let spec = InstanceSpec {
        kind: ServiceKind::Catalogue,
        seed: 1,
        artists: 200,
        admin_token: Secret::new(ADMIN),
        gateway: None,
        analytics: None,
    };
    let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    Instance::start(spec, any, any, Some(Arc::new(Dataset::generate(1, 200))))
        .await
        .unwrap()
}

async fn fault(i: &Instance, body: serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/admin/faults", i.admin_url()))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

fn genres_check(i: &Instance) -> lookout_probes::check::Check {
    check(
        "genres",
        vec![step(
            &format!("{}/1.x/genres", i.url()),
            &[json!({"type": "status", "equals": 200})],
            &[],
        )],
    )
}

#[tokio::test]
async fn a_healthy_run_is_ok_with_every_phase_timed() {
    let c = catalogue().await;
    // `localhost` resolves from /etc/hosts, so the DNS phase is real and stays on this machine.
    let url = format!("http://localhost:{}/1.x/artists/1", c.addr.port());
    let r = run(&check(
        "artist",
        vec![step(
            &url,
            &[json!({"type": "json", "path": "$.id", "equals": 1})],
            &[],
        )],
    ))
    .await;
    assert!(r.outcome.is_ok(), "{r:?}");
    let s = &r.steps[0];
    assert_eq!(s.status, Some(200));
    assert!(s.bytes > 100);
    let p = s.phases;
    // The body came with the head, in one read: nothing was left to transfer.
    assert!(p.dns_us > 0 && p.connect_us > 0 && p.ttfb_us > 0, "{p:?}");
    assert_eq!(p.tls_us, 0);
    assert!(p.total_us >= p.dns_us + p.connect_us + p.ttfb_us + p.transfer_us);
    assert!(r.duration_us >= p.total_us);
    assert!(!s.reused_connection);
}

#[tokio::test]
async fn injected_latency_of_150ms_is_measured_within_2ms() {
    let c = catalogue().await;
    let check = genres_check(&c);
    let mut baseline = Vec::new();
    for _ in 0..5 {
        baseline.push(run(&check).await.steps[0].phases.ttfb_us);
    }
    baseline.sort_unstable();
    fault(&c, json!({"kind": "latency", "latency": "150ms"})).await;
    let mut errors = Vec::new();
    for _ in 0..5 {
        let r = run(&check).await;
        assert!(r.outcome.is_ok());
        let ttfb = r.steps[0].phases.ttfb_us as i64;
        errors.push(ttfb - 150_000);
    }
    errors.sort_unstable();
    let median = errors[2];
    assert!(
        (0..2_000).contains(&median),
        "ttfb - 150 ms = {median} us (baseline ttfb {} us)",
        baseline[2]
    );
    assert!(errors.iter().all(|e| (0..5_000).contains(e)), "{errors:?}");
}

#[tokio::test]
async fn each_fault_kind_gives_its_outcome_and_reason() {
    let c = catalogue().await;
    let check = genres_check(&c);

    fault(&c, json!({"kind": "error", "rate": 1.0, "duration": "2s"})).await;
    let r = run(&check).await;
    let f = failure(&r);
    assert_eq!(f.kind, FailureKind::Assertion);
    assert!(
        f.message.contains("status: expected 200, got 503"),
        "{}",
        f.message
    );
    assert_eq!(r.steps[0].status, Some(503));

    let client = reqwest::Client::new();
    client
        .delete(format!("{}/admin/faults", c.admin_url()))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    fault(&c, json!({"kind": "hang"})).await;
    let r = run(&check).await;
    let f = failure(&r);
    assert_eq!(f.kind, FailureKind::Timeout);
    assert!(
        f.message
            .starts_with("timed out during time to first byte after"),
        "{}",
        f.message
    );
    assert!(
        (1_900_000..2_500_000).contains(&r.duration_us),
        "the journey's 2 s timeout bounds it: {}",
        r.duration_us
    );

    client
        .delete(format!("{}/admin/faults", c.admin_url()))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    fault(&c, json!({"kind": "down"})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = run(&check).await;
    let f = failure(&r);
    assert_eq!(f.kind, FailureKind::Refused);
    assert_eq!(f.message, format!("connection refused by {}", c.addr));
    assert_eq!(f.step, Some(0));

    client
        .delete(format!("{}/admin/faults", c.admin_url()))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let back = async {
        loop {
            if run(&check).await.outcome.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), back)
        .await
        .unwrap();
}

#[tokio::test]
async fn misbehaving_servers_end_the_run_with_a_clear_reason_never_a_hang() {
    let addr = misbehaving_server().await;
    let url = |p: &str| format!("http://{addr}{p}");
    let cases: Vec<(lookout_probes::check::Check, FailureKind, &str)> = vec![
        (
            check("loop", vec![step(&url("/loop"), &[], &[])]),
            FailureKind::Redirect,
            "redirect loop",
        ),
        (
            check("pingpong", vec![step(&url("/a"), &[], &[])]),
            FailureKind::Redirect,
            "redirect loop",
        ),
        (
            check("hops", vec![step(&url("/hop/9"), &[], &[])]),
            FailureKind::Redirect,
            "more than 5 redirects",
        ),
        (
            check("trickle", vec![step(&url("/trickle"), &[], &[])]),
            FailureKind::Timeout,
            "timed out during transfer",
        ),
        (
            check("endless", vec![step(&url("/endless"), &[], &[])]),
            FailureKind::BodyTooLarge,
            "larger than the 1048576 bytes",
        ),
        (
            check(
                "not-json",
                vec![step(
                    &url("/html"),
                    &[json!({"type": "json", "path": "$.a", "exists": true})],
                    &[],
                )],
            ),
            FailureKind::Assertion,
            "the body is not JSON",
        ),
        (
            check(
                "no-capture",
                vec![step(
                    &url("/json"),
                    &[],
                    &[json!({"name": "id", "json": "$.items[0].id"})],
                )],
            ),
            FailureKind::Capture,
            "capture `id`: $.items[0].id matched nothing",
        ),
    ];
    for (c, kind, needle) in cases {
        let r = tokio::time::timeout(Duration::from_secs(5), run(&c))
            .await
            .expect("a run never hangs");
        let f = failure(&r);
        assert_eq!(f.kind, kind, "{}: {}", c.name, f.message);
        assert!(
            f.message.contains(needle),
            "{}: {:?} should contain {needle:?}",
            c.name,
            f.message
        );
    }
    let ok = run(&check(
        "hops-ok",
        vec![step(
            &url("/hop/3"),
            &[json!({"type": "status", "equals": 200})],
            &[],
        )],
    ))
    .await;
    assert!(ok.outcome.is_ok(), "three redirects are followed: {ok:?}");
}

#[tokio::test]
async fn captures_feed_the_next_step() {
    let c = catalogue().await;
    let steps = vec![
        step(
            &format!("{}/1.x/search?q=the&itemsperpage=1", c.url()),
            &[],
            &[json!({"name": "id", "json": "$.items[0].id"})],
        ),
        step(
            &format!("{}/1.x/artists/{{{{id}}}}/similar", c.url()),
            &[json!({"type": "json", "path": "$.items[9]", "exists": true})],
            &[],
        ),
    ];
    let r = run(&check("journey", steps)).await;
    assert!(r.outcome.is_ok(), "{r:?}");
    assert_eq!(r.steps.len(), 2);
}

#[tokio::test]
async fn connections_are_fresh_unless_the_check_reuses_them() {
    let c = catalogue().await;
    let two = || {
        vec![
            step(&format!("{}/1.x/genres", c.url()), &[], &[]),
            step(&format!("{}/1.x/artists/2", c.url()), &[], &[]),
        ]
    };
    let cold = run(&check("cold", two())).await;
    assert!(
        cold.steps
            .iter()
            .all(|s| !s.reused_connection && s.phases.connect_us > 0)
    );
    let mut warm = check("warm", two());
    warm.reuse_connections = true;
    let r = run(&warm).await;
    assert!(!r.steps[0].reused_connection);
    assert!(r.steps[1].reused_connection, "{r:?}");
    assert_eq!(r.steps[1].phases.connect_us, 0);
}

#[tokio::test]
async fn credentials_do_not_follow_a_redirect_to_another_origin() {
    let a = misbehaving_server().await;
    let b = misbehaving_server().await;
    let with_credentials = |url: String, asserts: &[serde_json::Value]| {
        let mut s = http_step(&url, asserts, &[]);
        s.headers = vec![
            (
                hyper::header::AUTHORIZATION,
                Template::parse("Bearer secret").unwrap(),
            ),
            (
                hyper::header::HeaderName::from_static("x-api-key"),
                Template::parse("key").unwrap(),
            ),
        ];
        Step {
            name: "step".into(),
            probe: Box::new(s),
        }
    };
    let same = with_credentials(
        format!("http://{a}/away?to=/echo-auth"),
        &[json!({"type": "json", "path": "$.authorization", "equals": true})],
    );
    let same_check = check("same-origin", vec![same]);
    assert!(
        run(&same_check).await.outcome.is_ok(),
        "same origin keeps them"
    );
    let other = with_credentials(
        format!("http://{a}/away?to=http://{b}/echo-auth"),
        &[
            json!({"type": "json", "path": "$.authorization", "equals": false}),
            json!({"type": "json", "path": "$.x_api_key", "equals": false}),
        ],
    );
    let other_check = check("other-origin", vec![other]);
    let r = run(&other_check).await;
    assert!(r.outcome.is_ok(), "{r:?}");
}

#[tokio::test]
async fn transfer_is_the_time_from_the_first_byte_to_the_last() {
    let addr = misbehaving_server().await;
    let c = check(
        "two-parts",
        vec![step(
            &format!("http://{addr}/two-parts"),
            &[json!({"type": "body_contains", "text": "first second"})],
            &[],
        )],
    );
    let r = run(&c).await;
    assert!(r.outcome.is_ok(), "{r:?}");
    let p = r.steps[0].phases;
    assert!((30_000..40_000).contains(&p.transfer_us), "{p:?}");
    assert!(p.ttfb_us < 10_000, "{p:?}");
}

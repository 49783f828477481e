//! Each fault kind, with its timing, on a real instance over loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

mod common;

use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use lookout_services::ServiceKind;
use lookout_services::data::Dataset;
use serde_json::{Value, json};

async fn catalogue() -> (lookout_services::Instance, reqwest::Client) {
    let data = Arc::new(Dataset::generate(1, 200));
    (instance(ServiceKind::Catalogue, &data).await, client())
}

fn server_timing(r: &reqwest::Response, name: &str) -> Option<f64> {
    r.headers().get_all("server-timing").iter().find_map(|v| {
        v.to_str()
            .ok()?
            .strip_prefix(&format!("{name};dur="))?
            .parse()
            .ok()
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::test]
async fn injected_latency_of_150ms_measures_as_150ms() {
    let (c, http) = catalogue().await;
    let url = format!("{}/1.x/genres", c.url());
    let time = || async {
        let started = Instant::now();
        let r = http.get(&url).send().await.unwrap();
        let elapsed = started.elapsed().as_secs_f64() * 1e3;
        assert_eq!(r.status(), 200);
        (
            elapsed,
            server_timing(&r, "fault"),
            server_timing(&r, "app"),
        )
    };
    let mut baseline = Vec::new();
    for _ in 0..7 {
        baseline.push(time().await.0);
    }
    let baseline = median(baseline);
    let r = fault(&http, &c, json!({"kind": "latency", "latency": "150ms"})).await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["kind"], "latency");
    assert_eq!(created["latency"], "150ms");
    let (mut client_side, mut server_side) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        let (elapsed, fault_ms, app_ms) = time().await;
        client_side.push(elapsed - baseline);
        server_side.push(fault_ms.unwrap());
        assert!(app_ms.unwrap() >= 150.0);
    }
    let (client_ms, server_ms) = (median(client_side), median(server_side));
    assert!(
        (150.0..150.5).contains(&server_ms),
        "server measured {server_ms} ms"
    );
    assert!(
        (148.0..152.0).contains(&client_ms),
        "client measured {client_ms} ms beyond its baseline"
    );
}

#[tokio::test]
async fn jitter_stays_within_its_bounds_and_faults_expire() {
    let (c, http) = catalogue().await;
    fault(
        &http,
        &c,
        json!({"kind": "latency", "latency": "20ms", "jitter": "20ms", "duration": "1500ms"}),
    )
    .await;
    let mut seen = Vec::new();
    for _ in 0..10 {
        let r = http
            .get(format!("{}/1.x/genres", c.url()))
            .send()
            .await
            .unwrap();
        let planned = server_timing(&r, "fault-planned").unwrap();
        let served = server_timing(&r, "fault").unwrap();
        // A sleep never wakes early; how late it wakes is the host's load, not the fault's.
        assert!(
            served >= planned - 0.001,
            "served {served} ms < planned {planned} ms"
        );
        seen.push(planned);
    }
    assert!(seen.iter().all(|ms| (20.0..=40.0).contains(ms)), "{seen:?}");
    assert!(
        seen.iter().any(|ms| (seen[0] - ms).abs() > 0.5),
        "jitter varies: {seen:?}"
    );
    let expired = eventually(Duration::from_secs(3), || async {
        let r = http
            .get(format!("{}/1.x/genres", c.url()))
            .send()
            .await
            .unwrap();
        server_timing(&r, "fault").is_none()
    })
    .await;
    assert!(expired, "a fault with a duration clears itself");
    let list: Value =
        lookout_testkit::http::get_json(&http, format!("{}/admin/faults", c.admin_url()), ADMIN)
            .await;
    assert_eq!(list["faults"], json!([]));
}

#[tokio::test]
async fn error_faults_answer_503_at_their_rate_and_respect_their_route() {
    let (c, http) = catalogue().await;
    fault(
        &http,
        &c,
        json!({"kind": "error", "rate": 1.0, "route": "/1.x/genres"}),
    )
    .await;
    assert_error(
        http.get(format!("{}/1.x/genres", c.url()))
            .send()
            .await
            .unwrap(),
        503,
        "injected fault: error",
    )
    .await;
    assert_eq!(
        http.get(format!("{}/1.x/artists/1", c.url()))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "other routes are spared"
    );
    clear(&http, &c).await;
    fault(
        &http,
        &c,
        json!({"kind": "error", "rate": 0.5, "route": "/1.x/artists/{id}"}),
    )
    .await;
    let mut failed = 0;
    for i in 1..=200 {
        let r = http
            .get(format!("{}/1.x/artists/{}", c.url(), i % 100 + 1))
            .send()
            .await
            .unwrap();
        if r.status() == 503 {
            failed += 1;
        } else {
            assert_eq!(r.status(), 200);
        }
    }
    // Binomial(200, 0.5): outside 65..=135 happens about once in ten million runs.
    assert!((65..=135).contains(&failed), "{failed} of 200 failed");
    assert_eq!(
        http.get(format!("{}/1.x/artists/1/similar", c.url()))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn down_closes_the_listener_and_drops_connections_until_cleared() {
    let (c, http) = catalogue().await;
    let url = format!("{}/1.x/genres", c.url());
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
    let r = fault(&http, &c, json!({"kind": "down"})).await;
    assert_eq!(r.status(), 201);
    let refused = eventually(Duration::from_secs(2), || async {
        matches!(TcpStream::connect(c.addr), Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
    })
    .await;
    assert!(
        refused,
        "new connections are refused, not answered with 503"
    );
    let err = http.get(&url).send().await.unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err}");
    // The admin listener stays up, so the fault can be seen and cleared.
    let list: Value =
        lookout_testkit::http::get_json(&http, format!("{}/admin/faults", c.admin_url()), ADMIN)
            .await;
    assert_eq!(list["faults"][0]["kind"], "down");
    clear(&http, &c).await;
    let back = eventually(Duration::from_secs(3), || async {
        http.get(&url).send().await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(back, "the instance listens on the same address again");
}

#[tokio::test]
async fn down_with_a_duration_comes_back_by_itself() {
    let (c, http) = catalogue().await;
    let started = Instant::now();
    fault(&http, &c, json!({"kind": "down", "duration": "800ms"})).await;
    assert!(
        eventually(Duration::from_secs(1), || async {
            TcpStream::connect(c.addr).is_err()
        })
        .await
    );
    let back = eventually(Duration::from_secs(3), || async {
        TcpStream::connect(c.addr).is_ok()
    })
    .await;
    assert!(back);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(780) && took < Duration::from_millis(1500),
        "down for {took:?}"
    );
}

#[tokio::test]
async fn hang_accepts_and_never_answers_until_cleared() {
    let (c, http) = catalogue().await;
    fault(&http, &c, json!({"kind": "hang", "route": "/1.x/genres"})).await;
    let url = format!("{}/1.x/genres", c.url());
    let err = http
        .get(&url)
        .timeout(Duration::from_millis(400))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(
        TcpStream::connect(c.addr).is_ok(),
        "connections are still accepted"
    );
    let pending = tokio::spawn({
        let (http, url) = (http.clone(), url.clone());
        async move { http.get(&url).send().await.unwrap().status() }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pending.is_finished());
    clear(&http, &c).await;
    let status = tokio::time::timeout(Duration::from_secs(2), pending)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 503, "a hung request is released, never served late");
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn the_fault_api_checks_its_token_and_its_input() {
    let (c, http) = catalogue().await;
    let url = format!("{}/admin/faults", c.url());
    assert_error(
        http.get(&url).send().await.unwrap(),
        401,
        "Authorization: Bearer",
    )
    .await;
    assert_error(
        http.get(&url).bearer_auth("nope").send().await.unwrap(),
        403,
        "not accepted",
    )
    .await;
    for (body, needle) in [
        (json!({"kind": "latency"}), "needs `latency`"),
        (
            json!({"kind": "latency", "latency": "fast"}),
            "is not a duration",
        ),
        (json!({"kind": "error", "rate": 2}), "between 0 and 1"),
        (json!({"kind": "down", "route": "/1.x"}), "cannot be scoped"),
        (json!({"kind": "boom"}), "unknown fault kind"),
        (
            json!({"kind": "hang", "colour": "red"}),
            "unknown field `colour`",
        ),
    ] {
        let r = http
            .post(&url)
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_error(r, 400, needle).await;
    }
    let id = fault(&http, &c, json!({"kind": "latency", "latency": "1ms"}))
        .await
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    let r = http
        .delete(format!("{url}/{id}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = http
        .delete(format!("{url}/{id}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "no active fault").await;
    let r = http
        .post(&url)
        .bearer_auth(ADMIN)
        .json(&json!({"kind": "clear"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

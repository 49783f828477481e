//! The gateway's duties: auth, headers downstream, gzip, ETag/304, caching headers, and
//! balancing across healthy upstream instances.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

mod common;

use std::io::Read;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn credentials_are_required_and_checked() {
    let p = Platform::start().await;
    let url = p.url("/1.x/artists/1");
    assert_error(
        p.http.get(&url).send().await.unwrap(),
        401,
        "missing credentials",
    )
    .await;
    let r = p.http.get(&url).send().await.unwrap();
    assert!(r.headers().get("www-authenticate").is_some());
    assert_error(
        p.http
            .get(&url)
            .header("x-api-key", "wrong")
            .send()
            .await
            .unwrap(),
        401,
        "API key not recognised",
    )
    .await;
    assert_error(
        p.http.get(&url).bearer_auth("stolen").send().await.unwrap(),
        401,
        "bearer token not recognised",
    )
    .await;
    assert_error(
        p.http
            .get(&url)
            .header("authorization", "Basic eDp5")
            .send()
            .await
            .unwrap(),
        401,
        "must be `Bearer <token>`",
    )
    .await;
    assert_eq!(
        p.http
            .get(format!("{url}?client_id={API_KEY}"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        p.http
            .get(&url)
            .bearer_auth(DEMO_TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Health and metrics stay open for monitors.
    assert_eq!(
        p.http
            .get(p.url("/healthcheck"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        p.http.get(p.url("/metrics")).send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn user_country_and_language_go_downstream() {
    let p = Platform::start().await;
    let alice: Value = p
        .as_user(ALICE_TOKEN, "/1.x/search?q=silver")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(alice["territory"], "FI");
    let anonymous = p.get_json("/1.x/search?q=silver").await;
    assert_eq!(anonymous["territory"], "GB");
    let radio: Value = p
        .as_user(ALICE_TOKEN, "/1.x/me/radio?count=3")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(radio["user"], "alice");
}

#[tokio::test]
async fn gzip_when_the_client_accepts_it() {
    let p = Platform::start().await;
    let plain = p.get("/1.x/artists/5/view").await.bytes().await.unwrap();
    let r = p
        .http
        .get(p.url("/1.x/artists/5/view"))
        .header("x-api-key", API_KEY)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert!(
        r.headers()["vary"]
            .to_str()
            .unwrap()
            .to_lowercase()
            .contains("accept-encoding")
    );
    let zipped = r.bytes().await.unwrap();
    assert!(
        zipped.len() < plain.len() / 2,
        "{} vs {}",
        zipped.len(),
        plain.len()
    );
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&zipped[..])
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, plain.to_vec());
}

#[tokio::test]
async fn etags_give_304s_and_cache_control_fits_each_resource() {
    let p = Platform::start().await;
    for (path, cache) in [
        ("/1.x/artists/5/view", "public, max-age=60"),
        ("/1.x/artists/5", "public, max-age=300"),
        ("/1.x/search?q=silver", "public, max-age=300"),
    ] {
        let r = p.get(path).await;
        assert_eq!(r.headers()["cache-control"], cache, "{path}");
        let etag = r.headers()["etag"].to_str().unwrap().to_owned();
        let again = p
            .http
            .get(p.url(path))
            .header("x-api-key", API_KEY)
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
        assert_eq!(again.headers()["etag"], etag.as_str());
        assert!(again.bytes().await.unwrap().is_empty());
        let other = p
            .http
            .get(p.url(path))
            .header("x-api-key", API_KEY)
            .header("if-none-match", "W/\"0\"")
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), 200);
    }
    // Both catalogue instances build the same bytes, so the ETag holds across instances.
    let tags: std::collections::HashSet<String> = etags_of(&p, "/1.x/artists/9", 6).await;
    assert_eq!(tags.len(), 1, "{tags:?}");
    let radio = p.as_user(DEMO_TOKEN, "/1.x/me/radio").await;
    assert_eq!(radio.headers()["cache-control"], "private, no-store");
    assert!(radio.headers().get("etag").is_none());
}

async fn etags_of(p: &Platform, path: &str, n: usize) -> std::collections::HashSet<String> {
    let mut tags = std::collections::HashSet::new();
    for _ in 0..n {
        tags.insert(
            p.get(path).await.headers()["etag"]
                .to_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    tags
}

#[tokio::test]
async fn a_dead_upstream_instance_is_skipped_and_reported() {
    let p = Platform::start().await;
    fault(&p.http, &p.catalogue[0], json!({"kind": "down"})).await;
    // Every request succeeds: refused connections are retried on the other instance at once.
    for i in 1..=20 {
        assert_eq!(p.get(&format!("/1.x/artists/{i}")).await.status(), 200);
    }
    let health: Value = p
        .http
        .get(p.url("/healthcheck"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "degraded", "{health}");
    let catalogue = health["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "catalogue")
        .unwrap();
    assert_eq!(catalogue["status"], "degraded");
    let dead = catalogue["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["url"] == p.catalogue[0].url())
        .unwrap();
    assert_eq!(dead["status"], "down");
    assert_eq!(dead["reason"], "connection refused");
    let upstreams: Value = lookout_testkit::http::get_json(
        &p.http,
        format!("{}/admin/upstreams", p.gateway.admin_url()),
        ADMIN,
    )
    .await;
    assert!(
        upstreams["upstreams"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == "catalogue" && d["status"] == "degraded")
    );

    // A hung instance is noticed by the health poll and skipped too.
    fault(&p.http, &p.catalogue[1], json!({"kind": "hang"})).await;
    clear(&p.http, &p.catalogue[0]).await;
    let skipped = eventually(Duration::from_secs(3), || async {
        let h: Value = p
            .http
            .get(p.url("/healthcheck"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let c = h["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == "catalogue")
            .unwrap()
            .clone();
        c["instances"][1]["status"] == "down" && c["instances"][0]["status"] == "ok"
    })
    .await;
    assert!(skipped);
    for i in 1..=10 {
        let started = std::time::Instant::now();
        assert_eq!(p.get(&format!("/1.x/artists/{i}")).await.status(), 200);
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "the hung instance is not tried"
        );
    }

    // All instances gone: a JSON 502 that names the service, never an address.
    clear(&p.http, &p.catalogue[1]).await;
    for c in &p.catalogue {
        fault(&p.http, c, json!({"kind": "down"})).await;
    }
    let r = p.get("/1.x/artists/1").await;
    assert_eq!(r.status(), 502);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "catalogue is unreachable");
    let h: Value = p
        .http
        .get(p.url("/healthcheck"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let c = h["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "catalogue")
        .unwrap()
        .clone();
    assert_eq!(c["status"], "down");
    assert_eq!(h["status"], "degraded", "the gateway itself still serves");
}

#[tokio::test]
async fn upstream_pools_can_be_replaced_at_run_time() {
    let p = Platform::start().await;
    let admin = format!("{}/admin/upstreams/catalogue", p.gateway.admin_url());
    let only_second = json!({"instances": [p.catalogue[1].url()]});
    let r = p
        .http
        .put(&admin)
        .bearer_auth(ADMIN)
        .json(&only_second)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    fault(
        &p.http,
        &p.catalogue[0],
        json!({"kind": "error", "rate": 1.0}),
    )
    .await;
    for i in 1..=6 {
        assert_eq!(
            p.get(&format!("/1.x/artists/{i}")).await.status(),
            200,
            "the removed instance gets no traffic"
        );
    }
    let r = p
        .http
        .put(&admin)
        .bearer_auth(ADMIN)
        .json(&json!({"instances": ["not a url"]}))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "instances[0]").await;
    let r = p
        .http
        .put(format!("{}/admin/upstreams/billing", p.gateway.admin_url()))
        .bearer_auth(ADMIN)
        .json(&only_second)
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "no upstream service \"billing\"").await;
    let r = p.http.put(&admin).json(&only_second).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

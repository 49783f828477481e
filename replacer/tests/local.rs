//! The replacer's reading of healthchecks, against real HTTP servers on loopback that answer
//! as sick instances do (garbage, a hang, "down", a dead dependency), and the local provider's
//! rollback when the new instance never becomes healthy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use futures_util::future::BoxFuture;
use lookout_model::secret::Secret;
use lookout_replacer::health::{Poll, poll};
use lookout_replacer::instance::Instance;
use lookout_replacer::provider::local::{Gateway, Launcher, LocalProvider};
use lookout_replacer::provider::{Provider, ProviderError};
use serde_json::json;

fn health(status: &str, deps: serde_json::Value) -> String {
    json!({"status": status, "service": "catalogue", "version": "1", "uptime_seconds": 1.0,
        "dependencies": deps})
    .to_string()
}

/// A server answering `/healthcheck` with `body` and `code` (after `delay`); its base URL.
async fn server(code: u16, body: String, delay: Duration) -> String {
    let app = Router::new().route(
        "/healthcheck",
        get(move || {
            let body = body.clone();
            async move {
                tokio::time::sleep(delay).await;
                (axum::http::StatusCode::from_u16(code).unwrap(), body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn every_way_an_instance_can_answer_is_read_right_and_never_hangs() {
    let http = reqwest::Client::new();
    let t = Duration::from_millis(300);
    let ok = server(200, health("ok", json!([])), Duration::ZERO).await;
    assert_eq!(poll(&http, &ok, t).await, Poll::Serving);
    let degraded = server(
        200,
        health("degraded", json!([{"name": "catalogue", "status": "down"}])),
        Duration::ZERO,
    )
    .await;
    assert!(
        matches!(poll(&http, &degraded, t).await, Poll::ServingDegraded(why) if why.contains("catalogue")),
        "a dead dependency is not the instance's fault"
    );
    let down = server(503, health("down", json!([])), Duration::ZERO).await;
    assert!(
        matches!(poll(&http, &down, t).await, Poll::Failed(why) if why.contains("reports itself down"))
    );
    let garbage = server(200, "<html>oops</html>".into(), Duration::ZERO).await;
    assert!(
        matches!(poll(&http, &garbage, t).await, Poll::Failed(why) if why.contains("unreadable healthcheck"))
    );
    let hang = server(200, health("ok", json!([])), Duration::from_secs(30)).await;
    let started = std::time::Instant::now();
    assert!(
        matches!(poll(&http, &hang, t).await, Poll::Failed(why) if why.contains("no answer within 300ms"))
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "bounded by the timeout"
    );
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    assert_eq!(
        poll(&http, &refused, t).await,
        Poll::Failed("connection refused".into())
    );
}

/// Starts real servers whose healthcheck says "down": a replacement that never gets healthy.
#[derive(Default)]
struct SickLauncher {
    started: Mutex<Vec<String>>,
    stopped: Mutex<Vec<String>>,
}

impl Launcher for SickLauncher {
    fn instances(&self) -> Vec<Instance> {
        Vec::new()
    }

    fn launch<'a>(&'a self, service: &'a str) -> BoxFuture<'a, Result<Instance, String>> {
        Box::pin(async move {
            let url = server(503, health("down", json!([])), Duration::ZERO).await;
            let id = format!("{service}#new");
            self.started.lock().unwrap().push(id.clone());
            Ok(Instance {
                id,
                service: service.to_owned(),
                url,
                started_us: 0,
                metrics_url: None,
            })
        })
    }

    fn stop<'a>(&'a self, id: &'a str, _grace: Duration) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.stopped.lock().unwrap().push(id.to_owned());
            Ok(())
        })
    }

    fn alive(&self, _id: &str) -> Option<bool> {
        Some(true)
    }
}

#[tokio::test]
async fn a_replacement_that_never_gets_healthy_is_stopped_and_the_old_instance_kept() {
    let launcher = Arc::new(SickLauncher::default());
    let provider = LocalProvider::new(
        launcher.clone(),
        // Never reached: the pool is touched only once the new instance is healthy.
        Gateway {
            admin_url: "http://127.0.0.1:9".into(),
            token: Secret::new("t"),
        },
    );
    let old = Instance {
        id: "catalogue#1".into(),
        service: "catalogue".into(),
        url: "http://127.0.0.1:1".into(),
        started_us: 0,
        metrics_url: None,
    };
    let err = provider
        .replace(&old, Duration::from_secs(1))
        .await
        .unwrap_err();
    let ProviderError::Failed { message, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        message.contains("did not become healthy within 1s")
            && message.contains("it was stopped and catalogue#1 kept"),
        "{message}"
    );
    assert_eq!(*launcher.started.lock().unwrap(), ["catalogue#new"]);
    assert_eq!(
        *launcher.stopped.lock().unwrap(),
        ["catalogue#new"],
        "only the new one stopped"
    );
}

//! Builds checks in code and starts small servers that misbehave on purpose.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use chrono::Datelike;
use hyper::Method;
use lookout_model::probe::{Failure, Outcome, ProbeResult};
use lookout_probes::assert::AssertionConfig;
use lookout_probes::capture::CaptureConfig;
use lookout_probes::check::{Check, ScheduleSpec, Step};
use lookout_probes::http::Pool;
use lookout_probes::journey::{self, RunContext};
use lookout_probes::kind::http::HttpStep;
use lookout_probes::template::{Template, Vars};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;

pub struct Pki {
    pub ca_pem: String,
    leaf: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

/// A CA, and a certificate for `localhost` it signed, valid until midnight UTC `days` from now.
pub fn pki(days: i64) -> Pki {
    let (ca, issuer) = lookout_testkit::pki::ca();
    let until = chrono::Utc::now() + chrono::Duration::days(days);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let mut leaf_params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf_params.not_after =
        rcgen::date_time_ymd(until.year(), until.month() as u8, until.day() as u8);
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    Pki {
        ca_pem: ca.pem(),
        leaf: leaf.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    }
}

impl Pki {
    /// The leaf and its key, for a server configured otherwise.
    pub fn certified(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (vec![self.leaf.clone()], self.key.clone_key())
    }

    /// A TLS server's side that presents the leaf.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let (chain, key) = self.certified();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

pub fn step(url: &str, asserts: &[Value], captures: &[Value]) -> Step {
    Step {
        name: "step".into(),
        probe: Box::new(http_step(url, asserts, captures)),
    }
}

pub fn http_step(url: &str, asserts: &[Value], captures: &[Value]) -> HttpStep {
    HttpStep {
        method: Method::GET,
        url: Template::parse(url).unwrap(),
        headers: vec![],
        body: None,
        captures: captures
            .iter()
            .map(|c| {
                serde_json::from_value::<CaptureConfig>(c.clone())
                    .unwrap()
                    .build()
                    .unwrap()
            })
            .collect(),
        assertions: asserts
            .iter()
            .map(|a| {
                serde_json::from_value::<AssertionConfig>(a.clone())
                    .unwrap()
                    .build()
                    .unwrap()
            })
            .collect(),
        playback: None,
    }
}

pub fn check(name: &str, steps: Vec<Step>) -> Check {
    Check {
        name: name.into(),
        description: String::new(),
        schedule: ScheduleSpec::Every(Duration::from_secs(10)),
        timeout: Duration::from_secs(2),
        regions: vec![],
        reuse_connections: false,
        max_body: 1 << 20,
        max_redirects: 5,
        tls: lookout_probes::http::tls::public_roots(),
        steps,
        heartbeat: None,
    }
}

pub async fn run(check: &Check) -> ProbeResult {
    let mut pool = Pool::default();
    journey::run(
        check,
        &Vars::new(),
        &mut pool,
        RunContext {
            region: "test",
            agent: "test-1",
            confirmation: false,
        },
    )
    .await
}

/// The kind and message of a one-step check's failure, which must be its step's.
pub fn failure_of(r: &ProbeResult) -> (lookout_model::probe::FailureKind, String) {
    match &r.outcome {
        Outcome::Fail(f) => {
            assert_eq!(f.step, Some(0), "{r:?}");
            (f.kind, f.message.clone())
        }
        Outcome::Ok | Outcome::Degraded(_) => panic!("expected a failure, got {r:?}"),
    }
}

/// A step of another kind built from its fields as a check's config writes them; any
/// problem the build reports fails the test.
pub fn built<R: serde::de::DeserializeOwned, T>(
    fields: Value,
    build: impl FnOnce(R, &str, &mut lookout_conf::Report) -> Option<T>,
) -> T {
    let raw: R = serde_json::from_value(fields).unwrap();
    let mut problems = Vec::new();
    let step = build(raw, "checks.c.steps[0]", &mut |_, path: &str, m: String| {
        problems.push(format!("{path}: {m}"))
    });
    assert!(problems.is_empty(), "{problems:?}");
    step.unwrap()
}

/// One run of a check of one step, verified against `ca_pem` if given (else the public roots).
pub async fn run_one(
    probe: Box<dyn lookout_probes::kind::Probe>,
    ca_pem: Option<&str>,
) -> ProbeResult {
    let mut c = check(
        "c",
        vec![Step {
            name: "step".into(),
            probe,
        }],
    );
    if let Some(pem) = ca_pem {
        c.tls = lookout_probes::http::tls::from_ca_pem("ca.pem", pem.as_bytes()).unwrap();
    }
    run(&c).await
}

/// Accepts and keeps every connection without a byte: no reply, no TLS handshake.
pub async fn silent_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    port
}

pub fn failure(r: &ProbeResult) -> &Failure {
    match &r.outcome {
        Outcome::Fail(f) => f,
        Outcome::Ok | Outcome::Degraded(_) => panic!("expected a failure, got {r:?}"),
    }
}

async fn trickle() -> Response {
    let stream = futures_util::stream::unfold(0u32, |n| async move {
        if n >= 50 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        Some((Ok::<_, std::io::Error>(Bytes::from_static(b"x")), n + 1))
    });
    Response::new(Body::from_stream(stream))
}

/// A body whose second half comes 30 ms after its first.
async fn two_parts() -> Response {
    let stream = futures_util::stream::unfold(0u32, |n| async move {
        match n {
            0 => Some((Ok::<_, std::io::Error>(Bytes::from_static(b"first ")), 1)),
            1 => {
                tokio::time::sleep(Duration::from_millis(30)).await;
                Some((Ok(Bytes::from_static(b"second")), 2))
            }
            _ => None,
        }
    });
    Response::new(Body::from_stream(stream))
}

async fn endless() -> Response {
    let chunk = Bytes::from(vec![b'y'; 64 * 1024]);
    let stream = futures_util::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
    Response::new(Body::from_stream(stream))
}

/// A server whose routes break the rules a probe must survive.
pub async fn misbehaving_server() -> SocketAddr {
    let app = Router::new()
        .route(
            "/loop",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/loop")]) }),
        )
        .route(
            "/a",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/b")]) }),
        )
        .route(
            "/b",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/a")]) }),
        )
        .route(
            "/hop/{n}",
            get(
                |axum::extract::Path(n): axum::extract::Path<u32>| async move {
                    if n == 0 {
                        (StatusCode::OK, [(header::LOCATION, String::new())]).into_response()
                    } else {
                        (
                            StatusCode::FOUND,
                            [(header::LOCATION, format!("/hop/{}", n - 1))],
                        )
                            .into_response()
                    }
                },
            ),
        )
        .route(
            "/html",
            get(|| async { ([(header::CONTENT_TYPE, "text/html")], "<html>hello</html>") }),
        )
        .route(
            "/json",
            get(|| async { axum::Json(serde_json::json!({"items": []})) }),
        )
        .route(
            "/echo-auth",
            get(|headers: axum::http::HeaderMap| async move {
                axum::Json(serde_json::json!({
                    "authorization": headers.get("authorization").is_some(),
                    "x_api_key": headers.get("x-api-key").is_some(),
                }))
            }),
        )
        .route(
            "/away",
            get(
                |axum::extract::Query(q): axum::extract::Query<
                    std::collections::HashMap<String, String>,
                >| async move {
                    (
                        StatusCode::FOUND,
                        [(header::LOCATION, q.get("to").cloned().unwrap_or_default())],
                    )
                },
            ),
        )
        .route("/trickle", get(trickle))
        .route("/two-parts", get(two_parts))
        .route("/endless", get(endless));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

pub fn arc(c: Check) -> Arc<Check> {
    Arc::new(c)
}

/// The bundled platform's gateway on loopback, with no upstreams, as `adjust` leaves its
/// settings (its DNS server, its TLS listener, its keys).
pub async fn gateway(
    adjust: impl FnOnce(&mut lookout_services::gateway::GatewaySettings),
) -> lookout_services::Instance {
    use lookout_services::{InstanceSpec, ServiceKind};
    let mut settings = lookout_services::gateway::GatewaySettings {
        upstreams: Default::default(),
        api_keys: vec![],
        users: vec![],
        default_country: "GB".into(),
        health_interval: Duration::from_secs(1),
        health_timeout: Duration::from_millis(500),
        upstream_timeout: Duration::from_secs(1),
        signing_key: None,
        public_url: None,
        dns: None,
        tls_listen: None,
    };
    adjust(&mut settings);
    let spec = InstanceSpec {
        kind: ServiceKind::Gateway,
        seed: 1,
        artists: 100,
        admin_token: lookout_model::secret::Secret::new("admin"),
        gateway: Some(settings),
        analytics: None,
    };
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    lookout_services::Instance::start(spec, any, any, None)
        .await
        .unwrap()
}

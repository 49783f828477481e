//! Starts the whole platform in this process, every instance on its own loopback port, and
//! talks to it over real HTTP.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lookout_model::secret::Secret;
use lookout_services::data::Dataset;
use lookout_services::gateway::UserToken;
use lookout_services::{AnalyticsSettings, GatewaySettings, Instance, InstanceSpec, ServiceKind};
use serde_json::Value;

pub const ADMIN: &str = "test-admin-token";
pub const API_KEY: &str = "test-key";
pub const DEMO_TOKEN: &str = "demo-token";
pub const ALICE_TOKEN: &str = "alice-token";
pub const ARTISTS: u32 = 2000;

pub struct Platform {
    pub data: Arc<Dataset>,
    pub catalogue: Vec<Instance>,
    pub mixes: Vec<Instance>,
    pub media: Vec<Instance>,
    pub analytics: Vec<Instance>,
    pub gateway: Instance,
    pub http: reqwest::Client,
}

fn any() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

pub fn spec(kind: ServiceKind) -> InstanceSpec {
    InstanceSpec {
        kind,
        seed: 42,
        artists: ARTISTS,
        admin_token: Secret::new(ADMIN),
        gateway: None,
        analytics: None,
    }
}

pub async fn instance(kind: ServiceKind, data: &Arc<Dataset>) -> Instance {
    Instance::start(spec(kind), any(), any(), Some(data.clone()))
        .await
        .unwrap()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

pub fn gateway_settings(upstreams: BTreeMap<String, Vec<String>>) -> GatewaySettings {
    GatewaySettings {
        upstreams,
        api_keys: vec![Secret::new(API_KEY)],
        users: vec![
            UserToken {
                token: Secret::new(DEMO_TOKEN),
                user: "demo".into(),
                country: "GB".into(),
                language: "en".into(),
            },
            UserToken {
                token: Secret::new(ALICE_TOKEN),
                user: "alice".into(),
                country: "FI".into(),
                language: "fi".into(),
            },
        ],
        default_country: "GB".into(),
        health_interval: Duration::from_millis(200),
        health_timeout: Duration::from_millis(150),
        upstream_timeout: Duration::from_secs(1),
        signing_key: Some(Secret::new("play-key")),
        public_url: None,
        dns: None,
        tls_listen: None,
    }
}

impl Platform {
    pub async fn start() -> Platform {
        let data = Arc::new(Dataset::generate(42, ARTISTS));
        let mut catalogue = Vec::new();
        let mut mixes = Vec::new();
        let mut media = Vec::new();
        for _ in 0..2 {
            catalogue.push(instance(ServiceKind::Catalogue, &data).await);
            mixes.push(instance(ServiceKind::Mixes, &data).await);
            media.push(instance(ServiceKind::Media, &data).await);
        }
        let urls = |v: &[Instance]| v.iter().map(Instance::url).collect::<Vec<_>>();
        let mut analytics_spec = spec(ServiceKind::Analytics);
        analytics_spec.analytics = Some(AnalyticsSettings {
            queue_capacity: 1000,
            mixes: urls(&mixes),
        });
        let analytics = vec![
            Instance::start(analytics_spec, any(), any(), None)
                .await
                .unwrap(),
        ];
        let mut upstreams = BTreeMap::new();
        upstreams.insert("catalogue".to_string(), urls(&catalogue));
        upstreams.insert("mixes".to_string(), urls(&mixes));
        upstreams.insert("media".to_string(), urls(&media));
        upstreams.insert("analytics".to_string(), urls(&analytics));
        let mut gw = spec(ServiceKind::Gateway);
        gw.gateway = Some(gateway_settings(upstreams));
        let gateway = Instance::start(gw, any(), any(), None).await.unwrap();
        Platform {
            data,
            catalogue,
            mixes,
            media,
            analytics,
            gateway,
            http: client(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway.url())
    }

    /// GET through the gateway with the API key.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .header("x-api-key", API_KEY)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }

    pub async fn as_user(&self, token: &str, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

/// Injects a fault on an instance through its admin listener.
pub async fn fault(http: &reqwest::Client, instance: &Instance, body: Value) -> reqwest::Response {
    http.post(format!("{}/admin/faults", instance.admin_url()))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub async fn clear(http: &reqwest::Client, instance: &Instance) {
    let r = http
        .delete(format!("{}/admin/faults", instance.admin_url()))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[allow(unused_imports)] // each test uses a part
pub use lookout_testkit::eventually;

/// Asserts a JSON error body with a message containing `needle`.
pub async fn assert_error(r: reqwest::Response, status: u16, needle: &str) {
    assert_eq!(r.status(), status);
    assert!(
        r.headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "error bodies are JSON"
    );
    let body: Value = r.json().await.unwrap();
    let msg = body["error"].as_str().unwrap_or_default().to_owned();
    assert!(msg.contains(needle), "{msg:?} should contain {needle:?}");
    assert_eq!(body["status"], status);
}

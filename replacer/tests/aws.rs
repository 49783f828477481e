//! The `aws` provider against moto's server (PyPI `moto[server]`), the AWS emulator that AWS
//! SDK users test with: each test starts its own moto on a free port of 127.0.0.1, sets up
//! Auto Scaling groups with boto3 (`support/moto_asg.py`), lets the provider list and replace
//! instances over the signed Query API, and checks the outcome with boto3 again. Past the
//! setup, moto checks every request's SigV4 signature against the IAM key setup made.
//!
//! Needs python3 with moto and boto3: `python3 -m pip install 'moto[server]' boto3`
//! (`scripts/test` installs them).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use lookout_testkit::peers;

use lookout_model::secret::Secret;
use lookout_replacer::instance::Instance;
use lookout_replacer::provider::aws::{AwsAction, AwsProvider, AwsSettings};
use lookout_replacer::provider::{Provider, ProviderError, Replaced};
use serde::Deserialize;

const REGION: &str = "us-east-1";
/// The key for the setup, before moto checks signatures.
const SETUP_KEY_ID: &str = "testing";
/// Distinctive, so that a test can tell it never leaks into an error.
const SECRET: &str = "lookout-test-secret-never-printed";

/// A moto server, and the key its signatures are checked against.
struct Moto {
    _server: peers::Moto,
    endpoint: String,
    /// The IAM key made by [`Moto::setup`]: `(id, secret)`.
    key: (String, String),
}

impl Moto {
    async fn start() -> Moto {
        let server = peers::Moto::start().await;
        Moto {
            endpoint: server.endpoint.clone(),
            _server: server,
            key: (SETUP_KEY_ID.into(), SECRET.into()),
        }
    }

    /// Runs `support/moto_asg.py` against this server; its JSON output.
    async fn helper<T: for<'de> Deserialize<'de>>(&self, args: &[&str]) -> T {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/moto_asg.py");
        let out = tokio::process::Command::new("python3")
            .arg(&script)
            .arg(args[0])
            .arg(&self.endpoint)
            .args(&args[1..])
            .env("AWS_ACCESS_KEY_ID", &self.key.0)
            .env("AWS_SECRET_ACCESS_KEY", &self.key.1)
            .env("AWS_DEFAULT_REGION", REGION)
            // Only the key above: nothing of the developer's own AWS setup.
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .output()
            .await
            .expect("run moto_asg.py");
        assert!(
            out.status.success(),
            "moto_asg.py {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("moto_asg.py prints JSON")
    }

    /// Groups `web` (3 instances) and `other` (2), and an IAM key that every later call
    /// must be signed with.
    async fn setup(&mut self) -> HashMap<String, Vec<Made>> {
        let setup: Setup = self.helper(&["setup", "web=3", "other=2"]).await;
        self.key = (setup.key.id, setup.key.secret);
        setup.groups
    }

    async fn describe(&self) -> Described {
        self.helper(&["describe"]).await
    }

    fn provider(&self, groups: &[&str], action: AwsAction) -> AwsProvider {
        self.provider_with_secret(groups, action, &self.key.1)
    }

    fn provider_with_secret(
        &self,
        groups: &[&str],
        action: AwsAction,
        secret: &str,
    ) -> AwsProvider {
        AwsProvider::new(AwsSettings {
            endpoint: Some(self.endpoint.parse().expect("moto's URL")),
            region: REGION.into(),
            access_key_id: self.key.0.clone(),
            secret_access_key: Secret::new(secret),
            session_token: None,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            action,
            url_template: "http://{private_ip}:8080".into(),
            timeout: Duration::from_secs(10),
        })
        .expect("valid settings")
    }
}

#[derive(Debug, Deserialize)]
struct Setup {
    groups: HashMap<String, Vec<Made>>,
    key: Key,
}

#[derive(Debug, Deserialize)]
struct Key {
    id: String,
    secret: String,
}

#[derive(Debug, Deserialize)]
struct Made {
    id: String,
    private_ip: String,
}

#[derive(Debug, Deserialize)]
struct Described {
    instances: Vec<Seen>,
    desired: HashMap<String, u32>,
}

#[derive(Debug, Deserialize)]
struct Seen {
    id: String,
    group: String,
    health: String,
    lifecycle: String,
}

impl Described {
    fn get(&self, id: &str) -> Option<&Seen> {
        self.instances.iter().find(|i| i.id == id)
    }
}

/// Replaces the instance; how it was handed to its group.
async fn handed(provider: &AwsProvider, id: &str, group: &str) -> String {
    match provider
        .replace(&instance(id, group), Duration::from_secs(20))
        .await
    {
        Ok(Replaced::Handed { detail }) => detail,
        other => panic!("replace {id} in {group}: {other:?}"),
    }
}

fn instance(id: &str, service: &str) -> Instance {
    Instance {
        id: id.into(),
        service: service.into(),
        url: "http://10.0.0.1:8080".into(),
        started_us: 0,
        metrics_url: None,
    }
}

#[tokio::test]
async fn lists_every_in_service_instance_with_its_group_and_url() {
    let mut moto = Moto::start().await;
    let made = moto.setup().await;
    let provider = moto.provider(&["web", "other"], AwsAction::MarkUnhealthy);
    assert_eq!(provider.kind(), "aws");

    let before_us = chrono::Utc::now().timestamp_micros();
    let mut listed = provider.instances().await.expect("instances");
    listed.sort_by(|a, b| a.id.cmp(&b.id));
    let mut expected: Vec<(String, String, String)> = made
        .iter()
        .flat_map(|(group, made)| {
            made.iter().map(move |m| {
                (
                    m.id.clone(),
                    group.clone(),
                    format!("http://{}:8080", m.private_ip),
                )
            })
        })
        .collect();
    expected.sort();
    let got: Vec<(String, String, String)> = listed
        .iter()
        .map(|i| (i.id.clone(), i.service.clone(), i.url.clone()))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(got.len(), 5);
    // From EC2's launch time: set, and not in the future.
    for i in &listed {
        assert!(
            i.started_us > 0 && i.started_us <= before_us + 1_000_000,
            "{i:?}"
        );
    }

    // Only the watched groups.
    let web_only = moto.provider(&["web"], AwsAction::MarkUnhealthy);
    let listed = web_only.instances().await.expect("instances");
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|i| i.service == "web"), "{listed:?}");

    // A group that does not exist is skipped (and logged), not fatal.
    let with_missing = moto.provider(&["web", "no-such-group"], AwsAction::MarkUnhealthy);
    assert_eq!(with_missing.instances().await.expect("instances").len(), 3);
}

#[tokio::test]
async fn mark_unhealthy_marks_exactly_that_instance() {
    let mut moto = Moto::start().await;
    let made = moto.setup().await;
    let provider = moto.provider(&["web", "other"], AwsAction::MarkUnhealthy);
    let target = &made["web"][1].id;

    assert_eq!(
        handed(&provider, target, "web").await,
        "marked Unhealthy in group web"
    );

    let seen = moto.describe().await;
    assert_eq!(seen.instances.len(), 5, "{seen:?}");
    for i in &seen.instances {
        let expected = if &i.id == target {
            "Unhealthy"
        } else {
            "Healthy"
        };
        assert_eq!(i.health, expected, "{i:?}");
        assert_eq!(i.lifecycle, "InService", "{i:?}");
    }
    assert_eq!(seen.get(target).map(|i| i.group.as_str()), Some("web"));
}

#[tokio::test]
async fn terminate_takes_exactly_that_instance_out_of_its_group() {
    let mut moto = Moto::start().await;
    let made = moto.setup().await;
    let keep = moto.provider(
        &["web", "other"],
        AwsAction::Terminate {
            decrement_desired: false,
        },
    );
    let shrink = moto.provider(
        &["web", "other"],
        AwsAction::Terminate {
            decrement_desired: true,
        },
    );
    let web_target = &made["web"][0].id;
    let other_target = &made["other"][1].id;

    assert_eq!(
        handed(&keep, web_target, "web").await,
        "terminated in group web, which launches a replacement"
    );
    assert_eq!(
        handed(&shrink, other_target, "other").await,
        "terminated in group other, its desired capacity decremented"
    );

    let seen = moto.describe().await;
    for gone in [web_target, other_target] {
        if let Some(i) = seen.get(gone) {
            assert!(
                i.lifecycle.starts_with("Terminat"),
                "{i:?} is still in service"
            );
        }
    }
    for (group, made) in &made {
        for m in made {
            if &m.id == web_target || &m.id == other_target {
                continue;
            }
            let i = seen
                .get(&m.id)
                .unwrap_or_else(|| panic!("{} is gone", m.id));
            assert_eq!(
                (i.group.as_str(), i.health.as_str(), i.lifecycle.as_str()),
                (group.as_str(), "Healthy", "InService"),
                "{i:?}"
            );
        }
    }
    assert_eq!(seen.desired["web"], 3, "web keeps its capacity");
    assert_eq!(seen.desired["other"], 1, "other shrinks by one");

    // The provider no longer lists them.
    let listed = keep.instances().await.expect("instances");
    assert!(
        listed
            .iter()
            .all(|i| &i.id != web_target && &i.id != other_target),
        "{listed:?}"
    );
}

#[tokio::test]
async fn an_unknown_or_unwatched_instance_is_left_alone() {
    let mut moto = Moto::start().await;
    let made = moto.setup().await;
    let provider = moto.provider(
        &["web"],
        AwsAction::Terminate {
            decrement_desired: false,
        },
    );

    let err = provider
        .replace(
            &instance("i-0123456789abcdef0", "web"),
            Duration::from_secs(20),
        )
        .await
        .expect_err("no such instance");
    assert_eq!(
        err,
        ProviderError::NotFound {
            provider: "aws",
            id: "i-0123456789abcdef0".into()
        }
    );

    // In a group the provider does not watch: refused, by name.
    let other = &made["other"][0].id;
    let err = provider
        .replace(&instance(other, "other"), Duration::from_secs(20))
        .await
        .expect_err("not watched");
    let shown = err.to_string();
    assert!(matches!(err, ProviderError::Failed { .. }), "{err:?}");
    assert!(
        shown.contains(other) && shown.contains("\"other\""),
        "{shown}"
    );
    assert!(
        !shown.contains(SECRET) && !shown.contains("never-printed"),
        "{shown}"
    );

    // Nothing was touched.
    let seen = moto.describe().await;
    assert_eq!(seen.instances.len(), 5);
    assert!(
        seen.instances
            .iter()
            .all(|i| i.health == "Healthy" && i.lifecycle == "InService"),
        "{seen:?}"
    );
}

/// A provider of group `web` at `endpoint`, with a session token, giving up after `timeout`.
fn provider_at(endpoint: &str, timeout: Duration) -> AwsProvider {
    AwsProvider::new(AwsSettings {
        endpoint: Some(endpoint.parse().expect("url")),
        region: REGION.into(),
        access_key_id: SETUP_KEY_ID.into(),
        secret_access_key: Secret::new(SECRET),
        session_token: Some(Secret::new("lookout-test-token-never-printed")),
        groups: vec!["web".into()],
        action: AwsAction::MarkUnhealthy,
        url_template: "http://{private_ip}:8080".into(),
        timeout,
    })
    .expect("valid settings")
}

#[tokio::test]
async fn an_endpoint_that_never_answers_times_out() {
    // Accepts connections (the kernel does) and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let provider = provider_at(&endpoint, Duration::from_millis(300));

    let err = provider.instances().await.expect_err("times out");
    assert_eq!(
        err,
        ProviderError::Timeout {
            provider: "aws",
            timeout: Duration::from_millis(300)
        }
    );
    // The replacement's deadline bounds the whole of it.
    let err = provider
        .replace(&instance("i-0aaa", "web"), Duration::from_millis(100))
        .await
        .expect_err("times out");
    assert_eq!(
        err,
        ProviderError::Timeout {
            provider: "aws",
            timeout: Duration::from_millis(100)
        }
    );
    drop(listener);
}

#[tokio::test]
async fn an_endpoint_that_refuses_fails_by_action_and_cause() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let provider = provider_at(&endpoint, Duration::from_secs(5));

    let err = provider.instances().await.expect_err("refused");
    let shown = err.to_string();
    assert!(matches!(err, ProviderError::Failed { .. }), "{err:?}");
    assert!(
        shown.starts_with(&format!("aws: DescribeAutoScalingGroups at {endpoint}: ")),
        "{shown}"
    );
    assert!(shown.to_lowercase().contains("refused"), "{shown}");
    assert!(!shown.contains("never-printed"), "{shown}");
}

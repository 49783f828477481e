//! What the system tests share: `lookout up` started from a config file, with the listeners
//! it prints, and child processes that never outlive the test.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods
)] // each test uses a part; waits are synchronous

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const LOOKOUT: &str = env!("CARGO_BIN_EXE_lookout");

/// A child process stopped (TERM, then KILL after 20 s) when the test ends however it ends.
pub struct Proc(pub Child);

impl Proc {
    pub fn kill_now(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.kill_now();
    }
}

/// Each listener `lookout up` printed: name -> (URL, admin URL).
pub type Components = BTreeMap<String, (String, String)>;

/// Starts `lookout up --config CONFIG` and waits until it says it is ready.
pub fn up(config: &Path) -> (Proc, Components) {
    let mut child = Command::new(LOOKOUT)
        .args(["up", "--config"])
        .arg(config)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut components = BTreeMap::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.starts_with("Press Ctrl-C") {
            break;
        }
        if let [name, url, "admin", admin] = line.split_whitespace().collect::<Vec<_>>()[..] {
            components.insert(name.to_owned(), (url.to_owned(), admin.to_owned()));
        }
    }
    // Keep reading, so `lookout up` never writes to a closed pipe.
    std::thread::spawn(move || for _ in lines {});
    (Proc(child), components)
}

#[allow(unused_imports)] // each test uses a part
pub use lookout_testkit::wait_until;

/// The process listening on `url`'s port (by iproute2's `ss`), to kill it like a crash.
pub fn pid_of(url: &str) -> u32 {
    let port = url.rsplit(':').next().unwrap();
    let out = Command::new("ss")
        .args(["-ltnpH", &format!("sport = :{port}")])
        .output()
        .expect("ss (iproute2) finds the instance's process");
    let text = String::from_utf8_lossy(&out.stdout);
    let at = text
        .find("pid=")
        .unwrap_or_else(|| panic!("no process on {url}: {text}"));
    text[at + 4..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[allow(unused_imports)]
pub use lookout_testkit::http::get_json;

/// The samples of `/metrics` at `url` whose line starts with `prefix`: (the rest of the name
/// and labels, value).
pub async fn samples(http: &reqwest::Client, url: &str, prefix: &str) -> Vec<(String, f64)> {
    let text = lookout_testkit::http::get_text(http, format!("{url}/metrics")).await;
    text.lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The start of a config a `lookout up` test runs: its data directory, the platform
/// ([`platform_yaml`]), a collector on a free port with `token`, and the `checks:` list with
/// the `search` use case (every `interval`, asserting a 200 through the gateway with `api_key`).
pub fn suite_yaml(data: &Path, admin: &str, api_key: &str, token: &str, interval: &str) -> String {
    let platform = platform_yaml(admin, api_key, [1, 1, 1, 1], false);
    format!(
        r#"data_dir: {data}
{platform}collector:
  listen: 127.0.0.1:0
  token: {token}
variables:
  gateway: http://unused
checks:
  - name: search
    description: Find artists and tracks
    interval: {interval}
    timeout: 2s
    steps:
      - url: "{{{{gateway}}}}/1.x/search?q=the"
        headers: {{ X-Api-Key: {api_key} }}
        assert:
          - {{ type: status, equals: 200 }}
"#,
        data = data.display()
    )
}

/// The `platform:` section a `lookout up` test starts from: the bundled services on free
/// loopback ports with `instances` of catalogue, mixes, media and analytics and one API key.
/// `fast_health`: the gateway polls its upstreams every 500 ms, so an instance that leaves is
/// out of its pool within a second.
pub fn platform_yaml(admin: &str, api_key: &str, instances: [u32; 4], fast_health: bool) -> String {
    let [catalogue, mixes, media, analytics] = instances;
    let health = if fast_health {
        "    health_interval: 500ms\n    health_timeout: 300ms\n"
    } else {
        ""
    };
    format!(
        "platform:
  artists: 1000
  admin_token: {admin}
  gateway:
    listen: 127.0.0.1:0
    admin_listen: 127.0.0.1:0
    api_keys: [{api_key}]
{health}  catalogue: {{ instances: {catalogue} }}
  mixes: {{ instances: {mixes} }}
  media: {{ instances: {media} }}
  analytics: {{ instances: {analytics} }}
"
    )
}

// ---------------------------------------------------------------------------------------------
// A webhook receiver for the alerter's notifications.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// What the webhook receiver got: (event header, body).
#[derive(Clone, Default)]
pub struct Received(Arc<Mutex<Vec<(String, Value)>>>);

impl Received {
    pub fn all(&self) -> Vec<(String, Value)> {
        self.0.lock().unwrap().clone()
    }

    /// Pages: triggers that say `severity: page`.
    pub fn pages(&self) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|(e, b)| e == "trigger" && b["severity"] == "page")
            .map(|(_, b)| b)
            .collect()
    }

    pub fn of(&self, event: &str, problem: &str) -> usize {
        self.all()
            .iter()
            .filter(|(e, b)| e == event && b["problem_id"] == problem)
            .count()
    }
}

async fn hook(
    State(r): State<Received>,
    headers: HeaderMap,
    body: axum::Json<Value>,
) -> &'static str {
    let event = headers
        .get("x-lookout-event")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    r.0.lock().unwrap().push((event, body.0));
    "ok"
}

pub async fn receiver() -> (String, Received) {
    let received = Received::default();
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), received)
}

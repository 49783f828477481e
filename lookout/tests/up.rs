//! End to end: `lookout up` as a user runs it, driven over real HTTP.
// Process management here is synchronous (std::process), so plain thread sleeps are right.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const LOOKOUT: &str = env!("CARGO_BIN_EXE_lookout");

struct Up {
    child: Child,
    /// component name (e.g. `catalogue#1`) -> (url, admin url)
    components: BTreeMap<String, (String, String)>,
    _dir: tempfile::TempDir,
}

fn config(gateway: &str, extra: &str) -> String {
    format!(
        "platform:\n  artists: 1000\n  admin_token: e2e-admin\n  gateway:\n    listen: {gateway}\n    admin_listen: 127.0.0.1:0\n    api_keys: [e2e-key]\n    users:\n      - {{ token: e2e-demo, user: demo }}\n    health_interval: 300ms\n    health_timeout: 200ms\n{extra}"
    )
}

fn start(config_text: &str) -> Result<Up, (Option<i32>, String)> {
    start_with(config_text, &[])
}

/// `lookout up` with `args`, once it says it runs; each part it lists by name, as (URL, admin
/// URL) or, for the clustered shape's processes, (URL, pid).
fn start_with(config_text: &str, args: &[&str]) -> Result<Up, (Option<i32>, String)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lookout.yaml");
    std::fs::write(&path, config_text).unwrap();
    let mut child = Command::new(LOOKOUT)
        .arg("up")
        .args(args)
        .arg("--config")
        .arg(&path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // Keep reading after the test stops listening, so lookout's stdout never closes.
            let _ = tx.send(line);
        }
    });
    let mut components = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.starts_with("Press Ctrl-C") => break,
            Ok(line) => {
                let parts: Vec<&str> = line.split_whitespace().collect();
                match parts[..] {
                    [name, url, "admin", admin] | [name, url, "pid", admin, "log", _] => {
                        components.insert(name.to_owned(), (url.to_owned(), admin.to_owned()));
                    }
                    _ => {}
                }
            }
            Err(_) => {
                let status = child.wait().unwrap();
                let mut stderr = String::new();
                std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr)
                    .unwrap();
                return Err((status.code(), stderr));
            }
        }
    }
    Ok(Up {
        child,
        components,
        _dir: dir,
    })
}

impl Up {
    fn url(&self, name: &str) -> &str {
        &self.components[name].0
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "lookout up did not stop within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn addrs(&self) -> Vec<SocketAddr> {
        self.components
            .values()
            .flat_map(|(u, a)| [u, a])
            .filter_map(|u| u.trim_start_matches("http://").parse().ok())
            .collect()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn all_refused(addrs: &[SocketAddr], within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if addrs.iter().all(|a| TcpStream::connect(a).is_err()) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn up_serves_the_platform_a_user_can_use_and_stops_on_sigterm() {
    let mut up = start(&config("127.0.0.1:0", "")).unwrap_or_else(|e| panic!("{e:?}"));
    let names: Vec<&str> = up.components.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "analytics#1",
            "analytics#2",
            "catalogue#1",
            "catalogue#2",
            "gateway#1",
            "media#1",
            "media#2",
            "mixes#1",
            "mixes#2"
        ]
    );
    let gw = up.url("gateway#1").to_owned();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let get = |path: &str| {
        http.get(format!("{gw}{path}"))
            .header("x-api-key", "e2e-key")
            .send()
    };

    let search: Value = get("/1.x/search?q=the&itemsperpage=5")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = search["items"][0]["id"].as_u64().unwrap();
    let view = get(&format!("/1.x/artists/{id}/view")).await.unwrap();
    assert_eq!(view.status(), 200);
    let view: Value = view.json().await.unwrap();
    assert_eq!(view["artist"]["id"], id);
    assert!(view["mix"]["tracks"].is_array());

    let me = |path: &str| {
        http.get(format!("{gw}{path}"))
            .bearer_auth("e2e-demo")
            .send()
    };
    let radio: Value = me("/1.x/me/radio?count=20")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first = &radio["tracks"][0];
    let track = first["id"].as_u64().unwrap();
    let artist = first["artist"]["id"].as_u64().unwrap();

    let play: Value = get(&format!("/1.x/tracks/{track}/play"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let audio = http
        .get(play["url"].as_str().unwrap())
        .header("range", "bytes=0-4095")
        .send()
        .await
        .unwrap();
    assert_eq!(audio.status(), 206);
    assert_eq!(&audio.bytes().await.unwrap()[..4], b"RIFF");

    let events = json!([
        {"type": "playback", "trackid": track, "position_ms": 0},
        {"type": "thumbs", "trackid": track, "direction": "down"},
        {"type": "thumbs", "trackid": track, "direction": "down"},
    ]);
    let r = http
        .post(format!("{gw}/1.x/events"))
        .bearer_auth("e2e-demo")
        .json(&events)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let profile: Value = me("/1.x/me/profile").await.unwrap().json().await.unwrap();
        if profile["banned_artists"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == artist)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the thumbs down never reached the radio"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..3 {
        let radio: Value = me("/1.x/me/radio?count=50")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            radio["tracks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|t| t["artist"]["id"] != artist)
        );
    }

    // Faults reach each instance through its admin listener.
    let catalogue_admin = up.components["catalogue#1"].1.clone();
    let r = http
        .post(format!("{catalogue_admin}/admin/faults"))
        .bearer_auth("e2e-admin")
        .json(&json!({"kind": "down", "duration": "30s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for i in 1..=10 {
        assert_eq!(
            get(&format!("/1.x/artists/{i}")).await.unwrap().status(),
            200,
            "the gateway skips the dead instance"
        );
    }

    let addrs = up.addrs();
    up.signal("-TERM");
    assert_eq!(up.wait(Duration::from_secs(20)), Some(0));
    assert!(
        all_refused(&addrs, Duration::from_secs(5)),
        "every instance stopped with the supervisor"
    );
}

#[test]
fn a_port_in_use_is_named_exits_2_and_leaves_nothing_running() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    // Fixed ports for catalogue, so we can tell they were stopped again: from below the
    // ephemeral range, which no other test's `bind(:0)` is handed meanwhile.
    let free: Vec<u16> = (0..2).map(|_| lookout_testkit::free_port()).collect();
    let extra = format!(
        "  catalogue:\n    listen: [127.0.0.1:{}, 127.0.0.1:{}]\n",
        free[0], free[1]
    );
    let started = Instant::now();
    let Err((code, stderr)) = start(&config(&format!("127.0.0.1:{port}"), &extra)) else {
        panic!("lookout up started on a port in use");
    };
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "gateway: cannot listen on 127.0.0.1:{port}: Address already in use"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was left running"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(60));
    let addrs: Vec<SocketAddr> = free
        .iter()
        .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
        .collect();
    assert!(all_refused(&addrs, Duration::from_secs(5)));
}

#[test]
fn instances_stop_when_their_supervisor_is_killed() {
    let mut up = start(&config("127.0.0.1:0", "")).unwrap_or_else(|e| panic!("{e:?}"));
    let addrs = up.addrs();
    assert!(addrs.iter().all(|a| TcpStream::connect(a).is_ok()));
    up.signal("-KILL");
    up.wait(Duration::from_secs(5));
    assert!(
        all_refused(&addrs, Duration::from_secs(10)),
        "no orphaned instances"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn up_runs_an_agent_per_region_and_a_cut_link_fails_only_that_region() {
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "data_dir: {}\ncollector:\n  listen: 127.0.0.1:0\n  token: e2e-token\nvariables:\n  gateway: http://unused\nchecks:\n  - name: search\n    cron: \"* * * * * *\"\n    timeout: 800ms\n    steps:\n      - url: \"{{{{gateway}}}}/1.x/search?q=the\"\n        headers: {{ X-Api-Key: e2e-key }}\n        assert:\n          - {{ type: json, path: \"$.paging.total\", gt: 0 }}\n",
        dir.path().join("data").display()
    );
    let text = config("127.0.0.1:0", "").replace("platform:\n", &format!("{extra}platform:\n"));
    let mut up = start(&text).unwrap_or_else(|e| panic!("{e:?}"));
    for name in [
        "collector",
        "probe@eu-west",
        "probe@us-east",
        "probe@ap-south",
        "link@eu-west",
        "link@us-east",
        "link@ap-south",
    ] {
        assert!(
            up.components.contains_key(name),
            "{name} in {:?}",
            up.components.keys()
        );
    }
    let collector = up.url("collector").to_owned();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let results = |region: &'static str| {
        let (http, collector) = (http.clone(), collector.clone());
        async move {
            let body: Value = lookout_testkit::http::get_json(
                &http,
                format!("{collector}/api/v1/results?check=search&region={region}&limit=100000"),
                "e2e-token",
            )
            .await;
            body["results"].as_array().unwrap().clone()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let counts = [
            results("eu-west").await.len(),
            results("us-east").await.len(),
            results("ap-south").await.len(),
        ];
        if counts.iter().all(|n| *n >= 2) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "every region reports: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for region in ["eu-west", "us-east", "ap-south"] {
        assert!(
            results(region)
                .await
                .iter()
                .all(|r| r["outcome"]["status"] == "ok"),
            "{region} is healthy"
        );
    }

    // Cut eu-west's link: its runs time out; the other regions are untouched.
    let link_admin = up.components["link@eu-west"].1.clone();
    let r = http
        .post(format!("{link_admin}/admin/link"))
        .bearer_auth("e2e-admin")
        .json(&json!({"cut": "blackhole"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cut_at = chrono_now_us();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let failed: Vec<Value> = results("eu-west")
            .await
            .into_iter()
            .filter(|r| {
                r["started_at_us"].as_i64().unwrap() > cut_at && r["outcome"]["status"] == "fail"
            })
            .collect();
        if failed.len() >= 2 {
            assert_eq!(failed[0]["outcome"]["kind"], "timeout", "{}", failed[0]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "eu-west fails once its link is cut"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for region in ["us-east", "ap-south"] {
        let later: Vec<Value> = results(region)
            .await
            .into_iter()
            .filter(|r| r["started_at_us"].as_i64().unwrap() > cut_at)
            .collect();
        assert!(!later.is_empty());
        assert!(
            later.iter().all(|r| r["outcome"]["status"] == "ok"),
            "{region} unaffected"
        );
    }
    up.signal("-TERM");
    assert_eq!(up.wait(Duration::from_secs(20)), Some(0));
}

fn chrono_now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

#[tokio::test(flavor = "multi_thread")]
async fn up_cluster_runs_the_replicated_shape_and_a_killed_collector_replica_stops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "data_dir: {}\ncollector:\n  listen: 127.0.0.1:0\n  token: e2e-token\nvariables:\n  gateway: http://unused\nprobes:\n  flush_interval: 200ms\nchecks:\n  - name: search\n    cron: \"* * * * * *\"\n    timeout: 800ms\n    steps:\n      - url: \"{{{{gateway}}}}/1.x/search?q=the\"\n        headers: {{ X-Api-Key: e2e-key }}\n",
        dir.path().join("data").display()
    );
    let text = config("127.0.0.1:0", "").replace("platform:\n", &format!("{extra}platform:\n"));
    let mut up = start_with(&text, &["--cluster"]).unwrap_or_else(|e| panic!("{e:?}"));
    for name in [
        "nats-0",
        "nats-1",
        "nats-2",
        "collector-0",
        "collector-1",
        "collector-2",
        "probe-eu-west",
        "probe-us-east",
        "probe-ap-south",
    ] {
        assert!(
            up.components.contains_key(name),
            "{name} in {:?}",
            up.components.keys()
        );
    }
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let results = |collector: &str| {
        let (http, url) = (
            http.clone(),
            format!(
                "{}/api/v1/results?check=search&limit=100000",
                up.url(collector)
            ),
        );
        async move {
            let Ok(r) = http.get(url).bearer_auth("e2e-token").send().await else {
                return Vec::new();
            };
            let body: Value = r.json().await.unwrap_or_default();
            body["results"].as_array().cloned().unwrap_or_default()
        }
    };
    let regions = |results: &[Value]| {
        results
            .iter()
            .filter(|r| r["outcome"]["status"] == "ok")
            .filter_map(|r| r["region"].as_str().map(str::to_owned))
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    lookout_testkit::wait_until(
        "every region's results on every replica",
        Duration::from_secs(60),
        || async {
            let mut all = true;
            for c in ["collector-0", "collector-1", "collector-2"] {
                all &= regions(&results(c).await) == 3;
            }
            all
        },
    )
    .await;
    // SIGKILL a collector replica: the agents fail over, the others go on taking everything.
    let pid = up.components["collector-1"].1.clone();
    assert!(
        Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap()
            .success()
    );
    let before = results("collector-0").await.len();
    lookout_testkit::wait_until(
        "both live replicas take new results from every region",
        Duration::from_secs(30),
        || async {
            let (a, b) = (results("collector-0").await, results("collector-2").await);
            let new: Vec<Value> = a.iter().skip(before).cloned().collect();
            regions(&new) == 3 && b.len() >= before + 6
        },
    )
    .await;
    let addrs: Vec<SocketAddr> = up
        .components
        .iter()
        .filter(|(name, _)| name.starts_with("collector") || name.starts_with("nats"))
        .filter_map(|(_, (url, _))| {
            url.trim_start_matches("http://")
                .trim_start_matches("nats://")
                .parse()
                .ok()
        })
        .collect();
    up.signal("-TERM");
    assert_eq!(up.wait(Duration::from_secs(60)), Some(0));
    assert!(
        all_refused(&addrs, Duration::from_secs(5)),
        "every part of the shape stopped with it"
    );
}

//! The status page as partners meet it, in `lookout up`: an outage injected through the
//! platform's fault API shows on the page, in the Statuspage JSON and in the feed within one
//! probe interval plus the confirmation, a person's update shows everywhere at once, and the
//! incident resolves when the fault clears; a stream that would stutter is degraded
//! performance; and the page as headless Chromium renders it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use common::wait_until;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ADMIN: &str = "page-admin-token";
const STATUS_TOKEN: &str = "status-page-admin-token";
/// The collector's, and so the alerter's.
const TOKEN: &str = "status-page-test-token";
const INTERVAL: Duration = Duration::from_secs(5);
/// A failure seen from one region is confirmed from the others within 2 s (the probes'
/// confirmation runs); the collector then calls the check down; the page follows its feed.
const CONFIRMATION: Duration = Duration::from_secs(4);

fn config(dir: &Path) -> PathBuf {
    let platform = common::platform_yaml(ADMIN, "page-key", [1, 1, 1, 1], false);
    let text = format!(
        r#"data_dir: {data}
{platform}collector:
  listen: 127.0.0.1:0
  token: status-page-test-token
variables:
  gateway: http://unused
checks:
  - name: search
    interval: 5s
    timeout: 3s
    steps:
      - url: "{{{{gateway}}}}/1.x/search?q=the"
        headers: {{ X-Api-Key: page-key }}
        assert:
          - {{ type: status, equals: 200 }}
  - name: artist-view
    interval: 5s
    timeout: 3s
    steps:
      - url: "{{{{gateway}}}}/1.x/search?q=the"
        headers: {{ X-Api-Key: page-key }}
        capture:
          - {{ name: artist_id, json: "$.items[0].id" }}
      - url: "{{{{gateway}}}}/1.x/artists/{{{{artist_id}}}}"
        headers: {{ X-Api-Key: page-key }}
        assert:
          - {{ type: status, equals: 200 }}
alerting:
  listen: 127.0.0.1:0
status_page:
  listen: 127.0.0.1:0
  title: Test platform status
  admin_token: {STATUS_TOKEN}
  refresh_every: 5s
  regions: {{ eu-west: Europe, us-east: North America, ap-south: Asia Pacific }}
  groups:
    - name: Discovery
      components:
        - {{ name: Search, check: search, description: Find artists and tracks }}
        - {{ name: Artist pages, check: artist-view }}
"#,
        data = dir.join("data").display()
    );
    let path = dir.join("lookout.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

struct Page {
    url: String,
    alerter: String,
    http: reqwest::Client,
}

impl Page {
    async fn text(&self, path: &str) -> String {
        lookout_testkit::http::get_ok(&self.http, format!("{}{path}", self.url)).await
    }

    async fn json(&self, path: &str) -> Value {
        serde_json::from_str(&self.text(path).await).unwrap()
    }

    async fn indicator(&self) -> String {
        self.json("/api/v2/status.json").await["status"]["indicator"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Every component has figures: the collector has results from every region.
    async fn measured(&self) -> bool {
        let html = self.text("/").await;
        html.matches("<td>Europe</td><td>").count() == 2 && !html.contains("no data</td>")
    }
}

fn start(dir: &Path) -> (common::Proc, Page, String) {
    let (proc, components) = common::up(&config(dir));
    let url = components["status-page"].0.clone();
    let alerter = components["alerting"].0.clone();
    let gateway_admin = components["gateway#1"].1.clone();
    (
        proc,
        Page {
            url,
            alerter,
            http: reqwest::Client::new(),
        },
        gateway_admin,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outage_shows_on_the_page_the_json_and_the_feed_and_resolves_when_it_clears() {
    let dir = tempfile::tempdir().unwrap();
    let (_up, page, gateway_admin) = start(dir.path());
    wait_until("every component measured", Duration::from_secs(60), || {
        page.measured()
    })
    .await;
    assert_eq!(page.indicator().await, "none");

    let fault = Duration::from_secs(20);
    let r = page
        .http
        .post(format!("{gateway_admin}/admin/faults"))
        .bearer_auth(ADMIN)
        .json(&json!({"kind": "down", "duration": "20s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let injected = Instant::now();
    let limit = INTERVAL + CONFIRMATION;
    let shown = wait_until("the incident on the JSON", limit, || async {
        page.json("/api/v2/incidents/unresolved.json").await["incidents"]
            .as_array()
            .is_some_and(|i| !i.is_empty())
    })
    .await;
    println!("incident in the JSON {shown:?} after the fault (limit {limit:?})");
    let html = page.text("/").await;
    assert!(
        html.contains("Active incidents") && html.contains("unavailable"),
        "{html}"
    );
    assert!(html.contains("Major outage"), "every region fails: {html}");
    assert_eq!(page.indicator().await, "critical");
    let feed = page.text("/history.atom").await;
    assert!(feed.contains("unavailable [Investigating]"), "{feed}");
    let unresolved = page.json("/api/v2/incidents/unresolved.json").await;
    let id = unresolved["incidents"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A person's update is everywhere when the API answers.
    let r = page
        .http
        .post(format!("{}/api/v1/incidents/{id}/updates", page.url))
        .bearer_auth(STATUS_TOKEN)
        .json(&json!({"status": "identified", "message": "The gateway lost its listener; restarting it."}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    assert!(
        page.text("/")
            .await
            .contains("The gateway lost its listener; restarting it.")
    );
    assert!(
        page.text(&format!("/incidents/{id}"))
            .await
            .contains("restarting it")
    );
    assert!(page.text("/history.atom").await.contains("[Identified]"));
    assert_eq!(
        page.json("/api/v2/incidents/unresolved.json").await["incidents"][0]["incident_updates"][0]
            ["body"],
        "The gateway lost its listener; restarting it."
    );

    let cleared = fault.saturating_sub(injected.elapsed());
    tokio::time::sleep(cleared).await;
    let resolved = wait_until("the incident resolved", INTERVAL + CONFIRMATION, || async {
        page.json("/api/v2/incidents.json").await["incidents"][0]["status"] == "resolved"
    })
    .await;
    println!("resolved {resolved:?} after the fault cleared");
    assert_eq!(
        page.json("/api/v2/incidents/unresolved.json").await["incidents"],
        json!([])
    );
    wait_until("all operational", Duration::from_secs(10), || async {
        page.indicator().await == "none"
    })
    .await;
    assert!(page.text("/history.atom").await.contains("[Resolved]"));
    assert!(!page.text("/").await.contains("Active incidents"));
}

/// Chromium's screenshot of the page, `width` wide, in the light or dark scheme.
fn screenshot(url: &str, path: &Path, width: u32, dark: bool, profile: &Path) {
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        &format!("--window-size={width},2000"),
        &format!("--user-data-dir={}", profile.display()),
        &format!("--screenshot={}", path.display()),
    ]);
    if dark {
        cmd.arg("--blink-settings=preferredColorScheme=0");
    }
    let out = cmd.arg(url).output().expect(
        "the browser test needs Debian's chromium (./scripts/test installs it: apt-get install chromium)",
    );
    assert!(
        path.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A PNG's pixels: width and RGB rows.
struct Image {
    width: u32,
    channels: usize,
    data: Vec<u8>,
}

impl Image {
    fn open(path: &Path) -> Image {
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut data = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut data).unwrap();
        Image {
            width: info.width,
            channels: info.color_type.samples(),
            data,
        }
    }

    fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let at = ((y * self.width + x) as usize) * self.channels;
        [self.data[at], self.data[at + 1], self.data[at + 2]]
    }

    /// The first row, from the top, where column `x` is green: the operational banner.
    fn green_row(&self, x: u32) -> Option<u32> {
        (0..600).find(|&y| {
            let [r, g, b] = self.pixel(x, y);
            g > 100 && u16::from(g) > u16::from(r) + 40 && u16::from(g) > u16::from(b) + 40
        })
    }
}

/// Maintenance scheduled on the page's admin API is the collector's: the alerter, which reads
/// only the collector, holds its pages for it (as read-only silences) and lets go when it is
/// cancelled on the page.
#[tokio::test(flavor = "multi_thread")]
async fn maintenance_scheduled_on_the_page_holds_the_alerters_pages_until_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let (_up, page, _) = start(dir.path());
    let admin = |method: reqwest::Method, path: &str| {
        page.http
            .request(method, format!("{}{path}", page.url))
            .bearer_auth(STATUS_TOKEN)
    };
    let now = chrono::Utc::now();
    let r = admin(reqwest::Method::POST, "/api/v1/maintenances")
        .json(
            &json!({"name": "Search index rebuild", "components": ["search"],
            "starts": (now - chrono::Duration::minutes(1)).to_rfc3339(),
            "ends": (now + chrono::Duration::hours(1)).to_rfc3339()}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let active: Value = r.json().await.unwrap();
    let r = admin(reqwest::Method::POST, "/api/v1/maintenances")
        .json(
            &json!({"name": "Database upgrade", "components": ["search", "artist-pages"],
            "starts": (now + chrono::Duration::days(2)).to_rfc3339(),
            "ends": (now + chrono::Duration::days(2) + chrono::Duration::hours(1)).to_rfc3339()}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let held = || async {
        let silences =
            common::get_json(&page.http, &format!("{}/api/silences", page.alerter), TOKEN).await;
        silences
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["kind"] == "maintenance")
            .map(|s| s["matchers"].clone())
            .collect::<Vec<Value>>()
    };
    wait_until(
        "the alerter holds both windows",
        Duration::from_secs(10),
        || async { held().await.len() == 2 },
    )
    .await;
    let matchers = held().await;
    assert!(matchers.contains(&json!(["about:search"])), "{matchers:?}");
    assert!(
        matchers.contains(&json!(["about:search", "about:artist-view"])),
        "{matchers:?}"
    );

    let id = active["id"].as_i64().unwrap();
    let r = admin(
        reqwest::Method::DELETE,
        &format!("/api/v1/maintenances/{id}"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 204);
    wait_until("the hold is lifted", Duration::from_secs(10), || async {
        held().await.len() == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn headless_chromium_shows_every_component_with_its_90_bars() {
    let dir = tempfile::tempdir().unwrap();
    let (_up, page, _) = start(dir.path());
    wait_until("every component measured", Duration::from_secs(60), || {
        page.measured()
    })
    .await;

    let out = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(&page.url)
        .output()
        .expect("the browser test needs Debian's chromium (apt-get install chromium)");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("All systems operational"), "{dom}");
    for (id, name) in [("search", "Search"), ("artist-pages", "Artist pages")] {
        let start = dom
            .find(&format!("data-component=\"{id}\""))
            .unwrap_or_else(|| panic!("{id} on the page: {dom}"));
        let section = &dom[start..];
        assert!(section.contains(&format!("<h3>{name}</h3>")));
        let bars = &section[..section.find("</ol>").unwrap()];
        assert_eq!(
            bars.matches("<li class=\"bar ").count(),
            90,
            "{id}: 90 bars"
        );
        assert!(bars.contains("b-up"), "today is up: {bars}");
        assert!(
            bars.contains("no downtime, no incidents"),
            "a text tooltip per bar"
        );
    }

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status-page");
    std::fs::create_dir_all(&shots).unwrap();
    let (light, dark, phone) = (
        shots.join("light.png"),
        shots.join("dark.png"),
        shots.join("phone.png"),
    );
    for p in [&light, &dark, &phone] {
        let _ = std::fs::remove_file(p);
    }
    let profile = dir.path().join("profile");
    screenshot(&page.url, &light, 1280, false, &profile);
    screenshot(&page.url, &dark, 1280, true, &profile);
    screenshot(&page.url, &phone, 390, false, &profile);
    println!("screenshots in {}", shots.display());
    let (light, dark, phone) = (Image::open(&light), Image::open(&dark), Image::open(&phone));
    // The page follows the reader's scheme: a white page in light, GitHub-dark in dark.
    assert_eq!(light.pixel(5, 5), [0xff, 0xff, 0xff]);
    assert_eq!(dark.pixel(5, 5), [0x0d, 0x11, 0x17]);
    // The banner is green (operational) in both schemes, near the top, and on a phone it
    // spans the screen from edge to edge, less the margins.
    for (name, image, x) in [
        ("light", &light, 640),
        ("dark", &dark, 640),
        ("phone", &phone, 30),
    ] {
        let row = image.green_row(x);
        assert!(
            row.is_some_and(|y| y < 300),
            "{name}: a green banner near the top: {row:?}"
        );
    }
    let y = phone.green_row(30).unwrap_or(0) + 5;
    assert!(
        phone.green_row(360).is_some() && phone.pixel(360, y)[1] > 100,
        "the banner is as wide as the phone"
    );
}

/// `lookout up` with the example's `listen` journey: a stream delivered slower than 1.5x real
/// time (the gateway's `bandwidth` fault on play URLs) is up, shown as "Degraded performance"
/// on the page and in its JSON, and a `degraded_regions` check of the alerter's warns; lifted,
/// all is operational again.
#[tokio::test(flavor = "multi_thread")]
async fn a_stream_that_would_stutter_is_degraded_performance_up_and_a_warn() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"data_dir: {data}
platform:
  artists: 200
  admin_token: {ADMIN}
  gateway:
    listen: 127.0.0.1:0
    admin_listen: 127.0.0.1:0
    api_keys: [page-key]
    users:
      - {{ token: page-user, user: demo }}
  catalogue: {{ instances: 1 }}
  mixes: {{ instances: 1 }}
  media: {{ instances: 1 }}
  analytics: {{ instances: 1 }}
collector:
  listen: 127.0.0.1:0
  token: {TOKEN}
variables:
  gateway: http://unused
checks:
  - name: listen
    interval: 5s
    timeout: 4s
    steps:
      - url: "{{{{gateway}}}}/1.x/me/radio?count=1"
        headers: {{ Authorization: "Bearer page-user" }}
        capture:
          - {{ name: track_id, json: "$.tracks[0].id" }}
      - url: "{{{{gateway}}}}/1.x/tracks/{{{{track_id}}}}/play"
        headers: {{ Authorization: "Bearer page-user" }}
        capture:
          - {{ name: audio_url, json: "$.url" }}
      - url: "{{{{audio_url}}}}"
        playback: {{ seconds: 1 }}
alerting:
  listen: 127.0.0.1:0
  checks:
    - {{ name: listen-stutters, target: degraded_regions(listen), warn: 1, interval: 1s, allow_no_data: true }}
status_page:
  listen: 127.0.0.1:0
  title: Test platform status
  admin_token: {STATUS_TOKEN}
  refresh_every: 5s
  regions: {{ eu-west: Europe, us-east: North America, ap-south: Asia Pacific }}
  groups:
    - name: Listening
      components:
        - {{ name: Playback, check: listen }}
"#,
        data = dir.path().join("data").display()
    );
    let path = dir.path().join("lookout.yaml");
    std::fs::write(&path, text).unwrap();
    let (_up, components) = common::up(&path);
    let page = Page {
        url: components["status-page"].0.clone(),
        alerter: components["alerting"].0.clone(),
        http: reqwest::Client::new(),
    };
    let gateway_admin = components["gateway#1"].1.clone();
    let status = || async {
        let v = page.json("/api/v2/components.json").await;
        v["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "Playback")
            .and_then(|c| c["status"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let stutters = || async {
        common::get_json(
            &page.http,
            &format!("{}/api/checks/listen-stutters", page.alerter),
            TOKEN,
        )
        .await["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    wait_until("playback measured", Duration::from_secs(60), || async {
        page.text("/").await.contains("<td>Europe</td><td>") && status().await == "operational"
    })
    .await;

    // 1.25x real time (a track is 44,100 bytes a second): it plays, but would stutter.
    let r = page
        .http
        .post(format!("{gateway_admin}/admin/faults"))
        .bearer_auth(ADMIN)
        .json(&json!({"kind": "bandwidth", "bytes_per_second": 55_125, "route": "/1.x/play"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    wait_until(
        "degraded performance on the page",
        2 * INTERVAL + Duration::from_secs(10),
        || async { status().await == "degraded_performance" },
    )
    .await;
    let html = page.text("/").await;
    assert!(html.contains("Degraded performance in"), "{html}");
    let states = common::get_json(
        &page.http,
        &format!("{}/api/v1/states", components["collector"].0),
        TOKEN,
    )
    .await;
    let listen = &states["checks"][0];
    assert_eq!(listen["state"], "up", "degraded is up: {listen}");
    let reason = listen["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["state"] == "degraded")
        .and_then(|r| r["reason"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(reason.contains("under 1.5x"), "{listen}");
    wait_until("the alerter warns", Duration::from_secs(15), || async {
        stutters().await == "WARN"
    })
    .await;

    let r = page
        .http
        .delete(format!("{gateway_admin}/admin/faults"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let regions_ok = || async {
        let states = common::get_json(
            &page.http,
            &format!("{}/api/v1/states", components["collector"].0),
            TOKEN,
        )
        .await;
        states["checks"][0]["regions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "ok")
    };
    wait_until(
        "every region plays well again",
        2 * INTERVAL + Duration::from_secs(10),
        regions_ok,
    )
    .await;
    wait_until("the warning clears", Duration::from_secs(15), || async {
        stutters().await == "OK"
    })
    .await;
    // The degraded runs still weigh on the latency figures of the window they are in, so the
    // page may call the component slow a while longer; it no longer calls it degraded.
    wait_until("the page follows", Duration::from_secs(10), || async {
        !page.text("/").await.contains("Degraded performance in")
    })
    .await;
}

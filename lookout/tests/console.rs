//! The on-call console as a person meets it, in `lookout up`: headless Chromium (Debian's
//! `chromium`, driven over WebDriver by `chromedriver`) signs in, sees the problem an outage
//! injected through the platform's fault API raised, acknowledges it through the form,
//! silences it from its page, and sees both there and through the API. Screenshots in the
//! light and dark schemes and at a phone's width are checked by their pixels.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const ADMIN: &str = "console-admin-token";
const TOKEN: &str = "console-api-token";
const PERSON: &str = "Ada On-call";

fn config(dir: &Path) -> PathBuf {
    let suite = common::suite_yaml(
        &dir.join("data"),
        ADMIN,
        "console-key",
        "console-collector-token",
        "3s",
    );
    let text = format!(
        r#"{suite}alerting:
  listen: 127.0.0.1:0
  token: {TOKEN}
  confirm_after: 2s
status_page:
  enabled: false
"#
    );
    let path = dir.join("lookout.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// chromedriver on a free port, stopped with the test.
struct Driver {
    url: String,
    _proc: common::Proc,
}

impl Driver {
    async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "the console test needs Debian's chromium-driver (./scripts/test installs it: apt-get install chromium-driver)",
            );
        let url = format!("http://127.0.0.1:{port}");
        let status = format!("{url}/status");
        common::wait_until("chromedriver listening", Duration::from_secs(20), || {
            let status = status.clone();
            async move { reqwest::get(status).await.is_ok() }
        })
        .await;
        Driver {
            url,
            _proc: common::Proc(child),
        }
    }

    /// A new browser: its own profile, the light or dark scheme, a desktop window.
    async fn browser(&self, profile: &Path, dark: bool) -> Client {
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            "--hide-scrollbars".into(),
            "--window-size=1280,1000".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        if dark {
            args.push("--blink-settings=preferredColorScheme=0".into());
        }
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session through chromedriver")
    }
}

async fn fill(b: &Client, at: Locator<'_>, text: &str) {
    let field = b.find(at).await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn click(b: &Client, at: Locator<'_>) {
    b.find(at).await.unwrap().click().await.unwrap();
}

/// Clicks what loads a new page (a link, a form's button) and waits until that page has
/// replaced this one: WebDriver's click may return before a form's navigation has begun, and
/// reading the source then gives the old page.
async fn follow(b: &Client, at: Locator<'_>) {
    let old = b.find(Locator::Css("html")).await.unwrap();
    click(b, at).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let replaced = old.tag_name().await.is_err();
        let loaded = b
            .execute("return document.readyState", vec![])
            .await
            .is_ok_and(|state| state == "complete");
        if replaced && loaded {
            return;
        }
        assert!(Instant::now() < deadline, "the page never changed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn sign_in(b: &Client, alerter: &str) {
    b.goto(&format!("{alerter}/")).await.unwrap();
    assert!(b.current_url().await.unwrap().path().ends_with("/sign-in"));
    fill(b, Locator::Id("name"), PERSON).await;
    fill(b, Locator::Id("token"), TOKEN).await;
    follow(b, Locator::Id("sign-in")).await;
    let body = b.source().await.unwrap();
    assert!(
        body.contains("Open problems") && body.contains(PERSON),
        "{body}"
    );
}

/// A PNG's size and pixels.
struct Image {
    width: u32,
    height: u32,
    channels: usize,
    data: Vec<u8>,
}

impl Image {
    fn decode(png_bytes: &[u8]) -> Image {
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut data = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut data).unwrap();
        Image {
            width: info.width,
            height: info.height,
            channels: info.color_type.samples(),
            data,
        }
    }

    fn brightness(&self, x: u32, y: u32) -> u32 {
        let at = ((y * self.width + x) as usize) * self.channels;
        (u32::from(self.data[at]) + u32::from(self.data[at + 1]) + u32::from(self.data[at + 2])) / 3
    }

    /// Whether some pixel has red well above green and blue: the ERROR marks.
    fn has_red(&self) -> bool {
        self.data
            .chunks(self.channels)
            .any(|p| p[0] > 150 && p[1] < 90 && p[2] < 90)
    }
}

async fn shot(b: &Client, name: &str) -> Image {
    let bytes = b.screenshot().await.unwrap();
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("console-{name}.png"));
    std::fs::write(&path, &bytes).unwrap();
    println!("screenshot: {}", path.display());
    Image::decode(&bytes)
}

async fn api(http: &reqwest::Client, alerter: &str, path: &str) -> Value {
    let r = http
        .get(format!("{alerter}{path}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_signs_in_acknowledges_and_silences_the_problem_an_outage_raised() {
    let dir = tempfile::tempdir().unwrap();
    let (_up, components) = common::up(&config(dir.path()));
    let alerter = components["alerting"].0.clone();
    let gateway_admin = components["gateway#1"].1.clone();
    let http = reqwest::Client::new();
    let driver = Driver::start().await;
    let b = driver.browser(&dir.path().join("light"), false).await;
    sign_in(&b, &alerter).await;

    // An outage through the platform's fault API: every region fails.
    common::wait_until(
        "the alerter sees search",
        Duration::from_secs(60),
        || async {
            api(&http, &alerter, "/api/checks/search-down").await["last_check"].is_string()
        },
    )
    .await;
    let r = http
        .post(format!("{gateway_admin}/admin/faults"))
        .bearer_auth(ADMIN)
        .json(&json!({"kind": "down", "duration": "5m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let injected = Instant::now();
    common::wait_until(
        "the problem on the console",
        Duration::from_secs(45),
        || async {
            b.goto(&format!("{alerter}/")).await.unwrap();
            b.source().await.unwrap().contains("Open problems (1)")
        },
    )
    .await;
    println!(
        "problem on the console {:?} after the fault",
        injected.elapsed()
    );
    let now_page = b.source().await.unwrap();
    assert!(
        now_page.contains("✖ ERROR") && now_page.contains("search down"),
        "{now_page}"
    );
    let now_light = shot(&b, "now-light").await;

    // To the problem's page, through its link; acknowledge through the form.
    follow(&b, Locator::Css("article.card h3 a")).await;
    let problem_url = b.current_url().await.unwrap();
    assert!(
        problem_url.path().starts_with("/problems/"),
        "{problem_url}"
    );
    fill(&b, Locator::Id("ack-comment"), "looking at the gateway").await;
    follow(&b, Locator::Id("ack")).await;
    let page = b.source().await.unwrap();
    assert!(
        page.contains(&format!("✓ acknowledged by {PERSON}")),
        "{page}"
    );
    // Then silence it from the same page, for two hours.
    click(&b, Locator::Css("#silence-duration option[value='2h']")).await;
    fill(&b, Locator::Id("silence-comment"), "gateway being replaced").await;
    follow(&b, Locator::Id("silence")).await;
    let page = b.source().await.unwrap();
    assert!(page.contains(&format!("⊘ silenced by {PERSON}")), "{page}");
    let timeline = b
        .find(Locator::Id("timeline"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for step in [
        "opened: ✖ ERROR",
        &format!("acknowledged by {PERSON}"),
        &format!("silenced by {PERSON}"),
    ] {
        assert!(timeline.contains(step), "{step}: {timeline}");
    }
    let light = shot(&b, "problem-light").await;

    // Both through the API.
    let open = api(&http, &alerter, "/api/problems?open=true").await;
    let p = &open[0];
    assert_eq!(p["ack"]["by"], PERSON, "{open}");
    assert_eq!(p["ack"]["comment"], "looking at the gateway");
    assert!(
        problem_url
            .path()
            .ends_with(&p["id"].as_str().unwrap().replace('@', "%40"))
    );
    let silences = api(&http, &alerter, "/api/silences").await;
    let s = silences
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["created_by"] == PERSON)
        .unwrap_or_else(|| panic!("{silences}"));
    let hours = (s["ends_us"].as_i64().unwrap() - s["starts_us"].as_i64().unwrap()) as f64 / 3.6e9;
    assert!((hours - 2.0).abs() < 0.01, "{s}");

    // At a phone's width the page fits: no sideways scrolling, and the forms are there.
    b.set_window_size(390, 844).await.unwrap();
    b.goto(problem_url.as_str()).await.unwrap();
    let scroll: Value = b
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth]",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        scroll[0].as_i64() <= scroll[1].as_i64(),
        "sideways scrolling: {scroll}"
    );
    let phone = shot(&b, "problem-phone").await;
    b.close().await.unwrap();

    // The dark scheme, in a browser of its own.
    let d = driver.browser(&dir.path().join("dark"), true).await;
    sign_in(&d, &alerter).await;
    d.goto(problem_url.as_str()).await.unwrap();
    let dark = shot(&d, "problem-dark").await;
    d.close().await.unwrap();

    for (name, img) in [
        ("now", &now_light),
        ("light", &light),
        ("dark", &dark),
        ("phone", &phone),
    ] {
        assert!(
            img.has_red(),
            "{name}: the ERROR state shows in red beside its words"
        );
        assert!(img.height > 300, "{name}: {}x{}", img.width, img.height);
    }
    assert_eq!(phone.width, 390, "a phone's width");
    assert!(light.width >= 1200, "{}", light.width);
    assert!(
        light.brightness(5, light.height - 5) > 230,
        "light background"
    );
    assert!(dark.brightness(5, dark.height - 5) < 40, "dark background");
    assert!(phone.brightness(5, phone.height - 5) > 230);
}

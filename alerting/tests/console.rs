//! The on-call console over HTTP, as a browser without script uses it: sign in with a token,
//! see the problem a real collector's results opened, acknowledge it and silence it through
//! the forms, and see both in its history and through the API. What it must refuse (forms
//! without their CSRF token, read-only sessions acting, signed-out sessions, forged, used and
//! expired acknowledge links) is refused with a page and counted. Text from checks, reasons
//! and people is escaped on every page. An acknowledge link is taken from a real email
//! (aiosmtpd) and stops the reminders. (The browser itself drives the console in
//! lookout/tests/console.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

mod relay;
mod world;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lookout_alerting::notify::{self, NotifierConfig};
use lookout_model::secret::Secret;
use lookout_testkit::peers::Smtp;
use relay::smtp_config;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use world::*;

const READ_TOKEN: &str = "read-only-token-for-tests";
/// In a check's name, the first failure's reason and a person's name: never raw on a page.
const EVIL: [&str; 2] = [
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(2)>",
];

/// A browser without script: keeps cookies, does not follow redirects (each is asserted).
struct Browser {
    base: String,
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Page {
    /// The value of a hidden input (the CSRF token of the page's forms).
    fn input(&self, name: &str) -> String {
        let at = self
            .body
            .find(&format!("name=\"{name}\" value=\""))
            .unwrap_or_else(|| panic!("no input {name}: {}", self.body));
        let rest = &self.body[at + name.len() + 15..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    fn assert_escaped(&self, what: &str) {
        for evil in EVIL {
            assert!(
                !self.body.contains(evil),
                "{what}: {evil:?} is not escaped: {}",
                self.body
            );
        }
    }
}

impl Browser {
    fn new(base: &str) -> Browser {
        Browser {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, r: reqwest::RequestBuilder) -> Page {
        let resp = r
            .header(reqwest::header::COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        for c in headers.get_all(SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (kv, attrs) = c.split_once(';').unwrap_or((c, ""));
            assert!(
                attrs.contains("HttpOnly") && attrs.contains("SameSite=Strict"),
                "{c}"
            );
            let (k, v) = kv.split_once('=').unwrap();
            if v.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let body = resp.text().await.unwrap();
        assert!(
            !body.contains(API_TOKEN) && !body.contains(READ_TOKEN),
            "{body}"
        );
        assert_ne!(status, 500, "{body}");
        Page {
            status,
            headers,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let r = self.http.get(format!("{}{path}", self.base));
        self.send(r).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(r).await
    }

    async fn sign_in(&mut self, name: &str, token: &str) -> Page {
        let form = self.get("/sign-in").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let t = form.input("form_token");
        let done = self
            .post(
                "/sign-in",
                &[("name", name), ("token", token), ("form_token", &t)],
            )
            .await;
        if done.status == 303 {
            assert_eq!(done.location(), "/");
            assert!(self.cookies.contains_key("lookout_session"));
        }
        done
    }
}

/// The alerter's refusals by reason, from its /metrics.
async fn refusals(w: &World) -> BTreeMap<String, u64> {
    let text = reqwest::get(format!("{}/metrics", w.alerter.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("lookout_alerting_console_refusals_total{reason=\""))
        .filter_map(|l| l.split_once("\"} "))
        .map(|(r, n)| (r.to_owned(), n.trim().parse().unwrap()))
        .collect()
}

/// Two regions of three fail twice, with an evil reason, a second apart: a confirmed down.
async fn take_down_with(w: &World, reason: &str) {
    let t = now_us() - 3_000_000;
    let result = |region: &str, t: i64, ok: bool| {
        let outcome = if ok {
            json!({"status": "ok"})
        } else {
            json!({"status": "fail", "kind": "refused", "step": 0, "message": reason})
        };
        json!({"check": "search", "region": region, "agent": format!("{region}-1"),
            "seq": w.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            "started_at_us": t, "outcome": outcome, "duration_us": 100_000, "steps": []})
    };
    for t in [t, t + 1_500_000] {
        let body = json!({"results": [result("ap", t, true), result("eu", t, false),
            result("us", t + 1_000, false)]});
        let r = w
            .http
            .post(format!("{}/api/v1/results", w.collector.url()))
            .bearer_auth(COLLECTOR_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

async fn open_problem(w: &World) -> Value {
    let start = Instant::now();
    loop {
        w.alerter.tick().await.unwrap();
        let open = w.get("/api/problems?open=true").await;
        if let Some(p) = open.as_array().and_then(|a| a.first()) {
            return p.clone();
        }
        assert!(start.elapsed() < DEADLINE, "no problem opened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_sign_in_acknowledge_and_silence_through_forms_and_the_console_refuses_the_rest() {
    let w = World::start(|s| {
        s.read_tokens = vec![Secret::new(READ_TOKEN)];
    })
    .await;
    let mut check = down_check("search-down");
    check["name"] = json!(format!("Search {} {}", EVIL[0], EVIL[1]));
    w.create(check).await;
    take_down_with(&w, &format!("refused {} {}", EVIL[0], EVIL[1])).await;
    let problem = open_problem(&w).await;
    let id = problem["id"].as_str().unwrap().to_owned();
    let path = format!("/problems/{}", id.replace('@', "%40"));

    // No session: the pages send to the sign-in; a form is refused outright.
    let mut anon = Browser::new(&w.alerter.url());
    let p = anon.get("/").await;
    assert_eq!((p.status, p.location()), (303, "/sign-in"));
    let p = anon.post(&format!("{path}/ack"), &[("csrf", "x")]).await;
    assert_eq!(p.status, 401, "{}", p.body);
    // A wrong token, and a sign-in form without its own CSRF token, are refused.
    let p = anon.sign_in("Mallory", "not-a-token").await;
    assert_eq!(p.status, 403, "{}", p.body);
    assert!(p.body.contains("That token was not accepted"), "{}", p.body);
    let p = anon
        .post("/sign-in", &[("name", "Mallory"), ("token", API_TOKEN)])
        .await;
    assert_eq!(p.status, 403, "{}", p.body);

    // Read-only: sees everything, changes nothing.
    let mut reader = Browser::new(&w.alerter.url());
    assert_eq!(reader.sign_in("Rita Reader", READ_TOKEN).await.status, 303);
    let now = reader.get("/").await;
    assert_eq!(now.status, 200);
    now.assert_escaped("the now page");
    assert!(
        now.body
            .contains("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;"),
        "{}",
        now.body
    );
    assert!(
        now.body.contains("Open problems (1)") && now.body.contains("✖ ERROR"),
        "{}",
        now.body
    );
    assert!(
        now.body.contains("eu, us") && now.body.contains("(read-only)"),
        "{}",
        now.body
    );
    let page = reader.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Signed in read-only"), "{}", page.body);
    let csrf = page.input("csrf");
    let p = reader
        .post(&format!("{path}/ack"), &[("csrf", &csrf)])
        .await;
    assert_eq!(p.status, 403);
    assert!(p.body.contains("read-only token"), "{}", p.body);

    // Read-write, with a name that is markup.
    let person = format!("Jane {} {}", EVIL[0], EVIL[1]);
    let mut jane = Browser::new(&w.alerter.url());
    assert_eq!(jane.sign_in(&person, API_TOKEN).await.status, 303);
    let page = jane.get(&path).await;
    page.assert_escaped("the problem page");
    assert!(
        page.body
            .contains("First failure: <code>refused &lt;script&gt;"),
        "{}",
        page.body
    );
    let csrf = page.input("csrf");
    // Without the CSRF token, or with another session's, nothing happens.
    let p = jane.post(&format!("{path}/ack"), &[("comment", "x")]).await;
    assert_eq!(p.status, 403);
    assert!(
        p.body.contains("CSRF token is missing or wrong"),
        "{}",
        p.body
    );
    let reader_csrf = reader.get(&path).await.input("csrf");
    let p = jane
        .post(&format!("{path}/ack"), &[("csrf", &reader_csrf)])
        .await;
    assert_eq!(p.status, 403);
    assert!(w.get("/api/problems?open=true").await[0]["ack"].is_null());

    // Acknowledge, then silence from the problem.
    let p = jane
        .post(
            &format!("{path}/ack"),
            &[
                ("csrf", &csrf),
                ("comment", &format!("on it {} {}", EVIL[0], EVIL[1])),
            ],
        )
        .await;
    assert_eq!((p.status, p.location()), (303, path.as_str()), "{}", p.body);
    let p = jane
        .post(
            &format!("{path}/silence"),
            &[
                ("csrf", &csrf),
                ("matcher", "search-down"),
                ("duration", "1h"),
                (
                    "comment",
                    &format!("deploying the fix {} {}", EVIL[0], EVIL[1]),
                ),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    jane.get("/silences")
        .await
        .assert_escaped("the silences page");
    let page = jane.get(&path).await;
    page.assert_escaped("the problem page after acting");
    assert!(
        page.body.contains(
            "✓ acknowledged by Jane &lt;script&gt;alert(1)&lt;&#x2F;script&gt; &quot;&gt;&lt;img"
        ),
        "{}",
        page.body
    );
    assert!(page.body.contains("⊘ silenced by Jane"), "{}", page.body);
    let timeline = &page.body[page.body.find("id=\"timeline\"").unwrap()..];
    for step in [
        "opened: ✖ ERROR",
        "acknowledged by Jane",
        "silenced by Jane",
    ] {
        assert!(timeline.contains(step), "{step}: {timeline}");
    }
    // Through the API: the same acknowledgement and silence.
    let api = w.get("/api/problems?open=true").await;
    assert_eq!(api[0]["ack"]["by"], person.as_str(), "{api}");
    assert!(
        api[0]["ack"]["comment"]
            .as_str()
            .unwrap()
            .starts_with("on it")
    );
    let silences = w.get("/api/silences").await;
    let made = silences
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["created_by"] == person.as_str())
        .unwrap_or_else(|| panic!("{silences}"));
    assert_eq!(made["matchers"], json!(["search-down"]));

    // The silences page previews a silence by matchers, then expires the one made.
    let preview = jane.get("/silences?matchers=search-down&duration=2h").await;
    assert!(
        preview.body.contains("Would silence 1 check(s)"),
        "{}",
        preview.body
    );
    let bad = jane.get("/silences?matchers=no-such-check").await;
    assert!(bad.body.contains("neither a check id"), "{}", bad.body);
    let sid = made["id"].as_str().unwrap();
    let p = jane
        .post(&format!("/silences/{sid}/expire"), &[("csrf", &csrf)])
        .await;
    assert_eq!((p.status, p.location()), (303, "/silences"));
    assert!(w.get("/api/silences").await.as_array().unwrap().is_empty());
    // ... and the problem it held says so.
    let page = jane.get(&path).await;
    let timeline = &page.body[page.body.find("id=\"timeline\"").unwrap()..];
    assert!(timeline.contains("silence expired by Jane"), "{timeline}");
    // Withdrawing the acknowledgement is recorded too.
    let p = jane
        .post(
            &format!("{path}/unack"),
            &[("csrf", &csrf), ("comment", "not fixed")],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert!(w.get("/api/problems?open=true").await[0]["ack"].is_null());
    assert!(
        jane.get(&path)
            .await
            .body
            .contains("unacknowledged by Jane")
    );

    // The check's page: chart with its error line, history, target.
    let page = jane.get("/checks/search-down?range=1d").await;
    assert_eq!(page.status, 200);
    page.assert_escaped("the check page");
    assert!(
        page.body.contains("<svg") && page.body.contains("error 1"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<code>down(search)</code>"));
    assert!(
        page.body
            .contains("OK → <span class=\"level ERROR\">✖ ERROR"),
        "{}",
        page.body
    );
    let svg = jane.get("/checks/search-down/chart.svg?range=6h").await;
    assert_eq!(svg.headers["content-type"], "image/svg+xml");
    assert!(svg.body.starts_with("<svg") && !svg.body.contains("<script>"));

    // Signed out: the old cookie is refused as signed out, not just unknown.
    let old = jane.cookies.clone();
    let p = jane.post("/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!((p.status, p.location()), (303, "/sign-in"));
    jane.cookies = old;
    let p = jane.get("/").await;
    assert_eq!(p.status, 401);
    assert!(p.body.contains("signed out"), "{}", p.body);

    let r = refusals(&w).await;
    for (reason, at_least) in [
        ("csrf", 3),
        ("read_only", 1),
        ("signed_out", 1),
        ("no_session", 1),
        ("bad_token", 1),
    ] {
        assert!(
            r.get(reason).copied().unwrap_or(0) >= at_least,
            "{reason}: {r:?}"
        );
    }
    w.stop().await;
}

/// The messages aiosmtpd holds: (subject, body).
fn mails(smtp: &Smtp) -> Vec<(String, String)> {
    smtp.messages()
        .iter()
        .map(|m| {
            (
                m["headers"]["Subject"].as_str().unwrap().to_owned(),
                m["body"].as_str().unwrap().replace("\r\n", "\n"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledge_link_from_a_real_email_stops_the_reminders_and_works_once() {
    let smtp = Smtp::start().await;
    let w = World::start(|s| {
        s.notifiers.insert(
            "mail".into(),
            notify::build(&NotifierConfig::Email(smtp_config(&smtp))).unwrap(),
        );
        s.reminder_every = Some(Duration::from_secs(2));
    })
    .await;
    w.create(down_check("search-down")).await;
    let (status, v) = w
        .post(
            "/api/checks/search-down/subscriptions",
            json!({"id": "mail", "notifier": "mail", "target": "oncall@example.com"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    take_down_with(&w, "connection refused").await;
    let problem = open_problem(&w).await;
    let id = problem["id"].as_str().unwrap().to_owned();
    // The page, then at least one reminder: each carries a link to acknowledge.
    w.until("a trigger and a reminder by email", || {
        let m = mails(&smtp);
        m.iter().any(|(s, _)| s.starts_with("[ERROR]"))
            && m.iter().any(|(s, _)| s.starts_with("[STILL ERROR]"))
    })
    .await;
    let all = mails(&smtp);
    let (_, body) = all
        .iter()
        .rev()
        .find(|(s, _)| s.starts_with("[STILL ERROR]"))
        .unwrap();
    let link = body
        .lines()
        .find_map(|l| l.strip_prefix("Acknowledge (stops the reminders): "))
        .unwrap_or_else(|| panic!("no acknowledge link: {body}"))
        .to_owned();
    assert!(
        body.contains(&format!(
            "Problem: {}/problems/{}",
            w.alerter.url(),
            id.replace('@', "%40")
        )),
        "{body}"
    );
    let path = link.strip_prefix(&w.alerter.url()).unwrap().to_owned();

    // Opening it shows the problem and one button; only the button acknowledges.
    let mut phone = Browser::new(&w.alerter.url());
    let page = phone.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("Acknowledge as oncall@example.com (mail)"),
        "{}",
        page.body
    );
    assert!(
        w.get("/api/problems?open=true").await[0]["ack"].is_null(),
        "a GET acknowledges nothing"
    );
    let done = phone.post(&path, &[]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("its reminders stop"), "{}", done.body);
    let api = w.get("/api/problems?open=true").await;
    assert_eq!(api[0]["ack"]["by"], "oncall@example.com (mail)", "{api}");

    // No more reminders: three periods pass with none.
    let before = mails(&smtp).len();
    w.idle(Duration::from_secs(6)).await;
    assert_eq!(mails(&smtp).len(), before, "{:?}", &mails(&smtp)[before..]);

    // The same link again, a tampered one, and an expired one: refused, with a page.
    for (method_post, expected, words) in
        [(false, 409, "already used"), (true, 409, "already used")]
    {
        let p = if method_post {
            phone.post(&path, &[]).await
        } else {
            phone.get(&path).await
        };
        assert_eq!(p.status, expected, "{}", p.body);
        assert!(p.body.contains(words), "{}", p.body);
    }
    let mut tampered = path.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let p = phone.post(&tampered, &[]).await;
    assert_eq!(p.status, 403, "{}", p.body);
    assert!(p.body.contains("not one the alerter made"), "{}", p.body);
    let other_problem = phone
        .post(&path.replace(&path[5..15], "AAAAAAAAAA"), &[])
        .await;
    assert_eq!(other_problem.status, 403);
    let old =
        lookout_alerting::ack_link::AckLinks::new(&Secret::new(API_TOKEN), Duration::from_secs(60))
            .sign(&id, "mail>oncall@example.com", now_us() - 120_000_000);
    let p = phone.get(&format!("/ack/{old}")).await;
    assert_eq!(p.status, 403, "{}", p.body);
    assert!(p.body.contains("expired"), "{}", p.body);
    let r = refusals(&w).await;
    assert!(
        r["ack_link_used"] >= 2 && r["ack_link_forged"] >= 2 && r["ack_link_expired"] >= 1,
        "{r:?}"
    );

    // The resolve still goes out, and carries no acknowledge link.
    w.recover().await;
    w.until("the resolve by email", || {
        mails(&smtp)
            .iter()
            .any(|(s, _)| s.starts_with("[RESOLVED]"))
    })
    .await;
    let all = mails(&smtp);
    let (_, resolve) = all
        .iter()
        .find(|(s, _)| s.starts_with("[RESOLVED]"))
        .unwrap();
    assert!(!resolve.contains("Acknowledge"), "{resolve}");
    w.stop().await;
}

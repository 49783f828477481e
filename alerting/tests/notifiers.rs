//! Every notifier against a real receiver on loopback: small axum servers that answer as
//! Slack, PagerDuty and a webhook receiver do, a real SMTP server (Python's aiosmtpd) and a
//! real Alertmanager (Debian's `prometheus-alertmanager`); `./scripts/test` installs both.
//! The HTTP kinds also run one conformance suite: the same refusals, hangs and closed ports
//! must give the same retries, and no error may show a secret, even when the receiver echoes
//! what it was sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)] // a test may panic; process waits are synchronous

mod relay;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use lookout_alerting::notify::{
    self, AlertmanagerConfig, EmailConfig, Kind, Level, Links, Notification, Notifier,
    NotifierConfig, PagerDutyConfig, Retry, SendError, SlackConfig, SmtpTls, WebhookConfig, text,
};
use lookout_model::secret::Secret;
use lookout_testkit::free_port;
use lookout_testkit::peers::{Alertmanager, Smtp};
use relay::smtp_config;
use serde_json::{Value, json};
use sha2::Sha256;

const SLACK_PATH: &str = "/services/T0LOOKOUT/B0LOOKOUT/slack-secret-token";
const WEBHOOK_PATH: &str = "/hook/webhook-secret-token";
const ROUTING_KEY: &str = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY00";
const HMAC_SECRET: &str = "hmac-secret-never-shown";
const HEADER_SECRET: &str = "Bearer header-secret-never-shown";
/// Everything no error message may contain.
const SECRETS: [&str; 5] = [
    "slack-secret-token",
    "webhook-secret-token",
    ROUTING_KEY,
    HMAC_SECRET,
    "header-secret-never-shown",
];

fn notification(kind: Kind) -> Notification {
    let at = Utc::now();
    Notification {
        id: format!("delivery-{}", at.timestamp_nanos_opt().unwrap_or_default()),
        problem_id: "problem-search-42".into(),
        kind,
        check_id: "search".into(),
        check_name: "search".into(),
        description: "down\nSearch fails in two regions.".into(),
        target: "availability(search, 5m)".into(),
        state: Level::Error,
        previous: Level::Ok,
        value: Some(0.9712),
        warn: Some(0.9999),
        error: Some(0.999),
        worse: "lower".into(),
        regions: vec!["eu-west".into(), "us-east".into()],
        // Half a minute off the minute, so a resolve a second later still lasted 12m.
        since: at - TimeDelta::seconds(12 * 60 + 30),
        at,
        reason: Some("connection refused".into()),
        severity: "page".into(),
        labels: BTreeMap::from([("team".to_string(), "search".to_string())]),
        links: Links {
            status_page: Some("https://status.example.com/".into()),
            dashboard: Some("https://grafana.example.com/d/search".into()),
            alerter: Some("https://lookout.example.com/checks/search".into()),
            ack: None,
        },
    }
}

fn resolved(n: &Notification) -> Notification {
    Notification {
        id: format!("{}-resolve", n.id),
        kind: Kind::Resolve,
        state: Level::Ok,
        previous: Level::Error,
        // In the past, however fast the test runs, so Alertmanager counts it as ended.
        at: Utc::now() - TimeDelta::seconds(1),
        ..n.clone()
    }
}

fn assert_no_secret(err: &SendError) {
    for secret in SECRETS {
        assert!(
            !err.message.contains(secret),
            "{secret:?} in {:?}",
            err.message
        );
    }
}

// ---------------------------------------------------------------------------------------
// HTTP receivers

#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
            .to_str()
            .unwrap()
    }
}

type Respond = dyn Fn(&Received) -> (StatusCode, Vec<(&'static str, String)>, String) + Send + Sync;

struct Shared {
    respond: Box<Respond>,
    got: Mutex<Vec<Received>>,
}

/// An HTTP server on loopback that keeps every request and answers with `respond`.
struct Receiver {
    base: String,
    shared: Arc<Shared>,
}

impl Receiver {
    async fn start<F>(respond: F) -> Receiver
    where
        F: Fn(&Received) -> (StatusCode, Vec<(&'static str, String)>, String)
            + Send
            + Sync
            + 'static,
    {
        let shared = Arc::new(Shared {
            respond: Box::new(respond),
            got: Mutex::new(Vec::new()),
        });
        let app = Router::new().fallback(receive).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { base, shared }
    }

    /// Answers every request with `status`, and in the body the path and the request body
    /// back, as a verbose receiver might: the notifier must keep its secrets out anyway.
    async fn answering(status: u16, headers: Vec<(&'static str, String)>) -> Receiver {
        let status = StatusCode::from_u16(status).unwrap();
        Receiver::start(move |r| {
            let echo = format!("refused {} {}", r.path, String::from_utf8_lossy(&r.body));
            (status, headers.clone(), echo)
        })
        .await
    }

    fn received(&self) -> Vec<Received> {
        self.shared.got.lock().unwrap().clone()
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = Received {
        path: uri.to_string(),
        headers,
        body,
    };
    let (status, headers, body) = (shared.respond)(&received);
    shared.got.lock().unwrap().push(received);
    let mut response = (status, body).into_response();
    for (name, value) in headers {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_str(&value).unwrap());
    }
    response
}

/// A server that accepts connections and never answers.
async fn hanging() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    base
}

// ---------------------------------------------------------------------------------------
// The HTTP kinds, built through `notify::build` as `lookout up` builds them

fn webhook_config(base: &str, timeout: Duration) -> WebhookConfig {
    WebhookConfig {
        url: Secret::new(format!("{base}{WEBHOOK_PATH}")),
        hmac_secret: Some(Secret::new(HMAC_SECRET)),
        headers: BTreeMap::from([("Authorization".to_string(), Secret::new(HEADER_SECRET))]),
        timeout,
    }
}

fn slack_config(base: &str, timeout: Duration) -> SlackConfig {
    SlackConfig {
        webhook_url: Secret::new(format!("{base}{SLACK_PATH}")),
        timeout,
    }
}

fn pagerduty_config(base: &str, timeout: Duration) -> PagerDutyConfig {
    PagerDutyConfig {
        routing_key: Secret::new(ROUTING_KEY),
        url: format!("{base}/v2/enqueue"),
        timeout,
    }
}

/// Every HTTP kind, pointed at one base URL.
fn http_notifiers(base: &str, timeout: Duration) -> Vec<Arc<dyn Notifier>> {
    let configs = [
        NotifierConfig::Webhook(webhook_config(base, timeout)),
        NotifierConfig::Slack(slack_config(base, timeout)),
        NotifierConfig::PagerDuty(pagerduty_config(base, timeout)),
        NotifierConfig::Alertmanager(AlertmanagerConfig {
            url: base.to_string(),
            timeout,
        }),
    ];
    configs.iter().map(|c| notify::build(c).unwrap()).collect()
}

async fn send(notifier: &dyn Notifier, target: Option<&str>, n: &Notification) -> SendError {
    let sent = notifier.send(target, n).await;
    sent.err()
        .unwrap_or_else(|| panic!("{} delivered {n:?}", notifier.kind()))
}

// ---------------------------------------------------------------------------------------
// Conformance of the HTTP kinds

#[tokio::test]
async fn every_http_kind_reads_refusals_into_the_same_retries_and_shows_no_secret() {
    let retry_after = || vec![("retry-after", "7".to_string())];
    let cases = [
        (500, vec![], Retry::Backoff),
        (503, vec![], Retry::Backoff),
        (429, retry_after(), Retry::After(Duration::from_secs(7))),
        (429, vec![], Retry::Backoff),
        (400, vec![], Retry::Never),
        (404, vec![], Retry::Never),
    ];
    for (status, headers, want) in cases {
        let receiver = Receiver::answering(status, headers).await;
        for notifier in http_notifiers(&receiver.base, Duration::from_secs(5)) {
            let err = send(notifier.as_ref(), None, &notification(Kind::Trigger)).await;
            assert_eq!(err.retry, want, "{} on {status}: {err}", notifier.kind());
            assert!(
                err.message.contains(&status.to_string()),
                "{}: {err}",
                notifier.kind()
            );
            assert_no_secret(&err);
        }
        // The receiver did see the secrets: the masking above is the notifiers' doing.
        let seen: String = receiver
            .received()
            .iter()
            .map(|r| format!("{} {}", r.path, String::from_utf8_lossy(&r.body)))
            .collect();
        assert!(seen.contains("slack-secret-token") && seen.contains(ROUTING_KEY));
    }
}

#[tokio::test]
async fn every_http_kind_gives_up_on_a_hanging_receiver_within_its_timeout() {
    let base = hanging().await;
    let timeout = Duration::from_millis(300);
    for notifier in http_notifiers(&base, timeout) {
        let started = Instant::now();
        let err = send(notifier.as_ref(), None, &notification(Kind::Trigger)).await;
        let took = started.elapsed();
        assert_eq!(err.retry, Retry::Backoff, "{}: {err}", notifier.kind());
        assert!(
            took >= timeout && took < timeout + Duration::from_secs(1),
            "{took:?}"
        );
        assert_eq!(err.message, "no answer within 300ms", "{}", notifier.kind());
    }
}

#[tokio::test]
async fn every_http_kind_backs_off_from_a_closed_port_and_shows_no_secret() {
    let base = format!("http://127.0.0.1:{}", free_port());
    for notifier in http_notifiers(&base, Duration::from_secs(2)) {
        let err = send(notifier.as_ref(), None, &notification(Kind::Trigger)).await;
        assert_eq!(err.retry, Retry::Backoff, "{}: {err}", notifier.kind());
        assert!(err.message.contains("Connection refused"), "{err}");
        assert!(!err.message.contains("/services/"), "{err}");
        assert_no_secret(&err);
    }
}

// ---------------------------------------------------------------------------------------
// Webhook

#[tokio::test]
async fn a_webhook_gets_the_notification_signed_with_its_delivery_and_event() {
    let receiver = Receiver::start(|_| (StatusCode::NO_CONTENT, vec![], String::new())).await;
    let config = webhook_config(&receiver.base, Duration::from_secs(5));
    let webhook = notify::build(&NotifierConfig::Webhook(config)).unwrap();
    let n = notification(Kind::Trigger);
    webhook.send(None, &n).await.unwrap();
    webhook.send(None, &resolved(&n)).await.unwrap();

    let got = receiver.received();
    assert_eq!(got.len(), 2);
    let trigger = &got[0];
    assert_eq!(trigger.path, WEBHOOK_PATH);
    assert_eq!(trigger.header("content-type"), "application/json");
    assert_eq!(trigger.header("x-lookout-delivery"), n.id);
    assert_eq!(trigger.header("x-lookout-event"), "trigger");
    assert_eq!(trigger.header("authorization"), HEADER_SECRET);
    let body = trigger.json();
    assert_eq!(body["problem_id"], "problem-search-42");
    assert_eq!(body["kind"], "trigger");
    assert_eq!(body["state"], "ERROR");
    assert_eq!(body["value"], 0.9712);
    assert_eq!(body["regions"], json!(["eu-west", "us-east"]));
    let back: Notification = serde_json::from_slice(&trigger.body).unwrap();
    assert_eq!(back, n);

    // What a receiver does: HMAC the raw bytes with the shared secret, compare.
    for r in &got {
        let signature = r.header("x-lookout-signature");
        let hex = signature.strip_prefix("sha256=").unwrap();
        assert_eq!(hex, hex.to_lowercase());
        let mut mac = Hmac::<Sha256>::new_from_slice(HMAC_SECRET.as_bytes()).unwrap();
        mac.update(&r.body);
        mac.verify_slice(&hex::decode(hex).unwrap())
            .expect("the signature verifies");
    }
    assert_eq!(got[1].header("x-lookout-event"), "resolve");
    assert_ne!(got[1].header("x-lookout-delivery"), n.id);
}

// ---------------------------------------------------------------------------------------
// Slack

#[tokio::test]
async fn slack_gets_text_and_one_coloured_attachment_in_the_chosen_channel() {
    // Slack answers a bad payload 400 `invalid_payload`, a good one 200 `ok`.
    let receiver = Receiver::start(|r| {
        let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        if body["text"].is_string() && body["attachments"].is_array() {
            (StatusCode::OK, vec![], "ok".into())
        } else {
            (StatusCode::BAD_REQUEST, vec![], "invalid_payload".into())
        }
    })
    .await;
    let slack = notify::build(&NotifierConfig::Slack(slack_config(
        &receiver.base,
        Duration::from_secs(5),
    )))
    .unwrap();
    assert_eq!(slack.check_target(Some("#ops")), Ok(()));
    assert!(slack.check_target(Some("ops")).is_err());

    let n = notification(Kind::Trigger);
    slack.send(Some("#ops"), &n).await.unwrap();
    slack.send(None, &resolved(&n)).await.unwrap();

    let got = receiver.received();
    assert_eq!(got[0].path, SLACK_PATH);
    assert_eq!(got[0].header("content-type"), "application/json");
    let trigger = got[0].json();
    assert_eq!(trigger["text"], "[ERROR] search: down (eu-west, us-east)");
    assert_eq!(trigger["channel"], "#ops");
    let attachment = &trigger["attachments"][0];
    assert_eq!(attachment["color"], "#d50200");
    let body = attachment["text"].as_str().unwrap();
    assert!(body.contains("First failure: connection refused"), "{body}");
    assert!(
        body.contains("Dashboard: https://grafana.example.com/d/search"),
        "{body}"
    );
    let resolve = got[1].json();
    assert_eq!(resolve["text"], "[RESOLVED] search");
    assert_eq!(resolve["attachments"][0]["color"], "#2eb886");
    assert!(resolve.get("channel").is_none());
}

// ---------------------------------------------------------------------------------------
// PagerDuty

#[tokio::test]
async fn pagerduty_gets_one_dedup_key_from_trigger_through_reminder_to_resolve() {
    // As the Events API v2 answers: 202 with the dedup key, 400 on an invalid event.
    let receiver = Receiver::start(|r| {
        let event: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        let valid = event["routing_key"].as_str().is_some_and(|k| k.len() == 32)
            && matches!(event["event_action"].as_str(), Some("trigger" | "resolve"));
        if !valid {
            let invalid = json!({"status": "invalid event", "message": "Event object is invalid"});
            return (StatusCode::BAD_REQUEST, vec![], invalid.to_string());
        }
        let ok = json!({"status": "success", "message": "Event processed",
                        "dedup_key": event["dedup_key"]});
        (StatusCode::ACCEPTED, vec![], ok.to_string())
    })
    .await;
    let pagerduty = notify::build(&NotifierConfig::PagerDuty(pagerduty_config(
        &receiver.base,
        Duration::from_secs(5),
    )))
    .unwrap();
    let n = notification(Kind::Trigger);
    let reminder = Notification {
        id: format!("{}-reminder", n.id),
        kind: Kind::Reminder,
        ..n.clone()
    };
    let test = Notification {
        kind: Kind::Test,
        ..n.clone()
    };
    for sent in [&n, &reminder, &resolved(&n), &test] {
        pagerduty.send(None, sent).await.unwrap();
    }

    let events: Vec<Value> = receiver.received().iter().map(Received::json).collect();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["event_action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["trigger", "trigger", "resolve", "trigger"]);
    for e in &events[..3] {
        assert_eq!(e["routing_key"], ROUTING_KEY);
        assert_eq!(e["dedup_key"], "problem-search-42");
    }
    assert_eq!(events[3]["dedup_key"], format!("lookout-test-{}", n.id));
    let payload = &events[0]["payload"];
    assert_eq!(
        payload["summary"],
        "[ERROR] search: down (eu-west, us-east)"
    );
    assert_eq!(payload["source"], "lookout");
    assert_eq!(payload["severity"], "critical");
    assert_eq!(payload["component"], "search");
    let at = DateTime::parse_from_rfc3339(payload["timestamp"].as_str().unwrap()).unwrap();
    assert!((at.to_utc() - n.at).num_milliseconds().abs() < 1);
    assert_eq!(events[0]["links"][0]["href"], "https://status.example.com/");

    // A key PagerDuty refuses is refused for good, and the error shows no key.
    let bad = notify::build(&NotifierConfig::PagerDuty(PagerDutyConfig {
        routing_key: Secret::new("short-secret-key"),
        ..pagerduty_config(&receiver.base, Duration::from_secs(5))
    }))
    .unwrap();
    let err = send(bad.as_ref(), None, &n).await;
    assert_eq!(err.retry, Retry::Never);
    assert!(err.message.contains("Event object is invalid"), "{err}");
    assert!(!err.message.contains("short-secret-key"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Email, against Python's aiosmtpd

#[tokio::test]
async fn an_email_reaches_a_real_smtp_server_with_subject_recipients_and_body() {
    let smtp = Smtp::start().await;
    let email = notify::build(&NotifierConfig::Email(smtp_config(&smtp))).unwrap();
    let n = notification(Kind::Trigger);
    let to = "a@example.com, \"Doe, Jane\" <jane@example.com>";
    assert_eq!(email.check_target(Some(to)), Ok(()));
    email.send(Some(to), &n).await.unwrap();
    email.send(None, &resolved(&n)).await.unwrap();

    let messages = smtp.messages();
    assert_eq!(messages.len(), 2, "{messages:?}");
    let trigger = &messages[0];
    assert_eq!(trigger["from"], "lookout@example.com");
    assert_eq!(trigger["to"], json!(["a@example.com", "jane@example.com"]));
    let headers = &trigger["headers"];
    assert_eq!(
        headers["Subject"],
        "[ERROR] search: down (eu-west, us-east)"
    );
    assert_eq!(headers["From"], "Lookout <lookout@example.com>");
    assert_eq!(
        headers["To"],
        "a@example.com, \"Doe, Jane\" <jane@example.com>"
    );
    assert_eq!(headers["Message-ID"], format!("<{}@lookout>", n.id));
    assert_eq!(headers["References"], "<problem-search-42@lookout>");
    assert_eq!(trigger["content_type"], "text/plain");
    assert_eq!(trigger["charset"], "utf-8");
    // Mail lines end in CRLF, and the transfer encoding ends the body with one more.
    let body = trigger["body"].as_str().unwrap().replace("\r\n", "\n");
    assert_eq!(body.trim_end(), text::body(&n).trim_end());

    let resolve = &messages[1];
    assert_eq!(resolve["to"], json!(["oncall@example.com"]));
    assert_eq!(resolve["headers"]["Subject"], "[RESOLVED] search");
    let body = resolve["body"].as_str().unwrap().replace("\r\n", "\n");
    assert!(
        body.starts_with("search is resolved (was ERROR).\n"),
        "{body}"
    );
    assert!(body.contains("Lasted: 12m"), "{body}");
}

#[tokio::test]
async fn a_refused_recipient_is_final_and_a_closed_port_is_retried() {
    let smtp = Smtp::start().await;
    let email = notify::build(&NotifierConfig::Email(smtp_config(&smtp))).unwrap();
    let err = send(
        email.as_ref(),
        Some("refuse@example.com"),
        &notification(Kind::Trigger),
    )
    .await;
    assert_eq!(err.retry, Retry::Never, "{err}");
    assert!(err.message.contains("550"), "{err}");
    assert!(smtp.messages().is_empty());

    let closed = EmailConfig {
        port: free_port(),
        ..smtp_config(&smtp)
    };
    let email = notify::build(&NotifierConfig::Email(closed)).unwrap();
    let err = send(email.as_ref(), None, &notification(Kind::Trigger)).await;
    assert_eq!(err.retry, Retry::Backoff, "{err}");
}

#[tokio::test]
async fn credentials_are_used_and_a_wrong_password_never_shows() {
    let smtp = Smtp::start().await;
    let with = |password: &str| EmailConfig {
        username: Some("lookout".into()),
        password: Some(Secret::new(password)),
        ..smtp_config(&smtp)
    };
    let right = notify::build(&NotifierConfig::Email(with("right-password"))).unwrap();
    right
        .send(None, &notification(Kind::Trigger))
        .await
        .unwrap();
    assert_eq!(smtp.messages()[0]["authenticated"], true);

    let wrong = notify::build(&NotifierConfig::Email(with("wrong-password-never-shown"))).unwrap();
    let err = send(wrong.as_ref(), None, &notification(Kind::Trigger)).await;
    assert_eq!(err.retry, Retry::Never, "{err}");
    assert!(err.message.contains("535"), "{err}");
    assert!(!err.message.contains("wrong-password-never-shown"), "{err}");
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test]
async fn required_starttls_sends_nothing_to_a_server_without_it() {
    let smtp = Smtp::start().await;
    let config = EmailConfig {
        tls: SmtpTls::StartTls,
        username: Some("lookout".into()),
        password: Some(Secret::new("right-password")),
        ..smtp_config(&smtp)
    };
    let email = notify::build(&NotifierConfig::Email(config)).unwrap();
    let err = send(email.as_ref(), None, &notification(Kind::Trigger)).await;
    assert!(err.message.to_lowercase().contains("starttls"), "{err}");
    assert!(smtp.messages().is_empty());
}

#[tokio::test]
async fn an_smtp_server_that_never_answers_is_given_up_within_the_timeout() {
    let base = hanging().await;
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    let config = EmailConfig {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username: None,
        password: None,
        from: "lookout@example.com".into(),
        to: vec!["oncall@example.com".into()],
        timeout: Duration::from_millis(300),
    };
    let email = notify::build(&NotifierConfig::Email(config)).unwrap();
    let started = Instant::now();
    let err = send(email.as_ref(), None, &notification(Kind::Trigger)).await;
    assert_eq!(err.retry, Retry::Backoff, "{err}");
    assert!(
        started.elapsed() < Duration::from_millis(1300),
        "{:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// Alertmanager, the real one

#[tokio::test]
async fn alertmanager_shows_the_alert_as_sent_then_ends_it_on_resolve() {
    let am = Alertmanager::start().await;
    let notifier = notify::build(&NotifierConfig::Alertmanager(AlertmanagerConfig {
        url: am.url.clone(),
        timeout: Duration::from_secs(5),
    }))
    .unwrap();
    let n = Notification {
        labels: BTreeMap::from([
            ("team".to_string(), "search".to_string()),
            ("group".to_string(), "web".to_string()),
        ]),
        ..notification(Kind::Trigger)
    };
    notifier.send(None, &n).await.unwrap();

    let is_active = |alerts: &[Value]| {
        alerts
            .first()
            .is_some_and(|a| a["status"]["state"] == "active")
    };
    let active = am.alerts_until("search", is_active).await;
    assert!(
        is_active(&active),
        "no active alert: {active:?}\n{}",
        am.log()
    );
    assert_eq!(active.len(), 1);
    let alert = &active[0];
    assert_eq!(
        alert["labels"],
        json!({"alertname": "search", "check": "search", "severity": "page",
               "team": "search", "group": "web"})
    );
    let annotations = &alert["annotations"];
    assert_eq!(annotations["summary"], text::subject(&n));
    assert_eq!(annotations["description"], n.description);
    assert_eq!(annotations["regions"], "eu-west, us-east");
    assert_eq!(annotations["reason"], "connection refused");
    assert_eq!(annotations["state"], "ERROR");
    assert_eq!(
        alert["generatorURL"],
        "https://lookout.example.com/checks/search"
    );
    let starts = DateTime::parse_from_rfc3339(alert["startsAt"].as_str().unwrap()).unwrap();
    assert!((starts.to_utc() - n.since).num_milliseconds().abs() < 1);
    let ends = DateTime::parse_from_rfc3339(alert["endsAt"].as_str().unwrap()).unwrap();
    assert!(ends.to_utc() > Utc::now() + TimeDelta::hours(1), "{ends}");

    notifier.send(None, &resolved(&n)).await.unwrap();
    // Alertmanager drops an ended alert from the list, or shows it with its end.
    let ended = |alerts: &[Value]| {
        alerts.iter().all(|a| {
            let ends = a["endsAt"].as_str().unwrap_or_default();
            DateTime::parse_from_rfc3339(ends).is_ok_and(|e| e.to_utc() <= Utc::now())
        })
    };
    let left = am.alerts_until("search", ended).await;
    assert!(ended(&left), "the alert is still active: {left:?}");
}

#[tokio::test]
async fn every_kind_is_built_by_name_and_refuses_targets_it_cannot_take() {
    let base = "http://127.0.0.1:9";
    let mut all = http_notifiers(base, Duration::from_secs(1));
    all.push(notify::build(&NotifierConfig::Log(notify::log::LogConfig)).unwrap());
    let kinds: Vec<&str> = all.iter().map(|n| n.kind()).collect();
    assert_eq!(
        kinds,
        ["webhook", "slack", "pagerduty", "alertmanager", "log"]
    );
    for notifier in &all {
        assert_eq!(notifier.check_target(None), Ok(()), "{}", notifier.kind());
        if notifier.kind() != "slack" {
            let err = notifier.check_target(Some("#ops")).unwrap_err();
            assert!(err.contains("take no target"), "{err}");
        }
    }
    // The log channel delivers whatever happens.
    notify::build(&NotifierConfig::Log(notify::log::LogConfig))
        .unwrap()
        .send(None, &notification(Kind::Trigger))
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------
// Every kind, as the config writes it

/// One config of every kind, as `alerting.notifiers` writes it, each pointed at a closed port.
/// The match is exhaustive: a new kind does not compile until it is here.
fn every_kind_as_written(closed: &str) -> Vec<(&'static str, Value)> {
    let port: u16 = closed.rsplit(':').next().unwrap().parse().unwrap();
    let written = [
        json!({"type": "log"}),
        json!({"type": "email", "host": "127.0.0.1", "port": port, "tls": "none",
               "username": "lookout", "password": "smtp-password-never-shown",
               "from": "lookout@example.com", "to": ["oncall@example.com"], "timeout": "1s"}),
        json!({"type": "pagerduty", "routing_key": ROUTING_KEY,
               "url": format!("{closed}/v2/enqueue"), "timeout": "1s"}),
        json!({"type": "slack", "webhook_url": format!("{closed}{SLACK_PATH}"), "timeout": "1s"}),
        json!({"type": "webhook", "url": format!("{closed}{WEBHOOK_PATH}"),
               "hmac_secret": HMAC_SECRET, "headers": {"Authorization": HEADER_SECRET},
               "timeout": "1s"}),
        json!({"type": "alertmanager", "url": closed, "timeout": "1s"}),
    ];
    written
        .into_iter()
        .map(|w| {
            let raw: notify::RawNotifier = serde_json::from_value(w.clone()).unwrap();
            let config = NotifierConfig::try_from(raw).unwrap();
            let kind = match config {
                NotifierConfig::Log(_) => "log",
                NotifierConfig::Email(_) => "email",
                NotifierConfig::PagerDuty(_) => "pagerduty",
                NotifierConfig::Slack(_) => "slack",
                NotifierConfig::Webhook(_) => "webhook",
                NotifierConfig::Alertmanager(_) => "alertmanager",
            };
            (kind, w)
        })
        .collect()
}

#[tokio::test]
async fn every_kind_is_read_as_written_built_once_and_fails_the_same_way_without_a_receiver() {
    let closed = format!("http://127.0.0.1:{}", free_port());
    let n = notification(Kind::Trigger);
    for (kind, written) in every_kind_as_written(&closed) {
        let raw: notify::RawNotifier = serde_json::from_value(written.clone()).unwrap();
        let notifier = notify::build(&NotifierConfig::try_from(raw).unwrap()).unwrap();
        assert_eq!(notifier.kind(), kind, "its `type:` is its kind");
        assert_eq!(
            notifier.check_target(None),
            Ok(()),
            "{kind}: the default target"
        );
        assert_eq!(
            notifier.stateful(),
            matches!(kind, "pagerduty" | "alertmanager"),
            "{kind}: only receivers that keep incidents open are sent every resolve"
        );
        match notifier.send(None, &n).await {
            Ok(()) => assert_eq!(kind, "log", "{kind} delivered to a closed port"),
            Err(e) => {
                assert_eq!(e.retry, Retry::Backoff, "{kind}: {e}");
                for secret in SECRETS.iter().chain(&["smtp-password-never-shown"]) {
                    assert!(!e.message.contains(secret), "{kind} shows a secret: {e}");
                }
            }
        }

        // A key of another kind is refused by name.
        let mut extra = written.clone();
        extra["colour"] = json!("red");
        let err = serde_json::from_value::<notify::RawNotifier>(extra).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `colour`"),
            "{kind}: {err}"
        );
    }
    let unknown = serde_json::from_value::<notify::RawNotifier>(json!({"type": "sms"}));
    let err = unknown.unwrap_err().to_string();
    assert!(
        err.contains("unknown variant `sms`") && err.contains("`alertmanager`"),
        "{err}"
    );
}

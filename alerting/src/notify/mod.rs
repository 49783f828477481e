//! Notifiers: one file per kind behind [`Notifier`] and [`Channel`]. Adding a kind touches its
//! own file and one line in `kinds!`.
//!
//! A notifier is a configured channel (an SMTP server, a PagerDuty routing key, a Slack or
//! webhook URL, an Alertmanager): its secrets live in the config only. A subscription names a
//! channel and, where the kind has one, a target (the email recipient, a Slack channel).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// A check's state, as in Seyren.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Ok,
    Unknown,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Unknown => "UNKNOWN",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A problem opened, or got worse (WARN to ERROR).
    Trigger,
    /// A problem still open after the reminder interval.
    Reminder,
    /// The problem is over.
    Resolve,
    /// Sent by hand through the test-send endpoint.
    Test,
}

impl Kind {
    /// The lowercase name receivers see (`X-Lookout-Event`, log fields).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Trigger => "trigger",
            Kind::Reminder => "reminder",
            Kind::Resolve => "resolve",
            Kind::Test => "test",
        }
    }
}

/// Everything a message says. Built once per notification and kept in the outbox, so a
/// retry after a restart sends exactly what the first attempt would have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Unique per notification: receivers that keep it can drop a repeat delivery.
    pub id: String,
    /// Stable for one problem, from its trigger to its resolve (PagerDuty's dedup key,
    /// Alertmanager's labels).
    pub problem_id: String,
    pub kind: Kind,
    pub check_id: String,
    pub check_name: String,
    pub description: String,
    /// The target expression, as written.
    pub target: String,
    pub state: Level,
    pub previous: Level,
    /// `None` when there was no data.
    pub value: Option<f64>,
    /// The thresholds: either may be unset (a ticket-only check has no error threshold).
    pub warn: Option<f64>,
    pub error: Option<f64>,
    /// `higher` or `lower`: which way is worse (when warn > error, lower is worse).
    pub worse: String,
    /// Regions that saw the problem (empty when the target is not regional).
    pub regions: Vec<String>,
    /// When the problem began.
    pub since: DateTime<Utc>,
    /// When this state change (or reminder) happened.
    pub at: DateTime<Utc>,
    /// The first failure's reason as the probes reported it, when known.
    pub reason: Option<String>,
    /// `page` or `ticket`.
    pub severity: String,
    /// Grouping and routing labels (check, severity, group, ...), as Alertmanager expects.
    pub labels: BTreeMap<String, String>,
    pub links: Links,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Links {
    pub status_page: Option<String>,
    pub dashboard: Option<String>,
    /// The console's page of the problem.
    pub alerter: Option<String>,
    /// A one-click acknowledge link (signed, single-use, expiring, bound to the problem and
    /// the receiver): in triggers and reminders to people, never in resolves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<String>,
}

/// A failed delivery.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// Whether trying again may help (a timeout, a 5xx, a 429), and when the receiver asked.
    pub retry: Retry,
    /// What went wrong, safe to log: never a secret (keys, passwords, tokenised URLs).
    pub message: String,
}

impl SendError {
    pub fn new(retry: Retry, message: impl Into<String>) -> Self {
        SendError {
            retry,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The receiver refused this message for good (a 400, a bad address).
    Never,
    /// Try again after the usual backoff.
    Backoff,
    /// Try again no sooner than this (a 429's Retry-After).
    After(Duration),
}

/// One channel.
pub trait Notifier: Send + Sync {
    /// The kind, e.g. `email`.
    fn kind(&self) -> &'static str;
    /// Checks a subscription's target (an address, a channel) when the subscription is made,
    /// so that a bad one is refused then, not at 3 a.m. By default a kind takes none.
    fn check_target(&self, target: Option<&str>) -> Result<(), String> {
        no_target(self.kind(), target)
    }
    /// Whether the receiver keeps an incident open until told otherwise (PagerDuty,
    /// Alertmanager): such a receiver gets every resolve, even when the subscription ignores OK.
    fn stateful(&self) -> bool {
        false
    }
    /// Delivers one notification. Bounded in time: a hanging receiver is a retryable error.
    fn send<'a>(
        &'a self,
        target: Option<&'a str>,
        n: &'a Notification,
    ) -> BoxFuture<'a, Result<(), SendError>>;
}

/// One kind of channel, implemented by its config type in the kind's own file: how it is
/// written, how it is checked, and the notifier it builds. Adding a kind is that file and one
/// line in [`kinds!`] below; the compiler asks for the rest.
pub trait Channel: Sized {
    /// The keys under `alerting.notifiers.NAME` besides `type`, as written.
    type Raw: serde::de::DeserializeOwned + std::fmt::Debug;
    /// Checks the keys as written; the message names the key that is wrong.
    fn from_raw(raw: Self::Raw) -> Result<Self, String>;
    /// The channel itself, once per start.
    fn build(&self) -> Result<Arc<dyn Notifier>, String>;
}

/// Every kind: its variant (whose lowercase name is its `type:`) and its config type.
macro_rules! kinds {
    ($($variant:ident($config:ty),)*) => {
        /// A channel as written in `alerting.notifiers`: `type:` names the kind.
        #[derive(Debug, Deserialize)]
        #[serde(tag = "type", rename_all = "lowercase")]
        pub enum RawNotifier {
            $($variant(<$config as Channel>::Raw),)*
        }

        /// How a channel is configured (the `alerting.notifiers` map of the config).
        #[derive(Debug, Clone)]
        pub enum NotifierConfig {
            $($variant($config),)*
        }

        impl TryFrom<RawNotifier> for NotifierConfig {
            type Error = String;
            fn try_from(raw: RawNotifier) -> Result<NotifierConfig, String> {
                match raw {
                    $(RawNotifier::$variant(r) => {
                        <$config as Channel>::from_raw(r).map(NotifierConfig::$variant)
                    })*
                }
            }
        }

        /// Builds a channel from its config.
        pub fn build(config: &NotifierConfig) -> Result<Arc<dyn Notifier>, String> {
            match config {
                $(NotifierConfig::$variant(c) => c.build(),)*
            }
        }
    };
}

kinds! {
    Log(log::LogConfig),
    Email(email::EmailConfig),
    PagerDuty(pagerduty::PagerDutyConfig),
    Slack(slack::SlackConfig),
    Webhook(webhook::WebhookConfig),
    Alertmanager(alertmanager::AlertmanagerConfig),
}

/// How long a delivery may take when a channel does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

fn timeout_or_default(t: Option<lookout_conf::Dur>) -> Duration {
    t.map_or(DEFAULT_TIMEOUT, |d| d.0)
}

/// Refuses a target on kinds that have none, so a subscription that names one is corrected
/// when it is made rather than silently ignored.
fn no_target(kind: &str, target: Option<&str>) -> Result<(), String> {
    match target.map(str::trim) {
        None | Some("") => Ok(()),
        Some(t) => Err(format!("{kind} notifiers take no target, got {t:?}")),
    }
}

/// What the HTTP kinds share: one bounded client, one reading of a receiver's answer into a
/// [`Retry`], and one place that keeps secrets out of the message.
mod http {
    use std::time::Duration;

    use chrono::{DateTime, Utc};
    use reqwest::StatusCode;
    use reqwest::header::{HeaderMap, RETRY_AFTER};

    use super::{Retry, SendError};

    /// How much of a refusal's body goes into the error: enough for the receiver's reason.
    const BODY_SNIPPET: usize = 300;

    /// A client whose every request, connect included, ends within `timeout`. Redirects are
    /// not followed: a redirected POST is replayed as a GET, which no receiver wants.
    pub(super) fn client(timeout: Duration) -> Result<reqwest::Client, String> {
        reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("lookout/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", chain(&e)))
    }

    /// Sends and reads the answer: any 2xx is delivered, anything else a [`SendError`] whose
    /// message never holds one of `secrets`.
    pub(super) async fn deliver(
        request: reqwest::RequestBuilder,
        timeout: Duration,
        secrets: &[&str],
    ) -> Result<(), SendError> {
        let response = request
            .send()
            .await
            .map_err(|e| transport_error(e, timeout, secrets))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry = classify(status, response.headers(), Utc::now());
        let body = snippet(response, secrets).await;
        let message = if body.is_empty() {
            format!("receiver answered {status}")
        } else {
            format!("receiver answered {status}: {body}")
        };
        Err(SendError::new(retry, message))
    }

    /// Whether to try again after a refusal, and when.
    pub(super) fn classify(status: StatusCode, headers: &HeaderMap, now: DateTime<Utc>) -> Retry {
        let asked = || {
            headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry_after(v, now))
        };
        match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                asked().map_or(Retry::Backoff, Retry::After)
            }
            StatusCode::REQUEST_TIMEOUT => Retry::Backoff,
            s if s.is_server_error() => Retry::Backoff,
            // A 4xx will be refused again; a 3xx means the URL is wrong.
            _ => Retry::Never,
        }
    }

    /// `Retry-After` is either seconds or an HTTP date (RFC 9110, 10.2.3).
    fn retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
        let value = value.trim();
        if let Ok(seconds) = value.parse::<u64>() {
            return Some(Duration::from_secs(seconds));
        }
        let at = DateTime::parse_from_rfc2822(value).ok()?;
        Some(
            (at.with_timezone(&Utc) - now)
                .to_std()
                .unwrap_or(Duration::ZERO),
        )
    }

    fn transport_error(err: reqwest::Error, timeout: Duration, secrets: &[&str]) -> SendError {
        // reqwest puts the URL in its message, and the URL may hold a token.
        let err = err.without_url();
        let message = if err.is_timeout() {
            format!("no answer within {}", humantime::format_duration(timeout))
        } else {
            chain(&err)
        };
        SendError::new(Retry::Backoff, redact(&message, secrets))
    }

    /// An error and its causes on one line, since reqwest's own message is only the first.
    pub(super) fn chain(err: &dyn std::error::Error) -> String {
        let mut message = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        message
    }

    /// The start of a refusal's body, read no further than needed, masked before it is cut
    /// so that no part of a secret survives at the cut.
    async fn snippet(mut response: reqwest::Response, secrets: &[&str]) -> String {
        let mut bytes = Vec::new();
        while bytes.len() < BODY_SNIPPET * 4 {
            match response.chunk().await {
                Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                _ => break,
            }
        }
        let text = redact(&String::from_utf8_lossy(&bytes), secrets);
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        match text.char_indices().nth(BODY_SNIPPET) {
            Some((cut, _)) => format!("{}...", &text[..cut]),
            None => text,
        }
    }

    /// A URL that holds a token, and its path and query alone when long enough to be one: a
    /// message may quote either.
    pub(super) fn url_secrets(url: &url::Url) -> Vec<String> {
        let mut token = url.path().trim_matches('/').to_string();
        if let Some(query) = url.query() {
            token.push('?');
            token.push_str(query);
        }
        let mut secrets = vec![url.as_str().to_string()];
        if token.len() >= 8 {
            secrets.push(token);
        }
        secrets
    }

    /// Masks every secret in a message: the last line of defence when a receiver or a
    /// library echoes what it was sent.
    pub(super) fn redact(message: &str, secrets: &[&str]) -> String {
        secrets
            .iter()
            .filter(|s| !s.is_empty())
            .fold(message.to_string(), |m, s| m.replace(s, "***"))
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use reqwest::header::HeaderValue;

        fn with_retry_after(v: &str) -> HeaderMap {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
            h
        }

        #[test]
        fn statuses_map_to_retries() {
            let now = Utc::now();
            let none = HeaderMap::new();
            let cases = [
                (500, &none, Retry::Backoff),
                (502, &none, Retry::Backoff),
                (408, &none, Retry::Backoff),
                (429, &none, Retry::Backoff),
                (400, &none, Retry::Never),
                (404, &none, Retry::Never),
                (301, &none, Retry::Never),
            ];
            for (status, headers, want) in cases {
                let status = StatusCode::from_u16(status).unwrap();
                assert_eq!(classify(status, headers, now), want, "{status}");
            }
            let h = with_retry_after("7");
            let got = classify(StatusCode::TOO_MANY_REQUESTS, &h, now);
            assert_eq!(got, Retry::After(Duration::from_secs(7)));
            let got = classify(StatusCode::SERVICE_UNAVAILABLE, &h, now);
            assert_eq!(got, Retry::After(Duration::from_secs(7)));
        }

        #[test]
        fn retry_after_reads_dates_too() {
            let now = DateTime::parse_from_rfc3339("2015-10-21T07:27:00Z")
                .unwrap()
                .to_utc();
            let later = retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now);
            assert_eq!(later, Some(Duration::from_secs(60)));
            let past = retry_after("Wed, 21 Oct 2015 07:26:00 GMT", now);
            assert_eq!(past, Some(Duration::ZERO));
            assert_eq!(retry_after("soon", now), None);
        }

        #[test]
        fn url_secrets_take_the_path_when_it_looks_like_a_token() {
            let url = |s: &str| url::Url::parse(s).unwrap();
            let got = url_secrets(&url("https://h/services/T1/B2/xyz"));
            assert_eq!(got, ["https://h/services/T1/B2/xyz", "services/T1/B2/xyz"]);
            let got = url_secrets(&url("https://h/hook?token=abcdef"));
            assert_eq!(got, ["https://h/hook?token=abcdef", "hook?token=abcdef"]);
            assert_eq!(url_secrets(&url("https://h/in")), ["https://h/in"]);
        }

        #[tokio::test]
        async fn a_secret_at_the_cut_of_a_refusal_is_masked_whole() {
            let secret = "0123456789abcdef";
            let echoed = format!("{}{secret} and more", "x".repeat(BODY_SNIPPET - 4));
            let response = reqwest::Response::from(axum::http::Response::new(echoed));
            let got = snippet(response, &[secret]).await;
            assert!(!got.contains("0123"), "{got}");
            assert!(got.contains("x***") && got.ends_with("..."), "{got}");
        }

        #[test]
        fn redact_masks_every_secret_and_ignores_empty_ones() {
            let m = redact(
                "POST https://h/T1/abc failed for key k3y",
                &["abc", "", "k3y"],
            );
            assert_eq!(m, "POST https://h/T1/*** failed for key ***");
        }
    }
}

pub use alertmanager::AlertmanagerConfig;
pub use email::{EmailConfig, SmtpTls};
pub use pagerduty::PagerDutyConfig;
pub use slack::SlackConfig;
pub use webhook::WebhookConfig;

pub mod alertmanager;
pub mod email;
pub mod log;
pub mod pagerduty;
pub mod slack;
pub mod text;
pub mod webhook;

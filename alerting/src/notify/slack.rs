//! Slack through an incoming webhook: the subject as the message text, the body in one
//! attachment coloured by level. The webhook URL holds a token, so it never reaches an error.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use lookout_conf::Dur;
use lookout_model::secret::Secret;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Channel, Kind, Level, Notification, Notifier, Retry, SendError, http, text};

/// `type: slack`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlack {
    webhook_url: Secret,
    timeout: Option<Dur>,
}

#[derive(Debug, Clone)]
pub struct SlackConfig {
    /// An incoming webhook URL: it holds a token, so it is a secret.
    pub webhook_url: Secret,
    pub timeout: Duration,
}

impl Channel for SlackConfig {
    type Raw = RawSlack;

    fn from_raw(raw: RawSlack) -> Result<Self, String> {
        Ok(SlackConfig {
            webhook_url: raw.webhook_url,
            timeout: super::timeout_or_default(raw.timeout),
        })
    }

    fn build(&self) -> Result<Arc<dyn Notifier>, String> {
        Ok(Arc::new(SlackNotifier::new(self.clone())?))
    }
}

/// Slack's limit on channel names.
const CHANNEL_MAX: usize = 80;

pub struct SlackNotifier {
    client: reqwest::Client,
    url: url::Url,
    timeout: Duration,
    secrets: Vec<String>,
}

impl SlackNotifier {
    pub fn new(config: SlackConfig) -> Result<Self, String> {
        let raw = config.webhook_url.expose();
        let url =
            url::Url::parse(raw).map_err(|e| format!("slack: webhook_url is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("slack: webhook_url must be http or https".to_string());
        }
        let mut secrets = http::url_secrets(&url);
        secrets.push(raw.to_string());
        Ok(SlackNotifier {
            client: http::client(config.timeout)?,
            url,
            timeout: config.timeout,
            secrets,
        })
    }
}

impl Notifier for SlackNotifier {
    fn kind(&self) -> &'static str {
        "slack"
    }

    fn check_target(&self, target: Option<&str>) -> Result<(), String> {
        channel(target).map(|_| ())
    }

    fn send<'a>(
        &'a self,
        target: Option<&'a str>,
        n: &'a Notification,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let channel = channel(target).map_err(|e| SendError::new(Retry::Never, e))?;
            let request = self
                .client
                .post(self.url.clone())
                .json(&payload(n, channel));
            let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
            http::deliver(request, self.timeout, &secrets).await
        })
    }
}

/// The JSON Slack receives: built without IO, so its shape is tested without a network.
pub fn payload(n: &Notification, channel: Option<&str>) -> Value {
    let subject = escape(&text::subject(n));
    let link = n.links.alerter.as_ref().or(n.links.dashboard.as_ref());
    let mut attachment = json!({
        "color": color(n),
        "fallback": subject,
        "title": subject,
        "text": escape(&text::body(n)),
        "footer": "Lookout",
        "ts": n.at.timestamp(),
    });
    if let Some(link) = link {
        attachment["title_link"] = json!(link);
    }
    if let Some(ack) = &n.links.ack {
        attachment["actions"] = json!([{
            "type": "button",
            "text": "Acknowledge",
            "url": ack,
            "style": "primary",
        }]);
    }
    let mut payload = json!({ "text": subject, "attachments": [attachment] });
    if let Some(channel) = channel {
        payload["channel"] = json!(channel);
    }
    payload
}

/// Red for errors, amber for warnings, grey for no data, green once resolved, blue for a test.
fn color(n: &Notification) -> &'static str {
    match (n.kind, n.state) {
        (Kind::Test, _) => "#439fe0",
        (Kind::Resolve, _) | (_, Level::Ok) => "#2eb886",
        (_, Level::Error) => "#d50200",
        (_, Level::Warn) => "#daa038",
        (_, Level::Unknown) => "#808080",
    }
}

/// Slack reads `&`, `<` and `>` as markup: a check named `a<b` must show as written.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The optional channel override: `#name`, lowercase letters, digits, `-` and `_`, as Slack
/// names channels.
fn channel(target: Option<&str>) -> Result<Option<&str>, String> {
    let Some(target) = target.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let Some(name) = target.strip_prefix('#') else {
        return Err(format!("slack: channel {target:?} must start with #"));
    };
    let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    if name.is_empty() || name.len() > CHANNEL_MAX || !name.chars().all(valid) {
        return Err(format!(
            "slack: channel {target:?} must be # and 1 to {CHANNEL_MAX} lowercase letters, \
             digits, - or _"
        ));
    }
    Ok(Some(target))
}

#[cfg(test)]
mod tests {
    use lookout_model::secret::Secret;

    use super::*;
    use crate::notify::text::tests::sample;

    #[test]
    fn the_payload_has_the_subject_and_one_coloured_attachment() {
        let n = Notification {
            check_name: "a<b & c".into(),
            ..sample()
        };
        let p = payload(&n, Some("#ops"));
        assert_eq!(p["text"], "[ERROR] a&lt;b &amp; c: down (eu-west, us-east)");
        assert_eq!(p["channel"], "#ops");
        let a = &p["attachments"][0];
        assert_eq!(a["color"], "#d50200");
        assert_eq!(
            a["title_link"],
            "https://lookout.example.com/problems/search-1"
        );
        assert_eq!(a["ts"], n.at.timestamp());
        assert!(
            a["text"]
                .as_str()
                .unwrap()
                .contains("First failure: connection refused")
        );
        assert!(payload(&sample(), None).get("channel").is_none());
        assert_eq!(a["actions"][0]["text"], "Acknowledge");
        assert_eq!(
            a["actions"][0]["url"],
            "https://lookout.example.com/ack/signed"
        );
        let resolve = Notification {
            links: crate::notify::Links {
                ack: None,
                ..sample().links
            },
            ..sample()
        };
        assert!(
            payload(&resolve, None)["attachments"][0]
                .get("actions")
                .is_none()
        );
    }

    #[test]
    fn colours_follow_the_level() {
        let n = sample();
        let color_of = |kind, state| {
            color(&Notification {
                kind,
                state,
                ..n.clone()
            })
        };
        assert_eq!(color_of(Kind::Trigger, Level::Warn), "#daa038");
        assert_eq!(color_of(Kind::Reminder, Level::Unknown), "#808080");
        assert_eq!(color_of(Kind::Resolve, Level::Ok), "#2eb886");
        assert_eq!(color_of(Kind::Test, Level::Error), "#439fe0");
    }

    #[test]
    fn channels_are_checked() {
        let notifier = SlackNotifier::new(SlackConfig {
            webhook_url: Secret::new("https://hooks.slack.com/services/T0/B0/xyz"),
            timeout: Duration::from_secs(5),
        })
        .unwrap();
        for good in [None, Some(""), Some("#ops"), Some("#sre_on-call2")] {
            assert_eq!(notifier.check_target(good), Ok(()), "{good:?}");
        }
        let bad = [
            ("ops", "slack: channel \"ops\" must start with #"),
            (
                "#",
                "slack: channel \"#\" must be # and 1 to 80 lowercase letters, digits, - or _",
            ),
            (
                "#Ops",
                "slack: channel \"#Ops\" must be # and 1 to 80 lowercase letters, digits, - or _",
            ),
            (
                "#a b",
                "slack: channel \"#a b\" must be # and 1 to 80 lowercase letters, digits, - or _",
            ),
        ];
        for (target, want) in bad {
            assert_eq!(notifier.check_target(Some(target)), Err(want.to_string()));
        }
    }

    #[test]
    fn a_bad_url_is_refused_without_showing_it() {
        let err = SlackNotifier::new(SlackConfig {
            webhook_url: Secret::new("hooks.slack.com/services/T0/B0/xyz"),
            timeout: Duration::from_secs(5),
        })
        .err()
        .unwrap();
        assert_eq!(
            err,
            "slack: webhook_url is not a URL: relative URL without a base"
        );
    }
}

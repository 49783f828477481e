//! PagerDuty's Events API v2. One problem is one PagerDuty alert: its `problem_id` is the
//! dedup key, so reminders (sent as triggers again) fold into the open alert and the resolve
//! closes it. The routing key is a secret: it is in the body only, never in an error.

use std::sync::Arc;
use std::time::Duration;

use chrono::SecondsFormat;
use futures_util::future::BoxFuture;
use lookout_conf::Dur;
use lookout_model::secret::Secret;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Channel, Kind, Level, Notification, Notifier, SendError, http, text};

/// Events API v2's endpoint, unless the config names another (a proxy, a test receiver).
pub const DEFAULT_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// `type: pagerduty`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPagerDuty {
    routing_key: Secret,
    url: Option<String>,
    timeout: Option<Dur>,
}

#[derive(Debug, Clone)]
pub struct PagerDutyConfig {
    pub routing_key: Secret,
    /// Events API v2 endpoint; [`DEFAULT_URL`] by default.
    pub url: String,
    pub timeout: Duration,
}

impl Channel for PagerDutyConfig {
    type Raw = RawPagerDuty;

    fn from_raw(raw: RawPagerDuty) -> Result<Self, String> {
        Ok(PagerDutyConfig {
            routing_key: raw.routing_key,
            url: raw.url.unwrap_or_else(|| DEFAULT_URL.into()),
            timeout: super::timeout_or_default(raw.timeout),
        })
    }

    fn build(&self) -> Result<Arc<dyn Notifier>, String> {
        Ok(Arc::new(PagerDutyNotifier::new(self.clone())?))
    }
}

/// PagerDuty cuts a longer summary.
const SUMMARY_MAX: usize = 1024;

pub struct PagerDutyNotifier {
    client: reqwest::Client,
    url: url::Url,
    routing_key: Secret,
    timeout: Duration,
}

impl PagerDutyNotifier {
    pub fn new(config: PagerDutyConfig) -> Result<Self, String> {
        if config.routing_key.is_empty() {
            return Err("pagerduty: routing_key is empty".to_string());
        }
        let url = url::Url::parse(&config.url)
            .map_err(|e| format!("pagerduty: url {:?} is not a URL: {e}", config.url))?;
        Ok(PagerDutyNotifier {
            client: http::client(config.timeout)?,
            url,
            routing_key: config.routing_key,
            timeout: config.timeout,
        })
    }
}

impl Notifier for PagerDutyNotifier {
    fn kind(&self) -> &'static str {
        "pagerduty"
    }

    fn stateful(&self) -> bool {
        true
    }

    fn send<'a>(
        &'a self,
        _target: Option<&'a str>,
        n: &'a Notification,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let event = event(n, self.routing_key.expose());
            let request = self.client.post(self.url.clone()).json(&event);
            http::deliver(request, self.timeout, &[self.routing_key.expose()]).await
        })
    }
}

/// The dedup key: the problem's, except for a test, which must not fold into (or resolve) a
/// real alert of the same check.
pub fn dedup_key(n: &Notification) -> String {
    match n.kind {
        Kind::Test => format!("lookout-test-{}", n.id),
        _ => n.problem_id.clone(),
    }
}

/// The event PagerDuty receives, built without IO.
pub fn event(n: &Notification, routing_key: &str) -> Value {
    let dedup_key = dedup_key(n);
    if n.kind == Kind::Resolve {
        // PagerDuty reads only these on a resolve.
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": dedup_key,
        });
    }
    let mut payload = json!({
        "summary": summary(n),
        "source": "lookout",
        "severity": severity(n),
        "timestamp": n.at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "component": n.check_name,
        "class": n.target,
        "custom_details": details(n),
    });
    if let Some(group) = n.labels.get("group") {
        payload["group"] = json!(group);
    }
    let mut event = json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": payload,
        "client": "Lookout",
        "links": links(n),
    });
    if let Some(alerter) = &n.links.alerter {
        event["client_url"] = json!(alerter);
    }
    event
}

/// From the level, so PagerDuty's severity-based urgency pages for errors only. A test is
/// `info`: it proves the path without paging anyone at full urgency.
fn severity(n: &Notification) -> &'static str {
    match (n.kind, n.state) {
        (Kind::Test, _) | (_, Level::Ok) => "info",
        (_, Level::Error) => "critical",
        (_, Level::Unknown) => "error",
        (_, Level::Warn) => "warning",
    }
}

fn summary(n: &Notification) -> String {
    let subject = text::subject(n);
    match subject.char_indices().nth(SUMMARY_MAX - 3) {
        Some((cut, _)) => format!("{}...", &subject[..cut]),
        None => subject,
    }
}

fn details(n: &Notification) -> Value {
    json!({
        "check_id": n.check_id,
        "description": n.description,
        "state": n.state,
        "previous": n.previous,
        "value": text::value_line(n),
        "regions": n.regions,
        "since": n.since.to_rfc3339_opts(SecondsFormat::Secs, true),
        "reason": n.reason,
        "severity": n.severity,
        "labels": n.labels,
        "kind": n.kind,
    })
}

fn links(n: &Notification) -> Vec<Value> {
    [
        ("Status page", &n.links.status_page),
        ("Dashboard", &n.links.dashboard),
        ("Lookout", &n.links.alerter),
    ]
    .into_iter()
    .filter_map(|(text, href)| {
        href.as_ref()
            .map(|href| json!({"href": href, "text": text}))
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::text::tests::sample;

    #[test]
    fn a_trigger_carries_the_problem_as_dedup_key_and_a_full_payload() {
        let e = event(&sample(), "KEY");
        assert_eq!(e["routing_key"], "KEY");
        assert_eq!(e["event_action"], "trigger");
        assert_eq!(e["dedup_key"], "p-search-1");
        let p = &e["payload"];
        assert_eq!(p["summary"], "[ERROR] search: down (eu-west, us-east)");
        assert_eq!(p["source"], "lookout");
        assert_eq!(p["severity"], "critical");
        assert_eq!(p["timestamp"], "2024-05-01T10:12:30.000Z");
        assert_eq!(p["component"], "search");
        assert_eq!(p["custom_details"]["reason"], "connection refused");
        assert_eq!(
            e["links"][1]["href"],
            "https://grafana.example.com/d/search"
        );
        assert_eq!(
            e["client_url"],
            "https://lookout.example.com/problems/search-1"
        );
    }

    #[test]
    fn reminders_trigger_again_resolves_resolve_and_tests_stay_apart() {
        let n = sample();
        let reminder = event(
            &Notification {
                kind: Kind::Reminder,
                ..n.clone()
            },
            "K",
        );
        assert_eq!(reminder["event_action"], "trigger");
        assert_eq!(reminder["dedup_key"], "p-search-1");

        let resolve = event(
            &Notification {
                kind: Kind::Resolve,
                ..n.clone()
            },
            "K",
        );
        assert_eq!(
            resolve,
            json!({"routing_key": "K", "event_action": "resolve", "dedup_key": "p-search-1"})
        );

        let test = event(
            &Notification {
                kind: Kind::Test,
                ..n
            },
            "K",
        );
        assert_eq!(test["event_action"], "trigger");
        assert_eq!(test["dedup_key"], "lookout-test-n-1");
        assert_eq!(test["payload"]["severity"], "info");
    }

    #[test]
    fn severity_follows_the_level() {
        let n = sample();
        let of = |state| severity(&Notification { state, ..n.clone() });
        assert_eq!(of(Level::Error), "critical");
        assert_eq!(of(Level::Unknown), "error");
        assert_eq!(of(Level::Warn), "warning");
        assert_eq!(of(Level::Ok), "info");
    }

    #[test]
    fn an_empty_routing_key_is_refused() {
        let err = PagerDutyNotifier::new(PagerDutyConfig {
            routing_key: lookout_model::secret::Secret::new(""),
            url: "https://events.pagerduty.com/v2/enqueue".into(),
            timeout: Duration::from_secs(5),
        })
        .err();
        assert_eq!(err.as_deref(), Some("pagerduty: routing_key is empty"));
    }
}

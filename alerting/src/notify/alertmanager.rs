//! Prometheus Alertmanager, through `POST /api/v2/alerts`. Alertmanager identifies an alert
//! by its labels, so they must be the same from trigger to resolve: the level (which moves
//! between WARN and ERROR) is an annotation, and the `severity` label is the stable
//! page/ticket one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use futures_util::future::BoxFuture;
use lookout_conf::Dur;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Channel, Kind, Notification, Notifier, SendError, http, text};

/// `type: alertmanager`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlertmanager {
    url: String,
    timeout: Option<Dur>,
}

#[derive(Debug, Clone)]
pub struct AlertmanagerConfig {
    /// Alertmanager's base URL, e.g. `http://127.0.0.1:9093`.
    pub url: String,
    pub timeout: Duration,
}

impl Channel for AlertmanagerConfig {
    type Raw = RawAlertmanager;

    fn from_raw(raw: RawAlertmanager) -> Result<Self, String> {
        Ok(AlertmanagerConfig {
            url: raw.url,
            timeout: super::timeout_or_default(raw.timeout),
        })
    }

    fn build(&self) -> Result<Arc<dyn Notifier>, String> {
        Ok(Arc::new(AlertmanagerNotifier::new(self.clone())?))
    }
}

/// How long an alert stays active after a trigger or a reminder without a word from us.
/// Without `endsAt` Alertmanager would end it after its `resolve_timeout` (5m by default),
/// long before a reminder comes; the outbox delivers the resolve, so a day only bounds how
/// long an alert of a deleted check lingers.
const ACTIVE_FOR: TimeDelta = TimeDelta::hours(24);

/// A test alert proves the routing, then goes away by itself.
const TEST_ACTIVE_FOR: TimeDelta = TimeDelta::minutes(5);

pub struct AlertmanagerNotifier {
    client: reqwest::Client,
    url: url::Url,
    timeout: Duration,
}

impl AlertmanagerNotifier {
    pub fn new(config: AlertmanagerConfig) -> Result<Self, String> {
        let base = config.url.trim_end_matches('/');
        let url = url::Url::parse(&format!("{base}/api/v2/alerts"))
            .map_err(|e| format!("alertmanager: url {:?} is not a URL: {e}", config.url))?;
        Ok(AlertmanagerNotifier {
            client: http::client(config.timeout)?,
            url,
            timeout: config.timeout,
        })
    }
}

impl Notifier for AlertmanagerNotifier {
    fn kind(&self) -> &'static str {
        "alertmanager"
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
            let request = self.client.post(self.url.clone()).json(&alerts(n));
            http::deliver(request, self.timeout, &[]).await
        })
    }
}

/// The JSON array Alertmanager receives, with this notification's one alert.
pub fn alerts(n: &Notification) -> Value {
    let mut alert = json!({
        "labels": labels(n),
        "annotations": annotations(n),
        "startsAt": timestamp(n.since),
        "endsAt": timestamp(ends_at(n)),
    });
    if let Some(alerter) = &n.links.alerter {
        alert["generatorURL"] = json!(alerter);
    }
    json!([alert])
}

fn ends_at(n: &Notification) -> DateTime<Utc> {
    match n.kind {
        Kind::Resolve => n.at,
        Kind::Test => n.at + TEST_ACTIVE_FOR,
        Kind::Trigger | Kind::Reminder => n.at + ACTIVE_FOR,
    }
}

/// The notification's labels, then ours over them: `alertname`, `check` and `severity` are
/// what routes rely on. Names become valid label names; empty values are dropped, as
/// Alertmanager reads them as absent.
fn labels(n: &Notification) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = n
        .labels
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (label_name(k), v.clone()))
        .collect();
    labels.insert("alertname".into(), n.check_name.clone());
    labels.insert("check".into(), n.check_id.clone());
    if !n.severity.is_empty() {
        labels.insert("severity".into(), n.severity.clone());
    }
    if n.kind == Kind::Test {
        // Keeps a test apart from the check's real alert, which it would otherwise update.
        labels.insert("test".into(), n.id.clone());
    }
    labels
}

fn annotations(n: &Notification) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::from([
        ("summary".to_string(), text::subject(n)),
        ("description".to_string(), n.description.clone()),
        ("state".to_string(), n.state.to_string()),
        ("value".to_string(), text::value_line(n)),
    ]);
    let optional = [
        ("regions", text::regions(n)),
        ("reason", n.reason.clone()),
        ("status_page", n.links.status_page.clone()),
        ("dashboard", n.links.dashboard.clone()),
        ("alerter", n.links.alerter.clone()),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            annotations.insert(name.to_string(), value);
        }
    }
    // Alertmanager reads an empty value as absent: say so rather than send one.
    annotations.retain(|_, v| !v.is_empty());
    annotations
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, as Prometheus requires: anything else becomes `_`.
fn label_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::text::tests::sample;

    #[test]
    fn a_trigger_is_one_active_alert_with_stable_labels() {
        let n = sample();
        let a = &alerts(&n)[0];
        assert_eq!(
            a["labels"],
            json!({"alertname": "search", "check": "search", "severity": "page", "team": "search"})
        );
        let ann = &a["annotations"];
        assert_eq!(ann["summary"], "[ERROR] search: down (eu-west, us-east)");
        assert_eq!(ann["regions"], "eu-west, us-east");
        assert_eq!(ann["reason"], "connection refused");
        assert_eq!(ann["state"], "ERROR");
        assert_eq!(a["startsAt"], "2024-05-01T10:00:00.000Z");
        assert_eq!(a["endsAt"], "2024-05-02T10:12:30.000Z");
        assert_eq!(
            a["generatorURL"],
            "https://lookout.example.com/problems/search-1"
        );
    }

    #[test]
    fn a_resolve_ends_now_with_the_same_labels() {
        let n = sample();
        let resolve = Notification {
            kind: Kind::Resolve,
            state: crate::notify::Level::Ok,
            ..n.clone()
        };
        let (t, r) = (&alerts(&n)[0], &alerts(&resolve)[0]);
        assert_eq!(t["labels"], r["labels"]);
        assert_eq!(r["endsAt"], "2024-05-01T10:12:30.000Z");
    }

    #[test]
    fn a_test_has_its_own_labels_and_ends_by_itself() {
        let n = Notification {
            kind: Kind::Test,
            ..sample()
        };
        let a = &alerts(&n)[0];
        assert_eq!(a["labels"]["test"], "n-1");
        assert_eq!(a["endsAt"], "2024-05-01T10:17:30.000Z");
    }

    #[test]
    fn label_names_are_made_valid() {
        assert_eq!(label_name("team"), "team");
        assert_eq!(
            label_name("app.kubernetes.io/name"),
            "app_kubernetes_io_name"
        );
        assert_eq!(label_name("1st"), "_1st");
        assert_eq!(label_name(""), "_");
    }

    #[test]
    fn the_url_is_the_alerts_endpoint() {
        let notifier = AlertmanagerNotifier::new(AlertmanagerConfig {
            url: "http://127.0.0.1:9093/".into(),
            timeout: Duration::from_secs(5),
        })
        .unwrap();
        assert_eq!(notifier.url.as_str(), "http://127.0.0.1:9093/api/v2/alerts");
    }
}

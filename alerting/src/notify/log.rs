//! The log channel: every notification as one `tracing` event. The default of `lookout up`,
//! so a fresh install shows its alerts before any real channel is configured.

use futures_util::future::BoxFuture;

use std::sync::Arc;

use serde::Deserialize;

use super::{Channel, Kind, Level, Notification, Notifier, SendError, text};

/// `type: log` takes no other keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {}

#[derive(Debug, Clone)]
pub struct LogConfig;

impl Channel for LogConfig {
    type Raw = RawLog;

    fn from_raw(_: RawLog) -> Result<Self, String> {
        Ok(LogConfig)
    }

    fn build(&self) -> Result<Arc<dyn Notifier>, String> {
        Ok(Arc::new(LogNotifier))
    }
}

pub struct LogNotifier;

impl Notifier for LogNotifier {
    fn kind(&self) -> &'static str {
        "log"
    }

    fn send<'a>(
        &'a self,
        _target: Option<&'a str>,
        n: &'a Notification,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        log(n);
        Box::pin(async { Ok(()) })
    }
}

/// An open problem is a warning; its end, a test or a return to OK is news.
fn log(n: &Notification) {
    let subject = text::subject(n);
    let open = matches!(n.kind, Kind::Trigger | Kind::Reminder) && n.state != Level::Ok;
    if open {
        tracing::warn!(
            check = %n.check_name,
            state = %n.state,
            problem_id = %n.problem_id,
            kind = n.kind.as_str(),
            value = %text::value(n.value),
            regions = ?n.regions,
            reason = n.reason.as_deref().unwrap_or(""),
            "{subject}"
        );
    } else {
        tracing::info!(
            check = %n.check_name,
            state = %n.state,
            problem_id = %n.problem_id,
            kind = n.kind.as_str(),
            "{subject}"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use futures_util::FutureExt;
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    use super::*;
    use crate::notify::text::tests::sample;

    /// The events logged, as (level, fields): a subscriber of our own, since the crate does
    /// not depend on tracing-subscriber.
    #[derive(Default, Clone)]
    struct Capture(Arc<Mutex<Vec<Logged>>>);

    type Logged = (tracing::Level, Vec<(String, String)>);

    struct Fields(Vec<(String, String)>);

    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0
                .push((field.name().to_string(), format!("{value:?}")));
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.push((field.name().to_string(), value.to_string()));
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut fields = Fields(Vec::new());
            event.record(&mut fields);
            let level = *event.metadata().level();
            self.0.lock().unwrap().push((level, fields.0));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    fn logged(n: &Notification) -> Logged {
        let capture = Capture::default();
        tracing::subscriber::with_default(capture.clone(), || {
            let sent = LogNotifier.send(None, n).now_or_never();
            assert!(matches!(sent, Some(Ok(()))));
        });
        let mut events = capture.0.lock().unwrap().clone();
        assert_eq!(events.len(), 1);
        events.remove(0)
    }

    fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
        let found = fields.iter().find(|(k, _)| k == name);
        found
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} in {fields:?}"))
    }

    #[test]
    fn a_trigger_is_a_warning_with_structured_fields() {
        let (level, fields) = logged(&sample());
        assert_eq!(level, tracing::Level::WARN);
        assert_eq!(field(&fields, "check"), "search");
        assert_eq!(field(&fields, "state"), "ERROR");
        assert_eq!(field(&fields, "problem_id"), "p-search-1");
        assert_eq!(field(&fields, "kind"), "trigger");
        assert_eq!(
            field(&fields, "message"),
            "[ERROR] search: down (eu-west, us-east)"
        );
    }

    #[test]
    fn a_resolve_is_news() {
        let n = Notification {
            kind: Kind::Resolve,
            state: Level::Ok,
            ..sample()
        };
        let (level, fields) = logged(&n);
        assert_eq!(level, tracing::Level::INFO);
        assert_eq!(field(&fields, "kind"), "resolve");
    }

    #[test]
    fn takes_no_target() {
        assert!(LogNotifier.check_target(None).is_ok());
        assert!(LogNotifier.check_target(Some("#ops")).is_err());
    }
}

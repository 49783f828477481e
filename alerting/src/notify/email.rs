//! Email over SMTP with lettre: STARTTLS (required), implicit TLS or plain, optional AUTH.
//! One message per notification, threaded per problem through `References`, so a mail client
//! shows a problem's trigger, reminders and resolve together.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncTransport, Tokio1Executor};
pub use lookout_mail::{EmailConfig, RawEmail, SmtpTls};
use lookout_mail::{mailbox, transport};
use lookout_model::secret::Secret;

use super::{Channel, Notification, Notifier, Retry, SendError, http, text};

/// `type: email`: the relay's keys are mail's own, shared with the status page's reports.
impl Channel for EmailConfig {
    type Raw = RawEmail;

    fn from_raw(raw: RawEmail) -> Result<Self, String> {
        EmailConfig::try_from(raw)
    }

    fn build(&self) -> Result<Arc<dyn Notifier>, String> {
        Ok(Arc::new(EmailNotifier::new(self.clone())?))
    }
}

/// The right-hand side of our Message-IDs: ours, not the relay's, so the ids stay the same
/// whichever relay sends them.
const MESSAGE_ID_DOMAIN: &str = "lookout";

pub struct EmailNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// `host:port`, for messages: never the credentials.
    server: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    timeout: Duration,
    password: Option<Secret>,
}

impl EmailNotifier {
    pub fn new(config: EmailConfig) -> Result<Self, String> {
        let from = config
            .from
            .trim()
            .parse::<Mailbox>()
            .map_err(|e| format!("email: from {:?} is not an address: {e}", config.from))?;
        let to = config
            .to
            .iter()
            .map(|a| mailbox(a))
            .collect::<Result<Vec<_>, _>>()?;
        let transport = transport(&config)?.timeout(Some(config.timeout)).build();
        Ok(EmailNotifier {
            transport,
            server: format!("{}:{}", config.host, config.port),
            from,
            to,
            timeout: config.timeout,
            password: config.password,
        })
    }

    /// The subscription's addresses when it names any, else the channel's `to`.
    fn recipients(&self, target: Option<&str>) -> Result<Vec<Mailbox>, String> {
        let named = target.map(str::trim).filter(|t| !t.is_empty());
        let recipients = match named {
            Some(list) => split(list).map(mailbox).collect::<Result<Vec<_>, _>>()?,
            None => self.to.clone(),
        };
        if recipients.is_empty() {
            return Err(
                "email: no recipient: the subscription names none and `to` is empty".to_string(),
            );
        }
        Ok(recipients)
    }

    /// The message itself, built without IO.
    pub fn message(&self, target: Option<&str>, n: &Notification) -> Result<Message, SendError> {
        let refuse = |message: String| SendError::new(Retry::Never, message);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(text::subject(n))
            .message_id(Some(message_id(&n.id)))
            .references(message_id(&n.problem_id))
            .header(ContentType::TEXT_PLAIN);
        for recipient in self.recipients(target).map_err(refuse)? {
            builder = builder.to(recipient);
        }
        builder
            .body(text::body(n))
            .map_err(|e| refuse(format!("email: cannot build the message: {e}")))
    }

    /// Delivers within the timeout, whatever the server does.
    async fn deliver(&self, message: Message) -> Result<(), SendError> {
        let sent = tokio::time::timeout(self.timeout, self.transport.send(message)).await;
        match sent {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.smtp_error(&e)),
            Err(_) => Err(SendError::new(
                Retry::Backoff,
                format!(
                    "email: {} gave no answer within {}",
                    self.server,
                    humantime::format_duration(self.timeout)
                ),
            )),
        }
    }

    /// A 5xx is final (a refused recipient, bad credentials); anything else, a 4xx, a refused
    /// connection or a timeout, may pass later.
    fn smtp_error(&self, e: &lettre::transport::smtp::Error) -> SendError {
        let retry = if e.is_permanent() {
            Retry::Never
        } else {
            Retry::Backoff
        };
        let message = format!("email: {}: {e}", self.server);
        let password = self
            .password
            .as_ref()
            .map(Secret::expose)
            .unwrap_or_default();
        SendError::new(retry, http::redact(&message, &[password]))
    }
}

impl Notifier for EmailNotifier {
    fn kind(&self) -> &'static str {
        "email"
    }

    fn check_target(&self, target: Option<&str>) -> Result<(), String> {
        self.recipients(target).map(|_| ())
    }

    fn send<'a>(
        &'a self,
        target: Option<&'a str>,
        n: &'a Notification,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let message = self.message(target, n)?;
            self.deliver(message).await
        })
    }
}

/// Splits a list on the commas outside quotes, so `"Doe, Jane" <jane@example.com>` is one.
fn split(list: &str) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    list.split(move |c: char| {
        if c == '"' {
            quoted = !quoted;
        }
        c == ',' && !quoted
    })
    .map(str::trim)
    .filter(|a| !a.is_empty())
}

/// `<id@lookout>`, with whatever an id may hold that a Message-ID may not made a `-`.
fn message_id(id: &str) -> String {
    let left: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("<{left}@{MESSAGE_ID_DOMAIN}>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::text::tests::sample;

    fn config() -> EmailConfig {
        EmailConfig {
            host: "127.0.0.1".into(),
            port: 2525,
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: "Lookout <lookout@example.com>".into(),
            to: vec!["oncall@example.com".into()],
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn targets_are_address_lists_and_the_bad_one_is_named() {
        let email = EmailNotifier::new(config()).unwrap();
        assert_eq!(email.check_target(None), Ok(()));
        assert_eq!(
            email.check_target(Some("a@example.com, b@example.com")),
            Ok(())
        );
        assert_eq!(
            email.check_target(Some("\"Doe, Jane\" <jane@example.com>")),
            Ok(())
        );
        assert_eq!(
            email.check_target(Some("a@example.com, not an address")),
            Err("email: \"not an address\" is not an address: Invalid input".to_string())
        );
        let nobody = EmailNotifier::new(EmailConfig {
            to: vec![],
            ..config()
        })
        .unwrap();
        assert!(
            nobody
                .check_target(None)
                .unwrap_err()
                .contains("no recipient")
        );
    }

    #[test]
    fn the_message_is_threaded_per_problem() {
        let email = EmailNotifier::new(config()).unwrap();
        let message = email
            .message(Some("a@example.com, b@example.com"), &sample())
            .unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(
            raw.contains("Subject: [ERROR] search: down (eu-west, us-east)\r\n"),
            "{raw}"
        );
        assert!(
            raw.contains("To: a@example.com, b@example.com\r\n"),
            "{raw}"
        );
        assert!(raw.contains("Message-ID: <n-1@lookout>\r\n"), "{raw}");
        assert!(
            raw.contains("References: <p-search-1@lookout>\r\n"),
            "{raw}"
        );
        assert!(raw.contains("First failure: connection refused"), "{raw}");
    }

    #[test]
    fn bad_configs_are_refused() {
        let cases = [
            (
                EmailConfig {
                    from: "lookout".into(),
                    ..config()
                },
                "email: from \"lookout\" is not an address: Invalid input",
            ),
            (
                EmailConfig {
                    to: vec!["x@".into()],
                    ..config()
                },
                "email: \"x@\" is not an address: Invalid input",
            ),
            (
                EmailConfig {
                    username: Some("u".into()),
                    ..config()
                },
                "email: username and password go together",
            ),
        ];
        for (config, want) in cases {
            assert_eq!(EmailNotifier::new(config).err().as_deref(), Some(want));
        }
    }

    #[test]
    fn message_ids_keep_to_safe_characters() {
        assert_eq!(message_id("p/search 1@x"), "<p-search-1-x@lookout>");
    }
}

//! Mail as one small piece: the SMTP settings as written and validated, the lettre transport
//! they make, and address parsing. The alerter's email notifier and the status page's monthly
//! reports both send through it, so a relay that works for one works for the other.

use std::time::Duration;

use lettre::Tokio1Executor;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::{AsyncSmtpTransport, AsyncSmtpTransportBuilder};
use lookout_conf::Dur;
use lookout_model::secret::Secret;
use serde::Deserialize;

/// How long an SMTP exchange may take when the config does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP, upgraded with STARTTLS (required).
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Implicit,
    /// No TLS at all: only for a relay on the same host or in tests.
    None,
}

impl SmtpTls {
    /// The port a relay of this kind listens on by convention.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::Implicit => 465,
            SmtpTls::StartTls => 587,
            SmtpTls::None => 25,
        }
    }
}

/// A relay, a sender and default recipients.
#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub from: String,
    /// Recipients when a subscription names none.
    pub to: Vec<String>,
    pub timeout: Duration,
}

/// The keys as written, wherever mail is configured.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmail {
    pub host: String,
    pub port: Option<u16>,
    /// `starttls` (default), `tls` or `none`.
    pub tls: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub from: String,
    #[serde(default)]
    pub to: Vec<String>,
    pub timeout: Option<Dur>,
}

impl TryFrom<RawEmail> for EmailConfig {
    type Error = String;

    fn try_from(raw: RawEmail) -> Result<EmailConfig, String> {
        let tls = match raw.tls.as_deref().unwrap_or("starttls") {
            "starttls" => SmtpTls::StartTls,
            "tls" => SmtpTls::Implicit,
            "none" => SmtpTls::None,
            other => {
                return Err(format!(
                    "`tls`: {other:?} is not one of starttls, tls, none"
                ));
            }
        };
        if raw.username.is_some() != raw.password.is_some() {
            return Err("give both `username` and `password`, or neither".into());
        }
        Ok(EmailConfig {
            host: raw.host,
            port: raw.port.unwrap_or(tls.default_port()),
            tls,
            username: raw.username,
            password: raw.password,
            from: raw.from,
            to: raw.to,
            timeout: raw.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0),
        })
    }
}

/// The SMTP transport for these settings.
pub fn transport(config: &EmailConfig) -> Result<AsyncSmtpTransportBuilder, String> {
    let host = config.host.trim();
    let tls_error = |e: lettre::transport::smtp::Error| format!("email: TLS for {host:?}: {e}");
    let builder = match config.tls {
        SmtpTls::StartTls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(tls_error)?
        }
        SmtpTls::Implicit => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(tls_error)?
        }
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
    };
    let builder = builder.port(config.port);
    match (&config.username, &config.password) {
        (Some(user), Some(password)) => Ok(builder.credentials(Credentials::new(
            user.clone(),
            password.expose().to_string(),
        ))),
        (None, None) => Ok(builder),
        _ => Err("email: username and password go together".to_string()),
    }
}

/// One address, refused with what was given so the bad one in a list is plain to see.
pub fn mailbox(address: &str) -> Result<Mailbox, String> {
    address
        .trim()
        .parse::<Mailbox>()
        .map_err(|e| format!("email: {:?} is not an address: {e}", address.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(tls: Option<&str>) -> RawEmail {
        RawEmail {
            host: "smtp.example.com".into(),
            port: None,
            tls: tls.map(str::to_owned),
            username: None,
            password: None,
            from: "lookout@example.com".into(),
            to: vec![],
            timeout: None,
        }
    }

    #[test]
    fn the_port_follows_the_tls_mode_unless_given() {
        let port = |tls| EmailConfig::try_from(raw(tls)).map(|c| c.port);
        assert_eq!(port(None), Ok(587));
        assert_eq!(port(Some("tls")), Ok(465));
        assert_eq!(port(Some("none")), Ok(25));
        let given = EmailConfig::try_from(RawEmail {
            port: Some(2525),
            ..raw(None)
        });
        assert_eq!(given.map(|c| c.port), Ok(2525));
    }

    #[test]
    fn bad_settings_are_named() {
        assert_eq!(
            EmailConfig::try_from(raw(Some("ssl"))).err().as_deref(),
            Some("`tls`: \"ssl\" is not one of starttls, tls, none")
        );
        let half = RawEmail {
            username: Some("u".into()),
            ..raw(None)
        };
        assert_eq!(
            EmailConfig::try_from(half).err().as_deref(),
            Some("give both `username` and `password`, or neither")
        );
        assert!(
            mailbox("not an address")
                .unwrap_err()
                .contains("\"not an address\"")
        );
    }
}

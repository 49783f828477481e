//! The relay settings that send mail to the tests' aiosmtpd, for every test file that mails.

use std::time::Duration;

use lookout_alerting::notify::{EmailConfig, SmtpTls};
use lookout_testkit::peers::Smtp;

pub fn smtp_config(smtp: &Smtp) -> EmailConfig {
    EmailConfig {
        host: "127.0.0.1".into(),
        port: smtp.port,
        tls: SmtpTls::None,
        username: None,
        password: None,
        from: "Lookout <lookout@example.com>".into(),
        to: vec!["oncall@example.com".into()],
        timeout: Duration::from_secs(5),
    }
}

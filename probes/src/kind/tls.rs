//! A TLS handshake as a step, and nothing after it: the certificate a service presents,
//! checked before its users see it expire or change. The chain is verified as HTTPS verifies
//! it (the check's `ca`, or the public roots); the leaf is then held to the step's bounds on
//! its days left, its issuer and its names, and the session to the oldest version accepted.

use std::time::Instant;

use futures_util::future::BoxFuture;
use lookout_conf::{Report, Spanned, one_line};
use lookout_model::probe::{Failure, FailureKind, Outcome, StepResult};
use rustls::ProtocolVersion;
use serde::Deserialize;
use x509_parser::extensions::GeneralName;

use super::tcp::split_address;
use super::{Probe, StepContext};
use crate::http::{self, IpFamily};

/// `tls:` in a step, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// `host:port`, or `[IPv6 address]:port`.
    pub address: Spanned<String>,
    /// The name sent (SNI) and verified; the address's host unless given.
    pub server_name: Option<Spanned<String>>,
    pub ip: Option<Spanned<IpFamily>>,
    /// Days the certificate must have left, at least.
    pub min_days_left: Option<Spanned<i64>>,
    /// A regex the issuer's name must match, as `CN=..., O=...`.
    pub issuer: Option<Spanned<String>>,
    /// Names the certificate must hold, each (among its subject alternative names).
    #[serde(default)]
    pub names: Vec<String>,
    /// The oldest protocol version accepted.
    pub min_version: Option<Spanned<TlsVersion>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum TlsVersion {
    #[serde(rename = "1.2")]
    V1_2,
    #[serde(rename = "1.3")]
    V1_3,
}

impl TlsVersion {
    fn of(v: ProtocolVersion) -> Option<TlsVersion> {
        match v {
            ProtocolVersion::TLSv1_2 => Some(TlsVersion::V1_2),
            ProtocolVersion::TLSv1_3 => Some(TlsVersion::V1_3),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            TlsVersion::V1_2 => "TLS 1.2",
            TlsVersion::V1_3 => "TLS 1.3",
        }
    }
}

#[derive(Debug)]
pub struct TlsStep {
    pub host: String,
    pub port: u16,
    pub server_name: String,
    pub ip: Option<IpFamily>,
    pub min_days_left: Option<i64>,
    pub issuer: Option<regex::Regex>,
    pub names: Vec<String>,
    pub min_version: Option<TlsVersion>,
}

impl RawTls {
    /// Validated once, at load; each error reported where it was written.
    pub fn build(self, at: &str, report: &mut Report) -> Option<TlsStep> {
        let address = split_address(&self.address.value)
            .map_err(|e| report(self.address.loc(), &format!("{at}.tls.address"), e))
            .ok();
        let issuer = match &self.issuer {
            None => Some(None),
            Some(i) => regex::Regex::new(&i.value)
                .map(Some)
                .map_err(|e| {
                    report(
                        i.loc(),
                        &format!("{at}.tls.issuer"),
                        format!("bad regex {:?}: {}", i.value, one_line(&e.to_string())),
                    )
                })
                .ok(),
        };
        if let Some(d) = &self.min_days_left
            && d.value < 0
        {
            report(
                d.loc(),
                &format!("{at}.tls.min_days_left"),
                format!("must be 0 or more, got {}", d.value),
            );
            return None;
        }
        let ((host, port), issuer) = (address?, issuer?);
        Some(TlsStep {
            server_name: self.server_name.map_or_else(|| host.clone(), |n| n.value),
            host,
            port,
            ip: self.ip.map(|i| i.value),
            min_days_left: self.min_days_left.map(|d| d.value),
            issuer,
            names: self.names,
            min_version: self.min_version.map(|v| v.value),
        })
    }
}

impl Probe for TlsStep {
    fn run<'a>(&'a self, ctx: StepContext<'a>) -> BoxFuture<'a, (StepResult, Outcome)> {
        Box::pin(async move {
            let started = Instant::now();
            let mut result = ctx.result();
            let outcome = self.handshake(&ctx, &mut result).await;
            ctx.finish(started, result, outcome)
        })
    }
}

impl TlsStep {
    async fn handshake(
        &self,
        ctx: &StepContext<'_>,
        result: &mut StepResult,
    ) -> Result<(), Failure> {
        let limits = ctx.limits;
        let tcp = http::connect_timed(&self.host, self.port, self.ip, limits, result).await?;
        let (stream, took, days) =
            http::open_tls(&self.server_name, tcp, &ctx.check.tls, limits).await?;
        result.phases.tls_us = http::us(took);
        result.cert_days_left = days;
        let session = stream.get_ref().1;
        let assertion = |m: String| http::fail(FailureKind::Assertion, m);
        if let Some(min) = self.min_version {
            let got = session.protocol_version();
            if got.and_then(TlsVersion::of).is_none_or(|v| v < min) {
                return Err(assertion(format!(
                    "the session is {}, older than min_version {}",
                    got.map_or_else(|| "of no known version".to_owned(), |v| format!("{v:?}")),
                    min.name()
                )));
            }
        }
        let leaf = session
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or_else(|| http::fail(FailureKind::Tls, "the server sent no certificate"))?;
        // The whole certificate is read only when an assertion needs more than its days left,
        // which the handshake already read.
        let parse = || {
            x509_parser::parse_x509_certificate(leaf.as_ref())
                .map(|(_, cert)| cert)
                .map_err(|e| {
                    http::fail(
                        FailureKind::Tls,
                        format!("the server's certificate could not be read: {e}"),
                    )
                })
        };
        if let Some(min) = self.min_days_left {
            match days {
                Some(left) if left >= min => {}
                left => {
                    return Err(assertion(format!(
                        "the certificate for {} expires in {} days ({}), fewer than min_days_left {min}",
                        self.server_name,
                        left.map_or_else(|| "?".to_owned(), |d| d.to_string()),
                        parse().map_or_else(
                            |_| "its notAfter unreadable".to_owned(),
                            |c| c.validity().not_after.to_string()
                        )
                    )));
                }
            }
        }
        if self.issuer.is_none() && self.names.is_empty() {
            return Ok(());
        }
        let cert = parse()?;
        if let Some(re) = &self.issuer {
            let issuer = cert.issuer().to_string();
            if !re.is_match(&issuer) {
                return Err(assertion(format!(
                    "the certificate's issuer {issuer:?} does not match {:?}",
                    re.as_str()
                )));
            }
        }
        if !self.names.is_empty() {
            let held = names_of(&cert);
            for want in &self.names {
                if !held.iter().any(|h| h.eq_ignore_ascii_case(want)) {
                    return Err(assertion(format!(
                        "the certificate does not name {want:?}: it names {held:?}"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The subject alternative names a certificate holds: DNS names as written, addresses as text.
fn names_of(cert: &x509_parser::certificate::X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some((*d).to_owned()),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes)
                    .ok()
                    .map(|b| std::net::Ipv4Addr::from(b).to_string()),
                16 => <[u8; 16]>::try_from(*bytes)
                    .ok()
                    .map(|b| std::net::Ipv6Addr::from(b).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

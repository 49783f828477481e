//! A TCP exchange as a step: connect (over IPv4 or IPv6 if the step asks), optionally a TLS
//! handshake, optionally send a line, and read the reply until it matches the step's regex.
//! Timed phase by phase like an HTTP step: DNS, connect, TLS, the first byte of the reply
//! (`ttfb`), the rest of it up to the match (`transfer`).

use std::time::Instant;

use futures_util::future::BoxFuture;
use lookout_conf::{Report, Spanned, one_line};
use lookout_model::probe::{Failure, FailureKind, Outcome, StepResult};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Probe, StepContext};
use crate::http::{self, IpFamily};

/// `tcp:` in a step, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTcp {
    /// `host:port`, or `[IPv6 address]:port`.
    pub address: Spanned<String>,
    /// A TLS handshake after connecting, verified against the check's `ca` (or the public
    /// roots), with the host as the server name.
    #[serde(default)]
    pub tls: bool,
    pub ip: Option<Spanned<IpFamily>>,
    /// Sent once connected, with a newline after it (as blackbox_exporter's `send` does).
    pub send: Option<Spanned<String>>,
    /// A regex the reply must match; the reply is read until it does.
    pub expect: Option<Spanned<String>>,
}

#[derive(Debug)]
pub struct TcpStep {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub ip: Option<IpFamily>,
    pub send: Option<Vec<u8>>,
    /// On bytes: a reply need not be UTF-8.
    pub expect: Option<regex::bytes::Regex>,
}

/// `host:port` split; the error says what is wrong with it.
pub fn split_address(text: &str) -> Result<(String, u16), String> {
    let shape = || format!("{text:?} is not an address: write `host:port` or `[::1]:port`");
    let (host, port) = text.rsplit_once(':').ok_or_else(shape)?;
    let host = if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or_else(shape)?;
        inner
            .parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("{text:?}: {inner:?} is not an IPv6 address"))?;
        inner
    } else if host.contains(':') {
        return Err(format!(
            "{text:?}: an IPv6 address goes in brackets, as `[{host}]:{port}`"
        ));
    } else {
        host
    };
    if host.is_empty() {
        return Err(shape());
    }
    let port: u32 = port
        .parse()
        .map_err(|_| format!("{text:?}: the port {port:?} is not a number"))?;
    match u16::try_from(port) {
        Ok(p) if p > 0 => Ok((host.to_owned(), p)),
        _ => Err(format!(
            "{text:?}: port {port} is out of range (1 to 65535)"
        )),
    }
}

impl RawTcp {
    /// Validated once, at load; each error reported where it was written.
    pub fn build(self, at: &str, report: &mut Report) -> Option<TcpStep> {
        let address = split_address(&self.address.value)
            .map_err(|e| report(self.address.loc(), &format!("{at}.tcp.address"), e))
            .ok();
        let expect = match &self.expect {
            None => Some(None),
            Some(e) => match regex::bytes::Regex::new(&e.value) {
                Ok(r) => Some(Some(r)),
                Err(err) => {
                    report(
                        e.loc(),
                        &format!("{at}.tcp.expect"),
                        format!("bad regex {:?}: {}", e.value, one_line(&err.to_string())),
                    );
                    None
                }
            },
        };
        let send = self.send.map(|s| {
            let mut line = s.value.into_bytes();
            line.push(b'\n');
            line
        });
        let ((host, port), expect) = (address?, expect?);
        Some(TcpStep {
            host,
            port,
            tls: self.tls,
            ip: self.ip.map(|i| i.value),
            send,
            expect,
        })
    }
}

impl Probe for TcpStep {
    fn run<'a>(&'a self, ctx: StepContext<'a>) -> BoxFuture<'a, (StepResult, Outcome)> {
        Box::pin(async move {
            let started = Instant::now();
            let mut result = ctx.result();
            let outcome = self.exchange(&ctx, &mut result).await;
            ctx.finish(started, result, outcome)
        })
    }
}

impl TcpStep {
    async fn exchange(
        &self,
        ctx: &StepContext<'_>,
        result: &mut StepResult,
    ) -> Result<(), Failure> {
        let limits = ctx.limits;
        let tcp = http::connect_timed(&self.host, self.port, self.ip, limits, result).await?;
        if self.tls {
            let (stream, took, days) =
                http::open_tls(&self.host, tcp, &ctx.check.tls, limits).await?;
            result.phases.tls_us = http::us(took);
            result.cert_days_left = days;
            self.converse(stream, ctx, result).await
        } else {
            self.converse(tcp, ctx, result).await
        }
    }

    async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut stream: S,
        ctx: &StepContext<'_>,
        result: &mut StepResult,
    ) -> Result<(), Failure> {
        let limits = ctx.limits;
        if let Some(line) = &self.send {
            http::phase("sending", limits, stream.write_all(line))
                .await?
                .map_err(|e| lost(e, "sending"))?;
        }
        let Some(expect) = &self.expect else {
            return Ok(());
        };
        let asked = Instant::now();
        let mut reply: Vec<u8> = Vec::new();
        let mut first_byte: Option<Instant> = None;
        let mut chunk = [0u8; 4096];
        loop {
            let n = http::phase("reading the reply", limits, stream.read(&mut chunk))
                .await
                .map_err(|f| with_reply(f, &reply))?
                .map_err(|e| lost(e, "reading the reply"))?;
            if n == 0 {
                return Err(http::fail(
                    if reply.is_empty() {
                        FailureKind::Refused
                    } else {
                        FailureKind::Assertion
                    },
                    if reply.is_empty() {
                        "the server closed the connection without replying".to_owned()
                    } else {
                        format!(
                            "the reply {} does not match {:?} (the server closed the connection)",
                            shown_reply(&reply),
                            expect.as_str()
                        )
                    },
                ));
            }
            let now = Instant::now();
            let first = *first_byte.get_or_insert(now);
            reply.extend_from_slice(&chunk[..n]);
            result.bytes = reply.len() as u64;
            if expect.is_match(&reply) {
                result.phases.ttfb_us = http::us(first - asked);
                result.phases.transfer_us = http::us(now - first);
                return Ok(());
            }
            if reply.len() > limits.max_body {
                return Err(http::fail(
                    FailureKind::BodyTooLarge,
                    format!(
                        "the reply passed {} bytes (max_body_bytes) without matching {:?}",
                        limits.max_body,
                        expect.as_str()
                    ),
                ));
            }
        }
    }
}

fn lost(e: std::io::Error, doing: &str) -> Failure {
    http::fail(
        FailureKind::Refused,
        format!("the connection failed while {doing}: {e}"),
    )
}

/// A timeout while reading says what had come by then.
fn with_reply(mut f: Failure, reply: &[u8]) -> Failure {
    f.message = if reply.is_empty() {
        format!("{}; nothing was received", f.message)
    } else {
        format!("{}; received so far: {}", f.message, shown_reply(reply))
    };
    f
}

fn shown_reply(reply: &[u8]) -> String {
    crate::assert::shown(&String::from_utf8_lossy(reply))
}

#[cfg(test)]
mod tests {
    use super::split_address;

    #[test]
    fn addresses_are_host_and_port_and_say_what_is_wrong() {
        assert_eq!(
            split_address("gateway.local:443"),
            Ok(("gateway.local".into(), 443))
        );
        assert_eq!(split_address("[::1]:25"), Ok(("::1".into(), 25)));
        for (text, said) in [
            ("gateway", "is not an address"),
            (":80", "is not an address"),
            ("host:70000", "port 70000 is out of range (1 to 65535)"),
            ("host:0", "port 0 is out of range"),
            ("host:http", "the port \"http\" is not a number"),
            ("::1:25", "an IPv6 address goes in brackets"),
            ("[nope]:25", "is not an IPv6 address"),
        ] {
            let e = split_address(text).unwrap_err();
            assert!(e.contains(said), "{text}: {e}");
        }
    }
}

//! A DNS query as a step: one question of a given type to a given server, over UDP or TCP,
//! with assertions on the reply's code, its answers and their TTLs. The answer time (the
//! query sent to the reply read) is the step's `dns` phase; over TCP the connection is its
//! `connect` phase.
//!
//! Messages are built and read by hickory-proto, the protocol layer of the Hickory DNS
//! resolver and server: a reply is parsed by the code a resolver trusts, not by ours. Its
//! client and resolver are not used because a probe must see what they hide (the reply's
//! id, its truncation bit, a server that answers garbage) and time the exchange itself.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use futures_util::future::BoxFuture;
use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use lookout_conf::{Report, Spanned, one_line};
use lookout_model::probe::{Failure, FailureKind, Outcome, StepResult};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

use super::tcp::split_address;
use super::{Probe, StepContext};
use crate::http::{self, Limits};

/// `dns:` in a step, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDns {
    /// The server asked: an IP address, with `:port` after it when not 53 (`[::1]:5353`).
    pub server: Spanned<String>,
    /// The name asked about.
    pub name: Spanned<String>,
    /// The record type asked for (A unless given).
    #[serde(rename = "type")]
    pub record_type: Option<Spanned<RecordKind>>,
    #[serde(default)]
    pub transport: Transport,
    /// Whether the server is asked to recurse (the RD bit); true unless given.
    pub recursion: Option<bool>,
    /// The reply's code (NOERROR unless given).
    pub rcode: Option<Spanned<Rcode>>,
    /// Values each of which must be among the answers.
    #[serde(default)]
    pub contains: Vec<Spanned<String>>,
    /// The answers, exactly (in any order).
    pub equals: Option<Spanned<Vec<String>>>,
    /// A regex every answer must match (and at least one answer there must be).
    pub matches: Option<Spanned<String>>,
    /// Seconds every answer's TTL must be at least...
    pub min_ttl: Option<Spanned<u32>>,
    /// ... and at most.
    pub max_ttl: Option<Spanned<u32>>,
}

/// The record types a step may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RecordKind {
    A,
    Aaaa,
    Cname,
    Mx,
    Txt,
    Srv,
    Ns,
}

impl RecordKind {
    fn wire(self) -> RecordType {
        match self {
            RecordKind::A => RecordType::A,
            RecordKind::Aaaa => RecordType::AAAA,
            RecordKind::Cname => RecordType::CNAME,
            RecordKind::Mx => RecordType::MX,
            RecordKind::Txt => RecordType::TXT,
            RecordKind::Srv => RecordType::SRV,
            RecordKind::Ns => RecordType::NS,
        }
    }

    /// Whether answers compare as written: names and addresses do not care for case.
    fn case_matters(self) -> bool {
        self == RecordKind::Txt
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
}

/// The reply codes a step may expect, by their usual mnemonics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Rcode {
    NoError,
    FormErr,
    ServFail,
    NxDomain,
    NotImp,
    Refused,
}

impl Rcode {
    fn wire(self) -> ResponseCode {
        match self {
            Rcode::NoError => ResponseCode::NoError,
            Rcode::FormErr => ResponseCode::FormErr,
            Rcode::ServFail => ResponseCode::ServFail,
            Rcode::NxDomain => ResponseCode::NXDomain,
            Rcode::NotImp => ResponseCode::NotImp,
            Rcode::Refused => ResponseCode::Refused,
        }
    }
}

#[derive(Debug)]
pub struct DnsStep {
    pub server: SocketAddr,
    pub name: Name,
    pub kind: RecordKind,
    pub transport: Transport,
    pub recursion: bool,
    pub rcode: Rcode,
    pub contains: Vec<String>,
    pub equals: Option<Vec<String>>,
    pub matches: Option<regex::Regex>,
    pub min_ttl: Option<u32>,
    pub max_ttl: Option<u32>,
}

/// `IP` or `IP:port` (`[IPv6]:port`); the error says what is wrong with it.
fn server_address(text: &str) -> Result<SocketAddr, String> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    let (host, port) = split_address(text)?;
    let ip = host.parse::<IpAddr>().map_err(|_| {
        format!("{text:?}: the server is an IP address (as in resolv.conf), not {host:?}")
    })?;
    Ok(SocketAddr::new(ip, port))
}

impl RawDns {
    /// Validated once, at load; each error reported where it was written.
    pub fn build(self, at: &str, report: &mut Report) -> Option<DnsStep> {
        let server = server_address(&self.server.value)
            .map_err(|e| report(self.server.loc(), &format!("{at}.dns.server"), e))
            .ok();
        let name = Name::from_ascii(&self.name.value)
            .map(|mut n| {
                // Asked as written, from the root: no search domains.
                n.set_fqdn(true);
                n
            })
            .map_err(|e| {
                report(
                    self.name.loc(),
                    &format!("{at}.dns.name"),
                    format!(
                        "{:?} is not a domain name: {}",
                        self.name.value,
                        // hickory ends some messages with a colon and nothing after it.
                        one_line(&e.to_string()).trim_end_matches([':', ' '])
                    ),
                )
            })
            .ok();
        let matches = match &self.matches {
            None => Some(None),
            Some(m) => regex::Regex::new(&m.value)
                .map(Some)
                .map_err(|e| {
                    report(
                        m.loc(),
                        &format!("{at}.dns.matches"),
                        format!("bad regex {:?}: {}", m.value, one_line(&e.to_string())),
                    )
                })
                .ok(),
        };
        if let (Some(min), Some(max)) = (&self.min_ttl, &self.max_ttl)
            && min.value > max.value
        {
            report(
                min.loc(),
                &format!("{at}.dns.min_ttl"),
                format!("min_ttl {} is above max_ttl {}", min.value, max.value),
            );
            return None;
        }
        let (server, name, matches) = (server?, name?, matches?);
        Some(DnsStep {
            server,
            name,
            kind: self.record_type.map_or(RecordKind::A, |t| t.value),
            transport: self.transport,
            recursion: self.recursion.unwrap_or(true),
            rcode: self.rcode.map_or(Rcode::NoError, |r| r.value),
            contains: self.contains.into_iter().map(|c| c.value).collect(),
            equals: self.equals.map(|e| e.value),
            matches,
            min_ttl: self.min_ttl.map(|t| t.value),
            max_ttl: self.max_ttl.map(|t| t.value),
        })
    }
}

impl Probe for DnsStep {
    fn run<'a>(&'a self, ctx: StepContext<'a>) -> BoxFuture<'a, (StepResult, Outcome)> {
        Box::pin(async move {
            let started = Instant::now();
            let mut result = ctx.result();
            let outcome = self.ask(ctx.limits, &mut result).await;
            ctx.finish(started, result, outcome)
        })
    }
}

/// The largest reply read over UDP: EDNS's usual buffer. Larger ones come truncated (TC).
const UDP_MAX: usize = 4096;

impl DnsStep {
    async fn ask(&self, limits: &Limits, result: &mut StepResult) -> Result<(), Failure> {
        // A random id (hickory's), so that a stray or forged datagram is not taken for the
        // reply.
        let mut query = Message::query();
        let id = query.metadata.id;
        query.metadata.recursion_desired = self.recursion;
        query.add_query(Query::query(self.name.clone(), self.kind.wire()));
        let wire = query.to_vec().map_err(|e| {
            http::fail(
                FailureKind::Protocol,
                format!("the query could not be written: {e}"),
            )
        })?;
        let reply = match self.transport {
            Transport::Udp => self.over_udp(&wire, limits, result).await?,
            Transport::Tcp => self.over_tcp(&wire, limits, result).await?,
        };
        result.bytes = reply.len() as u64;
        let reply = Message::from_vec(&reply).map_err(|e| {
            http::fail(
                FailureKind::Protocol,
                format!(
                    "the reply ({} bytes) is not a DNS message: {}",
                    reply.len(),
                    one_line(&e.to_string())
                ),
            )
        })?;
        self.judge(id, &reply)
    }

    async fn over_udp(
        &self,
        wire: &[u8],
        limits: &Limits,
        result: &mut StepResult,
    ) -> Result<Vec<u8>, Failure> {
        let local: SocketAddr = if self.server.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local)
            .await
            .map_err(|e| lost(e, "opening a UDP socket"))?;
        // Connected: datagrams from anyone but the server are dropped by the kernel, and an
        // ICMP "port unreachable" comes back as a refused read.
        socket
            .connect(self.server)
            .await
            .map_err(|e| lost(e, "addressing the server"))?;
        let asked = Instant::now();
        socket
            .send(wire)
            .await
            .map_err(|e| lost(e, "sending the query"))?;
        let mut buf = vec![0u8; UDP_MAX];
        let n = http::phase("waiting for the answer", limits, socket.recv(&mut buf))
            .await?
            .map_err(|e| lost(e, "waiting for the answer"))?;
        result.phases.dns_us = http::us(asked.elapsed());
        buf.truncate(n);
        Ok(buf)
    }

    async fn over_tcp(
        &self,
        wire: &[u8],
        limits: &Limits,
        result: &mut StepResult,
    ) -> Result<Vec<u8>, Failure> {
        let (mut tcp, connect) = http::open_tcp(self.server, limits).await?;
        result.phases.connect_us = http::us(connect);
        let len = u16::try_from(wire.len()).map_err(|_| {
            http::fail(
                FailureKind::Protocol,
                "the query is longer than TCP's 65535 bytes",
            )
        })?;
        let mut framed = Vec::with_capacity(wire.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(wire);
        let asked = Instant::now();
        http::phase("sending the query", limits, tcp.write_all(&framed))
            .await?
            .map_err(|e| lost(e, "sending the query"))?;
        let mut prefix = [0u8; 2];
        http::phase(
            "waiting for the answer",
            limits,
            tcp.read_exact(&mut prefix),
        )
        .await?
        .map_err(|e| cut(e, "before the reply's length"))?;
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        http::phase("reading the answer", limits, tcp.read_exact(&mut reply))
            .await?
            .map_err(|e| cut(e, &format!("within the {} bytes it announced", reply.len())))?;
        result.phases.dns_us = http::us(asked.elapsed());
        Ok(reply)
    }

    /// Whether the reply is to this query and says what the step expects.
    fn judge(&self, id: u16, reply: &Message) -> Result<(), Failure> {
        let meta = &reply.metadata;
        let protocol = |m: String| http::fail(FailureKind::Protocol, m);
        if meta.message_type != MessageType::Response {
            return Err(protocol("the server sent a query, not a reply".into()));
        }
        if meta.id != id {
            return Err(protocol(format!(
                "the reply's id {} is not the query's {id}",
                meta.id
            )));
        }
        if meta.truncation {
            return Err(protocol(
                "the reply is truncated (TC): it does not fit a datagram; ask with `transport: tcp`"
                    .into(),
            ));
        }
        let asked = self.kind.wire();
        let answers: Vec<(String, u32)> = reply
            .answers
            .iter()
            .filter(|r| r.record_type() == asked)
            .map(|r| (shown(&r.data.to_string()), r.ttl))
            .collect();
        let listed = || {
            let texts: Vec<&str> = answers.iter().map(|(t, _)| t.as_str()).collect();
            format!("{asked} answers {texts:?}")
        };
        let assertion = |m: String| http::fail(FailureKind::Assertion, m);
        let expected = self.rcode.wire();
        if meta.response_code != expected {
            return Err(assertion(format!(
                "the reply's code is {} ({}), not {} ({expected}), for {} {asked}",
                rcode_name(meta.response_code),
                meta.response_code,
                rcode_name(expected),
                self.name
            )));
        }
        let same = |a: &str, b: &str| {
            let b = shown(b);
            if self.kind.case_matters() {
                a == b
            } else {
                a.eq_ignore_ascii_case(&b)
            }
        };
        for want in &self.contains {
            if !answers.iter().any(|(a, _)| same(a, want)) {
                return Err(assertion(format!("{want:?} is not among the {}", listed())));
            }
        }
        if let Some(equals) = &self.equals {
            let all_there = equals
                .iter()
                .all(|w| answers.iter().any(|(a, _)| same(a, w)));
            let none_else = answers
                .iter()
                .all(|(a, _)| equals.iter().any(|w| same(a, w)));
            if !all_there || !none_else {
                return Err(assertion(format!(
                    "the {} are not exactly {equals:?}",
                    listed()
                )));
            }
        }
        if let Some(re) = &self.matches {
            if answers.is_empty() {
                return Err(assertion(format!(
                    "no {asked} answer to match {:?}",
                    re.as_str()
                )));
            }
            if let Some((a, _)) = answers.iter().find(|(a, _)| !re.is_match(a)) {
                return Err(assertion(format!(
                    "the answer {a:?} does not match {:?}",
                    re.as_str()
                )));
            }
        }
        for (a, ttl) in &answers {
            if let Some(min) = self.min_ttl
                && *ttl < min
            {
                return Err(assertion(format!(
                    "the answer {a:?} has a TTL of {ttl} s, below min_ttl {min}"
                )));
            }
            if let Some(max) = self.max_ttl
                && *ttl > max
            {
                return Err(assertion(format!(
                    "the answer {a:?} has a TTL of {ttl} s, above max_ttl {max}"
                )));
            }
        }
        Ok(())
    }
}

/// A record's data as compared and shown: names without the root's final dot.
fn shown(data: &str) -> String {
    data.strip_suffix('.').unwrap_or(data).to_owned()
}

fn rcode_name(code: ResponseCode) -> &'static str {
    match code {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        _ => "another code",
    }
}

fn lost(e: std::io::Error, doing: &str) -> Failure {
    let kind = if e.kind() == std::io::ErrorKind::ConnectionRefused {
        FailureKind::Refused
    } else {
        FailureKind::Connect
    };
    http::fail(kind, format!("{doing} failed: {e}"))
}

/// A TCP reply that ended early.
fn cut(e: std::io::Error, where_: &str) -> Failure {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        http::fail(
            FailureKind::Protocol,
            format!("the server closed the connection {where_}: the reply is truncated"),
        )
    } else {
        lost(e, "reading the answer")
    }
}

#[cfg(test)]
mod tests {
    use super::server_address;

    #[test]
    fn servers_are_addresses_with_port_53_unless_given() {
        assert_eq!(
            server_address("127.0.0.1"),
            Ok("127.0.0.1:53".parse().unwrap())
        );
        assert_eq!(server_address("::1"), Ok("[::1]:53".parse().unwrap()));
        assert_eq!(
            server_address("[::1]:5353"),
            Ok("[::1]:5353".parse().unwrap())
        );
        assert_eq!(
            server_address("10.0.0.2:5300"),
            Ok("10.0.0.2:5300".parse().unwrap())
        );
        for (text, said) in [
            ("ns.example:53", "the server is an IP address"),
            ("127.0.0.1:99999", "out of range"),
            ("resolver", "is not an address"),
        ] {
            let e = server_address(text).unwrap_err();
            assert!(e.contains(said), "{text}: {e}");
        }
    }
}

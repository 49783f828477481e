//! One HTTP exchange, timed phase by phase like a browser's waterfall: DNS, TCP connect, TLS
//! handshake, time to first byte, transfer. reqwest cannot split a request into these phases,
//! so the connection is built one layer down (tokio for DNS and TCP, rustls for TLS) and hyper
//! speaks HTTP/1.1 over it.

mod kernel_stamp;
pub mod timed_io;
pub mod tls;

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use lookout_model::probe::{Failure, FailureKind, Phases};
use reqwest::Url;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

pub const USER_AGENT: &str = concat!("lookout-probe/", env!("CARGO_PKG_VERSION"));

/// What to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

/// What came back, with how long each phase took.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub status: u16,
    pub headers: HeaderMap,
    /// The body as read (decompressed when the server gzipped it).
    pub body: Bytes,
    /// Bytes read off the wire.
    pub wire_bytes: u64,
    pub phases: Phases,
    pub cert_days_left: Option<i64>,
    pub reused: bool,
}

/// Limits that bound one exchange.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The journey's deadline; every phase must end before it.
    pub deadline: Instant,
    /// The journey's timeout, for messages.
    pub timeout: Duration,
    pub max_body: usize,
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

type Sender = SendRequest<Full<Bytes>>;
/// (scheme, host, port).
type Origin = (String, String, u16);
/// A kept connection: its sender, its socket stamps, its certificate's days left.
type Pooled = (Sender, timed_io::MarkBoard, Option<i64>);

/// Open connections kept between steps and runs, for checks that reuse connections.
#[derive(Default)]
pub struct Pool {
    /// The connection, its socket stamps, and its certificate's days left (kept so that a
    /// reused connection still answers `cert_days_left`).
    senders: HashMap<Origin, Pooled>,
}

pub(crate) fn fail(kind: FailureKind, message: impl Into<String>) -> Failure {
    Failure {
        kind,
        message: message.into(),
        step: None,
    }
}

pub(crate) fn us(d: Duration) -> u64 {
    d.as_micros() as u64
}

pub(crate) async fn phase<T>(
    name: &str,
    limits: &Limits,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, Failure> {
    let started = Instant::now();
    tokio::time::timeout_at(limits.deadline.into(), fut)
        .await
        .map_err(|_| {
            fail(
                FailureKind::Timeout,
                format!(
                    "timed out during {name} after {} ms (the journey's timeout is {})",
                    started.elapsed().as_millis(),
                    humantime::format_duration(limits.timeout)
                ),
            )
        })
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

struct Connected {
    sender: Sender,
    board: timed_io::MarkBoard,
    dns: Duration,
    connect: Duration,
    tls: Duration,
    cert_days_left: Option<i64>,
}

/// Which address family a step connects over: the first address the name resolves to (IPv4
/// first) unless the step asks for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    fn holds(self, addr: &SocketAddr) -> bool {
        match self {
            IpFamily::V4 => addr.is_ipv4(),
            IpFamily::V6 => addr.is_ipv6(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            IpFamily::V4 => "IPv4",
            IpFamily::V6 => "IPv6",
        }
    }
}

pub(crate) async fn resolve(
    host: &str,
    port: u16,
    family: Option<IpFamily>,
    limits: &Limits,
) -> Result<(SocketAddr, Duration), Failure> {
    let started = Instant::now();
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        let addr = SocketAddr::new(ip, port);
        if let Some(f) = family
            && !f.holds(&addr)
        {
            return Err(fail(
                FailureKind::Dns,
                format!("{host} is not an {} address", f.name()),
            ));
        }
        return Ok((addr, Duration::ZERO));
    }
    let addrs = phase(
        "DNS resolution",
        limits,
        tokio::net::lookup_host((host, port)),
    )
    .await?
    .map_err(|e| fail(FailureKind::Dns, format!("could not resolve {host}: {e}")))?;
    let addrs: Vec<SocketAddr> = addrs.collect();
    let addr = match family {
        Some(f) => addrs.iter().find(|a| f.holds(a)).copied().ok_or_else(|| {
            fail(
                FailureKind::Dns,
                format!("{host} resolved to no {} address", f.name()),
            )
        })?,
        None => addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or(addrs.first())
            .copied()
            .ok_or_else(|| fail(FailureKind::Dns, format!("{host} resolved to no address")))?,
    };
    Ok((addr, started.elapsed()))
}

/// `host:port` resolved and connected to, each phase written into `result` as it is timed.
pub(crate) async fn connect_timed(
    host: &str,
    port: u16,
    family: Option<IpFamily>,
    limits: &Limits,
    result: &mut lookout_model::probe::StepResult,
) -> Result<TcpStream, Failure> {
    let (addr, dns) = resolve(host, port, family, limits).await?;
    result.phases.dns_us = us(dns);
    let (tcp, connect) = open_tcp(addr, limits).await?;
    result.phases.connect_us = us(connect);
    Ok(tcp)
}

/// A TCP connection to `addr`, and how long it took.
pub(crate) async fn open_tcp(
    addr: SocketAddr,
    limits: &Limits,
) -> Result<(TcpStream, Duration), Failure> {
    let started = Instant::now();
    let tcp = phase("TCP connect", limits, TcpStream::connect(addr))
        .await?
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::ConnectionRefused {
                fail(
                    FailureKind::Refused,
                    format!("connection refused by {addr}"),
                )
            } else {
                fail(
                    FailureKind::Connect,
                    format!("could not connect to {addr}: {e}"),
                )
            }
        })?;
    let _ = tcp.set_nodelay(true);
    Ok((tcp, started.elapsed()))
}

/// A TLS session with `host` over `io`, how long the handshake took, and the days its
/// certificate has left.
pub(crate) async fn open_tls<T: AsyncRead + AsyncWrite + Unpin>(
    host: &str,
    io: T,
    tls: &Arc<ClientConfig>,
    limits: &Limits,
) -> Result<(tokio_rustls::client::TlsStream<T>, Duration, Option<i64>), Failure> {
    let started = Instant::now();
    let name = rustls::pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
        .map_err(|e| {
            fail(
                FailureKind::Tls,
                format!("{host} is not a valid TLS server name: {e}"),
            )
        })?;
    let stream = phase(
        "TLS handshake",
        limits,
        tokio_rustls::TlsConnector::from(tls.clone()).connect(name, io),
    )
    .await?
    .map_err(|e| {
        fail(
            FailureKind::Tls,
            format!("TLS handshake with {host} failed: {e}"),
        )
    })?;
    let days = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| tls::days_left(c, unix_now()));
    Ok((stream, started.elapsed(), days))
}

async fn connect(
    url: &Url,
    tls: &Arc<ClientConfig>,
    limits: &Limits,
) -> Result<Connected, Failure> {
    let host = url.host_str().ok_or_else(|| {
        fail(
            FailureKind::Connect,
            format!("{} has no host", url.scheme()),
        )
    })?;
    let port = url.port_or_known_default().unwrap_or(80);
    let (addr, dns) = resolve(host, port, None, limits).await?;
    let (tcp, connect) = open_tcp(addr, limits).await?;
    let board = timed_io::MarkBoard::default();
    let wire = if url.scheme() == "https" {
        timed_io::Wire::Tls
    } else {
        timed_io::Wire::Http
    };
    let tcp = timed_io::KernelStampedTcp::new(tcp, board.clone(), wire);
    let (io, tls_time, cert_days_left): (Box<dyn Io>, Duration, Option<i64>) =
        if url.scheme() == "https" {
            let (stream, took, days) = open_tls(host, tcp, tls, limits).await?;
            (Box::new(stream), took, days)
        } else {
            (Box::new(tcp), Duration::ZERO, None)
        };
    let (sender, conn) = phase(
        "HTTP handshake",
        limits,
        hyper::client::conn::http1::handshake(TokioIo::new(timed_io::TimedIo::new(
            io,
            board.clone(),
        ))),
    )
    .await?
    .map_err(|e| {
        fail(
            FailureKind::Protocol,
            format!("HTTP/1.1 handshake failed: {e}"),
        )
    })?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(Connected {
        sender,
        board,
        dns,
        connect,
        tls: tls_time,
        cert_days_left,
    })
}

fn key(url: &Url) -> (String, String, u16) {
    (
        url.scheme().to_owned(),
        url.host_str().unwrap_or_default().to_owned(),
        url.port_or_known_default().unwrap_or(0),
    )
}

fn describe_send_error(e: &hyper::Error) -> Failure {
    if e.is_parse() {
        fail(FailureKind::Protocol, format!("malformed response: {e}"))
    } else if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
        fail(
            FailureKind::Refused,
            "the server closed the connection before responding",
        )
    } else {
        fail(FailureKind::Protocol, format!("request failed: {e}"))
    }
}

/// Sees a response's body as it arrives, for a step that judges its pace (playback).
pub trait BodyWatch: Send {
    /// A new response's body begins (a redirect's target after the redirect's).
    fn begin(&mut self);
    /// `data` arrived at `at`; `false` when nothing more is wanted, which ends the read.
    fn chunk(&mut self, data: &[u8], at: Instant) -> bool;
}

/// Performs one request; a `pool` keeps the connection for the next request to the same origin.
/// A `watch` sees the body as it arrives and may end the read early: the body is then what
/// came up to there (at most `max_body` of it kept, not refused past it), and the connection
/// is not kept.
pub async fn exchange<'w>(
    out: &Outgoing,
    tls: &Arc<ClientConfig>,
    pool: Option<&mut Pool>,
    limits: &Limits,
    mut watch: Option<&mut (dyn BodyWatch + 'w)>,
) -> Result<Exchange, Failure> {
    let started = Instant::now();
    let origin = key(&out.url);
    let mut pool = pool;
    // An HTTP/1.1 connection serves one request at a time: take it out, put it back after.
    let reused = pool
        .as_deref_mut()
        .and_then(|p| p.senders.remove(&origin))
        .filter(|(s, _, _)| !s.is_closed() && s.is_ready());
    let was_reused = reused.is_some();
    let ((mut sender, board), dns, connect_time, tls_time, cert_days_left) = match reused {
        Some((s, b, days)) => ((s, b), Duration::ZERO, Duration::ZERO, Duration::ZERO, days),
        None => {
            let c = connect(&out.url, tls, limits).await?;
            (
                (c.sender, c.board),
                c.dns,
                c.connect,
                c.tls,
                c.cert_days_left,
            )
        }
    };
    // The request target is the path and query only: never the URL's user or password.
    let target = match out.url.query() {
        Some(q) => format!("{}?{q}", out.url.path()),
        None => out.url.path().to_owned(),
    };
    let mut request = Request::builder().method(out.method.clone()).uri(target);
    let host_header = match out.url.port() {
        Some(p) => format!("{}:{p}", out.url.host_str().unwrap_or_default()),
        None => out.url.host_str().unwrap_or_default().to_owned(),
    };
    request = request
        .header(hyper::header::HOST, host_header)
        .header(hyper::header::USER_AGENT, USER_AGENT);
    for (name, value) in &out.headers {
        request = request.header(name, value);
    }
    let request = request.body(Full::new(out.body.clone())).map_err(|e| {
        fail(
            FailureKind::Protocol,
            format!("cannot build the request: {e}"),
        )
    })?;
    phase("waiting for the connection", limits, sender.ready())
        .await?
        .map_err(|e| describe_send_error(&e))?;
    board.reset();
    let sent = Instant::now();
    let response = phase("time to first byte", limits, sender.send_request(request))
        .await?
        .map_err(|e| describe_send_error(&e))?;
    let head_at = Instant::now();
    // The socket's own stamps when there are any (there always are on a live connection).
    let marks = board.get();
    let ttfb = match (marks.wrote, marks.first_read) {
        (Some(w), Some(r)) if r >= w => r - w,
        _ => head_at - sent,
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut body = response.into_body();
    let mut raw = Vec::new();
    let mut wire_bytes = 0u64;
    let mut ended_early = false;
    if let Some(w) = watch.as_deref_mut() {
        w.begin();
    }
    loop {
        let frame = phase("transfer", limits, body.frame()).await?;
        match frame {
            None => break,
            Some(Err(e)) => {
                return Err(fail(
                    FailureKind::Protocol,
                    format!("the connection broke after {wire_bytes} body bytes: {e}"),
                ));
            }
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    wire_bytes += data.len() as u64;
                    if let Some(w) = watch.as_deref_mut() {
                        let more = w.chunk(data, Instant::now());
                        let room = limits.max_body.saturating_sub(raw.len());
                        raw.extend_from_slice(&data[..data.len().min(room)]);
                        if !more {
                            ended_early = true;
                            break;
                        }
                        continue;
                    }
                    if raw.len() + data.len() > limits.max_body {
                        return Err(fail(
                            FailureKind::BodyTooLarge,
                            format!(
                                "the body is larger than the {} bytes this check reads (max_body)",
                                limits.max_body
                            ),
                        ));
                    }
                    raw.extend_from_slice(data);
                }
            }
        }
    }
    let marks = board.get();
    let transfer = match (marks.first_read, marks.last_read) {
        (Some(first), Some(last)) if last >= first => last - first,
        _ => head_at.elapsed(),
    };
    // A body left unread would be the next request's response: the connection goes.
    if let Some(pool) = pool
        && !ended_early
    {
        pool.senders.insert(origin, (sender, board, cert_days_left));
    }
    let body = if watch.is_some() {
        // What a watched body is kept for is its first bytes, as sent.
        Bytes::from(raw)
    } else {
        decode(&headers, raw, limits.max_body)?
    };
    Ok(Exchange {
        status,
        headers,
        body,
        wire_bytes,
        phases: Phases {
            dns_us: us(dns),
            connect_us: us(connect_time),
            tls_us: us(tls_time),
            ttfb_us: us(ttfb),
            transfer_us: us(transfer),
            total_us: us(started.elapsed()),
        },
        cert_days_left,
        reused: was_reused,
    })
}

fn decode(headers: &HeaderMap, raw: Vec<u8>, max: usize) -> Result<Bytes, Failure> {
    let gzip = headers
        .get(hyper::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    if !gzip {
        return Ok(Bytes::from(raw));
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&raw[..])
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            fail(
                FailureKind::Protocol,
                format!("the gzip body does not decode: {e}"),
            )
        })?;
    if out.len() > max {
        return Err(fail(
            FailureKind::BodyTooLarge,
            format!("the body decompresses to more than {max} bytes (max_body)"),
        ));
    }
    Ok(Bytes::from(out))
}

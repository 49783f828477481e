//! `lookout bench exact-target`: the probe benchmark's default target, an HTTP server whose
//! delay is exact to a few microseconds, so that the error the benchmark reports is the
//! prober's and not the target's.
//!
//! The platform's own latency fault runs on tokio: its timer wakes a parked worker, which under
//! a thousand probes a second is up to 0.4 ms late at p99, and that lateness would be charged
//! to both probers. Here a thread serves each request: it sleeps to within 200 µs of the
//! deadline (counted from the moment the request head is read, as a handler would) and spins
//! the rest, then answers and closes.
//!
//! The same delay is served to the other probe kinds it is compared on: a TCP line server
//! (`PING` answered `PONG`), a DNS server over UDP (every question answered `A 127.0.0.1`), a
//! TLS server (the handshake begun the delay after the connection is accepted, with the demo
//! platform's certificate), a WebSocket server (`101` the delay after the upgrade request) and
//! an audio server (a WAV file's first byte the delay after the request, then paced exactly).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// The delay before each response.
    #[arg(long, value_parser = humantime::parse_duration)]
    delay: Duration,
    /// Requests served at once (threads).
    #[arg(long, default_value_t = 512)]
    threads: usize,
}

/// Thread wake-ups come late by tens of microseconds; the last stretch is spun.
const SPIN: Duration = Duration::from_micros(200);

/// Reads a request head into `head` (no delay on the socket from here on): its length, or
/// `None` when the client closed first or the head does not fit.
fn read_head(stream: &mut TcpStream, head: &mut [u8]) -> std::io::Result<Option<usize>> {
    stream.set_nodelay(true)?;
    let mut len = 0;
    while !head[..len].windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut head[len..])?;
        if n == 0 || len + n == head.len() {
            return Ok(None);
        }
        len += n;
    }
    Ok(Some(len))
}

fn serve_one(mut stream: TcpStream, delay: Duration) -> std::io::Result<()> {
    let mut head = [0u8; 8192];
    if read_head(&mut stream, &mut head)?.is_none() {
        return Ok(());
    }
    wait_exactly(Instant::now() + delay);
    stream.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n",
    )
}

pub(crate) fn wait_exactly(deadline: Instant) {
    loop {
        let now = Instant::now();
        match deadline.checked_duration_since(now) {
            Some(left) if left > SPIN => std::thread::park_timeout(left - SPIN),
            Some(_) => std::hint::spin_loop(),
            None => break,
        }
    }
}

/// A line in, `PONG` out after the delay (counted from the line read), then closed.
fn serve_line(mut stream: TcpStream, delay: Duration) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut line = [0u8; 256];
    let mut len = 0;
    while !line[..len].contains(&b'\n') {
        let n = stream.read(&mut line[len..])?;
        if n == 0 || len + n == line.len() {
            return Ok(());
        }
        len += n;
    }
    wait_exactly(Instant::now() + delay);
    stream.write_all(b"PONG\n")
}

/// Each question answered after the delay (counted from the datagram read) with one A record,
/// 127.0.0.1, TTL 60; what is not a question is dropped.
fn serve_dns(socket: &UdpSocket, delay: Duration) -> std::io::Result<()> {
    use hickory_proto::op::{Message, MessageType};
    use hickory_proto::rr::{RData, Record, rdata::A};
    let mut buf = [0u8; 1500];
    let (n, from) = socket.recv_from(&mut buf)?;
    let asked = Instant::now();
    let Ok(query) = Message::from_vec(&buf[..n]) else {
        return Ok(());
    };
    if query.metadata.message_type != MessageType::Query {
        return Ok(());
    }
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    for q in &query.queries {
        reply.add_query(q.clone());
        reply.add_answer(Record::from_rdata(
            q.name().clone(),
            60,
            RData::A(A::new(127, 0, 0, 1)),
        ));
    }
    let Ok(wire) = reply.to_vec() else {
        return Ok(());
    };
    wait_exactly(asked + delay);
    socket.send_to(&wire, from).map(|_| ())
}

/// The demo platform's certificate and key, as a TLS server's.
fn tls_config() -> anyhow::Result<Arc<rustls::ServerConfig>> {
    use lookout_services::gateway::{DEMO_CERT, DEMO_KEY};
    let chain = rustls_pemfile::certs(&mut DEMO_CERT.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    let key = rustls_pemfile::private_key(&mut DEMO_KEY.as_bytes())?
        .ok_or_else(|| anyhow::anyhow!("the demo key holds no key"))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// The handshake begun the delay after the connection is accepted; then whatever the client
/// sends is read until it closes.
fn serve_tls(
    stream: TcpStream,
    config: &Arc<rustls::ServerConfig>,
    delay: Duration,
) -> std::io::Result<()> {
    let accepted = Instant::now();
    stream.set_nodelay(true)?;
    let conn = rustls::ServerConnection::new(config.clone()).map_err(std::io::Error::other)?;
    wait_exactly(accepted + delay);
    let mut tls = rustls::StreamOwned::new(conn, stream);
    let mut sink = [0u8; 1024];
    while tls.read(&mut sink)? > 0 {}
    Ok(())
}

/// `101 Switching Protocols` the delay after the upgrade request is read; the client's close
/// is answered with a close.
fn serve_ws(mut stream: TcpStream, delay: Duration) -> std::io::Result<()> {
    let mut head = [0u8; 8192];
    let Some(len) = read_head(&mut stream, &mut head)? else {
        return Ok(());
    };
    let asked = Instant::now();
    let text = String::from_utf8_lossy(&head[..len]);
    let Some(key) = text.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim().to_owned())
    }) else {
        return stream.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let reply = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {accept}\r\n\r\n"
    );
    wait_exactly(asked + delay);
    stream.write_all(reply.as_bytes())?;
    let mut frame = [0u8; 256];
    if stream.read(&mut frame)? > 0 {
        // A close frame, no payload, unmasked (a server's).
        stream.write_all(&[0x88, 0x00])?;
    }
    Ok(())
}

/// The audio served to playback steps: the media service's format (mono 16-bit PCM at 22,050
/// Hz), 44,100 bytes a second, sent at twice that.
const AUDIO_BYTES_PER_SECOND: u64 = 44_100;
const AUDIO_PACE: f64 = 2.0;
const AUDIO_SECONDS: u64 = 3;

/// A WAV file's head, the delay after the request, then its samples paced at exactly
/// `AUDIO_PACE` times real time (a slice of a hundredth of a second each), until the client
/// has had enough and goes.
fn serve_audio(mut stream: TcpStream, delay: Duration) -> std::io::Result<()> {
    let mut head = [0u8; 8192];
    if read_head(&mut stream, &mut head)?.is_none() {
        return Ok(());
    }
    let asked = Instant::now();
    let samples = AUDIO_BYTES_PER_SECOND * AUDIO_SECONDS;
    let data_len = u32::try_from(samples).unwrap_or(u32::MAX);
    let mut wav = Vec::with_capacity(44);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt \x10\0\0\0\x01\0\x01\0");
    wav.extend_from_slice(&22_050u32.to_le_bytes());
    wav.extend_from_slice(&(AUDIO_BYTES_PER_SECOND as u32).to_le_bytes());
    wav.extend_from_slice(b"\x02\0\x10\0data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: audio/wav\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        wav.len() as u64 + samples
    );
    let slice = vec![0u8; (AUDIO_BYTES_PER_SECOND as f64 * AUDIO_PACE / 100.0) as usize];
    wait_exactly(asked + delay);
    let started = Instant::now();
    stream.write_all(response.as_bytes())?;
    stream.write_all(&wav)?;
    let mut sent = 0u64;
    while sent < samples {
        // Each slice leaves when the audio before it, at the pace, is due.
        let due = sent as f64 / (AUDIO_BYTES_PER_SECOND as f64 * AUDIO_PACE);
        wait_exactly(started + Duration::from_secs_f64(due));
        let n = slice.len().min((samples - sent) as usize);
        stream.write_all(&slice[..n])?;
        sent += n as u64;
    }
    Ok(())
}

/// `threads` threads each taking the next connection of `listener` and serving it with `serve`
/// (a client that goes away mid-exchange is its own business).
fn serve_on(
    listener: &Arc<TcpListener>,
    name: &str,
    threads: usize,
    serve: impl Fn(TcpStream) -> std::io::Result<()> + Clone + Send + 'static,
) -> std::io::Result<()> {
    for i in 0..threads {
        let (listener, serve) = (listener.clone(), serve.clone());
        std::thread::Builder::new()
            .name(format!("exact-{name}-{i}"))
            .spawn(move || {
                loop {
                    if let Ok((stream, _)) = listener.accept() {
                        let _ = serve(stream);
                    }
                }
            })?;
    }
    Ok(())
}

/// Serves until killed; prints `exact-target http://ADDR tcp=ADDR dns=ADDR tls=ADDR ws=ADDR
/// play=ADDR` once listening.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let listener = Arc::new(TcpListener::bind("127.0.0.1:0")?);
    let lines = Arc::new(TcpListener::bind("127.0.0.1:0")?);
    let dns = Arc::new(UdpSocket::bind("127.0.0.1:0")?);
    let tls = Arc::new(TcpListener::bind("127.0.0.1:0")?);
    let ws = Arc::new(TcpListener::bind("127.0.0.1:0")?);
    let audio = Arc::new(TcpListener::bind("127.0.0.1:0")?);
    let config = tls_config()?;
    println!(
        "exact-target http://{} tcp={} dns={} tls={} ws={} play={}",
        listener.local_addr()?,
        lines.local_addr()?,
        dns.local_addr()?,
        tls.local_addr()?,
        ws.local_addr()?,
        audio.local_addr()?
    );
    // A quarter of the threads each for the line, DNS, TLS, WebSocket and audio servers: their
    // runs are shorter than the HTTP comparison's.
    let each = (args.threads / 4).max(1);
    let delay = args.delay;
    serve_on(&lines, "tcp", each, move |s| serve_line(s, delay))?;
    serve_on(&ws, "ws", each, move |s| serve_ws(s, delay))?;
    serve_on(&audio, "audio", each, move |s| serve_audio(s, delay))?;
    serve_on(&tls, "tls", each, move |s| serve_tls(s, &config, delay))?;
    for i in 0..each {
        let dns = dns.clone();
        std::thread::Builder::new()
            .name(format!("exact-dns-{i}"))
            .spawn(move || {
                loop {
                    let _ = serve_dns(&dns, delay);
                }
            })?;
    }
    let mut threads = Vec::with_capacity(args.threads);
    for i in 0..args.threads {
        let (listener, delay) = (listener.clone(), args.delay);
        threads.push(
            std::thread::Builder::new()
                .name(format!("exact-{i}"))
                .spawn(move || {
                    loop {
                        if let Ok((stream, _)) = listener.accept() {
                            // A client that goes away mid-request is its own business.
                            let _ = serve_one(stream, delay);
                        }
                    }
                })?,
        );
    }
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

//! The time to first byte is the kernel's: when the probe's runtime is busy as the response
//! arrives, the measured TTFB is still the server's delay, not the delay plus the time the
//! runtime took to get round to reading. Over plain HTTP, and over TLS 1.3 with the session
//! tickets sent between the request and the response, where the first bytes read after the
//! request are a ticket and must not be taken for the response.
//!
//! The bounds asserted hold whatever the machine's load: the server stamps, on its own thread,
//! when it had read the request and when its answer had left, and the probe's request went out
//! after the test started and before the server read it. Only the setup (the runtime blocked
//! across the answer's arrival) depends on scheduling; an attempt where it did not happen is
//! made again.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Method;
use lookout_probes::http::{Limits, Outgoing, exchange};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::sync::oneshot;

/// The server's delay before answering.
const DELAY: Duration = Duration::from_millis(30);
/// How long before the answer the probe's runtime starts being blocked.
const LEAD: Duration = Duration::from_millis(10);
/// How long it stays blocked: well past the answer.
const BLOCK: Duration = Duration::from_millis(40);
const ATTEMPTS: usize = 8;

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n";

/// What the server saw, on its own clock readings.
struct Served {
    /// The request's head was in.
    read_at: Instant,
    /// About to write the answer.
    writing_at: Instant,
    /// The answer had left.
    wrote_at: Instant,
}

/// Waits on this thread until `deadline`, to within microseconds: parks, then spins the rest.
fn wait_until(deadline: Instant) {
    const SPIN: Duration = Duration::from_micros(200);
    loop {
        match deadline.checked_duration_since(Instant::now()) {
            Some(left) if left > SPIN => std::thread::park_timeout(left - SPIN),
            Some(_) => std::hint::spin_loop(),
            None => return,
        }
    }
}

/// Once the request is in: tells the probe's runtime to block, `LEAD` before the answer is due
/// `DELAY` after `read_at`, then answers through `write`.
fn answer_after_delay(
    read_at: Instant,
    block: oneshot::Sender<()>,
    write: impl FnOnce() -> io::Result<()>,
) -> io::Result<Served> {
    wait_until(read_at + DELAY - LEAD);
    let _ = block.send(());
    wait_until(read_at + DELAY);
    let writing_at = Instant::now();
    write()?;
    Ok(Served {
        read_at,
        writing_at,
        wrote_at: Instant::now(),
    })
}

fn head_complete(head: &[u8]) -> bool {
    head.windows(4).any(|w| w == b"\r\n\r\n")
}

fn serve_plain(mut tcp: TcpStream, block: oneshot::Sender<()>) -> io::Result<Served> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head_complete(&head) {
        let n = tcp.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let read_at = Instant::now();
    answer_after_delay(read_at, block, || tcp.write_all(RESPONSE))
}

/// TLS 1.3 by hand, to choose when the session tickets leave: rustls queues them once the
/// handshake is done, and they are held back until the request is in, so that they reach the
/// probe after its request and before the answer.
fn serve_tls(
    config: Arc<rustls::ServerConfig>,
    mut tcp: TcpStream,
    block: oneshot::Sender<()>,
) -> io::Result<Served> {
    let mut conn = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
    // Not `complete_io`: it would send the tickets as soon as the handshake is done.
    while conn.is_handshaking() {
        while conn.wants_write() {
            conn.write_tls(&mut tcp)?;
        }
        if conn.read_tls(&mut tcp)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        conn.process_new_packets().map_err(io::Error::other)?;
    }
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head_complete(&head) {
        match conn.reader().read(&mut chunk) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if conn.read_tls(&mut tcp)? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                conn.process_new_packets().map_err(io::Error::other)?;
            }
            Err(e) => return Err(e),
        }
    }
    let read_at = Instant::now();
    assert_eq!(
        conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert!(
        conn.wants_write(),
        "the session tickets should still be queued"
    );
    while conn.wants_write() {
        conn.write_tls(&mut tcp)?;
    }
    answer_after_delay(read_at, block, || {
        conn.writer().write_all(RESPONSE)?;
        while conn.wants_write() {
            conn.write_tls(&mut tcp)?;
        }
        Ok(())
    })
}

type Serve = Box<dyn FnOnce(TcpStream, oneshot::Sender<()>) -> io::Result<Served> + Send>;

/// One probe of a server answering after `DELAY` on a thread of its own, with this runtime
/// blocked across the answer's arrival. `None` when scheduling kept the block from covering
/// the arrival.
async fn attempt(
    scheme: &str,
    tls: &Arc<rustls::ClientConfig>,
    serve: Serve,
) -> Option<(Duration, Served, Instant, Instant)> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (block_tx, block_rx) = oneshot::channel();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept()?;
        tcp.set_nodelay(true)?;
        serve(tcp, block_tx)
    });
    // The probe's connection is served by this current_thread runtime, so while this task
    // blocks the thread nothing reads the answer.
    let blocker = tokio::spawn(async move {
        block_rx.await.ok()?;
        let started = Instant::now();
        #[allow(clippy::disallowed_methods)] // blocking the runtime is the point
        std::thread::sleep(BLOCK);
        Some((started, Instant::now()))
    });

    let out = Outgoing {
        method: Method::GET,
        url: format!("{scheme}://localhost:{port}/").parse().unwrap(),
        headers: vec![],
        body: Bytes::new(),
    };
    let limits = Limits {
        deadline: Instant::now() + Duration::from_secs(10),
        timeout: Duration::from_secs(10),
        max_body: 1 << 20,
    };
    let started = Instant::now();
    let ex = exchange(&out, tls, None, &limits, None).await.unwrap();
    assert_eq!(ex.status, 200);
    let served = server.join().unwrap().unwrap();
    let (blocked_from, blocked_to) = blocker.await.unwrap()?;
    let covered = blocked_from < served.writing_at && blocked_to > served.wrote_at + LEAD;
    covered.then(|| {
        let ttfb = Duration::from_micros(ex.phases.ttfb_us);
        (ttfb, served, started, blocked_to)
    })
}

async fn ttfb_skips_a_blocked_runtime(
    scheme: &str,
    tls: Arc<rustls::ClientConfig>,
    serve: impl Fn() -> Serve,
) {
    for _ in 0..ATTEMPTS {
        let Some((ttfb, s, started, blocked_to)) = attempt(scheme, &tls, serve()).await else {
            continue;
        };
        // The request left after `started` and before the server read it; the answer arrived
        // while the server was writing it. Microsecond stamps: 1 µs of rounding.
        let at_least = s.writing_at - s.read_at;
        let at_most = s.wrote_at - started + Duration::from_micros(1);
        let free = blocked_to - s.read_at;
        assert!(
            at_least <= ttfb + Duration::from_micros(1) && ttfb <= at_most,
            "{scheme}: TTFB {ttfb:?}, expected between the server's delay {at_least:?} and {at_most:?} \
             (the runtime was free to read only {free:?} after the server read the request)"
        );
        return;
    }
    panic!("in {ATTEMPTS} attempts the runtime was never blocked across the answer's arrival");
}

#[tokio::test(flavor = "current_thread")]
async fn http_ttfb_is_the_kernels_receive_time_not_the_blocked_runtimes() {
    ttfb_skips_a_blocked_runtime("http", lookout_probes::http::tls::public_roots(), || {
        Box::new(serve_plain)
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn tls_ttfb_skips_the_session_tickets_and_the_blocked_runtime() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let client =
        lookout_probes::http::tls::from_ca_pem("test", cert.cert.pem().as_bytes()).unwrap();
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(cert.cert.der().to_vec())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der())),
    )
    .unwrap();
    let server = Arc::new(server);
    ttfb_skips_a_blocked_runtime("https", client, || {
        let config = server.clone();
        Box::new(move |tcp, block| serve_tls(config, tcp, block))
    })
    .await;
}

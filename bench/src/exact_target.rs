//! `lookout bench exact-target`: the probe benchmark's default target, an HTTP server whose
//! delay is exact to a few microseconds, so that the error the benchmark reports is the
//! prober's and not the target's.
//!
//! The platform's own latency fault runs on tokio: its timer wakes a parked worker, which under
//! a thousand probes a second is up to 0.4 ms late at p99, and that lateness would be charged
//! to both probers. Here a thread serves each request: it sleeps to within 200 µs of the
//! deadline (counted from the moment the request head is read, as a handler would) and spins
//! the rest, then answers and closes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
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

fn serve_one(mut stream: TcpStream, delay: Duration) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut head = [0u8; 8192];
    let mut len = 0;
    loop {
        let n = stream.read(&mut head[len..])?;
        if n == 0 {
            return Ok(());
        }
        len += n;
        if head[..len].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
        if len == head.len() {
            return Ok(());
        }
    }
    let deadline = Instant::now() + delay;
    loop {
        let now = Instant::now();
        match deadline.checked_duration_since(now) {
            Some(left) if left > SPIN => std::thread::park_timeout(left - SPIN),
            Some(_) => std::hint::spin_loop(),
            None => break,
        }
    }
    stream.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n",
    )
}

/// Serves until killed; prints `exact-target http://ADDR` once listening.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let listener = Arc::new(TcpListener::bind("127.0.0.1:0")?);
    println!("exact-target http://{}", listener.local_addr()?);
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

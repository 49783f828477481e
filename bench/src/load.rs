//! A closed-loop HTTP load generator: `concurrency` clients, each on its own keep-alive
//! connection, each sending its next request as soon as the last one is answered. Hyper's
//! client connection is used directly so that the generator's own cost stays small.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Makes the request path for the n-th request of a client.
pub type PathFn = Arc<dyn Fn(u64) -> String + Send + Sync>;

pub struct LoadSpec {
    pub addr: SocketAddr,
    pub headers: Vec<(&'static str, String)>,
    pub path: PathFn,
    pub concurrency: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

pub struct LoadResult {
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub bytes: u64,
    /// Microseconds.
    pub latency: Histogram<u64>,
}

impl LoadResult {
    /// Successful requests per second; failures are reported apart, never counted as work.
    pub fn rate(&self) -> f64 {
        (self.requests - self.errors) as f64 / self.elapsed.as_secs_f64()
    }

    pub fn ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }
}

struct ClientResult {
    requests: u64,
    errors: u64,
    bytes: u64,
    latency: Histogram<u64>,
}

async fn client(
    spec: Arc<LoadSpec>,
    id: u64,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<ClientResult> {
    let mut result = ClientResult {
        requests: 0,
        errors: 0,
        bytes: 0,
        latency: Histogram::new_with_bounds(1, 60_000_000, 3)?,
    };
    let mut n = id * 1_000_003;
    'connect: while !stop.load(Ordering::Relaxed) {
        let stream = TcpStream::connect(spec.addr)
            .await
            .context("load generator could not connect")?;
        stream.set_nodelay(true)?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let mut req = Request::get((spec.path)(n));
            for (k, v) in &spec.headers {
                req = req.header(*k, v);
            }
            let req = req
                .header("host", spec.addr.to_string())
                .body(Empty::<Bytes>::new())?;
            let started = Instant::now();
            let outcome = async {
                let response = sender.send_request(req).await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                Ok::<_, hyper::Error>((status, body.len()))
            }
            .await;
            let took = started.elapsed();
            if !measuring.load(Ordering::Relaxed) {
                if outcome.is_err() {
                    continue 'connect;
                }
                continue;
            }
            result.requests += 1;
            match outcome {
                Ok((status, len)) if status.is_success() => {
                    result.bytes += len as u64;
                    let _ = result.latency.record(took.as_micros() as u64);
                }
                Ok(_) => result.errors += 1,
                Err(_) => {
                    result.errors += 1;
                    continue 'connect;
                }
            }
        }
    }
    Ok(result)
}

pub async fn run(spec: LoadSpec) -> anyhow::Result<LoadResult> {
    let spec = Arc::new(spec);
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..spec.concurrency as u64)
        .map(|i| tokio::spawn(client(spec.clone(), i, measuring.clone(), stop.clone())))
        .collect();
    tokio::time::sleep(spec.warmup).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(spec.duration).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut total = LoadResult {
        requests: 0,
        errors: 0,
        elapsed,
        bytes: 0,
        latency: Histogram::new_with_bounds(1, 60_000_000, 3)?,
    };
    for t in tasks {
        let r = t.await??;
        total.requests += r.requests;
        total.errors += r.errors;
        total.bytes += r.bytes;
        total.latency.add(&r.latency)?;
    }
    Ok(total)
}

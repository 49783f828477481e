//! `lookout bench platform`: throughput and latency of the gateway's artist view (a fan-out to
//! catalogue and mixes), driven by closed-loop clients against the platform as `lookout up`
//! runs it. The reference is the same load generator against a bare HTTP server returning a
//! byte-identical copy of a view: what this machine's HTTP stack allows with no work behind it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rand::Rng;

use super::load::{self, LoadResult, LoadSpec};
use lookout::config::Config;
use lookout::supervisor::Platform;

#[derive(clap::Args)]
pub struct Args {
    /// Concurrent clients, each with its own keep-alive connection.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// How long to measure.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Load before measuring starts (connections, caches, JIT-free but still warm).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Ask for identity bodies instead of gzip.
    #[arg(long)]
    no_gzip: bool,
}

const TARGET_RATE: f64 = 3000.0;
const TARGET_P99_MS: f64 = 25.0;

async fn fetch(
    addr: SocketAddr,
    path: &str,
    headers: &[(&'static str, String)],
) -> anyhow::Result<(u16, Vec<(String, String)>, Bytes)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut req = hyper::Request::get(path).header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let response = sender
        .send_request(req.body(Empty::<Bytes>::new())?)
        .await?;
    let status = response.status().as_u16();
    let kept: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "content-type" | "content-encoding" | "cache-control" | "etag" | "vary"
            )
        })
        .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, kept, body))
}

/// Serves `body` with `headers` on its own runtime threads, as a separate server would.
fn reference_server(
    headers: Vec<(String, String)>,
    body: Bytes,
) -> anyhow::Result<(SocketAddr, tokio::sync::oneshot::Sender<()>)> {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                return;
            };
            let app = Router::new().route(
                "/{*path}",
                get(move || {
                    let (headers, body) = (headers.clone(), body.clone());
                    async move {
                        let mut response =
                            axum::response::Response::new(axum::body::Body::from(body));
                        for (k, v) in headers {
                            if let (Ok(k), Ok(v)) = (
                                axum::http::HeaderName::try_from(k),
                                axum::http::HeaderValue::try_from(v),
                            ) {
                                response.headers_mut().insert(k, v);
                            }
                        }
                        response
                    }
                }),
            );
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .await;
        });
    });
    Ok((addr, stop_tx))
}

fn row(name: &str, r: &LoadResult) {
    println!(
        "{name:<40} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>8}",
        r.rate(),
        r.ms(0.50),
        r.ms(0.99),
        r.latency.max() as f64 / 1000.0,
        r.errors
    );
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut config = Config::builtin()?;
    config.log.level = "warn".into();
    // Free ports, so the benchmark can run beside a `lookout up`.
    config.platform.gateway.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.platform.gateway.admin_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let api_key = config
        .platform
        .gateway
        .settings
        .api_keys
        .first()
        .context("the built-in config has no API key")?
        .expose()
        .to_owned();
    let artists = config.platform.artists;
    println!("lookout bench platform: starting the platform as `lookout up` does ...");
    let mut platform = Platform::start(&config).await?;
    let result = measure(&platform, &args, &api_key, artists).await;
    platform.stop().await;
    result
}

async fn measure(
    platform: &Platform,
    args: &Args,
    api_key: &str,
    artists: u32,
) -> anyhow::Result<()> {
    let gateway = platform.gateway().context("no gateway started")?.addr;
    let mut headers = vec![("x-api-key", api_key.to_owned())];
    if !args.no_gzip {
        headers.push(("accept-encoding", "gzip".to_owned()));
    }
    let (status, sample_headers, sample) = fetch(gateway, "/1.x/artists/1/view", &headers).await?;
    anyhow::ensure!(
        status == 200,
        "the artist view answered {status}; is the platform healthy?"
    );
    let (_, _, plain) = fetch(gateway, "/1.x/artists/1/view", &headers[..1]).await?;
    println!(
        "artist view: {} bytes of JSON ({} bytes on the wire{}); {} clients, {} measured after {} warm-up",
        plain.len(),
        sample.len(),
        if args.no_gzip { "" } else { ", gzip" },
        args.concurrency,
        humantime::format_duration(args.duration),
        humantime::format_duration(args.warmup),
    );
    let view_path: load::PathFn = Arc::new(move |_| {
        format!(
            "/1.x/artists/{}/view",
            rand::rng().random_range(1..=artists)
        )
    });
    let platform_result = load::run(LoadSpec {
        addr: gateway,
        headers: headers.clone(),
        path: view_path,
        concurrency: args.concurrency,
        warmup: args.warmup,
        duration: args.duration,
    })
    .await?;
    let (reference_addr, stop_reference) = reference_server(sample_headers, sample)?;
    let reference = load::run(LoadSpec {
        addr: reference_addr,
        headers,
        path: Arc::new(|_| "/static/view".to_owned()),
        concurrency: args.concurrency,
        warmup: args.warmup,
        duration: args.duration,
    })
    .await?;
    let _ = stop_reference.send(());

    println!();
    println!(
        "{:<40} {:>10} {:>8} {:>8} {:>8} {:>8}",
        "", "req/s", "p50 ms", "p99 ms", "max ms", "errors"
    );
    row("gateway: GET /1.x/artists/{id}/view", &platform_result);
    row("reference: static copy of one view", &reference);
    println!();
    println!(
        "gateway rate as a share of the reference: {:.1} %",
        100.0 * platform_result.rate() / reference.rate().max(1.0)
    );
    let met = platform_result.rate() >= TARGET_RATE
        && platform_result.ms(0.99) < TARGET_P99_MS
        && platform_result.errors == 0;
    println!(
        "target (>= {TARGET_RATE:.0} views/s, p99 < {TARGET_P99_MS} ms, no errors): {}",
        if met { "met" } else { "NOT met" }
    );
    Ok(())
}

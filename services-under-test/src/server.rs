//! The accept loop every platform instance runs.
//!
//! It is written by hand rather than with `axum::serve` because the `down` fault must close
//! the listener itself (clients see refused connections), drop open connections, and bind the
//! same address again when the fault ends.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::faults::Faults;

/// How long open connections get to finish after a shutdown request.
const GRACE: Duration = Duration::from_secs(5);
/// How long to keep trying to take the address back after a `down` fault ends.
const REBIND_FOR: Duration = Duration::from_secs(10);

/// Binds with `SO_REUSEADDR` so an instance can take its own address back after a `down`
/// fault, even while the old connections sit in TIME_WAIT.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Serves `app` on `listener` until `shutdown` completes. With `faults`, a `down` fault closes
/// the listener and drops every open connection until it ends.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    faults: Option<Arc<Faults>>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let addr = listener.local_addr()?;
    let (graceful_tx, graceful_rx) = watch::channel(false);
    let (kill_tx, _) = watch::channel(0u64);
    let mut changes = faults.as_ref().map(|f| f.subscribe());
    let mut connections = JoinSet::new();
    let mut listener = Some(listener);
    tokio::pin!(shutdown);

    'outer: loop {
        let current = match listener.take() {
            Some(l) => l,
            None => rebind(addr).await?,
        };
        // Up: accept until shut down or taken down.
        loop {
            while connections.try_join_next().is_some() {}
            let went_down = async {
                match (&faults, changes.as_mut()) {
                    (Some(f), Some(rx)) => loop {
                        if f.down().is_some() {
                            return;
                        }
                        if rx.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    },
                    _ => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = &mut shutdown => break 'outer,
                _ = went_down => break,
                accepted = current.accept() => match accepted {
                    Ok((stream, _)) => {
                        // `subscribe` marks earlier kills as seen: only a later `down` drops this connection.
                        connections.spawn(serve_connection(stream, app.clone(), graceful_rx.clone(), kill_tx.subscribe()));
                    }
                    Err(err) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %err, %addr, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                },
            }
        }
        drop(current);
        kill_tx.send_modify(|g| *g += 1);
        tracing::info!(%addr, "injected fault: down; listener closed");
        // Down: wait for the fault to end (cleared, removed or expired).
        let (Some(f), Some(rx)) = (&faults, changes.as_mut()) else {
            continue;
        };
        loop {
            let wait_for_end = async {
                match f.down() {
                    None => {}
                    Some(Some(until)) => tokio::time::sleep_until(until.into()).await,
                    Some(None) if rx.changed().await.is_err() => std::future::pending::<()>().await,
                    Some(None) => {}
                }
            };
            tokio::select! {
                _ = &mut shutdown => break 'outer,
                _ = wait_for_end => {}
            }
            if f.down().is_none() {
                tracing::info!(%addr, "down fault ended; listening again");
                break;
            }
        }
    }
    let _ = graceful_tx.send(true);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(GRACE, drain).await.is_err() {
        connections.abort_all();
    }
    Ok(())
}

async fn rebind(addr: SocketAddr) -> io::Result<TcpListener> {
    let deadline = tokio::time::Instant::now() + REBIND_FOR;
    loop {
        match bind(addr) {
            Ok(l) => return Ok(l),
            Err(err) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %err, %addr, "rebinding after down fault; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => {
                return Err(io::Error::new(
                    err.kind(),
                    format!("could not bind {addr} again after a down fault: {err}"),
                ));
            }
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    app: Router,
    mut graceful: watch::Receiver<bool>,
    mut kill: watch::Receiver<u64>,
) {
    let _ = stream.set_nodelay(true);
    let service =
        TowerToHyperService::new(app.map_request(|req: Request<Incoming>| req.map(Body::new)));
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(err) = result {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        }
        // A down fault: drop the connection on the floor, as a dead host would.
        _ = kill.changed() => {}
        _ = graceful.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(GRACE, conn).await;
        }
    }
}

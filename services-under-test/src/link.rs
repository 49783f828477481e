//! A region's network link to the platform: a TCP proxy between one region's probe agent and
//! the gateway that can add delay or be cut, so that one region can be made slow or
//! unreachable while the others are fine. Part of the simulated world, like the faults.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use lookout_api::{ApiError, ApiJson, ApiResult};
use lookout_model::secret::Secret;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How a cut link behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cut {
    /// Connections are accepted and then nothing gets through: timeouts, as in a partition.
    Blackhole,
    /// Connections are accepted and closed at once: resets.
    Reset,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkState {
    /// Added to every chunk, each way.
    #[serde(with = "humantime_serde_compat")]
    pub delay: Duration,
    pub cut: Option<Cut>,
}

mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!("`delay`: {text:?} is not a duration ({e})"))
        })
    }
}

struct Shared {
    target: SocketAddr,
    state: Mutex<LinkState>,
    /// Bumped when the link is cut, to drop the connections it carries.
    cuts: watch::Sender<u64>,
}

pub struct Link {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Link {
    pub async fn start(
        listen: SocketAddr,
        admin_listen: SocketAddr,
        target: SocketAddr,
        admin_token: Secret,
    ) -> std::io::Result<Link> {
        let listener = crate::server::bind(listen)?;
        let admin = crate::server::bind(admin_listen)?;
        let addr = listener.local_addr()?;
        let admin_addr = admin.local_addr()?;
        let (cuts, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            target,
            state: Mutex::new(LinkState::default()),
            cuts,
        });
        let (stop, stopped) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, shared.clone(), stopped.clone()));
        let app = Router::new()
            .route(
                "/admin/link",
                get(get_link).post(set_link).delete(clear_link),
            )
            .route_layer(axum::middleware::from_fn_with_state(
                admin_token,
                lookout_api::auth::require_bearer,
            ))
            .fallback(|uri: axum::http::Uri| async move {
                ApiError::NotFound(format!(
                    "no route for {}; the link's API is /admin/link",
                    uri.path()
                ))
            })
            .with_state(shared);
        let mut admin_stop = stopped;
        let admin_task = tokio::spawn(async move {
            let _ = axum::serve(admin, app)
                .with_graceful_shutdown(async move {
                    let _ = admin_stop.wait_for(|s| *s).await;
                })
                .await;
        });
        Ok(Link {
            addr,
            admin_addr,
            stop,
            tasks: vec![accept, admin_task],
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr)
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            a = listener.accept() => a,
        };
        let Ok((client, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let shared = shared.clone();
        let mut cut = shared.cuts.subscribe();
        tokio::spawn(async move {
            let state = *shared.state.lock().unwrap_or_else(PoisonError::into_inner);
            match state.cut {
                Some(Cut::Reset) => return,
                Some(Cut::Blackhole) => {
                    // Hold the connection and say nothing until the link is restored or the
                    // client gives up.
                    let _hold = client;
                    let _ = cut.changed().await;
                    return;
                }
                None => {}
            }
            tokio::select! {
                _ = proxy(client, &shared) => {}
                _ = cut.changed() => {}
            }
        });
    }
}

async fn proxy(client: TcpStream, shared: &Shared) {
    let Ok(upstream) = TcpStream::connect(shared.target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = upstream.into_split();
    tokio::join!(
        pump(&mut cr, &mut uw, shared),
        pump(&mut ur, &mut cw, shared)
    );
}

/// Copies one direction of a connection, holding each chunk for the link's current delay.
async fn pump(
    from: &mut (impl AsyncReadExt + Unpin),
    to: &mut (impl AsyncWriteExt + Unpin),
    shared: &Shared,
) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let delay = shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

async fn get_link(State(shared): State<Arc<Shared>>) -> ApiJson<LinkState> {
    ApiJson(*shared.state.lock().unwrap_or_else(PoisonError::into_inner))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetLink {
    delay: Option<String>,
    cut: Option<Cut>,
}

async fn set_link(
    State(shared): State<Arc<Shared>>,
    ApiJson(body): ApiJson<SetLink>,
) -> ApiResult<ApiJson<LinkState>> {
    let delay = match body.delay.as_deref() {
        None => Duration::ZERO,
        Some(d) => humantime::parse_duration(d)
            .map_err(|e| ApiError::BadRequest(format!("`delay`: {d:?} is not a duration ({e})")))?,
    };
    if delay > Duration::from_secs(60) {
        return Err(ApiError::BadRequest(
            "`delay` must be at most 1m; cut the link instead".into(),
        ));
    }
    let state = LinkState {
        delay,
        cut: body.cut,
    };
    let previous = std::mem::replace(
        &mut *shared.state.lock().unwrap_or_else(PoisonError::into_inner),
        state,
    );
    // A new cut drops what the link carries; lifting a cut releases the connections it held.
    if state.cut.is_some() || previous.cut.is_some() {
        shared.cuts.send_modify(|g| *g += 1);
    }
    tracing::info!(?state, "region link changed");
    Ok(ApiJson(state))
}

async fn clear_link(State(shared): State<Arc<Shared>>) -> ApiJson<LinkState> {
    let mut state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
    let was_cut = state.cut.is_some();
    *state = LinkState::default();
    drop(state);
    if was_cut {
        // Release held (blackholed) connections.
        shared.cuts.send_modify(|g| *g += 1);
    }
    ApiJson(LinkState::default())
}

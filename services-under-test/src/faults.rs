//! Fault injection: how every later test proves that Lookout sees what happens.
//!
//! Faults live in one [`Faults`] per instance. The request middleware asks it for a [`Plan`]
//! (delay, error rate, hang); the server's accept loop watches it for `down`, which closes the
//! listener itself so that clients see refused connections, not 503s.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::{ApiError, ApiJson, ApiResult};
use crate::timer::PreciseTimer;

/// The most a single injected delay may be; longer is surely a typo (use `hang` to never answer).
const MAX_LATENCY: Duration = Duration::from_secs(600);

/// What a fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Every matching request waits `fixed` plus a uniform random share of `jitter`.
    Latency { fixed: Duration, jitter: Duration },
    /// A share of matching requests (0..=1) is answered 503.
    Error { rate: f64 },
    /// The listener is closed and open connections are dropped: connections are refused.
    Down,
    /// Matching requests are accepted and never answered while the fault lasts.
    Hang,
    /// Each matching response's body is sent at no more than this many bytes a second (per
    /// connection, as a congested last mile is): a stream that arrives slower than it plays.
    Bandwidth { bytes_per_second: u64 },
}

/// Which requests a fault applies to.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteScope {
    /// A route pattern as written in the router, e.g. `/1.x/artists/{id}/view`.
    Pattern(String),
    /// A path prefix on segment boundaries, e.g. `/1.x/search`.
    Prefix(String),
}

impl RouteScope {
    fn parse(route: &str) -> Result<Self, String> {
        if !route.starts_with('/') {
            return Err(format!("`route` must start with `/`, got {route:?}"));
        }
        Ok(if route.contains('{') {
            RouteScope::Pattern(route.to_owned())
        } else {
            RouteScope::Prefix(route.trim_end_matches('/').to_owned())
        })
    }

    fn matches(&self, path: &str, pattern: Option<&str>) -> bool {
        match self {
            RouteScope::Pattern(p) => pattern == Some(p.as_str()),
            RouteScope::Prefix(p) => {
                p.is_empty()
                    || path == p
                    || (path.starts_with(p.as_str()) && path.as_bytes().get(p.len()) == Some(&b'/'))
            }
        }
    }

    fn as_str(&self) -> &str {
        match self {
            RouteScope::Pattern(p) | RouteScope::Prefix(p) => p,
        }
    }
}

#[derive(Debug, Clone)]
struct ActiveFault {
    id: u64,
    kind: FaultKind,
    route: Option<RouteScope>,
    until: Option<Instant>,
}

/// What the middleware must do to one request.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    pub delay: Duration,
    pub error_rate: f64,
    pub hang: bool,
    /// The least of the bandwidth faults that apply, in bytes a second.
    pub bandwidth: Option<u64>,
}

/// The faults of one instance.
pub struct Faults {
    state: Mutex<State_>,
    changed: watch::Sender<u64>,
    timer: PreciseTimer,
}

#[derive(Default)]
struct State_ {
    faults: Vec<ActiveFault>,
    next_id: u64,
    generation: u64,
}

impl Faults {
    pub fn new(timer: PreciseTimer) -> Arc<Self> {
        let (changed, _) = watch::channel(0);
        Arc::new(Faults {
            state: Mutex::new(State_::default()),
            changed,
            timer,
        })
    }

    pub fn timer(&self) -> &PreciseTimer {
        &self.timer
    }

    /// Notified on every change, including a fault expiring.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State_) -> T) -> T {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let before = s.faults.len();
        s.faults.retain(|f| f.until.is_none_or(|u| u > now));
        let expired = s.faults.len() != before;
        let out = f(&mut s);
        if expired {
            s.generation += 1;
            self.changed.send_replace(s.generation);
        }
        out
    }

    fn bump(&self, s: &mut State_) {
        s.generation += 1;
        self.changed.send_replace(s.generation);
    }

    /// Adds a fault; a fault with a duration removes itself when it ends.
    pub fn add(
        self: &Arc<Self>,
        kind: FaultKind,
        route: Option<RouteScope>,
        duration: Option<Duration>,
    ) -> u64 {
        let until = duration.map(|d| Instant::now() + d);
        let id = self.with_state(|s| {
            let id = s.next_id;
            s.next_id += 1;
            s.faults.push(ActiveFault {
                id,
                kind,
                route,
                until,
            });
            self.bump(s);
            id
        });
        if let Some(until) = until {
            // Expiry must be visible to watchers (the accept loop, hung requests) at once,
            // not only at the next request.
            let me = Arc::downgrade(self);
            tokio::spawn(async move {
                tokio::time::sleep_until(until.into()).await;
                if let Some(me) = me.upgrade() {
                    me.with_state(|_| ());
                }
            });
        }
        id
    }

    pub fn clear(&self) -> usize {
        self.with_state(|s| {
            let n = s.faults.len();
            s.faults.clear();
            self.bump(s);
            n
        })
    }

    pub fn remove(&self, id: u64) -> bool {
        self.with_state(|s| {
            let before = s.faults.len();
            s.faults.retain(|f| f.id != id);
            let removed = s.faults.len() != before;
            if removed {
                self.bump(s);
            }
            removed
        })
    }

    /// When the instance is down: `Some(until)`, `until` being `None` for "until cleared".
    pub fn down(&self) -> Option<Option<Instant>> {
        self.with_state(|s| {
            let downs: Vec<_> = s
                .faults
                .iter()
                .filter(|f| f.kind == FaultKind::Down)
                .map(|f| f.until)
                .collect();
            if downs.is_empty() {
                None
            } else if downs.iter().any(Option::is_none) {
                Some(None)
            } else {
                downs.into_iter().flatten().max().map(Some)
            }
        })
    }

    pub fn plan(&self, path: &str, pattern: Option<&str>) -> Plan {
        self.with_state(|s| {
            let mut plan = Plan::default();
            let mut ok_share = 1.0;
            for f in &s.faults {
                if !f.route.as_ref().is_none_or(|r| r.matches(path, pattern)) {
                    continue;
                }
                match f.kind {
                    FaultKind::Latency { fixed, jitter } => {
                        let extra = if jitter.is_zero() {
                            Duration::ZERO
                        } else {
                            jitter.mul_f64(rand::rng().random::<f64>())
                        };
                        plan.delay += fixed + extra;
                    }
                    FaultKind::Error { rate } => ok_share *= 1.0 - rate,
                    FaultKind::Hang => plan.hang = true,
                    FaultKind::Bandwidth { bytes_per_second } => {
                        plan.bandwidth = Some(
                            plan.bandwidth
                                .map_or(bytes_per_second, |b| b.min(bytes_per_second)),
                        );
                    }
                    FaultKind::Down => {}
                }
            }
            plan.error_rate = 1.0 - ok_share;
            plan
        })
    }

    pub fn list(&self) -> Vec<FaultView> {
        self.with_state(|s| {
            let now = Instant::now();
            s.faults.iter().map(|f| FaultView::new(f, now)).collect()
        })
    }

    /// Number of active faults per kind, for `/metrics`.
    pub fn active_kinds(&self) -> [(&'static str, usize); 5] {
        self.with_state(|s| {
            let count =
                |pred: fn(&FaultKind) -> bool| s.faults.iter().filter(|f| pred(&f.kind)).count();
            [
                ("latency", count(|k| matches!(k, FaultKind::Latency { .. }))),
                ("error", count(|k| matches!(k, FaultKind::Error { .. }))),
                ("down", count(|k| matches!(k, FaultKind::Down))),
                ("hang", count(|k| matches!(k, FaultKind::Hang))),
                (
                    "bandwidth",
                    count(|k| matches!(k, FaultKind::Bandwidth { .. })),
                ),
            ]
        })
    }
}

/// How a fault is shown by `GET /admin/faults`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FaultView {
    pub id: u64,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jitter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_per_second: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Time left before the fault clears itself; absent when it lasts until cleared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<String>,
}

impl FaultView {
    fn new(f: &ActiveFault, now: Instant) -> Self {
        let fmt = |d: Duration| humantime::format_duration(d).to_string();
        let (kind, latency, jitter, rate) = match f.kind {
            FaultKind::Latency { fixed, jitter } => {
                ("latency", Some(fmt(fixed)), Some(fmt(jitter)), None)
            }
            FaultKind::Error { rate } => ("error", None, None, Some(rate)),
            FaultKind::Down => ("down", None, None, None),
            FaultKind::Hang => ("hang", None, None, None),
            FaultKind::Bandwidth { .. } => ("bandwidth", None, None, None),
        };
        let bytes_per_second = match f.kind {
            FaultKind::Bandwidth { bytes_per_second } => Some(bytes_per_second),
            _ => None,
        };
        FaultView {
            id: f.id,
            kind: kind.into(),
            latency,
            jitter,
            rate,
            bytes_per_second,
            route: f.route.as_ref().map(|r| r.as_str().to_owned()),
            remaining: f.until.map(|u| {
                fmt(Duration::from_millis(
                    u.saturating_duration_since(now).as_millis() as u64,
                ))
            }),
        }
    }
}

/// The body of `POST /admin/faults`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    /// `latency`, `error`, `down`, `hang`, `bandwidth` or `clear`.
    pub kind: String,
    /// For `latency`: the fixed delay, e.g. `150ms`.
    pub latency: Option<String>,
    /// For `latency`: a random extra delay of up to this much.
    pub jitter: Option<String>,
    /// For `error`: the share of requests answered 503, from 0 to 1.
    pub rate: Option<f64>,
    /// For `bandwidth`: the most bytes a second each response's body is sent at.
    pub bytes_per_second: Option<u64>,
    /// Limit the fault to a route pattern (`/1.x/artists/{id}`) or a path prefix (`/1.x/search`).
    pub route: Option<String>,
    /// Clear the fault by itself after this long, e.g. `30s`.
    pub duration: Option<String>,
}

fn parse_duration(field: &str, value: &str) -> Result<Duration, ApiError> {
    humantime::parse_duration(value).map_err(|e| {
        ApiError::BadRequest(format!(
            "`{field}`: {value:?} is not a duration ({e}); write e.g. `150ms`, `2s` or `1m`"
        ))
    })
}

/// A validated fault request: what to add, or clear everything.
#[derive(Debug, PartialEq)]
pub enum FaultCommand {
    Add {
        kind: FaultKind,
        route: Option<RouteScope>,
        duration: Option<Duration>,
    },
    Clear,
}

impl FaultRequest {
    pub fn validate(self) -> Result<FaultCommand, ApiError> {
        let unexpected = |field: &str, kind: &str| {
            ApiError::BadRequest(format!("`{field}` does not apply to a `{kind}` fault"))
        };
        let kind = self.kind.as_str();
        if kind == "clear" {
            return Ok(FaultCommand::Clear);
        }
        if !["latency", "error", "down", "hang", "bandwidth"].contains(&kind) {
            return Err(ApiError::BadRequest(format!(
                "unknown fault kind {kind:?}; expected one of latency, error, down, hang, bandwidth, clear"
            )));
        }
        if kind != "latency" && (self.latency.is_some() || self.jitter.is_some()) {
            return Err(unexpected(
                if self.latency.is_some() {
                    "latency"
                } else {
                    "jitter"
                },
                kind,
            ));
        }
        if kind != "error" && self.rate.is_some() {
            return Err(unexpected("rate", kind));
        }
        if kind != "bandwidth" && self.bytes_per_second.is_some() {
            return Err(unexpected("bytes_per_second", kind));
        }
        let fault = match kind {
            "latency" => {
                let fixed = match &self.latency {
                    Some(v) => parse_duration("latency", v)?,
                    None => {
                        return Err(ApiError::BadRequest(
                            "a `latency` fault needs `latency`, e.g. \"150ms\"".into(),
                        ));
                    }
                };
                let jitter = match &self.jitter {
                    Some(v) => parse_duration("jitter", v)?,
                    None => Duration::ZERO,
                };
                if fixed + jitter > MAX_LATENCY {
                    return Err(ApiError::BadRequest(format!(
                        "`latency` plus `jitter` must be at most {}; use a `hang` fault to never answer",
                        humantime::format_duration(MAX_LATENCY)
                    )));
                }
                FaultKind::Latency { fixed, jitter }
            }
            "error" => match self.rate {
                Some(rate) if (0.0..=1.0).contains(&rate) => FaultKind::Error { rate },
                Some(rate) => {
                    return Err(ApiError::BadRequest(format!(
                        "`rate` must be between 0 and 1, got {rate}"
                    )));
                }
                None => {
                    return Err(ApiError::BadRequest(
                        "an `error` fault needs `rate`, the share of requests to fail, e.g. 0.5"
                            .into(),
                    ));
                }
            },
            "down" => FaultKind::Down,
            "hang" => FaultKind::Hang,
            "bandwidth" => match self.bytes_per_second {
                Some(b) if b > 0 => FaultKind::Bandwidth {
                    bytes_per_second: b,
                },
                Some(_) => {
                    return Err(ApiError::BadRequest(
                        "`bytes_per_second` must be more than zero; use a `hang` fault to send nothing"
                            .into(),
                    ));
                }
                None => {
                    return Err(ApiError::BadRequest(
                        "a `bandwidth` fault needs `bytes_per_second`, e.g. 40000".into(),
                    ));
                }
            },
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown fault kind {other:?}; expected one of latency, error, down, hang, bandwidth, clear"
                )));
            }
        };
        let route = match &self.route {
            Some(_) if fault == FaultKind::Down => {
                return Err(ApiError::BadRequest(
                    "a `down` fault closes the whole listener and cannot be scoped to a `route`"
                        .into(),
                ));
            }
            Some(r) => Some(RouteScope::parse(r).map_err(ApiError::BadRequest)?),
            None => None,
        };
        let duration = match &self.duration {
            Some(v) => {
                let d = parse_duration("duration", v)?;
                if d.is_zero() {
                    return Err(ApiError::BadRequest(
                        "`duration` must be more than zero".into(),
                    ));
                }
                Some(d)
            }
            None => None,
        };
        Ok(FaultCommand::Add {
            kind: fault,
            route,
            duration,
        })
    }
}

#[derive(Serialize)]
pub struct FaultsBody {
    pub faults: Vec<FaultView>,
}

pub async fn list_faults(State(faults): State<Arc<Faults>>) -> ApiJson<FaultsBody> {
    ApiJson(FaultsBody {
        faults: faults.list(),
    })
}

pub async fn post_fault(
    State(faults): State<Arc<Faults>>,
    ApiJson(request): ApiJson<FaultRequest>,
) -> ApiResult<Response> {
    match request.validate()? {
        FaultCommand::Clear => {
            let cleared = faults.clear();
            tracing::info!(cleared, "faults cleared");
            Ok(ApiJson(FaultsBody { faults: vec![] }).into_response())
        }
        FaultCommand::Add {
            kind,
            route,
            duration,
        } => {
            tracing::info!(?kind, ?route, ?duration, "fault injected");
            let id = faults.add(kind, route, duration);
            let view = faults.list().into_iter().find(|f| f.id == id);
            Ok((StatusCode::CREATED, ApiJson(view)).into_response())
        }
    }
}

pub async fn delete_faults(State(faults): State<Arc<Faults>>) -> ApiJson<FaultsBody> {
    let cleared = faults.clear();
    tracing::info!(cleared, "faults cleared");
    ApiJson(FaultsBody { faults: vec![] })
}

pub async fn delete_fault(
    State(faults): State<Arc<Faults>>,
    crate::error::ApiPath(id): crate::error::ApiPath<u64>,
) -> ApiResult<StatusCode> {
    if faults.remove(id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no active fault with id {id}")))
    }
}

/// Applies latency, error and hang faults to every request outside `/admin/` and `/metrics`:
/// the platform's own telemetry is what shows a fault, so it is not subject to one (as an
/// exporter on its own port would not be).
pub async fn middleware(
    State(faults): State<Arc<Faults>>,
    request: Request,
    next: Next,
) -> Response {
    let arrived = Instant::now();
    let path = request.uri().path();
    if path.starts_with("/admin/") || path == "/metrics" {
        return next.run(request).await;
    }
    let pattern = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let plan = faults.plan(path, pattern.as_deref());
    if plan == Plan::default() {
        return next.run(request).await;
    }
    let path = path.to_owned();
    if plan.hang {
        let mut changes = faults.subscribe();
        loop {
            if !faults.plan(&path, pattern.as_deref()).hang {
                break;
            }
            if changes.changed().await.is_err() {
                break;
            }
        }
        // A hung request never gets its real answer: the client has long given up.
        let mut response =
            ApiError::Unavailable("injected fault: hang ended".into()).into_response();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    let fail = plan.error_rate > 0.0 && rand::rng().random::<f64>() < plan.error_rate;
    if !plan.delay.is_zero() {
        faults.timer().sleep_until(arrived + plan.delay).await;
    }
    let fault_time = arrived.elapsed();
    let mut response = if fail {
        ApiError::Unavailable("injected fault: error".into()).into_response()
    } else {
        next.run(request).await
    };
    if let Some(rate) = plan.bandwidth {
        response = throttled(response, rate);
    }
    if let Ok(v) =
        HeaderValue::from_str(&format!("fault;dur={:.3}", fault_time.as_secs_f64() * 1e3))
    {
        response.headers_mut().append("server-timing", v);
    }
    // The delay drawn, beside the delay served: a loaded host wakes a sleep late, and whoever
    // checks the jitter's bounds needs the draw, not the scheduler's lateness.
    if !plan.delay.is_zero()
        && let Ok(v) = HeaderValue::from_str(&format!(
            "fault-planned;dur={:.3}",
            plan.delay.as_secs_f64() * 1e3
        ))
    {
        response.headers_mut().append("server-timing", v);
    }
    response
}

/// The response with its body sent at no more than `bytes_per_second`: in slices of a
/// twentieth of a second's worth, each sent when the rate allows it since the body began.
fn throttled(response: Response, bytes_per_second: u64) -> Response {
    use futures_util::StreamExt;
    let (mut parts, body) = response.into_parts();
    // The length stays right (the bytes are the same), but the body is a stream now.
    parts.headers.remove(header::CONTENT_LENGTH);
    let slice = usize::try_from((bytes_per_second / 20).max(1)).unwrap_or(usize::MAX);
    let started = tokio::time::Instant::now();
    let chunks = body.into_data_stream().flat_map(move |chunk| {
        let pieces: Vec<Result<bytes::Bytes, axum::Error>> = match chunk {
            Ok(mut data) => {
                let mut out = Vec::new();
                while !data.is_empty() {
                    out.push(Ok(data.split_to(slice.min(data.len()))));
                }
                out
            }
            Err(e) => vec![Err(e)],
        };
        futures_util::stream::iter(pieces)
    });
    let paced = chunks.scan(0u64, move |sent, piece| {
        let due = match &piece {
            Ok(data) => {
                // A slice leaves once the bytes before it fit the rate.
                let at = started + Duration::from_secs_f64(*sent as f64 / bytes_per_second as f64);
                *sent += data.len() as u64;
                Some(at)
            }
            Err(_) => None,
        };
        async move {
            if let Some(at) = due {
                tokio::time::sleep_until(at).await;
            }
            Some(piece)
        }
    });
    Response::from_parts(parts, axum::body::Body::from_stream(paced))
}

#[cfg(test)]
mod tests;

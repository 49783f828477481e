//! analytics: event ingest (playback, thumbs, navigation), fire-and-forget. Events go into a
//! bounded queue (a full queue drops and counts, never blocks the caller); a worker tallies
//! them and forwards thumbs to every mixes instance, so the radio reacts wherever it is served.
//! Playbacks are also told, as they are processed, to whoever follows the live feed
//! (`GET /1.x/events/live`, a WebSocket): "now playing".

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

use crate::catalogue::USER_HEADER;
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::metrics::register;
use crate::mixes::{Direction, Thumbs};

/// Most events one request may carry.
pub const MAX_BATCH: usize = 500;
const FORWARD_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Playback,
    Thumbs,
    Navigation,
}

impl EventKind {
    fn label(self) -> &'static str {
        match self {
            EventKind::Playback => "playback",
            EventKind::Thumbs => "thumbs",
            EventKind::Navigation => "navigation",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: EventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trackid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artistid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// For navigation: the screen shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<String>,
    /// For playback: how far into the track, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_ms: Option<u64>,
    /// When the client saw it (RFC 3339); informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

impl Event {
    fn check(&self) -> Result<(), String> {
        match self.kind {
            EventKind::Thumbs => {
                if self
                    .user
                    .as_deref()
                    .is_some_and(|u| !crate::mixes::valid_user(u))
                {
                    return Err(
                        "`user` must be 1 to 64 letters, digits, `-`, `_`, `.` or `@`".into(),
                    );
                }
                if self.user.is_none() {
                    return Err("a thumbs event needs a user (sign in, or give `user`)".into());
                }
                if self.direction.is_none() {
                    return Err("a thumbs event needs `direction`: up or down".into());
                }
                if self.trackid.is_some() == self.artistid.is_some() {
                    return Err(
                        "a thumbs event needs exactly one of `trackid` or `artistid`".into(),
                    );
                }
            }
            EventKind::Playback if self.trackid.is_none() => {
                return Err("a playback event needs `trackid`".into());
            }
            EventKind::Navigation if self.screen.is_none() => {
                return Err("a navigation event needs `screen`".into());
            }
            _ => {}
        }
        if self
            .screen
            .as_ref()
            .is_some_and(|s| s.chars().count() > 200)
        {
            return Err("`screen` is too long: at most 200 characters".into());
        }
        Ok(())
    }
}

/// Parses a body holding one event or an array of them; errors name the event at fault.
pub fn parse_events(body: serde_json::Value, user: Option<&str>) -> Result<Vec<Event>, ApiError> {
    let (values, batch) = match body {
        serde_json::Value::Array(items) => (items, true),
        other => (vec![other], false),
    };
    if values.is_empty() {
        return Err(ApiError::BadRequest(
            "no events: send an event object or a non-empty array".into(),
        ));
    }
    if values.len() > MAX_BATCH {
        return Err(ApiError::PayloadTooLarge(format!(
            "{} events in one request; at most {MAX_BATCH}",
            values.len()
        )));
    }
    let at = |i: usize| {
        if batch {
            format!("events[{i}]: ")
        } else {
            String::new()
        }
    };
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let mut event: Event = serde_json::from_value(v)
                .map_err(|e| ApiError::BadRequest(format!("{}{e}", at(i))))?;
            // When the gateway speaks for the caller, its word wins over whatever the body
            // claims: the signed-in user, or nobody for an app calling with an API key.
            if let Some(u) = user {
                event.user = (!u.is_empty()).then(|| u.to_owned());
            }
            event
                .check()
                .map_err(|e| ApiError::BadRequest(format!("{}{e}", at(i))))?;
            Ok(event)
        })
        .collect()
}

struct Counters {
    accepted: IntCounter,
    dropped: IntCounter,
    processed: IntCounterVec,
    forwards: IntCounterVec,
    depth: IntGauge,
    listeners: IntGauge,
}

/// What the live feed tells of each playback processed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NowPlaying {
    pub trackid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_ms: Option<u64>,
}

/// Playbacks a slow follower of the feed may fall behind by before it misses some.
const LIVE_BACKLOG: usize = 256;

pub struct Analytics {
    queue: mpsc::Sender<Event>,
    capacity: usize,
    counters: Counters,
    live: broadcast::Sender<NowPlaying>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    pub accepted: u64,
    pub dropped: u64,
    pub processed: u64,
    pub forwarded: u64,
    pub forward_failures: u64,
    pub queue_depth: usize,
    pub queue_capacity: usize,
}

impl Analytics {
    /// Starts the worker on the current runtime; it ends when the returned handle is dropped.
    pub fn start(
        capacity: usize,
        mixes: Vec<String>,
        registry: &Registry,
        client: reqwest::Client,
    ) -> Result<Arc<Self>, prometheus::Error> {
        let counters = Counters {
            accepted: register(
                registry,
                IntCounter::new(
                    "platform_analytics_events_accepted_total",
                    "Events accepted into the queue.",
                )?,
            ),
            dropped: register(
                registry,
                IntCounter::new(
                    "platform_analytics_events_dropped_total",
                    "Events dropped because the queue was full.",
                )?,
            ),
            processed: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "platform_analytics_events_processed_total",
                        "Events taken off the queue, by type.",
                    ),
                    &["type"],
                )?,
            ),
            forwards: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "platform_analytics_forwards_total",
                        "Thumbs forwarded to mixes instances, by outcome.",
                    ),
                    &["outcome"],
                )?,
            ),
            depth: register(
                registry,
                IntGauge::new(
                    "platform_analytics_queue_depth",
                    "Events waiting in the queue.",
                )?,
            ),
            listeners: register(
                registry,
                IntGauge::new(
                    "platform_analytics_live_listeners",
                    "Connections following the live feed.",
                )?,
            ),
        };
        let (queue, rx) = mpsc::channel(capacity.max(1));
        let analytics = Arc::new(Analytics {
            queue,
            capacity: capacity.max(1),
            counters,
            live: broadcast::channel(LIVE_BACKLOG).0,
        });
        tokio::spawn(worker(Arc::downgrade(&analytics), rx, mixes, client));
        Ok(analytics)
    }

    /// Queues what fits; returns (accepted, dropped).
    pub fn offer(&self, events: Vec<Event>) -> (usize, usize) {
        let (mut accepted, mut dropped) = (0, 0);
        for e in events {
            match self.queue.try_send(e) {
                Ok(()) => accepted += 1,
                Err(_) => dropped += 1,
            }
        }
        self.counters.accepted.inc_by(accepted as u64);
        self.counters.dropped.inc_by(dropped as u64);
        self.counters.depth.set(self.depth() as i64);
        (accepted, dropped)
    }

    fn depth(&self) -> usize {
        self.capacity - self.queue.capacity()
    }

    pub fn stats(&self) -> Stats {
        let processed = ["playback", "thumbs", "navigation"]
            .iter()
            .map(|t| self.counters.processed.with_label_values(&[*t]).get())
            .sum();
        Stats {
            accepted: self.counters.accepted.get(),
            dropped: self.counters.dropped.get(),
            processed,
            forwarded: self.counters.forwards.with_label_values(&["ok"]).get(),
            forward_failures: self.counters.forwards.with_label_values(&["failed"]).get(),
            queue_depth: self.depth(),
            queue_capacity: self.capacity,
        }
    }
}

async fn worker(
    me: std::sync::Weak<Analytics>,
    mut rx: mpsc::Receiver<Event>,
    mixes: Vec<String>,
    client: reqwest::Client,
) {
    while let Some(event) = rx.recv().await {
        let Some(analytics) = me.upgrade() else {
            return;
        };
        analytics
            .counters
            .processed
            .with_label_values(&[event.kind.label()])
            .inc();
        analytics.counters.depth.set(analytics.depth() as i64);
        if event.kind == EventKind::Playback
            && let Some(trackid) = event.trackid
        {
            // No follower is no error: the feed is told only to whoever listens.
            let _ = analytics.live.send(NowPlaying {
                trackid,
                user: event.user.clone(),
                position_ms: event.position_ms,
            });
        }
        if event.kind != EventKind::Thumbs {
            continue;
        }
        let (Some(user), Some(direction)) = (&event.user, event.direction) else {
            continue;
        };
        let thumbs = Thumbs {
            trackid: event.trackid,
            artistid: event.artistid,
            direction,
        };
        for base in &mixes {
            let url = format!("{}/1.x/users/{user}/thumbs", base.trim_end_matches('/'));
            let outcome = match client
                .post(&url)
                .timeout(FORWARD_TIMEOUT)
                .json(&thumbs)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => "ok",
                Ok(r) => {
                    tracing::warn!(status = %r.status(), mixes = %base, "thumbs not accepted by mixes");
                    "failed"
                }
                Err(err) => {
                    tracing::warn!(error = %err, mixes = %base, "thumbs could not be forwarded");
                    "failed"
                }
            };
            analytics
                .counters
                .forwards
                .with_label_values(&[outcome])
                .inc();
        }
    }
}

#[derive(Serialize)]
struct Accepted {
    accepted: usize,
    dropped: usize,
}

async fn post_events(
    State(analytics): State<Arc<Analytics>>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<Response> {
    let user = headers.get(USER_HEADER).and_then(|v| v.to_str().ok());
    let events = parse_events(body, user)?;
    let (accepted, dropped) = analytics.offer(events);
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(Accepted { accepted, dropped }),
    )
        .into_response())
}

async fn stats(State(analytics): State<Arc<Analytics>>) -> ApiJson<Stats> {
    ApiJson(analytics.stats())
}

async fn live(State(analytics): State<Arc<Analytics>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| follow(analytics, socket))
}

/// The feed for one follower: a hello with how many follow it, then each playback as it is
/// processed; `ping` is answered with `pong` (a liveness check without waiting for a play).
async fn follow(analytics: Arc<Analytics>, mut socket: WebSocket) {
    let mut plays = analytics.live.subscribe();
    analytics.counters.listeners.inc();
    let hello = serde_json::json!({
        "type": "hello",
        "feed": "now_playing",
        "listeners": analytics.counters.listeners.get(),
    });
    if socket.send(Message::text(hello.to_string())).await.is_ok() {
        loop {
            let out = tokio::select! {
                play = plays.recv() => match play {
                    Ok(p) => {
                        let mut v = serde_json::to_value(&p).unwrap_or_default();
                        v["type"] = "now_playing".into();
                        v.to_string()
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        serde_json::json!({"type": "missed", "count": missed}).to_string()
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                got = socket.recv() => match got {
                    Some(Ok(Message::Text(t))) if t.as_str().trim() == "ping" => {
                        serde_json::json!({"type": "pong"}).to_string()
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                },
            };
            if socket.send(Message::text(out)).await.is_err() {
                break;
            }
        }
    }
    analytics.counters.listeners.dec();
}

pub fn router(analytics: Arc<Analytics>) -> Router {
    Router::new()
        .route("/1.x/events", post(post_events))
        .route("/1.x/events/stats", get(stats))
        .route("/1.x/events/live", get(live))
        .with_state(analytics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_name_the_event_at_fault() {
        let ok = json!({"type": "playback", "trackid": 3});
        assert_eq!(parse_events(ok.clone(), None).unwrap().len(), 1);
        let cases = [
            (
                json!([ok.clone(), {"type": "thumbs", "user": "u", "trackid": 1}]),
                "events[1]: a thumbs event needs `direction`",
            ),
            (json!({"type": "shout"}), "unknown variant `shout`"),
            (
                json!([ok.clone(), ok.clone(), {"type": "playback", "trackid": 1, "colour": "red"}]),
                "events[2]: unknown field `colour`",
            ),
            (
                json!({"type": "thumbs", "direction": "up", "trackid": 1}),
                "needs a user",
            ),
            (json!([]), "no events"),
            (json!({"type": "navigation"}), "needs `screen`"),
        ];
        for (body, want) in cases {
            let err = parse_events(body, None).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
        let too_many = serde_json::Value::Array(vec![ok; MAX_BATCH + 1]);
        assert!(matches!(
            parse_events(too_many, None),
            Err(ApiError::PayloadTooLarge(_))
        ));
    }

    #[test]
    fn the_signed_in_user_overrides_the_body() {
        let e = parse_events(
            json!({"type": "thumbs", "user": "mallory", "direction": "down", "trackid": 1}),
            Some("alice"),
        )
        .unwrap();
        assert_eq!(e[0].user.as_deref(), Some("alice"));
    }
}

//! A WebSocket conversation as a step: connect (`ws` or `wss`), upgrade, optionally send a
//! message, and wait for one that matches (a regex, or a JSON path that selects something)
//! within a time. Timed like an HTTP step: `dns`, `connect`, `tls`, the upgrade as `ttfb`, and
//! from then (or the message sent) to the match as `transfer`.
//!
//! The connection and TLS are the probe's own, so that each phase is timed as HTTP's are;
//! tokio-tungstenite (the version axum serves WebSockets with) does the upgrade and the framing.

use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::{SinkExt, StreamExt};
use lookout_conf::{Dur, Report, Spanned, one_line};
use lookout_model::probe::{Failure, FailureKind, Outcome, StepResult};
use serde::Deserialize;
use serde_json_path::JsonPath;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::{self, Message};

use super::{Probe, StepContext};
use crate::http::{self, Limits};

/// `websocket:` in a step, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebSocket {
    /// `ws://host[:port]/path` or `wss://...`.
    pub url: Spanned<String>,
    /// A text message sent once the connection is upgraded.
    pub send: Option<Spanned<String>>,
    /// A regex a text message must match.
    pub expect: Option<Spanned<String>>,
    /// A JSON path that must select something in a message (which must be JSON)...
    pub json_path: Option<Spanned<String>>,
    /// ... equal to this, if given (as JSON: `4242` is a number, `"4242"` a string).
    pub equals: Option<Spanned<serde_json::Value>>,
    /// How long after the upgrade (or the message sent) the match may take; the check's
    /// `timeout` bounds it anyway.
    pub within: Option<Spanned<Dur>>,
}

#[derive(Debug)]
pub enum Expect {
    Regex(regex::Regex),
    JsonPath {
        text: String,
        path: JsonPath,
        equals: Option<serde_json::Value>,
    },
}

#[derive(Debug)]
pub struct WebSocketStep {
    pub url: reqwest::Url,
    pub send: Option<String>,
    pub expect: Option<Expect>,
    pub within: Option<Duration>,
}

impl RawWebSocket {
    /// Validated once, at load; each error reported where it was written.
    pub fn build(self, at: &str, report: &mut Report) -> Option<WebSocketStep> {
        let url = match reqwest::Url::parse(&self.url.value) {
            Ok(u) if matches!(u.scheme(), "ws" | "wss") && u.host().is_some() => Some(u),
            Ok(u) => {
                report(
                    self.url.loc(),
                    &format!("{at}.websocket.url"),
                    format!(
                        "{:?}: a WebSocket URL is ws:// or wss:// with a host, not {}",
                        self.url.value,
                        u.scheme()
                    ),
                );
                None
            }
            Err(e) => {
                report(
                    self.url.loc(),
                    &format!("{at}.websocket.url"),
                    format!("{:?} is not a URL: {e}", self.url.value),
                );
                None
            }
        };
        let expect = match (&self.expect, &self.json_path) {
            (Some(_), Some(p)) => {
                report(
                    p.loc(),
                    &format!("{at}.websocket.json_path"),
                    "a message is matched by `expect` or by `json_path`, not both".into(),
                );
                None
            }
            (Some(e), None) => regex::Regex::new(&e.value)
                .map(|r| Some(Expect::Regex(r)))
                .map_err(|err| {
                    report(
                        e.loc(),
                        &format!("{at}.websocket.expect"),
                        format!("bad regex {:?}: {}", e.value, one_line(&err.to_string())),
                    )
                })
                .ok(),
            (None, Some(p)) => JsonPath::parse(&p.value)
                .map(|path| {
                    Some(Expect::JsonPath {
                        text: p.value.clone(),
                        path,
                        equals: self.equals.as_ref().map(|e| e.value.clone()),
                    })
                })
                .map_err(|err| {
                    report(
                        p.loc(),
                        &format!("{at}.websocket.json_path"),
                        format!(
                            "bad JSON path {:?}: {}",
                            p.value,
                            one_line(&err.to_string())
                        ),
                    )
                })
                .ok(),
            (None, None) => Some(None),
        };
        if let Some(e) = &self.equals
            && self.json_path.is_none()
        {
            report(
                e.loc(),
                &format!("{at}.websocket.equals"),
                "compares what `json_path` selects: give `json_path` too".into(),
            );
            return None;
        }
        let within = match &self.within {
            Some(w) if w.value.0.is_zero() => {
                report(
                    w.loc(),
                    &format!("{at}.websocket.within"),
                    "must be more than 0".into(),
                );
                return None;
            }
            Some(w) if self.expect.is_none() && self.json_path.is_none() => {
                report(
                    w.loc(),
                    &format!("{at}.websocket.within"),
                    "bounds the wait for a message: give `expect` or `json_path` too".into(),
                );
                return None;
            }
            w => w.as_ref().map(|w| w.value.0),
        };
        Some(WebSocketStep {
            url: url?,
            send: self.send.map(|s| s.value),
            expect: expect?,
            within,
        })
    }
}

impl Probe for WebSocketStep {
    fn run<'a>(&'a self, ctx: StepContext<'a>) -> BoxFuture<'a, (StepResult, Outcome)> {
        Box::pin(async move {
            let started = Instant::now();
            let mut result = ctx.result();
            let outcome = self.converse(&ctx, &mut result).await;
            ctx.finish(started, result, outcome)
        })
    }
}

impl WebSocketStep {
    async fn converse(
        &self,
        ctx: &StepContext<'_>,
        result: &mut StepResult,
    ) -> Result<(), Failure> {
        let limits = ctx.limits;
        let host = self.url.host_str().unwrap_or_default();
        let tls = self.url.scheme() == "wss";
        let port = self.url.port().unwrap_or(if tls { 443 } else { 80 });
        let tcp = http::connect_timed(host, port, None, limits, result).await?;
        if tls {
            let (stream, took, days) = http::open_tls(host, tcp, &ctx.check.tls, limits).await?;
            result.phases.tls_us = http::us(took);
            result.cert_days_left = days;
            self.upgraded(stream, limits, result).await
        } else {
            self.upgraded(tcp, limits, result).await
        }
    }

    async fn upgraded<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
        limits: &Limits,
        result: &mut StepResult,
    ) -> Result<(), Failure> {
        let asked = Instant::now();
        let (mut ws, response) = http::phase(
            "the WebSocket upgrade",
            limits,
            tokio_tungstenite::client_async(self.url.as_str(), stream),
        )
        .await?
        .map_err(upgrade_failure)?;
        result.phases.ttfb_us = http::us(asked.elapsed());
        result.status = Some(response.status().as_u16());
        if let Some(text) = &self.send {
            http::phase("sending the message", limits, ws.send(Message::text(text)))
                .await?
                .map_err(|e| lost(&e, "sending the message"))?;
        }
        let Some(expect) = &self.expect else {
            let _ = tokio::time::timeout(Duration::from_millis(100), ws.close(None)).await;
            return Ok(());
        };
        let waiting = Instant::now();
        let until = self
            .within
            .map_or(limits.deadline, |w| (waiting + w).min(limits.deadline));
        let mut last: Option<String> = None;
        let mut seen = 0usize;
        loop {
            let next = tokio::time::timeout_at(until.into(), ws.next()).await;
            let message = match next {
                Err(_) => {
                    return Err(self.no_match(expect, waiting, limits, seen, last.as_deref()));
                }
                Ok(None) => {
                    return Err(http::fail(
                        FailureKind::Protocol,
                        format!(
                            "the connection ended before a message matched {} ({seen} received)",
                            expect.shown()
                        ),
                    ));
                }
                Ok(Some(Err(e))) => return Err(lost(&e, "waiting for a message")),
                Ok(Some(Ok(m))) => m,
            };
            let text = match message {
                Message::Text(t) => t.as_str().to_owned(),
                Message::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
                Message::Close(frame) => {
                    return Err(http::fail(
                        FailureKind::Protocol,
                        format!(
                            "the server closed the connection ({}) before a message matched {} ({seen} received)",
                            frame.map_or_else(
                                || "no reason given".to_owned(),
                                |f| format!("{} {:?}", u16::from(f.code), f.reason.as_str())
                            ),
                            expect.shown()
                        ),
                    ));
                }
                // Answered by tungstenite itself; not messages of the feed.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            };
            seen += 1;
            result.bytes += text.len() as u64;
            if expect.matches(&text) {
                result.phases.transfer_us = http::us(waiting.elapsed());
                let _ = tokio::time::timeout(Duration::from_millis(100), ws.close(None)).await;
                return Ok(());
            }
            last = Some(text);
        }
    }

    fn no_match(
        &self,
        expect: &Expect,
        waiting: Instant,
        limits: &Limits,
        seen: usize,
        last: Option<&str>,
    ) -> Failure {
        let waited = waiting.elapsed();
        let bound = match self.within {
            Some(w) if waiting + w < limits.deadline => {
                format!("within {}", humantime::format_duration(w))
            }
            _ => format!(
                "before the journey's timeout ({})",
                humantime::format_duration(limits.timeout)
            ),
        };
        let came = match last {
            None => "nothing came".to_owned(),
            Some(l) => format!(
                "{seen} message(s) came, the last {}",
                crate::assert::shown(l)
            ),
        };
        http::fail(
            FailureKind::Timeout,
            format!(
                "no message matched {} {bound} (waited {} ms): {came}",
                expect.shown(),
                waited.as_millis()
            ),
        )
    }
}

impl Expect {
    fn matches(&self, text: &str) -> bool {
        match self {
            Expect::Regex(r) => r.is_match(text),
            Expect::JsonPath { path, equals, .. } => {
                serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| {
                    let found = path.query(&v).all();
                    match equals {
                        None => !found.is_empty(),
                        Some(want) => found.contains(&want),
                    }
                })
            }
        }
    }

    fn shown(&self) -> String {
        match self {
            Expect::Regex(r) => format!("{:?}", r.as_str()),
            Expect::JsonPath {
                text, equals: None, ..
            } => format!("the JSON path {text}"),
            Expect::JsonPath {
                text,
                equals: Some(want),
                ..
            } => format!("the JSON path {text} = {want}"),
        }
    }
}

fn upgrade_failure(e: tungstenite::Error) -> Failure {
    match e {
        tungstenite::Error::Http(response) => http::fail(
            FailureKind::Protocol,
            format!(
                "the server answered {}, not 101 Switching Protocols: no WebSocket upgrade",
                response.status()
            ),
        ),
        other => http::fail(
            FailureKind::Protocol,
            format!(
                "the WebSocket upgrade failed: {}",
                one_line(&other.to_string())
            ),
        ),
    }
}

fn lost(e: &tungstenite::Error, doing: &str) -> Failure {
    http::fail(
        FailureKind::Refused,
        format!(
            "the connection failed while {doing}: {}",
            one_line(&e.to_string())
        ),
    )
}

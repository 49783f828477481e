//! An HTTP request as a step: its URL, headers and body filled in from the variables, sent
//! with redirects followed up to the check's limit, its response judged by the step's
//! assertions and read by its captures.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use lookout_model::probe::{Failure, FailureKind, Outcome, Phases, StepResult};
use reqwest::Url;

use super::playback::{self, Playback};
use super::{Probe, StepContext};
use crate::assert::{Assertion, Response, default_status_ok};
use crate::capture::Capture;
use crate::check::Check;
use crate::http::{self, BodyWatch, Exchange, Limits, Outgoing, Pool};
use crate::template::{Template, Vars};

#[derive(Debug)]
pub struct HttpStep {
    pub method: Method,
    pub url: Template,
    pub headers: Vec<(HeaderName, Template)>,
    pub body: Option<Template>,
    pub captures: Vec<Capture>,
    pub assertions: Vec<Box<dyn Assertion>>,
    /// Plays what it fetches: judged by the audio's delivery rate.
    pub playback: Option<Playback>,
}

/// Headers never carried across a redirect to another origin.
const SENSITIVE: [&str; 4] = [
    "authorization",
    "cookie",
    "proxy-authorization",
    "x-api-key",
];

/// A URL as failure messages show it: no user, password or query, which may hold secrets
/// (stored results are served back to anyone with the collector's token).
fn shown(url: &Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}

fn without_query(text: &str) -> &str {
    text.split(['?', '#']).next().unwrap_or(text)
}

fn failure(kind: FailureKind, message: impl Into<String>, step: usize) -> Failure {
    Failure {
        kind,
        message: message.into(),
        step: Some(step),
    }
}

fn outgoing(step: &HttpStep, i: usize, vars: &Vars) -> Result<Outgoing, Failure> {
    let url_text = step
        .url
        .render(vars)
        .map_err(|e| failure(FailureKind::Capture, format!("url: {e}"), i))?;
    let url = Url::parse(&url_text).map_err(|e| {
        failure(
            FailureKind::Capture,
            format!(
                "url {:?} is not valid after substitution: {e}",
                without_query(&url_text)
            ),
            i,
        )
    })?;
    let mut headers = Vec::with_capacity(step.headers.len());
    for (name, t) in &step.headers {
        let text = t
            .render(vars)
            .map_err(|e| failure(FailureKind::Capture, format!("header {name}: {e}"), i))?;
        let value = HeaderValue::from_str(&text).map_err(|_| {
            failure(
                FailureKind::Capture,
                format!("header {name}: the value is not a valid header value"),
                i,
            )
        })?;
        headers.push((name.clone(), value));
    }
    let body = match &step.body {
        Some(t) => Bytes::from(
            t.render(vars)
                .map_err(|e| failure(FailureKind::Capture, format!("body: {e}"), i))?,
        ),
        None => Bytes::new(),
    };
    Ok(Outgoing {
        method: step.method.clone(),
        url,
        headers,
        body,
    })
}

/// Sends the step's request, following redirects up to the check's limit.
async fn send<'w>(
    check: &Check,
    mut out: Outgoing,
    i: usize,
    pool: &mut Pool,
    limits: &Limits,
    mut watch: Option<&mut (dyn BodyWatch + 'w)>,
) -> Result<(Exchange, Phases), Failure> {
    let mut visited = HashSet::new();
    let started = Instant::now();
    loop {
        let pool_ref = if check.reuse_connections {
            Some(&mut *pool)
        } else {
            None
        };
        let ex = http::exchange(&out, &check.tls, pool_ref, limits, watch.as_deref_mut())
            .await
            .map_err(|mut f| {
                f.step = Some(i);
                f
            })?;
        let status = StatusCode::from_u16(ex.status).unwrap_or(StatusCode::OK);
        let location = ex
            .headers
            .get(hyper::header::LOCATION)
            .and_then(|v| v.to_str().ok());
        if !status.is_redirection() || check.max_redirects == 0 || location.is_none() {
            let mut phases = ex.phases;
            phases.total_us = started.elapsed().as_micros() as u64;
            return Ok((ex, phases));
        }
        let target = out.url.join(location.unwrap_or_default()).map_err(|e| {
            failure(
                FailureKind::Redirect,
                format!("redirect to an invalid Location: {e}"),
                i,
            )
        })?;
        if !visited.insert(out.url.to_string()) || target == out.url {
            return Err(failure(
                FailureKind::Redirect,
                format!(
                    "redirect loop: {} leads back to {}",
                    shown(&out.url),
                    shown(&target)
                ),
                i,
            ));
        }
        if visited.len() > check.max_redirects as usize {
            return Err(failure(
                FailureKind::Redirect,
                format!(
                    "more than {} redirects (max_redirects); last to {}",
                    check.max_redirects,
                    shown(&target)
                ),
                i,
            ));
        }
        // 301/302/303 turn into a GET without a body, as browsers do; 307/308 keep both.
        if matches!(ex.status, 301..=303) {
            out.method = Method::GET;
            out.body = Bytes::new();
        }
        // Credentials go only where the check sent them, as browsers do: a redirect to
        // another origin does not carry them along.
        if target.origin() != out.url.origin() {
            out.headers
                .retain(|(name, _)| !SENSITIVE.contains(&name.as_str()));
        }
        out.url = target;
    }
}

impl Probe for HttpStep {
    fn run<'a>(&'a self, ctx: StepContext<'a>) -> BoxFuture<'a, (StepResult, Outcome)> {
        Box::pin(async move {
            let index = ctx.index;
            let started = Instant::now();
            let mut listening = self.playback.as_ref().map(Playback::listening);
            let watch = listening.as_mut().map(|l| l as &mut dyn BodyWatch);
            let (result, failed) = self.request(ctx, watch).await;
            if let Some(f) = failed {
                return (result, Outcome::Fail(f));
            }
            let outcome = match (&self.playback, &listening) {
                (Some(p), Some(l)) => playback::with_step(l.judge(p, started).1, index),
                _ => Outcome::Ok,
            };
            (result, outcome)
        })
    }

    /// A playback counts to its first audio byte: what comes after, the listener hears while
    /// it arrives, and its pace is judged by the delivery rate instead.
    fn counted_us(&self, result: &StepResult) -> u64 {
        let p = &result.phases;
        if self.playback.is_some() {
            p.total_us.saturating_sub(p.transfer_us)
        } else {
            p.total_us
        }
    }
}

impl HttpStep {
    /// Whether the step says which statuses are fine (else 2xx and 3xx are).
    pub fn judges_status(&self) -> bool {
        self.assertions.iter().any(|a| a.judges_status())
    }

    async fn request(
        &self,
        ctx: StepContext<'_>,
        watch: Option<&mut dyn BodyWatch>,
    ) -> (StepResult, Option<Failure>) {
        let step = self;
        let (i, name) = (ctx.index, ctx.name);
        let mut result = ctx.result();
        let out = match outgoing(step, i, ctx.vars) {
            Ok(o) => o,
            Err(f) => return (result, Some(f)),
        };
        let started = Instant::now();
        let (ex, phases) = match send(ctx.check, out, i, ctx.pool, ctx.limits, watch).await {
            Ok(x) => x,
            Err(f) => {
                result.phases.total_us = started.elapsed().as_micros() as u64;
                return (result, Some(f));
            }
        };
        result.status = Some(ex.status);
        result.bytes = ex.wire_bytes;
        result.phases = phases;
        result.cert_days_left = ex.cert_days_left;
        result.reused_connection = ex.reused;
        let response = Response::new(
            ex.status,
            &ex.headers,
            &ex.body,
            Duration::from_micros(phases.total_us),
            ex.cert_days_left,
        );
        if !step.judges_status()
            && let Err(e) = default_status_ok(ex.status)
        {
            let message = format!("step {name:?}: {e}");
            return (result, Some(failure(FailureKind::Assertion, message, i)));
        }
        for a in &step.assertions {
            if let Err(e) = a.check(&response) {
                return (
                    result,
                    Some(failure(
                        FailureKind::Assertion,
                        format!("step {name:?}: {e}"),
                        i,
                    )),
                );
            }
        }
        for c in &step.captures {
            match c.extract(&response) {
                Ok(v) => {
                    ctx.vars.insert(c.name.clone(), v);
                }
                Err(e) => {
                    return (
                        result,
                        Some(failure(
                            FailureKind::Capture,
                            format!("step {name:?}: {e}"),
                            i,
                        )),
                    );
                }
            }
        }
        (result, None)
    }
}

//! `probes:`, `variables:` and `checks:` in the config: from the config as written to validated
//! `Check`s. Every regex, JSON path, cron expression, URL, template variable and CA file is
//! checked here, once, with the position of what is wrong; the agents never parse again.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use hyper::header::HeaderName;
use lookout_conf::{Cron, Dur, Located, Report, Spanned, duration_in, moved, number_in};
use lookout_model::heartbeat::Heartbeat;
use lookout_model::slo::Slo;
use serde::Deserialize;

use crate::check::{self, Check, ScheduleSpec, Step};
use crate::kind::Probe;
use crate::kind::http::HttpStep;
use crate::template::Template;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawProbes {
    pub regions: Option<Spanned<Vec<Spanned<String>>>>,
    pub spool_max_mb: Option<Spanned<u64>>,
    pub batch_max: Option<Spanned<usize>>,
    pub flush_interval: Option<Spanned<Dur>>,
    pub run_on_start: Option<bool>,
    /// Put a controllable TCP proxy (delay, cut) between each region's agent and the gateway.
    pub region_links: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: String,
    pub interval: Option<Spanned<Dur>>,
    pub cron: Option<Spanned<String>>,
    pub timeout: Option<Spanned<Dur>>,
    /// The check's own SLO parts, over the top-level `slo:`.
    pub slo: Option<Spanned<lookout_conf::slo::RawSlo>>,
    /// Moved into `slo:`; kept to say so.
    pub latency_objective: Option<Spanned<Dur>>,
    pub regions: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub reuse_connections: bool,
    /// A PEM file of CA certificates, or the PEM itself.
    pub ca: Option<Spanned<String>>,
    pub max_body_bytes: Option<Spanned<usize>>,
    pub max_redirects: Option<Spanned<u8>>,
    pub steps: Option<Spanned<Vec<Spanned<RawStep>>>>,
    /// A check no prober runs: a job reports to the collector instead.
    pub heartbeat: Option<Spanned<RawHeartbeat>>,
}

/// `heartbeat:` in a check, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeartbeat {
    pub period: Spanned<Dur>,
    pub grace: Option<Spanned<Dur>>,
    /// The bearer token reports carry (`${ENV}` it in).
    pub token: Spanned<String>,
}

impl RawHeartbeat {
    fn build(self, at: &str, report: &mut Report) -> Option<Heartbeat> {
        use lookout_model::heartbeat::{MAX_PERIOD, MIN_PERIOD};
        let mut ok = true;
        let period = self.period.value.0;
        if period < MIN_PERIOD || period > MAX_PERIOD {
            report(
                self.period.loc(),
                &format!("{at}.heartbeat.period"),
                format!(
                    "{}: a heartbeat's period must be from {} to {} days",
                    humantime::format_duration(period),
                    humantime::format_duration(MIN_PERIOD),
                    MAX_PERIOD.as_secs() / 86_400
                ),
            );
            ok = false;
        }
        // A tenth of the period by default: a nightly job may run a couple of hours late.
        let grace = duration_in(
            report,
            &self.grace,
            &format!("{at}.heartbeat.grace"),
            period / 10,
            Duration::ZERO,
            MAX_PERIOD,
        );
        if self.token.value.trim().is_empty() {
            report(
                self.token.loc(),
                &format!("{at}.heartbeat.token"),
                "a heartbeat needs its own token, which reports carry as `Authorization: Bearer ...`"
                    .into(),
            );
            ok = false;
        }
        ok.then(|| Heartbeat {
            period,
            grace,
            token: lookout_model::secret::Secret::new(self.token.value),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub name: Option<String>,
    /// A TCP exchange instead of an HTTP request.
    pub tcp: Option<Spanned<crate::kind::tcp::RawTcp>>,
    /// A DNS query instead of an HTTP request.
    pub dns: Option<Spanned<crate::kind::dns::RawDns>>,
    /// A TLS handshake alone instead of an HTTP request.
    pub tls: Option<Spanned<crate::kind::tls::RawTls>>,
    /// ICMP echo requests instead of an HTTP request.
    pub icmp: Option<Spanned<crate::kind::icmp::RawIcmp>>,
    /// A WebSocket conversation instead of an HTTP request.
    pub websocket: Option<Spanned<crate::kind::websocket::RawWebSocket>>,
    pub method: Option<Spanned<String>>,
    /// An HTTP request (the step's kind unless it names another).
    pub url: Option<Spanned<String>>,
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
    pub body: Option<Spanned<String>>,
    #[serde(default)]
    pub capture: Vec<Spanned<crate::capture::CaptureConfig>>,
    #[serde(default)]
    pub assert: Vec<Spanned<crate::assert::AssertionConfig>>,
    /// Plays what the HTTP request fetches, judged by the audio's delivery rate.
    pub playback: Option<Spanned<crate::kind::playback::RawPlayback>>,
}

/// How the agents run and deliver, whichever checks they run.
#[derive(Debug, Clone)]
pub struct ProbesConfig {
    pub regions: Vec<String>,
    pub spool_max_bytes: u64,
    pub batch_max: usize,
    pub flush_interval: Duration,
    pub run_on_start: bool,
    pub region_links: bool,
}

/// `probes:`, its regions validated.
pub fn validate_probes(raw: RawProbes, report: &mut Report) -> ProbesConfig {
    let regions = validate_regions(raw.regions, report);
    let ms = Duration::from_millis;
    let flush_interval = duration_in(
        report,
        &raw.flush_interval,
        "probes.flush_interval",
        ms(250),
        ms(10),
        Duration::from_secs(60),
    );
    let spool_max_mb = number_in(
        report,
        raw.spool_max_mb.as_ref(),
        "probes.spool_max_mb",
        64,
        1,
        100_000,
    );
    let batch_max = number_in(
        report,
        raw.batch_max.as_ref(),
        "probes.batch_max",
        500,
        1,
        lookout_model::probe::MAX_BATCH,
    );
    ProbesConfig {
        regions,
        spool_max_bytes: spool_max_mb << 20,
        batch_max,
        flush_interval,
        run_on_start: raw.run_on_start.unwrap_or(true),
        region_links: raw.region_links.unwrap_or(true),
    }
}

/// Regions `lookout up` runs agents in when the config names none.
pub const DEFAULT_REGIONS: [&str; 3] = ["eu-west", "us-east", "ap-south"];

fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn validate_regions(
    raw: Option<Spanned<Vec<Spanned<String>>>>,
    report: &mut Report,
) -> Vec<String> {
    let Some(list) = raw else {
        return DEFAULT_REGIONS.iter().map(|s| s.to_string()).collect();
    };
    if list.value.is_empty() {
        report(
            list.loc(),
            "probes.regions",
            "must name at least one region".into(),
        );
    }
    let mut out: Vec<String> = Vec::new();
    for (i, r) in list.value.iter().enumerate() {
        let path = format!("probes.regions[{i}]");
        if !name_ok(&r.value) {
            report(
                r.loc(),
                &path,
                format!(
                    "{:?} is not a region name: letters, digits, `-` or `_`",
                    r.value
                ),
            );
        } else if out.contains(&r.value) {
            report(
                r.loc(),
                &path,
                format!("region {:?} is listed twice", r.value),
            );
        }
        out.push(r.value.clone());
    }
    out
}

pub fn validate_variables(
    raw: &BTreeMap<String, Spanned<String>>,
    report: &mut Report,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in raw {
        if Template::parse(&format!("{{{{{k}}}}}")).is_err() {
            report(
                v.loc(),
                &format!("variables.{k}"),
                "a variable name is letters, digits, `_`, `.` or `-`".into(),
            );
        }
        out.insert(k.clone(), v.value.clone());
    }
    out
}

/// The checks, and each one's SLO (`defaults` with the check's own parts over them).
pub fn validate_checks(
    raw: Vec<Spanned<RawCheck>>,
    regions: &[String],
    variables: &BTreeMap<String, String>,
    defaults: Slo,
    base_dir: &Path,
    report: &mut Report,
) -> (Vec<Arc<Check>>, BTreeMap<String, Slo>) {
    let mut names = HashSet::new();
    let mut out = Vec::new();
    let mut slos = BTreeMap::new();
    for (ci, spanned) in raw.into_iter().enumerate() {
        let loc = spanned.loc();
        let c = spanned.value;
        let at = format!("checks[{ci}] ({})", c.name.value);
        if !name_ok(&c.name.value) {
            report(
                c.name.loc(),
                &format!("checks[{ci}].name"),
                format!(
                    "{:?} is not a check name: 1 to 64 letters, digits, `-` or `_`",
                    c.name.value
                ),
            );
        } else if !names.insert(c.name.value.clone()) {
            report(
                c.name.loc(),
                &format!("checks[{ci}].name"),
                format!("check {:?} is defined twice", c.name.value),
            );
        }
        let schedule = match (&c.interval, &c.cron) {
            (Some(_), Some(cron)) => {
                report(
                    cron.loc(),
                    &format!("{at}.cron"),
                    "give `interval` or `cron`, not both".into(),
                );
                ScheduleSpec::Every(check::DEFAULT_INTERVAL)
            }
            (None, Some(cron)) => match Cron::parse(&cron.value) {
                Ok(c) => ScheduleSpec::Cron(c),
                Err(e) => {
                    report(cron.loc(), &format!("{at}.cron"), e);
                    ScheduleSpec::Every(check::DEFAULT_INTERVAL)
                }
            },
            (interval, None) => ScheduleSpec::Every(duration_in(
                report,
                interval,
                &format!("{at}.interval"),
                check::DEFAULT_INTERVAL,
                Duration::from_secs(1),
                Duration::from_secs(86_400),
            )),
        };
        let timeout = duration_in(
            report,
            &c.timeout,
            &format!("{at}.timeout"),
            check::DEFAULT_TIMEOUT,
            Duration::from_millis(10),
            Duration::from_secs(120),
        );
        let gap = match &schedule {
            ScheduleSpec::Every(interval) => Some(*interval),
            ScheduleSpec::Cron(c) => {
                crate::schedule::Schedule::Cron(c.clone()).nominal_interval(chrono::Utc::now())
            }
        };
        if let Some(gap) = gap
            && timeout > gap
        {
            let where_ = c.timeout.as_ref().and_then(|t| t.loc()).or(loc);
            report(
                where_,
                &format!("{at}.timeout"),
                format!(
                    "({}) must not be longer than the time between runs ({}): runs would overlap",
                    humantime::format_duration(timeout),
                    humantime::format_duration(gap)
                ),
            );
        }
        moved(
            &c.latency_objective,
            &format!("{at}.latency_objective"),
            "the latency objective is part of the check's SLO: write `slo: { latency_objective: 800ms }` in the check (or at the top level for every check)",
            report,
        );
        let slo = lookout_conf::slo::validate_slo(c.slo, defaults, &format!("{at}.slo"), report);
        slos.insert(c.name.value.clone(), slo);
        let mut check_regions = Vec::new();
        if let Some(list) = &c.regions {
            for (i, r) in list.value.iter().enumerate() {
                if !regions.contains(&r.value) {
                    report(
                        r.loc(),
                        &format!("{at}.regions[{i}]"),
                        format!(
                            "{:?} is not one of probes.regions ({})",
                            r.value,
                            regions.join(", ")
                        ),
                    );
                }
                check_regions.push(r.value.clone());
            }
        }
        let tls = match &c.ca {
            None => crate::http::tls::public_roots(),
            // The PEM itself, written in the config (a CA is public), or a file holding it.
            Some(ca) if ca.value.trim_start().starts_with("-----BEGIN") => {
                match crate::http::tls::from_ca_pem("the inline CA", ca.value.as_bytes()) {
                    Ok(t) => t,
                    Err(e) => {
                        report(ca.loc(), &format!("{at}.ca"), e.to_string());
                        crate::http::tls::public_roots()
                    }
                }
            }
            Some(ca) => {
                let path = base_dir.join(&ca.value);
                match crate::http::tls::load_ca(&path.display().to_string()) {
                    Ok(t) => t,
                    Err(e) => {
                        report(ca.loc(), &format!("{at}.ca"), e.to_string());
                        crate::http::tls::public_roots()
                    }
                }
            }
        };
        let max_body = match &c.max_body_bytes {
            Some(m) if m.value == 0 || m.value > 256 << 20 => {
                report(
                    m.loc(),
                    &format!("{at}.max_body_bytes"),
                    format!("must be from 1 to {}, got {}", 256 << 20, m.value),
                );
                check::DEFAULT_MAX_BODY
            }
            Some(m) => m.value,
            None => check::DEFAULT_MAX_BODY,
        };
        let max_redirects = match &c.max_redirects {
            Some(m) if m.value > 20 => {
                report(
                    m.loc(),
                    &format!("{at}.max_redirects"),
                    format!("must be from 0 to 20, got {}", m.value),
                );
                check::DEFAULT_MAX_REDIRECTS
            }
            Some(m) => m.value,
            None => check::DEFAULT_MAX_REDIRECTS,
        };
        let wrote_heartbeat = c.heartbeat.is_some();
        let heartbeat = match c.heartbeat {
            None => None,
            Some(h) => {
                for (field, loc) in [
                    ("steps", c.steps.as_ref().map(Spanned::loc)),
                    ("interval", c.interval.as_ref().map(Spanned::loc)),
                    ("cron", c.cron.as_ref().map(Spanned::loc)),
                    ("timeout", c.timeout.as_ref().map(Spanned::loc)),
                    ("regions", c.regions.as_ref().map(Spanned::loc)),
                ] {
                    if let Some(loc) = loc {
                        report(
                            loc,
                            &format!("{at}.{field}"),
                            "a heartbeat check is run by whoever reports to it: `heartbeat.period` says how often, and it has no steps, schedule, timeout or regions".into(),
                        );
                    }
                }
                h.value.build(&at, report)
            }
        };
        let raw_steps = c.steps.unwrap_or_else(|| Spanned::unlocated(Vec::new()));
        if raw_steps.value.is_empty() && !wrote_heartbeat {
            report(
                raw_steps.loc().or(loc),
                &format!("{at}.steps"),
                "a check needs at least one step (or `heartbeat:`, for a job that reports itself)"
                    .into(),
            );
        }
        let mut known: HashSet<String> = variables.keys().cloned().collect();
        let mut steps = Vec::new();
        for (si, step) in raw_steps.value.into_iter().enumerate() {
            if let Some(s) =
                validate_step(step, &format!("{at}.steps[{si}]"), si, &mut known, report)
            {
                steps.push(s);
            }
        }
        out.push(Arc::new(Check {
            name: c.name.value,
            description: c.description,
            schedule,
            timeout,
            regions: check_regions,
            reuse_connections: c.reuse_connections,
            max_body,
            max_redirects,
            tls,
            steps,
            heartbeat,
        }));
    }
    (out, slos)
}

fn template(
    report: &mut Report,
    v: &Spanned<String>,
    path: &str,
    known: &HashSet<String>,
) -> Option<Template> {
    match Template::parse(&v.value) {
        Ok(t) => {
            for var in t.vars() {
                if !known.contains(var) {
                    report(
                        v.loc(),
                        path,
                        format!(
                            "uses `{{{{{var}}}}}`, which is neither in `variables` nor captured by an earlier step"
                        ),
                    );
                }
            }
            Some(t)
        }
        Err(e) => {
            report(v.loc(), path, e);
            None
        }
    }
}

fn validate_step(
    spanned: Spanned<RawStep>,
    at: &str,
    index: usize,
    known: &mut HashSet<String>,
    report: &mut Report,
) -> Option<Step> {
    let loc = spanned.loc();
    let mut s = spanned.value;
    let name = s
        .name
        .take()
        .unwrap_or_else(|| format!("step {}", index + 1));
    // The kinds written in the step: it must be exactly one of them.
    let written: Vec<(&str, Option<Located>)> = [
        ("url", s.url.as_ref().map(Spanned::loc)),
        ("tcp", s.tcp.as_ref().map(Spanned::loc)),
        ("dns", s.dns.as_ref().map(Spanned::loc)),
        ("tls", s.tls.as_ref().map(Spanned::loc)),
        ("icmp", s.icmp.as_ref().map(Spanned::loc)),
        ("websocket", s.websocket.as_ref().map(Spanned::loc)),
    ]
    .into_iter()
    .filter_map(|(kind, loc)| loc.map(|l| (kind, l)))
    .collect();
    match written.as_slice() {
        [] => {
            report(
                loc,
                at,
                "a step needs one of `url` (an HTTP request), `tcp` (a TCP exchange), `dns` (a DNS query), `tls` (a TLS handshake), `icmp` (echo requests) or `websocket` (a WebSocket conversation)"
                    .into(),
            );
            return None;
        }
        [(first, _), (second, second_loc), ..] => {
            report(
                *second_loc,
                &format!("{at}.{second}"),
                format!("a step is one kind: `{first}` or `{second}`, not both"),
            );
            return None;
        }
        [_] => {}
    }
    let probe: Box<dyn Probe> = if let Some(tcp) = s.tcp.take() {
        http_only(&s, at, "tcp", report);
        Box::new(tcp.value.build(at, report)?)
    } else if let Some(dns) = s.dns.take() {
        http_only(&s, at, "dns", report);
        Box::new(dns.value.build(at, report)?)
    } else if let Some(tls) = s.tls.take() {
        http_only(&s, at, "tls", report);
        Box::new(tls.value.build(at, report)?)
    } else if let Some(icmp) = s.icmp.take() {
        http_only(&s, at, "icmp", report);
        Box::new(icmp.value.build(at, report)?)
    } else if let Some(ws) = s.websocket.take() {
        http_only(&s, at, "websocket", report);
        Box::new(ws.value.build(at, report)?)
    } else {
        let url = s.url.take()?;
        Box::new(validate_http(s, url, at, known, report)?)
    };
    Some(Step { name, probe })
}

/// Reports what only an HTTP step has, written in a step of another kind.
fn http_only(s: &RawStep, at: &str, kind: &str, report: &mut Report) {
    let written = [
        (
            "method",
            s.method.as_ref().and_then(Spanned::loc),
            s.method.is_some(),
        ),
        (
            "headers",
            s.headers.values().next().and_then(Spanned::loc),
            !s.headers.is_empty(),
        ),
        (
            "body",
            s.body.as_ref().and_then(Spanned::loc),
            s.body.is_some(),
        ),
        (
            "capture",
            s.capture.first().and_then(Spanned::loc),
            !s.capture.is_empty(),
        ),
        (
            "assert",
            s.assert.first().and_then(Spanned::loc),
            !s.assert.is_empty(),
        ),
        (
            "playback",
            s.playback.as_ref().and_then(Spanned::loc),
            s.playback.is_some(),
        ),
    ];
    for (field, loc, given) in written {
        if given {
            report(
                loc,
                &format!("{at}.{field}"),
                format!("is for HTTP steps; a `{kind}` step checks its reply with its own fields"),
            );
        }
    }
}

fn validate_http(
    s: RawStep,
    url_text: Spanned<String>,
    at: &str,
    known: &mut HashSet<String>,
    report: &mut Report,
) -> Option<HttpStep> {
    let method = match &s.method {
        None => Method::GET,
        Some(m) => match Method::from_bytes(m.value.to_ascii_uppercase().as_bytes()) {
            Ok(method) if m.value.chars().all(|c| c.is_ascii_alphabetic()) => method,
            _ => {
                report(
                    m.loc(),
                    &format!("{at}.method"),
                    format!("{:?} is not an HTTP method", m.value),
                );
                Method::GET
            }
        },
    };
    let url = template(report, &url_text, &format!("{at}.url"), known);
    if let Some(t) = &url {
        // A URL that starts with a variable is checked when it is filled in; any other must
        // already look like one.
        if !url_text.value.trim_start().starts_with("{{") {
            match reqwest::Url::parse(&t.sample()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                Ok(u) => report(
                    url_text.loc(),
                    &format!("{at}.url"),
                    format!(
                        "{:?}: only http and https URLs with a host can be probed, not {}",
                        url_text.value,
                        u.scheme()
                    ),
                ),
                Err(e) => report(
                    url_text.loc(),
                    &format!("{at}.url"),
                    format!("{:?} is not a URL: {e}", url_text.value),
                ),
            }
        }
    }
    let mut headers = Vec::new();
    for (name, value) in &s.headers {
        let path = format!("{at}.headers.{name}");
        match HeaderName::try_from(name.as_str()) {
            Ok(h) => {
                if let Some(t) = template(report, value, &path, known) {
                    headers.push((h, t));
                }
            }
            Err(_) => report(value.loc(), &path, format!("{name:?} is not a header name")),
        }
    }
    let body = s
        .body
        .as_ref()
        .and_then(|b| template(report, b, &format!("{at}.body"), known));
    let mut captures = Vec::new();
    for (i, c) in s.capture.into_iter().enumerate() {
        let loc = c.loc();
        let name = c.value.name.clone();
        match c.value.build() {
            Ok(capture) => {
                known.insert(name);
                captures.push(capture);
            }
            Err(e) => report(loc, &format!("{at}.capture[{i}]"), e),
        }
    }
    let mut assertions = Vec::new();
    for (i, a) in s.assert.into_iter().enumerate() {
        let loc = a.loc();
        match a.value.build() {
            Ok(x) => assertions.push(x),
            Err(e) => report(loc, &format!("{at}.assert[{i}]"), e),
        }
    }
    let playback = match s.playback {
        None => None,
        Some(p) => Some(p.value.build(at, report)?),
    };
    Some(HttpStep {
        method,
        url: url?,
        headers,
        body,
        captures,
        assertions,
        playback,
    })
}

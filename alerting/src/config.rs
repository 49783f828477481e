//! `alerting:` in the config: the alerter's listener and token, its notifiers (channels, with
//! their secrets), checks with their subscriptions, subscriptions for the generated checks,
//! and the generated checks' settings (their objectives are the collector's SLOs). Every notifier is built and every
//! target parsed here, so `lookout check-config` finds what the alerter would refuse.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;

use lookout_conf::{Dur, Report, Spanned, duration_in, moved};
use lookout_model::secret::Secret;
use serde::Deserialize;

use crate::check::{Check, Origin};
use crate::generate::{BurnAlert, GenerateSettings};
use crate::notify::{self, Notifier, NotifierConfig, RawNotifier};
use crate::spec::{CheckSpec, SubscriptionSpec};
use crate::subscription::Subscription;
use crate::target::Percentile;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAlerting {
    /// Whether `lookout up` runs the alerter (default true).
    pub enabled: Option<bool>,
    pub listen: Option<Spanned<SocketAddr>>,
    /// Guards the alerter's API.
    pub token: Option<Spanned<Secret>>,
    /// Tokens that read the API and the console and change nothing.
    pub read_tokens: Vec<Spanned<Secret>>,
    pub console: RawConsole,
    pub prometheus: Option<Spanned<RawPrometheus>>,
    pub confirm_after: Option<Spanned<Dur>>,
    pub recheck_every: Option<Spanned<Dur>>,
    /// `0s` turns reminders off.
    pub reminder_every: Option<Spanned<Dur>>,
    pub links: RawLinks,
    pub heartbeat: Option<Spanned<RawHeartbeat>>,
    pub generate: RawGenerate,
    /// Subscriptions for every generated check.
    pub subscribe: Vec<Spanned<SubscriptionSpec>>,
    pub notifiers: BTreeMap<String, Spanned<RawNotifier>>,
    pub checks: Vec<Spanned<CheckSpec>>,
    /// Moved to the top-level `maintenance:`; kept to say so.
    pub maintenance: Option<Spanned<serde::de::IgnoredAny>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConsole {
    pub session_ttl: Option<Spanned<Dur>>,
    pub ack_link_ttl: Option<Spanned<Dur>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrometheus {
    pub url: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLinks {
    pub status_page: Option<String>,
    pub dashboard: Option<String>,
    pub alerter: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeartbeat {
    pub url: Secret,
    pub every: Option<Dur>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawGenerate {
    pub enabled: Option<bool>,
    /// The group of the generated down checks; `none` for one problem per check.
    pub down_group: Option<String>,
    pub latency_percentile: Option<Spanned<String>>,
    pub latency_window: Option<Spanned<Dur>>,
    pub latency_error_factor: Option<Spanned<f64>>,
    /// Moved to `slo.window`; kept to say so.
    pub slo_window: Option<Spanned<Dur>>,
    pub min_bad_minutes: Option<Spanned<u32>>,
    pub regional_after: Option<Spanned<Dur>>,
    pub burn_rates: Option<Spanned<Vec<Spanned<RawBurn>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBurn {
    pub long: Dur,
    pub short: Dur,
    /// The share of the SLO window's budget burnt over `long`, e.g. `2%` or 0.02.
    pub budget: String,
    /// `page` or `ticket`.
    pub severity: String,
}

/// The validated `alerting:` section.
#[derive(Clone)]
pub struct AlertingConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
    pub token: Secret,
    pub read_tokens: Vec<Secret>,
    pub session_ttl: Duration,
    pub ack_link_ttl: Duration,
    pub prometheus: Option<url::Url>,
    pub confirm_after: Duration,
    pub recheck_every: Duration,
    pub reminder_every: Option<Duration>,
    pub links: crate::engine::LinkSettings,
    pub heartbeat: Option<crate::Heartbeat>,
    pub generate: GenerateSettings,
    pub subscribe: Vec<SubscriptionSpec>,
    /// Every channel, built once here; `log` is always there.
    pub notifiers: BTreeMap<String, Arc<dyn Notifier>>,
    /// Checks from the config, with their subscriptions.
    pub checks: Vec<Check>,
    pub subscriptions: Vec<Subscription>,
}

impl std::fmt::Debug for AlertingConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertingConfig")
            .field("listen", &self.listen)
            .field("checks", &self.checks.len())
            .field("notifiers", &self.notifiers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl AlertingConfig {
    /// What a running alerter takes from this config when it is reloaded.
    pub fn reloaded(&self) -> crate::reload::Reloaded {
        crate::reload::Reloaded {
            checks: self.checks.clone(),
            subscriptions: self.subscriptions.clone(),
            notifiers: self.notifiers.clone(),
            generate: self.generate.clone(),
            subscribe: if self.subscribe.is_empty() {
                vec![SubscriptionSpec::log()]
            } else {
                self.subscribe.clone()
            },
            reminder_every: self.reminder_every,
            recheck_every: self.recheck_every,
            links: self.links.clone(),
            read_tokens: self.read_tokens.clone(),
        }
    }
}

fn percentile(s: &str) -> Option<Percentile> {
    Some(match s {
        "p50" => Percentile::P50,
        "p95" => Percentile::P95,
        "p99" => Percentile::P99,
        "max" => Percentile::Max,
        _ => return None,
    })
}

/// A share of the budget: above 0, at most all of it.
fn share(s: &str) -> Option<f64> {
    lookout_conf::share(s).filter(|v| *v > 0.0 && *v <= 1.0)
}

/// `known` are the names of the config's probe checks, which targets may name.
pub fn validate(raw: RawAlerting, known: &[String], report: &mut Report) -> AlertingConfig {
    let listen = raw
        .listen
        .as_ref()
        .map_or(SocketAddr::from(([127, 0, 0, 1], 8091)), |l| l.value);
    let token = match raw.token {
        Some(t) if t.value.is_empty() => {
            report(
                t.loc(),
                "alerting.token",
                "must not be empty: it guards the alerter's API".into(),
            );
            t.value
        }
        Some(t) => t.value,
        None => Secret::default(),
    };
    let prometheus = raw
        .prometheus
        .and_then(|p| match url::Url::parse(&p.value.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u),
            _ => {
                report(
                    p.loc(),
                    "alerting.prometheus.url",
                    format!("{:?} is not an http(s) URL", p.value.url),
                );
                None
            }
        });
    let s = Duration::from_secs;
    let confirm_after = duration_in(
        report,
        &raw.confirm_after,
        "alerting.confirm_after",
        s(7),
        Duration::ZERO,
        s(600),
    );
    let recheck_every = duration_in(
        report,
        &raw.recheck_every,
        "alerting.recheck_every",
        s(3),
        s(1),
        s(600),
    );
    let session_ttl = duration_in(
        report,
        &raw.console.session_ttl,
        "alerting.console.session_ttl",
        s(12 * 3600),
        s(60),
        s(30 * 86_400),
    );
    let ack_link_ttl = duration_in(
        report,
        &raw.console.ack_link_ttl,
        "alerting.console.ack_link_ttl",
        s(24 * 3600),
        s(60),
        s(30 * 86_400),
    );
    let mut read_tokens = Vec::new();
    for (i, t) in raw.read_tokens.into_iter().enumerate() {
        if t.value.is_empty() {
            report(
                t.loc(),
                &format!("alerting.read_tokens[{i}]"),
                "must not be empty".into(),
            );
        } else if t.value.expose() == token.expose() {
            report(
                t.loc(),
                &format!("alerting.read_tokens[{i}]"),
                "is the API token itself, which reads and writes: give read-only tokens their own values".into(),
            );
        } else {
            read_tokens.push(t.value);
        }
    }
    let reminder = duration_in(
        report,
        &raw.reminder_every,
        "alerting.reminder_every",
        s(3600),
        Duration::ZERO,
        s(7 * 86_400),
    );
    if let Some(r) = &raw.reminder_every
        && !r.value.0.is_zero()
        && r.value.0 < s(60)
    {
        report(
            r.loc(),
            "alerting.reminder_every",
            "must be at least 1m (or 0s for no reminders)".into(),
        );
    }
    let heartbeat = raw.heartbeat.and_then(|h| {
        if url::Url::parse(h.value.url.expose()).is_err() {
            report(h.loc(), "alerting.heartbeat.url", "is not a URL".into());
            return None;
        }
        Some(crate::Heartbeat {
            url: h.value.url,
            every: h.value.every.map_or(s(60), |d| d.0),
        })
    });
    let generate = validate_generate(raw.generate, report);

    let mut built: BTreeMap<String, Arc<dyn Notifier>> = BTreeMap::new();
    for (name, n) in raw.notifiers {
        let path = format!("alerting.notifiers.{name}");
        if !crate::check::valid_id(&name) {
            report(n.loc(), &path, format!("{name:?} is not a notifier name"));
            continue;
        }
        let loc = n.loc();
        match NotifierConfig::try_from(n.value).and_then(|c| notify::build(&c)) {
            Ok(b) => {
                built.insert(name, b);
            }
            Err(e) => report(loc, &path, e),
        }
    }
    built
        .entry("log".into())
        .or_insert_with(|| Arc::new(notify::log::LogNotifier));

    for (i, sub) in raw.subscribe.iter().enumerate() {
        if let Err(e) = crate::api::subscription(&built, "any", sub.value.clone(), "check".into()) {
            report(sub.loc(), &format!("alerting.subscribe[{i}]"), e);
        }
    }

    let mut checks = Vec::new();
    let mut subscriptions = Vec::new();
    for (i, c) in raw.checks.iter().enumerate() {
        let path = format!("alerting.checks[{i}]");
        match c.value.to_check(Origin::Config) {
            Ok(check) => {
                if let crate::check::Measure::Target(e) = &check.measure {
                    for name in e.checks() {
                        if !known.iter().any(|k| k == name) {
                            report(
                                c.loc(),
                                &format!("{path}.target"),
                                if known.is_empty() {
                                    format!("names check {name:?}, but the config has no `checks`")
                                } else {
                                    format!(
                                        "names check {name:?}, which is not among `checks` ({})",
                                        known.join(", ")
                                    )
                                },
                            );
                        }
                    }
                }
                if checks.iter().any(|x: &Check| x.id == check.id) {
                    report(
                        c.loc(),
                        &path,
                        format!("the id {:?} is used twice", check.id),
                    );
                }
                for (j, sub) in c.value.subscriptions.iter().enumerate() {
                    let id = sub
                        .id
                        .clone()
                        .unwrap_or_else(|| format!("{}:{}:{j}", check.id, sub.notifier));
                    match crate::api::subscription(&built, &check.id, sub.clone(), id) {
                        Ok(s) => subscriptions.push(s),
                        Err(e) => report(c.loc(), &format!("{path}.subscriptions[{j}]"), e),
                    }
                }
                checks.push(check);
            }
            // The first line: the caret under the target is for the API's answers.
            Err(e) => report(
                c.loc(),
                &format!("{path}.{}", e.field),
                e.message.lines().next().unwrap_or_default().to_owned(),
            ),
        }
    }
    for (i, c) in checks.iter().enumerate() {
        for d in &c.depends_on {
            if !checks.iter().any(|x| &x.id == d) && !d.ends_with("-down") {
                report(
                    raw.checks.get(i).and_then(|x| x.loc()),
                    &format!("alerting.checks[{i}].depends_on"),
                    format!(
                        "no check with id {d:?} (generated ones are named CHECK-down, CHECK-latency, ...)"
                    ),
                );
            }
        }
    }

    moved(
        &raw.maintenance,
        "alerting.maintenance",
        lookout_conf::MAINTENANCE_MOVED,
        report,
    );

    AlertingConfig {
        enabled: raw.enabled.unwrap_or(true),
        listen,
        token,
        read_tokens,
        session_ttl,
        ack_link_ttl,
        prometheus,
        confirm_after,
        recheck_every,
        reminder_every: (!reminder.is_zero()).then_some(reminder),
        links: crate::engine::LinkSettings {
            status_page: raw.links.status_page,
            dashboard: raw.links.dashboard,
            alerter: raw.links.alerter,
        },
        heartbeat,
        generate,
        subscribe: raw.subscribe.into_iter().map(|s| s.value).collect(),
        notifiers: built,
        checks,
        subscriptions,
    }
}

fn validate_generate(g: RawGenerate, report: &mut Report) -> GenerateSettings {
    moved(
        &g.slo_window,
        "alerting.generate.slo_window",
        "the SLO window is each check's SLO: write `slo: { window: 90d }` at the top level (every check) or in a check",
        report,
    );
    let d = GenerateSettings::default();
    let s = Duration::from_secs;
    let latency_percentile = match &g.latency_percentile {
        None => d.latency_percentile,
        Some(p) => percentile(&p.value).unwrap_or_else(|| {
            report(
                p.loc(),
                "alerting.generate.latency_percentile",
                format!("{:?} is not one of p50, p95, p99, max", p.value),
            );
            d.latency_percentile
        }),
    };
    let latency_error_factor = match &g.latency_error_factor {
        Some(f) if !(f.value >= 1.0 && f.value <= 100.0) => {
            report(
                f.loc(),
                "alerting.generate.latency_error_factor",
                format!("must be from 1 to 100, got {}", f.value),
            );
            d.latency_error_factor
        }
        Some(f) => f.value,
        None => d.latency_error_factor,
    };
    let burn_alerts = match &g.burn_rates {
        None => d.burn_alerts.clone(),
        Some(list) => {
            let mut out = Vec::new();
            for (i, b) in list.value.iter().enumerate() {
                let path = format!("alerting.generate.burn_rates[{i}]");
                let Some(budget_share) = share(&b.value.budget) else {
                    report(
                        b.loc(),
                        &format!("{path}.budget"),
                        format!(
                            "{:?} is not a share of the budget such as 2% or 0.02",
                            b.value.budget
                        ),
                    );
                    continue;
                };
                let page = match b.value.severity.as_str() {
                    "page" => true,
                    "ticket" => false,
                    other => {
                        report(
                            b.loc(),
                            &format!("{path}.severity"),
                            format!("{other:?} is not page or ticket"),
                        );
                        continue;
                    }
                };
                if b.value.short.0 >= b.value.long.0 {
                    report(b.loc(), &path, "`short` must be shorter than `long`".into());
                    continue;
                }
                out.push(BurnAlert {
                    long: b.value.long.0,
                    short: b.value.short.0,
                    budget_share,
                    page,
                });
            }
            out
        }
    };
    GenerateSettings {
        enabled: g.enabled.unwrap_or(true),
        down_group: match g.down_group.as_deref() {
            None => d.down_group.clone(),
            Some("none") => None,
            Some(x) => Some(x.to_owned()),
        },
        latency_percentile,
        latency_window: duration_in(
            report,
            &g.latency_window,
            "alerting.generate.latency_window",
            d.latency_window,
            s(60),
            s(86_400),
        ),
        latency_error_factor,
        burn_alerts,
        min_bad_minutes: g.min_bad_minutes.map_or(d.min_bad_minutes, |m| m.value),
        regional_after: duration_in(
            report,
            &g.regional_after,
            "alerting.generate.regional_after",
            d.regional_after,
            s(60),
            s(7 * 86_400),
        ),
    }
}

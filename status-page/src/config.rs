//! `status_page:` in the config: what partners see (components under names they understand,
//! grouped; public region names), the admin token, and the monthly report's schedule and mail
//! settings. Targets and maintenance are the collector's (`slo:`, `maintenance:`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use lookout_conf::{Cron, Dur, Report, Spanned, duration_in, moved};
use lookout_mail::{EmailConfig, RawEmail};
use lookout_model::secret::Secret;
use serde::Deserialize;

use crate::settings::{ComponentSpec, GroupSpec, ReportSettings, slug};

/// A check the page may show, as the probes' section names and describes it.
#[derive(Debug, Clone, Copy)]
pub struct KnownCheck<'a> {
    pub name: &'a str,
    pub description: &'a str,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStatusPage {
    /// Whether `lookout up` runs the status page (default true).
    pub enabled: Option<bool>,
    pub listen: Option<Spanned<SocketAddr>>,
    pub title: Option<String>,
    /// The page's public address, for links in the feed, the JSON and report mails.
    pub public_url: Option<Spanned<String>>,
    /// Guards the admin API; the collector's token when not given.
    pub admin_token: Option<Spanned<Secret>>,
    /// Moved to `slo.availability_target`; kept to say so.
    pub target: Option<Spanned<serde::de::IgnoredAny>>,
    /// Internal region -> public name. Regions not listed are never shown.
    pub regions: Option<Spanned<BTreeMap<String, String>>>,
    pub groups: Vec<Spanned<RawGroup>>,
    /// Moved to `slo.maintenance_in_sla`; kept to say so.
    pub maintenance_in_sla: Option<Spanned<serde::de::IgnoredAny>>,
    /// Moved to the top-level `maintenance:`; kept to say so.
    pub maintenance: Option<Spanned<serde::de::IgnoredAny>>,
    pub refresh_every: Option<Spanned<Dur>>,
    pub latency_window: Option<Spanned<Dur>>,
    pub history_page_size: Option<Spanned<usize>>,
    pub reports: Option<Spanned<RawReports>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    pub name: String,
    pub components: Vec<Spanned<RawComponent>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawComponent {
    pub name: String,
    /// The check behind it.
    pub check: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The public id; from the name when not given.
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReports {
    /// Cron (five-field crontab or six with seconds), UTC; default: 06:00 on the 1st.
    #[serde(default)]
    pub schedule: Option<String>,
    pub email: RawEmail,
}

#[derive(Debug, Clone)]
pub struct StatusPageConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
    pub title: String,
    pub public_url: Option<url::Url>,
    pub admin_token: Secret,
    pub regions: Vec<(String, String)>,
    pub groups: Vec<GroupSpec>,
    pub refresh_every: Duration,
    pub latency_window: Duration,
    pub history_page_size: usize,
    pub reports: Option<ReportSettings>,
}

pub fn validate(
    raw: RawStatusPage,
    checks: &[KnownCheck],
    regions: &[String],
    report: &mut Report,
) -> StatusPageConfig {
    let listen = raw
        .listen
        .as_ref()
        .map_or(SocketAddr::from(([127, 0, 0, 1], 8092)), |l| l.value);
    let public_url = raw
        .public_url
        .and_then(|u| match url::Url::parse(&u.value) {
            Ok(p) if matches!(p.scheme(), "http" | "https") => Some(p),
            _ => {
                report(
                    u.loc(),
                    "status_page.public_url",
                    format!("{:?} is not an http(s) URL", u.value),
                );
                None
            }
        });
    let admin_token = match raw.admin_token {
        Some(t) if t.value.is_empty() => {
            report(
                t.loc(),
                "status_page.admin_token",
                "must not be empty: it guards the admin API".into(),
            );
            t.value
        }
        Some(t) => t.value,
        None => Secret::default(),
    };
    moved(
        &raw.target,
        "status_page.target",
        lookout_conf::TARGET_MOVED,
        report,
    );
    moved(
        &raw.maintenance_in_sla,
        "status_page.maintenance_in_sla",
        "how maintenance counts is each check's SLO: write `slo: { maintenance_in_sla: false }` at the top level (every check) or in a check",
        report,
    );
    moved(
        &raw.maintenance,
        "status_page.maintenance",
        lookout_conf::MAINTENANCE_MOVED,
        report,
    );
    // Public names: the given map in the probes' order; every region by its own name when
    // no map is given.
    let public_regions: Vec<(String, String)> = match &raw.regions {
        None => regions.iter().map(|r| (r.clone(), r.clone())).collect(),
        Some(map) => {
            for (internal, public) in &map.value {
                if !regions.contains(internal) {
                    report(
                        map.loc(),
                        "status_page.regions",
                        format!(
                            "{internal:?} is not one of probes.regions ({})",
                            regions.join(", ")
                        ),
                    );
                }
                if public.trim().is_empty() {
                    report(
                        map.loc(),
                        "status_page.regions",
                        format!("{internal:?} has an empty public name"),
                    );
                }
            }
            regions
                .iter()
                .filter_map(|r| map.value.get(r).map(|p| (r.clone(), p.trim().to_owned())))
                .collect()
        }
    };
    let check_by_name = |name: &str| checks.iter().find(|c| c.name == name);
    let mut groups = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    if raw.groups.is_empty() {
        // Every check, under its own name, in one group.
        groups.push(GroupSpec {
            id: "platform".into(),
            name: "Platform".into(),
            components: checks
                .iter()
                .map(|c| ComponentSpec {
                    id: slug(c.name),
                    name: c.name.to_owned(),
                    description: c.description.to_owned(),
                    check: c.name.to_owned(),
                })
                .collect(),
        });
    }
    for (gi, g) in raw.groups.into_iter().enumerate() {
        let path = format!("status_page.groups[{gi}]");
        if g.value.name.trim().is_empty() {
            report(g.loc(), &format!("{path}.name"), "must not be empty".into());
        }
        let mut components = Vec::new();
        for (ci, c) in g.value.components.into_iter().enumerate() {
            let cpath = format!("{path}.components[{ci}]");
            let Some(check) = check_by_name(&c.value.check) else {
                report(
                    c.loc(),
                    &format!("{cpath}.check"),
                    format!(
                        "{:?} is not a check; the checks are {}",
                        c.value.check,
                        checks.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
                    ),
                );
                continue;
            };
            let id = c.value.id.clone().unwrap_or_else(|| slug(&c.value.name));
            if id.is_empty() || id != slug(&id) {
                report(
                    c.loc(),
                    &format!("{cpath}.id"),
                    format!("{id:?} is not a usable id: lower-case letters, digits and `-`"),
                );
            } else if ids.contains(&id) {
                report(
                    c.loc(),
                    &format!("{cpath}.id"),
                    format!("{id:?} is used twice; give one an `id`"),
                );
            }
            ids.push(id.clone());
            components.push(ComponentSpec {
                id,
                name: c.value.name.trim().to_owned(),
                description: c.value.description.unwrap_or_default(),
                check: check.name.to_owned(),
            });
        }
        groups.push(GroupSpec {
            id: slug(&g.value.name),
            name: g.value.name,
            components,
        });
    }
    let s = Duration::from_secs;
    let refresh_every = duration_in(
        report,
        &raw.refresh_every,
        "status_page.refresh_every",
        s(15),
        s(1),
        s(3600),
    );
    let latency_window = duration_in(
        report,
        &raw.latency_window,
        "status_page.latency_window",
        s(900),
        s(60),
        s(86_400),
    );
    let history_page_size = match raw.history_page_size {
        Some(n) if !(1..=200).contains(&n.value) => {
            report(
                n.loc(),
                "status_page.history_page_size",
                "must be from 1 to 200".into(),
            );
            20
        }
        Some(n) => n.value,
        None => 20,
    };
    let reports = raw.reports.and_then(|r| {
        let loc = r.loc();
        let text = r
            .value
            .schedule
            .clone()
            .unwrap_or_else(|| "0 6 1 * *".into());
        let schedule = match Cron::parse(&text) {
            Ok(s) => Some(s),
            Err(e) => {
                report(loc, "status_page.reports.schedule", e);
                None
            }
        };
        let email = match EmailConfig::try_from(r.value.email) {
            Ok(c) => {
                if c.to.is_empty() {
                    report(
                        loc,
                        "status_page.reports.email.to",
                        "must list at least one partner".into(),
                    );
                }
                Some(c)
            }
            Err(msg) => {
                report(loc, "status_page.reports.email", msg);
                None
            }
        };
        Some(ReportSettings {
            schedule: schedule?,
            email: email?,
        })
    });
    StatusPageConfig {
        enabled: raw.enabled.unwrap_or(true),
        listen,
        title: raw.title.unwrap_or_else(|| "Service status".into()),
        public_url,
        admin_token,
        regions: public_regions,
        groups,
        refresh_every,
        latency_window,
        history_page_size,
        reports,
    }
}

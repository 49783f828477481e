//! `status_page:` in the config: what partners see (components under names they understand,
//! grouped; public region names), the admin token, scheduled maintenance and how it counts,
//! and the monthly report's schedule and mail settings.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use lookout_alerting::notify::NotifierConfig;
use lookout_model::secret::Secret;
use lookout_probes::check::Check;
use lookout_status_page::settings::{
    ComponentSpec, GroupSpec, MaintenanceSla, MaintenanceSpec, slug,
};
use serde::Deserialize;

use super::Report;
use super::alerting::RawNotifier;
use super::raw::{Dur, Spanned};

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
    /// The availability promised: `99.99%` or 0.9999.
    pub target: Option<Spanned<String>>,
    /// Internal region -> public name. Regions not listed are never shown.
    pub regions: Option<Spanned<BTreeMap<String, String>>>,
    pub groups: Vec<Spanned<RawGroup>>,
    /// `excluded` (default): maintenance minutes are left out of availability; `counted`.
    pub maintenance_in_sla: Option<Spanned<String>>,
    pub maintenance: Vec<Spanned<RawMaintenance>>,
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
pub struct RawMaintenance {
    pub name: String,
    pub components: Vec<String>,
    pub starts: String,
    pub ends: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReports {
    /// Cron (five-field crontab or six with seconds), UTC; default: 06:00 on the 1st.
    #[serde(default)]
    pub schedule: Option<String>,
    pub email: RawEmail,
}

/// The alert email notifier's keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmail {
    pub host: String,
    pub port: Option<u16>,
    pub tls: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub from: String,
    pub to: Vec<String>,
    pub timeout: Option<Dur>,
}

#[derive(Debug, Clone)]
pub struct StatusPageConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
    pub title: String,
    pub public_url: Option<url::Url>,
    pub admin_token: Secret,
    pub target: f64,
    pub regions: Vec<(String, String)>,
    pub groups: Vec<GroupSpec>,
    pub maintenance_sla: MaintenanceSla,
    pub maintenance: Vec<MaintenanceSpec>,
    pub refresh_every: Duration,
    pub latency_window: Duration,
    pub history_page_size: usize,
    pub reports: Option<lookout_status_page::settings::ReportSettings>,
}

fn parse_target(v: &str) -> Option<f64> {
    let t = v.trim();
    let f = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok()? / 100.0,
        None => t.parse::<f64>().ok()?,
    };
    (f > 0.0 && f < 1.0).then_some(f)
}

fn time(v: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(v.trim())
        .ok()
        .map(|t| t.timestamp_micros())
}

pub fn validate(
    raw: RawStatusPage,
    checks: &[std::sync::Arc<Check>],
    regions: &[String],
    report: &mut Report,
) -> StatusPageConfig {
    use super::checks::duration_in;
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
    let target = match &raw.target {
        None => 0.9999,
        Some(t) => parse_target(&t.value).unwrap_or_else(|| {
            report(
                t.loc(),
                "status_page.target",
                format!(
                    "{:?} is not a share between 0 and 1 or a percentage such as 99.99%",
                    t.value
                ),
            );
            0.9999
        }),
    };
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
                    id: slug(&c.name),
                    name: c.name.clone(),
                    description: c.description.clone(),
                    check: c.name.clone(),
                    objective: c.latency_objective,
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
                        checks
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
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
                check: check.name.clone(),
                objective: check.latency_objective,
            });
        }
        groups.push(GroupSpec {
            id: slug(&g.value.name),
            name: g.value.name,
            components,
        });
    }
    let all_ids: Vec<String> = groups
        .iter()
        .flat_map(|g| g.components.iter().map(|c| c.id.clone()))
        .collect();
    let maintenance_sla = match raw
        .maintenance_in_sla
        .as_ref()
        .map(|m| (m.value.as_str(), m.loc()))
    {
        None | Some(("excluded", _)) => MaintenanceSla::Excluded,
        Some(("counted", _)) => MaintenanceSla::Counted,
        Some((other, loc)) => {
            report(
                loc,
                "status_page.maintenance_in_sla",
                format!("{other:?} is not one of excluded, counted"),
            );
            MaintenanceSla::Excluded
        }
    };
    let mut maintenance = Vec::new();
    for (i, m) in raw.maintenance.into_iter().enumerate() {
        let path = format!("status_page.maintenance[{i}]");
        let (starts, ends) = (time(&m.value.starts), time(&m.value.ends));
        let (Some(starts_us), Some(ends_us)) = (starts, ends) else {
            report(
                m.loc(),
                &path,
                "`starts` and `ends` must be RFC 3339 times, e.g. 2026-12-01T02:00:00Z".into(),
            );
            continue;
        };
        if ends_us <= starts_us {
            report(m.loc(), &path, "`ends` must be after `starts`".into());
            continue;
        }
        for c in &m.value.components {
            if !all_ids.contains(c) {
                report(
                    m.loc(),
                    &format!("{path}.components"),
                    format!(
                        "{c:?} is not a component; the components are {}",
                        all_ids.join(", ")
                    ),
                );
            }
        }
        if m.value.components.is_empty() {
            report(
                m.loc(),
                &format!("{path}.components"),
                "must name at least one component".into(),
            );
        }
        maintenance.push(MaintenanceSpec {
            name: m.value.name,
            components: m.value.components,
            starts_us,
            ends_us,
            message: m.value.message,
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
        let schedule = match lookout_probes::schedule::parse_cron(&text) {
            Ok(s) => Some(s),
            Err(e) => {
                report(loc, "status_page.reports.schedule", e);
                None
            }
        };
        let e = r.value.email;
        let as_notifier = RawNotifier::Email {
            host: e.host,
            port: e.port,
            tls: e.tls,
            username: e.username,
            password: e.password,
            from: e.from,
            to: e.to,
            timeout: e.timeout,
        };
        let email = match super::alerting::notifier_config(&as_notifier) {
            Ok(NotifierConfig::Email(c)) => {
                if c.to.is_empty() {
                    report(
                        loc,
                        "status_page.reports.email.to",
                        "must list at least one partner".into(),
                    );
                }
                Some(c)
            }
            Ok(_) => None,
            Err(msg) => {
                report(loc, "status_page.reports.email", msg);
                None
            }
        };
        Some(lookout_status_page::settings::ReportSettings {
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
        target,
        regions: public_regions,
        groups,
        maintenance_sla,
        maintenance,
        refresh_every,
        latency_window,
        history_page_size,
        reports,
    }
}

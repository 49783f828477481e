//! `platform:` in the config: the services under test as `lookout up` starts them (seed,
//! catalogue size, the gateway's keys and users, instances per service, their addresses).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use lookout_conf::{Dur, Report, Spanned, check_duration};
use lookout_model::secret::Secret;
use serde::Deserialize;

use crate::ServiceKind;
use crate::gateway::UserToken;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPlatform {
    pub seed: Option<u64>,
    pub artists: Option<Spanned<u32>>,
    pub admin_token: Option<Spanned<Secret>>,
    pub gateway: Option<Spanned<RawGateway>>,
    pub catalogue: RawService,
    pub mixes: RawService,
    pub media: RawService,
    pub analytics: RawAnalytics,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawGateway {
    pub listen: Option<Spanned<SocketAddr>>,
    pub admin_listen: Option<Spanned<SocketAddr>>,
    pub api_keys: Vec<Spanned<Secret>>,
    pub users: Vec<Spanned<UserToken>>,
    pub default_country: Option<Spanned<String>>,
    pub health_interval: Option<Spanned<Dur>>,
    pub health_timeout: Option<Spanned<Dur>>,
    pub upstream_timeout: Option<Spanned<Dur>>,
    pub signing_key: Option<Spanned<Secret>>,
    pub public_url: Option<Spanned<String>>,
    /// Answer DNS for the gateway's name, for DNS checks.
    pub dns: Option<Spanned<RawGatewayDns>>,
    /// Also serve the API over TLS here, with the platform's demo certificate.
    pub tls_listen: Option<Spanned<SocketAddr>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGatewayDns {
    pub listen: Spanned<SocketAddr>,
    pub name: Spanned<String>,
    pub ttl: Option<Spanned<Dur>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawService {
    pub instances: Option<Spanned<u32>>,
    pub listen: Option<Spanned<Vec<Spanned<SocketAddr>>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAnalytics {
    pub instances: Option<Spanned<u32>>,
    pub listen: Option<Spanned<Vec<Spanned<SocketAddr>>>>,
    pub queue_capacity: Option<Spanned<usize>>,
}

/// One service's instances.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub kind: ServiceKind,
    /// One address per instance; port 0 picks a free port.
    pub listen: Vec<SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    /// Everything but the upstreams, which are known only once the instances run.
    pub settings: crate::GatewaySettings,
}

#[derive(Debug, Clone)]
pub struct PlatformConfig {
    pub seed: u64,
    pub artists: u32,
    pub admin_token: Secret,
    pub gateway: GatewayConfig,
    /// catalogue, mixes, media and analytics, in start order.
    pub services: Vec<ServiceConfig>,
    pub analytics_queue_capacity: usize,
}

/// Where the gateway listens unless the config says.
pub const DEFAULT_GATEWAY_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);

pub fn validate(p: RawPlatform, report: &mut Report) -> PlatformConfig {
    let artists = p
        .artists
        .as_ref()
        .map(|a| a.value)
        .unwrap_or(crate::data::DEFAULT_ARTISTS);
    if let Some(a) = &p.artists
        && !(100..=200_000).contains(&a.value)
    {
        report(
            a.loc(),
            "platform.artists",
            format!("must be from 100 to 200000, got {}", a.value),
        );
    }
    let admin_token = match p.admin_token {
        Some(t) if t.value.is_empty() => {
            report(
                t.loc(),
                "platform.admin_token",
                "must not be empty: it guards the fault-injection API".into(),
            );
            t.value
        }
        Some(t) => t.value,
        None => {
            report(None, "platform.admin_token", "is required: it guards the fault-injection API (e.g. `admin_token: ${LOOKOUT_ADMIN_TOKEN}`)".into());
            Secret::default()
        }
    };

    let gateway_loc = p.gateway.as_ref().and_then(|g| g.loc());
    let g = p.gateway.map(|g| g.value).unwrap_or_default();
    let listen = g.listen.map_or(DEFAULT_GATEWAY_LISTEN, |l| l.value);
    let admin_listen = g
        .admin_listen
        .map_or(SocketAddr::new(listen.ip(), 0), |l| l.value);
    let mut seen_keys: Vec<&Secret> = Vec::new();
    for (i, key) in g.api_keys.iter().enumerate() {
        let path = format!("platform.gateway.api_keys[{i}]");
        if key.value.is_empty() {
            report(key.loc(), &path, "must not be empty".into());
        } else if seen_keys.contains(&&key.value) {
            report(key.loc(), &path, "is listed twice".into());
        }
        seen_keys.push(&key.value);
    }
    let mut users: Vec<UserToken> = Vec::new();
    for (i, u) in g.users.iter().enumerate() {
        let path = format!("platform.gateway.users[{i}]");
        let user = &u.value;
        let valid_id = !user.user.is_empty()
            && user.user.len() <= 64
            && user
                .user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
        if !valid_id {
            report(
                u.loc(),
                &format!("{path}.user"),
                format!(
                    "{:?} is not a user id: 1 to 64 letters, digits, `-`, `_`, `.` or `@`",
                    user.user
                ),
            );
        }
        if user.token.is_empty() {
            report(
                u.loc(),
                &format!("{path}.token"),
                "must not be empty".into(),
            );
        }
        if users.iter().any(|o| o.token == user.token) || seen_keys.contains(&&user.token) {
            report(
                u.loc(),
                &format!("{path}.token"),
                "is already used by another user or API key".into(),
            );
        }
        if users.iter().any(|o| o.user == user.user) {
            report(
                u.loc(),
                &format!("{path}.user"),
                format!("user {:?} is listed twice", user.user),
            );
        }
        if !(user.country.len() == 2 && user.country.chars().all(|c| c.is_ascii_uppercase())) {
            report(
                u.loc(),
                &format!("{path}.country"),
                format!(
                    "{:?} is not an ISO 3166 country code such as GB",
                    user.country
                ),
            );
        }
        if !(user.language.len() == 2 && user.language.chars().all(|c| c.is_ascii_lowercase())) {
            report(
                u.loc(),
                &format!("{path}.language"),
                format!(
                    "{:?} is not an ISO 639-1 language code such as en",
                    user.language
                ),
            );
        }
        users.push(user.clone());
    }
    if g.api_keys.is_empty() && g.users.is_empty() {
        report(
            gateway_loc,
            "platform.gateway",
            "needs at least one of `api_keys` or `users`, or nobody can call the platform".into(),
        );
    }
    if let Some(c) = &g.default_country
        && !(c.value.len() == 2 && c.value.chars().all(|x| x.is_ascii_uppercase()))
    {
        report(
            c.loc(),
            "platform.gateway.default_country",
            format!("{:?} is not an ISO 3166 country code such as GB", c.value),
        );
    }
    if let Some(k) = &g.signing_key
        && k.value.expose().len() < 16
    {
        report(
            k.loc(),
            "platform.gateway.signing_key",
            "must be at least 16 characters: it signs play URLs".into(),
        );
    }
    let default_country = g
        .default_country
        .map(|c| c.value)
        .unwrap_or_else(|| "GB".into());
    let ms = Duration::from_millis;
    let health_interval = g
        .health_interval
        .as_ref()
        .map(|d| d.value.0)
        .unwrap_or(ms(1000));
    let health_timeout = g
        .health_timeout
        .as_ref()
        .map(|d| d.value.0)
        .unwrap_or(ms(500));
    let upstream_timeout = g
        .upstream_timeout
        .as_ref()
        .map(|d| d.value.0)
        .unwrap_or(ms(2000));
    if let Some(d) = &g.health_interval {
        check_duration(
            report,
            d,
            "platform.gateway.health_interval",
            ms(100),
            Duration::from_secs(300),
        );
    }
    if let Some(d) = &g.health_timeout {
        check_duration(
            report,
            d,
            "platform.gateway.health_timeout",
            ms(10),
            Duration::from_secs(60),
        );
    }
    if health_timeout >= health_interval {
        let at = g
            .health_timeout
            .as_ref()
            .or(g.health_interval.as_ref())
            .and_then(|d| d.loc());
        report(
            at,
            "platform.gateway.health_timeout",
            format!(
                "({}) must be shorter than health_interval ({})",
                humantime::format_duration(health_timeout),
                humantime::format_duration(health_interval)
            ),
        );
    }
    if let Some(d) = &g.upstream_timeout {
        check_duration(
            report,
            d,
            "platform.gateway.upstream_timeout",
            ms(10),
            Duration::from_secs(60),
        );
    }
    if let Some(u) = &g.public_url {
        let ok = reqwest_like_url(&u.value);
        if !ok {
            report(
                u.loc(),
                "platform.gateway.public_url",
                format!("{:?} is not an http(s) URL", u.value),
            );
        }
    }
    let dns = g.dns.and_then(|d| {
        let d = d.value;
        let name = d.name.value.trim_end_matches('.').to_ascii_lowercase();
        let labels_ok = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !labels_ok || !name.contains('.') {
            report(
                d.name.loc(),
                "platform.gateway.dns.name",
                format!(
                    "{:?} is not a domain name with a parent (e.g. gateway.platform.test)",
                    d.name.value
                ),
            );
            return None;
        }
        let ttl = lookout_conf::duration_in(
            report,
            &d.ttl,
            "platform.gateway.dns.ttl",
            Duration::from_secs(60),
            Duration::ZERO,
            Duration::from_secs(86_400),
        );
        Some(crate::dns::DnsSettings {
            listen: d.listen.value,
            name: format!("{name}."),
            ttl: u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX),
        })
    });
    let gateway = GatewayConfig {
        listen,
        admin_listen,
        settings: crate::GatewaySettings {
            upstreams: BTreeMap::new(),
            api_keys: g.api_keys.into_iter().map(|k| k.value).collect(),
            users,
            default_country,
            health_interval,
            health_timeout,
            upstream_timeout,
            signing_key: g.signing_key.map(|s| s.value),
            public_url: g.public_url.map(|u| u.value),
            dns,
            tls_listen: g.tls_listen.map(|t| t.value),
        },
    };

    let mut services = Vec::new();
    let sections = [
        (ServiceKind::Catalogue, p.catalogue),
        (ServiceKind::Mixes, p.mixes),
        (ServiceKind::Media, p.media),
        (
            ServiceKind::Analytics,
            RawService {
                instances: p.analytics.instances,
                listen: p.analytics.listen,
            },
        ),
    ];
    for (kind, section) in sections {
        let path = format!("platform.{kind}");
        let instances = match &section.instances {
            Some(n) if !(1..=16).contains(&n.value) => {
                report(
                    n.loc(),
                    &format!("{path}.instances"),
                    format!("must be from 1 to 16, got {}", n.value),
                );
                1
            }
            Some(n) => n.value as usize,
            None => 2,
        };
        let listen = match &section.listen {
            Some(list) => {
                if list.value.len() != instances {
                    report(
                        list.loc(),
                        &format!("{path}.listen"),
                        format!(
                            "lists {} addresses for {instances} instances; give one per instance, or leave it out for free ports",
                            list.value.len()
                        ),
                    );
                }
                list.value.iter().map(|a| a.value).collect()
            }
            None => vec![SocketAddr::from(([127, 0, 0, 1], 0)); instances],
        };
        services.push(ServiceConfig { kind, listen });
    }
    let analytics_queue_capacity = match &p.analytics.queue_capacity {
        Some(q) if !(1..=10_000_000).contains(&q.value) => {
            report(
                q.loc(),
                "platform.analytics.queue_capacity",
                format!("must be from 1 to 10000000, got {}", q.value),
            );
            1
        }
        Some(q) => q.value,
        None => 10_000,
    };
    PlatformConfig {
        seed: p.seed.unwrap_or(42),
        artists,
        admin_token,
        gateway,
        services,
        analytics_queue_capacity,
    }
}

fn reqwest_like_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace))
}

impl PlatformConfig {
    pub fn service(&self, kind: ServiceKind) -> Option<&ServiceConfig> {
        self.services.iter().find(|s| s.kind == kind)
    }

    /// The gateway's settings, given the base URLs of every upstream instance.
    pub fn gateway_settings(
        &self,
        upstreams: BTreeMap<String, Vec<String>>,
    ) -> crate::GatewaySettings {
        crate::GatewaySettings {
            upstreams,
            ..self.gateway.settings.clone()
        }
    }

    /// What every instance of `kind` is started with; service-specific settings come after.
    pub fn instance_spec(&self, kind: crate::ServiceKind) -> crate::InstanceSpec {
        crate::InstanceSpec {
            kind,
            seed: self.seed,
            artists: self.artists,
            admin_token: self.admin_token.clone(),
            gateway: None,
            analytics: None,
        }
    }
}

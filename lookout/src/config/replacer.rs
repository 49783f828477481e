//! `replacer:` in the config: its listener, the provider, health thresholds and brakes.

use std::net::SocketAddr;
use std::time::Duration;

use lookout_model::secret::Secret;
use lookout_replacer::ReplacerSettings;
use lookout_replacer::brakes::BrakeSettings;
use lookout_replacer::health::HealthSettings;
use lookout_replacer::provider::aws::{AwsAction, AwsProvider, AwsSettings};
use serde::Deserialize;

use super::Report;
use super::raw::{Dur, Spanned};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawReplacer {
    /// Whether `lookout up` runs it (default true).
    pub enabled: Option<bool>,
    pub listen: Option<Spanned<SocketAddr>>,
    /// Decide and report, act on nothing.
    pub dry_run: Option<bool>,
    pub provider: Option<Spanned<RawProvider>>,
    pub health: RawHealth,
    pub brakes: RawBrakes,
    pub replace_timeout: Option<Spanned<Dur>>,
}

// Read once at start: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum RawProvider {
    /// The platform's own child processes: `lookout up` only.
    Local,
    /// EC2 Auto Scaling groups: `lookout replacer`.
    Aws {
        region: String,
        /// One endpoint for Auto Scaling and EC2 (moto, LocalStack); AWS itself when absent.
        endpoint: Option<String>,
        access_key_id: String,
        secret_access_key: Secret,
        session_token: Option<Secret>,
        groups: Vec<String>,
        /// `mark_unhealthy` (default), `terminate` or `terminate_and_shrink`.
        action: Option<String>,
        /// e.g. `http://{private_ip}:8080`.
        url_template: String,
        timeout: Option<Dur>,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawHealth {
    pub interval: Option<Spanned<Dur>>,
    pub timeout: Option<Spanned<Dur>>,
    pub failure_threshold: Option<Spanned<u32>>,
    pub success_threshold: Option<Spanned<u32>>,
    pub grace: Option<Spanned<Dur>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawBrakes {
    pub max_concurrent: Option<Spanned<usize>>,
    pub max_per_hour: Option<Spanned<usize>>,
    pub cooldown: Option<Spanned<Dur>>,
    /// `50%` or 0.5.
    pub max_unhealthy_share: Option<Spanned<String>>,
    pub max_failing_services: Option<Spanned<usize>>,
}

#[derive(Debug, Clone)]
pub enum ProviderConfig {
    Local,
    Aws(Box<AwsSettings>),
}

#[derive(Debug, Clone)]
pub struct ReplacerConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
    pub provider: ProviderConfig,
    pub settings: ReplacerSettings,
}

fn count<T: Copy + PartialOrd + std::fmt::Display>(
    report: &mut Report,
    v: &Option<Spanned<T>>,
    path: &str,
    default: T,
    min: T,
    max: T,
) -> T {
    match v {
        None => default,
        Some(s) if s.value < min || s.value > max => {
            report(
                s.loc(),
                path,
                format!("must be from {min} to {max}, got {}", s.value),
            );
            default
        }
        Some(s) => s.value,
    }
}

pub fn validate(raw: RawReplacer, report: &mut Report) -> ReplacerConfig {
    use super::checks::duration_in;
    let s = Duration::from_secs;
    let ms = Duration::from_millis;
    let d = HealthSettings::default();
    let health = HealthSettings {
        interval: duration_in(
            report,
            &raw.health.interval,
            "replacer.health.interval",
            d.interval,
            ms(100),
            s(3600),
        ),
        timeout: duration_in(
            report,
            &raw.health.timeout,
            "replacer.health.timeout",
            d.timeout,
            ms(10),
            s(60),
        ),
        failure_threshold: count(
            report,
            &raw.health.failure_threshold,
            "replacer.health.failure_threshold",
            d.failure_threshold,
            1,
            100,
        ),
        success_threshold: count(
            report,
            &raw.health.success_threshold,
            "replacer.health.success_threshold",
            d.success_threshold,
            1,
            100,
        ),
        grace: duration_in(
            report,
            &raw.health.grace,
            "replacer.health.grace",
            d.grace,
            Duration::ZERO,
            s(3600),
        ),
    };
    if let Err(e) = health.check() {
        let loc = raw.health.timeout.as_ref().and_then(|t| t.loc());
        report(loc, "replacer.health", e);
    }
    let b = BrakeSettings::default();
    let share = match &raw.brakes.max_unhealthy_share {
        None => b.max_unhealthy_share,
        Some(v) => {
            let t = v.value.trim();
            let parsed = match t.strip_suffix('%') {
                Some(p) => p.trim().parse::<f64>().ok().map(|p| p / 100.0),
                None => t.parse::<f64>().ok(),
            };
            match parsed {
                Some(f) if f > 0.0 && f < 1.0 => f,
                _ => {
                    report(
                        v.loc(),
                        "replacer.brakes.max_unhealthy_share",
                        format!("{t:?} is not a share above 0 and below 1, such as 50% or 0.5"),
                    );
                    b.max_unhealthy_share
                }
            }
        }
    };
    let brakes = BrakeSettings {
        max_concurrent: count(
            report,
            &raw.brakes.max_concurrent,
            "replacer.brakes.max_concurrent",
            b.max_concurrent,
            1,
            100,
        ),
        max_per_hour: count(
            report,
            &raw.brakes.max_per_hour,
            "replacer.brakes.max_per_hour",
            b.max_per_hour,
            1,
            1000,
        ),
        cooldown: duration_in(
            report,
            &raw.brakes.cooldown,
            "replacer.brakes.cooldown",
            b.cooldown,
            Duration::ZERO,
            s(86_400),
        ),
        max_unhealthy_share: share,
        max_failing_services: count(
            report,
            &raw.brakes.max_failing_services,
            "replacer.brakes.max_failing_services",
            b.max_failing_services,
            1,
            100,
        ),
    };
    let provider = match raw.provider {
        None => ProviderConfig::Local,
        Some(p) => {
            let loc = p.loc();
            match p.value {
                RawProvider::Local => ProviderConfig::Local,
                RawProvider::Aws {
                    region,
                    endpoint,
                    access_key_id,
                    secret_access_key,
                    session_token,
                    groups,
                    action,
                    url_template,
                    timeout,
                } => {
                    let action = match action.as_deref().unwrap_or("mark_unhealthy") {
                        "mark_unhealthy" => AwsAction::MarkUnhealthy,
                        "terminate" => AwsAction::Terminate {
                            decrement_desired: false,
                        },
                        "terminate_and_shrink" => AwsAction::Terminate {
                            decrement_desired: true,
                        },
                        other => {
                            report(
                                loc,
                                "replacer.provider.action",
                                format!(
                                    "{other:?} is not one of mark_unhealthy, terminate, terminate_and_shrink"
                                ),
                            );
                            AwsAction::MarkUnhealthy
                        }
                    };
                    let endpoint = endpoint.and_then(|e| match url::Url::parse(&e) {
                        Ok(u) => Some(u),
                        Err(err) => {
                            report(
                                loc,
                                "replacer.provider.endpoint",
                                format!("{e:?} is not a URL: {err}"),
                            );
                            None
                        }
                    });
                    let settings = AwsSettings {
                        endpoint,
                        region,
                        access_key_id,
                        secret_access_key,
                        session_token,
                        groups,
                        action,
                        url_template,
                        timeout: timeout.map_or(s(10), |t| t.0),
                    };
                    // Built once here so that `check-config` finds what the provider refuses.
                    if let Err(e) = AwsProvider::new(settings.clone()) {
                        report(loc, "replacer.provider", e.to_string());
                    }
                    ProviderConfig::Aws(Box::new(settings))
                }
            }
        }
    };
    ReplacerConfig {
        enabled: raw.enabled.unwrap_or(true),
        listen: raw
            .listen
            .as_ref()
            .map_or(SocketAddr::from(([127, 0, 0, 1], 8093)), |l| l.value),
        provider,
        settings: ReplacerSettings {
            health,
            brakes,
            dry_run: raw.dry_run.unwrap_or(false),
            replace_timeout: duration_in(
                report,
                &raw.replace_timeout,
                "replacer.replace_timeout",
                s(30),
                s(1),
                s(3600),
            ),
            inventory_every: s(5),
            collector: None,
        },
    }
}

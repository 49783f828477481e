//! `replacer:` in the config: its listener, the provider, health thresholds and brakes.

use std::net::SocketAddr;
use std::time::Duration;

use lookout_conf::{Dur, Report, Spanned, duration_in, number_in};
use serde::Deserialize;

use crate::ReplacerSettings;
use crate::brakes::BrakeSettings;
use crate::health::HealthSettings;
use crate::provider::{ProviderConfig, RawProvider};

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
pub struct ReplacerConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
    pub provider: ProviderConfig,
    pub settings: ReplacerSettings,
}

pub fn validate(raw: RawReplacer, report: &mut Report) -> ReplacerConfig {
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
        failure_threshold: number_in(
            report,
            raw.health.failure_threshold.as_ref(),
            "replacer.health.failure_threshold",
            d.failure_threshold,
            1,
            100,
        ),
        success_threshold: number_in(
            report,
            raw.health.success_threshold.as_ref(),
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
            match lookout_conf::share(t) {
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
        max_concurrent: number_in(
            report,
            raw.brakes.max_concurrent.as_ref(),
            "replacer.brakes.max_concurrent",
            b.max_concurrent,
            1,
            100,
        ),
        max_per_hour: number_in(
            report,
            raw.brakes.max_per_hour.as_ref(),
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
        max_failing_services: number_in(
            report,
            raw.brakes.max_failing_services.as_ref(),
            "replacer.brakes.max_failing_services",
            b.max_failing_services,
            1,
            100,
        ),
    };
    let provider = match raw.provider {
        None => ProviderConfig::default(),
        Some(p) => {
            let loc = p.loc();
            ProviderConfig::from_raw(p.value, loc, report)
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

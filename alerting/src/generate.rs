//! Checks made for every check the collector watches, so that `lookout up` pages correctly
//! with no alerting config at all: down (the fast path), latency against the objective,
//! multiwindow multi-burn-rate SLO alerts, lasting regional trouble, and monitoring blind.
//! Each check's objectives are its SLO, as the collector serves it (`GET /api/v1/slos`).

use std::time::Duration;

use lookout_model::read::{CheckSlo, Slos};
use lookout_model::slo::Slo;

use crate::check::{Check, Gate, Measure, MinBadMinutes, Origin, Schedule, Thresholds, Worse};
use crate::spec::SubscriptionSpec;
use crate::subscription::Subscription;
use crate::target::{Expr, Metric, Percentile, Series};

/// A check the collector watches, as the alerter needs to know it.
#[derive(Debug, Clone, PartialEq)]
pub struct Watched {
    pub name: String,
    pub description: String,
    pub regions: Vec<String>,
    /// The collector's: its latency objective, target and window.
    pub slo: Slo,
}

impl From<&CheckSlo> for Watched {
    fn from(c: &CheckSlo) -> Self {
        Watched {
            name: c.check.clone(),
            description: c.description.clone(),
            regions: c.regions.clone(),
            slo: c.slo,
        }
    }
}

/// Every check of the collector's answer.
pub fn watched(slos: &Slos) -> Vec<Watched> {
    slos.checks.iter().map(Watched::from).collect()
}

/// One multiwindow burn-rate alert (the SRE workbook's table).
#[derive(Debug, Clone, PartialEq)]
pub struct BurnAlert {
    pub long: Duration,
    pub short: Duration,
    /// The share of the whole SLO window's budget that burning over `long` would use:
    /// 2 % in 1 h, 5 % in 6 h, 10 % in 3 d in the workbook.
    pub budget_share: f64,
    /// A page (ERROR) or a ticket (WARN).
    pub page: bool,
}

impl BurnAlert {
    /// The burn rate that uses `budget_share` of the SLO window's budget in `long`: the
    /// workbook's 14.4x, 6x and 1x for a 30-day SLO, three times those for 90 days.
    pub fn threshold(&self, slo_window: Duration) -> f64 {
        self.budget_share * slo_window.as_secs_f64() / self.long.as_secs_f64()
    }
}

#[derive(Debug, Clone)]
pub struct GenerateSettings {
    pub enabled: bool,
    /// The group of the down checks: one cause (the gateway) failing every use case makes
    /// one page.
    pub down_group: Option<String>,
    pub latency_percentile: Percentile,
    pub latency_window: Duration,
    /// WARN at the objective, ERROR at this multiple of it.
    pub latency_error_factor: f64,
    pub burn_alerts: Vec<BurnAlert>,
    pub min_bad_minutes: u32,
    /// How long one region must fail alone before a ticket.
    pub regional_after: Duration,
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

impl Default for GenerateSettings {
    fn default() -> Self {
        GenerateSettings {
            enabled: true,
            down_group: Some("platform".into()),
            latency_percentile: Percentile::P95,
            latency_window: 5 * MINUTE,
            latency_error_factor: 2.0,
            burn_alerts: vec![
                BurnAlert {
                    long: HOUR,
                    short: 5 * MINUTE,
                    budget_share: 0.02,
                    page: true,
                },
                BurnAlert {
                    long: 6 * HOUR,
                    short: 30 * MINUTE,
                    budget_share: 0.05,
                    page: true,
                },
                BurnAlert {
                    long: 3 * DAY,
                    short: 6 * HOUR,
                    budget_share: 0.10,
                    page: false,
                },
            ],
            min_bad_minutes: 2,
            regional_after: 10 * MINUTE,
        }
    }
}

fn series(metric: Metric, check: &str, window: Option<Duration>) -> Expr {
    Expr::Series(Series {
        metric,
        check: check.to_owned(),
        window,
        region: None,
    })
}

fn thresholds(warn: Option<f64>, error: Option<f64>) -> Thresholds {
    Thresholds {
        warn,
        error,
        worse: Worse::Higher,
    }
}

#[allow(clippy::too_many_arguments)]
fn make(
    id: String,
    name: String,
    description: String,
    measure: Measure,
    thresholds: Thresholds,
    every: Duration,
    about: Option<&str>,
    allow_no_data: bool,
) -> Check {
    let target_text = match &measure {
        Measure::Target(e) => e.to_string(),
        Measure::Blind => "monitoring_blind()".into(),
        Measure::ReplacerHeld => "replacer_held()".into(),
    };
    Check {
        id,
        name,
        description,
        target_text,
        measure,
        thresholds,
        enabled: true,
        allow_no_data,
        schedule: Schedule::Every(every),
        gate: None::<Gate>,
        for_duration: None,
        min_bad_minutes: None,
        group: None,
        depends_on: Vec::new(),
        dependency_grace: None,
        about: about.map(str::to_owned),
        origin: Origin::Generated,
    }
}

/// Every generated check for the watched checks, plus the blind check.
pub fn checks(watched: &[Watched], g: &GenerateSettings) -> Vec<Check> {
    if !g.enabled {
        return Vec::new();
    }
    let mut out = Vec::new();
    for w in watched {
        let c = w.name.as_str();
        let mut down = make(
            format!("{c}-down"),
            format!("{c} down"),
            format!(
                "A quorum of regions cannot complete {c}{}",
                if w.description.is_empty() {
                    String::new()
                } else {
                    format!(": {}", w.description)
                }
            ),
            Measure::Target(series(Metric::Down, c, None)),
            thresholds(None, Some(1.0)),
            Duration::from_secs(10),
            Some(c),
            // Not seeing is the blind check's to report, once, not every check's.
            true,
        );
        down.group = g.down_group.clone();
        out.push(down);

        let objective = w.slo.latency_objective().as_secs_f64();
        out.push(make(
            format!("{c}-latency"),
            format!("{c} latency"),
            format!(
                "{} of {c} over {} against the {} ms objective",
                percentile_name(g.latency_percentile),
                humantime::format_duration(g.latency_window),
                w.slo.latency_objective().as_millis()
            ),
            Measure::Target(Expr::Series(Series {
                metric: Metric::Latency(g.latency_percentile),
                check: c.to_owned(),
                window: Some(g.latency_window),
                region: None,
            })),
            thresholds(Some(objective), Some(objective * g.latency_error_factor)),
            Duration::from_secs(15),
            Some(c),
            true,
        ));

        for b in &g.burn_alerts {
            // The burn rate itself is the collector's, by the check's target; the rate that
            // spends `budget_share` over `long` depends on the check's own SLO window.
            let rate = b.threshold(w.slo.window());
            let long = short(b.long);
            let expr = Expr::Min(vec![
                series(Metric::BurnRate, c, Some(b.long)),
                series(Metric::BurnRate, c, Some(b.short)),
            ]);
            let t = if b.page {
                thresholds(None, Some(rate))
            } else {
                thresholds(Some(rate), None)
            };
            let mut check = make(
                format!("{c}-burn-{long}"),
                format!("{c} error budget burn ({long})"),
                format!(
                    "{c} is using its error budget ({} over {}) {rate:.1}x as fast as allowed over {long} and {}",
                    w.slo.target(),
                    short(w.slo.window()),
                    short(b.short)
                ),
                Measure::Target(expr),
                t,
                if b.long <= HOUR {
                    Duration::from_secs(30)
                } else {
                    MINUTE
                },
                Some(c),
                true,
            );
            // The down check pages for an outage at once; its burn is the same problem.
            check.depends_on = vec![format!("{c}-down")];
            // Past the short window the outage no longer counts; two more minutes cover the
            // evaluation that sees it go, so a stale ERROR never pages as the hold ends.
            check.dependency_grace = Some(b.short + 2 * MINUTE);
            check.min_bad_minutes = Some(MinBadMinutes {
                check: c.to_owned(),
                window: b.long,
                count: g.min_bad_minutes,
            });
            out.push(check);
        }

        let mut regional = make(
            format!("{c}-regional"),
            format!("{c} failing in a region"),
            format!(
                "A region has failed {c} for more than {} while the others pass: not downtime, but someone should look",
                humantime::format_duration(g.regional_after)
            ),
            Measure::Target(series(Metric::FailingRegions, c, None)),
            thresholds(Some(1.0), None),
            Duration::from_secs(30),
            Some(c),
            true,
        );
        regional.for_duration = Some(g.regional_after);
        // An outage everywhere is the down check's page, not also a regional ticket.
        regional.depends_on = vec![format!("{c}-down")];
        out.push(regional);

        // Runs that pass degraded are up and cost no budget, but count against the latency
        // SLI: someone should know before they turn into failures.
        let mut degraded = make(
            format!("{c}-degraded"),
            format!("{c} degraded"),
            format!(
                "{c}'s runs have passed degraded in a region for more than {} (for a stream: delivered slower than it should be, so it would stutter)",
                humantime::format_duration(g.regional_after)
            ),
            Measure::Target(series(Metric::DegradedRegions, c, None)),
            thresholds(Some(1.0), None),
            Duration::from_secs(30),
            Some(c),
            true,
        );
        degraded.for_duration = Some(g.regional_after);
        degraded.depends_on = vec![format!("{c}-down")];
        out.push(degraded);
    }
    let regions: std::collections::BTreeSet<&String> =
        watched.iter().flat_map(|w| w.regions.iter()).collect();
    if !watched.is_empty() {
        out.push(make(
            "monitoring-blind".into(),
            "Monitoring blind".into(),
            "Results stopped arriving from a region (WARN) or from everywhere, or the collector cannot be reached (ERROR): Lookout cannot see the platform".into(),
            Measure::Blind,
            thresholds(Some(1.0), Some(regions.len().max(1) as f64)),
            Duration::from_secs(10),
            None,
            true,
        ));
        out.push(make(
            "replacer-held".into(),
            "Replacer held".into(),
            "The replacer stopped replacing because most of a service, or several services, look unhealthy at once: suspect the checker or the network, and decide by hand".into(),
            Measure::ReplacerHeld,
            thresholds(None, Some(1.0)),
            Duration::from_secs(10),
            None,
            true,
        ));
    }
    out
}

/// The subscriptions of generated checks: each receiver of `defaults` (the config's
/// `alerting.subscribe`) on each check.
pub fn subscriptions(generated: &[Check], defaults: &[SubscriptionSpec]) -> Vec<Subscription> {
    let mut out = Vec::new();
    for g in generated {
        for (i, spec) in defaults.iter().enumerate() {
            out.push(Subscription {
                id: format!("{}:{}:{i}", g.id, spec.notifier),
                check_id: g.id.clone(),
                notifier: spec.notifier.clone(),
                target: spec.target.clone(),
                ignore_warn: spec.ignore_warn,
                ignore_error: spec.ignore_error,
                ignore_ok: spec.ignore_ok,
                window: spec.window.clone().unwrap_or_default(),
                enabled: spec.enabled,
            });
        }
    }
    out
}

/// `5m`, `1h`, `3d`: short enough for ids.
pub fn short(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn percentile_name(p: Percentile) -> &'static str {
    match p {
        Percentile::P50 => "p50",
        Percentile::P95 => "p95",
        Percentile::P99 => "p99",
        Percentile::Max => "max",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burn_thresholds_are_the_workbooks_scaled_to_the_slo_window() {
        let g = GenerateSettings::default();
        let thirty = 30 * DAY;
        let rates: Vec<f64> = g
            .burn_alerts
            .iter()
            .map(|b| (b.threshold(thirty) * 10.0).round() / 10.0)
            .collect();
        assert_eq!(rates, [14.4, 6.0, 1.0]);
        let ninety: Vec<f64> = g
            .burn_alerts
            .iter()
            .map(|b| (b.threshold(90 * DAY) * 10.0).round() / 10.0)
            .collect();
        assert_eq!(ninety, [43.2, 18.0, 3.0]);
    }

    #[test]
    fn every_watched_check_gets_its_alerts_and_ids_are_unique() {
        let w = Watched {
            name: "search".into(),
            description: String::new(),
            regions: vec!["a".into(), "b".into(), "c".into()],
            slo: Slo::default(),
        };
        let checks = checks(&[w], &GenerateSettings::default());
        let ids: Vec<&str> = checks.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "search-down",
                "search-latency",
                "search-burn-1h",
                "search-burn-6h",
                "search-burn-3d",
                "search-regional",
                "search-degraded",
                "monitoring-blind",
                "replacer-held"
            ]
        );
        assert_eq!(checks[0].group.as_deref(), Some("platform"));
        assert_eq!(checks[1].thresholds.warn, Some(0.8));
    }

    #[test]
    fn each_check_gets_burn_thresholds_from_its_own_slo_window() {
        let slo = |window_days: u32| {
            Slo::default()
                .with(lookout_model::slo::SloOverrides {
                    window: Some(window_days * DAY),
                    ..Default::default()
                })
                .unwrap()
        };
        let w = |name: &str, days: u32| Watched {
            name: name.into(),
            description: String::new(),
            regions: vec!["a".into(), "b".into(), "c".into()],
            slo: slo(days),
        };
        let checks = checks(
            &[w("monthly", 30), w("quarterly", 90)],
            &GenerateSettings::default(),
        );
        let threshold = |id: &str| {
            checks
                .iter()
                .find(|c| c.id == id)
                .and_then(|c| c.thresholds.error)
                .map(|t| (t * 10.0).round() / 10.0)
        };
        assert_eq!(threshold("monthly-burn-1h"), Some(14.4));
        assert_eq!(threshold("quarterly-burn-1h"), Some(43.2));
        assert_eq!(threshold("monthly-burn-6h"), Some(6.0));
        assert_eq!(threshold("quarterly-burn-6h"), Some(18.0));
    }
}

//! Everything a page shows, read from the collector and the store in one pass. Pages are
//! rendered from a snapshot, never from a request.

use std::collections::BTreeMap;

use serde::Serialize;

use lookout_api::client::{ClientError, CollectorClient, Select, Window};
use lookout_model::read::{CheckLive, DailyList, FiguresList, States};

use crate::model::{Incident, Maintenance};
use crate::settings::{ComponentSpec, StatusPageSettings};
use crate::status::{self, ComponentStatus, Overall};

pub const DAYS: u32 = 90;
const DAY_US: i64 = 86_400_000_000;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayBar {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    pub from_us: i64,
    pub availability: Option<f64>,
    pub down_seconds: f64,
    pub no_data_seconds: f64,
    pub maintenance_seconds: f64,
    /// Ids and names of the incidents of that day.
    pub incidents: Vec<(i64, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionLatency {
    /// The public name.
    pub region: String,
    pub p95_ms: Option<f64>,
    pub share_under_objective: Option<f64>,
    pub count: u64,
}

/// The 90 days' figures of a component, by its check's SLO: the public part of the collector's
/// answer (no check name, no internal region), what the page's uptime and
/// `/api/v2/uptime.json` show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Uptime {
    pub from_us: i64,
    pub to_us: i64,
    pub availability: Option<f64>,
    pub target: f64,
    pub down_seconds: f64,
    pub no_data_seconds: f64,
    pub maintenance_seconds: f64,
    /// Whether maintenance counts in this component's availability (its SLO says).
    pub maintenance_counted: bool,
    pub error_budget_seconds: f64,
    pub error_budget_remaining_seconds: f64,
}

/// One component's figures as read from the collector.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct ComponentFigures {
    pub days: Vec<DayBar>,
    pub uptime: Option<Uptime>,
    pub latency: Vec<RegionLatency>,
    /// The check's latency objective, from its SLO; `None` before the collector answered.
    pub objective_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub group_id: String,
    pub position: usize,
    pub status: ComponentStatus,
    pub note: String,
    pub no_data: bool,
    pub figures: ComponentFigures,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupView {
    pub id: String,
    pub name: String,
    pub position: usize,
    pub components: Vec<ComponentView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    pub groups: Vec<GroupView>,
    pub overall: Overall,
    /// Newest first.
    pub incidents: Vec<Incident>,
    pub maintenances: Vec<Maintenance>,
    /// When the collector last answered: the age of the data shown.
    pub data_as_of_us: Option<i64>,
    /// The collector did not answer the last read: the page shows the last known state.
    pub stale: bool,
    pub now_us: i64,
}

impl Snapshot {
    pub fn components(&self) -> impl Iterator<Item = &ComponentView> {
        self.groups.iter().flat_map(|g| g.components.iter())
    }
}

/// What one refresh reads of the collector's figures: three requests, whatever the number of
/// components.
#[derive(Debug, Clone, Default)]
pub struct Reads {
    pub daily: DailyList,
    /// The 90 days of the bars, from the first one's midnight to now.
    pub uptime: FiguresList,
    /// The latency window, each region's latency.
    pub latency: FiguresList,
}

/// The first instant of the oldest of the 90 bars.
pub fn bars_from(now_us: i64) -> i64 {
    now_us - now_us.rem_euclid(DAY_US) - (i64::from(DAYS) - 1) * DAY_US
}

/// Reads the figures of every component's check.
pub async fn read(
    client: &CollectorClient,
    settings: &StatusPageSettings,
    now_us: i64,
) -> Result<Reads, ClientError> {
    let checks = settings.checks();
    if checks.is_empty() {
        return Ok(Reads::default());
    }
    let latency_from = now_us - i64::try_from(settings.latency_window.as_micros()).unwrap_or(0);
    let daily = client.daily_all(DAYS, Some(&checks)).await?;
    let all = Select {
        checks: Some(checks),
        by_region: false,
    };
    let per_region = Select {
        by_region: true,
        ..all.clone()
    };
    Ok(Reads {
        daily,
        uptime: client
            .figures_all(
                Window::Range {
                    from_us: bars_from(now_us),
                    to_us: now_us,
                },
                &all,
            )
            .await?,
        latency: client
            .figures_all(
                Window::Range {
                    from_us: latency_from,
                    to_us: now_us,
                },
                &per_region,
            )
            .await?,
    })
}

/// One component's bars, uptime and latency from what was read; the SLA math is the
/// collector's, by the check's SLO.
pub fn figures(
    reads: &Reads,
    settings: &StatusPageSettings,
    c: &ComponentSpec,
    incidents: &[Incident],
) -> ComponentFigures {
    let days = reads
        .daily
        .checks
        .iter()
        .find(|d| d.check == c.check)
        .map(|d| d.days.as_slice())
        .unwrap_or_default();
    let bars = days
        .iter()
        .map(|d| DayBar {
            incidents: incidents
                .iter()
                .filter(|i| i.components.contains(&c.id))
                .filter(|i| {
                    i.started_us < d.from_us + DAY_US
                        && i.resolved_us.is_none_or(|r| r >= d.from_us)
                })
                .map(|i| (i.id, i.name.clone()))
                .collect(),
            date: d.date.clone(),
            from_us: d.from_us,
            availability: d.availability,
            down_seconds: d.down_seconds,
            no_data_seconds: d.no_data_seconds,
            maintenance_seconds: d.maintenance_seconds,
        })
        .collect();
    let uptime = reads.uptime.check(&c.check).map(|f| Uptime {
        from_us: f.from_us,
        to_us: f.to_us,
        availability: f.availability,
        target: f.target,
        down_seconds: f.down_seconds,
        no_data_seconds: f.no_data_seconds,
        maintenance_seconds: f.maintenance_seconds,
        maintenance_counted: f.slo.maintenance_in_sla(),
        error_budget_seconds: f.error_budget_seconds,
        error_budget_remaining_seconds: f.error_budget_remaining_seconds,
    });
    let mut latency = Vec::new();
    if let Some(f) = reads.latency.check(&c.check) {
        for (internal, public) in &settings.regions {
            if let Some(l) = f.latency_by_region.get(internal) {
                latency.push(RegionLatency {
                    region: public.clone(),
                    p95_ms: l.p95_ms,
                    share_under_objective: l.share_under_objective,
                    count: l.count,
                });
            }
        }
    }
    let slo = reads
        .uptime
        .check(&c.check)
        .or_else(|| reads.latency.check(&c.check))
        .map(|f| f.slo);
    ComponentFigures {
        days: bars,
        uptime,
        latency,
        objective_ms: slo.map(|s| s.latency_objective().as_secs_f64() * 1e3),
    }
}

/// How current the data is, as the page says.
#[derive(Debug, Clone, Copy)]
pub struct Freshness {
    pub data_as_of_us: Option<i64>,
    pub stale: bool,
    pub now_us: i64,
}

/// Assembles the snapshot from what was read; `figures` holds each component's last known.
pub fn assemble(
    settings: &StatusPageSettings,
    states: Option<&States>,
    figures: &BTreeMap<String, ComponentFigures>,
    incidents: Vec<Incident>,
    maintenances: Vec<Maintenance>,
    freshness: Freshness,
) -> Snapshot {
    let Freshness {
        data_as_of_us,
        stale,
        now_us,
    } = freshness;
    let public = |r: &str| settings.public_region(r).map(str::to_owned);
    let mut position = 0;
    let groups: Vec<GroupView> = settings
        .groups
        .iter()
        .enumerate()
        .map(|(gi, g)| GroupView {
            id: g.id.clone(),
            name: g.name.clone(),
            position: gi + 1,
            components: g
                .components
                .iter()
                .map(|c| {
                    position += 1;
                    let f = figures.get(&c.id).cloned().unwrap_or_default();
                    let slow: Vec<String> = f
                        .latency
                        .iter()
                        .filter(|l| {
                            l.p95_ms
                                .zip(f.objective_ms)
                                .is_some_and(|(p, objective)| p > objective)
                        })
                        .map(|l| l.region.clone())
                        .collect();
                    let live: Option<&CheckLive> = states.and_then(|s| s.check(&c.check));
                    let mut a = status::assess(live, &public, &slow);
                    if maintenances.iter().any(|m| m.covers(&c.id, now_us)) {
                        a.status = ComponentStatus::UnderMaintenance;
                        a.note = "Scheduled maintenance in progress".into();
                    }
                    ComponentView {
                        id: c.id.clone(),
                        name: c.name.clone(),
                        description: c.description.clone(),
                        group_id: g.id.clone(),
                        position,
                        status: a.status,
                        note: a.note,
                        no_data: a.no_data,
                        figures: f,
                    }
                })
                .collect(),
        })
        .collect();
    let overall = status::overall(
        groups
            .iter()
            .flat_map(|g| g.components.iter().map(|c| c.status)),
    );
    Snapshot {
        groups,
        overall,
        incidents,
        maintenances,
        data_as_of_us,
        stale,
        now_us,
    }
}

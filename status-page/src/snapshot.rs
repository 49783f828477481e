//! Everything a page shows, read from the collector and the store in one pass. Pages are
//! rendered from a snapshot, never from a request.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::collector::{CheckLive, CollectorClient, CollectorError, Day, Figures, States};
use crate::model::{Incident, Maintenance};
use crate::settings::{ComponentSpec, StatusPageSettings};
use crate::sla::{self, Seconds};
use crate::status::{self, ComponentStatus, Overall};

pub const DAYS: u32 = 90;
const DAY_US: i64 = 86_400_000_000;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayBar {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
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

/// One component's figures as read from the collector.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct ComponentFigures {
    pub days: Vec<DayBar>,
    pub uptime: Option<f64>,
    pub down_seconds: f64,
    pub maintenance_seconds: f64,
    pub latency: Vec<RegionLatency>,
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
    pub objective_ms: f64,
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

/// Reads one component's bars, uptime and latency.
pub async fn figures(
    client: &CollectorClient,
    settings: &StatusPageSettings,
    c: &ComponentSpec,
    maintenances: &[Maintenance],
    incidents: &[Incident],
    now_us: i64,
) -> Result<ComponentFigures, CollectorError> {
    let days: Vec<Day> = client.daily(&c.check, DAYS).await?;
    let mut bars = Vec::with_capacity(days.len());
    for d in days {
        let start = day_start(&d.date).unwrap_or(now_us);
        let end = (start + DAY_US).min(now_us);
        let adjusted = adjusted(
            client,
            settings,
            c,
            maintenances,
            Measured {
                from: start,
                to: end,
                whole: Seconds {
                    window: ((end - start) as f64 / 1e6).max(0.0),
                    down: d.down_seconds,
                    no_data: d.no_data_seconds,
                },
                availability: d.availability,
            },
        )
        .await?;
        bars.push(DayBar {
            incidents: incidents
                .iter()
                .filter(|i| i.components.contains(&c.id))
                .filter(|i| {
                    i.started_us < start + DAY_US && i.resolved_us.is_none_or(|r| r >= start)
                })
                .map(|i| (i.id, i.name.clone()))
                .collect(),
            date: d.date,
            availability: adjusted.availability,
            down_seconds: adjusted.down,
            no_data_seconds: adjusted.no_data,
            maintenance_seconds: adjusted.maintenance,
        });
    }
    // The 90 days' uptime: the same days as the bars, from the first one's midnight.
    let from = bars
        .first()
        .and_then(|b| day_start(&b.date))
        .unwrap_or(now_us - i64::from(DAYS) * DAY_US);
    let whole = client.figures(&c.check, from, now_us, None).await?;
    let (uptime, down, maintenance) = match whole {
        Some(f) => {
            let a = adjusted(
                client,
                settings,
                c,
                maintenances,
                Measured {
                    from,
                    to: now_us,
                    whole: seconds(&f),
                    availability: f.availability,
                },
            )
            .await?;
            (a.availability, a.down, a.maintenance)
        }
        None => (None, 0.0, 0.0),
    };
    let mut latency = Vec::new();
    let latency_from = now_us - i64::try_from(settings.latency_window.as_micros()).unwrap_or(0);
    for (internal, public) in &settings.regions {
        if let Some(f) = client
            .figures(&c.check, latency_from, now_us, Some(internal))
            .await?
        {
            latency.push(RegionLatency {
                region: public.clone(),
                p95_ms: f.latency.p95_ms,
                share_under_objective: f.latency.share_under_objective,
                count: f.latency.count,
            });
        }
    }
    Ok(ComponentFigures {
        days: bars,
        uptime,
        down_seconds: down,
        maintenance_seconds: maintenance,
        latency,
    })
}

pub fn seconds(f: &Figures) -> Seconds {
    Seconds {
        window: f.window_seconds,
        down: f.down_seconds,
        no_data: f.no_data_seconds,
    }
}

/// A window and the collector's figures for it.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub from: i64,
    pub to: i64,
    pub whole: Seconds,
    pub availability: Option<f64>,
}

/// The window's figures with this component's maintenance taken out as the contract says.
pub async fn adjusted(
    client: &CollectorClient,
    settings: &StatusPageSettings,
    c: &ComponentSpec,
    maintenances: &[Maintenance],
    window: Measured,
) -> Result<sla::Adjusted, CollectorError> {
    let Measured {
        from,
        to,
        whole,
        availability,
    } = window;
    let spans = sla::spans(maintenances, &c.id, from, to);
    if spans.is_empty() {
        return Ok(sla::Adjusted {
            availability,
            down: whole.down,
            no_data: whole.no_data,
            maintenance: 0.0,
        });
    }
    let mut inside = Vec::new();
    for (a, b) in spans {
        if let Some(f) = client.figures(&c.check, a, b, None).await? {
            inside.push(seconds(&f));
        }
    }
    Ok(sla::adjust(whole, &inside, settings.maintenance_sla))
}

pub fn day_start(date: &str) -> Option<i64> {
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .ok()?
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_micros())
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
                    let objective_ms = c.objective.as_secs_f64() * 1000.0;
                    let slow: Vec<String> = f
                        .latency
                        .iter()
                        .filter(|l| l.p95_ms.is_some_and(|p| p > objective_ms))
                        .map(|l| l.region.clone())
                        .collect();
                    let live: Option<&CheckLive> =
                        states.and_then(|s| s.checks.iter().find(|l| l.check == c.check));
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
                        objective_ms,
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

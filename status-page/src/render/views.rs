//! The snapshot as pages show it: words and numbers already formatted, public names only.

use serde::Serialize;

use crate::model::{Incident, Maintenance, MaintenanceStatus};
use crate::settings::StatusPageSettings;
use crate::snapshot::{ComponentView, DAYS, Snapshot};
use crate::text;

const DAY_US: i64 = 86_400_000_000;
/// A bad day's colour: levels of trouble below a component's target, the same for every
/// component (how bad a day looked, not an objective).
const MINOR_FROM: f64 = 0.999;
const PARTIAL_FROM: f64 = 0.99;

#[derive(Serialize)]
pub struct Banner {
    pub status: &'static str,
    pub icon: &'static str,
    pub text: String,
}

#[derive(Serialize)]
pub struct Bar {
    pub class: &'static str,
    pub label: String,
}

#[derive(Serialize)]
pub struct LatencyRow {
    pub region: String,
    pub p95: String,
    pub over: bool,
    pub share: String,
}

#[derive(Serialize)]
pub struct ComponentRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub status: &'static str,
    pub status_label: &'static str,
    pub icon: &'static str,
    pub note: String,
    pub bars: Vec<Bar>,
    pub uptime: String,
    /// The check's SLO target, as a percentage; empty before the collector answered.
    pub target: String,
    pub misses: bool,
    pub maintenance: String,
    /// How this component's maintenance counts, as its SLO says.
    pub maintenance_rule: &'static str,
    pub objective: String,
    pub latency: Vec<LatencyRow>,
}

#[derive(Serialize)]
pub struct GroupRow {
    pub id: String,
    pub name: String,
    pub components: Vec<ComponentRow>,
}

#[derive(Serialize)]
pub struct UpdateRow {
    pub status_label: &'static str,
    pub body: String,
    pub when: String,
}

#[derive(Serialize)]
pub struct IncidentRow {
    pub id: i64,
    pub name: String,
    pub status_label: &'static str,
    pub status_icon: &'static str,
    pub impact: &'static str,
    pub components: String,
    pub started: String,
    pub resolved: Option<String>,
    pub updates: Vec<UpdateRow>,
}

#[derive(Serialize)]
pub struct MaintenanceRow {
    pub name: String,
    pub status_label: &'static str,
    pub window: String,
    pub components: String,
    pub message: String,
}

/// What every page shares, and the rows the pages pick from.
pub struct Views<'a> {
    pub settings: &'a StatusPageSettings,
    pub snap: &'a Snapshot,
    pub base: String,
}

impl<'a> Views<'a> {
    pub fn new(settings: &'a StatusPageSettings, snap: &'a Snapshot) -> Self {
        let base = settings
            .public_url
            .as_ref()
            .map(|u| u.as_str().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        Views {
            settings,
            snap,
            base,
        }
    }

    pub fn common(&self) -> tera::Context {
        let mut ctx = tera::Context::new();
        ctx.insert("title", &self.settings.title);
        ctx.insert(
            "css_version",
            &format!(
                "{:x}",
                xxhash_rust::xxh3::xxh3_64(super::STYLESHEET.as_bytes()) & 0xffff_ffff
            ),
        );
        ctx.insert("generated", &text::clock(self.snap.now_us));
        ctx.insert("stale", &self.snap.stale);
        if let Some(t) = self.snap.data_as_of_us {
            ctx.insert("data_as_of", &text::clock(t));
            ctx.insert("data_age", &text::duration_words(self.snap.now_us - t));
        } else {
            ctx.insert("data_as_of", "never");
            ctx.insert("data_age", "no data yet");
        }
        ctx
    }

    pub fn banner(&self) -> Banner {
        let s = self.snap.overall.status;
        let blind = self.snap.components().all(|c| c.no_data);
        if s == crate::status::ComponentStatus::Operational && blind {
            // Nothing measured (a new install, or every region silent): say so, never "fine".
            return Banner {
                status: "unknown",
                icon: "?",
                text: "Status unknown: no current measurements".into(),
            };
        }
        Banner {
            status: s.as_str(),
            icon: s.icon(),
            text: match s {
                crate::status::ComponentStatus::Operational => "All systems operational".into(),
                other => other.label().to_owned(),
            },
        }
    }

    pub fn component_name(&self, id: &str) -> String {
        self.snap
            .components()
            .find(|c| c.id == id)
            .map(|c| c.name.clone())
            .unwrap_or_else(|| id.to_owned())
    }

    /// Component names in the page's order.
    fn names(&self, ids: &[String]) -> String {
        let mut ids: Vec<&String> = ids.iter().collect();
        ids.sort_by_key(|id| {
            self.snap
                .components()
                .position(|c| &c.id == *id)
                .unwrap_or(usize::MAX)
        });
        text::and_list(
            &ids.iter()
                .map(|id| self.component_name(id))
                .collect::<Vec<_>>(),
        )
    }

    pub fn groups(&self) -> Vec<GroupRow> {
        self.snap
            .groups
            .iter()
            .map(|g| GroupRow {
                id: g.id.clone(),
                name: g.name.clone(),
                components: g.components.iter().map(|c| self.component(c)).collect(),
            })
            .collect()
    }

    fn component(&self, c: &ComponentView) -> ComponentRow {
        let uptime = c.figures.uptime.as_ref();
        let availability = uptime.and_then(|u| u.availability);
        ComponentRow {
            id: c.id.clone(),
            name: c.name.clone(),
            description: c.description.clone(),
            status: c.status.as_str(),
            status_label: c.status.label(),
            icon: c.status.icon(),
            note: c.note.clone(),
            bars: self.bars(c),
            uptime: availability
                .map(text::percent)
                .unwrap_or_else(|| "No data".into()),
            target: uptime.map(|u| text::percent(u.target)).unwrap_or_default(),
            misses: uptime.is_some_and(|u| u.availability.is_some_and(|a| a < u.target)),
            maintenance: match uptime {
                Some(u) if u.maintenance_seconds > 0.0 => {
                    text::duration_words((u.maintenance_seconds * 1e6) as i64)
                }
                _ => String::new(),
            },
            maintenance_rule: if uptime.is_some_and(|u| u.maintenance_counted) {
                "(counted in uptime)"
            } else {
                "(left out of uptime)"
            },
            objective: c
                .figures
                .objective_ms
                .map(text::millis)
                .unwrap_or_else(|| "–".into()),
            latency: c
                .figures
                .latency
                .iter()
                .map(|l| LatencyRow {
                    region: l.region.clone(),
                    p95: l
                        .p95_ms
                        .map(text::millis)
                        .unwrap_or_else(|| "no data".into()),
                    over: l
                        .p95_ms
                        .zip(c.figures.objective_ms)
                        .is_some_and(|(p, o)| p > o),
                    share: l
                        .share_under_objective
                        .map(|s| format!("{:.1}%", s * 100.0))
                        .unwrap_or_else(|| "–".into()),
                })
                .collect(),
        }
    }

    /// Exactly 90 bars, today last; a day the collector has nothing for is a no-data bar.
    /// A day at or above the component's target is `ok`; the other colours are levels of
    /// trouble, the same for every component.
    fn bars(&self, c: &ComponentView) -> Vec<Bar> {
        let target = c.figures.uptime.as_ref().map_or(1.0, |u| u.target);
        let today = self.snap.now_us - self.snap.now_us.rem_euclid(DAY_US);
        (0..i64::from(DAYS))
            .rev()
            .map(|back| {
                let day = today - back * DAY_US;
                let date = text::time(day)
                    .map(|t| t.format("%Y-%m-%d").to_string())
                    .unwrap_or_default();
                let shown = text::time(day)
                    .map(|t| t.format("%-d %b %Y").to_string())
                    .unwrap_or_default();
                let Some(d) = c.figures.days.iter().find(|d| d.date == date) else {
                    return Bar {
                        class: "nodata",
                        label: format!("{shown}: no data"),
                    };
                };
                let Some(a) = d.availability else {
                    return Bar {
                        class: if d.maintenance_seconds > 0.0 {
                            "maint"
                        } else {
                            "nodata"
                        },
                        label: format!("{shown}: no data"),
                    };
                };
                let class = if a >= 1.0 {
                    "up"
                } else if a >= target {
                    "ok"
                } else if a >= MINOR_FROM {
                    "minor"
                } else if a >= PARTIAL_FROM {
                    "partial"
                } else {
                    "major"
                };
                let down = if d.down_seconds > 0.0 {
                    format!(
                        "{} down",
                        text::duration_words((d.down_seconds * 1e6) as i64)
                    )
                } else {
                    "no downtime".into()
                };
                let incidents = match d.incidents.len() {
                    0 => "no incidents".to_owned(),
                    n => format!(
                        "{n} incident{}: {}",
                        if n == 1 { "" } else { "s" },
                        d.incidents
                            .iter()
                            .map(|(_, name)| name.as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                };
                let maintenance = if d.maintenance_seconds > 0.0 {
                    format!(
                        ", {} maintenance",
                        text::duration_words((d.maintenance_seconds * 1e6) as i64)
                    )
                } else {
                    String::new()
                };
                Bar {
                    class,
                    label: format!(
                        "{shown}: {} available, {down}{maintenance}, {incidents}",
                        text::percent(a)
                    ),
                }
            })
            .collect()
    }

    pub fn incident(&self, i: &Incident) -> IncidentRow {
        IncidentRow {
            id: i.id,
            name: i.name.clone(),
            status_label: i.status.label(),
            status_icon: if i.resolved() { "✔" } else { "⚠" },
            impact: i.impact.as_str(),
            components: self.names(&i.components),
            started: text::clock(i.started_us),
            resolved: i.resolved_us.map(text::clock),
            updates: i
                .updates
                .iter()
                .map(|u| UpdateRow {
                    status_label: u.status.label(),
                    body: u.body.clone(),
                    when: text::clock(u.created_us),
                })
                .collect(),
        }
    }

    pub fn active_incidents(&self) -> Vec<IncidentRow> {
        self.snap
            .incidents
            .iter()
            .filter(|i| !i.resolved())
            .map(|i| self.incident(i))
            .collect()
    }

    /// Active and upcoming maintenance, soonest first.
    pub fn maintenances(&self) -> Vec<MaintenanceRow> {
        self.snap
            .maintenances
            .iter()
            .filter(|m| m.status(self.snap.now_us) != MaintenanceStatus::Completed)
            .map(|m| self.maintenance(m))
            .collect()
    }

    fn maintenance(&self, m: &Maintenance) -> MaintenanceRow {
        MaintenanceRow {
            name: m.window.name.clone(),
            status_label: match m.status(self.snap.now_us) {
                MaintenanceStatus::Scheduled => "Scheduled",
                MaintenanceStatus::InProgress => "In progress",
                MaintenanceStatus::Completed => "Completed",
            },
            window: format!(
                "{} to {}",
                text::clock(m.window.starts_us),
                text::clock(m.window.ends_us)
            ),
            components: self.names(&m.components),
            message: m.window.message.clone(),
        }
    }
}

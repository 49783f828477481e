//! What the status page keeps (incidents with their updates) and how it shows the collector's
//! scheduled maintenance.

use lookout_model::read;
pub use lookout_model::read::MaintenanceStatus;
use serde::{Deserialize, Serialize};

use crate::settings::StatusPageSettings;

/// An incident's status, as Statuspage names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
}

impl IncidentStatus {
    pub const ALL: [IncidentStatus; 4] = [
        IncidentStatus::Investigating,
        IncidentStatus::Identified,
        IncidentStatus::Monitoring,
        IncidentStatus::Resolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Investigating => "investigating",
            IncidentStatus::Identified => "identified",
            IncidentStatus::Monitoring => "monitoring",
            IncidentStatus::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            IncidentStatus::Investigating => "Investigating",
            IncidentStatus::Identified => "Identified",
            IncidentStatus::Monitoring => "Monitoring",
            IncidentStatus::Resolved => "Resolved",
        }
    }
}

/// How bad an incident is, as Statuspage names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Impact {
    None,
    Minor,
    Major,
    Critical,
}

impl Impact {
    pub const ALL: [Impact; 4] = [Impact::None, Impact::Minor, Impact::Major, Impact::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Impact::None => "none",
            Impact::Minor => "minor",
            Impact::Major => "major",
            Impact::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Update {
    pub id: i64,
    pub incident_id: i64,
    pub status: IncidentStatus,
    pub body: String,
    pub created_us: i64,
    /// Written by the status page from the collector's data, not by a person.
    pub auto: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    pub id: i64,
    pub name: String,
    pub status: IncidentStatus,
    pub impact: Impact,
    /// When the trouble began (the first down interval's start, or when a person opened it).
    pub started_us: i64,
    pub created_us: i64,
    pub updated_us: i64,
    pub monitoring_us: Option<i64>,
    pub resolved_us: Option<i64>,
    /// Opened from the collector's down intervals.
    pub auto: bool,
    /// Public component ids.
    pub components: Vec<String>,
    /// Newest first.
    pub updates: Vec<Update>,
}

impl Incident {
    pub fn resolved(&self) -> bool {
        self.status == IncidentStatus::Resolved
    }
}

/// A maintenance window of the collector's (which owns them) as this page shows it: its
/// checks as the page's components. A window of no component of the page is not shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Maintenance {
    #[serde(flatten)]
    pub window: read::Maintenance,
    /// Public component ids.
    pub components: Vec<String>,
}

impl Maintenance {
    pub fn of(window: read::Maintenance, settings: &StatusPageSettings) -> Option<Maintenance> {
        let components: Vec<String> = settings
            .components()
            .filter(|c| window.checks.contains(&c.check))
            .map(|c| c.id.clone())
            .collect();
        (!components.is_empty()).then_some(Maintenance { window, components })
    }

    pub fn status(&self, now_us: i64) -> MaintenanceStatus {
        self.window.status(now_us)
    }

    pub fn covers(&self, component: &str, now_us: i64) -> bool {
        self.status(now_us) == MaintenanceStatus::InProgress
            && self.components.iter().any(|c| c == component)
    }
}

//! What a status page shows and where it reads it from: built by the `lookout` binary from the
//! config, or by hand in tests.

use std::path::PathBuf;
use std::time::Duration;

use lookout_alerting::notify::EmailConfig;
use lookout_model::secret::Secret;
use url::Url;

/// One thing partners see: a key use case under a name they understand.
#[derive(Debug, Clone)]
pub struct ComponentSpec {
    /// The public id, in URLs and the JSON (`search`, `artist-pages`): never the check's name.
    pub id: String,
    pub name: String,
    pub description: String,
    /// The collector's check behind it: internal, never shown.
    pub check: String,
    /// The latency objective shown beside the latency.
    pub objective: Duration,
}

#[derive(Debug, Clone)]
pub struct GroupSpec {
    pub id: String,
    pub name: String,
    pub components: Vec<ComponentSpec>,
}

/// Whether a maintenance window's minutes count towards availability (the contract says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaintenanceSla {
    /// Left out of availability, reported apart (like no-data time).
    #[default]
    Excluded,
    /// Counted as any other time: downtime during maintenance is downtime.
    Counted,
}

/// A scheduled maintenance written in the config rather than posted through the admin API.
#[derive(Debug, Clone)]
pub struct MaintenanceSpec {
    pub name: String,
    pub components: Vec<String>,
    pub starts_us: i64,
    pub ends_us: i64,
    pub message: String,
}

/// The alerter the status page tells about maintenance, so that it holds pages.
#[derive(Debug, Clone)]
pub struct AlerterLink {
    pub url: Url,
    pub token: Secret,
}

#[derive(Debug, Clone)]
pub struct ReportSettings {
    /// When last month's report is sent.
    pub schedule: cron::Schedule,
    pub email: EmailConfig,
}

#[derive(Debug, Clone)]
pub struct StatusPageSettings {
    pub title: String,
    /// The page's own public address, for links in the feed, the JSON and report emails.
    pub public_url: Option<Url>,
    pub collector_url: Url,
    pub collector_token: Secret,
    /// Guards the admin API.
    pub admin_token: Secret,
    pub groups: Vec<GroupSpec>,
    /// Internal region name and its public name, in display order; regions not listed are never
    /// shown.
    pub regions: Vec<(String, String)>,
    /// The availability promised, e.g. 0.9999.
    pub target: f64,
    pub maintenance_sla: MaintenanceSla,
    pub maintenance: Vec<MaintenanceSpec>,
    /// The SQLite file for incidents and maintenance; in memory when `None`.
    pub store: Option<PathBuf>,
    pub alerter: Option<AlerterLink>,
    pub reports: Option<ReportSettings>,
    /// How often figures (bars, latency, uptime) are read again; the live state is followed
    /// as it changes.
    pub refresh_every: Duration,
    /// Incidents per history page.
    pub history_page_size: usize,
    /// Latency shown as "current": the p95 over this window, per region.
    pub latency_window: Duration,
}

impl StatusPageSettings {
    pub fn new(collector_url: Url, collector_token: Secret, admin_token: Secret) -> Self {
        StatusPageSettings {
            title: "Service status".into(),
            public_url: None,
            collector_url,
            collector_token,
            admin_token,
            groups: Vec::new(),
            regions: Vec::new(),
            target: 0.9999,
            maintenance_sla: MaintenanceSla::default(),
            maintenance: Vec::new(),
            store: None,
            alerter: None,
            reports: None,
            refresh_every: Duration::from_secs(15),
            history_page_size: 20,
            latency_window: Duration::from_secs(15 * 60),
        }
    }

    pub fn components(&self) -> impl Iterator<Item = &ComponentSpec> {
        self.groups.iter().flat_map(|g| g.components.iter())
    }

    pub fn component(&self, id: &str) -> Option<&ComponentSpec> {
        self.components().find(|c| c.id == id)
    }

    pub fn public_region(&self, internal: &str) -> Option<&str> {
        self.regions
            .iter()
            .find(|(i, _)| i == internal)
            .map(|(_, p)| p.as_str())
    }
}

/// `Artist pages` -> `artist-pages`: a public id from a public name.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

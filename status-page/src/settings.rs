//! What a status page shows and where it reads it from: built by the `lookout` binary from the
//! config, or by hand in tests.

use std::path::PathBuf;
use std::time::Duration;

use lookout_mail::EmailConfig;
use lookout_model::secret::Secret;
use url::Url;

/// One thing partners see: a key use case under a name they understand.
#[derive(Debug, Clone)]
pub struct ComponentSpec {
    /// The public id, in URLs and the JSON (`search`, `artist-pages`): never the check's name.
    pub id: String,
    pub name: String,
    pub description: String,
    /// The collector's check behind it: internal, never shown. Its SLO (target, latency
    /// objective, how maintenance counts) is the collector's, read with its figures.
    pub check: String,
}

#[derive(Debug, Clone)]
pub struct GroupSpec {
    pub id: String,
    pub name: String,
    pub components: Vec<ComponentSpec>,
}

#[derive(Debug, Clone)]
pub struct ReportSettings {
    /// When last month's report is sent.
    pub schedule: lookout_conf::Cron,
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
    /// The SQLite file for incidents; in memory when `None`.
    pub store: Option<PathBuf>,
    pub reports: Option<ReportSettings>,
    /// How often figures (bars, latency, uptime) are read again; the live state is followed
    /// as it changes.
    pub refresh_every: Duration,
    /// Incidents per history page.
    pub history_page_size: usize,
    /// Latency shown as "current": the p95 over this window, per region.
    pub latency_window: Duration,
    /// `Some` on one status page replica of several: incidents are made from the replicated
    /// log, so that every replica shows the same (docs/ha.md).
    pub changes: Option<lookout_cluster::Log>,
    /// `Some` on a replica: a scheduled report is mailed by the replica that claims it, once.
    pub claims: Option<lookout_cluster::Claims>,
    /// `Some`: the page and its API are served over TLS with this certificate.
    pub tls: Option<lookout_api::tls::ServerTls>,
    /// Roots trusted beyond the public ones when calling the collector.
    pub trust: lookout_api::tls::Trust,
    /// On a replica: a collector replica further behind the log than this (`cluster.max_behind`)
    /// makes the page say its data is old.
    pub max_behind: Option<Duration>,
    /// `Some`: `POST /-/reload` (with the admin token) asks the config's owner to reload.
    pub reload: Option<lookout_api::reload::Trigger>,
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
            store: None,
            reports: None,
            refresh_every: Duration::from_secs(15),
            history_page_size: 20,
            latency_window: Duration::from_secs(15 * 60),
            changes: None,
            claims: None,
            tls: None,
            trust: Default::default(),
            max_behind: None,
            reload: None,
        }
    }

    pub fn components(&self) -> impl Iterator<Item = &ComponentSpec> {
        self.groups.iter().flat_map(|g| g.components.iter())
    }

    pub fn component(&self, id: &str) -> Option<&ComponentSpec> {
        self.components().find(|c| c.id == id)
    }

    /// The collector's checks behind the components, each once, in the page's order.
    pub fn checks(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in self.components() {
            if !out.contains(&c.check) {
                out.push(c.check.clone());
            }
        }
        out
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

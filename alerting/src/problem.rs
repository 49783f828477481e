//! Problems: what people are paged about. Checks of one group that go bad together make one
//! problem, so one page; it stays open until every one of them is OK again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::notify::{Kind, Level};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// Stable from the first page to the resolve: PagerDuty's dedup key.
    pub id: String,
    pub group_key: String,
    pub opened_us: i64,
    pub closed_us: Option<i64>,
    /// Every check that was bad in it, with its level now (OK once it recovered).
    pub members: BTreeMap<String, Level>,
    /// The check that opened it: messages lead with it.
    pub lead: String,
    pub regions: Vec<String>,
    pub reason: Option<String>,
    pub ack: Option<Ack>,
    /// Per subscription: what it was told (the highest level paged) and when last.
    #[serde(default)]
    pub notified: BTreeMap<String, Notified>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Notified {
    pub level: Level,
    pub last_us: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub by: String,
    pub comment: String,
    pub at_us: i64,
}

impl Problem {
    pub fn open(group_key: &str, check: &str, level: Level, now_us: i64) -> Problem {
        Problem {
            id: format!("{}@{now_us}", group_key.replace(':', "-")),
            group_key: group_key.to_owned(),
            opened_us: now_us,
            closed_us: None,
            members: BTreeMap::from([(check.to_owned(), level)]),
            lead: check.to_owned(),
            regions: Vec::new(),
            reason: None,
            ack: None,
            notified: BTreeMap::new(),
        }
    }

    /// The worst level of its members now.
    pub fn level(&self) -> Level {
        self.members.values().copied().max().unwrap_or(Level::Ok)
    }

    pub fn is_open(&self) -> bool {
        self.closed_us.is_none()
    }

    /// The checks bad now, worst first.
    pub fn bad_members(&self) -> Vec<&str> {
        let mut v: Vec<(&String, &Level)> = self
            .members
            .iter()
            .filter(|(_, l)| **l != Level::Ok)
            .collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        v.into_iter().map(|(c, _)| c.as_str()).collect()
    }
}

/// One notification in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: i64,
    pub problem_id: String,
    pub subscription_id: String,
    pub kind: Kind,
    /// The level it told of (for a trigger: the level paged for).
    pub level: Level,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_us: i64,
    pub created_us: i64,
    pub sent_us: Option<i64>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Sent,
    /// Refused for good by the receiver, or out of attempts: counted and logged.
    Failed,
    /// A reminder that a later notification of the same problem to the same receiver made
    /// pointless while it waited (the receiver was down): not sent.
    Skipped,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> DeliveryStatus {
        match s {
            "sent" => DeliveryStatus::Sent,
            "failed" => DeliveryStatus::Failed,
            "skipped" => DeliveryStatus::Skipped,
            _ => DeliveryStatus::Pending,
        }
    }
}

/// A silence or maintenance window: notifications of matching checks are held while it
/// lasts (history is still recorded), and sent when it ends if the problem is still open.
/// Resolves are never held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    /// Check ids, groups as `group:NAME`, or `about:CHECK` for every alert check about one
    /// probe check (its down, latency and burn-rate checks); empty matches every check.
    #[serde(default)]
    pub matchers: Vec<String>,
    pub starts_us: i64,
    pub ends_us: i64,
    #[serde(default)]
    pub created_by: String,
    #[serde(default)]
    pub comment: String,
    /// `silence`, `maintenance`, or `replacer` (a grace period for a problem being fixed).
    #[serde(default = "silence_kind")]
    pub kind: String,
}

fn silence_kind() -> String {
    "silence".into()
}

impl Silence {
    pub fn active(&self, now_us: i64) -> bool {
        self.starts_us <= now_us && now_us < self.ends_us
    }

    pub fn matches(&self, check_id: &str, group: Option<&str>, about: Option<&str>) -> bool {
        self.matchers.is_empty()
            || self.matchers.iter().any(|m| {
                m == check_id
                    || group.is_some_and(|g| m.strip_prefix("group:") == Some(g))
                    || about.is_some_and(|a| m.strip_prefix("about:") == Some(a))
            })
    }
}

/// A change of a check's level, kept as history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    pub id: i64,
    pub check_id: String,
    pub target: String,
    pub value: Option<f64>,
    pub warn: Option<f64>,
    pub error: Option<f64>,
    pub from: Level,
    pub to: Level,
    pub time_us: i64,
    /// RFC 3339, for people.
    pub time: String,
}

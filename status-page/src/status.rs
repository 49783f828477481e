//! A component's status from the collector's live state and its latency, and the page's
//! overall banner from its components: Statuspage's names, so clients read them unchanged.

use serde::Serialize;

use lookout_model::read::{CheckLive, LiveState, RegionState};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentStatus {
    Operational,
    UnderMaintenance,
    DegradedPerformance,
    PartialOutage,
    MajorOutage,
}

impl ComponentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentStatus::Operational => "operational",
            ComponentStatus::UnderMaintenance => "under_maintenance",
            ComponentStatus::DegradedPerformance => "degraded_performance",
            ComponentStatus::PartialOutage => "partial_outage",
            ComponentStatus::MajorOutage => "major_outage",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ComponentStatus::Operational => "Operational",
            ComponentStatus::UnderMaintenance => "Under maintenance",
            ComponentStatus::DegradedPerformance => "Degraded performance",
            ComponentStatus::PartialOutage => "Partial outage",
            ComponentStatus::MajorOutage => "Major outage",
        }
    }

    /// A text symbol beside the colour, so that colour is never the only signal.
    pub fn icon(self) -> &'static str {
        match self {
            ComponentStatus::Operational => "✔",
            ComponentStatus::UnderMaintenance => "⚙",
            ComponentStatus::DegradedPerformance => "▲",
            ComponentStatus::PartialOutage => "◐",
            ComponentStatus::MajorOutage => "✖",
        }
    }
}

/// What a component's live state says, before maintenance.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessed {
    pub status: ComponentStatus,
    /// For people: what is wrong and where, in public region names.
    pub note: String,
    /// Fewer regions than the quorum are reporting: the status is the last one known.
    pub no_data: bool,
}

/// `slow_regions`: public names of regions whose current latency is above the objective.
pub fn assess(
    live: Option<&CheckLive>,
    public: &dyn Fn(&str) -> Option<String>,
    slow_regions: &[String],
) -> Assessed {
    let Some(live) = live else {
        return Assessed {
            status: ComponentStatus::Operational,
            note: "No measurements yet".into(),
            no_data: true,
        };
    };
    let failing: Vec<&str> = live
        .regions
        .iter()
        .filter(|r| r.state == RegionState::Failing)
        .map(|r| r.region.as_str())
        .collect();
    let degraded: Vec<&str> = live.degraded().map(|r| r.region.as_str()).collect();
    let reporting = live
        .regions
        .iter()
        .filter(|r| r.state != RegionState::Silent)
        .count();
    let names = |regions: &[&str]| {
        let named: Vec<String> = regions.iter().filter_map(|r| public(r)).collect();
        if named.is_empty() {
            "some locations".to_owned()
        } else {
            crate::text::and_list(&named)
        }
    };
    let no_data = live.state == LiveState::NoData;
    match live.state {
        // A heartbeat, or a check only one region reports on, has no "every region" to fail
        // from.
        LiveState::Down if failing.len() >= reporting => Assessed {
            status: ComponentStatus::MajorOutage,
            note: if reporting > 1 {
                "Failing from every region".into()
            } else {
                "Failing".into()
            },
            no_data: false,
        },
        LiveState::Down => Assessed {
            status: ComponentStatus::PartialOutage,
            note: format!("Unavailable from {}", names(&failing)),
            no_data: false,
        },
        _ if !failing.is_empty() => Assessed {
            status: ComponentStatus::DegradedPerformance,
            note: format!("Degraded in {}", names(&failing)),
            no_data,
        },
        // Runs that pass but not as a user wants them (a stream that would stutter).
        _ if !degraded.is_empty() => Assessed {
            status: ComponentStatus::DegradedPerformance,
            note: format!("Degraded performance in {}", names(&degraded)),
            no_data,
        },
        _ if !slow_regions.is_empty() => Assessed {
            status: ComponentStatus::DegradedPerformance,
            note: format!(
                "Slower than usual in {}",
                crate::text::and_list(slow_regions)
            ),
            no_data,
        },
        LiveState::NoData => Assessed {
            status: ComponentStatus::Operational,
            note: "Monitoring data delayed".into(),
            no_data: true,
        },
        _ => Assessed {
            status: ComponentStatus::Operational,
            note: String::new(),
            no_data: false,
        },
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overall {
    /// The banner's own status.
    pub status: ComponentStatus,
    /// Statuspage's indicator: none, minor, major, critical or maintenance.
    pub indicator: &'static str,
    pub description: &'static str,
}

pub fn overall(statuses: impl IntoIterator<Item = ComponentStatus>) -> Overall {
    let worst = statuses
        .into_iter()
        .max()
        .unwrap_or(ComponentStatus::Operational);
    let (indicator, description) = match worst {
        ComponentStatus::Operational => ("none", "All Systems Operational"),
        ComponentStatus::UnderMaintenance => ("maintenance", "Service Under Maintenance"),
        ComponentStatus::DegradedPerformance => ("minor", "Degraded Performance"),
        ComponentStatus::PartialOutage => ("major", "Partial System Outage"),
        ComponentStatus::MajorOutage => ("critical", "Major System Outage"),
    };
    Overall {
        status: worst,
        indicator,
        description,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_model::read::RegionLive;

    /// States as the collector writes them.
    fn parse<T: serde::de::DeserializeOwned>(s: &str) -> T {
        serde_json::from_value(serde_json::Value::String(s.into())).unwrap()
    }

    fn live(state: &str, regions: &[(&str, &str)]) -> CheckLive {
        CheckLive {
            check: "search".into(),
            state: parse(state),
            since_us: None,
            quorum: 2,
            regions: regions
                .iter()
                .map(|(r, s)| RegionLive {
                    region: (*r).into(),
                    state: parse(s),
                    since_us: None,
                    last_result_us: None,
                    reason: None,
                    kind: None,
                })
                .collect(),
        }
    }

    fn public(r: &str) -> Option<String> {
        match r {
            "eu-west" => Some("Europe".into()),
            "ap-south" => Some("Asia Pacific".into()),
            _ => None,
        }
    }

    #[test]
    fn states_map_to_statuspage_statuses_naming_public_regions_only() {
        let all_down = live("down", &[("eu-west", "failing"), ("ap-south", "failing")]);
        let a = assess(Some(&all_down), &public, &[]);
        assert_eq!(a.status, ComponentStatus::MajorOutage);
        assert_eq!(a.note, "Failing from every region");
        // A heartbeat's one region, or the only one still reporting.
        let alone = live("down", &[("heartbeat", "failing"), ("eu-west", "silent")]);
        let a = assess(Some(&alone), &public, &[]);
        assert_eq!(a.status, ComponentStatus::MajorOutage);
        assert_eq!(a.note, "Failing");
        let most = live(
            "down",
            &[
                ("eu-west", "failing"),
                ("hidden", "failing"),
                ("ap-south", "ok"),
            ],
        );
        let a = assess(Some(&most), &public, &[]);
        assert_eq!(a.status, ComponentStatus::PartialOutage);
        assert_eq!(a.note, "Unavailable from Europe");
        let regional = live("up", &[("hidden", "failing"), ("eu-west", "ok")]);
        let a = assess(Some(&regional), &public, &[]);
        assert_eq!(a.status, ComponentStatus::DegradedPerformance);
        assert_eq!(a.note, "Degraded in some locations");
        let degraded = live("up", &[("eu-west", "degraded"), ("ap-south", "ok")]);
        let a = assess(Some(&degraded), &public, &["Europe".into()]);
        assert_eq!(a.status, ComponentStatus::DegradedPerformance);
        assert_eq!(a.note, "Degraded performance in Europe");
        // Failing is the worse news, and a degraded quorum is not down.
        let both = live("up", &[("eu-west", "degraded"), ("ap-south", "failing")]);
        assert_eq!(
            assess(Some(&both), &public, &[]).note,
            "Degraded in Asia Pacific"
        );
        let slow = live("up", &[("eu-west", "ok")]);
        let a = assess(Some(&slow), &public, &["Europe".into()]);
        assert_eq!(a.note, "Slower than usual in Europe");
        assert!(assess(None, &public, &[]).no_data);
    }

    #[test]
    fn the_banner_is_the_worst_component() {
        use ComponentStatus::*;
        assert_eq!(overall([Operational, Operational]).indicator, "none");
        assert_eq!(
            overall([Operational, UnderMaintenance]).indicator,
            "maintenance"
        );
        assert_eq!(
            overall([UnderMaintenance, DegradedPerformance]).indicator,
            "minor"
        );
        assert_eq!(
            overall([PartialOutage, Operational]).description,
            "Partial System Outage"
        );
        assert_eq!(overall([MajorOutage, PartialOutage]).indicator, "critical");
    }
}

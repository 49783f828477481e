//! The `GET /healthcheck` document every process serves, Lookout's and the platform's alike.
//!
//! One shape for all of them means the gateway, the replacer and people read every
//! process's health the same way.

use serde::{Deserialize, Serialize};

/// Overall health of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// The process and everything it depends on are working.
    Ok,
    /// The process works but a dependency does not: do not replace the process for it.
    Degraded,
    /// The process itself cannot serve.
    Down,
}

impl HealthStatus {
    /// Whether the process itself can serve requests (the dependency section aside).
    pub fn is_serving(self) -> bool {
        matches!(self, HealthStatus::Ok | HealthStatus::Degraded)
    }
}

/// The body of `GET /healthcheck`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub status: HealthStatus,
    /// What runs here, e.g. `catalogue` or `collector`.
    pub service: String,
    pub version: String,
    pub uptime_seconds: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Dependency>,
}

/// One dependency as its dependant sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dependency {
    pub name: String,
    pub status: HealthStatus,
    /// Per-instance detail where the dependency is a pool of instances.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<InstanceHealth>,
}

/// One instance of a pooled dependency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceHealth {
    pub url: String,
    pub status: HealthStatus,
    /// Why the instance is considered down, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Dependency {
    /// A pool is ok when every instance is, down when none is, degraded in between.
    pub fn from_instances(name: impl Into<String>, instances: Vec<InstanceHealth>) -> Self {
        let serving = instances.iter().filter(|i| i.status.is_serving()).count();
        let status = if instances.is_empty() || serving == 0 {
            HealthStatus::Down
        } else if serving == instances.len() {
            HealthStatus::Ok
        } else {
            HealthStatus::Degraded
        };
        Dependency {
            name: name.into(),
            status,
            instances,
        }
    }
}

/// The status a process reports given its own state and its dependencies'.
pub fn overall(self_serving: bool, dependencies: &[Dependency]) -> HealthStatus {
    if !self_serving {
        HealthStatus::Down
    } else if dependencies.iter().all(|d| d.status == HealthStatus::Ok) {
        HealthStatus::Ok
    } else {
        HealthStatus::Degraded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(status: HealthStatus) -> InstanceHealth {
        InstanceHealth {
            url: "http://127.0.0.1:1".into(),
            status,
            reason: None,
        }
    }

    #[test]
    fn pool_status_follows_its_instances() {
        use HealthStatus::*;
        let cases = [
            (vec![], Down),
            (vec![Ok, Ok], Ok),
            (vec![Ok, Down], Degraded),
            (vec![Down, Down], Down),
        ];
        for (statuses, want) in cases {
            let d = Dependency::from_instances("x", statuses.into_iter().map(instance).collect());
            assert_eq!(d.status, want);
        }
    }

    #[test]
    fn a_dead_dependency_degrades_but_never_downs_a_serving_process() {
        let dead = Dependency::from_instances("catalogue", vec![instance(HealthStatus::Down)]);
        assert_eq!(overall(true, &[dead]), HealthStatus::Degraded);
        assert_eq!(overall(false, &[]), HealthStatus::Down);
        assert_eq!(overall(true, &[]), HealthStatus::Ok);
    }

    #[test]
    fn round_trips_as_json() {
        let h = Health {
            status: HealthStatus::Degraded,
            service: "gateway".into(),
            version: "0.1.0".into(),
            uptime_seconds: 1.5,
            dependencies: vec![Dependency::from_instances(
                "mixes",
                vec![instance(HealthStatus::Ok)],
            )],
        };
        let text = serde_json::to_string(&h).unwrap();
        assert!(text.contains(r#""status":"degraded""#));
        let back: Health = serde_json::from_str(&text).unwrap();
        assert_eq!(back, h);
    }
}

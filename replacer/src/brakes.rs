//! Whether to replace, decided from the whole picture, never one instance at a time: what no
//! Auto Scaling group or Kubernetes controller does. When more than a share of a service's
//! instances look unhealthy at once, or several services fail together, the likelier culprit
//! is the checker or the network, and replacing would only make things worse: the replacer
//! holds, says so loudly, and leaves the decision to a person.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BrakeSettings {
    /// Replacements in flight at once, over all services.
    pub max_concurrent: usize,
    /// Replacements started per service in any hour.
    pub max_per_hour: usize,
    /// After a replacement of a service starts, the next waits this long.
    pub cooldown: Duration,
    /// More than this share of a service's instances unhealthy at once holds it.
    pub max_unhealthy_share: f64,
    /// More than this many services with unhealthy instances at once holds everything.
    pub max_failing_services: usize,
}

impl Default for BrakeSettings {
    fn default() -> Self {
        BrakeSettings {
            max_concurrent: 1,
            max_per_hour: 3,
            cooldown: Duration::from_secs(60),
            max_unhealthy_share: 0.5,
            max_failing_services: 1,
        }
    }
}

impl BrakeSettings {
    pub fn check(&self) -> Result<(), String> {
        if self.max_concurrent == 0 || self.max_per_hour == 0 {
            return Err("max_concurrent and max_per_hour must be at least 1 (use dry_run to act on nothing)".into());
        }
        if !(0.0..1.0).contains(&self.max_unhealthy_share) || self.max_unhealthy_share == 0.0 {
            return Err(format!(
                "max_unhealthy_share must be above 0 and below 1, got {}",
                self.max_unhealthy_share
            ));
        }
        if self.max_failing_services == 0 {
            return Err("max_failing_services must be at least 1".into());
        }
        Ok(())
    }
}

/// One service now.
#[derive(Debug, Clone, Default)]
pub struct ServiceNow {
    pub instances: usize,
    /// Unhealthy instances not being replaced already.
    pub unhealthy: Vec<String>,
}

/// Everything a decision looks at.
#[derive(Debug, Clone, Default)]
pub struct Situation {
    pub now_us: i64,
    pub services: BTreeMap<String, ServiceNow>,
    /// Instances being replaced now, with their service.
    pub in_flight: BTreeMap<String, String>,
    /// Replacements started: (service, when).
    pub started: Vec<(String, i64)>,
}

/// Why nothing is done for now.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "brake", rename_all = "snake_case")]
pub enum Hold {
    /// Too much of one service at once: suspect the checker or the network.
    MassFailure { unhealthy: usize, instances: usize },
    /// Several services at once: suspect the checker or the network.
    ManyServices { services: Vec<String> },
    /// The limit of replacements in flight is reached; the next waits its turn.
    Concurrency,
    /// The service had `max_per_hour` replacements in the last hour.
    HourlyLimit,
    /// The service's last replacement started less than the cooldown ago.
    Cooldown { seconds_left: u64 },
}

impl Hold {
    /// Holds that need a person: everything is held until one looks.
    pub fn needs_a_person(&self) -> bool {
        matches!(self, Hold::MassFailure { .. } | Hold::ManyServices { .. })
    }

    pub fn describe(&self, service: &str) -> String {
        match self {
            Hold::MassFailure {
                unhealthy,
                instances,
            } => format!(
                "replacer held: mass failure, suspect the checker or the network ({unhealthy} of {instances} {service} instances look unhealthy at once)"
            ),
            Hold::ManyServices { services } => format!(
                "replacer held: mass failure, suspect the checker or the network (services failing together: {})",
                services.join(", ")
            ),
            Hold::Concurrency => "waiting: another replacement is in flight".into(),
            Hold::HourlyLimit => format!("waiting: {service} had its hourly limit of replacements"),
            Hold::Cooldown { seconds_left } => {
                format!("waiting: {service} cools down for {seconds_left} s more")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Replace {
        service: String,
        instance: String,
    },
    Hold {
        service: String,
        instance: Option<String>,
        hold: Hold,
    },
}

const HOUR_US: i64 = 3_600_000_000;

pub fn decide(s: &Situation, b: &BrakeSettings) -> Vec<Decision> {
    let failing: Vec<String> = s
        .services
        .iter()
        .filter(|(_, n)| !n.unhealthy.is_empty())
        .map(|(name, _)| name.clone())
        .collect();
    let mut out = Vec::new();
    if failing.len() > b.max_failing_services {
        for service in &failing {
            out.push(Decision::Hold {
                service: service.clone(),
                instance: None,
                hold: Hold::ManyServices {
                    services: failing.clone(),
                },
            });
        }
        return out;
    }
    let mut in_flight = s.in_flight.len();
    for (service, now) in s.services.iter().filter(|(_, n)| !n.unhealthy.is_empty()) {
        let bad = now.unhealthy.len() + s.in_flight.values().filter(|svc| *svc == service).count();
        if now.instances == 0 || bad as f64 / now.instances as f64 > b.max_unhealthy_share {
            out.push(Decision::Hold {
                service: service.clone(),
                instance: None,
                hold: Hold::MassFailure {
                    unhealthy: bad,
                    instances: now.instances,
                },
            });
            continue;
        }
        for instance in &now.unhealthy {
            let mine: Vec<i64> = s
                .started
                .iter()
                .filter(|(svc, _)| svc == service)
                .map(|(_, t)| *t)
                .collect();
            let last = mine.iter().copied().max();
            let cooldown_us = i64::try_from(b.cooldown.as_micros()).unwrap_or(i64::MAX);
            let hold = if in_flight >= b.max_concurrent {
                Some(Hold::Concurrency)
            } else if mine.iter().filter(|t| s.now_us - **t < HOUR_US).count() >= b.max_per_hour {
                Some(Hold::HourlyLimit)
            } else {
                last.filter(|t| s.now_us - t < cooldown_us)
                    .map(|t| Hold::Cooldown {
                        seconds_left: u64::try_from((cooldown_us - (s.now_us - t)) / 1_000_000)
                            .unwrap_or(0)
                            + 1,
                    })
            };
            match hold {
                Some(hold) => out.push(Decision::Hold {
                    service: service.clone(),
                    instance: Some(instance.clone()),
                    hold,
                }),
                None => {
                    in_flight += 1;
                    out.push(Decision::Replace {
                        service: service.clone(),
                        instance: instance.clone(),
                    });
                    // The cooldown starts now for the next one of this service.
                    break;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn situation(services: &[(&str, usize, &[&str])]) -> Situation {
        Situation {
            now_us: 10 * HOUR_US,
            services: services
                .iter()
                .map(|(name, n, bad)| {
                    (
                        (*name).to_owned(),
                        ServiceNow {
                            instances: *n,
                            unhealthy: bad.iter().map(|b| (*b).to_owned()).collect(),
                        },
                    )
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn one_sick_instance_of_several_is_replaced() {
        let s = situation(&[("catalogue", 2, &["catalogue#1"]), ("mixes", 2, &[])]);
        assert_eq!(
            decide(&s, &BrakeSettings::default()),
            vec![Decision::Replace {
                service: "catalogue".into(),
                instance: "catalogue#1".into()
            }]
        );
    }

    #[test]
    fn most_of_a_service_at_once_holds_and_needs_a_person() {
        let s = situation(&[("catalogue", 3, &["catalogue#1", "catalogue#2"])]);
        let d = decide(&s, &BrakeSettings::default());
        let [Decision::Hold { hold, .. }] = &d[..] else {
            panic!("{d:?}")
        };
        assert!(hold.needs_a_person());
        assert!(
            hold.describe("catalogue")
                .contains("suspect the checker or the network")
        );
    }

    #[test]
    fn several_services_at_once_hold_everything() {
        let s = situation(&[
            ("catalogue", 4, &["catalogue#1"]),
            ("mixes", 4, &["mixes#2"]),
        ]);
        let d = decide(&s, &BrakeSettings::default());
        assert_eq!(d.len(), 2);
        assert!(d.iter().all(|d| matches!(
            d,
            Decision::Hold {
                hold: Hold::ManyServices { .. },
                ..
            }
        )));
    }

    #[test]
    fn concurrency_hourly_limit_and_cooldown_make_the_next_wait() {
        let b = BrakeSettings::default();
        let mut s = situation(&[("catalogue", 4, &["catalogue#2"])]);
        s.in_flight.insert("catalogue#1".into(), "catalogue".into());
        assert!(matches!(
            decide(&s, &b)[..],
            [Decision::Hold {
                hold: Hold::Concurrency,
                ..
            }]
        ));
        s.in_flight.clear();
        s.started = vec![("catalogue".into(), s.now_us - 30_000_000)];
        assert!(matches!(
            decide(&s, &b)[..],
            [Decision::Hold {
                hold: Hold::Cooldown { seconds_left: 31 },
                ..
            }]
        ));
        s.started = (1..=3)
            .map(|m| ("catalogue".into(), s.now_us - m * 600_000_000))
            .collect();
        assert!(matches!(
            decide(&s, &b)[..],
            [Decision::Hold {
                hold: Hold::HourlyLimit,
                ..
            }]
        ));
        s.started = vec![("catalogue".into(), s.now_us - 2 * HOUR_US)];
        assert!(matches!(decide(&s, &b)[..], [Decision::Replace { .. }]));
    }
}

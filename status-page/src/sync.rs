//! Incidents opened and resolved from the collector's down intervals. One outage that takes
//! several components down at once is one incident naming them all; its updates carry the
//! times the collector measured, not when the page noticed.

use crate::collector::DownInterval;
use crate::model::{Impact, Incident, IncidentStatus};
use crate::settings::ComponentSpec;
use crate::store::{Store, StoreError};
use crate::text;

/// Intervals this close to an incident's own count as the same outage.
const SAME_OUTAGE_US: i64 = 120 * 1_000_000;

/// A down interval of the check behind one component.
#[derive(Debug, Clone)]
pub struct Seen<'a> {
    pub component: &'a ComponentSpec,
    pub interval: DownInterval,
}

/// Brings the store's incidents in line with the intervals seen; whether anything changed.
pub fn apply(
    store: &Store,
    seen: &mut [Seen<'_>],
    public_regions: &dyn Fn(&str) -> Option<String>,
) -> Result<bool, StoreError> {
    seen.sort_by_key(|s| s.interval.start_us);
    let mut changed = false;
    for s in seen.iter() {
        let iv = &s.interval;
        let c = s.component;
        match store.source(&c.check, iv.start_us, iv.end_us)? {
            Some((stored_start, src)) => {
                if src.end_us != iv.end_us {
                    store.put_source(&c.check, stored_start, iv.end_us, src.incident_id)?;
                    changed = true;
                    if iv.end_us.is_some() {
                        resolve_if_over(store, src.incident_id)?;
                    }
                }
            }
            None => {
                changed = true;
                let regions = region_list(&iv.regions, public_regions);
                match joinable(store, iv)? {
                    Some(incident) => join(store, &incident, c, iv, &regions)?,
                    None => {
                        let id = store.create_incident(
                            &format!("{} unavailable", c.name),
                            Impact::Major,
                            IncidentStatus::Investigating,
                            &format!(
                                "{} is unavailable{regions} since {}. We are investigating.",
                                c.name,
                                text::clock(iv.start_us)
                            ),
                            std::slice::from_ref(&c.id),
                            iv.start_us,
                            iv.start_us,
                            true,
                        )?;
                        store.put_source(&c.check, iv.start_us, iv.end_us, id)?;
                        if iv.end_us.is_some() {
                            resolve_if_over(store, id)?;
                        }
                    }
                }
            }
        }
    }
    Ok(changed)
}

/// An automatic incident this interval belongs to: one still open, or one whose own
/// intervals touch it.
fn joinable(store: &Store, iv: &DownInterval) -> Result<Option<Incident>, StoreError> {
    for incident in store.incidents()?.into_iter().filter(|i| i.auto) {
        if !incident.resolved() {
            return Ok(Some(incident));
        }
        let touches = store
            .sources_of(incident.id)?
            .into_iter()
            .any(|(start, end)| {
                let end = end.unwrap_or(i64::MAX);
                let iv_end = iv.end_us.unwrap_or(i64::MAX);
                iv.start_us <= end.saturating_add(SAME_OUTAGE_US)
                    && start <= iv_end.saturating_add(SAME_OUTAGE_US)
            });
        if touches {
            return Ok(Some(incident));
        }
    }
    Ok(None)
}

fn join(
    store: &Store,
    incident: &Incident,
    c: &ComponentSpec,
    iv: &DownInterval,
    regions: &str,
) -> Result<(), StoreError> {
    store.put_source(&c.check, iv.start_us, iv.end_us, incident.id)?;
    let new_component = !incident.components.contains(&c.id);
    if new_component {
        store.add_component(incident.id, &c.id)?;
        store.set_impact(
            incident.id,
            Impact::Critical.max(incident.impact),
            iv.start_us,
        )?;
    }
    if incident.resolved() {
        store.add_update(
            incident.id,
            IncidentStatus::Investigating,
            &format!(
                "{} is unavailable again{regions} since {}. We are investigating.",
                c.name,
                text::clock(iv.start_us)
            ),
            iv.start_us,
            true,
        )?;
    } else if new_component {
        store.add_update(
            incident.id,
            incident.status,
            &format!(
                "{} is also unavailable{regions} since {}.",
                c.name,
                text::clock(iv.start_us)
            ),
            iv.start_us,
            true,
        )?;
    }
    if new_component
        && let Some(updated) = store.incident(incident.id)?
        && incident.name.ends_with(" unavailable")
    {
        store.set_name(
            incident.id,
            &format!("{} unavailable", text::and_list(&names(&updated, c))),
            iv.start_us,
        )?;
    }
    if iv.end_us.is_some() {
        resolve_if_over(store, incident.id)?;
    }
    Ok(())
}

/// The incident's component names as they read in its title so far, plus the new one.
fn names(incident: &Incident, joining: &ComponentSpec) -> Vec<String> {
    let mut out: Vec<String> = incident
        .name
        .trim_end_matches(" unavailable")
        .split(", ")
        .flat_map(|p| p.split(" and "))
        .map(str::to_owned)
        .collect();
    if !out.contains(&joining.name) {
        out.push(joining.name.clone());
    }
    out
}

/// Resolves an automatic incident once every down interval it came from has ended.
fn resolve_if_over(store: &Store, incident_id: i64) -> Result<(), StoreError> {
    let sources = store.sources_of(incident_id)?;
    if sources.iter().any(|(_, end)| end.is_none()) {
        return Ok(());
    }
    let Some(incident) = store.incident(incident_id)? else {
        return Ok(());
    };
    if incident.resolved() || !incident.auto {
        return Ok(());
    }
    let end = sources
        .iter()
        .filter_map(|(_, e)| *e)
        .max()
        .unwrap_or(incident.started_us);
    let start = sources
        .iter()
        .map(|(s, _)| *s)
        .min()
        .unwrap_or(incident.started_us);
    store.add_update(
        incident_id,
        IncidentStatus::Resolved,
        &format!(
            "Recovered at {} after {}. Everything is working again.",
            text::clock(end),
            text::duration_words(end - start)
        ),
        end,
        true,
    )?;
    Ok(())
}

/// ` from Europe and Asia Pacific`, or nothing when no region seen is public.
fn region_list(regions: &[String], public: &dyn Fn(&str) -> Option<String>) -> String {
    let names: Vec<String> = regions.iter().filter_map(|r| public(r)).collect();
    if names.is_empty() {
        String::new()
    } else {
        format!(" from {}", text::and_list(&names))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn component(id: &str, name: &str) -> ComponentSpec {
        ComponentSpec {
            id: id.into(),
            name: name.into(),
            description: String::new(),
            check: format!("check-{id}"),
            objective: Duration::from_millis(800),
        }
    }

    fn iv(start_s: i64, end_s: Option<i64>) -> DownInterval {
        DownInterval {
            start_us: start_s * 1_000_000,
            end_us: end_s.map(|e| e * 1_000_000),
            regions: vec!["eu-west".into(), "secret-dc".into()],
        }
    }

    fn public(r: &str) -> Option<String> {
        (r == "eu-west").then(|| "Europe".to_string())
    }

    #[test]
    fn an_outage_of_two_components_is_one_incident_resolved_when_both_end() -> Result<(), StoreError>
    {
        let store = Store::open(None)?;
        let (search, artist) = (
            component("search", "Search"),
            component("artist", "Artist pages"),
        );
        let t0 = 1_800_000_000;
        let mut seen = vec![
            Seen {
                component: &search,
                interval: iv(t0, None),
            },
            Seen {
                component: &artist,
                interval: iv(t0 + 5, None),
            },
        ];
        assert!(apply(&store, &mut seen, &public)?);
        let all = store.incidents()?;
        assert_eq!(all.len(), 1);
        let i = &all[0];
        assert_eq!(i.name, "Search and Artist pages unavailable");
        assert_eq!(i.components, vec!["search", "artist"]);
        assert_eq!(i.impact, Impact::Critical);
        assert!(i.updates.iter().all(|u| !u.body.contains("secret-dc")));
        assert!(i.updates.iter().any(|u| u.body.contains("from Europe")));
        // Nothing new: nothing changes.
        assert!(!apply(&store, &mut seen, &public)?);

        let mut seen = vec![
            Seen {
                component: &search,
                interval: iv(t0, Some(t0 + 60)),
            },
            Seen {
                component: &artist,
                interval: iv(t0 + 5, None),
            },
        ];
        apply(&store, &mut seen, &public)?;
        assert!(!store.incidents()?[0].resolved(), "artist pages still down");
        let mut seen = vec![Seen {
            component: &artist,
            interval: iv(t0 + 5, Some(t0 + 125)),
        }];
        apply(&store, &mut seen, &public)?;
        let i = &store.incidents()?[0];
        assert!(i.resolved());
        assert_eq!(i.resolved_us, Some((t0 + 125) * 1_000_000));
        assert!(
            i.updates[0].body.contains("after 2 minutes"),
            "{}",
            i.updates[0].body
        );
        Ok(())
    }

    #[test]
    fn a_later_separate_outage_is_a_new_incident() -> Result<(), StoreError> {
        let store = Store::open(None)?;
        let search = component("search", "Search");
        let t0 = 1_800_000_000;
        let mut seen = vec![
            Seen {
                component: &search,
                interval: iv(t0, Some(t0 + 30)),
            },
            Seen {
                component: &search,
                interval: iv(t0 + 3_600, Some(t0 + 3_630)),
            },
        ];
        apply(&store, &mut seen, &public)?;
        let all = store.incidents()?;
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(Incident::resolved));
        Ok(())
    }
}

//! Incidents opened and resolved from the collector's down intervals. One outage that takes
//! several components down at once is one incident naming them all; its updates carry the
//! times the collector measured, not when the page noticed.

use crate::model::{Impact, Incident, IncidentStatus};
use crate::settings::{ComponentSpec, StatusPageSettings};
use crate::store::{Store, StoreError};
use crate::text;
use lookout_model::read::Incident as DownInterval;

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
    settings: &StatusPageSettings,
) -> Result<bool, StoreError> {
    seen.sort_by_key(|s| s.interval.start_us);
    let mut changed = false;
    let mut fresh: Vec<&Seen<'_>> = Vec::new();
    for s in seen.iter() {
        let iv = &s.interval;
        match store.source(&s.component.check, iv.start_us, iv.end_us)? {
            Some((stored_start, src)) => {
                if src.end_us != iv.end_us {
                    store.put_source(
                        &s.component.check,
                        stored_start,
                        iv.end_us,
                        src.incident_id,
                    )?;
                    changed = true;
                    if iv.end_us.is_some() {
                        resolve_if_over(store, src.incident_id)?;
                    }
                }
            }
            None => fresh.push(s),
        }
    }
    // Components that went down together are told together: one update, not one each.
    let mut outages: Vec<Vec<&Seen<'_>>> = Vec::new();
    for s in fresh {
        match outages.last_mut() {
            Some(o) if s.interval.start_us - o[0].interval.start_us <= SAME_OUTAGE_US => o.push(s),
            _ => outages.push(vec![s]),
        }
    }
    for outage in outages {
        changed = true;
        let first = &outage[0].interval;
        let mut components: Vec<&ComponentSpec> = Vec::new();
        for s in &outage {
            if !components.iter().any(|c| c.id == s.component.id) {
                components.push(s.component);
            }
        }
        let names: Vec<String> = components.iter().map(|c| c.name.clone()).collect();
        let regions = region_list(
            outage.iter().flat_map(|s| s.interval.regions.iter()),
            settings,
        );
        let since = text::clock(first.start_us);
        let id = match joinable(store, first)? {
            Some(incident) => {
                let new: Vec<&&ComponentSpec> = components
                    .iter()
                    .filter(|c| !incident.components.contains(&c.id))
                    .collect();
                for c in &new {
                    store.add_component(incident.id, &c.id)?;
                }
                let new_names: Vec<String> = new.iter().map(|c| c.name.clone()).collect();
                if incident.resolved() {
                    store.add_update(
                        incident.id,
                        IncidentStatus::Investigating,
                        &format!(
                            "{} {} unavailable again{regions} since {since}. We are investigating.",
                            text::and_list(&names),
                            is_are(names.len())
                        ),
                        first.start_us,
                        true,
                    )?;
                } else if let (false, Some(u)) = (
                    new.is_empty(),
                    incident.updates.first().filter(|u| {
                        u.auto && first.start_us - incident.started_us <= SAME_OUTAGE_US
                    }),
                ) {
                    // Moments into the outage nobody has written yet: one message naming
                    // everything that is down reads better than one per component.
                    let mut all: Vec<String> = incident
                        .components
                        .iter()
                        .filter_map(|id| settings.component(id))
                        .map(|c| c.name.clone())
                        .collect();
                    all.extend(new_names.iter().cloned());
                    store.set_update_body(
                        u.id,
                        &format!(
                            "{} {} unavailable{regions} since {}. We are investigating.",
                            text::and_list(&all),
                            is_are(all.len()),
                            text::clock(incident.started_us)
                        ),
                    )?;
                } else if !new.is_empty() {
                    store.add_update(
                        incident.id,
                        incident.status,
                        &format!(
                            "{} {} also unavailable{regions} since {since}.",
                            text::and_list(&new_names),
                            is_are(new_names.len())
                        ),
                        first.start_us,
                        true,
                    )?;
                }
                if !new.is_empty() {
                    store.set_impact(
                        incident.id,
                        Impact::Critical.max(incident.impact),
                        first.start_us,
                    )?;
                    let old_names: Vec<String> = incident
                        .components
                        .iter()
                        .filter_map(|id| settings.component(id))
                        .map(|c| c.name.clone())
                        .collect();
                    // A title a person wrote is theirs; ours follows the components.
                    if incident.name == title(&old_names) {
                        let mut all = old_names;
                        all.extend(new_names);
                        store.set_name(incident.id, &title(&all), first.start_us)?;
                    }
                }
                incident.id
            }
            None => store.create_incident(
                &title(&names),
                if components.len() > 1 {
                    Impact::Critical
                } else {
                    Impact::Major
                },
                IncidentStatus::Investigating,
                &format!(
                    "{} {} unavailable{regions} since {since}. We are investigating.",
                    text::and_list(&names),
                    is_are(names.len())
                ),
                &components.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
                first.start_us,
                first.start_us,
                true,
            )?,
        };
        for s in &outage {
            store.put_source(
                &s.component.check,
                s.interval.start_us,
                s.interval.end_us,
                id,
            )?;
        }
        resolve_if_over(store, id)?;
    }
    Ok(changed)
}

/// `Search unavailable`, `Search and Playback unavailable`, `Outage of 5 services`.
pub fn title(names: &[String]) -> String {
    if names.len() <= 2 {
        format!("{} unavailable", text::and_list(names))
    } else {
        format!("Outage of {} services", names.len())
    }
}

fn is_are(n: usize) -> &'static str {
    if n == 1 { "is" } else { "are" }
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

/// Resolves an automatic incident once every down interval it came from has ended.
fn resolve_if_over(store: &Store, incident_id: i64) -> Result<(), StoreError> {
    let sources = store.sources_of(incident_id)?;
    if sources.is_empty() || sources.iter().any(|(_, end)| end.is_none()) {
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

/// ` from Europe and Asia Pacific` in the page's order of regions, ` from every region`, or
/// nothing when no region seen is public.
fn region_list<'a>(
    regions: impl Iterator<Item = &'a String>,
    settings: &StatusPageSettings,
) -> String {
    let seen: Vec<&String> = regions.collect();
    let names: Vec<String> = settings
        .regions
        .iter()
        .filter(|(internal, _)| seen.contains(&internal))
        .map(|(_, public)| public.clone())
        .collect();
    if names.is_empty() {
        String::new()
    } else if names.len() == settings.regions.len() && names.len() > 2 {
        " from every region".into()
    } else {
        format!(" from {}", text::and_list(&names))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component(id: &str, name: &str) -> ComponentSpec {
        ComponentSpec {
            id: id.into(),
            name: name.into(),
            description: String::new(),
            check: format!("check-{id}"),
        }
    }

    fn iv(start_s: i64, end_s: Option<i64>) -> DownInterval {
        DownInterval {
            start_us: start_s * 1_000_000,
            end_us: end_s.map(|e| e * 1_000_000),
            down_seconds: end_s.map_or(0.0, |e| (e - start_s) as f64),
            regions: vec!["eu-west".into(), "secret-dc".into()],
            first_failure: None,
            exact: true,
        }
    }

    fn settings() -> StatusPageSettings {
        let mut s = StatusPageSettings::new(
            url::Url::parse("http://127.0.0.1:1/").unwrap_or_else(|_| unreachable!()),
            Default::default(),
            Default::default(),
        );
        s.regions = vec![("eu-west".into(), "Europe".into())];
        s.groups = vec![crate::settings::GroupSpec {
            id: "g".into(),
            name: "G".into(),
            components: vec![
                component("search", "Search"),
                component("artist", "Artist pages"),
            ],
        }];
        s
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
        assert!(apply(&store, &mut seen, &settings())?);
        let all = store.incidents()?;
        assert_eq!(all.len(), 1);
        let i = &all[0];
        assert_eq!(i.name, "Search and Artist pages unavailable");
        assert_eq!(i.components, vec!["search", "artist"]);
        assert_eq!(i.impact, Impact::Critical);
        assert!(i.updates.iter().all(|u| !u.body.contains("secret-dc")));
        assert!(i.updates.iter().any(|u| u.body.contains("from Europe")));
        // Nothing new: nothing changes.
        assert!(!apply(&store, &mut seen, &settings())?);

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
        apply(&store, &mut seen, &settings())?;
        assert!(!store.incidents()?[0].resolved(), "artist pages still down");
        let mut seen = vec![Seen {
            component: &artist,
            interval: iv(t0 + 5, Some(t0 + 125)),
        }];
        apply(&store, &mut seen, &settings())?;
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
    fn a_component_failing_later_joins_the_open_incident_and_its_title() -> Result<(), StoreError> {
        let store = Store::open(None)?;
        let (search, artist) = (
            component("search", "Search"),
            component("artist", "Artist pages"),
        );
        let t0 = 1_800_000_000;
        apply(
            &store,
            &mut [Seen {
                component: &search,
                interval: iv(t0, None),
            }],
            &settings(),
        )?;
        assert_eq!(store.incidents()?[0].name, "Search unavailable");
        apply(
            &store,
            &mut [Seen {
                component: &artist,
                interval: iv(t0 + 600, None),
            }],
            &settings(),
        )?;
        let all = store.incidents()?;
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].name, "Search and Artist pages unavailable");
        assert!(
            all[0].updates[0]
                .body
                .starts_with("Artist pages is also unavailable from Europe")
        );
        // Within moments of the start, the first message is made whole instead.
        let store = Store::open(None)?;
        apply(
            &store,
            &mut [Seen {
                component: &search,
                interval: iv(t0, None),
            }],
            &settings(),
        )?;
        apply(
            &store,
            &mut [Seen {
                component: &artist,
                interval: iv(t0 + 20, None),
            }],
            &settings(),
        )?;
        let i = &store.incidents()?[0];
        assert_eq!(i.updates.len(), 1);
        assert!(
            i.updates[0]
                .body
                .starts_with("Search and Artist pages are unavailable from Europe"),
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
        apply(&store, &mut seen, &settings())?;
        let all = store.incidents()?;
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(Incident::resolved));
        Ok(())
    }
}

//! What a problem's change sends: which subscriptions hear of it (holds, groups, stateful
//! receivers), and the message each gets, built once and kept in the outbox.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Engine, Shared};
use crate::check::Check;
use crate::notify::{Kind, Level, Links, Notification};
use crate::plan::{self, Hold};
use crate::problem::Problem;
use crate::store::{Batch, NewDelivery};
use crate::subscription::Subscription;
use lookout_api::client::Feed;

/// Queues what every open problem needs now, and the resolves of those just closed.
pub(super) fn plan_notifications(
    shared: &Shared,
    e: &mut Engine,
    batch: &mut Batch,
    feed: &Feed,
    now_us: i64,
) {
    let now = DateTime::from_timestamp_micros(now_us).unwrap_or_default();
    let keys: Vec<String> = e.problems.keys().cloned().collect();
    for key in keys {
        let Some(mut p) = e.problems.get(&key).cloned() else {
            continue;
        };
        let before = p.clone();
        let members: Vec<&Check> = p.members.keys().filter_map(|id| e.checks.get(id)).collect();
        let bad: Vec<&Check> = members
            .iter()
            .copied()
            .filter(|c| p.members.get(&c.id).is_some_and(|l| *l != Level::Ok))
            .collect();
        let silenced = !bad.is_empty() && bad.iter().all(|c| e.silenced(c, feed, now_us));
        let dependent = !bad.is_empty()
            && bad
                .iter()
                .all(|c| e.held_by_dependency(c, &key, feed, now_us));
        // One message per receiver, however many of the problem's checks it subscribes to.
        let mut dests: BTreeMap<String, (Subscription, Option<Hold>)> = BTreeMap::new();
        for m in &members {
            for s in e.subscriptions_of(&m.id) {
                let hold = if silenced {
                    Some(Hold::Silenced)
                } else if dependent {
                    Some(Hold::Dependency)
                } else if s.window.parse().is_ok_and(|w| !w.contains(now)) {
                    Some(Hold::Window)
                } else {
                    None
                };
                let k = destination(s);
                match dests.get_mut(&k) {
                    None => {
                        let mut rep = s.clone();
                        rep.id = k.clone();
                        dests.insert(k, (rep, hold));
                    }
                    Some((rep, h)) => {
                        rep.ignore_warn &= s.ignore_warn;
                        rep.ignore_error &= s.ignore_error;
                        rep.ignore_ok &= s.ignore_ok;
                        rep.enabled |= s.enabled;
                        if hold.is_none() {
                            *h = None;
                        }
                    }
                }
            }
        }
        if !p.is_open() {
            for key in p.notified.keys() {
                if !dests.contains_key(key) {
                    let (notifier, target) = receiver(key);
                    let rep = Subscription {
                        id: key.clone(),
                        check_id: p.lead.clone(),
                        notifier,
                        target,
                        ignore_warn: false,
                        ignore_error: false,
                        ignore_ok: false,
                        window: Default::default(),
                        enabled: true,
                    };
                    dests.insert(key.clone(), (rep, None));
                }
            }
        }
        let subs: Vec<&Subscription> = dests.values().map(|(s, _)| s).collect();
        let planned = if p.is_open() {
            let with_holds: Vec<(&Subscription, Option<Hold>)> =
                dests.values().map(|(s, h)| (s, *h)).collect();
            plan::open_problem(
                &mut p,
                &with_holds,
                shared.settings.load().reminder_every,
                now_us,
            )
        } else {
            plan::closed_problem(&p, &subs, &|s| {
                shared
                    .notifiers
                    .load()
                    .get(&s.notifier)
                    .is_some_and(|n| n.stateful())
            })
        };
        for pl in planned {
            let Some(sub) = subs.iter().find(|s| s.id == pl.subscription_id) else {
                continue;
            };
            // `before`: what the subscriber was told until now (`previous`), not what
            // planning has just recorded.
            let n = notification(shared, e, &before, sub, pl.kind, feed, now);
            batch.deliveries.push(NewDelivery {
                problem_id: p.id.clone(),
                subscription_id: sub.id.clone(),
                kind: pl.kind,
                level: pl.level,
                notification: n,
                not_before_us: now_us,
            });
        }
        if p != before || !p.is_open() {
            batch.problems.push(p.clone());
        }
        if p.is_open() {
            e.problems.insert(key, p);
        } else {
            e.problems.remove(&key);
        }
    }
}

/// The message of one notification.
pub fn notification(
    shared: &Shared,
    e: &Engine,
    p: &Problem,
    sub: &Subscription,
    kind: Kind,
    feed: &Feed,
    now: DateTime<Utc>,
) -> Notification {
    let lead = e.checks.get(&p.lead);
    let state = e.states.get(&p.lead);
    let level = if kind == Kind::Resolve {
        Level::Ok
    } else {
        p.level()
    };
    let previous = p.notified.get(&sub.id).map_or(Level::Ok, |n| n.level);
    let others: Vec<String> = p
        .bad_members()
        .into_iter()
        .filter(|c| *c != p.lead)
        .map(|c| e.checks.get(c).map_or(c.to_owned(), |x| x.name.clone()))
        .collect();
    let mut description = lead.map(|c| c.description.clone()).unwrap_or_default();
    if !others.is_empty() {
        description.push_str(&format!(
            "\nAlso failing in this problem: {}",
            others.join(", ")
        ));
    }
    let about = lead.and_then(|c| c.about.clone());
    let reason = p.reason.clone().or_else(|| {
        let a = about.as_ref()?;
        let live = feed.states.check(a)?;
        live.failing().find_map(|r| r.reason.clone())
    });
    let settings = shared.settings.load();
    let links = &settings.links;
    // What this receiver was paged for decides too, so a resolve carries the labels of its
    // page (Alertmanager tells alerts apart by their labels).
    let told = p.notified.get(&sub.id).map_or(Level::Ok, |n| n.level);
    let severity = if p.level().max(told) == Level::Error {
        "page"
    } else {
        "ticket"
    };
    let mut labels = BTreeMap::from([
        ("check".to_owned(), p.lead.clone()),
        ("severity".to_owned(), severity.to_owned()),
        ("problem".to_owned(), p.id.clone()),
    ]);
    if let Some(g) = lead.and_then(|c| c.group.clone()) {
        labels.insert("group".into(), g);
    }
    let (warn, error, worse) = lead.map_or((None, None, "higher"), |c| {
        (
            c.thresholds.warn,
            c.thresholds.error,
            match c.thresholds.worse {
                crate::check::Worse::Higher => "higher",
                crate::check::Worse::Lower => "lower",
            },
        )
    });
    // The same on every alerter replica for the same notification (the receivers' dedup key,
    // the replicas' claim); reminders, queued a little apart by each replica, by the minute.
    let what = match kind {
        Kind::Reminder => format!("reminder-{}", now.timestamp_micros() / 60_000_000),
        other => format!("{}-{}", other.as_str(), format!("{level:?}").to_lowercase()),
    };
    Notification {
        id: format!("{}/{}/{what}", p.id, sub.id),
        problem_id: p.id.clone(),
        kind,
        check_id: p.lead.clone(),
        check_name: lead.map_or(p.lead.clone(), |c| c.name.clone()),
        description,
        target: lead.map(|c| c.target_text.clone()).unwrap_or_default(),
        state: level,
        previous,
        value: state.and_then(|s| s.value),
        warn,
        error,
        worse: worse.into(),
        regions: p.regions.clone(),
        since: DateTime::from_timestamp_micros(p.opened_us).unwrap_or_default(),
        at: now,
        reason,
        severity: severity.into(),
        labels,
        links: Links {
            status_page: links.status_page.clone(),
            dashboard: links
                .dashboard
                .as_ref()
                .map(|d| d.replace("{check}", about.as_deref().unwrap_or(&p.lead))),
            alerter: links.alerter.as_ref().map(|a| {
                format!(
                    "{}/problems/{}",
                    a.trim_end_matches('/'),
                    crate::console::html::path_segment(&p.id)
                )
            }),
            ack: match (kind, &links.alerter) {
                (Kind::Trigger | Kind::Reminder, Some(a)) => Some(format!(
                    "{}/ack/{}",
                    a.trim_end_matches('/'),
                    shared
                        .ack_links
                        .sign(&p.id, &destination(sub), now.timestamp_micros())
                )),
                _ => None,
            },
        },
    }
}

/// A receiver: a notifier and its target. Problems notify each receiver once.
pub fn destination(s: &Subscription) -> String {
    format!("{}>{}", s.notifier, s.target.as_deref().unwrap_or(""))
}

/// The notifier and target of a receiver key (notifier names never hold `>`): deliveries and
/// resolves go to whoever was paged, even if the subscription is gone since.
pub fn receiver(key: &str) -> (String, Option<String>) {
    match key.split_once('>') {
        Some((n, "")) => (n.to_owned(), None),
        Some((n, t)) => (n.to_owned(), Some(t.to_owned())),
        None => (key.to_owned(), None),
    }
}

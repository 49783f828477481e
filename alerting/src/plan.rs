//! Which notifications a problem needs now: pure, so the rules people rely on (one page per
//! problem, held pages sent when the hold ends, reminders until acknowledged, a resolve after
//! every page whatever happened in between) are tested without servers.

use std::time::Duration;

use crate::notify::{Kind, Level};
use crate::problem::{Notified, Problem};
use crate::subscription::Subscription;

/// Why a subscription's notification is held back now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Outside the subscription's time window.
    Window,
    /// A silence or maintenance window covers every bad check of the problem.
    Silenced,
    /// Every bad check depends on a check that is itself not OK.
    Dependency,
}

/// One notification to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub subscription_id: String,
    pub kind: Kind,
    pub level: Level,
}

/// Plans an open problem's notifications for `subs` (with each one's hold and notifier kind),
/// and records them in `p.notified`.
pub fn open_problem(
    p: &mut Problem,
    subs: &[(&Subscription, Option<Hold>)],
    reminder_every: Option<Duration>,
    now_us: i64,
) -> Vec<Planned> {
    let level = p.level();
    let mut out = Vec::new();
    for (s, hold) in subs {
        if hold.is_some() || !s.enabled {
            continue;
        }
        let told = p.notified.get(&s.id).copied();
        let kind = match told {
            // A first page, or the problem got worse than what this subscriber was told.
            None if s.wants(level) => Some(Kind::Trigger),
            Some(n) if level > n.level && s.wants(level) => Some(Kind::Trigger),
            Some(n) if p.ack.is_none() && reminder_due(n, reminder_every, now_us) => {
                Some(Kind::Reminder)
            }
            _ => None,
        };
        if let Some(kind) = kind {
            let told_level = told.map_or(level, |n| n.level.max(level));
            p.notified.insert(
                s.id.clone(),
                Notified {
                    level: told_level,
                    last_us: now_us,
                },
            );
            out.push(Planned {
                subscription_id: s.id.clone(),
                kind,
                level,
            });
        }
    }
    out
}

fn reminder_due(n: Notified, every: Option<Duration>, now_us: i64) -> bool {
    every.is_some_and(|e| {
        now_us.saturating_sub(n.last_us) >= i64::try_from(e.as_micros()).unwrap_or(i64::MAX)
    })
}

/// A closed problem's resolves: one to every subscription that was paged, never held.
/// `stateful` says whether a subscription's receiver keeps an incident open until told
/// otherwise ([`crate::notify::Notifier::stateful`]): such a receiver always gets the resolve,
/// even when the subscription ignores OK.
pub fn closed_problem(
    p: &Problem,
    subs: &[&Subscription],
    stateful: &dyn Fn(&Subscription) -> bool,
) -> Vec<Planned> {
    p.notified
        .keys()
        .filter_map(|id| {
            let s = subs.iter().find(|s| &s.id == id)?;
            (!s.ignore_ok || stateful(s)).then(|| Planned {
                subscription_id: id.clone(),
                kind: Kind::Resolve,
                level: Level::Ok,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::Ack;

    fn sub(id: &str, ignore_warn: bool) -> Subscription {
        Subscription {
            id: id.into(),
            check_id: "c".into(),
            notifier: "hook".into(),
            target: None,
            ignore_warn,
            ignore_error: false,
            ignore_ok: false,
            window: Default::default(),
            enabled: true,
        }
    }

    const MIN: i64 = 60_000_000;

    #[test]
    fn one_page_per_problem_then_one_more_only_when_it_gets_worse() {
        let (pager, chat) = (sub("pager", true), sub("chat", false));
        let subs = [(&pager, None), (&chat, None)];
        let mut p = Problem::open("group:g", "a", Level::Warn, 0);
        let first = open_problem(&mut p, &subs, None, 0);
        assert_eq!(first.len(), 1, "WARN goes to chat only: {first:?}");
        assert_eq!(first[0].subscription_id, "chat");
        assert!(
            open_problem(&mut p, &subs, None, MIN).is_empty(),
            "no storm"
        );
        p.members.insert("b".into(), Level::Error);
        let worse = open_problem(&mut p, &subs, None, 2 * MIN);
        let ids: Vec<_> = worse.iter().map(|x| x.subscription_id.as_str()).collect();
        assert_eq!(ids, ["pager", "chat"]);
        assert!(worse.iter().all(|x| x.kind == Kind::Trigger));
    }

    #[test]
    fn a_held_page_goes_out_when_the_hold_ends_and_a_resolve_always_follows() {
        let s = sub("s", false);
        let mut p = Problem::open("check:a", "a", Level::Error, 0);
        assert!(open_problem(&mut p, &[(&s, Some(Hold::Window))], None, 0).is_empty());
        let sent = open_problem(&mut p, &[(&s, None)], None, MIN);
        assert_eq!(sent[0].kind, Kind::Trigger);
        // Silenced afterwards: the resolve is still planned.
        p.closed_us = Some(2 * MIN);
        let resolves = closed_problem(&p, &[&s], &|_| false);
        assert_eq!(resolves.len(), 1);
        assert_eq!(resolves[0].kind, Kind::Resolve);
    }

    #[test]
    fn no_resolve_without_a_page_and_stateful_receivers_always_get_one() {
        let mut quiet = sub("quiet", false);
        quiet.ignore_ok = true;
        let p = Problem::open("check:a", "a", Level::Error, 0);
        assert!(closed_problem(&p, &[&quiet], &|_| false).is_empty());
        let mut paged = p.clone();
        paged.notified.insert(
            "quiet".into(),
            Notified {
                level: Level::Error,
                last_us: 0,
            },
        );
        assert!(closed_problem(&paged, &[&quiet], &|_| false).is_empty());
        assert_eq!(closed_problem(&paged, &[&quiet], &|_| true).len(), 1);
    }

    #[test]
    fn reminders_repeat_until_acknowledged() {
        let s = sub("s", false);
        let every = Some(Duration::from_secs(600));
        let mut p = Problem::open("check:a", "a", Level::Error, 0);
        open_problem(&mut p, &[(&s, None)], every, 0);
        assert!(open_problem(&mut p, &[(&s, None)], every, 5 * MIN).is_empty());
        let r = open_problem(&mut p, &[(&s, None)], every, 10 * MIN);
        assert_eq!(r[0].kind, Kind::Reminder);
        p.ack = Some(Ack {
            by: "alice".into(),
            comment: String::new(),
            at_us: 11 * MIN,
        });
        assert!(open_problem(&mut p, &[(&s, None)], every, 30 * MIN).is_empty());
    }
}

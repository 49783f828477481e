use super::*;
use crate::check::{Origin, Schedule, Thresholds};
use crate::target::Expr;

fn member(id: &str) -> Check {
    Check {
        id: id.into(),
        name: id.into(),
        description: String::new(),
        target_text: "1".into(),
        measure: Measure::Target(Expr::Number(1.0)),
        thresholds: Thresholds::new(None, Some(1.0), None).unwrap(),
        enabled: true,
        allow_no_data: false,
        schedule: Schedule::Every(Duration::from_secs(10)),
        gate: None,
        for_duration: None,
        min_bad_minutes: None,
        group: Some("storefront".into()),
        depends_on: Vec::new(),
        dependency_grace: None,
        about: None,
        origin: Origin::Config,
    }
}

fn engine(checks: Vec<Check>, problems: Vec<Problem>) -> Engine {
    Engine::new(
        checks,
        BTreeMap::new(),
        Vec::new(),
        Vec::new(),
        problems,
        Vec::new(),
    )
}

#[test]
fn a_member_failing_in_the_round_another_recovers_keeps_the_problem_open() {
    let (a, b) = (member("a"), member("b"));
    let mut e = engine(vec![a.clone(), b.clone()], Vec::new());
    let feed = Feed::default();
    update_problem(&mut e, &a, Level::Error, &feed, 1);
    update_problem(&mut e, &a, Level::Ok, &feed, 2);
    update_problem(&mut e, &b, Level::Error, &feed, 2);
    let p = &e.problems["group:storefront"];
    assert!(p.is_open(), "{p:?}");
    assert_eq!(p.level(), Level::Error);
}

#[test]
fn a_deleted_or_disabled_member_no_longer_holds_its_problem_open() {
    let (a, b) = (member("a"), member("b"));
    let mut e = engine(vec![a.clone(), b.clone()], Vec::new());
    let feed = Feed::default();
    update_problem(&mut e, &a, Level::Error, &feed, 1);
    update_problem(&mut e, &b, Level::Error, &feed, 1);
    e.remove_check("a");
    assert!(e.problems["group:storefront"].is_open());
    let mut off = b.clone();
    off.enabled = false;
    e.add_check(off);
    assert!(
        !e.problems["group:storefront"].is_open(),
        "closed: its resolve goes out"
    );
    // A restart with a problem whose member is gone closes it too.
    let p = e.problems["group:storefront"].clone();
    let mut reopened = p.clone();
    reopened.closed_us = None;
    reopened.members.insert("gone".into(), Level::Error);
    let e2 = engine(vec![member("b")], vec![reopened]);
    assert!(!e2.problems["group:storefront"].is_open());
}

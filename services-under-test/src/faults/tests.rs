use super::*;

fn req(json: &str) -> FaultRequest {
    serde_json::from_str(json).unwrap()
}

#[test]
fn validates_each_kind_and_names_the_bad_field() {
    let cases: &[(&str, Result<FaultCommand, &str>)] = &[
        (
            r#"{"kind":"latency","latency":"150ms"}"#,
            Ok(FaultCommand::Add {
                kind: FaultKind::Latency {
                    fixed: Duration::from_millis(150),
                    jitter: Duration::ZERO,
                },
                route: None,
                duration: None,
            }),
        ),
        (r#"{"kind":"clear"}"#, Ok(FaultCommand::Clear)),
        (
            r#"{"kind":"latency"}"#,
            Err("a `latency` fault needs `latency`"),
        ),
        (
            r#"{"kind":"latency","latency":"soon"}"#,
            Err("`latency`: \"soon\" is not a duration"),
        ),
        (
            r#"{"kind":"error","rate":1.5}"#,
            Err("`rate` must be between 0 and 1, got 1.5"),
        ),
        (r#"{"kind":"error"}"#, Err("an `error` fault needs `rate`")),
        (
            r#"{"kind":"down","route":"/x"}"#,
            Err("cannot be scoped to a `route`"),
        ),
        (
            r#"{"kind":"hang","rate":0.1}"#,
            Err("`rate` does not apply to a `hang` fault"),
        ),
        (r#"{"kind":"melt"}"#, Err("unknown fault kind \"melt\"")),
        (
            r#"{"kind":"hang","route":"x"}"#,
            Err("`route` must start with `/`"),
        ),
        (
            r#"{"kind":"hang","duration":"0s"}"#,
            Err("`duration` must be more than zero"),
        ),
        (
            r#"{"kind":"latency","latency":"2h"}"#,
            Err("must be at most 10m"),
        ),
        (
            r#"{"kind":"bandwidth","bytes_per_second":40000,"route":"/1.x/tracks"}"#,
            Ok(FaultCommand::Add {
                kind: FaultKind::Bandwidth {
                    bytes_per_second: 40_000,
                },
                route: Some(RouteScope::Prefix("/1.x/tracks".into())),
                duration: None,
            }),
        ),
        (
            r#"{"kind":"bandwidth"}"#,
            Err("a `bandwidth` fault needs `bytes_per_second`"),
        ),
        (
            r#"{"kind":"bandwidth","bytes_per_second":0}"#,
            Err("`bytes_per_second` must be more than zero"),
        ),
        (
            r#"{"kind":"latency","latency":"1s","bytes_per_second":10}"#,
            Err("`bytes_per_second` does not apply to a `latency` fault"),
        ),
    ];
    for (json, want) in cases {
        let got = req(json).validate();
        match (got, want) {
            (Ok(g), Ok(w)) => assert_eq!(&g, w, "{json}"),
            (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{json}: {e}"),
            (g, w) => panic!("{json}: got {g:?}, want {w:?}"),
        }
    }
}

#[test]
fn route_scopes_match_on_segment_boundaries_and_patterns() {
    let prefix = RouteScope::parse("/1.x/search").unwrap();
    assert!(prefix.matches("/1.x/search", None));
    assert!(prefix.matches("/1.x/search/x", None));
    assert!(!prefix.matches("/1.x/searchable", None));
    let pattern = RouteScope::parse("/1.x/artists/{id}").unwrap();
    assert!(pattern.matches("/1.x/artists/7", Some("/1.x/artists/{id}")));
    assert!(!pattern.matches("/1.x/artists/7/view", Some("/1.x/artists/{id}/view")));
}

#[tokio::test]
async fn faults_stack_and_expire() {
    let faults = Faults::new(PreciseTimer::new());
    let ms = Duration::from_millis;
    faults.add(
        FaultKind::Latency {
            fixed: ms(100),
            jitter: Duration::ZERO,
        },
        None,
        None,
    );
    faults.add(
        FaultKind::Latency {
            fixed: ms(50),
            jitter: Duration::ZERO,
        },
        None,
        Some(ms(30)),
    );
    faults.add(FaultKind::Error { rate: 0.5 }, None, None);
    faults.add(
        FaultKind::Error { rate: 0.5 },
        RouteScope::parse("/a").ok(),
        None,
    );
    let plan = faults.plan("/a", None);
    assert_eq!(plan.delay, ms(150));
    assert!((plan.error_rate - 0.75).abs() < 1e-9);
    assert!((faults.plan("/b", None).error_rate - 0.5).abs() < 1e-9);
    let mut changes = faults.subscribe();
    changes.borrow_and_update();
    tokio::time::timeout(Duration::from_secs(2), changes.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(faults.plan("/a", None).delay, ms(100));
}

#[tokio::test]
async fn down_reports_the_latest_end_or_forever() {
    let faults = Faults::new(PreciseTimer::new());
    assert_eq!(faults.down(), None);
    faults.add(FaultKind::Down, None, Some(Duration::from_secs(5)));
    assert!(matches!(faults.down(), Some(Some(_))));
    let forever = faults.add(FaultKind::Down, None, None);
    assert_eq!(faults.down(), Some(None));
    faults.remove(forever);
    faults.clear();
    assert_eq!(faults.down(), None);
}

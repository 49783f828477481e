#![allow(clippy::unwrap_used)]

use super::*;
use crate::target::Percentile;
use proptest::prelude::*;

const DAY: u64 = 86_400;

fn series(metric: Metric, check: &str, window: Option<u64>, region: Option<&str>) -> Expr {
    Expr::Series(Series {
        metric,
        check: check.into(),
        window: window.map(Duration::from_secs),
        region: region.map(Into::into),
    })
}

/// The error's position and message, checking on the way that the position is in range
/// and that the caret lands under it.
fn error(text: &str) -> (usize, String) {
    let e = parse(text).unwrap_err();
    assert!(e.position <= text.chars().count(), "{text:?}: {e}");
    let pointer = e.pointer(text);
    let caret = pointer.lines().nth(1).unwrap();
    assert_eq!(caret.chars().count(), e.position + 1, "{pointer}");
    (e.position, e.message)
}

#[track_caller]
fn assert_error(text: &str, position: usize, contains: &str) {
    let (p, message) = error(text);
    assert_eq!(p, position, "{text:?}: {message}");
    assert!(
        message.contains(contains),
        "{text:?}: {message:?} lacks {contains:?}"
    );
}

#[test]
fn each_windowed_function() {
    for (name, metric) in [
        ("availability", Metric::Availability),
        ("downtime", Metric::Downtime),
        ("no_data", Metric::NoData),
        ("budget_remaining", Metric::BudgetRemaining),
        ("burn_rate", Metric::BurnRate),
    ] {
        assert_eq!(
            parse(&format!("{name}(api, 30d)")).unwrap(),
            series(metric, "api", Some(30 * DAY), None),
        );
    }
}

#[test]
fn latency_and_under_objective() {
    for (word, p) in [
        ("p50", Percentile::P50),
        ("p95", Percentile::P95),
        ("p99", Percentile::P99),
        ("max", Percentile::Max),
    ] {
        assert_eq!(
            parse(&format!("latency(checkout, {word}, 5m)")).unwrap(),
            series(Metric::Latency(p), "checkout", Some(300), None),
        );
    }
    assert_eq!(
        parse("latency(checkout, p99, 1h, region=eu-west)").unwrap(),
        series(
            Metric::Latency(Percentile::P99),
            "checkout",
            Some(3_600),
            Some("eu-west")
        ),
    );
    assert_eq!(
        parse(r#"latency(checkout, p99, 1h, region = "São Paulo")"#).unwrap(),
        series(
            Metric::Latency(Percentile::P99),
            "checkout",
            Some(3_600),
            Some("São Paulo")
        ),
    );
    assert_eq!(
        parse("under_objective(api, 1h)").unwrap(),
        series(Metric::UnderObjective, "api", Some(3_600), None),
    );
    assert_eq!(
        parse("under_objective(api, 6h, region=us)").unwrap(),
        series(Metric::UnderObjective, "api", Some(6 * 3_600), Some("us")),
    );
}

#[test]
fn present_functions() {
    assert_eq!(
        parse("down(api)").unwrap(),
        series(Metric::Down, "api", None, None)
    );
    assert_eq!(
        parse("failing_regions(api)").unwrap(),
        series(Metric::FailingRegions, "api", None, None),
    );
}

#[test]
fn checks_bare_and_quoted() {
    assert_eq!(
        parse("down(2fa-login_v2)").unwrap(),
        series(Metric::Down, "2fa-login_v2", None, None),
    );
    assert_eq!(
        parse(r#"down("api.v2 \"beta\" \\ ü")"#).unwrap(),
        series(Metric::Down, r#"api.v2 "beta" \ ü"#, None, None),
    );
}

#[test]
fn min_max_promql_numbers() {
    let a = series(Metric::BurnRate, "api", Some(3_600), None);
    let b = series(Metric::BurnRate, "api", Some(300), None);
    assert_eq!(
        parse("min(burn_rate(api, 1h), burn_rate(api, 5m))").unwrap(),
        Expr::Min(vec![a.clone(), b.clone()]),
    );
    assert_eq!(
        parse("max(burn_rate(api, 1h), min(burn_rate(api, 5m), 14.4), -1)").unwrap(),
        Expr::Max(vec![
            a,
            Expr::Min(vec![b, Expr::Number(14.4)]),
            Expr::Number(-1.0)
        ]),
    );
    assert_eq!(
        parse(r#"promql("sum(rate(http_requests_total{code=~\"5..\"}[5m]))")"#).unwrap(),
        Expr::PromQl(r#"sum(rate(http_requests_total{code=~"5.."}[5m]))"#.into()),
    );
    assert_eq!(
        parse(r#"promql("a\\b")"#).unwrap(),
        Expr::PromQl(r"a\b".into())
    );
    for (text, value) in [
        ("0", 0.0),
        ("42", 42.0),
        ("-3", -3.0),
        ("+2.5", 2.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("-1.5E-2", -0.015),
        ("2e+2", 200.0),
    ] {
        assert_eq!(parse(text).unwrap(), Expr::Number(value), "{text}");
    }
}

#[test]
fn whitespace_between_tokens() {
    assert_eq!(
        parse(" \t min ( latency ( api , p99 , 5m , region = eu ) ,\n 0.3 ) ").unwrap(),
        Expr::Min(vec![
            series(
                Metric::Latency(Percentile::P99),
                "api",
                Some(300),
                Some("eu")
            ),
            Expr::Number(0.3),
        ]),
    );
}

#[test]
fn windows() {
    for (text, secs) in [
        ("1s", 1),
        ("30s", 30),
        ("5m", 300),
        ("1h", 3_600),
        ("6h", 6 * 3_600),
        ("3d", 3 * DAY),
        ("90d", 90 * DAY),
        ("1h30m", 5_400),
        ("1.5h", 5_400),
        ("2w", 14 * DAY),
        ("400d", 400 * DAY),
    ] {
        assert_eq!(
            parse(&format!("availability(api, {text})")).unwrap(),
            series(Metric::Availability, "api", Some(secs), None),
            "{text}",
        );
    }
}

#[test]
fn canonical_display() {
    for (text, canonical) in [
        ("availability( api ,30d )", "availability(api, 30d)"),
        (
            "latency(api,p99,90m,region=eu)",
            "latency(api, p99, 1h30m, region=eu)",
        ),
        (
            r#"latency("my api", max, 1.5h, region="São Paulo")"#,
            r#"latency("my api", max, 1h30m, region="São Paulo")"#,
        ),
        ("under_objective(api, 24h)", "under_objective(api, 1d)"),
        ("down(\"api\")", "down(api)"),
        ("failing_regions(api)", "failing_regions(api)"),
        ("min(1,max(2.50,-3))", "min(1, max(2.5, -3))"),
        ("1e300", "1e300"),
        ("-0.00001", "-1e-5"),
        ("1e15", "1000000000000000"),
        (r#"promql( "up{job=\"a\"}" )"#, r#"promql("up{job=\"a\"}")"#),
        ("burn_rate(api, 1000ms)", "burn_rate(api, 1s)"),
        ("burn_rate(api, 1s500ms)", "burn_rate(api, 1s500ms)"),
    ] {
        let e = parse(text).unwrap();
        assert_eq!(e.to_string(), canonical, "{text}");
        assert_eq!(parse(canonical).unwrap(), e, "{canonical}");
    }
}

#[test]
fn the_documented_message() {
    let e = parse("availability(api, x)").unwrap_err();
    assert_eq!(
        e.to_string(),
        "at column 19: expected a window such as 5m or 1h, found \"x\""
    );
    assert_eq!(e.position, 18);
    assert_eq!(
        e.pointer("availability(api, x)"),
        "availability(api, x)\n                  ^"
    );
}

#[test]
fn empty_input() {
    assert_error("", 0, "the target is empty");
    assert_error("  \n ", 0, "the target is empty");
}

#[test]
fn unknown_functions() {
    assert_error(
        "availabilty(api, 30d)",
        0,
        "unknown function \"availabilty\": did you mean availability?",
    );
    assert_error("  burn-rate(api, 1h)", 2, "did you mean burn_rate?");
    assert_error("Latency(api, p99, 5m)", 0, "Function names are lowercase");
    assert_error(
        "min(1, foo(api))",
        7,
        "the functions are availability, downtime",
    );
    assert_error("p99(api, 5m)", 0, "latency(api, p99, 5m)");
    let (_, message) = error("uptime(api)");
    assert!(!message.contains("did you mean"), "{message}");
    assert_error(
        "availability",
        12,
        "expected \"(\" after availability, found end",
    );
}

#[test]
fn missing_parenthesis_and_trailing_input() {
    assert_error(
        "availability(api, 30d",
        21,
        "expected \")\", found end of input",
    );
    assert_error("down(api", 8, "expected \")\", found end of input");
    assert_error("min(1, 2", 8, "expected \",\" or \")\", found end of input");
    assert_error(
        "availability(api, 30d) x",
        23,
        "unexpected \"x\" after the end",
    );
    assert_error("availability(api, 30d))", 22, "unexpected \")\"");
    assert_error("down(api) > 0", 10, "has no arithmetic");
    assert_error("1 2", 2, "unexpected \"2\"");
}

#[test]
fn empty_or_bad_check() {
    assert_error(
        "availability(, 30d)",
        13,
        "expected a check name, found \",\"",
    );
    assert_error("down()", 5, "expected a check name, found \")\"");
    assert_error("availability(\"\", 30d)", 13, "the check name is empty");
    assert_error(
        "availability(api.v2, 30d)",
        16,
        "quote any other name, as in \"api.v2\"",
    );
    assert_error("down(héllo)", 6, "\"é\" in a check name");
}

#[test]
fn percentiles() {
    assert_error(
        "latency(api, p90, 5m)",
        13,
        "unknown percentile \"p90\": expected p50, p95, p99 or max",
    );
    assert_error(
        "latency(api, p99.9, 5m)",
        13,
        "unknown percentile \"p99.9\"",
    );
    assert_error("latency(api, P99, 5m)", 13, "percentiles are lowercase");
    assert_error(
        "latency(api, 5m)",
        13,
        "the percentile comes before the window",
    );
    assert_error("latency(api, , 5m)", 13, "expected a percentile");
    assert_error(
        "latency(api)",
        11,
        "latency needs a percentile and a window",
    );
    assert_error(
        "latency(api, p99)",
        16,
        "latency needs a window after the percentile",
    );
}

#[test]
fn window_errors() {
    assert_error("availability(api)", 16, "availability needs a window");
    assert_error(
        "burn_rate(api, )",
        15,
        "expected a window such as 5m or 1h, found \")\"",
    );
    assert_error("burn_rate(api, 5)", 15, "a window needs a unit");
    assert_error("burn_rate(api, 5x)", 15, "found \"5x\"");
    assert_error("burn_rate(api, 5m_x)", 15, "found \"5m_x\"");
    assert_error("burn_rate(api, 401d)", 15, "too long: at most 400d");
    assert_error("burn_rate(api, 58w)", 15, "too long: at most 400d");
    assert_error("burn_rate(api, 99999999999999999999999d)", 15, "too long");
    assert_error(
        "burn_rate(api, 18446744073709551615s500ms500ms)",
        15,
        "too long",
    );
    assert_error("burn_rate(api, 500ms)", 15, "too short: at least 1s");
    assert_error("burn_rate(api, 0s)", 15, "too short");
    assert_error("latency(api, p99, 1h 30m)", 21, "a window has no spaces");
    assert_error(
        "latency(api, p99, region=eu)",
        18,
        "region=NAME comes after the window",
    );
}

#[test]
fn region_errors() {
    for text in [
        "availability(api, 30d, region=eu)",
        "downtime(api, 30d, region = eu)",
    ] {
        let position = text.find("region").unwrap();
        assert_error(text, position, "measured across regions by quorum");
    }
    assert_error(
        "burn_rate(api, region=eu, 1h)",
        15,
        "measured across regions by quorum",
    );
    assert_error("availability(api, 30d, 1h)", 23, "too many arguments");
    assert_error(
        "latency(api, p99, 5m, eu)",
        22,
        "expected region=NAME, found \"eu\"",
    );
    assert_error(
        "latency(api, p99, 5m, region=)",
        29,
        "expected a region name",
    );
    assert_error(
        "under_objective(api, 5m, region=\"\")",
        32,
        "the region name is empty",
    );
    assert_error(
        "under_objective(api, 5m, region=eu, region=us)",
        34,
        "region=NAME is the last argument",
    );
}

#[test]
fn present_functions_take_no_window() {
    assert_error("down(api, 5m)", 10, "down takes only a check");
    assert_error("failing_regions(api,1h)", 20, "it is about the present");
}

#[test]
fn min_max_errors() {
    assert_error("min()", 4, "min needs at least two arguments");
    assert_error("max(down(api))", 13, "max needs at least two arguments");
    assert_error("min(1,)", 6, "expected a number or a function");
    assert_error("min(1; 2)", 5, "expected \",\" or \")\", found \";\"");
    let deep = "min(".repeat(10_000);
    assert_error(&deep, 4 * MAX_DEPTH, "nested more than 32 deep");
}

#[test]
fn promql_errors() {
    assert_error("promql(up)", 7, "promql takes a double-quoted query");
    assert_error("promql(\"up", 7, "this string is never closed");
    assert_error("promql(\"up\\", 7, "this string is never closed");
    assert_error(r#"promql("a\nb")"#, 9, "unknown escape \"\\n\"");
    assert_error("promql(\"  \")", 7, "the PromQL query is empty");
    assert_error("promql(\"up\", 5m)", 11, "expected \")\", found \",\"");
    assert_error("\"up\"", 0, "promql(\"...\")");
}

#[test]
fn number_errors() {
    assert_error("1e999", 0, "the number 1e999 is out of range");
    assert_error("5m", 0, "invalid number \"5m\"");
    assert_error("1e", 0, "invalid number \"1e\"");
    assert_error("1.2.3", 0, "invalid number \"1.2.3\"");
    assert_error("-", 0, "expected a number, found \"-\"");
    assert_error("min(1, -x)", 7, "expected a number, found \"-x\"");
}

#[test]
fn positions_are_chars_not_bytes() {
    // 'é' and 'ö' are two bytes each: a byte offset would say 30.
    let text = "availability(\"héllo wörld\", x)";
    assert_eq!(error(text).0, 28);
    assert_error("ünknown(api)", 0, "unknown function \"ünknown\"");
    assert_error("min(1, 日本(api))", 7, "unknown function \"日本\"");
    assert_error("1 🙂", 2, "unexpected \"🙂\"");
    assert_error("down(\"🙂\", 5m)", 10, "down takes only a check");
    let e = parse("down(\"日本\") x").unwrap_err();
    assert_eq!(e.position, 11);
    assert_eq!(
        e.pointer("down(\"日本\") x"),
        "down(\"日本\") x\n           ^"
    );
}

#[test]
fn pointer_keeps_one_line() {
    let text = "promql(\"a\nb\", 1)";
    let e = parse(text).unwrap_err();
    assert_eq!(e.position, 12);
    assert_eq!(e.pointer(text), "promql(\"a b\", 1)\n            ^");
}

fn arb_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_-]{1,12}",
        "[a-z \"\\\\.é日]{1,8}",
        any::<String>().prop_filter("a name", |s| !s.is_empty()),
    ]
}

fn arb_window() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (1..=400 * DAY).prop_map(Duration::from_secs),
        (1..400 * DAY, 0..1_000_000_000u32).prop_map(|(s, n)| Duration::new(s, n)),
        (1..=400u64).prop_map(|d| Duration::from_secs(d * DAY)),
    ]
}

fn arb_series() -> impl Strategy<Value = Series> {
    let percentile = prop_oneof![
        Just(Percentile::P50),
        Just(Percentile::P95),
        Just(Percentile::P99),
        Just(Percentile::Max),
    ];
    let metric = prop_oneof![
        Just(Metric::Availability),
        Just(Metric::Downtime),
        Just(Metric::NoData),
        Just(Metric::BudgetRemaining),
        Just(Metric::BurnRate),
        percentile.prop_map(Metric::Latency),
        Just(Metric::UnderObjective),
        Just(Metric::Down),
        Just(Metric::FailingRegions),
        Just(Metric::DegradedRegions),
    ];
    (
        metric,
        arb_name(),
        arb_window(),
        proptest::option::of(arb_name()),
    )
        .prop_map(|(metric, check, window, region)| {
            let (window, region) = match metric {
                Metric::Down | Metric::FailingRegions | Metric::DegradedRegions => (None, None),
                Metric::Latency(_) | Metric::UnderObjective => (Some(window), region),
                _ => (Some(window), None),
            };
            Series {
                metric,
                check,
                window,
                region,
            }
        })
}

fn arb_expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        any::<f64>()
            .prop_filter("finite", |n| n.is_finite())
            .prop_map(Expr::Number),
        (-1000i32..1000).prop_map(|n| Expr::Number(f64::from(n) / 10.0)),
        arb_series().prop_map(Expr::Series),
        any::<String>()
            .prop_filter("a query", |q| !q.trim().is_empty())
            .prop_map(Expr::PromQl),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 2..5).prop_map(Expr::Min),
            proptest::collection::vec(inner, 2..5).prop_map(Expr::Max),
        ]
    })
}

/// Pieces of targets, valid and not, so that random input gets deep into the grammar.
fn arb_soup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("availability"),
        Just("latency"),
        Just("under_objective"),
        Just("down"),
        Just("min"),
        Just("max"),
        Just("promql"),
        Just("("),
        Just(")"),
        Just(","),
        Just(" "),
        Just("\""),
        Just("\\"),
        Just("region"),
        Just("="),
        Just("api"),
        Just("p99"),
        Just("5m"),
        Just("1h30m"),
        Just("400d"),
        Just("99999999999999999999d"),
        Just("1."),
        Just("e"),
        Just("-"),
        Just("1"),
        Just("ü"),
        Just("日本"),
        Just("\n"),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

fn check_any_input(text: &str) -> Result<(), TestCaseError> {
    match parse(text) {
        Ok(e) => prop_assert_eq!(parse(&e.to_string()), Ok(e)),
        Err(e) => {
            prop_assert!(e.position <= text.chars().count(), "{:?}: {}", text, e);
            let _ = e.pointer(text);
            let _ = e.to_string();
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn display_round_trips(e in arb_expr()) {
        let text = e.to_string();
        prop_assert_eq!(parse(&text), Ok(e), "{}", text);
    }

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        check_any_input(&text)?;
    }

    #[test]
    fn near_misses_never_panic(text in arb_soup()) {
        check_any_input(&text)?;
    }
}

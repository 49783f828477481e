use std::time::Duration;

use hyper::header::{HeaderMap, HeaderValue};

use super::*;

fn assertion(yaml_like: serde_json::Value) -> Result<Box<dyn Assertion>, String> {
    let config: AssertionConfig = serde_json::from_value(yaml_like).map_err(|e| e.to_string())?;
    config.build()
}

fn check(a: serde_json::Value, status: u16, body: &str) -> Result<(), String> {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    let r = Response::new(
        status,
        &headers,
        body.as_bytes(),
        Duration::from_millis(120),
        Some(30),
    );
    assertion(a)?.check(&r)
}

#[test]
fn each_assertion_passes_and_fails_with_expected_and_got() {
    use serde_json::json;
    let body = r#"{"items":[{"id":12,"name":"Silver Wolf"}],"paging":{"total":3}}"#;
    let cases: Vec<(serde_json::Value, Result<(), &str>)> = vec![
        (json!({"type": "status", "equals": 200}), Ok(())),
        (
            json!({"type": "status", "equals": 201}),
            Err("status: expected 201, got 200"),
        ),
        (
            json!({"type": "status", "one_of": [201, 204]}),
            Err("status: expected one of [201, 204], got 200"),
        ),
        (
            json!({"type": "json", "path": "$.items[0].id", "equals": 12}),
            Ok(()),
        ),
        (
            json!({"type": "json", "path": "$.items[0].id", "equals": 12.0}),
            Ok(()),
        ),
        (
            json!({"type": "json", "path": "$.items[0].id", "equals": 13}),
            Err("$.items[0].id: expected 13, got 12"),
        ),
        (
            json!({"type": "json", "path": "$.items[1]", "exists": true}),
            Err("$.items[1]: expected to exist, found nothing"),
        ),
        (
            json!({"type": "json", "path": "$.items[1]", "exists": false}),
            Ok(()),
        ),
        (
            json!({"type": "json", "path": "$.items[0].name", "matches": "^Silver"}),
            Ok(()),
        ),
        (
            json!({"type": "json", "path": "$.items[0].name", "matches": "^Gold"}),
            Err("expected to match /^Gold/, got \"Silver Wolf\""),
        ),
        (
            json!({"type": "json", "path": "$.paging.total", "gt": 2}),
            Ok(()),
        ),
        (
            json!({"type": "json", "path": "$.paging.total", "lte": 2}),
            Err("$.paging.total: expected <= 2, got 3"),
        ),
        (
            json!({"type": "json", "path": "$.items[0].name", "gt": 1}),
            Err("expected a number to compare, got \"Silver Wolf\""),
        ),
        (json!({"type": "body_contains", "text": "paging"}), Ok(())),
        (
            json!({"type": "body_contains", "text": "nope"}),
            Err("body: expected to contain \"nope\""),
        ),
        (
            json!({"type": "header", "name": "content-type", "equals": "application/json"}),
            Ok(()),
        ),
        (
            json!({"type": "header", "name": "etag"}),
            Err("header etag: expected to be present, it is not"),
        ),
        (
            json!({"type": "header", "name": "content-type", "matches": "^text/"}),
            Err("expected to match /^text//"),
        ),
        (
            json!({"type": "max_time", "max": "100ms"}),
            Err("time: expected at most 100 ms, took 120.0 ms"),
        ),
        (json!({"type": "max_time", "max": "200ms"}), Ok(())),
        (json!({"type": "cert_days_left", "min": 14}), Ok(())),
        (
            json!({"type": "cert_days_left", "min": 60}),
            Err("certificate: expected at least 60 days left, 30 left"),
        ),
    ];
    for (a, want) in cases {
        let got = check(a.clone(), 200, body);
        match (got, want) {
            (Ok(()), Ok(())) => {}
            (Err(g), Err(w)) => assert!(g.contains(w), "{a}: {g:?} should contain {w:?}"),
            (g, w) => panic!("{a}: got {g:?}, want {w:?}"),
        }
    }
    assert!(
        check(
            json!({"type": "json", "path": "$.x", "exists": true}),
            200,
            "<html>"
        )
        .unwrap_err()
        .contains("the body is not JSON")
    );
}

#[test]
fn bad_assertions_are_rejected_at_load() {
    use serde_json::json;
    for (a, want) in [
        (
            json!({"type": "json", "path": "items", "exists": true}),
            "is not a JSON path",
        ),
        (
            json!({"type": "json", "path": "$.a", "exists": true, "gt": 1}),
            "exactly one of",
        ),
        (
            json!({"type": "json", "path": "$.a", "matches": "(["}),
            "bad regex",
        ),
        (
            json!({"type": "status"}),
            "exactly one of `equals` or `one_of`",
        ),
        (
            json!({"type": "status", "equals": 999}),
            "999 is not an HTTP status code",
        ),
        (
            json!({"type": "max_time", "max": "soon"}),
            "is not a duration",
        ),
        (
            json!({"type": "header", "name": "bad header"}),
            "is not a header name",
        ),
        (json!({"type": "teapot"}), "unknown variant `teapot`"),
        (
            json!({"type": "status", "equals": 200, "colour": 1}),
            "unknown field `colour`",
        ),
    ] {
        let err = assertion(a.clone()).unwrap_err();
        assert!(err.contains(want), "{a}: {err}");
    }
}

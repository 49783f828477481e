use super::*;

#[test]
fn months() {
    let (a, b) = month_bounds("2026-11").unwrap_or_default();
    assert_eq!(text::rfc3339(a), "2026-11-01T00:00:00.000Z");
    assert_eq!(text::rfc3339(b), "2026-12-01T00:00:00.000Z");
    assert_eq!(month_bounds("2026-13"), None);
    assert_eq!(month_bounds("26-11"), None);
    assert_eq!(month_bounds("2026-11x"), None);
    assert_eq!(previous_month(a), "2026-10");
    assert_eq!(csv_field("a,b"), "\"a,b\"");
}

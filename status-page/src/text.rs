//! Words and numbers as partners read them.

use chrono::{DateTime, Utc};

pub fn time(us: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
}

/// `22 Nov 2026, 10:02 UTC`.
pub fn clock(us: i64) -> String {
    time(us)
        .map(|t| t.format("%-d %b %Y, %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// RFC 3339 with milliseconds and `Z`, as Statuspage writes times.
pub fn rfc3339(us: i64) -> String {
    time(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// `40 seconds`, `2 minutes`, `1 hour 5 minutes`, `3 days 4 hours`.
pub fn duration_words(us: i64) -> String {
    let s = (us.max(0) + 500_000) / 1_000_000;
    let unit = |n: i64, one: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {one}s")
        }
    };
    if s < 60 {
        return unit(s, "second");
    }
    let m = (s + 30) / 60;
    if m < 60 {
        return unit(m, "minute");
    }
    let (h, m) = (m / 60, m % 60);
    if h < 24 {
        return if m == 0 {
            unit(h, "hour")
        } else {
            format!("{} {}", unit(h, "hour"), unit(m, "minute"))
        };
    }
    let (d, h) = (h / 24, h % 24);
    if h == 0 {
        unit(d, "day")
    } else {
        format!("{} {}", unit(d, "day"), unit(h, "hour"))
    }
}

/// `A`, `A and B`, `A, B and C`.
pub fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// An availability as a percentage with enough places to tell 99.99 % from 99.995 %, and
/// no trailing zeros (`99.99%`, not `99.990%`).
pub fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    let text = if p >= 100.0 {
        return "100%".into();
    } else if p >= 99.0 {
        // Rounded down: never round a miss up to the target.
        format!("{:.3}", (p * 1000.0 + 1e-6).floor() / 1000.0)
    } else {
        format!("{:.2}", (p * 100.0 + 1e-6).floor() / 100.0)
    };
    format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
}

/// `0.31 s` or `850 ms`.
pub fn millis(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{ms:.0} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(duration_words(40_000_000), "40 seconds");
        assert_eq!(duration_words(120_000_000), "2 minutes");
        assert_eq!(duration_words(3_900_000_000), "1 hour 5 minutes");
        assert_eq!(
            and_list(&["A".into(), "B".into(), "C".into()]),
            "A, B and C"
        );
        assert_eq!(percent(0.99989), "99.989%");
        assert_eq!(percent(0.999_999_9), "99.999%");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(percent(0.9999), "99.99%");
        assert_eq!(percent(0.5), "50%");
        assert_eq!(clock(1_795_348_920_000_000), "22 Nov 2026, 12:02 UTC");
    }
}

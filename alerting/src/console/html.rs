//! Small helpers the console's pages share: escaping for the hand-made SVG (the templates
//! escape on their own), the levels as symbols and words, times for people.

use crate::notify::Level;

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` percent-encoded for a URL path segment: everything but RFC 3986's unreserved characters.
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Every state has a symbol as well as a colour, so that no one needs to tell colours apart.
pub fn symbol(level: Level) -> &'static str {
    match level {
        Level::Ok => "✓",
        Level::Unknown => "?",
        Level::Warn => "▲",
        Level::Error => "✖",
    }
}

/// `2026-12-02 14:05:09 UTC`.
pub fn time(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// `3m 20s ago`, `in 2h`.
pub fn relative(us: i64, now_us: i64) -> String {
    let d = (now_us - us).unsigned_abs() / 1_000_000;
    let text = if d < 60 {
        format!("{d}s")
    } else if d < 3600 {
        format!("{}m {}s", d / 60, d % 60)
    } else if d < 86_400 {
        format!("{}h {}m", d / 3600, (d % 3600) / 60)
    } else {
        format!("{}d {}h", d / 86_400, (d % 86_400) / 3600)
    };
    if us <= now_us {
        format!("{text} ago")
    } else {
        format!("in {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_opens_markup() {
        assert_eq!(
            escape(r#""><img onerror='x'>&"#),
            "&quot;&gt;&lt;img onerror=&#39;x&#39;&gt;&amp;"
        );
    }

    #[test]
    fn path_segments_keep_only_unreserved_characters() {
        assert_eq!(
            path_segment("group-platform@17 /x"),
            "group-platform%4017%20%2Fx"
        );
    }

    #[test]
    fn times_read_as_people_say_them() {
        assert_eq!(relative(0, 200_000_000), "3m 20s ago");
        assert_eq!(relative(7_200_000_000, 0), "in 2h 0m");
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
    }
}

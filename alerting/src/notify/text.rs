//! The human text of a message, the same for every kind: a subject line and a plain-text
//! body. Pure functions of the [`Notification`], so every channel says the same thing and the
//! wording is tested without a network.

use chrono::{DateTime, TimeDelta, Utc};

use super::{Kind, Notification};

/// How much of the description a subject line carries: enough to recognise the check in a
/// list of mails or a phone notification.
const SUBJECT_DESCRIPTION: usize = 100;

/// `[ERROR] search: down (eu-west, us-east)`, `[STILL ERROR] ...`, `[RESOLVED] search`,
/// `[TEST] ...`.
pub fn subject(n: &Notification) -> String {
    let tag = match n.kind {
        Kind::Trigger => format!("[{}]", n.state),
        Kind::Reminder => format!("[STILL {}]", n.state),
        Kind::Resolve => return format!("[RESOLVED] {}", n.check_name),
        Kind::Test => "[TEST]".to_string(),
    };
    let mut line = format!("{tag} {}", n.check_name);
    if let Some(description) = headline(&n.description) {
        line.push_str(": ");
        line.push_str(&description);
    }
    if let Some(regions) = regions(n) {
        line.push_str(&format!(" ({regions})"));
    }
    line
}

/// What broke, where, since when, by how much, why, and where to look: one fact a line.
pub fn body(n: &Notification) -> String {
    let mut lines = vec![opening(n)];
    let description = n.description.trim();
    if !description.is_empty() {
        lines.push(description.to_string());
    }
    lines.push(String::new());
    if let Some(regions) = regions(n) {
        lines.push(format!("Regions: {regions}"));
    }
    lines.extend(timing(n));
    lines.push(format!("Value: {}", value_line(n)));
    if let Some(reason) = n.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
        lines.push(format!("First failure: {reason}"));
    }
    let links = links(n);
    if !links.is_empty() {
        lines.push(String::new());
        lines.extend(links);
    }
    lines.join("\n") + "\n"
}

/// The first line: the state, and for a test that nothing is wrong.
fn opening(n: &Notification) -> String {
    let name = &n.check_name;
    match n.kind {
        Kind::Trigger => format!("{name} is {} (was {}).", n.state, n.previous),
        Kind::Reminder => format!("{name} is still {}.", n.state),
        Kind::Resolve => format!("{name} is resolved (was {}).", n.previous),
        Kind::Test => format!(
            "This is a test message from Lookout: nothing is wrong with {name}. \
             A real message about it would read as follows."
        ),
    }
}

/// Since when, or for how long it lasted once resolved.
fn timing(n: &Notification) -> Vec<String> {
    let lasted = duration(n.at - n.since);
    match n.kind {
        Kind::Resolve => vec![
            format!("Lasted: {lasted}"),
            format!("From: {}", utc(n.since)),
            format!("To: {}", utc(n.at)),
        ],
        _ => vec![format!("Since: {} ({lasted} ago)", utc(n.since))],
    }
}

fn links(n: &Notification) -> Vec<String> {
    [
        ("Acknowledge (stops the reminders)", &n.links.ack),
        ("Problem", &n.links.alerter),
        ("Status page", &n.links.status_page),
        ("Dashboard", &n.links.dashboard),
    ]
    .into_iter()
    .filter_map(|(name, url)| url.as_ref().map(|url| format!("{name}: {url}")))
    .collect()
}

/// `availability(search, 30m) = 0.9712 (error below 0.999, warn below 0.9999)`: the
/// thresholds that are set, on the side that is worse.
pub fn value_line(n: &Notification) -> String {
    let what = match n.target.trim() {
        "" => "value",
        target => target,
    };
    let side = if lower_is_worse(n) { "below" } else { "above" };
    let thresholds: Vec<String> = [("error", n.error), ("warn", n.warn)]
        .into_iter()
        .filter_map(|(name, t)| t.map(|t| format!("{name} {side} {}", number(t))))
        .collect();
    let value = value(n.value);
    if thresholds.is_empty() {
        format!("{what} = {value}")
    } else {
        format!("{what} = {value} ({})", thresholds.join(", "))
    }
}

/// As `worse` says; failing that, as in Seyren, a warn threshold above the error one means
/// lower values are worse.
fn lower_is_worse(n: &Notification) -> bool {
    match n.worse.as_str() {
        "lower" => true,
        "higher" => false,
        _ => matches!((n.warn, n.error), (Some(w), Some(e)) if w > e),
    }
}

/// The measured value, or `no data`.
pub fn value(v: Option<f64>) -> String {
    v.map_or_else(|| "no data".to_string(), number)
}

/// Six significant digits: enough to tell 0.99987 from a 0.9999 threshold, without the
/// 0.30000000000000004 of a raw float.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let rounded: f64 = format!("{v:.5e}").parse().unwrap_or(v);
    rounded.to_string()
}

/// The regions, comma-separated, or `None` when the target is not regional.
pub fn regions(n: &Notification) -> Option<String> {
    (!n.regions.is_empty()).then(|| n.regions.join(", "))
}

/// `2024-05-01 10:00:00 UTC`.
pub fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The two largest units: `45s`, `12m 5s`, `2h 5m`, `3d 4h`. Negative (clock skew) is `0s`.
pub fn duration(d: TimeDelta) -> String {
    const UNITS: [(&str, i64); 4] = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let mut rest = d.num_seconds().max(0);
    let Some(first) = UNITS.iter().position(|&(_, size)| rest >= size) else {
        return "0s".to_string();
    };
    UNITS[first..]
        .iter()
        .take(2)
        .filter_map(|&(name, size)| {
            let count = rest / size;
            rest %= size;
            (count > 0).then(|| format!("{count}{name}"))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The description's first line, shortened for a subject.
fn headline(description: &str) -> Option<String> {
    let line = description.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(match line.char_indices().nth(SUBJECT_DESCRIPTION) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_string(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::super::{Level, Links};
    use super::*;

    /// A realistic trigger: search fails in two regions since 12 minutes.
    pub(crate) fn sample() -> Notification {
        let at = DateTime::parse_from_rfc3339("2024-05-01T10:12:30Z")
            .unwrap()
            .to_utc();
        Notification {
            id: "n-1".into(),
            problem_id: "p-search-1".into(),
            kind: Kind::Trigger,
            check_id: "search".into(),
            check_name: "search".into(),
            description: "down\nSearch fails in at least two regions.".into(),
            target: "availability(search, 5m)".into(),
            state: Level::Error,
            previous: Level::Ok,
            value: Some(0.9712),
            warn: Some(0.9999),
            error: Some(0.999),
            worse: "lower".into(),
            regions: vec!["eu-west".into(), "us-east".into()],
            since: at - TimeDelta::seconds(12 * 60 + 30),
            at,
            reason: Some("connection refused".into()),
            severity: "page".into(),
            labels: BTreeMap::from([("team".to_string(), "search".to_string())]),
            links: Links {
                status_page: Some("https://status.example.com/".into()),
                dashboard: Some("https://grafana.example.com/d/search".into()),
                alerter: Some("https://lookout.example.com/problems/search-1".into()),
                ack: Some("https://lookout.example.com/ack/signed".into()),
            },
        }
    }

    #[test]
    fn subjects_say_the_kind_the_state_and_where() {
        let n = sample();
        let cases = [
            (Kind::Trigger, "[ERROR] search: down (eu-west, us-east)"),
            (
                Kind::Reminder,
                "[STILL ERROR] search: down (eu-west, us-east)",
            ),
            (Kind::Resolve, "[RESOLVED] search"),
            (Kind::Test, "[TEST] search: down (eu-west, us-east)"),
        ];
        for (kind, want) in cases {
            assert_eq!(subject(&Notification { kind, ..n.clone() }), want);
        }
        let bare = Notification {
            description: String::new(),
            regions: vec![],
            state: Level::Warn,
            ..n
        };
        assert_eq!(subject(&bare), "[WARN] search");
    }

    #[test]
    fn a_long_description_is_cut_in_the_subject() {
        let n = Notification {
            description: "é".repeat(300),
            regions: vec![],
            ..sample()
        };
        let s = subject(&n);
        assert!(s.ends_with("..."), "{s}");
        assert_eq!(
            s.chars().count(),
            "[ERROR] search: ".len() + SUBJECT_DESCRIPTION + 3
        );
    }

    #[test]
    fn a_trigger_body_says_what_where_since_when_how_much_why_and_links() {
        let b = body(&sample());
        let want = "\
search is ERROR (was OK).
down
Search fails in at least two regions.

Regions: eu-west, us-east
Since: 2024-05-01 10:00:00 UTC (12m 30s ago)
Value: availability(search, 5m) = 0.9712 (error below 0.999, warn below 0.9999)
First failure: connection refused

Acknowledge (stops the reminders): https://lookout.example.com/ack/signed
Problem: https://lookout.example.com/problems/search-1
Status page: https://status.example.com/
Dashboard: https://grafana.example.com/d/search
";
        assert_eq!(b, want);
    }

    #[test]
    fn reminders_say_still_resolves_say_how_long_tests_say_they_are_tests() {
        let n = sample();
        let reminder = body(&Notification {
            kind: Kind::Reminder,
            ..n.clone()
        });
        assert!(reminder.starts_with("search is still ERROR."), "{reminder}");

        let resolve = body(&Notification {
            kind: Kind::Resolve,
            state: Level::Ok,
            previous: Level::Error,
            ..n.clone()
        });
        assert!(
            resolve.starts_with("search is resolved (was ERROR)."),
            "{resolve}"
        );
        assert!(resolve.contains("Lasted: 12m 30s\n"), "{resolve}");
        assert!(
            resolve.contains("To: 2024-05-01 10:12:30 UTC\n"),
            "{resolve}"
        );

        let test = body(&Notification {
            kind: Kind::Test,
            ..n
        });
        assert!(
            test.starts_with("This is a test message from Lookout"),
            "{test}"
        );
    }

    #[test]
    fn missing_parts_are_left_out() {
        let n = Notification {
            description: String::new(),
            regions: vec![],
            reason: None,
            links: Links::default(),
            value: None,
            target: String::new(),
            state: Level::Unknown,
            ..sample()
        };
        let b = body(&n);
        assert_eq!(
            b,
            "search is UNKNOWN (was OK).\n\n\
             Since: 2024-05-01 10:00:00 UTC (12m 30s ago)\n\
             Value: value = no data (error below 0.999, warn below 0.9999)\n"
        );
    }

    #[test]
    fn higher_is_worse_when_warn_is_below_error() {
        let n = Notification {
            target: "latency_p99(search, 5m)".into(),
            value: Some(1.25),
            warn: Some(0.5),
            error: Some(1.0),
            worse: "higher".into(),
            ..sample()
        };
        assert_eq!(
            value_line(&n),
            "latency_p99(search, 5m) = 1.25 (error above 1, warn above 0.5)"
        );
        let ticket_only = Notification {
            error: None,
            ..n.clone()
        };
        assert_eq!(
            value_line(&ticket_only),
            "latency_p99(search, 5m) = 1.25 (warn above 0.5)"
        );
        let bare = Notification {
            error: None,
            warn: None,
            ..n
        };
        assert_eq!(value_line(&bare), "latency_p99(search, 5m) = 1.25");
    }

    #[test]
    fn without_worse_the_thresholds_tell_the_side_as_in_seyren() {
        let n = Notification {
            worse: String::new(),
            ..sample()
        };
        assert!(value_line(&n).ends_with("(error below 0.999, warn below 0.9999)"));
        let n = Notification {
            warn: Some(0.5),
            error: Some(1.0),
            ..n
        };
        assert!(value_line(&n).ends_with("(error above 1, warn above 0.5)"));
    }

    #[test]
    fn numbers_read_well() {
        let cases = [
            (0.9712, "0.9712"),
            (0.99987, "0.99987"),
            (0.1 + 0.2, "0.3"),
            (3.0, "3"),
            (1234.5678, "1234.57"),
            (-2.5, "-2.5"),
            (0.000012345678, "0.0000123457"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "inf"),
        ];
        for (v, want) in cases {
            assert_eq!(number(v), want, "{v}");
        }
        assert_eq!(value(None), "no data");
    }

    #[test]
    fn durations_keep_two_units() {
        let cases = [
            (0, "0s"),
            (-5, "0s"),
            (45, "45s"),
            (60, "1m"),
            (12 * 60 + 5, "12m 5s"),
            (2 * 3600 + 5 * 60 + 9, "2h 5m"),
            (2 * 3600 + 9, "2h"),
            (3 * 86_400 + 4 * 3600 + 59, "3d 4h"),
        ];
        for (secs, want) in cases {
            assert_eq!(duration(TimeDelta::seconds(secs)), want, "{secs}");
        }
    }
}

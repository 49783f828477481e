//! Subscriptions, as in Seyren: who hears about a check, which changes, and when.

use chrono::{DateTime, Datelike, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::notify::Level;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub check_id: String,
    /// A channel of `alerting.notifiers`.
    pub notifier: String,
    /// The channel's target where it has one (an email address, a Slack channel).
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub ignore_warn: bool,
    #[serde(default)]
    pub ignore_error: bool,
    #[serde(default)]
    pub ignore_ok: bool,
    #[serde(default)]
    pub window: Window,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// When a subscription is active: a time of day (inclusive at both ends), days of the week,
/// in a time zone. A window that ends before it starts runs over midnight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// `HH:MM`.
    pub from: String,
    pub to: String,
    /// Lowercase three-letter days: `mon`..`sun`. Empty means every day.
    #[serde(default)]
    pub days: Vec<String>,
    /// An IANA zone, e.g. `Europe/London`.
    pub timezone: String,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            from: "00:00".into(),
            to: "23:59".into(),
            days: Vec::new(),
            timezone: "UTC".into(),
        }
    }
}

/// A window, checked once.
#[derive(Debug, Clone)]
pub struct ParsedWindow {
    from: NaiveTime,
    to: NaiveTime,
    days: Vec<Weekday>,
    tz: Tz,
}

impl Window {
    /// `always`, or `09:00-18:00 mon, tue (Europe/London)`.
    pub fn describe(&self) -> String {
        if *self == Window::default() {
            return "always".into();
        }
        let days = if self.days.is_empty() {
            "every day".to_owned()
        } else {
            self.days.join(", ")
        };
        format!("{}-{} {days} ({})", self.from, self.to, self.timezone)
    }

    /// Validates every field; the error names the field.
    pub fn parse(&self) -> Result<ParsedWindow, String> {
        let time = |field: &str, v: &str| {
            NaiveTime::parse_from_str(v, "%H:%M").map_err(|_| {
                format!("`window.{field}`: {v:?} is not a time of day; write HH:MM, e.g. 09:00")
            })
        };
        let from = time("from", &self.from)?;
        let to = time("to", &self.to)?;
        let tz: Tz = self.timezone.parse().map_err(|_| {
            format!(
                "`window.timezone`: {:?} is not a time zone; write an IANA name such as Europe/London or UTC",
                self.timezone
            )
        })?;
        let mut days = Vec::new();
        for d in &self.days {
            let day = d.parse::<Weekday>().map_err(|_| {
                format!(
                    "`window.days`: {d:?} is not a day; write mon, tue, wed, thu, fri, sat or sun"
                )
            })?;
            days.push(day);
        }
        Ok(ParsedWindow { from, to, days, tz })
    }
}

impl ParsedWindow {
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.tz);
        let t = local.time();
        // Minutes are what people write: 17:59 includes 17:59:59.
        let to_end = self.to + chrono::Duration::seconds(59);
        let (in_time, day) = if self.from <= self.to {
            (t >= self.from && t <= to_end, local.weekday())
        } else if t >= self.from {
            (true, local.weekday())
        } else {
            // After midnight, the window belongs to the day it started on.
            (t <= to_end, local.weekday().pred())
        };
        in_time && (self.days.is_empty() || self.days.contains(&day))
    }

    /// When the window next opens at or after `at` (`at` itself when inside), looking a
    /// week ahead minute by minute is too slow, so jump by candidate openings.
    pub fn next_open(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.contains(at) {
            return Some(at);
        }
        let local = at.with_timezone(&self.tz).date_naive();
        for offset in 0..9 {
            let day = local + chrono::Duration::days(offset);
            let naive = day.and_time(self.from);
            let Some(open) = self.tz.from_local_datetime(&naive).earliest() else {
                continue; // a start inside a DST gap: the next day's will do
            };
            let open = open.with_timezone(&Utc);
            if open >= at && self.contains(open) {
                return Some(open);
            }
        }
        None
    }
}

impl Subscription {
    /// Whether it wants to hear about a check going to `level`.
    pub fn wants(&self, level: Level) -> bool {
        self.enabled
            && match level {
                Level::Ok => !self.ignore_ok,
                Level::Warn | Level::Unknown => !self.ignore_warn,
                Level::Error => !self.ignore_error,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn window(from: &str, to: &str, days: &[&str], tz: &str) -> ParsedWindow {
        Window {
            from: from.into(),
            to: to.into(),
            days: days.iter().map(|d| d.to_string()).collect(),
            timezone: tz.into(),
        }
        .parse()
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn office_hours_in_a_time_zone_are_inclusive_at_both_ends() {
        let w = window(
            "09:00",
            "17:00",
            &["mon", "tue", "wed", "thu", "fri"],
            "Europe/Helsinki",
        );
        // 2026-11-23 is a Monday; Helsinki is UTC+2 in November.
        assert!(w.contains(at("2026-11-23T07:00:00Z")));
        assert!(w.contains(at("2026-11-23T15:00:59Z")));
        assert!(!w.contains(at("2026-11-23T15:01:00Z")));
        assert!(!w.contains(at("2026-11-22T10:00:00Z")), "a Sunday");
        assert_eq!(
            w.next_open(at("2026-11-21T12:00:00Z")),
            Some(at("2026-11-23T07:00:00Z"))
        );
    }

    #[test]
    fn a_window_over_midnight_belongs_to_the_day_it_starts() {
        let w = window("22:00", "06:00", &["fri"], "UTC");
        assert!(w.contains(at("2026-11-27T23:00:00Z")), "Friday night");
        assert!(
            w.contains(at("2026-11-28T05:00:00Z")),
            "Saturday early, Friday's window"
        );
        assert!(
            !w.contains(at("2026-11-29T05:00:00Z")),
            "Sunday early is Saturday's"
        );
    }

    #[test]
    fn bad_fields_are_named() {
        let w = Window {
            timezone: "Mars/Olympus".into(),
            ..Window::default()
        };
        assert!(w.parse().unwrap_err().contains("window.timezone"));
        let w = Window {
            from: "9am".into(),
            ..Window::default()
        };
        assert!(w.parse().unwrap_err().contains("window.from"));
        let w = Window {
            days: vec!["someday".into()],
            ..Window::default()
        };
        assert!(w.parse().unwrap_err().contains("window.days"));
    }
}

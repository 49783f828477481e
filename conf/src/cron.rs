//! One cron type for every schedule in the file (a check's runs, an alert check's
//! evaluations, the monthly reports), so that one expression means the same everywhere.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A cron expression, kept as written: crontab's five fields (run at second 0) or six or seven
/// with seconds first, as the `cron` crate reads them.
#[derive(Debug, Clone)]
pub struct Cron {
    text: String,
    schedule: Box<cron::Schedule>,
}

impl Cron {
    pub fn parse(expression: &str) -> Result<Cron, String> {
        let expression = expression.trim();
        let full = match expression.split_whitespace().count() {
            5 => format!("0 {expression}"),
            6 | 7 => expression.to_owned(),
            n => {
                return Err(format!(
                    "{expression:?} has {n} fields; write crontab's 5 (`*/5 * * * *`) or 6 with seconds first"
                ));
            }
        };
        let schedule = cron::Schedule::from_str(&full).map_err(|e| {
            format!(
                "{expression:?} is not a cron expression: {}",
                crate::one_line(&e.to_string())
            )
        })?;
        Ok(Cron {
            text: expression.to_owned(),
            schedule: Box::new(schedule),
        })
    }

    /// As written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first start strictly after `now`; `None` when the expression never fires again
    /// (a year in the past).
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule.after(&now).next()
    }

    /// The starts after `now`, in order.
    pub fn after(&self, now: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        self.schedule.after(&now)
    }
}

impl PartialEq for Cron {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl FromStr for Cron {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Cron::parse(s)
    }
}

impl std::fmt::Display for Cron {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Cron {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Cron {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Cron::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn crontab_lines_run_at_second_zero_and_six_fields_keep_their_seconds() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 10, 2, 30).unwrap();
        let five = Cron::parse("*/5 * * * *").unwrap();
        assert_eq!(
            five.next_after(now),
            Utc.with_ymd_and_hms(2026, 1, 1, 10, 5, 0).single()
        );
        let six = Cron::parse("15 * * * * *").unwrap();
        assert_eq!(
            six.next_after(now),
            Utc.with_ymd_and_hms(2026, 1, 1, 10, 3, 15).single()
        );
        assert_eq!(five.as_str(), "*/5 * * * *");
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        assert_eq!(
            Cron::parse("every day").unwrap_err(),
            "\"every day\" has 2 fields; write crontab's 5 (`*/5 * * * *`) or 6 with seconds first"
        );
        assert_eq!(
            Cron::parse("61 * * * *").unwrap_err(),
            "\"61 * * * *\" is not a cron expression: Minutes must be less than 59. ('61' specified.)"
        );
    }
}

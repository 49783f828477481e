//! When a check runs: every `interval` at a stable phase (so checks, and regions, do not all
//! fire at once), or on a cron expression ([`Cron`]: crontab's five fields or six with seconds).

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use lookout_conf::Cron;

#[derive(Debug, Clone)]
pub enum Schedule {
    Every { interval: Duration, phase: Duration },
    Cron(Cron),
}

/// The phase of a check in a region: a stable hash, so the same check starts at the same
/// offset after every restart, and its regions are spread across the interval.
pub fn phase_of(check: &str, region: &str, interval: Duration) -> Duration {
    let ms = interval.as_millis().max(1) as u64;
    let key = format!("{check}\u{0}{region}");
    Duration::from_millis(xxhash_rust::xxh3::xxh3_64(key.as_bytes()) % ms)
}

impl Schedule {
    pub fn every(interval: Duration, check: &str, region: &str) -> Self {
        Schedule::Every {
            interval,
            phase: phase_of(check, region, interval),
        }
    }

    pub fn cron(expression: &str) -> Result<Self, String> {
        Cron::parse(expression).map(Schedule::Cron)
    }

    /// The first start strictly after `now`.
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every { interval, phase } => {
                let interval = interval.as_millis().max(1) as i64;
                let phase = phase.as_millis() as i64;
                let now_ms = now.timestamp_millis();
                let k = (now_ms - phase).div_euclid(interval) + 1;
                Utc.timestamp_millis_opt(k * interval + phase).single()
            }
            Schedule::Cron(c) => c.next_after(now),
        }
    }

    /// How long a run may take before it would overlap the next: the interval, or the gap
    /// between the next two cron starts.
    pub fn nominal_interval(&self, now: DateTime<Utc>) -> Option<Duration> {
        match self {
            Schedule::Every { interval, .. } => Some(*interval),
            Schedule::Cron(c) => {
                let mut it = c.after(now);
                let (a, b) = (it.next()?, it.next()?);
                (b - a).to_std().ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_keep_a_stable_phase_per_check_and_region() {
        let s = Schedule::every(Duration::from_secs(10), "search", "eu-west");
        let Schedule::Every { phase, .. } = s else {
            unreachable!()
        };
        assert_eq!(
            phase,
            phase_of("search", "eu-west", Duration::from_secs(10))
        );
        assert!(phase < Duration::from_secs(10));
        let now = Utc.timestamp_millis_opt(1_700_000_000_123).unwrap();
        let a = s.next_after(now).unwrap();
        let b = s.next_after(a).unwrap();
        assert!(a > now && (a - now).num_milliseconds() <= 10_000);
        assert_eq!((b - a).num_milliseconds(), 10_000);
        assert_eq!(
            (a.timestamp_millis() - phase.as_millis() as i64) % 10_000,
            0
        );
        let phases: std::collections::HashSet<_> = ["eu-west", "us-east", "ap-south"]
            .iter()
            .map(|r| phase_of("search", r, Duration::from_secs(10)))
            .collect();
        assert_eq!(phases.len(), 3, "regions are spread");
    }

    #[test]
    fn cron_takes_five_or_six_fields() {
        let now = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let five = Schedule::cron("*/5 * * * *").unwrap();
        let next = five.next_after(now).unwrap();
        assert_eq!(next.timestamp() % 300, 0);
        let six = Schedule::cron("*/15 * * * * *").unwrap();
        assert_eq!(six.next_after(now).unwrap().timestamp() % 15, 0);
        assert_eq!(six.nominal_interval(now), Some(Duration::from_secs(15)));
        assert!(Schedule::cron("* *").unwrap_err().contains("has 2 fields"));
        assert!(
            Schedule::cron("99 * * * *")
                .unwrap_err()
                .contains("is not a cron expression")
        );
    }
}

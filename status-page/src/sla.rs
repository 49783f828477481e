//! Availability with scheduled maintenance left out, when the contract says so: the
//! collector's figures for the whole window, less its figures inside the maintenance.

use crate::model::Maintenance;
use crate::settings::MaintenanceSla;

/// Seconds of a window, as the collector reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Seconds {
    pub window: f64,
    pub down: f64,
    pub no_data: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Adjusted {
    /// `None` when no counted instant had data.
    pub availability: Option<f64>,
    pub down: f64,
    pub no_data: f64,
    /// Maintenance time with data, left out (or, when counted, only reported).
    pub maintenance: f64,
}

/// The component's maintenance within `[from, to)`, overlapping windows merged.
pub fn spans(maintenances: &[Maintenance], component: &str, from: i64, to: i64) -> Vec<(i64, i64)> {
    let mut spans: Vec<(i64, i64)> = maintenances
        .iter()
        .filter(|m| m.components.iter().any(|c| c == component))
        .map(|m| (m.starts_us.max(from), m.ends_us.min(to)))
        .filter(|(a, b)| a < b)
        .collect();
    spans.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::new();
    for (a, b) in spans {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
}

/// `whole`: the window's figures; `inside`: the figures of each maintenance span in it.
pub fn adjust(whole: Seconds, inside: &[Seconds], mode: MaintenanceSla) -> Adjusted {
    let sum = inside.iter().fold(Seconds::default(), |a, s| Seconds {
        window: a.window + s.window,
        down: a.down + s.down,
        no_data: a.no_data + s.no_data,
    });
    let maintenance = (sum.window - sum.no_data).max(0.0);
    let (down, no_data, excluded) = match mode {
        MaintenanceSla::Excluded => (
            (whole.down - sum.down).max(0.0),
            (whole.no_data - sum.no_data).max(0.0),
            maintenance,
        ),
        MaintenanceSla::Counted => (whole.down, whole.no_data, 0.0),
    };
    let counted = whole.window
        - no_data
        - excluded
        - if mode == MaintenanceSla::Excluded {
            sum.no_data
        } else {
            0.0
        };
    Adjusted {
        availability: (counted > 0.0).then(|| (1.0 - down / counted).clamp(0.0, 1.0)),
        down,
        no_data,
        maintenance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(components: &[&str], a: i64, b: i64) -> Maintenance {
        Maintenance {
            id: 1,
            name: "upgrade".into(),
            components: components.iter().map(|c| (*c).to_owned()).collect(),
            starts_us: a,
            ends_us: b,
            message: String::new(),
            created_us: 0,
            from_config: false,
            silence_id: None,
        }
    }

    #[test]
    fn spans_merge_and_clip() {
        let ms = [
            m(&["search"], 0, 100),
            m(&["search"], 50, 150),
            m(&["other"], 0, 500),
        ];
        assert_eq!(spans(&ms, "search", 10, 120), vec![(10, 120)]);
        assert!(spans(&ms, "search", 200, 300).is_empty());
    }

    #[test]
    fn downtime_inside_maintenance_is_left_out_only_when_excluded() {
        // A day with 10 minutes down, 6 of them inside a 60-minute maintenance window that
        // also had 5 minutes without data.
        let whole = Seconds {
            window: 86_400.0,
            down: 600.0,
            no_data: 300.0,
        };
        let inside = [Seconds {
            window: 3_600.0,
            down: 360.0,
            no_data: 300.0,
        }];
        let ex = adjust(whole, &inside, MaintenanceSla::Excluded);
        assert_eq!(ex.down, 240.0);
        assert_eq!(ex.no_data, 0.0);
        assert_eq!(ex.maintenance, 3_300.0);
        let counted = 86_400.0 - 3_600.0;
        assert_eq!(ex.availability, Some(1.0 - 240.0 / counted));
        let c = adjust(whole, &inside, MaintenanceSla::Counted);
        assert_eq!(c.availability, Some(1.0 - 600.0 / (86_400.0 - 300.0)));
        assert_eq!(c.maintenance, 3_300.0);
    }
}

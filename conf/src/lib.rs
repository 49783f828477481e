//! The pieces every component's config is written with. Each component owns its config types
//! and validation; what they share is here, so a position, a duration or a cron expression
//! means the same in every section of the file.

mod cron;
mod report;
pub mod slo;
mod spanned;

pub use cron::Cron;
pub use report::{Report, check_duration, duration_in, moved, number_in};
pub use spanned::{Dur, Located, Spanned};

/// A share written as a percentage (`2%`, `50 %`) or a ratio (`0.02`); each key says which
/// range it takes.
pub fn share(text: &str) -> Option<f64> {
    let text = text.trim();
    let v = match text.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok()? / 100.0,
        None => text.parse::<f64>().ok()?,
    };
    v.is_finite().then_some(v)
}

/// A parser's message on one line: its last line that says something (not blank, not a
/// caret under the text), without a leading `error: `. The `cron` crate, regex and JSON-path
/// errors are traces whose last line says what is wrong.
pub fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.chars().all(|c| c == '^'))
        .unwrap_or(message)
        .trim_start_matches("error: ")
        .to_owned()
}

/// Where an availability target is written now.
pub const TARGET_MOVED: &str = "the availability target is each check's SLO: write `slo: { availability_target: 99.99% }` at the top level (every check) or in a check";
/// Where maintenance is written now.
pub const MAINTENANCE_MOVED: &str = "scheduled maintenance is the collector's: write it in the top-level `maintenance:` list, with `checks:` (or schedule it with POST /api/v1/maintenance)";

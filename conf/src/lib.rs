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

/// Where an availability target is written now.
pub const TARGET_MOVED: &str = "the availability target is each check's SLO: write `slo: { availability_target: 99.99% }` at the top level (every check) or in a check";
/// Where maintenance is written now.
pub const MAINTENANCE_MOVED: &str = "scheduled maintenance is the collector's: write it in the top-level `maintenance:` list, with `checks:` (or schedule it with POST /api/v1/maintenance)";

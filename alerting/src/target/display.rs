//! The canonical form of a target: what [`super::parse`] reads back to the same [`Expr`], so
//! a target can be stored, shown and compared as text.

use std::fmt::{self, Display, Formatter, Write};
use std::time::Duration;

use super::{Expr, Metric, Percentile, Series};

impl Display for Expr {
    /// `NaN` and infinities print as Rust prints them, which does not parse: the parser never
    /// produces them.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Number(n) => write_number(f, *n),
            Expr::Series(s) => s.fmt(f),
            Expr::Min(args) => write_call(f, "min", args),
            Expr::Max(args) => write_call(f, "max", args),
            Expr::PromQl(query) => {
                f.write_str("promql(")?;
                write_quoted(f, query)?;
                f.write_char(')')
            }
        }
    }
}

impl Display for Series {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(function_name(self.metric))?;
        f.write_char('(')?;
        write_name(f, &self.check)?;
        if let Metric::Latency(p) = self.metric {
            write!(f, ", {p}")?;
        }
        if let Some(window) = self.window {
            f.write_str(", ")?;
            write_window(f, window)?;
        }
        if let Some(region) = &self.region {
            f.write_str(", region=")?;
            write_name(f, region)?;
        }
        f.write_char(')')
    }
}

impl Display for Percentile {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Percentile::P50 => "p50",
            Percentile::P95 => "p95",
            Percentile::P99 => "p99",
            Percentile::Max => "max",
        })
    }
}

fn function_name(metric: Metric) -> &'static str {
    match metric {
        Metric::Availability => "availability",
        Metric::Downtime => "downtime",
        Metric::NoData => "no_data",
        Metric::BudgetRemaining => "budget_remaining",
        Metric::BurnRate => "burn_rate",
        Metric::Latency(_) => "latency",
        Metric::UnderObjective => "under_objective",
        Metric::Down => "down",
        Metric::FailingRegions => "failing_regions",
        Metric::DegradedRegions => "degraded_regions",
    }
}

fn write_call(f: &mut Formatter<'_>, name: &str, args: &[Expr]) -> fmt::Result {
    f.write_str(name)?;
    f.write_char('(')?;
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        arg.fmt(f)?;
    }
    f.write_char(')')
}

fn write_number(f: &mut Formatter<'_>, n: f64) -> fmt::Result {
    // Plain decimals where they read well; the exponent form elsewhere, where `{}` would
    // spell out hundreds of zeros. Both are the shortest digits that parse back exactly.
    let magnitude = n.abs();
    if magnitude == 0.0 || (1e-4..1e16).contains(&magnitude) {
        write!(f, "{n}")
    } else {
        write!(f, "{n:e}")
    }
}

/// Compact and without spaces (humantime's own format has spaces, which the grammar does not
/// allow in a window).
fn write_window(f: &mut Formatter<'_>, window: Duration) -> fmt::Result {
    if window.is_zero() {
        return f.write_str("0s");
    }
    let mut secs = window.as_secs();
    for (unit, suffix) in [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")] {
        let n = secs / unit;
        if n > 0 {
            write!(f, "{n}{suffix}")?;
        }
        secs %= unit;
    }
    let nanos = window.subsec_nanos();
    for (n, suffix) in [
        (nanos / 1_000_000, "ms"),
        (nanos / 1_000 % 1_000, "us"),
        (nanos % 1_000, "ns"),
    ] {
        if n > 0 {
            write!(f, "{n}{suffix}")?;
        }
    }
    Ok(())
}

fn write_name(f: &mut Formatter<'_>, name: &str) -> fmt::Result {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        f.write_str(name)
    } else {
        write_quoted(f, name)
    }
}

fn write_quoted(f: &mut Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        if c == '"' || c == '\\' {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    f.write_char('"')
}

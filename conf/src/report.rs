//! How validation reports a problem: with the value's position and its path in the document
//! (`alerting.notifiers.pager.url`), and on to the next one, so that one run of
//! `lookout check-config` lists every mistake in the file.

use std::time::Duration;

use crate::{Dur, Located, Spanned};

/// Where validation sends each problem: the binary maps positions back to the file as written
/// (before `${ENV}` interpolation) and masks any secret a message might quote.
pub type Report<'a> = dyn FnMut(Option<Located>, &str, String) + 'a;

/// Reports `v` unless it lies from `min` to `max`.
pub fn check_duration(
    report: &mut Report,
    v: &Spanned<Dur>,
    path: &str,
    min: Duration,
    max: Duration,
) {
    let d = v.value.0;
    if d < min || d > max {
        report(
            v.loc(),
            path,
            format!(
                "must be from {} to {}, got {}",
                humantime::format_duration(min),
                humantime::format_duration(max),
                humantime::format_duration(d)
            ),
        );
    }
}

/// The duration given (reported when outside `min..=max`), or `default` when there is none.
pub fn duration_in(
    report: &mut Report,
    v: &Option<Spanned<Dur>>,
    path: &str,
    default: Duration,
    min: Duration,
    max: Duration,
) -> Duration {
    match v {
        None => default,
        Some(d) => {
            check_duration(report, d, path, min, max);
            d.value.0
        }
    }
}

/// The number given, or `default` when there is none or it lies outside `min..=max` (then
/// reported).
pub fn number_in<T: Copy + PartialOrd + std::fmt::Display>(
    report: &mut Report,
    v: Option<&Spanned<T>>,
    path: &str,
    default: T,
    min: T,
    max: T,
) -> T {
    match v {
        None => default,
        Some(s) if s.value < min || s.value > max => {
            report(
                s.loc(),
                path,
                format!("must be from {min} to {max}, got {}", s.value),
            );
            default
        }
        Some(s) => s.value,
    }
}

/// Refuses a key that used to be read here, saying where it is written now.
pub fn moved<T>(v: &Option<Spanned<T>>, path: &str, to: &str, report: &mut Report) {
    if let Some(v) = v {
        report(v.loc(), path, format!("has moved: {to}"));
    }
}

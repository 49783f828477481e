//! What error messages say of the text: a window's range, the closest known function to a
//! misspelt one, and what was found instead.

use super::FUNCTIONS;

/// humantime 2 can panic (in `Duration::new`) when the seconds it adds up come near
/// `u64::MAX`. Windows that short are far above 400 days anyway, so they are refused before:
/// at most 64 chars, hence at most 32 parts, each with an integer below 10^10 (times a year,
/// the largest unit, that is below 10^18), which keeps any sum far below `u64::MAX`.
pub(super) fn exceeds_humantime_safe_range(text: &str) -> bool {
    if text.chars().count() > 64 {
        return true;
    }
    let mut after_dot = false;
    let mut significant = 0usize;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !after_dot && (significant > 0 || c != '0') {
                significant += 1;
                if significant > 10 {
                    return true;
                }
            }
        } else {
            after_dot = c == '.';
            significant = 0;
        }
    }
    false
}

pub(super) fn unknown_function(name: &str) -> String {
    let known = FUNCTIONS.join(", ");
    let name = shorten(name);
    let lower = name.to_lowercase();
    let suggestion = match lower.as_str() {
        "p50" | "p95" | "p99" => Some(format!("latency is written latency(api, {lower}, 5m).")),
        _ => closest(&lower).map(|f| {
            if lower == f {
                format!("did you mean {f}? Function names are lowercase.")
            } else {
                format!("did you mean {f}?")
            }
        }),
    };
    match suggestion {
        Some(s) => format!("unknown function \"{name}\": {s} The functions are {known}"),
        None => format!("unknown function \"{name}\": the functions are {known}"),
    }
}

/// The known function closest to `name`, if it is close enough to be a typo.
pub(super) fn closest(name: &str) -> Option<&'static str> {
    let len = name.chars().count();
    // Long words are no typo of a short function name, and would make the table large.
    if len > 32 {
        return None;
    }
    let limit = (len / 3).clamp(1, 2);
    FUNCTIONS
        .iter()
        .map(|f| (edit_distance(name, f), *f))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, f)| f)
}

pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            let delete = previous[j + 1] + 1;
            let insert = current[j] + 1;
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous[b.len()]
}

pub(super) fn found_char(c: char) -> String {
    format!("\"{}\"", c.escape_debug())
}

/// Keeps quoted input in messages to a readable length.
pub(super) fn shorten(s: &str) -> String {
    const MAX: usize = 32;
    if s.chars().count() <= MAX {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX).collect();
    out.push('…');
    out
}

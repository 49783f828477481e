//! `${VAR}` interpolation, done on the text before it is parsed so that it works in any
//! value (a secret, a URL, a duration), while keeping every line where it was so that parse
//! errors still point at the right line and column of the file as written.
//!
//! Syntax: `${VAR}`, `${VAR:-default}` (used when VAR is unset or empty), `$${` for a literal
//! `${`. Comments are left alone, so a commented-out `${VAR}` never needs VAR set.

use std::collections::HashMap;

/// One replaced `${...}` on a line: where it was, how long it was, how long its value is.
#[derive(Debug, Clone)]
struct Replacement {
    column: usize,
    original_len: usize,
    value_len: usize,
}

/// The interpolated text and what it takes to map positions back to the original.
#[derive(Debug, Default)]
pub struct Interpolated {
    pub text: String,
    /// By 0-based line: the replacements made on it, left to right (columns in characters).
    replacements: HashMap<usize, Vec<Replacement>>,
    /// Values that came from the environment, to be kept out of error messages.
    secrets: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InterpolationError {
    /// 1-based.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl Interpolated {
    /// Maps a 1-based (line, column) in the interpolated text to the original text.
    pub fn original_position(&self, line: usize, column: usize) -> (usize, usize) {
        let Some(reps) = self.replacements.get(&(line.saturating_sub(1))) else {
            return (line, column);
        };
        let mut col = column as isize;
        let mut shift = 0isize;
        for r in reps {
            let start = r.column as isize + shift; // where the value starts in the new text (0-based)
            let new_end = start + r.value_len as isize;
            let c0 = column as isize - 1;
            if c0 < start {
                break;
            }
            if c0 < new_end {
                // Inside the substituted value: point at the `${` that produced it.
                return (line, r.column + 1);
            }
            shift += r.value_len as isize - r.original_len as isize;
            col = column as isize - shift;
        }
        (line, col.max(1) as usize)
    }

    /// Replaces any interpolated value in `message` by the `${VAR}` it came from.
    pub fn redact(&self, message: &str) -> String {
        let mut out = message.to_owned();
        for (name, value) in &self.secrets {
            if value.len() >= 3 {
                out = out.replace(value.as_str(), &format!("${{{name}}}"));
            }
        }
        out
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Where a YAML comment starts on this line, if it has one outside quotes.
fn comment_start(line: &[char]) -> Option<usize> {
    let (mut single, mut double) = (false, false);
    for (i, c) in line.iter().enumerate() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single && (i == 0 || line[i - 1] != '\\') => double = !double,
            '#' if !single && !double && (i == 0 || line[i - 1].is_whitespace()) => return Some(i),
            _ => {}
        }
    }
    None
}

pub fn interpolate(
    input: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Interpolated, Vec<InterpolationError>> {
    let mut out = Interpolated::default();
    let mut errors = Vec::new();
    let mut lines = input.split('\n').peekable();
    let mut n = 0;
    while let Some(line) = lines.next() {
        let chars: Vec<char> = line.chars().collect();
        let end = comment_start(&chars).unwrap_or(chars.len());
        let mut i = 0;
        let mut reps = Vec::new();
        while i < chars.len() {
            if i < end
                && chars[i] == '$'
                && chars.get(i + 1) == Some(&'$')
                && chars.get(i + 2) == Some(&'{')
            {
                out.text.push_str("${");
                reps.push(Replacement {
                    column: i,
                    original_len: 3,
                    value_len: 2,
                });
                i += 3;
                continue;
            }
            if i < end && chars[i] == '$' && chars.get(i + 1) == Some(&'{') {
                let Some(close) = chars[i + 2..end].iter().position(|c| *c == '}') else {
                    errors.push(InterpolationError {
                        line: n + 1,
                        column: i + 1,
                        message: "unterminated `${`: write `${NAME}`, or `$${` for a literal `${`"
                            .into(),
                    });
                    out.text.extend(&chars[i..]);
                    break;
                };
                let inner: String = chars[i + 2..i + 2 + close].iter().collect();
                let (name, default) = match inner.split_once(":-") {
                    Some((n, d)) => (n, Some(d)),
                    None => (inner.as_str(), None),
                };
                let original_len = close + 3;
                if !is_name(name) {
                    errors.push(InterpolationError {
                        line: n + 1,
                        column: i + 1,
                        message: format!(
                            "`${{{inner}}}`: {name:?} is not a variable name (letters, digits, `_`)"
                        ),
                    });
                } else {
                    let value = env(name).filter(|v| !v.is_empty());
                    match value.or_else(|| default.map(str::to_owned)) {
                        Some(v) if v.contains('\n') => errors.push(InterpolationError {
                            line: n + 1,
                            column: i + 1,
                            message: format!("environment variable {name} holds several lines; only one-line values can be interpolated"),
                        }),
                        Some(v) => {
                            reps.push(Replacement { column: i, original_len, value_len: v.chars().count() });
                            out.text.push_str(&v);
                            if default.is_none_or(|d| d != v) {
                                out.secrets.push((name.to_owned(), v));
                            }
                        }
                        None => errors.push(InterpolationError {
                            line: n + 1,
                            column: i + 1,
                            message: format!("environment variable {name} is not set (write `${{{name}:-default}}` to give a default)"),
                        }),
                    }
                }
                i += original_len;
                continue;
            }
            out.text.push(chars[i]);
            i += 1;
        }
        if !reps.is_empty() {
            out.replacements.insert(n, reps);
        }
        if lines.peek().is_some() {
            out.text.push('\n');
        }
        n += 1;
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cr3t-value".into()),
            "EMPTY" => Some(String::new()),
            "MULTI" => Some("a\nb".into()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_defaults_escapes_and_skips_comments() {
        let text =
            "a: ${TOKEN}\nb: ${NOPE:-fallback} # ${ALSO_NOPE}\nc: $${literal}\nd: \"#${EMPTY:-x}\"";
        let got = interpolate(text, &env).unwrap();
        assert_eq!(
            got.text,
            "a: s3cr3t-value\nb: fallback # ${ALSO_NOPE}\nc: ${literal}\nd: \"#x\""
        );
    }

    #[test]
    fn reports_every_problem_with_its_position() {
        let text = "a: ${NOPE}\nb: ${MULTI}\nc: ${1BAD}\nd: ${OPEN";
        let errs = interpolate(text, &env).unwrap_err();
        let got: Vec<(usize, usize)> = errs.iter().map(|e| (e.line, e.column)).collect();
        assert_eq!(got, [(1, 4), (2, 4), (3, 4), (4, 4)]);
        assert!(errs[0].message.contains("NOPE is not set"));
        assert!(errs[1].message.contains("several lines"));
        assert!(errs[3].message.contains("unterminated"));
    }

    #[test]
    fn maps_positions_back_and_redacts_values() {
        let got = interpolate("key: ${TOKEN} tail: x", &env).unwrap();
        // "key: s3cr3t-value tail: x": `tail` is at column 19 here, 15 in the original.
        assert_eq!(got.original_position(1, 19), (1, 15));
        assert_eq!(got.original_position(1, 8), (1, 6));
        assert_eq!(got.original_position(1, 2), (1, 2));
        assert_eq!(got.original_position(2, 9), (2, 9));
        assert_eq!(
            got.redact("bad value \"s3cr3t-value\""),
            "bad value \"${TOKEN}\""
        );
    }
}

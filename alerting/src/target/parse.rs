//! The target parser: hand-written recursive descent over the text's chars, so that every
//! error carries the char offset a caret can point at (check-config and the API show it).

use std::time::Duration;

use super::{Expr, Metric, Percentile, Series};

/// Why a target does not parse, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at column {}: {}", .position + 1, .message)]
pub struct ParseError {
    /// 0-based offset in chars (not bytes), at most the text's length in chars. The
    /// message's column is 1-based, as editors count.
    pub position: usize,
    pub message: String,
}

impl ParseError {
    /// The text and, below it, a caret under the error's column.
    pub fn pointer(&self, text: &str) -> String {
        // A tab or a newline (legal inside a quoted string) would break the caret's
        // alignment, so every control character is shown as one space.
        let line: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let column = self.position.min(line.chars().count());
        format!("{line}\n{}^", " ".repeat(column))
    }
}

/// Parses a target; the grammar is in docs/alerting.md ("Targets").
pub fn parse(text: &str) -> Result<Expr, ParseError> {
    let mut p = Parser {
        chars: text.chars().collect(),
        pos: 0,
        depth: 0,
    };
    p.skip_ws();
    if p.peek().is_none() {
        return Err(p.error(
            0,
            "the target is empty: write a number, a series such as availability(api, 30d), \
             min(...), max(...) or promql(\"...\")",
        ));
    }
    let expr = p.expr()?;
    p.skip_ws();
    if p.peek().is_some() {
        let hint = match p.peek() {
            Some('+' | '-' | '*' | '/' | '<' | '>' | '=') => {
                ": a target has no arithmetic or comparison: the check's thresholds compare its \
                 value, and min(...) and max(...) combine series"
            }
            _ => "",
        };
        return Err(p.error(
            p.pos,
            format!(
                "unexpected {} after the end of the target{hint}",
                p.found(p.pos)
            ),
        ));
    }
    Ok(expr)
}

/// The collector answers windows of up to 400 days (it keeps its rollups that long).
const MAX_WINDOW: Duration = Duration::from_secs(400 * 86_400);
const MIN_WINDOW: Duration = Duration::from_secs(1);

/// Deep enough for any real target; the bound keeps hostile input from overflowing the stack.
const MAX_DEPTH: usize = 32;

const FUNCTIONS: [&str; 12] = [
    "availability",
    "downtime",
    "no_data",
    "budget_remaining",
    "burn_rate",
    "latency",
    "under_objective",
    "down",
    "failing_regions",
    "min",
    "max",
    "promql",
];

/// The argument lists there are, by function.
#[derive(Clone, Copy)]
enum Shape {
    /// `(check, window)`: measured across regions by quorum.
    Windowed(Metric),
    /// `(check, percentile, window [, region=NAME])`
    Latency,
    /// `(check, window [, region=NAME])`
    UnderObjective,
    /// `(check)`: about the present.
    Now(Metric),
}

enum Function {
    Min,
    Max,
    PromQl,
    Series(Shape),
}

fn function(name: &str) -> Option<Function> {
    Some(match name {
        "availability" => Function::Series(Shape::Windowed(Metric::Availability)),
        "downtime" => Function::Series(Shape::Windowed(Metric::Downtime)),
        "no_data" => Function::Series(Shape::Windowed(Metric::NoData)),
        "budget_remaining" => Function::Series(Shape::Windowed(Metric::BudgetRemaining)),
        "burn_rate" => Function::Series(Shape::Windowed(Metric::BurnRate)),
        "latency" => Function::Series(Shape::Latency),
        "under_objective" => Function::Series(Shape::UnderObjective),
        "down" => Function::Series(Shape::Now(Metric::Down)),
        "failing_regions" => Function::Series(Shape::Now(Metric::FailingRegions)),
        "min" => Function::Min,
        "max" => Function::Max,
        "promql" => Function::PromQl,
        _ => return None,
    })
}

/// Characters of a bare check or region name.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Characters that make up one "word" when an error quotes what it found: wider than a
/// name, so that `p99.9` or `ünknown` are quoted whole.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

fn is_window_char(c: char) -> bool {
    // µ: humantime knows `µs`.
    c.is_ascii_alphanumeric() || c == '.' || c == 'µ'
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn at(&self, pos: usize) -> Option<char> {
        self.chars.get(pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn next_non_ws(&self, mut pos: usize) -> usize {
        while self.at(pos).is_some_and(char::is_whitespace) {
            pos += 1;
        }
        pos
    }

    fn run_end(&self, start: usize, accept: impl Fn(char) -> bool) -> usize {
        let mut end = start;
        while self.at(end).is_some_and(&accept) {
            end += 1;
        }
        end
    }

    fn text(&self, start: usize, end: usize) -> String {
        self.chars
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .collect()
    }

    fn error(&self, position: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            position: position.min(self.chars.len()),
            message: message.into(),
        }
    }

    /// What is at `pos`, for "found ..." in messages.
    fn found(&self, pos: usize) -> String {
        match self.at(pos) {
            None => "end of input".into(),
            Some('"') => {
                let mut end = pos + 1;
                while let Some(c) = self.at(end) {
                    end += 1;
                    if c == '\\' {
                        end += 1;
                    } else if c == '"' {
                        break;
                    }
                }
                let end = end.min(self.chars.len());
                format!("the string {}", shorten(&self.text(pos, end)))
            }
            Some(c) if is_word_char(c) => {
                let end = self.run_end(pos, is_word_char);
                format!("\"{}\"", shorten(&self.text(pos, end)))
            }
            Some(c) => format!("\"{}\"", c.escape_debug()),
        }
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        self.skip_ws();
        match self.peek() {
            Some(c) if c.is_ascii_digit() || matches!(c, '+' | '-' | '.') => self.number(),
            Some(c) if c.is_alphabetic() || c == '_' => self.call(),
            Some('"') => Err(self.error(
                self.pos,
                format!(
                    "expected a number or a function, found {}: a PromQL query is written \
                     promql(\"...\")",
                    self.found(self.pos)
                ),
            )),
            _ => Err(self.error(
                self.pos,
                format!(
                    "expected a number or a function such as availability(api, 30d), found {}",
                    self.found(self.pos)
                ),
            )),
        }
    }

    fn number(&mut self) -> Result<Expr, ParseError> {
        let start = self.pos;
        let digits = |p: &Self, from: usize| p.run_end(from, |c| c.is_ascii_digit());
        let mut end = start;
        if matches!(self.at(end), Some('+' | '-')) {
            end += 1;
        }
        let int_end = digits(self, end);
        let mut mantissa_digits = int_end - end;
        end = int_end;
        if self.at(end) == Some('.') {
            let frac_end = digits(self, end + 1);
            mantissa_digits += frac_end - (end + 1);
            end = frac_end;
        }
        if mantissa_digits == 0 {
            return Err(self.error(
                start,
                format!("expected a number, found {}", self.found(start)),
            ));
        }
        if matches!(self.at(end), Some('e' | 'E')) {
            let mut exp = end + 1;
            if matches!(self.at(exp), Some('+' | '-')) {
                exp += 1;
            }
            let exp_end = digits(self, exp);
            if exp_end > exp {
                end = exp_end;
            }
        }
        // `5m` or `1e` are not a number followed by something else: quote them whole.
        if self.at(end).is_some_and(is_word_char) {
            let word_end = self.run_end(end, is_word_char);
            return Err(self.error(
                start,
                format!(
                    "invalid number \"{}\"",
                    shorten(&self.text(start, word_end))
                ),
            ));
        }
        let lexeme = self.text(start, end);
        let value: f64 = lexeme
            .parse()
            .map_err(|_| self.error(start, format!("invalid number \"{}\"", shorten(&lexeme))))?;
        if !value.is_finite() {
            return Err(self.error(
                start,
                format!("the number {} is out of range", shorten(&lexeme)),
            ));
        }
        self.pos = end;
        Ok(Expr::Number(value))
    }

    fn call(&mut self) -> Result<Expr, ParseError> {
        let start = self.pos;
        let end = self.run_end(start, |c| c.is_alphanumeric() || c == '_' || c == '-');
        let name = self.text(start, end);
        let Some(function) = function(&name) else {
            return Err(self.error(start, unknown_function(&name)));
        };
        self.pos = end;
        self.skip_ws();
        if self.peek() != Some('(') {
            return Err(self.error(
                self.pos,
                format!(
                    "expected \"(\" after {name}, found {}",
                    self.found(self.pos)
                ),
            ));
        }
        self.pos += 1;
        match function {
            Function::Min => self.min_max(start, "min").map(Expr::Min),
            Function::Max => self.min_max(start, "max").map(Expr::Max),
            Function::PromQl => self.promql(),
            Function::Series(shape) => self.series(&name, shape).map(Expr::Series),
        }
    }

    fn min_max(&mut self, start: usize, name: &str) -> Result<Vec<Expr>, ParseError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error(
                start,
                format!("min and max are nested more than {MAX_DEPTH} deep here"),
            ));
        }
        let too_few = || {
            format!(
                "{name} needs at least two arguments, such as \
                 {name}(burn_rate(api, 1h), burn_rate(api, 5m))"
            )
        };
        self.skip_ws();
        if self.peek() == Some(')') {
            return Err(self.error(self.pos, too_few()));
        }
        self.depth += 1;
        let mut args = vec![self.expr()?];
        loop {
            self.skip_ws();
            match self.peek() {
                Some(',') => {
                    self.pos += 1;
                    args.push(self.expr()?);
                }
                Some(')') if args.len() < 2 => return Err(self.error(self.pos, too_few())),
                Some(')') => {
                    self.pos += 1;
                    break;
                }
                _ => {
                    return Err(self.error(
                        self.pos,
                        format!("expected \",\" or \")\", found {}", self.found(self.pos)),
                    ));
                }
            }
        }
        self.depth -= 1;
        Ok(args)
    }

    fn promql(&mut self) -> Result<Expr, ParseError> {
        self.skip_ws();
        let start = self.pos;
        if self.peek() != Some('"') {
            return Err(self.error(
                start,
                format!(
                    "promql takes a double-quoted query, such as promql(\"up{{job=\\\"api\\\"}}\"), \
                     found {}",
                    self.found(start)
                ),
            ));
        }
        let query = self.string()?;
        if query.trim().is_empty() {
            return Err(self.error(start, "the PromQL query is empty"));
        }
        self.close("")?;
        Ok(Expr::PromQl(query))
    }

    /// A double-quoted string at `pos`, with `\"` and `\\` its only escapes.
    fn string(&mut self) -> Result<String, ParseError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(self.error(
                        open,
                        "this string is never closed: a \" is missing at its end",
                    ));
                }
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('\\') => match self.at(self.pos + 1) {
                    Some(c @ ('"' | '\\')) => {
                        out.push(c);
                        self.pos += 2;
                    }
                    Some(c) => {
                        return Err(self.error(
                            self.pos,
                            format!(
                                "unknown escape \"\\{}\": a string knows only \\\" and \\\\",
                                c.escape_debug()
                            ),
                        ));
                    }
                    None => {
                        return Err(self.error(
                            open,
                            "this string is never closed: a \" is missing at its end",
                        ));
                    }
                },
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn series(&mut self, name: &str, shape: Shape) -> Result<Series, ParseError> {
        let check = self.name_or_string("check")?;
        let (metric, window, region) = match shape {
            Shape::Windowed(metric) => {
                let example = format!("{name}(api, 30d)");
                self.comma(&format!("{name} needs a window: {example}"))?;
                self.reject_region(name, self.next_non_ws(self.pos))?;
                let window = self.window()?;
                self.skip_ws();
                if self.peek() == Some(',') {
                    let arg = self.next_non_ws(self.pos + 1);
                    self.reject_region(name, arg)?;
                    return Err(self.error(
                        arg,
                        format!("too many arguments: {name} takes a check and a window, {example}"),
                    ));
                }
                self.close("")?;
                (metric, Some(window), None)
            }
            Shape::Latency => {
                self.comma("latency needs a percentile and a window: latency(api, p99, 5m)")?;
                let percentile = self.percentile()?;
                self.comma("latency needs a window after the percentile: latency(api, p99, 5m)")?;
                let window = self.window()?;
                let region = self.optional_region()?;
                (Metric::Latency(percentile), Some(window), region)
            }
            Shape::UnderObjective => {
                self.comma("under_objective needs a window: under_objective(api, 1h)")?;
                let window = self.window()?;
                let region = self.optional_region()?;
                (Metric::UnderObjective, Some(window), region)
            }
            Shape::Now(metric) => {
                self.skip_ws();
                if self.peek() == Some(',') {
                    return Err(self.error(
                        self.next_non_ws(self.pos + 1),
                        format!(
                            "{name} takes only a check, {name}(api): it is about the present, \
                             so it has no window"
                        ),
                    ));
                }
                self.close("")?;
                (metric, None, None)
            }
        };
        Ok(Series {
            metric,
            check,
            window,
            region,
        })
    }

    /// A check or region: a bare name or a quoted string, never empty.
    fn name_or_string(&mut self, what: &str) -> Result<String, ParseError> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            Some('"') => {
                let s = self.string()?;
                if s.is_empty() {
                    return Err(self.error(start, format!("the {what} name is empty")));
                }
                Ok(s)
            }
            Some(c) if is_name_char(c) => {
                let end = self.run_end(start, is_name_char);
                if let Some(c) = self
                    .at(end)
                    .filter(|&c| is_word_char(c) || c == ':' || c == '/')
                {
                    return Err(self.error(
                        end,
                        format!(
                            "{} in a {what} name: a bare name is letters, digits, - and _; \
                             quote any other name, as in \"{}\"",
                            found_char(c),
                            shorten(&self.text(start, self.run_end(start, is_word_char))),
                        ),
                    ));
                }
                self.pos = end;
                Ok(self.text(start, end))
            }
            _ => Err(self.error(
                start,
                format!("expected a {what} name, found {}", self.found(start)),
            )),
        }
    }

    /// The comma before a required argument; at a `)` the argument is missing, which
    /// `missing` explains.
    fn comma(&mut self, missing: &str) -> Result<(), ParseError> {
        self.skip_ws();
        match self.peek() {
            Some(',') => {
                self.pos += 1;
                Ok(())
            }
            Some(')') => Err(self.error(self.pos, missing)),
            _ => Err(self.error(
                self.pos,
                format!("expected \",\", found {}", self.found(self.pos)),
            )),
        }
    }

    fn close(&mut self, hint: &str) -> Result<(), ParseError> {
        self.skip_ws();
        if self.peek() == Some(')') {
            self.pos += 1;
            return Ok(());
        }
        Err(self.error(
            self.pos,
            format!("expected \")\", found {}{hint}", self.found(self.pos)),
        ))
    }

    /// Whether `region=` starts at `pos`.
    fn region_at(&self, pos: usize) -> bool {
        let end = self.run_end(pos, is_name_char);
        self.text(pos, end) == "region" && self.at(self.next_non_ws(end)) == Some('=')
    }

    fn reject_region(&self, name: &str, pos: usize) -> Result<(), ParseError> {
        if self.region_at(pos) {
            return Err(self.error(
                pos,
                format!(
                    "{name} takes no region: availability, downtime, no_data, budget_remaining \
                     and burn_rate are measured across regions by quorum (a check is down when \
                     a quorum of its regions fails), so one region alone makes no sense; \
                     latency and under_objective take region=NAME"
                ),
            ));
        }
        Ok(())
    }

    fn optional_region(&mut self) -> Result<Option<String>, ParseError> {
        self.skip_ws();
        match self.peek() {
            Some(')') => {
                self.pos += 1;
                return Ok(None);
            }
            Some(',') => self.pos += 1,
            _ => {
                let hint = if self.pos > 0
                    && self.at(self.pos - 1).is_some_and(char::is_whitespace)
                    && self.peek().is_some_and(|c| c.is_ascii_digit())
                {
                    ": a window has no spaces, as in 1h30m"
                } else {
                    ""
                };
                return Err(self.error(
                    self.pos,
                    format!(
                        "expected \",\" or \")\", found {}{hint}",
                        self.found(self.pos)
                    ),
                ));
            }
        }
        self.skip_ws();
        if !self.region_at(self.pos) {
            return Err(self.error(
                self.pos,
                format!("expected region=NAME, found {}", self.found(self.pos)),
            ));
        }
        self.pos = self.next_non_ws(self.run_end(self.pos, is_name_char)) + 1;
        let region = self.name_or_string("region")?;
        self.close(": region=NAME is the last argument")?;
        Ok(Some(region))
    }

    fn percentile(&mut self) -> Result<Percentile, ParseError> {
        self.skip_ws();
        let start = self.pos;
        let end = self.run_end(start, is_word_char);
        let word = self.text(start, end);
        let percentile = match word.as_str() {
            "p50" => Percentile::P50,
            "p95" => Percentile::P95,
            "p99" => Percentile::P99,
            "max" => Percentile::Max,
            "" => {
                return Err(self.error(
                    start,
                    format!(
                        "expected a percentile (p50, p95, p99 or max), found {}",
                        self.found(start)
                    ),
                ));
            }
            _ => {
                let hint = if word.starts_with(|c: char| c.is_ascii_digit()) {
                    "; the percentile comes before the window: latency(api, p99, 5m)"
                } else if matches!(word.to_lowercase().as_str(), "p50" | "p95" | "p99" | "max") {
                    "; percentiles are lowercase"
                } else {
                    ""
                };
                return Err(self.error(
                    start,
                    format!(
                        "unknown percentile \"{}\": expected p50, p95, p99 or max{hint}",
                        shorten(&word)
                    ),
                ));
            }
        };
        self.pos = end;
        Ok(percentile)
    }

    fn window(&mut self) -> Result<Duration, ParseError> {
        self.skip_ws();
        let start = self.pos;
        let end = self.run_end(start, is_window_char);
        let expected = |p: &Self| {
            let hint = if p.region_at(start) {
                " (region=NAME comes after the window)"
            } else {
                ""
            };
            p.error(
                start,
                format!(
                    "expected a window such as 5m or 1h, found {}{hint}",
                    p.found(start)
                ),
            )
        };
        if end == start || self.at(end).is_some_and(is_word_char) {
            return Err(expected(self));
        }
        let text = self.text(start, end);
        if !text.contains(|c: char| c.is_ascii_alphabetic() || c == 'µ') {
            return Err(self.error(
                start,
                format!(
                    "expected a window such as 5m or 1h, found \"{}\": a window needs a unit",
                    shorten(&text)
                ),
            ));
        }
        let too_long = || {
            self.error(
                start,
                format!(
                    "the window {} is too long: at most 400d, the longest the collector answers",
                    shorten(&text)
                ),
            )
        };
        if exceeds_humantime_safe_range(&text) {
            return Err(too_long());
        }
        let window = humantime::parse_duration(&text).map_err(|_| expected(self))?;
        if window < MIN_WINDOW {
            return Err(self.error(
                start,
                format!("the window {text} is too short: at least 1s"),
            ));
        }
        if window > MAX_WINDOW {
            return Err(too_long());
        }
        self.pos = end;
        Ok(window)
    }
}

/// humantime 2 can panic (in `Duration::new`) when the seconds it adds up come near
/// `u64::MAX`. Windows that short are far above 400 days anyway, so they are refused before:
/// at most 64 chars, hence at most 32 parts, each with an integer below 10^10 (times a year,
/// the largest unit, that is below 10^18), which keeps any sum far below `u64::MAX`.
fn exceeds_humantime_safe_range(text: &str) -> bool {
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

fn unknown_function(name: &str) -> String {
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
fn closest(name: &str) -> Option<&'static str> {
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

fn edit_distance(a: &str, b: &str) -> usize {
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

fn found_char(c: char) -> String {
    format!("\"{}\"", c.escape_debug())
}

/// Keeps quoted input in messages to a readable length.
fn shorten(s: &str) -> String {
    const MAX: usize = 32;
    if s.chars().count() <= MAX {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX).collect();
    out.push('…');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DAY: u64 = 86_400;

    fn series(metric: Metric, check: &str, window: Option<u64>, region: Option<&str>) -> Expr {
        Expr::Series(Series {
            metric,
            check: check.into(),
            window: window.map(Duration::from_secs),
            region: region.map(Into::into),
        })
    }

    /// The error's position and message, checking on the way that the position is in range
    /// and that the caret lands under it.
    fn error(text: &str) -> (usize, String) {
        let e = parse(text).unwrap_err();
        assert!(e.position <= text.chars().count(), "{text:?}: {e}");
        let pointer = e.pointer(text);
        let caret = pointer.lines().nth(1).unwrap();
        assert_eq!(caret.chars().count(), e.position + 1, "{pointer}");
        (e.position, e.message)
    }

    #[track_caller]
    fn assert_error(text: &str, position: usize, contains: &str) {
        let (p, message) = error(text);
        assert_eq!(p, position, "{text:?}: {message}");
        assert!(
            message.contains(contains),
            "{text:?}: {message:?} lacks {contains:?}"
        );
    }

    #[test]
    fn each_windowed_function() {
        for (name, metric) in [
            ("availability", Metric::Availability),
            ("downtime", Metric::Downtime),
            ("no_data", Metric::NoData),
            ("budget_remaining", Metric::BudgetRemaining),
            ("burn_rate", Metric::BurnRate),
        ] {
            assert_eq!(
                parse(&format!("{name}(api, 30d)")).unwrap(),
                series(metric, "api", Some(30 * DAY), None),
            );
        }
    }

    #[test]
    fn latency_and_under_objective() {
        for (word, p) in [
            ("p50", Percentile::P50),
            ("p95", Percentile::P95),
            ("p99", Percentile::P99),
            ("max", Percentile::Max),
        ] {
            assert_eq!(
                parse(&format!("latency(checkout, {word}, 5m)")).unwrap(),
                series(Metric::Latency(p), "checkout", Some(300), None),
            );
        }
        assert_eq!(
            parse("latency(checkout, p99, 1h, region=eu-west)").unwrap(),
            series(
                Metric::Latency(Percentile::P99),
                "checkout",
                Some(3_600),
                Some("eu-west")
            ),
        );
        assert_eq!(
            parse(r#"latency(checkout, p99, 1h, region = "São Paulo")"#).unwrap(),
            series(
                Metric::Latency(Percentile::P99),
                "checkout",
                Some(3_600),
                Some("São Paulo")
            ),
        );
        assert_eq!(
            parse("under_objective(api, 1h)").unwrap(),
            series(Metric::UnderObjective, "api", Some(3_600), None),
        );
        assert_eq!(
            parse("under_objective(api, 6h, region=us)").unwrap(),
            series(Metric::UnderObjective, "api", Some(6 * 3_600), Some("us")),
        );
    }

    #[test]
    fn present_functions() {
        assert_eq!(
            parse("down(api)").unwrap(),
            series(Metric::Down, "api", None, None)
        );
        assert_eq!(
            parse("failing_regions(api)").unwrap(),
            series(Metric::FailingRegions, "api", None, None),
        );
    }

    #[test]
    fn checks_bare_and_quoted() {
        assert_eq!(
            parse("down(2fa-login_v2)").unwrap(),
            series(Metric::Down, "2fa-login_v2", None, None),
        );
        assert_eq!(
            parse(r#"down("api.v2 \"beta\" \\ ü")"#).unwrap(),
            series(Metric::Down, r#"api.v2 "beta" \ ü"#, None, None),
        );
    }

    #[test]
    fn min_max_promql_numbers() {
        let a = series(Metric::BurnRate, "api", Some(3_600), None);
        let b = series(Metric::BurnRate, "api", Some(300), None);
        assert_eq!(
            parse("min(burn_rate(api, 1h), burn_rate(api, 5m))").unwrap(),
            Expr::Min(vec![a.clone(), b.clone()]),
        );
        assert_eq!(
            parse("max(burn_rate(api, 1h), min(burn_rate(api, 5m), 14.4), -1)").unwrap(),
            Expr::Max(vec![
                a,
                Expr::Min(vec![b, Expr::Number(14.4)]),
                Expr::Number(-1.0)
            ]),
        );
        assert_eq!(
            parse(r#"promql("sum(rate(http_requests_total{code=~\"5..\"}[5m]))")"#).unwrap(),
            Expr::PromQl(r#"sum(rate(http_requests_total{code=~"5.."}[5m]))"#.into()),
        );
        assert_eq!(
            parse(r#"promql("a\\b")"#).unwrap(),
            Expr::PromQl(r"a\b".into())
        );
        for (text, value) in [
            ("0", 0.0),
            ("42", 42.0),
            ("-3", -3.0),
            ("+2.5", 2.5),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e3", 1000.0),
            ("-1.5E-2", -0.015),
            ("2e+2", 200.0),
        ] {
            assert_eq!(parse(text).unwrap(), Expr::Number(value), "{text}");
        }
    }

    #[test]
    fn whitespace_between_tokens() {
        assert_eq!(
            parse(" \t min ( latency ( api , p99 , 5m , region = eu ) ,\n 0.3 ) ").unwrap(),
            Expr::Min(vec![
                series(
                    Metric::Latency(Percentile::P99),
                    "api",
                    Some(300),
                    Some("eu")
                ),
                Expr::Number(0.3),
            ]),
        );
    }

    #[test]
    fn windows() {
        for (text, secs) in [
            ("1s", 1),
            ("30s", 30),
            ("5m", 300),
            ("1h", 3_600),
            ("6h", 6 * 3_600),
            ("3d", 3 * DAY),
            ("90d", 90 * DAY),
            ("1h30m", 5_400),
            ("1.5h", 5_400),
            ("2w", 14 * DAY),
            ("400d", 400 * DAY),
        ] {
            assert_eq!(
                parse(&format!("availability(api, {text})")).unwrap(),
                series(Metric::Availability, "api", Some(secs), None),
                "{text}",
            );
        }
    }

    #[test]
    fn canonical_display() {
        for (text, canonical) in [
            ("availability( api ,30d )", "availability(api, 30d)"),
            (
                "latency(api,p99,90m,region=eu)",
                "latency(api, p99, 1h30m, region=eu)",
            ),
            (
                r#"latency("my api", max, 1.5h, region="São Paulo")"#,
                r#"latency("my api", max, 1h30m, region="São Paulo")"#,
            ),
            ("under_objective(api, 24h)", "under_objective(api, 1d)"),
            ("down(\"api\")", "down(api)"),
            ("failing_regions(api)", "failing_regions(api)"),
            ("min(1,max(2.50,-3))", "min(1, max(2.5, -3))"),
            ("1e300", "1e300"),
            ("-0.00001", "-1e-5"),
            ("1e15", "1000000000000000"),
            (r#"promql( "up{job=\"a\"}" )"#, r#"promql("up{job=\"a\"}")"#),
            ("burn_rate(api, 1000ms)", "burn_rate(api, 1s)"),
            ("burn_rate(api, 1s500ms)", "burn_rate(api, 1s500ms)"),
        ] {
            let e = parse(text).unwrap();
            assert_eq!(e.to_string(), canonical, "{text}");
            assert_eq!(parse(canonical).unwrap(), e, "{canonical}");
        }
    }

    #[test]
    fn the_documented_message() {
        let e = parse("availability(api, x)").unwrap_err();
        assert_eq!(
            e.to_string(),
            "at column 19: expected a window such as 5m or 1h, found \"x\""
        );
        assert_eq!(e.position, 18);
        assert_eq!(
            e.pointer("availability(api, x)"),
            "availability(api, x)\n                  ^"
        );
    }

    #[test]
    fn empty_input() {
        assert_error("", 0, "the target is empty");
        assert_error("  \n ", 0, "the target is empty");
    }

    #[test]
    fn unknown_functions() {
        assert_error(
            "availabilty(api, 30d)",
            0,
            "unknown function \"availabilty\": did you mean availability?",
        );
        assert_error("  burn-rate(api, 1h)", 2, "did you mean burn_rate?");
        assert_error("Latency(api, p99, 5m)", 0, "Function names are lowercase");
        assert_error(
            "min(1, foo(api))",
            7,
            "the functions are availability, downtime",
        );
        assert_error("p99(api, 5m)", 0, "latency(api, p99, 5m)");
        let (_, message) = error("uptime(api)");
        assert!(!message.contains("did you mean"), "{message}");
        assert_error(
            "availability",
            12,
            "expected \"(\" after availability, found end",
        );
    }

    #[test]
    fn missing_parenthesis_and_trailing_input() {
        assert_error(
            "availability(api, 30d",
            21,
            "expected \")\", found end of input",
        );
        assert_error("down(api", 8, "expected \")\", found end of input");
        assert_error("min(1, 2", 8, "expected \",\" or \")\", found end of input");
        assert_error(
            "availability(api, 30d) x",
            23,
            "unexpected \"x\" after the end",
        );
        assert_error("availability(api, 30d))", 22, "unexpected \")\"");
        assert_error("down(api) > 0", 10, "has no arithmetic");
        assert_error("1 2", 2, "unexpected \"2\"");
    }

    #[test]
    fn empty_or_bad_check() {
        assert_error(
            "availability(, 30d)",
            13,
            "expected a check name, found \",\"",
        );
        assert_error("down()", 5, "expected a check name, found \")\"");
        assert_error("availability(\"\", 30d)", 13, "the check name is empty");
        assert_error(
            "availability(api.v2, 30d)",
            16,
            "quote any other name, as in \"api.v2\"",
        );
        assert_error("down(héllo)", 6, "\"é\" in a check name");
    }

    #[test]
    fn percentiles() {
        assert_error(
            "latency(api, p90, 5m)",
            13,
            "unknown percentile \"p90\": expected p50, p95, p99 or max",
        );
        assert_error(
            "latency(api, p99.9, 5m)",
            13,
            "unknown percentile \"p99.9\"",
        );
        assert_error("latency(api, P99, 5m)", 13, "percentiles are lowercase");
        assert_error(
            "latency(api, 5m)",
            13,
            "the percentile comes before the window",
        );
        assert_error("latency(api, , 5m)", 13, "expected a percentile");
        assert_error(
            "latency(api)",
            11,
            "latency needs a percentile and a window",
        );
        assert_error(
            "latency(api, p99)",
            16,
            "latency needs a window after the percentile",
        );
    }

    #[test]
    fn window_errors() {
        assert_error("availability(api)", 16, "availability needs a window");
        assert_error(
            "burn_rate(api, )",
            15,
            "expected a window such as 5m or 1h, found \")\"",
        );
        assert_error("burn_rate(api, 5)", 15, "a window needs a unit");
        assert_error("burn_rate(api, 5x)", 15, "found \"5x\"");
        assert_error("burn_rate(api, 5m_x)", 15, "found \"5m_x\"");
        assert_error("burn_rate(api, 401d)", 15, "too long: at most 400d");
        assert_error("burn_rate(api, 58w)", 15, "too long: at most 400d");
        assert_error("burn_rate(api, 99999999999999999999999d)", 15, "too long");
        assert_error(
            "burn_rate(api, 18446744073709551615s500ms500ms)",
            15,
            "too long",
        );
        assert_error("burn_rate(api, 500ms)", 15, "too short: at least 1s");
        assert_error("burn_rate(api, 0s)", 15, "too short");
        assert_error("latency(api, p99, 1h 30m)", 21, "a window has no spaces");
        assert_error(
            "latency(api, p99, region=eu)",
            18,
            "region=NAME comes after the window",
        );
    }

    #[test]
    fn region_errors() {
        for text in [
            "availability(api, 30d, region=eu)",
            "downtime(api, 30d, region = eu)",
        ] {
            let position = text.find("region").unwrap();
            assert_error(text, position, "measured across regions by quorum");
        }
        assert_error(
            "burn_rate(api, region=eu, 1h)",
            15,
            "measured across regions by quorum",
        );
        assert_error("availability(api, 30d, 1h)", 23, "too many arguments");
        assert_error(
            "latency(api, p99, 5m, eu)",
            22,
            "expected region=NAME, found \"eu\"",
        );
        assert_error(
            "latency(api, p99, 5m, region=)",
            29,
            "expected a region name",
        );
        assert_error(
            "under_objective(api, 5m, region=\"\")",
            32,
            "the region name is empty",
        );
        assert_error(
            "under_objective(api, 5m, region=eu, region=us)",
            34,
            "region=NAME is the last argument",
        );
    }

    #[test]
    fn present_functions_take_no_window() {
        assert_error("down(api, 5m)", 10, "down takes only a check");
        assert_error("failing_regions(api,1h)", 20, "it is about the present");
    }

    #[test]
    fn min_max_errors() {
        assert_error("min()", 4, "min needs at least two arguments");
        assert_error("max(down(api))", 13, "max needs at least two arguments");
        assert_error("min(1,)", 6, "expected a number or a function");
        assert_error("min(1; 2)", 5, "expected \",\" or \")\", found \";\"");
        let deep = "min(".repeat(10_000);
        assert_error(&deep, 4 * MAX_DEPTH, "nested more than 32 deep");
    }

    #[test]
    fn promql_errors() {
        assert_error("promql(up)", 7, "promql takes a double-quoted query");
        assert_error("promql(\"up", 7, "this string is never closed");
        assert_error("promql(\"up\\", 7, "this string is never closed");
        assert_error(r#"promql("a\nb")"#, 9, "unknown escape \"\\n\"");
        assert_error("promql(\"  \")", 7, "the PromQL query is empty");
        assert_error("promql(\"up\", 5m)", 11, "expected \")\", found \",\"");
        assert_error("\"up\"", 0, "promql(\"...\")");
    }

    #[test]
    fn number_errors() {
        assert_error("1e999", 0, "the number 1e999 is out of range");
        assert_error("5m", 0, "invalid number \"5m\"");
        assert_error("1e", 0, "invalid number \"1e\"");
        assert_error("1.2.3", 0, "invalid number \"1.2.3\"");
        assert_error("-", 0, "expected a number, found \"-\"");
        assert_error("min(1, -x)", 7, "expected a number, found \"-x\"");
    }

    #[test]
    fn positions_are_chars_not_bytes() {
        // 'é' and 'ö' are two bytes each: a byte offset would say 30.
        let text = "availability(\"héllo wörld\", x)";
        assert_eq!(error(text).0, 28);
        assert_error("ünknown(api)", 0, "unknown function \"ünknown\"");
        assert_error("min(1, 日本(api))", 7, "unknown function \"日本\"");
        assert_error("1 🙂", 2, "unexpected \"🙂\"");
        assert_error("down(\"🙂\", 5m)", 10, "down takes only a check");
        let e = parse("down(\"日本\") x").unwrap_err();
        assert_eq!(e.position, 11);
        assert_eq!(
            e.pointer("down(\"日本\") x"),
            "down(\"日本\") x\n           ^"
        );
    }

    #[test]
    fn pointer_keeps_one_line() {
        let text = "promql(\"a\nb\", 1)";
        let e = parse(text).unwrap_err();
        assert_eq!(e.position, 12);
        assert_eq!(e.pointer(text), "promql(\"a b\", 1)\n            ^");
    }

    fn arb_name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z0-9_-]{1,12}",
            "[a-z \"\\\\.é日]{1,8}",
            any::<String>().prop_filter("a name", |s| !s.is_empty()),
        ]
    }

    fn arb_window() -> impl Strategy<Value = Duration> {
        prop_oneof![
            (1..=400 * DAY).prop_map(Duration::from_secs),
            (1..400 * DAY, 0..1_000_000_000u32).prop_map(|(s, n)| Duration::new(s, n)),
            (1..=400u64).prop_map(|d| Duration::from_secs(d * DAY)),
        ]
    }

    fn arb_series() -> impl Strategy<Value = Series> {
        let percentile = prop_oneof![
            Just(Percentile::P50),
            Just(Percentile::P95),
            Just(Percentile::P99),
            Just(Percentile::Max),
        ];
        let metric = prop_oneof![
            Just(Metric::Availability),
            Just(Metric::Downtime),
            Just(Metric::NoData),
            Just(Metric::BudgetRemaining),
            Just(Metric::BurnRate),
            percentile.prop_map(Metric::Latency),
            Just(Metric::UnderObjective),
            Just(Metric::Down),
            Just(Metric::FailingRegions),
        ];
        (
            metric,
            arb_name(),
            arb_window(),
            proptest::option::of(arb_name()),
        )
            .prop_map(|(metric, check, window, region)| {
                let (window, region) = match metric {
                    Metric::Down | Metric::FailingRegions => (None, None),
                    Metric::Latency(_) | Metric::UnderObjective => (Some(window), region),
                    _ => (Some(window), None),
                };
                Series {
                    metric,
                    check,
                    window,
                    region,
                }
            })
    }

    fn arb_expr() -> impl Strategy<Value = Expr> {
        let leaf = prop_oneof![
            any::<f64>()
                .prop_filter("finite", |n| n.is_finite())
                .prop_map(Expr::Number),
            (-1000i32..1000).prop_map(|n| Expr::Number(f64::from(n) / 10.0)),
            arb_series().prop_map(Expr::Series),
            any::<String>()
                .prop_filter("a query", |q| !q.trim().is_empty())
                .prop_map(Expr::PromQl),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 2..5).prop_map(Expr::Min),
                proptest::collection::vec(inner, 2..5).prop_map(Expr::Max),
            ]
        })
    }

    /// Pieces of targets, valid and not, so that random input gets deep into the grammar.
    fn arb_soup() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("availability"),
            Just("latency"),
            Just("under_objective"),
            Just("down"),
            Just("min"),
            Just("max"),
            Just("promql"),
            Just("("),
            Just(")"),
            Just(","),
            Just(" "),
            Just("\""),
            Just("\\"),
            Just("region"),
            Just("="),
            Just("api"),
            Just("p99"),
            Just("5m"),
            Just("1h30m"),
            Just("400d"),
            Just("99999999999999999999d"),
            Just("1."),
            Just("e"),
            Just("-"),
            Just("1"),
            Just("ü"),
            Just("日本"),
            Just("\n"),
        ];
        proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
    }

    fn check_any_input(text: &str) -> Result<(), TestCaseError> {
        match parse(text) {
            Ok(e) => prop_assert_eq!(parse(&e.to_string()), Ok(e)),
            Err(e) => {
                prop_assert!(e.position <= text.chars().count(), "{:?}: {}", text, e);
                let _ = e.pointer(text);
                let _ = e.to_string();
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn display_round_trips(e in arb_expr()) {
            let text = e.to_string();
            prop_assert_eq!(parse(&text), Ok(e), "{}", text);
        }

        #[test]
        fn arbitrary_strings_never_panic(text in any::<String>()) {
            check_any_input(&text)?;
        }

        #[test]
        fn near_misses_never_panic(text in arb_soup()) {
            check_any_input(&text)?;
        }
    }
}

//! The target parser: hand-written recursive descent over the text's chars, so that every
//! error carries the char offset a caret can point at (check-config and the API show it).

use std::time::Duration;

use super::{Expr, Metric, Series};

mod arguments;
mod cursor;
mod messages;

use messages::{exceeds_humantime_safe_range, found_char, shorten, unknown_function};

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
        "degraded_regions" => Function::Series(Shape::Now(Metric::DegradedRegions)),
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
}

#[cfg(test)]
mod tests;

//! The arguments with grammars of their own: percentiles and windows.

use std::time::Duration;

use super::{
    MAX_WINDOW, MIN_WINDOW, ParseError, Parser, exceeds_humantime_safe_range, is_window_char,
    is_word_char, shorten,
};
use crate::target::Percentile;

impl Parser {
    pub(super) fn percentile(&mut self) -> Result<Percentile, ParseError> {
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

    pub(super) fn window(&mut self) -> Result<Duration, ParseError> {
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

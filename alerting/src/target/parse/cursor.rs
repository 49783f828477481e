//! Moving over the text: what is here, runs of characters, and errors that point at a char.

use super::{ParseError, Parser, is_word_char, shorten};

impl Parser {
    pub(super) fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    pub(super) fn at(&self, pos: usize) -> Option<char> {
        self.chars.get(pos).copied()
    }

    pub(super) fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    pub(super) fn next_non_ws(&self, mut pos: usize) -> usize {
        while self.at(pos).is_some_and(char::is_whitespace) {
            pos += 1;
        }
        pos
    }

    pub(super) fn run_end(&self, start: usize, accept: impl Fn(char) -> bool) -> usize {
        let mut end = start;
        while self.at(end).is_some_and(&accept) {
            end += 1;
        }
        end
    }

    pub(super) fn text(&self, start: usize, end: usize) -> String {
        self.chars
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .collect()
    }

    pub(super) fn error(&self, position: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            position: position.min(self.chars.len()),
            message: message.into(),
        }
    }

    /// What is at `pos`, for "found ..." in messages.
    pub(super) fn found(&self, pos: usize) -> String {
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
}

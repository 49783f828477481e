//! Values that remember where they were written, so validation can point at them.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A 1-based line and column in the interpolated text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Located {
    pub line: usize,
    pub column: usize,
}

/// A value and where it was written.
#[derive(Debug, Clone)]
pub struct Spanned<T> {
    pub value: T,
    loc: Option<Located>,
}

impl<T> Spanned<T> {
    /// A value the file did not give (a default), so it has no position.
    pub fn unlocated(value: T) -> Self {
        Spanned { value, loc: None }
    }

    pub fn loc(&self) -> Option<Located> {
        self.loc
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
        let loc = (s.referenced.line() > 0).then(|| Located {
            line: s.referenced.line() as usize,
            column: s.referenced.column() as usize,
        });
        Ok(Spanned {
            value: s.value,
            loc,
        })
    }
}

/// A duration written with its unit: `500ms`, `10s`, `1m30s`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Text(String),
            Number(f64),
        }
        match Written::deserialize(d)? {
            Written::Text(s) => humantime::parse_duration(s.trim()).map(Dur).map_err(|e| {
                serde::de::Error::custom(format!(
                    "{s:?} is not a duration ({e}); write e.g. `500ms`, `10s` or `1m`"
                ))
            }),
            Written::Number(n) => Err(serde::de::Error::custom(format!(
                "a duration needs a unit: write `{n}s` or `{n}ms`, not `{n}`"
            ))),
        }
    }
}

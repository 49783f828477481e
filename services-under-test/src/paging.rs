//! `itemsperpage` and `startindex`, the platform's paging parameters (MixRadio's names).

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

pub const DEFAULT_ITEMS: usize = 20;
pub const MAX_ITEMS: usize = 100;
const MAX_START: usize = 1_000_000;

/// Raw query values, parsed by hand so that a bad value gets our own message.
#[derive(Debug, Default, Deserialize)]
pub struct PagingQuery {
    pub itemsperpage: Option<String>,
    pub startindex: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Paging {
    pub itemsperpage: usize,
    pub startindex: usize,
}

#[derive(Debug, Serialize)]
pub struct PageInfo {
    pub itemsperpage: usize,
    pub startindex: usize,
    pub total: usize,
}

impl Paging {
    pub fn parse(q: &PagingQuery) -> Result<Self, ApiError> {
        let number = |name: &str, raw: &Option<String>, default: usize, min: usize, max: usize| {
            let Some(raw) = raw else {
                return Ok(default);
            };
            match raw.trim().parse::<usize>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(ApiError::BadRequest(format!(
                    "`{name}` must be a whole number from {min} to {max}, got {raw:?}"
                ))),
            }
        };
        Ok(Paging {
            itemsperpage: number("itemsperpage", &q.itemsperpage, DEFAULT_ITEMS, 1, MAX_ITEMS)?,
            startindex: number("startindex", &q.startindex, 0, 0, MAX_START)?,
        })
    }

    pub fn page<'a, T>(&self, items: &'a [T]) -> (&'a [T], PageInfo) {
        let start = self.startindex.min(items.len());
        let end = (start + self.itemsperpage).min(items.len());
        (
            &items[start..end],
            PageInfo {
                itemsperpage: self.itemsperpage,
                startindex: self.startindex,
                total: items.len(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(items: Option<&str>, start: Option<&str>) -> PagingQuery {
        PagingQuery {
            itemsperpage: items.map(str::to_owned),
            startindex: start.map(str::to_owned),
        }
    }

    #[test]
    fn parses_defaults_and_rejects_out_of_range() {
        assert_eq!(
            Paging::parse(&q(None, None)).unwrap(),
            Paging {
                itemsperpage: 20,
                startindex: 0
            }
        );
        assert_eq!(
            Paging::parse(&q(Some("5"), Some("10"))).unwrap(),
            Paging {
                itemsperpage: 5,
                startindex: 10
            }
        );
        for (items, start, field) in [
            (Some("0"), None, "itemsperpage"),
            (Some("101"), None, "itemsperpage"),
            (Some("ten"), None, "itemsperpage"),
            (None, Some("-1"), "startindex"),
        ] {
            let err = Paging::parse(&q(items, start)).unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
    }

    #[test]
    fn pages_past_the_end_are_empty() {
        let items: Vec<u32> = (0..7).collect();
        let p = Paging {
            itemsperpage: 5,
            startindex: 5,
        };
        assert_eq!(p.page(&items).0, &[5, 6]);
        let p = Paging {
            itemsperpage: 5,
            startindex: 50,
        };
        assert!(p.page(&items).0.is_empty());
        assert_eq!(p.page(&items).1.total, 7);
    }
}

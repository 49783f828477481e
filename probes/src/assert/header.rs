use hyper::header::HeaderName;
use serde::Deserialize;

use super::{Assertion, Response, shown};

/// `{ type: header, name: content-type, equals: application/json }`; without an operator the
/// header must be present; `matches` takes a regex; `present: false` asserts absence.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderConfig {
    pub name: String,
    pub equals: Option<String>,
    pub matches: Option<String>,
    pub present: Option<bool>,
}

#[derive(Debug)]
enum Op {
    Present(bool),
    Equals(String),
    Matches(regex::Regex),
}

#[derive(Debug)]
struct Header {
    name: HeaderName,
    op: Op,
}

impl HeaderConfig {
    pub fn build(self) -> Result<Box<dyn Assertion>, String> {
        let name = HeaderName::try_from(self.name.as_str())
            .map_err(|_| format!("{:?} is not a header name", self.name))?;
        let op = match (self.equals, self.matches, self.present) {
            (None, None, None) => Op::Present(true),
            (None, None, Some(p)) => Op::Present(p),
            (Some(e), None, None) => Op::Equals(e),
            (None, Some(m), None) => Op::Matches(regex::Regex::new(&m).map_err(|e| {
                format!(
                    "`matches`: bad regex {m:?}: {}",
                    super::one_line(&e.to_string())
                )
            })?),
            _ => {
                return Err(
                    "a header assertion takes at most one of `equals`, `matches` or `present`"
                        .into(),
                );
            }
        };
        Ok(Box::new(Header { name, op }))
    }
}

impl Assertion for Header {
    fn check(&self, r: &Response<'_>) -> Result<(), String> {
        let value = r
            .headers
            .get(&self.name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let n = &self.name;
        match (&self.op, value) {
            (Op::Present(true), Some(_)) | (Op::Present(false), None) => Ok(()),
            (Op::Present(true), None) => {
                Err(format!("header {n}: expected to be present, it is not"))
            }
            (Op::Present(false), Some(v)) => Err(format!(
                "header {n}: expected to be absent, got {}",
                shown(&v)
            )),
            (_, None) => Err(format!("header {n}: expected, not present")),
            (Op::Equals(want), Some(got)) if got.eq_ignore_ascii_case(want) || got == *want => {
                Ok(())
            }
            (Op::Equals(want), Some(got)) => Err(format!(
                "header {n}: expected {want:?}, got {}",
                shown(&got)
            )),
            (Op::Matches(re), Some(got)) if re.is_match(&got) => Ok(()),
            (Op::Matches(re), Some(got)) => Err(format!(
                "header {n}: expected to match /{}/, got {}",
                re.as_str(),
                shown(&got)
            )),
        }
    }
}

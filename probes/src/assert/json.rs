use serde::Deserialize;
use serde_json::Value;
use serde_json_path::JsonPath;

use super::{Assertion, Response, shown};

/// `{ type: json, path: "$.items[0].id", <one operator> }` with the operator one of `equals`,
/// `exists`, `matches` (a regex over the value's text), `gt`, `gte`, `lt`, `lte`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonConfig {
    pub path: String,
    pub equals: Option<Value>,
    pub exists: Option<bool>,
    pub matches: Option<String>,
    pub gt: Option<f64>,
    pub gte: Option<f64>,
    pub lt: Option<f64>,
    pub lte: Option<f64>,
}

#[derive(Debug)]
enum Op {
    Equals(Value),
    Exists(bool),
    Matches(regex::Regex),
    Compare(&'static str, f64),
}

#[derive(Debug)]
struct Json {
    text: String,
    path: JsonPath,
    op: Op,
}

impl JsonConfig {
    pub fn build(self) -> Result<Box<dyn Assertion>, String> {
        let path = JsonPath::parse(&self.path)
            .map_err(|e| format!("{:?} is not a JSON path: {e}", self.path))?;
        let mut ops = Vec::new();
        if let Some(v) = self.equals {
            ops.push(Op::Equals(v));
        }
        if let Some(e) = self.exists {
            ops.push(Op::Exists(e));
        }
        if let Some(m) = self.matches {
            ops.push(Op::Matches(regex::Regex::new(&m).map_err(|e| {
                format!(
                    "`matches`: bad regex {m:?}: {}",
                    super::one_line(&e.to_string())
                )
            })?));
        }
        for (name, v) in [
            ("gt", self.gt),
            ("gte", self.gte),
            ("lt", self.lt),
            ("lte", self.lte),
        ] {
            if let Some(v) = v {
                ops.push(Op::Compare(name, v));
            }
        }
        if ops.len() != 1 {
            return Err(format!(
                "a json assertion needs exactly one of equals, exists, matches, gt, gte, lt, lte; got {}",
                ops.len()
            ));
        }
        let op = ops.remove(0);
        Ok(Box::new(Json {
            text: self.path,
            path,
            op,
        }))
    }
}

impl Assertion for Json {
    fn check(&self, r: &Response<'_>) -> Result<(), String> {
        let json = r
            .json()
            .map_err(|e| format!("{}: the body is not JSON ({e})", self.text))?;
        let found = self.path.query(json).first().cloned();
        let p = &self.text;
        match (&self.op, found) {
            (Op::Exists(true), Some(_)) | (Op::Exists(false), None) => Ok(()),
            (Op::Exists(true), None) => Err(format!("{p}: expected to exist, found nothing")),
            (Op::Exists(false), Some(v)) => Err(format!("{p}: expected nothing, found {v}")),
            (_, None) => Err(format!("{p}: matched nothing")),
            (Op::Equals(want), Some(got)) => {
                if numbers_equal(want, &got) || *want == got {
                    Ok(())
                } else {
                    Err(format!("{p}: expected {want}, got {got}"))
                }
            }
            (Op::Matches(re), Some(got)) => {
                let text = crate::capture::value_text(&got);
                if re.is_match(&text) {
                    Ok(())
                } else {
                    Err(format!(
                        "{p}: expected to match /{}/, got {}",
                        re.as_str(),
                        shown(&text)
                    ))
                }
            }
            (Op::Compare(op, bound), Some(got)) => {
                let n = got
                    .as_f64()
                    .ok_or_else(|| format!("{p}: expected a number to compare, got {got}"))?;
                let ok = match *op {
                    "gt" => n > *bound,
                    "gte" => n >= *bound,
                    "lt" => n < *bound,
                    _ => n <= *bound,
                };
                let symbol = match *op {
                    "gt" => ">",
                    "gte" => ">=",
                    "lt" => "<",
                    _ => "<=",
                };
                if ok {
                    Ok(())
                } else {
                    Err(format!("{p}: expected {symbol} {bound}, got {n}"))
                }
            }
        }
    }
}

/// 5 and 5.0 are the same number to a person writing a check.
fn numbers_equal(a: &Value, b: &Value) -> bool {
    matches!((a.as_f64(), b.as_f64()), (Some(x), Some(y)) if x == y)
}

//! Values captured from one step's response for use in the next: a JSON path, a header, or a
//! regular expression's first group over the body.

use hyper::header::HeaderName;
use serde::Deserialize;
use serde_json::Value;
use serde_json_path::JsonPath;

use crate::assert::Response;

/// As written in the config: a name and exactly one source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureConfig {
    pub name: String,
    pub json: Option<String>,
    pub header: Option<String>,
    pub regex: Option<String>,
}

#[derive(Debug, Clone)]
enum Source {
    Json { text: String, path: JsonPath },
    Header(HeaderName),
    Regex(regex::Regex),
}

#[derive(Debug, Clone)]
pub struct Capture {
    pub name: String,
    source: Source,
}

/// Turns a JSON value into the text a template inserts: strings as they are, others as JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl CaptureConfig {
    pub fn build(self) -> Result<Capture, String> {
        let sources = [
            self.json.is_some(),
            self.header.is_some(),
            self.regex.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Err(format!(
                "capture `{}` needs exactly one of `json`, `header` or `regex`",
                self.name
            ));
        }
        let source = if let Some(text) = self.json {
            let path = JsonPath::parse(&text).map_err(|e| {
                format!("capture `{}`: {text:?} is not a JSON path: {e}", self.name)
            })?;
            Source::Json { text, path }
        } else if let Some(h) = self.header {
            Source::Header(
                HeaderName::try_from(h.as_str())
                    .map_err(|_| format!("capture `{}`: {h:?} is not a header name", self.name))?,
            )
        } else {
            let r = self.regex.unwrap_or_default();
            let re = regex::Regex::new(&r).map_err(|e| {
                format!(
                    "capture `{}`: bad regex {r:?}: {}",
                    self.name,
                    crate::assert::one_line(&e.to_string())
                )
            })?;
            if re.captures_len() < 2 {
                return Err(format!(
                    "capture `{}`: the regex {r:?} needs a group `( )` around the value",
                    self.name
                ));
            }
            Source::Regex(re)
        };
        Ok(Capture {
            name: self.name,
            source,
        })
    }
}

impl Capture {
    /// The captured text, or why nothing was found.
    pub fn extract(&self, r: &Response<'_>) -> Result<String, String> {
        match &self.source {
            Source::Json { text, path } => {
                let json = r
                    .json()
                    .map_err(|e| format!("capture `{}`: the body is not JSON ({e})", self.name))?;
                path.query(json)
                    .first()
                    .map(value_text)
                    .ok_or_else(|| format!("capture `{}`: {text} matched nothing", self.name))
            }
            Source::Header(h) => r
                .headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .ok_or_else(|| format!("capture `{}`: no `{h}` header in the response", self.name)),
            Source::Regex(re) => {
                let body = String::from_utf8_lossy(r.body);
                re.captures(&body)
                    .and_then(|c| c.get(1))
                    .map(|m| m.as_str().to_owned())
                    .ok_or_else(|| {
                        format!(
                            "capture `{}`: /{}/ matched nothing in the body",
                            self.name,
                            re.as_str()
                        )
                    })
            }
        }
    }
}

//! `{{name}}` templates in step URLs, headers and bodies, filled from the check's variables and
//! from values captured by earlier steps. (Not `${...}`: that is the config file's environment
//! interpolation, done before any check is read.)

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Var(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

pub type Vars = HashMap<String, String>;

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("unclosed `{{{{` in {text:?}: write `{{{{name}}}}`"))?;
            let name = after[..close].trim();
            if !valid_name(name) {
                return Err(format!(
                    "`{{{{{name}}}}}` in {text:?}: a variable name is letters, digits, `_`, `.` or `-`"
                ));
            }
            parts.push(Part::Var(name.to_owned()));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    pub fn literal(text: &str) -> Self {
        Template {
            parts: vec![Part::Literal(text.to_owned())],
        }
    }

    /// The variables this template needs.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// The text with every variable filled; the error names a variable that has no value.
    pub fn render(&self, vars: &Vars) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Literal(s) => out.push_str(s),
                Part::Var(v) => out.push_str(
                    vars.get(v)
                        .ok_or_else(|| format!("no value for `{{{{{v}}}}}`"))?,
                ),
            }
        }
        Ok(out)
    }

    /// The text as written, with placeholders left in; for checking a URL's shape at load.
    pub fn sample(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Literal(s) => s.clone(),
                Part::Var(_) => "x".to_owned(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_reports_missing_variables() {
        let t = Template::parse("{{gateway}}/1.x/artists/{{ id }}/view").unwrap();
        assert_eq!(t.vars().collect::<Vec<_>>(), ["gateway", "id"]);
        let mut vars = Vars::new();
        vars.insert("gateway".into(), "http://h".into());
        assert_eq!(t.render(&vars).unwrap_err(), "no value for `{{id}}`");
        vars.insert("id".into(), "7".into());
        assert_eq!(t.render(&vars).unwrap(), "http://h/1.x/artists/7/view");
        assert!(Template::parse("a {{b").unwrap_err().contains("unclosed"));
        assert!(
            Template::parse("{{1x}}")
                .unwrap_err()
                .contains("variable name")
        );
        assert_eq!(
            Template::parse("plain")
                .unwrap()
                .render(&Vars::new())
                .unwrap(),
            "plain"
        );
    }
}

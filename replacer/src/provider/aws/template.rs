//! `url_template`: how an instance's healthcheck base URL is made from what EC2 says of it.

use url::Url;

use super::xml::Ec2Instance;

/// A checked `url_template`: literal text and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UrlTemplate(Vec<Part>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Part {
    Text(String),
    Field(Field),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    PrivateIp,
    PublicIp,
    PrivateDns,
    InstanceId,
}

impl Field {
    const ALL: [Field; 4] = [
        Field::PrivateIp,
        Field::PublicIp,
        Field::PrivateDns,
        Field::InstanceId,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Field::PrivateIp => "private_ip",
            Field::PublicIp => "public_ip",
            Field::PrivateDns => "private_dns",
            Field::InstanceId => "instance_id",
        }
    }

    pub(super) fn value(self, instance: &Ec2Instance) -> Option<&str> {
        match self {
            Field::PrivateIp => instance.private_ip.as_deref(),
            Field::PublicIp => instance.public_ip.as_deref(),
            Field::PrivateDns => instance.private_dns.as_deref(),
            Field::InstanceId => Some(instance.id.as_str()).filter(|id| !id.is_empty()),
        }
    }
}

impl UrlTemplate {
    pub(super) fn parse(template: &str) -> Result<Self, String> {
        let known = || {
            Field::ALL
                .iter()
                .map(|f| format!("{{{}}}", f.name()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("url_template {template:?}: a '{{' is never closed"))?;
            let name = &after[..close];
            let field = Field::ALL
                .into_iter()
                .find(|f| f.name() == name)
                .ok_or_else(|| {
                    format!(
                        "url_template {template:?}: unknown placeholder {{{name}}}; known: {}",
                        known()
                    )
                })?;
            parts.push(Part::Field(field));
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!(
                "url_template {template:?}: a '}}' without its '{{'"
            ));
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        if !parts.iter().any(|p| matches!(p, Part::Field(_))) {
            return Err(format!(
                "url_template {template:?} has no placeholder, so every instance would get \
                 the same URL; use one of {}",
                known()
            ));
        }
        let parsed = UrlTemplate(parts);
        // Filled with sample values, it must be an http(s) URL.
        let sample = Ec2Instance {
            id: "i-0123456789abcdef0".into(),
            private_ip: Some("10.0.0.1".into()),
            public_ip: Some("203.0.113.1".into()),
            private_dns: Some("ip-10-0-0-1.ec2.internal".into()),
            launch_us: None,
        };
        let filled = parsed
            .fill(&sample)
            .map_err(|f| format!("url_template: {f}"))?;
        match Url::parse(&filled) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(parsed),
            Ok(url) => Err(format!(
                "url_template {template:?}: scheme {:?}, expected http or https",
                url.scheme()
            )),
            Err(e) => Err(format!(
                "url_template {template:?} does not make a URL (e.g. {filled:?}: {e})"
            )),
        }
    }

    /// The instance's URL; `Err` names the placeholder the instance has no value for.
    pub(super) fn fill(&self, instance: &Ec2Instance) -> Result<String, &'static str> {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field(field) => out.push_str(field.value(instance).ok_or(field.name())?),
            }
        }
        Ok(out)
    }
}

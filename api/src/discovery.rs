//! Prometheus's HTTP service discovery (`http_sd_configs`): the document a component serves to
//! list scrape targets only it knows (agents in other regions, instances that a replacement
//! moved to a new port), so the shipped scrape config needs no addresses but its own.

use std::collections::BTreeMap;

use serde::Serialize;

/// One group of targets sharing labels, as `http_sd_configs` reads it.
#[derive(Debug, Serialize, PartialEq)]
pub struct TargetGroup {
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

impl TargetGroup {
    /// The group scraping `metrics_url` (scheme, host, port and path become the target and
    /// Prometheus's `__scheme__` and `__metrics_path__`), with `labels` added. `None` for a
    /// URL with no host.
    pub fn scraping(metrics_url: &str, labels: &[(&str, &str)]) -> Option<TargetGroup> {
        let url = url::Url::parse(metrics_url).ok()?;
        let port = url.port_or_known_default()?;
        let host = match url.host()? {
            url::Host::Ipv6(ip) => format!("[{ip}]"),
            other => other.to_string(),
        };
        let mut all = BTreeMap::from([
            ("__scheme__".to_owned(), url.scheme().to_owned()),
            ("__metrics_path__".to_owned(), url.path().to_owned()),
        ]);
        all.extend(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Some(TargetGroup {
            targets: vec![format!("{host}:{port}")],
            labels: all,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_becomes_target_scheme_and_path() {
        let g = TargetGroup::scraping("https://10.0.0.7:9464/probe/metrics", &[("agent", "eu-1")])
            .unwrap_or_else(|| panic!("a group"));
        assert_eq!(g.targets, ["10.0.0.7:9464"]);
        assert_eq!(g.labels["__scheme__"], "https");
        assert_eq!(g.labels["__metrics_path__"], "/probe/metrics");
        assert_eq!(g.labels["agent"], "eu-1");
    }

    #[test]
    fn default_ports_and_ipv6_hosts_are_spelled_out() {
        let g =
            TargetGroup::scraping("http://[::1]/metrics", &[]).unwrap_or_else(|| panic!("a group"));
        assert_eq!(g.targets, ["[::1]:80"]);
        assert!(TargetGroup::scraping("not a url", &[]).is_none());
    }
}

//! What the provider says when AWS refuses or cannot be read, and the pieces of a request:
//! never a credential, only the action, the endpoint's host and AWS's own code and message.

use url::Url;

use super::PROVIDER;
use crate::provider::ProviderError;

pub(super) fn failed(message: String) -> ProviderError {
    ProviderError::Failed {
        provider: PROVIDER,
        message,
    }
}

pub(super) fn not_found(id: &str) -> ProviderError {
    ProviderError::NotFound {
        provider: PROVIDER,
        id: id.to_owned(),
    }
}

pub(super) fn unreadable(action: &str, why: &str) -> ProviderError {
    failed(format!("{action}: unreadable answer: {why}"))
}

/// An error and its causes, `a: b: c` (reqwest's own message is only "error sending request").
pub(super) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut shown = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let text = e.to_string();
        if !shown.ends_with(&text) {
            shown.push_str(": ");
            shown.push_str(&text);
        }
        cause = e.source();
    }
    shown
}

pub(super) fn aws_url(url: &str) -> Result<Url, ProviderError> {
    Url::parse(url).map_err(|e| failed(format!("endpoint {url:?}: {e}")))
}

/// The endpoint as errors show it: scheme, host and port only.
pub(super) fn shown_endpoint(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{}://{host}:{port}", url.scheme()),
        (Some(host), None) => format!("{}://{host}", url.scheme()),
        _ => url.scheme().to_owned(),
    }
}

/// `prefix.1=a&prefix.2=b...`: a Query API list.
pub(super) fn member_list(prefix: &str, values: &[String]) -> Vec<(String, String)> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("{prefix}.{}", i + 1), v.clone()))
        .collect()
}

//! A generic JSON webhook: the [`Notification`] itself as the body, with headers a receiver
//! needs to drop repeats (`X-Lookout-Delivery`), route (`X-Lookout-Event`) and authenticate
//! (`X-Lookout-Signature`, an HMAC-SHA256 of the exact body bytes).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use hmac::{Hmac, Mac};
use lookout_conf::Dur;
use lookout_model::secret::Secret;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use sha2::Sha256;

use super::{Channel, Notification, Notifier, Retry, SendError, http};

/// `type: webhook`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    url: Secret,
    hmac_secret: Option<Secret>,
    #[serde(default)]
    headers: BTreeMap<String, Secret>,
    timeout: Option<Dur>,
}

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: Secret,
    /// Signs each body: `X-Lookout-Signature: sha256=<hex HMAC-SHA256 of the body>`.
    pub hmac_secret: Option<Secret>,
    pub headers: BTreeMap<String, Secret>,
    pub timeout: Duration,
}

impl Channel for WebhookConfig {
    type Raw = RawWebhook;

    fn from_raw(raw: RawWebhook) -> Result<Self, String> {
        Ok(WebhookConfig {
            url: raw.url,
            hmac_secret: raw.hmac_secret,
            headers: raw.headers,
            timeout: super::timeout_or_default(raw.timeout),
        })
    }

    fn build(&self) -> Result<Arc<dyn Notifier>, String> {
        Ok(Arc::new(WebhookNotifier::new(self.clone())?))
    }
}

pub const DELIVERY: &str = "x-lookout-delivery";
pub const EVENT: &str = "x-lookout-event";
pub const SIGNATURE: &str = "x-lookout-signature";

pub struct WebhookNotifier {
    client: reqwest::Client,
    url: url::Url,
    signer: Option<Hmac<Sha256>>,
    /// The configured extra headers, checked once; their values are marked sensitive.
    headers: HeaderMap,
    timeout: Duration,
    /// What no error message may show: the URL (it may hold a token), the HMAC secret and the
    /// configured header values.
    secrets: Vec<String>,
}

impl WebhookNotifier {
    pub fn new(config: WebhookConfig) -> Result<Self, String> {
        // The URL is a secret: a parse error says what is wrong, never what was given.
        let url = url::Url::parse(config.url.expose())
            .map_err(|e| format!("webhook: the url is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("webhook: the url must be http or https".to_string());
        }
        let signer = match &config.hmac_secret {
            Some(secret) if secret.is_empty() => {
                return Err("webhook: hmac_secret is empty".to_string());
            }
            Some(secret) => Some(
                Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
                    .map_err(|e| format!("webhook: hmac_secret: {e}"))?,
            ),
            None => None,
        };
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let (name, value) = header(name, value.expose())?;
            headers.insert(name, value);
        }
        let secrets = http::url_secrets(&url)
            .into_iter()
            .chain([config.url.expose().to_string()])
            .chain(config.hmac_secret.iter().map(|s| s.expose().to_string()))
            .chain(config.headers.values().map(|s| s.expose().to_string()))
            .filter(|s| !s.is_empty())
            .collect();
        Ok(WebhookNotifier {
            client: http::client(config.timeout)?,
            url,
            signer,
            headers,
            timeout: config.timeout,
            secrets,
        })
    }

    /// The body and the headers of one delivery, built without IO.
    pub fn request(&self, n: &Notification) -> Result<(Vec<u8>, HeaderMap), SendError> {
        let body = serde_json::to_vec(n)
            .map_err(|e| SendError::new(Retry::Never, format!("cannot encode: {e}")))?;
        let mut headers = self.headers.clone();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(EVENT, HeaderValue::from_static(n.kind.as_str()));
        let delivery = HeaderValue::from_str(&n.id).map_err(|_| {
            SendError::new(Retry::Never, "the notification id is not a header value")
        })?;
        headers.insert(DELIVERY, delivery);
        if let Some(signer) = &self.signer {
            headers.insert(SIGNATURE, signature(signer.clone(), &body));
        }
        Ok((body, headers))
    }
}

impl Notifier for WebhookNotifier {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn send<'a>(
        &'a self,
        _target: Option<&'a str>,
        n: &'a Notification,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let (body, headers) = self.request(n)?;
            let request = self
                .client
                .post(self.url.clone())
                .headers(headers)
                .body(body);
            let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
            http::deliver(request, self.timeout, &secrets).await
        })
    }
}

/// `sha256=<lowercase hex>`, as GitHub signs its webhooks, so receivers can reuse a verifier.
fn signature(mut mac: Hmac<Sha256>, body: &[u8]) -> HeaderValue {
    mac.update(body);
    let hex = hex::encode(mac.finalize().into_bytes());
    let mut value = HeaderValue::from_maybe_shared(format!("sha256={hex}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""));
    value.set_sensitive(true);
    value
}

/// One configured header, refused with its name (never its value) when invalid or when it
/// would replace one of Lookout's own.
fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let parsed = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("webhook: header {name:?} is not a valid header name"))?;
    let reserved = [CONTENT_TYPE.as_str(), DELIVERY, EVENT, SIGNATURE];
    if reserved.contains(&parsed.as_str()) {
        return Err(format!("webhook: header {name:?} is set by Lookout"));
    }
    let mut value = HeaderValue::from_str(value).map_err(|_| {
        format!("webhook: the value of header {name:?} is not a valid header value")
    })?;
    value.set_sensitive(true);
    Ok((parsed, value))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use lookout_model::secret::Secret;

    use super::*;
    use crate::notify::text::tests::sample;

    fn config() -> WebhookConfig {
        WebhookConfig {
            url: Secret::new("https://hooks.example.com/in/s3cr3t-token"),
            hmac_secret: Some(Secret::new("key")),
            headers: BTreeMap::from([("Authorization".into(), Secret::new("Bearer t0k"))]),
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn the_body_is_the_notification_and_the_signature_is_its_hmac() {
        let notifier = WebhookNotifier::new(config()).unwrap();
        let n = sample();
        let (body, headers) = notifier.request(&n).unwrap();
        let back: Notification = serde_json::from_slice(&body).unwrap();
        assert_eq!(back, n);
        assert_eq!(headers[DELIVERY], "n-1");
        assert_eq!(headers[EVENT], "trigger");
        assert_eq!(headers[CONTENT_TYPE], "application/json");
        assert_eq!(headers["authorization"], "Bearer t0k");
        // RFC 4231's second test case: HMAC-SHA256("Jefe", "what do ya want for nothing?").
        let mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        assert_eq!(
            signature(mac, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn bad_configs_are_refused_without_showing_secrets() {
        let cases = [
            (
                WebhookConfig {
                    url: Secret::new("not a url s3cr3t"),
                    ..config()
                },
                "webhook: the url is not a URL: relative URL without a base",
            ),
            (
                WebhookConfig {
                    url: Secret::new("ftp://example.com/s3cr3t"),
                    ..config()
                },
                "webhook: the url must be http or https",
            ),
            (
                WebhookConfig {
                    headers: BTreeMap::from([("X-Lookout-Event".into(), Secret::new("x"))]),
                    ..config()
                },
                "webhook: header \"X-Lookout-Event\" is set by Lookout",
            ),
            (
                WebhookConfig {
                    headers: BTreeMap::from([("X-Key".into(), Secret::new("s3cr3t\n"))]),
                    ..config()
                },
                "webhook: the value of header \"X-Key\" is not a valid header value",
            ),
            (
                WebhookConfig {
                    hmac_secret: Some(Secret::new("")),
                    ..config()
                },
                "webhook: hmac_secret is empty",
            ),
        ];
        for (config, want) in cases {
            let err = WebhookNotifier::new(config).err();
            assert_eq!(err.as_deref(), Some(want));
        }
    }
}

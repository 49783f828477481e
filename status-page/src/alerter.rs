//! Tells the alerter about scheduled maintenance, so that it holds pages for the components'
//! checks while the work goes on: a silence of kind `maintenance` matching `about:CHECK`.

use std::time::Duration;

use lookout_model::secret::Secret;
use url::Url;

use crate::model::Maintenance;
use crate::text;

const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
#[error("alerter: {0}")]
pub struct AlerterError(String);

pub struct AlerterClient {
    base: Url,
    token: Secret,
    http: reqwest::Client,
}

#[derive(serde::Deserialize)]
struct Created {
    id: String,
}

impl AlerterClient {
    pub fn new(base: Url, token: Secret) -> Self {
        AlerterClient {
            base,
            token,
            http: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .build()
                .unwrap_or_default(),
        }
    }

    /// Asks for pages on `checks` to be held for the window; the silence's id.
    pub async fn hold(&self, m: &Maintenance, checks: &[String]) -> Result<String, AlerterError> {
        let url = self
            .base
            .join("api/silences")
            .map_err(|e| AlerterError(e.to_string()))?;
        let body = serde_json::json!({
            "matchers": checks.iter().map(|c| format!("about:{c}")).collect::<Vec<_>>(),
            "starts": text::rfc3339(m.starts_us),
            "ends": text::rfc3339(m.ends_us),
            "created_by": "status-page",
            "comment": format!("scheduled maintenance: {}", m.name),
            "kind": "maintenance",
        });
        let response = self
            .http
            .post(url)
            .bearer_auth(self.token.expose())
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                AlerterError(if e.is_timeout() {
                    "timed out".into()
                } else {
                    "cannot reach it".into()
                })
            })?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(AlerterError(format!(
                "answered {status}: {}",
                text.chars().take(300).collect::<String>()
            )));
        }
        let created: Created = response
            .json()
            .await
            .map_err(|e| AlerterError(format!("unreadable answer: {e}")))?;
        Ok(created.id)
    }

    /// Lifts a hold when its maintenance is cancelled. A silence already gone is fine.
    pub async fn release(&self, silence_id: &str) -> Result<(), AlerterError> {
        let url = self
            .base
            .join(&format!("api/silences/{silence_id}"))
            .map_err(|e| AlerterError(e.to_string()))?;
        let response = self
            .http
            .delete(url)
            .bearer_auth(self.token.expose())
            .send()
            .await
            .map_err(|_| AlerterError("cannot reach it".into()))?;
        let status = response.status();
        if status.is_success() || status == reqwest::StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(AlerterError(format!("answered {status}")))
        }
    }
}

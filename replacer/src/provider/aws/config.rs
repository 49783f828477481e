//! `type: aws` as written, and its checks: each reported at its key, and the provider built
//! once so that `lookout check-config` finds what [`AwsProvider::new`] refuses.

use std::sync::Arc;
use std::time::Duration;

use lookout_conf::{Dur, Located, Report};
use lookout_model::secret::Secret;
use serde::Deserialize;

use super::{AwsAction, AwsProvider, AwsSettings};
use crate::provider::{Platform, Provider, ProviderError, ProviderKind};

/// How long one call to AWS may take when the config does not say.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAws {
    region: String,
    /// One endpoint for Auto Scaling and EC2 (moto, LocalStack); AWS itself when absent.
    endpoint: Option<String>,
    access_key_id: String,
    secret_access_key: Secret,
    session_token: Option<Secret>,
    groups: Vec<String>,
    /// `mark_unhealthy` (default), `terminate` or `terminate_and_shrink`.
    action: Option<String>,
    /// e.g. `http://{private_ip}:8080`.
    url_template: String,
    timeout: Option<Dur>,
}

/// Boxed: the settings are large beside the other kinds, and read once at start.
#[derive(Debug, Clone)]
pub struct AwsConfig(pub Box<AwsSettings>);

impl ProviderKind for AwsConfig {
    type Raw = RawAws;

    fn from_raw(raw: RawAws, loc: Option<Located>, report: &mut Report) -> Self {
        let action = match raw.action.as_deref().unwrap_or("mark_unhealthy") {
            "mark_unhealthy" => AwsAction::MarkUnhealthy,
            "terminate" => AwsAction::Terminate {
                decrement_desired: false,
            },
            "terminate_and_shrink" => AwsAction::Terminate {
                decrement_desired: true,
            },
            other => {
                report(
                    loc,
                    "replacer.provider.action",
                    format!(
                        "{other:?} is not one of mark_unhealthy, terminate, terminate_and_shrink"
                    ),
                );
                AwsAction::MarkUnhealthy
            }
        };
        let endpoint = raw.endpoint.and_then(|e| match url::Url::parse(&e) {
            Ok(u) => Some(u),
            Err(err) => {
                report(
                    loc,
                    "replacer.provider.endpoint",
                    format!("{e:?} is not a URL: {err}"),
                );
                None
            }
        });
        let settings = AwsSettings {
            endpoint,
            region: raw.region,
            access_key_id: raw.access_key_id,
            secret_access_key: raw.secret_access_key,
            session_token: raw.session_token,
            groups: raw.groups,
            action,
            url_template: raw.url_template,
            timeout: raw.timeout.map_or(DEFAULT_TIMEOUT, |t| t.0),
        };
        if let Err(e) = AwsProvider::new(settings.clone()) {
            report(loc, "replacer.provider", e.to_string());
        }
        AwsConfig(Box::new(settings))
    }

    fn needs_platform(&self) -> bool {
        false
    }

    fn build(&self, _: &Platform) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(Arc::new(AwsProvider::new((*self.0).clone())?))
    }
}

//! Where instances come from and how one is replaced: one implementation per file, each
//! chosen by `replacer.provider.type` in the config (one match arm in the binary).
//!
//! - [`local`]: the platform's instances as child processes of `lookout up`; a replacement is
//!   started, waited for, put into the gateway's pool, and only then is the old one taken out
//!   and stopped.
//! - [`aws`]: EC2 Auto Scaling: the instance is marked unhealthy (`SetInstanceHealth`) so that
//!   its group replaces it, or terminated in its group.

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::instance::Instance;

pub mod aws;
pub mod local;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// The provider refused or failed; the message says what, never a credential.
    #[error("{provider}: {message}")]
    Failed {
        provider: &'static str,
        message: String,
    },
    #[error("{provider}: no answer within {}", humantime::format_duration(*.timeout))]
    Timeout {
        provider: &'static str,
        timeout: Duration,
    },
    #[error("{provider}: no instance {id:?}")]
    NotFound { provider: &'static str, id: String },
}

/// What a replacement did.
#[derive(Debug, Clone, PartialEq)]
pub enum Replaced {
    /// A new instance serves in the old one's place, and the old one is stopped.
    New(Instance),
    /// Handed to the platform, which replaces it itself (an Auto Scaling group): `detail` says
    /// how, e.g. "marked Unhealthy in group web-asg".
    Handed { detail: String },
}

pub trait Provider: Send + Sync {
    /// `local`, `aws`.
    fn kind(&self) -> &'static str;

    /// Every instance the provider runs or sees now.
    fn instances(&self) -> BoxFuture<'_, Result<Vec<Instance>, ProviderError>>;

    /// Whether the instance's process is alive, where the provider can see the host (a local
    /// child process); `None` where it cannot tell. A dead process is replaced at once, without
    /// waiting for failed healthchecks.
    fn alive(&self, _instance: &Instance) -> Option<bool> {
        None
    }

    /// Replaces the instance, within `deadline`. On failure the provider leaves the old
    /// instance in place where it can (a new one that never became healthy is stopped).
    fn replace<'a>(
        &'a self,
        instance: &'a Instance,
        deadline: Duration,
    ) -> BoxFuture<'a, Result<Replaced, ProviderError>>;
}

//! Where instances come from and how one is replaced: one implementation per file, each
//! chosen by `replacer.provider.type` in the config. A kind is its file (its config as written,
//! its checks, the provider it builds) and one line in `kinds!` below.
//!
//! - [`local`]: the platform's instances as child processes of `lookout up`; a replacement is
//!   started, waited for, put into the gateway's pool, and only then is the old one taken out
//!   and stopped.
//! - [`aws`]: EC2 Auto Scaling: the instance is marked unhealthy (`SetInstanceHealth`) so that
//!   its group replaces it, or terminated in its group.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use lookout_conf::{Located, Report};
use serde::Deserialize;

use crate::instance::Instance;

/// What a provider may be handed by the program that runs it: `lookout up` hands the local
/// provider its own processes and gateway; `lookout replacer` has neither.
#[derive(Clone, Default)]
pub struct Platform {
    pub local: Option<(Arc<dyn local::Launcher>, local::Gateway)>,
}

/// One kind of provider, implemented by its config type in the kind's own file.
pub trait ProviderKind: Sized {
    /// The keys under `replacer.provider` besides `type`, as written.
    type Raw: serde::de::DeserializeOwned + std::fmt::Debug;
    /// Checks the keys as written, reporting each problem under `replacer.provider.KEY`.
    fn from_raw(raw: Self::Raw, loc: Option<Located>, report: &mut Report) -> Self;
    /// Whether it replaces the processes of `lookout up` itself (and so runs only there).
    fn needs_platform(&self) -> bool;
    fn build(&self, platform: &Platform) -> Result<Arc<dyn Provider>, ProviderError>;
}

macro_rules! kinds {
    ($($variant:ident($config:ty),)*) => {
        /// `replacer.provider` as written: `type:` names the kind. Read once at start: the
        /// size of a variant does not matter.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Deserialize)]
        #[serde(tag = "type", rename_all = "lowercase")]
        pub enum RawProvider {
            $($variant(<$config as ProviderKind>::Raw),)*
        }

        #[derive(Debug, Clone)]
        pub enum ProviderConfig {
            $($variant($config),)*
        }

        impl ProviderConfig {
            pub fn from_raw(raw: RawProvider, loc: Option<Located>, report: &mut Report) -> Self {
                match raw {
                    $(RawProvider::$variant(r) => {
                        ProviderConfig::$variant(<$config>::from_raw(r, loc, report))
                    })*
                }
            }

            /// Whether it replaces `lookout up`'s own processes (and so runs only there).
            pub fn needs_platform(&self) -> bool {
                match self {
                    $(ProviderConfig::$variant(c) => c.needs_platform(),)*
                }
            }

            pub fn build(&self, platform: &Platform) -> Result<Arc<dyn Provider>, ProviderError> {
                match self {
                    $(ProviderConfig::$variant(c) => c.build(platform),)*
                }
            }
        }
    };
}

kinds! {
    Local(local::LocalConfig),
    Aws(aws::AwsConfig),
}

/// With no `provider:`, the platform's own processes.
impl Default for ProviderConfig {
    fn default() -> Self {
        ProviderConfig::Local(local::LocalConfig)
    }
}

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

//! The replicated log every clustered component reads: `cluster:` in the config, the NATS
//! connection it makes, the JetStream stream (publish, then wait for the stream's
//! acknowledgement; read in order from a position), and the claims that let exactly one of
//! several replicas act. `lookout up` without `cluster:` uses none of it.

mod changes;
mod claims;
pub mod config;
mod log;

pub use changes::{Applied, ChangeError, Changes, wait_applied};
pub use claims::{Claim, Claims, claim_key};
pub use config::{ClusterConfig, TlsFiles, WhenBehind};
pub use log::{
    ClusterError, Entry, Log, Outgoing, Published, Reader, Unacknowledged, subject_token,
};

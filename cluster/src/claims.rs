//! Claims: which one of several replicas does a thing once (sends a notification). A claim is
//! a key created in a JetStream KV bucket (replicated as the stream is): creating is a
//! compare-and-set, so exactly one replica wins. The winner acts, then marks the key done. A
//! claim not done within the timeout (its replica died or froze) can be taken over, by an
//! update that names the revision seen; and before acting, a claimant checks that the key is
//! still at the revision it wrote (fencing: a replica paused past the timeout has lost it).

use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;

use crate::log::{ClusterError, Log};

/// A claim's value: `claimed by OWNER`, so people (and tests) can see who holds it.
const CLAIMED: &str = "claimed by ";
const DONE: &[u8] = b"done";
/// How long a done claim is remembered: longer than any retry of the same notification.
const REMEMBER: Duration = Duration::from_secs(7 * 24 * 3600);

/// The header that marks a KV entry as deleted or purged (the KV's ADR-8).
const KV_OPERATION: &str = "KV-Operation";

/// A key's live value, at its revision (the stream's sequence), stamped by the server.
struct Entry {
    revision: u64,
    created_us: i64,
    value: Bytes,
}

/// What a claim attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This replica holds it, at this revision: act, then [`Claims::done`].
    Won(u64),
    /// Another replica holds it and is within its time.
    Held,
    /// Somebody already did it.
    Done,
}

/// Whether a refused create says the key was there already: the server's answer is one of the
/// two "wrong last sequence" codes, found anywhere down the error's sources.
fn lost_race(e: &(dyn std::error::Error + 'static)) -> bool {
    use async_nats::jetstream::ErrorCode;
    let mut cause = Some(e);
    while let Some(err) = cause {
        if let Some(js) = err.downcast_ref::<async_nats::jetstream::Error>() {
            let code = js.error_code();
            if code == ErrorCode::STREAM_WRONG_LAST_SEQUENCE
                || code == ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT
            {
                return true;
            }
        }
        cause = err.source();
    }
    false
}

#[derive(Clone)]
pub struct Claims {
    kv: kv::Store,
    timeout: Duration,
    /// Who this replica is, in its claims.
    owner: String,
}

impl std::fmt::Debug for Claims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claims")
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn error(bucket: &str, e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Stream {
        stream: bucket.to_owned(),
        detail: e.to_string(),
    }
}

/// A KV key for any text: KV keys take letters, digits and `-_=./` only.
pub fn claim_key(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| {
            let mut out = String::with_capacity(p.len());
            for b in p.bytes() {
                if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                    out.push(char::from(b));
                } else {
                    out.push_str(&format!("={b:02X}"));
                }
            }
            out
        })
        .collect::<Vec<_>>()
        .join(".")
}

impl Claims {
    /// The bucket `{name}` beside the log (created when missing), with `replicas` copies.
    pub async fn open(
        log: &Log,
        name: &str,
        replicas: usize,
        timeout: Duration,
        owner: &str,
    ) -> Result<Claims, ClusterError> {
        let js = log.jetstream();
        let kv = match js.get_key_value(name).await {
            Ok(kv) => kv,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: name.to_owned(),
                    history: 1,
                    max_age: REMEMBER,
                    num_replicas: replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| error(name, e))?,
        };
        Ok(Claims {
            kv,
            timeout,
            owner: owner.to_owned(),
        })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn mine(&self) -> Bytes {
        Bytes::from(format!("{CLAIMED}{}", self.owner))
    }

    /// `key`'s live entry, as the stream's leader has it (`None`: never made, released or
    /// expired). Not the KV's own read: that is a direct get, which any replica may answer, and
    /// one that has not caught up yet shows an older entry or none, on which a claimant would
    /// wrongly decide that it lost, or that its claim had been taken over.
    async fn latest(&self, key: &str) -> Result<Option<Entry>, ClusterError> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind;
        let subject = format!("{}{key}", self.kv.prefix);
        let message = match self
            .kv
            .stream
            .get_last_raw_message_by_subject(&subject)
            .await
        {
            Ok(m) => m,
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(None),
            Err(e) => return Err(error(key, e)),
        };
        // Releases and expiry leave a marker in the stream; a put has no operation header.
        let removed = message
            .headers
            .get(KV_OPERATION)
            .is_some_and(|op| op.as_str() != "PUT")
            || message
                .headers
                .get(async_nats::header::NATS_MARKER_REASON)
                .is_some();
        if removed {
            return Ok(None);
        }
        Ok(Some(Entry {
            revision: message.sequence,
            created_us: i64::try_from(message.time.unix_timestamp_nanos() / 1_000)
                .unwrap_or(i64::MAX),
            value: message.payload,
        }))
    }

    /// Who holds `key` now (`None`: nobody, or done).
    pub async fn holder(&self, key: &str) -> Result<Option<String>, ClusterError> {
        let entry = self.latest(key).await?;
        Ok(entry.and_then(|e| {
            std::str::from_utf8(&e.value)
                .ok()
                .and_then(|v| v.strip_prefix(CLAIMED))
                .map(str::to_owned)
        }))
    }

    /// Every key held or done.
    pub async fn keys(&self) -> Result<Vec<String>, ClusterError> {
        use futures_util::TryStreamExt;
        self.kv
            .keys()
            .await
            .map_err(|e| error("keys", e))?
            .try_collect()
            .await
            .map_err(|e| error("keys", e))
    }

    /// Tries to claim `key` at `now_us` (this replica's clock, against the time the KV took
    /// the claim: the replicas' clocks must agree to well within the timeout).
    pub async fn claim(&self, key: &str, now_us: i64) -> Result<Claim, ClusterError> {
        let created = match self.kv.create(key, self.mine()).await {
            Ok(revision) => return Ok(Claim::Won(revision)),
            Err(e) => e,
        };
        // A lost race does not always come back as AlreadyExists (the client maps only one of
        // the server's two "wrong last sequence" codes to it): whoever holds the key now decides.
        let Some(entry) = self.latest(key).await? else {
            if created.kind() == kv::CreateErrorKind::AlreadyExists || lost_race(&created) {
                // The key was there, and is gone now (expired, or released between the two
                // calls): look again next time.
                return Ok(Claim::Held);
            }
            return Err(error(key, created));
        };
        if entry.value.as_ref() == DONE {
            return Ok(Claim::Done);
        }
        let claimed_us = entry.created_us;
        let timeout_us = i64::try_from(self.timeout.as_micros()).unwrap_or(i64::MAX);
        if now_us.saturating_sub(claimed_us) < timeout_us {
            return Ok(Claim::Held);
        }
        // Taken over: only one of the replicas that saw this revision can update it.
        match self.kv.update(key, self.mine(), entry.revision).await {
            Ok(revision) => Ok(Claim::Won(revision)),
            Err(_) => Ok(Claim::Held),
        }
    }

    /// Whether this replica's claim (`revision`) still stands: checked right before acting.
    pub async fn still_mine(&self, key: &str, revision: u64) -> Result<bool, ClusterError> {
        Ok(self
            .latest(key)
            .await?
            .is_some_and(|e| e.revision == revision && e.value == self.mine()))
    }

    /// Marks the claimed thing done; refused when the claim was taken over meanwhile.
    pub async fn done(&self, key: &str, revision: u64) -> Result<bool, ClusterError> {
        Ok(self
            .kv
            .update(key, Bytes::from_static(DONE), revision)
            .await
            .is_ok())
    }

    /// Gives a claim up (the thing failed and will be tried again, by whichever replica).
    pub async fn release(&self, key: &str, revision: u64) -> Result<(), ClusterError> {
        self.kv
            .delete_expect_revision(key, Some(revision))
            .await
            .map_err(|e| error(key, e))
    }
}

#[cfg(test)]
mod tests {
    use super::claim_key;

    /// The chain the client builds for a create refused with the server's code `code`.
    fn refused_create(code: u16) -> async_nats::jetstream::kv::CreateError {
        use async_nats::jetstream::context::{PublishError, PublishErrorKind};
        use async_nats::jetstream::kv::{
            CreateError, CreateErrorKind, UpdateError, UpdateErrorKind,
        };
        let answer: async_nats::jetstream::Error = serde_saphyr::from_str(&format!(
            "{{code: 400, err_code: {code}, description: wrong last sequence}}"
        ))
        .unwrap();
        let publish = PublishError::with_source(PublishErrorKind::Other, answer);
        let update = UpdateError::with_source(UpdateErrorKind::Other, publish);
        CreateError::with_source(CreateErrorKind::Other, update)
    }

    #[test]
    fn either_wrong_last_sequence_code_is_a_lost_race_and_nothing_else_is() {
        assert!(super::lost_race(&refused_create(10071)));
        assert!(super::lost_race(&refused_create(10164)));
        assert!(!super::lost_race(&refused_create(10077)));
        assert!(!super::lost_race(
            &async_nats::jetstream::kv::CreateError::new(
                async_nats::jetstream::kv::CreateErrorKind::Publish
            )
        ));
    }

    #[test]
    fn claim_keys_take_any_text() {
        assert_eq!(
            claim_key(&["pager:ops", "g@1/2", "trigger"]),
            "pager=3Aops.g=401=2F2.trigger"
        );
    }
}

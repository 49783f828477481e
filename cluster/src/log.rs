//! The replicated log: one JetStream stream, replicated on `replicas` NATS nodes. Writers
//! publish and wait for the stream's acknowledgement (a quorum of nodes holds the message);
//! every replica reads the whole stream in order, from the position it applied last.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};

use crate::config::{Auth, ClusterConfig};

/// How long the log's messages are kept when the caller gives no retention.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// How long to keep trying to reach a usable stream (a fresh cluster elects its leaders first).
const STREAM_READY: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The servers refused the credentials: retrying cannot help.
    #[error(
        "NATS at {servers} refused the credentials ({detail}); check cluster.user/password or cluster.nkey_seed"
    )]
    Credentials { servers: String, detail: String },
    #[error("cannot reach NATS at {servers}: {detail}")]
    Unreachable { servers: String, detail: String },
    #[error("the stream {stream} is not usable: {detail}")]
    Stream { stream: String, detail: String },
    #[error("reading the stream {stream}: {detail}")]
    Read { stream: String, detail: String },
}

/// Why a publish was not acknowledged: nothing was promised, the writer may retry.
#[derive(Debug, thiserror::Error)]
#[error("the log did not acknowledge: {0}")]
pub struct Unacknowledged(pub String);

/// Where a message landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub position: u64,
    /// The log held a message of this id already (a retry); `position` is the first one's.
    pub duplicate: bool,
}

/// One message read back.
#[derive(Debug, Clone)]
pub struct Entry {
    pub position: u64,
    pub subject: String,
    pub payload: Bytes,
    /// How many messages the log holds after this one, as the server counted on delivery.
    pub behind: u64,
    /// When the log took it, in microseconds since the epoch.
    pub published_us: i64,
}

/// A message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub subject: String,
    /// The log keeps one message per id within its duplicate window (two minutes).
    pub id: String,
    pub payload: Bytes,
}

#[derive(Clone)]
pub struct Log {
    client: async_nats::Client,
    js: jetstream::Context,
    stream: String,
    servers: String,
    publish_timeout: Duration,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("stream", &self.stream)
            .field("servers", &self.servers)
            .finish()
    }
}

fn options(cfg: &ClusterConfig, name: &str) -> async_nats::ConnectOptions {
    let mut o = match &cfg.auth {
        Auth::None => async_nats::ConnectOptions::new(),
        Auth::UserPassword { user, password } => async_nats::ConnectOptions::new()
            .user_and_password(user.clone(), password.expose().to_owned()),
        Auth::Nkey { seed } => async_nats::ConnectOptions::new().nkey(seed.expose().to_owned()),
    };
    if let Some(tls) = &cfg.tls {
        o = o.require_tls(true);
        if let Some(ca) = &tls.ca {
            o = o.add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
            o = o.add_client_certificate(cert.clone(), key.clone());
        }
    }
    o.name(name)
        .connection_timeout(Duration::from_secs(3))
        .request_timeout(Some(cfg.publish_timeout))
        // Once connected, a lost node is reconnected to for ever (another node answers
        // meanwhile); only the first connection is a question for the caller.
        .max_reconnects(None)
}

impl Log {
    /// Connects to any of the servers and makes sure the stream is there, kept for
    /// `retention`. A server that is down is retried until `patience` is over; refused
    /// credentials are an error at once.
    pub async fn connect(
        cfg: &ClusterConfig,
        name: &str,
        retention: Duration,
        patience: Duration,
    ) -> Result<Log, ClusterError> {
        let servers = cfg.servers.join(", ");
        let deadline = tokio::time::Instant::now() + patience;
        let mut backoff = Duration::from_millis(200);
        let client = loop {
            match options(cfg, name).connect(cfg.servers.as_slice()).await {
                Ok(c) => break c,
                Err(e) => {
                    use async_nats::ConnectErrorKind as K;
                    let detail = e.to_string();
                    if matches!(e.kind(), K::AuthorizationViolation | K::Authentication) {
                        return Err(ClusterError::Credentials { servers, detail });
                    }
                    if tokio::time::Instant::now() + backoff > deadline {
                        return Err(ClusterError::Unreachable { servers, detail });
                    }
                    tracing::warn!(%servers, error = %detail, "NATS not reachable yet; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        };
        let js = jetstream::new(client.clone());
        let log = Log {
            client,
            js,
            stream: cfg.stream.clone(),
            servers,
            publish_timeout: cfg.publish_timeout,
        };
        log.ensure_stream(cfg.replicas, retention, deadline).await?;
        Ok(log)
    }

    async fn ensure_stream(
        &self,
        replicas: usize,
        retention: Duration,
        deadline: tokio::time::Instant,
    ) -> Result<(), ClusterError> {
        let config = stream::Config {
            name: self.stream.clone(),
            subjects: vec![format!("{}.>", self.stream)],
            num_replicas: replicas,
            max_age: retention,
            duplicate_window: DUPLICATE_WINDOW,
            storage: stream::StorageType::File,
            ..Default::default()
        };
        let deadline = deadline.max(tokio::time::Instant::now() + STREAM_READY);
        loop {
            match self.js.get_or_create_stream(config.clone()).await {
                Ok(s) => {
                    let held = &s.cached_info().config;
                    if held.num_replicas != replicas || held.max_age != retention {
                        tracing::warn!(
                            stream = %self.stream,
                            replicas = held.num_replicas,
                            retention_s = held.max_age.as_secs(),
                            "the stream exists with other settings than configured; keeping them"
                        );
                    }
                    return Ok(());
                }
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::info!(stream = %self.stream, error = %e, "stream not ready yet (the cluster may still be electing)");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => {
                    return Err(ClusterError::Stream {
                        stream: self.stream.clone(),
                        detail: e.to_string(),
                    });
                }
            }
        }
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The subject of a kind of message about `key` (a check, say): `STREAM.kind.key`, so
    /// that a later partitioning can split the stream by key.
    pub fn subject(&self, kind: &str, key: &str) -> String {
        format!("{}.{kind}.{}", self.stream, subject_token(key))
    }

    /// Publishes every message, all in flight at once, and answers when the log has
    /// acknowledged each. Any one not acknowledged fails the whole (the caller retries the
    /// whole; the ids make the retry harmless).
    pub async fn publish_all(
        &self,
        messages: Vec<Outgoing>,
    ) -> Result<Vec<Published>, Unacknowledged> {
        let mut pending = Vec::with_capacity(messages.len());
        for m in messages {
            let publish = jetstream::message::PublishMessage::build()
                .payload(m.payload)
                .message_id(m.id);
            let ack = self
                .js
                .send_publish(m.subject, publish)
                .await
                .map_err(|e| Unacknowledged(e.to_string()))?;
            pending.push(ack);
        }
        let mut published = Vec::with_capacity(pending.len());
        for ack in pending {
            let ack = tokio::time::timeout(self.publish_timeout, ack.into_future())
                .await
                .map_err(|_| {
                    Unacknowledged(format!(
                        "no acknowledgement within {:?} (no quorum of the stream's nodes?)",
                        self.publish_timeout
                    ))
                })?
                .map_err(|e| Unacknowledged(e.to_string()))?;
            published.push(Published {
                position: ack.sequence,
                duplicate: ack.duplicate,
            });
        }
        Ok(published)
    }

    /// Reads the log in order from `position` on (1 is the start), for as long as the
    /// returned reader is read.
    pub async fn read_from(&self, position: u64) -> Result<Reader, ClusterError> {
        self.read_kinds_from(position, &[]).await
    }

    /// [`read_from`](Self::read_from), only the messages of these kinds (`subject(kind, ..)`);
    /// every kind when `kinds` is empty. Each component reads its own kinds: the server
    /// filters, so a collector never sees the alerter's changes, nor counts them unreadable.
    pub async fn read_kinds_from(
        &self,
        position: u64,
        kinds: &[&str],
    ) -> Result<Reader, ClusterError> {
        let read_error = |e: String| ClusterError::Read {
            stream: self.stream.clone(),
            detail: e,
        };
        let stream = self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(|e| read_error(e.to_string()))?;
        let deliver_policy = if position <= 1 {
            consumer::DeliverPolicy::All
        } else {
            consumer::DeliverPolicy::ByStartSequence {
                start_sequence: position,
            }
        };
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy,
                filter_subjects: kinds
                    .iter()
                    .map(|k| format!("{}.{}.>", self.stream, subject_token(k)))
                    .collect(),
                ..Default::default()
            })
            .await
            .map_err(|e| read_error(e.to_string()))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|e| read_error(e.to_string()))?;
        Ok(Reader {
            messages,
            stream: self.stream.clone(),
            next: position.max(1),
        })
    }

    /// The position of the log's last message (0: empty).
    pub async fn last_position(&self) -> Result<u64, ClusterError> {
        let info = self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(|e| ClusterError::Read {
                stream: self.stream.clone(),
                detail: e.to_string(),
            })?
            .get_info()
            .await
            .map_err(|e| ClusterError::Read {
                stream: self.stream.clone(),
                detail: e.to_string(),
            })?;
        Ok(info.state.last_sequence)
    }

    pub(crate) fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// How long a publish waits for its acknowledgement.
    pub fn publish_timeout(&self) -> Duration {
        self.publish_timeout
    }

    /// Whether the connection to NATS is up now.
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}

/// Reads the log in order; recreates its consumer by itself after a lost node or a gap.
pub struct Reader {
    messages: consumer::pull::Ordered,
    stream: String,
    /// The position expected next. An ordered consumer that recreates itself before it has
    /// delivered anything starts again from the log's start: what came before is skipped.
    next: u64,
}

impl Reader {
    fn entry(&self, m: jetstream::Message) -> Result<Entry, ClusterError> {
        let info = m.info().map_err(|e| ClusterError::Read {
            stream: self.stream.clone(),
            detail: format!("a message without its position: {e}"),
        })?;
        Ok(Entry {
            position: info.stream_sequence,
            subject: m.subject.to_string(),
            behind: info.pending,
            published_us: i64::try_from(info.published.unix_timestamp_nanos() / 1_000)
                .unwrap_or(i64::MAX),
            payload: m.message.payload.clone(),
        })
    }

    /// The next message, waiting for one; then whatever else has already arrived, up to
    /// `max` in all, so that the caller can apply them in one commit.
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<Entry>, ClusterError> {
        let mut out = Vec::new();
        let first = self.messages.next().await;
        let mut next = first;
        loop {
            match next {
                None => {
                    return Err(ClusterError::Read {
                        stream: self.stream.clone(),
                        detail: "the consumer ended".into(),
                    });
                }
                Some(Err(e)) => {
                    if out.is_empty() {
                        return Err(ClusterError::Read {
                            stream: self.stream.clone(),
                            detail: e.to_string(),
                        });
                    }
                    return Ok(out);
                }
                Some(Ok(m)) => {
                    let entry = self.entry(m)?;
                    if entry.position >= self.next {
                        self.next = entry.position + 1;
                        out.push(entry);
                    }
                }
            }
            if out.len() >= max {
                return Ok(out);
            }
            match self.messages.next().now_or_never() {
                Some(n) => next = n,
                // Everything so far was skipped: wait for the next one.
                None if out.is_empty() => next = self.messages.next().await,
                None => return Ok(out),
            }
        }
    }
}

/// A subject token for any text: letters, digits, `-` and `_` as they are, every other byte
/// as `~` and two hex digits (`.`, `*`, `>` and spaces mean something in a subject).
pub fn subject_token(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("~{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push('~');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::subject_token;

    #[test]
    fn subject_tokens_are_safe_and_distinct() {
        assert_eq!(subject_token("play-mix_1"), "play-mix_1");
        assert_eq!(subject_token("a.b c>*"), "a~2Eb~20c~3E~2A");
        assert_ne!(subject_token("a.b"), subject_token("a~2Eb"));
        assert_eq!(subject_token(""), "~");
    }
}

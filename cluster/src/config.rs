//! `cluster:` as written and validated: where the NATS servers are, how to authenticate to
//! them, and the stream every replica reads. One section for every component, so that the
//! collector, the alerter and the status page of a deployment cannot point at different logs.

use std::path::PathBuf;
use std::time::Duration;

use lookout_conf::{Dur, Report, Spanned};
use lookout_model::secret::Secret;
use serde::Deserialize;

/// The stream's name when the config does not give one.
pub const DEFAULT_STREAM: &str = "LOOKOUT";
/// How many NATS nodes keep each message when the config does not say: one may be lost, and
/// a quorum (two) is still there to acknowledge.
pub const DEFAULT_REPLICAS: usize = 3;
/// How long a publish waits for the stream's acknowledgement before the agent is told 503.
pub const DEFAULT_PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
/// How far behind the log a replica may be before it refuses to answer (when told to).
pub const DEFAULT_MAX_BEHIND: Duration = Duration::from_secs(30);
/// How long a replica's claim on a notification stands before another may take it over: a
/// notification whose sender died is late by at most this.
pub const DEFAULT_CLAIM_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    /// `nats://host:port` (or `tls://`) of every node, or of as many as are known.
    pub nats: Spanned<Vec<String>>,
    pub user: Option<Spanned<String>>,
    pub password: Option<Secret>,
    /// An nkey seed (`SU...`), instead of a user and password.
    pub nkey_seed: Option<Secret>,
    pub tls: Option<RawTls>,
    pub stream: Option<Spanned<String>>,
    pub replicas: Option<Spanned<usize>>,
    pub publish_timeout: Option<Spanned<Dur>>,
    /// `serve` (default: answers carry how far behind they are) or `refuse` (503 past
    /// `max_behind`).
    pub when_behind: Option<Spanned<String>>,
    pub max_behind: Option<Spanned<Dur>>,
    pub claim_timeout: Option<Spanned<Dur>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// The CA that signed the servers' certificates (default: the system's roots).
    pub ca: Option<Spanned<String>>,
    /// A client certificate and its key, where the servers ask for one.
    pub cert: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    None,
    UserPassword { user: String, password: Secret },
    Nkey { seed: Secret },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TlsFiles {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// What a replica does with a read while it is behind the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenBehind {
    /// Answers, with how far behind it is in the answer's headers.
    Serve,
    /// Answers 503 while more than `max_behind` behind.
    Refuse,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    pub servers: Vec<String>,
    pub auth: Auth,
    /// `Some`: TLS to every server, verified.
    pub tls: Option<TlsFiles>,
    pub stream: String,
    pub replicas: usize,
    pub publish_timeout: Duration,
    pub when_behind: WhenBehind,
    pub max_behind: Duration,
    pub claim_timeout: Duration,
}

impl ClusterConfig {
    /// A cluster of these servers with every default: for tests and `lookout cluster`.
    /// The KV bucket of the alerter replicas' claims.
    pub fn claims_bucket(&self) -> String {
        format!("{}_claims", self.stream)
    }

    pub fn new(servers: Vec<String>) -> Self {
        ClusterConfig {
            servers,
            auth: Auth::None,
            tls: None,
            stream: DEFAULT_STREAM.to_owned(),
            replicas: DEFAULT_REPLICAS,
            publish_timeout: DEFAULT_PUBLISH_TIMEOUT,
            when_behind: WhenBehind::Serve,
            max_behind: DEFAULT_MAX_BEHIND,
            claim_timeout: DEFAULT_CLAIM_TIMEOUT,
        }
    }
}

/// A stream name JetStream takes, and which the subjects can start with.
fn stream_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn server_ok(url: &str) -> Result<(), String> {
    let rest = ["nats://", "tls://"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme))
        .ok_or_else(|| format!("{url:?} must start with nats:// or tls://"))?;
    if rest.contains('@') {
        return Err(format!(
            "{:?}: give credentials in `user` and `password` or `nkey_seed`, not in the URL",
            url.split('@').next_back().unwrap_or_default()
        ));
    }
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("{url:?} needs a port (nats://host:4222)"))?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(format!("{url:?} is not host:port"));
    }
    Ok(())
}

pub fn validate(raw: RawCluster, report: &mut Report) -> ClusterConfig {
    let mut cfg = ClusterConfig::new(Vec::new());
    if raw.nats.value.is_empty() {
        report(
            raw.nats.loc(),
            "cluster.nats",
            "list at least one NATS server".into(),
        );
    }
    for (i, url) in raw.nats.value.iter().enumerate() {
        if let Err(e) = server_ok(url) {
            report(raw.nats.loc(), &format!("cluster.nats[{i}]"), e);
        }
    }
    cfg.servers = raw.nats.value;
    cfg.auth = match (raw.user, raw.password, raw.nkey_seed) {
        (None, None, None) => Auth::None,
        (Some(user), Some(password), None) => Auth::UserPassword {
            user: user.value,
            password,
        },
        (None, None, Some(seed)) => {
            if !seed.expose().starts_with("SU") {
                report(
                    None,
                    "cluster.nkey_seed",
                    "is not a user nkey seed (those start with SU)".into(),
                );
            }
            Auth::Nkey { seed }
        }
        (user, _, Some(_)) if user.is_some() => {
            report(
                None,
                "cluster",
                "give `user` and `password`, or `nkey_seed`, not both".into(),
            );
            Auth::None
        }
        (user, password, _) => {
            let loc = user.as_ref().and_then(Spanned::loc);
            let missing = if password.is_none() {
                "password"
            } else {
                "user"
            };
            report(
                loc,
                "cluster",
                format!("`user` and `password` go together: `{missing}` is missing"),
            );
            Auth::None
        }
    };
    let tls_files = raw.tls.map(|t| {
        if t.cert.is_some() != t.key.is_some() {
            report(
                t.cert.as_ref().or(t.key.as_ref()).and_then(Spanned::loc),
                "cluster.tls",
                "`cert` and `key` go together".into(),
            );
        }
        TlsFiles {
            ca: t.ca.map(|p| p.value.into()),
            cert: t.cert.map(|p| p.value.into()),
            key: t.key.map(|p| p.value.into()),
        }
    });
    let every_tls = cfg.servers.iter().all(|s| s.starts_with("tls://"));
    cfg.tls = tls_files.or_else(|| every_tls.then(TlsFiles::default));
    if let Some(stream) = raw.stream {
        if stream_name_ok(&stream.value) {
            cfg.stream = stream.value;
        } else {
            report(
                stream.loc(),
                "cluster.stream",
                format!(
                    "{:?}: 1 to 64 letters, digits, - or _ (it starts every subject)",
                    stream.value
                ),
            );
        }
    }
    cfg.replicas = lookout_conf::number_in(
        report,
        raw.replicas.as_ref(),
        "cluster.replicas",
        DEFAULT_REPLICAS,
        1,
        5,
    );
    cfg.publish_timeout = lookout_conf::duration_in(
        report,
        &raw.publish_timeout,
        "cluster.publish_timeout",
        DEFAULT_PUBLISH_TIMEOUT,
        Duration::from_millis(100),
        Duration::from_secs(60),
    );
    cfg.max_behind = lookout_conf::duration_in(
        report,
        &raw.max_behind,
        "cluster.max_behind",
        DEFAULT_MAX_BEHIND,
        Duration::from_secs(1),
        Duration::from_secs(86_400),
    );
    cfg.claim_timeout = lookout_conf::duration_in(
        report,
        &raw.claim_timeout,
        "cluster.claim_timeout",
        DEFAULT_CLAIM_TIMEOUT,
        Duration::from_secs(1),
        Duration::from_secs(600),
    );
    if let Some(w) = raw.when_behind {
        match w.value.as_str() {
            "serve" => cfg.when_behind = WhenBehind::Serve,
            "refuse" => cfg.when_behind = WhenBehind::Refuse,
            other => report(
                w.loc(),
                "cluster.when_behind",
                format!("{other:?} is not one of serve, refuse"),
            ),
        }
    }
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> (ClusterConfig, Vec<String>) {
        let raw: RawCluster = serde_saphyr::from_str(yaml).unwrap();
        let mut problems = Vec::new();
        let cfg = validate(raw, &mut |_, path, msg| {
            problems.push(format!("{path}: {msg}"))
        });
        (cfg, problems)
    }

    #[test]
    fn defaults_and_user_password() {
        let (cfg, problems) =
            parse("nats: [nats://10.0.0.1:4222, nats://10.0.0.2:4222]\nuser: lo\npassword: pw\n");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(cfg.stream, "LOOKOUT");
        assert_eq!(cfg.replicas, 3);
        assert_eq!(cfg.when_behind, WhenBehind::Serve);
        assert!(matches!(cfg.auth, Auth::UserPassword { ref user, .. } if user == "lo"));
        assert!(cfg.tls.is_none());
    }

    #[test]
    fn every_mistake_is_named() {
        let (_, problems) = parse(
            "nats: [10.0.0.1:4222, 'nats://u:secretpw@h:4222', nats://h]\nuser: lo\nstream: a.b\nreplicas: 7\nwhen_behind: wait\n",
        );
        let all = problems.join("\n");
        for expected in [
            "cluster.nats[0]: \"10.0.0.1:4222\" must start with nats:// or tls://",
            "cluster.nats[1]: \"h:4222\": give credentials in `user`",
            "cluster.nats[2]: \"nats://h\" needs a port",
            "cluster: `user` and `password` go together: `password` is missing",
            "cluster.stream: \"a.b\"",
            "cluster.replicas",
            "cluster.when_behind: \"wait\" is not one of serve, refuse",
        ] {
            assert!(all.contains(expected), "{expected:?} not in:\n{all}");
        }
        assert!(
            !all.contains("secretpw"),
            "a password in a URL was echoed:\n{all}"
        );
    }

    #[test]
    fn tls_urls_turn_tls_on() {
        let (cfg, problems) = parse("nats: [tls://h:4222]\nnkey_seed: SUABC\n");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(cfg.tls, Some(TlsFiles::default()));
        assert!(matches!(cfg.auth, Auth::Nkey { .. }));
    }
}

//! The log against a real three-node NATS cluster: acknowledged means held by a quorum, a
//! retry is one message, reading goes on from a position, and no quorum means no promise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use lookout_cluster::config::Auth;
use lookout_cluster::{ClusterConfig, ClusterError, Log, Outgoing};
use lookout_model::secret::Secret;
use lookout_testkit::peers::NatsCluster;

const RETENTION: Duration = Duration::from_secs(3600);

fn message(log: &Log, id: &str, body: &str) -> Outgoing {
    Outgoing {
        subject: log.subject("results", "play mix.1"),
        id: id.to_owned(),
        payload: Bytes::from(body.to_owned()),
    }
}

#[tokio::test]
async fn acknowledged_messages_are_read_back_in_order_once_and_no_quorum_is_refused() {
    let mut nats = NatsCluster::start().await;
    let mut cfg = ClusterConfig::new(nats.urls());
    cfg.publish_timeout = Duration::from_secs(2);
    let log = Log::connect(&cfg, "test", RETENTION, Duration::from_secs(30))
        .await
        .unwrap();
    let first = log
        .publish_all(vec![
            message(&log, "a:1", "one"),
            message(&log, "a:2", "two"),
        ])
        .await
        .unwrap();
    assert_eq!(
        first.iter().map(|p| p.position).collect::<Vec<_>>(),
        vec![1, 2]
    );
    // A retry of an acknowledged message is the same message.
    let retry = log
        .publish_all(vec![message(&log, "a:2", "two")])
        .await
        .unwrap();
    assert!(retry[0].duplicate && retry[0].position == 2, "{retry:?}");
    log.publish_all(vec![message(&log, "a:3", "three")])
        .await
        .unwrap();

    let mut reader = log.read_from(1).await.unwrap();
    let mut read = Vec::new();
    while read.len() < 3 {
        read.extend(reader.next_batch(100).await.unwrap());
    }
    let bodies: Vec<(u64, String)> = read
        .iter()
        .map(|e| (e.position, String::from_utf8(e.payload.to_vec()).unwrap()))
        .collect();
    assert_eq!(
        bodies,
        vec![(1, "one".into()), (2, "two".into()), (3, "three".into())]
    );
    assert_eq!(read[0].subject, "LOOKOUT.results.play~20mix~2E1");
    let mut from_two = log.read_from(2).await.unwrap();
    assert_eq!(from_two.next_batch(1).await.unwrap()[0].position, 2);
    assert_eq!(log.last_position().await.unwrap(), 3);

    // Two of three nodes gone: no quorum, so no acknowledgement, within the timeout.
    let leader = nats
        .stream_leader("LOOKOUT")
        .await
        .expect("a stream leader");
    let others: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    nats.kill(leader);
    nats.kill(others[0]);
    let started = Instant::now();
    let refused = log
        .publish_all(vec![message(&log, "a:4", "four")])
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "{refused}");
    // Back again: the same message goes through once.
    nats.restart(leader).await;
    nats.restart(others[0]).await;
    let mut again = None;
    let end = Instant::now() + Duration::from_secs(30);
    while again.is_none() && Instant::now() < end {
        again = log
            .publish_all(vec![message(&log, "a:4", "four")])
            .await
            .ok();
    }
    let again = again.expect("publishing again once the nodes are back");
    assert_eq!(again[0].position, 4, "{again:?}");
}

#[tokio::test]
async fn refused_credentials_and_unreachable_servers_are_clear_errors() {
    let nats = NatsCluster::start_with(1, Some("right-password")).await;
    let mut cfg = ClusterConfig::new(nats.urls());
    cfg.replicas = 1;
    cfg.auth = Auth::UserPassword {
        user: "lookout".into(),
        password: Secret::new("wrong-password"),
    };
    let started = Instant::now();
    let e = Log::connect(&cfg, "test", RETENTION, Duration::from_secs(30))
        .await
        .unwrap_err();
    assert!(matches!(e, ClusterError::Credentials { .. }), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "retried refused credentials"
    );
    let text = e.to_string();
    assert!(text.contains(&nats.urls()[0]), "{text}");
    assert!(!text.contains("wrong-password"), "{text}");

    cfg.auth = Auth::UserPassword {
        user: "lookout".into(),
        password: Secret::new("right-password"),
    };
    Log::connect(&cfg, "test", RETENTION, Duration::from_secs(30))
        .await
        .unwrap();

    let port = lookout_testkit::free_port();
    let nowhere = ClusterConfig::new(vec![format!("nats://127.0.0.1:{port}")]);
    let e = Log::connect(&nowhere, "test", RETENTION, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(e, ClusterError::Unreachable { .. }), "{e}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
}

#[tokio::test]
async fn exactly_one_replica_wins_a_claim_and_a_stale_one_is_fenced_off() {
    use lookout_cluster::{Claim, Claims};
    let nats = NatsCluster::start().await;
    let cfg = ClusterConfig::new(nats.urls());
    let mut replicas = Vec::new();
    for name in ["a", "b"] {
        let log = Log::connect(&cfg, name, RETENTION, Duration::from_secs(30))
            .await
            .unwrap();
        replicas.push(
            Claims::open(&log, "claims", 3, Duration::from_secs(1), name)
                .await
                .unwrap(),
        );
    }
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as i64
    };
    // Races over fresh keys: the loser's read of the key may go to a replica that has not
    // caught up, and the loser must still learn that it lost, not fail.
    for n in 0..30 {
        let key = lookout_cluster::claim_key(&["race", &n.to_string()]);
        let (a, b) = tokio::join!(
            replicas[0].claim(&key, now()),
            replicas[1].claim(&key, now())
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        let won = [a, b].iter().filter(|c| matches!(c, Claim::Won(_))).count();
        assert_eq!(won, 1, "race {n}: {a:?} {b:?}");
    }
    let key = lookout_cluster::claim_key(&["hook", "search@1", "trigger"]);
    let (a, b) = tokio::join!(
        replicas[0].claim(&key, now()),
        replicas[1].claim(&key, now())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let won = [a, b].iter().filter(|c| matches!(c, Claim::Won(_))).count();
    assert_eq!(won, 1, "{a:?} {b:?}");
    let (winner, loser) = if matches!(a, Claim::Won(_)) {
        (0, 1)
    } else {
        (1, 0)
    };
    let Claim::Won(stale) = [a, b][winner] else {
        unreachable!()
    };
    assert_eq!(
        replicas[loser].claim(&key, now()).await.unwrap(),
        Claim::Held
    );
    assert_eq!(
        replicas[loser].holder(&key).await.unwrap().as_deref(),
        Some(["a", "b"][winner])
    );
    // The winner freezes past the timeout: the other takes over, and the frozen one, back,
    // finds its claim gone and cannot mark it done.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let Claim::Won(taken) = replicas[loser].claim(&key, now()).await.unwrap() else {
        panic!("not taken over after the timeout")
    };
    assert!(!replicas[winner].still_mine(&key, stale).await.unwrap());
    assert!(!replicas[winner].done(&key, stale).await.unwrap());
    assert!(replicas[loser].still_mine(&key, taken).await.unwrap());
    assert!(replicas[loser].done(&key, taken).await.unwrap());
    assert_eq!(
        replicas[winner].claim(&key, now()).await.unwrap(),
        Claim::Done
    );

    // A claim given up (its action failed) is free at once for either replica.
    let key = lookout_cluster::claim_key(&["hook", "search@1", "resolve"]);
    let Claim::Won(first) = replicas[0].claim(&key, now()).await.unwrap() else {
        panic!("a fresh key is won")
    };
    replicas[0].release(&key, first).await.unwrap();
    assert_eq!(replicas[1].holder(&key).await.unwrap(), None);
    let Claim::Won(second) = replicas[1].claim(&key, now()).await.unwrap() else {
        panic!("a released claim is not free")
    };
    assert!(second > first);
    assert_eq!(
        replicas[0].holder(&key).await.unwrap().as_deref(),
        Some("b")
    );
    assert!(!replicas[0].still_mine(&key, first).await.unwrap());
    assert!(replicas[1].still_mine(&key, second).await.unwrap());
}

#[tokio::test]
async fn over_tls_the_log_works_with_the_servers_ca_and_refuses_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let [ca_file, cert_file, key_file] =
        lookout_testkit::pki::pki(&["127.0.0.1", "localhost"]).write(dir.path());
    let nats = NatsCluster::start_tls(1, &cert_file, &key_file).await;
    let tls_urls: Vec<String> = nats
        .urls()
        .iter()
        .map(|u| u.replace("nats://", "tls://"))
        .collect();

    let mut cfg = ClusterConfig::new(tls_urls.clone());
    cfg.replicas = 1;
    cfg.tls = Some(lookout_cluster::TlsFiles {
        ca: Some(ca_file.clone()),
        ..Default::default()
    });
    let log = Log::connect(&cfg, "test", RETENTION, Duration::from_secs(30))
        .await
        .unwrap();
    let published = log
        .publish_all(vec![message(&log, "over-tls", "secret results")])
        .await
        .unwrap();
    let mut reader = log.read_from(published[0].position).await.unwrap();
    let read = reader.next_batch(10).await.unwrap();
    assert_eq!(&read[0].payload[..], b"secret results");

    // The system's roots do not know this CA: a clear error at once, not a retry loop.
    let mut untrusting = ClusterConfig::new(tls_urls);
    untrusting.replicas = 1;
    untrusting.tls = Some(lookout_cluster::TlsFiles::default());
    let started = Instant::now();
    let e = Log::connect(&untrusting, "test", RETENTION, Duration::from_secs(3))
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("127.0.0.1"), "names the server: {text}");
    assert!(
        text.to_lowercase().contains("certificate") || text.to_lowercase().contains("tls"),
        "says it is the certificate: {text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

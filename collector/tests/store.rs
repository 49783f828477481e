//! One conformance suite, run against every store; then what only the durable store promises.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

use lookout_collector::store::{ResultFilter, ResultStore, SqliteStore, counts};
use lookout_model::probe::{Failure, FailureKind, Outcome, Phases, ProbeResult, StepResult};

fn result(agent: &str, seq: u64, check: &str, region: &str, t: i64, ok: bool) -> ProbeResult {
    ProbeResult {
        check: check.into(),
        region: region.into(),
        agent: agent.into(),
        seq,
        started_at_us: t,
        outcome: if ok {
            Outcome::Ok
        } else {
            Outcome::Fail(Failure {
                kind: FailureKind::Refused,
                message: "refused".into(),
                step: Some(0),
            })
        },
        duration_us: 1234,
        steps: vec![StepResult {
            name: "search".into(),
            status: Some(200),
            bytes: 4321,
            phases: Phases {
                dns_us: 1,
                connect_us: 2,
                tls_us: 3,
                ttfb_us: 4,
                transfer_us: 5,
                total_us: 15,
            },
            cert_days_left: Some(30),
            reused_connection: seq.is_multiple_of(2),
        }],
        confirmation: false,
    }
}

fn conformance(store: &dyn ResultStore) {
    let batch = vec![
        result("eu-1", 1, "search", "eu", 100, true),
        result("eu-1", 2, "search", "eu", 200, false),
        result("us-1", 1, "search", "us", 150, true),
        result("us-1", 2, "view", "us", 250, true),
    ];
    assert_eq!(counts(&store.insert(&batch).unwrap()), (4, 0));
    assert_eq!(
        counts(&store.insert(&batch[1..3]).unwrap()),
        (0, 2),
        "replays are not stored twice"
    );
    assert_eq!(
        counts(
            &store
                .insert(&[
                    result("eu-1", 3, "search", "eu", 300, true),
                    batch[0].clone()
                ])
                .unwrap()
        ),
        (1, 1)
    );
    assert_eq!(store.len(), 5);
    let all = store
        .query(&ResultFilter {
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    let order: Vec<(String, u64)> = all.iter().map(|r| (r.agent.clone(), r.seq)).collect();
    assert_eq!(
        order,
        [
            ("eu-1", 1),
            ("eu-1", 2),
            ("us-1", 1),
            ("us-1", 2),
            ("eu-1", 3)
        ]
        .map(|(a, s)| (a.to_string(), s))
    );
    assert_eq!(all[1], batch[1], "stored as sent");
    let eu = store
        .query(&ResultFilter {
            region: Some("eu".into()),
            limit: 2,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        eu.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [2, 3],
        "the last `limit`, oldest first"
    );
    let view = store
        .query(&ResultFilter {
            check: Some("view".into()),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(view.len(), 1);
    let obs: Vec<(String, i64, bool, i64)> = store
        .observations("search", 150, 300)
        .unwrap()
        .into_iter()
        .map(|o| (o.region, o.start_us, o.ok, o.duration_us))
        .collect();
    assert_eq!(
        obs,
        [
            ("us".to_string(), 150, true, 1234),
            ("eu".to_string(), 200, false, 1234)
        ]
    );
}

#[test]
fn the_in_memory_store_conforms() {
    conformance(&SqliteStore::in_memory().unwrap());
}

#[test]
fn the_sqlite_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance(&SqliteStore::open(&dir.path().join("c.db")).unwrap());
}

#[test]
fn the_sqlite_store_keeps_everything_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        let batch: Vec<ProbeResult> = (1..=500)
            .map(|i| result("a", i, "search", "eu", i as i64, i % 7 != 0))
            .collect();
        store.insert(&batch).unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.len(), 500);
    assert_eq!(
        counts(
            &store
                .insert(&[result("a", 500, "search", "eu", 500, true)])
                .unwrap()
        ),
        (0, 1)
    );
    assert_eq!(store.observations("search", 0, 1_000).unwrap().len(), 500);
}

#[test]
fn a_file_that_is_not_a_store_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.db");
    std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
    let err = SqliteStore::open(&path).err().expect("refused").to_string();
    assert!(
        err.starts_with("cannot open the store at ") && err.contains("junk.db"),
        "{err}"
    );

    let newer = dir.path().join("newer.db");
    drop(SqliteStore::open(&newer).unwrap());
    let conn = rusqlite::Connection::open(&newer).unwrap();
    conn.execute(
        "UPDATE meta SET value = 99 WHERE key = 'schema_version'",
        [],
    )
    .unwrap();
    drop(conn);
    let err = SqliteStore::open(&newer)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("written by store schema version 99; this Lookout reads version 4"),
        "{err}"
    );
}

#[test]
fn a_store_of_the_version_before_is_migrated_with_its_rollups() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.db");
    drop(SqliteStore::open(&path).unwrap());
    // What version 3 wrote: no maintenance anywhere, one minute with downtime.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "ALTER TABLE bad_minutes DROP COLUMN maintenance_us;
         ALTER TABLE bad_minutes DROP COLUMN maintenance_down_us;
         ALTER TABLE bad_minutes DROP COLUMN maintenance_no_data_us;
         DROP TABLE maintenance; DROP TABLE slos;
         INSERT INTO names (id, kind, name) VALUES (1, 0, 'search');
         INSERT INTO bad_minutes (check_id, minute, down_us, no_data_us) VALUES (1, 60000000, 30000000, 0);
         UPDATE meta SET value = 3 WHERE key = 'schema_version';",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(&path).unwrap();
    let loaded = store.load_rollups(0).unwrap();
    let minutes = &loaded.checks["search"].bad_minutes;
    assert_eq!(minutes.len(), 1);
    assert_eq!(minutes[0].1.down_us, 30_000_000);
    assert_eq!(minutes[0].1.maintenance_us, 0);
    assert!(store.maintenances().unwrap().is_empty());
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, 4);
}

//! One conformance suite, run against every store and covering every method of the store
//! trait; then what only the durable store promises.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

use std::collections::BTreeMap;

use lookout_collector::store::{
    Bucket, CheckRollup, Coverage, MaintenanceChange, NewResults, ResultFilter, ResultStore,
    Retention, SqliteStore, counts,
};
use lookout_model::event::Event;
use lookout_model::latency::Sparse;
use lookout_model::probe::{Degradation, Outcome, ProbeResult, Verdict};
use lookout_model::read::{Maintenance, MaintenanceSource};
use lookout_model::sla::{MINUTE_US, Tally};

fn result(agent: &str, seq: u64, check: &str, region: &str, t: i64, ok: bool) -> ProbeResult {
    lookout_testkit::results::result(check, region, agent, seq, t, ok, 1234)
}

fn degraded(mut r: ProbeResult) -> ProbeResult {
    r.outcome = Outcome::Degraded(Degradation {
        message: "delivered at 1.2x real time".into(),
        step: Some(0),
    });
    r
}

fn conformance(store: &dyn ResultStore) {
    let batch = vec![
        result("eu-1", 1, "search", "eu", 100, true),
        result("eu-1", 2, "search", "eu", 200, false),
        degraded(result("us-1", 1, "search", "us", 150, true)),
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
    let obs: Vec<(String, i64, Verdict, i64)> = store
        .observations("search", 150, 300)
        .unwrap()
        .into_iter()
        .map(|o| (o.region, o.start_us, o.verdict, o.duration_us))
        .collect();
    assert_eq!(
        obs,
        [
            ("us".to_string(), 150, Verdict::Degraded, 1234),
            ("eu".to_string(), 200, Verdict::Fail, 1234)
        ]
    );
    assert_eq!(
        store
            .failures("search", 0, 1000, 10)
            .unwrap()
            .iter()
            .map(|r| r.started_at_us)
            .collect::<Vec<_>>(),
        [200],
        "a degraded run is not a failure"
    );
}

/// The reads a rollup pass and the query API make of raw results.
fn conformance_reads(store: &dyn ResultStore) {
    assert!(store.is_empty());
    assert_eq!(
        store.stored_since(0).unwrap(),
        NewResults::default(),
        "nothing stored yet"
    );
    let first = vec![
        result("eu-1", 1, "search", "eu", 1_000, true),
        result("eu-1", 2, "search", "eu", 2_000, false),
        result("us-1", 1, "view", "us", 1_500, false),
    ];
    let second = vec![result("us-1", 2, "search", "us", 500, true)];
    let answers = store.insert_many(&[&first, &second, &first[..1]]).unwrap();
    assert_eq!(
        answers,
        [vec![true, true, true], vec![true], vec![false]],
        "one answer per batch; a replay within the commit is not stored twice"
    );
    assert!(!store.is_empty());
    assert_eq!(store.len(), 4);

    let failed = store.failures("search", 0, 10_000, 10).unwrap();
    assert_eq!(failed, [first[1].clone()], "failed runs only, as stored");
    assert!(
        store.failures("search", 0, 2_000, 10).unwrap().is_empty(),
        "[from, to)"
    );
    assert_eq!(
        store.failures("view", 0, 10_000, 0).unwrap().len(),
        0,
        "at most `limit`"
    );
    assert!(store.failures("nope", 0, 10_000, 10).unwrap().is_empty());

    let all: Vec<(String, i64)> = store
        .observations_all(0, 10_000)
        .unwrap()
        .into_iter()
        .map(|(check, o)| (check, o.start_us))
        .collect();
    assert_eq!(
        all,
        [
            ("search".to_string(), 500),
            ("search".to_string(), 1_000),
            ("view".to_string(), 1_500),
            ("search".to_string(), 2_000)
        ],
        "every check, by start time"
    );
    assert!(store.observations("nope", 0, 10_000).unwrap().is_empty());

    let all = store.stored_since(0).unwrap();
    assert_eq!(
        all.earliest,
        BTreeMap::from([("search".to_string(), 500), ("view".to_string(), 1_500)])
    );
    let later = store.stored_since(all.max_id).unwrap();
    assert_eq!(later.max_id, all.max_id);
    assert!(later.earliest.is_empty(), "nothing after the last id");
    assert_eq!(
        store.stored_since(all.max_id + 100).unwrap().earliest.len(),
        2,
        "an id from before a wipe reads everything again"
    );
}

fn sparse(durations: &[u64]) -> Sparse {
    Sparse::from_durations(durations.iter().copied())
}

fn bad(down_us: i64) -> Tally {
    Tally {
        window_us: MINUTE_US,
        down_us,
        ..Tally::default()
    }
}

/// What a rollup pass writes and a restart reads back.
fn conformance_rollups(store: &dyn ResultStore) {
    let hour = 3_600_000_000;
    let day = 24 * hour;
    let loaded = store.load_rollups(0).unwrap();
    assert_eq!(loaded.rolled_id, 0);
    assert!(loaded.checks.is_empty());

    let coverage = Coverage {
        covered_from: 0,
        frontier: 10 * MINUTE_US,
        dirty_from: None,
    };
    let pass = CheckRollup {
        check: "search".into(),
        coverage: Some(coverage),
        minutes: (0, 10 * MINUTE_US),
        bad_minutes: vec![
            (MINUTE_US, bad(30_000_000)),
            (2 * MINUTE_US, bad(60_000_000)),
        ],
        hours: vec![
            ("eu".into(), 0, sparse(&[1_000, 2_000])),
            ("us".into(), 0, sparse(&[3_000])),
            ("eu".into(), hour, sparse(&[4_000])),
        ],
        days: vec![("eu".into(), 0, sparse(&[1_000, 2_000, 4_000]))],
    };
    store.save_rollups(42, &[pass]).unwrap();
    let loaded = store.load_rollups(0).unwrap();
    assert_eq!(loaded.rolled_id, 42);
    let search = &loaded.checks["search"];
    assert_eq!(search.coverage, Some(coverage));
    assert_eq!(
        search.bad_minutes,
        [
            (MINUTE_US, bad(30_000_000)),
            (2 * MINUTE_US, bad(60_000_000))
        ]
    );
    assert_eq!(search.hours[&0].count(), 3, "regions merged");
    assert_eq!(search.hours[&hour].count(), 1);
    assert_eq!(search.days[&0].count(), 3);
    assert_eq!(
        store.load_rollups(hour).unwrap().checks["search"]
            .hours
            .len(),
        1,
        "hours from `hours_since` on"
    );

    let hours = store.hists("search", Bucket::Hour, 0, hour).unwrap();
    let mut regions: Vec<(String, u64)> =
        hours.into_iter().map(|(r, _, s)| (r, s.count())).collect();
    regions.sort();
    assert_eq!(regions, [("eu".to_string(), 2), ("us".to_string(), 1)]);
    assert!(
        store
            .hists("nope", Bucket::Hour, 0, day)
            .unwrap()
            .is_empty()
    );
    let eu = store
        .region_hists("search", "eu", Bucket::Hour, 0, day)
        .unwrap();
    assert_eq!(eu.keys().copied().collect::<Vec<_>>(), [0, hour]);
    let eu_days = store
        .region_hists("search", "eu", Bucket::Day, 0, day)
        .unwrap();
    assert_eq!(eu_days[&0].count(), 3);
    assert!(
        store
            .region_hists("search", "ap", Bucket::Hour, 0, day)
            .unwrap()
            .is_empty()
    );

    // A second pass over the same minutes replaces them; an empty histogram removes one.
    let again = CheckRollup {
        check: "search".into(),
        coverage: Some(Coverage {
            frontier: 20 * MINUTE_US,
            ..coverage
        }),
        minutes: (0, 20 * MINUTE_US),
        bad_minutes: vec![(15 * MINUTE_US, bad(1_000_000))],
        hours: vec![("us".into(), 0, Sparse::default())],
        days: vec![],
    };
    store.save_rollups(43, &[again]).unwrap();
    let loaded = store.load_rollups(0).unwrap();
    assert_eq!(loaded.rolled_id, 43);
    let search = &loaded.checks["search"];
    assert_eq!(search.bad_minutes, [(15 * MINUTE_US, bad(1_000_000))]);
    assert_eq!(search.hours[&0].count(), 2, "the emptied region is gone");

    // Retention: raw results before the cut (never the newest), hours and rollups before theirs.
    let batch: Vec<ProbeResult> = (1..=5)
        .map(|i| result("eu-1", i, "search", "eu", i as i64 * 100, true))
        .collect();
    store.insert(&batch).unwrap();
    let removed = store
        .prune(
            Retention {
                raw_before_us: 350,
                hours_before_us: hour,
                rollups_before_us: 10 * MINUTE_US,
            },
            2,
        )
        .unwrap();
    assert_eq!(removed, 2, "at most `max_rows` at a time");
    assert_eq!(store.len(), 3);
    let retention = Retention {
        raw_before_us: i64::MAX,
        hours_before_us: hour,
        rollups_before_us: 10 * MINUTE_US,
    };
    assert_eq!(store.prune(retention, 100).unwrap(), 2, "the newest stays");
    assert_eq!(store.len(), 1);
    let loaded = store.load_rollups(0).unwrap();
    let search = &loaded.checks["search"];
    assert_eq!(search.hours.keys().copied().collect::<Vec<_>>(), [hour]);
    assert_eq!(search.bad_minutes, [(15 * MINUTE_US, bad(1_000_000))]);
    assert_eq!(
        search.coverage.map(|c| c.covered_from),
        Some(10 * MINUTE_US),
        "coverage starts where the rollups kept do"
    );
}

fn window(name: &str, checks: &[&str], starts_us: i64, ends_us: i64) -> Maintenance {
    Maintenance {
        id: 0,
        name: name.into(),
        message: String::new(),
        checks: checks.iter().map(|c| c.to_string()).collect(),
        starts_us,
        ends_us,
        source: MaintenanceSource::Api,
        created_by: "test".into(),
        created_us: 1,
    }
}

fn event(kind: &str, time_us: i64) -> Event {
    Event {
        source: "collector".into(),
        kind: kind.into(),
        service: "search".into(),
        instance: None,
        message: format!("{kind} at {time_us}"),
        time_us,
        duration_ms: None,
    }
}

/// Maintenance windows, SLOs and events: what the collector keeps besides results.
fn conformance_records(store: &dyn ResultStore) {
    assert!(store.maintenances().unwrap().is_empty());
    // Rolled up to minute 10, so a window from minute 5 marks it dirty from there.
    store
        .save_rollups(
            1,
            &[CheckRollup {
                check: "search".into(),
                coverage: Some(Coverage {
                    covered_from: 0,
                    frontier: 10 * MINUTE_US,
                    dirty_from: None,
                }),
                minutes: (0, 10 * MINUTE_US),
                ..CheckRollup::default()
            }],
        )
        .unwrap();
    let rebuild = window("index rebuild", &["search"], 5 * MINUTE_US, 20 * MINUTE_US);
    let id = store
        .change_maintenance(
            MaintenanceChange::Put(&rebuild),
            &[("search".into(), 5 * MINUTE_US)],
        )
        .unwrap();
    assert!(id > 0, "a new window gets an id");
    let later = window("upgrade", &["view"], 100 * MINUTE_US, 110 * MINUTE_US);
    let other = store
        .change_maintenance(MaintenanceChange::Put(&later), &[])
        .unwrap();
    assert_ne!(id, other);
    assert_eq!(
        store.maintenances().unwrap(),
        [
            Maintenance {
                id,
                ..rebuild.clone()
            },
            Maintenance {
                id: other,
                ..later.clone()
            }
        ],
        "by id, as written"
    );
    let coverage = store.load_rollups(0).unwrap().checks["search"].coverage;
    assert_eq!(coverage.and_then(|c| c.dirty_from), Some(5 * MINUTE_US));

    let shorter = Maintenance {
        id,
        ends_us: 8 * MINUTE_US,
        ..rebuild.clone()
    };
    assert_eq!(
        store
            .change_maintenance(MaintenanceChange::Put(&shorter), &[])
            .unwrap(),
        id,
        "replaced in place"
    );
    assert_eq!(store.maintenances().unwrap()[0].ends_us, 8 * MINUTE_US);
    store
        .change_maintenance(MaintenanceChange::Delete(other), &[])
        .unwrap();
    assert_eq!(store.maintenances().unwrap(), [shorter]);

    assert!(store.slos().unwrap().is_empty());
    store
        .put_slos(
            &[
                ("search".into(), r#"{"target":0.999}"#.into(), 10),
                ("view".into(), r#"{"target":0.99}"#.into(), 10),
            ],
            &[event("slo_changed", 10)],
        )
        .unwrap();
    store
        .put_slos(&[("search".into(), r#"{"target":0.9}"#.into(), 20)], &[])
        .unwrap();
    assert_eq!(
        store.slos().unwrap(),
        BTreeMap::from([
            ("search".to_string(), (r#"{"target":0.9}"#.to_string(), 20)),
            ("view".to_string(), (r#"{"target":0.99}"#.to_string(), 10)),
        ])
    );

    store
        .insert_events(&[event("replacement_started", 30), event("held", 40)])
        .unwrap();
    let events = store.events(0, 0, 10).unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.event.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["slo_changed", "replacement_started", "held"],
        "oldest first"
    );
    assert_eq!(
        events[1].event,
        event("replacement_started", 30),
        "as written"
    );
    assert!(events.windows(2).all(|w| w[0].id < w[1].id));
    let after = store.events(events[0].id, 0, 10).unwrap();
    assert_eq!(after.len(), 2, "after an id");
    assert_eq!(store.events(0, 35, 10).unwrap().len(), 1, "since a time");
    assert_eq!(store.events(0, 0, 1).unwrap().len(), 1, "at most `limit`");
}

/// A replica's log position moves only with what it applies, in the same commit.
fn conformance_log_position(store: &dyn ResultStore) {
    assert_eq!(
        store.applied().unwrap(),
        0,
        "a new store has applied nothing"
    );
    let first = [result("eu-1", 1, "search", "eu", 100, true)];
    let second = [
        result("eu-1", 2, "search", "eu", 200, false),
        result("eu-1", 1, "search", "eu", 100, true),
    ];
    assert_eq!(
        store.insert_applied(&[&first, &second], 7).unwrap(),
        vec![vec![true], vec![true, false]]
    );
    assert_eq!(store.applied().unwrap(), 7);
    store
        .insert(&[result("us-1", 1, "search", "us", 150, true)])
        .unwrap();
    assert_eq!(
        store.applied().unwrap(),
        7,
        "a plain insert is no log message"
    );
    // The log delivering a message again: nothing stored twice, the position goes on.
    assert_eq!(
        store.insert_applied(&[&second], 9).unwrap(),
        vec![vec![false, false]]
    );
    assert_eq!(store.applied().unwrap(), 9);
    assert_eq!(store.len(), 3);
}

/// Every store the collector can run on, by its config.
fn every_store(each: impl Fn(&dyn ResultStore)) {
    each(&SqliteStore::in_memory().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let file = SqliteStore::open(&dir.path().join("c.db")).unwrap();
    each(&file);
}

#[test]
fn every_store_stores_and_queries_results() {
    every_store(conformance);
}

#[test]
fn every_store_answers_the_reads_of_a_pass() {
    every_store(conformance_reads);
}

#[test]
fn every_store_keeps_and_prunes_rollups() {
    every_store(conformance_rollups);
}

#[test]
fn every_store_keeps_maintenance_slos_and_events() {
    every_store(conformance_records);
}

#[test]
fn every_store_keeps_its_log_position_with_what_it_applied() {
    every_store(conformance_log_position);
}

#[test]
fn a_file_store_says_how_big_it_is() {
    assert_eq!(SqliteStore::in_memory().unwrap().size_bytes(), 0);
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("c.db")).unwrap();
    let empty = store.size_bytes();
    assert!(empty > 0);
    let batch: Vec<ProbeResult> = (1..=2_000)
        .map(|i| result("a", i, "search", "eu", i as i64, true))
        .collect();
    store.insert(&batch).unwrap();
    assert!(
        store.size_bytes() > empty,
        "{} > {empty}",
        store.size_bytes()
    );
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
        store.insert_applied(&[&batch], 42).unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.len(), 500);
    assert_eq!(store.applied().unwrap(), 42);
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
        err.contains("written by store schema version 99; this Lookout reads version 6"),
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
    assert_eq!(schema_version(&conn), 6);
}

fn schema_version(conn: &rusqlite::Connection) -> i64 {
    conn.query_row(
        "SELECT value FROM meta WHERE key = 'schema_version'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// Version 5 kept the histograms in their keys' trees; 6 in tables with rowids. A version 5
/// store's histograms read back the same once migrated, from tables of the new layout.
#[test]
fn a_version_5_store_keeps_its_histograms_in_the_new_layout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v5.db");
    let hour = 3_600_000_000i64;
    let day = 24 * hour;
    {
        let store = SqliteStore::open(&path).unwrap();
        store
            .save_rollups(
                1,
                &[CheckRollup {
                    check: "search".into(),
                    coverage: None,
                    minutes: (0, 0),
                    bad_minutes: Vec::new(),
                    hours: vec![
                        ("eu".into(), 2 * hour, sparse(&[1_000, 2_000])),
                        ("us".into(), 2 * hour, sparse(&[3_000])),
                        ("eu".into(), hour, sparse(&[4_000])),
                    ],
                    days: vec![("eu".into(), day, sparse(&[5_000, 6_000]))],
                }],
            )
            .unwrap();
    }
    let before = SqliteStore::open(&path).unwrap().load_rollups(0).unwrap();
    // What version 5 had: the same tables keyed by check first.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut sql = String::from("BEGIN;");
    for (table, column) in [("hours", "hour"), ("days", "day")] {
        sql.push_str(&format!(
            "CREATE TABLE old_{table} (check_id INTEGER NOT NULL, region INTEGER NOT NULL,
                 {column} INTEGER NOT NULL, hist BLOB NOT NULL,
                 PRIMARY KEY (check_id, {column}, region)) WITHOUT ROWID;
             INSERT INTO old_{table} SELECT check_id, region, {column}, hist FROM {table};
             DROP TABLE {table};
             ALTER TABLE old_{table} RENAME TO {table};"
        ));
    }
    sql.push_str("UPDATE meta SET value = 5 WHERE key = 'schema_version'; COMMIT;");
    conn.execute_batch(&sql).unwrap();
    drop(conn);
    let store = SqliteStore::open(&path).unwrap();
    let after = store.load_rollups(0).unwrap();
    assert_eq!(after.checks["search"].hours, before.checks["search"].hours);
    assert_eq!(after.checks["search"].days, before.checks["search"].days);
    assert_eq!(after.checks["search"].hours.len(), 2, "{:?}", after.checks);
    assert_eq!(
        store
            .region_hists("search", "eu", Bucket::Hour, 0, 3 * hour)
            .unwrap()
            .len(),
        2
    );
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    for (table, key) in [
        ("hours", "UNIQUE (hour, check_id, region)"),
        ("days", "UNIQUE (day, check_id, region)"),
    ] {
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        assert!(sql.contains(key), "{sql}");
    }
    assert_eq!(schema_version(&conn), 6);
}

/// Read straight through the table, a bucket's regions need not come one after the other:
/// a region first seen in a later pass is merged all the same.
#[test]
fn a_buckets_regions_written_in_different_passes_load_merged() {
    let store = SqliteStore::in_memory().unwrap();
    let hour = 3_600_000_000i64;
    let pass = |hours: Vec<(String, i64, Sparse)>| CheckRollup {
        check: "search".into(),
        coverage: None,
        minutes: (0, 0),
        bad_minutes: Vec::new(),
        hours,
        days: Vec::new(),
    };
    store
        .save_rollups(
            1,
            &[pass(vec![("eu".into(), 2 * hour, sparse(&[1_000, 2_000]))])],
        )
        .unwrap();
    store
        .save_rollups(
            2,
            &[pass(vec![
                ("eu".into(), hour, sparse(&[4_000])),
                ("us".into(), 2 * hour, sparse(&[3_000])),
            ])],
        )
        .unwrap();
    let loaded = store.load_rollups(0).unwrap();
    let hours = &loaded.checks["search"].hours;
    let counts: Vec<(i64, u64)> = hours.iter().map(|(t, s)| (*t, s.count())).collect();
    assert_eq!(counts, [(hour, 1), (2 * hour, 3)]);
}

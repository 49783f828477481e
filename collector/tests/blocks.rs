//! Raw results in blocks: every field of every result reads back exactly, and a store that
//! has compacted answers every read as one that kept rows, replays included.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

use lookout_collector::store::block::{self, SPAN_US};
use lookout_collector::store::{ResultFilter, ResultStore, SqliteStore, counts};
use lookout_model::probe::{
    Degradation, Failure, FailureKind, Outcome, Phases, ProbeResult, StepResult,
};
use proptest::prelude::*;

const KINDS: [FailureKind; 10] = [
    FailureKind::Dns,
    FailureKind::Refused,
    FailureKind::Connect,
    FailureKind::Tls,
    FailureKind::Timeout,
    FailureKind::Protocol,
    FailureKind::Assertion,
    FailureKind::Capture,
    FailureKind::Redirect,
    FailureKind::BodyTooLarge,
];

/// Timings as probes measure them mostly, and now and then the extremes a bug could send.
fn micros() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => 0u64..2_000_000,
        1 => any::<u64>(),
        1 => Just(0u64),
    ]
}

fn step() -> impl Strategy<Value = StepResult> {
    (
        "[a-z ]{0,12}",
        proptest::option::of(any::<u16>()),
        prop_oneof![Just(0u64), 0u64..100_000, any::<u64>()],
        proptest::array::uniform5(micros()),
        micros(),
        proptest::option::of(prop_oneof![-400i64..400, any::<i64>()]),
        any::<bool>(),
    )
        .prop_map(
            |(name, status, bytes, [dns, connect, tls, ttfb, transfer], total, cert, reused)| {
                StepResult {
                    name,
                    status,
                    bytes,
                    phases: Phases {
                        dns_us: dns,
                        connect_us: connect,
                        tls_us: tls,
                        ttfb_us: ttfb,
                        transfer_us: transfer,
                        total_us: total,
                    },
                    cert_days_left: cert,
                    reused_connection: reused,
                }
            },
        )
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        6 => Just(Outcome::Ok),
        3 => (0..KINDS.len(), "\\PC{0,2000}", proptest::option::of(0usize..8)).prop_map(
            |(k, message, step)| Outcome::Fail(Failure {
                kind: KINDS[k],
                message,
                step,
            })
        ),
        1 => (0..KINDS.len(), any::<usize>()).prop_map(|(k, step)| Outcome::Fail(Failure {
            kind: KINDS[k],
            message: "timed out waiting for the first byte after 5 s".into(),
            step: Some(step),
        })),
        2 => ("\\PC{0,200}", proptest::option::of(0usize..8))
            .prop_map(|(message, step)| Outcome::Degraded(Degradation { message, step })),
    ]
}

/// Results of one check and region, in no particular order (late ones among them).
fn results(check: &'static str, region: &'static str) -> impl Strategy<Value = Vec<ProbeResult>> {
    proptest::collection::vec(
        (
            prop_oneof!["eu-west-1", "eu-west-2", "\\PC{0,30}"],
            any::<u64>(),
            prop_oneof![any::<i64>(), 0i64..SPAN_US],
            outcome(),
            micros(),
            proptest::collection::vec(step(), 0..4),
            any::<bool>(),
        )
            .prop_map(
                move |(agent, seq, start, outcome, duration, steps, confirmation)| ProbeResult {
                    check: check.into(),
                    region: region.into(),
                    agent,
                    seq,
                    started_at_us: start,
                    outcome,
                    duration_us: duration,
                    steps,
                    confirmation,
                },
            ),
        0..200,
    )
}

fn by_start(mut results: Vec<ProbeResult>) -> Vec<ProbeResult> {
    results.sort_by(|a, b| {
        (a.started_at_us, &a.agent, a.seq).cmp(&(b.started_at_us, &b.agent, b.seq))
    });
    results
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_field_of_every_result_reads_back(results in results("search", "eu-west")) {
        let encoded = block::encode(&results).unwrap();
        let decoded = block::decode("search", "eu-west", &encoded).unwrap();
        prop_assert_eq!(&decoded, &by_start(results));
        let light = block::light(&encoded).unwrap();
        prop_assert_eq!(light.len(), decoded.len());
        for (l, r) in light.iter().zip(&decoded) {
            prop_assert_eq!(l.start_us, r.started_at_us);
            prop_assert_eq!(l.verdict, r.outcome.verdict());
            prop_assert_eq!(l.duration_us, r.duration_us);
        }
        let keys = block::keys(&encoded).unwrap();
        prop_assert_eq!(
            keys,
            decoded.iter().map(|r| (r.agent.clone(), r.seq)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_damaged_block_is_an_error_not_a_panic(
        results in results("search", "eu-west"),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let encoded = block::encode(&results).unwrap();
        // A changed byte may still decode (a timing's low byte), but never panics.
        let mut changed = encoded.clone();
        changed[at.index(encoded.len())] = byte;
        let _ = block::decode("search", "eu-west", &changed);
        let _ = block::light(&changed);
        let _ = block::keys(&changed);
        let cut = &encoded[..cut.index(encoded.len())];
        prop_assert!(block::decode("search", "eu-west", cut).is_err());
        prop_assert!(block::light(cut).is_err());
    }
}

/// Results of `checks` checks in two regions every 10 s over `hours`, a failure now and then.
fn schedule(checks: usize, from_us: i64, hours: i64) -> Vec<ProbeResult> {
    let mut out = Vec::new();
    let mut seq = [0u64; 2];
    let mut t = from_us;
    while t < from_us + hours * SPAN_US {
        for c in 0..checks {
            for (r, region) in ["eu", "us"].into_iter().enumerate() {
                seq[r] += 1;
                let n = seq[r];
                let mut result = lookout_testkit::results::result(
                    &format!("check-{c}"),
                    region,
                    &format!("{region}-1"),
                    n,
                    t + c as i64 * 1_000 + r as i64 * 37,
                    n % 97 != 0,
                    40_000 + (n * 7_919) % 50_000,
                );
                result.steps[0].phases.ttfb_us += n % 13;
                out.push(result);
            }
        }
        t += 10_000_000;
    }
    out
}

/// Everything a reader can ask, for comparing two stores.
/// `newest`: also the newest results of a check, which only match while results are stored
/// in the order they started (a compacted store takes the newest by start time).
fn reads(store: &dyn ResultStore, from: i64, to: i64, newest: bool) -> Vec<String> {
    let mut out = vec![format!("len {}", store.len())];
    let mut all = store
        .query(&ResultFilter {
            limit: 1_000_000,
            ..Default::default()
        })
        .unwrap();
    all.sort_by_key(|r| (r.started_at_us, r.agent.clone(), r.seq));
    out.push(format!("{all:?}"));
    for limit in if newest { vec![1, 7, 500] } else { vec![] } {
        let some = store
            .query(&ResultFilter {
                check: Some("check-1".into()),
                region: Some("us".into()),
                limit,
                ..Default::default()
            })
            .unwrap();
        out.push(format!("{some:?}"));
    }
    let mut observed = store.observations_all(from, to).unwrap();
    observed
        .sort_by(|a, b| (a.1.start_us, &a.0, &a.1.region).cmp(&(b.1.start_us, &b.0, &b.1.region)));
    out.push(format!("{observed:?}"));
    for (a, b) in [
        (from, to),
        (from + SPAN_US / 2, from + SPAN_US + 1),
        (to - 1, to),
    ] {
        let mut o = store.observations("check-2", a, b).unwrap();
        o.sort_by(|x, y| (x.start_us, &x.region).cmp(&(y.start_us, &y.region)));
        out.push(format!("{o:?}"));
        // Among results that started at the same moment neither store promises an order.
        for limit in [3, 1000] {
            let mut f = store.failures("check-0", a, b, limit).unwrap();
            f.sort_by_key(|r| (r.started_at_us, r.agent.clone(), r.seq));
            out.push(format!("{f:?}"));
        }
    }
    out
}

fn assert_same(
    compacted: &dyn ResultStore,
    rows: &dyn ResultStore,
    from: i64,
    to: i64,
    newest: bool,
) {
    let (a, b) = (
        reads(compacted, from, to, newest),
        reads(rows, from, to, newest),
    );
    assert_eq!(a.len(), b.len());
    for (i, (a, b)) in a.iter().zip(&b).enumerate() {
        if a != b {
            let at = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
            let from = at.saturating_sub(300);
            panic!(
                "read {i} differs at byte {at} of {} and {}:\ncompacted …{}\nrows      …{}",
                a.len(),
                b.len(),
                &a[from..(at + 300).min(a.len())],
                &b[from..(at + 300).min(b.len())]
            );
        }
    }
}

#[test]
fn a_compacted_store_answers_as_one_that_kept_rows_replays_and_late_results_included() {
    let dir = tempfile::tempdir().unwrap();
    let from = 1_000 * SPAN_US;
    let to = from + 3 * SPAN_US;
    let results = schedule(5, from, 3);
    let late: Vec<ProbeResult> = schedule(5, from, 1)
        .into_iter()
        .step_by(11)
        .map(|mut r| {
            r.agent = format!("late-{}", r.region);
            r
        })
        .collect();
    for compacted in [
        SqliteStore::open(&dir.path().join("c.db")).unwrap(),
        SqliteStore::in_memory().unwrap(),
    ] {
        let rows = SqliteStore::in_memory().unwrap();
        for chunk in results.chunks(500) {
            assert_eq!(
                compacted.insert(chunk).unwrap(),
                rows.insert(chunk).unwrap()
            );
        }
        // Nothing the rollups have not read moves.
        assert_eq!(compacted.compact(to).unwrap(), 0);
        compacted.save_rollups(i64::MAX, &[]).unwrap();
        let moved = compacted.compact(to - SPAN_US).unwrap();
        assert!(moved > 0 && moved < results.len(), "{moved}");
        assert_same(&compacted, &rows, from, to, true);

        // A replay of results now in blocks is recognised, in a batch with new ones.
        let mut replay: Vec<ProbeResult> = results[..700].to_vec();
        replay.extend(late.iter().cloned());
        let a = compacted.insert(&replay).unwrap();
        assert_eq!(a, rows.insert(&replay).unwrap());
        assert_eq!(counts(&a), (late.len(), 700));
        assert_same(&compacted, &rows, from, to, false);

        // Late results are merged into their blocks; the rest of the hours follow.
        compacted.save_rollups(i64::MAX, &[]).unwrap();
        assert!(compacted.compact(to + SPAN_US).unwrap() > 0);
        assert_same(&compacted, &rows, from, to, false);
        assert_eq!(
            counts(&compacted.insert(&replay).unwrap()),
            (0, replay.len())
        );
    }

    // What a file holds survives its reopening, blocks and the mark of what is sealed.
    drop(SqliteStore::open(&dir.path().join("c.db")).unwrap());
    let reopened = SqliteStore::open(&dir.path().join("c.db")).unwrap();
    assert_eq!(reopened.len(), results.len() + late.len());
    assert_eq!(counts(&reopened.insert(&results[..50]).unwrap()), (0, 50));
}

/// Set in the child process that [`a_compaction_killed_midway_loses_nothing_and_still_knows_replays`]
/// starts and kills: the store's path, and where to compact up to.
const COMPACTING_CHILD: &str = "LOOKOUT_TEST_COMPACTING_CHILD";

fn blocks_in(path: &std::path::Path) -> (i64, i64) {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(results), 0) FROM blocks",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

#[test]
fn a_compaction_killed_midway_loses_nothing_and_still_knows_replays() {
    // The child: compacts the store it is given until it is killed.
    if let Ok(task) = std::env::var(COMPACTING_CHILD) {
        let (path, before) = task.split_once('@').unwrap();
        let store = SqliteStore::open(std::path::Path::new(path)).unwrap();
        store.compact(before.parse().unwrap()).unwrap();
        println!("compaction finished before it was killed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let from = 1_000 * SPAN_US;
    let to = from + 4 * SPAN_US;
    // Several of compaction's chunks (a transaction each) of 20,000 results.
    let results = schedule(30, from, 4);
    let rows = SqliteStore::in_memory().unwrap();
    {
        let store = SqliteStore::open(&path).unwrap();
        for chunk in results.chunks(500) {
            store.insert(chunk).unwrap();
            rows.insert(chunk).unwrap();
        }
        store.save_rollups(i64::MAX, &[]).unwrap();
    }

    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_compaction_killed_midway_loses_nothing_and_still_knows_replays",
            "--nocapture",
        ])
        .env(COMPACTING_CHILD, format!("{}@{to}", path.display()))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Killed as soon as its first chunk is committed, with the others still to come.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let held = loop {
        let (blocks, held) = blocks_in(&path);
        if blocks > 0 {
            child.kill().unwrap(); // SIGKILL
            break held;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no block was committed in two minutes"
        );
        assert!(child.try_wait().unwrap().is_none(), "the child ended");
        #[allow(clippy::disallowed_methods)]
        // a plain #[test] with no runtime, polling another process
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let status = child.wait().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(!status.success(), "{status}: {out}");
    let (_, held_after) = blocks_in(&path);
    assert!(
        held_after > 0 && (held_after as usize) < results.len() - 100,
        "killed midway: {held} results in blocks when seen, {held_after} after, of {}",
        results.len()
    );
    println!(
        "killed with {held_after} of {} results in blocks",
        results.len()
    );

    // Each result is in exactly one place: rows or a block, and reads say so.
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.len(), results.len());
    assert_same(&store, &rows, from, to, true);
    // Replays are known, whether their result moved or not; and compaction goes on from there.
    assert_eq!(
        counts(&store.insert(&results[..2_000]).unwrap()),
        (0, 2_000)
    );
    assert_eq!(
        counts(&store.insert(&results[results.len() - 2_000..]).unwrap()),
        (0, 2_000)
    );
    assert!(store.compact(to).unwrap() > 0);
    assert_same(&store, &rows, from, to, true);
    assert_eq!(counts(&store.insert(&results).unwrap()), (0, results.len()));
}

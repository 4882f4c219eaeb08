//! One body per behaviour, run on both backends: what the store relies on of
//! sled must hold of PostgreSQL too.

use super::test_server::{database, TestServer};
use super::*;
use remote::Way;

/// A sled keyspace in a temporary directory (kept alive with it).
fn embedded() -> (Option<tempfile::TempDir>, Keyspace) {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::Config::new().path(dir.path()).open().unwrap();
    (Some(dir), Keyspace::Embedded(db))
}

/// A keyspace in a new database of the test server.
fn remote() -> (Option<tempfile::TempDir>, Keyspace) {
    let keyspace = RemoteKeyspace::connect(&database()).unwrap();
    (None, Keyspace::Remote(keyspace))
}

/// `#[test]`s running `body` on each backend.
macro_rules! on_both_backends {
    ($($body:ident),* $(,)?) => {
        mod embedded {
            $(#[test]
            fn $body() {
                let (_dir, keyspace) = super::embedded();
                super::$body(&keyspace);
            })*
        }
        mod postgres {
            $(#[test]
            fn $body() {
                let (_dir, keyspace) = super::remote();
                super::$body(&keyspace);
            })*
        }
    };
}

on_both_backends!(
    single_keys_are_read_written_and_removed,
    trees_of_one_keyspace_are_apart,
    entries_come_in_byte_order_either_way_round_across_pages,
    ranges_keep_their_bounds,
    prefix_scans_keep_to_their_prefix,
    both_ends_of_one_scan_meet_without_repeating_an_entry,
    compare_and_swap_swaps_only_what_it_was_told_of,
);

fn keys(entries: impl Iterator<Item = Result<IVec>>) -> Vec<Vec<u8>> {
    entries.map(|key| key.unwrap().to_vec()).collect()
}

/// `n` keys whose bytes cover 0x00 and 0xff, in byte order.
fn ordered_keys(n: u8) -> Vec<Vec<u8>> {
    (0..n).map(|i| vec![i.wrapping_mul(2), 0xff, i]).collect()
}

fn single_keys_are_read_written_and_removed(keyspace: &Keyspace) {
    let tree = keyspace.open_tree("t").unwrap();
    assert_eq!(tree.get(b"k").unwrap(), None);
    assert!(!tree.contains_key(b"k").unwrap());
    assert_eq!(tree.insert(b"k", b"one".to_vec()).unwrap(), None);
    assert_eq!(
        tree.insert(b"k", b"two".to_vec()).unwrap().as_deref(),
        Some(&b"one"[..])
    );
    assert_eq!(tree.get(b"k").unwrap().as_deref(), Some(&b"two"[..]));
    assert!(tree.contains_key(b"k").unwrap());
    tree.insert(b"", Vec::new()).unwrap();
    assert_eq!(
        tree.get(b"").unwrap().as_deref(),
        Some(&b""[..]),
        "empty key and value"
    );
    assert_eq!(tree.len(), 2);
    assert_eq!(tree.remove(b"k").unwrap().as_deref(), Some(&b"two"[..]));
    assert_eq!(tree.remove(b"k").unwrap(), None);
    tree.clear().unwrap();
    assert!(tree.is_empty());
    tree.flush().unwrap();
    keyspace.flush().unwrap();
}

fn trees_of_one_keyspace_are_apart(keyspace: &Keyspace) {
    let (a, b) = (
        keyspace.open_tree("a").unwrap(),
        keyspace.open_tree("b").unwrap(),
    );
    a.insert(b"k", b"in a".to_vec()).unwrap();
    assert_eq!(b.get(b"k").unwrap(), None);
    b.insert(b"k", b"in b".to_vec()).unwrap();
    a.clear().unwrap();
    assert_eq!(b.get(b"k").unwrap().as_deref(), Some(&b"in b"[..]));
    let again = keyspace.open_tree("b").unwrap();
    assert_eq!(
        keys(again.iter().keys()),
        vec![b"k".to_vec()],
        "the same tree, opened again"
    );
}

fn entries_come_in_byte_order_either_way_round_across_pages(keyspace: &Keyspace) {
    let tree = keyspace.open_tree("t").unwrap();
    let expected = ordered_keys(120);
    // Written out of order: the order is the keys', not the writes'.
    for key in expected.iter().rev() {
        tree.insert(key, key.clone()).unwrap();
    }
    assert_eq!(keys(tree.iter().keys()), expected);
    let backwards: Vec<_> = expected.iter().rev().cloned().collect();
    assert_eq!(keys(tree.iter().keys().rev()), backwards);
    let values: Vec<_> = tree.iter().values().map(|v| v.unwrap().to_vec()).collect();
    assert_eq!(values, expected, "values follow their keys");
}

fn ranges_keep_their_bounds(keyspace: &Keyspace) {
    let tree = keyspace.open_tree("t").unwrap();
    for key in [&b"a"[..], b"b", b"b\0", b"c", b"d"] {
        tree.insert(key, b"".to_vec()).unwrap();
    }
    let got = |iter: Iter| keys(iter.keys());
    let of = |ks: &[&[u8]]| ks.iter().map(|k| k.to_vec()).collect::<Vec<_>>();
    assert_eq!(
        got(tree.range(&b"b"[..]..&b"d"[..])),
        of(&[b"b", b"b\0", b"c"])
    );
    assert_eq!(
        got(tree.range(&b"b"[..]..=&b"d"[..])),
        of(&[b"b", b"b\0", b"c", b"d"])
    );
    assert_eq!(got(tree.range(..&b"b"[..])), of(&[b"a"]));
    assert_eq!(got(tree.range(&b"c"[..]..)), of(&[b"c", b"d"]));
    let after_b = (Bound::Excluded(&b"b"[..]), Bound::Unbounded);
    assert_eq!(
        got(tree.range::<&[u8], _>(after_b)),
        of(&[b"b\0", b"c", b"d"])
    );
    assert_eq!(got(tree.range(&b"c"[..]..&b"c"[..])), of(&[]), "empty");
    let first = tree.range(&b"b"[..]..).keys().next().unwrap().unwrap();
    assert_eq!(&first[..], b"b", "the first of a range, read alone");
    let last = tree.range(..&b"d"[..]).keys().next_back().unwrap().unwrap();
    assert_eq!(&last[..], b"c", "the last of a range, read alone");
}

fn prefix_scans_keep_to_their_prefix(keyspace: &Keyspace) {
    let tree = keyspace.open_tree("t").unwrap();
    for key in [
        &b"ab"[..],
        b"ab\0",
        b"ab\xff",
        b"ab\xff\xff",
        b"ac",
        b"a\xff",
        b"\xff\xff",
        b"\xff\xff\x01",
        b"b",
    ] {
        tree.insert(key, b"".to_vec()).unwrap();
    }
    let of = |ks: &[&[u8]]| ks.iter().map(|k| k.to_vec()).collect::<Vec<_>>();
    assert_eq!(
        keys(tree.scan_prefix(b"ab").keys()),
        of(&[b"ab", b"ab\0", b"ab\xff", b"ab\xff\xff"])
    );
    assert_eq!(
        keys(tree.scan_prefix(b"ab\xff").keys().rev()),
        of(&[b"ab\xff\xff", b"ab\xff"])
    );
    assert_eq!(
        keys(tree.scan_prefix(b"\xff\xff").keys()),
        of(&[b"\xff\xff", b"\xff\xff\x01"])
    );
    assert_eq!(
        keys(tree.scan_prefix(b"").keys()).len(),
        9,
        "the empty prefix: every key"
    );
    assert!(tree.scan_prefix(b"z").next().is_none());
}

fn both_ends_of_one_scan_meet_without_repeating_an_entry(keyspace: &Keyspace) {
    let tree = keyspace.open_tree("t").unwrap();
    let expected = ordered_keys(90);
    for key in &expected {
        tree.insert(key, b"".to_vec()).unwrap();
    }
    let mut entries = tree.iter().keys();
    let (mut front, mut back) = (Vec::new(), Vec::new());
    // Uneven steps, so each end fetches pages of its own.
    loop {
        let Some(key) = entries.next() else { break };
        front.push(key.unwrap().to_vec());
        for _ in 0..2 {
            if let Some(key) = entries.next_back() {
                back.push(key.unwrap().to_vec());
            }
        }
    }
    back.reverse();
    front.extend(back);
    assert_eq!(front, expected);
}

fn compare_and_swap_swaps_only_what_it_was_told_of(keyspace: &Keyspace) {
    let tree = keyspace.open_tree("t").unwrap();
    let none = None as Option<&[u8]>;
    let swap = |old: Option<&[u8]>, new: Option<&[u8]>| {
        tree.compare_and_swap(b"k", old, new.map(<[u8]>::to_vec))
            .unwrap()
    };
    assert!(swap(None, Some(b"one")).is_ok(), "absent as told");
    let refused = swap(None, Some(b"two")).unwrap_err();
    assert_eq!(refused.current.as_deref(), Some(&b"one"[..]));
    assert_eq!(refused.proposed.as_deref(), Some(&b"two"[..]));
    assert!(
        swap(Some(b"zero"), Some(b"two")).is_err(),
        "not what it holds"
    );
    assert!(swap(Some(b"one"), Some(b"two")).is_ok());
    assert!(swap(None, None).is_err(), "present, not absent");
    assert!(swap(Some(b"one"), None).is_err());
    assert!(swap(Some(b"two"), None).is_ok(), "removed");
    assert_eq!(tree.get(b"k").unwrap(), None);
    assert!(tree
        .compare_and_swap(b"k", none, none.map(<[u8]>::to_vec))
        .unwrap()
        .is_ok());
}

/// Two keyspaces on one database see each other's writes (two nodes).
#[test]
fn two_clients_of_one_database_share_its_trees() {
    let settings = database();
    let node = || Keyspace::Remote(RemoteKeyspace::connect(&settings).unwrap());
    let (one, other) = (node(), node());
    one.open_tree("t")
        .unwrap()
        .insert(b"k", b"from one".to_vec())
        .unwrap();
    let read = other.open_tree("t").unwrap().get(b"k").unwrap();
    assert_eq!(read.as_deref(), Some(&b"from one"[..]));
}

/// A database that stops answers Unavailable, and works again once it is back.
#[test]
fn a_stopped_database_is_unavailable_until_it_is_back() {
    let server = TestServer::start();
    let keyspace = Keyspace::Remote(RemoteKeyspace::connect(&server.database()).unwrap());
    let tree = keyspace.open_tree("t").unwrap();
    tree.insert(b"k", b"kept".to_vec()).unwrap();
    server.stop();
    let error = tree.get(b"k").unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error}");
    let scan = tree.iter().next().unwrap();
    assert!(
        matches!(scan, Err(StoreError::Unavailable(_))),
        "a scan too"
    );
    server.restart();
    assert_eq!(tree.get(b"k").unwrap().as_deref(), Some(&b"kept"[..]));
}

/// A client of the database of `settings`, brought to migration `version`
/// by hand (as a binary of that version left it).
async fn migrated_to(settings: &RemoteSettings, version: usize) -> tokio_postgres::Client {
    let client = super::test_server::client(&settings.config).await;
    client
        .batch_execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        .await
        .unwrap();
    for (version, sql) in &super::remote::MIGRATIONS[..version] {
        client.batch_execute(sql).await.unwrap();
        client
            .execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[version],
            )
            .await
            .unwrap();
    }
    client
}

/// A database as versions before time partitions left it: its events move
/// to the partition of their day, and a key without a time to one never
/// dropped; other trees stay where they were.
#[test]
fn rows_of_the_time_ordered_trees_move_to_the_partitions_of_their_days() {
    let settings = database();
    // 2026-12-01T01:00:00Z, as an event id stamps it.
    let event = format!("evt_{:016x}{:08x}", 1_796_086_800_000u64 << 16, 7);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = migrated_to(&settings, 2).await;
        let rows = [("events", event.as_bytes()), ("events", b"no time"), ("queue", event.as_bytes())];
        for (tree, key) in rows {
            client
                .execute(
                    "INSERT INTO keyspace (tree, key, value) VALUES ($1, $2, convert_to($1, 'UTF8'))",
                    &[&tree, &key],
                )
                .await
                .unwrap();
        }
    });
    let remote = RemoteKeyspace::connect(&settings).unwrap();
    let keyspace = Keyspace::Remote(remote.clone());

    let events = keyspace.open_tree("events").unwrap();
    assert_eq!(
        keys(events.iter().keys()),
        [event.as_bytes().to_vec(), b"no time".to_vec()]
    );
    assert_eq!(events.get(&event).unwrap().as_deref(), Some(&b"events"[..]));
    let queue = keyspace.open_tree("queue").unwrap();
    assert_eq!(queue.get(&event).unwrap().as_deref(), Some(&b"queue"[..]));
    assert_eq!(
        remote.time_partitions().unwrap(),
        ["keyspace_timed_20261201"]
    );
    // No day is older than 2026-12-01, and the key without a time has none.
    assert_eq!(remote.rows_before(1_796_083_200_000).unwrap(), 0);
    assert_eq!(remote.rows_before(u64::MAX).unwrap(), 1);
}

/// A journal as versions before its day partitions left it: each record
/// moves to the partition of its day, where the same node's journal reads it.
#[test]
fn journal_records_move_to_the_partitions_of_their_days() {
    let settings = database();
    // 2026-12-01 and 2026-12-02, in days since the epoch.
    let (first, second) = (20_788, 20_789);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = migrated_to(&settings, 5).await;
        client
            .execute(
                "INSERT INTO journal (node, seq, day, record)
                 VALUES ('nod_a', 1, $1, 'one'), ('nod_a', 2, $2, 'two'), ('nod_b', 1, $2, 'bee')",
                &[&first, &second],
            )
            .await
            .unwrap();
    });
    let remote = RemoteKeyspace::connect(&settings).unwrap();

    assert_eq!(
        remote.journal_partitions().unwrap(),
        ["journal_20261201", "journal_20261202"]
    );
    let mut records = Vec::new();
    (remote.journal("nod_a"))
        .each_after(None, |location, record| {
            records.push((location.segment, location.offset, record));
            Ok::<_, StoreError>(())
        })
        .unwrap();
    assert_eq!(
        records,
        [
            (first as u32, 1, b"one".to_vec()),
            (second as u32, 2, b"two".to_vec())
        ]
    );
    assert_eq!(remote.journal("nod_b").days().unwrap().start, second as u32);
}

/// An event id of the time `ms` (its random part `n`).
fn event_key(ms: u64, n: u32) -> Vec<u8> {
    format!("evt_{:016x}{n:08x}", ms << 16).into_bytes()
}

/// A range scan of a timed tree whose bounds lie in one day reads that
/// day's partition and the one of keys without a time alone, and still
/// returns every key between the bounds, those without a time too.
#[test]
fn a_range_within_one_day_reads_its_partition_and_keys_without_a_time() {
    let settings = database();
    let remote = RemoteKeyspace::connect(&settings).unwrap();
    let events = Keyspace::Remote(remote).open_tree("events").unwrap();
    // Three days from 2026-12-01 (a day's first ms), two events each.
    let first_day = 1_796_083_200_000u64;
    let day = |n: u64| first_day + n * 86_400_000;
    let mut all: Vec<Vec<u8>> = (0..3)
        .flat_map(|n| {
            [
                event_key(day(n) + 1_000, 1),
                event_key(day(n) + 80_000_000, 2),
            ]
        })
        .collect();
    // Keys without a time, one of them between the middle day's events.
    let middle = event_key(day(1) + 40_000_000, 3);
    let untimed = [[&middle[..10], b"zz"].concat(), b"evt_short".to_vec()];
    all.extend(untimed.iter().cloned());
    for key in &all {
        events.insert(key, key.clone()).unwrap();
    }
    let (lower, upper) = (
        event_key(day(1), 0),
        event_key(day(1) + 86_399_999, u32::MAX),
    );
    let mut expected: Vec<Vec<u8>> = (all.iter())
        .filter(|key| (&lower..=&upper).contains(key))
        .cloned()
        .collect();
    expected.sort();
    assert_eq!(
        expected.len(),
        3,
        "the middle day's two, and one without a time"
    );
    assert!(expected.contains(&untimed[0]));

    assert_eq!(keys(events.range(&lower[..]..=&upper[..]).keys()), expected);
    assert_eq!(
        keys((events.range(&lower[..]..=&upper[..]).rev()).map(|entry| entry.map(|(key, _)| key))),
        expected.iter().rev().cloned().collect::<Vec<_>>()
    );
    assert_eq!(keys(events.scan_prefix(&all[2]).keys()), [all[2].clone()]);
    // A request's events: the prefix of its stamp (the scan's upper bound
    // ends in a byte past the last digit's).
    let of_request = |ms: u64| format!("evt_{:016x}", ms << 16).into_bytes();
    for n in 0..3 {
        let stamp = of_request(day(n) + 1_000);
        assert_eq!(
            keys(events.scan_prefix(&stamp).keys()),
            [event_key(day(n) + 1_000, 1)]
        );
    }

    // What PostgreSQL reads of a page of that range, with the generic plans
    // the keyspace uses (the bounds' day is 20789 since the epoch).
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let scanned = |by_day: bool| {
        let bounds = (
            Bound::Included(lower.clone()),
            Bound::Included(upper.clone()),
        );
        let page = remote::page_sql("keyspace_timed", &bounds.0, &bounds.1, by_day, Way::Forward);
        let (types, days) = match by_day {
            true => ("integer, integer, ", "20789, 20789, "),
            false => ("", ""),
        };
        let (lower, upper) = (hex::encode(&lower), hex::encode(&upper));
        runtime.block_on(async {
            let client = super::test_server::client(&settings.config).await;
            client
                .batch_execute(&format!(
                    "SET plan_cache_mode = force_generic_plan;
                     PREPARE page(text, bytea, bytea, {types}bigint) AS {page}"
                ))
                .await
                .unwrap();
            let explain = format!(
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
                 EXECUTE page('events', '\\x{lower}', '\\x{upper}', {days}16)"
            );
            let plan = client.query(&explain, &[]).await;
            let plan: Vec<String> = plan.unwrap().iter().map(|row| row.get(0)).collect();
            let partitions = plan
                .iter()
                .filter(|line| line.contains(" on keyspace_timed_"));
            (partitions.count(), plan.join("\n"))
        })
    };
    let (all_days, plan) = scanned(false);
    println!("without day bounds, {all_days} partitions read:\n{plan}");
    let (pruned, plan) = scanned(true);
    println!("with them, {pruned} partitions read:\n{plan}");
    assert_eq!(
        (all_days, pruned),
        (4, 2),
        "3 days and the keys without a time"
    );
}

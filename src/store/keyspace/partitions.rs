//! Day partitions in PostgreSQL: the remote keyspace's time-ordered trees
//! (`keyspace_timed`, migration 0004) and the request journal (`journal`,
//! migration 0007) are partitioned by UTC day, one `<table>_YYYYMMDD` each.
//! Retention then forgets a whole day with one `DROP TABLE` (no row
//! deletes, nothing for VACUUM) instead of deleting its rows one by one.
//!
//! The trees that grow with traffic and go by age ([`TIMED_TREES`]: keyed by
//! time-sortable ids, see `ids.rs`) live in `keyspace_timed`, one partition
//! per day of their keys' ids (`hookgate_key_day`); every other tree in
//! `keyspace`. Each statement names the day of its key, so a single-key call
//! reads one partition's index. The journal's day is the day a record was
//! journaled.
//!
//! A day's partitions are made ahead by the sweep (today and the next two
//! days), and on demand: a write finding no partition for its row's day
//! makes it and runs again (a node whose sweeps are off, or a write into a
//! day another node has just dropped).

use super::remote::{failed, unreachable};
use super::Result;
use deadpool_postgres::{Object, Pool};
use std::ops::Bound;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement};

/// A table partitioned by day, by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Partitioned(pub &'static str);

pub(super) const KEYSPACE_TIMED: Partitioned = Partitioned("keyspace_timed");
pub(super) const JOURNAL: Partitioned = Partitioned("journal");

/// The trees kept in time partitions: every key starts with an id of its own
/// record or its parent's (an attempt's index entry with its event's), so a
/// day's partition holds whole records. Rows written before them moved over
/// in migration 0004, which names the same trees.
pub(super) const TIMED_TREES: &[&str] = &[
    "requests",
    "request_payloads",
    "events",
    "event_payloads",
    "attempts",
    "event_attempts",
    "ignored_events",
];

pub(super) const DAY_MS: u64 = 86_400_000;

/// The statements of one table; `$1` is the tree, `$2` the key.
pub(super) struct Table {
    /// Where a page of a range is read from (see `page_sql`).
    pub name: &'static str,
    pub timed: bool,
    pub get: &'static str,
    /// Upserts `$3`, returning what the key held before.
    pub insert: &'static str,
    pub remove: &'static str,
    /// Inserts `$3` only where the key is absent.
    pub insert_new: &'static str,
    /// Sets `$4` only where the key holds `$3`.
    pub replace: &'static str,
    /// `replace`, and only while no session holds the key's lock (see
    /// `RemoteKeyspace::lock`): the lock is taken for the statement itself.
    pub replace_unlocked: &'static str,
    /// Removes the key only where it holds `$3`.
    pub remove_held: &'static str,
    #[cfg(test)]
    pub count: &'static str,
    pub clear: &'static str,
}

/// The two keys of the advisory lock of the name (bytes) in parameter `$at`:
/// a class of hookgate's own (two-key locks never meet the one-key
/// migration lock) and a hash of the name (two names sharing one only wait
/// for each other). The database hashes, so that a statement of
/// `replace_unlocked` and `RemoteKeyspace::lock` always agree.
macro_rules! key_lock {
    ($at:literal) => {
        concat!("1752133483, hashtext(encode(", $at, ", 'escape'))")
    };
}
pub(super) use key_lock;

/// A table's statements from how a key is matched and how a row is written.
macro_rules! table {
    ($name:literal, $timed:literal, key: $key:literal, columns: $columns:literal, values: $values:literal, unique: $unique:literal) => {{
        // Writes a row, then does `$conflict` where its key is taken.
        macro_rules! upsert {
            ($conflict:literal) => {
                concat!(
                    "INSERT INTO ",
                    $name,
                    " (",
                    $columns,
                    ") VALUES (",
                    $values,
                    ") ",
                    "ON CONFLICT (",
                    $unique,
                    ") ",
                    $conflict
                )
            };
        }
        // Sets `$4` where the key holds `$3` and `$also`.
        macro_rules! replace {
            ($also:expr) => {
                concat!(
                    "UPDATE ",
                    $name,
                    " SET value = $4 WHERE ",
                    $key,
                    " AND value = $3",
                    $also,
                    " RETURNING 1"
                )
            };
        }
        Table {
            name: $name,
            timed: $timed,
            get: concat!("SELECT value FROM ", $name, " WHERE ", $key),
            // The CTE reads the row as it was before the statement's own write.
            insert: concat!(
                "WITH before AS (SELECT value FROM ",
                $name,
                " WHERE ",
                $key,
                ") ",
                upsert!(
                    "DO UPDATE SET value = EXCLUDED.value RETURNING (SELECT value FROM before)"
                )
            ),
            remove: concat!("DELETE FROM ", $name, " WHERE ", $key, " RETURNING value"),
            insert_new: upsert!("DO NOTHING RETURNING 1"),
            replace: replace!(""),
            replace_unlocked: replace!(concat!(
                " AND pg_try_advisory_xact_lock(",
                key_lock!("$2"),
                ")"
            )),
            remove_held: concat!(
                "DELETE FROM ",
                $name,
                " WHERE ",
                $key,
                " AND value = $3 RETURNING 1"
            ),
            #[cfg(test)]
            count: concat!("SELECT count(*) FROM ", $name, " WHERE tree = $1"),
            clear: concat!("DELETE FROM ", $name, " WHERE tree = $1"),
        }
    }};
}

const PLAIN: Table = table!("keyspace", false,
    key: "tree = $1 AND key = $2",
    columns: "tree, key, value",
    values: "$1, $2, $3",
    unique: "tree, key");

const TIMED: Table = table!("keyspace_timed", true,
    key: "tree = $1 AND key = $2 AND day = hookgate_key_day($2)",
    columns: "tree, key, value, day",
    values: "$1, $2, $3, hookgate_key_day($2)",
    unique: "tree, key, day");

/// Where the rows of tree `name` live.
pub(super) fn table_of(name: &str) -> &'static Table {
    match TIMED_TREES.contains(&name) {
        true => &TIMED,
        false => &PLAIN,
    }
}

/// The days of the stamped keys that can lie between `lower` and `upper`
/// (first, last), as `hookgate_key_day` counts them; None when the bounds
/// do not tell. Both bounds must start with the same `xxx_`: every key
/// between them does too, and the 16 hex digits after it order as their
/// stamps do (see `stamp_day`).
pub(super) fn days_between(lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>) -> Option<(i32, i32)> {
    let (Bound::Included(lower) | Bound::Excluded(lower)) = lower else {
        return None;
    };
    let (Bound::Included(upper) | Bound::Excluded(upper)) = upper else {
        return None;
    };
    let prefix = lower.get(..4).filter(|prefix| prefix[3] == b'_')?;
    if upper.get(..4) != Some(prefix) {
        return None;
    }
    Some((stamp_day(lower, Way::Above)?, stamp_day(upper, Way::Below)?))
}

/// Which side of a bound the keys lie.
#[derive(Clone, Copy, PartialEq)]
enum Way {
    Above,
    Below,
}

/// The day of the smallest (`Above` a lower bound) or largest (`Below` an
/// upper one) stamp a key beside `bound` can have. The digits after the
/// first that is not a lowercase hex digit (a prefix scan's upper bound
/// ends in one past `9` or `f`) are free: `0` above, `f` below; that digit
/// becomes the nearest hex digit on the keys' side of it.
fn stamp_day(bound: &[u8], way: Way) -> Option<i32> {
    let mut digits: Vec<u8> = bound[4..].iter().take(16).copied().collect();
    let free = digits
        .iter()
        .position(|digit| !digit.is_ascii_hexdigit() || digit.is_ascii_uppercase());
    if let Some(at) = free {
        digits[at] = match (way, digits[at]) {
            (Way::Above, ..b'0') => b'0',
            (Way::Above, b':'..=b'`') => b'a',
            (Way::Below, b':'..=b'`') => b'9',
            (Way::Below, b'g'..) => b'f',
            _ => return None,
        };
        digits.truncate(at + 1);
    }
    digits.resize(16, if way == Way::Above { b'0' } else { b'f' });
    let stamp = u64::from_str_radix(std::str::from_utf8(&digits).ok()?, 16).ok()?;
    // Stamps past i64 (a first digit past 7) have no day: `hookgate_key_day` says -1.
    if stamp >> 63 != 0 {
        return None;
    }
    i32::try_from((stamp >> 16) / DAY_MS).ok()
}

/// Makes the `keyspace_timed` partition of key `$1`'s day.
pub(super) const MAKE_KEY_PARTITION: &str =
    "SELECT hookgate_day_partition('keyspace_timed', hookgate_key_day($1))";

/// Makes the `journal` partition of day `$1`.
pub(super) const MAKE_JOURNAL_PARTITION: &str = "SELECT hookgate_day_partition('journal', $1)";

/// Runs `statement`. A write that finds no partition for its row's day makes
/// it (`make`: a statement of the above, and its parameter) and runs again.
pub(super) async fn query_making_partition(
    client: &Client,
    statement: &Statement,
    params: &[&(dyn ToSql + Sync)],
    make: Option<(&str, &(dyn ToSql + Sync))>,
) -> Result<Vec<Row>> {
    match (client.query(statement, params).await, make) {
        (Err(error), Some((make, day))) if is_missing_partition(&error) => {
            client.execute(make, &[day]).await.map_err(failed)?;
            client.query(statement, params).await.map_err(failed)
        }
        (rows, _) => rows.map_err(failed),
    }
}

/// Whether a write failed for want of a partition for its row's day.
fn is_missing_partition(error: &tokio_postgres::Error) -> bool {
    // PostgreSQL's "no partition of relation … found for row"; the
    // partitioned tables have no CHECK constraint of their own.
    error.code() == Some(&SqlState::CHECK_VIOLATION)
}

/// How long a drop may wait for its locks: dropping a partition locks the
/// whole table, and every statement on it would queue behind a drop waiting
/// for a long scan (and a day's changes behind a drop waiting for its day).
/// One that waits longer is left to the next sweep.
const DROP_LOCK_TIMEOUT: &str = "1s";

/// A partition of one day.
pub(super) struct Partition {
    pub day: i32,
    /// `<table>_YYYYMMDD`, as `hookgate_day_partition` names it.
    pub name: String,
}

/// Makes the partitions of today and the next two days (by the database's
/// clock) of both tables, so that the first write of a day finds its
/// partition.
pub(super) async fn make_ahead(pool: Pool) -> Result<()> {
    let client = pool.get().await.map_err(unreachable)?;
    let tables = [KEYSPACE_TIMED.0, JOURNAL.0];
    client
        .execute(
            "SELECT hookgate_day_partition(parent, (current_date - date '1970-01-01') + ahead)
             FROM unnest($1::text[]) AS parent, generate_series(0, 2) AS ahead",
            &[&&tables[..]],
        )
        .await
        .map_err(failed)?;
    Ok(())
}

/// The partitions of `table` of days before `before_day`, oldest first.
pub(super) async fn partitions_before(
    pool: Pool,
    table: Partitioned,
    before_day: i32,
) -> Result<Vec<Partition>> {
    let client = pool.get().await.map_err(unreachable)?;
    let rows = client
        .query(
            "SELECT day, name FROM (
                 SELECT c.relname::text AS name,
                     to_date(substring(c.relname FROM length($1) + 2), 'YYYYMMDD')
                         - date '1970-01-01' AS day
                 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = to_regclass($1)
                   AND c.relname ~ ('^' || $1 || '_[0-9]{8}$')) AS partitions
             WHERE day < $2 ORDER BY day",
            &[&table.0, &before_day],
        )
        .await
        .map_err(failed)?;
    Ok(rows
        .iter()
        .map(|row| Partition {
            day: row.get(0),
            name: row.get(1),
        })
        .collect())
}

/// The first key of the advisory locks of days (an arbitrary constant,
/// apart from `key_lock!`'s class); the second is the day.
pub(super) const DAY_LOCK_CLASS: i32 = 0x6461_7973;

/// A transaction that drops partitions. Retention's holds the days it may
/// drop from before it looks at what it keeps until the drops commit (see
/// `RemoteKeyspace::lock`, which holds an event's day shared). Dropped
/// unfinished (a failure in between), it closes its connection: PostgreSQL
/// rolls back and unlocks, and no connection goes back to the pool inside a
/// transaction.
pub(super) struct DayDrop {
    connection: Option<Object>,
}

impl DayDrop {
    /// Begins the transaction.
    pub async fn begin(pool: Pool) -> Result<DayDrop> {
        let connection = pool.get().await.map_err(unreachable)?;
        let drop = DayDrop {
            connection: Some(connection),
        };
        let begin = format!("BEGIN; SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'");
        drop.client().batch_execute(&begin).await.map_err(failed)?;
        Ok(drop)
    }

    /// Begins it holding `days` (ascending: a change holds one day at a
    /// time, so no two wait for each other); None when one was not had in
    /// time.
    pub async fn lock(pool: Pool, days: Vec<i32>) -> Result<Option<DayDrop>> {
        let drop = DayDrop::begin(pool).await?;
        let locked = drop
            .client()
            .execute(
                "SELECT pg_advisory_xact_lock($1, day) FROM unnest($2::integer[]) AS day",
                &[&DAY_LOCK_CLASS, &days],
            )
            .await;
        match locked {
            Err(error) if is_lock_timeout(&error) => Ok(None),
            Err(error) => Err(failed(error)),
            Ok(_) => Ok(Some(drop)),
        }
    }

    /// Drops `partitions` in order and commits: how many went, and the name
    /// of the one whose locks were not had in time, if any (those after it
    /// are left for the next sweep too).
    pub async fn drop_partitions(
        mut self,
        partitions: Vec<Partition>,
    ) -> Result<(u64, Option<String>)> {
        let client = self.client();
        let (mut dropped, mut left) = (0, None);
        for partition in partitions {
            // The name is one read from pg_catalog that matched `<table>_[0-9]{8}`.
            let drop = format!(
                "SAVEPOINT one_day; DROP TABLE IF EXISTS {}; RELEASE SAVEPOINT one_day",
                partition.name
            );
            match client.batch_execute(&drop).await {
                Err(error) if is_lock_timeout(&error) => {
                    let undo = client.batch_execute("ROLLBACK TO SAVEPOINT one_day");
                    undo.await.map_err(failed)?;
                    left = Some(partition.name);
                    break;
                }
                Err(error) => return Err(failed(error)),
                Ok(()) => dropped += 1,
            }
        }
        client.batch_execute("COMMIT").await.map_err(failed)?;
        // Finished: back to the pool.
        drop(self.connection.take());
        Ok((dropped, left))
    }

    fn client(&self) -> &Object {
        self.connection
            .as_ref()
            .expect("a connection until finished")
    }
}

impl Drop for DayDrop {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            drop(Object::take(connection));
        }
    }
}

fn is_lock_timeout(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
}

/// How many advisory locks sessions wait for (for tests making a change
/// wait for a drop).
#[cfg(test)]
pub(super) async fn advisory_lock_waits(pool: Pool) -> Result<i64> {
    let client = pool.get().await.map_err(unreachable)?;
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
            &[],
        )
        .await
        .map_err(failed)?;
    Ok(row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stamp digits of 2026-12-02T00:00:00.000Z, and that day.
    const STAMP: &str = "01a2340d0c000000";
    const DAY: i32 = 20_789;

    fn bound(key: &str) -> Bound<Vec<u8>> {
        Bound::Included(key.as_bytes().to_vec())
    }

    #[test]
    fn the_days_between_two_bounds_come_from_their_stamps_or_nothing() {
        let stamp = STAMP;
        let day_of = |key: &str| days_between(&bound(key), &bound(key)).map(|days| days.0);
        assert_eq!(day_of(&format!("evt_{stamp}")), Some(DAY));
        // A prefix scan's upper bound: past `9` and past `f`.
        let past = |digit: char| format!("evt_{}{digit}", &stamp[..15]);
        let lower = bound(&format!("evt_{stamp}"));
        assert_eq!(days_between(&lower, &bound(&past(':'))), Some((DAY, DAY)));
        assert_eq!(days_between(&lower, &bound(&past('g'))), Some((DAY, DAY)));
        // Different prefixes, no prefix, an open end, a stamp without a day.
        let other = bound(&format!("req_{stamp}"));
        assert_eq!(days_between(&lower, &other), None);
        assert_eq!(days_between(&bound("evt"), &bound("evt")), None);
        assert_eq!(days_between(&lower, &Bound::Unbounded), None);
        assert_eq!(day_of("evt_f000000000000000"), None);
    }
}

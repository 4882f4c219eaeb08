//! Time partitions of the remote keyspace (`migrations/0004_time_partitions.sql`).
//!
//! The trees that grow with traffic and go by age ([`TIMED_TREES`]: keyed by
//! time-sortable ids, see `ids.rs`) live in `keyspace_timed`, one range
//! partition per UTC day of their keys' ids (`hookgate_key_day`); every other
//! tree in `keyspace`. Retention then forgets a whole day with one
//! `DROP TABLE` (no row deletes, nothing for VACUUM) instead of deleting its
//! rows one by one. Each statement names the day of its key, so a single-key
//! call reads one partition's index.
//!
//! A day's partition is made ahead by the sweep (today and the next two
//! days), and on demand: a write finding no partition for its key's day makes
//! it and runs again (a node whose sweeps are off, or a write into a day
//! another node has just dropped).

use super::remote::{failed, unreachable};
use super::Result;
use deadpool_postgres::Pool;
use tokio_postgres::error::SqlState;

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

/// Makes the partition of key `$1`'s day (after [`is_missing_partition`]).
pub(super) const MAKE_PARTITION: &str = "SELECT hookgate_time_partition(hookgate_key_day($1))";

/// Whether a write failed for want of a partition for its row's day.
pub(super) fn is_missing_partition(error: &tokio_postgres::Error) -> bool {
    // PostgreSQL's "no partition of relation … found for row"; the timed
    // table has no CHECK constraint of its own.
    error.code() == Some(&SqlState::CHECK_VIOLATION)
}

/// How long a drop may wait for its locks: dropping a partition locks the
/// whole table, and every statement on it would queue behind a drop waiting
/// for a long scan. One that waits longer is left to the next sweep.
const DROP_LOCK_TIMEOUT: &str = "1s";

/// A partition of one day.
pub(super) struct Partition {
    pub day: i32,
    /// `keyspace_timed_YYYYMMDD`, as `hookgate_time_partition` names it.
    pub name: String,
}

/// Makes the partitions of today and the next two days (by the database's
/// clock), so that the first write of a day finds its partition.
pub(super) async fn make_ahead(pool: Pool) -> Result<()> {
    let client = pool.get().await.map_err(unreachable)?;
    client
        .batch_execute(
            "SELECT hookgate_time_partition((current_date - date '1970-01-01') + ahead)
             FROM generate_series(0, 2) AS ahead",
        )
        .await
        .map_err(failed)
}

/// The partitions of days before `before_day`, oldest first.
pub(super) async fn partitions_before(pool: Pool, before_day: i32) -> Result<Vec<Partition>> {
    let client = pool.get().await.map_err(unreachable)?;
    let rows = client
        .query(
            "SELECT day, name FROM (
                 SELECT c.relname::text AS name,
                     to_date(substring(c.relname FROM 16), 'YYYYMMDD') - date '1970-01-01' AS day
                 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = 'keyspace_timed'::regclass
                   AND c.relname ~ '^keyspace_timed_[0-9]{8}$') AS partitions
             WHERE day < $1 ORDER BY day",
            &[&before_day],
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

/// Drops one partition; false when its locks were not had in time.
pub(super) async fn drop_partition(pool: Pool, partition: Partition) -> Result<bool> {
    let mut client = pool.get().await.map_err(unreachable)?;
    let transaction = client.transaction().await.map_err(failed)?;
    // The name is one read from pg_catalog that matched `keyspace_timed_[0-9]{8}`.
    let dropped = transaction
        .batch_execute(&format!(
            "SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'; DROP TABLE IF EXISTS {}",
            partition.name
        ))
        .await;
    match dropped {
        Err(error) if error.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => Ok(false),
        Err(error) => Err(failed(error)),
        Ok(()) => {
            transaction.commit().await.map_err(failed)?;
            Ok(true)
        }
    }
}

//! Day partitions in PostgreSQL: the remote keyspace's time-ordered trees
//! (`keyspace_timed`, migration 0004) and the request journal (`journal`,
//! migration 0006) are partitioned by UTC day, one `<table>_YYYYMMDD` each.
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
use deadpool_postgres::Pool;
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
    /// Removes the key only where it holds `$3`.
    pub remove_held: &'static str,
    #[cfg(test)]
    pub count: &'static str,
    pub clear: &'static str,
}

/// A table's statements from how a key is matched and how a row is written.
macro_rules! table {
    ($name:literal, $timed:literal, key: $key:literal, columns: $columns:literal, values: $values:literal, unique: $unique:literal) => {
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
                "INSERT INTO ",
                $name,
                " (",
                $columns,
                ") VALUES (",
                $values,
                ") ",
                "ON CONFLICT (",
                $unique,
                ") DO UPDATE SET value = EXCLUDED.value ",
                "RETURNING (SELECT value FROM before)"
            ),
            remove: concat!("DELETE FROM ", $name, " WHERE ", $key, " RETURNING value"),
            insert_new: concat!(
                "INSERT INTO ",
                $name,
                " (",
                $columns,
                ") VALUES (",
                $values,
                ") ",
                "ON CONFLICT (",
                $unique,
                ") DO NOTHING RETURNING 1"
            ),
            replace: concat!(
                "UPDATE ",
                $name,
                " SET value = $4 WHERE ",
                $key,
                " AND value = $3 RETURNING 1"
            ),
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
    };
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
/// for a long scan. One that waits longer is left to the next sweep.
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

/// Drops one partition; false when its locks were not had in time.
pub(super) async fn drop_partition(pool: Pool, partition: Partition) -> Result<bool> {
    let mut client = pool.get().await.map_err(unreachable)?;
    let transaction = client.transaction().await.map_err(failed)?;
    // The name is one read from pg_catalog that matched `<table>_[0-9]{8}`.
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

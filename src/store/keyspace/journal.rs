//! The request journal in PostgreSQL (cluster mode): the `journal` table of
//! `migrations/0003_journal.sql`. The commit thread writes each batch in one
//! statement (one transaction: the ingress answers after its COMMIT), so a
//! node's dead disk loses nothing it acknowledged, and another node can
//! route what it left unrouted.
//!
//! A record's `Location` is `(day, seq, len)`: `seq` numbers one node's
//! records in commit order (the router's watermark compares them), `day`
//! is when it was journaled, the unit retention drops (a file journal's
//! segment): the table has one partition per day (`partitions`), shared by
//! every node, so a day goes once every node is done with it.

use super::partitions::{query_making_partition, MAKE_JOURNAL_PARTITION};
use super::remote::{failed, unreachable, RemoteKeyspace};
use super::{Result, StoreError};
use crate::store::journal::Location;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_postgres::types::ToSql;

/// Writes a batch: takes the node's next `seq` numbers and inserts one row
/// per record, in one statement. Returns the last number taken.
const APPEND: &str = "
WITH taken AS (
    INSERT INTO journal_nodes (node, last_seq) VALUES ($1, cardinality($3::bytea[]))
    ON CONFLICT (node) DO UPDATE SET last_seq = journal_nodes.last_seq + cardinality($3::bytea[])
    RETURNING last_seq
), written AS (
    INSERT INTO journal (node, seq, day, record)
    SELECT $1, taken.last_seq - cardinality($3::bytea[]) + batch.n, $2, batch.record
    FROM taken, unnest($3::bytea[]) WITH ORDINALITY AS batch(record, n)
)
SELECT last_seq FROM taken";

/// Records read per round trip when replaying or scanning.
const PAGE: i64 = 500;

/// One node's journal in the database; cheap to clone.
#[derive(Clone)]
pub struct RemoteJournal {
    keyspace: RemoteKeyspace,
    node: Arc<str>,
    /// Why the last append failed; None once one succeeds (readiness).
    last_failure: Arc<Mutex<Option<String>>>,
}

impl RemoteKeyspace {
    /// The journal of node `node` (named by `data_dir/node-id`).
    pub fn journal(&self, node: &str) -> RemoteJournal {
        RemoteJournal {
            keyspace: self.clone(),
            node: node.into(),
            last_failure: Arc::default(),
        }
    }
}

impl RemoteJournal {
    /// The node whose journal this is.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The same database, another node's journal (a dead node's tail).
    pub fn of(&self, node: &str) -> RemoteJournal {
        self.keyspace.journal(node)
    }

    /// Writes records in one transaction; returns where each one lies once
    /// it is committed.
    pub fn append(&self, records: &[&[u8]]) -> Result<Vec<Location>> {
        let appended = self.append_committed(records);
        *self.last_failure.lock().expect("journal failure lock") =
            appended.as_ref().err().map(StoreError::to_string);
        appended
    }

    fn append_committed(&self, records: &[&[u8]]) -> Result<Vec<Location>> {
        let day = today();
        let rows: Vec<Vec<u8>> = records.iter().map(|record| record.to_vec()).collect();
        let lens: Vec<u32> = records.iter().map(|record| record.len() as u32).collect();
        let node = self.node.to_string();
        let last: i64 = self.keyspace.call(move |pool| async move {
            let client = pool.get().await.map_err(unreachable)?;
            let statement = client.prepare_cached(APPEND).await.map_err(failed)?;
            let make = Some((MAKE_JOURNAL_PARTITION, &day as _));
            let params: [&(dyn ToSql + Sync); 3] = [&node, &day, &rows];
            let taken = query_making_partition(&client, &statement, &params, make).await?;
            let last = taken.first().map(|row| row.get(0));
            last.ok_or_else(|| StoreError::Unavailable("the journal took no seq".into()))
        })?;
        let first = last as u64 + 1 - lens.len() as u64;
        Ok((first..)
            .zip(lens)
            .map(|(seq, len)| Location {
                segment: day as u32,
                offset: seq,
                len,
            })
            .collect())
    }

    /// Why the last append failed, unless one has succeeded since.
    pub fn last_failure(&self) -> Option<String> {
        self.last_failure
            .lock()
            .expect("journal failure lock")
            .clone()
    }

    /// The record at `location`.
    pub fn read(&self, location: Location) -> Result<Vec<u8>> {
        let node = self.node.to_string();
        let (seq, day) = (location.offset as i64, location.segment as i32);
        let record: Option<Vec<u8>> = self.keyspace.call(move |pool| async move {
            let client = pool.get().await.map_err(unreachable)?;
            let row = client
                .query_opt(
                    "SELECT record FROM journal WHERE node = $1 AND seq = $2 AND day = $3",
                    &[&node, &seq, &day],
                )
                .await
                .map_err(failed)?;
            Ok(row.map(|row| row.get(0)))
        })?;
        record.ok_or_else(|| StoreError::Unavailable(format!("no journal record at {location:?}")))
    }

    /// Calls `visit` with every record after `after` (all for None), in
    /// commit order.
    pub fn each_after<E: From<StoreError>>(
        &self,
        after: Option<Location>,
        visit: impl FnMut(Location, Vec<u8>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        self.each(after.map_or(0, |location| location.offset), None, visit)
    }

    /// The days this node's records were journaled on: the oldest, and one
    /// past the newest (today's alone when there are none).
    pub fn days(&self) -> Result<Range<u32>> {
        let node = self.node.to_string();
        let (oldest, newest): (Option<i32>, Option<i32>) =
            self.keyspace.call(move |pool| async move {
                let client = pool.get().await.map_err(unreachable)?;
                let row = client
                    .query_one(
                        "SELECT min(day), max(day) FROM journal WHERE node = $1",
                        &[&node],
                    )
                    .await
                    .map_err(failed)?;
                Ok((row.get(0), row.get(1)))
            })?;
        let today = today() as u32;
        let oldest = oldest.map_or(today, |day| day as u32);
        Ok(oldest..newest.map_or(today, |day| day as u32) + 1)
    }

    /// The day of this node's first record past `seq`, or today's (being
    /// written) when there is none.
    pub fn first_day_after(&self, seq: u64) -> Result<u32> {
        let node = self.node.to_string();
        let seq = seq as i64;
        let day: Option<i32> = self.keyspace.call(move |pool| async move {
            let client = pool.get().await.map_err(unreachable)?;
            let row = client
                .query_opt(
                    "SELECT day FROM journal WHERE node = $1 AND seq > $2 ORDER BY seq LIMIT 1",
                    &[&node, &seq],
                )
                .await
                .map_err(failed)?;
            Ok(row.map(|row| row.get(0)))
        })?;
        Ok(day.map_or(today(), |day| day.min(today())) as u32)
    }

    /// Calls `visit` with the records of `day`, in commit order.
    pub fn each_on<E: From<StoreError>>(
        &self,
        day: u32,
        visit: impl FnMut(Location, Vec<u8>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        self.each(0, Some(day as i32), visit)
    }

    /// Calls `visit` with the records past `seq` (of `day` alone when
    /// given), a page at a time.
    fn each<E: From<StoreError>>(
        &self,
        mut after: u64,
        day: Option<i32>,
        mut visit: impl FnMut(Location, Vec<u8>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        loop {
            let page = self.page(after as i64, day)?;
            let full = page.len() as i64 == PAGE;
            for (location, record) in page {
                after = location.offset;
                visit(location, record)?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    fn page(&self, after: i64, day: Option<i32>) -> Result<Vec<(Location, Vec<u8>)>> {
        let node = self.node.to_string();
        self.keyspace.call(move |pool| async move {
            let client = pool.get().await.map_err(unreachable)?;
            let rows = client
                .query(
                    "SELECT seq, day, record FROM journal WHERE node = $1 AND seq > $2
                     AND ($3::integer IS NULL OR day = $3) ORDER BY seq LIMIT $4",
                    &[&node, &after, &day, &PAGE],
                )
                .await
                .map_err(failed)?;
            Ok(rows.iter().map(located).collect())
        })
    }

    /// Drops the days before `day`, every node's records of them (retention:
    /// none is kept); returns how many days went.
    pub fn drop_days_before(&self, day: u32) -> Result<u64> {
        self.keyspace
            .drop_journal_days_before(i32::try_from(day).unwrap_or(i32::MAX))
    }

    /// The journals of every node that journaled, this one's included.
    pub fn every_node(&self) -> Result<Vec<RemoteJournal>> {
        let nodes: Vec<String> = self.keyspace.call(|pool| async move {
            let client = pool.get().await.map_err(unreachable)?;
            let rows = (client.query("SELECT node FROM journal_nodes ORDER BY node", &[]))
                .await
                .map_err(failed)?;
            Ok(rows.iter().map(|row| row.get(0)).collect())
        })?;
        Ok(nodes.iter().map(|node| self.of(node)).collect())
    }

    /// The other nodes that journaled and have not beaten (`nodes`) within
    /// `lease`: dead, or stopped. Whatever their journals hold past their
    /// watermarks is the leader's to route.
    pub fn silent_nodes(&self, lease: Duration) -> Result<Vec<String>> {
        let node = self.node.to_string();
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        self.keyspace.call(move |pool| async move {
            let client = pool.get().await.map_err(unreachable)?;
            let rows = client
                .query(
                    "SELECT node FROM journal_nodes j WHERE node <> $1 AND NOT EXISTS (
                         SELECT 1 FROM nodes WHERE id = j.node
                         AND seen_at > now() - $2::bigint * interval '1 millisecond')
                     ORDER BY node",
                    &[&node, &lease_ms],
                )
                .await
                .map_err(failed)?;
            Ok(rows.iter().map(|row| row.get(0)).collect())
        })
    }
}

/// A row of (seq, day, record) as where the record lies, and the record.
fn located(row: &tokio_postgres::Row) -> (Location, Vec<u8>) {
    let record: Vec<u8> = row.get(2);
    let location = Location {
        segment: row.get::<_, i32>(1) as u32,
        offset: row.get::<_, i64>(0) as u64,
        len: record.len() as u32,
    };
    (location, record)
}

/// Days since 1970-01-01, UTC.
fn today() -> i32 {
    (crate::ids::now_ms() / 86_400_000) as i32
}

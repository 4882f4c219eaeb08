//! The keyspace in PostgreSQL: tables keyed by (tree, key), the time-ordered
//! trees in daily partitions of their own (see `partitions`).
//!
//! The store's calls are synchronous and come from any thread (blocking pool
//! threads, the commit and indexer threads). The keyspace owns a small tokio
//! runtime that holds the connection pool; a call spawns its query there and
//! waits for the answer on a channel, so it works whether or not the calling
//! thread is inside another runtime. A database that cannot be reached (or
//! does not answer within the statement timeout) is `StoreError::Unavailable`.

use super::partitions::{self, key_lock, Partitioned, Table, DAY_MS, JOURNAL, KEYSPACE_TIMED};
use super::{Result, StoreError, Swapped};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use sled::{CompareAndSwapError, IVec};
use std::collections::VecDeque;
use std::future::Future;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;

/// The migrations, in order; each runs once per database (see `migrate`).
pub(super) const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../../migrations/0001_keyspace.sql")),
    (2, include_str!("../../../migrations/0002_cluster.sql")),
    (3, include_str!("../../../migrations/0003_journal.sql")),
    (
        4,
        include_str!("../../../migrations/0004_time_partitions.sql"),
    ),
    (
        5,
        include_str!("../../../migrations/0005_signing_secret.sql"),
    ),
    (6, include_str!("../../../migrations/0006_bulk_retries.sql")),
    (
        7,
        include_str!("../../../migrations/0007_journal_partitions.sql"),
    ),
    (
        8,
        include_str!("../../../migrations/0008_queue_announced.sql"),
    ),
];

/// An arbitrary constant: the advisory lock that lets one node migrate at a time.
const MIGRATION_LOCK: i64 = 0x686f_6f6b_6761_7465;

/// How long opening a connection may take before the database counts as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How to reach the database (`[store]` in gateway.toml).
#[derive(Clone, Debug)]
pub struct RemoteSettings {
    pub config: tokio_postgres::Config,
    pub pool_size: usize,
    pub statement_timeout: Duration,
}

impl RemoteSettings {
    /// Settings for a connection string (`postgres://…` or `host=… dbname=…`).
    pub fn parse(
        url: &str,
        pool_size: usize,
        statement_timeout: Duration,
    ) -> std::result::Result<Self, String> {
        let config = url
            .parse()
            .map_err(|error| format!("not a PostgreSQL connection string ({error})"))?;
        Ok(RemoteSettings {
            config,
            pool_size,
            statement_timeout,
        })
    }
}

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct RemoteKeyspace {
    client: Arc<Client>,
}

struct Client {
    /// Always Some until dropped (then shut down without waiting: a store
    /// may be dropped on a reactor thread, where waiting is not allowed).
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
    /// The connections that hold `RemoteLock`s, apart from `pool`: a lock
    /// holder's own statements then always find a connection. A quarter of
    /// its size: a lock is held for a few statements, by one thread a stripe.
    locks: Pool,
    /// Rung for each event queued: `announce_queued` tells the cluster.
    queued: Arc<Notify>,
    #[cfg(test)]
    locks_taken: std::sync::atomic::AtomicUsize,
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl RemoteKeyspace {
    /// Connects and brings the schema up to date.
    pub fn connect(settings: &RemoteSettings) -> Result<RemoteKeyspace> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hookgate-postgres")
            .enable_all()
            .build()
            .map_err(|error| StoreError::Unavailable(format!("PostgreSQL client: {error}")))?;
        let mut config = settings.config.clone();
        let timeout_ms = settings.statement_timeout.as_millis();
        // Generic plans: PostgreSQL would plan every statement on the
        // partitioned `keyspace_timed` anew (pruning its partitions at plan
        // time, 0.2-0.4 ms each) where a generic plan prunes them as it starts
        // (measured in PL/pgSQL: 6x as long per write and read, against 2x
        // a plain table's with generic plans). Statements on `keyspace` get
        // generic plans either way.
        config
            .options(format!(
                "-c statement_timeout={timeout_ms} -c plan_cache_mode=force_generic_plan"
            ))
            .application_name("hookgate")
            .connect_timeout(CONNECT_TIMEOUT);
        let pool = |max_size: usize| {
            let manager = Manager::from_config(
                config.clone(),
                NoTls,
                ManagerConfig {
                    recycling_method: RecyclingMethod::Fast,
                },
            );
            Pool::builder(manager)
                .max_size(max_size)
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .wait_timeout(Some(settings.statement_timeout))
                .create_timeout(Some(CONNECT_TIMEOUT))
                .build()
                .map_err(|error| StoreError::Unavailable(format!("PostgreSQL pool: {error}")))
        };
        let (pool, locks) = (
            pool(settings.pool_size.max(1))?,
            pool((settings.pool_size / 4).max(2))?,
        );
        let queued = Arc::new(Notify::new());
        runtime.spawn(announce_queued(pool.clone(), queued.clone()));
        let keyspace = RemoteKeyspace {
            client: Arc::new(Client {
                runtime: Some(runtime),
                pool,
                locks,
                queued,
                #[cfg(test)]
                locks_taken: Default::default(),
            }),
        };
        keyspace.call(migrate)?;
        Ok(keyspace)
    }

    pub fn tree(&self, name: &str) -> RemoteTree {
        RemoteTree {
            keyspace: self.clone(),
            name: name.into(),
            table: partitions::table_of(name),
        }
    }

    /// Drops the partitions of the days that end at or before `before_ms`
    /// and at or before `oldest_kept()` (ms; None: nothing is kept), which is
    /// asked only when some partition is old enough; returns how many went.
    /// Also makes the partitions of the days ahead.
    ///
    /// `oldest_kept` is asked with the old days locked: a change to an
    /// event of one of them (a retry by hand) holds its day shared (see
    /// `lock`) from before it reads the event until its queue entry is
    /// written. So the answer counts every retry made before, and every
    /// retry after waits for the drop and finds no event: none is queued
    /// into a day being dropped.
    pub fn drop_partitions_before(
        &self,
        before_ms: u64,
        oldest_kept: impl FnOnce() -> Result<Option<u64>>,
    ) -> Result<u64> {
        self.call(partitions::make_ahead)?;
        let old = self.partitions_before(KEYSPACE_TIMED, day_of(before_ms))?;
        if old.is_empty() {
            return Ok(0);
        }
        let days = old.iter().map(|partition| partition.day).collect();
        let Some(drop) = self.call(move |pool| partitions::DayDrop::lock(pool, days))? else {
            tracing::warn!("retention could not lock the days to drop: the next sweep tries again");
            return Ok(0);
        };
        let limit = oldest_kept()?.map_or(before_ms, |kept| kept.min(before_ms));
        let doomed = old.into_iter().filter(|p| p.day < day_of(limit)).collect();
        self.drop_partitions(drop, doomed)
    }

    /// Drops the journal's partitions of days before `before_day`; returns
    /// how many went.
    pub(super) fn drop_journal_days_before(&self, before_day: i32) -> Result<u64> {
        let old = self.partitions_before(JOURNAL, before_day)?;
        if old.is_empty() {
            return Ok(0);
        }
        // Nothing writes into an old day of the journal: no day to lock.
        let drop = self.call(partitions::DayDrop::begin)?;
        self.drop_partitions(drop, old)
    }

    fn partitions_before(
        &self,
        table: Partitioned,
        before_day: i32,
    ) -> Result<Vec<partitions::Partition>> {
        self.call(move |pool| partitions::partitions_before(pool, table, before_day))
    }

    /// Drops `doomed` (oldest first) in `drop`'s transaction; returns how
    /// many went. A drop that cannot have its locks in time ends the run
    /// (the next sweep goes on).
    fn drop_partitions(
        &self,
        drop: partitions::DayDrop,
        doomed: Vec<partitions::Partition>,
    ) -> Result<u64> {
        let (dropped, left) = self.call(move |_| drop.drop_partitions(doomed))?;
        if let Some(name) = left {
            tracing::warn!(partition = %name, "retention could not lock a partition to drop it: the next sweep tries again");
        }
        Ok(dropped)
    }

    /// How many advisory locks sessions wait for (for tests).
    #[cfg(test)]
    pub fn advisory_lock_waits(&self) -> Result<i64> {
        self.call(partitions::advisory_lock_waits)
    }

    /// The names of the day partitions of the keyspace, oldest first (for
    /// tests: what pg_catalog lists).
    #[cfg(test)]
    pub fn time_partitions(&self) -> Result<Vec<String>> {
        self.partition_names(KEYSPACE_TIMED)
    }

    /// Those of the journal.
    #[cfg(test)]
    pub fn journal_partitions(&self) -> Result<Vec<String>> {
        self.partition_names(JOURNAL)
    }

    #[cfg(test)]
    fn partition_names(&self, table: Partitioned) -> Result<Vec<String>> {
        let all = self.partitions_before(table, i32::MAX)?;
        Ok(all.into_iter().map(|partition| partition.name).collect())
    }

    /// How many rows of the day partitions hold keys from before `before_ms`
    /// (for tests measuring what a drop forgot).
    #[cfg(test)]
    pub fn rows_before(&self, before_ms: u64) -> Result<i64> {
        let day = day_of(before_ms);
        self.call(move |pool| async move {
            let client = pool.get().await.map_err(unreachable)?;
            let row = client
                .query_one(
                    "SELECT count(*) FROM keyspace_timed WHERE day >= 0 AND day < $1",
                    &[&day],
                )
                .await
                .map_err(failed)?;
            Ok(row.get(0))
        })
    }

    /// Waits until no other holder, on this node or another, holds the
    /// lock named `name`, and holds it until the answer is dropped (a
    /// session advisory lock on a connection of `locks`). A name that is a
    /// time-stamped id (an event's) holds its day too, shared: retention
    /// drops no partition of that day meanwhile (`partitions::DayDrop`).
    pub fn lock(&self, name: &str) -> Result<RemoteLock> {
        #[cfg(test)]
        self.client
            .locks_taken
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let day = crate::ids::created_ms(name).map(day_of);
        let name = name.as_bytes().to_vec();
        let locks = self.client.locks.clone();
        let (connection, name) = self.call(move |_| async move {
            let connection = locks.get().await.map_err(unreachable)?;
            lock_statement(&connection, LOCK, &name, day)
                .await
                .map_err(failed)?;
            Ok((connection, name))
        })?;
        Ok(RemoteLock {
            keyspace: self.clone(),
            connection: Some(connection),
            name,
            day,
        })
    }

    /// Tells every node that an event was queued (see `announce_queued`).
    pub fn queued(&self) {
        self.client.queued.notify_one();
    }

    /// How many times `lock` was called (for tests of the paths that take none).
    #[cfg(test)]
    pub fn locks_taken(&self) -> usize {
        self.client
            .locks_taken
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `work` on the keyspace's runtime with the pool, waiting for its answer.
    pub(super) fn call<T, F, Fut>(&self, work: F) -> Result<T>
    where
        F: FnOnce(Pool) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        let work = work(self.client.pool.clone());
        self.runtime().spawn(async move {
            let _ = answer.send(work.await);
        });
        answered
            .recv()
            .map_err(|_| StoreError::Unavailable("the PostgreSQL client stopped".into()))?
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        let runtime = self.client.runtime.as_ref();
        runtime.expect("a runtime until dropped")
    }
}

/// `RemoteKeyspace::lock`'s statements, for a name alone and for a name and
/// its day: `$1` is the name, `$2` the days' lock class and `$3` the day.
const LOCK: [&str; 2] = [
    concat!("SELECT pg_advisory_lock(", key_lock!("$1"), ")"),
    concat!(
        "SELECT pg_advisory_lock(",
        key_lock!("$1"),
        "), pg_advisory_lock_shared($2, $3)"
    ),
];
const UNLOCK: [&str; 2] = [
    concat!("SELECT pg_advisory_unlock(", key_lock!("$1"), ")"),
    concat!(
        "SELECT pg_advisory_unlock(",
        key_lock!("$1"),
        "), pg_advisory_unlock_shared($2, $3)"
    ),
];

/// Runs `statements` (`LOCK` or `UNLOCK`) for `name`, and its `day` if any.
async fn lock_statement(
    connection: &deadpool_postgres::Object,
    [alone, with_day]: [&str; 2],
    name: &[u8],
    day: Option<i32>,
) -> std::result::Result<u64, tokio_postgres::Error> {
    match day {
        None => connection.execute(alone, &[&name]).await,
        Some(day) => {
            let class = partitions::DAY_LOCK_CLASS;
            connection.execute(with_day, &[&name, &class, &day]).await
        }
    }
}

/// A held `RemoteKeyspace::lock`; dropping it unlocks without waiting.
pub struct RemoteLock {
    keyspace: RemoteKeyspace,
    connection: Option<deadpool_postgres::Object>,
    name: Vec<u8>,
    /// The day held shared too, if any.
    day: Option<i32>,
}

impl Drop for RemoteLock {
    fn drop(&mut self) {
        let (Some(connection), name, day) = (
            self.connection.take(),
            std::mem::take(&mut self.name),
            self.day,
        ) else {
            return;
        };
        self.keyspace.runtime().spawn(async move {
            let unlocked = lock_statement(&connection, UNLOCK, &name, day).await;
            if unlocked.is_err() {
                // Never back into the pool still locked: closing the
                // session is what unlocks it then.
                drop(deadpool_postgres::Object::take(connection));
            }
        });
    }
}

/// A node tells the cluster that it queued events at most this often: a
/// NOTIFY takes a lock of the whole database as it commits, and a lane is
/// rung at most every 100 ms anyway (`cluster::announcements`).
const QUEUED_ANNOUNCED_EVERY: Duration = Duration::from_millis(50);

/// Announces `queue` on the channel `hookgate` (as the triggers announce
/// other changes, migrations/0002_cluster.sql) once for every burst of
/// events queued: at once after a quiet spell, then at most once every
/// `QUEUED_ANNOUNCED_EVERY` (rings while one is sent make one more).
async fn announce_queued(pool: Pool, queued: Arc<Notify>) {
    loop {
        queued.notified().await;
        let announced = match pool.get().await {
            Ok(client) => client
                .batch_execute("NOTIFY hookgate, 'queue'")
                .await
                .map_err(failed),
            Err(error) => Err(unreachable(error)),
        };
        if let Err(error) = announced {
            // The cluster's lanes look again at their next round anyway.
            tracing::warn!(%error, "could not tell the cluster of events queued");
        }
        tokio::time::sleep(QUEUED_ANNOUNCED_EVERY).await;
    }
}

/// Applies the migrations this database lacks, one node at a time.
async fn migrate(pool: Pool) -> Result<()> {
    let mut client = pool.get().await.map_err(unreachable)?;
    let transaction = client.transaction().await.map_err(failed)?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(failed)?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .map_err(failed)?;
    for (version, sql) in MIGRATIONS {
        let applied = transaction
            .query_opt(
                "SELECT 1 FROM schema_migrations WHERE version = $1",
                &[version],
            )
            .await
            .map_err(failed)?;
        if applied.is_none() {
            transaction.batch_execute(sql).await.map_err(failed)?;
            transaction
                .execute(
                    "INSERT INTO schema_migrations (version) VALUES ($1)",
                    &[version],
                )
                .await
                .map_err(failed)?;
        }
    }
    transaction.commit().await.map_err(failed)
}

/// The UTC day (since the epoch) holding `ms`, as `hookgate_key_day` counts.
fn day_of(ms: u64) -> i32 {
    i32::try_from(ms / DAY_MS).unwrap_or(i32::MAX)
}

pub(super) fn unreachable(error: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Unavailable(format!("PostgreSQL: {error}"))
}

pub(super) fn failed(error: tokio_postgres::Error) -> StoreError {
    StoreError::Unavailable(format!("PostgreSQL: {error}"))
}

/// One tree: the rows of its table whose `tree` is its name.
#[derive(Clone)]
pub struct RemoteTree {
    keyspace: RemoteKeyspace,
    name: Arc<str>,
    table: &'static Table,
}

/// Which way a page of a range is read.
#[derive(Clone, Copy)]
pub(super) enum Way {
    Forward,
    Backward,
}

impl RemoteTree {
    /// Runs one statement with the tree's name as `$1` and `args` after it
    /// (the key first, if any). A write into a day without its partition
    /// makes the partition and runs again.
    fn query(&self, sql: &'static str, args: Vec<Vec<u8>>) -> Result<Vec<tokio_postgres::Row>> {
        let name = self.name.to_string();
        let timed = self.table.timed;
        self.keyspace.call(move |pool| async move {
            let client = pool.get().await.map_err(unreachable)?;
            let statement = client.prepare_cached(sql).await.map_err(failed)?;
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&name];
            params.extend(args.iter().map(|arg| arg as &(dyn ToSql + Sync)));
            // A timed tree's key names the day of its partition.
            let make = (args.first())
                .filter(|_| timed)
                .map(|key| (partitions::MAKE_KEY_PARTITION, key as &(dyn ToSql + Sync)));
            partitions::query_making_partition(&client, &statement, &params, make).await
        })
    }

    /// The first column of the first row, if any.
    fn value(&self, sql: &'static str, args: Vec<Vec<u8>>) -> Result<Option<IVec>> {
        let rows = self.query(sql, args)?;
        Ok(rows
            .first()
            .and_then(|row| row.get::<_, Option<Vec<u8>>>(0))
            .map(IVec::from))
    }

    pub(super) fn get(&self, key: &[u8]) -> Result<Option<IVec>> {
        self.value(self.table.get, vec![key.to_vec()])
    }

    pub(super) fn insert(&self, key: &[u8], value: IVec) -> Result<Option<IVec>> {
        self.value(self.table.insert, vec![key.to_vec(), value.to_vec()])
    }

    pub(super) fn remove(&self, key: &[u8]) -> Result<Option<IVec>> {
        self.value(self.table.remove, vec![key.to_vec()])
    }

    pub(super) fn compare_and_swap(
        &self,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<IVec>,
    ) -> Result<Swapped> {
        let key = key.to_vec();
        // Each statement changes the row only if it holds `old`; a row
        // counts as swapped when the statement returns it.
        let swapped = match (old, &new) {
            (None, Some(new)) => {
                self.query(self.table.insert_new, vec![key.clone(), new.to_vec()])?
            }
            (Some(old), Some(new)) => self.query(
                self.table.replace,
                vec![key.clone(), old.to_vec(), new.to_vec()],
            )?,
            (Some(old), None) => {
                self.query(self.table.remove_held, vec![key.clone(), old.to_vec()])?
            }
            (None, None) => match self.get(&key)? {
                None => vec![],
                Some(current) => return Ok(refused(Some(current), new)),
            },
        };
        if !swapped.is_empty() || (old.is_none() && new.is_none()) {
            return Ok(Ok(()));
        }
        Ok(refused(self.get(&key)?, new))
    }

    /// Sets `key` to `new` only where it holds `old` and no node holds the
    /// lock named by the key; true when it did.
    pub(super) fn replace_unlocked(&self, key: &[u8], old: &[u8], new: IVec) -> Result<bool> {
        let args = vec![key.to_vec(), old.to_vec(), new.to_vec()];
        Ok(!self.query(self.table.replace_unlocked, args)?.is_empty())
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> Result<usize> {
        let rows = self.query(self.table.count, vec![])?;
        let count: i64 = rows.first().map_or(0, |row| row.get(0));
        Ok(usize::try_from(count).unwrap_or(usize::MAX))
    }

    pub(super) fn clear(&self) -> Result<()> {
        self.query(self.table.clear, vec![])?;
        Ok(())
    }

    pub(super) fn range(&self, lower: Bound<Vec<u8>>, upper: Bound<Vec<u8>>) -> RemoteIter {
        RemoteIter {
            tree: self.clone(),
            lower,
            upper,
            front: VecDeque::new(),
            back: VecDeque::new(),
            exhausted: false,
            page: FIRST_PAGE,
        }
    }

    /// Up to `limit` entries within the bounds, from the lower end
    /// (`Forward`) or the upper one.
    fn page(
        &self,
        lower: &Bound<Vec<u8>>,
        upper: &Bound<Vec<u8>>,
        way: Way,
        limit: i64,
    ) -> Result<Vec<(IVec, IVec)>> {
        // A timed table's page reads only the partitions of the bounds' days
        // (and keys without a time), where the bounds tell.
        let days = (self.table.timed)
            .then(|| partitions::days_between(lower, upper))
            .flatten();
        let sql = page_sql(self.table.name, lower, upper, days.is_some(), way);
        let bounds: Vec<Vec<u8>> = [lower, upper]
            .into_iter()
            .filter_map(|bound| match bound {
                Bound::Included(key) | Bound::Excluded(key) => Some(key.clone()),
                Bound::Unbounded => None,
            })
            .collect();
        let name = self.name.to_string();
        let rows = self.keyspace.call(move |pool| async move {
            let client = pool.get().await.map_err(unreachable)?;
            let statement = client.prepare_cached(&sql).await.map_err(failed)?;
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&name];
            params.extend(bounds.iter().map(|arg| arg as &(dyn ToSql + Sync)));
            if let Some((first, last)) = &days {
                params.extend([first as &(dyn ToSql + Sync), last]);
            }
            params.push(&limit);
            client.query(&statement, &params).await.map_err(failed)
        })?;
        Ok(rows
            .iter()
            .map(|row| {
                let key: Vec<u8> = row.get(0);
                let value: Vec<u8> = row.get(1);
                (IVec::from(key), IVec::from(value))
            })
            .collect())
    }
}

fn refused(current: Option<IVec>, proposed: Option<IVec>) -> Swapped {
    Err(CompareAndSwapError { current, proposed })
}

/// The query for one page of a range: its bounds become `$2`, `$3` (those
/// that bound anything), then the first and last day when `by_day`, the
/// limit the last parameter.
pub(super) fn page_sql(
    table: &str,
    lower: &Bound<Vec<u8>>,
    upper: &Bound<Vec<u8>>,
    by_day: bool,
    way: Way,
) -> String {
    let mut sql = format!("SELECT key, value FROM {table} WHERE tree = $1");
    let mut next = 2;
    for (bound, included, excluded) in [(lower, ">=", ">"), (upper, "<=", "<")] {
        let op = match bound {
            Bound::Included(_) => included,
            Bound::Excluded(_) => excluded,
            Bound::Unbounded => continue,
        };
        sql.push_str(&format!(" AND key {op} ${next}"));
        next += 1;
    }
    if by_day {
        // Keys without a time (day -1) may lie between any bounds.
        let (first, last) = (next, next + 1);
        sql.push_str(&format!(
            " AND (day < 0 OR day BETWEEN ${first} AND ${last})"
        ));
        next += 2;
    }
    let order = match way {
        Way::Forward => "ASC",
        Way::Backward => "DESC",
    };
    sql.push_str(&format!(" ORDER BY key {order} LIMIT ${next}"));
    sql
}

/// The first page of a scan is small (many scans read one entry); each
/// next one doubles, up to `LAST_PAGE`.
const FIRST_PAGE: i64 = 16;
const LAST_PAGE: i64 = 1024;

/// A range read lazily, a page at a time, from either end. The bounds
/// narrow past every entry fetched, so the two ends never fetch the same
/// entry; once a page comes back short, everything left is buffered.
pub struct RemoteIter {
    tree: RemoteTree,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    /// Fetched from the lower end, in key order.
    front: VecDeque<(IVec, IVec)>,
    /// Fetched from the upper end, in key order.
    back: VecDeque<(IVec, IVec)>,
    /// No entry is left between the bounds.
    exhausted: bool,
    page: i64,
}

impl RemoteIter {
    /// Fetches the next page from one end; false when there was none.
    fn fetch(&mut self, way: Way) -> Result<()> {
        let limit = self.page;
        self.page = (self.page * 2).min(LAST_PAGE);
        let entries = self.tree.page(&self.lower, &self.upper, way, limit)?;
        self.exhausted = (entries.len() as i64) < limit;
        match way {
            Way::Forward => {
                if let Some((last, _)) = entries.last() {
                    self.lower = Bound::Excluded(last.to_vec());
                }
                self.front.extend(entries);
            }
            Way::Backward => {
                if let Some((last, _)) = entries.last() {
                    self.upper = Bound::Excluded(last.to_vec());
                }
                for entry in entries {
                    self.back.push_front(entry);
                }
            }
        }
        Ok(())
    }

    /// After an error the iterator ends (as sled's does after yielding one).
    fn failed(&mut self, error: StoreError) -> Option<Result<(IVec, IVec)>> {
        self.exhausted = true;
        self.front.clear();
        self.back.clear();
        Some(Err(error))
    }
}

impl Iterator for RemoteIter {
    type Item = Result<(IVec, IVec)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.front.is_empty() && !self.exhausted {
            if let Err(error) = self.fetch(Way::Forward) {
                return self.failed(error);
            }
        }
        self.front
            .pop_front()
            .or_else(|| self.back.pop_front())
            .map(Ok)
    }
}

impl DoubleEndedIterator for RemoteIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.back.is_empty() && !self.exhausted {
            if let Err(error) = self.fetch(Way::Backward) {
                return self.failed(error);
            }
        }
        self.back
            .pop_back()
            .or_else(|| self.front.pop_back())
            .map(Ok)
    }
}

//! The store's keyspace: ordered trees of byte keys and values, either in
//! sled (embedded, the default) or in PostgreSQL (cluster mode). The store
//! talks to a [`Tree`] with the calls it made on `sled::Tree` (same names,
//! values as `sled::IVec`), so its code is the same on both backends; the
//! embedded path pays one `match` per call.

mod journal;
mod partitions;
mod remote;
#[cfg(any(test, feature = "test-postgres"))]
pub mod test_server;
#[cfg(test)]
mod tests;

pub use journal::RemoteJournal;
pub use remote::{RemoteKeyspace, RemoteLock, RemoteSettings};

use super::{Result, StoreError};
use sled::{CompareAndSwapError, IVec};
use std::ops::{Bound, RangeBounds};

/// Where the trees live.
#[derive(Clone)]
pub enum Keyspace {
    Embedded(sled::Db),
    Remote(RemoteKeyspace),
}

impl Keyspace {
    pub fn open_tree(&self, name: &str) -> Result<Tree> {
        Ok(match self {
            Keyspace::Embedded(db) => Tree::Embedded(db.open_tree(name)?),
            Keyspace::Remote(remote) => Tree::Remote(remote.tree(name)),
        })
    }

    /// Waits until everything written so far is durable (in PostgreSQL,
    /// every write is committed as it returns).
    pub fn flush(&self) -> Result<()> {
        if let Keyspace::Embedded(db) = self {
            db.flush()?;
        }
        Ok(())
    }

    /// Forgets, wholly and at once, the days of the time-ordered trees that
    /// end at or before `before_ms` and before `oldest_kept()` (the time of
    /// the oldest record still needed; asked only when a day is old enough):
    /// in PostgreSQL, by dropping their partitions (see `partitions`). Sled
    /// has none: its records go one by one. Returns how many days went.
    pub fn drop_days_before(
        &self,
        before_ms: u64,
        oldest_kept: impl FnOnce() -> Result<Option<u64>>,
    ) -> Result<u64> {
        match self {
            Keyspace::Embedded(_) => Ok(0),
            Keyspace::Remote(remote) => remote.drop_partitions_before(before_ms, oldest_kept),
        }
    }

    /// Whether retention forgets whole days (`drop_days_before`): then a
    /// record kept in a later day than its parent's outlives it. Sled's
    /// records go one by one, each with its parent.
    pub fn drops_days(&self) -> bool {
        matches!(self, Keyspace::Remote(_))
    }

    /// Holds the lock named `name` for every node of a cluster until the
    /// answer is dropped; None on the embedded store (one node: its own
    /// in-process locks serialize alone).
    pub fn cluster_lock(&self, name: &str) -> Result<Option<RemoteLock>> {
        match self {
            Keyspace::Embedded(_) => Ok(None),
            Keyspace::Remote(remote) => remote.lock(name).map(Some),
        }
    }

    /// Tells every node of a cluster that an event was queued, so that the
    /// node running its lane looks (see `RemoteKeyspace::queued`). One node
    /// wakes its own lanes itself.
    pub fn queued(&self) {
        if let Keyspace::Remote(remote) = self {
            remote.queued();
        }
    }

    /// Whether a call may wait on the network (then it never runs on a reactor thread).
    pub fn is_remote(&self) -> bool {
        matches!(self, Keyspace::Remote(_))
    }
}

/// One ordered map of byte keys to byte values.
#[derive(Clone)]
pub enum Tree {
    Embedded(sled::Tree),
    Remote(remote::RemoteTree),
}

/// What `compare_and_swap` answers: swapped, or what the key held instead.
pub type Swapped = std::result::Result<(), CompareAndSwapError>;

impl Tree {
    pub fn get<K: AsRef<[u8]>>(&self, key: K) -> Result<Option<IVec>> {
        match self {
            Tree::Embedded(tree) => Ok(tree.get(key)?),
            Tree::Remote(tree) => tree.get(key.as_ref()),
        }
    }

    /// Sets `key` to `value`; what it held before.
    pub fn insert<K: AsRef<[u8]>, V: Into<IVec>>(&self, key: K, value: V) -> Result<Option<IVec>> {
        match self {
            Tree::Embedded(tree) => Ok(tree.insert(key, value)?),
            Tree::Remote(tree) => tree.insert(key.as_ref(), value.into()),
        }
    }

    /// Removes `key`; what it held.
    pub fn remove<K: AsRef<[u8]>>(&self, key: K) -> Result<Option<IVec>> {
        match self {
            Tree::Embedded(tree) => Ok(tree.remove(key)?),
            Tree::Remote(tree) => tree.remove(key.as_ref()),
        }
    }

    pub fn contains_key<K: AsRef<[u8]>>(&self, key: K) -> Result<bool> {
        match self {
            Tree::Embedded(tree) => Ok(tree.contains_key(key)?),
            Tree::Remote(tree) => Ok(tree.get(key.as_ref())?.is_some()),
        }
    }

    /// Sets `key` to `new` (None: removes it) only if it holds `old` (None: absent).
    pub fn compare_and_swap<K, OV, NV>(
        &self,
        key: K,
        old: Option<OV>,
        new: Option<NV>,
    ) -> Result<Swapped>
    where
        K: AsRef<[u8]>,
        OV: AsRef<[u8]>,
        NV: Into<IVec>,
    {
        match self {
            Tree::Embedded(tree) => Ok(tree.compare_and_swap(key, old, new)?),
            Tree::Remote(tree) => tree.compare_and_swap(
                key.as_ref(),
                old.as_ref().map(AsRef::as_ref),
                new.map(Into::into),
            ),
        }
    }

    /// Sets `key`, which held `old` when the caller read it, to `new`, unless
    /// another node changed it since or holds its `Keyspace::cluster_lock`
    /// now; true when it did. The caller holds this node's own lock of the
    /// key: on the embedded store nothing else can write it, so it writes.
    pub fn write_unless_raced(&self, key: &[u8], old: &[u8], new: Vec<u8>) -> Result<bool> {
        match self {
            Tree::Embedded(tree) => {
                tree.insert(key, new)?;
                Ok(true)
            }
            Tree::Remote(tree) => tree.replace_unlocked(key, old, new.into()),
        }
    }

    /// How many keys the tree holds (for tests: the store never counts a tree).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        match self {
            Tree::Embedded(tree) => tree.len(),
            Tree::Remote(tree) => tree.len().expect("counting a remote tree"),
        }
    }

    /// Whether the tree holds no key (one short read: never a count).
    pub fn is_empty(&self) -> bool {
        match self {
            Tree::Embedded(tree) => tree.is_empty(),
            // A failed read says "maybe not": callers then look properly.
            Tree::Remote(_) => self.iter().next().is_none(),
        }
    }

    /// Removes every key.
    pub fn clear(&self) -> Result<()> {
        match self {
            Tree::Embedded(tree) => Ok(tree.clear()?),
            Tree::Remote(tree) => tree.clear(),
        }
    }

    pub fn flush(&self) -> Result<usize> {
        match self {
            Tree::Embedded(tree) => Ok(tree.flush()?),
            Tree::Remote(_) => Ok(0),
        }
    }

    /// Every entry, in key order (`.rev()`: backwards).
    pub fn iter(&self) -> Iter {
        self.range::<&[u8], _>(..)
    }

    /// The entries whose keys fall in `range`, in key order.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        match self {
            Tree::Embedded(tree) => Iter::Embedded(tree.range(range)),
            Tree::Remote(tree) => {
                Iter::Remote(tree.range(owned(range.start_bound()), owned(range.end_bound())))
            }
        }
    }

    /// The entries whose keys start with `prefix`, in key order.
    pub fn scan_prefix<P: AsRef<[u8]>>(&self, prefix: P) -> Iter {
        match self {
            Tree::Embedded(tree) => Iter::Embedded(tree.scan_prefix(prefix)),
            Tree::Remote(tree) => {
                let prefix = prefix.as_ref();
                Iter::Remote(tree.range(Bound::Included(prefix.to_vec()), past_prefix(prefix)))
            }
        }
    }
}

fn owned<K: AsRef<[u8]>>(bound: Bound<&K>) -> Bound<Vec<u8>> {
    bound.map(|key| key.as_ref().to_vec())
}

/// The first key after every key starting with `prefix`.
fn past_prefix(prefix: &[u8]) -> Bound<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Bound::Excluded(end);
        }
    }
    Bound::Unbounded
}

/// Entries of a tree in key order, either way round.
pub enum Iter {
    Embedded(sled::Iter),
    Remote(remote::RemoteIter),
}

impl Iter {
    pub fn keys(self) -> impl DoubleEndedIterator<Item = Result<IVec>> {
        self.map(|entry| entry.map(|(key, _)| key))
    }

    pub fn values(self) -> impl DoubleEndedIterator<Item = Result<IVec>> {
        self.map(|entry| entry.map(|(_, value)| value))
    }
}

impl Iterator for Iter {
    type Item = Result<(IVec, IVec)>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Embedded(entries) => entries.next().map(|entry| entry.map_err(StoreError::from)),
            Iter::Remote(entries) => entries.next(),
        }
    }
}

impl DoubleEndedIterator for Iter {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Embedded(entries) => entries
                .next_back()
                .map(|entry| entry.map_err(StoreError::from)),
            Iter::Remote(entries) => entries.next_back(),
        }
    }
}

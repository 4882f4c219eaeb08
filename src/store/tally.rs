//! Counts of stored records in some state (open issues by type, running bulk
//! retries), kept as records are saved and removed and loaded once when the
//! store opens, so that reading one (a metrics scrape) scans nothing.

use super::{get, put, values, Result};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// How many records of one tree each key counts; `key` names what a record
/// counts towards (None: nothing).
pub(super) struct Tally<T, K> {
    counts: Mutex<HashMap<K, u64>>,
    key: fn(&T) -> Option<K>,
}

impl<T: Serialize + DeserializeOwned, K: Hash + Eq + Copy> Tally<T, K> {
    /// Counts every record of `tree`.
    pub(super) fn load(tree: &super::keyspace::Tree, key: fn(&T) -> Option<K>) -> Result<Self> {
        let mut counts = HashMap::new();
        for record in values::<T>(tree) {
            if let Some(counted) = key(&record?) {
                *counts.entry(counted).or_default() += 1;
            }
        }
        Ok(Tally {
            counts: Mutex::new(counts),
            key,
        })
    }

    /// Saves `record` under `id` in `tree`, moving its count from what the
    /// stored one counted towards. Saves of one tree wait for each other
    /// (they are rare): two at once would both read the same old record.
    pub(super) fn save(&self, tree: &super::keyspace::Tree, id: &str, record: &T) -> Result<()> {
        let mut counts = self.lock();
        let before = get::<T>(tree, id)?.and_then(|stored| (self.key)(&stored));
        put(tree, id, record)?;
        self.take(&mut counts, before);
        if let Some(after) = (self.key)(record) {
            *counts.entry(after).or_default() += 1;
        }
        Ok(())
    }

    /// Removes the record `id` from `tree`, and its count.
    pub(super) fn remove(&self, tree: &super::keyspace::Tree, id: &str) -> Result<()> {
        let mut counts = self.lock();
        let before = get::<T>(tree, id)?.and_then(|stored| (self.key)(&stored));
        tree.remove(id.as_bytes())?;
        self.take(&mut counts, before);
        Ok(())
    }

    /// How many records count towards `key`.
    pub(super) fn count(&self, key: K) -> u64 {
        self.lock().get(&key).copied().unwrap_or(0)
    }

    fn take(&self, counts: &mut HashMap<K, u64>, key: Option<K>) {
        if let Some(count) = key.and_then(|key| counts.get_mut(&key)) {
            *count = count.saturating_sub(1);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, u64>> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize)]
    struct Record {
        open: bool,
    }

    fn open(record: &Record) -> Option<()> {
        record.open.then_some(())
    }

    #[test]
    fn counts_follow_saves_and_removals_and_are_loaded_again() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::keyspace::Keyspace::Embedded(sled::open(dir.path()).unwrap());
        let tree = db.open_tree("records").unwrap();
        let tally = Tally::load(&tree, open).unwrap();
        tally.save(&tree, "a", &Record { open: true }).unwrap();
        tally.save(&tree, "b", &Record { open: true }).unwrap();
        tally.save(&tree, "a", &Record { open: true }).unwrap();
        assert_eq!(tally.count(()), 2);
        tally.save(&tree, "b", &Record { open: false }).unwrap();
        assert_eq!(tally.count(()), 1);
        assert_eq!(Tally::load(&tree, open).unwrap().count(()), 1);
        tally.remove(&tree, "a").unwrap();
        tally.remove(&tree, "b").unwrap();
        assert_eq!(tally.count(()), 0);
        assert_eq!(Tally::load(&tree, open).unwrap().count(()), 0);
    }
}

//! A cluster node's request journal from before the journal moved into
//! PostgreSQL: segment files in `data_dir/journal`, as a node alone keeps
//! them. What its router had not routed when the node was upgraded would be
//! lost (nothing reads those files in cluster mode), so on start the node
//! copies that tail into its journal in the database, where its router
//! (or, if it dies, the leader) routes it, then renames the directory so
//! that it is not copied twice.
//!
//! The tail is what follows the router's watermark (`meta`, the key of this
//! node's id), which then named a place in the files. Once records are in
//! the database the watermark names one there: it is moved to just before
//! the copied records. Nothing is copied, and the files are left as they
//! are, unless the watermark names a place in them: a watermark that names
//! one in the database (a node that ran without this copy first) is a day
//! number, past every segment; and a node moved from the embedded store
//! has none in the database (its journal's watermark is in its sled store,
//! which it may go back to).

use super::journal::{newest_segment, Journal, Location};
use super::{Result, Store};
use std::path::Path;

/// The directory of a node's old journal.
const OLD: &str = "journal";

/// Records copied per append (one transaction each).
const BATCH: usize = 500;

impl Store {
    /// Copies the unrouted tail of `dir/journal`, if the router's watermark
    /// names a place in it, into this node's journal in the database, moves
    /// the watermark to just before it, and renames the directory
    /// (`journal.moved-<ms>`). Returns how many records were copied.
    pub(super) fn move_old_journal(&self, dir: &Path, segment_bytes: u64) -> Result<usize> {
        let old = dir.join(OLD);
        if !old.is_dir() {
            return Ok(0);
        }
        let watermark = self.meta.get(&self.watermark_key)?;
        let Some(after) = watermark.as_deref().and_then(Location::decode) else {
            return Ok(0);
        };
        if newest_segment(&old)?.is_none_or(|newest| after.segment > newest) {
            return Ok(0);
        }
        let mut tail = Vec::new();
        Journal::open(&old, segment_bytes)?.each_after(Some(after), |_, record| {
            tail.push(record);
            std::io::Result::Ok(())
        })?;
        let mut copied = Vec::new();
        for batch in tail.chunks(BATCH) {
            let records: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            copied.extend(self.journal.append(&records)?);
        }
        self.watermark_before(copied.first())?;
        let moved = dir.join(format!("{OLD}.moved-{}", crate::ids::now_ms()));
        std::fs::rename(&old, &moved)?;
        tracing::info!(
            records = copied.len(),
            moved_to = %moved.display(),
            "copied what this node's file journal had not routed into the database's journal"
        );
        Ok(copied.len())
    }

    /// Sets the router's watermark to just before `first` (a record in the
    /// database's journal), or removes it when nothing was copied (the
    /// node's journal in the database is empty then: it had never written
    /// there, as its watermark still named a place in the files).
    fn watermark_before(&self, first: Option<&Location>) -> Result<()> {
        match first {
            Some(first) => {
                let before = Location {
                    offset: first.offset - 1,
                    len: 0,
                    ..*first
                };
                self.meta.insert(&self.watermark_key, &before.encode())?;
            }
            None => {
                self.meta.remove(&self.watermark_key)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_request as request;
    use crate::store::{test_postgres, Backend, JOURNAL_SEGMENT_BYTES};

    fn open(dir: &Path, backend: &Backend) -> Store {
        Store::open_backed(dir, 1 << 20, JOURNAL_SEGMENT_BYTES, None, backend).unwrap()
    }

    /// The ids of what the node's router would route on start.
    fn unrouted(store: &Store) -> Vec<String> {
        let mut ids = Vec::new();
        store
            .each_unrouted_journaled(|journaled| {
                ids.push(journaled.id().to_string());
                Ok(())
            })
            .unwrap();
        ids
    }

    /// A node of a cluster journaled three requests in its files (as before
    /// the journal moved into PostgreSQL) and routed the first: once
    /// upgraded, its router finds the other two in the database, once.
    #[test]
    fn an_old_file_journals_unrouted_tail_is_copied_into_the_database_once() {
        let backend = Backend::Postgres(Box::new(test_postgres::database()));
        let dir = tempfile::tempdir().unwrap();
        let requests = [request("1"), request("2"), request("3")];
        let written_before = dir.path().join("written-before");
        let files = Journal::open(&written_before, JOURNAL_SEGMENT_BYTES).unwrap();
        let records: Vec<&[u8]> = requests.iter().map(|r| r.record.as_slice()).collect();
        let locations = files.append(&records).unwrap();
        drop(files);
        let store = open(dir.path(), &backend);
        store.set_routed_through(locations[0]).unwrap();
        drop(store);
        std::fs::rename(&written_before, dir.path().join(OLD)).unwrap();

        let tail = [requests[1].id.clone(), requests[2].id.clone()];
        let store = open(dir.path(), &backend);
        assert_eq!(unrouted(&store), tail);
        assert!(!dir.path().join(OLD).exists(), "renamed");
        drop(store);
        assert_eq!(unrouted(&open(dir.path(), &backend)), tail, "copied once");
    }

    /// A node moved from the embedded store: its journal's watermark is in
    /// its sled store, so its journal is not the cluster's to route (it
    /// would route everything the node ever received again).
    #[test]
    fn an_embedded_stores_journal_is_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let embedded = open(dir.path(), &Backend::Embedded);
        embedded.journal_requests(&[&request("1")]).unwrap();
        drop(embedded);
        let backend = Backend::Postgres(Box::new(test_postgres::database()));
        assert!(unrouted(&open(dir.path(), &backend)).is_empty());
        assert!(dir.path().join(OLD).is_dir());
    }
}

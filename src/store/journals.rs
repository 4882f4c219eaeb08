//! The request journal the commit thread writes, whatever the backend: the
//! node's segment files (`journal`, embedded) or the `journal` table
//! (`keyspace::RemoteJournal`, cluster mode, so that a dead node's disk
//! loses nothing it acknowledged). One `match` per call, as for the trees.
//!
//! A file journal's unit of retention is a segment, a remote one's a day:
//! both are the `segment` of a `Location`, deleted oldest first. A day is
//! one partition of every node's records: it goes for all of them at once.

use super::journal::{Journal, Location};
use super::keyspace::RemoteJournal;
use super::{Result, StoreError};
use std::io;
use std::ops::Range;
use std::time::Duration;

#[derive(Clone)]
pub enum RequestJournal {
    File(Journal),
    Remote(RemoteJournal),
}

impl RequestJournal {
    /// The node whose journal it is, in a cluster (None: the node's own files).
    pub fn node(&self) -> Option<&str> {
        match self {
            RequestJournal::File(_) => None,
            RequestJournal::Remote(journal) => Some(journal.node()),
        }
    }

    /// Node `node`'s journal in the same database (None for files: no
    /// other node's journal is at hand).
    pub fn of(&self, node: &str) -> Option<RequestJournal> {
        match self {
            RequestJournal::File(_) => None,
            RequestJournal::Remote(journal) => Some(RequestJournal::Remote(journal.of(node))),
        }
    }

    /// The journals retention sweeps: this one, or in a cluster every
    /// node's (the leader sweeps for all).
    pub fn every_node(&self) -> Result<Vec<RequestJournal>> {
        match self {
            RequestJournal::File(_) => Ok(vec![self.clone()]),
            RequestJournal::Remote(journal) => Ok(journal
                .every_node()?
                .into_iter()
                .map(RequestJournal::Remote)
                .collect()),
        }
    }

    /// The other nodes that journaled and have not beaten within `lease`
    /// (none for files: a node alone).
    pub fn silent_nodes(&self, lease: Duration) -> Result<Vec<String>> {
        match self {
            RequestJournal::File(_) => Ok(Vec::new()),
            RequestJournal::Remote(journal) => journal.silent_nodes(lease),
        }
    }

    /// Makes records durable (synced, or committed); where each one lies.
    pub fn append(&self, records: &[&[u8]]) -> Result<Vec<Location>> {
        match self {
            RequestJournal::File(journal) => Ok(journal.append(records)?),
            RequestJournal::Remote(journal) => journal.append(records),
        }
    }

    /// Why the last append failed, unless one has succeeded since.
    pub fn last_failure(&self) -> Option<String> {
        match self {
            RequestJournal::File(journal) => journal.last_failure(),
            RequestJournal::Remote(journal) => journal.last_failure(),
        }
    }

    pub fn read(&self, location: Location) -> Result<Vec<u8>> {
        match self {
            RequestJournal::File(journal) => Ok(journal.read(location)?),
            RequestJournal::Remote(journal) => journal.read(location),
        }
    }

    /// Calls `visit` with every record after `after` (all for None), in
    /// commit order.
    pub fn each_after<E: From<io::Error> + From<StoreError>>(
        &self,
        after: Option<Location>,
        visit: impl FnMut(Location, Vec<u8>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        match self {
            RequestJournal::File(journal) => journal.each_after(after, visit),
            RequestJournal::Remote(journal) => journal.each_after(after, visit),
        }
    }

    /// The units of retention left: the oldest, and one past the one being
    /// written.
    pub fn segment_range(&self) -> Result<Range<u32>> {
        match self {
            RequestJournal::File(journal) => Ok(journal.segment_range()),
            RequestJournal::Remote(journal) => journal.days(),
        }
    }

    /// The first unit of retention that may hold a record past
    /// `routed_through` (a router's watermark), or the one being written:
    /// those before it hold only records routed. A remote journal's
    /// watermark day may hold nothing past it: a node that left routed
    /// through its last record keeps no day of its own.
    pub fn unrouted_from(&self, routed_through: Location) -> Result<u32> {
        match self {
            RequestJournal::File(journal) => {
                Ok(routed_through.segment.min(journal.segment_range().end - 1))
            }
            RequestJournal::Remote(journal) => journal.first_day_after(routed_through.offset),
        }
    }

    /// Calls `visit` with every record of `segment`, in commit order.
    pub fn each_in<E: From<io::Error> + From<StoreError>>(
        &self,
        segment: u32,
        visit: impl FnMut(Location, Vec<u8>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        match self {
            RequestJournal::File(journal) => journal.each_in(segment, 0, visit),
            RequestJournal::Remote(journal) => journal.each_on(segment, visit),
        }
    }

    /// Deletes the units of retention before `segment`, none of whose
    /// records is kept (in a cluster: those of every node); returns how
    /// many went.
    pub fn remove_before(&self, segment: u32) -> Result<u64> {
        match self {
            RequestJournal::File(journal) => {
                let oldest = journal.segment_range().start;
                for old in oldest..segment {
                    journal.remove_oldest(old)?;
                }
                Ok(u64::from(segment.saturating_sub(oldest)))
            }
            RequestJournal::Remote(journal) => journal.drop_days_before(segment),
        }
    }
}

//! The delivery queue: one ordered run of keys per destination,
//! `destination id ++ due time (ms, big-endian) ++ event id`.
//!
//! A lane reads only its own destination's prefix, in due order, so a destination
//! with a million waiting events costs the others nothing, and the backlog lives
//! on disk rather than in memory.

use super::{Result, Store};
use crate::ids::ID_LEN;
use std::collections::HashSet;

/// An event waiting in a destination's queue.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueueEntry {
    pub due_ms: u64,
    pub event_id: String,
}

fn queue_key(destination_id: &str, due_ms: u64, event_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 * ID_LEN + 8);
    key.extend_from_slice(destination_id.as_bytes());
    key.extend_from_slice(&due_ms.to_be_bytes());
    key.extend_from_slice(event_id.as_bytes());
    key
}

fn decode_entry(destination_id: &str, key: &[u8]) -> QueueEntry {
    let rest = &key[destination_id.len()..];
    let mut due = [0u8; 8];
    due.copy_from_slice(&rest[..8]);
    QueueEntry {
        due_ms: u64::from_be_bytes(due),
        event_id: String::from_utf8_lossy(&rest[8..]).into_owned(),
    }
}

impl Store {
    pub fn enqueue(&self, destination_id: &str, due_ms: u64, event_id: &str) -> Result<()> {
        self.queue
            .insert(queue_key(destination_id, due_ms, event_id), &[])?;
        Ok(())
    }

    pub fn dequeue(&self, destination_id: &str, entry: &QueueEntry) -> Result<()> {
        self.queue
            .remove(queue_key(destination_id, entry.due_ms, &entry.event_id))?;
        Ok(())
    }

    /// Moves a queued event to a new due time.
    pub fn reschedule(&self, destination_id: &str, entry: &QueueEntry, due_ms: u64) -> Result<()> {
        self.enqueue(destination_id, due_ms, &entry.event_id)?;
        if due_ms != entry.due_ms {
            self.dequeue(destination_id, entry)?;
        }
        Ok(())
    }

    /// Up to `limit` entries due at or before `now_ms`, oldest due first,
    /// skipping those already being attempted.
    pub fn due_entries(
        &self,
        destination_id: &str,
        now_ms: u64,
        limit: usize,
        in_flight: &HashSet<String>,
    ) -> Result<Vec<QueueEntry>> {
        let start = queue_key(destination_id, 0, "");
        let end = queue_key(destination_id, now_ms.saturating_add(1), "");
        let mut due = Vec::new();
        for key in self.queue.range(start..end).keys() {
            if due.len() == limit {
                break;
            }
            let entry = decode_entry(destination_id, &key?);
            if !in_flight.contains(&entry.event_id) {
                due.push(entry);
            }
        }
        Ok(due)
    }

    /// The due time of the first entry due after `now_ms`, for the lane's timer.
    pub fn next_due_after(&self, destination_id: &str, now_ms: u64) -> Result<Option<u64>> {
        let start = queue_key(destination_id, now_ms.saturating_add(1), "");
        let end = queue_key(destination_id, u64::MAX, "");
        match self.queue.range(start..end).keys().next() {
            Some(key) => Ok(Some(decode_entry(destination_id, &key?).due_ms)),
            None => Ok(None),
        }
    }

    /// The destination's earliest queued event.
    pub fn oldest_entry(&self, destination_id: &str) -> Result<Option<QueueEntry>> {
        match self
            .queue
            .scan_prefix(destination_id.as_bytes())
            .keys()
            .next()
        {
            Some(key) => Ok(Some(decode_entry(destination_id, &key?))),
            None => Ok(None),
        }
    }

    /// How many events wait for a destination (scans its prefix; for tests and stats).
    pub fn queue_depth(&self, destination_id: &str) -> usize {
        self.queue.scan_prefix(destination_id.as_bytes()).count()
    }
}

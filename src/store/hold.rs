//! Paused connections and the events they hold. A paused connection's new events
//! are stored as HOLD, outside the delivery queue, and so are queued ones its
//! lane comes across; unpausing puts them all back in the queue (trigger UNPAUSE).
//! Pausing is operational state, not configuration, so it lives in the store.

use super::{QueueMove, Result, Store};
use crate::model::{AttemptTrigger, EventStatus};

pub(super) fn held_key(connection_id: &str, event_id: &str) -> Vec<u8> {
    [connection_id.as_bytes(), event_id.as_bytes()].concat()
}

impl Store {
    /// When the connection was paused, if it is.
    pub fn paused_at(&self, connection_id: &str) -> Result<Option<u64>> {
        Ok(self
            .paused
            .get(connection_id.as_bytes())?
            .map(|at| u64::from_be_bytes(at.as_ref().try_into().unwrap_or_default())))
    }

    /// Whether the connection is paused: asked for every routed event and every
    /// attempt, so it reads a set kept in memory instead of the store.
    pub fn is_paused(&self, connection_id: &str) -> bool {
        self.paused_ids
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(connection_id)
    }

    /// Pauses a connection (again: keeps the first pause time); returns when it was paused.
    pub fn pause(&self, connection_id: &str, now_ms: u64) -> Result<u64> {
        if let Some(at) = self.paused_at(connection_id)? {
            return Ok(at);
        }
        self.paused
            .insert(connection_id.as_bytes(), &now_ms.to_be_bytes())?;
        self.paused_ids
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(connection_id.to_string());
        Ok(now_ms)
    }

    /// Takes an event out of the delivery queue and holds it, due at `due_ms` once released.
    pub fn hold(&self, event_id: &str, due_ms: u64) -> Result<()> {
        let held = self.update_event(event_id, |event| {
            event.status = EventStatus::Hold;
            (QueueMove::Out, event.connection_id.clone())
        })?;
        if let Some((_, connection_id)) = held {
            self.held
                .insert(held_key(&connection_id, event_id), &due_ms.to_be_bytes())?;
        }
        Ok(())
    }

    /// Unpauses a connection and queues its held events again. Returns the
    /// destinations whose lanes have new work.
    pub fn unpause(&self, connection_id: &str, now_ms: u64) -> Result<Vec<String>> {
        self.paused.remove(connection_id.as_bytes())?;
        self.paused_ids
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(connection_id);
        let mut destinations = Vec::new();
        for entry in self.held.scan_prefix(connection_id.as_bytes()) {
            let (key, due) = entry?;
            let event_id = String::from_utf8_lossy(&key[connection_id.len()..]).into_owned();
            let due = u64::from_be_bytes(due.as_ref().try_into().unwrap_or_default()).max(now_ms);
            let released = self.update_event(&event_id, |event| {
                if event.status.is_terminal() {
                    // Cancelled while held: stays as it is.
                    return (QueueMove::Stay, None);
                }
                event.status = if due > now_ms {
                    EventStatus::Scheduled
                } else {
                    EventStatus::Queued
                };
                event.pending_trigger = Some(AttemptTrigger::Unpause);
                (QueueMove::To(due), Some(event.destination_id.clone()))
            })?;
            self.held.remove(key)?;
            if let Some((_, Some(destination))) = released {
                destinations.push(destination);
            }
        }
        destinations.dedup();
        Ok(destinations)
    }
}

//! Paused connections and the events they hold. A paused connection's new events
//! are stored as HOLD, outside the delivery queue, and so are queued ones its
//! lane comes across; unpausing puts them all back in the queue (trigger UNPAUSE).
//! Pausing is operational state, not configuration, so it lives in the store.

use super::{QueueMove, Result, Store};
use crate::model::{AttemptTrigger, Event, EventStatus, Payload};

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

    /// Stores a new event (see `insert_event`), held instead of queued when
    /// its connection is paused.
    pub fn insert_event_or_hold(
        &self,
        mut event: Event,
        payload: Option<&Payload>,
        due_ms: u64,
    ) -> Result<()> {
        if !self.is_paused(&event.connection_id) {
            return self.insert_event(&event, payload, due_ms);
        }
        event.status = EventStatus::Hold;
        event.next_attempt_at = None;
        self.insert_event(&event, payload, due_ms)?;
        self.release_if_unpaused(&event.connection_id, &event.id, due_ms)
            .map(|_| ())
    }

    /// Takes an event out of the delivery queue and holds it, due at `due_ms`
    /// once released. False when it is not held after all: its connection
    /// was unpaused meanwhile, and it is queued again (due now at the latest).
    pub fn hold(&self, event_id: &str, due_ms: u64) -> Result<bool> {
        let held = self.update_event(event_id, |event| {
            event.status = EventStatus::Hold;
            (QueueMove::Out, event.connection_id.clone())
        })?;
        let Some((_, connection_id)) = held else {
            return Ok(false);
        };
        self.held
            .insert(held_key(&connection_id, event_id), &due_ms.to_be_bytes())?;
        self.release_if_unpaused(&connection_id, event_id, due_ms)
            .map(|released| !released)
    }

    /// An unpause between the pause check that held an event and its held
    /// entry did not see the entry: whoever held the event looks again once
    /// the entry is written, and releases it if the pause is over. (An unpause
    /// after this look sees the entry; both releasing it is harmless.)
    /// True when it released the event.
    fn release_if_unpaused(
        &self,
        connection_id: &str,
        event_id: &str,
        due_ms: u64,
    ) -> Result<bool> {
        if self.is_paused(connection_id) {
            return Ok(false);
        }
        let key = held_key(connection_id, event_id);
        self.release(key, event_id, due_ms, crate::ids::now_ms())?;
        Ok(true)
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
            let due = u64::from_be_bytes(due.as_ref().try_into().unwrap_or_default());
            destinations.extend(self.release(key, &event_id, due, now_ms)?);
        }
        destinations.dedup();
        Ok(destinations)
    }

    /// Queues a held event again (due at `due_ms`, or now if that has passed)
    /// and drops its held entry `key`; returns its destination.
    fn release(
        &self,
        key: impl AsRef<[u8]>,
        event_id: &str,
        due_ms: u64,
        now_ms: u64,
    ) -> Result<Option<String>> {
        let due = due_ms.max(now_ms);
        let released = self.update_event(event_id, |event| {
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
        Ok(released.and_then(|(_, destination)| destination))
    }
}

#[cfg(test)]
mod tests {
    use crate::ids::{derived_id, new_id, now_ms};
    use crate::model::{Event, EventStatus, Route};
    use crate::store::temp_store;

    #[test]
    fn an_event_held_as_its_connection_is_unpaused_is_released_at_once() {
        let (_dir, store) = temp_store();
        let route = Route {
            source_id: "src_a",
            connection_id: "web_a",
            destination_id: "des_a",
        };
        let request_id = new_id("req");
        let event = Event::new(
            derived_id("evt", &request_id, "web_a"),
            &request_id,
            route,
            now_ms(),
            false,
        );
        store.insert_event(&event, None, now_ms()).unwrap();
        store.pause("web_a", now_ms()).unwrap();
        // The lane saw the pause; the unpause comes before the lane holds the
        // event, so it finds nothing to release.
        assert!(store.unpause("web_a", now_ms()).unwrap().is_empty());
        assert!(
            !store.hold(&event.id, now_ms()).unwrap(),
            "not held after all"
        );

        let event = store.event(&event.id).unwrap().unwrap();
        assert_eq!(event.status, EventStatus::Queued);
        assert_eq!(store.queue_depth("des_a").unwrap(), 1);
        assert!(store.held.is_empty());
    }
}

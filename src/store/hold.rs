//! Paused connections and the events they hold. A paused connection's new events
//! are stored as HOLD, outside the delivery queue, and so are queued ones its
//! lane comes across; unpausing puts them all back in the queue (trigger UNPAUSE).
//! Pausing is operational state, not configuration, so it lives in the store.
//! A CLI destination with no listener connected holds its due events the same
//! way (`hold_for_listener`); they are released when one connects, or when
//! the destination gets a URL (`release_held`), but not while paused.
//! A held event names the attempt it waits for (`Event::name_next_attempt`),
//! which the API shows as a `HOLD` attempt, then `QUEUED` once released,
//! until it is made and recorded under that name.

use super::keyspace::Tree;
use super::{QueueMove, Result, Store};
use crate::model::{AttemptTrigger, Event, EventStatus, Payload};
use std::borrow::Cow;
use std::collections::HashSet;

pub(super) fn held_key(connection_id: &str, event_id: &str) -> Vec<u8> {
    [connection_id.as_bytes(), event_id.as_bytes()].concat()
}

/// The connections `paused` holds.
pub(super) fn paused_ids(paused: &Tree) -> Result<HashSet<String>> {
    paused
        .iter()
        .keys()
        .map(|key| Ok(String::from_utf8_lossy(&key?).into_owned()))
        .collect()
}

impl Store {
    /// Reads the paused connections again: another node of a cluster may
    /// have paused or unpaused one (its held events are in the queue again).
    pub fn refresh_paused(&self) -> Result<()> {
        let mut paused = self.paused_ids.write().unwrap_or_else(|e| e.into_inner());
        *paused = paused_ids(&self.paused)?;
        Ok(())
    }

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
        // The stored flag and the set change together (an unpause at the
        // same time cannot leave them disagreeing).
        let mut paused = self.paused_ids.write().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = self.paused_at(connection_id)? {
            return Ok(at);
        }
        self.paused
            .insert(connection_id.as_bytes(), &now_ms.to_be_bytes())?;
        paused.insert(connection_id.to_string());
        Ok(now_ms)
    }

    /// Stores a new event (see `insert_event`), held instead of queued when
    /// its connection is paused.
    pub fn insert_event_or_hold(
        &self,
        event: Cow<'_, Event>,
        payload: Option<&Payload>,
        due_ms: u64,
    ) -> Result<()> {
        if !self.is_paused(&event.connection_id) {
            return self.insert_event(&event, payload, due_ms);
        }
        let mut event = event.into_owned();
        event.status = EventStatus::Hold;
        event.next_attempt_at = None;
        // In the record written anyway: the placeholder costs no write.
        event.name_next_attempt();
        self.insert_event(&event, payload, due_ms)?;
        self.release_if_unpaused(&event.connection_id, &event.id, due_ms)
            .map(|_| ())
    }

    /// Takes an event out of the delivery queue and holds it, due at `due_ms`
    /// once released. False when it is not held after all: it is done
    /// already, or its connection was unpaused meanwhile and it is queued
    /// again (due now at the latest).
    pub fn hold(&self, event_id: &str, due_ms: u64) -> Result<bool> {
        match self.hold_out_of_queue(event_id, due_ms)? {
            Some(event) => self
                .release_if_unpaused(&event.connection_id, event_id, due_ms)
                .map(|released| !released),
            None => Ok(false),
        }
    }

    /// Holds an event of a destination that has nowhere to send it now (a
    /// CLI destination without a listener), as `hold` does. `listening` is
    /// asked again once it is held: a listener that connected in between did
    /// not see it, so it is released here (unless its connection is paused,
    /// which holds it anyway). False when it is not held after all.
    pub fn hold_for_listener(
        &self,
        event_id: &str,
        due_ms: u64,
        listening: impl Fn() -> bool,
    ) -> Result<bool> {
        let Some(event) = self.hold_out_of_queue(event_id, due_ms)? else {
            return Ok(false);
        };
        if !listening() || self.is_paused(&event.connection_id) {
            return Ok(true);
        }
        let key = held_key(&event.connection_id, event_id);
        self.release(key, event_id, due_ms, crate::ids::now_ms(), None)?;
        Ok(false)
    }

    /// Takes an event out of the queue into `held`, status HOLD; the event,
    /// none when it is done (nothing to hold).
    fn hold_out_of_queue(&self, event_id: &str, due_ms: u64) -> Result<Option<Event>> {
        let held = self.try_update_event(
            event_id,
            |event| {
                if event.status.is_terminal() {
                    // A queue entry a crash left behind: nothing to hold.
                    return Ok((QueueMove::Stay, false));
                }
                // The entry and the status change under the event's stripe,
                // as a release drops the entry: they always agree.
                let key = held_key(&event.connection_id, &event.id);
                self.held.insert(key, &due_ms.to_be_bytes())?;
                event.status = EventStatus::Hold;
                event.name_next_attempt();
                Ok((QueueMove::Out, true))
            },
            |_, _| {},
        )?;
        Ok(held.and_then(|(event, held)| held.then_some(event)))
    }

    /// An unpause between the pause check that held an event and its held
    /// entry (or on another node) did not see the entry: whoever held the event looks again once
    /// the entry is written, and releases it if the pause is over. (An unpause
    /// after this look sees the entry; the second release finds the event no
    /// longer held and leaves it.) True when it released the event.
    fn release_if_unpaused(
        &self,
        connection_id: &str,
        event_id: &str,
        due_ms: u64,
    ) -> Result<bool> {
        // The stored flag, not the set in memory: in a cluster another node
        // may have unpaused it, and this node's set learns of it a moment later.
        if self.paused_at(connection_id)?.is_some() {
            return Ok(false);
        }
        let key = held_key(connection_id, event_id);
        let unpause = Some(AttemptTrigger::Unpause);
        self.release(key, event_id, due_ms, crate::ids::now_ms(), unpause)?;
        Ok(true)
    }

    /// Unpauses a connection and queues its held events again. Returns the
    /// destinations whose lanes have new work.
    pub fn unpause(&self, connection_id: &str, now_ms: u64) -> Result<Vec<String>> {
        {
            let mut paused = self.paused_ids.write().unwrap_or_else(|e| e.into_inner());
            self.paused.remove(connection_id.as_bytes())?;
            paused.remove(connection_id);
        }
        self.release_all(connection_id, now_ms, Some(AttemptTrigger::Unpause))
    }

    /// Whether any event may be held, by a pause or for want of a listener.
    /// Asked on a reactor thread, so a remote keyspace, which would wait on
    /// the network there, answers "maybe" and the caller looks on the pool.
    pub fn holds_any(&self) -> bool {
        self.db.is_remote() || !self.held.is_empty()
    }

    /// Queues again the events a connection's destination held while it had
    /// nowhere to send them (see `hold_for_listener`), unless the connection
    /// is paused: those stay held until it is unpaused. Returns the
    /// destinations whose lanes have new work.
    pub fn release_held(&self, connection_id: &str, now_ms: u64) -> Result<Vec<String>> {
        if self.is_paused(connection_id) {
            return Ok(Vec::new());
        }
        self.release_all(connection_id, now_ms, None)
    }

    /// Queues every event the connection holds again, with `trigger` as their
    /// next attempt's (none: the one they had).
    fn release_all(
        &self,
        connection_id: &str,
        now_ms: u64,
        trigger: Option<AttemptTrigger>,
    ) -> Result<Vec<String>> {
        let held = self
            .held
            .scan_prefix(connection_id.as_bytes())
            .map(|entry| {
                let (key, due) = entry?;
                let event_id = String::from_utf8_lossy(&key[connection_id.len()..]).into_owned();
                let due = u64::from_be_bytes(due.as_ref().try_into().unwrap_or_default());
                Ok((key.to_vec(), event_id, due))
            });
        let release = |(key, event_id, due): (Vec<u8>, String, u64)| {
            self.release(key, &event_id, due, now_ms, trigger)
        };
        let mut destinations = match self.db.is_remote() {
            false => held
                .map(|held| release(held?))
                .collect::<Result<Vec<_>>>()?,
            true => in_parallel(held.collect::<Result<Vec<_>>>()?, release)?,
        };
        destinations.sort_unstable();
        destinations.dedup();
        Ok(destinations.into_iter().flatten().collect())
    }

    /// Queues a held event again (due at `due_ms`, or now if that has passed)
    /// and drops its held entry `key`; returns its destination. Its next
    /// attempt's trigger becomes `trigger`, if any. An event no longer held
    /// (released already, or done) stays as it is.
    fn release(
        &self,
        key: impl AsRef<[u8]>,
        event_id: &str,
        due_ms: u64,
        now_ms: u64,
        trigger: Option<AttemptTrigger>,
    ) -> Result<Option<String>> {
        let due = due_ms.max(now_ms);
        let released = self.try_update_event(
            event_id,
            |event| {
                if event.status != EventStatus::Hold {
                    return Ok((QueueMove::Stay, None));
                }
                event.status = if due > now_ms {
                    EventStatus::Scheduled
                } else {
                    EventStatus::Queued
                };
                if trigger.is_some() {
                    event.pending_trigger = trigger;
                }
                Ok((QueueMove::To(due), Some(event.destination_id.clone())))
            },
            // Still under the event's stripe: no hold of it comes in between.
            |event, _| {
                let key = held_key(&event.connection_id, &event.id);
                if let Err(error) = self.held.remove(key) {
                    tracing::warn!(%error, event = %event.id, "could not drop a released event's held entry; the next unpause does");
                }
            },
        )?;
        match released {
            Some((_, destination)) => Ok(destination),
            // Gone (forgotten): only its entry was left.
            None => {
                self.held.remove(key)?;
                Ok(None)
            }
        }
    }
}

/// How many held events a remote keyspace releases at once.
const RELEASING_AT_ONCE: usize = 4;

/// `release` of every one of `held`, `RELEASING_AT_ONCE` at a time (each
/// worker takes every fourth, in the held order). On PostgreSQL each release is several round trips (the event's
/// cluster lock, its read, its write, the held entry's delete): one after
/// the other, a connection's unpause re-queued its backlog slower than a
/// destination's rate limit sends it (150 events took 7.5 s on a starved
/// machine), so the lane found too few due events to keep its rate. The
/// first error is returned once every release has been tried; an event not
/// released stays held, for the next unpause.
fn in_parallel<T: Send, R: Send>(
    held: Vec<T>,
    release: impl Fn(T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let mut shares: Vec<Vec<T>> = (0..RELEASING_AT_ONCE).map(|_| Vec::new()).collect();
    for (n, one) in held.into_iter().enumerate() {
        shares[n % RELEASING_AT_ONCE].push(one);
    }
    let release = &release;
    std::thread::scope(|scope| {
        let workers: Vec<_> = shares
            .into_iter()
            .map(|share| scope.spawn(move || share.into_iter().map(release).collect::<Vec<_>>()))
            .collect();
        let results = workers.into_iter().flat_map(|worker| match worker.join() {
            Ok(results) => results,
            Err(panic) => std::panic::resume_unwind(panic),
        });
        results.collect()
    })
}

#[cfg(test)]
mod tests {
    use super::held_key;
    use crate::ids::{derived_id, new_id, now_ms};
    use crate::model::{AttemptEntry, Event, EventStatus, Route};
    use crate::store::{temp_store, QueueMove};
    use std::borrow::Cow;

    /// A new event of connection `web_a`, due at `now`.
    fn new_event(now: u64) -> Event {
        let route = Route {
            source_id: "src_a",
            connection_id: "web_a",
            destination_id: "des_a",
        };
        let request_id = new_id("req");
        let id = derived_id("evt", &request_id, "web_a");
        Event::new(id, &request_id, route, now, false)
    }

    fn queued_event(store: &crate::store::Store) -> Event {
        // One time for both: the queue key is found again by the event's due time.
        let now = now_ms();
        let event = new_event(now);
        store.insert_event(&event, None, now).unwrap();
        event
    }

    #[test]
    fn an_event_held_as_its_connection_is_unpaused_is_released_at_once() {
        let (_dir, store) = temp_store();
        let event = queued_event(&store);
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

    #[test]
    fn a_held_event_names_the_attempt_it_waits_for_once_however_often_held() {
        let (_dir, store) = temp_store();
        let event = queued_event(&store);
        store.pause("web_a", now_ms()).unwrap();
        assert!(store.hold(&event.id, now_ms()).unwrap());
        let named = store.event(&event.id).unwrap().unwrap().pending_attempt_id;
        let name = named.expect("named when held");
        assert_eq!(store.unpause("web_a", now_ms()).unwrap(), ["des_a"]);
        store.pause("web_a", now_ms()).unwrap();
        assert!(store.hold(&event.id, now_ms()).unwrap(), "held again");

        let held = store.event(&event.id).unwrap().unwrap();
        assert_eq!(held.pending_attempt_id.as_deref(), Some(name.as_str()));
        let listed = store.attempt_entries_of(&event.id).unwrap();
        assert!(
            matches!(&listed[..], [AttemptEntry::Pending(e)] if e.id == event.id),
            "one placeholder: {listed:?}"
        );
    }

    #[test]
    fn events_held_as_they_come_and_for_a_listener_name_their_attempt() {
        let (_dir, store) = temp_store();
        let for_listener = queued_event(&store);
        assert!(store
            .hold_for_listener(&for_listener.id, now_ms(), || false)
            .unwrap());
        store.pause("web_a", now_ms()).unwrap();
        let now = now_ms();
        let arriving = new_event(now);
        store
            .insert_event_or_hold(Cow::Borrowed(&arriving), None, now)
            .unwrap();

        for id in [&for_listener.id, &arriving.id] {
            let held = store.event(id).unwrap().unwrap();
            assert_eq!(held.status, EventStatus::Hold);
            let name = held.pending_attempt_id.expect("named when held");
            let found = store.attempt_entry(&name).unwrap();
            assert!(matches!(found, Some(AttemptEntry::Pending(e)) if &e.id == id));
        }
    }

    #[test]
    fn a_done_event_is_never_held() {
        let (_dir, store) = temp_store();
        let event = queued_event(&store);
        store
            .update_event(&event.id, |event| {
                event.status = EventStatus::Successful;
                (QueueMove::Stay, ())
            })
            .unwrap();
        store.pause("web_a", now_ms()).unwrap();

        assert!(!store.hold(&event.id, now_ms()).unwrap());
        let event = store.event(&event.id).unwrap().unwrap();
        assert_eq!(event.status, EventStatus::Successful);
        assert!(store.held.is_empty());
    }

    #[test]
    fn a_late_release_leaves_an_event_no_longer_held_as_it_is() {
        let (_dir, store) = temp_store();
        let event = queued_event(&store);
        store.pause("web_a", now_ms()).unwrap();
        assert!(store.hold(&event.id, now_ms()).unwrap());
        let key = held_key("web_a", &event.id);
        store
            .release(&key, &event.id, now_ms(), now_ms(), None)
            .unwrap();
        // Meanwhile it failed an attempt and waits for its retry, an hour on.
        let retry_at = now_ms() + 3_600_000;
        store
            .update_event(&event.id, |event| {
                event.status = EventStatus::Scheduled;
                (QueueMove::To(retry_at), ())
            })
            .unwrap();

        // An unpause that read the entry before the first release.
        assert_eq!(
            store
                .release(&key, &event.id, now_ms(), now_ms(), None)
                .unwrap(),
            None
        );
        let event = store.event(&event.id).unwrap().unwrap();
        assert_eq!(
            (event.status, event.next_attempt_at),
            (EventStatus::Scheduled, Some(retry_at))
        );
    }

    #[test]
    fn an_event_held_for_a_listener_that_connected_meanwhile_is_released_at_once() {
        let (_dir, store) = temp_store();
        let event = queued_event(&store);
        assert!(!store
            .hold_for_listener(&event.id, now_ms(), || true)
            .unwrap());

        let event = store.event(&event.id).unwrap().unwrap();
        assert_eq!(event.status, EventStatus::Queued);
        assert_eq!(store.queue_depth("des_a").unwrap(), 1);
        assert!(store.held.is_empty());
    }

    #[test]
    fn a_paused_connection_keeps_the_events_held_for_a_listener() {
        let (_dir, store) = temp_store();
        let event = queued_event(&store);
        assert!(store
            .hold_for_listener(&event.id, now_ms(), || false)
            .unwrap());
        store.pause("web_a", now_ms()).unwrap();

        assert!(store.release_held("web_a", now_ms()).unwrap().is_empty());
        let held = store.event(&event.id).unwrap().unwrap();
        assert_eq!(held.status, EventStatus::Hold);
        assert_eq!(store.queue_depth("des_a").unwrap(), 0);

        // Unpausing releases them as it does its own.
        assert_eq!(store.unpause("web_a", now_ms()).unwrap(), ["des_a"]);
        let event = store.event(&event.id).unwrap().unwrap();
        assert_eq!(event.status, EventStatus::Queued);
    }

    #[test]
    fn events_held_for_a_listener_keep_their_trigger_when_released() {
        let (_dir, store) = temp_store();
        let event = queued_event(&store);
        assert!(store
            .hold_for_listener(&event.id, now_ms(), || false)
            .unwrap());
        assert_eq!(store.release_held("web_a", now_ms()).unwrap(), ["des_a"]);

        let event = store.event(&event.id).unwrap().unwrap();
        assert_eq!(event.status, EventStatus::Queued);
        assert_eq!(event.pending_trigger, None);
        assert!(store.held.is_empty());
    }
}

//! Delivery attempts. An event's first attempts live in the event's own
//! record, which settling the attempt rewrites anyway, so a delivery costs no
//! write of its own for its attempt (two writes per delivery were a fifth to a
//! quarter of delivery throughput, see BENCHMARKS.md). Attempts past
//! `INLINE_ATTEMPTS`, or whose response bodies would make the record large,
//! go to the `attempts` tree with an `event_attempts` index entry, as every
//! attempt did in stores from before. Inline attempts are named after their
//! event (`child_id`), so their ids sort with the event, not by their own time.

use super::{get, put, stripe_of, QueueMove, Result, Store};
use crate::ids::{child_id, new_id, now_ms, of_pending_attempt, parent_of_child, MAX_CHILDREN};
use crate::model::{Attempt, AttemptEntry, Event};

/// Attempts kept in an event's record; later ones go to the attempts tree, so
/// that a record rewritten on every change stays small.
const INLINE_ATTEMPTS: usize = 4;
const _: () = assert!(INLINE_ATTEMPTS <= MAX_CHILDREN);

/// Most response body bytes the inline attempts of one event keep together;
/// an attempt that would pass it goes to the attempts tree.
const INLINE_BODY_BYTES: usize = 4096;

/// What `settle_attempt_unless_busy` did.
// Made once per attempt and matched at once, never kept: boxing the settled
// event would cost an allocation per delivery to save a move of some bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum SettledNow<T> {
    /// What `settle_attempt` returns.
    Settled(Result<Option<(Event, T)>>),
    /// A webhook job's delivery settled, but another change held its job's
    /// lock: the job is still to be summed up (`Store::settle_job`, where
    /// waiting is fine).
    JobLeft(Event, T),
    /// Another change held the event's lock (or the keyspace is remote):
    /// the attempt, untouched.
    Busy(Attempt),
}

impl Store {
    /// Records `attempt` and applies its outcome (`change`) to its event, under
    /// the event's update lock; `recorded` runs once both are stored, before
    /// the change is announced. The store names the attempt (its `id` is set
    /// here) unless a retry by hand named it already. None, with nothing recorded, when there is no such event.
    /// A webhook job's delivery sums its job up too (`settle_job_of_held`).
    pub fn settle_attempt<T>(
        &self,
        attempt: Attempt,
        change: impl FnMut(&mut Event, &Attempt) -> (QueueMove, T),
        recorded: impl FnOnce(&Event, &Attempt),
    ) -> Result<Option<(Event, T)>> {
        let stripe = stripe_of(&attempt.event_id);
        let serialized = self.stripe(&attempt.event_id);
        let settled = self.settle_held(attempt, change, recorded)?;
        if let Some((event, _)) = settled.as_ref().filter(|(e, _)| e.window.is_some()) {
            let now = now_ms();
            match self.settle_job_of_held(event, stripe, now) {
                Some(summed) => summed?,
                None => {
                    drop(serialized);
                    self.settle_job(&event.request_id, &event.id, now)?;
                }
            }
        }
        Ok(settled)
    }

    /// `settle_attempt` without waiting: when another change holds the event's
    /// lock (a failed attempt recording its issue, a retention sweep, a webhook
    /// job summing up), the attempt comes back untouched, to be settled where
    /// waiting is fine; when one holds its job's, the job is left to sum up.
    pub fn settle_attempt_unless_busy<T>(
        &self,
        attempt: Attempt,
        change: impl FnMut(&mut Event, &Attempt) -> (QueueMove, T),
        recorded: impl FnOnce(&Event, &Attempt),
    ) -> SettledNow<T> {
        let stripe = stripe_of(&attempt.event_id);
        let Some(_serialized) = self.reactor_lock_if_free(&attempt.event_id) else {
            return SettledNow::Busy(attempt);
        };
        let settled = match self.settle_held(attempt, change, recorded) {
            Ok(Some(settled)) if settled.0.window.is_some() => settled,
            other => return SettledNow::Settled(other),
        };
        match self.settle_job_of_held(&settled.0, stripe, now_ms()) {
            Some(summed) => SettledNow::Settled(summed.map(|()| Some(settled))),
            None => SettledNow::JobLeft(settled.0, settled.1),
        }
    }

    /// `settle_attempt` with this node's stripe of the event held (see
    /// `update_unraced_event`: `change` may run twice).
    fn settle_held<T>(
        &self,
        attempt: Attempt,
        mut change: impl FnMut(&mut Event, &Attempt) -> (QueueMove, T),
        recorded: impl FnOnce(&Event, &Attempt),
    ) -> Result<Option<(Event, T)>> {
        let event_id = attempt.event_id.clone();
        let given_name = attempt.id.clone();
        // Borrowed by each run of the change, then by `recorded`.
        let attempt = std::cell::RefCell::new(attempt);
        let mut stored_apart = false;
        let settled = self.update_unraced_event(
            &event_id,
            |event| {
                let attempt = &mut *attempt.borrow_mut();
                if stored_apart {
                    // Run again, after another node's change: its record
                    // is stored, under the name it has.
                    return Ok(change(event, attempt));
                }
                attempt.id.clone_from(&given_name);
                if stays_inline(event, attempt) {
                    if attempt.id.is_empty() {
                        attempt.id = child_id("atm", &event.id, event.attempt_records.len());
                    }
                    let outcome = change(event, attempt);
                    event.attempt_records.push(attempt.clone());
                    return Ok(outcome);
                }
                if attempt.id.is_empty() {
                    attempt.id = new_id("atm");
                }
                // Before the event changes: a crash in between leaves a
                // recorded attempt and an event that is tried again.
                self.put_attempt_record(attempt)?;
                stored_apart = true;
                Ok(change(event, attempt))
            },
            |event, _| recorded(event, &attempt.borrow()),
        )?;
        Ok(settled)
    }

    fn put_attempt_record(&self, attempt: &Attempt) -> Result<()> {
        put(&self.attempts, &attempt.id, attempt)?;
        let index_key = [attempt.event_id.as_bytes(), attempt.id.as_bytes()].concat();
        self.event_attempts.insert(index_key, &[])?;
        Ok(())
    }

    /// The attempts of one event, oldest first.
    pub fn attempts_of(&self, event_id: &str) -> Result<Vec<Attempt>> {
        let mut attempts = self
            .event(event_id)?
            .map(|event| event.attempt_records)
            .unwrap_or_default();
        for key in self.event_attempts.scan_prefix(event_id.as_bytes()).keys() {
            let key = key?;
            let attempt_id = String::from_utf8_lossy(&key[event_id.len()..]);
            attempts.extend(get::<Attempt>(&self.attempts, &attempt_id)?);
        }
        attempts.sort_by_key(|attempt| (attempt.created_at, attempt.attempt_number));
        Ok(attempts)
    }

    /// The attempts kept in the attempts tree, by id, but those whose event
    /// is gone: in PostgreSQL an attempt made a day after its event lives in
    /// its own day's partition, which retention may drop after the event's.
    pub(super) fn attempts_of_their_own(
        &self,
    ) -> impl Iterator<Item = Result<(String, Attempt)>> + '_ {
        super::page::records::<Attempt>(&self.attempts, "").filter_map(|found| {
            let outlived = match &found {
                Ok((_, attempt)) => self.outlived_its_event(attempt),
                Err(_) => Ok(false),
            };
            match outlived {
                Ok(false) => Some(found),
                Ok(true) => None,
                Err(error) => Some(Err(error)),
            }
        })
    }

    /// Whether `attempt`, kept in the attempts tree, outlived its event (see
    /// `attempts_of_their_own`). Only where days are dropped whole is the
    /// event looked up: sled's retention forgets an event's attempts before
    /// the event, so there it would be one read per attempt for nothing.
    fn outlived_its_event(&self, attempt: &Attempt) -> Result<bool> {
        Ok(self.db.drops_days() && !self.events.contains_key(attempt.event_id.as_bytes())?)
    }

    pub fn attempt(&self, id: &str) -> Result<Option<Attempt>> {
        if let Some((event_id, position)) = parent_of_child(id, "evt") {
            let inline = self
                .event(&event_id)?
                .and_then(|mut event| {
                    (position < event.attempt_records.len())
                        .then(|| event.attempt_records.swap_remove(position))
                })
                .filter(|attempt| attempt.id == id);
            return Ok(inline);
        }
        // Named ahead: in its event's record, unless it was too large.
        if let Some((event_id, _)) = of_pending_attempt(id) {
            let inline = self.event(&event_id)?.and_then(|event| {
                (event.attempt_records.into_iter()).find(|attempt| attempt.id == id)
            });
            if inline.is_some() {
                return Ok(inline);
            }
        }
        // In the attempts tree, unless its event is gone (see `attempts_of_their_own`).
        let attempt: Option<Attempt> = get(&self.attempts, id)?;
        match attempt {
            Some(attempt) if !self.outlived_its_event(&attempt)? => Ok(Some(attempt)),
            _ => Ok(None),
        }
    }

    /// The attempt `id` names, made or still pending (see `AttemptEntry`).
    pub fn attempt_entry(&self, id: &str) -> Result<Option<AttemptEntry>> {
        if let Some(made) = self.attempt(id)? {
            return Ok(Some(AttemptEntry::Made(made)));
        }
        let Some((event_id, _)) = of_pending_attempt(id) else {
            return Ok(None);
        };
        let pending = self
            .event(&event_id)?
            .filter(|event| event.pending_attempt_id.as_deref() == Some(id));
        Ok(pending.and_then(AttemptEntry::pending))
    }

    /// The attempts of one event, oldest first, then the one it waits for
    /// if that was named ahead (see `AttemptEntry`).
    pub fn attempt_entries_of(&self, event_id: &str) -> Result<Vec<AttemptEntry>> {
        let made = self.attempts_of(event_id)?.into_iter();
        let mut entries: Vec<AttemptEntry> = made.map(AttemptEntry::Made).collect();
        if let Some(event) = self.event(event_id)? {
            entries.extend(AttemptEntry::pending(event));
        }
        Ok(entries)
    }
}

/// Whether `attempt` goes into `event`'s record (else to the attempts tree).
/// An attempt named ahead keeps its name: inline when the name leads to this
/// event (`pending_attempt_id`), else (named by a retry in a store from
/// before) in the attempts tree, as inline ids are positions.
pub fn stays_inline(event: &Event, attempt: &Attempt) -> bool {
    let body_bytes = |attempt: &Attempt| attempt.response_body.as_ref().map_or(0, String::len);
    let inline_bytes: usize = event.attempt_records.iter().map(body_bytes).sum();
    let findable = attempt.id.is_empty()
        || of_pending_attempt(&attempt.id).is_some_and(|(named, _)| named == event.id);
    findable
        && event.attempt_records.len() < INLINE_ATTEMPTS
        && inline_bytes + body_bytes(attempt) <= INLINE_BODY_BYTES
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::ids::{derived_id, now_ms};
    use crate::model::{AttemptStatus, AttemptTrigger, EventStatus};
    use crate::store::{temp_store_on, TestBackend};

    on_both_backends!(
        an_events_first_attempts_live_in_its_record_and_are_found_by_id,
        later_attempts_and_large_bodies_go_to_the_attempts_tree_in_order,
        an_attempt_kept_apart_is_hidden_once_its_event_is_gone_only_where_days_are_dropped,
    );

    fn store_with_event() -> (tempfile::TempDir, Store, Event) {
        store_with_event_on(TestBackend::Embedded)
    }

    fn store_with_event_on(backend: TestBackend) -> (tempfile::TempDir, Store, Event) {
        let (dir, store) = temp_store_on(backend);
        // One time for both: the event's queue entry is found by its due time.
        let now = now_ms();
        let event = crate::store::test_event(now);
        store.insert_event(&event, None, now).unwrap();
        (dir, store, event)
    }

    /// A successful first attempt of the event `event_id`.
    pub(in crate::store) fn successful_attempt(event_id: &str) -> Attempt {
        Attempt {
            id: String::new(),
            event_id: event_id.to_string(),
            attempt_number: 1,
            trigger: AttemptTrigger::Initial,
            status: AttemptStatus::Successful,
            http_method: "POST".into(),
            requested_url: "http://127.0.0.1:9/hook".into(),
            response_status: Some(200),
            response_body: None,
            error_code: None,
            latency_ms: 1,
            created_at: now_ms(),
            cli_id: None,
        }
    }

    pub(in crate::store) fn failed_attempt(event: &Event, number: u32, body: &str) -> Attempt {
        Attempt {
            attempt_number: number,
            trigger: AttemptTrigger::Automatic,
            status: AttemptStatus::Failed,
            response_status: Some(500),
            response_body: Some(body.into()),
            ..successful_attempt(&event.id)
        }
    }

    /// Settles `attempts` one after the other, counting them on the event.
    fn settle_all(store: &Store, attempts: Vec<Attempt>) -> Vec<String> {
        let settle = |attempt| {
            let (_, id) = store
                .settle_attempt(
                    attempt,
                    |event, attempt| {
                        event.attempts += 1;
                        (QueueMove::Stay, attempt.id.clone())
                    },
                    |_, _| {},
                )
                .unwrap()
                .expect("the event exists");
            id
        };
        attempts.into_iter().map(settle).collect()
    }

    fn ids(attempts: &[Attempt]) -> Vec<String> {
        attempts.iter().map(|a| a.id.clone()).collect()
    }

    fn an_events_first_attempts_live_in_its_record_and_are_found_by_id(backend: TestBackend) {
        let (_dir, store, event) = store_with_event_on(backend);
        let attempts = (1..=INLINE_ATTEMPTS as u32)
            .map(|n| failed_attempt(&event, n, "nope"))
            .collect();
        let recorded = settle_all(&store, attempts);

        assert_eq!(store.attempts.len(), 0, "no attempt record of its own");
        assert_eq!(store.event_attempts.len(), 0);
        let stored = store.event(&event.id).unwrap().unwrap();
        assert_eq!(stored.attempts, INLINE_ATTEMPTS as u32);
        assert_eq!(ids(&store.attempts_of(&event.id).unwrap()), recorded);
        for (number, id) in recorded.iter().enumerate() {
            let attempt = store.attempt(id).unwrap().expect("found by its id");
            assert_eq!(attempt.attempt_number, number as u32 + 1);
            assert_eq!(&attempt.event_id, &event.id);
        }
        let unused_position = child_id("atm", &event.id, INLINE_ATTEMPTS);
        assert_eq!(store.attempt(&unused_position).unwrap(), None);
        let other_event = child_id("atm", &derived_id("evt", &new_id("req"), "web_a"), 0);
        assert_eq!(store.attempt(&other_event).unwrap(), None);
    }

    #[test]
    fn an_attempt_named_in_advance_keeps_its_name_inline_and_in_the_attempts_tree() {
        let (_dir, store, event) = store_with_event();
        let (retried, name) = store.retry_by_hand(&event.id, now_ms()).unwrap().unwrap();
        assert_eq!(retried.pending_attempt_id.as_deref(), Some(name.as_str()));
        let pending = store.attempt_entry(&name).unwrap();
        assert!(
            matches!(pending, Some(AttemptEntry::Pending(_))),
            "{pending:?}"
        );
        let mut named = failed_attempt(&event, 1, "nope");
        named.id = name.clone();
        let inline = child_id("atm", &event.id, 1);
        let recorded = settle_all(&store, vec![named, failed_attempt(&event, 2, "no")]);
        assert_eq!(recorded, [name.clone(), inline.clone()]);
        assert_eq!(store.attempts.len(), 0, "inline, found by its name");
        for id in &recorded {
            assert_eq!(&store.attempt(id).unwrap().unwrap().id, id);
        }

        // Too large for the record: in the attempts tree under its name.
        let (_, large_name) = store.retry_by_hand(&event.id, now_ms()).unwrap().unwrap();
        let mut large = failed_attempt(&event, 3, &"x".repeat(INLINE_BODY_BYTES + 1));
        large.id = large_name.clone();
        settle_all(&store, vec![large]);
        assert_eq!(store.attempts.len(), 1);
        let made = store.attempt_entry(&large_name).unwrap();
        assert!(matches!(made, Some(AttemptEntry::Made(a)) if a.id == large_name));
        assert_eq!(
            ids(&store.attempts_of(&event.id).unwrap()),
            [name, inline, large_name]
        );
    }

    fn later_attempts_and_large_bodies_go_to_the_attempts_tree_in_order(backend: TestBackend) {
        let (_dir, store, event) = store_with_event_on(backend);
        let large = "x".repeat(INLINE_BODY_BYTES + 1);
        let mut attempts = vec![failed_attempt(&event, 1, &large)];
        attempts.extend((2..=INLINE_ATTEMPTS as u32 + 3).map(|n| failed_attempt(&event, n, "no")));
        let recorded = settle_all(&store, attempts);

        let spilled = 1 + 2; // the large body, and the ones past INLINE_ATTEMPTS
        assert_eq!(store.attempts.len(), spilled);
        assert_eq!(store.event_attempts.len(), spilled);
        let listed = store.attempts_of(&event.id).unwrap();
        assert_eq!(ids(&listed), recorded, "oldest first, wherever kept");
        assert_eq!(listed[0].response_body.as_deref(), Some(large.as_str()));
        for id in &recorded {
            assert_eq!(&store.attempt(id).unwrap().unwrap().id, id);
        }
    }

    #[test]
    fn inline_attempts_keep_few_response_bytes_between_them() {
        let (_dir, store, event) = store_with_event();
        let third = "x".repeat(INLINE_BODY_BYTES / 3);
        let attempts = (1..=4).map(|n| failed_attempt(&event, n, &third)).collect();
        settle_all(&store, attempts);
        let inline = store.event(&event.id).unwrap().unwrap().attempt_records;
        assert_eq!(inline.len(), 3, "a fourth third would pass the budget");
        assert_eq!(store.attempts.len(), 1);
        assert_eq!(store.attempts_of(&event.id).unwrap().len(), 4);
    }

    #[test]
    fn attempts_of_a_store_from_before_are_listed_with_the_new_ones() {
        let (_dir, store, event) = store_with_event();
        let mut old = failed_attempt(&event, 1, "old");
        old.id = new_id("atm");
        old.created_at -= 1_000;
        store.put_attempt_record(&old).unwrap();
        let recorded = settle_all(&store, vec![failed_attempt(&event, 2, "new")]);

        let listed = store.attempts_of(&event.id).unwrap();
        assert_eq!(ids(&listed), [old.id.clone(), recorded[0].clone()]);
        assert_eq!(store.attempt(&old.id).unwrap(), Some(old));
    }

    /// Settles `attempt` without waiting, marking its event SUCCESSFUL.
    fn settle_unless_busy(store: &Store, attempt: Attempt) -> SettledNow<()> {
        store.settle_attempt_unless_busy(
            attempt,
            |event, _| {
                event.status = EventStatus::Successful;
                (QueueMove::Out, ())
            },
            |_, _| {},
        )
    }

    #[test]
    fn a_settle_that_must_not_wait_settles_when_its_events_lock_is_free() {
        let (_dir, store, event) = store_with_event();
        let SettledNow::Settled(Ok(Some((settled, ())))) =
            settle_unless_busy(&store, successful_attempt(&event.id))
        else {
            panic!("the lock was free and the event exists");
        };
        assert_eq!(settled.status, EventStatus::Successful);
        assert_eq!(store.attempts_of(&event.id).unwrap().len(), 1);
        assert!(store
            .due_entries("des_a", u64::MAX, 10, &Default::default())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_settle_that_must_not_wait_hands_its_attempt_back_when_the_keyspace_is_remote() {
        let (_dir, store, event) = store_with_event_on(TestBackend::Postgres);
        let attempt = successful_attempt(&event.id);
        let SettledNow::Busy(handed_back) = settle_unless_busy(&store, attempt.clone()) else {
            panic!("settled on the caller's thread, over the network");
        };
        assert_eq!(handed_back.event_id, attempt.event_id);
        assert!(
            store.attempts_of(&event.id).unwrap().is_empty(),
            "nothing recorded"
        );
    }

    #[test]
    fn a_settle_that_must_not_wait_hands_its_attempt_back_while_the_event_is_being_changed() {
        let (_dir, store, event) = store_with_event();
        let attempt = successful_attempt(&event.id);
        let handed_back = store
            .update_event(&event.id, |_| {
                // Another change of the event holds its lock right now.
                (QueueMove::Stay, settle_unless_busy(&store, attempt.clone()))
            })
            .unwrap()
            .expect("the event exists")
            .1;
        let SettledNow::Busy(handed_back) = handed_back else {
            panic!("settled while the event's lock was held");
        };
        assert_eq!(handed_back, attempt, "untouched");
        let stored = store.event(&event.id).unwrap().unwrap();
        assert_eq!(stored.status, EventStatus::Queued, "nothing settled");
        assert!(store.attempts_of(&event.id).unwrap().is_empty());
    }

    #[test]
    fn an_attempt_of_a_missing_event_changes_nothing() {
        let (_dir, store, event) = store_with_event();
        let mut gone = failed_attempt(&event, 1, "nope");
        gone.event_id = derived_id("evt", &new_id("req"), "web_a");
        let settled = store
            .settle_attempt(gone, |_, _| (QueueMove::Stay, ()), |_, _| {})
            .unwrap();
        assert!(settled.is_none());
        assert_eq!(store.attempts.len(), 0);
        assert!(store.attempts_of(&event.id).unwrap().is_empty());
    }

    /// How many cluster-wide locks `store`'s keyspace has taken.
    fn locks_taken(store: &Store) -> usize {
        match &store.db {
            crate::store::Keyspace::Remote(remote) => remote.locks_taken(),
            crate::store::Keyspace::Embedded(_) => unreachable!("one node takes none"),
        }
    }

    #[test]
    fn an_attempt_settled_by_its_lanes_node_takes_no_lock_for_every_node() {
        let (_dir, store, event) = store_with_event_on(TestBackend::Postgres);
        let large = "x".repeat(INLINE_BODY_BYTES + 1);
        let attempts = vec![
            failed_attempt(&event, 1, "x"),
            failed_attempt(&event, 2, &large),
        ];
        let before = locks_taken(&store);
        let settled = settle_all(&store, attempts);
        assert_eq!(locks_taken(&store), before, "neither settle took one");
        assert_eq!(ids(&store.attempts_of(&event.id).unwrap()), settled);
        store
            .retry_now(&event.id, AttemptTrigger::Manual, now_ms())
            .unwrap();
        assert_eq!(locks_taken(&store), before + 1, "an API change takes one");
    }

    /// Node A settles an attempt on an event that node B changes between
    /// A's read and A's write: A's write is refused, and A settles again
    /// on B's change, recording its attempt once (inline or apart).
    #[test]
    fn an_attempt_settled_on_a_stale_read_settles_again_and_is_recorded_once() {
        let backend = crate::store::Backend::Postgres(Box::new(
            crate::store::keyspace::test_server::database(),
        ));
        let (_a_dir, a) = crate::store::temp_node(&backend);
        let (_b_dir, b) = crate::store::temp_node(&backend);
        for body in ["x".to_string(), "x".repeat(INLINE_BODY_BYTES + 1)] {
            let event = crate::store::test_event(now_ms());
            a.insert_event(&event, None, now_ms()).unwrap();
            let mut runs = 0;
            let (settled, attempt_id) = a
                .settle_attempt(
                    failed_attempt(&event, 1, &body),
                    |event, attempt| {
                        runs += 1;
                        if runs == 1 {
                            b.update_event(&event.id, |event| {
                                event.requeues += 10;
                                (QueueMove::Stay, ())
                            })
                            .unwrap();
                        }
                        event.attempts += 1;
                        (QueueMove::Stay, attempt.id.clone())
                    },
                    |_, _| {},
                )
                .unwrap()
                .expect("the event exists");
            assert_eq!(runs, 2, "settled again on B's change");
            let stored = b.event(&event.id).unwrap().unwrap();
            assert_eq!((stored.requeues, stored.attempts), (10, 1), "both changes");
            assert_eq!(stored, settled);
            assert_eq!(ids(&b.attempts_of(&event.id).unwrap()), [attempt_id]);
        }
    }

    /// An attempt kept apart whose event's record is gone, as a dropped day
    /// leaves it in PostgreSQL: hidden there. Sled never leaves one (its
    /// retention forgets an event's attempts first), so it never reads the
    /// event to look, and still finds the attempt.
    fn an_attempt_kept_apart_is_hidden_once_its_event_is_gone_only_where_days_are_dropped(
        backend: TestBackend,
    ) {
        let (_dir, store, event) = store_with_event_on(backend);
        let large = "x".repeat(INLINE_BODY_BYTES + 1);
        let id = settle_all(&store, vec![failed_attempt(&event, 1, &large)]).remove(0);
        store.events.remove(event.id.as_bytes()).unwrap();
        let found = store.attempt(&id).unwrap().is_some();
        let listed = store.attempts_of_their_own().count();
        let looks = backend == TestBackend::Postgres;
        assert_eq!((found, listed), (!looks, usize::from(!looks)));
    }
}

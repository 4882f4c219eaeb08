//! The attempts a lane has in flight.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;
use tokio::task::{Id, JoinError, JoinSet};

/// How many attempts may be in flight, settling ones included, for each one
/// that may be sending: settling is not bounded by the destination's cap, but
/// a database slower than the destination must not pile settles up unbounded.
const IN_FLIGHT_PER_SLOT: usize = 2;

/// The lane's attempts in flight. Each event is known by its task, so a task
/// that ends in any way, a panic included, frees its event's slot. A
/// panicked attempt never settled: its event is still queued, and is put off
/// (`take_panicked`, then the lane's `put_off`) rather than taken again at
/// once, which could repeat the panic, and maybe the delivery, in a tight loop.
///
/// An attempt holds one of the destination's slots (its `concurrent`) only
/// while it sends: it hands its `Slot` back as the response arrives, and
/// stays in flight while it settles (its event is passed over by scans, and
/// a lane that stops waits for it). Settling takes store round trips (on
/// PostgreSQL: the event's cluster lock, the read, the write); counted
/// against the cap, they made each slot's turn longer than the rate's share
/// of it and the lane fell short of its rate whenever the database was slow.
#[derive(Default)]
pub(crate) struct InFlight {
    tasks: JoinSet<()>,
    events: HashMap<Id, String>,
    panicked: Vec<String>,
    sending: Arc<Sending>,
}

/// The attempts sending now, and a bell rung as each one's response arrives.
#[derive(Default)]
struct Sending {
    count: AtomicUsize,
    answered: Notify,
}

/// An attempt's place among those sending; dropped once its response is in.
pub(crate) struct Slot(Arc<Sending>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::SeqCst);
        self.0.answered.notify_one();
    }
}

impl InFlight {
    /// Starts `attempt`, which holds its slot until it drops it.
    pub(crate) fn start<F>(&mut self, event_id: String, attempt: impl FnOnce(Slot) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.sending.count.fetch_add(1, Ordering::SeqCst);
        let slot = Slot(self.sending.clone());
        let task = self.tasks.spawn(attempt(slot));
        self.events.insert(task.id(), event_id);
    }

    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }

    /// How many attempts hold a slot (sending, not settling).
    pub(crate) fn sending(&self) -> usize {
        self.sending.count.load(Ordering::SeqCst)
    }

    /// The events being attempted, for the scan to pass over.
    pub(crate) fn event_ids(&self) -> HashSet<String> {
        self.events.values().cloned().collect()
    }

    /// Waits until one more attempt may start when `slots` may be sending at
    /// once: one of them is free, and not too many attempts are settling.
    pub(crate) async fn room_for_one(&mut self, slots: usize) {
        let sending = self.sending.clone();
        loop {
            let settling_room = self.len() < slots.saturating_mul(IN_FLIGHT_PER_SLOT);
            if self.sending() < slots && settling_room {
                return;
            }
            // The bell keeps a ring given while nobody waited: none is lost
            // between the count read above and the wait.
            tokio::select! {
                _ = sending.answered.notified() => {}
                _ = self.free_next() => {}
            }
        }
    }

    /// Frees the slots of attempts that finished while the lane was busy.
    pub(crate) fn free_finished(&mut self) {
        while let Some(done) = self.tasks.try_join_next_with_id() {
            self.free(done);
        }
    }

    /// Waits for the next attempt to finish and frees its slot (pending
    /// forever when none is in flight).
    pub(crate) async fn free_next(&mut self) {
        match self.tasks.join_next_with_id().await {
            Some(done) => self.free(done),
            None => std::future::pending().await,
        }
    }

    fn free(&mut self, done: Result<(Id, ()), JoinError>) {
        let (task, panicked) = match done {
            Ok((task, ())) => (task, false),
            Err(error) => (error.id(), error.is_panic()),
        };
        let Some(event_id) = self.events.remove(&task) else {
            return;
        };
        if panicked {
            tracing::error!(event = %event_id, "a delivery attempt panicked; the event is tried again later");
            self.panicked.push(event_id);
        }
    }

    /// The events whose attempts panicked since the last call.
    pub(crate) fn take_panicked(&mut self) -> Vec<String> {
        std::mem::take(&mut self.panicked)
    }

    /// Waits for every attempt in flight, so that their outcomes are recorded.
    pub(crate) async fn finish(mut self) {
        while let Some(done) = self.tasks.join_next_with_id().await {
            self.free(done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_attempt_that_panics_frees_its_slot_and_names_its_event() {
        let mut in_flight = InFlight::default();
        in_flight.start("evt_panics".into(), |_| async {
            panic!("a bug in an attempt")
        });
        in_flight.start("evt_waits".into(), |_| std::future::pending());
        in_flight.free_next().await;
        assert_eq!(in_flight.len(), 1);
        assert_eq!(
            in_flight.event_ids(),
            HashSet::from(["evt_waits".to_string()])
        );
        assert_eq!(in_flight.take_panicked(), vec!["evt_panics".to_string()]);
        assert!(in_flight.take_panicked().is_empty());
    }

    #[tokio::test]
    async fn an_attempt_frees_its_slot_when_answered_and_stays_in_flight_until_settled() {
        use futures_util::FutureExt;
        use tokio::sync::oneshot;
        let mut in_flight = InFlight::default();
        let (answer, answered) = oneshot::channel::<()>();
        let (settle, settled) = oneshot::channel::<()>();
        in_flight.start("evt_a".into(), |slot| async move {
            let _ = answered.await;
            drop(slot);
            let _ = settled.await;
        });
        assert!(
            in_flight.room_for_one(1).now_or_never().is_none(),
            "sending"
        );
        answer.send(()).unwrap();
        in_flight.room_for_one(1).await;
        assert_eq!(in_flight.sending(), 0, "answered: its slot is free");
        assert_eq!(in_flight.event_ids(), HashSet::from(["evt_a".to_string()]));
        in_flight.start("evt_b".into(), |slot| async move {
            drop(slot);
            std::future::pending().await
        });
        assert!(
            in_flight.room_for_one(1).now_or_never().is_none(),
            "two settling for one slot: no room for a third"
        );
        settle.send(()).unwrap();
        in_flight.room_for_one(1).await;
        assert_eq!(in_flight.event_ids(), HashSet::from(["evt_b".to_string()]));
    }
}

//! The attempts a lane has in flight.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use tokio::task::{Id, JoinError, JoinSet};

/// The lane's attempts in flight. Each event is known by its task, so a task
/// that ends in any way, a panic included, frees its event's slot. A
/// panicked attempt never settled: its event is still queued, and is put off
/// (`take_panicked`, then the lane's `put_off`) rather than taken again at
/// once, which could repeat the panic, and maybe the delivery, in a tight loop.
#[derive(Default)]
pub(crate) struct InFlight {
    tasks: JoinSet<()>,
    events: HashMap<Id, String>,
    panicked: Vec<String>,
}

impl InFlight {
    pub(crate) fn start(
        &mut self,
        event_id: String,
        attempt: impl Future<Output = ()> + Send + 'static,
    ) {
        let task = self.tasks.spawn(attempt);
        self.events.insert(task.id(), event_id);
    }

    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The events being attempted, for the scan to pass over.
    pub(crate) fn event_ids(&self) -> HashSet<String> {
        self.events.values().cloned().collect()
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
        in_flight.start("evt_panics".into(), async { panic!("a bug in an attempt") });
        in_flight.start("evt_waits".into(), std::future::pending());
        in_flight.free_next().await;
        assert_eq!(in_flight.len(), 1);
        assert_eq!(
            in_flight.event_ids(),
            HashSet::from(["evt_waits".to_string()])
        );
        assert_eq!(in_flight.take_panicked(), vec!["evt_panics".to_string()]);
        assert!(in_flight.take_panicked().is_empty());
    }
}

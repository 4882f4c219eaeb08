//! One destination's lane: the loop that takes due events off its queue.

use super::attempt::{self, Ready};
use super::circuit::Permit;
use super::Shared;
use crate::ids::now_ms;
use crate::model::{Destination, RateLimit};
use crate::store::QueueEntry;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::futures::Notified;
use tokio::sync::{watch, Notify};
use tokio::task::{Id, JoinError, JoinSet};

/// What the lane reads from the store on each pass.
struct Scan {
    /// Due events, loaded for their attempts.
    due: Vec<(QueueEntry, Ready)>,
    /// How many due entries were taken off the queue (some may need no attempt).
    taken: usize,
    next_due_ms: Option<u64>,
}

/// How a lane is told that events may be due, and how it stops listening. A
/// lane whose destination is gone closes it (after a last look at the
/// catalog, under its lock) before it waits for its attempts in flight; a
/// wake-up that finds it closed starts a new lane, which lets the old one
/// finish first (two lanes of one destination at once could attempt an event
/// twice). Without it, a destination removed and added back while its old
/// lane drained was left without a lane.
pub(super) struct Doorbell {
    ring: Notify,
    open: std::sync::Mutex<bool>,
}

impl Doorbell {
    pub(super) fn new() -> Doorbell {
        Doorbell {
            ring: Notify::new(),
            open: std::sync::Mutex::new(true),
        }
    }

    /// Rings, if the lane still listens; says whether it does.
    pub(super) fn ring(&self) -> bool {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if *open {
            self.ring.notify_one();
        }
        *open
    }

    fn rung(&self) -> Notified<'_> {
        self.ring.notified()
    }

    /// Stops listening, unless `still_wanted()` (judged under the lock, so
    /// that a ring either comes before the close or finds it closed). True
    /// when it closed.
    fn close_unless(&self, still_wanted: impl FnOnce() -> bool) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if still_wanted() {
            return false;
        }
        *open = false;
        true
    }
}

/// The lane's attempts in flight. Each event is known by its task, so a task
/// that ends in any way, a panic included, frees its event's slot: its queue
/// entry is still in place, and the next scan takes the event again (a
/// panicked attempt never settled).
#[derive(Default)]
struct InFlight {
    tasks: JoinSet<()>,
    events: HashMap<Id, String>,
}

impl InFlight {
    fn start(&mut self, event_id: String, attempt: impl Future<Output = ()> + Send + 'static) {
        let task = self.tasks.spawn(attempt);
        self.events.insert(task.id(), event_id);
    }

    fn len(&self) -> usize {
        self.events.len()
    }

    fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The events being attempted, for the scan to pass over.
    fn event_ids(&self) -> HashSet<String> {
        self.events.values().cloned().collect()
    }

    /// Frees the slots of attempts that finished while the lane was busy.
    fn free_finished(&mut self) {
        while let Some(done) = self.tasks.try_join_next_with_id() {
            self.free(done);
        }
    }

    /// Waits for the next attempt to finish and frees its slot (pending
    /// forever when none is in flight).
    async fn free_next(&mut self) {
        match self.tasks.join_next_with_id().await {
            Some(done) => self.free(done),
            None => std::future::pending().await,
        }
    }

    fn free(&mut self, done: Result<(Id, ()), JoinError>) {
        let task = match done {
            Ok((task, ())) => task,
            Err(error) => {
                tracing::error!(%error, "a delivery attempt ended abnormally; its event stays queued");
                error.id()
            }
        };
        self.events.remove(&task);
    }

    /// Waits for every attempt in flight, so that their outcomes are recorded.
    async fn finish(mut self) {
        while let Some(done) = self.tasks.join_next_with_id().await {
            self.free(done);
        }
    }
}

/// A limiter and the limit it was built for, rebuilt when the limit changes.
struct Limiter {
    limit: RateLimit,
    limiter: DefaultDirectRateLimiter,
}

/// The limit is kept over any window of one period, give or take this share of
/// it sent at once: a lane that wakes up late catches up on the sends it missed
/// instead of losing them, so the rate holds on average (with a burst of one,
/// every late wake-up is lost for good and the rate runs a few percent slow).
const CATCH_UP_SHARE: u32 = 25;

fn limiter_for(limit: RateLimit) -> Limiter {
    let count = NonZeroU32::new(limit.count).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(count.get() / CATCH_UP_SHARE).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(limit.period.duration() / count.get())
        .expect("period is not zero")
        .allow_burst(burst);
    Limiter {
        limit,
        limiter: RateLimiter::direct(quota),
    }
}

pub(super) async fn run(
    shared: Arc<Shared>,
    destination_id: String,
    bell: Arc<Doorbell>,
    mut stop: watch::Receiver<bool>,
) {
    let mut in_flight = InFlight::default();
    let mut limiter: Option<Limiter> = None;
    while !*stop.borrow() {
        let Some(destination) = shared.catalog.load().target(&destination_id).cloned() else {
            // The destination was removed; its queue stays on disk.
            let wanted = || shared.catalog.load().target(&destination_id).is_some();
            match bell.close_unless(wanted) {
                true => break,
                false => continue,
            }
        };
        refresh_limiter(&mut limiter, destination.rate_limit);
        in_flight.free_finished();
        let (capacity, mut next_due_ms) = capacity_now(&shared, &destination, in_flight.len());
        if capacity > 0 {
            let scan = scan(&shared, &destination_id, capacity, in_flight.event_ids()).await;
            let saturated = scan.taken == capacity;
            let mut woken = false;
            for (entry, ready) in scan.due {
                if let Some(limiter) = &limiter {
                    // A wake-up may bring a new limit (reload, API): rescan with it
                    // rather than spend the rest of the batch at the old rate.
                    tokio::select! {
                        _ = limiter.limiter.until_ready() => {}
                        _ = bell.rung() => woken = true,
                        _ = stop.changed() => woken = true,
                    }
                    if woken {
                        break;
                    }
                }
                let attempt = attempt::deliver(shared.clone(), destination.clone(), ready);
                in_flight.start(entry.event_id, attempt);
            }
            if woken {
                continue;
            }
            if saturated && in_flight.is_empty() {
                // A full batch started nothing (all held or already done, and
                // gone from the queue): more may be due behind it, and no
                // finishing attempt will bring the lane back. Look again now.
                continue;
            }
            if saturated {
                // More may be due; look again as soon as an attempt frees a slot.
                next_due_ms = None;
            } else {
                next_due_ms = scan.next_due_ms;
            }
        }
        tokio::select! {
            _ = bell.rung() => {}
            _ = in_flight.free_next() => {}
            _ = sleep_until_ms(next_due_ms), if next_due_ms.is_some() => {}
            _ = stop.changed() => {}
        }
    }
    in_flight.finish().await;
}

/// How many attempts the lane may start now, and (when none because the
/// destination's circuit is open) when to look again.
fn capacity_now(
    shared: &Shared,
    destination: &Destination,
    in_flight: usize,
) -> (usize, Option<u64>) {
    let permit = match destination.circuit_breaker {
        true => shared.circuits.permit(&destination.id, now_ms()),
        false => Permit::Any,
    };
    match permit {
        Permit::Any => (destination.concurrency.saturating_sub(in_flight), None),
        Permit::One => (1usize.saturating_sub(in_flight), None),
        Permit::WaitUntil(until_ms) => (0, Some(until_ms)),
    }
}

fn refresh_limiter(limiter: &mut Option<Limiter>, wanted: Option<RateLimit>) {
    let current = limiter.as_ref().map(|l| l.limit);
    if current != wanted {
        *limiter = wanted.map(limiter_for);
    }
}

async fn scan(
    shared: &Arc<Shared>,
    destination_id: &str,
    capacity: usize,
    in_flight: HashSet<String>,
) -> Scan {
    let store = shared.store.clone();
    let destination_id = destination_id.to_string();
    let scanned = tokio::task::spawn_blocking(move || {
        let now = now_ms();
        let entries = store.due_entries(&destination_id, now, capacity, &in_flight)?;
        let taken = entries.len();
        let mut due = Vec::with_capacity(taken);
        for entry in entries {
            if let Some(ready) = attempt::prepare(&store, &destination_id, &entry)? {
                due.push((entry, ready));
            }
        }
        let next_due_ms = store.next_due_after(&destination_id, now)?;
        Ok::<_, crate::store::StoreError>(Scan {
            due,
            taken,
            next_due_ms,
        })
    })
    .await;
    match scanned {
        Ok(Ok(scan)) => scan,
        Ok(Err(error)) => {
            tracing::error!(%error, "queue scan failed; retrying in a second");
            Scan {
                due: Vec::new(),
                taken: 0,
                next_due_ms: Some(now_ms() + 1000),
            }
        }
        // Only happens while the runtime shuts down; the queue is untouched.
        Err(_) => Scan {
            due: Vec::new(),
            taken: 0,
            next_due_ms: None,
        },
    }
}

async fn sleep_until_ms(due_ms: Option<u64>) {
    let wait = due_ms.unwrap_or(0).saturating_sub(now_ms());
    tokio::time::sleep(Duration::from_millis(wait)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_attempt_that_panics_frees_its_events_slot() {
        let mut in_flight = InFlight::default();
        in_flight.start("evt_panics".into(), async { panic!("a bug in an attempt") });
        in_flight.start("evt_waits".into(), std::future::pending());
        in_flight.free_next().await;
        assert_eq!(in_flight.len(), 1);
        assert_eq!(
            in_flight.event_ids(),
            HashSet::from(["evt_waits".to_string()]),
            "the panicked attempt's event is taken again by the next scan"
        );
    }
}

//! One destination's lane: the loop that takes due events off its queue.

use super::attempt::{self, Ready};
use super::circuit::Permit;
use super::Shared;
use crate::ids::now_ms;
use crate::model::{Destination, RateLimit};
use crate::store::QueueEntry;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

/// What the lane reads from the store on each pass.
struct Scan {
    /// Due events, loaded for their attempts.
    due: Vec<(QueueEntry, Ready)>,
    /// How many due entries were taken off the queue (some may need no attempt).
    taken: usize,
    next_due_ms: Option<u64>,
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
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut in_flight: HashSet<String> = HashSet::new();
    let mut attempts: JoinSet<String> = JoinSet::new();
    let mut limiter: Option<Limiter> = None;
    while !*stop.borrow() {
        let Some(destination) = shared.catalog.load().target(&destination_id).cloned() else {
            break; // The destination was removed; its queue stays on disk.
        };
        refresh_limiter(&mut limiter, destination.rate_limit);
        free_finished(&mut attempts, &mut in_flight);
        let (capacity, mut next_due_ms) = capacity_now(&shared, &destination, in_flight.len());
        if capacity > 0 {
            let scan = scan(&shared, &destination_id, capacity, &in_flight).await;
            let saturated = scan.taken == capacity;
            let mut woken = false;
            for (entry, ready) in scan.due {
                if let Some(limiter) = &limiter {
                    // A wake-up may bring a new limit (reload, API): rescan with it
                    // rather than spend the rest of the batch at the old rate.
                    tokio::select! {
                        _ = limiter.limiter.until_ready() => {}
                        _ = wake.notified() => woken = true,
                        _ = stop.changed() => woken = true,
                    }
                    if woken {
                        break;
                    }
                }
                in_flight.insert(entry.event_id.clone());
                attempts.spawn(attempt::deliver(shared.clone(), destination.clone(), ready));
            }
            if woken {
                continue;
            }
            if saturated && !attempts.is_empty() {
                // More may be due; look again as soon as an attempt frees a slot.
                next_due_ms = None;
            } else {
                next_due_ms = scan.next_due_ms;
            }
        }
        tokio::select! {
            _ = wake.notified() => {}
            Some(done) = attempts.join_next(), if !attempts.is_empty() => {
                if let Ok(event_id) = done {
                    in_flight.remove(&event_id);
                }
            }
            _ = sleep_until_ms(next_due_ms), if next_due_ms.is_some() => {}
            _ = stop.changed() => {}
        }
    }
    // Let attempts in flight finish so their outcome is recorded.
    while attempts.join_next().await.is_some() {}
}

/// Attempts that finished while the lane was busy free their slots.
fn free_finished(attempts: &mut JoinSet<String>, in_flight: &mut HashSet<String>) {
    while let Some(done) = attempts.try_join_next() {
        if let Ok(event_id) = done {
            in_flight.remove(&event_id);
        }
    }
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
    in_flight: &HashSet<String>,
) -> Scan {
    let store = shared.store.clone();
    let destination_id = destination_id.to_string();
    let in_flight = in_flight.clone();
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

//! One destination's lane: the loop that takes due events off its queue.

use super::attempt::{self, Ready};
use super::circuit::Permit;
use super::cli;
use super::doorbell::Doorbell;
use super::in_flight::InFlight;
use super::Shared;
use crate::ids::now_ms;
use crate::model::{Destination, RateLimit};
use crate::store::{QueueEntry, QueueMove, Store, StoreError};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::HashSet;
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the lane reads from the store on each pass.
struct Scan {
    /// Due events, loaded for their attempts.
    due: Vec<(QueueEntry, Ready)>,
    /// Whether as many due entries were taken off the queue (some may need
    /// no attempt) as were asked for: more may be due behind them.
    saturated: bool,
    next_due_ms: Option<u64>,
}

/// A scan under way on the blocking pool.
type PendingScan = JoinHandle<Result<Scan, StoreError>>;

/// What a pass of the lane may start.
struct Capacity {
    /// How many attempts may be sending at once: the destination's
    /// `concurrent`, one while its circuit is half-open, no more than a CLI
    /// destination's listeners.
    slots: usize,
    /// How many due events the pass loads.
    batch: usize,
    /// Whether the pass may load its batch while the slots are busy, and the
    /// next one while it sends (`ahead`): each waits for a free slot.
    ahead: bool,
    /// What the destination's circuit let the pass start.
    permit: Permit,
    /// When the pass loads none because the circuit is open: when to look again.
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
    bell: Arc<Doorbell>,
    mut stop: watch::Receiver<bool>,
) {
    let mut in_flight = InFlight::default();
    let mut limiter: Option<Limiter> = None;
    // Whether the last pass could send (see `cli::heard`): when it now can,
    // and could not before (or the lane just started), the events held for
    // want of a listener are released.
    let mut heard_before = false;
    // The next batch, loaded while the last one was sent.
    let mut ahead: Option<PendingScan> = None;
    // Whether the lane was rung while `ahead` loaded: it may have missed
    // what the ring was for (an event queued meanwhile), so once it is sent
    // the lane scans again instead of sleeping.
    let mut ahead_rung = false;
    while !*stop.borrow() {
        let Some(destination) = shared.catalog.load().target(&destination_id).cloned() else {
            // The destination was removed; its queue stays on disk.
            let wanted = || shared.catalog.load().target(&destination_id).is_some();
            match bell.close_unless(wanted) {
                true => break,
                false => continue,
            }
        };
        if !shared.leases.runs_lane(&destination_id) {
            // Another node of the cluster runs it (or will once the lease
            // is free): the attempts in flight finish, no new one starts
            // until the lease is ours (the coordinator rings then). The
            // lease is released only once they have finished (`drained`),
            // so that the next node never overlaps them.
            ahead = None;
            std::mem::take(&mut in_flight).finish().await;
            shared.leases.drained(&destination_id);
            tokio::select! {
                _ = bell.rung() => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        refresh_limiter(&mut limiter, destination.rate_limit);
        let heard = cli::heard(&shared.cli, &destination);
        heard_before = match heard && !heard_before {
            true => cli::release_held(&shared, &destination_id).await,
            false => heard,
        };
        in_flight.free_finished();
        for event_id in in_flight.take_panicked() {
            put_off(&shared.store, event_id).await;
        }
        let capacity = capacity_now(&shared, &destination, in_flight.sending());
        let mut next_due_ms = capacity.next_due_ms;
        let missed_rings = std::mem::take(&mut ahead_rung);
        let (loaded, stale) = match ahead.take() {
            Some(pending) if capacity.ahead => (Some(pending), missed_rings),
            _ => {
                let scan = (capacity.batch > 0).then(|| {
                    let passed_over = in_flight.event_ids();
                    start_scan(&shared, &destination, capacity.batch, passed_over)
                });
                (scan, false)
            }
        };
        if let Some(loaded) = loaded {
            let scan = scanned(loaded).await;
            if scan.saturated && capacity.ahead {
                // More may be due: the next batch loads while this one is
                // sent, so that a slow store costs the lane no sends.
                let mut passed_over = in_flight.event_ids();
                passed_over.extend(scan.due.iter().map(|(entry, _)| entry.event_id.clone()));
                ahead = Some(start_scan(
                    &shared,
                    &destination,
                    capacity.batch,
                    passed_over,
                ));
            }
            // A ring during the batch (events queued, leases renewed: many
            // a second in a cluster) is answered by a scan after it, not by
            // breaking off a rate-limited batch: each scan costs the lane
            // sends it could have made, and its pace with them.
            let mut rung = false;
            let mut woken = false;
            for (entry, ready) in scan.due {
                let mut waiting = Waiting {
                    bell: &bell,
                    stop: &mut stop,
                    rung: &mut rung,
                    limit: limiter.as_ref().map(|l| l.limit),
                    limit_now: || {
                        let catalog = shared.catalog.load();
                        catalog.target(&destination_id).and_then(|d| d.rate_limit)
                    },
                };
                if !waiting
                    .through(in_flight.room_for_one(capacity.slots))
                    .await
                {
                    woken = true;
                    break;
                }
                // `check` takes a send when one is free; only a held-back
                // attempt waits, and is counted once let through.
                if let Some(limiter) = limiter.as_ref().filter(|l| l.limiter.check().is_err()) {
                    if !waiting.through(limiter.limiter.until_ready()).await {
                        woken = true;
                        break;
                    }
                    shared.metrics.rate_limit_wait(&destination);
                }
                // The circuit opened while the batch waited (its failures
                // came back meanwhile): the next pass asks it again.
                if permit(&shared, &destination) != capacity.permit {
                    woken = true;
                    break;
                }
                // Paused while the batch waited: the scan holds it.
                if shared.store.is_paused(ready.connection_id()) {
                    woken = true;
                    break;
                }
                if !shared.leases.start_attempt(&destination_id) {
                    woken = true; // the lease lapsed during the batch: not one more
                    break;
                }
                let (shared, destination, stop) =
                    (shared.clone(), destination.clone(), stop.clone());
                in_flight.start(entry.event_id, |slot| {
                    attempt::deliver(shared, destination, ready, stop, slot)
                });
            }
            ahead_rung = ahead.is_some() && (woken || rung);
            if woken || rung || scan.saturated || stale {
                // More may be due behind a full batch (and, when it started
                // nothing, no finishing attempt would bring the lane back),
                // or behind a batch loaded before the last rings.
                continue;
            }
            next_due_ms = scan.next_due_ms;
        }
        tokio::select! {
            _ = bell.rung() => {}
            _ = in_flight.free_next() => {}
            _ = sleep_until_ms(next_due_ms), if next_due_ms.is_some() => {}
            _ = stop.changed() => {}
        }
    }
    in_flight.finish().await;
    shared.leases.drained(&destination_id);
}

/// How a batch waits for a free slot and for its rate limit: through rings,
/// which it notes in `rung`, until the lane is to stop or its limit changed
/// (a reload, the API: the rest of the batch is not to go out at the old
/// rate).
struct Waiting<'a, F> {
    bell: &'a Doorbell,
    stop: &'a mut watch::Receiver<bool>,
    rung: &'a mut bool,
    limit: Option<RateLimit>,
    limit_now: F,
}

impl<F: Fn() -> Option<RateLimit>> Waiting<'_, F> {
    /// True once `ready` is; false when the lane is to stop or its limit changed.
    async fn through(&mut self, ready: impl Future<Output = ()>) -> bool {
        tokio::pin!(ready);
        loop {
            tokio::select! {
                _ = &mut ready => return true,
                _ = self.bell.rung() => {
                    *self.rung = true;
                    if (self.limit_now)() != self.limit {
                        return false;
                    }
                }
                _ = self.stop.changed() => return false,
            }
        }
    }
}

/// What the lane may start now (see `Capacity`).
fn capacity_now(shared: &Shared, destination: &Destination, sending: usize) -> Capacity {
    let permit = permit(shared, destination);
    let (slots, next_due_ms) = match permit {
        Permit::Any => (destination.concurrency, None),
        Permit::One => (1, None),
        Permit::WaitUntil(until_ms) => (0, Some(until_ms)),
    };
    // A CLI destination's listeners take one event each, so each attempt in
    // flight holds one (or is about to be handed to one): with none free, its
    // events wait queued until one is (ringing the lane). With none
    // connected, the lane takes its due events to hold them (`prepare`).
    let slots = match (&destination.url, shared.cli.connected(&destination.id)) {
        (None, connected) if connected > 0 => slots.min(connected),
        _ => slots,
    };
    // Only a destination whose slots stay as they are may have its events
    // wait for one: a half-open circuit's probe decides whether there is a
    // next attempt, and a CLI destination's listeners come and go.
    let ahead = permit == Permit::Any && destination.url.is_some();
    let batch = match ahead {
        true => slots,
        false => slots.saturating_sub(sending),
    };
    Capacity {
        slots,
        batch,
        ahead,
        permit,
        next_due_ms,
    }
}

/// What the destination's circuit lets the lane start now.
fn permit(shared: &Shared, destination: &Destination) -> Permit {
    match destination.circuit_breaker {
        true => shared.circuits.permit(&destination.id, now_ms()),
        false => Permit::Any,
    }
}

fn refresh_limiter(limiter: &mut Option<Limiter>, wanted: Option<RateLimit>) {
    let current = limiter.as_ref().map(|l| l.limit);
    if current != wanted {
        *limiter = wanted.map(limiter_for);
    }
}

/// Starts loading up to `batch` due events, passing over `passed_over`.
fn start_scan(
    shared: &Arc<Shared>,
    destination: &Destination,
    batch: usize,
    passed_over: HashSet<String>,
) -> PendingScan {
    let store = shared.store.clone();
    let destination_id = destination.id.clone();
    // A CLI destination's events are held while it has no listener.
    let listeners = destination.url.is_none().then(|| shared.cli.clone());
    tokio::task::spawn_blocking(move || {
        let now = now_ms();
        let entries = store.due_entries(&destination_id, now, batch, &passed_over)?;
        let saturated = entries.len() == batch;
        let mut due = Vec::with_capacity(entries.len());
        for entry in entries {
            let listeners = listeners.as_deref();
            if let Some(ready) = attempt::prepare(&store, &destination_id, &entry, listeners)? {
                due.push((entry, ready));
            }
        }
        let next_due_ms = store.next_due_after(&destination_id, now)?;
        Ok(Scan {
            due,
            saturated,
            next_due_ms,
        })
    })
}

/// The scan's result; a failed scan is tried again in a second.
async fn scanned(pending: PendingScan) -> Scan {
    match pending.await {
        Ok(Ok(scan)) => scan,
        Ok(Err(error)) => {
            tracing::error!(%error, "queue scan failed; retrying in a second");
            Scan {
                due: Vec::new(),
                saturated: false,
                next_due_ms: Some(now_ms() + 1000),
            }
        }
        // Only happens while the runtime shuts down; the queue is untouched.
        Err(_) => Scan {
            due: Vec::new(),
            saturated: false,
            next_due_ms: None,
        },
    }
}

/// How long the event of a panicked attempt waits before it is tried again.
const AFTER_A_PANIC: Duration = Duration::from_secs(60);

/// Moves the event of a panicked attempt to `AFTER_A_PANIC` from now (unless
/// it is done meanwhile), before the lane scans again.
async fn put_off(store: &Store, event_id: String) {
    let store = store.clone();
    let _ = tokio::task::spawn_blocking(move || {
        let due_ms = now_ms() + AFTER_A_PANIC.as_millis() as u64;
        let moved = store.update_event(&event_id, |event| match event.status.is_terminal() {
            true => (QueueMove::Stay, ()),
            false => (QueueMove::To(due_ms), ()),
        });
        if let Err(error) = moved {
            tracing::error!(%error, event = %event_id, "could not put off a panicked attempt's event");
        }
    })
    .await;
}

async fn sleep_until_ms(due_ms: Option<u64>) {
    let wait = due_ms.unwrap_or(0).saturating_sub(now_ms());
    tokio::time::sleep(Duration::from_millis(wait)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_event_of_a_panicked_attempt_waits_before_it_is_tried_again() {
        use crate::model::{Event, Route};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let route = Route {
            source_id: "src_a",
            connection_id: "web_a",
            destination_id: "des_a",
        };
        let due_ms = now_ms();
        let event = Event::new("evt_a".into(), "req_a", route, due_ms, false);
        store.insert_event(&event, None, due_ms).unwrap();
        put_off(&store, "evt_a".into()).await;
        let none = HashSet::new();
        assert!(store
            .due_entries("des_a", now_ms(), 10, &none)
            .unwrap()
            .is_empty());
        let later = now_ms() + AFTER_A_PANIC.as_millis() as u64;
        assert_eq!(
            store.due_entries("des_a", later, 10, &none).unwrap().len(),
            1
        );
    }
}

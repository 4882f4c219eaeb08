//! A webhook job's life: fanned out into deliveries (events), retried or
//! cancelled as a whole or one delivery at a time. Every change to a delivery
//! goes through `Store::update_event` and is summed up into its job by
//! `Store::update_job`.

use crate::ids::{derived_id, now_ms};
use crate::model::{
    AttemptTrigger, DeliveryWindow, Event, EventStatus, JobStatus, Route, WebhookJob,
};
use crate::store::{CommittedJob, QueueMove, Store, StoreError};
use std::borrow::Cow;

/// The error code of a delivery cancelled by a user.
pub const CANCELLED: &str = "CANCELLED";
/// The error code of a delivery whose endpoint was deleted.
const ENDPOINT_DELETED: &str = "ENDPOINT_DELETED";

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no {0} with id \"{1}\"")]
    NotFound(&'static str, String),
    /// The change does not apply in the current state.
    #[error("{0}")]
    Conflict(String),
}

type JobResult<T> = Result<T, JobError>;

/// The deliveries a new job makes, one per endpoint, as they are first
/// stored (what the `201` shows, before the router stores them).
pub fn new_deliveries(job: &WebhookJob) -> Vec<Event> {
    let window = DeliveryWindow {
        max_retries: job.max_retries,
        starts_at: job.created_at,
        expires_at: job.expires_at,
    };
    let now = now_ms();
    let delivery = |endpoint_id: &String| {
        let route = Route {
            source_id: &job.application_id,
            connection_id: endpoint_id,
            destination_id: endpoint_id,
        };
        // Its payload is the job's (`Store::event_payload`).
        let mut event = Event::new(
            derived_id("evt", &job.id, endpoint_id),
            &job.id,
            route,
            now,
            false,
        );
        event.window = Some(window);
        event.trace = job.trace.clone();
        event
    };
    job.endpoint_ids.iter().map(delivery).collect()
}

/// Stores a job's `deliveries` (`new_deliveries`). `again` (after a crash,
/// or the fan-out was interrupted): ids derive from job and endpoint, so
/// those stored already are kept as they are, not duplicated; a new job has
/// none, and none is looked up. Returns the endpoints of the deliveries
/// queued now (their lanes have new work).
pub fn fan_out(
    store: &Store,
    deliveries: &[Event],
    again: bool,
) -> Result<Vec<String>, StoreError> {
    let mut queued = Vec::new();
    for event in deliveries {
        if again && store.event_exists(&event.id)? {
            continue;
        }
        // Queued as due as it says (its queue key must match, see `owns_entry`).
        let due = event.next_attempt_at.unwrap_or(event.created_at);
        store.insert_event_or_hold(Cow::Borrowed(event), None, due)?;
        // The endpoint may have been deleted since the job chose it; its
        // deletion ends the deliveries it finds, and this one it may not have
        // (it looks again once the endpoint is gone, so one of the two does).
        if !store.endpoint_exists(&event.source_id, &event.destination_id)? {
            end(store, &event.id, ENDPOINT_DELETED)?;
            continue;
        }
        queued.push(event.destination_id.clone());
    }
    Ok(queued)
}

/// The router's part of a journaled job: its record and list entries (unless
/// the indexer wrote them), its deliveries (those the API answered with, or
/// derived again for a job replayed from the journal), and its status when a
/// delivery ended at once. Returns the endpoints with new work.
pub fn fan_out_journaled(
    store: &Store,
    committed: &CommittedJob,
    again: bool,
) -> Result<Vec<String>, StoreError> {
    let job = &committed.job;
    if !committed.indexed || again {
        let record = committed.record.as_deref();
        store.store_journaled_job(job, record, committed.location, again)?;
    }
    // Before its deliveries are there for their lanes to take it, and
    // settle it; its record and list entries are stored. A job replayed may
    // have a state record already: its sum-ups read the job as stored.
    store.keep_job_message(job);
    if !again {
        store.keep_job_frame(job);
    }
    let derived;
    let deliveries = match &committed.deliveries {
        Some(made) => made,
        None => {
            derived = new_deliveries(job);
            &derived
        }
    };
    let queued = fan_out(store, deliveries, again)?;
    if again || queued.len() < job.endpoint_ids.len() {
        store.update_job(&job.id, now_ms(), |_| {})?;
    }
    if again {
        // Set aside by an earlier run, maybe (see `Router::set_aside`).
        store.clear_unrouted_mark(&job.id)?;
    }
    store.job_routed(&job.id);
    Ok(queued)
}

/// Fans out the jobs a crash interrupted that were stored before jobs were
/// journaled (marked in sled); returns the endpoints with new work.
pub fn resume_fan_outs(store: &Store) -> Result<Vec<String>, StoreError> {
    let mut woken = Vec::new();
    for id in store.unrouted_jobs()? {
        match store.unrouted_job(&id)? {
            Some(job) => {
                woken.extend(fan_out(store, &new_deliveries(&job), true)?);
                store.update_job(&id, now_ms(), |_| {})?;
                store.job_fanned_out(&id)?;
            }
            None => store.job_fanned_out(&id)?,
        }
    }
    Ok(woken)
}

/// Queues a delivery for an attempt now, as if new: no attempts, a fresh window.
fn reset(
    store: &Store,
    id: &str,
    window: DeliveryWindow,
    now: u64,
) -> Result<Option<Event>, StoreError> {
    let reset = store.update_event(id, |event| {
        event.attempts = 0;
        event.status = EventStatus::Queued;
        event.muted = false;
        event.error_code = None;
        event.response_status = None;
        event.pending_trigger = Some(AttemptTrigger::Manual);
        event.requeues += 1;
        event.window = Some(window);
        (QueueMove::To(now), ())
    })?;
    Ok(reset.map(|(event, ())| event))
}

/// Ends a pending delivery for good (no attempt in flight is undone; its
/// outcome is recorded, but it is never retried).
fn end(store: &Store, id: &str, error_code: &str) -> Result<(), StoreError> {
    store.update_event(id, |event| {
        if event.status.is_terminal() {
            return (QueueMove::Stay, ());
        }
        event.status = EventStatus::Failed;
        event.muted = true;
        event.error_code = Some(error_code.to_string());
        event.pending_trigger = None;
        (QueueMove::Out, ())
    })?;
    Ok(())
}

/// Fails a delivery whose automatic retry came due only after its window
/// ended (`Event::retry_past_window`), as its last attempt left it, and sums
/// its job up. Nothing changes when it was retried by hand or ended meanwhile.
pub fn end_past_window(store: &Store, id: &str, now_ms: u64) -> Result<(), StoreError> {
    let ended = store.update_event(id, |event| {
        if !event.retry_past_window(now_ms) {
            return (QueueMove::Stay, false);
        }
        event.status = EventStatus::Failed;
        (QueueMove::Out, true)
    })?;
    if let Some((delivery, true)) = ended {
        store.settle_job(&delivery.request_id, &delivery.id, now_ms)?;
    }
    Ok(())
}

fn job_of(store: &Store, id: &str) -> JobResult<WebhookJob> {
    store
        .job(id)?
        .ok_or_else(|| JobError::NotFound("webhook job", id.to_string()))
}

fn window_from(now: u64, max_retries: u32, window_ms: u64) -> DeliveryWindow {
    DeliveryWindow {
        max_retries,
        starts_at: now,
        expires_at: now.saturating_add(window_ms),
    }
}

/// A job as its retry left it.
pub struct RetriedJob {
    pub job: WebhookJob,
    pub deliveries: Vec<Event>,
    /// The endpoints to wake.
    pub woken: Vec<String>,
}

/// Back to `created`: every delivery whose endpoint still exists starts over
/// now, with no attempts and a fresh delivery window. Returns the job and
/// its deliveries as the retry left them: their lanes may have attempted one
/// since (on PostgreSQL the queue's announcement rings them at once), and
/// the job summed that up.
pub fn retry_job(store: &Store, id: &str, window_ms: u64) -> JobResult<RetriedJob> {
    let job = job_of(store, id)?;
    if job.status == JobStatus::Archived {
        return Err(JobError::Conflict(
            "an archived job (its application was deleted) cannot be retried".into(),
        ));
    }
    let now = now_ms();
    let window = window_from(now, job.max_retries, window_ms);
    let mut woken = Vec::new();
    let mut deliveries = store.deliveries_of(id)?;
    for delivery in &mut deliveries {
        if !store.endpoint_exists(&delivery.source_id, &delivery.destination_id)? {
            continue;
        }
        if let Some(reset) = reset(store, &delivery.id, window, now)? {
            woken.push(reset.destination_id.clone());
            *delivery = reset;
        }
    }
    let mut job = store
        .update_job(id, now, |job| {
            job.cancelled = false;
            job.expires_at = window.expires_at;
        })?
        .ok_or_else(|| JobError::NotFound("webhook job", id.to_string()))?;
    job.summarize(&deliveries, now);
    Ok(RetriedJob {
        job,
        deliveries,
        woken,
    })
}

/// `created` or `awaiting_retry` → `discarded`: no delivery is attempted again.
pub fn cancel_job(store: &Store, id: &str) -> JobResult<WebhookJob> {
    let job = job_of(store, id)?;
    if !matches!(job.status, JobStatus::Created | JobStatus::AwaitingRetry) {
        return Err(JobError::Conflict(format!(
            "only a created or awaiting_retry job can be cancelled; this one is {}",
            job.status.as_str()
        )));
    }
    for delivery in store.deliveries_of(id)? {
        end(store, &delivery.id, CANCELLED)?;
    }
    let now = now_ms();
    let job = store.update_job(id, now, |job| {
        job.cancelled = true;
        job.status = JobStatus::Discarded;
        job.discarded_at = Some(now);
    })?;
    job.ok_or_else(|| JobError::NotFound("webhook job", id.to_string()))
}

fn delivery_of(store: &Store, id: &str) -> JobResult<Event> {
    store
        .event(id)?
        .filter(|event| event.window.is_some())
        .ok_or_else(|| JobError::NotFound("webhook delivery", id.to_string()))
}

/// Starts one delivery over now (no attempts, a fresh window); its job is no
/// longer cancelled. Returns the delivery as it was reset (its lane may be
/// attempting it already: on PostgreSQL the queue's announcement rings it).
pub fn retry_delivery(store: &Store, id: &str, window_ms: u64) -> JobResult<Event> {
    let delivery = delivery_of(store, id)?;
    // Queued for an endpoint no lane serves, it would never end, nor its job.
    if !store.endpoint_exists(&delivery.source_id, &delivery.destination_id)? {
        return Err(JobError::Conflict(
            "its endpoint was deleted; it cannot be retried".into(),
        ));
    }
    let max_retries = delivery.window.map_or(0, |w| w.max_retries);
    let now = now_ms();
    let window = window_from(now, max_retries, window_ms);
    let reset = reset(store, id, window, now)?;
    store.update_job(&delivery.request_id, now, |job| {
        job.cancelled = false;
        job.expires_at = job.expires_at.max(window.expires_at);
    })?;
    reset.ok_or_else(|| JobError::NotFound("webhook delivery", id.to_string()))
}

/// Stops a delivery that waits for a retry.
pub fn cancel_delivery(store: &Store, id: &str) -> JobResult<Event> {
    let delivery = delivery_of(store, id)?;
    let retrying = !delivery.status.is_terminal() && delivery.attempts > 0;
    if !retrying {
        return Err(JobError::Conflict(format!(
            "only a retrying delivery can be cancelled; this one has {} attempts and is {}",
            delivery.attempts,
            delivery.status.as_str()
        )));
    }
    end(store, id, CANCELLED)?;
    store.update_job(&delivery.request_id, now_ms(), |_| {})?;
    delivery_of(store, id)
}

/// Ends every pending delivery to a deleted endpoint, so their jobs finish.
pub fn discard_pending(store: &Store, endpoint_id: &str) -> Result<(), StoreError> {
    for event_id in store.pending_event_ids(endpoint_id)? {
        end(store, &event_id, ENDPOINT_DELETED)?;
        if let Some(event) = store.event(&event_id)? {
            store.update_job(&event.request_id, now_ms(), |_| {})?;
        }
    }
    Ok(())
}

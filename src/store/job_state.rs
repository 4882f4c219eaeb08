//! A webhook job's changing state (`JobState`: its status, attempt count and
//! times) in a small record of its own: the value of the job's type entry in
//! the list index (`job_index`), keyed by the job's list place.
//!
//! Each settled delivery sums its job up again. Reading the job's whole
//! record (payload, headers, metadata) and writing all of it back for that
//! was the largest cost of a delivery's settle; now a settle reads the
//! record without building its payload (`JobFrame`), reads the deliveries'
//! statuses and attempts only (`DeliveryTally`), and writes the state
//! record alone. The job's record is written once, when the job is stored,
//! and keeps the state it was created with.
//!
//! The state record goes into the job's type entry, which every job has
//! from its fan-out on, rather than under a key of its own: a new key in
//! sled costs its tree's leaves a split every few keys, and the state
//! record's was the largest write of a job's settle. A job changed before
//! its type entry is written (a start indexing journaled jobs again) has
//! its state record in `job_states`, keyed by the job's id, which is read
//! while the entry holds none; so are the state records of stores written
//! before. A build of the index moves the entries' state records there
//! first (`keep_entry_states`).
//!
//! Every reader overlays the state record on the job's record (`job`,
//! `stored_job`, the lists' `job_tags`, `jobs_newest_first`). A job with no
//! state record (not settled yet, or stored and last changed by a version
//! that kept its state in its record) reads as its record says and settles
//! as before, from its record's state; its first change writes its state
//! record.
//!
//! A settled delivery sums its job up while its settle still holds the
//! delivery's lock (`settle_job_of_held`): its tally is taken as written,
//! not read again, and a frame kept in memory since the job's fan-out
//! (`JobFrames`) stands for the record. Otherwise (the job busy, a remote
//! keyspace, a frame not kept) the sum-up reads them as stored.
//!
//! A job's state record changes under the job's lock (`event_lock(job
//! id)`), as the record did, so concurrent settles of its deliveries and a
//! cancel, retry or archive follow one another and the status counts of the
//! list index stay exact (`write_indexed_job`, before and after tags). A
//! crash between a delivery's write and its job's state write leaves the
//! job's state behind its deliveries until its next change sums it up again
//! from them (nothing is summed up from a copy of a delivery's state).

use super::job_frames::KeptFrame;
use super::job_index::{JobPlace, JobTags};
use super::{announce, get, of_request, put, Result, Store};
use crate::model::{DeliveryTally, Event, EventStatus, JobState, JobStatus, WebhookJob};
use serde::Deserialize;
use sled::IVec;
use std::sync::Arc;
use JobStatus::{Archived, Discarded, Succeeded};

/// What a sum-up needs of a job's record: its place in the list index, its
/// tags, and its state as created (serde skips the payload, headers and
/// metadata). It never changes: kept in memory for new jobs (`JobFrames`).
#[derive(Deserialize)]
pub(super) struct JobFrame {
    application_id: String,
    event_type: String,
    endpoint_ids: Vec<String>,
    created_at: u64,
    status: JobStatus,
    attempt_count: u32,
    updated_at: u64,
    expires_at: u64,
    succeeded_at: Option<u64>,
    discarded_at: Option<u64>,
    #[serde(default)]
    cancelled: bool,
}

impl JobFrame {
    fn of(job: &WebhookJob) -> JobFrame {
        JobFrame {
            application_id: job.application_id.clone(),
            event_type: job.event_type.clone(),
            endpoint_ids: job.endpoint_ids.clone(),
            created_at: job.created_at,
            status: job.status,
            attempt_count: job.attempt_count,
            updated_at: job.updated_at,
            expires_at: job.expires_at,
            succeeded_at: job.succeeded_at,
            discarded_at: job.discarded_at,
            cancelled: job.cancelled,
        }
    }

    /// The state its record was written with.
    fn state(&self) -> JobState {
        JobState {
            status: self.status,
            attempt_count: self.attempt_count,
            updated_at: self.updated_at,
            expires_at: self.expires_at,
            succeeded_at: self.succeeded_at,
            discarded_at: self.discarded_at,
            cancelled: self.cancelled,
        }
    }

    fn tags(&self, state: &JobState) -> JobTags {
        JobTags::of(&self.event_type, &self.endpoint_ids, state)
    }

    fn place<'a>(&'a self, id: &'a str, kept: bool) -> JobPlace<'a> {
        JobPlace {
            id,
            application_id: &self.application_id,
            event_type: &self.event_type,
            endpoint_ids: &self.endpoint_ids,
            created_at: self.created_at,
            known_indexed: kept,
        }
    }
}

/// A job as a sum-up reads it.
pub(super) struct FramedJob {
    frame: Arc<JobFrame>,
    /// Its frame was kept in memory: its record and entries are stored.
    kept: bool,
    /// Its type entry is there: its state is written into it.
    indexed: bool,
    /// Its state now.
    state: JobState,
}

impl FramedJob {
    pub(super) fn tags(&self) -> JobTags {
        self.frame.tags(&self.state)
    }
}

/// A job's state record as stored, and whether its type entry is there.
struct StoredState {
    indexed: bool,
    state: Option<JobState>,
}

/// The delivery whose settle sums its job up.
#[derive(Clone, Copy)]
enum Settled<'a> {
    /// Stored a moment ago, by its id: a retry or cancel of the job may
    /// have changed it since, so it is read again.
    Stored(&'a str),
    /// As its settle wrote it, with its lock still held: nothing changed it
    /// since (every change of a delivery takes its lock).
    Written(DeliveryTally),
}

/// A delivery as a job's sum-up reads it in a scan of its job's events.
#[derive(Deserialize)]
struct StoredDelivery {
    request_id: String,
    status: EventStatus,
    #[serde(default)]
    attempts: u32,
}

impl Store {
    /// A job's state record, if a change since its creation wrote one.
    #[cfg(test)]
    pub(super) fn job_state(&self, job: JobPlace) -> Result<Option<JobState>> {
        Ok(self.stored_state(job, None)?.state)
    }

    /// A job's state record: in its type entry, else (none written there
    /// yet) in `job_states`. `walked`: the type entry's value when a walk of
    /// the index has just read it (else it is read here).
    fn stored_state(&self, job: JobPlace, walked: Option<IVec>) -> Result<StoredState> {
        let entry = match walked {
            Some(entry) => Some(entry),
            None => self.job_index.get(job.type_entry_key())?,
        };
        let state = match &entry {
            Some(state) if !state.is_empty() => Some(serde_json::from_slice(state)?),
            _ => get(&self.job_states, job.id)?,
        };
        let indexed = entry.is_some();
        Ok(StoredState { indexed, state })
    }

    /// Writes a job's state record into its type entry, or into
    /// `job_states` while it has none (`known_indexed`, see `stored_state`).
    fn put_state(&self, job: JobPlace, state: &JobState) -> Result<()> {
        if !job.known_indexed {
            return put(&self.job_states, job.id, state);
        }
        (self.job_index).insert(job.type_entry_key(), serde_json::to_vec(state)?)?;
        Ok(())
    }

    /// `job` as its state record says it is now (`walked`: see `stored_state`).
    fn with_state(&self, mut job: WebhookJob, walked: Option<IVec>) -> Result<WebhookJob> {
        if let Some(state) = self.stored_state((&job).into(), walked)?.state {
            job.set_state(&state);
        }
        Ok(job)
    }

    /// A job as stored in sled (not one held in memory for the router).
    pub(super) fn stored_job(&self, id: &str) -> Result<Option<WebhookJob>> {
        self.stored_job_record(id)?
            .map(|job| self.with_state(job, None))
            .transpose()
    }

    /// A job's record in sled, read whole (see `job_record`, `whole_job`).
    fn stored_job_record(&self, id: &str) -> Result<Option<WebhookJob>> {
        match self.jobs.get(id.as_bytes())? {
            Some(record) => self.job_of_record(&record),
            None => Ok(None),
        }
    }

    pub fn job(&self, id: &str) -> Result<Option<WebhookJob>> {
        self.walked_job(id, None)
    }

    /// `job`, given its type entry's value when a walk of the index has just
    /// read it.
    pub(super) fn walked_job(&self, id: &str, walked: Option<IVec>) -> Result<Option<WebhookJob>> {
        self.job_record(id)?
            .map(|job| self.with_state(job, walked))
            .transpose()
    }

    /// A job as its record has it: its state as created (see `job`).
    pub(super) fn job_record(&self, id: &str) -> Result<Option<WebhookJob>> {
        // The stored record wins: it is written before the job's deliveries are.
        self.read_job(id, |record| self.job_of_record(record), WebhookJob::clone)
    }

    /// Every job, newest first.
    pub fn jobs_newest_first(&self) -> impl Iterator<Item = Result<WebhookJob>> + '_ {
        let records = self.jobs.iter().values().rev();
        let whole = |record: Result<sled::IVec>| self.job_of_record(&record?);
        (records.filter_map(move |record| whole(record).transpose()))
            .map(|job| self.with_state(job?, None))
    }

    /// Keeps a new job's frame in memory for its sum-ups (see `JobFrames`),
    /// once its record and list entries are stored, before any state record
    /// is written for it.
    pub fn keep_job_frame(&self, job: &WebhookJob) {
        // On a remote keyspace another node may remove the job unheard.
        if !self.db.is_remote() {
            self.job_frames.keep(&job.id, JobFrame::of(job));
        }
    }

    /// A job's frame (kept, else read from its record) and its state now
    /// (see `job`).
    fn framed_job(&self, id: &str) -> Result<Option<FramedJob>> {
        self.walked_framed_job(id, None)
    }

    /// `framed_job`, given its type entry's value when a walk of the index
    /// has just read it.
    pub(super) fn walked_framed_job(
        &self,
        id: &str,
        walked: Option<IVec>,
    ) -> Result<Option<FramedJob>> {
        let (frame, kept, stored) = match self.job_frames.get(id) {
            Some(KeptFrame { frame, state }) => (
                frame,
                true,
                StoredState {
                    indexed: true,
                    state,
                },
            ),
            None => match self.job_frame_record(id)? {
                Some(frame) => {
                    let stored = self.stored_state(frame.place(id, false), walked)?;
                    (Arc::new(frame), false, stored)
                }
                None => return Ok(None),
            },
        };
        let StoredState { indexed, state } = stored;
        let state = state.unwrap_or_else(|| frame.state());
        Ok(Some(FramedJob {
            frame,
            kept,
            indexed,
            state,
        }))
    }

    /// A job's frame as its record (or, while the router holds it, memory) has it.
    fn job_frame_record(&self, id: &str) -> Result<Option<JobFrame>> {
        let stored = |record: &[u8]| Ok(Some(serde_json::from_slice(record)?));
        self.read_job(id, stored, JobFrame::of)
    }

    /// Changes a job's state and sums its deliveries up again, one change of
    /// a job at a time (deliveries to several endpoints settle concurrently).
    /// Returns the job as changed.
    pub fn update_job(
        &self,
        id: &str,
        now_ms: u64,
        change: impl FnOnce(&mut JobState),
    ) -> Result<Option<WebhookJob>> {
        // Never taken while an event's own stripe is held, so this cannot deadlock.
        let _serialized = self.event_lock(id)?;
        if !self.update_held_job(id, None, now_ms, change)? {
            return Ok(None);
        }
        self.job(id)
    }

    /// Sums a job up again after its delivery `delivery_id` settled
    /// (`update_job` changing nothing else), when `settle_attempt` could
    /// not (see `settle_job_of_held`).
    pub fn settle_job(&self, id: &str, delivery_id: &str, now_ms: u64) -> Result<()> {
        let _serialized = self.event_lock(id)?;
        self.update_held_job(id, Some(Settled::Stored(delivery_id)), now_ms, |_| {})?;
        Ok(())
    }

    /// Sums up the job of `delivery`, a webhook job's delivery its settle
    /// has just written, while the settle still holds the delivery's stripe
    /// (`held`): so the delivery is as written (a retry or cancel of the job
    /// resets it under that stripe first) and is not read again. The job's
    /// stripe is only tried, never waited for while the delivery's is held
    /// (a retention sweep holds both); when it is busy, or the keyspace is
    /// remote (another node changes the delivery under its cluster lock,
    /// not this stripe), None: nothing done, the caller drops the
    /// delivery's stripe and calls `settle_job`.
    pub(super) fn settle_job_of_held(
        &self,
        delivery: &Event,
        held: usize,
        now_ms: u64,
    ) -> Option<Result<()>> {
        let _serialized = self.second_lock_if_free(&delivery.request_id, held)?;
        let written = Settled::Written(DeliveryTally::from(delivery));
        let summed = self.update_held_job(&delivery.request_id, Some(written), now_ms, |_| {});
        Some(summed.map(|_| ()))
    }

    /// `update_job` with the job's change lock held; whether the job exists.
    fn update_held_job(
        &self,
        id: &str,
        settled: Option<Settled>,
        now_ms: u64,
        change: impl FnOnce(&mut JobState),
    ) -> Result<bool> {
        let Some(FramedJob {
            frame,
            kept,
            indexed,
            mut state,
        }) = self.framed_job(id)?
        else {
            return Ok(false);
        };
        let before = frame.tags(&state);
        change(&mut state);
        state.summarize(&self.delivery_tallies(id, &frame, settled)?, now_ms);
        let after = frame.tags(&state);
        let place = frame.place(id, indexed);
        let written = self.write_indexed_job(place, Some(&before), Some(&after), || {
            self.put_state(place, &state)
        });
        if kept {
            match (&written, state.status) {
                // Read again from its record should it be retried; and
                // after an error, from what sled holds.
                (Err(_), _) | (_, Succeeded | Discarded | Archived) => self.job_frames.forget(id),
                (Ok(()), _) => self.job_frames.wrote_state(id, &state),
            }
        }
        written?;
        if self.job_feed.receiver_count() > 0 {
            if let Some(job) = self.job(id)? {
                announce(&self.job_feed, || job);
            }
        }
        Ok(true)
    }

    /// What the job's state follows of each of its deliveries, as stored
    /// now. A job with one endpoint has one delivery: the one that settled,
    /// as its settle wrote it or read by its id, rather than found by a scan
    /// of the job's events.
    fn delivery_tallies(
        &self,
        id: &str,
        frame: &JobFrame,
        settled: Option<Settled>,
    ) -> Result<Vec<DeliveryTally>> {
        if let (Some(settled), [_]) = (settled, frame.endpoint_ids.as_slice()) {
            let tally = match settled {
                Settled::Written(tally) => Some(tally),
                Settled::Stored(delivery_id) => get(&self.events, delivery_id)?,
            };
            if let Some(tally) = tally {
                return Ok(vec![tally]);
            }
        }
        let deliveries = of_request(&self.events, id, |d: &StoredDelivery| d.request_id == id)?;
        let tallies = deliveries.into_iter().map(|d| DeliveryTally {
            status: d.status,
            attempts: d.attempts,
        });
        Ok(tallies.collect())
    }
}

#[cfg(test)]
mod tests {
    use crate::ids::{new_id, now_ms};
    use crate::model::{Attempt, EventStatus, JobState, JobStatus, WebhookJob};
    use crate::store::job_index::JobPlace;
    use crate::store::{stripe_of, temp_store, JobSelection, QueueMove, SettledNow, Store, FAILED};

    /// A job as a version that kept its state in its record stored it
    /// (before `cancelled` too): retrying, one attempt made.
    fn old_job(endpoints: &[&str]) -> WebhookJob {
        serde_json::from_value(serde_json::json!({
            "id": new_id("job"), "application_id": "app_a", "event_type": "order.paid",
            "event_id": "order-1", "payload": {"n": 1}, "headers": {"x-a": "b"},
            "metadata": {"m": 1}, "endpoint_ids": endpoints, "status": "awaiting_retry",
            "attempt_count": 1, "max_retries": 3, "created_at": 1000, "updated_at": 1500,
            "expires_at": 90_000, "succeeded_at": null, "discarded_at": null,
        }))
        .unwrap()
    }

    /// How many of app_a's jobs are listed with the status tag.
    fn listed(store: &Store, status: &str) -> usize {
        let selection = JobSelection {
            application_id: "app_a",
            status: Some(status),
            event_type: None,
            endpoint_id: None,
            created_after: None,
            created_before: None,
        };
        store
            .job_page(&selection, |_| true, true, 0, 10)
            .unwrap()
            .total
    }

    /// Fans the job out and gives each delivery a status and attempts;
    /// returns the deliveries' ids.
    fn deliver(store: &Store, job: &WebhookJob, outcomes: &[(EventStatus, u32)]) -> Vec<String> {
        // No endpoint is stored: each delivery ends at once, then is set here.
        let deliveries = crate::outbound::new_deliveries(job);
        crate::outbound::fan_out(store, &deliveries, false).unwrap();
        let ids: Vec<String> = deliveries.into_iter().map(|d| d.id).collect();
        for (id, (status, attempts)) in ids.iter().zip(outcomes) {
            store
                .update_event(id, |event| {
                    (event.status, event.attempts) = (*status, *attempts);
                    (QueueMove::Out, ())
                })
                .unwrap();
        }
        ids
    }

    #[test]
    fn a_job_with_its_state_in_its_record_reads_and_settles_as_before() {
        let (dir, store) = temp_store();
        let old = old_job(&["end_a"]);
        store.insert_job(&old).unwrap();
        assert_eq!(store.job(&old.id).unwrap(), Some(old.clone()));
        assert_eq!(
            (listed(&store, "awaiting_retry"), listed(&store, FAILED)),
            (1, 1)
        );
        let record = store.jobs.get(old.id.as_bytes()).unwrap();

        let delivered = deliver(&store, &old, &[(EventStatus::Successful, 2)]);
        store.settle_job(&old.id, &delivered[0], 5000).unwrap();

        let settled = store.job(&old.id).unwrap().unwrap();
        assert_eq!(
            (settled.status, settled.attempt_count, settled.succeeded_at),
            (JobStatus::Succeeded, 2, Some(5000))
        );
        let mut expected = old.clone();
        expected.set_state(&settled.state());
        assert_eq!(settled, expected, "all but its state as stored");
        let rewritten = store.jobs.get(old.id.as_bytes()).unwrap();
        assert_eq!(rewritten, record, "the settle wrote its state alone");
        assert_eq!(
            (listed(&store, "succeeded"), listed(&store, FAILED)),
            (1, 0)
        );
        // Counted again from the entries after a crash: by its state record.
        let (_dir, store) = crate::store::reopen(dir, store);
        assert_eq!(
            (listed(&store, "succeeded"), listed(&store, FAILED)),
            (1, 0)
        );
        let page = store.jobs_newest_first().next().unwrap().unwrap();
        assert_eq!(page, settled);
    }

    /// What a job's type entry holds.
    fn type_entry(store: &Store, job: &WebhookJob) -> Option<Vec<u8>> {
        let key = JobPlace::from(job).type_entry_key();
        store
            .job_index
            .get(key)
            .unwrap()
            .map(|value| value.to_vec())
    }

    /// Fans a job to one endpoint out; its delivery succeeded at its second
    /// attempt. Returns the delivery's id.
    fn delivered_job(store: &Store, job: &WebhookJob) -> String {
        let delivered = deliver(store, job, &[(EventStatus::Successful, 2)]);
        delivered.into_iter().next().unwrap()
    }

    /// A job to one endpoint, stored and indexed, summed up after its
    /// delivery succeeded (`delivered_job`).
    fn settled_job(store: &Store) -> WebhookJob {
        let job = old_job(&["end_a"]);
        store.insert_job(&job).unwrap();
        let delivery = delivered_job(store, &job);
        store.settle_job(&job.id, &delivery, 5000).unwrap();
        job
    }

    #[test]
    fn a_change_writes_an_indexed_jobs_state_into_its_type_entry_not_a_record_of_its_own() {
        let (_dir, store) = temp_store();
        let job = settled_job(&store);

        assert_eq!(store.job_states.get(job.id.as_bytes()).unwrap(), None);
        let entry: JobState = serde_json::from_slice(&type_entry(&store, &job).unwrap()).unwrap();
        assert_eq!(
            (entry.status, entry.attempt_count),
            (JobStatus::Succeeded, 2)
        );
        assert_eq!(status_and_attempts(&store, &job), (JobStatus::Succeeded, 2));
    }

    #[test]
    fn a_job_changed_before_its_type_entry_is_written_reads_its_state_record_until_the_entry_holds_one(
    ) {
        let (_dir, store) = temp_store();
        let job = old_job(&["end_a"]);
        store.insert_job(&job).unwrap();
        // As a job stored but not indexed yet (the indexer's next write).
        let key = JobPlace::from(&job).type_entry_key();
        store.job_index.remove(key).unwrap();
        let delivery = delivered_job(&store, &job);
        store.settle_job(&job.id, &delivery, 5000).unwrap();
        assert!(store.job_states.get(job.id.as_bytes()).unwrap().is_some());

        let stored = store.stored_job(&job.id).unwrap().unwrap();
        store.index_job(&stored).unwrap();
        assert_eq!(type_entry(&store, &job), Some(Vec::new()));
        assert_eq!(status_and_attempts(&store, &job), (JobStatus::Succeeded, 2));

        // Retried: written into the entry now, over the older record.
        store
            .update_event(&delivery, |event| {
                (event.status, event.attempts) = (EventStatus::Queued, 0);
                (QueueMove::Out, ())
            })
            .unwrap();
        store.settle_job(&job.id, &delivery, 6000).unwrap();
        assert_eq!(status_and_attempts(&store, &job), (JobStatus::Created, 0));
        assert!(store.job_states.get(job.id.as_bytes()).unwrap().is_some());
    }

    #[test]
    fn a_job_indexed_again_keeps_the_state_its_type_entry_holds() {
        let (_dir, store) = temp_store();
        let job = settled_job(&store);

        // As a start indexes a job journaled before a crash again.
        store.index_job(&job).unwrap();
        assert_eq!(status_and_attempts(&store, &job), (JobStatus::Succeeded, 2));
        assert_eq!(listed(&store, "succeeded"), 1);
    }

    #[test]
    fn a_settle_sums_up_every_delivery_of_a_job_as_stored_now() {
        let (_dir, store) = temp_store();
        let job = old_job(&["end_a", "end_b"]);
        store.insert_job(&job).unwrap();
        let (done, queued) = ((EventStatus::Successful, 1), (EventStatus::Queued, 0));
        let delivered = deliver(&store, &job, &[done, queued]);
        store.settle_job(&job.id, &delivered[0], 5000).unwrap();
        let executing = store.job(&job.id).unwrap().unwrap();
        assert_eq!(
            (executing.status, executing.attempt_count),
            (JobStatus::Executing, 1)
        );

        let settle = |event: &mut crate::model::Event| {
            (event.status, event.attempts) = (EventStatus::Successful, 3);
            (QueueMove::Out, ())
        };
        store.update_event(&delivered[1], settle).unwrap();
        store.settle_job(&job.id, &delivered[1], 6000).unwrap();
        let succeeded = store.job(&job.id).unwrap().unwrap();
        assert_eq!(
            (
                succeeded.status,
                succeeded.attempt_count,
                succeeded.succeeded_at
            ),
            (JobStatus::Succeeded, 4, Some(6000))
        );
        assert_eq!(listed(&store, "succeeded"), 1);
    }

    #[test]
    fn a_settle_after_a_cancel_keeps_the_job_discarded_and_counted_once() {
        let (_dir, store) = temp_store();
        let job = old_job(&["end_a"]);
        store.insert_job(&job).unwrap();
        let delivered = deliver(&store, &job, &[(EventStatus::Scheduled, 1)]);
        let cancelled = crate::outbound::cancel_job(&store, &job.id).unwrap();
        assert_eq!(
            (cancelled.status, cancelled.cancelled),
            (JobStatus::Discarded, true)
        );
        // A settle of the delivery in flight when it was cancelled.
        store.settle_job(&job.id, &delivered[0], 9000).unwrap();
        let job = store.job(&job.id).unwrap().unwrap();
        assert_eq!((job.status, job.cancelled), (JobStatus::Discarded, true));
        assert_eq!(
            (listed(&store, "discarded"), listed(&store, FAILED)),
            (1, 0)
        );
        assert_eq!(listed(&store, "awaiting_retry"), 0);
    }

    /// A one-endpoint job, kept as the router keeps a new one, whose
    /// delivery's lock stripe is (or is not) its own.
    fn kept_job(store: &Store, shares_stripe: bool) -> (WebhookJob, String) {
        let (job, delivery) = std::iter::repeat_with(|| old_job(&["end_a"]))
            .map(|job| {
                let delivery = crate::outbound::new_deliveries(&job).remove(0).id;
                (job, delivery)
            })
            .find(|(job, delivery)| (stripe_of(&job.id) == stripe_of(delivery)) == shares_stripe)
            .unwrap();
        store.insert_job(&job).unwrap();
        store.keep_job_frame(&job);
        deliver(store, &job, &[(EventStatus::Queued, 0)]);
        (job, delivery)
    }

    /// Settles a successful first attempt of `delivery` on a reactor thread.
    fn settle_now(store: &Store, delivery: &str) -> SettledNow<()> {
        let attempt = crate::store::attempts::tests::successful_attempt(delivery);
        let succeed = |event: &mut crate::model::Event, attempt: &Attempt| {
            (event.status, event.attempts) = (EventStatus::Successful, attempt.attempt_number);
            (QueueMove::Out, ())
        };
        store.settle_attempt_unless_busy(attempt, succeed, |_, _| {})
    }

    fn status_and_attempts(store: &Store, job: &WebhookJob) -> (JobStatus, u32) {
        let job = store.job(&job.id).unwrap().unwrap();
        (job.status, job.attempt_count)
    }

    #[test]
    fn a_settle_sums_its_job_up_from_its_kept_frame_and_what_it_wrote() {
        let (_dir, store) = temp_store();
        let (job, delivery) = kept_job(&store, false);
        // Not read: a kept frame stands for the record.
        let record = store.jobs.insert(job.id.as_bytes(), &b"unreadable"[..]);
        let settled = settle_now(&store, &delivery);
        assert!(matches!(settled, SettledNow::Settled(Ok(Some(_)))));
        store
            .jobs
            .insert(job.id.as_bytes(), record.unwrap().unwrap())
            .unwrap();

        assert_eq!(status_and_attempts(&store, &job), (JobStatus::Succeeded, 1));
        assert_eq!(
            (
                listed(&store, "succeeded"),
                listed(&store, "awaiting_retry")
            ),
            (1, 0)
        );
        assert!(store.job_frames.get(&job.id).is_none(), "done: forgotten");
    }

    #[test]
    fn a_kept_jobs_sum_up_reads_its_state_from_memory_not_its_state_record() {
        let (_dir, store) = temp_store();
        let (job, delivery) = kept_job(&store, false);
        // Not read: none was written since the frame was kept, and what a
        // sum-up writes is kept with the frame.
        let key = JobPlace::from(&job).type_entry_key();
        let unreadable = || store.job_index.insert(&key, &b"unreadable"[..]).unwrap();
        unreadable();
        store.update_job(&job.id, 2000, |_| {}).unwrap();
        unreadable();
        let settled = settle_now(&store, &delivery);
        assert!(matches!(settled, SettledNow::Settled(Ok(Some(_)))));
        assert_eq!(status_and_attempts(&store, &job), (JobStatus::Succeeded, 1));
    }

    #[test]
    fn a_settle_sums_up_its_job_under_a_lock_stripe_they_share() {
        let (_dir, store) = temp_store();
        let (job, delivery) = kept_job(&store, true);
        let settled = settle_now(&store, &delivery);
        assert!(matches!(settled, SettledNow::Settled(Ok(Some(_)))));
        assert_eq!(status_and_attempts(&store, &job), (JobStatus::Succeeded, 1));
    }

    #[test]
    fn a_retry_between_a_settle_and_its_jobs_sum_up_leaves_the_job_to_deliver() {
        let (_dir, store) = temp_store();
        let (job, delivery) = kept_job(&store, false);
        // Another change holds the job: its sum-up is left for later.
        let busy = store.event_updates[stripe_of(&job.id)].lock().unwrap();
        let settled = settle_now(&store, &delivery);
        assert!(matches!(settled, SettledNow::JobLeft(ref d, ()) if d.id == delivery));
        drop(busy);

        // A retry of the job comes first (`outbound::retry_job`'s store calls).
        let now = now_ms();
        let reset = |event: &mut crate::model::Event| {
            (event.status, event.attempts) = (EventStatus::Queued, 0);
            event.requeues += 1;
            (QueueMove::To(now), ())
        };
        store.update_event(&delivery, reset).unwrap();
        store
            .update_job(&job.id, now, |state| state.cancelled = false)
            .unwrap();
        store.settle_job(&job.id, &delivery, now).unwrap();

        assert_eq!(status_and_attempts(&store, &job), (JobStatus::Created, 0));
        assert_eq!(
            (listed(&store, "created"), listed(&store, "succeeded")),
            (1, 0)
        );
    }

    #[test]
    fn a_job_removed_is_not_summed_up_from_its_kept_frame() {
        let (_dir, store) = temp_store();
        let (job, delivery) = kept_job(&store, false);
        store
            .remove_job(&store.job(&job.id).unwrap().unwrap())
            .unwrap();
        store.settle_job(&job.id, &delivery, now_ms()).unwrap();
        assert_eq!(
            store.job_state((&job).into()).unwrap(),
            None,
            "no state written"
        );
        let counted = ["created", "awaiting_retry", "succeeded", FAILED];
        assert_eq!(counted.map(|status| listed(&store, status)), [0; 4]);
    }
}

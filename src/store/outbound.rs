//! Applications, event types, endpoints and webhook jobs. A job's deliveries
//! are events (ids derived from the job's), so they live with the other events.

use super::job_index::JobTags;
use super::{announce, get, put, request_record, values, EncodedRequest, Location, Result, Store};
use crate::model::{Application, Endpoint, Event, EventType, JobMessage, Payload, WebhookJob};
use std::sync::{Arc, PoisonError};

fn event_type_key(application_id: &str, name: &str) -> String {
    format!("{application_id}/{name}")
}

pub(super) fn job_key(application_id: &str, event_id: &str) -> Vec<u8> {
    [application_id.as_bytes(), b"\0", event_id.as_bytes()].concat()
}

impl Store {
    pub fn save_application(&self, application: &Application) -> Result<()> {
        let mut catalog = self.job_catalog.change();
        put(&self.applications, &application.id, application)?;
        catalog.put_application(&application.id);
        Ok(())
    }

    pub fn application(&self, id: &str) -> Result<Option<Application>> {
        get(&self.applications, id)
    }

    /// Every application, oldest first.
    pub fn applications(&self) -> Result<Vec<Application>> {
        values(&self.applications).collect()
    }

    pub fn delete_application(&self, id: &str) -> Result<bool> {
        let mut catalog = self.job_catalog.change();
        let removed = self.applications.remove(id.as_bytes())?.is_some();
        catalog.remove_application(id);
        Ok(removed)
    }

    pub fn save_event_type(&self, event_type: &EventType) -> Result<()> {
        let key = event_type_key(&event_type.application_id, &event_type.name);
        let mut catalog = self.job_catalog.change();
        put(&self.event_types, &key, event_type)?;
        catalog.put_event_type(event_type);
        Ok(())
    }

    pub fn event_type(&self, application_id: &str, name: &str) -> Result<Option<EventType>> {
        get(&self.event_types, &event_type_key(application_id, name))
    }

    /// An application's event types, by name.
    pub fn event_types(&self, application_id: &str) -> Result<Vec<EventType>> {
        let prefix = event_type_key(application_id, "");
        self.event_types
            .scan_prefix(prefix.as_bytes())
            .values()
            .map(|value| Ok(serde_json::from_slice(&value?)?))
            .collect()
    }

    pub fn delete_event_type(&self, application_id: &str, name: &str) -> Result<bool> {
        let key = event_type_key(application_id, name);
        let mut catalog = self.job_catalog.change();
        let removed = self.event_types.remove(key.as_bytes())?.is_some();
        catalog.remove_event_type(application_id, name);
        Ok(removed)
    }

    pub fn save_endpoint(&self, endpoint: &Endpoint) -> Result<()> {
        let sealed = self.sealed_endpoint(endpoint);
        let mut catalog = self.job_catalog.change();
        put(&self.endpoints, &endpoint.id, &sealed)?;
        catalog.put_endpoint(endpoint);
        Ok(())
    }

    pub fn endpoint(&self, id: &str) -> Result<Option<Endpoint>> {
        get(&self.endpoints, id)?
            .map(|stored| self.opened_endpoint(stored))
            .transpose()
    }

    /// Every endpoint, oldest first.
    pub fn endpoints(&self) -> Result<Vec<Endpoint>> {
        values(&self.endpoints)
            .map(|stored| self.opened_endpoint(stored?))
            .collect()
    }

    pub fn delete_endpoint(&self, id: &str) -> Result<bool> {
        let mut catalog = self.job_catalog.change();
        let Some(removed) = self.endpoints.remove(id.as_bytes())? else {
            return Ok(false);
        };
        let removed: Endpoint = serde_json::from_slice(&removed)?;
        catalog.remove_endpoint(&removed.application_id, id);
        Ok(true)
    }

    /// Claims `event_id` as the idempotency key of a new job of the application.
    /// Returns the job that already holds it, if one claimed it less than
    /// `window_ms` ago and is stored; otherwise `job_id` holds it from now on.
    /// (The claim is written before its job: a crash or a failed write in
    /// between left a key naming no job, which answered 404 for a whole
    /// window. Callers claim and store under one lock, so a holder without a
    /// job is such a leftover, not a job about to be stored.)
    pub fn claim_job_key(
        &self,
        application_id: &str,
        event_id: &str,
        job_id: &str,
        now_ms: u64,
        window_ms: u64,
    ) -> Result<Option<String>> {
        let key = job_key(application_id, event_id);
        let mut current = self.job_keys.get(&key)?;
        loop {
            if let Some(holder) = &current {
                let holder = String::from_utf8_lossy(holder).into_owned();
                let claimed_at = crate::ids::created_ms(&holder).unwrap_or(0);
                if now_ms.saturating_sub(claimed_at) < window_ms && self.job(&holder)?.is_some() {
                    return Ok(Some(holder));
                }
            }
            // Compare-and-swap, so two senders racing with one key get one job.
            match self
                .job_keys
                .compare_and_swap(&key, current, Some(job_id.as_bytes()))?
            {
                Ok(()) => return Ok(None),
                Err(lost) => current = lost.current,
            }
        }
    }

    /// Keeps a new job in memory from before it is journaled until the
    /// router has fanned it out (`job_routed`): meanwhile `job` reads it from
    /// here, so the next sender of its idempotency key finds it.
    pub fn hold_pending_job(&self, job: Arc<WebhookJob>) {
        let mut pending = self
            .pending_jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        pending.insert(job.id.clone(), job);
    }

    pub(super) fn pending_job(&self, id: &str) -> Option<Arc<WebhookJob>> {
        let pending = self
            .pending_jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        pending.get(id).cloned()
    }

    /// What `stored` makes of a job's `jobs` record, or `pending` of the job
    /// the router holds in memory until it is stored. Memory is looked up
    /// first: a job leaves it only once stored, so one of the two finds it.
    pub(super) fn read_job<T>(
        &self,
        id: &str,
        stored: impl FnOnce(&[u8]) -> Result<Option<T>>,
        pending: impl FnOnce(&WebhookJob) -> T,
    ) -> Result<Option<T>> {
        let held = self.pending_job(id);
        match self.jobs.get(id.as_bytes())? {
            Some(record) => stored(&record),
            None => Ok(held.map(|job| pending(&job))),
        }
    }

    /// The router is done with a job (or its journaling failed): `job` reads
    /// sled from now on, and whoever waits for it (`wait_routed`) hears so.
    pub fn job_routed(&self, id: &str) {
        let mut pending = self
            .pending_jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        pending.remove(id);
        drop(pending);
        announce(&self.routed_feed, || id.to_string());
    }

    /// Resolves once every job held pending at the call is fanned out, so
    /// that a list or a delivery read right after a `201` finds its job and
    /// deliveries (at once when none is pending).
    pub async fn wait_jobs_routed(&self) -> Result<()> {
        let pending: Vec<String> = {
            let pending = self
                .pending_jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            pending.keys().cloned().collect()
        };
        for id in pending {
            self.wait_routed(&id).await?;
        }
        Ok(())
    }

    /// Stores a job the journal holds at `location`: its record (without
    /// its payload, see `job_record`; cut from its journal `record` when at
    /// hand, else serialized) and list entries. `again` (a replay
    /// after a crash): a stored record may have moved on since and is only
    /// indexed again, and the idempotency key the crash may have lost with
    /// sled's unflushed writes is claimed again (a new job's key was claimed
    /// before it was journaled).
    pub fn store_journaled_job(
        &self,
        job: &WebhookJob,
        record: Option<&[u8]>,
        location: Location,
        again: bool,
    ) -> Result<()> {
        if !again {
            let json = record.and_then(request_record::job_json);
            self.jobs
                .insert(job.id.as_bytes(), self.job_record_at(job, json, location)?)?;
            return self.index_job(job);
        }
        if job.event_id != job.id {
            let key = job_key(&job.application_id, &job.event_id);
            let unclaimed = None::<&[u8]>;
            let _ = (self.job_keys).compare_and_swap(key, unclaimed, Some(job.id.as_bytes()))?;
        }
        match self.stored_job(&job.id)? {
            Some(stored) => self.index_job(&stored),
            None => self.store_journaled_job(job, record, location, false),
        }
    }

    /// Journals `jobs` (one batch) and stores their records and list
    /// entries as the indexer does, without deliveries; returns where the
    /// last one lies. For the list bench, whose jobs are then read as the
    /// API's are (payload from the journal): it moves the router's
    /// watermark past them once all are stored (`set_routed_through`).
    pub fn journal_jobs(&self, jobs: &[WebhookJob]) -> Result<Option<Location>> {
        let encoded: Vec<EncodedRequest> = jobs
            .iter()
            .map(EncodedRequest::job)
            .collect::<Result<_>>()?;
        let locations = self.journal_requests(&encoded.iter().collect::<Vec<_>>())?;
        for ((job, encoded), location) in jobs.iter().zip(&encoded).zip(&locations) {
            self.store_journaled_job(job, Some(&encoded.record), *location, false)?;
        }
        Ok(locations.last().copied())
    }

    /// Stores a new job and its list index entries as gateways did before
    /// jobs were journaled: marked as not yet fanned out until
    /// `job_fanned_out` (a start still resumes such jobs, `resume_fan_outs`;
    /// tests store jobs this way).
    pub fn insert_job(&self, job: &WebhookJob) -> Result<()> {
        // The mark first: a job is never seen without it before its fan-out
        // (retention keeps marked jobs; a start drops a mark with no job and
        // indexes a marked one again, see `resume_fan_outs`).
        self.unrouted_jobs.insert(job.id.as_bytes(), &[])?;
        put(&self.jobs, &job.id, job)?;
        self.index_job(job)
    }

    /// A job as `insert_job` stored it, its entries written again (a crash
    /// may have come between its record and them).
    pub fn unrouted_job(&self, id: &str) -> Result<Option<WebhookJob>> {
        let job = self.job(id)?;
        job.as_ref().map(|job| self.index_job(job)).transpose()?;
        Ok(job)
    }

    pub fn job_fanned_out(&self, job_id: &str) -> Result<()> {
        self.unrouted_jobs.remove(job_id.as_bytes())?;
        Ok(())
    }

    /// Jobs whose fan-out a crash may have interrupted.
    pub fn unrouted_jobs(&self) -> Result<Vec<String>> {
        self.unrouted_jobs
            .iter()
            .keys()
            .map(|key| Ok(String::from_utf8_lossy(&key?).into_owned()))
            .collect()
    }

    /// Every change to a job, as it is saved (for tests, and later live views).
    pub fn subscribe_jobs(&self) -> tokio::sync::broadcast::Receiver<WebhookJob> {
        self.job_feed.subscribe()
    }

    /// Keeps a new job's message for its deliveries' first attempts
    /// (`payload_to_send`), so that they need not read the job again.
    pub fn keep_job_message(&self, job: &WebhookJob) {
        self.job_messages.keep(job);
    }

    /// The message a job's deliveries send, made from the whole job read in
    /// part (`JobMessage`), or from memory while it waits for the router
    /// (as `job` reads it).
    pub(super) fn job_message(&self, id: &str) -> Result<Option<Payload>> {
        let stored = |record: &[u8]| {
            self.whole_job(record, |json| {
                Ok(serde_json::from_slice::<JobMessage>(json)?.delivery_payload())
            })
        };
        self.read_job(id, stored, WebhookJob::delivery_payload)
    }

    /// Forgets a job's records and its index entries (`job`: as it is now,
    /// its state overlaid). The state record goes last: one left behind by a
    /// crash names no job, and nothing reads it without its job's record.
    /// Called with the job's lock held, so that no sum-up uses its frame after.
    pub(super) fn remove_job(&self, job: &WebhookJob) -> Result<()> {
        self.job_messages.forget(&job.id);
        self.job_frames.forget(&job.id);
        self.write_indexed_job(job.into(), Some(&JobTags::from(job)), None, || {
            self.jobs.remove(job.id.as_bytes())?;
            self.job_states.remove(job.id.as_bytes())?;
            Ok(())
        })
    }

    /// The deliveries of a job, one per endpoint it was fanned out to.
    pub fn deliveries_of(&self, job_id: &str) -> Result<Vec<Event>> {
        self.events_of_request(job_id)
    }

    /// Events an endpoint has yet to get: queued for it, or held while it is paused.
    pub fn pending_event_ids(&self, endpoint_id: &str) -> Result<Vec<String>> {
        let prefix_len = endpoint_id.len();
        let mut ids = Vec::new();
        for key in self.queue.scan_prefix(endpoint_id.as_bytes()).keys() {
            // Queue keys are `endpoint ++ due (8 bytes) ++ event id`.
            ids.push(String::from_utf8_lossy(&key?[prefix_len + 8..]).into_owned());
        }
        for key in self.held.scan_prefix(endpoint_id.as_bytes()).keys() {
            ids.push(String::from_utf8_lossy(&key?[prefix_len..]).into_owned());
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use crate::ids::now_ms;

    #[test]
    fn an_idempotency_key_whose_job_was_never_stored_is_free() {
        let (_dir, store) = crate::store::temp_store();
        let claim = |job_id: &str| {
            store
                .claim_job_key("app_a", "order-1", job_id, now_ms(), 60_000)
                .unwrap()
        };
        assert_eq!(claim("job_lost"), None, "claimed, then a crash: no job");
        assert_eq!(claim("job_again"), None, "the key names no job: free");
    }
}

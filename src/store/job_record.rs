//! How a webhook job is kept, as a request is (`request_record`): its
//! journal record holds the whole job as created, payload included
//! (`request_record::encode_job`); its `jobs` record holds the job's fields
//! but its payload, and where the journal keeps it (`journal`). The payload
//! (~1 KiB, most of a job) is written once, by the group commit, instead of
//! twice (sled's record was the largest part of the indexer's and sled's IO
//! threads' work per job).
//!
//! Reads that need no payload (a settle's `JobFrame`, the lists' `JobTags`)
//! read the `jobs` record alone; the others read the whole job from the
//! journal record it names (`Store::whole_job`). Retention keeps the
//! journal's segment (or day) of every job it keeps (`kept_record_in`).
//!
//! Records of the older shape hold the whole job and no `journal`, and read
//! as they are: jobs stored by earlier versions, by `insert_job`, and every
//! job in a cluster, where a location is its node's journal's and any node
//! may read the job (as a request's payload goes to the keyspace there).

use super::journal::Location;
use super::{request_record, Result, Store, StoreError};
use crate::model::{JobStatus, WebhookJob};
use crate::trace_context::TraceContext;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// A `jobs` record: every field of `WebhookJob` but `payload`, then
/// `journal` (a test checks that none is missing).
#[derive(Serialize)]
struct Indexed<'a> {
    id: &'a str,
    application_id: &'a str,
    event_type: &'a str,
    event_id: &'a str,
    headers: &'a BTreeMap<String, String>,
    metadata: &'a Value,
    endpoint_ids: &'a [String],
    status: JobStatus,
    attempt_count: u32,
    max_retries: u32,
    created_at: u64,
    updated_at: u64,
    expires_at: u64,
    succeeded_at: Option<u64>,
    discarded_at: Option<u64>,
    cancelled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace: &'a Option<TraceContext>,
    journal: Location,
}

/// The `jobs` record of a job the journal holds at `location`, made from
/// its journal record's `json` (the job as `serde_json` wrote it): `json`
/// with its payload member cut out and `journal` added, the same bytes as
/// `indexed` serializes. Cut, not serialized again: that cost the indexer
/// more than the payload's bytes spared it. None if `json` is not laid out
/// so (then `indexed` serializes it).
pub fn cut(json: &[u8], job: &WebhookJob, location: Location) -> Option<Vec<u8>> {
    // The members come in the struct's order, `payload` after four
    // strings, in which every `"` is escaped: the first `,"payload":` is
    // its key, and its value is the payload's text as it was checked.
    const KEY: &[u8] = br#","payload":"#;
    let payload = job.payload.get().as_bytes();
    let start = json.windows(KEY.len()).position(|w| w == KEY)?;
    let end = start + KEY.len() + payload.len();
    let rest = json.get(end..)?.strip_suffix(b"}")?;
    if json.get(start + KEY.len()..end)? != payload || !rest.starts_with(b",") {
        return None;
    }
    let mut record = Vec::with_capacity(json.len() - payload.len() + 64);
    record.extend_from_slice(&json[..start]);
    record.extend_from_slice(rest);
    record.extend_from_slice(br#","journal":"#);
    serde_json::to_writer(&mut record, &location).ok()?;
    record.push(b'}');
    Some(record)
}

/// The `jobs` record of a job the journal holds at `location`.
pub fn indexed(job: &WebhookJob, location: Location) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&Indexed {
        id: &job.id,
        application_id: &job.application_id,
        event_type: &job.event_type,
        event_id: &job.event_id,
        headers: &job.headers,
        metadata: &job.metadata,
        endpoint_ids: &job.endpoint_ids,
        status: job.status,
        attempt_count: job.attempt_count,
        max_retries: job.max_retries,
        created_at: job.created_at,
        updated_at: job.updated_at,
        expires_at: job.expires_at,
        succeeded_at: job.succeeded_at,
        discarded_at: job.discarded_at,
        cancelled: job.cancelled,
        trace: &job.trace,
        journal: location,
    })
}

impl Store {
    /// The `jobs` record of a job the journal holds at `location` (`json`:
    /// its journal record's, when at hand): without its payload, unless the
    /// journal is a cluster's (see the module).
    pub(super) fn job_record_at(
        &self,
        job: &WebhookJob,
        json: Option<&[u8]>,
        location: Location,
    ) -> Result<Vec<u8>> {
        if self.db.is_remote() {
            return Ok(match json {
                Some(json) => json.to_vec(),
                None => serde_json::to_vec(job)?,
            });
        }
        match json.and_then(|json| cut(json, job, location)) {
            Some(record) => Ok(record),
            None => Ok(indexed(job, location)?),
        }
    }

    /// The whole job whose `jobs` record is `record` (see `whole_job`).
    pub(super) fn job_of_record(&self, record: &[u8]) -> Result<Option<WebhookJob>> {
        self.whole_job(record, |json| serde_json::from_slice(json))
    }

    /// `read` of the JSON of the whole job (payload included) whose `jobs`
    /// record is `record`: the record itself (older shape), or the journal
    /// record it names. None: retention deleted that part of the journal
    /// since the record was read (the job went with it).
    pub(super) fn whole_job<T>(
        &self,
        record: &[u8],
        read: impl FnOnce(&[u8]) -> serde_json::Result<T>,
    ) -> Result<Option<T>> {
        let Some(location) = request_record::journal_of(record)? else {
            return Ok(Some(read(record)?));
        };
        let journaled = match self.journal.read(location) {
            Ok(journaled) => journaled,
            Err(_) if self.deleted_since(location) => return Ok(None),
            Err(error) => return Err(error),
        };
        match request_record::job_json(&journaled) {
            Some(json) => Ok(Some(read(json)?)),
            None => Err(StoreError::Unavailable(format!(
                "the journal holds a request at {location:?}, not a webhook job"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::request_record::{decode, Record};
    use crate::store::{temp_store_on, EncodedRequest, TestBackend};

    fn job() -> WebhookJob {
        serde_json::from_value(serde_json::json!({
            "id": "job_1", "application_id": "app_a", "event_type": "order.paid",
            "event_id": "order-1", "payload": {"total": 10.00}, "headers": {"x-a": "1"},
            "metadata": {"note": "n"}, "endpoint_ids": ["end_a"], "status": "created",
            "attempt_count": 0, "max_retries": 3, "created_at": 1000, "updated_at": 1000,
            "expires_at": 2000, "succeeded_at": null, "discarded_at": null,
            "cancelled": true,
        }))
        .unwrap()
    }

    #[test]
    fn a_jobs_record_holds_every_field_but_its_payload_and_its_journal_location() {
        let job = WebhookJob {
            trace: Some(TraceContext::new_trace()),
            ..job()
        };
        let location = Location::from((3, 128, 900));
        let record = indexed(&job, location).unwrap();
        let mut fields: Value = serde_json::from_slice(&record).unwrap();
        let journal = fields.as_object_mut().unwrap().remove("journal").unwrap();
        assert_eq!(
            serde_json::from_value::<Location>(journal).unwrap(),
            location
        );
        let mut whole = serde_json::to_value(&job).unwrap();
        whole.as_object_mut().unwrap().remove("payload").unwrap();
        assert_eq!(fields, whole);
    }

    #[test]
    fn a_jobs_record_cut_from_its_journal_record_is_the_one_serialized() {
        // `,"payload":` in a string, in the metadata and in the payload.
        let mut job: WebhookJob = serde_json::from_value(serde_json::json!({
            "id": "job_1", "application_id": "app_a", "event_type": "a,\"payload\":1",
            "event_id": ",\"payload\":", "payload": {"payload": {"payload": [1]}},
            "headers": {",\"payload\":": "x"}, "metadata": {"payload": 2},
            "endpoint_ids": ["end_a"], "status": "created", "attempt_count": 0,
            "max_retries": 3, "created_at": 1000, "updated_at": 1000, "expires_at": 2000,
            "succeeded_at": null, "discarded_at": null,
        }))
        .unwrap();
        let location = Location::from((3, 128, 900));
        for trace in [None, Some(TraceContext::new_trace())] {
            job.trace = trace;
            let encoded = EncodedRequest::job(&job).unwrap();
            let json = request_record::job_json(&encoded.record).unwrap();
            let cut = cut(json, &job, location).unwrap();
            assert_eq!(
                String::from_utf8(cut),
                String::from_utf8(indexed(&job, location).unwrap())
            );
        }
        let unlike = br#"{"id":"job_1","payload":{"n":2}}"#;
        assert_eq!(cut(unlike, &job, location), None, "not this job's payload");
    }

    /// A job journaled and stored as the commit thread and indexer do.
    fn journaled(store: &Store, job: &WebhookJob) -> Location {
        let location = store.journal_jobs(std::slice::from_ref(job)).unwrap();
        location.expect("one job journaled")
    }

    fn stored_json(store: &Store, id: &str) -> Value {
        serde_json::from_slice(&store.jobs.get(id.as_bytes()).unwrap().unwrap()).unwrap()
    }

    /// Its record has no payload (on one node) and every read finds the
    /// job whole; its journal record replays as the job. In a cluster the
    /// record holds the payload, so that any node reads it.
    fn a_journaled_job_reads_whole_and_its_journal_record_replays(backend: TestBackend) {
        let (_dir, store) = temp_store_on(backend);
        let job = job();
        let location = journaled(&store, &job);

        let record = stored_json(&store, &job.id);
        let remote = matches!(backend, TestBackend::Postgres);
        assert_eq!(record.get("payload").is_some(), remote);
        assert_eq!(record.get("journal").is_some(), !remote);
        assert_eq!(store.job(&job.id).unwrap(), Some(job.clone()));
        assert_eq!(store.stored_job(&job.id).unwrap(), Some(job.clone()));
        let listed: Vec<WebhookJob> = store.jobs_newest_first().map(Result::unwrap).collect();
        assert_eq!(listed, std::slice::from_ref(&job));
        let message = store.job_message(&job.id).unwrap();
        assert_eq!(message, Some(job.delivery_payload()));
        match decode(&store.journal.read(location).unwrap()).unwrap() {
            Record::Job(replayed) => assert_eq!(*replayed, job),
            Record::Request(..) => panic!("a job's record decodes as a request"),
        }
    }

    /// Jobs stored by earlier versions hold their payload in their record.
    fn a_jobs_record_of_the_older_shape_reads_as_before(backend: TestBackend) {
        let (_dir, store) = temp_store_on(backend);
        let job = job();
        crate::store::put(&store.jobs, &job.id, &job).unwrap();

        assert_eq!(
            stored_json(&store, &job.id),
            serde_json::to_value(&job).unwrap()
        );
        assert_eq!(store.job(&job.id).unwrap(), Some(job.clone()));
        let listed: Vec<WebhookJob> = store.jobs_newest_first().map(Result::unwrap).collect();
        assert_eq!(listed, std::slice::from_ref(&job));
        let message = store.job_message(&job.id).unwrap();
        assert_eq!(message, Some(job.delivery_payload()));
    }

    on_both_backends!(
        a_journaled_job_reads_whole_and_its_journal_record_replays,
        a_jobs_record_of_the_older_shape_reads_as_before,
    );

    #[test]
    fn a_job_whose_journal_segment_was_deleted_reads_as_gone() {
        let dir = tempfile::tempdir().unwrap();
        // One record per segment.
        let store = Store::open_with(dir.path(), 1 << 20, 1).unwrap();
        let old = job();
        let location = journaled(&store, &old);
        let new = WebhookJob {
            id: "job_2".into(),
            ..job()
        };
        journaled(&store, &new);

        store.journal.remove_before(location.segment + 1).unwrap();

        assert_eq!(store.job(&old.id).unwrap(), None);
        assert_eq!(store.job_message(&old.id).unwrap(), None);
        assert_eq!(store.job(&new.id).unwrap(), Some(new));
    }
}

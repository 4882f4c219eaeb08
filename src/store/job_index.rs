//! The webhook jobs' list index: `GET /v1/webhook-jobs` answers a page by
//! walking one index bucket instead of reading every job.
//!
//! A bucket is one combination of filters an application's jobs are listed
//! by: the application alone, with a status, an event type, both, or an
//! endpoint. Each job has an entry in every bucket it belongs to, keyed
//! `bucket ++ created_at (8 bytes, big-endian) ++ job id`, so a bucket walks
//! newest first and a time range is a key range. Each bucket's count of
//! entries is kept in memory (`BucketCounts`), so an unbounded `total` costs
//! no read and an entry no second write.
//!
//! sled writes each key on its own (one batch would take sled's global
//! write lock from then on, for every tree), so a change goes in this order:
//! a mark naming the job's buckets before and after, the new entries, the
//! job's record, the old entries' removal, the mark's removal. A list reads
//! each job it answers and checks it against every filter, so an entry left
//! over for a moment is skipped, and an entry a job needs is never missing.
//! A crash leaves the mark; the next start puts the marked entries right from
//! the record (or its absence). A new job needs no mark: its record comes
//! first, then its entries, and the job stays marked as not fanned out until
//! both are written (a start indexes such a job again: `index_job`).
//!
//! The counts are saved when the store closes cleanly and loaded on the next
//! open; after a crash they are counted again from the entries' keys.

use super::{Result, Store};
use crate::model::{JobStatus, WebhookJob};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Mutex, PoisonError};

/// The meta key saying the index holds every job (stores written before the
/// index get it built on their first start).
const BUILT: &[u8] = b"job_index_built";
/// The meta key saying `job_index_counts` holds every bucket's count as the
/// index had it when the store last closed cleanly.
const COUNTS_SAVED: &[u8] = b"job_index_counts_saved";

/// The `status` a list filters by that is no status of its own: jobs whose
/// deliveries failed, whether they still retry or gave up (unless a caller
/// cancelled them). The reference's filtering examples send it.
pub const FAILED: &str = "failed";

/// Every value of `status=` a job is listed under: its status, and
/// [`FAILED`] when it failed.
pub fn status_tags(job: &WebhookJob) -> Vec<&'static str> {
    let failed = match job.status {
        JobStatus::AwaitingRetry => true,
        JobStatus::Discarded => !job.cancelled,
        _ => false,
    };
    let mut tags = vec![job.status.as_str()];
    tags.extend(failed.then_some(FAILED));
    tags
}

/// Which of an application's jobs a list asks for, as far as the index tells
/// them apart (anything else is checked on each job read).
#[derive(Debug, Clone, Copy)]
pub struct JobSelection<'a> {
    pub application_id: &'a str,
    /// A status, or [`FAILED`].
    pub status: Option<&'a str>,
    pub event_type: Option<&'a str>,
    pub endpoint_id: Option<&'a str>,
    /// Created strictly after / before (ms).
    pub created_after: Option<u64>,
    pub created_before: Option<u64>,
}

/// One page of a list, and how many jobs match in all.
pub struct JobPage {
    pub jobs: Vec<WebhookJob>,
    pub total: usize,
}

fn bucket(parts: &[&str]) -> String {
    let mut bucket = String::new();
    for part in parts {
        bucket.push_str(part);
        bucket.push('\0');
    }
    bucket
}

/// Every bucket a job has an entry in.
fn buckets_of(job: &WebhookJob) -> BTreeSet<String> {
    let (app, kind) = (job.application_id.as_str(), job.event_type.as_str());
    let mut buckets = BTreeSet::from([bucket(&["a", app]), bucket(&["t", app, kind])]);
    for tag in status_tags(job) {
        buckets.insert(bucket(&["s", app, tag]));
        buckets.insert(bucket(&["ts", app, kind, tag]));
    }
    for endpoint in &job.endpoint_ids {
        buckets.insert(bucket(&["e", app, endpoint]));
    }
    buckets
}

impl JobSelection<'_> {
    /// The bucket to walk, and whether it tells every filter of the selection
    /// (then no job needs reading to be counted).
    fn bucket(&self) -> (String, bool) {
        let app = self.application_id;
        match (self.status, self.event_type, self.endpoint_id) {
            (Some(tag), Some(kind), endpoint) => {
                (bucket(&["ts", app, kind, tag]), endpoint.is_none())
            }
            (None, _, Some(endpoint)) | (Some(_), None, Some(endpoint)) => (
                bucket(&["e", app, endpoint]),
                self.status.is_none() && self.event_type.is_none(),
            ),
            (Some(tag), None, None) => (bucket(&["s", app, tag]), true),
            (None, Some(kind), None) => (bucket(&["t", app, kind]), true),
            (None, None, None) => (bucket(&["a", app]), true),
        }
    }

    fn bounded(&self) -> bool {
        self.created_after.is_some() || self.created_before.is_some()
    }
}

fn entry_key(bucket: &str, created_at: u64, id: &str) -> Vec<u8> {
    [bucket.as_bytes(), &created_at.to_be_bytes(), id.as_bytes()].concat()
}

/// A job whose entries are changing: what to put right after a crash.
#[derive(Serialize, Deserialize)]
struct Mark {
    created_at: u64,
    buckets: BTreeSet<String>,
}

/// The bucket an entry's key begins with: as many parts as its kind has
/// (see `buckets_of`), each ended by a NUL.
fn bucket_of_key(key: &[u8]) -> Option<&[u8]> {
    let kind = key.split(|byte| *byte == 0).next()?;
    let parts = match kind {
        b"a" => 2,
        b"t" | b"s" | b"e" => 3,
        b"ts" => 4,
        _ => return None,
    };
    let mut ends = key.iter().enumerate().filter(|(_, byte)| **byte == 0);
    let (end, _) = ends.nth(parts - 1)?;
    Some(&key[..=end])
}

/// Each bucket's number of entries. Kept in memory because a count in sled
/// was a read and a write more for every entry added or removed (a new job
/// adds five).
#[derive(Default)]
pub(super) struct BucketCounts(Mutex<HashMap<String, u64>>);

impl BucketCounts {
    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self, bucket: &str, delta: i64) {
        let mut counts = self.counts();
        let count = counts.entry(bucket.to_string()).or_default();
        *count = count.saturating_add_signed(delta);
    }

    fn get(&self, bucket: &str) -> u64 {
        self.counts().get(bucket).copied().unwrap_or(0)
    }

    fn replace(&self, counts: HashMap<String, u64>) {
        *self.counts() = counts;
    }
}

impl Store {
    /// Writes a job's record with `write`, keeping its entries in step with
    /// it (`before`: the job as stored until now; `after`: as `write` stores
    /// it, None when it goes).
    pub(super) fn write_indexed_job(
        &self,
        before: Option<&WebhookJob>,
        after: Option<&WebhookJob>,
        write: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let Some(job) = after.or(before) else {
            return write();
        };
        let old = before.map(buckets_of).unwrap_or_default();
        let new = after.map(buckets_of).unwrap_or_default();
        if old == new {
            return write();
        }
        let mark = Mark {
            created_at: job.created_at,
            buckets: old.union(&new).cloned().collect(),
        };
        self.job_index_marks
            .insert(job.id.as_bytes(), serde_json::to_vec(&mark)?)?;
        for added in new.difference(&old) {
            self.add_entry(added, job.created_at, &job.id)?;
        }
        write()?;
        for gone in old.difference(&new) {
            self.remove_entry(gone, job.created_at, &job.id)?;
        }
        self.job_index_marks.remove(job.id.as_bytes())?;
        Ok(())
    }

    /// Writes a new job's entries (again, after a crash: each is written
    /// and counted once).
    pub(super) fn index_job(&self, job: &WebhookJob) -> Result<()> {
        for bucket in buckets_of(job) {
            self.add_entry(&bucket, job.created_at, &job.id)?;
        }
        Ok(())
    }

    fn add_entry(&self, bucket: &str, created_at: u64, id: &str) -> Result<()> {
        let key = entry_key(bucket, created_at, id);
        if self.job_index.insert(key, &[])?.is_none() {
            self.job_counts.add(bucket, 1);
        }
        Ok(())
    }

    fn remove_entry(&self, bucket: &str, created_at: u64, id: &str) -> Result<()> {
        let key = entry_key(bucket, created_at, id);
        if self.job_index.remove(key)?.is_some() {
            self.job_counts.add(bucket, -1);
        }
        Ok(())
    }

    /// Makes the index whole on start: its counts, the index itself for a
    /// store written before it, and the jobs a crash left half changed.
    pub(super) fn prepare_job_index(&self) -> Result<()> {
        self.load_job_counts()?;
        if self.meta.get(BUILT)?.is_none() {
            self.build_job_index()?;
        }
        for marked in self.job_index_marks.iter() {
            let (id, mark) = marked?;
            let id = String::from_utf8_lossy(&id).into_owned();
            self.repair_marked(&id, serde_json::from_slice(&mark)?)?;
        }
        Ok(())
    }

    /// The counts saved by the last clean close, or else (after a crash, or
    /// from a store older than them) counted from the entries' keys.
    fn load_job_counts(&self) -> Result<()> {
        if self.meta.remove(COUNTS_SAVED)?.is_none() {
            return self.recount_job_index();
        }
        // On disk before any entry changes: a crash from now on leaves the
        // saved counts behind, so the next start counts again.
        self.db.flush()?;
        let mut counts = HashMap::new();
        for saved in self.job_index_counts.iter() {
            let (bucket, count) = saved?;
            let count = count.as_ref().try_into().map_or(0, u64::from_be_bytes);
            counts.insert(String::from_utf8_lossy(&bucket).into_owned(), count);
        }
        self.job_counts.replace(counts);
        Ok(())
    }

    fn recount_job_index(&self) -> Result<()> {
        let started = std::time::Instant::now();
        let mut counts: HashMap<String, u64> = HashMap::new();
        for key in self.job_index.iter().keys() {
            let key = key?;
            if let Some(bucket) = bucket_of_key(&key) {
                *counts
                    .entry(String::from_utf8_lossy(bucket).into_owned())
                    .or_default() += 1;
            }
        }
        if !counts.is_empty() {
            let took = started.elapsed();
            tracing::info!(
                buckets = counts.len(),
                ?took,
                "counted the webhook jobs' list index"
            );
        }
        self.job_counts.replace(counts);
        Ok(())
    }

    /// Saves the counts for the next open (see `load_job_counts`); called
    /// once nothing else changes the store.
    pub(super) fn save_job_counts(&self) -> Result<()> {
        self.job_index_counts.clear()?;
        for (bucket, count) in self.job_counts.counts().iter() {
            self.job_index_counts.insert(bucket, &count.to_be_bytes())?;
        }
        self.meta.insert(COUNTS_SAVED, &[])?;
        self.db.flush()?;
        Ok(())
    }

    fn build_job_index(&self) -> Result<()> {
        let started = std::time::Instant::now();
        self.job_index.clear()?;
        self.job_counts.replace(HashMap::new());
        self.job_index_marks.clear()?;
        let mut indexed = 0u64;
        for job in self.jobs_newest_first() {
            self.index_job(&job?)?;
            indexed += 1;
        }
        self.meta.insert(BUILT, &[])?;
        self.db.flush()?;
        if indexed > 0 {
            let took = started.elapsed();
            tracing::info!(jobs = indexed, ?took, "built the webhook jobs' list index");
        }
        Ok(())
    }

    /// The marked entries as the job's record says (none when it is gone).
    fn repair_marked(&self, id: &str, mark: Mark) -> Result<()> {
        let wanted = self
            .job(id)?
            .map(|job| buckets_of(&job))
            .unwrap_or_default();
        for bucket in &mark.buckets {
            if wanted.contains(bucket) {
                self.add_entry(bucket, mark.created_at, id)?;
            } else {
                self.remove_entry(bucket, mark.created_at, id)?;
            }
        }
        self.job_index_marks.remove(id.as_bytes())?;
        Ok(())
    }

    /// The ids of an application's jobs, newest first.
    pub fn job_ids_of_application(&self, application_id: &str) -> Result<Vec<String>> {
        self.job_ids_in(&bucket(&["a", application_id]))
    }

    /// The ids of the jobs fanned out to an endpoint, newest first.
    pub fn job_ids_of_endpoint(
        &self,
        application_id: &str,
        endpoint_id: &str,
    ) -> Result<Vec<String>> {
        self.job_ids_in(&bucket(&["e", application_id, endpoint_id]))
    }

    fn job_ids_in(&self, bucket: &str) -> Result<Vec<String>> {
        let entries = self.job_index.scan_prefix(bucket).keys().rev();
        entries
            .map(|key| Ok(String::from_utf8_lossy(&key?[bucket.len() + 8..]).into_owned()))
            .collect()
    }

    /// One page of the selected jobs, newest first, that also pass `matches`
    /// (every filter of the list, the selection's too: an entry may be a
    /// moment ahead of its record). `exact`: `matches` checks nothing the
    /// selection does not (then jobs are counted by their entries).
    pub fn job_page(
        &self,
        selection: &JobSelection,
        matches: impl Fn(&WebhookJob) -> bool,
        exact: bool,
        skip: usize,
        take: usize,
    ) -> Result<JobPage> {
        let (bucket, covered) = selection.bucket();
        let by_entries = exact && covered;
        let lower = entry_key(
            &bucket,
            selection.created_after.map_or(0, |t| t.saturating_add(1)),
            "",
        );
        let upper = entry_key(&bucket, selection.created_before.unwrap_or(u64::MAX), "");
        let range = (Bound::Included(lower), Bound::Excluded(upper));
        let mut page = JobPage {
            jobs: Vec::with_capacity(take),
            total: 0,
        };
        for key in self.job_index.range(range).keys().rev() {
            let key = key?;
            let id = String::from_utf8_lossy(&key[bucket.len() + 8..]);
            if by_entries {
                page.total += 1;
                let wanted = page.total > skip && page.jobs.len() < take;
                if wanted {
                    page.jobs.extend(self.job(&id)?.filter(&matches));
                } else if page.total > skip && !selection.bounded() {
                    break; // the bucket's count tells the rest
                }
                continue;
            }
            let Some(job) = self.job(&id)?.filter(&matches) else {
                continue;
            };
            page.total += 1;
            if page.total > skip && page.jobs.len() < take {
                page.jobs.push(job);
            }
        }
        if by_entries && !selection.bounded() {
            page.total = self.job_counts.get(&bucket) as usize;
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::temp_store;
    use serde_json::json;

    fn job(id: &str, status: JobStatus) -> WebhookJob {
        serde_json::from_value(json!({
            "id": id, "application_id": "app_a", "event_type": "order.paid",
            "event_id": id, "payload": {}, "headers": {}, "metadata": {},
            "endpoint_ids": ["end_a"], "status": status, "attempt_count": 0,
            "max_retries": 0, "created_at": 1000, "updated_at": 1000, "expires_at": 2000,
            "succeeded_at": null, "discarded_at": null,
        }))
        .unwrap()
    }

    /// The ids of app_a's first ten jobs with the status tag (any status
    /// for None), and how many it has in all.
    fn listed(store: &Store, status: Option<&str>) -> (Vec<String>, usize) {
        let selection = JobSelection {
            application_id: "app_a",
            status,
            event_type: None,
            endpoint_id: None,
            created_after: None,
            created_before: None,
        };
        let page = store.job_page(&selection, |_| true, true, 0, 10).unwrap();
        (page.jobs.into_iter().map(|j| j.id).collect(), page.total)
    }

    #[test]
    fn counts_are_saved_by_a_clean_close_and_counted_again_after_a_crash() {
        let (dir, store) = temp_store();
        let created = |n: usize| job(&format!("job_{n}"), JobStatus::Created);
        (0..3).for_each(|n| store.insert_job(&created(n)).unwrap());
        let (dir, store) = crate::store::reopen(dir, store);
        assert_eq!(
            listed(&store, Some("created")).1,
            3,
            "counted from the entries"
        );
        store.insert_job(&created(3)).unwrap();
        assert!(store.checkpoint().unwrap());
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(listed(&store, Some("created")).1, 4, "as saved");
        // A crash after that open: the saved counts are stale by one job.
        store.insert_job(&created(4)).unwrap();
        let (_dir, store) = crate::store::reopen(dir, store);
        assert_eq!(listed(&store, Some("created")).1, 5, "counted again");
    }

    #[test]
    fn a_job_stored_but_not_yet_indexed_is_indexed_on_start() {
        let (_dir, store) = temp_store();
        let stored = job("job_1", JobStatus::Created);
        // `insert_job` up to a crash before the entries.
        store
            .unrouted_jobs
            .insert(stored.id.as_bytes(), &[])
            .unwrap();
        crate::store::put(&store.jobs, &stored.id, &stored).unwrap();
        crate::outbound::resume_fan_outs(&store).unwrap();
        assert_eq!(listed(&store, None), (vec![stored.id], 1));
    }

    #[test]
    fn a_job_journaled_before_a_crash_is_stored_keyed_indexed_and_fanned_out_once_on_start() {
        let (dir, store) = temp_store();
        let endpoint = crate::model::Endpoint {
            id: "end_a".into(),
            application_id: "app_a".into(),
            url: "https://example.com/hooks".into(),
            description: None,
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            previous_secrets: Vec::new(),
            subscribed_events: Vec::new(),
            status: crate::model::EndpointStatus::Active,
            rate_limit: None,
            created_at: 1000,
            updated_at: 1000,
        };
        store.save_endpoint(&endpoint).unwrap();
        store.flush().unwrap();
        let mut acknowledged = job("job_1", JobStatus::Created);
        acknowledged.event_id = "order-1".into();
        // Journaled (its 201 answered); the crash came before the indexer
        // and the router wrote anything of it.
        let record = crate::store::EncodedRequest::job(&acknowledged).unwrap();
        store.journal_requests(&[&record]).unwrap();
        let (_dir, store) = crate::store::reopen(dir, store);
        // Replayed twice, as after a second crash during the first replay.
        for _ in 0..2 {
            store
                .each_unrouted_journaled(|replayed| match replayed {
                    crate::store::Journaled::Job(committed) => {
                        crate::outbound::fan_out_journaled(&store, &committed, true).map(drop)
                    }
                    crate::store::Journaled::Request(_) => panic!("only a job was journaled"),
                })
                .unwrap();
        }
        assert_eq!(listed(&store, None), (vec!["job_1".to_string()], 1));
        let deliveries = store.deliveries_of("job_1").unwrap();
        assert_eq!(deliveries.len(), 1, "one delivery per endpoint, once");
        let queued = store.pending_event_ids("end_a").unwrap();
        assert_eq!(queued, [deliveries[0].id.clone()]);
        let claim = store.claim_job_key("app_a", "order-1", "job_2", 1500, 60_000);
        assert_eq!(
            claim.unwrap(),
            Some("job_1".into()),
            "its key still names it"
        );
    }

    #[test]
    fn a_crash_between_entries_and_record_is_put_right_on_start() {
        let (dir, store) = temp_store();
        let before = job("job_1", JobStatus::Created);
        store.insert_job(&before).unwrap();
        // A change to `discarded` that stopped after its new entries: the
        // record and the old entries as they were, the mark left behind.
        let after = job("job_1", JobStatus::Discarded);
        let interrupted = store.write_indexed_job(Some(&before), Some(&after), || {
            Err(crate::store::StoreError::Unavailable("crash".into()))
        });
        assert!(interrupted.is_err());
        assert_eq!(store.job_index_marks.len(), 1);
        // And a job whose entries were written but whose record never was.
        let lost = job("job_2", JobStatus::AwaitingRetry);
        let _ = store.write_indexed_job(None, Some(&lost), || {
            Err(crate::store::StoreError::Unavailable("crash".into()))
        });
        let (_dir, store) = crate::store::reopen(dir, store);
        assert_eq!(
            listed(&store, Some(FAILED)),
            (vec![], 0),
            "no entry names a job not failed or gone"
        );
        assert!(store.job_index_marks.is_empty());
        let created = listed(&store, Some("created"));
        assert_eq!(created, (vec!["job_1".to_string()], 1));
    }
}

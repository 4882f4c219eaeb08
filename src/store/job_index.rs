//! The webhook jobs' list index: `GET /v1/webhook-jobs` answers a page by
//! walking one index bucket instead of reading every job.
//!
//! A bucket is one combination of filters an application's jobs are listed
//! by: the application alone, with a status, an event type, both, or an
//! endpoint. Each job has an entry in every bucket it belongs to, keyed
//! `bucket ++ created_at (8 bytes, big-endian) ++ job id`, so a bucket walks
//! newest first and a time range is a key range. Each bucket also has a count
//! of its entries, so an unbounded `total` costs one read.
//!
//! sled writes each key on its own (one batch would take sled's global
//! write lock from then on, for every tree), so a change goes in this order:
//! a mark naming the job's buckets before and after, the new entries, the
//! job's record, the old entries' removal, the mark's removal. A list reads
//! each job it answers and checks it against every filter, so an entry left
//! over for a moment is skipped, and an entry a job needs is never missing.
//! A crash leaves the mark; the next start puts the marked entries right from
//! the record (or its absence) and recounts their buckets.

use super::{Result, Store};
use crate::model::{JobStatus, WebhookJob};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::ops::Bound;

/// The meta key saying the index holds every job (stores written before the
/// index get it built on their first start).
const BUILT: &[u8] = b"job_index_built";

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

fn count_value(count: u64) -> [u8; 8] {
    count.to_be_bytes()
}

fn count_of(value: Option<&[u8]>) -> u64 {
    value
        .and_then(|bytes| bytes.try_into().ok())
        .map_or(0, u64::from_be_bytes)
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

    fn add_entry(&self, bucket: &str, created_at: u64, id: &str) -> Result<()> {
        let key = entry_key(bucket, created_at, id);
        if self.job_index.insert(key, &[])?.is_none() {
            self.add_to_count(bucket, 1)?;
        }
        Ok(())
    }

    fn remove_entry(&self, bucket: &str, created_at: u64, id: &str) -> Result<()> {
        let key = entry_key(bucket, created_at, id);
        if self.job_index.remove(key)?.is_some() {
            self.add_to_count(bucket, -1)?;
        }
        Ok(())
    }

    fn add_to_count(&self, bucket: &str, delta: i64) -> Result<()> {
        self.job_index_counts.update_and_fetch(bucket, |old| {
            let count = count_of(old).saturating_add_signed(delta);
            Some(count_value(count).to_vec())
        })?;
        Ok(())
    }

    /// Makes the index whole on start: builds it for a store written before
    /// it, and puts right the jobs a crash left half changed.
    pub(super) fn prepare_job_index(&self) -> Result<()> {
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

    fn build_job_index(&self) -> Result<()> {
        let started = std::time::Instant::now();
        self.job_index.clear()?;
        self.job_index_counts.clear()?;
        self.job_index_marks.clear()?;
        let mut indexed = 0u64;
        for job in self.jobs_newest_first() {
            let job = job?;
            for bucket in buckets_of(&job) {
                self.add_entry(&bucket, job.created_at, &job.id)?;
            }
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

    /// The marked entries as the job's record says (none when it is gone),
    /// and their buckets recounted: a crash may have come between an entry
    /// and its count.
    fn repair_marked(&self, id: &str, mark: Mark) -> Result<()> {
        let wanted = self
            .job(id)?
            .map(|job| buckets_of(&job))
            .unwrap_or_default();
        for bucket in &mark.buckets {
            let key = entry_key(bucket, mark.created_at, id);
            if wanted.contains(bucket) {
                self.job_index.insert(key, &[])?;
            } else {
                self.job_index.remove(key)?;
            }
            let count = self.job_index.scan_prefix(bucket).keys().count() as u64;
            self.job_index_counts.insert(bucket, &count_value(count))?;
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
            page.total = count_of(self.job_index_counts.get(&bucket)?.as_deref()) as usize;
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

    fn failed_ids(store: &Store) -> (Vec<String>, usize) {
        let selection = JobSelection {
            application_id: "app_a",
            status: Some(FAILED),
            event_type: None,
            endpoint_id: None,
            created_after: None,
            created_before: None,
        };
        let page = store.job_page(&selection, |_| true, true, 0, 10).unwrap();
        (page.jobs.into_iter().map(|j| j.id).collect(), page.total)
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
            failed_ids(&store),
            (vec![], 0),
            "no entry names a job not failed or gone"
        );
        assert!(store.job_index_marks.is_empty());
        let selection = JobSelection {
            application_id: "app_a",
            status: Some("created"),
            event_type: None,
            endpoint_id: None,
            created_after: None,
            created_before: None,
        };
        let created = store.job_page(&selection, |_| true, true, 0, 10).unwrap();
        assert_eq!((created.jobs.len(), created.total), (1, 1));
    }
}

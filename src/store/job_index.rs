//! The webhook jobs' list index: `GET /v1/webhook-jobs` answers a page by
//! walking one index bucket instead of reading every job.
//!
//! A bucket is one combination of filters an application's jobs are listed
//! by. The buckets a job has an entry in name what never changes after its
//! creation: its application with its event type, or with an endpoint. Each
//! entry is keyed `bucket ++ created_at (8 bytes, big-endian) ++ job id`, so
//! a bucket walks newest first and a time range is a key range.
//!
//! Every job has one *type entry*. A job to one endpoint (most are) has no
//! other: it is in the bucket of its type and that endpoint (`te`), which
//! lists of its type and lists of its endpoint both walk. A job to no
//! endpoint or to several has its type entry in its type's bucket (`t`) and
//! an entry in each of its endpoints' (`e`). So a list of a type walks that
//! type's `t` bucket and its `te` buckets merged (newest first by their
//! keys' time and id), a list of an endpoint its `e` bucket and its `te`
//! buckets, and a list of every job the application's `t` and `te` buckets:
//! each holds a job once. A job to one endpoint with both a type and an
//! endpoint entry was a third of the index's writes for each new job, as an
//! entry for the application alone had been before.
//!
//! A job's status has no entries: it changes with every settled
//! delivery, and moving a job between status buckets (under a mark, for
//! crashes) was most of a settle's sled writes. A list by status walks the
//! status-free bucket and reads each job's status (`JobTags`, from the
//! record read without its payload's values, its state record's status
//! over it). A type entry's value is that state record once a change wrote
//! one (see `job_state`); every other value is empty, and adding an entry
//! that is there keeps its value.
//!
//! Every list's count is kept in memory (`BucketCounts`): a type's and an
//! endpoint's (their `te` entries counted in both), the status buckets'
//! (the application, or its event type, with a status tag: counted only),
//! and the application's (every type entry), so an unbounded `total` costs
//! no read.
//!
//! sled writes each key on its own (one batch would take sled's global
//! write lock from then on, for every tree), so a change of a job's entries
//! (only its removal) goes in this order: a mark naming the job's buckets
//! before and after, the new entries, the job's record, the old entries'
//! removal, the mark's removal. A crash leaves the mark; the next start puts
//! the marked entries right from the record (or its absence). A new job
//! needs no mark: its record comes first, then its entries, and the job
//! stays marked as not fanned out until both are written (a start indexes
//! such a job again: `index_job`).
//!
//! The counts are saved when the store closes cleanly and loaded on the next
//! open; after a crash they are counted again from the entries' keys and the
//! statuses of the jobs the type buckets name.

use super::keyspace::Iter;
use super::{Result, Store};
use crate::model::{JobState, JobStatus, WebhookJob};
use serde::{Deserialize, Serialize};
use sled::IVec;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::ops::Bound;
use std::sync::{Mutex, PoisonError};

/// The meta key saying the index holds every job (stores written before the
/// index, or by a version that keyed statuses or applications alone too, or
/// that gave a job to one endpoint two entries, get it built on their first
/// start).
const BUILT: &[u8] = b"job_index_built_4";
/// The meta keys of the index that had status buckets, of the one that had
/// application buckets, and of the one without `te` buckets (see `BUILT`).
const BUILT_BEFORE: [&[u8]; 3] = [
    b"job_index_built",
    b"job_index_built_2",
    b"job_index_built_3",
];
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
    tags_of(job.status, job.cancelled)
}

fn tags_of(status: JobStatus, cancelled: bool) -> Vec<&'static str> {
    let failed = match status {
        JobStatus::AwaitingRetry => true,
        JobStatus::Discarded => !cancelled,
        _ => false,
    };
    let mut tags = vec![status.as_str()];
    tags.extend(failed.then_some(FAILED));
    tags
}

/// What a list tells jobs apart by. A job's entries and status counts
/// follow from these and its application alone.
#[derive(PartialEq)]
pub(super) struct JobTags {
    event_type: String,
    endpoint_ids: Vec<String>,
    status: JobStatus,
    cancelled: bool,
}

impl From<&WebhookJob> for JobTags {
    fn from(job: &WebhookJob) -> JobTags {
        JobTags {
            event_type: job.event_type.clone(),
            endpoint_ids: job.endpoint_ids.clone(),
            status: job.status,
            cancelled: job.cancelled,
        }
    }
}

impl JobTags {
    /// The tags of a job of this type, these endpoints and this state.
    pub(super) fn of(event_type: &str, endpoint_ids: &[String], state: &JobState) -> JobTags {
        JobTags {
            event_type: event_type.to_string(),
            endpoint_ids: endpoint_ids.to_vec(),
            status: state.status,
            cancelled: state.cancelled,
        }
    }

    /// Whether a job with these tags has the same entries as with `other`.
    fn same_entries(&self, other: &JobTags) -> bool {
        self.event_type == other.event_type && self.endpoint_ids == other.endpoint_ids
    }
}

/// What of a job its entries' keys name.
#[derive(Clone, Copy)]
pub(super) struct JobPlace<'a> {
    pub id: &'a str,
    pub application_id: &'a str,
    /// With its endpoints, where its type entry is, which tells whether it
    /// is indexed (see `is_indexed`).
    pub event_type: &'a str,
    pub endpoint_ids: &'a [String],
    pub created_at: u64,
    /// Its type entry is known to be there (its frame is kept in memory, see
    /// `JobFrames`): sled need not be asked (`is_indexed`).
    pub known_indexed: bool,
}

impl JobPlace<'_> {
    /// The key of the job's type entry, which holds its state record once
    /// a change wrote one (see `job_state`).
    pub(super) fn type_entry_key(&self) -> Vec<u8> {
        let type_bucket = type_bucket(self.application_id, self.event_type, self.endpoint_ids);
        entry_key(&type_bucket, self.created_at, self.id)
    }
}

impl<'a> From<&'a WebhookJob> for JobPlace<'a> {
    fn from(job: &'a WebhookJob) -> JobPlace<'a> {
        JobPlace {
            id: &job.id,
            application_id: &job.application_id,
            event_type: &job.event_type,
            endpoint_ids: &job.endpoint_ids,
            created_at: job.created_at,
            known_indexed: false,
        }
    }
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

/// Every bucket a job of the application with these tags has an entry in.
fn buckets_of(app: &str, job: &JobTags) -> BTreeSet<String> {
    let mut buckets = BTreeSet::from([type_bucket(app, &job.event_type, &job.endpoint_ids)]);
    if job.endpoint_ids.len() != 1 {
        for endpoint in &job.endpoint_ids {
            buckets.insert(bucket(&["e", app, endpoint]));
        }
    }
    buckets
}

/// The bucket of a job's type entry: of its type and its endpoint, when it
/// has one endpoint, else of its type.
fn type_bucket(app: &str, event_type: &str, endpoint_ids: &[String]) -> String {
    match endpoint_ids {
        [endpoint] => bucket(&["te", app, event_type, endpoint]),
        _ => bucket(&["t", app, event_type]),
    }
}

/// What a bucket of type entries names: the application, the type and, for
/// a `te` bucket, the endpoint.
fn of_type_bucket(bucket: &str) -> Option<(&str, &str, Option<&str>)> {
    let (kind, rest) = bucket.split_once('\0')?;
    let mut parts = rest.split('\0');
    let (app, event_type) = (parts.next()?, parts.next()?);
    match kind {
        "t" => Some((app, event_type, None)),
        "te" => Some((app, event_type, Some(parts.next()?))),
        _ => None,
    }
}

/// The status buckets a job is counted in (they have no entries).
fn status_buckets(app: &str, job: &JobTags) -> Vec<String> {
    let statuses = tags_of(job.status, job.cancelled).into_iter();
    statuses
        .flat_map(|tag| {
            [
                bucket(&["s", app, tag]),
                bucket(&["ts", app, &job.event_type, tag]),
            ]
        })
        .collect()
}

impl<'a> JobSelection<'a> {
    /// An application's jobs, every one.
    fn of_application(application_id: &'a str) -> JobSelection<'a> {
        JobSelection {
            application_id,
            status: None,
            event_type: None,
            endpoint_id: None,
            created_after: None,
            created_before: None,
        }
    }

    /// Whether the walked buckets' keys tell every filter of the selection
    /// (then no job needs reading to be counted).
    fn told_by_keys(&self) -> bool {
        self.status.is_none() && (self.event_type.is_none() || self.endpoint_id.is_none())
    }

    /// The bucket whose count is the selection's total when no time range
    /// bounds it (None: no bucket counts that combination).
    fn counted(&self) -> Option<String> {
        let app = self.application_id;
        Some(match (self.status, self.event_type, self.endpoint_id) {
            (None, None, Some(endpoint)) => bucket(&["e", app, endpoint]),
            (_, _, Some(_)) => return None,
            (Some(tag), Some(kind), None) => bucket(&["ts", app, kind, tag]),
            (Some(tag), None, None) => bucket(&["s", app, tag]),
            (None, Some(kind), None) => bucket(&["t", app, kind]),
            (None, None, None) => bucket(&["a", app]),
        })
    }

    /// Whether a job of the walked bucket (and time range) is selected.
    fn selects(&self, job: &JobTags) -> bool {
        self.event_type.is_none_or(|kind| kind == job.event_type)
            && (self.endpoint_id).is_none_or(|e| job.endpoint_ids.iter().any(|id| id == e))
            && (self.status).is_none_or(|tag| tags_of(job.status, job.cancelled).contains(&tag))
    }

    fn bounded(&self) -> bool {
        self.created_after.is_some() || self.created_before.is_some()
    }
}

fn entry_key(bucket: &str, created_at: u64, id: &str) -> Vec<u8> {
    [bucket.as_bytes(), &created_at.to_be_bytes(), id.as_bytes()].concat()
}

/// The entries of one bucket or more, newest first (several buckets'
/// merged by their keys' time and id).
struct Walk {
    /// Each bucket's length, whether it holds type entries, and its entries
    /// not yet walked.
    buckets: Vec<(usize, bool, Iter)>,
    /// Each bucket's newest entry not yet walked, the newest of all on top.
    heads: BinaryHeap<Head>,
}

/// A bucket's newest entry not yet walked.
struct Head {
    key: IVec,
    /// The job's state record when it is a type entry (see `Walked`).
    type_entry: Option<IVec>,
    /// Its bucket's length: the key's time and id follow.
    bucket_length: usize,
    /// Its bucket's place in `Walk::buckets`.
    bucket: usize,
}

impl Head {
    fn time_and_id(&self) -> &[u8] {
        &self.key[self.bucket_length..]
    }
}

impl Ord for Head {
    fn cmp(&self, other: &Head) -> std::cmp::Ordering {
        self.time_and_id().cmp(other.time_and_id())
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Head) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Head) -> bool {
        self.time_and_id() == other.time_and_id()
    }
}

impl Eq for Head {}

/// An entry a walk came to: its job's id, and the entry's value when it is
/// the job's type entry (empty, or the job's state record: see
/// `job_state`), so that reading the job's state takes no second read of it.
struct Walked {
    id: String,
    type_entry: Option<IVec>,
}

impl Walk {
    fn new(buckets: Vec<(usize, bool, Iter)>) -> Result<Walk> {
        let mut walk = Walk {
            heads: BinaryHeap::with_capacity(buckets.len()),
            buckets,
        };
        for n in 0..walk.buckets.len() {
            walk.advance(n)?;
        }
        Ok(walk)
    }

    fn advance(&mut self, bucket: usize) -> Result<()> {
        let (bucket_length, of_types, entries) = &mut self.buckets[bucket];
        if let Some(entry) = entries.next_back() {
            let (key, value) = entry?;
            self.heads.push(Head {
                key,
                type_entry: of_types.then_some(value),
                bucket_length: *bucket_length,
                bucket,
            });
        }
        Ok(())
    }
}

impl Iterator for Walk {
    type Item = Result<Walked>;

    fn next(&mut self) -> Option<Result<Walked>> {
        let head = self.heads.pop()?;
        if let Err(error) = self.advance(head.bucket) {
            return Some(Err(error));
        }
        let id = String::from_utf8_lossy(&head.time_and_id()[8..]).into_owned();
        let type_entry = head.type_entry;
        Some(Ok(Walked { id, type_entry }))
    }
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
        b"t" | b"e" => 3,
        b"te" => 4,
        _ => return None,
    };
    let mut ends = key.iter().enumerate().filter(|(_, byte)| **byte == 0);
    let (end, _) = ends.nth(parts - 1)?;
    Some(&key[..=end])
}

/// Each bucket's number of entries (of jobs, for a status bucket or an
/// application's). Kept in memory because a count in sled was a read and a
/// write more for every entry added or removed.
#[derive(Default)]
pub(super) struct BucketCounts(Mutex<HashMap<String, u64>>);

impl BucketCounts {
    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self, bucket: &str, delta: i64) {
        let mut counts = self.counts();
        // A known bucket (nearly every time) costs no new key.
        let count = match counts.get_mut(bucket) {
            Some(count) => count,
            None => counts.entry(bucket.to_string()).or_default(),
        };
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
    /// Writes `job`'s record with `write`, keeping its entries and counts in
    /// step with it (`before`: the tags of the job as stored until now;
    /// `after`: as `write` stores it, None when it goes). A change of status
    /// writes nothing but the record; a change of nothing a list tells jobs
    /// apart by (a settle that only counts an attempt) makes no bucket at all.
    pub(super) fn write_indexed_job(
        &self,
        job: JobPlace,
        before: Option<&JobTags>,
        after: Option<&JobTags>,
        write: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        if before == after {
            return write();
        }
        let app = job.application_id;
        let statuses =
            |tags: Option<&JobTags>| tags.map(|t| status_buckets(app, t)).unwrap_or_default();
        let (old_statuses, new_statuses) = (statuses(before), statuses(after));
        // Its entries move only when it comes or goes (a job's type and
        // endpoints never change): a settle builds no entry's bucket.
        let moves = !matches!((before, after), (Some(old), Some(new)) if old.same_entries(new));
        if !moves && old_statuses == new_statuses {
            return write();
        }
        // A job is counted by status while its type entry is there.
        let counted_before = before.is_some() && (job.known_indexed || self.is_indexed(job)?);
        if moves {
            let buckets =
                |tags: Option<&JobTags>| tags.map(|t| buckets_of(app, t)).unwrap_or_default();
            self.move_entries(job, &buckets(before), &buckets(after), write)?;
        } else {
            write()?;
        }
        let counted_after = match (after, moves) {
            (None, _) => false,
            (Some(_), false) => counted_before,
            (Some(_), true) => self.is_indexed(job)?,
        };
        if counted_before {
            self.count_in(&old_statuses, -1);
        }
        if counted_after {
            self.count_in(&new_statuses, 1);
        }
        Ok(())
    }

    fn is_indexed(&self, job: JobPlace) -> Result<bool> {
        self.job_index.contains_key(job.type_entry_key())
    }

    /// Moves a job's entries from the `old` buckets to the `new`, writing its
    /// record (`write`) in between, under a mark.
    fn move_entries(
        &self,
        job: JobPlace,
        old: &BTreeSet<String>,
        new: &BTreeSet<String>,
        write: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let mark = Mark {
            created_at: job.created_at,
            buckets: old.union(new).cloned().collect(),
        };
        self.job_index_marks
            .insert(job.id.as_bytes(), serde_json::to_vec(&mark)?)?;
        for added in new.difference(old) {
            self.add_entry(added, job.created_at, job.id)?;
        }
        write()?;
        for gone in old.difference(new) {
            self.remove_entry(gone, job.created_at, job.id)?;
        }
        self.job_index_marks.remove(job.id.as_bytes())?;
        Ok(())
    }

    /// Counts a job, just indexed, in its status buckets.
    fn count_statuses(&self, application_id: &str, job: &JobTags) {
        self.count_in(&status_buckets(application_id, job), 1);
    }

    fn count_in(&self, buckets: &[String], delta: i64) {
        for bucket in buckets {
            self.job_counts.add(bucket, delta);
        }
    }

    /// Writes a new job's entries (again, after a crash: each is written
    /// and counted once; its statuses are counted with its type entry).
    pub(super) fn index_job(&self, job: &WebhookJob) -> Result<()> {
        let tags = JobTags::from(job);
        for bucket in buckets_of(&job.application_id, &tags) {
            let added = self.add_entry(&bucket, job.created_at, &job.id)?;
            if added && of_type_bucket(&bucket).is_some() {
                self.count_statuses(&job.application_id, &tags);
            }
        }
        Ok(())
    }

    /// Adds an entry; whether it was not there yet. One that is keeps its
    /// value (a type entry's is the job's state, see `job_state`).
    fn add_entry(&self, bucket: &str, created_at: u64, id: &str) -> Result<bool> {
        let key = entry_key(bucket, created_at, id);
        let added = (self.job_index)
            .compare_and_swap(key, None::<&[u8]>, Some(&[]))?
            .is_ok();
        if added {
            self.count_entry(bucket, 1);
        }
        Ok(added)
    }

    fn remove_entry(&self, bucket: &str, created_at: u64, id: &str) -> Result<()> {
        let key = entry_key(bucket, created_at, id);
        if self.job_index.remove(key)?.is_some() {
            self.count_entry(bucket, -1);
        }
        Ok(())
    }

    /// Counts an entry in its bucket's list, and a type entry in its
    /// application's, and a `te` entry in its type's and its endpoint's.
    fn count_entry(&self, entry_bucket: &str, delta: i64) {
        let Some((app, event_type, endpoint)) = of_type_bucket(entry_bucket) else {
            return self.job_counts.add(entry_bucket, delta);
        };
        self.job_counts.add(&bucket(&["a", app]), delta);
        self.job_counts.add(&bucket(&["t", app, event_type]), delta);
        if let Some(endpoint) = endpoint {
            self.job_counts.add(&bucket(&["e", app, endpoint]), delta);
        }
    }

    /// Makes the index whole on start: its counts, the index itself for a
    /// store written before it, and the jobs a crash left half changed.
    pub(super) fn prepare_job_index(&self) -> Result<()> {
        if self.meta.get(BUILT)?.is_none() {
            self.meta.remove(COUNTS_SAVED)?;
            self.build_job_index()?;
        } else {
            self.load_job_counts()?;
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

    /// Counts every bucket's entries, and the statuses of the jobs of the
    /// type buckets' entries (a job is counted by status when its type entry
    /// is there and its record too).
    fn recount_job_index(&self) -> Result<()> {
        let started = std::time::Instant::now();
        self.job_counts.replace(HashMap::new());
        for entry in self.job_index.iter() {
            let (key, value) = entry?;
            let Some(bucket) = bucket_of_key(&key) else {
                continue;
            };
            let bucket = String::from_utf8_lossy(bucket).into_owned();
            self.count_entry(&bucket, 1);
            let Some((app, ..)) = of_type_bucket(&bucket) else {
                continue;
            };
            let walked = Walked {
                id: String::from_utf8_lossy(&key[bucket.len() + 8..]).into_owned(),
                type_entry: Some(value),
            };
            if let Some(tags) = self.job_tags(walked)? {
                self.count_statuses(app, &tags);
            }
        }
        if !self.job_counts.counts().is_empty() {
            let took = started.elapsed();
            tracing::info!(?took, "counted the webhook jobs' list index");
        }
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
        self.keep_entry_states()?;
        self.job_index.clear()?;
        self.job_counts.replace(HashMap::new());
        self.job_index_marks.clear()?;
        let mut indexed = 0u64;
        for job in self.jobs_newest_first() {
            self.index_job(&job?)?;
            indexed += 1;
        }
        self.meta.insert(BUILT, &[])?;
        for before in BUILT_BEFORE {
            self.meta.remove(before)?;
        }
        self.db.flush()?;
        if indexed > 0 {
            let took = started.elapsed();
            tracing::info!(jobs = indexed, ?took, "built the webhook jobs' list index");
        }
        Ok(())
    }

    /// Moves the states written into type entries to `job_states` before a
    /// build clears the entries; there a job's state is read while its new
    /// type entry holds none (see `job_state`).
    fn keep_entry_states(&self) -> Result<()> {
        for entry in self.job_index.iter() {
            let (key, state) = entry?;
            // Only a type entry holds a value, once a change wrote its state.
            if state.is_empty() {
                continue;
            }
            let Some(bucket) = bucket_of_key(&key) else {
                continue;
            };
            self.job_states.insert(&key[bucket.len() + 8..], state)?;
        }
        Ok(())
    }

    /// The marked entries as the job's record says (none when it is gone).
    /// A job counted by status is one whose type entry was there when the
    /// start counted (`recount_job_index`), or is added now.
    fn repair_marked(&self, id: &str, mark: Mark) -> Result<()> {
        let job = self.job(id)?;
        let wanted = (job.as_ref())
            .map(|job| buckets_of(&job.application_id, &JobTags::from(job)))
            .unwrap_or_default();
        for bucket in &mark.buckets {
            if !wanted.contains(bucket) {
                self.remove_entry(bucket, mark.created_at, id)?;
                continue;
            }
            let added = self.add_entry(bucket, mark.created_at, id)?;
            let type_entry = added && of_type_bucket(bucket).is_some();
            if let Some(job) = job.as_ref().filter(|_| type_entry) {
                self.count_statuses(&job.application_id, &JobTags::from(job));
            }
        }
        self.job_index_marks.remove(id.as_bytes())?;
        Ok(())
    }

    /// The tags a list tells a walked job apart by, read without its
    /// payload (see `framed_job`).
    fn job_tags(&self, walked: Walked) -> Result<Option<JobTags>> {
        let job = self.walked_framed_job(&walked.id, walked.type_entry)?;
        Ok(job.map(|job| job.tags()))
    }

    /// The ids of an application's jobs, newest first.
    pub fn job_ids_of_application(&self, application_id: &str) -> Result<Vec<String>> {
        let walk = self.walk(&JobSelection::of_application(application_id))?;
        walk.map(|walked| Ok(walked?.id)).collect()
    }

    /// The ids of the jobs fanned out to an endpoint, newest first.
    pub fn job_ids_of_endpoint(
        &self,
        application_id: &str,
        endpoint_id: &str,
    ) -> Result<Vec<String>> {
        let selection = JobSelection {
            endpoint_id: Some(endpoint_id),
            ..JobSelection::of_application(application_id)
        };
        let walk = self.walk(&selection)?;
        walk.map(|walked| Ok(walked?.id)).collect()
    }

    /// The entries of the buckets the selection walks, in its time range.
    fn walk(&self, selection: &JobSelection) -> Result<Walk> {
        let buckets = self.walked_buckets(selection)?;
        let after = selection.created_after.map_or(0, |t| t.saturating_add(1));
        let before = selection.created_before.unwrap_or(u64::MAX);
        let entries = |bucket: &String| {
            let lower = Bound::Included(entry_key(bucket, after, ""));
            let upper = Bound::Excluded(entry_key(bucket, before, ""));
            let of_types = of_type_bucket(bucket).is_some();
            (bucket.len(), of_types, self.job_index.range((lower, upper)))
        };
        Walk::new(buckets.iter().map(entries).collect())
    }

    /// The buckets whose entries are the selection's jobs, as far as the
    /// keys tell (each job once): a type's, with or without an endpoint
    /// (the jobs to several endpoints are then read to be told apart), an
    /// endpoint's, or every type bucket of the application.
    fn walked_buckets(&self, selection: &JobSelection) -> Result<Vec<String>> {
        let app = selection.application_id;
        Ok(match (selection.event_type, selection.endpoint_id) {
            (Some(kind), Some(endpoint)) => {
                vec![
                    bucket(&["te", app, kind, endpoint]),
                    bucket(&["t", app, kind]),
                ]
            }
            (Some(kind), None) => {
                let mut buckets = self.buckets_under(&bucket(&["te", app, kind]))?;
                buckets.push(bucket(&["t", app, kind]));
                buckets
            }
            (None, Some(endpoint)) => {
                let mut buckets = self.buckets_under(&bucket(&["te", app]))?;
                buckets
                    .retain(|te| of_type_bucket(te).is_some_and(|(.., to)| to == Some(endpoint)));
                buckets.push(bucket(&["e", app, endpoint]));
                buckets
            }
            (None, None) => {
                let mut buckets = self.buckets_under(&bucket(&["te", app]))?;
                buckets.extend(self.buckets_under(&bucket(&["t", app]))?);
                buckets
            }
        })
    }

    /// The buckets under a prefix (ended by a NUL) that have entries: found
    /// by seeking from each to the next, not by walking their entries.
    fn buckets_under(&self, prefix: &str) -> Result<Vec<String>> {
        let prefix = prefix.as_bytes();
        let past = |bucket: &[u8]| [&bucket[..bucket.len() - 1], &[1]].concat();
        let mut buckets = Vec::new();
        let mut from = prefix.to_vec();
        loop {
            let range = (Bound::Included(from), Bound::Excluded(past(prefix)));
            let Some(key) = self.job_index.range(range).keys().next().transpose()? else {
                break;
            };
            let Some(found) = bucket_of_key(&key) else {
                break;
            };
            // Past every key of this bucket: its closing NUL, one higher.
            from = past(found);
            buckets.push(String::from_utf8_lossy(found).into_owned());
        }
        Ok(buckets)
    }

    /// One page of the selected jobs, newest first, that also pass `matches`
    /// (every filter of the list, the selection's too). `exact`: `matches`
    /// checks nothing the selection does not (then jobs are counted by their
    /// entries, or by their tags, or by a bucket's count).
    pub fn job_page(
        &self,
        selection: &JobSelection,
        matches: impl Fn(&WebhookJob) -> bool,
        exact: bool,
        skip: usize,
        take: usize,
    ) -> Result<JobPage> {
        let by_keys = exact && selection.told_by_keys();
        // A count tells the total: the walk stops after the page.
        let counted = (selection.counted())
            .filter(|_| exact && !selection.bounded())
            .map(|counted| self.job_counts.get(&counted) as usize);
        let mut page = JobPage {
            jobs: Vec::with_capacity(take),
            total: 0,
        };
        for walked in self.walk(selection)? {
            let walked = walked?;
            let on_page = page.total >= skip && page.jobs.len() < take;
            if !on_page && page.total >= skip && counted.is_some() {
                break;
            }
            if on_page {
                // Read whole, and checked against every filter.
                let selected = |job: &WebhookJob| selection.selects(&JobTags::from(job));
                let job = self.walked_job(&walked.id, walked.type_entry)?;
                let job = job.filter(|job| selected(job) && matches(job));
                page.total += usize::from(job.is_some() || by_keys);
                page.jobs.extend(job);
            } else if by_keys {
                page.total += 1;
            } else if exact {
                let tags = self.job_tags(walked)?;
                page.total += usize::from(tags.is_some_and(|tags| selection.selects(&tags)));
            } else {
                let job = self.walked_job(&walked.id, walked.type_entry)?;
                page.total += usize::from(job.is_some_and(|job| matches(&job)));
            }
        }
        page.total = counted.unwrap_or(page.total);
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::temp_store;
    use serde_json::json;
    use tempfile::TempDir;

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

    /// Saves app_a's endpoint `end_a`, to which `job` sends.
    fn save_endpoint_a(store: &Store) {
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
    }

    #[test]
    fn a_job_journaled_before_a_crash_is_stored_keyed_indexed_and_fanned_out_once_on_start() {
        let (dir, store) = temp_store();
        save_endpoint_a(&store);
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
        // A change to `discarded` whose record write failed: no entry moves,
        // nothing is left to put right.
        let after = job("job_1", JobStatus::Discarded);
        let (tags_before, tags_after) = (JobTags::from(&before), JobTags::from(&after));
        let interrupted = store.write_indexed_job(
            (&after).into(),
            Some(&tags_before),
            Some(&tags_after),
            || Err(crate::store::StoreError::Unavailable("crash".into())),
        );
        assert!(interrupted.is_err());
        assert!(store.job_index_marks.is_empty());
        // A job whose entries were written but whose record never was.
        let lost = job("job_2", JobStatus::AwaitingRetry);
        let _ = store.write_indexed_job((&lost).into(), None, Some(&JobTags::from(&lost)), || {
            Err(crate::store::StoreError::Unavailable("crash".into()))
        });
        assert_eq!(store.job_index_marks.len(), 1);
        let (_dir, store) = crate::store::reopen(dir, store);
        assert_eq!(
            listed(&store, Some(FAILED)),
            (vec![], 0),
            "no entry names a job not failed or gone"
        );
        assert!(store.job_index_marks.is_empty());
        let all = listed(&store, None);
        assert_eq!(all, (vec!["job_1".to_string()], 1), "job_2's entries gone");
        let created = listed(&store, Some("created"));
        assert_eq!(created, (vec!["job_1".to_string()], 1));
    }

    #[test]
    fn a_change_of_status_writes_the_record_alone_and_lists_and_counts_it_anew() {
        let (_dir, store) = temp_store();
        let created = job("job_1", JobStatus::Created);
        store.insert_job(&created).unwrap();
        let entries = store.job_index.len();
        let mut failed = job("job_1", JobStatus::AwaitingRetry);
        failed.attempt_count = 1;
        let write = || crate::store::put(&store.jobs, "job_1", &failed);
        let (tags_before, tags_after) = (JobTags::from(&created), JobTags::from(&failed));
        store
            .write_indexed_job(
                (&failed).into(),
                Some(&tags_before),
                Some(&tags_after),
                write,
            )
            .unwrap();
        assert_eq!(store.job_index.len(), entries, "no entry moved");
        assert!(store.job_index_marks.is_empty(), "no mark written");
        assert_eq!(listed(&store, Some("created")), (vec![], 0));
        let retrying = (vec!["job_1".to_string()], 1);
        assert_eq!(listed(&store, Some("awaiting_retry")), retrying);
        assert_eq!(listed(&store, Some(FAILED)), retrying);
    }

    #[test]
    fn an_applications_jobs_of_every_type_list_newest_first_from_its_type_buckets() {
        let (_dir, store) = temp_store();
        let kinds = ["order.paid", "order.created", "user.deleted"];
        for n in 0..9 {
            let mut made = job(&format!("job_{n}"), JobStatus::Created);
            made.event_type = kinds[n % 3].into();
            made.created_at = 1000 + n as u64;
            store.insert_job(&made).unwrap();
        }
        let mut other = job("job_9", JobStatus::Created);
        other.application_id = "app_b".into();
        store.insert_job(&other).unwrap();
        let newest_first = |from: usize, to: usize| -> Vec<String> {
            (from..to).rev().map(|n| format!("job_{n}")).collect()
        };
        assert_eq!(listed(&store, None), (newest_first(0, 9), 9));
        assert_eq!(
            store.job_ids_of_application("app_a").unwrap(),
            newest_first(0, 9)
        );
        let selection = JobSelection {
            created_after: Some(1002),
            created_before: Some(1007),
            ..JobSelection::of_application("app_a")
        };
        let page = store.job_page(&selection, |_| true, true, 1, 2).unwrap();
        let ids: Vec<String> = page.jobs.into_iter().map(|j| j.id).collect();
        assert_eq!((ids, page.total), (newest_first(4, 6), 4));
    }

    /// A store with one job, its index as an older version left it: an
    /// entry in `old_bucket`, and the meta key `built` that version wrote.
    /// Opened again, as a start finds it.
    fn opened_with_an_older_index(old_bucket: &[&str], built: &[u8]) -> (TempDir, Store) {
        let (dir, store) = temp_store();
        store.insert_job(&job("job_1", JobStatus::Created)).unwrap();
        let old_key = entry_key(&bucket(old_bucket), 1000, "job_1");
        store.job_index.insert(old_key, &[]).unwrap();
        store.meta.remove(BUILT).unwrap();
        store.meta.insert(built, &[]).unwrap();
        assert!(store.checkpoint().unwrap());
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        (dir, store)
    }

    /// The kinds of entries the index holds (the bucket's first part).
    fn entry_kinds(store: &Store) -> BTreeSet<Vec<u8>> {
        (store.job_index.iter().keys())
            .map(|key| key.unwrap()[..2].to_vec())
            .collect()
    }

    #[test]
    fn a_build_of_the_index_keeps_the_states_its_type_entries_held() {
        let (dir, store) = temp_store();
        store.insert_job(&job("job_1", JobStatus::Created)).unwrap();
        let archive = |state: &mut JobState| state.status = JobStatus::Archived;
        store.update_job("job_1", 2000, archive).unwrap();
        assert_eq!(store.job_states.len(), 0, "in its type entry");
        store.meta.remove(BUILT).unwrap();
        assert!(store.checkpoint().unwrap());

        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let rebuilt = store.job("job_1").unwrap().unwrap();
        assert_eq!(rebuilt.status, JobStatus::Archived);
        assert_eq!(
            listed(&store, Some("archived")),
            (vec!["job_1".to_string()], 1)
        );
    }

    #[test]
    fn an_index_with_application_entries_is_built_again_without_them_on_start() {
        // As the version that had application buckets left it.
        let (_dir, store) = opened_with_an_older_index(&["a", "app_a"], BUILT_BEFORE[1]);
        assert_eq!(entry_kinds(&store), BTreeSet::from([b"te".to_vec()]));
        assert_eq!(listed(&store, None), (vec!["job_1".to_string()], 1));
    }

    #[test]
    fn an_index_with_status_entries_is_built_again_without_them_on_start() {
        // As the version that keyed statuses left it.
        let status_bucket = ["s", "app_a", "created"];
        let (_dir, store) = opened_with_an_older_index(&status_bucket, BUILT_BEFORE[0]);
        assert_eq!(entry_kinds(&store), BTreeSet::from([b"te".to_vec()]));
        assert!(store.meta.get(BUILT_BEFORE[0]).unwrap().is_none());
        assert_eq!(
            listed(&store, Some("created")),
            (vec!["job_1".to_string()], 1)
        );
    }

    #[test]
    fn an_index_giving_a_job_to_one_endpoint_two_entries_is_built_again_with_one() {
        // As the version without `te` buckets left it (its `t` entry here,
        // its `e` entry added by the open's rebuild is what it had too).
        let type_bucket = ["t", "app_a", "order.paid"];
        let (_dir, store) = opened_with_an_older_index(&type_bucket, BUILT_BEFORE[2]);
        assert_eq!(entry_kinds(&store), BTreeSet::from([b"te".to_vec()]));
        assert_eq!(store.job_index.len(), 1);
        assert!(store.meta.get(BUILT_BEFORE[2]).unwrap().is_none());
        assert_eq!(listed(&store, None), (vec!["job_1".to_string()], 1));
    }

    /// app_a's jobs: to one endpoint, to two, to none, of two types.
    fn jobs_to_one_endpoint_and_to_others(store: &Store) {
        let jobs = [
            ("order.paid", &["end_a"][..]),
            ("order.paid", &["end_a", "end_b"][..]),
            ("order.created", &["end_b"][..]),
            ("order.paid", &[][..]),
            ("order.created", &["end_a"][..]),
        ];
        for (n, (kind, endpoints)) in jobs.into_iter().enumerate() {
            let mut made = job(&format!("job_{n}"), JobStatus::Created);
            made.event_type = kind.into();
            made.endpoint_ids = endpoints.iter().map(|e| e.to_string()).collect();
            made.created_at = 1000 + n as u64;
            store.insert_job(&made).unwrap();
        }
    }

    /// The ids of app_a's jobs of a type, an endpoint or both, and their total.
    fn listed_by(
        store: &Store,
        kind: Option<&str>,
        endpoint: Option<&str>,
    ) -> (Vec<String>, usize) {
        let selection = JobSelection {
            event_type: kind,
            endpoint_id: endpoint,
            ..JobSelection::of_application("app_a")
        };
        let page = store.job_page(&selection, |_| true, true, 0, 10).unwrap();
        (page.jobs.into_iter().map(|j| j.id).collect(), page.total)
    }

    #[test]
    fn a_list_counts_jobs_by_the_states_their_type_entries_hold_whichever_entry_it_walks() {
        let (_dir, store) = temp_store();
        jobs_to_one_endpoint_and_to_others(&store);
        let archive = |state: &mut JobState| state.status = JobStatus::Archived;
        for n in 0..5 {
            store
                .update_job(&format!("job_{n}"), 2000, archive)
                .unwrap();
        }
        // Counted past the page, job by job (a time range has no count):
        // job_1 through its endpoint entry, the others their type entries.
        let selection = JobSelection {
            status: Some("archived"),
            endpoint_id: Some("end_a"),
            created_after: Some(999),
            ..JobSelection::of_application("app_a")
        };
        let page = store.job_page(&selection, |_| true, true, 0, 0).unwrap();
        assert_eq!(page.total, 3);
    }

    fn ids(numbers: &[usize]) -> Vec<String> {
        numbers.iter().map(|n| format!("job_{n}")).collect()
    }

    #[test]
    fn a_job_to_one_endpoint_has_one_entry_that_lists_of_its_type_and_its_endpoint_walk() {
        let (dir, store) = temp_store();
        jobs_to_one_endpoint_and_to_others(&store);
        // 1 + (1 + 2) + 1 + 1 + 1.
        assert_eq!(store.job_index.len(), 7);
        let lists = |store: &Store| {
            assert_eq!(listed_by(store, None, None), (ids(&[4, 3, 2, 1, 0]), 5));
            assert_eq!(
                listed_by(store, Some("order.paid"), None),
                (ids(&[3, 1, 0]), 3)
            );
            assert_eq!(
                listed_by(store, Some("order.created"), None),
                (ids(&[4, 2]), 2)
            );
            assert_eq!(listed_by(store, None, Some("end_a")), (ids(&[4, 1, 0]), 3));
            assert_eq!(listed_by(store, None, Some("end_b")), (ids(&[2, 1]), 2));
            assert_eq!(
                listed_by(store, Some("order.paid"), Some("end_a")),
                (ids(&[1, 0]), 2)
            );
            assert_eq!(
                listed_by(store, Some("order.created"), Some("end_b")),
                (ids(&[2]), 1)
            );
            assert_eq!(
                listed_by(store, Some("order.paid"), Some("end_c")),
                (ids(&[]), 0)
            );
        };
        lists(&store);
        // Counted again from the entries' keys, as after a crash.
        let (_dir, store) = crate::store::reopen(dir, store);
        lists(&store);
        assert_eq!(listed(&store, Some("created")), (ids(&[4, 3, 2, 1, 0]), 5));
    }

    #[test]
    fn a_removed_job_to_one_endpoint_leaves_the_lists_and_counts_of_its_type_and_endpoint() {
        let (_dir, store) = temp_store();
        jobs_to_one_endpoint_and_to_others(&store);
        let removed = store.job("job_0").unwrap().unwrap();
        store.remove_job(&removed).unwrap();
        assert_eq!(store.job_index.len(), 6);
        assert_eq!(
            listed_by(&store, Some("order.paid"), None),
            (ids(&[3, 1]), 2)
        );
        assert_eq!(listed_by(&store, None, Some("end_a")), (ids(&[4, 1]), 2));
        assert_eq!(listed_by(&store, None, None), (ids(&[4, 3, 2, 1]), 4));
        assert_eq!(listed(&store, Some("created")).1, 4);
    }

    #[test]
    fn a_new_jobs_deliveries_are_stored_as_the_api_made_them() {
        let (_dir, store) = temp_store();
        save_endpoint_a(&store);
        let job = job("job_1", JobStatus::Created);
        let mut made = crate::outbound::new_deliveries(&job);
        // Unlike any time a delivery made again now would have.
        made[0].created_at = 7;
        let committed = crate::store::CommittedJob {
            job: job.into(),
            deliveries: Some(made.clone()),
            record: None,
            held: None,
            location: (0, 0, 0).into(),
            indexed: false,
        };
        let woken = crate::outbound::fan_out_journaled(&store, &committed, false).unwrap();
        assert_eq!(woken, ["end_a"]);
        let stored = store.deliveries_of("job_1").unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!((&stored[0].id, stored[0].created_at), (&made[0].id, 7));
    }
}

//! Retention: how long the store keeps what it has done.
//!
//! A sweep forgets every request older than the cutoff together with
//! everything it led to (events, their attempts and payloads, ignored
//! events), but only once all of it is done: one event still queued,
//! scheduled, held or retrying keeps its request and every sibling, and an
//! unrouted request is kept too. Webhook jobs go the same way with their
//! deliveries, and events replayed from bookmarks on their own. Old
//! transformation runs and deduplication sightings go as well (`Cutoffs`
//! says how old for each). Last, journal segments holding no kept request
//! or job (a job's record reads its payload there) are deleted, oldest
//! first: that is what gives the disk back (sled reuses the space of what
//! it forgot).
//!
//! In PostgreSQL the records of requests and events live in one partition
//! per day (`keyspace::partitions`), and whole days go first: every day that
//! ends before both cutoffs and before the oldest record still needed (a
//! request or job not routed yet, an event queued, scheduled or held: one
//! of them keeps its day and every later one, as a journal segment does) is
//! dropped at once. What is left older than the cutoffs (the day the cutoff
//! falls in, and days kept) goes record by record as in sled, so a list
//! never shows what sled would have forgotten. Jobs stay records (their list
//! index counts them); their deliveries go with their days.
//!
//! Nothing a user still needs goes: bookmarks carry their own copy of the data,
//! and issues name events by id (an issue about a forgotten event stays).

use super::journals::RequestJournal;
use super::{get, stripe_of, Result, Store, StoreError};
use crate::ids::created_ms;
use crate::model::Event;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::MutexGuard;

/// What one sweep forgot.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    pub requests: u64,
    pub rejections: u64,
    pub jobs: u64,
    pub events: u64,
    pub ignored_events: u64,
    pub executions: u64,
    pub fingerprints: u64,
    pub journal_segments: u64,
    /// Whole days of records dropped at once (PostgreSQL's partitions; the
    /// records in them are not counted above).
    pub partitions: u64,
}

/// Where a sweep draws its lines (ms since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    /// Requests and transformation runs from before this go (once done).
    pub records_ms: u64,
    /// Webhook jobs from before this go (once done): no earlier than their
    /// idempotency key may be reused.
    pub jobs_ms: u64,
    /// Deduplication sightings from before this go: no window reaches them.
    pub sightings_ms: u64,
    /// Rejected requests from before this go; never earlier than `records_ms`
    /// (the requests sweep would otherwise forget a rejection behind the
    /// ledger's back).
    pub rejections_ms: u64,
}

impl Cutoffs {
    /// Everything from before `ms`.
    pub fn all_before(ms: u64) -> Cutoffs {
        Cutoffs {
            records_ms: ms,
            jobs_ms: ms,
            sightings_ms: ms,
            rejections_ms: ms,
        }
    }
}

impl Store {
    /// Forgets what is done and older than its cutoff (see the module).
    /// `stop` ends the sweep early (between records); the next one goes on.
    pub fn sweep(&self, cutoffs: Cutoffs, stop: &AtomicBool) -> Result<Swept> {
        // It is the only holder of several change stripes at once.
        let _alone = self.sweeping.lock().unwrap_or_else(|e| e.into_inner());
        let mut swept = Swept::default();
        let bound = |prefix: &str, ms: u64| format!("{prefix}_{:016x}", ms << 16);
        // Each pass looks at `stop` before every record.
        let rejections_ms = cutoffs.rejections_ms.max(cutoffs.records_ms);
        swept.rejections += self.sweep_rejections(rejections_ms, stop)?;
        if !stop.load(Ordering::Relaxed) {
            // Before the records: what a day held is not deleted one by one.
            // Rejections are younger than `records_ms` by now.
            let before_ms = cutoffs.records_ms.min(cutoffs.jobs_ms);
            swept.partitions += self
                .db
                .drop_days_before(before_ms, || self.oldest_kept_ms())?;
        }
        self.sweep_requests(&bound("req", cutoffs.records_ms), stop, &mut swept)?;
        self.sweep_jobs(&bound("job", cutoffs.jobs_ms), stop, &mut swept)?;
        self.sweep_orphan_events(&bound("evt", cutoffs.records_ms), stop, &mut swept)?;
        self.sweep_executions(cutoffs.records_ms, stop, &mut swept)?;
        self.sweep_fingerprints(cutoffs.sightings_ms, stop, &mut swept)?;
        // Past both cutoffs a record kept is late, whether request or job.
        let late_ms = cutoffs.records_ms.min(cutoffs.jobs_ms);
        self.sweep_journal(late_ms, stop, &mut swept)?;
        super::announce(&self.sweep_feed, || swept.clone());
        Ok(swept)
    }

    /// What each sweep forgot, as it ends (for tests, and later live views).
    pub fn subscribe_sweeps(&self) -> tokio::sync::broadcast::Receiver<Swept> {
        self.sweep_feed.subscribe()
    }

    fn sweep_requests(&self, bound: &str, stop: &AtomicBool, swept: &mut Swept) -> Result<()> {
        for id in ids_before(&self.requests, bound, stop) {
            let id = id?;
            let forgotten = self.forget_if_done(&id, || {
                // Still being routed, or routing failed: kept for the next start.
                if !self.requests.contains_key(id.as_bytes())? || self.is_unrouted(&id)? {
                    return Ok(None);
                }
                Ok(Some(|| {
                    swept.ignored_events += self.forget_ignored_events(&id)?;
                    self.requests.remove(id.as_bytes())?;
                    self.request_payloads.remove(id.as_bytes())?;
                    Ok(())
                }))
            })?;
            if let Some(events) = forgotten {
                swept.events += events;
                swept.requests += 1;
            }
        }
        Ok(())
    }

    fn sweep_jobs(&self, bound: &str, stop: &AtomicBool, swept: &mut Swept) -> Result<()> {
        for id in ids_before(&self.jobs, bound, stop) {
            let id = &id?;
            let forgotten = self.forget_if_done(id, || {
                let Some(job) = self.stored_job(id)? else {
                    return Ok(None);
                };
                // Not fanned out yet: its deliveries are still to be made.
                if self.unrouted_jobs.contains_key(id.as_bytes())? {
                    return Ok(None);
                }
                Ok(Some(move || {
                    let key = super::outbound::job_key(&job.application_id, &job.event_id);
                    // The idempotency key, unless a newer job holds it by now.
                    let _ =
                        self.job_keys
                            .compare_and_swap(key, Some(id.as_bytes()), None::<&[u8]>)?;
                    self.remove_job(&job)
                }))
            })?;
            if let Some(deliveries) = forgotten {
                swept.events += deliveries;
                swept.jobs += 1;
            }
        }
        Ok(())
    }

    /// Events made with ids of their own (a bookmark replayed) are not found
    /// through their request: once done and old, they go on their own when
    /// the request they name is gone.
    fn sweep_orphan_events(&self, bound: &str, stop: &AtomicBool, swept: &mut Swept) -> Result<()> {
        for id in ids_before(&self.events, bound, stop) {
            let id = id?;
            let _held = self.hold_stripes([stripe_of(&id)].into_iter());
            let Some(event) = get::<Event>(&self.events, &id)? else {
                continue;
            };
            let parent = event.request_id.as_bytes();
            let orphan = !self.requests.contains_key(parent)?
                && !self.jobs.contains_key(parent)?
                && !self.is_unrouted(&event.request_id)?;
            if orphan && event.status.is_terminal() {
                self.forget_event(&event)?;
                swept.events += 1;
            }
        }
        Ok(())
    }

    /// Forgets a request (or a webhook job) with every event it led to, if
    /// `check` (run once nothing can change them) says it may go and all of
    /// its events are done; `check` returns how to forget the parent itself.
    /// Returns how many events went, or None when it is kept.
    ///
    /// The parent is held throughout (`holding`, as routing a request again
    /// takes it) and so is its change stripe (as `update_job` takes it), so
    /// nothing adds to or brings back what is being forgotten. The events'
    /// stripes are held too, so an event retried by hand is either seen as
    /// retried (and kept) or not found by the retry.
    fn forget_if_done<F: FnOnce() -> Result<()>>(
        &self,
        parent_id: &str,
        check: impl FnOnce() -> Result<Option<F>>,
    ) -> Result<Option<u64>> {
        self.holding(parent_id, || {
            let Some(forget_parent) = check()? else {
                return Ok(None);
            };
            let events = self.events_of_request(parent_id)?;
            // Only this sweep holds more than one change stripe: any order is safe.
            let ids = events.iter().map(|e| e.id.as_str());
            let _changes = self.hold_stripes(ids.chain([parent_id]).map(stripe_of));
            let mut done = Vec::with_capacity(events.len());
            for event in &events {
                match get::<Event>(&self.events, &event.id)? {
                    Some(event) if !event.status.is_terminal() => return Ok(None),
                    Some(event) => done.push(event),
                    None => {}
                }
            }
            for event in &done {
                self.forget_event(event)?;
            }
            forget_parent()?;
            Ok(Some(done.len() as u64))
        })
    }

    /// The time of the oldest record a sweep keeps whatever its age, from
    /// its id: a request or job not routed yet, or an event still to deliver
    /// (every queued or scheduled event has a queue key, every held one a
    /// `held` key, both ending in its id). None when there is none.
    fn oldest_kept_ms(&self) -> Result<Option<u64>> {
        let mut oldest: Option<u64> = None;
        let mut keep = |id: &[u8]| {
            if let Some(ms) = created_ms(&String::from_utf8_lossy(id)) {
                oldest = Some(oldest.map_or(ms, |oldest: u64| oldest.min(ms)));
            }
        };
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.keys().for_each(|id| keep(id.as_bytes()));
        drop(pending);
        let pending_jobs = self.pending_jobs.lock().unwrap_or_else(|e| e.into_inner());
        pending_jobs.keys().for_each(|id| keep(id.as_bytes()));
        drop(pending_jobs);
        for key in self
            .unrouted
            .iter()
            .keys()
            .chain(self.unrouted_jobs.iter().keys())
        {
            keep(&key?);
        }
        for key in self.queue.iter().keys().chain(self.held.iter().keys()) {
            let key = key?;
            keep(&key[key.len().saturating_sub(crate::ids::ID_LEN)..]);
        }
        Ok(oldest)
    }

    /// Each of `stripes` once, in ascending order.
    fn hold_stripes(&self, stripes: impl Iterator<Item = usize>) -> Vec<MutexGuard<'_, ()>> {
        let mut stripes: Vec<usize> = stripes.collect();
        stripes.sort_unstable();
        stripes.dedup();
        stripes
            .into_iter()
            .map(|stripe| {
                self.event_updates[stripe]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
            })
            .collect()
    }

    fn forget_event(&self, event: &Event) -> Result<()> {
        let id = event.id.as_bytes();
        for key in self.event_attempts.scan_prefix(id).keys() {
            let key = key?;
            self.attempts.remove(&key[id.len()..])?;
            self.event_attempts.remove(key)?;
        }
        self.event_payloads.remove(id)?;
        // An event cancelled while held may have left its entry.
        self.held
            .remove(super::hold::held_key(&event.connection_id, &event.id))?;
        self.events.remove(id)?;
        Ok(())
    }

    /// Runs of transformations; keys are `transformation id ++ execution id`.
    fn sweep_executions(&self, cutoff_ms: u64, stop: &AtomicBool, swept: &mut Swept) -> Result<()> {
        for key in self.executions.iter().keys() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let key = key?;
            let execution_id = String::from_utf8_lossy(&key[crate::ids::ID_LEN..]).into_owned();
            if created_ms(&execution_id).is_some_and(|ms| ms < cutoff_ms) {
                self.executions.remove(&key)?;
                swept.executions += 1;
            }
        }
        Ok(())
    }

    /// Sightings of fingerprints (deduplicate rules) first seen before the
    /// cutoff, unless a router claimed them again meanwhile.
    fn sweep_fingerprints(
        &self,
        cutoff_ms: u64,
        stop: &AtomicBool,
        swept: &mut Swept,
    ) -> Result<()> {
        for entry in self.fingerprints.iter() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let (key, sighting) = entry?;
            let (seen_ms, _) = super::sighting_of(&sighting);
            if seen_ms < cutoff_ms {
                let removed =
                    self.fingerprints
                        .compare_and_swap(&key, Some(&sighting), None::<&[u8]>)?;
                swept.fingerprints += u64::from(removed.is_ok());
            }
        }
        Ok(())
    }

    /// Deletes journal segments, oldest first, up to the first that still
    /// holds a request or job the store keeps (or the one being written). In a
    /// cluster the leader sweeps for every node: a day (a partition of every
    /// node's records) goes once none of them keeps it, so a silent node's
    /// tail past its watermark stays for the leader to route.
    fn sweep_journal(&self, cutoff_ms: u64, stop: &AtomicBool, swept: &mut Swept) -> Result<()> {
        let mut keep_from = u32::MAX;
        for journal in self.journal.every_node()? {
            keep_from = keep_from.min(self.first_kept_segment(&journal, cutoff_ms, stop)?);
        }
        if keep_from != u32::MAX {
            swept.journal_segments += self.journal.remove_before(keep_from)?;
        }
        Ok(())
    }

    /// The first segment of `journal` to keep: the first holding a request
    /// or job the store keeps, or one that may hold a record past its router's
    /// watermark (not indexed yet, or a silent node's tail that the leader
    /// is still to route), or the one being written.
    fn first_kept_segment(
        &self,
        journal: &RequestJournal,
        cutoff_ms: u64,
        stop: &AtomicBool,
    ) -> Result<u32> {
        let segments = journal.segment_range()?;
        let Some(routed_through) = self.routed_through_of(journal.node())? else {
            return Ok(segments.start);
        };
        // What this sweep forgot reaches the disk first: a crash must not
        // bring back records that point into deleted segments (nor a
        // watermark older than the one read above).
        self.db.flush()?;
        let routed = journal.unrouted_from(routed_through)?;
        for segment in segments.start..routed {
            if stop.load(Ordering::Relaxed) {
                return Ok(segment);
            }
            if let Some(id) = self.kept_record_in(journal, segment)? {
                if created_ms(&id).is_some_and(|ms| ms < cutoff_ms) {
                    // Every later segment waits for it: say which request or job.
                    tracing::warn!(segment, request = %id, "a request or webhook job older than the retention period is not done (an event still to deliver): the journal keeps this segment and every later one until it is");
                }
                return Ok(segment);
            }
        }
        Ok(routed.max(segments.start))
    }

    /// The first request or webhook job in `segment` the store still keeps,
    /// if any (a job's record points there for its payload, `job_record`).
    fn kept_record_in(&self, journal: &RequestJournal, segment: u32) -> Result<Option<String>> {
        let scan = journal.each_in(segment, |_, record| {
            let id = super::request_record::record_id(&record).map_err(StoreError::from)?;
            let key = id.as_bytes();
            match self.requests.contains_key(key)?
                || self.jobs.contains_key(key)?
                || self.is_unrouted(&id)?
            {
                true => Err(Scan::Kept(id)),
                false => Ok(()),
            }
        });
        match scan {
            Ok(()) => Ok(None),
            Err(Scan::Kept(id)) => Ok(Some(id)),
            Err(Scan::Failed(error)) => Err(error),
        }
    }
}

/// The ids `tree` is keyed by, up to `bound`, until `stop` is set.
fn ids_before<'a>(
    tree: &super::keyspace::Tree,
    bound: &str,
    stop: &'a AtomicBool,
) -> impl Iterator<Item = Result<String>> + 'a {
    tree.range(..bound.as_bytes())
        .keys()
        .take_while(|_| !stop.load(Ordering::Relaxed))
        .map(|key| Ok(String::from_utf8_lossy(&key?).into_owned()))
}

/// How a scan of a journal segment ends early: at the first request kept
/// (most segments, most sweeps: one record read), or on an error.
enum Scan {
    Kept(String),
    Failed(StoreError),
}

impl<E: Into<StoreError>> From<E> for Scan {
    fn from(error: E) -> Scan {
        Scan::Failed(error.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{derived_id, new_id, now_ms};
    use crate::model::{
        Attempt, AttemptEntry, EventStatus, Execution, IgnoredEvent, Payload, Request,
        RequestStatus, Route, WebhookJob,
    };
    use crate::pipeline::dedup::Sighting;
    use crate::store::keyspace::{Keyspace, RemoteKeyspace};
    use crate::store::{temp_store_on, Cursor, Direction, PageRequest, StampWindow, TestBackend};
    use crate::store::{EncodedRequest, Location, Mark, Order, OrderedRequest, Paging, QueueMove};

    const ROUTE: Route<'static> = Route {
        source_id: "src_shop",
        connection_id: "web_a",
        destination_id: "des_a",
    };

    fn store_with_segments(dir: &tempfile::TempDir, segment_bytes: u64) -> Store {
        Store::open_with(dir.path(), 1 << 20, segment_bytes).unwrap()
    }

    /// A request as the ingress, indexer and router leave it: journaled,
    /// indexed, routed (with the router's watermark past it).
    fn routed_request(store: &Store) -> (String, Location) {
        routed_request_with(store, new_id("req"))
    }

    fn routed_request_with(store: &Store, id: String) -> (String, Location) {
        let (id, location) = journaled_request_with(store, id);
        store
            .index_request(&store.request(&id).unwrap().unwrap(), location, None)
            .unwrap();
        store.mark_routed(&id).unwrap();
        store.set_routed_through(location).unwrap();
        (id, location)
    }

    fn journaled_request(store: &Store) -> (String, Location) {
        journaled_request_with(store, new_id("req"))
    }

    /// A new id (of a new id's random part) whose stamp is the time `ms`.
    fn id_at(prefix: &str, ms: u64) -> String {
        format!("{prefix}_{:016x}{}", ms << 16, &new_id(prefix)[20..])
    }

    fn journaled_request_with(store: &Store, id: String) -> (String, Location) {
        let payload = Payload {
            method: "POST".into(),
            path: String::new(),
            query: String::new(),
            headers: Vec::new(),
            body: br#"{"n":1}"#.to_vec(),
        };
        let request = Request {
            status: RequestStatus::Accepted,
            ..Request::received(Some("src_shop"), "shop", &payload)
        };
        let request = Request {
            id: id.clone(),
            ..request
        };
        let encoded = EncodedRequest::new(&request, &payload).unwrap();
        let location = store.journal_requests(&[&encoded]).unwrap()[0];
        (id, location)
    }

    /// An event of the request on connection `connection`, in `status`.
    fn event(store: &Store, request_id: &str, connection: &str, status: EventStatus) -> Event {
        let route = Route {
            connection_id: connection,
            ..ROUTE
        };
        let id = derived_id("evt", request_id, connection);
        // One time for both: the queue key is found again by the event's due time.
        let now = now_ms();
        let mut event = Event::new(id, request_id, route, now, false);
        if status.is_terminal() {
            event.status = status;
            event.next_attempt_at = None;
            store.save_event(&event).unwrap();
        } else {
            store.insert_event(&event, None, now).unwrap();
        }
        event
    }

    /// An attempt too large for the event's record: it goes to the attempts tree.
    fn attempt_of_its_own(store: &Store, event: &Event) -> String {
        let attempt = Attempt {
            response_body: Some("x".repeat(8 * 1024)),
            ..crate::store::attempts::tests::successful_attempt(&event.id)
        };
        let settled = store.settle_attempt(
            attempt,
            |_, attempt| (QueueMove::Stay, attempt.id.clone()),
            |_, _| {},
        );
        settled.unwrap().unwrap().1
    }

    fn sweep_everything(store: &Store) -> Swept {
        let cutoffs = Cutoffs::all_before(now_ms() + 1);
        store.sweep(cutoffs, &AtomicBool::new(false)).unwrap()
    }

    #[test]
    fn a_request_goes_with_everything_it_led_to_once_all_of_it_is_done() {
        let (_dir, store) = crate::store::temp_store();
        let (done, _) = routed_request(&store);
        let delivered = event(&store, &done, "web_a", EventStatus::Successful);
        let attempt = attempt_of_its_own(&store, &delivered);
        event(&store, &done, "web_b", EventStatus::Failed);
        let ignored = IgnoredEvent {
            id: derived_id("evt", &done, "web_c"),
            request_id: done.clone(),
            connection_id: "web_c".into(),
            cause: "FILTERED".into(),
            created_at: now_ms(),
            detail: None,
            transformation_id: None,
            transform_logs: Vec::new(),
            failed_part: None,
        };
        store.insert_ignored_event(&ignored).unwrap();
        let (half_done, _) = routed_request(&store);
        let sibling = event(&store, &half_done, "web_a", EventStatus::Successful);
        event(&store, &half_done, "web_b", EventStatus::Queued);
        let (unrouted, _) = journaled_request(&store);

        let swept = sweep_everything(&store);

        assert_eq!(
            (swept.requests, swept.events, swept.ignored_events),
            (1, 2, 1)
        );
        assert_eq!(store.request(&done).unwrap(), None);
        assert!(store.events_of_request(&done).unwrap().is_empty());
        assert_eq!(store.attempt(&attempt).unwrap(), None);
        assert_eq!(store.ignored_event(&ignored.id).unwrap(), None);
        // One event still to deliver keeps its request and its done sibling.
        assert!(store.request(&half_done).unwrap().is_some());
        assert_eq!(store.events_of_request(&half_done).unwrap().len(), 2);
        assert!(store.event(&sibling.id).unwrap().is_some());
        assert!(store.request_payload(&half_done).unwrap().is_some());
        assert!(store.request(&unrouted).unwrap().is_some());
    }

    #[test]
    fn a_replayed_bookmark_goes_once_done_and_its_request_is_gone() {
        let (_dir, store) = crate::store::temp_store();
        let (id, _) = routed_request(&store);
        event(&store, &id, "web_a", EventStatus::Successful);
        // Replays get ids of their own (and the bookmark's copy of the data).
        let replay = |status| {
            let mut event = Event::new(new_id("evt"), &id, ROUTE, now_ms(), true);
            event.status = status;
            store.save_event(&event).unwrap();
            event.id
        };
        let (delivered, queued) = (replay(EventStatus::Successful), replay(EventStatus::Queued));

        let swept = sweep_everything(&store);

        assert_eq!((swept.requests, swept.events), (1, 2));
        assert_eq!(store.event(&delivered).unwrap(), None);
        assert!(store.event(&queued).unwrap().is_some());
    }

    #[test]
    fn nothing_younger_than_the_cutoff_goes() {
        let (_dir, store) = crate::store::temp_store();
        let (id, _) = routed_request(&store);
        event(&store, &id, "web_a", EventStatus::Successful);
        let cutoffs = Cutoffs::all_before(created_ms(&id).unwrap());

        let swept = store.sweep(cutoffs, &AtomicBool::new(false)).unwrap();

        assert_eq!(swept, Swept::default());
        assert!(store.request(&id).unwrap().is_some());
    }

    #[test]
    fn old_transformation_runs_and_fingerprint_sightings_go() {
        let (_dir, store) = crate::store::temp_store();
        let execution = Execution {
            id: new_id("exe"),
            transformation_id: crate::ids::named_id("trs", "shape"),
            transformation_name: "shape".into(),
            connection_id: "web_a".into(),
            request_id: new_id("req"),
            event_id: new_id("evt"),
            logs: Vec::new(),
            error: None,
            created_at: now_ms(),
        };
        store.insert_execution(&execution).unwrap();
        let received = now_ms();
        assert!(store
            .claim_fingerprint(&Sighting {
                connection_id: "web_a",
                fingerprint: b"fp",
                request_id: "req_1",
                received_ms: received,
                window_ms: 60_000
            })
            .unwrap());

        let swept = sweep_everything(&store);

        assert_eq!((swept.executions, swept.fingerprints), (1, 1));
        assert!(store
            .execution(&execution.transformation_id, &execution.id)
            .unwrap()
            .is_none());
        // The sighting is gone: the same fingerprint counts as new again.
        assert!(store
            .claim_fingerprint(&Sighting {
                connection_id: "web_a",
                fingerprint: b"fp",
                request_id: "req_2",
                received_ms: received,
                window_ms: 60_000
            })
            .unwrap());
    }

    #[test]
    fn journal_segments_go_up_to_the_first_that_holds_a_kept_request() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_segments(&dir, 1);
        // Segments of one record each: requests 0-2 done, 3 still queued, 4 done.
        let requests: Vec<(String, Location)> = (0..5).map(|_| routed_request(&store)).collect();
        for (n, (id, _)) in requests.iter().enumerate() {
            let status = match n {
                3 => EventStatus::Queued,
                _ => EventStatus::Successful,
            };
            event(&store, id, "web_a", status);
        }
        let segment_of = |n: usize| requests[n].1.segment;

        let swept = sweep_everything(&store);

        assert_eq!(swept.requests, 4);
        assert_eq!(swept.journal_segments, 3);
        assert_eq!(store.journal.segment_range().unwrap().start, segment_of(3));
        let (kept, _) = &requests[3];
        assert!(store.request_payload(kept).unwrap().is_some());
        drop(store);
        let store = store_with_segments(&dir, 1);
        assert!(store.request_payload(kept).unwrap().is_some());
        assert_eq!(store.journal.segment_range().unwrap().start, segment_of(3));
    }

    /// A job fanned out to one delivery per status, holding its idempotency key.
    fn job_with_deliveries(store: &Store, statuses: &[EventStatus]) -> WebhookJob {
        let job = job_fanning_out(store, statuses);
        store.job_fanned_out(&job.id).unwrap();
        // Summed up: its state in a record of its own.
        store.update_job(&job.id, now_ms(), |_| {}).unwrap();
        job
    }

    /// A job with one delivery per status whose fan-out has not finished.
    fn job_fanning_out(store: &Store, statuses: &[EventStatus]) -> WebhookJob {
        let job = new_job(store);
        store.insert_job(&job).unwrap();
        deliveries(store, &job, statuses);
        job
    }

    /// A job as the API, commit thread, indexer and router leave it:
    /// journaled, stored, fanned out (with the router's watermark past it).
    fn routed_job(store: &Store, statuses: &[EventStatus]) -> (WebhookJob, Location) {
        let job = new_job(store);
        let location = store.journal_jobs(std::slice::from_ref(&job)).unwrap();
        let location = location.expect("one job journaled");
        deliveries(store, &job, statuses);
        store.set_routed_through(location).unwrap();
        (job, location)
    }

    fn deliveries(store: &Store, job: &WebhookJob, statuses: &[EventStatus]) {
        for (n, status) in statuses.iter().enumerate() {
            event(store, &job.id, &format!("ept_{n}"), *status);
        }
    }

    /// A new job, holding its idempotency key.
    fn new_job(store: &Store) -> WebhookJob {
        let id = new_id("job");
        let job = WebhookJob {
            id: id.clone(),
            application_id: "app_a".into(),
            event_type: "order.paid".into(),
            event_id: format!("key-{id}"),
            payload: (&serde_json::json!({"n": 1})).into(),
            headers: Default::default(),
            metadata: serde_json::Value::Null,
            endpoint_ids: Vec::new(),
            status: crate::model::JobStatus::Created,
            attempt_count: 0,
            max_retries: 3,
            created_at: now_ms(),
            updated_at: now_ms(),
            expires_at: now_ms() + 60_000,
            succeeded_at: None,
            discarded_at: None,
            cancelled: false,
            trace: None,
        };
        assert_eq!(
            store
                .claim_job_key("app_a", &job.event_id, &id, now_ms(), 60_000)
                .unwrap(),
            None
        );
        job
    }

    #[test]
    fn journal_segments_go_up_to_the_first_that_holds_a_kept_job() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_segments(&dir, 1);
        // Segments of one record each: jobs 0 and 2 done, 1 retrying; the
        // last segment (being written) holds a request.
        let done = [EventStatus::Successful];
        let (gone, _) = routed_job(&store, &done);
        let (kept, kept_at) = routed_job(&store, &[EventStatus::Queued]);
        routed_job(&store, &done);
        routed_request(&store);

        let swept = sweep_everything(&store);

        assert_eq!((swept.jobs, swept.journal_segments), (2, 1));
        assert_eq!(
            store.journal.segment_range().unwrap().start,
            kept_at.segment
        );
        assert_eq!(store.job(&gone.id).unwrap(), None);
        drop(store);
        let store = store_with_segments(&dir, 1);
        assert_eq!(store.job(&kept.id).unwrap().unwrap().payload, kept.payload);
        assert_eq!(
            store.journal.segment_range().unwrap().start,
            kept_at.segment
        );
    }

    #[test]
    fn a_webhook_job_goes_with_its_deliveries_once_all_are_done() {
        let (_dir, store) = crate::store::temp_store();
        let done = job_with_deliveries(&store, &[EventStatus::Successful, EventStatus::Failed]);
        let retrying = job_with_deliveries(&store, &[EventStatus::Successful, EventStatus::Queued]);
        let fanning_out = job_fanning_out(&store, &[EventStatus::Successful]);

        let swept = sweep_everything(&store);

        assert_eq!((swept.jobs, swept.events), (1, 2));
        assert!(store.job(&fanning_out.id).unwrap().is_some());
        assert_eq!(store.job(&done.id).unwrap(), None);
        assert_eq!(
            store.job_state((&done).into()).unwrap(),
            None,
            "its state went too"
        );
        assert!(store.deliveries_of(&done.id).unwrap().is_empty());
        assert!(store.job(&retrying.id).unwrap().is_some());
        assert_eq!(store.deliveries_of(&retrying.id).unwrap().len(), 2);
        // The forgotten job's idempotency key is free again; the kept one's is not.
        let later = now_ms();
        let claim = |job: &WebhookJob| {
            store
                .claim_job_key("app_a", &job.event_id, "job_new", later, 60_000)
                .unwrap()
        };
        assert_eq!(claim(&done), None);
        assert_eq!(claim(&retrying), Some(retrying.id.clone()));
    }

    /// In a cluster the leader's sweep drops the journal's old days, every
    /// node's records of them, as whole partitions, but only once every node
    /// is past them: a silent node's record past its watermark keeps its day
    /// and every later one until the leader has routed it.
    #[tokio::test(flavor = "multi_thread")]
    async fn the_leaders_sweep_drops_old_journal_days_once_every_node_is_past_them() {
        use crate::store::{keyspace::test_server, Backend};
        let settings = test_server::database();
        let backend = Backend::Postgres(Box::new(settings.clone()));
        let node = || crate::store::temp_node(&backend);
        let ((_a_dir, leader), (_b_dir, b), (_c_dir, silent)) = (node(), node(), node());
        let (_, three_days_ago) = routed_request(&b);
        let (_, two_days_ago) = routed_request(&b);
        let (_, today) = routed_request(&b);
        // The silent node routed its first request, not its second.
        let (_, routed) = routed_request(&silent);
        let (_, unrouted) = journaled_request(&silent);
        // Journaled days ago, as far as retention can tell.
        let client = test_server::client(&settings.config).await;
        let back = |(journal, location): (&Store, Location), days: u32| {
            let (node, seq) = (
                journal.node_id().unwrap().to_string(),
                location.offset as i64,
            );
            let day = (location.segment - days) as i32;
            let client = &client;
            async move {
                client
                    .execute("SELECT hookgate_day_partition('journal', $1)", &[&day])
                    .await
                    .unwrap();
                client
                    .execute(
                        "UPDATE journal SET day = $3 WHERE node = $1 AND seq = $2",
                        &[&node, &seq, &day],
                    )
                    .await
                    .unwrap();
                Location {
                    segment: day as u32,
                    ..location
                }
            }
        };
        back((&b, three_days_ago), 3).await;
        back((&b, two_days_ago), 2).await;
        back((&silent, routed), 3).await;
        let unrouted = back((&silent, unrouted), 3).await;
        let old_days = [3, 2].map(|days| journal_partition_of(days_ago(days)));
        let journal_partitions = || remote(&leader).journal_partitions().unwrap();
        assert!(old_days
            .iter()
            .all(|day| journal_partitions().contains(day)));

        let swept = sweep_everything(&leader);
        assert_eq!(
            swept.journal_segments, 0,
            "the silent node's tail keeps them"
        );
        assert!(old_days
            .iter()
            .all(|day| journal_partitions().contains(day)));
        assert!(silent.journal.read(unrouted).is_ok());

        // The leader routes the silent node's tail (and moves its watermark).
        let silent_id = silent.node_id().unwrap().to_string();
        let routed_tail = leader.each_unrouted_journaled_of(&silent_id, |_| Ok(()));
        assert_eq!(routed_tail.unwrap(), 1);
        let swept = sweep_everything(&leader);
        assert_eq!(swept.journal_segments, 2, "two days, of both nodes");
        assert!(old_days
            .iter()
            .all(|day| !journal_partitions().contains(day)));
        assert!(silent.journal.read(unrouted).is_err(), "dropped");
        assert!(
            b.journal.read(today).is_ok(),
            "today's is being written: kept"
        );
        assert!(journal_partitions().contains(&journal_partition_of(days_ago(0))));
    }

    #[test]
    fn no_segment_goes_at_or_past_the_routers_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_segments(&dir, 1);
        let requests: Vec<(String, Location)> = (0..3).map(|_| routed_request(&store)).collect();
        for (id, _) in &requests {
            event(&store, id, "web_a", EventStatus::Successful);
        }
        // The router is behind: only the first segment is routed through.
        store.set_routed_through(requests[0].1).unwrap();

        let swept = sweep_everything(&store);

        assert_eq!((swept.requests, swept.journal_segments), (3, 0));
        assert_eq!(
            store.journal.segment_range().unwrap().start,
            requests[0].1.segment
        );
    }

    #[test]
    fn a_stopped_sweep_forgets_nothing_more() {
        let (_dir, store) = crate::store::temp_store();
        let (id, _) = routed_request(&store);
        event(&store, &id, "web_a", EventStatus::Successful);

        let cutoffs = Cutoffs::all_before(now_ms() + 1);
        let swept = store.sweep(cutoffs, &AtomicBool::new(true)).unwrap();

        assert_eq!(swept, Swept::default());
        assert!(store.request(&id).unwrap().is_some());
    }

    const DAY_MS: u64 = 86_400_000;
    const HOUR_MS: u64 = 3_600_000;

    /// Midnight (UTC) `days` days before today.
    fn days_ago(days: u64) -> u64 {
        (now_ms() / DAY_MS - days) * DAY_MS
    }

    /// A routed request whose id carries the time `ms`, with one delivered event.
    fn done_request_at(store: &Store, ms: u64) -> (String, Event) {
        let (id, _) = routed_request_with(store, id_at("req", ms));
        let event = event(store, &id, "web_a", EventStatus::Successful);
        (id, event)
    }

    fn remote(store: &Store) -> &RemoteKeyspace {
        match &store.db {
            Keyspace::Remote(remote) => remote,
            Keyspace::Embedded(_) => panic!("a store in PostgreSQL"),
        }
    }

    /// The names of the day partitions pg_catalog lists (none in sled).
    fn time_partitions(store: &Store) -> Vec<String> {
        match &store.db {
            Keyspace::Remote(remote) => remote.time_partitions().unwrap(),
            Keyspace::Embedded(_) => Vec::new(),
        }
    }

    /// Those of days before today.
    fn old_partitions(store: &Store) -> Vec<String> {
        let today = partition_of(days_ago(0));
        let mut old = time_partitions(store);
        old.retain(|name| *name < today);
        old
    }

    /// The name of the partition of the day holding `ms`.
    fn partition_of(ms: u64) -> String {
        format!("keyspace_timed_{}", date_of(ms))
    }

    /// The name of the journal's partition of the day holding `ms`.
    fn journal_partition_of(ms: u64) -> String {
        format!("journal_{}", date_of(ms))
    }

    /// YYYYMMDD.
    fn date_of(ms: u64) -> String {
        crate::ids::iso8601(ms)[..10].replace('-', "")
    }

    fn every(limit: usize) -> PageRequest {
        PageRequest {
            order_by: "created_at".into(),
            dir: Direction::Asc,
            limit,
            cursor: Cursor::Start,
        }
    }

    /// The ids the lists of requests, events and attempts show.
    fn listed(store: &Store) -> (Vec<String>, Vec<String>, Vec<String>) {
        let all = &every(100);
        let requests = store.page_requests(Paging::ByKey(all), StampWindow::ALL, &|_| true);
        let events = store.page_events(Paging::ByKey(all), StampWindow::ALL, &|_| true);
        let by_time = Order::<AttemptEntry> {
            keys: vec![(|entry| entry.created_at().into(), Direction::Asc)],
            indexed: false,
        };
        let attempts = store.page_attempts(&OrderedRequest {
            order: &by_time,
            limit: 100,
            mark: Mark::Start,
        });
        let attempts = attempts.unwrap().items;
        (
            requests.unwrap().items.into_iter().map(|r| r.id).collect(),
            events.unwrap().items.into_iter().map(|e| e.id).collect(),
            attempts.iter().map(|a| a.id().to_string()).collect(),
        )
    }

    on_both_backends!(
        days_wholly_older_than_the_cutoff_go_and_the_rest_stays_listed,
        an_event_still_to_deliver_keeps_its_day_and_every_later_one,
    );

    fn days_wholly_older_than_the_cutoff_go_and_the_rest_stays_listed(backend: TestBackend) {
        let (_dir, store) = temp_store_on(backend);
        // Three days back, two done requests a day (early and late), and one now.
        let old: Vec<(String, Event)> = [3, 2, 1]
            .into_iter()
            .flat_map(|days| [days_ago(days) + HOUR_MS, days_ago(days) + 23 * HOUR_MS])
            .map(|ms| done_request_at(&store, ms))
            .collect();
        let (today, today_event) = done_request_at(&store, now_ms());
        // An attempt of its own made today (its own day), of the first day's event.
        let attempt = attempt_of_its_own(&store, &old[0].1);
        let before = old_partitions(&store);
        // The cutoff falls in the last old day: the two before are wholly older.
        let cutoff = days_ago(1) + 12 * HOUR_MS;

        let swept = store
            .sweep(Cutoffs::all_before(cutoff), &AtomicBool::new(false))
            .unwrap();

        let (late, late_event) = &old[5];
        let (requests, events, attempts) = listed(&store);
        assert_eq!(requests, [late.clone(), today.clone()]);
        assert_eq!(events, [late_event.id.clone(), today_event.id.clone()]);
        assert!(attempts.is_empty(), "{attempts:?}");
        assert_eq!(store.attempt(&attempt).unwrap(), None);
        for (id, _) in &old[..5] {
            assert_eq!(store.request(id).unwrap(), None);
            assert!(store.events_of_request(id).unwrap().is_empty());
        }
        if backend == TestBackend::Embedded {
            assert_eq!((swept.partitions, swept.requests, swept.events), (0, 5, 5));
            return;
        }
        // Two days went whole; of the third, the early request row by row.
        assert_eq!((swept.partitions, swept.requests, swept.events), (2, 1, 1));
        let days: Vec<String> = [3, 2, 1].map(|days| partition_of(days_ago(days))).into();
        assert_eq!(before, days);
        assert_eq!(old_partitions(&store), days[2..]);
        // The sweep made today's partition and the next two days' ahead.
        let ahead = [0, 1, 2].map(|days| partition_of(days_ago(0) + days * DAY_MS));
        assert!(ahead
            .iter()
            .all(|day| time_partitions(&store).contains(day)));
    }

    fn an_event_still_to_deliver_keeps_its_day_and_every_later_one(backend: TestBackend) {
        let (_dir, store) = temp_store_on(backend);
        let (waiting, _) = routed_request_with(&store, id_at("req", days_ago(3) + HOUR_MS));
        event(&store, &waiting, "web_a", EventStatus::Queued);
        let (done, _) = done_request_at(&store, days_ago(2) + HOUR_MS);
        let before = old_partitions(&store);

        let swept = store
            .sweep(Cutoffs::all_before(days_ago(0)), &AtomicBool::new(false))
            .unwrap();

        // No day went whole: the later request went row by row.
        assert_eq!((swept.partitions, swept.requests), (0, 1));
        assert_eq!(listed(&store).0, [waiting]);
        assert_eq!(store.request(&done).unwrap(), None);
        assert_eq!(old_partitions(&store), before);
    }

    /// Drops the days before today with `change` made in the race's window:
    /// once the sweep has looked at what it keeps (nothing), before the
    /// drop. Returns how many days went, and what the change answered.
    fn change_racing_the_drop<T: Send>(
        store: &Store,
        change: impl FnOnce() -> T + Send,
    ) -> (u64, T) {
        let remote = remote(store);
        std::thread::scope(|scope| {
            let mut changing = None;
            let dropped = remote.drop_partitions_before(days_ago(0), || {
                let kept = store.oldest_kept_ms();
                assert_eq!(kept.as_ref().ok(), Some(&None), "done: nothing kept");
                let change = scope.spawn(change);
                // Until the change is made, or waits for the day's lock.
                while !change.is_finished() && remote.advisory_lock_waits().unwrap() == 0 {
                    std::thread::yield_now();
                }
                changing = Some(change);
                kept
            });
            (dropped.unwrap(), changing.unwrap().join().unwrap())
        })
    }

    /// A retry by hand racing the drop of its event's day waits for the
    /// drop and finds no event (the API answers 404) instead of being
    /// queued into a day that goes.
    #[test]
    fn a_retry_by_hand_racing_the_drop_of_its_day_waits_and_finds_no_event() {
        let (_dir, store) = temp_store_on(TestBackend::Postgres);
        let (_, done) = done_request_at(&store, days_ago(3) + HOUR_MS);

        let (dropped, retried) =
            change_racing_the_drop(&store, || store.retry_by_hand(&done.id, now_ms()));

        assert_eq!(dropped, 1);
        assert_eq!(retried.unwrap(), None, "the retry came after the drop");
        assert_eq!(store.event(&done.id).unwrap(), None);
        assert_eq!(store.oldest_kept_ms().unwrap(), None, "nothing queued");
    }

    /// A request routed again by hand (held, as the API holds it) racing the
    /// drop of its day waits for the drop too and finds no request.
    #[test]
    fn a_request_routed_again_racing_the_drop_of_its_day_finds_no_request() {
        let (_dir, store) = temp_store_on(TestBackend::Postgres);
        let (request, _) = done_request_at(&store, days_ago(3) + HOUR_MS);

        let (dropped, found) = change_racing_the_drop(&store, || {
            store.holding(&request, || store.request(&request))
        });

        assert_eq!(dropped, 1);
        assert_eq!(found.unwrap(), None, "held after the drop");
    }

    /// Not a timing assert: prints what a sweep of three old days costs
    /// dropped whole, against the same records deleted row by row (made
    /// today, so that no day is wholly older than the cutoff).
    #[test]
    fn dropping_days_against_deleting_rows() {
        const PER_DAY: u64 = 100;
        let fill = |store: &Store, times: Vec<u64>| {
            for ms in times {
                let (id, _) = done_request_at(store, ms);
                event(store, &id, "web_b", EventStatus::Failed);
            }
        };
        let sweep = |store: &Store, cutoff_ms: u64| {
            let started = std::time::Instant::now();
            let swept = store.sweep(Cutoffs::all_before(cutoff_ms), &AtomicBool::new(false));
            (swept.unwrap(), started.elapsed())
        };
        let (_by_day_dir, by_day) = temp_store_on(TestBackend::Postgres);
        let spread = |days| (0..PER_DAY).map(move |n| days_ago(days) + n * 1000);
        fill(&by_day, [3, 2, 1].into_iter().flat_map(spread).collect());
        let (_by_row_dir, by_row) = temp_store_on(TestBackend::Postgres);
        let now = now_ms();
        fill(&by_row, (0..3 * PER_DAY).map(|n| now - n).collect());
        let rows = |store| remote(store).rows_before(u64::MAX).unwrap();
        let (by_day_rows, by_row_rows) = (rows(&by_day), rows(&by_row));

        let (dropped, dropping) = sweep(&by_day, days_ago(0));
        let (deleted, deleting) = sweep(&by_row, now + 1);

        assert_eq!((dropped.partitions, dropped.requests), (3, 0));
        assert_eq!((deleted.partitions, deleted.requests), (0, 3 * PER_DAY));
        assert_eq!((rows(&by_day), rows(&by_row)), (0, 0));
        println!(
            "{} requests, 2 events each: {by_day_rows} rows in 3 day partitions dropped in {dropping:?}; \
             {by_row_rows} rows deleted one by one ({} requests, {} events forgotten) in {deleting:?}",
            3 * PER_DAY,
            deleted.requests,
            deleted.events,
        );
    }
}

//! Requests: journaled before the answer (`journal_requests`, on the commit
//! thread), then indexed in sled (the indexer thread) and routed (the router).
//! Until the router is done, reads by id find a request through `pending`, so
//! an acknowledged request is readable at once; lists wait for the indexer
//! (`wait_indexed`).

use super::journal::Location;
use super::request_record::Record;
use super::{announce, get, get_payload, request_record, values, EncodedRequest, Result, Store};
use super::{Committed, CommittedJob, Journaled};
use crate::model::{Payload, Request, RequestStatus};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::Notify;

/// How far the indexer is behind the journal, for `wait_indexed`.
#[derive(Default)]
pub(super) struct IndexProgress {
    journaled: AtomicU64,
    indexed: AtomicU64,
    advanced: Notify,
}

/// How long `wait_indexed` waits at most.
const INDEX_WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long `wait_routed` waits at most (the router's queue holds a few
/// seconds of heavy load).
const ROUTE_WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The `meta` key of the router's watermark in the journal.
const ROUTED_THROUGH: &[u8] = b"routed_through";

impl Store {
    /// Appends a batch of requests to the journal and syncs it: once this
    /// returns, they are durable. Returns where each one lies, in order.
    pub(super) fn journal_requests(&self, batch: &[&EncodedRequest]) -> Result<Vec<Location>> {
        if let Some(reserve) = self.disk_reserve.get() {
            reserve.admits_requests()?;
        }
        let records: Vec<&[u8]> = batch.iter().map(|r| r.record.as_slice()).collect();
        let locations = self.journal.append(&records)?;
        let mut pending = self.pending.lock().expect("pending lock");
        for (request, location) in batch.iter().zip(&locations) {
            // A job is read through `pending_jobs` until its fan-out.
            if !request.job {
                pending.insert(request.id.clone(), *location);
            }
        }
        let journaled = locations.len() as u64;
        self.index_progress
            .journaled
            .fetch_add(journaled, Ordering::SeqCst);
        Ok(locations)
    }

    /// The indexer has dealt with `count` more journaled requests.
    pub(super) fn note_indexed(&self, count: usize) {
        let progress = &self.index_progress;
        progress.indexed.fetch_add(count as u64, Ordering::SeqCst);
        progress.advanced.notify_waiters();
    }

    /// Resolves once every request acknowledged before the call is indexed
    /// (indexing runs right after each group commit, apart from routing, so
    /// this is a matter of milliseconds unless the router is more than its
    /// queue, 65,536 requests, behind), or after
    /// `INDEX_WAIT_LIMIT` when the indexer is stuck or stopped: a list that
    /// misses the newest requests beats one that never answers.
    pub async fn wait_indexed(&self) {
        let progress = &self.index_progress;
        let target = progress.journaled.load(Ordering::SeqCst);
        let caught_up = async {
            loop {
                // Registered before the check, so a notification between the
                // two is not missed.
                let advanced = progress.advanced.notified();
                if progress.indexed.load(Ordering::SeqCst) >= target {
                    return;
                }
                advanced.await;
            }
        };
        if tokio::time::timeout(INDEX_WAIT_LIMIT, caught_up)
            .await
            .is_err()
        {
            tracing::warn!("the request index is behind; listing without the newest requests");
        }
    }

    /// Records a journaled request in sled, so that lists and filters see it.
    /// `payload` spares a read of the journal when it is at hand.
    pub fn index_request(
        &self,
        request: &Request,
        location: Location,
        payload: Option<&Payload>,
    ) -> Result<()> {
        if self.db.is_remote() {
            return self.index_request_for_every_node(request, location, payload);
        }
        self.requests.insert(
            request.id.as_bytes(),
            request_record::indexed(request, location)?,
        )?;
        Ok(())
    }

    /// In a cluster a journal location is its node's, and any node may
    /// deliver the request's events: its payload goes to the keyspace as
    /// well, kept as requests stored before the journal were (no journal
    /// location).
    fn index_request_for_every_node(
        &self,
        request: &Request,
        location: Location,
        payload: Option<&Payload>,
    ) -> Result<()> {
        let payload = match payload {
            Some(payload) => std::borrow::Cow::Borrowed(payload),
            None => std::borrow::Cow::Owned(self.journaled_payload(location)?),
        };
        let id = request.id.as_bytes();
        self.request_payloads
            .insert(id, super::payload_codec::encode(&payload))?;
        self.requests.insert(id, serde_json::to_vec(request)?)?;
        Ok(())
    }

    // Reads look at `pending` first: the indexer writes the sled record before
    // the router takes the request out of `pending`, so whatever is not pending
    // any more is in sled.

    pub fn request(&self, id: &str) -> Result<Option<Request>> {
        match self.pending_location(id) {
            Some(location) => Ok(Some(self.journaled_request(location)?)),
            None => get(&self.requests, id),
        }
    }

    pub fn request_payload(&self, id: &str) -> Result<Option<Payload>> {
        let location = match self.pending_location(id) {
            Some(location) => Some(location),
            None => match self.requests.get(id.as_bytes())? {
                Some(indexed) => request_record::journal_of(&indexed)?,
                None => None,
            },
        };
        match location {
            Some(location) => match self.journal.read(location) {
                Ok(record) if self.db.is_remote() => journaled_payload_of(&record, id),
                Ok(record) => Ok(Some(request_record::decode_payload(&record)?)),
                // Its segment was deleted since the lookup (retention).
                Err(_) if self.deleted_since(location) => Ok(None),
                Err(error) => Err(error),
            },
            // Stored before the journal (or unknown).
            None => get_payload(&self.request_payloads, id),
        }
    }

    /// Whether retention deleted the part of the journal holding `location`.
    pub(super) fn deleted_since(&self, location: Location) -> bool {
        (self.journal.segment_range()).is_ok_and(|kept| location.segment < kept.start)
    }

    /// The payload of the request the journal holds at `location`.
    pub fn journaled_payload(&self, location: Location) -> Result<Payload> {
        Ok(request_record::decode_payload(
            &self.journal.read(location)?,
        )?)
    }

    /// The request (or job) the journal holds at `location`.
    fn journaled(&self, location: Location) -> Result<Journaled> {
        to_journaled(location, &self.journal.read(location)?)
    }

    /// The request the journal holds at `location` (an error for a job).
    fn journaled_request(&self, location: Location) -> Result<Request> {
        match self.journaled(location)? {
            Journaled::Request(committed) => Ok(committed.request),
            Journaled::Job(_) => Err(super::StoreError::Unavailable(format!(
                "the journal holds a webhook job at {location:?}, not a request"
            ))),
        }
    }

    fn pending_location(&self, id: &str) -> Option<Location> {
        self.pending.lock().expect("pending lock").get(id).copied()
    }

    /// Requests acknowledged whose routing has not finished: those the
    /// router has yet to take, and those marked unrouted (`mark_unrouted`, or
    /// by stores older than the journal).
    pub fn unrouted_requests(&self) -> Result<Vec<String>> {
        let mut ids: Vec<String> = self
            .pending
            .lock()
            .expect("pending lock")
            .keys()
            .cloned()
            .collect();
        for key in self.unrouted.iter().keys() {
            ids.push(String::from_utf8_lossy(&key?).into_owned());
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// Called once every event of the request is stored (or, for a rejected
    /// request, once it is indexed).
    pub fn mark_routed(&self, request_id: &str) -> Result<()> {
        let was_pending = self
            .pending
            .lock()
            .expect("pending lock")
            .remove(request_id)
            .is_some();
        if !was_pending {
            // Routed on start (or again through the API): it may carry a marker.
            self.unrouted.remove(request_id.as_bytes())?;
        }
        announce(&self.routed_feed, || request_id.to_string());
        Ok(())
    }

    /// Readies a request the router set aside (it does not come back to it in
    /// this run) for routing by hand: indexes it, if even that failed, so
    /// that it stays readable once routed (then it leaves `pending`).
    pub fn take_over_set_aside(&self, request_id: &str) -> Result<()> {
        let Some(location) = self.pending_location(request_id) else {
            return Ok(());
        };
        if !self.requests.contains_key(request_id.as_bytes())? {
            let request = self.journaled_request(location)?;
            self.index_request(&request, location, None)?;
        }
        Ok(())
    }

    /// Routing by hand is done: the request no longer waits for the next
    /// start (the router's own routing clears the mark only of requests no
    /// longer pending, sparing every routed request a sled write).
    pub fn clear_unrouted_mark(&self, request_id: &str) -> Result<()> {
        self.unrouted.remove(request_id.as_bytes())?;
        Ok(())
    }

    /// Whether the router has yet to finish with a request it was handed. Such
    /// a request is the router's alone: it routes it without looking for
    /// events that exist (see `Routed::Never`), and only it may say it is
    /// routed (which promises the request is indexed by then). One it set
    /// aside (`mark_unrouted`) it is done with, though it stays readable
    /// through `pending`.
    pub fn awaits_router(&self, request_id: &str) -> Result<bool> {
        Ok(self.is_pending(request_id) && !self.unrouted.contains_key(request_id.as_bytes())?)
    }

    /// Resolves once the router is done with a request (at once when it is),
    /// or after `ROUTE_WAIT_LIMIT`; says whether it is done.
    pub async fn wait_routed(&self, request_id: &str) -> Result<bool> {
        // Subscribed before the check, so a routing in between is not missed.
        let mut routed = self.subscribe_routed();
        let done = async {
            while self.awaits_router_off_reactor(request_id).await? {
                if let Err(RecvError::Closed) = routed.recv().await {
                    break;
                }
            }
            Ok(())
        };
        match tokio::time::timeout(ROUTE_WAIT_LIMIT, done).await {
            Ok(Err(error)) => Err(error),
            _ => Ok(!self.awaits_router_off_reactor(request_id).await?),
        }
    }

    /// `awaits_router` for a caller on a reactor thread: on a remote keyspace
    /// the read of a pending request's mark is a round trip to the database,
    /// so it goes to the blocking pool (the embedded store reads it in place).
    async fn awaits_router_off_reactor(&self, request_id: &str) -> Result<bool> {
        if !self.db.is_remote() || !self.is_pending(request_id) {
            return self.awaits_router(request_id);
        }
        let (store, id) = (self.clone(), request_id.to_string());
        tokio::task::spawn_blocking(move || store.awaits_router(&id))
            .await
            .map_err(|error| {
                super::StoreError::Unavailable(format!("reading the router's mark: {error}"))
            })?
    }

    /// Whether an accepted request still waits for (or is in) routing.
    pub fn is_unrouted(&self, request_id: &str) -> Result<bool> {
        Ok(self.is_pending(request_id) || self.unrouted.contains_key(request_id.as_bytes())?)
    }

    /// Whether a request or webhook job is journaled and not yet routed.
    fn is_pending(&self, id: &str) -> bool {
        self.pending_location(id).is_some() || self.pending_job(id).is_some()
    }

    /// Ids of requests as their routing completes, and of rejections as they
    /// are recorded (for tests, and the console's live list).
    pub fn subscribe_routed(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.routed_feed.subscribe()
    }

    /// Every indexed request, oldest first.
    pub fn requests(&self) -> impl Iterator<Item = Result<Request>> {
        values(&self.requests)
    }

    /// Marks a journaled request that could not be indexed or routed, so that
    /// the next start routes it (while the router's watermark moves past it).
    /// The router is done with it for now: whoever waits for that hears of it.
    pub fn mark_unrouted(&self, request_id: &str, location: Location) -> Result<()> {
        self.unrouted
            .insert(request_id.as_bytes(), &location.encode())?;
        announce(&self.routed_feed, || request_id.to_string());
        Ok(())
    }

    /// Requests marked unrouted, with their journal record when they have one
    /// (stores older than the journal marked requests without).
    pub fn marked_unrouted(&self) -> Result<Vec<(String, Option<Journaled>)>> {
        let mut marked = Vec::new();
        for entry in self.unrouted.iter() {
            let (id, location) = entry?;
            let journaled = match Location::decode(&location) {
                Some(location) => Some(self.journaled(location)?),
                None => None,
            };
            marked.push((String::from_utf8_lossy(&id).into_owned(), journaled));
        }
        Ok(marked)
    }

    /// Records that every journaled request up to `location` is indexed and routed.
    pub fn set_routed_through(&self, location: Location) -> Result<()> {
        self.meta.insert(&self.watermark_key, &location.encode())?;
        Ok(())
    }

    /// Calls `visit` with every journaled request after the router's watermark:
    /// the ones a crash or a stop may have left unindexed or unrouted.
    pub fn each_unrouted_journaled(
        &self,
        mut visit: impl FnMut(Journaled) -> Result<()>,
    ) -> Result<()> {
        self.journal
            .each_after(self.routed_through()?, |location, record| {
                visit(to_journaled(location, &record)?)
            })
    }

    /// The router's watermark: every request up to it is indexed and routed.
    fn routed_through(&self) -> Result<Option<Location>> {
        self.routed_through_of(self.journal.node())
    }

    /// The watermark of `node`'s router (None: the node's own files).
    pub(super) fn routed_through_of(&self, node: Option<&str>) -> Result<Option<Location>> {
        let value = self.meta.get(watermark_key(node))?;
        Ok(value.and_then(|value| Location::decode(&value)))
    }
}

/// The payload in `record` if it is request `id`'s. With a shared keyspace
/// a request indexed by another node names a location in that node's
/// journal, which here holds another request or nothing.
fn journaled_payload_of(record: &[u8], id: &str) -> Result<Option<Payload>> {
    Ok(match request_record::decode(record)? {
        Record::Request(request, payload) if request.id == id => Some(payload),
        _ => None,
    })
}

/// The `meta` key of the router's watermark in the journal of `node`: one
/// key when the journal is the node's own files, one per node when the
/// journals share a database (each node routes its own journal).
pub(super) fn watermark_key(node: Option<&str>) -> Vec<u8> {
    match node {
        None => ROUTED_THROUGH.to_vec(),
        Some(node) => [ROUTED_THROUGH, b"/", node.as_bytes()].concat(),
    }
}

/// The id of the node whose data directory is `dir`, kept in `dir/node-id`
/// (made on the first start): a node that comes back keeps its journal and
/// watermark.
pub(super) fn node_id(dir: &std::path::Path) -> std::io::Result<String> {
    let file = dir.join("node-id");
    match std::fs::read_to_string(&file) {
        Ok(id) => Ok(id.trim().to_string()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let id = crate::ids::new_id("node");
            crate::owner_only_file::write_whole(&file, id.as_bytes())?;
            Ok(id)
        }
        Err(error) => Err(error),
    }
}

/// A journal record, as the router takes it.
pub(super) fn to_journaled(location: Location, record: &[u8]) -> Result<Journaled> {
    Ok(match request_record::decode(record)? {
        Record::Request(request, payload) => Journaled::Request(Committed {
            route: request.status == RequestStatus::Accepted,
            request,
            payload: Some(payload),
            held: None,
            location,
            indexed: false,
        }),
        Record::Job(job) => Journaled::Job(CommittedJob {
            job: (*job).into(),
            deliveries: None,
            record: Some(record.to_vec()),
            held: None,
            location,
            indexed: false,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{temp_store_on, TestBackend};

    on_both_backends!(an_acknowledged_request_is_readable_before_and_after_the_router_indexes_it);

    fn store_in(dir: &tempfile::TempDir) -> Store {
        Store::open(dir.path(), 1 << 20).unwrap()
    }

    fn request(id: &str, body: &str) -> (Request, Payload) {
        let request = Request {
            id: id.into(),
            source_id: Some("src_shop".into()),
            source_name: "shop".into(),
            status: RequestStatus::Accepted,
            rejection_cause: None,
            verified: None,
            received_at: 1,
            method: "POST".into(),
            path: "/orders".into(),
            query: String::new(),
            body_bytes: body.len(),
            body_truncated: false,
            trace: None,
        };
        let payload = Payload {
            method: "POST".into(),
            path: "/orders".into(),
            query: String::new(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        };
        (request, payload)
    }

    fn journal(store: &Store, requests: &[(Request, Payload)]) -> Vec<Location> {
        let encoded: Vec<EncodedRequest> = requests
            .iter()
            .map(|(request, payload)| EncodedRequest::new(request, payload).unwrap())
            .collect();
        store
            .journal_requests(&encoded.iter().collect::<Vec<_>>())
            .unwrap()
    }

    #[tokio::test]
    async fn a_request_the_router_set_aside_no_longer_awaits_it_and_can_be_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        let location = journal(&store, &[request("req_failed", "{}")])[0];
        assert!(store.awaits_router("req_failed").unwrap());
        store.mark_unrouted("req_failed", location).unwrap();
        assert!(!store.awaits_router("req_failed").unwrap());
        assert!(store.wait_routed("req_failed").await.unwrap());

        // Routed by hand (as `api::inbound::reroute` does), though the router
        // could not even index it.
        store.take_over_set_aside("req_failed").unwrap();
        store.mark_routed("req_failed").unwrap();
        store.clear_unrouted_mark("req_failed").unwrap();
        assert!(
            store.request("req_failed").unwrap().is_some(),
            "still readable"
        );
        assert!(store.request_payload("req_failed").unwrap().is_some());
        assert!(
            !store.is_unrouted("req_failed").unwrap(),
            "retention may forget it"
        );
    }

    /// While the database makes the read of the router's mark wait (a lock on
    /// its table), the caller's only reactor thread still runs other tasks:
    /// here the one that releases the lock.
    #[tokio::test(flavor = "current_thread")]
    async fn waiting_for_the_router_reads_its_mark_off_the_reactor_on_a_remote_keyspace() {
        let settings = crate::store::keyspace::test_server::database();
        let backend = crate::store::Backend::Postgres(Box::new(settings.clone()));
        let dir = tempfile::tempdir().unwrap();
        let segment = crate::store::JOURNAL_SEGMENT_BYTES;
        let store = Store::open_backed(dir.path(), 1 << 20, segment, None, &backend).unwrap();
        journal(&store, &[request("req_pending", "{}")]);
        let locker = crate::store::keyspace::test_server::client(&settings.config).await;
        locker
            .batch_execute("BEGIN; LOCK TABLE keyspace IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();
        let (awaits, ()) = tokio::join!(store.awaits_router_off_reactor("req_pending"), async {
            locker.batch_execute("COMMIT").await.unwrap();
        });
        assert!(awaits.unwrap(), "pending, and not set aside");
    }

    #[test]
    fn a_payload_in_a_deleted_segment_is_none_and_one_past_the_journal_an_error() {
        let dir = tempfile::tempdir().unwrap();
        // One record per segment.
        let store = Store::open_with(dir.path(), 1 << 20, 1).unwrap();
        let (old, payload) = request("req_old", "{}");
        let location = journal(&store, &[(old.clone(), payload.clone())])[0];
        store.index_request(&old, location, None).unwrap();
        store.mark_routed("req_old").unwrap();
        journal(&store, &[request("req_new", "{}")]);
        assert_eq!(store.request_payload("req_old").unwrap(), Some(payload));

        store.journal.remove_before(location.segment + 1).unwrap();
        assert_eq!(store.request_payload("req_old").unwrap(), None);

        let (lost, _) = request("req_lost", "{}");
        let past_the_end = Location {
            segment: location.segment + 5,
            ..location
        };
        store.index_request(&lost, past_the_end, None).unwrap();
        assert!(store.request_payload("req_lost").is_err());
    }

    fn an_acknowledged_request_is_readable_before_and_after_the_router_indexes_it(
        backend: TestBackend,
    ) {
        let (_dir, store) = temp_store_on(backend);
        let (request, payload) = request("req_1", "{\"n\":1}");
        let location = journal(&store, &[(request.clone(), payload.clone())])[0];
        assert_eq!(store.request("req_1").unwrap(), Some(request.clone()));
        assert_eq!(
            store.request_payload("req_1").unwrap(),
            Some(payload.clone())
        );
        assert!(store.is_unrouted("req_1").unwrap());

        store.index_request(&request, location, None).unwrap();
        store.mark_routed("req_1").unwrap();
        assert!(!store.is_unrouted("req_1").unwrap());
        assert_eq!(store.request("req_1").unwrap(), Some(request));
        assert_eq!(store.request_payload("req_1").unwrap(), Some(payload));
    }

    /// Two nodes on one database: each has its own journal, so its own watermark,
    /// and never reads another's request at the same place of its own journal.
    #[test]
    fn nodes_sharing_a_database_keep_to_their_own_journal() {
        use crate::store::{keyspace::test_server, Backend};
        let backend = Backend::Postgres(Box::new(test_server::database()));
        let node = || crate::store::temp_node(&backend);
        let ((_a_dir, a), (_b_dir, b)) = (node(), node());
        let (on_a, on_b) = (
            request("req_a", "{\"on\":\"a\"}"),
            request("req_b", "{\"on\":\"b\"}"),
        );
        let at_a = journal(&a, std::slice::from_ref(&on_a))[0];
        assert_eq!(
            journal(&b, &[on_b])[0],
            at_a,
            "the same place in two journals"
        );
        a.index_request(&on_a.0, at_a, None).unwrap();
        a.mark_routed("req_a").unwrap();
        a.set_routed_through(at_a).unwrap();
        assert_eq!(a.request_payload("req_a").unwrap(), Some(on_a.1.clone()));
        assert_eq!(
            b.request("req_a").unwrap(),
            Some(on_a.0),
            "listed by the other node"
        );
        assert_eq!(
            b.request_payload("req_a").unwrap(),
            Some(on_a.1),
            "from the database, not b's request at that place"
        );
        let mut replayed = Vec::new();
        b.each_unrouted_journaled(|committed| {
            replayed.push(committed.id().to_string());
            Ok(())
        })
        .unwrap();
        assert_eq!(replayed, ["req_b"], "a's watermark is not b's");
    }

    #[test]
    fn the_journal_is_replayed_from_the_routers_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let ids = ["req_1", "req_2", "req_3"];
        {
            let store = store_in(&dir);
            let requests: Vec<_> = ids.iter().map(|id| request(id, "{}")).collect();
            let locations = journal(&store, &requests);
            store.set_routed_through(locations[0]).unwrap();
            store.flush().unwrap();
        }
        let store = store_in(&dir);
        let mut replayed = Vec::new();
        store
            .each_unrouted_journaled(|committed| {
                replayed.push(committed.id().to_string());
                Ok(())
            })
            .unwrap();
        assert_eq!(replayed, ["req_2", "req_3"]);
    }

    #[test]
    fn payloads_and_unrouted_markers_of_stores_older_than_the_journal_are_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        let (request, payload) = request("req_old", "{\"old\":true}");
        store
            .requests
            .insert("req_old", serde_json::to_vec(&request).unwrap())
            .unwrap();
        store
            .request_payloads
            .insert("req_old", crate::store::payload_codec::encode(&payload))
            .unwrap();
        store.unrouted.insert("req_old", &[]).unwrap();

        assert_eq!(store.request_payload("req_old").unwrap(), Some(payload));
        assert_eq!(store.unrouted_requests().unwrap(), ["req_old"]);
        store.mark_routed("req_old").unwrap();
        assert!(store.marked_unrouted().unwrap().is_empty());
    }
}

//! Group commit: the ingress answers only after a request is fsync'ed, and many
//! concurrent requests share one fsync.
//!
//! One writer thread takes whatever is pending (never waiting for a batch to
//! fill, so a lone request pays one sync), appends it all to the request
//! journal, syncs once, then wakes every waiter. An indexer thread then
//! records the batch in sled (so that lists see it, whatever the routing
//! backlog) and hands the accepted requests to the router. Their payloads go
//! along only as long as the backlog's bytes stay within `Backlog`'s limit:
//! past it, the router reads them back from the journal, so that a slow
//! router with a deep backlog of large requests does not fill memory.
//!
//! Webhook jobs take the same path (`commit_job`): journaled in the same
//! batches, their record and list entries written by the indexer, their
//! deliveries made by the router, replayed past its watermark after a crash.

use super::{EncodedRequest, Location, Store};
use crate::model::{Event, Payload, Request, WebhookJob};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    #[error("the gateway is shutting down")]
    Closed,
    /// A job would take the router's backlog past its bytes (see `commit_job`).
    #[error("the router's backlog is full (limits.router_backlog_bytes)")]
    BacklogFull,
    #[error("could not store the request: {0}")]
    Store(String),
}

/// A durable request on its way to the indexer, then the router.
pub struct Committed {
    pub request: Request,
    /// None when the backlog was over its bytes: the journal holds it.
    pub payload: Option<Payload>,
    /// The backlog's bytes `payload` holds, given back when it is dropped.
    pub held: Option<BacklogShare>,
    /// Where the journal holds it.
    pub location: Location,
    /// Accepted (route it), or rejected (only record it: journals written
    /// before rejections were kept apart hold some).
    pub route: bool,
    /// Whether the indexer recorded it in sled (the router tries again if not).
    pub indexed: bool,
}

/// A durable webhook job on its way to the indexer (its record and list
/// entries), then the router (its deliveries).
pub struct CommittedJob {
    pub job: Arc<WebhookJob>,
    /// The deliveries the API answered with (`outbound::new_deliveries`),
    /// stored as they are; None for a job replayed from the journal, whose
    /// deliveries are derived again from the job (their ids are the same).
    pub deliveries: Option<Vec<Event>>,
    /// Its journal record, until the indexer stored the job: its `jobs`
    /// record is cut from it (`job_record::cut`).
    pub record: Option<Vec<u8>>,
    /// The backlog's bytes the job holds in memory until the router is done
    /// with it (None for a job replayed from the journal).
    pub held: Option<BacklogShare>,
    /// Where the journal holds it.
    pub location: Location,
    /// Whether the indexer stored it in sled (the router does if not).
    pub indexed: bool,
}

/// What the journal hands on, in its order. (A request, the common case,
/// is not boxed: that would cost an allocation per request.)
#[allow(clippy::large_enum_variant)]
pub enum Journaled {
    Request(Committed),
    Job(CommittedJob),
}

impl Journaled {
    pub fn location(&self) -> Location {
        match self {
            Journaled::Request(committed) => committed.location,
            Journaled::Job(committed) => committed.location,
        }
    }

    /// The request's or the job's id.
    pub fn id(&self) -> &str {
        match self {
            Journaled::Request(committed) => &committed.request.id,
            Journaled::Job(committed) => &committed.job.id,
        }
    }

    fn indexed(&mut self) {
        match self {
            Journaled::Request(committed) => committed.indexed = true,
            Journaled::Job(committed) => {
                committed.indexed = true;
                // Stored: no longer needed (it held as many bytes as the job).
                committed.record = None;
            }
        }
    }

    /// Whether the router has work to do for it (a rejected request has none).
    pub fn routes(&self) -> bool {
        match self {
            Journaled::Request(committed) => committed.route,
            Journaled::Job(_) => true,
        }
    }
}

/// The request bytes in memory between the commit thread and the router.
#[derive(Clone)]
pub struct Backlog {
    bytes: Arc<BacklogBytes>,
}

struct BacklogBytes {
    limit: u64,
    held: AtomicU64,
}

impl Backlog {
    /// A backlog that holds at most `limit` bytes of payloads.
    pub fn new(limit: u64) -> Backlog {
        Backlog {
            bytes: Arc::new(BacklogBytes {
                limit,
                held: AtomicU64::new(0),
            }),
        }
    }

    /// The bytes held now.
    pub fn held_bytes(&self) -> u64 {
        self.bytes.held.load(Ordering::SeqCst)
    }

    /// A share of `bytes`, unless that would go over the limit.
    fn share(&self, bytes: u64) -> Option<BacklogShare> {
        self.share_if(bytes, |held| held + bytes <= self.bytes.limit)
    }

    /// A share of `bytes`, unless that would go over the limit while others
    /// hold some: one job, however large, is always taken (a limit below the
    /// largest job would refuse it for ever).
    fn share_unless_busy(&self, bytes: u64) -> Option<BacklogShare> {
        self.share_if(bytes, |held| held == 0 || held + bytes <= self.bytes.limit)
    }

    fn share_if(&self, bytes: u64, fits: impl Fn(u64) -> bool) -> Option<BacklogShare> {
        self.bytes
            .held
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |held| {
                fits(held).then_some(held + bytes)
            })
            .ok()?;
        Some(BacklogShare {
            bytes: self.bytes.clone(),
            len: bytes,
        })
    }
}

/// The bytes of the backlog one request's payload holds.
pub struct BacklogShare {
    bytes: Arc<BacklogBytes>,
    len: u64,
}

impl Drop for BacklogShare {
    fn drop(&mut self) {
        self.bytes.held.fetch_sub(self.len, Ordering::SeqCst);
    }
}

/// Batches waiting for the indexer; the commit thread waits beyond this.
const INDEX_QUEUE: usize = 64;

/// What a commit writes (boxed with its `Pending` on the way to the writer).
#[allow(clippy::large_enum_variant)]
enum Entry {
    Request {
        request: Request,
        payload: Payload,
    },
    Job {
        job: Arc<WebhookJob>,
        deliveries: Vec<Event>,
        held: BacklogShare,
    },
}

struct Pending {
    entry: Entry,
    encoded: EncodedRequest,
    done: oneshot::Sender<Result<(), CommitError>>,
}

enum Message {
    Commit(Box<Pending>),
    Close,
}

/// Told the size and duration (append and fsync) of every journal batch
/// written (for metrics; the store does not know them).
pub type BatchObserver = Box<dyn Fn(usize, Duration) + Send>;

/// The sending side of the writer thread; clone it freely.
#[derive(Clone)]
pub struct CommitLog {
    tx: mpsc::Sender<Message>,
    /// What new jobs take their share of (see `commit_job`).
    backlog: Backlog,
}

impl CommitLog {
    /// Starts the writer and indexer threads (the handle joins both). Accepted
    /// requests go to `router` once durable and indexed.
    /// `queue_capacity` bounds the requests waiting for the writer, so that an
    /// overloaded disk slows senders down instead of filling memory;
    /// `backlog` bounds the payload bytes waiting for the router.
    pub fn start(
        store: Store,
        max_batch: usize,
        queue_capacity: usize,
        router: SyncSender<Journaled>,
        backlog: Backlog,
        observe: BatchObserver,
    ) -> (CommitLog, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(queue_capacity);
        let (to_indexer, indexer_inbox) = std::sync::mpsc::sync_channel(INDEX_QUEUE);
        let indexer = {
            let store = store.clone();
            std::thread::Builder::new()
                .name("hookgate-index".into())
                .spawn(move || index_loop(store, indexer_inbox, router))
                .expect("spawn index thread")
        };
        let backlog_bytes = backlog.clone();
        let writer = std::thread::Builder::new()
            .name("hookgate-commit".into())
            .spawn(move || {
                write_loop(store, rx, max_batch, to_indexer, backlog_bytes, observe);
                let _ = indexer.join();
            })
            .expect("spawn commit thread");
        (CommitLog { tx, backlog }, writer)
    }

    /// Stores an accepted request durably; the router routes it afterwards.
    pub async fn commit(&self, request: Request, payload: Payload) -> Result<(), CommitError> {
        let encoded = EncodedRequest::new(&request, &payload);
        self.write(Entry::Request { request, payload }, encoded)
            .await
    }

    /// Stores a new webhook job durably; the indexer and the router store
    /// its record, list entries and `deliveries` (as made for the answer:
    /// the router does not make them again) afterwards. The job is in
    /// memory until the router is done with it (the router reads it from
    /// there, and reads of a job just answered find it there): it holds its
    /// record's bytes of the backlog meanwhile, and is refused
    /// (`BacklogFull`) when they would take it past its limit (unless it is
    /// the only one: a limit below a job's size refuses none when idle).
    pub async fn commit_job(
        &self,
        job: Arc<WebhookJob>,
        deliveries: Vec<Event>,
    ) -> Result<(), CommitError> {
        let encoded = EncodedRequest::job(&job);
        let bytes = encoded.as_ref().map_or(0, |encoded| encoded.record.len());
        let held = (self.backlog)
            .share_unless_busy(bytes as u64)
            .ok_or(CommitError::BacklogFull)?;
        let entry = Entry::Job {
            job,
            deliveries,
            held,
        };
        self.write(entry, encoded).await
    }

    async fn write(
        &self,
        entry: Entry,
        encoded: super::Result<EncodedRequest>,
    ) -> Result<(), CommitError> {
        let encoded = encoded.map_err(|e| CommitError::Store(e.to_string()))?;
        let (done, result) = oneshot::channel();
        let pending = Pending {
            entry,
            encoded,
            done,
        };
        self.tx
            .send(Message::Commit(Box::new(pending)))
            .await
            .map_err(|_| CommitError::Closed)?;
        result.await.map_err(|_| CommitError::Closed)?
    }

    /// Asks the writer to finish what is pending and stop.
    pub async fn close(&self) {
        // Already closed is fine.
        let _ = self.tx.send(Message::Close).await;
    }
}

fn write_loop(
    store: Store,
    mut rx: mpsc::Receiver<Message>,
    max_batch: usize,
    indexer: SyncSender<Vec<Journaled>>,
    backlog: Backlog,
    observe: BatchObserver,
) {
    let mut closing = false;
    while !closing {
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        let mut batch = Vec::new();
        for message in std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok())) {
            match message {
                Message::Commit(pending) => batch.push(*pending),
                Message::Close => closing = true,
            }
            if batch.len() >= max_batch {
                break;
            }
        }
        commit_batch(&store, batch, &indexer, &backlog, &observe);
    }
}

fn commit_batch(
    store: &Store,
    batch: Vec<Pending>,
    indexer: &SyncSender<Vec<Journaled>>,
    backlog: &Backlog,
    observe: &BatchObserver,
) {
    let encoded: Vec<&EncodedRequest> = batch.iter().map(|pending| &pending.encoded).collect();
    let started = Instant::now();
    let journaled = store.journal_requests(&encoded);
    observe(batch.len(), started.elapsed());
    let locations = match journaled {
        Ok(locations) => locations,
        Err(error) => {
            tracing::error!(%error, requests = batch.len(), "group commit failed");
            let error = CommitError::Store(error.to_string());
            for pending in batch {
                let _ = pending.done.send(Err(error.clone()));
            }
            return;
        }
    };
    let mut journaled = Vec::with_capacity(batch.len());
    for (pending, location) in batch.into_iter().zip(locations) {
        // The ingress may have given up waiting (client gone); the request is
        // stored and routed all the same.
        let _ = pending.done.send(Ok(()));
        let record = pending.encoded.record;
        journaled.push(match pending.entry {
            Entry::Request { request, payload } => {
                let held = backlog.share(record.len() as u64);
                Journaled::Request(Committed {
                    request,
                    payload: held.is_some().then_some(payload),
                    held,
                    location,
                    route: true,
                    indexed: false,
                })
            }
            Entry::Job {
                job,
                deliveries,
                held,
            } => Journaled::Job(CommittedJob {
                job,
                deliveries: Some(deliveries),
                record: Some(record),
                held: Some(held),
                location,
                indexed: false,
            }),
        });
    }
    // A stopped indexer (shutdown) leaves the batch past the router's
    // watermark in the journal: the next start indexes and routes it.
    let _ = indexer.send(journaled);
}

fn index_loop(store: Store, batches: Receiver<Vec<Journaled>>, router: SyncSender<Journaled>) {
    for mut batch in batches {
        for journaled in &mut batch {
            let indexed = match journaled {
                Journaled::Request(committed) => store.index_request(
                    &committed.request,
                    committed.location,
                    committed.payload.as_ref(),
                ),
                Journaled::Job(committed) => {
                    let record = committed.record.as_deref();
                    store.store_journaled_job(&committed.job, record, committed.location, false)
                }
            };
            match indexed {
                Ok(()) => journaled.indexed(),
                Err(error) => {
                    tracing::error!(%error, id = %journaled.id(), "could not index a request or job");
                }
            }
        }
        store.note_indexed(batch.len());
        for committed in batch {
            // A stopped router (shutdown): see commit_batch.
            let _ = router.send(committed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(body: Vec<u8>) -> Payload {
        Payload {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: Vec::new(),
            body,
        }
    }

    /// The next request handed to the router.
    fn next(router: &Receiver<Journaled>) -> Committed {
        match router.recv_timeout(Duration::from_secs(10)) {
            Ok(Journaled::Request(committed)) => committed,
            _ => panic!("the router is handed the request"),
        }
    }

    /// A commit log on a new store, handing on to the router returned (which
    /// only the test drains).
    struct Started {
        _dir: tempfile::TempDir,
        store: Store,
        commit: CommitLog,
        writer: JoinHandle<()>,
        router: Receiver<Journaled>,
    }

    fn started(backlog: &Backlog) -> Started {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let (to_router, router) = std::sync::mpsc::sync_channel(64);
        let observe = Box::new(|_, _| {});
        let (commit, writer) =
            CommitLog::start(store.clone(), 4, 16, to_router, backlog.clone(), observe);
        Started {
            _dir: dir,
            store,
            commit,
            writer,
            router,
        }
    }

    impl Started {
        async fn stop(self) {
            self.commit.close().await;
            let writer = self.writer;
            tokio::task::spawn_blocking(move || writer.join().unwrap())
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn payloads_past_the_backlogs_bytes_are_left_in_the_journal() {
        // Room for three 30 kB requests, not four.
        let backlog = Backlog::new(100_000);
        let log = started(&backlog);
        let (store, commit, router) = (&log.store, &log.commit, &log.router);
        let bodies: Vec<Vec<u8>> = (0..10u8).map(|n| vec![b'a' + n; 30_000]).collect();
        for body in &bodies {
            let payload = payload(body.clone());
            let request = Request::received(Some("src_shop"), "shop", &payload);
            commit.commit(request, payload).await.unwrap();
        }

        let committed: Vec<Committed> = bodies.iter().map(|_| next(router)).collect();
        let held = committed.iter().filter(|c| c.payload.is_some()).count();
        assert_eq!(held, 3);
        assert!(backlog.held_bytes() > 90_000 && backlog.held_bytes() <= 100_000);
        for (committed, body) in committed.iter().zip(&bodies) {
            let payload = match &committed.payload {
                Some(payload) => payload.clone(),
                None => store.journaled_payload(committed.location).unwrap(),
            };
            assert_eq!(&payload.body, body);
        }

        // Routed: the bytes are given back, and the next payload is held.
        drop(committed);
        assert_eq!(backlog.held_bytes(), 0);
        let again = payload(b"again".to_vec());
        let request = Request::received(Some("src_shop"), "shop", &again);
        commit.commit(request, again.clone()).await.unwrap();
        assert_eq!(next(router).payload, Some(again));
        log.stop().await;
    }

    fn job(id: &str) -> Arc<WebhookJob> {
        let job = serde_json::from_value(serde_json::json!({
            "id": id, "application_id": "app_a", "event_type": "order.paid",
            "event_id": id, "payload": { "text": "x".repeat(10_000) }, "headers": {},
            "metadata": {}, "endpoint_ids": [], "status": "created", "attempt_count": 0,
            "max_retries": 0, "created_at": 1000, "updated_at": 1000, "expires_at": 2000,
            "succeeded_at": null, "discarded_at": null,
        }));
        Arc::new(job.unwrap())
    }

    #[tokio::test]
    async fn jobs_waiting_for_the_router_hold_the_backlogs_bytes_and_past_them_are_refused() {
        let one = EncodedRequest::job(&job("job_0")).unwrap().record.len() as u64;
        // Room for three jobs, not four.
        let backlog = Backlog::new(3 * one + one / 2);
        let log = started(&backlog);
        let (commit, router) = (&log.commit, &log.router);
        for n in 0..3 {
            commit
                .commit_job(job(&format!("job_{n}")), Vec::new())
                .await
                .unwrap();
        }
        let refused = commit.commit_job(job("job_3"), Vec::new()).await;
        assert!(
            matches!(refused, Err(CommitError::BacklogFull)),
            "{refused:?}"
        );
        assert_eq!(backlog.held_bytes(), 3 * one);

        // Routed: the bytes are given back, and the next job is taken.
        let routed: Vec<Journaled> = (0..3)
            .map(|_| router.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        assert!(routed.iter().all(|j| matches!(j, Journaled::Job(_))));
        drop(routed);
        assert_eq!(backlog.held_bytes(), 0);
        commit.commit_job(job("job_3"), Vec::new()).await.unwrap();
        log.stop().await;
    }

    #[tokio::test]
    async fn a_job_larger_than_the_backlog_is_taken_when_it_is_alone() {
        let backlog = Backlog::new(1);
        let log = started(&backlog);
        let (commit, router) = (&log.commit, &log.router);
        commit.commit_job(job("job_0"), Vec::new()).await.unwrap();
        let refused = commit.commit_job(job("job_1"), Vec::new()).await;
        assert!(
            matches!(refused, Err(CommitError::BacklogFull)),
            "{refused:?}"
        );
        drop(router.recv_timeout(Duration::from_secs(10)).unwrap());
        commit.commit_job(job("job_1"), Vec::new()).await.unwrap();
        log.stop().await;
    }
}

//! The embedded sled store: every request, event, attempt and the delivery queue.
//!
//! sled calls block, so async code reaches the store through
//! `tokio::task::spawn_blocking` or the group-commit writer thread, not directly
//! on a reactor thread. One exception, for its cost: settling a successful
//! delivery that stays in its event's record (`settle_attempt_unless_busy`),
//! which touches only that event, just read, and never waits for its lock,
//! and then, for a webhook job's delivery, its job (`settle_job_of_held`,
//! its frame in memory, never waiting for its lock either).
//! A new job's checks read applications, event types and endpoints from
//! memory (`job_catalog`), not from sled.

/// `#[test]`s running each named function (taking a `TestBackend`) once on
/// the embedded backend and once on PostgreSQL (see `keyspace::test_server`).
#[cfg(test)]
macro_rules! on_both_backends {
    ($($body:ident),* $(,)?) => {
        mod embedded {
            $(#[test]
            fn $body() {
                super::$body($crate::store::TestBackend::Embedded);
            })*
        }
        mod postgres {
            $(#[test]
            fn $body() {
                super::$body($crate::store::TestBackend::Postgres);
            })*
        }
    };
}

mod attempts;
mod commit;
mod deleted_sources;
mod disk;
mod health;
mod hold;
mod issues;
mod job_catalog;
mod job_frames;
mod job_index;
mod job_messages;
mod job_record;
mod job_state;
mod journal;
mod journals;
mod kept_by_job;
mod keyspace;
mod object_times;
mod old_journal;
mod order;
mod outbound;
mod page;
mod payload_codec;
mod queue;
mod rejections;
mod request_record;
mod requests;
mod retention;
mod secrets;
mod signing_secret;
mod silent_nodes;
mod tally;

pub use attempts::{stays_inline, SettledNow};
pub use commit::{
    Backlog, BacklogShare, BatchObserver, CommitError, CommitLog, Committed, CommittedJob,
    Journaled,
};
pub use disk::free_bytes;
pub use job_index::{status_tags, JobPage, JobSelection, FAILED};
pub use journal::{Location, SetAside};
#[cfg(any(test, feature = "test-postgres"))]
pub use keyspace::test_server as test_postgres;
pub use keyspace::RemoteSettings;
/// The trees themselves, for tests that write records as an earlier version stored them.
pub use keyspace::{Keyspace, RemoteKeyspace, Tree};
pub use object_times::ObjectTimes;
pub use order::{compare_values, Mark, Order, OrderedRequest, Position};
pub use page::{Cursor, Direction, Page, PageRequest, Paging, StampWindow};
pub use queue::{owns_entry, QueueEntry};
pub use rejections::RejectionBudget;
pub use retention::{Cutoffs, Swept};

use crate::config::ApiObject;
use crate::ids::named_id;
use crate::model::{
    AttemptTrigger, Bookmark, BulkRetry, BulkStatus, Event, EventStatus, Execution, IgnoredEvent,
    IssueStatus, Payload, Request, TransformationObject, WebhookJob,
};
use crate::pipeline::dedup::{Claim, Sighting};
use crate::sealing::{Sealer, SecretsKey};
use serde::{de::DeserializeOwned, Serialize};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// Told of an event that has just become terminal (for metrics).
pub type EndedObserver = Box<dyn Fn(&Event) + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    #[error("store: corrupt record: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("store: request journal: {0}")]
    Journal(#[from] std::io::Error),
    #[error("store: secrets key: {0}")]
    SecretsKey(std::io::Error),
    #[error("store: {0}")]
    Sealed(String),
    #[error("store: {0}")]
    Unavailable(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A request and its payload (or a webhook job) serialized as one journal
/// record. The ingress (or the API) encodes it on its own task, so the single
/// commit thread only writes bytes.
pub struct EncodedRequest {
    id: String,
    record: Vec<u8>,
    /// A webhook job's record: read back through `Store::job`, not `pending`.
    job: bool,
}

impl EncodedRequest {
    pub fn new(request: &Request, payload: &Payload) -> Result<EncodedRequest> {
        Ok(EncodedRequest {
            id: request.id.clone(),
            record: request_record::encode(request, payload)?,
            job: false,
        })
    }

    pub fn job(job: &WebhookJob) -> Result<EncodedRequest> {
        Ok(EncodedRequest {
            id: job.id.clone(),
            record: request_record::encode_job(job)?,
            job: true,
        })
    }
}

/// Where the store keeps its trees (`[store] backend`).
#[derive(Clone, Debug)]
pub enum Backend {
    /// sled, in the data directory (the default).
    Embedded,
    /// PostgreSQL, shared by every node of a cluster.
    Postgres(Box<RemoteSettings>),
}

/// Journal segments are closed at this size (a segment is never rewritten).
const JOURNAL_SEGMENT_BYTES: u64 = 64 << 20;

/// Where an event's queue entry goes when the event changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueMove {
    /// Due at this time (ms).
    To(u64),
    /// Out of the queue: nothing more to attempt.
    Out,
    Stay,
}

/// Locks guarding event updates; an event always maps to the same one.
const EVENT_LOCK_STRIPES: usize = 64;

fn stripe_of(id: &str) -> usize {
    let hash = id.bytes().fold(0usize, |h, b| {
        h.wrapping_mul(31).wrapping_add(usize::from(b))
    });
    hash % EVENT_LOCK_STRIPES
}

/// A held `Store::event_lock`: this node's stripe, and in a cluster the
/// event's lock for every node (released first: fields drop in order).
struct EventLock<'a> {
    _cluster: Option<keyspace::RemoteLock>,
    _stripe: std::sync::MutexGuard<'a, ()>,
}

/// An event changed in memory, and what storing it moves (see `Store::apply_change`).
struct Changed<T> {
    event: Event,
    /// Where its queue entry was before the change.
    queued_at: Option<u64>,
    was_terminal: bool,
    queue_move: QueueMove,
    result: T,
}

/// How many event changes a slow subscriber may fall behind before it is told it lagged.
const EVENT_FEED_CAPACITY: usize = 8192;

/// A handle to the database; cheap to clone (one reference count: the
/// delivery path clones it for every blocking call).
#[derive(Clone)]
pub struct Store {
    state: Arc<StoreState>,
}

impl std::ops::Deref for Store {
    type Target = StoreState;

    fn deref(&self) -> &StoreState {
        &self.state
    }
}

/// What every handle of one open store shares.
pub struct StoreState {
    /// Where the trees below live (see `keyspace`).
    db: Keyspace,
    /// How `db` was opened when it is sled, to open it again for `checkpoint`.
    sled_config: Option<sled::Config>,
    /// Disk space held for sled, and its health (see `disk`), once `watch_disk` is called.
    disk_reserve: std::sync::OnceLock<disk::DiskReserve>,
    /// Every request and its payload, in commit order (see `journals`).
    journal: journals::RequestJournal,
    /// Requests journaled but not yet routed (nor, maybe, indexed in sled):
    /// id → where the journal holds it.
    pending: Mutex<std::collections::HashMap<String, Location>>,
    /// Webhook jobs from before their journaling until their fan-out: what
    /// `job` reads meanwhile (see `outbound`).
    pending_jobs: Mutex<std::collections::HashMap<String, Arc<WebhookJob>>>,
    index_progress: requests::IndexProgress,
    /// The `meta` key of the router's watermark in `journal` (see `requests::watermark_key`).
    watermark_key: Vec<u8>,
    /// Holds `dir` for this store when no sled does (a remote keyspace).
    _dir_lock: Option<std::fs::File>,
    depths: queue::Depths,
    /// Request id → the request and where the journal holds it.
    requests: Tree,
    /// Request id → its payload, for requests stored before the journal and
    /// for rejected requests (see `rejections`).
    request_payloads: Tree,
    /// `source key \0 request id` → record size: the rejected requests kept.
    rejections: Tree,
    /// What `rejections` takes, per source key and overall.
    rejection_ledger: rejections::RejectionLedger,
    /// Accepted request ids not yet routed, from stores older than the
    /// journal; routed on start like the journal's tail.
    unrouted: Tree,
    /// `routed_through` → the journal location up to which every request is
    /// indexed and routed; `team_id` → this instance's team id.
    meta: Tree,
    events: Tree,
    /// Event id → payload, for events whose rules changed it.
    event_payloads: Tree,
    /// Attempt id → attempt, for attempts kept outside their event's record
    /// (see `attempts`).
    attempts: Tree,
    /// `event id ++ attempt id` → (), the attempts in `attempts` of each event.
    event_attempts: Tree,
    ignored_events: Tree,
    queue: Tree,
    /// `connection id ++ fingerprint` → first-seen ms ++ request id (deduplicate rule).
    fingerprints: Tree,
    /// Connection id → paused-at ms.
    paused: Tree,
    /// The keys of `paused`, in memory for the hot paths.
    paused_ids: std::sync::RwLock<std::collections::HashSet<String>>,
    /// `connection id ++ event id` → due ms: events held by a paused connection.
    held: Tree,
    bulk_retries: Tree,
    /// One change of a bulk retry at a time on this node (see `change_bulk_retry`).
    bulk_updates: Mutex<()>,
    /// Bulk retries in status RUNNING.
    running_bulk_retries: tally::Tally<BulkRetry, ()>,
    bookmarks: Tree,
    transformations: Tree,
    /// Name → id of stored transformations: a renamed one keeps its id, so
    /// its id no longer derives from its name. Absent for one never renamed.
    transformation_names: Tree,
    /// `transformation id ++ execution id` → execution.
    executions: Tree,
    issues: Tree,
    /// Issues in status OPENED, by type.
    open_issues: tally::Tally<crate::model::Issue, crate::model::IssueType>,
    issue_triggers: Tree,
    /// Aggregation key → the issue that collects its occurrences.
    issue_keys: Tree,
    /// Sources, destinations and connections created through the API.
    api_objects: Tree,
    /// Object id → when it was created and changed (see `object_times`).
    object_times: Tree,
    applications: Tree,
    /// `application id / name` → event type.
    event_types: Tree,
    endpoints: Tree,
    /// Applications, event types and endpoints as a new job needs them, in memory.
    job_catalog: job_catalog::JobCatalog,
    /// Webhook jobs (outbound); their deliveries are events.
    jobs: Tree,
    /// Job id → its state since its creation, when it changed (see `job_state`).
    job_states: Tree,
    /// `application id \0 event_id` → the job holding that idempotency key.
    job_keys: Tree,
    /// Jobs stored but maybe not yet fanned out to their endpoints.
    unrouted_jobs: Tree,
    /// The jobs' list index: `bucket ++ created_at ++ job id` → () (see `job_index`).
    job_index: Tree,
    /// Bucket → how many entries it has (8 bytes, big-endian), as saved by
    /// the last clean close (see `job_index`).
    job_index_counts: Tree,
    /// Bucket → how many entries it has now.
    job_counts: job_index::BucketCounts,
    /// Job id → the buckets its entries change in, while they do.
    job_index_marks: Tree,
    /// New jobs' messages, until their deliveries' first attempts take them.
    job_messages: job_messages::JobMessages,
    /// New jobs' frames, until their deliveries are done (see `job_frames`).
    job_frames: job_frames::JobFrames,
    /// Serializes read-modify-write changes to one event (see `update_event`);
    /// striped, so that changes to different events rarely wait for each other.
    event_updates: [Mutex<()>; EVENT_LOCK_STRIPES],
    /// Serializes routing a request again with a retention sweep forgetting
    /// it (see `holding`). Taken before any of `event_updates`, never after.
    parent_updates: [Mutex<()>; EVENT_LOCK_STRIPES],
    event_feed: broadcast::Sender<Event>,
    /// Told of every event as it becomes terminal (see `observe_ended_events`).
    ended_observer: std::sync::OnceLock<EndedObserver>,
    /// Ids of requests as their routing completes.
    routed_feed: broadcast::Sender<String>,
    /// Every change to a webhook job, as it is saved.
    job_feed: broadcast::Sender<crate::model::WebhookJob>,
    /// What each retention sweep forgot.
    sweep_feed: broadcast::Sender<Swept>,
    /// One retention sweep at a time (see `retention`).
    sweeping: Mutex<()>,
    /// The workspace signing secret of a cluster (see `signing_secret`).
    signing_secret: Tree,
    /// Seals the secrets of stored objects (see `secrets`).
    sealer: Sealer,
}

impl Store {
    /// Opens (or creates) the database in `dir`. `cache_bytes` bounds sled's
    /// page cache, and so the memory the store uses however large it grows
    /// (a deep backlog stays on disk).
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Store> {
        Store::open_with(dir, cache_bytes, JOURNAL_SEGMENT_BYTES)
    }

    /// `open`, with journal segments closed once they hold
    /// `journal_segment_bytes` (retention deletes whole segments).
    pub fn open_with(dir: &Path, cache_bytes: u64, journal_segment_bytes: u64) -> Result<Store> {
        Store::open_keyed(dir, cache_bytes, journal_segment_bytes, None)
    }

    /// `open_with`, sealing stored secrets with `secrets_key` (None: the key
    /// kept in `dir`, made on the first open).
    pub fn open_keyed(
        dir: &Path,
        cache_bytes: u64,
        journal_segment_bytes: u64,
        secrets_key: Option<&SecretsKey>,
    ) -> Result<Store> {
        let backend = Backend::Embedded;
        Store::open_backed(
            dir,
            cache_bytes,
            journal_segment_bytes,
            secrets_key,
            &backend,
        )
    }

    /// `open_keyed`, with the trees and the request journal in `backend`.
    /// The secrets key stays in `dir` whatever the backend, and so does the
    /// node's id in a cluster (see ARCHITECTURE.md).
    pub fn open_backed(
        dir: &Path,
        cache_bytes: u64,
        journal_segment_bytes: u64,
        secrets_key: Option<&SecretsKey>,
        backend: &Backend,
    ) -> Result<Store> {
        let (db, sled_config) = match backend {
            Backend::Embedded => {
                // Acknowledged requests are durable in the journal; everything in sled
                // can be rebuilt from it or needs no fsync before an answer, so sled
                // flushes on its own timer (and when the gateway stops).
                let sled_config = sled::Config::new()
                    .path(dir)
                    .cache_capacity(cache_bytes)
                    .flush_every_ms(Some(200));
                let db = open_sled(&sled_config)?;
                (Keyspace::Embedded(db), Some(sled_config))
            }
            Backend::Postgres(settings) => (
                Keyspace::Remote(keyspace::RemoteKeyspace::connect(settings)?),
                None,
            ),
        };
        let dir_lock = match backend {
            Backend::Embedded => None,
            Backend::Postgres(_) => Some(lock_dir(dir)?),
        };
        let journal = match &db {
            // Only after sled's lock: a second gateway on the same directory
            // must fail before it looks at (and maybe cuts) the journal's tail.
            Keyspace::Embedded(_) => journals::RequestJournal::File(journal::Journal::open(
                &dir.join("journal"),
                journal_segment_bytes,
            )?),
            Keyspace::Remote(remote) => {
                journals::RequestJournal::Remote(remote.journal(&requests::node_id(dir)?))
            }
        };
        let sealer = sealer_for(dir, secrets_key).map_err(StoreError::SecretsKey)?;
        let watermark_key = requests::watermark_key(journal.node());
        let paused = db.open_tree("paused")?;
        let paused_ids = hold::paused_ids(&paused)?;
        let rejections = db.open_tree("rejections")?;
        let (issues, bulk_retries) = (db.open_tree("issues")?, db.open_tree("bulk_retries")?);
        let (applications, event_types) =
            (db.open_tree("applications")?, db.open_tree("event_types")?);
        let endpoints = db.open_tree("endpoints")?;
        let state = StoreState {
            rejection_ledger: rejections::RejectionLedger::load(&rejections)?,
            rejections,
            sled_config,
            disk_reserve: std::sync::OnceLock::new(),
            paused_ids: std::sync::RwLock::new(paused_ids),
            paused,
            journal,
            pending: Mutex::default(),
            pending_jobs: Mutex::default(),
            index_progress: requests::IndexProgress::default(),
            watermark_key,
            _dir_lock: dir_lock,
            depths: queue::Depths::default(),
            requests: db.open_tree("requests")?,
            request_payloads: db.open_tree("request_payloads")?,
            unrouted: db.open_tree("unrouted")?,
            meta: db.open_tree("meta")?,
            events: db.open_tree("events")?,
            event_payloads: db.open_tree("event_payloads")?,
            attempts: db.open_tree("attempts")?,
            event_attempts: db.open_tree("event_attempts")?,
            ignored_events: db.open_tree("ignored_events")?,
            queue: db.open_tree("queue")?,
            fingerprints: db.open_tree("fingerprints")?,
            held: db.open_tree("held")?,
            running_bulk_retries: tally::Tally::load(&bulk_retries, |bulk: &BulkRetry| {
                (bulk.status == BulkStatus::Running).then_some(())
            })?,
            bulk_retries,
            bulk_updates: Mutex::new(()),
            api_objects: db.open_tree("api_objects")?,
            object_times: db.open_tree("object_times")?,
            bookmarks: db.open_tree("bookmarks")?,
            transformations: db.open_tree("transformations")?,
            transformation_names: db.open_tree("transformation_names")?,
            executions: db.open_tree("executions")?,
            open_issues: tally::Tally::load(&issues, |issue: &crate::model::Issue| {
                (issue.status == IssueStatus::Opened).then_some(issue.kind)
            })?,
            issues,
            issue_triggers: db.open_tree("issue_triggers")?,
            issue_keys: db.open_tree("issue_keys")?,
            job_catalog: job_catalog::JobCatalog::load(&applications, &event_types, &endpoints)?,
            applications,
            event_types,
            endpoints,
            jobs: db.open_tree("jobs")?,
            job_states: db.open_tree("job_states")?,
            job_keys: db.open_tree("job_keys")?,
            unrouted_jobs: db.open_tree("unrouted_jobs")?,
            job_index: db.open_tree("job_index")?,
            job_index_counts: db.open_tree("job_index_counts")?,
            job_counts: job_index::BucketCounts::default(),
            job_index_marks: db.open_tree("job_index_marks")?,
            job_messages: job_messages::JobMessages::default(),
            job_frames: job_frames::JobFrames::default(),
            event_updates: std::array::from_fn(|_| Mutex::new(())),
            parent_updates: std::array::from_fn(|_| Mutex::new(())),
            event_feed: broadcast::channel(EVENT_FEED_CAPACITY).0,
            ended_observer: std::sync::OnceLock::new(),
            routed_feed: broadcast::channel(EVENT_FEED_CAPACITY).0,
            job_feed: broadcast::channel(EVENT_FEED_CAPACITY).0,
            sweep_feed: broadcast::channel(EVENT_FEED_CAPACITY).0,
            sweeping: Mutex::default(),
            signing_secret: db.open_tree("signing_secret")?,
            sealer,
            db,
        };
        let store = Store {
            state: Arc::new(state),
        };
        if store.db.is_remote() {
            store.move_old_journal(dir, journal_segment_bytes)?;
        }
        store.prepare_job_index()?;
        Ok(store)
    }

    /// Watches sled's health from now on, keeping `reserve_bytes` of disk
    /// allocated for it (none for 0); takes no new requests while the reserve
    /// is short or sled has failed (see `disk`). Once per store.
    pub fn watch_disk(&self, dir: &Path, reserve_bytes: u64) -> Result<()> {
        // The reserve guards sled's log; a remote keyspace has none here.
        let Some(sled_config) = self.sled_config.clone() else {
            return Ok(());
        };
        let reserve = disk::DiskReserve::keep(dir, reserve_bytes, sled_config)?;
        if self.disk_reserve.set(reserve).is_err() {
            tracing::warn!("the store's disk is already watched");
        }
        Ok(())
    }

    /// Sets aside every run of damaged bytes in the request journal of the
    /// store in `dir`, keeping every whole record where it was (see
    /// `journal::damage`). Holds the store's lock meanwhile, so that no
    /// gateway runs on it.
    pub fn repair_journal(dir: &Path) -> Result<Vec<SetAside>> {
        let _locked = open_sled(&sled::Config::new().path(dir))?;
        Ok(journal::Journal::repair(&dir.join("journal"))?)
    }

    /// Closes the store and makes its next open quick, when this is its last
    /// handle (false, and nothing done, when another clone still exists).
    /// sled 0.34 writes its snapshot only when it opens a database, and
    /// replays its whole log since the last snapshot on the next open: seconds
    /// for a million events when the disk is cold. Opening it once more after
    /// a clean stop writes that snapshot (paying the replay now). The jobs'
    /// index counts are saved, so that open need not count them again.
    pub fn checkpoint(self) -> Result<bool> {
        self.checkpoint_when_last(Duration::ZERO)
    }

    /// [`Store::checkpoint`], once the other handles have been dropped,
    /// waiting up to `grace` for them.
    pub fn checkpoint_when_last(self, grace: Duration) -> Result<bool> {
        let deadline = Instant::now() + grace;
        while !self.is_only_handle() {
            if Instant::now() >= deadline {
                return Ok(false);
            }
            // Handles are Arcs: there is no signal when one is dropped.
            std::thread::sleep(Duration::from_millis(5));
        }
        self.save_job_counts()?;
        let config = self.sled_config.clone();
        drop(self);
        if let Some(config) = config {
            open_sled(&config)?;
        }
        Ok(true)
    }

    /// Whether no other clone of this handle exists (then dropping it closes
    /// the store).
    fn is_only_handle(&self) -> bool {
        Arc::strong_count(&self.state) == 1
    }

    /// Waits until everything written so far is on disk.
    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    /// Tells `observer` of every event as it becomes terminal (SUCCESSFUL or
    /// FAILED), whatever ends it: an attempt, a cancellation, a mute, its
    /// endpoint's deletion. Every such change goes through `update_event`, so
    /// this is the one place they are all seen. Only the first observer is kept.
    pub fn observe_ended_events(&self, observer: EndedObserver) {
        let _ = self.ended_observer.set(observer);
    }

    /// Every change to an event, as it is saved (for tests, and later live views).
    pub fn subscribe_events(&self) -> broadcast::Receiver<Event> {
        self.event_feed.subscribe()
    }

    // --- events ---------------------------------------------------------------

    pub fn event(&self, id: &str) -> Result<Option<Event>> {
        get(&self.events, id)
    }

    pub fn event_exists(&self, id: &str) -> Result<bool> {
        Ok(self.events.contains_key(id.as_bytes())?
            || self.ignored_events.contains_key(id.as_bytes())?)
    }

    /// Stores a new event (with its own payload when a rule changed it) and puts
    /// it in its destination's queue, due at `due_ms`.
    pub fn insert_event(
        &self,
        event: &Event,
        payload: Option<&Payload>,
        due_ms: u64,
    ) -> Result<()> {
        if let Some(payload) = payload {
            self.event_payloads
                .insert(event.id.as_bytes(), payload_codec::encode(payload))?;
        }
        self.save_event(event)?;
        if event.status == EventStatus::Hold {
            self.held.insert(
                [event.connection_id.as_bytes(), event.id.as_bytes()].concat(),
                &due_ms.to_be_bytes(),
            )?;
            return Ok(());
        }
        self.enqueue(&event.destination_id, due_ms, &event.id)
    }

    pub fn save_event(&self, event: &Event) -> Result<()> {
        put(&self.events, &event.id, event)?;
        self.publish(event);
        Ok(())
    }

    fn publish(&self, event: &Event) {
        announce(&self.event_feed, || event.clone());
    }

    /// Changes a stored event in place. Event changes from the delivery lanes
    /// and from the API go through here one at a time, so neither overwrites
    /// the other's change with a stale copy. `change` returns how the event's
    /// queue entry moves. Subscribers hear of the change once all of it is stored.
    pub fn update_event<T>(
        &self,
        id: &str,
        change: impl FnOnce(&mut Event) -> (QueueMove, T),
    ) -> Result<Option<(Event, T)>> {
        self.try_update_event(id, |event| Ok(change(event)), |_, _| {})
    }

    /// Runs `f` with request `id` held: routing a request again by hand holds
    /// it, so a retention sweep (which takes it too) never forgets a request
    /// while new events are made for it. Events may change meanwhile (their
    /// own stripes are taken after this one). In a cluster it holds the
    /// request for every node, and its day (see `RemoteKeyspace::lock`):
    /// retention drops no day while events are being made in it.
    pub fn holding<T, E: From<StoreError>>(
        &self,
        id: &str,
        f: impl FnOnce() -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let _held = self.parent_updates[stripe_of(id)]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let _cluster = self.db.cluster_lock(id)?;
        f()
    }

    /// `update_event` for a change that may itself fail (and then changes
    /// nothing); `stored` runs once the change is stored, before it is announced.
    fn try_update_event<T>(
        &self,
        id: &str,
        change: impl FnOnce(&mut Event) -> Result<(QueueMove, T)>,
        stored: impl FnOnce(&Event, &T),
    ) -> Result<Option<(Event, T)>> {
        let _serialized = self.event_lock(id)?;
        self.update_held_event(id, change, stored)
    }

    /// The change lock of event `id` (see `update_event`); a webhook job's
    /// changes take the stripe of its id too (see `update_job`). In a
    /// cluster it holds the event for every node: API changes on two nodes
    /// (or one and an attempt its lane's node settles, see
    /// `update_unraced_event`) would otherwise each write their own change
    /// over the other's.
    fn event_lock(&self, id: &str) -> Result<EventLock<'_>> {
        let stripe = self.stripe(id);
        Ok(EventLock {
            _cluster: self.db.cluster_lock(id)?,
            _stripe: stripe,
        })
    }

    /// This node's part of `event_lock`.
    fn stripe(&self, id: &str) -> std::sync::MutexGuard<'_, ()> {
        self.event_updates[stripe_of(id)]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The change lock of event `id`, for a change made on a reactor thread,
    /// unless another change holds it now. Never on a remote keyspace: the
    /// change would wait on the network there, so it goes the blocking way.
    fn reactor_lock_if_free(&self, id: &str) -> Option<std::sync::MutexGuard<'_, ()>> {
        if self.db.is_remote() {
            return None;
        }
        self.stripe_if_free(stripe_of(id))
    }

    /// `reactor_lock_if_free` for a second id while the stripe `held` is
    /// held: nothing more to take when both share it (Some(None)).
    fn second_lock_if_free(
        &self,
        id: &str,
        held: usize,
    ) -> Option<Option<std::sync::MutexGuard<'_, ()>>> {
        if self.db.is_remote() {
            return None;
        }
        match stripe_of(id) {
            stripe if stripe == held => Some(None),
            stripe => self.stripe_if_free(stripe).map(Some),
        }
    }

    fn stripe_if_free(&self, stripe: usize) -> Option<std::sync::MutexGuard<'_, ()>> {
        match self.event_updates[stripe].try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// `try_update_event` with the event's change lock already held.
    fn update_held_event<T>(
        &self,
        id: &str,
        change: impl FnOnce(&mut Event) -> Result<(QueueMove, T)>,
        stored: impl FnOnce(&Event, &T),
    ) -> Result<Option<(Event, T)>> {
        let Some(event) = self.event(id)? else {
            return Ok(None);
        };
        let changed = self.apply_change(event, change)?;
        put(&self.events, &changed.event.id, &changed.event)?;
        self.finish_change(changed, stored).map(Some)
    }

    /// `update_held_event` with only this node's stripe held, for the changes
    /// of the lane that runs the event (settling its attempts), which no
    /// other node makes: it takes no lock for every node, a round trip per
    /// change on PostgreSQL. An API change on another node takes that lock,
    /// so the write is refused while it is held or when another node changed
    /// the event since it was read; then `change` runs again, under the lock.
    /// The queue entry moves after the write, outside that lock: another
    /// node's change in between may leave a stale entry, which a lane drops
    /// (`drop_leftover_entry`), never a missing one.
    fn update_unraced_event<T>(
        &self,
        id: &str,
        mut change: impl FnMut(&mut Event) -> Result<(QueueMove, T)>,
        stored: impl FnOnce(&Event, &T),
    ) -> Result<Option<(Event, T)>> {
        let Some(read) = self.events.get(id.as_bytes())? else {
            return Ok(None);
        };
        let changed = self.apply_change(serde_json::from_slice(&read)?, &mut change)?;
        let written = serde_json::to_vec(&changed.event)?;
        if self
            .events
            .write_unless_raced(id.as_bytes(), &read, written)?
        {
            return self.finish_change(changed, stored).map(Some);
        }
        let _raced = self.db.cluster_lock(id)?;
        self.update_held_event(id, change, stored)
    }

    /// Applies `change` to `event` (not stored yet).
    fn apply_change<T>(
        &self,
        mut event: Event,
        change: impl FnOnce(&mut Event) -> Result<(QueueMove, T)>,
    ) -> Result<Changed<T>> {
        let queued_at = event.next_attempt_at;
        let was_terminal = event.status.is_terminal();
        let (queue_move, result) = change(&mut event)?;
        event.updated_at = Some(crate::ids::now_ms());
        match queue_move {
            QueueMove::To(due) => event.next_attempt_at = Some(due),
            QueueMove::Out => event.next_attempt_at = None,
            QueueMove::Stay => {}
        }
        Ok(Changed {
            event,
            queued_at,
            was_terminal,
            queue_move,
            result,
        })
    }

    /// Moves a stored change's queue entry, then announces the change.
    fn finish_change<T>(
        &self,
        changed: Changed<T>,
        stored: impl FnOnce(&Event, &T),
    ) -> Result<(Event, T)> {
        let Changed {
            event,
            queued_at,
            was_terminal,
            queue_move,
            result,
        } = changed;
        // The queue entry moves last: a crash before it means one more attempt, never a lost event.
        let entry = |due_ms| QueueEntry {
            due_ms,
            event_id: event.id.clone(),
        };
        match (queue_move, queued_at) {
            (QueueMove::To(due), Some(old)) => {
                self.reschedule(&event.destination_id, &entry(old), due)?
            }
            (QueueMove::To(due), None) => self.enqueue(&event.destination_id, due, &event.id)?,
            (QueueMove::Out, Some(old)) => self.dequeue(&event.destination_id, &entry(old))?,
            (QueueMove::Out, None) | (QueueMove::Stay, _) => {}
        }
        stored(&event, &result);
        if !was_terminal && event.status.is_terminal() {
            if let Some(observe) = self.ended_observer.get() {
                observe(&event);
            }
        }
        self.publish(&event);
        Ok((event, result))
    }

    /// Queues an event for an attempt now, whatever its state, marking what the
    /// attempt is (MANUAL, BULK_RETRY). None when there is no such event.
    pub fn retry_now(
        &self,
        id: &str,
        trigger: AttemptTrigger,
        now_ms: u64,
    ) -> Result<Option<Event>> {
        self.queue_again(id, trigger, None, now_ms)
    }

    /// `retry_now` by hand (MANUAL), naming the attempt it queues (see
    /// `Event::pending_attempt_id`): the event, and that name.
    pub fn retry_by_hand(&self, id: &str, now_ms: u64) -> Result<Option<(Event, String)>> {
        let attempt_id = crate::ids::pending_attempt_id(id);
        let retried =
            self.queue_again(id, AttemptTrigger::Manual, Some(attempt_id.clone()), now_ms)?;
        Ok(retried.map(|event| (event, attempt_id)))
    }

    fn queue_again(
        &self,
        id: &str,
        trigger: AttemptTrigger,
        attempt_id: Option<String>,
        now_ms: u64,
    ) -> Result<Option<Event>> {
        let updated = self.update_event(id, |event| {
            event.status = EventStatus::Queued;
            event.pending_trigger = Some(trigger);
            event.pending_attempt_id = attempt_id;
            event.requeues += 1;
            (QueueMove::To(now_ms), ())
        })?;
        Ok(updated.map(|(event, ())| event))
    }

    /// What to deliver for an event: its own payload, or its request's (a
    /// webhook job's delivery: made from its job; older ones have their own).
    pub fn event_payload(&self, event: &Event) -> Result<Option<Payload>> {
        if event.has_own_payload {
            get_payload(&self.event_payloads, &event.id)
        } else if event.window.is_some() {
            self.job_message(&event.request_id)
        } else {
            self.request_payload(&event.request_id)
        }
    }

    /// `event_payload` for an attempt of the event: a job's delivery takes
    /// the message kept since its job's fan-out (`keep_job_message`), if it is.
    pub fn payload_to_send(&self, event: &Event) -> Result<Option<Payload>> {
        let kept = (!event.has_own_payload && event.window.is_some())
            .then(|| self.job_messages.take(&event.request_id))
            .flatten();
        match kept {
            Some(message) => Ok(Some(message)),
            None => self.event_payload(event),
        }
    }

    /// Every stored event, oldest first.
    pub fn events(&self) -> impl Iterator<Item = Result<Event>> {
        values(&self.events)
    }

    /// The events of one request: their ids share the request's time stamp, so
    /// this reads one short key range instead of the whole tree.
    pub fn events_of_request(&self, request_id: &str) -> Result<Vec<Event>> {
        of_request(&self.events, request_id, |e: &Event| {
            e.request_id == request_id
        })
    }

    pub fn ignored_events_of_request(&self, request_id: &str) -> Result<Vec<IgnoredEvent>> {
        of_request(&self.ignored_events, request_id, |e: &IgnoredEvent| {
            e.request_id == request_id
        })
    }

    /// Forgets why a request was ignored, so routing it again decides afresh;
    /// returns how many ignored events that was.
    pub fn forget_ignored_events(&self, request_id: &str) -> Result<u64> {
        self.forget_ignored_events_through(request_id, None)
    }

    /// `forget_ignored_events` of the connections in `only` (all when None).
    pub fn forget_ignored_events_through(
        &self,
        request_id: &str,
        only: Option<&[String]>,
    ) -> Result<u64> {
        let mut forgotten = 0;
        for event in self.ignored_events_of_request(request_id)? {
            if only.is_none_or(|ids| ids.contains(&event.connection_id)) {
                self.ignored_events.remove(event.id.as_bytes())?;
                forgotten += 1;
            }
        }
        Ok(forgotten)
    }

    pub fn ignored_event(&self, id: &str) -> Result<Option<IgnoredEvent>> {
        get(&self.ignored_events, id)
    }

    pub fn insert_ignored_event(&self, ignored: &IgnoredEvent) -> Result<()> {
        put(&self.ignored_events, &ignored.id, ignored)
    }

    pub fn ignored_events(&self) -> impl Iterator<Item = Result<IgnoredEvent>> {
        values(&self.ignored_events)
    }

    /// Records that the sighting's request, received at `received_ms`, carried
    /// `fingerprint` on a connection, unless another request received within
    /// `window_ms` of it did: then returns false (a duplicate). The same
    /// request claiming again (routing after a crash) is not a duplicate. One
    /// sighting is kept per fingerprint, the newest: an older request retried
    /// by hand is judged against it alone.
    pub fn claim_fingerprint(&self, sighting: &Sighting) -> Result<bool> {
        let key = sighting.key();
        let mut claim = sighting.received_ms.to_be_bytes().to_vec();
        claim.extend_from_slice(sighting.request_id.as_bytes());
        // The router, request retries and bulk retries may claim at once: the
        // sighting is replaced only if it is still the one judged against.
        loop {
            let seen = self.fingerprints.get(&key)?;
            match sighting.judge(seen.as_deref().map(sighting_of)) {
                Claim::Own => return Ok(true),
                Claim::Duplicate => return Ok(false),
                Claim::Take => {}
            }
            let swapped = self
                .fingerprints
                .compare_and_swap(&key, seen, Some(claim.as_slice()))?;
            if swapped.is_ok() {
                return Ok(true);
            }
        }
    }

    // --- the instance ------------------------------------------------------------

    /// The id every API object names as its `team_id`: Hookdeck's objects
    /// belong to a team, and a client may key on it, so one instance keeps one
    /// id for good (made on first use, never changed).
    pub fn team_id(&self) -> Result<String> {
        let made = crate::ids::new_id("tm");
        let kept =
            self.meta
                .compare_and_swap(TEAM_ID, None as Option<&[u8]>, Some(made.as_bytes()))?;
        let id = match kept {
            Ok(()) => made,
            Err(existing) => {
                String::from_utf8_lossy(&existing.current.unwrap_or_default()).into_owned()
            }
        };
        self.meta.flush()?;
        Ok(id)
    }

    // --- objects created through the API ----------------------------------------

    /// Every API-created object, in a stable order (kind, then name).
    pub fn api_objects(&self) -> Result<Vec<ApiObject>> {
        let stored: Vec<ApiObject> = match self.api_objects.get(ALL_API_OBJECTS)? {
            Some(all) => serde_json::from_slice(&all)?,
            // Stores from before kept a key per object.
            None => values(&self.api_objects).collect::<Result<_>>()?,
        };
        stored
            .into_iter()
            .map(|object| self.opened_object(object))
            .collect()
    }

    /// Replaces the whole set (it is small, and is validated as a whole): one
    /// value, so one insert replaces it atomically. (sled's batches would, but
    /// the first one switches every sled call in the process to one shared
    /// lock, on which a batch waiting behind a flush deadlocks: sled 0.34.)
    pub fn replace_api_objects(&self, objects: &[ApiObject]) -> Result<()> {
        let sealed = objects
            .iter()
            .map(|object| self.sealed_object(object))
            .collect::<Result<Vec<_>>>()?;
        self.api_objects
            .insert(ALL_API_OBJECTS, serde_json::to_vec(&sealed)?)?;
        // A store from before keeps its per-object keys, shadowed now.
        for key in self.api_objects.iter().keys() {
            let key = key?;
            if key != ALL_API_OBJECTS {
                self.api_objects.remove(key)?;
            }
        }
        self.db.flush()?;
        Ok(())
    }

    // --- transformations ---------------------------------------------------------

    /// Saves a transformation (and where its name leads, if it was renamed).
    pub fn save_transformation(&self, transformation: &TransformationObject) -> Result<()> {
        if let Some(before) = self.transformation(&transformation.id)? {
            if before.name != transformation.name {
                self.transformation_names.remove(before.name.as_bytes())?;
            }
        }
        if transformation.id != named_id("trs", &transformation.name) {
            self.transformation_names
                .insert(transformation.name.as_bytes(), transformation.id.as_bytes())?;
        }
        let sealed = self.sealed_transformation(transformation);
        put(&self.transformations, &transformation.id, &sealed)
    }

    pub fn transformation(&self, id: &str) -> Result<Option<TransformationObject>> {
        get(&self.transformations, id)?
            .map(|stored| self.opened_transformation(stored))
            .transpose()
    }

    /// The id a transformation named `name` has: a stored one's (renamed or
    /// not), else the one its name derives (as for those in gateway.toml).
    pub fn transformation_id_named(&self, name: &str) -> Result<String> {
        Ok(match self.transformation_names.get(name.as_bytes())? {
            Some(id) => String::from_utf8_lossy(&id).into_owned(),
            None => named_id("trs", name),
        })
    }

    /// The stored transformation named `name`, if any.
    pub fn transformation_named(&self, name: &str) -> Result<Option<TransformationObject>> {
        let id = self.transformation_id_named(name)?;
        Ok(self.transformation(&id)?.filter(|t| t.name == name))
    }

    pub fn transformations(&self) -> Result<Vec<TransformationObject>> {
        values(&self.transformations)
            .map(|stored| self.opened_transformation(stored?))
            .collect()
    }

    pub fn delete_transformation(&self, id: &str) -> Result<bool> {
        let Some(deleted) = self.transformation(id)? else {
            return Ok(false);
        };
        if self.transformation_id_named(&deleted.name)? == id {
            self.transformation_names.remove(deleted.name.as_bytes())?;
        }
        Ok(self.transformations.remove(id.as_bytes())?.is_some())
    }

    pub fn insert_execution(&self, execution: &Execution) -> Result<()> {
        let key = format!("{}{}", execution.transformation_id, execution.id);
        put(&self.executions, &key, execution)
    }

    pub fn execution(&self, transformation_id: &str, id: &str) -> Result<Option<Execution>> {
        get(&self.executions, &format!("{transformation_id}{id}"))
    }

    // --- bookmarks ----------------------------------------------------------------

    pub fn save_bookmark(&self, bookmark: &Bookmark) -> Result<()> {
        put(&self.bookmarks, &bookmark.id, bookmark)
    }

    pub fn bookmark(&self, id: &str) -> Result<Option<Bookmark>> {
        get(&self.bookmarks, id)
    }

    pub fn delete_bookmark(&self, id: &str) -> Result<bool> {
        Ok(self.bookmarks.remove(id.as_bytes())?.is_some())
    }

    // --- bulk retries ---------------------------------------------------------

    pub fn save_bulk_retry(&self, bulk: &BulkRetry) -> Result<()> {
        self.running_bulk_retries
            .save(&self.bulk_retries, &bulk.id, bulk)
    }

    pub fn bulk_retry(&self, id: &str) -> Result<Option<BulkRetry>> {
        get(&self.bulk_retries, id)
    }

    /// Changes bulk retry `id` as it is stored now, one change at a time in
    /// the whole cluster: its runner's progress (whichever node leads) and a
    /// cancel through any node's API read and write the record in turn, so
    /// neither undoes the other. `change` answers whether to save. The
    /// record as it is stored afterwards, and whether it was changed; None
    /// when there is no such bulk retry.
    pub fn change_bulk_retry(
        &self,
        id: &str,
        change: impl FnOnce(&mut BulkRetry) -> bool,
    ) -> Result<Option<(BulkRetry, bool)>> {
        let _here = self.bulk_updates.lock().unwrap_or_else(|e| e.into_inner());
        let _everywhere = self.db.cluster_lock(id)?;
        let Some(mut bulk) = self.bulk_retry(id)? else {
            return Ok(None);
        };
        let changed = change(&mut bulk);
        if changed {
            self.save_bulk_retry(&bulk)?;
        }
        Ok(Some((bulk, changed)))
    }

    /// How many bulk retries are RUNNING: on a node alone, kept as they are
    /// saved (no scan). In a cluster the leader runs them, and what another
    /// node saves is not seen here: they are counted in the database (the
    /// count kept here when it cannot be read).
    pub fn running_bulk_retries(&self) -> u64 {
        if !self.db.is_remote() {
            return self.running_bulk_retries.count(());
        }
        let mut running = 0;
        for bulk in self.bulk_retries() {
            match bulk {
                Ok(bulk) => running += u64::from(bulk.status == BulkStatus::Running),
                Err(_) => return self.running_bulk_retries.count(()),
            }
        }
        running
    }

    /// Every bulk retry, oldest first.
    pub fn bulk_retries(&self) -> impl Iterator<Item = Result<BulkRetry>> {
        values(&self.bulk_retries)
    }
}

/// Seals with the configured key, or else the one kept in `dir` (made on the
/// first open). With a configured key, what the kept one sealed still opens
/// (an operator setting `server.secrets_key` after a first start).
fn sealer_for(dir: &Path, configured: Option<&SecretsKey>) -> std::io::Result<Sealer> {
    match configured {
        Some(key) => {
            let kept = SecretsKey::in_data_dir(dir)?;
            Ok(Sealer::with_older(key, kept.as_slice()))
        }
        None => Ok(Sealer::new(&SecretsKey::of_data_dir(dir)?)),
    }
}

/// Locks `dir` for one store, as sled's own lock does for the embedded one:
/// with a remote keyspace the journal is still the node's own.
fn lock_dir(dir: &Path) -> Result<std::fs::File> {
    std::fs::create_dir_all(dir)?;
    let file = std::fs::File::create(dir.join("lock"))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
        |_| {
            let message = format!(
                "could not acquire lock on {}: another gateway uses it",
                dir.display()
            );
            StoreError::Journal(std::io::Error::other(message))
        },
    )?;
    Ok(file)
}

/// How long `open_sled` waits for a lock left by a store just closed.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Opens sled, waiting a little if its lock file is still held: sled's IO
/// threads release it shortly after the last handle of a store closed in this
/// process (a restart in place, as tests and benches do). Another process
/// holding the store still gets the lock error, after `LOCK_WAIT`.
fn open_sled(config: &sled::Config) -> Result<sled::Db> {
    let started = std::time::Instant::now();
    loop {
        match config.open() {
            // sled reports the lock only in the message of an `Other` error.
            Err(sled::Error::Io(error))
                if error.to_string().contains("could not acquire lock")
                    && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            opened => return Ok(opened?),
        }
    }
}

/// The `api_objects` key holding every object created through the API.
const ALL_API_OBJECTS: &[u8] = b"all";
const TEAM_ID: &[u8] = b"team_id";

/// A `fingerprints` value: when the request holding it arrived, and its id.
fn sighting_of(value: &[u8]) -> (u64, &[u8]) {
    let (at, owner) = value.split_at(8);
    let at = u64::from_be_bytes(at.try_into().expect("8-byte timestamp"));
    (at, owner)
}

/// Sends a change to a feed's subscribers; builds the message only when
/// someone listens (usually nobody does outside tests), sparing the copy.
/// Nobody listening is fine: the feeds are a convenience, the store the truth.
fn announce<T>(feed: &broadcast::Sender<T>, message: impl FnOnce() -> T) {
    if feed.receiver_count() > 0 {
        let _ = feed.send(message());
    }
}

fn put<T: Serialize>(tree: &Tree, id: &str, value: &T) -> Result<()> {
    tree.insert(id.as_bytes(), serde_json::to_vec(value)?)?;
    Ok(())
}

fn get<T: DeserializeOwned>(tree: &Tree, id: &str) -> Result<Option<T>> {
    match tree.get(id.as_bytes())? {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        None => Ok(None),
    }
}

fn get_payload(tree: &Tree, id: &str) -> Result<Option<Payload>> {
    match tree.get(id.as_bytes())? {
        Some(bytes) => Ok(Some(payload_codec::decode(&bytes)?)),
        None => Ok(None),
    }
}

fn values<T: DeserializeOwned>(tree: &Tree) -> impl Iterator<Item = Result<T>> {
    tree.iter()
        .values()
        .map(|value| Ok(serde_json::from_slice(&value?)?))
}

/// Records derived from a request (see `ids::derived_id`), found by its stamp.
fn of_request<T: DeserializeOwned>(
    tree: &Tree,
    request_id: &str,
    belongs: impl Fn(&T) -> bool,
) -> Result<Vec<T>> {
    let stamp = request_id.get(4..20).unwrap_or_default();
    let prefix = format!("evt_{stamp}");
    let mut found = Vec::new();
    for value in tree.scan_prefix(prefix.as_bytes()).values() {
        let record: T = serde_json::from_slice(&value?)?;
        if belongs(&record) {
            found.push(record);
        }
    }
    Ok(found)
}

/// A new store in a temporary directory, for unit tests.
#[cfg(test)]
fn temp_store() -> (tempfile::TempDir, Store) {
    temp_store_on(TestBackend::Embedded)
}

/// A new event of a new request, on connection `web_a` from `src_a` to `des_a`.
#[cfg(test)]
fn test_event(created_ms: u64) -> Event {
    let request_id = crate::ids::new_id("req");
    let route = crate::model::Route {
        source_id: "src_a",
        connection_id: "web_a",
        destination_id: "des_a",
    };
    let id = crate::ids::derived_id("evt", &request_id, "web_a");
    Event::new(id, &request_id, route, created_ms, false)
}

/// A request to `src_shop` with `body`, encoded as the journal keeps it.
#[cfg(test)]
fn test_request(body: &str) -> EncodedRequest {
    let payload = crate::model::Payload {
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    };
    let request = crate::model::Request::received(Some("src_shop"), "shop", &payload);
    EncodedRequest::new(&request, &payload).unwrap()
}

/// Which backend a test runs on (see `on_both_backends`).
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TestBackend {
    Embedded,
    Postgres,
}

/// A new store in a temporary directory, its trees in `backend` (for
/// PostgreSQL: a new database of the test server).
#[cfg(test)]
fn temp_store_on(backend: TestBackend) -> (tempfile::TempDir, Store) {
    let backend = match backend {
        TestBackend::Embedded => Backend::Embedded,
        TestBackend::Postgres => Backend::Postgres(Box::new(keyspace::test_server::database())),
    };
    temp_node(&backend)
}

/// A store in a temporary directory of its own on `backend`, as a node
/// has: several on one database are the nodes of a cluster.
#[cfg(test)]
fn temp_node(backend: &Backend) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_backed(dir.path(), 1 << 20, JOURNAL_SEGMENT_BYTES, None, backend);
    (dir, store.unwrap())
}

/// The store in `dir` opened again, as a restart after a crash finds it
/// (what sled wrote so far, no clean stop).
#[cfg(test)]
fn reopen(dir: tempfile::TempDir, store: Store) -> (tempfile::TempDir, Store) {
    store.flush().unwrap();
    drop(store);
    let store = Store::open(dir.path(), 1 << 20).unwrap();
    (dir, store)
}

#[cfg(test)]
mod tests {
    use super::*;

    on_both_backends!(
        a_fingerprint_is_a_duplicate_within_the_window_of_arrival_either_way_round,
        of_requests_claiming_one_fingerprint_at_once_exactly_one_wins,
        api_objects_kept_a_key_each_by_an_older_store_are_read_then_replaced_whole,
    );

    #[test]
    fn the_team_id_is_made_once_and_kept_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path(), 1 << 20).unwrap();
        let id = first.team_id().unwrap();
        assert!(id.starts_with("tm_"), "{id}");
        assert_eq!(first.team_id().unwrap(), id, "asked again");
        first.checkpoint().unwrap();
        let reopened = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(reopened.team_id().unwrap(), id, "after a restart");
    }

    fn a_fingerprint_is_a_duplicate_within_the_window_of_arrival_either_way_round(
        backend: TestBackend,
    ) {
        let (_dir, store) = temp_store_on(backend);
        let claim = |request: &str, received_ms: u64| {
            store
                .claim_fingerprint(&Sighting {
                    connection_id: "web_a",
                    fingerprint: b"fp",
                    request_id: request,
                    received_ms,
                    window_ms: 1_000,
                })
                .unwrap()
        };
        assert!(claim("req_a", 10_000));
        assert!(!claim("req_b", 10_500), "within the window");
        assert!(claim("req_a", 10_000), "the holder itself, routed again");
        assert!(claim("req_c", 12_000), "past the window");
        assert!(!claim("req_d", 11_500), "older, but within the window of c");
        assert!(claim("req_e", 10_900), "older, and past the window of c");
        assert!(!claim("req_f", 12_500), "c still holds it, not the older e");
    }

    fn of_requests_claiming_one_fingerprint_at_once_exactly_one_wins(backend: TestBackend) {
        let (_dir, store) = temp_store_on(backend);
        let claimers: Vec<_> = (0..4)
            .map(|claimer| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..300u32)
                        .filter(|fingerprint| {
                            let request = format!("req_{claimer}");
                            let fingerprint = fingerprint.to_be_bytes();
                            store
                                .claim_fingerprint(&Sighting {
                                    connection_id: "web_a",
                                    fingerprint: &fingerprint,
                                    request_id: &request,
                                    received_ms: 10_000,
                                    window_ms: 1_000,
                                })
                                .unwrap()
                        })
                        .count()
                })
            })
            .collect();
        let won: usize = claimers.into_iter().map(|c| c.join().unwrap()).sum();
        assert_eq!(won, 300, "one request per fingerprint");
    }

    fn api_objects_kept_a_key_each_by_an_older_store_are_read_then_replaced_whole(
        backend: TestBackend,
    ) {
        use crate::config::ObjectKind;
        let (_dir, store) = temp_store_on(backend);
        let object = |name: &str| ApiObject {
            kind: ObjectKind::Source,
            name: name.into(),
            fields: serde_json::Map::new(),
            archived_at: None,
            kept_id: None,
        };
        let (old, new) = (object("old"), object("new"));
        let old_key = "sources/old";
        put(&store.api_objects, old_key, &old).unwrap();
        assert_eq!(store.api_objects().unwrap(), vec![old.clone()]);

        store
            .replace_api_objects(&[old.clone(), new.clone()])
            .unwrap();
        assert_eq!(store.api_objects().unwrap(), vec![old, new.clone()]);
        assert!(!store.api_objects.contains_key(old_key).unwrap());
        store
            .replace_api_objects(std::slice::from_ref(&new))
            .unwrap();
        assert_eq!(store.api_objects().unwrap(), vec![new]);
        assert_eq!(store.api_objects.len(), 1, "one key holds them all");
    }

    /// Two nodes of a cluster: two stores, each with its own directory, one database.
    #[test]
    fn what_one_store_writes_to_a_shared_database_the_other_reads() {
        use crate::ids::now_ms;
        let settings = keyspace::test_server::database();
        // Every node must seal with the same key (`server.secrets_key`).
        let key = SecretsKey::parse(&format!("{}=", "A".repeat(43))).unwrap();
        let node = || {
            let dir = tempfile::tempdir().unwrap();
            let backend = Backend::Postgres(Box::new(settings.clone()));
            let store = Store::open_backed(
                dir.path(),
                1 << 20,
                JOURNAL_SEGMENT_BYTES,
                Some(&key),
                &backend,
            );
            (dir, store.unwrap())
        };
        let ((_a_dir, a), (_b_dir, b)) = (node(), node());
        let source = ApiObject {
            kind: crate::config::ObjectKind::Source,
            name: "shop".into(),
            fields: serde_json::Map::new(),
            archived_at: None,
            kept_id: None,
        };
        a.replace_api_objects(std::slice::from_ref(&source))
            .unwrap();
        assert_eq!(b.api_objects().unwrap(), vec![source]);

        let event = test_event(1);
        a.insert_event(&event, None, 5).unwrap();
        assert_eq!(b.event(&event.id).unwrap(), Some(event.clone()));
        let due = b
            .due_entries("des_a", now_ms(), 10, &Default::default())
            .unwrap();
        assert_eq!(
            due.iter().map(|e| &e.event_id).collect::<Vec<_>>(),
            [&event.id]
        );
        assert_eq!(a.team_id().unwrap(), b.team_id().unwrap(), "one instance");
    }

    /// A bulk retry started on one node and completed by another (the
    /// leader) counts as running on neither once it is over.
    #[test]
    fn a_bulk_retry_runs_on_every_nodes_count_until_another_node_completes_it() {
        let backend = Backend::Postgres(Box::new(keyspace::test_server::database()));
        let ((_a_dir, a), (_b_dir, b)) = (temp_node(&backend), temp_node(&backend));
        let mut bulk = BulkRetry {
            id: "bch_1".into(),
            kind: crate::model::BulkKind::Events,
            query: crate::model::BulkQuery::Encoded(String::new()),
            status: BulkStatus::Running,
            estimated_count: 1,
            completed_count: 0,
            failed_count: 0,
            cursor: None,
            created_at: 1,
            updated_at: None,
            completed_at: None,
            cancelled_at: None,
        };
        a.save_bulk_retry(&bulk).unwrap();
        assert_eq!((a.running_bulk_retries(), b.running_bulk_retries()), (1, 1));
        bulk.status = BulkStatus::Completed;
        b.save_bulk_retry(&bulk).unwrap();
        assert_eq!((a.running_bulk_retries(), b.running_bulk_retries()), (0, 0));
    }

    /// Two nodes change one event at once: the first (held up between its
    /// read and its write, as an attempt being settled) and the second (an
    /// API retry on another node). The second waits for the first, so both
    /// changes stay; each node's own locks alone let the first's stale
    /// copy overwrite the second's change.
    #[test]
    fn two_nodes_changing_one_event_at_once_lose_neither_change() {
        let requeues = change_while_another_node_changes(|b, id| {
            b.update_event(id, |event| {
                event.requeues += 10;
                (QueueMove::Stay, ())
            })
            .unwrap();
        });
        assert_eq!(requeues, 11, "both changes stay");
    }

    /// As above, the second an attempt that its lane's node settles, which
    /// takes no lock for every node: its write is refused while the API
    /// change holds the event's, and it settles once that change is stored.
    #[test]
    fn an_attempt_settled_while_another_node_changes_its_event_loses_neither_change() {
        let requeues = change_while_another_node_changes(|b, id| {
            let event = b.event(id).unwrap().unwrap();
            let attempt = attempts::tests::failed_attempt(&event, 1, "x");
            b.settle_attempt(
                attempt,
                |event, _| {
                    event.requeues += 10;
                    (QueueMove::Stay, ())
                },
                |_, _| {},
            )
            .unwrap();
        });
        assert_eq!(requeues, 11, "both changes stay");
    }

    /// Node A adds 1 to an event's `requeues` in an API change held up
    /// between its read and its write, while node B runs `second` (which
    /// adds 10) on the same event; then the `requeues` stored.
    fn change_while_another_node_changes(second: impl FnOnce(&Store, &str) + Send) -> u32 {
        let settings = keyspace::test_server::database();
        let backend = Backend::Postgres(Box::new(settings.clone()));
        let ((_a_dir, a), (_b_dir, b)) = (temp_node(&backend), temp_node(&backend));
        let event = test_event(1);
        a.insert_event(&event, None, 5).unwrap();
        let (inside, is_inside) = std::sync::mpsc::channel();
        let (go_on, goes_on) = std::sync::mpsc::channel();
        let (a, b, id) = (&a, &b, &event.id);
        std::thread::scope(|scope| {
            let first = scope.spawn(move || {
                a.update_event(id, |event| {
                    inside.send(()).unwrap();
                    goes_on.recv().unwrap();
                    event.requeues += 1;
                    (QueueMove::Stay, ())
                })
            });
            is_inside.recv().unwrap();
            let second = scope.spawn(move || second(b, id));
            // Done (no lock for every node), or waiting for the first's.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while !second.is_finished() && advisory_locks_awaited(&settings) == 0 {
                assert!(std::time::Instant::now() < deadline, "never waited");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            go_on.send(()).unwrap();
            first.join().unwrap().unwrap();
            second.join().unwrap();
        });
        let changed = b.event(&event.id).unwrap().unwrap();
        changed.requeues - event.requeues
    }

    /// How many sessions of the database wait for an advisory lock.
    fn advisory_locks_awaited(settings: &keyspace::RemoteSettings) -> i64 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let client = keyspace::test_server::client(&settings.config).await;
            let sql = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
                       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";
            client.query_one(sql, &[]).await.unwrap().get(0)
        })
    }

    #[test]
    fn a_store_whose_database_stops_answers_unavailable_until_it_is_back() {
        let server = keyspace::test_server::TestServer::start();
        let dir = tempfile::tempdir().unwrap();
        let backend = Backend::Postgres(Box::new(server.database()));
        let store =
            Store::open_backed(dir.path(), 1 << 20, JOURNAL_SEGMENT_BYTES, None, &backend).unwrap();
        let team = store.team_id().unwrap();
        server.stop();
        let error = store.team_id().unwrap_err();
        assert!(matches!(error, StoreError::Unavailable(_)), "{error}");
        server.restart();
        assert_eq!(store.team_id().unwrap(), team);
    }

    #[test]
    fn a_data_dir_serves_one_store_on_a_remote_keyspace_too() {
        let backend = Backend::Postgres(Box::new(keyspace::test_server::database()));
        let dir = tempfile::tempdir().unwrap();
        let open =
            || Store::open_backed(dir.path(), 1 << 20, JOURNAL_SEGMENT_BYTES, None, &backend);
        let first = open().unwrap();
        let error = open().err().unwrap();
        assert!(
            error.to_string().contains("could not acquire lock"),
            "{error}"
        );
        drop(first);
        open().unwrap();
    }

    #[test]
    fn only_the_last_handle_of_a_store_checkpoints_it() {
        let (dir, store) = temp_store();
        let other = store.clone();
        assert!(!other.checkpoint().unwrap(), "another handle is alive");
        assert!(store.checkpoint().unwrap());
        Store::open(dir.path(), 1 << 20).unwrap();
    }

    #[test]
    fn a_store_closing_while_it_is_opened_again_does_not_fail_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path(), 1 << 20).unwrap();
        let closing = std::sync::Barrier::new(2);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                closing.wait();
                drop(first);
            });
            closing.wait();
            Store::open(dir.path(), 1 << 20).unwrap();
        });
    }

    #[test]
    fn a_store_still_open_elsewhere_is_a_clear_lock_error_and_its_journal_is_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let _open = Store::open(dir.path(), 1 << 20).unwrap();
        // A write in progress in the running store: the tail of its segment
        // is not a whole frame yet.
        let segment = dir.path().join("journal").join("0000000000.journal");
        std::fs::write(&segment, [9u8; 5]).unwrap();
        let error = Store::open(dir.path(), 1 << 20).err().unwrap();
        assert!(
            error.to_string().contains("could not acquire lock"),
            "{error}"
        );
        assert_eq!(std::fs::read(&segment).unwrap(), [9u8; 5]);
    }
}

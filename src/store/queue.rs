//! The delivery queue: one ordered run of keys per destination,
//! `destination id ++ due time (ms, big-endian) ++ event id`.
//!
//! A lane reads only its own destination's prefix, in due order, so a destination
//! with a million waiting events costs the others nothing, and the backlog lives
//! on disk rather than in memory.

use super::{Result, Store};
use crate::ids::ID_LEN;
use crate::model::{Event, EventStatus};
use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Exact queue depths: each destination's is counted once, when first asked
/// for, and from then on kept by every enqueue and dequeue (counting a backlog
/// of a million events takes ~0.3 s even when cached: too slow to poll).
#[derive(Default)]
pub(super) struct Depths {
    by_destination: RwLock<HashMap<String, Arc<Depth>>>,
}

#[derive(Default)]
struct Depth {
    /// Set once the depth is known; from then on `count` follows every change.
    counted: AtomicBool,
    count: AtomicU64,
    /// Until then: the last key a running count has passed. Changes hold it
    /// shared (with their write), the count alone for each chunk it reads, so
    /// every change falls either before the chunk holding its key (the count
    /// sees it) or after (it is added to `missed`). A count never stops the
    /// queue for longer than one chunk.
    /// (parking_lot's, to hand it fairly to the changes waiting between chunks.)
    counted_through: parking_lot::RwLock<Option<Vec<u8>>>,
    /// Net changes to keys the running count had already passed.
    missed: AtomicI64,
    /// One count at a time.
    counting: Mutex<()>,
}

/// Keys a count reads at a time (a fraction of a millisecond).
const COUNT_CHUNK: usize = 4096;

impl Depths {
    fn of(&self, destination_id: &str) -> Arc<Depth> {
        let known = self
            .by_destination
            .read()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(depth) = known.get(destination_id) {
            return depth.clone();
        }
        drop(known);
        let mut all = self
            .by_destination
            .write()
            .unwrap_or_else(|e| e.into_inner());
        all.entry(destination_id.to_string()).or_default().clone()
    }
}

impl Depth {
    /// Runs the queue change of `key`; `change` says whether it added (+1),
    /// removed (-1) or left (0) an entry.
    fn change(&self, key: &[u8], change: impl FnOnce() -> Result<i64>) -> Result<()> {
        if !self.counted.load(Ordering::SeqCst) {
            let through = self.counted_through.read();
            if !self.counted.load(Ordering::SeqCst) {
                let delta = change()?;
                if through.as_deref().is_some_and(|through| key <= through) {
                    self.missed.fetch_add(delta, Ordering::SeqCst);
                }
                return Ok(());
            }
        }
        match change()? {
            1 => self.count.fetch_add(1, Ordering::SeqCst),
            -1 => self.count.fetch_sub(1, Ordering::SeqCst),
            _ => 0,
        };
        Ok(())
    }

    /// The depth, counted the first time: from `start`, `keys_after(key, n)`
    /// giving the next (up to) `n` keys of the destination after `key`.
    fn get(
        &self,
        start: &[u8],
        keys_after: impl Fn(&[u8], usize) -> Result<Vec<Vec<u8>>>,
    ) -> Result<u64> {
        if !self.counted.load(Ordering::SeqCst) {
            let _alone = self.counting.lock().unwrap_or_else(|e| e.into_inner());
            if !self.counted.load(Ordering::SeqCst) {
                self.count_all(start, keys_after)?;
            }
        }
        Ok(self.count.load(Ordering::SeqCst))
    }

    fn count_all(
        &self,
        start: &[u8],
        keys_after: impl Fn(&[u8], usize) -> Result<Vec<Vec<u8>>>,
    ) -> Result<()> {
        let mut seen = 0u64;
        let mut after = start.to_vec();
        let mut through = self.counted_through.write();
        self.missed.store(0, Ordering::SeqCst);
        loop {
            let chunk = match keys_after(&after, COUNT_CHUNK) {
                Ok(chunk) => chunk,
                Err(error) => {
                    *through = None; // the next call counts again
                    return Err(error);
                }
            };
            seen += chunk.len() as u64;
            if chunk.len() < COUNT_CHUNK {
                let missed = self.missed.load(Ordering::SeqCst);
                self.count
                    .store(seen.saturating_add_signed(missed), Ordering::SeqCst);
                self.counted.store(true, Ordering::SeqCst);
                *through = None;
                return Ok(());
            }
            after.clone_from(chunk.last().expect("a full chunk"));
            *through = Some(after.clone());
            // Changes waiting for this chunk go before the next one.
            parking_lot::RwLockWriteGuard::unlock_fair(through);
            through = self.counted_through.write();
        }
    }
}

/// An event waiting in a destination's queue.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueueEntry {
    pub due_ms: u64,
    pub event_id: String,
}

/// Whether `entry` is `event`'s own queue entry: due when the event says. (A
/// held event owns none; an event stored before due times were kept has no
/// due time to compare with, and owns what it finds.)
pub fn owns_entry(event: &Event, entry: &QueueEntry) -> bool {
    match event.next_attempt_at {
        Some(due_ms) => due_ms == entry.due_ms,
        None => event.status != EventStatus::Hold,
    }
}

fn queue_key(destination_id: &str, due_ms: u64, event_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 * ID_LEN + 8);
    key.extend_from_slice(destination_id.as_bytes());
    key.extend_from_slice(&due_ms.to_be_bytes());
    key.extend_from_slice(event_id.as_bytes());
    key
}

fn decode_entry(destination_id: &str, key: &[u8]) -> QueueEntry {
    let rest = &key[destination_id.len()..];
    let mut due = [0u8; 8];
    due.copy_from_slice(&rest[..8]);
    QueueEntry {
        due_ms: u64::from_be_bytes(due),
        event_id: String::from_utf8_lossy(&rest[8..]).into_owned(),
    }
}

impl Store {
    pub fn enqueue(&self, destination_id: &str, due_ms: u64, event_id: &str) -> Result<()> {
        let key = queue_key(destination_id, due_ms, event_id);
        self.depths.of(destination_id).change(&key, || {
            let replaced = self.queue.insert(key.as_slice(), &[])?;
            if replaced.is_none() {
                self.db.queued();
            }
            Ok(i64::from(replaced.is_none()))
        })
    }

    pub fn dequeue(&self, destination_id: &str, entry: &QueueEntry) -> Result<()> {
        let key = queue_key(destination_id, entry.due_ms, &entry.event_id);
        self.depths.of(destination_id).change(&key, || {
            let removed = self.queue.remove(key.as_slice())?;
            Ok(-i64::from(removed.is_some()))
        })
    }

    /// Drops a queue entry its event does not own: one a crash or a failed
    /// write left behind between an event's change and its queue move (the
    /// event is stored first). Makes sure of the event's own entry first.
    /// True when the entry was such a leftover (nothing to attempt for it).
    pub fn drop_leftover_entry(&self, destination_id: &str, entry: &QueueEntry) -> Result<bool> {
        let _serialized = self.event_lock(&entry.event_id)?;
        let Some(event) = self.event(&entry.event_id)? else {
            return Ok(false);
        };
        if owns_entry(&event, entry) {
            return Ok(false);
        }
        if let Some(due_ms) = event.next_attempt_at {
            self.enqueue(&event.destination_id, due_ms, &event.id)?;
        }
        self.dequeue(destination_id, entry)?;
        Ok(true)
    }

    /// Puts back the queue entry of a stored event that should have one and
    /// has none: routing stores an event, then its entry, in two writes, so
    /// a store that failed in between (a database going down) leaves the
    /// event unqueued, and routing again finds the event and makes no other.
    /// Returns the destination whose queue got it back, if any.
    pub fn restore_queue_entry(&self, event_id: &str) -> Result<Option<String>> {
        let _serialized = self.event_lock(event_id);
        let Some(event) = self.event(event_id)? else {
            return Ok(None); // ignored, or forgotten since
        };
        let Some(due_ms) = event
            .next_attempt_at
            .filter(|_| event.status != EventStatus::Hold)
        else {
            return Ok(None);
        };
        let key = queue_key(&event.destination_id, due_ms, &event.id);
        if self.queue.contains_key(&key)? {
            return Ok(None);
        }
        self.enqueue(&event.destination_id, due_ms, &event.id)?;
        Ok(Some(event.destination_id))
    }

    /// Moves a queued event to a new due time.
    pub fn reschedule(&self, destination_id: &str, entry: &QueueEntry, due_ms: u64) -> Result<()> {
        self.enqueue(destination_id, due_ms, &entry.event_id)?;
        if due_ms != entry.due_ms {
            self.dequeue(destination_id, entry)?;
        }
        Ok(())
    }

    /// Up to `limit` entries due at or before `now_ms`, oldest due first,
    /// skipping those already being attempted.
    pub fn due_entries(
        &self,
        destination_id: &str,
        now_ms: u64,
        limit: usize,
        in_flight: &HashSet<String>,
    ) -> Result<Vec<QueueEntry>> {
        let start = queue_key(destination_id, 0, "");
        let end = queue_key(destination_id, now_ms.saturating_add(1), "");
        let mut due = Vec::new();
        for key in self.queue.range(start..end).keys() {
            if due.len() == limit {
                break;
            }
            let entry = decode_entry(destination_id, &key?);
            if !in_flight.contains(&entry.event_id) {
                due.push(entry);
            }
        }
        Ok(due)
    }

    /// The due time of the first entry due after `now_ms`, for the lane's timer.
    pub fn next_due_after(&self, destination_id: &str, now_ms: u64) -> Result<Option<u64>> {
        let start = queue_key(destination_id, now_ms.saturating_add(1), "");
        let end = queue_key(destination_id, u64::MAX, "");
        match self.queue.range(start..end).keys().next() {
            Some(key) => Ok(Some(decode_entry(destination_id, &key?).due_ms)),
            None => Ok(None),
        }
    }

    /// The destination's earliest queued event.
    pub fn oldest_entry(&self, destination_id: &str) -> Result<Option<QueueEntry>> {
        match self
            .queue
            .scan_prefix(destination_id.as_bytes())
            .keys()
            .next()
        {
            Some(key) => Ok(Some(decode_entry(destination_id, &key?))),
            None => Ok(None),
        }
    }

    /// How many events wait for a destination (see `Depths`).
    pub fn queue_depth(&self, destination_id: &str) -> Result<u64> {
        let prefix = destination_id.as_bytes();
        let keys_after = |after: &[u8], limit: usize| {
            let mut keys = Vec::with_capacity(limit);
            let later = (Bound::Excluded(after), Bound::Unbounded);
            for key in self.queue.range::<&[u8], _>(later).keys().take(limit) {
                let key = key?;
                if !key.starts_with(prefix) {
                    break;
                }
                keys.push(key.to_vec());
            }
            Ok(keys)
        };
        self.depths.of(destination_id).get(prefix, keys_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{temp_store, temp_store_on, TestBackend};

    on_both_backends!(queue_depth_counts_what_was_queued_before_and_follows_every_change_after);

    fn entry(due_ms: u64, event_id: &str) -> QueueEntry {
        QueueEntry {
            due_ms,
            event_id: event_id.into(),
        }
    }

    fn queue_depth_counts_what_was_queued_before_and_follows_every_change_after(
        backend: TestBackend,
    ) {
        let (_dir, store) = temp_store_on(backend);
        let scanned = |store: &Store| store.queue.scan_prefix(b"des_a").count() as u64;
        store.enqueue("des_a", 1, "evt_1").unwrap();
        store.enqueue("des_a", 1, "evt_1").unwrap(); // the same entry again
        store.enqueue("des_a", 2, "evt_2").unwrap();
        store.enqueue("des_b", 1, "evt_3").unwrap();
        store.dequeue("des_a", &entry(9, "evt_gone")).unwrap();
        assert_eq!(
            store.queue_depth("des_a").unwrap(),
            2,
            "counted on first asking"
        );

        store.enqueue("des_a", 3, "evt_4").unwrap();
        store.enqueue("des_a", 3, "evt_4").unwrap();
        store.reschedule("des_a", &entry(1, "evt_1"), 5).unwrap();
        store.dequeue("des_a", &entry(2, "evt_2")).unwrap();
        store.dequeue("des_a", &entry(2, "evt_2")).unwrap();
        store.dequeue("des_a", &entry(7, "evt_unknown")).unwrap();
        assert_eq!(store.queue_depth("des_a").unwrap(), 2);
        assert_eq!(store.queue_depth("des_a").unwrap(), scanned(&store));
        assert_eq!(store.queue_depth("des_b").unwrap(), 1);
    }

    /// An event stored without its queue entry (the write between them
    /// failed) gets it back when its request is routed again, once.
    #[test]
    fn a_stored_event_missing_its_queue_entry_gets_it_back() {
        let (_dir, store) = temp_store();
        let route = crate::model::Route {
            source_id: "src_a",
            connection_id: "web_a",
            destination_id: "des_a",
        };
        let event = Event::new("evt_1".into(), "req_1", route, 5, false);
        store.insert_event(&event, None, 5).unwrap();
        assert_eq!(store.restore_queue_entry("evt_1").unwrap(), None, "queued");
        store.dequeue("des_a", &entry(5, "evt_1")).unwrap();

        let restored = store.restore_queue_entry("evt_1").unwrap();
        assert_eq!(restored.as_deref(), Some("des_a"));
        let queued: Vec<QueueEntry> =
            (store.due_entries("des_a", 10, 10, &Default::default())).unwrap();
        assert_eq!(queued, [entry(5, "evt_1")]);
        assert_eq!(store.restore_queue_entry("evt_1").unwrap(), None, "once");
        assert_eq!(store.restore_queue_entry("evt_unknown").unwrap(), None);
    }

    #[test]
    fn a_first_count_lets_queue_changes_through_between_its_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 64 << 20).unwrap();
        let queued = 8 * COUNT_CHUNK as u64;
        for n in 0..queued {
            store.enqueue("des_a", n, &format!("evt_{n:08}")).unwrap();
        }
        let depth = store.depths.of("des_a");
        let counter = {
            let store = store.clone();
            std::thread::spawn(move || store.queue_depth("des_a").unwrap())
        };
        // The count has read its first chunk once it marks how far it got.
        while depth.counted_through.read().is_none() {
            assert!(
                !depth.counted.load(Ordering::SeqCst),
                "counted before it was seen"
            );
            std::thread::yield_now();
        }
        store.dequeue("des_a", &entry(0, "evt_00000000")).unwrap(); // behind it
        store.enqueue("des_a", u64::MAX - 1, "evt_late").unwrap(); // ahead of it
        assert!(
            !depth.counted.load(Ordering::SeqCst),
            "the changes went through before the count ended"
        );
        assert_eq!(counter.join().unwrap(), queued);
        let scanned = store.queue.scan_prefix(b"des_a").count() as u64;
        assert_eq!(store.queue_depth("des_a").unwrap(), scanned);
    }

    #[test]
    fn queue_depth_stays_exact_when_first_counted_amid_changes() {
        let (_dir, store) = temp_store();
        let writers: Vec<_> = (0..4)
            .map(|writer| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for n in 0..400u64 {
                        let id = format!("evt_{writer}_{n}");
                        store.enqueue("des_a", n, &id).unwrap();
                        if n % 2 == 0 {
                            store.dequeue("des_a", &entry(n, &id)).unwrap();
                        }
                    }
                })
            })
            .collect();
        let midway = store.queue_depth("des_a").unwrap();
        for writer in writers {
            writer.join().unwrap();
        }
        assert!(midway <= 800);
        assert_eq!(store.queue_depth("des_a").unwrap(), 800);
    }

    /// A burst of events queued on one node is announced to the cluster
    /// (`NOTIFY hookgate, 'queue'`) at once and then at most every 50 ms,
    /// not once per event: each NOTIFY takes a lock of the whole database.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_burst_of_queued_events_is_announced_at_once_and_then_seldom() {
        use futures_util::StreamExt;
        use std::time::{Duration, Instant};
        use tokio_postgres::AsyncMessage;
        let settings = crate::store::keyspace::test_server::database();
        let backend = crate::store::Backend::Postgres(Box::new(settings.clone()));
        let (_dir, store) = crate::store::temp_node(&backend);
        let (client, mut connection) = settings
            .config
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap();
        let (heard, mut hears) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(|cx| connection.poll_message(cx));
            while let Some(Ok(message)) = messages.next().await {
                if let AsyncMessage::Notification(notification) = message {
                    let _ = heard.send((Instant::now(), notification.payload().to_string()));
                }
            }
        });
        client.batch_execute("LISTEN hookgate").await.unwrap();

        let started = Instant::now();
        for due in 0..200 {
            store.enqueue("des_a", due, &format!("evt_{due}")).unwrap();
        }
        let queued_for = started.elapsed();
        let mut announced = Vec::new();
        while let Ok(Some(heard)) = tokio::time::timeout(Duration::from_secs(1), hears.recv()).await
        {
            announced.push(heard);
        }
        assert!(
            announced.iter().all(|(_, what)| what == "queue"),
            "{announced:?}"
        );
        let first = announced.first().expect("announced").0;
        assert!(first - started < Duration::from_secs(1), "within a second");
        let at_most = queued_for.as_millis() / 50 + 2;
        assert!(
            announced.len() as u128 <= at_most,
            "{} for 200 queued in {queued_for:?}",
            announced.len()
        );
    }
}

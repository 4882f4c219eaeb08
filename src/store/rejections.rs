//! Rejected requests: kept as a bounded record of what was turned away, not
//! in the request journal.
//!
//! Anyone can send a rejected request (a bad signature costs nothing), so
//! keeping each one whole would let anyone fill the disk. The ingress keeps
//! only the start of the body and the headers without their secrets
//! (`ingress::rejection_record`); here the records are written to sled (a
//! rejection is never acknowledged, so it needs no fsync) within byte budgets:
//! one per source (unknown sources share one) and one overall. A record that
//! does not fit pushes out the oldest of its source, or overall the oldest of
//! the source holding most; `rejections_dropped` counts what went that way.
//! Retention forgets rejections sooner than the rest (`sweep_rejections`).
//!
//! A rejection lives in `requests` (without a journal location, so its
//! payload is read from `request_payloads`), and in `rejections` under
//! `source key \0 request id` → its size, which orders each source's records
//! oldest first.

use super::{payload_codec, Result, Store};
use crate::ids::created_ms;
use crate::model::{Payload, Request};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The byte budgets of rejection records (`[limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RejectionBudget {
    pub per_source_bytes: u64,
    pub total_bytes: u64,
}

/// What the records of rejections take, per source key and overall.
#[derive(Default)]
pub(super) struct RejectionLedger(Mutex<Usage>);

#[derive(Default)]
struct Usage {
    by_source: HashMap<String, u64>,
    total: u64,
    dropped: u64,
}

impl Usage {
    fn add(&mut self, source: &str, bytes: u64) {
        *self.by_source.entry(source.to_string()).or_default() += bytes;
        self.total += bytes;
    }

    fn remove(&mut self, source: &str, bytes: u64) {
        if let Some(used) = self.by_source.get_mut(source) {
            *used = used.saturating_sub(bytes);
            if *used == 0 {
                self.by_source.remove(source);
            }
        }
        self.total = self.total.saturating_sub(bytes);
    }

    fn of(&self, source: &str) -> u64 {
        self.by_source.get(source).copied().unwrap_or(0)
    }

    /// Counts a record dropped to stay within a budget; says so in the log
    /// at the 1st, 2nd, 4th, 8th, … (a flood must not flood the log too).
    fn note_dropped(&mut self) {
        self.dropped += 1;
        if self.dropped.is_power_of_two() {
            tracing::warn!(
                dropped = self.dropped,
                "rejected requests are over their record budget: the oldest records go (limits.rejection_bytes_*)"
            );
        }
    }

    fn fullest(&self) -> Option<String> {
        let (source, _) = self.by_source.iter().max_by_key(|(_, used)| **used)?;
        Some(source.clone())
    }
}

impl RejectionLedger {
    /// The usage of the records `rejections` holds.
    pub(super) fn load(rejections: &super::keyspace::Tree) -> Result<RejectionLedger> {
        let mut usage = Usage::default();
        for entry in rejections.iter() {
            let (key, size) = entry?;
            let (source, _) = split_key(&key);
            usage.add(&source, decode_size(&size));
        }
        Ok(RejectionLedger(Mutex::new(usage)))
    }
}

impl Store {
    /// Records a rejected request (its payload already cut down), pushing out
    /// older rejections to stay within `budget`. Returns false when the
    /// record alone is larger than a budget: then it is not kept either.
    pub fn record_rejection(
        &self,
        request: &Request,
        payload: &Payload,
        budget: RejectionBudget,
    ) -> Result<bool> {
        let source = source_key(request);
        let record = serde_json::to_vec(request)?;
        let payload = payload_codec::encode(payload);
        let size = (record.len() + payload.len()) as u64;
        let mut usage = self.rejection_ledger.0.lock().expect("rejection ledger");
        if size > budget.per_source_bytes.min(budget.total_bytes) {
            usage.note_dropped();
            return Ok(false);
        }
        while usage.of(source) + size > budget.per_source_bytes {
            if !self.drop_oldest_rejection(source, &mut usage)? {
                break;
            }
        }
        while usage.total + size > budget.total_bytes {
            let Some(fullest) = usage.fullest() else {
                break;
            };
            if !self.drop_oldest_rejection(&fullest, &mut usage)? {
                break;
            }
        }
        self.requests.insert(request.id.as_bytes(), record)?;
        self.request_payloads
            .insert(request.id.as_bytes(), payload)?;
        let key = rejection_key(source, &request.id);
        self.rejections.insert(key, &size.to_be_bytes())?;
        usage.add(source, size);
        // Never routed, a rejection is as final as a routed request: live
        // views learn of both from the one feed.
        super::announce(&self.routed_feed, || request.id.clone());
        Ok(true)
    }

    /// How many rejection records were pushed out (or never kept) to stay
    /// within the budgets since the gateway started.
    pub fn rejections_dropped(&self) -> u64 {
        self.rejection_ledger
            .0
            .lock()
            .expect("rejection ledger")
            .dropped
    }

    /// The bytes rejection records take: of one source key (a source id, or
    /// `""` for unknown sources) and overall.
    pub fn rejection_bytes(&self, source_id: Option<&str>) -> (u64, u64) {
        let usage = self.rejection_ledger.0.lock().expect("rejection ledger");
        (usage.of(source_id.unwrap_or_default()), usage.total)
    }

    /// Forgets the oldest rejection of `source`; false when it has none
    /// (its usage is then cleared, so that the ledger cannot stay wrong).
    fn drop_oldest_rejection(&self, source: &str, usage: &mut Usage) -> Result<bool> {
        let prefix = rejection_key(source, "");
        let Some(entry) = self.rejections.scan_prefix(&prefix).next() else {
            let stale = usage.of(source);
            usage.remove(source, stale);
            return Ok(false);
        };
        let (key, size) = entry?;
        self.forget_rejection(&key)?;
        usage.remove(source, decode_size(&size));
        usage.note_dropped();
        Ok(true)
    }

    fn forget_rejection(&self, key: &[u8]) -> Result<()> {
        let (_, id) = split_key(key);
        self.requests.remove(id.as_bytes())?;
        self.request_payloads.remove(id.as_bytes())?;
        self.rejections.remove(key)?;
        Ok(())
    }

    /// Forgets rejections received before `cutoff_ms`; returns how many.
    pub(super) fn sweep_rejections(&self, cutoff_ms: u64, stop: &AtomicBool) -> Result<u64> {
        let mut usage = self.rejection_ledger.0.lock().expect("rejection ledger");
        let mut forgotten = 0;
        for entry in self.rejections.iter() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let (key, size) = entry?;
            let (source, id) = split_key(&key);
            if created_ms(&id).is_some_and(|created| created < cutoff_ms) {
                self.forget_rejection(&key)?;
                usage.remove(&source, decode_size(&size));
                forgotten += 1;
            }
        }
        Ok(forgotten)
    }
}

/// Whose budget a rejection counts against: its source's, or for unknown
/// sources (any name a sender makes up) one shared budget.
fn source_key(request: &Request) -> &str {
    request.source_id.as_deref().unwrap_or_default()
}

fn rejection_key(source: &str, request_id: &str) -> Vec<u8> {
    [source.as_bytes(), b"\0", request_id.as_bytes()].concat()
}

fn split_key(key: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(key);
    let (source, id) = text.split_once('\0').unwrap_or(("", &text));
    (source.to_string(), id.to_string())
}

fn decode_size(value: &[u8]) -> u64 {
    value.try_into().map_or(0, u64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{RejectionCause, RequestStatus};

    fn rejection(source_id: Option<&str>, body: usize) -> (Request, Payload) {
        let payload = Payload {
            method: "POST".into(),
            path: String::new(),
            query: String::new(),
            headers: Vec::new(),
            body: vec![b'x'; body],
        };
        let request = Request {
            status: RequestStatus::Rejected,
            rejection_cause: Some(RejectionCause::VerificationFailed),
            ..Request::received(source_id, "shop", &payload)
        };
        (request, payload)
    }

    #[test]
    fn the_oldest_rejections_of_a_source_make_room_and_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let budget = RejectionBudget {
            per_source_bytes: 2_000,
            total_bytes: 3_000,
        };
        let mut ids = Vec::new();
        for _ in 0..6 {
            let (request, payload) = rejection(Some("src_shop"), 500);
            assert!(store.record_rejection(&request, &payload, budget).unwrap());
            ids.push(request.id);
        }
        let (shop, total) = store.rejection_bytes(Some("src_shop"));
        assert!(shop <= 2_000 && total == shop, "{shop} {total}");
        let kept: Vec<bool> = ids
            .iter()
            .map(|id| store.request(id).unwrap().is_some())
            .collect();
        assert_eq!(kept.first(), Some(&false), "the oldest went");
        assert_eq!(kept.last(), Some(&true), "the newest stays");
        let dropped = kept.iter().filter(|kept| !**kept).count() as u64;
        assert_eq!(store.rejections_dropped(), dropped);

        // The overall budget takes from the source holding most.
        let (other, payload) = rejection(None, 1_500);
        assert!(store.record_rejection(&other, &payload, budget).unwrap());
        let (unknown, total) = store.rejection_bytes(None);
        assert!(unknown > 1_500 && total <= 3_000, "{unknown} {total}");

        // The ledger is rebuilt from the tree on the next open.
        let before = store.rejection_bytes(Some("src_shop"));
        drop(store);
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(store.rejection_bytes(Some("src_shop")), before);
    }

    #[test]
    fn a_record_larger_than_the_budget_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let budget = RejectionBudget {
            per_source_bytes: 100,
            total_bytes: 1_000,
        };
        let (request, payload) = rejection(Some("src_shop"), 500);
        assert!(!store.record_rejection(&request, &payload, budget).unwrap());
        assert_eq!(store.request(&request.id).unwrap(), None);
        assert_eq!(store.rejections_dropped(), 1);
    }

    #[test]
    fn old_rejections_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let budget = RejectionBudget {
            per_source_bytes: 1 << 20,
            total_bytes: 1 << 20,
        };
        let (request, payload) = rejection(Some("src_shop"), 10);
        store.record_rejection(&request, &payload, budget).unwrap();
        let stop = AtomicBool::new(false);
        let created = created_ms(&request.id).unwrap();
        assert_eq!(store.sweep_rejections(created, &stop).unwrap(), 0);
        assert_eq!(store.sweep_rejections(created + 1, &stop).unwrap(), 1);
        assert_eq!(store.request(&request.id).unwrap(), None);
        assert_eq!(store.request_payload(&request.id).unwrap(), None);
        assert_eq!(store.rejection_bytes(Some("src_shop")), (0, 0));
    }
}

//! Keyset pagination over a tree. Ids sort by creation time, so key order is
//! `created_at` order, and a cursor is just the id where a page ended: stable
//! while new records arrive (they land at the end, never between pages).

use super::order::{scanned_page, walked_page, OrderedRequest};
use super::{Result, Store, StoreError};
use crate::model::{AttemptEntry, Bookmark, Event, Execution, IgnoredEvent, Request};
use serde::de::DeserializeOwned;
use std::cmp::Ordering;
use std::ops::Bound;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first.
    Asc,
    /// Newest first.
    Desc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    Start,
    /// The page after the one that ended with this id.
    Next(String),
    /// The page before the one that started with this id.
    Prev(String),
}

#[derive(Debug, Clone)]
pub struct PageRequest {
    /// The field pages are sorted by: `created_at` (key order) for the
    /// store's own pages; lists sorted in memory offer others (`api::listing`).
    pub order_by: String,
    pub dir: Direction,
    pub limit: usize,
    pub cursor: Cursor,
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    /// In the requested direction.
    pub items: Vec<T>,
    /// Cursor for the following page, when there is one.
    pub next: Option<String>,
    /// Cursor for the preceding page, when there is one.
    pub prev: Option<String>,
}

/// A lower and an upper bound on a tree's keys.
pub(super) type KeyBounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// Bounds that keep every key.
pub(super) const EVERY_KEY: KeyBounds = (Bound::Unbounded, Bound::Unbounded);

type Entries = Box<dyn Iterator<Item = Result<(sled::IVec, sled::IVec)>>>;

/// The ids a page may hold, by the time (ms, inclusive) in their stamp: a
/// time filter that agrees with the ids' order narrows a scan to the keys it
/// can match instead of reading every newer record to reach them. Exact for
/// requests (received at their id's time) and, as an upper bound, for
/// events (made after the request whose stamp their id carries).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StampWindow {
    pub from_ms: Option<u64>,
    pub to_ms: Option<u64>,
}

impl StampWindow {
    /// Every id.
    pub const ALL: StampWindow = StampWindow {
        from_ms: None,
        to_ms: None,
    };

    /// The ids in both windows.
    pub fn and(self, other: StampWindow) -> StampWindow {
        let tighter = |a: Option<u64>, b: Option<u64>, pick: fn(u64, u64) -> u64| match (a, b) {
            (Some(a), Some(b)) => Some(pick(a, b)),
            (a, b) => a.or(b),
        };
        StampWindow {
            from_ms: tighter(self.from_ms, other.from_ms, u64::max),
            to_ms: tighter(self.to_ms, other.to_ms, u64::min),
        }
    }

    /// The keys of the ids (`req_…`) whose stamp falls in the window.
    fn keys(&self, id_prefix: &str) -> KeyBounds {
        // A stamp is the time shifted left by 16; later times do not fit.
        const LAST_MS: u64 = u64::MAX >> 16;
        let key = |ms: u64| format!("{id_prefix}_{:016x}", ms << 16).into_bytes();
        let lower = match self.from_ms {
            Some(ms) => Bound::Included(key(ms.min(LAST_MS))),
            None => Bound::Unbounded,
        };
        let upper = match self.to_ms {
            Some(ms) if ms < LAST_MS => Bound::Excluded(key(ms + 1)),
            _ => Bound::Unbounded,
        };
        (lower, upper)
    }
}

/// The entries under `prefix` from `from` (an id under it, exclusive) going
/// forward (`ascending`) or backward, within `window` (key bounds).
pub(super) fn scan(
    tree: &super::keyspace::Tree,
    prefix: &str,
    from: Option<&str>,
    ascending: bool,
    window: &KeyBounds,
) -> Entries {
    let key = |id: &str| format!("{prefix}{id}").into_bytes();
    let lower = match from {
        Some(id) if ascending => Bound::Excluded(key(id)),
        _ => Bound::Included(prefix.as_bytes().to_vec()),
    };
    let upper = match from {
        Some(id) if !ascending => Bound::Excluded(key(id)),
        _ => past_prefix(prefix),
    };
    let lower = tighter(lower, window.0.clone(), Ordering::Greater);
    let upper = tighter(upper, window.1.clone(), Ordering::Less);
    if is_empty(&lower, &upper) {
        return Box::new(std::iter::empty());
    }
    let entries = tree.range::<Vec<u8>, _>((lower, upper));
    if ascending {
        Box::new(entries)
    } else {
        Box::new(entries.rev())
    }
}

/// Of two bounds on the same side, the one that lets fewer keys through:
/// the larger key for a lower bound (`Greater`), the smaller for an upper.
fn tighter(a: Bound<Vec<u8>>, b: Bound<Vec<u8>>, inward: Ordering) -> Bound<Vec<u8>> {
    match (&a, &b) {
        (Bound::Unbounded, _) => b,
        (_, Bound::Unbounded) => a,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            match x.cmp(y) {
                Ordering::Equal if matches!(b, Bound::Excluded(_)) => b,
                Ordering::Equal => a,
                order if order == inward => a,
                _ => b,
            }
        }
    }
}

/// Whether no key lies between the bounds (sled's range wants lower <= upper).
fn is_empty(lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>) -> bool {
    match (lower, upper) {
        (Bound::Included(low), Bound::Included(high)) => low > high,
        (
            Bound::Included(low) | Bound::Excluded(low),
            Bound::Included(high) | Bound::Excluded(high),
        ) => low >= high,
        _ => false,
    }
}

/// The first key after every key under `prefix` (ids are ASCII).
fn past_prefix(prefix: &str) -> Bound<Vec<u8>> {
    let mut end = prefix.as_bytes().to_vec();
    match end.last_mut() {
        Some(last) => {
            *last += 1;
            Bound::Excluded(end)
        }
        None => Bound::Unbounded,
    }
}

/// How many records one page reads at most. A filter that few records match
/// (a text search, a rare status) would otherwise read the whole store for
/// one page; past the budget the page ends short, with a cursor where the
/// scan stopped, and the next page reads on from there.
const SCAN_BUDGET: usize = 50_000;

/// Why a scan for a page stopped.
pub(super) enum Stop {
    /// The page is full, and another match follows it.
    Filled,
    /// The budget ran out; the record with this id was the last one read.
    Budget(String),
    /// No record is left.
    End,
}

/// Up to `limit` records that `keep` accepts, reading at most `budget`.
fn collect<T: DeserializeOwned>(
    entries: Entries,
    prefix: &str,
    (limit, budget): (usize, usize),
    keep: &dyn Fn(&T) -> bool,
) -> Result<(Vec<(String, T)>, Stop)> {
    let mut found = Vec::new();
    let mut last_read = None;
    for (read, entry) in entries.enumerate() {
        if read == budget {
            // Cursors exclude their id: the next page starts after the last one read.
            return Ok((found, Stop::Budget(last_read.unwrap_or_default())));
        }
        let (key, value) = entry?;
        let id = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
        let record: T = serde_json::from_slice(&value).map_err(StoreError::Corrupt)?;
        if keep(&record) {
            if found.len() == limit {
                return Ok((found, Stop::Filled));
            }
            found.push((id.clone(), record));
        }
        last_read = Some(id);
    }
    Ok((found, Stop::End))
}

/// How a page of a list the store pages is asked for.
pub enum Paging<'a, T> {
    /// By one key, with ids as cursors.
    ByKey(&'a PageRequest),
    /// By several keys, with positions as cursors (`order`).
    ByKeys(OrderedRequest<'a, T>),
}

/// A page of the entries whose key is `prefix ++ id`, within `window`.
fn paged<T: DeserializeOwned>(
    tree: &super::keyspace::Tree,
    (prefix, window): (&str, &KeyBounds),
    paging: Paging<T>,
    keep: &dyn Fn(&T) -> bool,
) -> Result<Page<T>> {
    match paging {
        Paging::ByKey(request) => page_under(tree, prefix, request, keep, window),
        Paging::ByKeys(request) if request.order.indexed => {
            walked_page(tree, (prefix, window), &request, keep)
        }
        Paging::ByKeys(request) => scanned_page(records(tree, prefix), &request, keep),
    }
}

/// `page` over the entries whose key is `prefix ++ id`; cursors are the ids.
fn page_under<T: DeserializeOwned>(
    tree: &super::keyspace::Tree,
    prefix: &str,
    request: &PageRequest,
    keep: &dyn Fn(&T) -> bool,
    window: &KeyBounds,
) -> Result<Page<T>> {
    page_within(tree, prefix, request, keep, window, SCAN_BUDGET)
}

/// `page_under`, reading at most `budget` records.
fn page_within<T: DeserializeOwned>(
    tree: &super::keyspace::Tree,
    prefix: &str,
    request: &PageRequest,
    keep: &dyn Fn(&T) -> bool,
    window: &KeyBounds,
    budget: usize,
) -> Result<Page<T>> {
    let forward = request.dir == Direction::Asc;
    let (from, ascending, backwards) = match &request.cursor {
        Cursor::Start => (None, forward, false),
        Cursor::Next(id) => (Some(id.as_str()), forward, false),
        Cursor::Prev(id) => (Some(id.as_str()), !forward, true),
    };
    let entries = scan(tree, prefix, from, ascending, window);
    let (found, stop) = collect(entries, prefix, (request.limit.max(1), budget), keep)?;
    Ok(finish(found, stop, backwards, &request.cursor))
}

/// The page of `found` (in scan order), with its cursors: on the far side
/// (where the scan went) the last match, or the record the budget stopped
/// at; on the near side the first match, or the cursor itself.
pub(super) fn finish<T>(
    mut found: Vec<(String, T)>,
    stop: Stop,
    backwards: bool,
    cursor: &Cursor,
) -> Page<T> {
    let far = match stop {
        Stop::Filled => found.last().map(|(id, _)| id.clone()),
        Stop::Budget(last_read) => Some(last_read),
        Stop::End => None,
    };
    let near = found.first().map(|(id, _)| id.clone()).or(match cursor {
        Cursor::Start => None,
        Cursor::Next(id) | Cursor::Prev(id) => Some(id.clone()),
    });
    let near = near.filter(|_| *cursor != Cursor::Start);
    if backwards {
        found.reverse();
    }
    let (next, prev) = match backwards {
        false => (far, near),
        true => (near, far),
    };
    Page {
        items: found.into_iter().map(|(_, record)| record).collect(),
        next,
        prev,
    }
}

/// The records under `prefix`, deserialized, with their keys past it as ids.
pub(super) fn records<'a, T: DeserializeOwned>(
    tree: &super::keyspace::Tree,
    prefix: &'a str,
) -> impl Iterator<Item = Result<(String, T)>> + 'a {
    tree.scan_prefix(prefix)
        .map(move |entry| super::order::decode(entry?, prefix))
}

/// How many records `keep` accepts (a full scan, without keeping them).
fn count<T: DeserializeOwned>(
    tree: &super::keyspace::Tree,
    keep: &dyn Fn(&T) -> bool,
) -> Result<u64> {
    let mut matched = 0;
    for value in tree.iter().values() {
        let record: T = serde_json::from_slice(&value?).map_err(StoreError::Corrupt)?;
        matched += u64::from(keep(&record));
    }
    Ok(matched)
}

impl Store {
    pub fn count_requests(&self, keep: &dyn Fn(&Request) -> bool) -> Result<u64> {
        count(&self.requests, keep)
    }

    pub fn count_events(&self, keep: &dyn Fn(&Event) -> bool) -> Result<u64> {
        count(&self.events, keep)
    }

    pub fn count_ignored_events(&self, keep: &dyn Fn(&IgnoredEvent) -> bool) -> Result<u64> {
        count(&self.ignored_events, keep)
    }

    /// A page of the requests `keep` accepts among those `stamps` allows.
    pub fn page_requests(
        &self,
        paging: Paging<Request>,
        stamps: StampWindow,
        keep: &dyn Fn(&Request) -> bool,
    ) -> Result<Page<Request>> {
        paged(&self.requests, ("", &stamps.keys("req")), paging, keep)
    }

    /// A page of the events `keep` accepts among those `stamps` allows.
    pub fn page_events(
        &self,
        paging: Paging<Event>,
        stamps: StampWindow,
        keep: &dyn Fn(&Event) -> bool,
    ) -> Result<Page<Event>> {
        paged(&self.events, ("", &stamps.keys("evt")), paging, keep)
    }

    /// A page of every attempt (of every event), in `request`'s order, with
    /// the attempts events wait for that were named ahead (see
    /// `AttemptEntry`).
    pub fn page_attempts(
        &self,
        request: &OrderedRequest<AttemptEntry>,
    ) -> Result<Page<AttemptEntry>> {
        scanned_page(self.all_attempt_entries(), request, &|_| true)
    }

    /// Every attempt: those kept inline in their event and the one it waits
    /// for if named ahead (the event records are read for their inline
    /// attempts anyway), then the others.
    fn all_attempt_entries(&self) -> impl Iterator<Item = Result<(String, AttemptEntry)>> + '_ {
        let of_events = records::<Event>(&self.events, "").flat_map(|found| {
            let entries: Vec<Result<(String, AttemptEntry)>> = match found {
                Ok((_, mut event)) => {
                    let made = std::mem::take(&mut event.attempt_records);
                    let made = made.into_iter().map(AttemptEntry::Made);
                    made.chain(AttemptEntry::pending(event))
                        .map(|entry| Ok((entry.id().to_string(), entry)))
                        .collect()
                }
                Err(error) => vec![Err(error)],
            };
            entries
        });
        let in_tree = self
            .attempts_of_their_own()
            .map(|found| found.map(|(id, attempt)| (id, AttemptEntry::Made(attempt))));
        of_events.chain(in_tree)
    }

    pub fn page_ignored_events(
        &self,
        paging: Paging<IgnoredEvent>,
        keep: &dyn Fn(&IgnoredEvent) -> bool,
    ) -> Result<Page<IgnoredEvent>> {
        paged(&self.ignored_events, ("", &EVERY_KEY), paging, keep)
    }

    pub fn page_bookmarks(
        &self,
        paging: Paging<Bookmark>,
        keep: &dyn Fn(&Bookmark) -> bool,
    ) -> Result<Page<Bookmark>> {
        paged(&self.bookmarks, ("", &EVERY_KEY), paging, keep)
    }

    /// A transformation's runs.
    pub fn page_executions(
        &self,
        transformation_id: &str,
        paging: Paging<Execution>,
        keep: &dyn Fn(&Execution) -> bool,
    ) -> Result<Page<Execution>> {
        paged(
            &self.executions,
            (transformation_id, &EVERY_KEY),
            paging,
            keep,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page<T: DeserializeOwned>(
        tree: &crate::store::keyspace::Tree,
        request: &PageRequest,
        keep: &dyn Fn(&T) -> bool,
    ) -> Result<Page<T>> {
        page_under(tree, "", request, keep, &EVERY_KEY)
    }

    fn tree_with(n: u32) -> (tempfile::TempDir, crate::store::keyspace::Tree) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::keyspace::Keyspace::Embedded(sled::open(dir.path()).unwrap());
        let tree = db.open_tree("t").unwrap();
        for i in 0..n {
            tree.insert(format!("id_{i:03}"), serde_json::to_vec(&i).unwrap())
                .unwrap();
        }
        (dir, tree)
    }

    fn ask(dir: Direction, cursor: Cursor) -> PageRequest {
        PageRequest {
            order_by: "created_at".into(),
            dir,
            limit: 3,
            cursor,
        }
    }

    #[test]
    fn pages_forward_and_back_in_both_directions() {
        let (_dir, tree) = tree_with(8);
        let all = |_: &u32| true;
        let first = page(&tree, &ask(Direction::Asc, Cursor::Start), &all).unwrap();
        assert_eq!(
            (first.items.clone(), first.prev.clone()),
            (vec![0, 1, 2], None)
        );
        let second = page(
            &tree,
            &ask(Direction::Asc, Cursor::Next(first.next.unwrap())),
            &all,
        )
        .unwrap();
        assert_eq!(second.items, vec![3, 4, 5]);
        let third = page(
            &tree,
            &ask(Direction::Asc, Cursor::Next(second.next.clone().unwrap())),
            &all,
        )
        .unwrap();
        assert_eq!(
            (third.items.clone(), third.next.clone()),
            (vec![6, 7], None)
        );
        let back = page(
            &tree,
            &ask(Direction::Asc, Cursor::Prev(third.prev.unwrap())),
            &all,
        )
        .unwrap();
        assert_eq!(back.items, vec![3, 4, 5]);
        let start = page(
            &tree,
            &ask(Direction::Asc, Cursor::Prev(back.prev.unwrap())),
            &all,
        )
        .unwrap();
        assert_eq!((start.items, start.prev), (vec![0, 1, 2], None));

        let newest = page(&tree, &ask(Direction::Desc, Cursor::Start), &all).unwrap();
        assert_eq!(newest.items, vec![7, 6, 5]);
        let older = page(
            &tree,
            &ask(Direction::Desc, Cursor::Next(newest.next.unwrap())),
            &all,
        )
        .unwrap();
        assert_eq!(older.items, vec![4, 3, 2]);
        let newer = page(
            &tree,
            &ask(Direction::Desc, Cursor::Prev(older.prev.unwrap())),
            &all,
        )
        .unwrap();
        assert_eq!(newer.items, vec![7, 6, 5]);
    }

    #[test]
    fn filters_apply_before_the_limit() {
        let (_dir, tree) = tree_with(10);
        let even = |n: &u32| n.is_multiple_of(2);
        let first = page(&tree, &ask(Direction::Asc, Cursor::Start), &even).unwrap();
        assert_eq!(first.items, vec![0, 2, 4]);
        let rest = page(
            &tree,
            &ask(Direction::Asc, Cursor::Next(first.next.unwrap())),
            &even,
        )
        .unwrap();
        assert_eq!((rest.items, rest.next), (vec![6, 8], None));
    }

    /// A tree of `req_…` ids, one per millisecond from 1,000 to 1,019, each
    /// holding its millisecond.
    fn stamped_tree() -> (tempfile::TempDir, crate::store::keyspace::Tree) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::keyspace::Keyspace::Embedded(sled::open(dir.path()).unwrap());
        let tree = db.open_tree("t").unwrap();
        for ms in 1_000u64..1_020 {
            tree.insert(stamped_id(ms), serde_json::to_vec(&ms).unwrap())
                .unwrap();
        }
        (dir, tree)
    }

    fn stamped_id(ms: u64) -> String {
        format!("req_{:016x}{ms:08x}", (ms << 16) + 7)
    }

    #[test]
    fn a_stamp_window_reads_only_the_ids_of_its_times_in_both_directions() {
        let (_dir, tree) = stamped_tree();
        let window = StampWindow {
            from_ms: Some(1_005),
            to_ms: Some(1_012),
        }
        .keys("req");
        for dir in [Direction::Asc, Direction::Desc] {
            let read = std::cell::Cell::new(0);
            let counted = |_: &u64| {
                read.set(read.get() + 1);
                true
            };
            let mut request = ask(dir, Cursor::Start);
            request.limit = 100;
            let found = page_under(&tree, "", &request, &counted, &window).unwrap();
            let mut times = found.items.clone();
            times.sort();
            assert_eq!(times, (1_005..=1_012).collect::<Vec<u64>>());
            assert_eq!(read.get(), 8, "records outside the window were read");
            // A cursor inside the window pages on within it.
            let cursor = Cursor::Next(stamped_id(found.items[2]));
            let rest = page_under(&tree, "", &ask(dir, cursor), &|_: &u64| true, &window).unwrap();
            assert_eq!(rest.items.len(), 3);
            assert!(rest.items.iter().all(|ms| (1_005..=1_012).contains(ms)));
        }
    }

    #[test]
    fn windows_intersect_and_an_empty_one_finds_nothing() {
        let (_dir, tree) = stamped_tree();
        let late = StampWindow {
            from_ms: Some(1_015),
            to_ms: None,
        };
        let early = StampWindow {
            from_ms: None,
            to_ms: Some(1_003),
        };
        assert_eq!(
            late.and(early),
            StampWindow {
                from_ms: Some(1_015),
                to_ms: Some(1_003)
            }
        );
        let all = |_: &u64| true;
        let start = ask(Direction::Asc, Cursor::Start);
        let none = page_under(&tree, "", &start, &all, &late.and(early).keys("req")).unwrap();
        assert!(none.items.is_empty());
        let beyond = StampWindow {
            from_ms: Some(u64::MAX),
            to_ms: Some(u64::MAX),
        };
        assert!(page_under(&tree, "", &start, &all, &beyond.keys("req"))
            .unwrap()
            .items
            .is_empty());
    }

    /// Walks every page from the start in `dir` by `next`, then back by
    /// `prev` from the last page; answers the records met each way.
    fn walk_with_budget(dir: Direction, budget: usize) -> (Vec<u32>, Vec<u32>) {
        let (_dir, tree) = tree_with(30);
        let rare = |n: &u32| n.is_multiple_of(5);
        let read = |cursor| page_within(&tree, "", &ask(dir, cursor), &rare, &EVERY_KEY, budget);
        let (mut forward, mut pages) = (Vec::new(), Vec::new());
        let mut page = read(Cursor::Start).unwrap();
        loop {
            forward.extend(page.items.clone());
            let Some(next) = page.next.clone() else { break };
            pages.push(page);
            page = read(Cursor::Next(next)).unwrap();
        }
        let mut backward = page.items.clone();
        while let Some(prev) = page.prev.clone() {
            page = read(Cursor::Prev(prev)).unwrap();
            backward.splice(0..0, page.items.clone());
        }
        assert!(
            pages.iter().any(|p| p.items.len() < 3),
            "no page ended short"
        );
        (forward, backward)
    }

    #[test]
    fn a_page_past_its_read_budget_ends_short_and_the_next_reads_on() {
        let mut every: Vec<u32> = (0..30u32).filter(|n| n.is_multiple_of(5)).collect();
        let (forward, backward) = walk_with_budget(Direction::Asc, 7);
        assert_eq!(forward, every);
        assert_eq!(backward, every);
        every.reverse();
        let (forward, backward) = walk_with_budget(Direction::Desc, 4);
        assert_eq!((&forward, &backward), (&every, &every));
    }
}

//! Keyset pagination over a tree. Ids sort by creation time, so key order is
//! `created_at` order, and a cursor is just the id where a page ended: stable
//! while new records arrive (they land at the end, never between pages).

use super::{Result, Store, StoreError};
use crate::model::{Attempt, AttemptEntry, Bookmark, Event, Execution, IgnoredEvent, Request};
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
type KeyBounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// Bounds that keep every key.
const EVERY_KEY: KeyBounds = (Bound::Unbounded, Bound::Unbounded);

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
fn scan(
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
enum Stop {
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

fn page<T: DeserializeOwned>(
    tree: &super::keyspace::Tree,
    request: &PageRequest,
    keep: &dyn Fn(&T) -> bool,
) -> Result<Page<T>> {
    page_under(tree, "", request, keep, &EVERY_KEY)
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
fn finish<T>(mut found: Vec<(String, T)>, stop: Stop, backwards: bool, cursor: &Cursor) -> Page<T> {
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

/// One page of `records` (id and record, in any order) sorted by `sort_key`
/// then id rather than by key order: one pass over them all that keeps only
/// the records nearest the cursor, so memory stays one page however many
/// there are (time grows with them). `cursor_key` is the sort key of the
/// record the cursor names (None at the start).
pub fn sorted_page<T, K: Ord + Clone>(
    records: impl Iterator<Item = Result<(String, T)>>,
    request: &PageRequest,
    cursor_key: Option<K>,
    sort_key: impl Fn(&T) -> K,
) -> Result<Page<T>> {
    let backwards = matches!(request.cursor, Cursor::Prev(_));
    let ascending = (request.dir == Direction::Asc) != backwards;
    let bound = match (&request.cursor, cursor_key) {
        (Cursor::Next(id) | Cursor::Prev(id), Some(key)) => Some((key, id.clone())),
        _ => None,
    };
    let keep = request.limit.max(1) + 1;
    let mut nearest = std::collections::BTreeMap::new();
    for record in records {
        let (id, record) = record?;
        let position = (sort_key(&record), id);
        let beyond = bound.as_ref().is_none_or(|bound| {
            if ascending {
                position > *bound
            } else {
                position < *bound
            }
        });
        if !beyond {
            continue;
        }
        nearest.insert(position, record);
        if nearest.len() > keep {
            // The farthest from the cursor goes.
            if ascending {
                nearest.pop_last();
            } else {
                nearest.pop_first();
            }
        }
    }
    let mut found: Vec<(String, T)> = nearest
        .into_iter()
        .map(|((_, id), record)| (id, record))
        .collect();
    if !ascending {
        found.reverse();
    }
    let stop = match found.len() == keep {
        true => Stop::Filled,
        false => Stop::End,
    };
    found.truncate(keep - 1);
    Ok(finish(found, stop, backwards, &request.cursor))
}

/// A tree's records, deserialized, with their keys as ids.
fn records<T: DeserializeOwned>(
    tree: &super::keyspace::Tree,
) -> impl Iterator<Item = Result<(String, T)>> {
    tree.iter().map(|entry| {
        let (key, value) = entry?;
        let record: T = serde_json::from_slice(&value).map_err(StoreError::Corrupt)?;
        Ok((String::from_utf8_lossy(&key).into_owned(), record))
    })
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
        request: &PageRequest,
        stamps: StampWindow,
        keep: &dyn Fn(&Request) -> bool,
    ) -> Result<Page<Request>> {
        page_under(&self.requests, "", request, keep, &stamps.keys("req"))
    }

    /// A page of the events `keep` accepts among those `stamps` allows.
    pub fn page_events(
        &self,
        request: &PageRequest,
        stamps: StampWindow,
        keep: &dyn Fn(&Event) -> bool,
    ) -> Result<Page<Event>> {
        page_under(&self.events, "", request, keep, &stamps.keys("evt"))
    }

    /// A page of the events `keep` accepts, sorted by `sort_key` (see
    /// `sorted_page`); `cursor_key` is the sort key of the cursor's event.
    pub fn page_events_sorted<K: Ord + Clone>(
        &self,
        request: &PageRequest,
        cursor_key: Option<K>,
        keep: &dyn Fn(&Event) -> bool,
        sort_key: impl Fn(&Event) -> K,
    ) -> Result<Page<Event>> {
        let kept = records(&self.events).filter(|found| match found {
            Ok((_, event)) => keep(event),
            Err(_) => true,
        });
        sorted_page(kept, request, cursor_key, sort_key)
    }

    /// A page of every attempt (of every event), by `created_at` then id,
    /// with the attempts events wait for that were named ahead (see
    /// `AttemptEntry`): the event records are read for their inline
    /// attempts anyway.
    pub fn page_attempts(
        &self,
        request: &PageRequest,
        cursor_key: Option<u64>,
    ) -> Result<Page<AttemptEntry>> {
        let of_events = records::<Event>(&self.events).flat_map(|found| {
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
        let in_tree = records::<Attempt>(&self.attempts)
            .map(|found| found.map(|(id, attempt)| (id, AttemptEntry::Made(attempt))));
        sorted_page(
            of_events.chain(in_tree),
            request,
            cursor_key,
            AttemptEntry::created_at,
        )
    }

    pub fn page_ignored_events(
        &self,
        request: &PageRequest,
        keep: &dyn Fn(&IgnoredEvent) -> bool,
    ) -> Result<Page<IgnoredEvent>> {
        page(&self.ignored_events, request, keep)
    }

    pub fn page_bookmarks(
        &self,
        request: &PageRequest,
        keep: &dyn Fn(&Bookmark) -> bool,
    ) -> Result<Page<Bookmark>> {
        page(&self.bookmarks, request, keep)
    }

    /// A transformation's runs (cursors are execution ids).
    pub fn page_executions(
        &self,
        transformation_id: &str,
        request: &PageRequest,
        keep: &dyn Fn(&Execution) -> bool,
    ) -> Result<Page<Execution>> {
        page_under(
            &self.executions,
            transformation_id,
            request,
            keep,
            &EVERY_KEY,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Ids `id_0..id_7` whose sort keys are not in id order (some shared).
    fn unsorted() -> Vec<(String, u32)> {
        [5, 1, 7, 1, 0, 3, 7, 2]
            .iter()
            .enumerate()
            .map(|(i, key)| (format!("id_{i}"), *key))
            .collect()
    }

    /// Every page of `unsorted` by key then id, walked with `next`, then
    /// back with `prev`: both must give the full sort in order.
    fn walk(dir: Direction) -> (Vec<String>, Vec<String>) {
        let key_of = |id: &str| unsorted().into_iter().find(|(i, _)| i == id).unwrap().1;
        let page_at = |cursor: Cursor| {
            let key = match &cursor {
                Cursor::Start => None,
                Cursor::Next(id) | Cursor::Prev(id) => Some(key_of(id)),
            };
            let records = unsorted()
                .into_iter()
                .map(|(id, key)| Ok((id.clone(), (id, key))));
            sorted_page(records, &ask(dir, cursor), key, |(_, key)| *key).unwrap()
        };
        let ids = |page: &Page<(String, u32)>| -> Vec<String> {
            page.items.iter().map(|(id, _)| id.clone()).collect()
        };
        let (mut forward, mut pages) = (Vec::new(), vec![page_at(Cursor::Start)]);
        while let Some(next) = pages.last().unwrap().next.clone() {
            pages.push(page_at(Cursor::Next(next)));
        }
        pages.iter().for_each(|page| forward.extend(ids(page)));
        let mut backward = ids(pages.last().unwrap());
        let mut at = pages.last().unwrap().prev.clone();
        while let Some(prev) = at {
            let page = page_at(Cursor::Prev(prev));
            backward.splice(0..0, ids(&page));
            at = page.prev.clone();
        }
        (forward, backward)
    }

    #[test]
    fn sorted_pages_walk_the_sort_key_order_both_ways_in_both_directions() {
        let mut by_key: Vec<String> = {
            let mut all = unsorted();
            all.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
            all.into_iter().map(|(id, _)| id).collect()
        };
        assert_eq!(walk(Direction::Asc), (by_key.clone(), by_key.clone()));
        by_key.reverse();
        assert_eq!(walk(Direction::Desc), (by_key.clone(), by_key));
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

//! Pages sorted by several keys (`order_by[]=last_attempt_at&order_by[]=created_at`).
//!
//! A record's place in such an order is its [`Position`]: every key's value,
//! then its id (the last tie-break, in the first key's direction). A cursor
//! is a position, encoded opaquely: the record it names may be gone or have
//! moved (its `last_attempt_at` changed) and the next page still starts right
//! after where the last one ended.
//!
//! When the tree holds its records in the first key's order (`created_at`:
//! ids are time-sortable), a page walks that index from the cursor and sorts
//! each run of equal first-key values by the next keys: it reads the page,
//! the rest of its last run, and the part of the cursor's run behind it.
//! Otherwise there is no index to walk and a page is one pass over every
//! record that keeps the nearest to the cursor: memory stays two pages
//! however many there are (time grows with them).

use super::page::{finish, scan, Cursor, Direction, KeyBounds, Page, Stop};
use super::{Result, StoreError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::cmp::Ordering;

/// How a sort key's value is read from a record.
pub type ReadKey<T> = fn(&T) -> Value;

/// How a list is sorted: each key's value in a record with its direction,
/// then the id in the first key's direction.
pub struct Order<T> {
    pub keys: Vec<(ReadKey<T>, Direction)>,
    /// Whether the tree's key order is the first key's order.
    pub indexed: bool,
}

/// Where a record stands in an [`Order`].
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    values: Vec<Value>,
    id: String,
}

/// Where a page of an [`Order`] starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Mark {
    Start,
    /// The page after this position.
    Next(Position),
    /// The page before this position.
    Prev(Position),
}

/// A page of records sorted by `order`.
pub struct OrderedRequest<'a, T> {
    pub order: &'a Order<T>,
    pub limit: usize,
    pub mark: Mark,
}

impl<T> Order<T> {
    pub fn position(&self, id: &str, record: &T) -> Position {
        Position {
            values: self.keys.iter().map(|(read, _)| read(record)).collect(),
            id: id.to_string(),
        }
    }

    /// `a` against `b` in this order.
    fn compare(&self, a: &Position, b: &Position) -> Ordering {
        let directed = |order: Ordering, dir: Direction| match dir {
            Direction::Asc => order,
            Direction::Desc => order.reverse(),
        };
        let by_keys = self
            .keys
            .iter()
            .zip(a.values.iter().zip(&b.values))
            .fold(Ordering::Equal, |order, ((_, dir), (a, b))| {
                order.then_with(|| directed(compare_values(a, b), *dir))
            });
        let id_dir = self.keys.first().map_or(Direction::Asc, |(_, dir)| *dir);
        by_keys.then_with(|| directed(a.id.cmp(&b.id), id_dir))
    }
}

impl Position {
    /// The cursor naming this position: opaque (base64url of JSON), so a
    /// client carries it as it is.
    pub fn token(&self) -> String {
        let mut all = self.values.clone();
        all.push(Value::String(self.id.clone()));
        BASE64.encode(Value::Array(all).to_string())
    }

    /// The position `token` names in an order of `keys` keys; None when it
    /// names none (tampered with, or from a list sorted otherwise).
    pub fn parse(token: &str, keys: usize) -> Option<Position> {
        let json = BASE64.decode(token).ok()?;
        let Value::Array(mut all) = serde_json::from_slice(&json).ok()? else {
            return None;
        };
        let Some(Value::String(id)) = all.pop() else {
            return None;
        };
        let scalar = |value: &Value| !value.is_array() && !value.is_object();
        (all.len() == keys && all.iter().all(scalar)).then_some(Position { values: all, id })
    }
}

impl Mark {
    /// The cursor a client gave for this mark.
    fn cursor(&self) -> Cursor {
        match self {
            Mark::Start => Cursor::Start,
            Mark::Next(at) => Cursor::Next(at.token()),
            Mark::Prev(at) => Cursor::Prev(at.token()),
        }
    }
}

/// JSON values in a total order: null, then booleans, numbers, strings (ISO
/// times sort as the times they name), then the rest as text. A key with no
/// value (`last_attempt_at` of an event never attempted) comes first
/// ascending, last descending.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(value: &Value) -> u8 {
        match value {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            _ => 4,
        }
    }
    match (a, b) {
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
            a.total_cmp(&b)
        }
        (Value::String(a), Value::String(b)) => a.cmp(b),
        _ => rank(a)
            .cmp(&rank(b))
            .then_with(|| a.to_string().cmp(&b.to_string())),
    }
}

/// The records of a page under way: those past the mark, in the order the
/// page walks (the requested one, reversed for `prev`).
struct Gathered<'a, T> {
    request: &'a OrderedRequest<'a, T>,
    found: Vec<(Position, T)>,
}

impl<'a, T> Gathered<'a, T> {
    fn new(request: &'a OrderedRequest<'a, T>) -> Self {
        Gathered {
            request,
            found: Vec::new(),
        }
    }

    fn backwards(&self) -> bool {
        matches!(self.request.mark, Mark::Prev(_))
    }

    /// `a` against `b` in the order the page walks.
    fn walking(&self, a: &Position, b: &Position) -> Ordering {
        let order = self.request.order.compare(a, b);
        match self.backwards() {
            true => order.reverse(),
            false => order,
        }
    }

    /// How many records a page keeps to know whether another follows.
    fn wanted(&self) -> usize {
        self.request.limit.max(1) + 1
    }

    /// Keeps `record` when it lies past the mark; keeps the memory to two
    /// pages by dropping, now and then, all but the nearest.
    fn offer(&mut self, position: Position, record: T) {
        let past = match &self.request.mark {
            Mark::Start => true,
            Mark::Next(at) | Mark::Prev(at) => self.walking(&position, at).is_gt(),
        };
        if !past {
            return;
        }
        self.found.push((position, record));
        if self.found.len() >= 2 * self.wanted() {
            self.keep_nearest();
        }
    }

    fn keep_nearest(&mut self) {
        let mut found = std::mem::take(&mut self.found);
        found.sort_by(|(a, _), (b, _)| self.walking(a, b));
        found.truncate(self.wanted());
        self.found = found;
    }

    /// The page, with cursors naming positions.
    fn page(mut self) -> Page<T> {
        self.keep_nearest();
        let stop = match self.found.len() == self.wanted() {
            true => Stop::Filled,
            false => Stop::End,
        };
        let mut found = std::mem::take(&mut self.found);
        found.truncate(self.wanted() - 1);
        let found = found
            .into_iter()
            .map(|(position, record)| (position.token(), record))
            .collect();
        finish(found, stop, self.backwards(), &self.request.mark.cursor())
    }
}

/// A page of `records` (id and record, in any order): one pass over all.
pub fn scanned_page<T>(
    records: impl Iterator<Item = Result<(String, T)>>,
    request: &OrderedRequest<T>,
    keep: &dyn Fn(&T) -> bool,
) -> Result<Page<T>> {
    let mut gathered = Gathered::new(request);
    for record in records {
        let (id, record) = record?;
        if keep(&record) {
            gathered.offer(request.order.position(&id, &record), record);
        }
    }
    Ok(gathered.page())
}

/// A page of the records under `prefix` within `window`, walking the key
/// order (the first key's): from the mark on, until the page is full and
/// the run of its last first-key value is over. The mark's own run is read
/// behind it too (and the mark's record): the next keys, not the id, order a run.
pub fn walked_page<T: DeserializeOwned>(
    tree: &super::keyspace::Tree,
    (prefix, window): (&str, &KeyBounds),
    request: &OrderedRequest<T>,
    keep: &dyn Fn(&T) -> bool,
) -> Result<Page<T>> {
    let first_key = request.order.keys[0].0;
    let mut gathered = Gathered::new(request);
    let ascending = (request.order.keys[0].1 == Direction::Asc) != gathered.backwards();
    let mark = match &request.mark {
        Mark::Start => None,
        Mark::Next(at) | Mark::Prev(at) => Some(at),
    };
    if let Some(at) = mark {
        // The mark's own record first: its next keys may have changed since.
        let key = format!("{prefix}{}", at.id);
        let own = tree
            .get(&key)?
            .map(|value| Ok((key.as_bytes().into(), value)));
        let behind = own
            .into_iter()
            .chain(scan(tree, prefix, Some(&at.id), !ascending, window));
        for entry in behind {
            let (id, record) = decode::<T>(entry?, prefix)?;
            if first_key(&record) != at.values[0] {
                break;
            }
            if keep(&record) {
                gathered.offer(request.order.position(&id, &record), record);
            }
        }
    }
    let ahead = scan(
        tree,
        prefix,
        mark.map(|at| at.id.as_str()),
        ascending,
        window,
    );
    let mut run: Option<Value> = None;
    for entry in ahead {
        let (id, record) = decode::<T>(entry?, prefix)?;
        let value = first_key(&record);
        let run_over = run.as_ref().is_some_and(|run| *run != value);
        if run_over && gathered.found.len() >= gathered.wanted() {
            break;
        }
        run = Some(value);
        if keep(&record) {
            gathered.offer(request.order.position(&id, &record), record);
        }
    }
    Ok(gathered.page())
}

/// An entry's id (its key past `prefix`) and record.
pub(super) fn decode<T: DeserializeOwned>(
    (key, value): (sled::IVec, sled::IVec),
    prefix: &str,
) -> Result<(String, T)> {
    let id = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
    let record = serde_json::from_slice(&value).map_err(StoreError::Corrupt)?;
    Ok((id, record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Records `id_00..id_11` of `(group, name)`: groups repeat, in key
    /// order (as `created_at` does), names do not follow the ids.
    fn tree() -> (tempfile::TempDir, super::super::keyspace::Tree) {
        let dir = tempfile::tempdir().unwrap();
        let db = super::super::keyspace::Keyspace::Embedded(sled::open(dir.path()).unwrap());
        let tree = db.open_tree("t").unwrap();
        let names = ["d", "a", "c", "a", "b", "e", "a", "f", "c", "b", "a", "d"];
        for (i, name) in names.iter().enumerate() {
            let record = (i as u64 / 5, name.to_string());
            tree.insert(format!("id_{i:02}"), serde_json::to_vec(&record).unwrap())
                .unwrap();
        }
        (dir, tree)
    }

    type Row = (u64, String);

    fn order(dirs: [Direction; 2]) -> Order<Row> {
        Order {
            keys: vec![
                (|r: &Row| json!(r.0), dirs[0]),
                (|r: &Row| json!(r.1), dirs[1]),
            ],
            indexed: true,
        }
    }

    /// Every page walked by `next`, then back by `prev`, three at a time.
    fn walk(order: &Order<Row>, read: &dyn Fn(&OrderedRequest<Row>) -> Page<Row>) -> [Vec<Row>; 2] {
        let ask = |mark| OrderedRequest {
            order,
            limit: 3,
            mark,
        };
        let mut page = read(&ask(Mark::Start));
        let mut forward = page.items.clone();
        while let Some(next) = page.next.clone() {
            page = read(&ask(Mark::Next(Position::parse(&next, 2).unwrap())));
            forward.extend(page.items.clone());
        }
        let mut backward = page.items.clone();
        while let Some(prev) = page.prev.clone() {
            page = read(&ask(Mark::Prev(Position::parse(&prev, 2).unwrap())));
            backward.splice(0..0, page.items.clone());
        }
        [forward, backward]
    }

    #[test]
    fn walked_and_scanned_pages_follow_every_key_both_ways() {
        let (_dir, tree) = tree();
        let all = |_: &Row| true;
        for dirs in [
            [Direction::Asc, Direction::Asc],
            [Direction::Asc, Direction::Desc],
            [Direction::Desc, Direction::Asc],
            [Direction::Desc, Direction::Desc],
        ] {
            let order = order(dirs);
            let mut rows: Vec<(String, Row)> = tree
                .iter()
                .map(|entry| decode(entry.unwrap(), "").unwrap())
                .collect();
            rows.sort_by(|(a, x), (b, y)| {
                order.compare(&order.position(a, x), &order.position(b, y))
            });
            let sorted: Vec<Row> = rows.iter().map(|(_, row)| row.clone()).collect();
            let walked = |request: &OrderedRequest<Row>| {
                walked_page(&tree, ("", &super::super::page::EVERY_KEY), request, &all).unwrap()
            };
            assert_eq!(
                walk(&order, &walked),
                [sorted.clone(), sorted.clone()],
                "{dirs:?}"
            );
            let scanned = |request: &OrderedRequest<Row>| {
                scanned_page(rows.clone().into_iter().map(Ok), request, &all).unwrap()
            };
            assert_eq!(walk(&order, &scanned), [sorted.clone(), sorted], "{dirs:?}");
        }
    }

    #[test]
    fn a_walked_page_reads_the_page_and_the_runs_it_touches_only() {
        let dir = tempfile::tempdir().unwrap();
        let db = super::super::keyspace::Keyspace::Embedded(sled::open(dir.path()).unwrap());
        let tree = db.open_tree("t").unwrap();
        // 100 records in runs of 5 equal first keys.
        for i in 0..100u64 {
            let record: Row = (i / 5, format!("{:02}", 99 - i));
            tree.insert(format!("id_{i:03}"), serde_json::to_vec(&record).unwrap())
                .unwrap();
        }
        let order = order([Direction::Asc, Direction::Asc]);
        let read = std::cell::Cell::new(0);
        let counted = |_: &Row| {
            read.set(read.get() + 1);
            true
        };
        let walk = |mark| {
            read.set(0);
            let request = OrderedRequest {
                order: &order,
                limit: 3,
                mark,
            };
            let window = &super::super::page::EVERY_KEY;
            walked_page(&tree, ("", window), &request, &counted).unwrap()
        };
        let first = walk(Mark::Start);
        assert_eq!(read.get(), 5, "the page and the rest of its run");
        // It ended inside the first run: the next page reads the part of
        // that run behind its cursor, the rest of it, and the next run.
        let next = Position::parse(&first.next.unwrap(), 2).unwrap();
        let second = walk(Mark::Next(next));
        let names = |items: &[Row]| {
            items
                .iter()
                .map(|(_, name)| name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&first.items), ["95", "96", "97"]);
        assert_eq!(names(&second.items), ["98", "99", "90"]);
        assert_eq!(read.get(), 5 + 5);
    }

    #[test]
    fn a_tampered_cursor_names_no_position() {
        let at = Position {
            values: vec![json!(3), Value::Null],
            id: "evt_1".into(),
        };
        assert_eq!(Position::parse(&at.token(), 2), Some(at.clone()));
        assert_eq!(Position::parse(&at.token(), 3), None);
        assert_eq!(Position::parse("evt_1", 2), None);
        let mut token = at.token();
        token.insert(4, '~');
        assert_eq!(Position::parse(&token, 2), None);
    }
}

//! `order_by` and `dir` for the lists the store pages (requests, events,
//! attempts, ignored events, bookmarks, transformation executions). They
//! take one key or several as the lists held in memory do
//! (`Query::page_sorted`). By the one key the store keeps its records in
//! (`created_at`) a cursor is the id a page ended with; by any other order it
//! is an opaque position (`store::Position`: every key's value and the id),
//! so ties on the first key page without a skip or a repeat.

use super::error::{ApiError, ApiResult};
use super::listing::SortedPage;
use super::query::Query;
use crate::model::{Attempt, Bookmark, Event, Execution, IgnoredEvent, Request};
use crate::store::{Cursor, Mark, Order, OrderedRequest, PageRequest, Paging, Position};
use serde_json::Value;

/// A key a list sorts by: its name in `order_by`, and its value in a record.
pub struct Key<T> {
    pub name: &'static str,
    pub read: fn(&T) -> Value,
    /// Whether the store keeps the records in this key's order (their ids
    /// are time-sortable: `created_at`), so a page walks that index.
    pub indexed: bool,
}

/// A page of a list the store pages.
pub struct StorePage<T> {
    pub sorted: SortedPage,
    /// By several keys, or one the store has no index of: their order and
    /// where the page starts.
    ordered: Option<(Order<T>, Mark)>,
}

/// Records a page's cursor can name.
pub trait Listed {
    fn id(&self) -> &str;
}

/// `limit`, `order_by` (one of `keys` or several, the first the default),
/// `dir` (one, or one per key), `next`, `prev`: a cursor that names no
/// position of this order is a 422 naming its parameter.
pub fn store_page<T>(query: &Query, keys: &[Key<T>]) -> ApiResult<StorePage<T>> {
    let names: Vec<&str> = keys.iter().map(|key| key.name).collect();
    let sorted = query.page_sorted(&names)?;
    let key_of = |name: &str| keys.iter().find(|key| key.name == name);
    let (keys_read, indexed): (Vec<_>, Vec<_>) = sorted
        .sort
        .iter()
        .filter_map(|(name, dir)| key_of(name).map(|key| ((key.read, *dir), key.indexed)))
        .unzip();
    if keys_read.len() == 1 && indexed[0] {
        return Ok(StorePage {
            sorted,
            ordered: None,
        });
    }
    let order = Order {
        keys: keys_read,
        indexed: indexed[0],
    };
    let position = |token: &str, parameter: &str| {
        Position::parse(token, order.keys.len()).ok_or_else(|| {
            ApiError::invalid(
                parameter,
                "not a cursor of this list in this order (give it as pagination gave it, with the same order_by)",
            )
        })
    };
    let mark = match &sorted.page.cursor {
        Cursor::Start => Mark::Start,
        Cursor::Next(token) => Mark::Next(position(token, "next")?),
        Cursor::Prev(token) => Mark::Prev(position(token, "prev")?),
    };
    Ok(StorePage {
        sorted,
        ordered: Some((order, mark)),
    })
}

impl<T: Listed> StorePage<T> {
    /// The page as one key asks for it (`order_by`, `dir`: the first key's).
    pub fn page(&self) -> &PageRequest {
        &self.sorted.page
    }

    /// By several keys (or an unindexed one): how the store is to page them.
    pub fn ordered(&self) -> Option<OrderedRequest<'_, T>> {
        self.ordered.as_ref().map(|(order, mark)| OrderedRequest {
            order,
            limit: self.sorted.page.limit,
            mark: mark.clone(),
        })
    }

    /// How the store is to page.
    pub fn paging(&self) -> Paging<'_, T> {
        match self.ordered() {
            Some(ordered) => Paging::ByKeys(ordered),
            None => Paging::ByKey(&self.sorted.page),
        }
    }

    /// The cursor naming `record`'s place in this order.
    pub fn cursor_of(&self, record: &T) -> String {
        match &self.ordered {
            Some((order, _)) => order.position(record.id(), record).token(),
            None => record.id().to_string(),
        }
    }
}

/// A record's `created_at` as the store sorts it: the time in its id, so
/// that records with equal values lie together in the key order (the
/// index a page walks). An event's is when its request arrived (a routing
/// time before the event's own `created_at`), as it is when the list is
/// sorted by `created_at` alone.
pub fn id_time<T: Listed>(record: &T) -> Value {
    crate::ids::created_ms(record.id()).map_or(Value::Null, Value::from)
}

macro_rules! listed {
    ($($model:ty),*) => {
        $(impl Listed for $model {
            fn id(&self) -> &str {
                &self.id
            }
        })*
    };
}

listed!(Request, Event, Attempt, IgnoredEvent, Bookmark, Execution);

impl Listed for crate::model::AttemptEntry {
    fn id(&self) -> &str {
        crate::model::AttemptEntry::id(self)
    }
}

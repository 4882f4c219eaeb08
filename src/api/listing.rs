//! Paging for lists held in memory (sources, destinations, connections,
//! transformations, issue triggers, bulk operations...): the reference's
//! `order_by`, `dir`, `limit`, `next`, `prev` over models already filtered.
//! Lists kept in sled trees page through the store instead (`Store::page_*`);
//! these are small enough to sort whole on every call.
//!
//! A cursor is the id of the model a page ended (or began) with, as in the
//! reference (`next=web_2urj7h9puxk6obro3x`); ties on the sort key are broken
//! by id, so every model has one place in the order.

use super::error::{ApiError, ApiResult};
use crate::store::{compare_values as compare, Cursor, Direction, Page, PageRequest};
use serde_json::Value;
use std::cmp::Ordering;

/// A page of a list held in memory, and the keys it is sorted by, each
/// with its direction (`page` has the first: `Query::page_sorted`).
#[derive(Debug)]
pub struct SortedPage {
    pub page: PageRequest,
    pub sort: Vec<(String, Direction)>,
}

/// The page `request` asks for of `models`, sorted by the keys of `sort`.
fn sorted_page_of(
    mut models: Vec<Value>,
    request: &PageRequest,
    sort: &[(String, Direction)],
) -> ApiResult<Page<Value>> {
    models.sort_by(|a, b| in_order(a, b, sort));
    let limit = request.limit.max(1);
    let (start, end) = match &request.cursor {
        Cursor::Start => (0, limit.min(models.len())),
        Cursor::Next(id) => {
            let after = position(&models, id, "next")? + 1;
            (after, (after + limit).min(models.len()))
        }
        Cursor::Prev(id) => {
            let before = position(&models, id, "prev")?;
            (before.saturating_sub(limit), before)
        }
    };
    let id_at = |index: usize| models[index]["id"].as_str().map(String::from);
    let next = (end < models.len() && end > start)
        .then(|| id_at(end - 1))
        .flatten();
    let prev = (start > 0 && end > start).then(|| id_at(start)).flatten();
    Ok(Page {
        items: models.drain(start..end).collect(),
        next,
        prev,
    })
}

/// The reference's list answer (`{pagination, count, models}`) for the page
/// `request` asks for of `models`.
pub fn answer(models: Vec<Value>, request: &SortedPage) -> ApiResult<axum::Json<Value>> {
    let found = sorted_page_of(models, &request.page, &request.sort)?;
    Ok(axum::Json(super::listed(
        &request.sort,
        request.page.limit,
        found.next,
        found.prev,
        found.items,
    )))
}

/// By each sort key in its direction, then by id (in the first key's), so
/// every model has one place in the order.
fn in_order(a: &Value, b: &Value, sort: &[(String, Direction)]) -> Ordering {
    let directed = |order: Ordering, dir: Direction| match dir {
        Direction::Asc => order,
        Direction::Desc => order.reverse(),
    };
    let by_keys = sort.iter().fold(Ordering::Equal, |order, (key, dir)| {
        order.then_with(|| directed(compare(&a[key.as_str()], &b[key.as_str()]), *dir))
    });
    let id_dir = sort.first().map_or(Direction::Asc, |(_, dir)| *dir);
    by_keys.then_with(|| directed(compare(&a["id"], &b["id"]), id_dir))
}

fn position(models: &[Value], id: &str, parameter: &str) -> ApiResult<usize> {
    models
        .iter()
        .position(|model| model["id"] == id)
        .ok_or_else(|| {
            ApiError::invalid(
                parameter,
                format!("\"{id}\" is not in this list (deleted, or filtered out since)"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn page_of(models: Vec<Value>, request: &PageRequest) -> ApiResult<Page<Value>> {
        let sort = [(request.order_by.clone(), request.dir)];
        sorted_page_of(models, request, &sort)
    }

    fn models() -> Vec<Value> {
        ["b", "a", "c", "e", "d"]
            .iter()
            .map(|id| json!({ "id": id, "name": format!("n{id}") }))
            .collect()
    }

    fn ask(dir: Direction, limit: usize, cursor: Cursor) -> PageRequest {
        PageRequest {
            order_by: "name".into(),
            dir,
            limit,
            cursor,
        }
    }

    fn ids(page: &Page<Value>) -> Vec<&str> {
        page.items
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn pages_walk_forward_and_back_over_the_sorted_list() {
        let first = page_of(models(), &ask(Direction::Asc, 2, Cursor::Start)).unwrap();
        assert_eq!((ids(&first), first.prev.clone()), (vec!["a", "b"], None));
        let next = Cursor::Next(first.next.clone().unwrap());
        let second = page_of(models(), &ask(Direction::Asc, 2, next)).unwrap();
        assert_eq!(ids(&second), vec!["c", "d"]);
        let next = Cursor::Next(second.next.clone().unwrap());
        let last = page_of(models(), &ask(Direction::Asc, 2, next)).unwrap();
        assert_eq!((ids(&last), last.next.clone()), (vec!["e"], None));
        let back = Cursor::Prev(last.prev.clone().unwrap());
        let again = page_of(models(), &ask(Direction::Asc, 2, back)).unwrap();
        assert_eq!(ids(&again), vec!["c", "d"]);
    }

    #[test]
    fn descending_starts_from_the_end() {
        let page = page_of(models(), &ask(Direction::Desc, 3, Cursor::Start)).unwrap();
        assert_eq!(ids(&page), vec!["e", "d", "c"]);
        assert_eq!(page.next.as_deref(), Some("c"));
    }

    #[test]
    fn a_cursor_naming_no_model_is_refused_naming_the_parameter() {
        let error = page_of(models(), &ask(Direction::Asc, 2, Cursor::Next("zz".into())));
        assert!(error.unwrap_err().message.contains("next"));
    }
}

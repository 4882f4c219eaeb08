//! `/bookmarks`: save an event's data under a label; `trigger` replays it
//! through its connection as a new event.

use super::error::{checked_name, json_body, ApiError, ApiResult};
use super::query::{iso, Query};
use super::{blocking, bounded_page, views, Shared};
use crate::ids::{new_id, now_ms};
use crate::model::{Bookmark, Event};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewBookmark {
    event_id: String,
    label: String,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookmarkChange {
    label: Option<String>,
    name: Option<String>,
}

/// A bookmark's label and name are both names (bounded alike).
fn check_names(label: Option<&str>, name: Option<&str>) -> ApiResult<()> {
    label.map_or(Ok(()), |label| checked_name("label", label))?;
    name.map_or(Ok(()), |name| checked_name("name", name))
}

fn view(bookmark: &Bookmark) -> Value {
    json!({
        "id": bookmark.id,
        "label": bookmark.label,
        "name": bookmark.name,
        "webhook_id": bookmark.connection_id,
        "event_id": bookmark.event_id,
        "data": views::data(&bookmark.data),
        "created_at": iso(bookmark.created_at),
        "last_used_at": bookmark.last_used_at.map(iso),
    })
}

#[utoipa::path(post, path = "/2023-07-01/bookmarks", tag = "bookmarks", summary = "Save an event's data: event_id, label, name", responses((status = 200, description = "the bookmark"), (status = 422, description = "unknown event")), security(("api_key" = [])))]
pub async fn create(
    State(state): Shared,
    body: Result<Json<NewBookmark>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let input = json_body(body)?;
    if input.label.trim().is_empty() {
        return Err(ApiError::invalid("label", "must not be empty"));
    }
    check_names(Some(&input.label), input.name.as_deref())?;
    let store = state.store.clone();
    blocking(move || {
        let event = store.event(&input.event_id)?.ok_or_else(|| {
            ApiError::invalid("event_id", format!("no event \"{}\"", input.event_id))
        })?;
        let data = store
            .event_payload(&event)?
            .ok_or_else(|| ApiError::not_found("event data", &event.id))?;
        let bookmark = Bookmark {
            id: new_id("bmk"),
            label: input.label,
            name: input.name,
            connection_id: event.connection_id,
            event_id: event.id,
            request_id: event.request_id,
            data,
            created_at: now_ms(),
            last_used_at: None,
        };
        store.save_bookmark(&bookmark)?;
        Ok(Json(view(&bookmark)))
    })
    .await
}

#[utoipa::path(get, path = "/2023-07-01/bookmarks", tag = "bookmarks", summary = "Bookmarks, newest first, a page at a time", params(("limit" = Option<String>, Query, description = "1-250, default 100"), ("dir" = Option<String>, Query, description = "asc or desc (default)"), ("next" = Option<String>, Query, description = "cursor from pagination.next"), ("prev" = Option<String>, Query, description = "cursor from pagination.prev")), responses((status = 200, description = "the bookmarks")), security(("api_key" = [])))]
pub async fn list(State(state): Shared, RawQuery(raw): RawQuery) -> ApiResult<Json<Value>> {
    let query = Query::parse(raw.as_deref());
    let page = query.page()?;
    query.refuse_unread()?;
    let budget = state.config.load().limits.api_page_bytes;
    let store = state.store.clone();
    blocking(move || {
        let found = store.page_bookmarks(&page)?;
        let answer = bounded_page(&page, found, budget, |bookmark| Ok(view(bookmark)))?;
        Ok(Json(answer))
    })
    .await
}

#[utoipa::path(get, path = "/2023-07-01/bookmarks/{id}", tag = "bookmarks", summary = "A bookmark", params(("id" = String, Path, description = "bmk_…")), responses((status = 200, description = "the bookmark"), (status = 404, description = "unknown")), security(("api_key" = [])))]
pub async fn get(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let store = state.store.clone();
    blocking(move || {
        Ok(Json(view(
            &store
                .bookmark(&id)?
                .ok_or_else(|| ApiError::not_found("bookmark", &id))?,
        )))
    })
    .await
}

#[utoipa::path(put, path = "/2023-07-01/bookmarks/{id}", tag = "bookmarks", summary = "Change a bookmark's label or name", params(("id" = String, Path, description = "bmk_…")), responses((status = 200, description = "the bookmark"), (status = 404, description = "unknown")), security(("api_key" = [])))]
pub async fn update(
    State(state): Shared,
    Path(id): Path<String>,
    body: Result<Json<BookmarkChange>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let change = json_body(body)?;
    check_names(change.label.as_deref(), change.name.as_deref())?;
    let store = state.store.clone();
    blocking(move || {
        let mut bookmark = store
            .bookmark(&id)?
            .ok_or_else(|| ApiError::not_found("bookmark", &id))?;
        if let Some(label) = change.label {
            bookmark.label = label;
        }
        if change.name.is_some() {
            bookmark.name = change.name;
        }
        store.save_bookmark(&bookmark)?;
        Ok(Json(view(&bookmark)))
    })
    .await
}

#[utoipa::path(delete, path = "/2023-07-01/bookmarks/{id}", tag = "bookmarks", summary = "Delete a bookmark", params(("id" = String, Path, description = "bmk_…")), responses((status = 200, description = "deleted"), (status = 404, description = "unknown")), security(("api_key" = [])))]
pub async fn delete(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let store = state.store.clone();
    blocking(move || {
        if !store.delete_bookmark(&id)? {
            return Err(ApiError::not_found("bookmark", &id));
        }
        Ok(Json(json!({ "id": id })))
    })
    .await
}

/// `POST /bookmarks/{id}/trigger`: a new event on the bookmark's connection
/// with the saved data, queued now.
#[utoipa::path(post, path = "/2023-07-01/bookmarks/{id}/trigger", tag = "bookmarks", summary = "Replay the saved data through its connection as a new event", params(("id" = String, Path, description = "bmk_…")), responses((status = 200, description = "the new event"), (status = 404, description = "unknown"), (status = 409, description = "the connection is gone")), security(("api_key" = [])))]
pub async fn trigger(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let (store, catalog) = (state.store.clone(), state.catalog.load_full());
    let event = blocking(move || {
        let mut bookmark = store
            .bookmark(&id)?
            .ok_or_else(|| ApiError::not_found("bookmark", &id))?;
        let connection = catalog.connection(&bookmark.connection_id).ok_or_else(|| {
            ApiError::conflict(format!(
                "the bookmark's connection \"{}\" no longer exists",
                bookmark.connection_id
            ))
        })?;
        let now = now_ms();
        let event = Event::new(
            new_id("evt"),
            &bookmark.request_id,
            connection.as_ref().into(),
            now,
            true,
        );
        store.insert_event(&event, Some(&bookmark.data), now)?;
        bookmark.last_used_at = Some(now);
        store.save_bookmark(&bookmark)?;
        Ok(event)
    })
    .await?;
    state.scheduler.wake(&event.destination_id);
    Ok(Json(views::event(&state.team_id, &event, None)))
}

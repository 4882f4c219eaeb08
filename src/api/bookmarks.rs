//! `/bookmarks`: save an event's data under a label; `trigger` replays it
//! through its connection as a new event.

use super::error::{checked_name, checked_present_name, json_body, ApiError, ApiResult};
use super::query::{iso, Query};
use super::schema::{value_of, Deleted, ErrorBody, Listing, RawBody};
use super::sorting::{id_time, store_page, Key};
use super::{blocking, bounded_page, views, ApiState, Shared};
use crate::ids::{event_data_id, event_of_data, new_id, now_ms};
use crate::model::{Bookmark, Catalog, Connection, Event, Payload};
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;
use utoipa::ToSchema;

/// The body of `POST /bookmarks` and `PUT /bookmarks/{id}`: the reference's
/// `event_data_id`, `webhook_id`, `label`, `name`, and hookgate's `event_id`
/// (the event itself) as another way to name the data.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookmarkInput {
    /// The event data to save (`edt_…`); required to create.
    event_data_id: Option<String>,
    /// The event whose data to save, instead of `event_data_id`.
    event_id: Option<String>,
    /// The connection it replays through; by default the event's.
    webhook_id: Option<String>,
    /// A descriptive label; required to create.
    label: Option<String>,
    /// A unique name to refer to it by.
    name: Option<String>,
}

impl BookmarkInput {
    /// The checks that need no store: bounded names, a label that says something.
    fn checked(self) -> ApiResult<BookmarkInput> {
        if let Some(label) = &self.label {
            checked_present_name("label", label)?;
        }
        if let Some(name) = &self.name {
            checked_name("name", name)?;
        }
        Ok(self)
    }

    /// The event whose data is to be saved, if the body names one (by
    /// `event_data_id` or `event_id`, which must then agree).
    fn event_id(&self) -> ApiResult<Option<String>> {
        let from_data = match &self.event_data_id {
            Some(data_id) => Some(event_of_data(data_id).ok_or_else(|| {
                ApiError::invalid(
                    "event_data_id",
                    format!("\"{data_id}\" is not an event data id (edt_…)"),
                )
            })?),
            None => None,
        };
        match (from_data, &self.event_id) {
            (Some(a), Some(b)) if a != *b => Err(ApiError::invalid(
                "event_id",
                "names another event than event_data_id",
            )),
            (from_data, event_id) => Ok(from_data.or_else(|| event_id.clone())),
        }
    }
}

/// The field a body named its event by, for errors about it.
fn event_field(input: &BookmarkInput) -> &'static str {
    if input.event_data_id.is_some() {
        "event_data_id"
    } else {
        "event_id"
    }
}

/// A bookmark as the reference shows it, plus hookgate's `event_id`.
#[derive(Serialize, ToSchema)]
pub struct BookmarkView {
    /// `bmk_…`.
    id: String,
    team_id: String,
    /// The connection it replays through.
    webhook_id: String,
    /// The saved event data (`edt_…`).
    event_data_id: String,
    /// A descriptive label.
    label: String,
    /// Always null: hookgate has no aliases.
    #[schema(required)]
    alias: Option<String>,
    /// A unique name to refer to it by.
    name: Option<String>,
    /// The saved data: `{headers, body, path, query, parsed_query, method}`.
    #[schema(value_type = Object)]
    data: Value,
    /// When it was last triggered.
    #[schema(required)]
    last_used_at: Option<String>,
    updated_at: String,
    created_at: String,
    /// The event whose data was saved.
    event_id: String,
}

fn view(team_id: &str, bookmark: &Bookmark) -> BookmarkView {
    BookmarkView {
        id: bookmark.id.clone(),
        team_id: team_id.to_string(),
        webhook_id: bookmark.connection_id.clone(),
        event_data_id: event_data_id(&bookmark.event_id),
        label: bookmark.label.clone(),
        alias: None,
        name: bookmark.name.clone(),
        data: views::data(&bookmark.data),
        last_used_at: bookmark.last_used_at.map(iso),
        updated_at: iso(bookmark.updated_at.unwrap_or(bookmark.created_at)),
        created_at: iso(bookmark.created_at),
        event_id: bookmark.event_id.clone(),
    }
}

/// The event a body names, and its data.
fn event_and_data(
    state: &ApiState,
    input: &BookmarkInput,
    event_id: &str,
) -> ApiResult<(Event, Payload)> {
    let field = event_field(input);
    let event = state
        .store
        .event(event_id)?
        .ok_or_else(|| ApiError::invalid(field, format!("no event data \"{event_id}\"")))?;
    let data = state
        .store
        .event_payload(&event)?
        .ok_or_else(|| ApiError::invalid(field, "the event's data is gone (retention)"))?;
    Ok((event, data))
}

/// Applies `webhook_id`, `label` and `name` of a body.
fn take_fields(state: &ApiState, bookmark: &mut Bookmark, input: BookmarkInput) -> ApiResult<()> {
    if let Some(webhook_id) = input.webhook_id {
        if state.catalog.load().connection(&webhook_id).is_none() {
            return Err(ApiError::invalid(
                "webhook_id",
                format!("no connection \"{webhook_id}\""),
            ));
        }
        bookmark.connection_id = webhook_id;
    }
    if let Some(label) = input.label {
        bookmark.label = label;
    }
    if input.name.is_some() {
        bookmark.name = input.name;
    }
    Ok(())
}

#[utoipa::path(post, path = "/2023-07-01/bookmarks", tag = "bookmarks", summary = "Save an event's data: event_data_id (or event_id), webhook_id (default: the event's connection), label, name", request_body = BookmarkInput, responses((status = 200, description = "the bookmark", body = BookmarkView), (status = 422, description = "unknown event data or connection", body = ErrorBody)), security(("api_key" = [])))]
pub async fn create(
    State(state): Shared,
    body: Result<Json<BookmarkInput>, JsonRejection>,
) -> ApiResult<Json<BookmarkView>> {
    let input = json_body(body)?.checked()?;
    let label = input.label.clone();
    let label = label.ok_or_else(|| ApiError::invalid("label", "is required"))?;
    let event_id = input
        .event_id()?
        .ok_or_else(|| ApiError::invalid("event_data_id", "is required"))?;
    blocking(move || {
        let (event, data) = event_and_data(&state, &input, &event_id)?;
        let now = now_ms();
        let mut bookmark = Bookmark {
            id: new_id("bmk"),
            label,
            name: None,
            connection_id: event.connection_id,
            event_id: event.id,
            request_id: event.request_id,
            data,
            created_at: now,
            updated_at: Some(now),
            last_used_at: None,
        };
        take_fields(&state, &mut bookmark, input)?;
        state.store.save_bookmark(&bookmark)?;
        Ok(Json(view(&state.team_id, &bookmark)))
    })
    .await
}

/// The list's filters: `id`, `name`, `webhook_id`, `event_data_id`,
/// `label` (each one value or an array) and `last_used_at[…]`.
fn bookmark_filter(query: &Query) -> ApiResult<impl Fn(&Bookmark) -> bool + Send + 'static> {
    let id = query.matcher("id");
    let name = query.matcher("name");
    let webhook = query.matcher("webhook_id");
    let data = query.matcher("event_data_id");
    let label = query.matcher("label");
    let last_used = query.date_range("last_used_at")?;
    Ok(move |bookmark: &Bookmark| {
        id(&bookmark.id)
            && name(bookmark.name.as_deref().unwrap_or_default())
            && webhook(&bookmark.connection_id)
            && data(&event_data_id(&bookmark.event_id))
            && label(&bookmark.label)
            && last_used.contains(bookmark.last_used_at)
    })
}

#[utoipa::path(get, path = "/2023-07-01/bookmarks", tag = "bookmarks", summary = "Bookmarks, newest first, a page at a time", params(("id" = Option<String>, Query, description = "id or id[]"), ("name" = Option<String>, Query, description = "name or name[]"), ("webhook_id" = Option<String>, Query, description = "connection id(s)"), ("event_data_id" = Option<String>, Query, description = "event data id(s)"), ("label" = Option<String>, Query, description = "label or label[]"), ("last_used_at[gte]" = Option<String>, Query, description = "ISO 8601; also gt, lte, lt, any"), ("limit" = Option<String>, Query, description = "1-255, default 100"), ("order_by" = Option<String>, Query, description = "created_at (default), label, name or last_used_at; or several, order_by[]=…"), ("dir" = Option<String>, Query, description = "asc or desc (default); dir[]=…: one per order_by key"), ("next" = Option<String>, Query, description = "cursor from pagination.next"), ("prev" = Option<String>, Query, description = "cursor from pagination.prev")), responses((status = 200, description = "the bookmarks", body = Listing<BookmarkView>), (status = 422, description = "an unknown parameter", body = ErrorBody)), security(("api_key" = [])))]
pub async fn list(State(state): Shared, RawQuery(raw): RawQuery) -> ApiResult<Json<Value>> {
    let query = Query::parse(raw.as_deref());
    let keep = bookmark_filter(&query)?;
    let page = store_page(&query, &BOOKMARK_ORDER)?;
    query.refuse_unread()?;
    let budget = state.config.load().limits.api_page_bytes;
    blocking(move || {
        let found = state.store.page_bookmarks(page.paging(), &keep)?;
        let answer = bounded_page(&page, found, budget, |bookmark| {
            Ok(value_of(view(&state.team_id, bookmark)))
        })?;
        Ok(Json(answer))
    })
    .await
}

/// What bookmarks sort by, one or several: `created_at` is the store's key
/// order.
const BOOKMARK_ORDER: [Key<Bookmark>; 4] = [
    Key {
        name: "created_at",
        read: id_time,
        indexed: true,
    },
    Key {
        name: "label",
        read: |bookmark| json!(bookmark.label),
        indexed: false,
    },
    Key {
        name: "name",
        read: |bookmark| json!(bookmark.name),
        indexed: false,
    },
    Key {
        name: "last_used_at",
        read: |bookmark| json!(bookmark.last_used_at),
        indexed: false,
    },
];

fn stored(state: &ApiState, id: &str) -> ApiResult<Bookmark> {
    state
        .store
        .bookmark(id)?
        .ok_or_else(|| ApiError::not_found("bookmark", id))
}

#[utoipa::path(get, path = "/2023-07-01/bookmarks/{id}", tag = "bookmarks", summary = "A bookmark", params(("id" = String, Path, description = "bmk_…")), responses((status = 200, description = "the bookmark", body = BookmarkView), (status = 404, description = "unknown", body = ErrorBody)), security(("api_key" = [])))]
pub async fn get(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<BookmarkView>> {
    blocking(move || Ok(Json(view(&state.team_id, &stored(&state, &id)?)))).await
}

/// `GET /bookmarks/:id/raw_body` (in Hookdeck's SDK): the saved body, as
/// the events' and requests' raw bodies are answered (a bookmark always
/// holds its data).
#[utoipa::path(get, path = "/2023-07-01/bookmarks/{id}/raw_body", tag = "bookmarks", summary = "A bookmark's saved body", params(("id" = String, Path, description = "bmk_…")), responses((status = 200, description = "{body}", body = RawBody), (status = 404, description = "unknown", body = ErrorBody)), security(("api_key" = [])))]
pub async fn raw_body(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<RawBody>> {
    blocking(move || {
        let data = stored(&state, &id)?.data;
        Ok(Json(RawBody::of(&data.body)))
    })
    .await
}

#[utoipa::path(put, path = "/2023-07-01/bookmarks/{id}", tag = "bookmarks", summary = "Change a bookmark's data (event_data_id or event_id), connection (webhook_id), label or name", params(("id" = String, Path, description = "bmk_…")), request_body = BookmarkInput, responses((status = 200, description = "the bookmark", body = BookmarkView), (status = 404, description = "unknown", body = ErrorBody), (status = 422, description = "unknown event data or connection", body = ErrorBody)), security(("api_key" = [])))]
pub async fn update(
    State(state): Shared,
    Path(id): Path<String>,
    body: Result<Json<BookmarkInput>, JsonRejection>,
) -> ApiResult<Json<BookmarkView>> {
    let input = json_body(body)?.checked()?;
    let event_id = input.event_id()?;
    blocking(move || {
        let mut bookmark = stored(&state, &id)?;
        if let Some(event_id) = event_id {
            let (event, data) = event_and_data(&state, &input, &event_id)?;
            bookmark.connection_id = event.connection_id;
            bookmark.event_id = event.id;
            bookmark.request_id = event.request_id;
            bookmark.data = data;
        }
        take_fields(&state, &mut bookmark, input)?;
        bookmark.updated_at = Some(now_ms());
        state.store.save_bookmark(&bookmark)?;
        Ok(Json(view(&state.team_id, &bookmark)))
    })
    .await
}

#[utoipa::path(delete, path = "/2023-07-01/bookmarks/{id}", tag = "bookmarks", summary = "Delete a bookmark", params(("id" = String, Path, description = "bmk_…")), responses((status = 200, description = "deleted", body = Deleted), (status = 404, description = "unknown", body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<Deleted>> {
    let store = state.store.clone();
    blocking(move || {
        if !store.delete_bookmark(&id)? {
            return Err(ApiError::not_found("bookmark", &id));
        }
        Ok(Json(Deleted { id }))
    })
    .await
}

/// The body of `POST /bookmarks/{id}/trigger`.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BookmarkTriggerInput)]
pub struct TriggerInput {
    /// `http` (the default) or `cli`.
    target: Option<String>,
}

/// The trigger's body: none at all (the reference's example sends none,
/// with or without a JSON content type) is `{}`.
fn trigger_input(body: &[u8]) -> ApiResult<TriggerInput> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(TriggerInput::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid("body", e.to_string()))
}

/// Where a trigger sends the saved data (the reference's `target`).
#[derive(Clone, Copy, PartialEq)]
enum Target {
    /// The bookmark's connection, as any event.
    Http,
    /// The CLI clients: in hookgate, the `hookgate listen` sessions of the
    /// CLI destinations behind the bookmark's source (one event per CLI
    /// connection; its listeners share it, or it waits for one).
    Cli,
}

fn target_of(target: Option<&str>) -> ApiResult<Target> {
    match target {
        None | Some("http") => Ok(Target::Http),
        Some("cli") => Ok(Target::Cli),
        Some(other) => Err(ApiError::invalid(
            "target",
            format!("\"{other}\" is not http or cli"),
        )),
    }
}

/// The connections a trigger makes events on: the bookmark's own (`http`),
/// or every connection of its source to a CLI destination (`cli`).
fn connections_for(
    catalog: &Catalog,
    connection: &Arc<Connection>,
    target: Target,
) -> ApiResult<Vec<Arc<Connection>>> {
    if target == Target::Http {
        return Ok(vec![connection.clone()]);
    }
    let is_cli = |c: &&Arc<Connection>| {
        let destination = catalog.destination(&c.destination_id);
        destination.is_some_and(|d| d.url.is_none())
    };
    let cli: Vec<_> = (catalog.connections_of(&connection.source_id).iter())
        .filter(is_cli)
        .cloned()
        .collect();
    match cli.is_empty() {
        true => Err(ApiError::invalid(
            "target",
            "\"cli\": the bookmark's source has no connection to a CLI destination (see `hookgate listen`)",
        )),
        false => Ok(cli),
    }
}

/// `POST /bookmarks/{id}/trigger`: new events with the saved data, queued
/// now: one on the bookmark's connection (`http`), or one per CLI
/// connection of its source (`cli`). The answer is the list of events made.
#[utoipa::path(post, path = "/2023-07-01/bookmarks/{id}/trigger", tag = "bookmarks", summary = "Replay the saved data as new events: through its connection (target http), or to the `hookgate listen` sessions of its source's CLI destinations (target cli, one event per CLI connection)", params(("id" = String, Path, description = "bmk_…")), request_body(content = Option<TriggerInput>, description = "optional: no body is {}"), responses((status = 200, description = "an array of the new events (event views)", body = Vec<super::views::EventView>), (status = 404, description = "unknown", body = ErrorBody), (status = 409, description = "the connection is gone", body = ErrorBody), (status = 422, description = "an unknown target, or cli with no CLI connection on the source", body = ErrorBody)), security(("api_key" = [])))]
pub async fn trigger(
    State(state): Shared,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Vec<Value>>> {
    let input = trigger_input(&body)?;
    let target = target_of(input.target.as_deref())?;
    let job_state = state.clone();
    let (events, data) = blocking(move || {
        let state = &job_state;
        let mut bookmark = stored(state, &id)?;
        let catalog = state.catalog.load();
        let connection = catalog.connection(&bookmark.connection_id).ok_or_else(|| {
            ApiError::conflict(format!(
                "the bookmark's connection \"{}\" no longer exists",
                bookmark.connection_id
            ))
        })?;
        let connections = connections_for(&catalog, connection, target)?;
        let now = now_ms();
        let mut events = Vec::with_capacity(connections.len());
        for connection in connections {
            let event = Event::new(
                new_id("evt"),
                &bookmark.request_id,
                connection.as_ref().into(),
                now,
                true,
            );
            state
                .store
                .insert_event(&event, Some(&bookmark.data), now)?;
            events.push(event);
        }
        (bookmark.last_used_at, bookmark.updated_at) = (Some(now), Some(now));
        state.store.save_bookmark(&bookmark)?;
        Ok((events, bookmark.data))
    })
    .await?;
    for event in &events {
        state.scheduler.wake(&event.destination_id);
    }
    // With their data, as the reference's example (L5627) shows them.
    let views = events
        .iter()
        .map(|e| views::event(&state.team_id, e, Some(&data)));
    Ok(Json(views.collect()))
}

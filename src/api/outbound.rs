//! `/events` and `/attempts`: what goes out, and each try; retry and mute.

use super::error::{ApiError, ApiResult};
use super::listing;
use super::query::{Query, Range, Selection};
use super::schema::{value_of, ErrorBody, Listing, RawBody};
use super::sorting::{id_time, store_page, Key};
use super::views::{AttemptView, EventView};
use super::{blocking, bounded_page, views, with_data, Shared};
use crate::ids::now_ms;
use crate::model::{AttemptEntry, Event, EventStatus};
use crate::store::{QueueMove, StampWindow, Store};
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

/// `GET /events`: filters `id`, `status`, `webhook_id`, `source_id`,
/// `destination_id`, `request_id`, `attempts`, `response_status`, `error_code`,
/// `created_at[…]`, `last_attempt_at[…]`, `successful_at[…]`, `cli_id`, the
/// payload filters and `search_term`; `include=data`; sorted by `created_at`
/// or `last_attempt_at`.
#[utoipa::path(get, path = "/2023-07-01/events", tag = "events", summary = "Events, newest first", params(("limit" = Option<String>, Query, description = "1-255, default 100"), ("order_by" = Option<String>, Query, description = "created_at (default) or last_attempt_at; or both, order_by[]=last_attempt_at&order_by[]=created_at (ties on the first key sorted by the next, then by id)"), ("dir" = Option<String>, Query, description = "asc or desc (default); dir[]=…: one per order_by key"), ("next" = Option<String>, Query, description = "cursor from pagination.next"), ("prev" = Option<String>, Query, description = "cursor from pagination.prev"), ("id" = Option<String>, Query, description = "id or id[]"), ("status" = Option<String>, Query, description = "SCHEDULED, QUEUED, HOLD, SUCCESSFUL, FAILED"), ("cli_id" = Option<String>, Query, description = "the hookgate listen session (cli_…) an event's last attempt went through; cli_id[any]=true: events sent through any, false: through none; not given: every event (a CLI destination's events are ordinary events, shared by its listeners)"), ("successful_at[gte]" = Option<String>, Query, description = "ISO 8601; also gt, lte, lt, any"), ("search_term" = Option<String>, Query, description = "text in the body, a header, the path or the query (3 characters or more)"), ("webhook_id" = Option<String>, Query, description = "connection id"), ("source_id" = Option<String>, Query, description = "source id"), ("destination_id" = Option<String>, Query, description = "destination id"), ("request_id" = Option<String>, Query, description = "request id"), ("attempts" = Option<String>, Query, description = "number of attempts; also attempts[gte], gt, lte, lt"), ("response_status" = Option<String>, Query, description = "last response status; also response_status[gte], gt, lte, lt, any"), ("error_code" = Option<String>, Query, description = "e.g. TIMEOUT"), ("created_at[gte]" = Option<String>, Query, description = "ISO 8601; also gt, lte, lt"), ("last_attempt_at[gte]" = Option<String>, Query, description = "ISO 8601; also gt, lte, lt, any"), ("include" = Option<String>, Query, description = "data: include the payload"), ("body" = Option<String>, Query, description = "JSON filter on the body (Hookdeck filter syntax)"), ("headers" = Option<String>, Query, description = "JSON filter on the headers")), responses((status = 200, description = "a page of events", body = Listing<EventView>), (status = 422, description = "a bad parameter", body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_events(State(state): Shared, RawQuery(raw): RawQuery) -> ApiResult<Json<Value>> {
    let query = Query::parse(raw.as_deref());
    let page = store_page(&query, &EVENT_ORDER)?;
    let Selection { keep, stamps } = event_filter(&query, &state.store)?;
    let include_data = query.one("include") == Some("data");
    query.refuse_unread()?;
    let budget = state.config.load().limits.api_page_bytes;
    let (store, team) = (state.store.clone(), state.team_id.clone());
    blocking(move || {
        let found = store.page_events(page.paging(), stamps, &keep)?;
        let payload = |e: &Event| store.event_payload(e);
        let view = with_data(include_data, payload, |e, data| {
            views::event(&team, e, data)
        });
        Ok(Json(bounded_page(&page, found, budget, view)?))
    })
    .await
}

/// What events sort by (L4662), one or both: the first is the store's key
/// order.
pub(super) const EVENT_ORDER: [Key<Event>; 2] = [
    Key {
        name: "created_at",
        read: id_time,
        indexed: true,
    },
    Key {
        name: "last_attempt_at",
        read: |event| json!(event.last_attempt_at),
        indexed: false,
    },
];

/// The events' filter; their `created_at` filter as a window of ids is its
/// upper bound only, as an event is made at or after the time of the request
/// (or job) whose stamp its id carries (`derived_id`).
pub(super) fn event_filter(
    query: &Query,
    store: &Store,
) -> ApiResult<Selection<impl Fn(&Event) -> bool + Send + 'static>> {
    let (id, status, connection) = (
        query.matcher("id"),
        query.matcher("status"),
        query.matcher("webhook_id"),
    );
    let (source, destination, request) = (
        query.matcher("source_id"),
        query.matcher("destination_id"),
        query.matcher("request_id"),
    );
    let error_code = query.matcher("error_code");
    let response_status = query.numbers("response_status")?;
    let attempts = query.numbers("attempts")?;
    let created: Range = query.date_range("created_at")?;
    let last_attempt: Range = query.date_range("last_attempt_at")?;
    let successful: Range = query.date_range("successful_at")?;
    let payload = query.payload_filter()?;
    let cli = cli_filter(query)?;
    let stamps = StampWindow {
        from_ms: None,
        ..created.stamps()
    };
    let store = store.clone();
    let keep = move |e: &Event| {
        cli(e.cli_id.as_deref())
            && id(&e.id)
            && status(e.status.as_str())
            && connection(&e.connection_id)
            && source(&e.source_id)
            && destination(&e.destination_id)
            && request(&e.request_id)
            && error_code(e.error_code.as_deref().unwrap_or_default())
            && response_status.contains(e.response_status.map(u64::from))
            && attempts.contains(Some(u64::from(e.attempts)))
            && created.contains(Some(e.created_at))
            && last_attempt.contains(e.last_attempt_at)
            && successful.contains(e.successful_at)
            && payload
                .as_ref()
                .is_none_or(|filter| filter.matches(store.event_payload(e).ok().flatten().as_ref()))
    };
    Ok(Selection { keep, stamps })
}

/// `cli_id`: the `hookgate listen` session an event's last attempt went
/// through. `cli_id=…` selects those sessions' events, `cli_id[any]=true`
/// those sent through any session, `false` those sent through none. Without
/// it every event is selected: a CLI destination's events are ordinary
/// events shared by its listeners, not per-client copies that the
/// reference leaves out by default.
fn cli_filter(query: &Query) -> ApiResult<impl Fn(Option<&str>) -> bool + Send + 'static> {
    let named: Vec<String> = (query.all("cli_id").into_iter())
        .map(str::to_string)
        .collect();
    let any = query.bool("cli_id[any]")?;
    for (op, _) in query.bracketed("cli_id") {
        if op != "any" && !op.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::invalid(
                &format!("cli_id[{op}]"),
                "unknown operator (any)",
            ));
        }
    }
    Ok(move |cli_id: Option<&str>| {
        (named.is_empty() || cli_id.is_some_and(|id| named.iter().any(|n| n == id)))
            && any.is_none_or(|any| any == cli_id.is_some())
    })
}

/// `GET /events/:id`, with its data.
#[utoipa::path(get, path = "/2023-07-01/events/{id}", tag = "events", summary = "One event with the data it delivers", params(("id" = String, Path, description = "evt_…")), responses((status = 200, description = "the event", body = EventView), (status = 404, description = "unknown id", body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_event(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let (store, team) = (state.store.clone(), state.team_id.clone());
    blocking(move || {
        let event = known_event(&store, &id)?;
        let payload = store.event_payload(&event)?;
        Ok(Json(views::event(&team, &event, payload.as_ref())))
    })
    .await
}

fn known_event(store: &Store, id: &str) -> ApiResult<Event> {
    store
        .event(id)?
        .ok_or_else(|| ApiError::not_found("event", id))
}

/// `GET /events/:id/raw_body`: the body the event delivers, as text
/// (`{body}`; bytes that are not UTF-8 are replaced).
#[utoipa::path(get, path = "/2023-07-01/events/{id}/raw_body", tag = "events", summary = "The body an event delivers, as received or transformed", params(("id" = String, Path, description = "evt_…")), responses((status = 200, description = "{body}", body = RawBody), (status = 404, description = "unknown id", body = ErrorBody)), security(("api_key" = [])))]
pub async fn event_raw_body(
    State(state): Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let store = state.store.clone();
    blocking(move || {
        let event = known_event(&store, &id)?;
        let payload = store.event_payload(&event)?;
        Ok(Json(raw_body(payload.as_ref(), &id)?))
    })
    .await
}

/// `{body}` of a payload, the reference's raw body answer.
pub(super) fn raw_body(payload: Option<&crate::model::Payload>, id: &str) -> ApiResult<Value> {
    let payload = payload.ok_or_else(|| ApiError::not_found("data of", id))?;
    Ok(value_of(RawBody::of(&payload.body)))
}

/// `POST /events/{id}/retry`'s answer.
#[derive(Serialize, ToSchema)]
pub struct EventRetryView {
    /// The event, queued.
    #[schema(value_type = EventView)]
    pub event: Value,
    /// The attempt queued (`QUEUED`), recorded under its id once made.
    #[schema(value_type = AttemptView)]
    pub attempt: Value,
}

/// `POST /events/:id/retry`: a MANUAL attempt now, whatever the event's
/// state. Answers the event and the attempt it queued (`QUEUED`), which is
/// recorded under the same id once made (L4794-4846).
#[utoipa::path(post, path = "/2023-07-01/events/{id}/retry", tag = "events", summary = "A MANUAL attempt now", params(("id" = String, Path, description = "evt_…")), responses((status = 200, description = "{event, attempt}: the event, queued, and its QUEUED attempt", body = EventRetryView), (status = 404, description = "unknown id", body = ErrorBody)), security(("api_key" = [])))]
pub async fn retry_event(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let (store, team) = (state.store.clone(), state.team_id.clone());
    let (view, destination) = blocking(move || {
        let retried = store.retry_by_hand(&id, now_ms())?;
        let (event, _) = retried.ok_or_else(|| ApiError::not_found("event", &id))?;
        let payload = store.event_payload(&event)?;
        let view = value_of(EventRetryView {
            event: views::event(&team, &event, payload.as_ref()),
            attempt: views::attempt_entry(&team, &AttemptEntry::Pending(Box::new(event.clone()))),
        });
        Ok((view, event.destination_id))
    })
    .await?;
    state.scheduler.wake(&destination);
    Ok(Json(view))
}

/// `PUT /events/:id/mute`: no more automatic retries (L4865-4881): a
/// scheduled retry is cancelled (`next_attempt_at` null), the status is
/// kept; an attempt asked for by hand still happens. A webhook job's
/// delivery (not the reference's) fails instead, so that its job ends.
#[utoipa::path(put, path = "/2023-07-01/events/{id}/mute", tag = "events", summary = "No more automatic retries", params(("id" = String, Path, description = "evt_…")), responses((status = 200, description = "the event", body = EventView), (status = 404, description = "unknown id", body = ErrorBody)), security(("api_key" = [])))]
pub async fn mute_event(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let (store, team) = (state.store.clone(), state.team_id.clone());
    blocking(move || {
        let updated = store.update_event(&id, |event| {
            event.muted = true;
            let retrying = event.status == EventStatus::Scheduled && event.attempts > 0;
            if retrying && event.window.is_some() {
                event.status = EventStatus::Failed;
            }
            let queue_move = if retrying {
                QueueMove::Out
            } else {
                QueueMove::Stay
            };
            (queue_move, ())
        })?;
        let (event, ()) = updated.ok_or_else(|| ApiError::not_found("event", &id))?;
        if event.window.is_some() {
            // A webhook job's delivery, maybe given up now: its job sums up anew.
            store.update_job(&event.request_id, now_ms(), |_| {})?;
        }
        let payload = store.event_payload(&event)?;
        Ok(Json(views::event(&team, &event, payload.as_ref())))
    })
    .await
}

/// `GET /attempts`: every attempt, or those of `event_id` (one or an
/// array), by `created_at` (L5069-5103). The attempt an event waits for,
/// when named ahead (a retry by hand, a hold), shows as `HOLD` while the
/// event is held and `QUEUED` after, until it is made.
#[utoipa::path(get, path = "/2023-07-01/attempts", tag = "events", summary = "Attempts, of every event or of some", params(("event_id" = Option<String>, Query, description = "event id, or event_id[]=…"), ("order_by" = Option<String>, Query, description = "created_at (default), attempt_number or response_status; or several, order_by[]=…"), ("limit" = Option<String>, Query, description = "1-255, default 100"), ("dir" = Option<String>, Query, description = "asc or desc (default); dir[]=…: one per order_by key"), ("next" = Option<String>, Query, description = "cursor from pagination.next"), ("prev" = Option<String>, Query, description = "cursor from pagination.prev")), responses((status = 200, description = "a page of attempts", body = Listing<AttemptView>), (status = 422, description = "a bad parameter", body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_attempts(
    State(state): Shared,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = Query::parse(raw.as_deref());
    let events: Vec<String> = query
        .all("event_id")
        .into_iter()
        .map(String::from)
        .collect();
    let (store, team) = (state.store.clone(), state.team_id.clone());
    if !events.is_empty() {
        // A few events' attempts: a list held in memory.
        let page = query.page_sorted(&ATTEMPT_ORDER.map(|key| key.name))?;
        query.refuse_unread()?;
        return blocking(move || {
            let mut models = Vec::new();
            for event_id in &events {
                models.extend(attempts_of_event(&store, &team, event_id)?);
            }
            listing::answer(models, &page)
        })
        .await;
    }
    let page = store_page(&query, &ATTEMPT_ORDER)?;
    query.refuse_unread()?;
    let budget = state.config.load().limits.api_page_bytes;
    blocking(move || {
        let ordered = page
            .ordered()
            .expect("attempts have no index to page by id");
        let found = store.page_attempts(&ordered)?;
        let view = |entry: &AttemptEntry| Ok(views::attempt_entry(&team, entry));
        Ok(Json(bounded_page(&page, found, budget, view)?))
    })
    .await
}

/// What attempts sort by, one or several. Attempts have no index of their
/// own (most live inside their event): every order is a scan.
const ATTEMPT_ORDER: [Key<AttemptEntry>; 3] = [
    Key {
        name: "created_at",
        read: |entry| json!(entry.created_at()),
        indexed: false,
    },
    Key {
        name: "attempt_number",
        read: |entry| json!(entry.attempt_number()),
        indexed: false,
    },
    Key {
        name: "response_status",
        read: |entry| json!(entry.response_status()),
        indexed: false,
    },
];

/// The attempts of one event as views, with the one it waits for if that
/// was named ahead (`HOLD` or `QUEUED`).
fn attempts_of_event(store: &Store, team: &str, event_id: &str) -> ApiResult<Vec<Value>> {
    let entries = store.attempt_entries_of(event_id)?;
    Ok(entries
        .iter()
        .map(|entry| views::attempt_entry(team, entry))
        .collect())
}

/// `GET /attempts/:id`
#[utoipa::path(get, path = "/2023-07-01/attempts/{id}", tag = "events", summary = "One attempt", params(("id" = String, Path, description = "atm_…")), responses((status = 200, description = "the attempt", body = AttemptView), (status = 404, description = "unknown id", body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_attempt(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let (store, team) = (state.store.clone(), state.team_id.clone());
    blocking(move || {
        let entry = store
            .attempt_entry(&id)?
            .ok_or_else(|| ApiError::not_found("attempt", &id))?;
        Ok(Json(views::attempt_entry(&team, &entry)))
    })
    .await
}

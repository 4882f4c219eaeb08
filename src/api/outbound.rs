//! `/events` and `/attempts`: what goes out, and each try; retry and mute.

use super::error::{ApiError, ApiResult};
use super::query::{Query, Range};
use super::{blocking, bounded_page, paged, views, with_data, Shared};
use crate::ids::now_ms;
use crate::model::{AttemptTrigger, Event, EventStatus};
use crate::store::{QueueMove, Store};
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde_json::{json, Value};

/// `GET /events`: filters `id`, `status`, `webhook_id`, `source_id`,
/// `destination_id`, `request_id`, `attempts`, `response_status`, `error_code`,
/// `created_at[…]`, `last_attempt_at[…]`, `successful_at[…]`, the payload
/// filters and `search_term`; `include=data`.
#[utoipa::path(get, path = "/2023-07-01/events", tag = "events", summary = "Events, newest first", params(("limit" = Option<String>, Query, description = "1-250, default 100"), ("dir" = Option<String>, Query, description = "asc or desc (default)"), ("next" = Option<String>, Query, description = "cursor from pagination.next"), ("prev" = Option<String>, Query, description = "cursor from pagination.prev"), ("id" = Option<String>, Query, description = "id or id[]"), ("status" = Option<String>, Query, description = "SCHEDULED, QUEUED, HOLD, SUCCESSFUL, FAILED"), ("webhook_id" = Option<String>, Query, description = "connection id"), ("source_id" = Option<String>, Query, description = "source id"), ("destination_id" = Option<String>, Query, description = "destination id"), ("request_id" = Option<String>, Query, description = "request id"), ("attempts" = Option<String>, Query, description = "number of attempts; also attempts[gte], gt, lte, lt"), ("response_status" = Option<String>, Query, description = "last response status; also response_status[gte], gt, lte, lt, any"), ("error_code" = Option<String>, Query, description = "e.g. TIMEOUT"), ("created_at[gte]" = Option<String>, Query, description = "ISO 8601; also gt, lte, lt"), ("last_attempt_at[gte]" = Option<String>, Query, description = "ISO 8601; also gt, lte, lt, any"), ("include" = Option<String>, Query, description = "data: include the payload"), ("body" = Option<String>, Query, description = "JSON filter on the body (Hookdeck filter syntax)"), ("headers" = Option<String>, Query, description = "JSON filter on the headers")), responses((status = 200, description = "a page of events"), (status = 422, description = "a bad parameter")), security(("api_key" = [])))]
pub async fn list_events(State(state): Shared, RawQuery(raw): RawQuery) -> ApiResult<Json<Value>> {
    let query = Query::parse(raw.as_deref());
    let page = query.page()?;
    let keep = event_filter(&query, &state.store)?;
    let include_data = query.one("include") == Some("data");
    query.refuse_unread()?;
    let budget = state.config.load().limits.api_page_bytes;
    let store = state.store.clone();
    blocking(move || {
        let found = store.page_events(&page, &keep)?;
        let payload = |e: &Event| store.event_payload(e);
        let view = with_data(include_data, payload, views::event);
        Ok(Json(bounded_page(&page, found, budget, view)?))
    })
    .await
}

pub(super) fn event_filter(
    query: &Query,
    store: &Store,
) -> ApiResult<impl Fn(&Event) -> bool + Send + 'static> {
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
    let store = store.clone();
    Ok(move |e: &Event| {
        id(&e.id)
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
    })
}

/// `GET /events/:id`, with its data.
#[utoipa::path(get, path = "/2023-07-01/events/{id}", tag = "events", summary = "One event with the data it delivers", params(("id" = String, Path, description = "evt_…")), responses((status = 200, description = "the event"), (status = 404, description = "unknown id")), security(("api_key" = [])))]
pub async fn get_event(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let store = state.store.clone();
    blocking(move || {
        let event = store
            .event(&id)?
            .ok_or_else(|| ApiError::not_found("event", &id))?;
        let payload = store.event_payload(&event)?;
        Ok(Json(views::event(&event, payload.as_ref())))
    })
    .await
}

/// `POST /events/:id/retry`: a MANUAL attempt now, whatever the event's state.
#[utoipa::path(post, path = "/2023-07-01/events/{id}/retry", tag = "events", summary = "A MANUAL attempt now", params(("id" = String, Path, description = "evt_…")), responses((status = 200, description = "the event, queued"), (status = 404, description = "unknown id")), security(("api_key" = [])))]
pub async fn retry_event(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let store = state.store.clone();
    let event = blocking(move || {
        let retried = store.retry_now(&id, AttemptTrigger::Manual, now_ms())?;
        retried.ok_or_else(|| ApiError::not_found("event", &id))
    })
    .await?;
    state.scheduler.wake(&event.destination_id);
    Ok(Json(views::event(&event, None)))
}

/// `PUT /events/:id/mute`: no more automatic retries; a scheduled retry is cancelled.
#[utoipa::path(put, path = "/2023-07-01/events/{id}/mute", tag = "events", summary = "No more automatic retries", params(("id" = String, Path, description = "evt_…")), responses((status = 200, description = "the event"), (status = 404, description = "unknown id")), security(("api_key" = [])))]
pub async fn mute_event(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let store = state.store.clone();
    blocking(move || {
        let updated = store.update_event(&id, |event| {
            event.muted = true;
            let retrying = event.status == EventStatus::Scheduled && event.attempts > 0;
            if retrying {
                event.status = EventStatus::Failed;
            }
            (
                if retrying {
                    QueueMove::Out
                } else {
                    QueueMove::Stay
                },
                (),
            )
        })?;
        let (event, ()) = updated.ok_or_else(|| ApiError::not_found("event", &id))?;
        if event.window.is_some() {
            // A webhook job's delivery, maybe failed now: its job sums up anew.
            store.update_job(&event.request_id, now_ms(), |_| {})?;
        }
        Ok(Json(views::event(&event, None)))
    })
    .await
}

/// `GET /attempts?event_id=…`: an event's attempts (`dir`, `limit`).
#[utoipa::path(get, path = "/2023-07-01/attempts", tag = "events", summary = "The attempts of an event", params(("event_id" = Option<String>, Query, description = "required"), ("limit" = Option<String>, Query, description = "1-250"), ("dir" = Option<String>, Query, description = "asc or desc")), responses((status = 200, description = "the attempts"), (status = 422, description = "no event_id")), security(("api_key" = [])))]
pub async fn list_attempts(
    State(state): Shared,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = Query::parse(raw.as_deref());
    let page = query.page()?;
    let event_id = query
        .one("event_id")
        .ok_or_else(|| ApiError::invalid("event_id", "is required"))?
        .to_string();
    query.refuse_unread()?;
    let store = state.store.clone();
    blocking(move || {
        let mut attempts = store.attempts_of(&event_id)?;
        if page.dir == crate::store::Direction::Desc {
            attempts.reverse();
        }
        attempts.truncate(page.limit);
        let models = attempts.iter().map(views::attempt).collect();
        Ok(Json(paged(&page, None, None, models)))
    })
    .await
}

/// `GET /attempts/:id`
#[utoipa::path(get, path = "/2023-07-01/attempts/{id}", tag = "events", summary = "One attempt", params(("id" = String, Path, description = "atm_…")), responses((status = 200, description = "the attempt"), (status = 404, description = "unknown id")), security(("api_key" = [])))]
pub async fn get_attempt(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let store = state.store.clone();
    blocking(move || {
        let attempt = store
            .attempt(&id)?
            .ok_or_else(|| ApiError::not_found("attempt", &id))?;
        Ok(Json(json!(views::attempt(&attempt))))
    })
    .await
}

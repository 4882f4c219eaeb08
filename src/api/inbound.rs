//! `/requests` and `/ignored_events`: what came in, and what rules dropped.

use super::error::{ApiError, ApiResult};
use super::outbound::event_filter;
use super::query::Query;
use super::{blocking, bounded_page, views, with_data, ApiState, Shared};
use crate::model::{IgnoredEvent, Request, RequestStatus};
use crate::pipeline::Router;
use crate::store::Store;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde_json::Value;

/// `GET /requests`: filters `id`, `source_id`, `status` (accepted/rejected),
/// `rejection_cause`, `verified`, `created_at[…]`/`ingested_at[…]`,
/// `events_count`/`ignored_count` (numbers, with operators); `include=data`.
#[utoipa::path(get, path = "/2023-07-01/requests", tag = "requests", summary = "Requests received, newest first", params(("limit" = Option<String>, Query, description = "1-250, default 100"), ("dir" = Option<String>, Query, description = "asc or desc (default)"), ("next" = Option<String>, Query, description = "cursor from pagination.next"), ("prev" = Option<String>, Query, description = "cursor from pagination.prev"), ("id" = Option<String>, Query, description = "id or id[]"), ("source_id" = Option<String>, Query, description = "source id"), ("status" = Option<String>, Query, description = "accepted or rejected"), ("rejection_cause" = Option<String>, Query, description = "e.g. NO_WEBHOOK"), ("verified" = Option<String>, Query, description = "true or false"), ("events_count" = Option<String>, Query, description = "number of events; also events_count[gte], gt, lte, lt; likewise ignored_count"), ("created_at[gte]" = Option<String>, Query, description = "ISO 8601; also gt, lte, lt"), ("include" = Option<String>, Query, description = "data: include the payload"), ("body" = Option<String>, Query, description = "JSON filter on the body (Hookdeck filter syntax)"), ("headers" = Option<String>, Query, description = "JSON filter on the headers")), responses((status = 200, description = "a page of requests"), (status = 422, description = "a bad parameter")), security(("api_key" = [])))]
pub async fn list_requests(
    State(state): Shared,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = Query::parse(raw.as_deref());
    let page = query.page()?;
    let keep = request_filter(&query, &state.store)?;
    let include_data = query.one("include") == Some("data");
    query.refuse_unread()?;
    let budget = state.config.load().limits.api_page_bytes;
    let store = state.store.clone();
    // Requests acknowledged before this call are listed.
    store.wait_indexed().await;
    blocking(move || {
        let found = store.page_requests(&page, &keep)?;
        let payload = |r: &Request| store.request_payload(&r.id);
        let view = with_data(include_data, payload, views::request);
        Ok(Json(bounded_page(&page, found, budget, view)?))
    })
    .await
}

pub(super) fn request_filter(
    query: &Query,
    store: &Store,
) -> ApiResult<impl Fn(&Request) -> bool + Send + 'static> {
    let id = query.matcher("id");
    let source = query.matcher("source_id");
    let cause = query.matcher("rejection_cause");
    let status = match query.one("status") {
        None => None,
        Some("accepted") => Some(RequestStatus::Accepted),
        Some("rejected") => Some(RequestStatus::Rejected),
        Some(other) => {
            return Err(ApiError::invalid(
                "status",
                format!("\"{other}\" is not accepted or rejected"),
            ))
        }
    };
    let verified = query.bool("verified")?;
    let created = query.date_range("created_at")?;
    let ingested = query.date_range("ingested_at")?;
    let payload = query.payload_filter()?;
    let events_count = query.numbers("events_count")?;
    let ignored_count = query.numbers("ignored_count")?;
    let store = store.clone();
    Ok(move |r: &Request| {
        id(&r.id)
            && source(r.source_id.as_deref().unwrap_or_default())
            && cause(r.rejection_cause.map_or("", |c| c.as_str()))
            && status.is_none_or(|s| r.status == s)
            && verified.is_none_or(|v| r.verified == Some(v))
            && created.contains(Some(r.received_at))
            && payload.as_ref().is_none_or(|filter| {
                filter.matches(store.request_payload(&r.id).ok().flatten().as_ref())
            })
            && ingested.contains(Some(r.received_at))
            && events_count.contains_looked_up(|| length(store.events_of_request(&r.id)))
            && ignored_count.contains_looked_up(|| length(store.ignored_events_of_request(&r.id)))
    })
}

/// How many records a look-up found; None when it failed.
fn length<T>(found: crate::store::Result<Vec<T>>) -> Option<u64> {
    found.ok().map(|all| all.len() as u64)
}

/// `GET /requests/:id`, with its data.
#[utoipa::path(get, path = "/2023-07-01/requests/{id}", tag = "requests", summary = "One request with its data", params(("id" = String, Path, description = "req_…")), responses((status = 200, description = "the request"), (status = 404, description = "unknown id")), security(("api_key" = [])))]
pub async fn get_request(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let store = state.store.clone();
    blocking(move || {
        let request = store
            .request(&id)?
            .ok_or_else(|| ApiError::not_found("request", &id))?;
        let payload = store.request_payload(&id)?;
        Ok(Json(views::request(&request, payload.as_ref())))
    })
    .await
}

/// `GET /requests/:id/events`, with the filters of `GET /events`.
#[utoipa::path(get, path = "/2023-07-01/requests/{id}/events", tag = "requests", summary = "The events a request became (filters as GET /events)", params(("id" = String, Path, description = "req_…")), responses((status = 200, description = "its events"), (status = 404, description = "unknown id")), security(("api_key" = [])))]
pub async fn request_events(
    State(state): Shared,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = Query::parse(raw.as_deref());
    let keep = event_filter(&query, &state.store)?;
    query.refuse_unread()?;
    of_request(&state, id, move |store, id| {
        Ok(store
            .events_of_request(id)?
            .iter()
            .filter(|e| keep(e))
            .map(|e| views::event(e, None))
            .collect())
    })
    .await
}

/// `GET /requests/:id/ignored_events` (or `ignored-events`), with the
/// filters of `GET /ignored_events`.
#[utoipa::path(get, path = "/2023-07-01/requests/{id}/ignored_events", tag = "requests", summary = "Why connections ignored a request (filters as GET /ignored_events)", params(("id" = String, Path, description = "req_…")), responses((status = 200, description = "its ignored events"), (status = 404, description = "unknown id")), security(("api_key" = [])))]
pub async fn request_ignored_events(
    State(state): Shared,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = Query::parse(raw.as_deref());
    let keep = ignored_filter(&query)?;
    query.refuse_unread()?;
    of_request(&state, id, move |store, id| {
        Ok(store
            .ignored_events_of_request(id)?
            .iter()
            .filter(|i| keep(i))
            .map(views::ignored_event)
            .collect())
    })
    .await
}

/// What a known request became, as `{count, models}`.
async fn of_request(
    state: &ApiState,
    id: String,
    models_of: impl FnOnce(&Store, &str) -> ApiResult<Vec<Value>> + Send + 'static,
) -> ApiResult<Json<Value>> {
    let store = state.store.clone();
    blocking(move || {
        store
            .request(&id)?
            .ok_or_else(|| ApiError::not_found("request", &id))?;
        let models = models_of(&store, &id)?;
        Ok(Json(
            serde_json::json!({ "count": models.len(), "models": models }),
        ))
    })
    .await
}

/// `POST /requests/:id/retry`: routes the request again with today's rules.
/// Connections that ignored it decide afresh and new connections get their
/// events; connections that already made an event keep it (retry the event).
#[utoipa::path(post, path = "/2023-07-01/requests/{id}/retry", tag = "requests", summary = "Route a request again with the current rules", params(("id" = String, Path, description = "req_…")), responses((status = 200, description = "its events and ignored events"), (status = 404, description = "unknown id"), (status = 409, description = "a rejected request, or one the router is still on after a wait")), security(("api_key" = [])))]
pub async fn retry_request(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    state.store.wait_routed(&id).await?;
    let (store, router) = (state.store.clone(), state.router.clone());
    let (view, woken) = blocking(move || reroute(&store, &router, &id)).await?;
    woken
        .iter()
        .for_each(|destination| state.scheduler.wake(destination));
    Ok(Json(view))
}

/// Routes an accepted request again; returns what it became and the
/// destinations with new events. A request the router has yet to finish with
/// is refused (callers wait for it first, `Store::wait_routed`): routed here
/// too, its events would be made twice.
pub(super) fn reroute(store: &Store, router: &Router, id: &str) -> ApiResult<(Value, Vec<String>)> {
    store.holding(id, || reroute_held(store, router, id))
}

fn reroute_held(store: &Store, router: &Router, id: &str) -> ApiResult<(Value, Vec<String>)> {
    if store.awaits_router(id)? {
        return Err(ApiError::conflict(format!(
            "request \"{id}\" is still being routed; retry it once it is"
        )));
    }
    let request = store
        .request(id)?
        .ok_or_else(|| ApiError::not_found("request", id))?;
    if request.status != RequestStatus::Accepted {
        return Err(ApiError::conflict(format!(
            "request \"{id}\" was rejected; it is never routed"
        )));
    }
    let payload = store
        .request_payload(id)?
        .ok_or_else(|| ApiError::not_found("request data", id))?;
    store.forget_ignored_events(id)?;
    store.take_over_set_aside(id)?;
    let woken = router.route(&request, &payload)?;
    store.clear_unrouted_mark(id)?;
    let events: Vec<Value> = store
        .events_of_request(id)?
        .iter()
        .map(|e| views::event(e, None))
        .collect();
    let ignored: Vec<Value> = store
        .ignored_events_of_request(id)?
        .iter()
        .map(views::ignored_event)
        .collect();
    let view = serde_json::json!({ "request": views::request(&request, None), "events": events, "ignored_events": ignored });
    Ok((view, woken))
}

/// `GET /ignored_events`: filters `webhook_id`, `cause`, `request_id`.
#[utoipa::path(get, path = "/2023-07-01/ignored_events", tag = "requests", summary = "Events a rule decided not to deliver", params(("limit" = Option<String>, Query, description = "1-250, default 100"), ("dir" = Option<String>, Query, description = "asc or desc (default)"), ("next" = Option<String>, Query, description = "cursor from pagination.next"), ("prev" = Option<String>, Query, description = "cursor from pagination.prev"), ("webhook_id" = Option<String>, Query, description = "connection id"), ("cause" = Option<String>, Query, description = "FILTERED, TRANSFORMATION_FAILED, DEDUPLICATED"), ("request_id" = Option<String>, Query, description = "request id"), ("created_at[gte]" = Option<String>, Query, description = "ISO 8601; also gt, lte, lt")), responses((status = 200, description = "a page of ignored events")), security(("api_key" = [])))]
pub async fn list_ignored_events(
    State(state): Shared,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = Query::parse(raw.as_deref());
    let page = query.page()?;
    let keep = ignored_filter(&query)?;
    query.refuse_unread()?;
    let budget = state.config.load().limits.api_page_bytes;
    let store = state.store.clone();
    blocking(move || {
        let found = store.page_ignored_events(&page, &keep)?;
        let view = |ignored: &IgnoredEvent| Ok(views::ignored_event(ignored));
        Ok(Json(bounded_page(&page, found, budget, view)?))
    })
    .await
}

pub(super) fn ignored_filter(
    query: &Query,
) -> ApiResult<impl Fn(&IgnoredEvent) -> bool + Send + 'static> {
    let (connection, cause, request) = (
        query.matcher("webhook_id"),
        query.matcher("cause"),
        query.matcher("request_id"),
    );
    let created = query.date_range("created_at")?;
    Ok(move |i: &IgnoredEvent| {
        connection(&i.connection_id)
            && cause(&i.cause)
            && request(&i.request_id)
            && created.contains(Some(i.created_at))
    })
}

/// `GET /ignored_events/:id`
#[utoipa::path(get, path = "/2023-07-01/ignored_events/{id}", tag = "requests", summary = "One ignored event", params(("id" = String, Path, description = "evt_…")), responses((status = 200, description = "the ignored event"), (status = 404, description = "unknown id")), security(("api_key" = [])))]
pub async fn get_ignored_event(
    State(state): Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let store = state.store.clone();
    blocking(move || {
        let ignored = store
            .ignored_event(&id)?
            .ok_or_else(|| ApiError::not_found("ignored event", &id))?;
        Ok(Json(views::ignored_event(&ignored)))
    })
    .await
}

//! `/requests` and `/ignored_events`: what came in, and what rules dropped.

use super::error::{ApiError, ApiResult};
use super::listing::{self, SortedPage};
use super::outbound::{event_filter, raw_body, EVENT_ORDER};
use super::query::{Query, Selection};
use super::schema::{value_of, ErrorBody, Listing, RawBody};
use super::sorting::{id_time, store_page, Key};
use super::views::{EventView, IgnoredEventView, RequestCounts, RequestView};
use super::{blocking, bounded_page, views, with_data, ApiState, Shared};
use crate::model::{Catalog, Event, IgnoredEvent, Payload, Request, RequestStatus};
use crate::pipeline::Router;
use crate::store::Store;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

/// `GET /requests`: filters `id`, `source_id`, `status` (accepted/rejected),
/// `rejection_cause`, `verified`, `ingested_at[…]` (and `created_at[…]`),
/// `events_count`/`ignored_count` (numbers, with operators), the payload
/// filters and `search_term`; `include=data`. Sorted by `created_at` or
/// `ingested_at`: both are when the request arrived (the store's key order).
#[utoipa::path(get, path = "/2023-07-01/requests", tag = "requests", summary = "Requests received, newest first", params(("limit" = Option<String>, Query, description = "1-255, default 100"), ("order_by" = Option<String>, Query, description = "created_at (default) or ingested_at; or both, order_by[]=…"), ("dir" = Option<String>, Query, description = "asc or desc (default); dir[]=…: one per order_by key"), ("next" = Option<String>, Query, description = "cursor from pagination.next"), ("prev" = Option<String>, Query, description = "cursor from pagination.prev"), ("id" = Option<String>, Query, description = "id or id[]"), ("source_id" = Option<String>, Query, description = "source id"), ("status" = Option<String>, Query, description = "accepted or rejected"), ("rejection_cause" = Option<String>, Query, description = "e.g. NO_WEBHOOK"), ("verified" = Option<String>, Query, description = "true or false"), ("events_count" = Option<String>, Query, description = "number of events; also events_count[gte], gt, lte, lt; likewise ignored_count"), ("ingested_at[gte]" = Option<String>, Query, description = "ISO 8601; also gt, lte, lt; likewise created_at"), ("include" = Option<String>, Query, description = "data: include the payload"), ("search_term" = Option<String>, Query, description = "text in the body, a header, the path or the query (3 characters or more)"), ("body" = Option<String>, Query, description = "JSON filter on the body (Hookdeck filter syntax)"), ("headers" = Option<String>, Query, description = "JSON filter on the headers"), ("parsed_query" = Option<String>, Query, description = "JSON filter on the query"), ("path" = Option<String>, Query, description = "filter on the path")), responses((status = 200, description = "a page of requests", body = Listing<RequestView>), (status = 422, description = "a bad parameter", body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_requests(
    State(state): Shared,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = Query::parse(raw.as_deref());
    let page = store_page(&query, &REQUEST_ORDER)?;
    let Selection { keep, stamps } = request_filter(&query, &state.store)?;
    let include_data = query.one("include") == Some("data");
    query.refuse_unread()?;
    let budget = state.config.load().limits.api_page_bytes;
    let (store, team) = (state.store.clone(), state.team_id.clone());
    // Requests acknowledged before this call are listed.
    store.wait_indexed().await;
    blocking(move || {
        let found = store.page_requests(page.paging(), stamps, &keep)?;
        let view = |request: &Request| {
            let payload = match include_data {
                true => store.request_payload(&request.id)?,
                false => None,
            };
            request_view(&store, &team, request, payload.as_ref())
        };
        Ok(Json(bounded_page(&page, found, budget, view)?))
    })
    .await
}

/// What requests sort by (L3927), one or both: both are when a request
/// arrived, the store's key order.
const REQUEST_ORDER: [Key<Request>; 2] = [
    Key {
        name: "created_at",
        read: |request| json!(request.received_at),
        indexed: true,
    },
    Key {
        name: "ingested_at",
        read: |request| json!(request.received_at),
        indexed: true,
    },
];

/// What a request's ignored events sort by: the reference's example pages
/// by `id`.
const IGNORED_ORDER: [&str; 2] = ["created_at", "id"];

/// What ignored events sort by, one or both: `created_at` is the store's
/// key order.
const IGNORED_EVENT_ORDER: [Key<IgnoredEvent>; 2] = [
    Key {
        name: "created_at",
        read: id_time,
        indexed: true,
    },
    Key {
        name: "cause",
        read: |ignored| json!(ignored.cause),
        indexed: false,
    },
];

/// A request's view, with what it became counted.
fn request_view(
    store: &Store,
    team: &str,
    request: &Request,
    payload: Option<&Payload>,
) -> ApiResult<Value> {
    let counts = RequestCounts {
        events: store.events_of_request(&request.id)?.len(),
        ignored: store.ignored_events_of_request(&request.id)?.len(),
    };
    Ok(views::request(team, request, counts, payload))
}

/// The requests' filter; their time filters as a window of ids are exact, as
/// a request is received at its id's time (`Request::received`).
pub(super) fn request_filter(
    query: &Query,
    store: &Store,
) -> ApiResult<Selection<impl Fn(&Request) -> bool + Send + 'static>> {
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
    let stamps = created.stamps().and(ingested.stamps());
    let store = store.clone();
    let keep = move |r: &Request| {
        id(&r.id)
            && source(r.source_id.as_deref().unwrap_or_default())
            && cause(r.rejection_cause.map_or("", |c| c.as_str()))
            && status.is_none_or(|s| r.status == s)
            // As shown: a request no one verified is not verified.
            && verified.is_none_or(|v| r.verified.unwrap_or(false) == v)
            && created.contains(Some(r.received_at))
            && payload.as_ref().is_none_or(|filter| {
                filter.matches(store.request_payload(&r.id).ok().flatten().as_ref())
            })
            && ingested.contains(Some(r.received_at))
            && events_count.contains_looked_up(|| length(store.events_of_request(&r.id)))
            && ignored_count.contains_looked_up(|| length(store.ignored_events_of_request(&r.id)))
    };
    Ok(Selection { keep, stamps })
}

/// How many records a look-up found; None when it failed.
fn length<T>(found: crate::store::Result<Vec<T>>) -> Option<u64> {
    found.ok().map(|all| all.len() as u64)
}

/// `GET /requests/:id`, with its data.
#[utoipa::path(get, path = "/2023-07-01/requests/{id}", tag = "requests", summary = "One request with its data", params(("id" = String, Path, description = "req_…")), responses((status = 200, description = "the request", body = RequestView), (status = 404, description = "unknown id", body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_request(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let (store, team) = (state.store.clone(), state.team_id.clone());
    blocking(move || {
        let request = known_request(&store, &id)?;
        let payload = store.request_payload(&id)?;
        Ok(Json(request_view(
            &store,
            &team,
            &request,
            payload.as_ref(),
        )?))
    })
    .await
}

fn known_request(store: &Store, id: &str) -> ApiResult<Request> {
    store
        .request(id)?
        .ok_or_else(|| ApiError::not_found("request", id))
}

/// `GET /requests/:id/raw_body`: the body as received, as text (`{body}`;
/// bytes that are not UTF-8 are replaced, and given exactly in
/// `body_base64`). A rejected request kept only the start of its body
/// (`body_truncated`).
#[utoipa::path(get, path = "/2023-07-01/requests/{id}/raw_body", tag = "requests", summary = "The body of a request as received", params(("id" = String, Path, description = "req_…")), responses((status = 200, description = "{body}", body = RawBody), (status = 404, description = "unknown id", body = ErrorBody)), security(("api_key" = [])))]
pub async fn request_raw_body(
    State(state): Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let store = state.store.clone();
    blocking(move || {
        known_request(&store, &id)?;
        let payload = store.request_payload(&id)?;
        Ok(Json(raw_body(payload.as_ref(), &id)?))
    })
    .await
}

/// `GET /requests/:id/events`, with the filters, order and paging of
/// `GET /events` (L4131-4265).
#[utoipa::path(get, path = "/2023-07-01/requests/{id}/events", tag = "requests", summary = "The events a request became (filters, order and paging as GET /events)", params(("id" = String, Path, description = "req_…")), responses((status = 200, description = "a page of its events", body = Listing<EventView>), (status = 404, description = "unknown id", body = ErrorBody), (status = 422, description = "a bad parameter", body = ErrorBody)), security(("api_key" = [])))]
pub async fn request_events(
    State(state): Shared,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = Query::parse(raw.as_deref());
    let page = query.page_sorted(&EVENT_ORDER.map(|key| key.name))?;
    let keep = event_filter(&query, &state.store)?.keep;
    let include_data = query.one("include") == Some("data");
    query.refuse_unread()?;
    let team = state.team_id.clone();
    of_request(&state, id, page, move |store, id| {
        let view = with_data(
            include_data,
            |e: &Event| store.event_payload(e),
            |e, data| views::event(&team, e, data),
        );
        store
            .events_of_request(id)?
            .iter()
            .filter(|e| keep(e))
            .map(view)
            .collect()
    })
    .await
}

/// `GET /requests/:id/ignored_events` (or `ignored-events`): filter `id`
/// (the reference's number or hookgate's id) and the other filters of
/// `GET /ignored_events`; paged.
#[utoipa::path(get, path = "/2023-07-01/requests/{id}/ignored_events", tag = "requests", summary = "Why connections ignored a request (filters as GET /ignored_events)", params(("id" = String, Path, description = "req_…")), responses((status = 200, description = "a page of its ignored events", body = Listing<IgnoredEventView>), (status = 404, description = "unknown id", body = ErrorBody), (status = 422, description = "a bad parameter", body = ErrorBody)), security(("api_key" = [])))]
pub async fn request_ignored_events(
    State(state): Shared,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = Query::parse(raw.as_deref());
    let page = query.page_sorted(&IGNORED_ORDER)?;
    let keep = ignored_filter(&query)?;
    query.refuse_unread()?;
    let team = state.team_id.clone();
    of_request(&state, id, page, move |store, id| {
        Ok(store
            .ignored_events_of_request(id)?
            .iter()
            .filter(|i| keep(i))
            .map(|i| views::ignored_event(&team, i))
            .collect())
    })
    .await
}

/// A page of what a known request became (few: one per connection).
async fn of_request(
    state: &ApiState,
    id: String,
    page: SortedPage,
    models_of: impl FnOnce(&Store, &str) -> ApiResult<Vec<Value>> + Send + 'static,
) -> ApiResult<Json<Value>> {
    let store = state.store.clone();
    blocking(move || {
        known_request(&store, &id)?;
        listing::answer(models_of(&store, &id)?, &page)
    })
    .await
}

/// The body of `POST /requests/:id/retry` (L4053-4057).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct RetryRequest {
    /// The connections to route through again; all of the source's when
    /// left out (hookgate's own use, before the reference's body).
    webhook_ids: Option<Vec<String>>,
}

/// `POST /requests/{id}/retry`'s answer.
#[derive(Serialize, ToSchema)]
pub struct RequestRetryView {
    #[schema(value_type = RequestView)]
    pub request: Value,
    /// Every event of the request, those made before included.
    #[schema(value_type = Vec<EventView>)]
    pub events: Vec<Value>,
    /// Why connections ignored it (hookgate's addition).
    #[schema(value_type = Vec<IgnoredEventView>)]
    pub ignored_events: Vec<Value>,
}

/// `POST /requests/:id/retry`: routes the request again with today's rules,
/// through the connections in `webhook_ids` (all when left out).
/// Connections that ignored it decide afresh and new connections get their
/// events; connections that already made an event keep it (retry the event).
/// Answers `{request, events}` (L4061), and hookgate's `ignored_events`.
#[utoipa::path(post, path = "/2023-07-01/requests/{id}/retry", tag = "requests", summary = "Route a request again with the current rules", params(("id" = String, Path, description = "req_…")), request_body(content = RetryRequest, description = "the connections to route through again (all when left out, or with an empty body)"), responses((status = 200, description = "{request, events, ignored_events}", body = RequestRetryView), (status = 404, description = "unknown id", body = ErrorBody), (status = 409, description = "a rejected request, or one the router is still on after a wait", body = ErrorBody), (status = 422, description = "a bad body, or a webhook_id that is no connection of the request's source", body = ErrorBody)), security(("api_key" = [])))]
pub async fn retry_request(
    State(state): Shared,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let only = retry_body(&body)?.webhook_ids;
    state.store.wait_routed(&id).await?;
    let (store, router, team) = (
        state.store.clone(),
        state.router.clone(),
        state.team_id.clone(),
    );
    let catalog = state.catalog.load_full();
    let (view, woken) = blocking(move || {
        if let Some(only) = &only {
            check_connections(&catalog, &known_request(&store, &id)?, only)?;
        }
        let (request, woken) = reroute_through(&store, &router, &id, only.as_deref())?;
        let payload = store.request_payload(&id)?;
        let request_view = request_view(&store, &team, &request, payload.as_ref())?;
        let events: Vec<Value> = store
            .events_of_request(&id)?
            .iter()
            .map(|e| views::event(&team, e, None))
            .collect();
        let ignored: Vec<Value> = store
            .ignored_events_of_request(&id)?
            .iter()
            .map(|i| views::ignored_event(&team, i))
            .collect();
        let view = value_of(RequestRetryView {
            request: request_view,
            events,
            ignored_events: ignored,
        });
        Ok((view, woken))
    })
    .await?;
    woken
        .iter()
        .for_each(|destination| state.scheduler.wake(destination));
    Ok(Json(view))
}

/// The retry's body; an empty one asks for every connection.
fn retry_body(body: &[u8]) -> ApiResult<RetryRequest> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(RetryRequest::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid("body", e.to_string()))
}

/// Routes an accepted request again through every connection; returns it
/// and the destinations with new events. A request the router has yet to
/// finish with is refused (callers wait for it first, `Store::wait_routed`):
/// routed here too, its events would be made twice.
pub(super) fn reroute(
    store: &Store,
    router: &Router,
    id: &str,
) -> ApiResult<(Request, Vec<String>)> {
    reroute_through(store, router, id, None)
}

/// `reroute` through the connections in `only` (all when None).
fn reroute_through(
    store: &Store,
    router: &Router,
    id: &str,
    only: Option<&[String]>,
) -> ApiResult<(Request, Vec<String>)> {
    store.holding(id, || reroute_held(store, router, id, only))
}

fn reroute_held(
    store: &Store,
    router: &Router,
    id: &str,
    only: Option<&[String]>,
) -> ApiResult<(Request, Vec<String>)> {
    if store.awaits_router(id)? {
        return Err(ApiError::conflict(format!(
            "request \"{id}\" is still being routed; retry it once it is"
        )));
    }
    let request = known_request(store, id)?;
    if request.status != RequestStatus::Accepted {
        return Err(ApiError::conflict(format!(
            "request \"{id}\" was rejected; it is never routed"
        )));
    }
    let payload = store
        .request_payload(id)?
        .ok_or_else(|| ApiError::not_found("request data", id))?;
    store.forget_ignored_events_through(id, only)?;
    store.take_over_set_aside(id)?;
    let woken = router.route_through(&request, &payload, only)?;
    store.clear_unrouted_mark(id)?;
    Ok((request, woken))
}

/// A 422 naming a `webhook_ids` entry that is no connection of the
/// request's source: routing through it would do nothing, silently.
fn check_connections(catalog: &Catalog, request: &Request, only: &[String]) -> ApiResult<()> {
    let source = request.source_id.as_deref().unwrap_or_default();
    let connections = catalog.connections_of(source);
    match only
        .iter()
        .find(|id| !connections.iter().any(|c| &c.id == *id))
    {
        Some(unknown) => Err(ApiError::invalid(
            "webhook_ids",
            format!("\"{unknown}\" is no connection of the request's source"),
        )),
        None => Ok(()),
    }
}

/// `GET /ignored_events`: filters `id`, `webhook_id`, `cause`, `request_id`,
/// `created_at[…]`.
#[utoipa::path(get, path = "/2023-07-01/ignored_events", tag = "requests", summary = "Events a rule decided not to deliver", params(("limit" = Option<String>, Query, description = "1-255, default 100"), ("order_by" = Option<String>, Query, description = "created_at (default) or cause; or both, order_by[]=…"), ("dir" = Option<String>, Query, description = "asc or desc (default); dir[]=…: one per order_by key"), ("next" = Option<String>, Query, description = "cursor from pagination.next"), ("prev" = Option<String>, Query, description = "cursor from pagination.prev"), ("id" = Option<String>, Query, description = "the reference's number or hookgate's ignored_event_id"), ("webhook_id" = Option<String>, Query, description = "connection id"), ("cause" = Option<String>, Query, description = "FILTERED, TRANSFORMATION_FAILED, DEDUPLICATED"), ("request_id" = Option<String>, Query, description = "request id"), ("transformation_id" = Option<String>, Query, description = "the transformation that failed (TRANSFORMATION_FAILED)"), ("created_at[gte]" = Option<String>, Query, description = "ISO 8601; also gt, lte, lt")), responses((status = 200, description = "a page of ignored events", body = Listing<IgnoredEventView>)), security(("api_key" = [])))]
pub async fn list_ignored_events(
    State(state): Shared,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = Query::parse(raw.as_deref());
    let page = store_page(&query, &IGNORED_EVENT_ORDER)?;
    let keep = ignored_filter(&query)?;
    query.refuse_unread()?;
    let budget = state.config.load().limits.api_page_bytes;
    let (store, team) = (state.store.clone(), state.team_id.clone());
    blocking(move || {
        let found = store.page_ignored_events(page.paging(), &keep)?;
        let view = |ignored: &IgnoredEvent| Ok(views::ignored_event(&team, ignored));
        Ok(Json(bounded_page(&page, found, budget, view)?))
    })
    .await
}

pub(super) fn ignored_filter(
    query: &Query,
) -> ApiResult<impl Fn(&IgnoredEvent) -> bool + Send + 'static> {
    let (id, connection, cause, request) = (
        query.matcher("id"),
        query.matcher("webhook_id"),
        query.matcher("cause"),
        query.matcher("request_id"),
    );
    // The reference's bulk retry of ignored events selects by it (L7143).
    let by_transformation = !query.all("transformation_id").is_empty();
    let transformation = query.matcher("transformation_id");
    let created = query.date_range("created_at")?;
    Ok(move |i: &IgnoredEvent| {
        (id(&i.id) || id(&views::ignored_number(&i.id).to_string()))
            && connection(&i.connection_id)
            && cause(&i.cause)
            && request(&i.request_id)
            && (!by_transformation || i.transformation_id.as_deref().is_some_and(&transformation))
            && created.contains(Some(i.created_at))
    })
}

/// `GET /ignored_events/:id`: by hookgate's id (`ignored_event_id`), or by
/// the reference's number (found by a scan of every ignored event).
#[utoipa::path(get, path = "/2023-07-01/ignored_events/{id}", tag = "requests", summary = "One ignored event", params(("id" = String, Path, description = "its ignored_event_id (evt_…) or its number id")), responses((status = 200, description = "the ignored event", body = IgnoredEventView), (status = 404, description = "unknown id", body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_ignored_event(
    State(state): Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (store, team) = (state.store.clone(), state.team_id.clone());
    blocking(move || {
        let found = match id.parse::<i32>() {
            Ok(number) => ignored_numbered(&store, number)?,
            Err(_) => store.ignored_event(&id)?,
        };
        let ignored = found.ok_or_else(|| ApiError::not_found("ignored event", &id))?;
        Ok(Json(views::ignored_event(&team, &ignored)))
    })
    .await
}

/// The ignored event whose reference number is `number` (the newest, on
/// the rare chance two share one).
fn ignored_numbered(store: &Store, number: i32) -> ApiResult<Option<IgnoredEvent>> {
    let mut found = None;
    for ignored in store.ignored_events() {
        let ignored = ignored?;
        if views::ignored_number(&ignored.id) == number {
            found = Some(ignored);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StampWindow;

    const NEW_YEAR_MS: u64 = 1_767_225_600_000;
    const DAY_MS: u64 = 86_400_000;

    fn request_at(received_at: u64) -> Request {
        let payload = Payload {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: Vec::new(),
            body: Vec::new(),
        };
        Request {
            received_at,
            ..Request::received(None, "shop", &payload)
        }
    }

    #[test]
    fn a_selections_id_window_is_the_one_its_time_filters_test_records_against() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let query = Query::parse(Some(
            "created_at[gt]=2026-01-01T00:00:00Z&ingested_at[lte]=2026-01-02T00:00:00Z",
        ));
        let requests = request_filter(&query, &store).unwrap();
        let window = StampWindow {
            from_ms: Some(NEW_YEAR_MS + 1),
            to_ms: Some(NEW_YEAR_MS + DAY_MS),
        };
        assert_eq!(requests.stamps, window);
        for (at, kept) in [
            (NEW_YEAR_MS, false),
            (NEW_YEAR_MS + 1, true),
            (NEW_YEAR_MS + DAY_MS, true),
            (NEW_YEAR_MS + DAY_MS + 1, false),
        ] {
            assert_eq!((requests.keep)(&request_at(at)), kept, "received at {at}");
        }
        // An event is made after its request: its window has no lower bound.
        let query = Query::parse(Some(
            "created_at[gt]=2026-01-01T00:00:00Z&created_at[lte]=2026-01-02T00:00:00Z",
        ));
        let events = event_filter(&query, &store).unwrap();
        let window = StampWindow {
            from_ms: None,
            ..window
        };
        assert_eq!(events.stamps, window);
    }
}

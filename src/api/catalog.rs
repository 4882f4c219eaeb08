//! `/sources`, `/destinations`, `/connections`. Objects declared in gateway.toml
//! are shown but cannot be changed here: the file is their source of truth, and a
//! restart must never undo an API change silently.

use super::error::{ApiError, ApiResult};
use super::query::{parse_date, Query, Range};
use super::schema::{value_of, Count, ErrorBody, Listing};
use super::showing::Showing;
use super::views::{ConnectionView, DestinationView, SourceView};
use super::{blocking, listing, ApiState, Shared};
use crate::config::ObjectKind;
use crate::ids::now_ms;
use crate::model::Connection;
use crate::store::Store;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use utoipa::ToSchema;

/// The keys these lists sort by.
const ORDER_KEYS: [&str; 3] = ["created_at", "updated_at", "name"];

/// What a text filter accepts.
type TextMatcher = Box<dyn Fn(&str) -> bool + Send>;

/// A configuration list's filters, applied to the objects' views.
struct ListFilter {
    /// Each text field filtered on, and what it accepts (null reads as "").
    texts: Vec<(&'static str, TextMatcher)>,
    /// Each date field filtered on, and its window.
    dates: Vec<(&'static str, Range)>,
    /// `full_name`'s fuzzy match: a lower-case part it must contain.
    full_name: Option<String>,
    /// Archived objects are listed only when asked for (`archived=true`, or
    /// a window on `archived_at`, which only they can fall in).
    with_archived: bool,
}

impl ListFilter {
    /// `texts` match as `name` does (`x=`, `x[]=`, `x[contains]=`); `dates`
    /// take `[gte] [gt] [lte] [lt] [any]`.
    fn read(
        query: &Query,
        texts: &[&'static str],
        dates: &[&'static str],
    ) -> ApiResult<ListFilter> {
        let asks_archived = query.bool("archived")? == Some(true);
        let windows_archived = !query.bracketed("archived_at").is_empty();
        let dates = ["archived_at"]
            .iter()
            .chain(dates)
            .map(|&field| Ok((field, query.date_range(field)?)))
            .collect::<ApiResult<_>>()?;
        Ok(ListFilter {
            texts: texts
                .iter()
                .map(|&field| (field, Box::new(query.matcher(field)) as TextMatcher))
                .collect(),
            dates,
            full_name: None,
            with_archived: asks_archived || windows_archived,
        })
    }

    fn accepts(&self, view: &Value) -> bool {
        let texts = self
            .texts
            .iter()
            .all(|(field, accepts)| accepts(view[*field].as_str().unwrap_or_default()));
        let dates = self
            .dates
            .iter()
            .all(|(field, range)| range.contains(view[*field].as_str().and_then(parse_date)));
        let full_name = self.full_name.as_ref().is_none_or(|part| {
            let full_name = view["full_name"].as_str().unwrap_or_default();
            full_name.to_lowercase().contains(part)
        });
        texts && dates && full_name
    }
}

/// The reference's `full_name` filter: its pattern and length, matched as a
/// case-insensitive part of the connections' full names.
fn full_name_filter(query: &Query) -> ApiResult<Option<String>> {
    let Some(value) = query.one("full_name") else {
        return Ok(None);
    };
    let allowed = |c: char| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || "-_>".contains(c) || c.is_whitespace()
    };
    let too_long = value.chars().count() > crate::names::MAX_NAME_CHARS;
    if value.is_empty() || too_long || !value.chars().all(allowed) {
        return Err(ApiError::invalid(
            "full_name",
            "must match ^[a-z0-9-_>\\s]+$ and have at most 155 characters",
        ));
    }
    Ok(Some(value.to_lowercase()))
}

/// One page of the `views` the filter accepts, as the query asks.
fn list(
    query: &Query,
    filter: &ListFilter,
    views: impl Iterator<Item = ApiResult<Value>>,
) -> ApiResult<Json<Value>> {
    let page = query.page_sorted(&ORDER_KEYS)?;
    query.refuse_unread()?;
    let mut models = Vec::new();
    for view in views {
        let view = view?;
        if filter.accepts(&view) {
            models.push(view);
        }
    }
    listing::answer(models, &page)
}

#[utoipa::path(get, path = "/2023-07-01/sources", tag = "configuration", summary = "Sources", params(("id" = Option<String>, Query, description = "id or id[]=…"), ("name" = Option<String>, Query, description = "exact name, name[]=…, or name[contains]=…"), ("archived" = Option<bool>, Query, description = "include archived sources"), ("archived_at" = Option<String>, Query, description = "archived_at[gte|gt|lte|lt|any]"), ("order_by" = Option<String>, Query, description = "created_at (default), updated_at, name; several keys: order_by[]=…&order_by[]=…, with one dir for all or dir[] one per key")), responses((status = 200, description = "a page of sources", body = Listing<SourceView>), (status = 422, description = "an unknown parameter", body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_sources(State(state): Shared, RawQuery(raw): RawQuery) -> ApiResult<Json<Value>> {
    blocking(move || {
        let query = Query::parse(raw.as_deref());
        let filter = ListFilter::read(&query, &["id", "name"], &[])?;
        let showing = Showing::load(&state, filter.with_archived)?;
        let views = showing
            .catalog
            .sources()
            .into_iter()
            .map(|s| Ok(showing.source(s)));
        list(&query, &filter, views)
    })
    .await
}

#[utoipa::path(get, path = "/2023-07-01/destinations", tag = "configuration", summary = "Destinations", params(("id" = Option<String>, Query, description = "id or id[]=…"), ("name" = Option<String>, Query, description = "exact name, name[]=…, or name[contains]=…"), ("url" = Option<String>, Query, description = "url or url[]=…"), ("cli_path" = Option<String>, Query, description = "cli_path, cli_path[]=… or cli_path[contains]=…"), ("archived" = Option<bool>, Query, description = "include archived destinations"), ("archived_at" = Option<String>, Query, description = "archived_at[gte|gt|lte|lt|any]"), ("order_by" = Option<String>, Query, description = "created_at (default), updated_at, name; several keys: order_by[]=…&order_by[]=…, with one dir for all or dir[] one per key")), responses((status = 200, description = "a page of destinations", body = Listing<DestinationView>), (status = 422, description = "an unknown parameter", body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_destinations(
    State(state): Shared,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let query = Query::parse(raw.as_deref());
        let filter = ListFilter::read(&query, &["id", "name", "url", "cli_path"], &[])?;
        let showing = Showing::load(&state, filter.with_archived)?;
        let destinations = showing.catalog.destinations();
        let views = destinations.into_iter().map(|d| Ok(showing.destination(d)));
        list(&query, &filter, views)
    })
    .await
}

#[utoipa::path(get, path = "/2023-07-01/connections", tag = "configuration", summary = "Connections", params(("id" = Option<String>, Query, description = "id or id[]=…"), ("name" = Option<String>, Query, description = "exact name, name[]=…, or name[contains]=…"), ("source_id" = Option<String>, Query, description = "source_id or source_id[]=…"), ("destination_id" = Option<String>, Query, description = "destination_id or destination_id[]=…"), ("full_name" = Option<String>, Query, description = "a part of \"source -> connection -> destination\""), ("archived" = Option<bool>, Query, description = "include archived connections"), ("archived_at" = Option<String>, Query, description = "archived_at[gte|gt|lte|lt|any]"), ("paused_at" = Option<String>, Query, description = "paused_at[gte|gt|lte|lt|any]"), ("order_by" = Option<String>, Query, description = "created_at (default), updated_at, name; several keys: order_by[]=…&order_by[]=…, with one dir for all or dir[] one per key")), responses((status = 200, description = "a page of connections", body = Listing<ConnectionView>), (status = 422, description = "an unknown parameter", body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_connections(
    State(state): Shared,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let query = Query::parse(raw.as_deref());
        let (filter, views) = filtered_connections(&state, &query)?;
        list(&query, &filter, views.into_iter())
    })
    .await
}

/// `GET /connections/count` (in Hookdeck's SDK, which says `disabled` for
/// `archived`): how many connections the list would show.
#[utoipa::path(get, path = "/2023-07-01/connections/count", tag = "configuration", summary = "How many connections the list's filters select (disabled = archived)", responses((status = 200, description = "{count}", body = Count), (status = 422, description = "an unknown parameter", body = ErrorBody)), security(("api_key" = [])))]
pub async fn count_connections(
    State(state): Shared,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let query = Query::parse_renaming(raw.as_deref(), &[("disabled", "archived")]);
        let (filter, views) = filtered_connections(&state, &query)?;
        query.refuse_unread()?;
        let mut count = 0;
        for view in views {
            count += usize::from(filter.accepts(&view?));
        }
        Ok(Json(value_of(Count { count })))
    })
    .await
}

/// The connections' views and the list filters the query gives.
fn filtered_connections(
    state: &ApiState,
    query: &Query,
) -> ApiResult<(ListFilter, Vec<ApiResult<Value>>)> {
    let texts = ["id", "name", "source_id", "destination_id"];
    let mut filter = ListFilter::read(query, &texts, &["paused_at"])?;
    filter.full_name = full_name_filter(query)?;
    let showing = Showing::load(state, filter.with_archived)?;
    let connections = showing.catalog.connections();
    let views = connections
        .into_iter()
        .map(|c| showing.connection(c))
        .collect();
    Ok((filter, views))
}

/// The view of one object, archived ones included.
pub(super) async fn one(
    state: Arc<ApiState>,
    kind: ObjectKind,
    id: String,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let live = Showing::load(&state, false)?;
        let view = match live.object(kind, &id)? {
            Some(view) => Some(view),
            None => Showing::load(&state, true)?.object(kind, &id)?,
        };
        view.map(Json)
            .ok_or_else(|| ApiError::not_found(kind.table().trim_end_matches('s'), &id))
    })
    .await
}

#[utoipa::path(get, path = "/2023-07-01/sources/{id}", tag = "configuration", summary = "One source (by id or name)", params(("id" = String, Path, description = "src_… or name"), ("include" = Option<String>, Query, description = "verification.configs: show the verification's settings (secrets masked)")), responses((status = 200, description = "the source", body = SourceView), (status = 404, description = "unknown", body = ErrorBody), (status = 422, description = "a bad parameter", body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_source(
    State(state): Shared,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = super::query::Query::parse(raw.as_deref());
    let with_configs = match query.one("include") {
        None => false,
        Some("verification.configs") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "include",
                format!("\"{other}\" is not verification.configs"),
            ))
        }
    };
    query.refuse_unread()?;
    let Json(mut view) = one(state.clone(), ObjectKind::Source, id).await?;
    // The settings are shown only when asked for, as the reference does.
    let catalog = state.catalog.load();
    let served = view["id"].as_str().and_then(|id| catalog.source(id));
    if let (true, Some(verifier)) = (with_configs, served.and_then(|s| s.verifier.as_ref())) {
        view["verification"]["configs"] = verifier.shown_configs().clone();
    }
    Ok(Json(view))
}

#[utoipa::path(get, path = "/2023-07-01/destinations/{id}", tag = "configuration", summary = "One destination (by id or name)", params(("id" = String, Path, description = "des_… or name")), responses((status = 200, description = "the destination", body = DestinationView), (status = 404, description = "unknown", body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_destination(
    State(state): Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    one(state, ObjectKind::Destination, id).await
}

#[utoipa::path(get, path = "/2023-07-01/connections/{id}", tag = "configuration", summary = "One connection (by id or name)", params(("id" = String, Path, description = "web_… or name")), responses((status = 200, description = "the connection", body = ConnectionView), (status = 404, description = "unknown", body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_connection(
    State(state): Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    one(state, ObjectKind::Connection, id).await
}

/// `PUT /connections/{id}/pause`: new and queued events are held (HOLD). Pausing is
/// operational state, so it works on connections declared in gateway.toml too.
#[utoipa::path(put, path = "/2023-07-01/connections/{id}/pause", tag = "configuration", summary = "Hold the connection's events", params(("id" = String, Path, description = "web_…")), responses((status = 200, description = "the connection", body = ConnectionView), (status = 404, description = "unknown", body = ErrorBody)), security(("api_key" = [])))]
pub async fn pause_connection(
    State(state): Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    connection_view(&state, id, |store, connection| {
        store.pause(&connection.id, now_ms())?;
        // The lane may be pacing out a loaded batch under a rate limit: woken,
        // it lets go of it, and holds those events when it comes to them again.
        Ok(vec![connection.destination_id.clone()])
    })
    .await
}

/// `PUT /connections/{id}/unpause`: held events are queued again (trigger UNPAUSE).
#[utoipa::path(put, path = "/2023-07-01/connections/{id}/unpause", tag = "configuration", summary = "Release held events (trigger UNPAUSE)", params(("id" = String, Path, description = "web_…")), responses((status = 200, description = "the connection", body = ConnectionView), (status = 404, description = "unknown", body = ErrorBody)), security(("api_key" = [])))]
pub async fn unpause_connection(
    State(state): Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    connection_view(&state, id, |store, connection| {
        Ok(store.unpause(&connection.id, now_ms())?)
    })
    .await
}

/// Runs `change` on a served connection (it returns destinations to wake) and shows the result.
async fn connection_view(
    state: &Arc<ApiState>,
    id: String,
    change: impl FnOnce(&Store, &Connection) -> ApiResult<Vec<String>> + Send + 'static,
) -> ApiResult<Json<Value>> {
    let shown_state = state.clone();
    let (view, woken) = blocking(move || {
        let showing = Showing::load(&shown_state, false)?;
        let connection = showing
            .catalog
            .connection(&id)
            .ok_or_else(|| ApiError::not_found("connection", &id))?;
        let woken = change(&shown_state.store, connection)?;
        Ok((showing.connection(connection)?, woken))
    })
    .await?;
    woken
        .iter()
        .for_each(|destination| state.scheduler.wake(destination));
    Ok(Json(view))
}

/// A destination's backlog.
#[derive(Serialize, ToSchema)]
pub struct QueueView {
    pub destination_id: String,
    /// How many events wait to be delivered.
    pub queue_depth: u64,
    /// When the oldest of them was due; null when none waits.
    #[schema(required)]
    pub oldest_due_at: Option<String>,
    /// How long the oldest event has been due without being delivered.
    pub oldest_pending_ms: u64,
}

/// `GET /destinations/{id}/queue`: the backlog, so backpressure is visible.
#[utoipa::path(get, path = "/2023-07-01/destinations/{id}/queue", tag = "configuration", summary = "A destination's backlog: queued events and how late the oldest one is", params(("id" = String, Path, description = "des_…")), responses((status = 200, description = "queue_depth, oldest_due_at, oldest_pending_ms", body = QueueView), (status = 404, description = "unknown", body = ErrorBody)), security(("api_key" = [])))]
pub async fn destination_queue(
    State(state): Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let destination = state
        .catalog
        .load()
        .destination(&id)
        .cloned()
        .ok_or_else(|| ApiError::not_found("destination", &id))?;
    let store = state.store.clone();
    blocking(move || {
        let oldest = store
            .oldest_entry(&destination.id)?
            .map(|entry| entry.due_ms);
        let now = now_ms();
        Ok(Json(value_of(QueueView {
            destination_id: destination.id.clone(),
            queue_depth: store.queue_depth(&destination.id)?,
            oldest_due_at: oldest.map(super::query::iso),
            oldest_pending_ms: oldest.map_or(0, |due| now.saturating_sub(due)),
        })))
    })
    .await
}

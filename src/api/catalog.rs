//! `/sources`, `/destinations`, `/connections`. Objects declared in gateway.toml
//! are shown but cannot be changed here: the file is their source of truth, and a
//! restart must never undo an API change silently.

use super::error::{ApiError, ApiResult};
use super::query::Query;
use super::{blocking, listing, views, ApiState, Shared};
use crate::ids::now_ms;
use crate::model::Connection;
use crate::store::PageRequest;
use crate::store::Store;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

/// The `name` filter of a configuration list, its only one, and the page asked for.
fn name_matcher(raw: Option<&str>) -> ApiResult<(impl Fn(&str) -> bool, PageRequest)> {
    let query = Query::parse(raw);
    let name = query.matcher("name");
    let page = query.page_ordered(&["created_at", "name"])?;
    query.refuse_unread()?;
    Ok((name, page))
}

fn listing(models: Vec<Value>, page: &PageRequest) -> ApiResult<Json<Value>> {
    let found = listing::page_of(models, page)?;
    Ok(Json(super::paged(
        page,
        found.next,
        found.prev,
        found.items,
    )))
}

#[utoipa::path(get, path = "/2023-07-01/sources", tag = "configuration", summary = "Sources, by name", params(("name" = Option<String>, Query, description = "exact name, name[]=…, or name[contains]=…")), responses((status = 200, description = "every source")), security(("api_key" = [])))]
pub async fn list_sources(State(state): Shared, RawQuery(raw): RawQuery) -> ApiResult<Json<Value>> {
    let (name, page) = name_matcher(raw.as_deref())?;
    let catalog = state.catalog.load();
    listing(
        catalog
            .sources()
            .into_iter()
            .filter(|o| name(&o.name))
            .map(|o| views::source(o, state.config.load().declared.contains(&o.id)))
            .collect(),
        &page,
    )
}

#[utoipa::path(get, path = "/2023-07-01/destinations", tag = "configuration", summary = "Destinations, by name", params(("name" = Option<String>, Query, description = "exact name, name[]=…, or name[contains]=…")), responses((status = 200, description = "every destination")), security(("api_key" = [])))]
pub async fn list_destinations(
    State(state): Shared,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let (name, page) = name_matcher(raw.as_deref())?;
    let catalog = state.catalog.load();
    listing(
        catalog
            .destinations()
            .into_iter()
            .filter(|o| name(&o.name))
            .map(|o| views::destination(o, state.config.load().declared.contains(&o.id)))
            .collect(),
        &page,
    )
}

#[utoipa::path(get, path = "/2023-07-01/connections", tag = "configuration", summary = "Connections, by name", params(("name" = Option<String>, Query, description = "exact name, name[]=…, or name[contains]=…")), responses((status = 200, description = "every connection")), security(("api_key" = [])))]
pub async fn list_connections(
    State(state): Shared,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let (name, page) = name_matcher(raw.as_deref())?;
    let catalog = state.catalog.load_full();
    let store = state.store.clone();
    let declared = state.config.load().declared.clone();
    blocking(move || {
        let models = catalog
            .connections()
            .into_iter()
            .filter(|c| name(&c.name))
            .map(|c| {
                Ok(views::connection(
                    c,
                    store.paused_at(&c.id)?,
                    declared.contains(&c.id),
                ))
            })
            .collect::<ApiResult<Vec<_>>>()?;
        listing(models, &page)
    })
    .await
}

#[utoipa::path(get, path = "/2023-07-01/sources/{id}", tag = "configuration", summary = "One source (by id or name)", params(("id" = String, Path, description = "src_… or name"), ("include" = Option<String>, Query, description = "verification.configs: show the verification's settings (secrets masked)")), responses((status = 200, description = "the source"), (status = 404, description = "unknown"), (status = 422, description = "a bad parameter")), security(("api_key" = [])))]
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
    let catalog = state.catalog.load();
    let source = catalog
        .source(&id)
        .ok_or_else(|| ApiError::not_found("source", &id))?;
    let mut view = views::source(source, state.config.load().declared.contains(&source.id));
    // The settings are shown only when asked for, as the reference does.
    if let (true, Some(verifier)) = (with_configs, &source.verifier) {
        view["verification"]["configs"] = verifier.shown_configs().clone();
    }
    Ok(Json(view))
}

#[utoipa::path(get, path = "/2023-07-01/destinations/{id}", tag = "configuration", summary = "One destination", params(("id" = String, Path, description = "des_…")), responses((status = 200, description = "the destination"), (status = 404, description = "unknown")), security(("api_key" = [])))]
pub async fn get_destination(
    State(state): Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let catalog = state.catalog.load();
    let destination = catalog
        .destination(&id)
        .ok_or_else(|| ApiError::not_found("destination", &id))?;
    Ok(Json(views::destination(
        destination,
        state.config.load().declared.contains(&destination.id),
    )))
}

#[utoipa::path(get, path = "/2023-07-01/connections/{id}", tag = "configuration", summary = "One connection", params(("id" = String, Path, description = "web_…")), responses((status = 200, description = "the connection"), (status = 404, description = "unknown")), security(("api_key" = [])))]
pub async fn get_connection(
    State(state): Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    connection_view(&state, id, |_, _| Ok(Vec::new())).await
}

/// `PUT /connections/{id}/pause`: new and queued events are held (HOLD). Pausing is
/// operational state, so it works on connections declared in gateway.toml too.
#[utoipa::path(put, path = "/2023-07-01/connections/{id}/pause", tag = "configuration", summary = "Hold the connection's events", params(("id" = String, Path, description = "web_…")), responses((status = 200, description = "the connection"), (status = 404, description = "unknown")), security(("api_key" = [])))]
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
#[utoipa::path(put, path = "/2023-07-01/connections/{id}/unpause", tag = "configuration", summary = "Release held events (trigger UNPAUSE)", params(("id" = String, Path, description = "web_…")), responses((status = 200, description = "the connection"), (status = 404, description = "unknown")), security(("api_key" = [])))]
pub async fn unpause_connection(
    State(state): Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    connection_view(&state, id, |store, connection| {
        Ok(store.unpause(&connection.id, now_ms())?)
    })
    .await
}

/// Runs `change` on a known connection (it returns destinations to wake) and shows the result.
async fn connection_view(
    state: &Arc<ApiState>,
    id: String,
    change: impl FnOnce(&Store, &Connection) -> ApiResult<Vec<String>> + Send + 'static,
) -> ApiResult<Json<Value>> {
    let catalog = state.catalog.load_full();
    let store = state.store.clone();
    let declared = state.config.load().declared.clone();
    let (view, woken) = blocking(move || {
        let connection = catalog
            .connection(&id)
            .ok_or_else(|| ApiError::not_found("connection", &id))?;
        let woken = change(&store, connection)?;
        Ok((
            views::connection(connection, store.paused_at(&id)?, declared.contains(&id)),
            woken,
        ))
    })
    .await?;
    woken
        .iter()
        .for_each(|destination| state.scheduler.wake(destination));
    Ok(Json(view))
}

/// `GET /destinations/{id}/queue`: the backlog, so backpressure is visible.
#[utoipa::path(get, path = "/2023-07-01/destinations/{id}/queue", tag = "configuration", summary = "A destination's backlog: queued events and how late the oldest one is", params(("id" = String, Path, description = "des_…")), responses((status = 200, description = "queue_depth, oldest_due_at, oldest_pending_ms"), (status = 404, description = "unknown")), security(("api_key" = [])))]
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
        Ok(Json(json!({
            "destination_id": destination.id,
            "queue_depth": store.queue_depth(&destination.id)?,
            "oldest_due_at": oldest.map(super::query::iso),
            // How long the oldest event has been due without being delivered.
            "oldest_pending_ms": oldest.map_or(0, |due| now.saturating_sub(due)),
        })))
    })
    .await
}

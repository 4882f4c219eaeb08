//! Creating, updating and deleting sources, destinations and connections
//! through the API. Such objects live in the store, take effect at once (the
//! catalog is swapped) and survive restarts. Objects declared in gateway.toml
//! stay read-only: the file is their source of truth.

use super::error::{unreadable_body, ApiError, ApiResult};
use super::{blocking, reachable, views, ApiState, Shared};
use crate::config::{ApiObject, ObjectKind};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::Json;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The resource a call is about, from its path (`/2023-07-01/sources/…` → `sources`).
fn table_of(uri: &Uri) -> String {
    let mut segments = uri.path().split('/').filter(|s| !s.is_empty());
    let first = segments.next().unwrap_or_default();
    let table = if super::API_VERSIONS.contains(&first) {
        segments.next().unwrap_or_default()
    } else {
        first
    };
    table.to_string()
}

fn kind_of(table: &str) -> ApiResult<ObjectKind> {
    match table {
        "sources" => Ok(ObjectKind::Source),
        "destinations" => Ok(ObjectKind::Destination),
        "connections" | "webhooks" => Ok(ObjectKind::Connection),
        other => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no resource \"{other}\""),
        )),
    }
}

fn body_object(body: Result<Json<Value>, JsonRejection>) -> ApiResult<Map<String, Value>> {
    match body {
        Ok(Json(Value::Object(fields))) => Ok(fields),
        Ok(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the body must be a JSON object",
        )),
        Err(e) => Err(unreadable_body(e)),
    }
}

/// `POST /{sources,destinations,connections}`: creates; the name must be free.
#[utoipa::path(post, path = "/2023-07-01/sources", tag = "configuration", summary = "Create a source (likewise POST /destinations, /connections); fields as in gateway.toml; a connection takes source_id/destination_id or inline source/destination objects", responses((status = 200, description = "the object"), (status = 409, description = "the name is taken"), (status = 422, description = "invalid, with every problem")), security(("api_key" = [])))]
pub async fn create(
    State(state): Shared,
    uri: Uri,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    add(state, uri, body, |state, object, objects| {
        let taken = objects
            .iter()
            .any(|o| o.kind == object.kind && o.name == object.name)
            || state.config.load().declared.contains(&object.id());
        if taken {
            return Err(ApiError::conflict(format!(
                "a {} named \"{}\" already exists",
                object.kind.table().trim_end_matches('s'),
                object.name
            )));
        }
        Ok(())
    })
    .await
}

/// `PUT /{sources,destinations,connections}`: creates, or replaces the one with that name.
#[utoipa::path(put, path = "/2023-07-01/sources", tag = "configuration", summary = "Create or replace by name (likewise /destinations, /connections)", responses((status = 200, description = "the object"), (status = 409, description = "declared in gateway.toml"), (status = 422, description = "invalid")), security(("api_key" = [])))]
pub async fn upsert(
    State(state): Shared,
    uri: Uri,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    add(state, uri, body, |state, object, objects| {
        refuse_declared(state, &object.id(), &object.name)?;
        objects.retain(|o| !(o.kind == object.kind && o.name == object.name));
        Ok(())
    })
    .await
}

/// Builds the object the body describes and stores it, once `make_room`
/// (given the objects already stored) has refused it or made way for it.
async fn add(
    state: Arc<ApiState>,
    uri: Uri,
    body: Result<Json<Value>, JsonRejection>,
    make_room: fn(&ApiState, &ApiObject, &mut Vec<ApiObject>) -> ApiResult<()>,
) -> ApiResult<Json<Value>> {
    let kind = kind_of(&table_of(&uri))?;
    let fields = body_object(body)?;
    write(state, move |state, objects| {
        let object = to_object(state, kind, fields, objects)?;
        make_room(state, &object, objects)?;
        let id = object.id();
        objects.push(object);
        Ok(id)
    })
    .await
}

/// `PUT /{kind}/{id}`: changes the given fields of an API-created object.
#[utoipa::path(put, path = "/2023-07-01/sources/{id}", tag = "configuration", summary = "Change fields of an API-created source (likewise destinations, connections)", params(("id" = String, Path, description = "the object's id or name")), responses((status = 200, description = "the object"), (status = 404, description = "unknown"), (status = 409, description = "declared in gateway.toml"), (status = 422, description = "invalid")), security(("api_key" = [])))]
pub async fn update(
    State(state): Shared,
    uri: Uri,
    Path(id): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let kind = kind_of(&table_of(&uri))?;
    let changes = body_object(body)?;
    write(state, move |state, objects| {
        let index = find(state, kind, &id, objects)?;
        let mut fields = objects[index].fields.clone();
        fields.insert("name".into(), Value::String(objects[index].name.clone()));
        fields.extend(changes);
        let updated = to_object(state, kind, fields, objects)?;
        if updated.name != objects[index].name {
            return Err(ApiError::invalid(
                "name",
                "cannot change (the id derives from it); create a new object instead",
            ));
        }
        objects[index] = updated;
        Ok(id)
    })
    .await
}

/// `DELETE /{kind}/{id}`: removes an API-created object nothing refers to.
#[utoipa::path(delete, path = "/2023-07-01/sources/{id}", tag = "configuration", summary = "Delete an API-created source (likewise destinations, connections)", params(("id" = String, Path, description = "the object's id or name")), responses((status = 200, description = "deleted"), (status = 404, description = "unknown"), (status = 409, description = "declared, or still used by a connection")), security(("api_key" = [])))]
pub async fn delete(
    State(state): Shared,
    uri: Uri,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let kind = kind_of(&table_of(&uri))?;
    let deleted = id.clone();
    let state_for_write = state.clone();
    let removed = write(state_for_write, move |state, objects| {
        let index = find(state, kind, &id, objects)?;
        let object = objects.remove(index);
        if kind == ObjectKind::Source {
            // Its URL answers 410 from now on (see `store::deleted_sources`);
            // should the deletion be refused below, the source is still
            // served, which wins over this.
            state.store.remember_deleted_source(&object.name)?;
        }
        Ok(String::new())
    })
    .await;
    drop(removed.map_err(broken_reference_is_conflict)?);
    Ok(Json(json!({ "id": deleted })))
}

/// `PUT /{kind}/{id}/archive` and `/unarchive`: an archived API-created object
/// is kept but not served (its source URL answers 404, its connection makes no
/// events). An object a live connection uses cannot be archived (409).
#[utoipa::path(put, path = "/2023-07-01/sources/{id}/archive", tag = "configuration", summary = "Archive (or, with /unarchive, restore) an API-created source; likewise destinations and connections", params(("id" = String, Path, description = "the object's id or name")), responses((status = 200, description = "the object and archived_at"), (status = 404, description = "unknown"), (status = 409, description = "declared in gateway.toml, or still used by a live connection")), security(("api_key" = [])))]
pub async fn archive_action(
    State(state): Shared,
    Path((table, id, action)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let kind = kind_of(&table)?;
    let archive = match action.as_str() {
        "archive" => true,
        "unarchive" => false,
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no action \"{other}\" on {table}"),
            ))
        }
    };
    let (id_for_view, state_for_view) = (id.clone(), state.clone());
    let written = write(state, move |state, objects| {
        let index = find(state, kind, &id, objects)?;
        objects[index].archived_at = archive.then(crate::ids::now_ms);
        Ok(objects[index].id())
    })
    .await;
    drop(written.map_err(broken_reference_is_conflict)?);
    let objects = blocking(move || Ok(state_for_view.store.api_objects()?)).await?;
    let object = objects
        .iter()
        .find(|o| o.id() == id_for_view || o.name == id_for_view);
    Ok(Json(json!({
        "id": object.map(ApiObject::id),
        "name": object.map(|o| o.name.clone()),
        "archived_at": object.and_then(|o| o.archived_at).map(super::query::iso),
    })))
}

/// Removing or archiving what a live connection still uses breaks a
/// reference: a conflict with the current state, not bad input.
fn broken_reference_is_conflict(error: ApiError) -> ApiError {
    if error.status == StatusCode::UNPROCESSABLE_ENTITY {
        return ApiError {
            status: StatusCode::CONFLICT,
            ..error
        };
    }
    error
}

fn read_only(name: &str) -> ApiError {
    ApiError::conflict(format!("\"{name}\" is declared in gateway.toml and is read-only through the API: change it in the file"))
}

fn refuse_declared(state: &ApiState, id: &str, name: &str) -> ApiResult<()> {
    if state.config.load().declared.contains(id) {
        return Err(read_only(name));
    }
    Ok(())
}

/// The index of an API-created object by id (or name).
fn find(state: &ApiState, kind: ObjectKind, id: &str, objects: &[ApiObject]) -> ApiResult<usize> {
    refuse_declared(state, id, id)?;
    objects
        .iter()
        .position(|o| o.kind == kind && (o.id() == id || o.name == id))
        .ok_or_else(|| ApiError::not_found(kind.table().trim_end_matches('s'), id))
}

/// An object from API fields. A connection may name its source and destination
/// by id (`source_id`) or create them inline (`source: {…}`), which adds them too.
fn to_object(
    state: &ApiState,
    kind: ObjectKind,
    mut fields: Map<String, Value>,
    objects: &mut Vec<ApiObject>,
) -> ApiResult<ApiObject> {
    crate::config::refuse_operator_only(&fields)?;
    let name = match fields.remove("name") {
        Some(Value::String(name)) => name,
        _ => return Err(ApiError::invalid("name", "is required (a string)")),
    };
    if let (ObjectKind::Destination, Some(Value::String(url))) = (kind, fields.get("url")) {
        // An unparsable URL is left to the config's validation to describe.
        if let Ok(url) = url::Url::parse(url) {
            reachable(state, "url", &url)?;
        }
    }
    if kind == ObjectKind::Connection {
        for (end, end_kind) in [
            ("source", ObjectKind::Source),
            ("destination", ObjectKind::Destination),
        ] {
            let end_name = connection_end(state, &mut fields, end, end_kind, objects)?;
            fields.insert(end.to_string(), Value::String(end_name));
        }
    }
    Ok(ApiObject {
        kind,
        name,
        fields,
        archived_at: None,
    })
}

/// Resolves `{end}_id` or an inline `{end}` object to the name the config uses.
fn connection_end(
    state: &ApiState,
    fields: &mut Map<String, Value>,
    end: &str,
    kind: ObjectKind,
    objects: &mut Vec<ApiObject>,
) -> ApiResult<String> {
    let id_key = format!("{end}_id");
    match (fields.remove(&id_key), fields.remove(end)) {
        (Some(Value::String(id)), None) => {
            let catalog = state.catalog.load();
            let name = match kind {
                ObjectKind::Source => catalog.source(&id).map(|s| s.name.clone()),
                _ => catalog.destination(&id).map(|d| d.name.clone()),
            };
            name.ok_or_else(|| ApiError::invalid(&id_key, format!("no {end} with id \"{id}\"")))
        }
        (None, Some(Value::Object(inline))) => {
            let nested = to_object(state, kind, inline, objects)?;
            let name = nested.name.clone();
            if !objects.iter().any(|o| o.kind == kind && o.name == name) {
                objects.push(nested);
            }
            Ok(name)
        }
        (None, Some(Value::String(name))) => Ok(name),
        _ => Err(ApiError::invalid(
            end,
            format!("give {id_key} or a {end} object"),
        )),
    }
}

/// Applies a change to the set of API objects: validates the whole with the
/// file's config, stores it, and swaps the catalog in. Returns the object's view.
async fn write(
    state: Arc<ApiState>,
    change: impl FnOnce(&ApiState, &mut Vec<ApiObject>) -> ApiResult<String> + Send + 'static,
) -> ApiResult<Json<Value>> {
    let state_for_view = state.clone();
    let id = blocking(move || {
        let _one_writer = state
            .object_updates
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut objects = state.store.api_objects()?;
        let id = change(&state, &mut objects)?;
        let resolved = resolve_transformations(&objects, &state.store)?;
        let config = state
            .config
            .load()
            .with_api_objects(&resolved)
            .map_err(|errors| ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: errors.0.join("; "),
                data: json!({ "errors": errors.0 }),
            })?;
        state.store.replace_api_objects(&objects)?;
        // Endpoints change under the same lock (see `v1`), so none is lost here.
        let endpoints = state.catalog.load().endpoints();
        state
            .scheduler
            .replace_catalog(config.catalog().with_endpoints(endpoints));
        Ok(id)
    })
    .await?;
    Ok(Json(view_of(&state_for_view, &id)))
}

fn view_of(state: &ApiState, id: &str) -> Value {
    let catalog = state.catalog.load();
    if let Some(source) = catalog.source(id) {
        return views::source(source, false);
    }
    if let Some(destination) = catalog.destination(id) {
        return views::destination(destination, false);
    }
    catalog
        .connection(id)
        .map_or(Value::Null, |c| views::connection(c, None, false))
}

/// Validates the current objects again and swaps the catalog in (after a
/// transformation they use changed).
pub(super) async fn rebuild(state: Arc<ApiState>) -> ApiResult<()> {
    write(state, |_, _| Ok(String::new())).await.map(drop)
}

/// API connections may use `{"type": "transform", "transformation_id": "trs_…"}`:
/// the stored transformation's current code goes in its place, so an update to
/// the transformation reaches every connection using it.
pub fn resolve_transformations(
    objects: &[ApiObject],
    store: &crate::store::Store,
) -> ApiResult<Vec<ApiObject>> {
    let mut resolved = objects.to_vec();
    for object in resolved
        .iter_mut()
        .filter(|o| o.kind == ObjectKind::Connection)
    {
        let Some(Value::Array(rules)) = object.fields.get_mut("rules") else {
            continue;
        };
        for rule in rules.iter_mut().filter_map(Value::as_object_mut) {
            let Some(Value::String(id)) = rule.remove("transformation_id") else {
                continue;
            };
            let stored = store.transformation(&id)?.ok_or_else(|| {
                ApiError::invalid("transformation_id", format!("no transformation \"{id}\""))
            })?;
            rule.insert(
                "transformation".into(),
                json!({ "name": stored.name, "code": stored.code, "env": stored.env }),
            );
        }
    }
    Ok(resolved)
}

/// Whether an API connection uses the transformation.
pub(super) fn uses_transformation(object: &ApiObject, id: &str) -> bool {
    object
        .fields
        .get("rules")
        .and_then(Value::as_array)
        .is_some_and(|rules| {
            rules
                .iter()
                .any(|rule| rule.get("transformation_id").and_then(Value::as_str) == Some(id))
        })
}

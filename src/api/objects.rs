//! Creating, updating and deleting sources, destinations and connections
//! through the API. Such objects live in the store, take effect at once (the
//! catalog is swapped) and survive restarts. Objects declared in gateway.toml
//! stay read-only: the file is their source of truth.

use super::error::{unreadable_body, ApiError, ApiResult};
use super::object_inputs::{SourceChange, SourceInput};
use super::schema::{value_of, Deleted, ErrorBody};
use super::views::SourceView;
use super::{blocking, reachable, ApiState, Shared};
use crate::config::{ApiObject, ObjectKind};
use crate::model::TransformationObject;
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
#[utoipa::path(post, path = "/2023-07-01/sources", tag = "configuration", summary = "Create a source (likewise POST /destinations, /connections); fields as in gateway.toml; a connection takes source_id/destination_id or inline source/destination objects", request_body = SourceInput, responses((status = 200, description = "the object", body = SourceView), (status = 409, description = "the name is taken, or an inline transformation's name with other code", body = ErrorBody), (status = 422, description = "invalid, with every problem", body = ErrorBody)), security(("api_key" = [])))]
pub async fn create(
    State(state): Shared,
    uri: Uri,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let kind = kind_of(&table_of(&uri))?;
    let fields = body_object(body)?;
    let id = write(state.clone(), move |state, objects, new| {
        let object = to_object(state, kind, fields, objects, new)?;
        refuse_taken(state, kind, &object.name, objects)?;
        Ok(added(object, objects))
    })
    .await?;
    super::catalog::one(state, kind, id).await
}

/// `PUT /{sources,destinations,connections}`: creates, or changes the given
/// fields of the one with that name (a connection's source and destination
/// stay what they are).
#[utoipa::path(put, path = "/2023-07-01/sources", tag = "configuration", summary = "Create, or update the given fields, by name (likewise /destinations, /connections; a connection's source and destination cannot change)", request_body = SourceInput, responses((status = 200, description = "the object", body = SourceView), (status = 409, description = "declared in gateway.toml, or an inline transformation's name is taken with other code", body = ErrorBody), (status = 422, description = "invalid", body = ErrorBody)), security(("api_key" = [])))]
pub async fn upsert(
    State(state): Shared,
    uri: Uri,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let kind = kind_of(&table_of(&uri))?;
    let fields = body_object(body)?;
    let id = write(state.clone(), move |state, objects, new| {
        let given: Vec<String> = fields.keys().cloned().collect();
        let object = to_object(state, kind, fields, objects, new)?;
        refuse_declared(state, &object.id(), &object.name)?;
        let Some(index) = named(kind, &object.name, objects) else {
            return Ok(added(object, objects));
        };
        keep_ends(&objects[index], &object, &given)?;
        let current = &mut objects[index];
        current.fields.extend(object.fields);
        Ok(current.id())
    })
    .await?;
    super::catalog::one(state, kind, id).await
}

/// A name is taken by a stored object of its kind or one gateway.toml declares.
fn refuse_taken(
    state: &ApiState,
    kind: ObjectKind,
    name: &str,
    objects: &[ApiObject],
) -> ApiResult<()> {
    let declared = crate::ids::named_id(kind.id_prefix(), name);
    if named(kind, name, objects).is_some() || state.config.load().declared.contains(&declared) {
        return Err(ApiError::conflict(format!(
            "a {} named \"{name}\" already exists",
            kind.table().trim_end_matches('s')
        )));
    }
    Ok(())
}

/// The index of the stored object of that kind and name.
fn named(kind: ObjectKind, name: &str, objects: &[ApiObject]) -> Option<usize> {
    objects
        .iter()
        .position(|o| o.kind == kind && o.name == name)
}

/// Stores a new object; returns its id. Its name's id is normally its id,
/// unless a renamed object kept that one (see `ApiObject::kept_id`).
fn added(mut object: ApiObject, objects: &mut Vec<ApiObject>) -> String {
    if objects.iter().any(|o| o.id() == object.id()) {
        object.kept_id = Some(crate::ids::new_id(object.kind.id_prefix()));
    }
    let id = object.id();
    objects.push(object);
    id
}

/// A connection's source and destination cannot be changed: given again,
/// they must be the ones it has.
fn keep_ends(current: &ApiObject, changed: &ApiObject, given: &[String]) -> ApiResult<()> {
    if current.kind != ObjectKind::Connection {
        return Ok(());
    }
    for end in ["source", "destination"] {
        if changed
            .fields
            .get(end)
            .is_some_and(|e| current.fields.get(end) != Some(e))
        {
            let id_key = format!("{end}_id");
            let field = if given.contains(&id_key) {
                id_key
            } else {
                end.to_string()
            };
            return Err(ApiError::invalid(
                &field,
                format!("a connection's {end} cannot be changed; create another connection"),
            ));
        }
    }
    Ok(())
}

/// `PUT /{kind}/{id}`: changes the given fields of an API-created object,
/// its name included (its id stays).
#[utoipa::path(put, path = "/2023-07-01/sources/{id}", tag = "configuration", summary = "Change fields of an API-created source, name included (likewise destinations, connections)", params(("id" = String, Path, description = "the object's id or name")), request_body = SourceChange, responses((status = 200, description = "the object", body = SourceView), (status = 404, description = "unknown", body = ErrorBody), (status = 409, description = "declared in gateway.toml, the new name is taken, or an inline transformation's name with other code", body = ErrorBody), (status = 422, description = "invalid", body = ErrorBody)), security(("api_key" = [])))]
pub async fn update(
    State(state): Shared,
    uri: Uri,
    Path(id): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let kind = kind_of(&table_of(&uri))?;
    let changes = body_object(body)?;
    let id = write(state.clone(), move |state, objects, new| {
        let index = find(state, kind, &id, objects)?;
        let current = objects[index].clone();
        let given: Vec<String> = changes.keys().cloned().collect();
        let mut fields = current.fields.clone();
        fields.insert("name".into(), Value::String(current.name.clone()));
        // An end given by id replaces the stored one (to be refused if it differs).
        for end in ["source", "destination"] {
            if changes.contains_key(&format!("{end}_id")) {
                fields.remove(end);
            }
        }
        fields.extend(changes);
        let mut updated = to_object(state, kind, fields, objects, new)?;
        keep_ends(&current, &updated, &given)?;
        updated.archived_at = current.archived_at;
        updated.kept_id = current.kept_id.clone();
        if updated.name != current.name {
            rename(state, &current, &updated.name, objects)?;
            updated.kept_id = Some(current.id());
        }
        objects[index] = updated;
        Ok(current.id())
    })
    .await?;
    super::catalog::one(state, kind, id).await
}

/// Checks the new name is free and makes the connections using the object
/// name it so (they refer to their ends by name).
fn rename(
    state: &ApiState,
    current: &ApiObject,
    new_name: &str,
    objects: &mut [ApiObject],
) -> ApiResult<()> {
    refuse_taken(state, current.kind, new_name, objects)?;
    let end = match current.kind {
        ObjectKind::Source => "source",
        ObjectKind::Destination => "destination",
        ObjectKind::Connection => return Ok(()),
    };
    let old_name = Value::String(current.name.clone());
    let users = objects
        .iter_mut()
        .filter(|o| o.kind == ObjectKind::Connection && o.fields.get(end) == Some(&old_name));
    for user in users {
        user.fields
            .insert(end.into(), Value::String(new_name.into()));
    }
    Ok(())
}

/// `DELETE /{kind}/{id}`: removes an API-created object nothing refers to.
#[utoipa::path(delete, path = "/2023-07-01/sources/{id}", tag = "configuration", summary = "Delete an API-created source (likewise destinations, connections)", params(("id" = String, Path, description = "the object's id or name")), responses((status = 200, description = "deleted", body = Deleted), (status = 404, description = "unknown", body = ErrorBody), (status = 409, description = "declared, or still used by a connection", body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete(
    State(state): Shared,
    uri: Uri,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let kind = kind_of(&table_of(&uri))?;
    let removed = write(state, move |state, objects, _| {
        let index = find(state, kind, &id, objects)?;
        let object = &objects[index];
        // Answered as the reference does, by id, also when named by name.
        let deleted = object.id();
        refuse_used_by_archived(object, objects)?;
        if kind == ObjectKind::Source {
            // Its URL answers 410 from now on (see `store::deleted_sources`);
            // should the deletion be refused below, the source is still
            // served, which wins over this.
            state.store.remember_deleted_source(&object.name)?;
        }
        objects.remove(index);
        Ok(deleted)
    })
    .await;
    let deleted = removed.map_err(broken_reference_is_conflict)?;
    Ok(Json(value_of(Deleted { id: deleted })))
}

/// A source or destination an archived connection uses stays: the
/// connection may be unarchived (a live one's use fails validation instead).
fn refuse_used_by_archived(object: &ApiObject, objects: &[ApiObject]) -> ApiResult<()> {
    let end = match object.kind {
        ObjectKind::Source => "source",
        ObjectKind::Destination => "destination",
        ObjectKind::Connection => return Ok(()),
    };
    let user = objects
        .iter()
        .filter(|o| o.kind == ObjectKind::Connection && o.archived_at.is_some())
        .find(|o| o.fields.get(end).and_then(Value::as_str) == Some(object.name.as_str()));
    match user {
        Some(connection) => Err(ApiError::conflict(format!(
            "{end} \"{}\" is used by the archived connection \"{}\": delete that first",
            object.name, connection.name
        ))),
        None => Ok(()),
    }
}

/// `PUT /{kind}/{id}/archive` and `/unarchive`: an archived API-created object
/// is kept but not served (its source URL answers 410, `SOURCE_ARCHIVED`; its
/// connection makes no events). As the reference says, archiving a source archives its
/// connections, and unarchiving a connection unarchives its source and
/// destination. A destination a live connection uses cannot be archived (409).
#[utoipa::path(put, path = "/2023-07-01/sources/{id}/archive", tag = "configuration", summary = "Archive (or, with /unarchive, restore) an API-created source and its connections; likewise destinations, and connections (unarchiving one restores its source and destination)", params(("id" = String, Path, description = "the object's id or name")), responses((status = 200, description = "the object", body = SourceView), (status = 404, description = "unknown", body = ErrorBody), (status = 409, description = "declared in gateway.toml, or still used by a live connection", body = ErrorBody)), security(("api_key" = [])))]
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
    let written = write(state.clone(), move |state, objects, _| {
        let index = find(state, kind, &id, objects)?;
        let archived_at = archive.then(crate::ids::now_ms);
        for related in archived_along(&objects[index], archive, objects) {
            objects[related].archived_at = archived_at;
        }
        objects[index].archived_at = archived_at;
        Ok(objects[index].id())
    })
    .await;
    let id = written.map_err(broken_reference_is_conflict)?;
    super::catalog::one(state, kind, id).await
}

/// The indexes of the objects (un)archived along with `object`: a source's
/// live connections, or an unarchived connection's archived ends.
fn archived_along(object: &ApiObject, archive: bool, objects: &[ApiObject]) -> Vec<usize> {
    // Whether connection `c` has the object named `name` as its `end`.
    let uses = |c: &ApiObject, end: &str, name: &str| {
        c.fields.get(end).and_then(Value::as_str) == Some(name)
    };
    let ends = [
        (ObjectKind::Source, "source"),
        (ObjectKind::Destination, "destination"),
    ];
    let along = |o: &ApiObject| match (object.kind, archive) {
        (ObjectKind::Source, true) => {
            o.kind == ObjectKind::Connection
                && o.archived_at.is_none()
                && uses(o, "source", &object.name)
        }
        (ObjectKind::Connection, false) => {
            o.archived_at.is_some()
                && ends
                    .iter()
                    .any(|(kind, end)| o.kind == *kind && uses(object, end, &o.name))
        }
        _ => false,
    };
    (0..objects.len()).filter(|&i| along(&objects[i])).collect()
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
/// by id (`source_id`) or create them inline (`source: {…}`), which adds them
/// too; without a name, it is named after them (`source-destination`). Its
/// rules' inline transformations become stored ones, added to `new`.
fn to_object(
    state: &ApiState,
    kind: ObjectKind,
    mut fields: Map<String, Value>,
    objects: &mut Vec<ApiObject>,
    new: &mut Vec<TransformationObject>,
) -> ApiResult<ApiObject> {
    crate::config::refuse_operator_only(&fields)?;
    refuse_rulesets(kind, &fields)?;
    let name = fields.remove("name");
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
            let end_name = connection_end(state, &mut fields, end, end_kind, objects, new)?;
            fields.insert(end.to_string(), Value::String(end_name));
        }
        refer_to_inline_transformations(state, &mut fields, new)?;
    }
    let name = match name {
        Some(Value::String(name)) => name,
        // The reference's connections may come without a name.
        None | Some(Value::Null) if kind == ObjectKind::Connection => format!(
            "{}-{}",
            fields["source"].as_str().unwrap_or_default(),
            fields["destination"].as_str().unwrap_or_default()
        ),
        _ => return Err(ApiError::invalid("name", "is required (a string)")),
    };
    Ok(ApiObject {
        kind,
        name,
        fields,
        archived_at: None,
        kept_id: None,
    })
}

/// Rulesets are gone from the reference's version (its changelog: "removed
/// ruleset and ruleset_id property when creating or updating a Connection"),
/// though one of its examples still sends `ruleset_id`.
fn refuse_rulesets(kind: ObjectKind, fields: &Map<String, Value>) -> ApiResult<()> {
    let given = ["ruleset_id", "ruleset"]
        .into_iter()
        .find(|key| fields.contains_key(*key));
    match (kind, given) {
        (ObjectKind::Connection, Some(key)) => Err(ApiError::invalid(
            key,
            "rulesets are not part of this API version: give the connection's rules as `rules`",
        )),
        _ => Ok(()),
    }
}

/// Resolves `{end}_id` or an inline `{end}` object to the name the config uses.
fn connection_end(
    state: &ApiState,
    fields: &mut Map<String, Value>,
    end: &str,
    kind: ObjectKind,
    objects: &mut Vec<ApiObject>,
    new: &mut Vec<TransformationObject>,
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
            let nested = to_object(state, kind, inline, objects, new)?;
            let name = nested.name.clone();
            upsert_inline(state, nested, objects)?;
            Ok(name)
        }
        (None, Some(Value::String(name))) => Ok(name),
        _ => Err(ApiError::invalid(
            end,
            format!("give {id_key} or a {end} object"),
        )),
    }
}

/// A transform rule defining its transformation inline refers to it by
/// `transformation_id` instead, as the reference's rules do once defined
/// (see `transformations::inline_transformation_id`).
fn refer_to_inline_transformations(
    state: &ApiState,
    fields: &mut Map<String, Value>,
    new: &mut Vec<TransformationObject>,
) -> ApiResult<()> {
    let Some(Value::Array(rules)) = fields.get_mut("rules") else {
        return Ok(());
    };
    let inline_transforms = rules
        .iter_mut()
        .filter_map(Value::as_object_mut)
        .filter(|rule| is_transform_rule(rule) && !rule.contains_key("transformation_id"));
    for rule in inline_transforms {
        let Some(inline) = rule.remove("transformation") else {
            continue;
        };
        let input = serde_json::from_value(inline)
            .map_err(|e| ApiError::invalid("rules", format!("an inline transformation: {e}")))?;
        let id = super::transformations::inline_transformation_id(state, input, new)?;
        rule.insert("transformation_id".into(), Value::String(id));
    }
    Ok(())
}

fn is_transform_rule(rule: &Map<String, Value>) -> bool {
    matches!(
        rule.get("type").and_then(Value::as_str),
        Some("transform" | "transformation")
    )
}

/// A connection's inline source or destination is created, or, when one of
/// that name exists, the fields it gives change (as `PUT /sources` would).
/// One declared in gateway.toml may be named this way but not changed.
fn upsert_inline(
    state: &ApiState,
    nested: ApiObject,
    objects: &mut Vec<ApiObject>,
) -> ApiResult<()> {
    if let Some(index) = named(nested.kind, &nested.name, objects) {
        objects[index].fields.extend(nested.fields);
        return Ok(());
    }
    if state.config.load().declared.contains(&nested.id()) {
        return match nested.fields.is_empty() {
            true => Ok(()),
            false => Err(read_only(&nested.name)),
        };
    }
    added(nested, objects);
    Ok(())
}

/// Applies a change to the set of API objects: validates the whole with the
/// file's config, stores it with the transformations the change defined,
/// records when objects changed, and swaps the catalog in. Returns what
/// `change` returned (the object's id).
async fn write(
    state: Arc<ApiState>,
    change: impl FnOnce(&ApiState, &mut Vec<ApiObject>, &mut Vec<TransformationObject>) -> ApiResult<String>
        + Send
        + 'static,
) -> ApiResult<String> {
    blocking(move || {
        let _one_writer = state
            .object_updates
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut objects = state.store.api_objects()?;
        let mut new_transformations = Vec::new();
        let id = change(&state, &mut objects, &mut new_transformations)?;
        let resolved = resolved_with(&objects, &state.store, &new_transformations)?;
        let config = state
            .config
            .load()
            .with_api_objects(&resolved)
            .map_err(|errors| ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: errors.0.join("; "),
                data: json!({ "errors": errors.0 }),
            })?;
        for transformation in &new_transformations {
            state.store.save_transformation(transformation)?;
        }
        state.store.replace_api_objects(&objects)?;
        let fingerprints = crate::config::object_fingerprints(&state.config.load(), &objects);
        state
            .store
            .stamp_objects(&fingerprints, crate::ids::now_ms())?;
        // Endpoints change under the same lock (see `v1`), so none is lost here.
        let endpoints = state.catalog.load().endpoints();
        let catalog = config.catalog().with_endpoints(endpoints);
        state.scheduler.replace_catalog(catalog);
        Ok(id)
    })
    .await
}

/// Validates the current objects again and swaps the catalog in (after a
/// transformation they use changed).
pub(super) async fn rebuild(state: Arc<ApiState>) -> ApiResult<()> {
    write(state, |_, _, _| Ok(String::new())).await.map(drop)
}

/// API connections may use `{"type": "transform", "transformation_id": "trs_…"}`:
/// the stored transformation's current code goes beside it, so an update to
/// the transformation reaches every connection using it.
pub fn resolve_transformations(
    objects: &[ApiObject],
    store: &crate::store::Store,
) -> ApiResult<Vec<ApiObject>> {
    resolved_with(objects, store, &[])
}

/// As `resolve_transformations`, with transformations about to be stored.
fn resolved_with(
    objects: &[ApiObject],
    store: &crate::store::Store,
    new: &[TransformationObject],
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
            let Some(Value::String(id)) = rule.get("transformation_id").cloned() else {
                continue;
            };
            let stored = match new.iter().find(|t| t.id == id) {
                Some(defined) => defined.clone(),
                None => store.transformation(&id)?.ok_or_else(|| {
                    ApiError::invalid("transformation_id", format!("no transformation \"{id}\""))
                })?,
            };
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

//! `/v1/applications` (one per product environment) and their event types.

use super::endpoints::{remove_endpoint, serve_endpoints};
use super::error::{checked_name, json_body, ApiError, ApiResult};
use super::query::{iso, Query};
use super::v1::{deleted, present, PageNumber};
use super::v1::{V1Deleted, V1Page};
use super::{blocking, Shared};
use crate::ids::{new_id, now_ms};
use crate::model::{Application, EventType, JobStatus, PortalSettings};
use crate::outbound::validate;
use crate::store::Store;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApplication {
    name: String,
    description: Option<String>,
    /// The customer portal's brand and embedding sites.
    portal: Option<PortalSettings>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationChange {
    name: Option<String>,
    description: Option<String>,
    /// Replaces the portal settings whole.
    portal: Option<PortalSettings>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEventType {
    name: String,
    description: Option<String>,
    /// A JSON Schema the payloads of jobs of this type must match.
    #[schema(value_type = Option<Object>)]
    schema: Option<Value>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventTypeChange {
    description: Option<String>,
    /// Absent: unchanged; `null`: removed.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    schema: Option<Value>,
}

/// An application: one product environment that sends webhooks.
#[derive(Serialize, ToSchema)]
pub(crate) struct ApplicationView {
    /// `app_…`
    id: String,
    name: String,
    description: Option<String>,
    portal: PortalSettings,
    /// ISO 8601
    created_at: String,
    updated_at: String,
}

fn view(application: &Application) -> ApplicationView {
    ApplicationView {
        id: application.id.clone(),
        name: application.name.clone(),
        description: application.description.clone(),
        portal: application.portal.clone(),
        created_at: iso(application.created_at),
        updated_at: iso(application.updated_at),
    }
}

/// A kind of event an application sends (`resource.action`).
#[derive(Serialize, ToSchema)]
pub(crate) struct EventTypeView {
    name: String,
    application_id: String,
    description: Option<String>,
    /// The JSON Schema its payloads must match, if any.
    #[schema(value_type = Option<Object>)]
    schema: Option<Value>,
    created_at: String,
    updated_at: String,
}

fn event_type_view(event_type: &EventType) -> EventTypeView {
    EventTypeView {
        name: event_type.name.clone(),
        application_id: event_type.application_id.clone(),
        description: event_type.description.clone(),
        schema: event_type.schema.clone(),
        created_at: iso(event_type.created_at),
        updated_at: iso(event_type.updated_at),
    }
}

fn name_given(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::invalid("name", "must not be empty"));
    }
    checked_name("name", name)?;
    Ok(name.to_string())
}

fn portal_given(settings: Option<PortalSettings>) -> ApiResult<Option<PortalSettings>> {
    if let Some(settings) = &settings {
        validate::portal_settings(settings).map_err(|(field, e)| ApiError::invalid(field, e))?;
    }
    Ok(settings)
}

/// The application with this id, or a 404.
pub(crate) fn application_of(store: &Store, id: &str) -> ApiResult<Application> {
    store
        .application(id)?
        .ok_or_else(|| ApiError::not_found("application", id))
}

#[utoipa::path(post, path = "/v1/applications", tag = "outbound", summary = "Create an application (one per product environment): name, description, portal (branding and frame_ancestors of its customer portal)", request_body = NewApplication, responses((status = 201, description = "the application", body = ApplicationView), (status = 422, description = "invalid", body = super::schema::ErrorBody)), security(("api_key" = [])))]
pub async fn create(
    State(state): Shared,
    body: Result<Json<NewApplication>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<ApplicationView>)> {
    let input = json_body(body)?;
    let name = name_given(&input.name)?;
    let portal = portal_given(input.portal)?.unwrap_or_default();
    let store = state.store.clone();
    blocking(move || {
        let now = now_ms();
        let application = Application {
            id: new_id("app"),
            name,
            description: input.description,
            portal,
            created_at: now,
            updated_at: now,
        };
        store.save_application(&application)?;
        Ok((StatusCode::CREATED, Json(view(&application))))
    })
    .await
}

#[utoipa::path(get, path = "/v1/applications", tag = "outbound", summary = "Applications, oldest first; page, per_page", responses((status = 200, description = "{data, pagination}", body = V1Page<ApplicationView>)), security(("api_key" = [])))]
pub async fn list(
    State(state): Shared,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<V1Page<ApplicationView>>> {
    let pages = PageNumber::from_query(&Query::parse(raw.as_deref()))?;
    let store = state.store.clone();
    blocking(move || Ok(Json(pages.answer(store.applications()?, view)))).await
}

#[utoipa::path(get, path = "/v1/applications/{id}", tag = "outbound", summary = "An application", params(("id" = String, Path, description = "app_…")), responses((status = 200, description = "the application", body = ApplicationView), (status = 404, description = "unknown", body = super::schema::ErrorBody)), security(("api_key" = [])))]
pub async fn get(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<ApplicationView>> {
    let store = state.store.clone();
    blocking(move || Ok(Json(view(&application_of(&store, &id)?)))).await
}

#[utoipa::path(put, path = "/v1/applications/{id}", tag = "outbound", summary = "Change an application's name, description or portal settings (also PATCH)", params(("id" = String, Path, description = "app_…")), request_body = ApplicationChange, responses((status = 200, description = "the application", body = ApplicationView), (status = 404, description = "unknown", body = super::schema::ErrorBody)), security(("api_key" = [])))]
pub async fn update(
    State(state): Shared,
    Path(id): Path<String>,
    body: Result<Json<ApplicationChange>, JsonRejection>,
) -> ApiResult<Json<ApplicationView>> {
    let change = json_body(body)?;
    let name = change.name.as_deref().map(name_given).transpose()?;
    let portal = portal_given(change.portal)?;
    let store = state.store.clone();
    blocking(move || {
        let mut application = application_of(&store, &id)?;
        application.name = name.unwrap_or(application.name);
        application.description = change.description.or(application.description);
        application.portal = portal.unwrap_or(application.portal);
        application.updated_at = now_ms();
        store.save_application(&application)?;
        Ok(Json(view(&application)))
    })
    .await
}

/// Deletes the application with its event types and endpoints (their pending
/// deliveries end); its jobs are archived, not deleted, so they can still be read.
#[utoipa::path(delete, path = "/v1/applications/{id}", tag = "outbound", summary = "Delete an application, its event types and endpoints; its jobs are archived", params(("id" = String, Path, description = "app_…")), responses((status = 200, description = "{id, deleted}", body = V1Deleted), (status = 404, description = "unknown", body = super::schema::ErrorBody)), security(("api_key" = [])))]
pub async fn delete(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<V1Deleted>> {
    let state = state.clone();
    blocking(move || {
        let store = &state.store;
        application_of(store, &id)?;
        for endpoint in store.endpoints()? {
            if endpoint.application_id == id {
                remove_endpoint(store, &endpoint.id)?;
            }
        }
        for event_type in store.event_types(&id)? {
            store.delete_event_type(&id, &event_type.name)?;
        }
        let now = now_ms();
        for job_id in store.job_ids_of_application(&id)? {
            store.update_job(&job_id, now, |job| job.status = JobStatus::Archived)?;
        }
        store.delete_application(&id)?;
        serve_endpoints(&state)?;
        Ok(Json(deleted(&id)))
    })
    .await
}

#[utoipa::path(post, path = "/v1/applications/{id}/event-types", tag = "outbound", summary = "Declare an event type: name (resource.action, lower case), description, schema (JSON Schema the payloads must meet)", params(("id" = String, Path, description = "app_…")), request_body = NewEventType, responses((status = 201, description = "the event type", body = EventTypeView), (status = 409, description = "the name is taken", body = super::schema::ErrorBody), (status = 422, description = "bad name or schema", body = super::schema::ErrorBody)), security(("api_key" = [])))]
pub async fn create_event_type(
    State(state): Shared,
    Path(application_id): Path<String>,
    body: Result<Json<NewEventType>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<EventTypeView>)> {
    let input = json_body(body)?;
    validate::event_type_name(&input.name).map_err(|e| ApiError::invalid("name", e))?;
    check_schema(input.schema.as_ref())?;
    let store = state.store.clone();
    blocking(move || {
        application_of(&store, &application_id)?;
        if store.event_type(&application_id, &input.name)?.is_some() {
            return Err(ApiError::conflict(format!(
                "the application already has an event type \"{}\"",
                input.name
            )));
        }
        let now = now_ms();
        let event_type = EventType {
            application_id,
            name: input.name,
            description: input.description,
            schema: input.schema,
            created_at: now,
            updated_at: now,
        };
        store.save_event_type(&event_type)?;
        Ok((StatusCode::CREATED, Json(event_type_view(&event_type))))
    })
    .await
}

fn check_schema(schema: Option<&Value>) -> ApiResult<()> {
    match schema {
        Some(schema) if !schema.is_null() => {
            validate::schema(schema).map_err(|e| ApiError::invalid("schema", e))
        }
        _ => Ok(()),
    }
}

fn event_type_of(store: &Store, application_id: &str, name: &str) -> ApiResult<EventType> {
    application_of(store, application_id)?;
    store
        .event_type(application_id, name)?
        .ok_or_else(|| ApiError::not_found("event type", name))
}

#[utoipa::path(get, path = "/v1/applications/{id}/event-types", tag = "outbound", summary = "An application's event types, by name; page, per_page", params(("id" = String, Path, description = "app_…")), responses((status = 200, description = "{data, pagination}", body = V1Page<EventTypeView>), (status = 404, description = "unknown application", body = super::schema::ErrorBody)), security(("api_key" = [])))]
pub async fn list_event_types(
    State(state): Shared,
    Path(application_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<V1Page<EventTypeView>>> {
    let pages = PageNumber::from_query(&Query::parse(raw.as_deref()))?;
    let store = state.store.clone();
    blocking(move || {
        application_of(&store, &application_id)?;
        let event_types = store.event_types(&application_id)?;
        Ok(Json(pages.answer(event_types, event_type_view)))
    })
    .await
}

#[utoipa::path(get, path = "/v1/applications/{id}/event-types/{name}", tag = "outbound", summary = "An event type", params(("id" = String, Path, description = "app_…"), ("name" = String, Path, description = "resource.action")), responses((status = 200, description = "the event type", body = EventTypeView), (status = 404, description = "unknown", body = super::schema::ErrorBody)), security(("api_key" = [])))]
pub async fn get_event_type(
    State(state): Shared,
    Path((application_id, name)): Path<(String, String)>,
) -> ApiResult<Json<EventTypeView>> {
    let store = state.store.clone();
    blocking(move || {
        let event_type = event_type_of(&store, &application_id, &name)?;
        Ok(Json(event_type_view(&event_type)))
    })
    .await
}

#[utoipa::path(put, path = "/v1/applications/{id}/event-types/{name}", tag = "outbound", summary = "Change an event type's description or schema (null removes it; also PATCH)", params(("id" = String, Path, description = "app_…"), ("name" = String, Path, description = "resource.action")), request_body = EventTypeChange, responses((status = 200, description = "the event type", body = EventTypeView), (status = 404, description = "unknown", body = super::schema::ErrorBody), (status = 422, description = "bad schema", body = super::schema::ErrorBody)), security(("api_key" = [])))]
pub async fn update_event_type(
    State(state): Shared,
    Path((application_id, name)): Path<(String, String)>,
    body: Result<Json<EventTypeChange>, JsonRejection>,
) -> ApiResult<Json<EventTypeView>> {
    let change = json_body(body)?;
    check_schema(change.schema.as_ref())?;
    let store = state.store.clone();
    blocking(move || {
        let mut event_type = event_type_of(&store, &application_id, &name)?;
        event_type.description = change.description.or(event_type.description);
        if let Some(schema) = change.schema {
            event_type.schema = Some(schema).filter(|s| !s.is_null());
        }
        event_type.updated_at = now_ms();
        store.save_event_type(&event_type)?;
        Ok(Json(event_type_view(&event_type)))
    })
    .await
}

#[utoipa::path(delete, path = "/v1/applications/{id}/event-types/{name}", tag = "outbound", summary = "Delete an event type (endpoints subscribed to it keep the name)", params(("id" = String, Path, description = "app_…"), ("name" = String, Path, description = "resource.action")), responses((status = 200, description = "{id, deleted}", body = V1Deleted), (status = 404, description = "unknown", body = super::schema::ErrorBody)), security(("api_key" = [])))]
pub async fn delete_event_type(
    State(state): Shared,
    Path((application_id, name)): Path<(String, String)>,
) -> ApiResult<Json<V1Deleted>> {
    let store = state.store.clone();
    blocking(move || {
        event_type_of(&store, &application_id, &name)?;
        store.delete_event_type(&application_id, &name)?;
        Ok(Json(deleted(&name)))
    })
    .await
}

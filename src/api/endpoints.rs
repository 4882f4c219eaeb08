//! `/v1/endpoints`: where an application's webhooks go. Every change is served
//! at once: the catalog's endpoints are rebuilt and the endpoint's lane woken.

use super::applications::application_of;
use super::error::{json_body, refuse_environment, ApiError, ApiResult};
use super::query::{iso, Query};
use super::v1::{deleted, present, PageNumber, V1Deleted, V1Page};
use super::{blocking, reachable, ApiState, Shared};
use crate::ids::{new_id, now_ms};
use crate::model::{Endpoint, EndpointStatus};
use crate::outbound::{discard_pending, served_endpoints, validate};
use crate::signing::standard_webhooks::WebhookSecret;
use crate::store::Store;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    application_id: String,
    url: String,
    description: Option<String>,
    secret: Option<String>,
    #[serde(default)]
    subscribed_events: Vec<String>,
    status: Option<EndpointStatus>,
    rate_limit: Option<u32>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointChange {
    url: Option<String>,
    description: Option<String>,
    subscribed_events: Option<Vec<String>>,
    status: Option<EndpointStatus>,
    /// `null` removes the limit.
    #[serde(default, deserialize_with = "present")]
    rate_limit: Option<Option<u32>>,
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretRotation {
    /// The new secret; generated when not given.
    secret: Option<String>,
}

/// An endpoint: where an application's webhooks are delivered.
#[derive(Serialize, ToSchema)]
pub(crate) struct EndpointView {
    /// `ept_…`
    id: String,
    application_id: String,
    url: String,
    description: Option<String>,
    /// `whsec_…`: in full only when created or rotated, masked otherwise.
    secret: String,
    /// The event types it receives (none: every one).
    subscribed_events: Vec<String>,
    /// `active`, `disabled` or `paused`.
    #[schema(value_type = String)]
    status: EndpointStatus,
    /// Deliveries per second, at most.
    rate_limit: Option<u32>,
    /// `closed`, `open` or `half-open`.
    circuit_state: String,
    created_at: String,
    updated_at: String,
}

/// An endpoint as answers show it: its secret masked.
fn view(state: &ApiState, endpoint: &Endpoint) -> EndpointView {
    let mut view = view_with_secret(state, endpoint);
    view.secret = crate::secret::masked(&endpoint.secret);
    view
}

/// The endpoint with its secret in full: only the answers to creating one and
/// to rotating its secret show it, once, as the caller just chose or got it.
fn view_with_secret(state: &ApiState, endpoint: &Endpoint) -> EndpointView {
    EndpointView {
        id: endpoint.id.clone(),
        application_id: endpoint.application_id.clone(),
        url: endpoint.url.clone(),
        description: endpoint.description.clone(),
        secret: endpoint.secret.clone(),
        subscribed_events: endpoint.subscribed_events.clone(),
        status: endpoint.status,
        rate_limit: endpoint.rate_limit,
        circuit_state: state
            .scheduler
            .circuit_state(&endpoint.id)
            .as_str()
            .to_string(),
        created_at: iso(endpoint.created_at),
        updated_at: iso(endpoint.updated_at),
    }
}

fn endpoint_of(store: &Store, id: &str) -> ApiResult<Endpoint> {
    store
        .endpoint(id)?
        .ok_or_else(|| ApiError::not_found("endpoint", id))
}

/// Serves the stored endpoints: the catalog's endpoints are replaced (under
/// the lock API-created objects use, so neither change loses the other).
pub(super) fn serve_endpoints(state: &ApiState) -> ApiResult<()> {
    let _one_writer = state
        .object_updates
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let served = served_endpoints(
        &state.store,
        state.config.load().delivery.default_concurrency.max(1),
    )?;
    let catalog = state.catalog.load().with_endpoints(served);
    state.scheduler.replace_catalog(catalog);
    Ok(())
}

/// Held while an endpoint is read, changed and saved: two changes at once
/// would each save their own copy, and the first be lost (a rotated secret
/// the caller was given but that is never used, a deleted endpoint back).
fn one_endpoint_change(state: &ApiState) -> std::sync::MutexGuard<'_, ()> {
    state
        .endpoint_updates
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Deletes an endpoint; its pending deliveries end (their jobs can finish).
pub(super) fn remove_endpoint(store: &Store, id: &str) -> ApiResult<()> {
    discard_pending(store, id)?;
    // Clears the pause and the held entries (the deliveries there have ended).
    store.unpause(id, now_ms())?;
    store.delete_endpoint(id)?;
    // A job fanned out meanwhile may have added one: it finds the endpoint
    // gone and ends its delivery itself, or it came before this look.
    discard_pending(store, id)?;
    Ok(())
}

fn checked_url(state: &ApiState, url: &str) -> ApiResult<String> {
    let url = validate::endpoint_url(url, state.config.load().server.allow_insecure_endpoints)
        .map_err(|e| ApiError::invalid("url", e))?;
    reachable(state, "url", &url)?;
    Ok(url.to_string())
}

fn checked_secret(secret: Option<&str>) -> ApiResult<String> {
    refuse_environment("secret", secret)?;
    match secret {
        Some(text) => WebhookSecret::parse(text)
            .map(|s| s.to_whsec())
            .map_err(|e| ApiError::invalid("secret", e)),
        None => Ok(WebhookSecret::generate().to_whsec()),
    }
}

/// Subscribed names need not be declared first (see `validate::event_type_used`).
fn check_subscriptions(names: &[String]) -> ApiResult<()> {
    names
        .iter()
        .try_for_each(|name| validate::event_type_used(name))
        .map_err(|e| ApiError::invalid("subscribed_events", e))
}

fn check_rate_limit(rate_limit: Option<u32>) -> ApiResult<()> {
    if rate_limit == Some(0) {
        return Err(ApiError::invalid(
            "rate_limit",
            "must be at least 1 request per second (null for no limit)",
        ));
    }
    Ok(())
}

/// Moves an endpoint in or out of `paused`: a paused endpoint holds its deliveries.
fn apply_status(store: &Store, endpoint: &Endpoint, was: EndpointStatus) -> ApiResult<()> {
    let now = now_ms();
    match (was, endpoint.status) {
        (EndpointStatus::Paused, EndpointStatus::Paused) => {}
        (_, EndpointStatus::Paused) => {
            store.pause(&endpoint.id, now)?;
        }
        (EndpointStatus::Paused, _) => {
            store.unpause(&endpoint.id, now)?;
        }
        _ => {}
    }
    Ok(())
}

#[utoipa::path(post, path = "/v1/endpoints", tag = "outbound", summary = "Create an endpoint: application_id, url (https), description, secret (whsec_…, generated when absent), subscribed_events (empty: all), status (active/disabled/paused), rate_limit (per second)", request_body = NewEndpoint, responses((status = 201, description = "the endpoint", body = EndpointView), (status = 422, description = "invalid", body = super::schema::ErrorBody)), security(("api_key" = [])))]
pub async fn create(
    State(state): Shared,
    body: Result<Json<NewEndpoint>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<EndpointView>)> {
    let input = json_body(body)?;
    let url = checked_url(&state, &input.url)?;
    let secret = checked_secret(input.secret.as_deref())?;
    check_rate_limit(input.rate_limit)?;
    blocking(move || {
        let store = &state.store;
        application_of(store, &input.application_id)
            .map_err(|_| ApiError::invalid("application_id", "no such application"))?;
        check_subscriptions(&input.subscribed_events)?;
        let now = now_ms();
        let endpoint = Endpoint {
            id: new_id("ept"),
            application_id: input.application_id,
            url,
            description: input.description,
            secret,
            previous_secrets: Vec::new(),
            subscribed_events: input.subscribed_events,
            status: input.status.unwrap_or(EndpointStatus::Active),
            rate_limit: input.rate_limit,
            created_at: now,
            updated_at: now,
        };
        apply_status(store, &endpoint, EndpointStatus::Active)?;
        store.save_endpoint(&endpoint)?;
        serve_endpoints(&state)?;
        Ok((
            StatusCode::CREATED,
            Json(view_with_secret(&state, &endpoint)),
        ))
    })
    .await
}

#[utoipa::path(get, path = "/v1/endpoints", tag = "outbound", summary = "Endpoints, oldest first; application_id, page, per_page", responses((status = 200, description = "{data, pagination}", body = V1Page<EndpointView>)), security(("api_key" = [])))]
pub async fn list(
    State(state): Shared,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<V1Page<EndpointView>>> {
    let query = Query::parse(raw.as_deref());
    let pages = PageNumber::from_query(&query)?;
    let application = query.one("application_id").map(str::to_string);
    blocking(move || {
        let endpoints: Vec<Endpoint> = state
            .store
            .endpoints()?
            .into_iter()
            .filter(|e| application.as_ref().is_none_or(|a| *a == e.application_id))
            .collect();
        Ok(Json(pages.answer(endpoints, |e| view(&state, e))))
    })
    .await
}

#[utoipa::path(get, path = "/v1/endpoints/{id}", tag = "outbound", summary = "An endpoint, with its circuit_state (closed/open/half-open)", params(("id" = String, Path, description = "ept_…")), responses((status = 200, description = "the endpoint", body = EndpointView), (status = 404, description = "unknown", body = super::schema::ErrorBody)), security(("api_key" = [])))]
pub async fn get(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<EndpointView>> {
    blocking(move || Ok(Json(view(&state, &endpoint_of(&state.store, &id)?)))).await
}

#[utoipa::path(put, path = "/v1/endpoints/{id}", tag = "outbound", summary = "Change an endpoint's url, description, subscribed_events, status or rate_limit (null: none); also PATCH", params(("id" = String, Path, description = "ept_…")), request_body = EndpointChange, responses((status = 200, description = "the endpoint", body = EndpointView), (status = 404, description = "unknown", body = super::schema::ErrorBody), (status = 422, description = "invalid", body = super::schema::ErrorBody)), security(("api_key" = [])))]
pub async fn update(
    State(state): Shared,
    Path(id): Path<String>,
    body: Result<Json<EndpointChange>, JsonRejection>,
) -> ApiResult<Json<EndpointView>> {
    let change = json_body(body)?;
    let url = change
        .url
        .as_deref()
        .map(|url| checked_url(&state, url))
        .transpose()?;
    check_rate_limit(change.rate_limit.flatten())?;
    blocking(move || {
        let _one_change = one_endpoint_change(&state);
        let store = &state.store;
        let mut endpoint = endpoint_of(store, &id)?;
        let was = endpoint.status;
        if let Some(events) = change.subscribed_events {
            check_subscriptions(&events)?;
            endpoint.subscribed_events = events;
        }
        endpoint.url = url.unwrap_or(endpoint.url);
        endpoint.description = change.description.or(endpoint.description);
        endpoint.status = change.status.unwrap_or(endpoint.status);
        endpoint.rate_limit = change.rate_limit.unwrap_or(endpoint.rate_limit);
        endpoint.updated_at = now_ms();
        apply_status(store, &endpoint, was)?;
        store.save_endpoint(&endpoint)?;
        serve_endpoints(&state)?;
        Ok(Json(view(&state, &endpoint)))
    })
    .await
}

#[utoipa::path(delete, path = "/v1/endpoints/{id}", tag = "outbound", summary = "Delete an endpoint; its pending deliveries end (ENDPOINT_DELETED)", params(("id" = String, Path, description = "ept_…")), responses((status = 200, description = "{id, deleted}", body = V1Deleted), (status = 404, description = "unknown", body = super::schema::ErrorBody)), security(("api_key" = [])))]
pub async fn delete(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<V1Deleted>> {
    blocking(move || {
        let _one_change = one_endpoint_change(&state);
        endpoint_of(&state.store, &id)?;
        remove_endpoint(&state.store, &id)?;
        serve_endpoints(&state)?;
        Ok(Json(deleted(&id)))
    })
    .await
}

/// A new signing secret; the old one keeps signing beside it (both signatures
/// are sent) for `outbound.secret_rotation_grace_ms`, so receivers can switch.
#[utoipa::path(post, path = "/v1/endpoints/{id}/rotate-secret", tag = "outbound", summary = "Rotate the signing secret: body {secret} optional (generated when absent); the old secret keeps signing during the grace period", params(("id" = String, Path, description = "ept_…")), request_body(content = Option<SecretRotation>, description = "optional"), responses((status = 200, description = "the endpoint with its new secret", body = EndpointView), (status = 404, description = "unknown", body = super::schema::ErrorBody), (status = 422, description = "bad secret", body = super::schema::ErrorBody)), security(("api_key" = [])))]
pub async fn rotate_secret(
    State(state): Shared,
    Path(id): Path<String>,
    body: Option<Json<SecretRotation>>,
) -> ApiResult<Json<EndpointView>> {
    let rotation = body.map(|Json(r)| r).unwrap_or_default();
    let secret = checked_secret(rotation.secret.as_deref())?;
    blocking(move || {
        let _one_change = one_endpoint_change(&state);
        let store = &state.store;
        let mut endpoint = endpoint_of(store, &id)?;
        let now_secs = (now_ms() / 1000) as i64;
        let outbound = &state.config.load().outbound;
        let grace_secs = (outbound.secret_rotation_grace_ms / 1000) as i64;
        endpoint
            .previous_secrets
            .retain(|(_, until)| *until > now_secs);
        let old = std::mem::replace(&mut endpoint.secret, secret);
        endpoint.previous_secrets.push((old, now_secs + grace_secs));
        // Every secret signs every delivery: past the bound, the oldest
        // rotated-out ones stop early, so the signature header stays small.
        let kept = outbound.max_endpoint_secrets.max(1) - 1;
        let expired_early = endpoint.previous_secrets.len().saturating_sub(kept);
        endpoint.previous_secrets.drain(..expired_early);
        endpoint.updated_at = now_ms();
        store.save_endpoint(&endpoint)?;
        serve_endpoints(&state)?;
        Ok(Json(view_with_secret(&state, &endpoint)))
    })
    .await
}

//! `/api/webhook-deliveries`: the deliveries of webhook jobs through a second,
//! camelCase API with keyset cursors, a JSON `filter` expression and a JSON
//! `orderBy` (see `delivery_query`).

use super::delivery_query::{page, Filter, Ordering, PageInfo, QueryError};
use super::error::{ApiError, ApiResult};
use super::query::{iso, Query};
use super::schema::value_of;
use super::{blocking, ApiState, Shared};
use crate::ids::derived_id;
use crate::model::{delivery_status, Event, JobPayload, WebhookJob, WORKSPACE_ID};
use crate::outbound::{cancel_delivery, retry_delivery};
use crate::store::Store;
use axum::extract::{Path, RawQuery, State};
use axum::routing::{get, post};
use axum::{Json, Router as Routes};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use utoipa::ToSchema;

const DEFAULT_LIMIT: u64 = 100;
const MAX_LIMIT: u64 = 100;
const STATUSES: [&str; 4] = ["pending", "retrying", "completed", "failed"];

/// The fields of a delivery, for `filter` and `orderBy`.
const FIELDS: &[&str] = &[
    "id",
    "workspaceId",
    "payload",
    "maxAttempts",
    "nextRetryAt",
    "updatedAt",
    "jobId",
    "subscriptionId",
    "applicationId",
    "eventType",
    "sourceEventId",
    "status",
    "attemptCount",
    "lastStatusCode",
    "lastErrorCode",
    "lastAttemptAt",
    "nextAttemptAt",
    "createdAt",
    "url",
];

pub fn routes() -> Routes<Arc<ApiState>> {
    Routes::new()
        .route("/", get(list))
        .route("/{id}", get(get_one).delete(cancel))
        .route("/{id}/retry", post(retry))
}

/// A delivery of a webhook job to one endpoint (a subscription): the
/// reference's fields, then hookgate's own (`nextAttemptAt` is the
/// reference's `nextRetryAt` under its older name, kept for existing callers).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeliveryView {
    id: String,
    workspace_id: &'static str,
    /// The job's payload.
    #[schema(value_type = Object)]
    payload: JobPayload,
    max_attempts: u32,
    next_retry_at: Option<String>,
    updated_at: String,
    job_id: String,
    /// The endpoint's id.
    subscription_id: String,
    application_id: String,
    event_type: String,
    source_event_id: String,
    /// `pending`, `retrying`, `completed` or `failed`.
    status: &'static str,
    attempt_count: u32,
    last_status_code: Option<u16>,
    last_error_code: Option<String>,
    last_attempt_at: Option<String>,
    next_attempt_at: Option<String>,
    created_at: String,
    url: Option<String>,
    /// Every attempt (one delivery only, not in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts: Option<Vec<DeliveryAttemptView>>,
}

/// One attempt of a delivery.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeliveryAttemptView {
    id: String,
    attempt_number: u32,
    status_code: Option<u16>,
    error_code: Option<String>,
    response_body: Option<String>,
    latency_ms: u64,
    created_at: String,
}

/// A page of deliveries.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeliveriesPage {
    /// Each a `DeliveryView`, as filtered and sorted.
    #[schema(value_type = Vec<DeliveryView>)]
    data: Vec<Value>,
    page_info: PageInfo,
}

fn view(delivery: &Event, job: &WebhookJob, url: Option<&str>) -> DeliveryView {
    let next_retry_at = delivery
        .next_attempt_at
        .filter(|_| !delivery.status.is_terminal())
        .map(iso);
    // Every change of a delivery is an attempt, its success or its creation.
    let updated_at = [delivery.last_attempt_at, delivery.successful_at]
        .into_iter()
        .flatten()
        .fold(delivery.created_at, u64::max);
    DeliveryView {
        id: delivery.id.clone(),
        workspace_id: WORKSPACE_ID,
        payload: job.payload.clone(),
        max_attempts: job.max_retries.saturating_add(1),
        next_retry_at: next_retry_at.clone(),
        updated_at: iso(updated_at),
        job_id: job.id.clone(),
        subscription_id: delivery.destination_id.clone(),
        application_id: job.application_id.clone(),
        event_type: job.event_type.clone(),
        source_event_id: job.event_id.clone(),
        status: delivery_status(delivery),
        attempt_count: delivery.attempts,
        last_status_code: delivery.response_status,
        last_error_code: delivery.error_code.clone(),
        last_attempt_at: delivery.last_attempt_at.map(iso),
        next_attempt_at: next_retry_at,
        created_at: iso(delivery.created_at),
        url: url.map(String::from),
        attempts: None,
    }
}

/// The deliveries that may match, as views (the filters work on these):
/// with `subscription_id`, those of its endpoints' jobs, found through the
/// jobs' index; otherwise every delivery of every job.
fn candidate_views(store: &Store, simple: &Simple) -> ApiResult<Vec<Value>> {
    let urls: HashMap<String, String> = store
        .endpoints()?
        .into_iter()
        .map(|e| (e.id, e.url))
        .collect();
    let mut views = Vec::new();
    let mut add = |job: &WebhookJob, delivery: &Event| {
        let url = urls.get(&delivery.destination_id).map(String::as_str);
        views.push(value_of(view(delivery, job, url)));
    };
    match subscribed_jobs(store, simple)? {
        Some(jobs) => {
            for (endpoint_id, job_id) in jobs {
                let Some(job) = store.job(&job_id)? else {
                    continue;
                };
                if let Some(delivery) = store.event(&derived_id("evt", &job_id, &endpoint_id))? {
                    add(&job, &delivery);
                }
            }
        }
        None => {
            for job in store.jobs_newest_first() {
                let job = job?;
                for delivery in store.deliveries_of(&job.id)? {
                    add(&job, &delivery);
                }
            }
        }
    }
    Ok(views)
}

/// `(endpoint, job)` for every job fanned out to the endpoints a
/// `subscription_id` names; None without one, or when one of them is gone
/// (its application, and so its index bucket, is no longer known).
fn subscribed_jobs(store: &Store, simple: &Simple) -> ApiResult<Option<Vec<(String, String)>>> {
    let Some(endpoint_ids) = simple.wanted("subscriptionId") else {
        return Ok(None);
    };
    let mut jobs = Vec::new();
    for endpoint_id in endpoint_ids {
        let Some(endpoint) = store.endpoint(endpoint_id)? else {
            return Ok(None);
        };
        let ids = store.job_ids_of_endpoint(&endpoint.application_id, endpoint_id)?;
        jobs.extend(ids.into_iter().map(|job_id| (endpoint_id.clone(), job_id)));
    }
    Ok(Some(jobs))
}

/// One delivery's view, with its attempts.
fn detail(store: &Store, id: &str) -> ApiResult<DeliveryView> {
    let delivery = store
        .event(id)?
        .filter(|e| e.window.is_some())
        .ok_or_else(|| ApiError::not_found("webhook delivery", id))?;
    detail_of(store, &delivery)
}

/// `delivery` as given, with its job, endpoint and attempts as stored now.
fn detail_of(store: &Store, delivery: &Event) -> ApiResult<DeliveryView> {
    let not_found = || ApiError::not_found("webhook delivery", &delivery.id);
    let job = store.job(&delivery.request_id)?.ok_or_else(not_found)?;
    let url = store.endpoint(&delivery.destination_id)?.map(|e| e.url);
    let attempts = store
        .attempts_of(&delivery.id)?
        .iter()
        .map(|a| DeliveryAttemptView {
            id: a.id.clone(),
            attempt_number: a.attempt_number,
            status_code: a.response_status,
            error_code: a.error_code.clone(),
            response_body: a.response_body.clone(),
            latency_ms: a.latency_ms,
            created_at: iso(a.created_at),
        })
        .collect();
    Ok(DeliveryView {
        attempts: Some(attempts),
        ..view(delivery, &job, url.as_deref())
    })
}

/// A 422 naming the parameter (the message already says where in it).
fn bad_query(error: QueryError) -> ApiError {
    ApiError {
        status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        message: error.message,
        data: json!({ "field": error.parameter }),
    }
}

/// The simple filters: `ids`, `workspace_id`, `status`, `subscription_id`, `source_event_id`
/// (each also camelCase; lists comma-separated or repeated).
struct Simple {
    checks: Vec<(&'static str, Vec<String>)>,
}

impl Simple {
    fn from_query(query: &Query) -> ApiResult<Simple> {
        let mut checks = Vec::new();
        let params: [(&[&str], &str); 5] = [
            (&["ids"], "id"),
            (&["workspace_id", "workspaceId"], "workspaceId"),
            (&["status"], "status"),
            (&["subscription_id", "subscriptionId"], "subscriptionId"),
            (&["source_event_id", "sourceEventId"], "sourceEventId"),
        ];
        for (names, field) in params {
            let wanted: Vec<String> = names
                .iter()
                .flat_map(|name| query.all(name))
                .flat_map(|value| value.split(','))
                .map(|value| value.trim().to_string())
                .filter(|value| !value.is_empty())
                .collect();
            if field == "status" {
                if let Some(bad) = wanted.iter().find(|s| !STATUSES.contains(&s.as_str())) {
                    return Err(ApiError::invalid(
                        "status",
                        format!("\"{bad}\" is not one of {}", STATUSES.join(", ")),
                    ));
                }
            }
            if !wanted.is_empty() {
                checks.push((field, wanted));
            }
        }
        Ok(Simple { checks })
    }

    /// The values wanted for `field`, if it is filtered on.
    fn wanted(&self, field: &str) -> Option<&[String]> {
        let check = self.checks.iter().find(|(name, _)| *name == field);
        check.map(|(_, wanted)| wanted.as_slice())
    }

    fn matches(&self, view: &Value) -> bool {
        self.checks.iter().all(|(field, wanted)| {
            view[*field]
                .as_str()
                .is_some_and(|value| wanted.iter().any(|w| w == value))
        })
    }
}

#[utoipa::path(get, path = "/api/webhook-deliveries", tag = "outbound", summary = "Deliveries (camelCase): limit (1–100, default 100), after/before cursors, ids, workspace_id, status (pending/retrying/completed/failed), subscription_id, source_event_id, filter (JSON: AND/OR/NOT, field operators eq ne gt gte lt lte in nin contains startsWith endsWith isNull), orderBy (JSON array: [{\"createdAt\": \"desc_nulls_last\"}])", responses((status = 200, description = "{data, pageInfo: {total, hasNextPage, hasPreviousPage, startCursor, endCursor}}", body = DeliveriesPage), (status = 422, description = "bad parameter", body = super::schema::ErrorBody)), security(("api_key" = [])))]
pub async fn list(
    State(state): Shared,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<DeliveriesPage>> {
    let query = Query::parse(raw.as_deref());
    let limit = query.number("limit")?.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let simple = Simple::from_query(&query)?;
    let filter = query
        .one("filter")
        .map(|text| Filter::parse(text, FIELDS))
        .transpose()
        .map_err(bad_query)?;
    let ordering = match query.one("orderBy") {
        Some(text) => Ordering::parse(text, FIELDS).map_err(bad_query)?,
        None => Ordering::newest_first(),
    };
    let after = query.one("after").map(str::to_string);
    let before = query.one("before").map(str::to_string);
    state.store.wait_jobs_routed().await?;
    blocking(move || {
        let matching: Vec<Value> = candidate_views(&state.store, &simple)?
            .into_iter()
            .filter(|v| simple.matches(v) && filter.as_ref().is_none_or(|f| f.matches(v)))
            .collect();
        let (data, info) = page(
            matching,
            &ordering,
            after.as_deref(),
            before.as_deref(),
            limit as usize,
        )
        .map_err(bad_query)?;
        Ok(Json(DeliveriesPage {
            data,
            page_info: info,
        }))
    })
    .await
}

#[utoipa::path(get, path = "/api/webhook-deliveries/{id}", tag = "outbound", summary = "A delivery with its attempts", params(("id" = String, Path, description = "evt_…")), responses((status = 200, description = "the delivery", body = DeliveryView), (status = 404, description = "unknown", body = super::schema::ErrorBody)), security(("api_key" = [])))]
pub async fn get_one(
    State(state): Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<DeliveryView>> {
    // Deliveries of a job just created are stored in a moment.
    state.store.wait_jobs_routed().await?;
    blocking(move || Ok(Json(detail(&state.store, &id)?))).await
}

#[utoipa::path(delete, path = "/api/webhook-deliveries/{id}", tag = "outbound", summary = "Cancel a retrying delivery (failed, CANCELLED)", params(("id" = String, Path, description = "evt_…")), responses((status = 200, description = "the delivery", body = DeliveryView), (status = 404, description = "unknown", body = super::schema::ErrorBody), (status = 409, description = "not retrying", body = super::schema::ErrorBody)), security(("api_key" = [])))]
pub async fn cancel(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<DeliveryView>> {
    // Deliveries of a job just created are stored in a moment.
    state.store.wait_jobs_routed().await?;
    blocking(move || {
        cancel_delivery(&state.store, &id)?;
        Ok(Json(detail(&state.store, &id)?))
    })
    .await
}

#[utoipa::path(post, path = "/api/webhook-deliveries/{id}/retry", tag = "outbound", summary = "Reset a delivery (no attempts, fresh window) and dispatch it at once", params(("id" = String, Path, description = "evt_…")), responses((status = 200, description = "the delivery", body = DeliveryView), (status = 404, description = "unknown", body = super::schema::ErrorBody)), security(("api_key" = [])))]
pub async fn retry(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<DeliveryView>> {
    // Deliveries of a job just created are stored in a moment.
    state.store.wait_jobs_routed().await?;
    blocking(move || {
        let window = state.config.load().outbound.delivery_window_ms;
        let delivery = retry_delivery(&state.store, &id, window)?;
        // The reset row, as the reference answers: not read again, as its
        // lane may be attempting it already (woken below, or on PostgreSQL
        // by the queue's announcement).
        let reset = detail_of(&state.store, &delivery)?;
        state.scheduler.wake(&delivery.destination_id);
        Ok(Json(reset))
    })
    .await
}

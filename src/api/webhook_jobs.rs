//! `/v1/webhook-jobs`: one event of a product, sent to every endpoint of its
//! application that subscribes to its type (one delivery each).

use super::error::{json_body, ApiError, ApiResult};
use super::query::{iso, Query};
use super::rate::come_back_after;
use super::v1::{PageNumber, V1Page};
use super::{blocking, json_answer, ApiState, Shared};
use crate::ids::{created_ms, new_id, now_ms};
use crate::model::{delivery_status, Attempt, Event, JobPayload, JobStatus, WebhookJob};
use crate::outbound::{cancel_job, new_deliveries, retry_job, validate};
use crate::store::{status_tags, JobSelection, Store, FAILED};
use crate::trace_context::{TraceContext, TRACEPARENT, TRACESTATE};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;

/// More retries than this would not fit a useful backoff in any window.
const MAX_RETRIES_ALLOWED: u32 = 30;
/// Longest idempotency key accepted.
const MAX_EVENT_ID_LEN: usize = 255;
/// When a job that could not be journaled is worth sending again: the
/// router's backlog drains in moments.
const UNSTORED_RETRY_AFTER_SECONDS: u64 = 1;
/// About what a new delivery's view takes in a job's answer.
const DELIVERY_VIEW_BYTES: usize = 256;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewJob {
    application_id: String,
    event_type: String,
    /// The webhook payload object (≤ 256 KB), kept as its JSON text: never
    /// built into a `Value` unless its event type has a schema to check.
    #[schema(value_type = Object)]
    payload: JobPayload,
    event_id: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Key-value data kept with the job, never sent.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    metadata: Value,
    max_retries: Option<u32>,
    /// hookgate's: only these of the subscribed endpoints get it (a test
    /// event for one endpoint); absent: every subscribed endpoint.
    endpoint_ids: Option<Vec<String>>,
}

impl NewJob {
    /// The reference's payload and metadata are objects (metadata may be
    /// left out): a 422 naming the one that is not.
    fn check_shapes(&self) -> Result<(), ApiError> {
        if !self.payload.get().starts_with('{') {
            return Err(ApiError::invalid("payload", "must be a JSON object"));
        }
        if !(self.metadata.is_object() || self.metadata.is_null()) {
            return Err(ApiError::invalid("metadata", "must be a JSON object"));
        }
        Ok(())
    }
}

/// A webhook job: one event sent to every endpoint subscribed to its type.
/// (It borrows the job: an answer is written from the job as it is.)
#[derive(Serialize, ToSchema)]
pub(crate) struct JobView<'a> {
    /// `job_…`
    id: &'a str,
    application_id: &'a str,
    event_type: &'a str,
    /// The sender's idempotency key (the job id when none was given).
    event_id: &'a str,
    /// What was sent, as given.
    #[schema(value_type = Object)]
    payload: &'a JobPayload,
    /// Sent along with every delivery.
    headers: &'a BTreeMap<String, String>,
    /// Kept, never sent (null when none was given).
    #[schema(value_type = Option<Object>)]
    metadata: &'a Value,
    /// `created`, `sending`, `awaiting_retry`, `succeeded`, `discarded` or `archived`.
    status: &'static str,
    attempt_count: u32,
    max_retries: u32,
    endpoint_ids: &'a [String],
    created_at: String,
    updated_at: String,
    /// The end of its delivery window.
    expires_at: String,
    succeeded_at: Option<String>,
    discarded_at: Option<String>,
    /// When it ended, one way or the other (the reference's name).
    completed_at: Option<String>,
    /// Each delivery and what its last attempt got (not in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    deliveries: Option<Vec<JobDeliveryView<'a>>>,
}

fn view(job: &WebhookJob) -> JobView<'_> {
    JobView {
        id: &job.id,
        application_id: &job.application_id,
        event_type: &job.event_type,
        event_id: &job.event_id,
        payload: &job.payload,
        headers: &job.headers,
        metadata: &job.metadata,
        status: job.status.as_str(),
        attempt_count: job.attempt_count,
        max_retries: job.max_retries,
        endpoint_ids: &job.endpoint_ids,
        created_at: iso(job.created_at),
        updated_at: iso(job.updated_at),
        expires_at: iso(job.expires_at),
        succeeded_at: job.succeeded_at.map(iso),
        discarded_at: job.discarded_at.map(iso),
        completed_at: job.succeeded_at.or(job.discarded_at).map(iso),
        deliveries: None,
    }
}

/// The answer (200) of a job with each delivery and what its last attempt got.
fn answer_with_deliveries(store: &Store, job: &WebhookJob) -> ApiResult<Response> {
    answer_with(store, job, store.deliveries_of(&job.id)?)
}

/// `job` with these deliveries and each one's last attempt.
fn answer_with(store: &Store, job: &WebhookJob, deliveries: Vec<Event>) -> ApiResult<Response> {
    let with_last = |delivery: Event| {
        let last = store.attempts_of(&delivery.id)?.pop();
        Ok((delivery, last))
    };
    let deliveries: Vec<(Event, Option<Attempt>)> = (deliveries.into_iter())
        .map(with_last)
        .collect::<ApiResult<_>>()?;
    let view = JobView {
        deliveries: Some(
            (deliveries.iter())
                .map(|(delivery, last)| delivery_view(delivery, last.as_ref()))
                .collect(),
        ),
        ..view(job)
    };
    Ok(json_answer(StatusCode::OK, &view, 0))
}

/// One endpoint's delivery of a job.
#[derive(Serialize, ToSchema)]
pub(crate) struct JobDeliveryView<'a> {
    id: &'a str,
    endpoint_id: &'a str,
    /// `pending`, `retrying`, `completed` or `failed`.
    status: &'static str,
    attempt_count: u32,
    /// The last response's status.
    status_code: Option<u16>,
    error_code: Option<&'a str>,
    response_body: Option<&'a str>,
    latency_ms: Option<u64>,
    attempted_at: Option<String>,
    next_attempt_at: Option<String>,
}

/// A delivery and what its `last` attempt got.
fn delivery_view<'a>(delivery: &'a Event, last: Option<&'a Attempt>) -> JobDeliveryView<'a> {
    JobDeliveryView {
        id: &delivery.id,
        endpoint_id: &delivery.destination_id,
        status: delivery_status(delivery),
        attempt_count: delivery.attempts,
        status_code: delivery.response_status,
        error_code: delivery.error_code.as_deref(),
        response_body: last.and_then(|a| a.response_body.as_deref()),
        latency_ms: last.map(|a| a.latency_ms),
        attempted_at: delivery.last_attempt_at.map(iso),
        next_attempt_at: delivery
            .next_attempt_at
            .filter(|_| !delivery.status.is_terminal())
            .map(iso),
    }
}

fn job_of(store: &Store, id: &str) -> ApiResult<WebhookJob> {
    store
        .job(id)?
        .ok_or_else(|| ApiError::not_found("webhook job", id))
}

/// The checks that need no store: shapes, sizes, headers, retries, the key.
/// A payload's size is its JSON text's, as sent.
fn check_input(state: &ApiState, input: &NewJob) -> ApiResult<()> {
    input.check_shapes()?;
    let limit = state.config.load().outbound.max_payload_bytes;
    let size = input.payload.get().len();
    if size > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("payload: {size} bytes; at most {limit} are allowed"),
        ));
    }
    validate::job_headers(&input.headers).map_err(|e| ApiError::invalid("headers", e))?;
    if input.max_retries.is_some_and(|n| n > MAX_RETRIES_ALLOWED) {
        return Err(ApiError::invalid(
            "max_retries",
            format!("at most {MAX_RETRIES_ALLOWED}"),
        ));
    }
    match &input.event_id {
        Some(key) if key.is_empty() || key.len() > MAX_EVENT_ID_LEN => Err(ApiError::invalid(
            "event_id",
            format!("must have 1 to {MAX_EVENT_ID_LEN} characters"),
        )),
        _ => Ok(()),
    }
}

/// A declared event type's schema, if it has one, must accept the payload.
/// Declaring types is optional: the references send jobs for any type and only
/// look up its subscribers, so an undeclared type is valid (and reaches the
/// endpoints that subscribe to it by name, or to everything).
fn check_payload_schema(store: &Store, input: &NewJob) -> ApiResult<()> {
    validate::event_type_used(&input.event_type).map_err(|e| ApiError::invalid("event_type", e))?;
    let Some(schema) = store.event_type_schema(&input.application_id, &input.event_type) else {
        return Ok(());
    };
    let payload: Value = serde_json::from_str(input.payload.get())
        .map_err(|e| ApiError::invalid("payload", e.to_string()))?;
    let violations = validate::schema_violations(&schema, &payload);
    if violations.is_empty() {
        return Ok(());
    }
    Err(ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        message: format!(
            "payload: does not match the schema of \"{}\": {}",
            input.event_type,
            violations.join("; ")
        ),
        data: json!({ "field": "payload", "violations": violations }),
    })
}

/// Journals the job before answering (one fsync shared with every request
/// and job journaled meanwhile); its record, list entries and deliveries are
/// stored after the answer (`outbound::fan_out_journaled`, on the router).
/// With an `event_id` seen in the last `idempotency_window_ms`, answers that
/// job (200) instead of creating another.
#[utoipa::path(post, path = "/v1/webhook-jobs", tag = "outbound", summary = "Send an event: application_id, event_type, payload (≤ 256 KB), event_id (idempotency key for 24 h), headers (sent along), metadata (kept, never sent), max_retries", request_body = NewJob, responses((status = 201, description = "the new job with its deliveries", body = JobView), (status = 200, description = "the job that already has this event_id", body = JobView), (status = 413, description = "payload too large", body = super::schema::ErrorBody), (status = 429, description = "over the key's or the application's jobs budget (Retry-After)", body = super::schema::ErrorBody), (status = 422, description = "invalid, or the payload breaks the event type's schema (data.violations)", body = super::schema::ErrorBody), (status = 503, description = "the job could not be stored (disk reserve short, shutting down, the router's backlog full: limits.router_backlog_bytes); Retry-After", body = super::schema::ErrorBody)), security(("api_key" = [])))]
///
/// Not a route of the router: `api::serve` sends each `POST /v1/webhook-jobs`
/// here straight away (the caller's key checked), with the span the call's
/// `traceparent` names (`sent_trace`).
pub async fn create(
    state: Arc<ApiState>,
    sent: Option<TraceContext>,
    body: Result<Json<NewJob>, JsonRejection>,
) -> Result<Response, Response> {
    let input = json_body(body).map_err(IntoResponse::into_response)?;
    check_input(&state, &input).map_err(IntoResponse::into_response)?;
    let admitting = if input.event_id.is_some() {
        // Claiming an idempotency key reads and writes sled.
        let (state, sent) = (state.clone(), sent.clone());
        blocking(move || admit(&state, input, sent.as_ref())).await
    } else {
        // Everything else it checks is in memory: no hop to the blocking pool.
        admit(&state, input, sent.as_ref())
    };
    match admitting.map_err(IntoResponse::into_response)? {
        Admitted::Refused(refusal) => Err(refusal),
        Admitted::Known(id) => answer_known(&state, id)
            .await
            .map_err(IntoResponse::into_response),
        Admitted::New(job, deliveries) => journal(&state, job, deliveries, sent.as_ref()).await,
    }
}

/// The caller's span, from the call's `traceparent` and `tracestate`.
pub(crate) fn sent_trace(headers: &HeaderMap) -> Option<TraceContext> {
    // Most calls send none: then there is nothing to gather.
    if !headers.contains_key(TRACEPARENT) {
        return None;
    }
    let trace_headers = [TRACEPARENT, TRACESTATE].into_iter().flat_map(|name| {
        let values = headers.get_all(name).into_iter();
        values.map(move |value| {
            let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.to_string(), text)
        })
    });
    TraceContext::sent_in(&trace_headers.collect::<Vec<_>>())
}

/// What a job's creation comes to before it is journaled.
enum Admitted {
    /// Over the application's budget.
    Refused(Response),
    /// The job that holds the call's idempotency key.
    Known(String),
    /// A new job (held in `Store::hold_pending_job`) and its deliveries.
    New(Arc<WebhookJob>, Vec<Event>),
}

/// The checks that need the store, then the new job, or the one its
/// `event_id` already made (only that claim touches sled; the rest is read
/// from the store's memory).
fn admit(state: &ApiState, input: NewJob, sent: Option<&TraceContext>) -> ApiResult<Admitted> {
    let store = &state.store;
    if !store.application_exists(&input.application_id) {
        return Err(ApiError::invalid("application_id", "no such application"));
    }
    // Spent only for applications that exist, so unknown ids add no buckets.
    if let Err(refusal) = state.jobs_per_application.spend(&input.application_id) {
        return Ok(Admitted::Refused(refusal.into_response()));
    }
    check_payload_schema(store, &input)?;
    let keyed = input.event_id.is_some();
    let mut job = new_job(state, input, sent);
    let deliveries = new_deliveries(&job);
    // No subscriber: done at once.
    job.summarize(&deliveries, job.created_at);
    let job = Arc::new(job);
    // Claimed and held under one lock, so the next sender of the key finds the job.
    let _one_at_a_time =
        keyed.then(|| state.job_creation.lock().unwrap_or_else(|e| e.into_inner()));
    if keyed {
        let window = state.config.load().outbound.idempotency_window_ms;
        let (app, key) = (&job.application_id, &job.event_id);
        if let Some(existing) = store.claim_job_key(app, key, &job.id, job.created_at, window)? {
            return Ok(Admitted::Known(existing));
        }
    }
    store.hold_pending_job(job.clone());
    Ok(Admitted::New(job, deliveries))
}

/// The job that holds an idempotency key, once the router has stored it.
async fn answer_known(state: &Arc<ApiState>, id: String) -> ApiResult<Response> {
    state.store.wait_routed(&id).await?;
    let state = state.clone();
    blocking(move || answer_with_deliveries(&state.store, &job_of(&state.store, &id)?)).await
}

/// Journals a new job and answers it with the deliveries it is about to get
/// (the router stores these and queues them, and wakes their endpoints). The
/// new job's deliveries are spans under its own, a child of the caller's
/// `sent` span (or a new trace). A job that could not be journaled is a 503
/// with `Retry-After`: the router's backlog drains in moments, a disk may be
/// freed, and a sender's client waits as it says.
async fn journal(
    state: &ApiState,
    job: Arc<WebhookJob>,
    deliveries: Vec<Event>,
    sent: Option<&TraceContext>,
) -> Result<Response, Response> {
    // Written before the deliveries go to the router.
    let view = JobView {
        deliveries: Some(deliveries.iter().map(|d| delivery_view(d, None)).collect()),
        ..view(&job)
    };
    let large = job.payload.get().len() + DELIVERY_VIEW_BYTES * deliveries.len();
    let answer = json_answer(StatusCode::CREATED, &view, large);
    if let Err(error) = state.commit.commit_job(job.clone(), deliveries).await {
        // Never journaled: forgotten (its idempotency key names no job now).
        state.store.job_routed(&job.id);
        let message = format!("the job could not be stored: {error}");
        let error = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message);
        return Err(come_back_after(error, UNSTORED_RETRY_AFTER_SECONDS));
    }
    state.telemetry.job_created(&job, sent);
    state.metrics.webhook_job_created();
    Ok(answer)
}

/// A new job for the input, with the endpoints subscribed to its type now.
fn new_job(state: &ApiState, input: NewJob, sent: Option<&TraceContext>) -> WebhookJob {
    let id = new_id("job");
    // The time its id holds, so the list's order by time is its order by id.
    let now = created_ms(&id).unwrap_or_else(now_ms);
    let config = state.config.load();
    let outbound = &config.outbound;
    WebhookJob {
        event_id: input.event_id.unwrap_or_else(|| id.clone()),
        endpoint_ids: (state.store)
            .subscribed_endpoints(&input.application_id, &input.event_type)
            .into_iter()
            .filter(|id| {
                input
                    .endpoint_ids
                    .as_ref()
                    .is_none_or(|only| only.contains(id))
            })
            .collect(),
        id,
        application_id: input.application_id,
        event_type: input.event_type,
        payload: input.payload,
        headers: input.headers,
        metadata: input.metadata,
        status: JobStatus::Created,
        attempt_count: 0,
        max_retries: input.max_retries.unwrap_or(outbound.max_retries),
        created_at: now,
        updated_at: now,
        expires_at: now.saturating_add(outbound.delivery_window_ms),
        succeeded_at: None,
        discarded_at: None,
        cancelled: false,
        trace: Some(TraceContext::opened_for(sent)),
    }
}

/// The filters of `GET /v1/webhook-jobs`.
struct JobFilter {
    application_id: String,
    /// A status, or `failed`.
    status: Option<String>,
    event_type: Option<String>,
    endpoint_id: Option<String>,
    created_after: Option<u64>,
    created_before: Option<u64>,
    /// `metadata[KEY]=value`: the payloads reference has senders filter jobs
    /// by their metadata; a top-level key's value, as text, must equal it.
    metadata: Vec<(String, String)>,
}

impl JobFilter {
    fn from_query(query: &Query) -> ApiResult<JobFilter> {
        let owned = |name| query.one(name).map(str::to_string);
        let status = query.one("status").map(status_filter).transpose()?;
        let application_id = owned("application_id").ok_or_else(|| {
            ApiError::invalid(
                "application_id",
                "required: the application whose jobs to list",
            )
        })?;
        Ok(JobFilter {
            application_id,
            status,
            event_type: owned("event_type"),
            endpoint_id: owned("endpoint_id"),
            created_after: query.date("created_after")?,
            created_before: query.date("created_before")?,
            metadata: query
                .bracketed("metadata")
                .into_iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
        })
    }

    /// What the index walks (`metadata` is checked on each job read).
    fn selection(&self) -> JobSelection<'_> {
        JobSelection {
            application_id: &self.application_id,
            status: self.status.as_deref(),
            event_type: self.event_type.as_deref(),
            endpoint_id: self.endpoint_id.as_deref(),
            created_after: self.created_after,
            created_before: self.created_before,
        }
    }

    fn matches(&self, job: &WebhookJob) -> bool {
        let equal =
            |wanted: &Option<String>, value: &str| wanted.as_deref().is_none_or(|w| w == value);
        self.application_id == job.application_id
            && equal(&self.event_type, &job.event_type)
            && (self.status.as_ref()).is_none_or(|s| status_tags(job).contains(&s.as_str()))
            && self
                .endpoint_id
                .as_ref()
                .is_none_or(|e| job.endpoint_ids.contains(e))
            && self.created_after.is_none_or(|t| job.created_at > t)
            && self.created_before.is_none_or(|t| job.created_at < t)
            && self
                .metadata
                .iter()
                .all(|(key, wanted)| metadata_has(&job.metadata, key, wanted))
    }
}

/// Whether a job's metadata has `key` at its top level with the value a
/// query gives as text (`us-west-2`, `3`, `true`).
fn metadata_has(metadata: &Value, key: &str, wanted: &str) -> bool {
    match metadata.get(key) {
        Some(Value::String(text)) => text == wanted,
        Some(value @ (Value::Number(_) | Value::Bool(_))) => {
            serde_json::from_str::<Value>(wanted).is_ok_and(|given| given == *value)
        }
        _ => false,
    }
}

/// `status=`: one of the job statuses, or `failed` (not in the reference's
/// status enum, but what every one of its filtering examples sends).
fn status_filter(given: &str) -> ApiResult<String> {
    let known = JobStatus::ALL.map(JobStatus::as_str);
    if given == FAILED || known.contains(&given) {
        return Ok(given.to_string());
    }
    Err(ApiError::invalid(
        "status",
        format!("\"{given}\" is not one of {}, {FAILED}", known.join(", ")),
    ))
}

#[utoipa::path(get, path = "/v1/webhook-jobs", tag = "outbound", summary = "Jobs, newest first; application_id (required), status (or failed: awaiting_retry or discarded by failure), event_type, endpoint_id, created_after, created_before, metadata[KEY]=value, page, per_page (default 25, ≤ 100)", responses((status = 200, description = "{data, pagination: {page, per_page, total, total_pages}}", body = V1Page<JobView>), (status = 422, description = "bad filter", body = super::schema::ErrorBody)), security(("api_key" = [])))]
pub async fn list(State(state): Shared, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    let query = Query::parse(raw.as_deref());
    let pages = PageNumber::from_query(&query)?;
    let filter = JobFilter::from_query(&query)?;
    // Jobs just created are listed with their deliveries' state.
    state.store.wait_jobs_routed().await?;
    blocking(move || {
        let exact = filter.metadata.is_empty();
        let (skip, take) = pages.window();
        let matches = |job: &WebhookJob| filter.matches(job);
        let page = (state.store).job_page(&filter.selection(), matches, exact, skip, take)?;
        let answer = pages.answer_page(&page.jobs, page.total, view);
        Ok(json_answer(StatusCode::OK, &answer, 0))
    })
    .await
}

#[utoipa::path(get, path = "/v1/webhook-jobs/{id}", tag = "outbound", summary = "A job with its deliveries (endpoint_id, status_code, response_body, latency_ms, attempted_at)", params(("id" = String, Path, description = "job_…")), responses((status = 200, description = "the job", body = JobView), (status = 404, description = "unknown", body = super::schema::ErrorBody)), security(("api_key" = [])))]
pub async fn get(State(state): Shared, Path(id): Path<String>) -> ApiResult<Response> {
    // A job just created: its deliveries are stored in a moment.
    state.store.wait_routed(&id).await?;
    blocking(move || answer_with_deliveries(&state.store, &job_of(&state.store, &id)?)).await
}

#[utoipa::path(post, path = "/v1/webhook-jobs/{id}/retry", tag = "outbound", summary = "Start over: back to created, attempt_count 0, every delivery queued now with a fresh delivery window", params(("id" = String, Path, description = "job_…")), responses((status = 200, description = "the job", body = JobView), (status = 404, description = "unknown", body = super::schema::ErrorBody), (status = 409, description = "archived", body = super::schema::ErrorBody)), security(("api_key" = [])))]
pub async fn retry(State(state): Shared, Path(id): Path<String>) -> ApiResult<Response> {
    // Not before its fan-out, which would store its deliveries anew.
    state.store.wait_routed(&id).await?;
    blocking(move || {
        let window = state.config.load().outbound.delivery_window_ms;
        let retried = retry_job(&state.store, &id, window)?;
        (retried.woken.iter()).for_each(|endpoint| state.scheduler.wake(endpoint));
        answer_with(&state.store, &retried.job, retried.deliveries)
    })
    .await
}

#[utoipa::path(post, path = "/v1/webhook-jobs/{id}/cancel", tag = "outbound", summary = "Cancel a created or awaiting_retry job: discarded, with discarded_at", params(("id" = String, Path, description = "job_…")), responses((status = 200, description = "the job", body = JobView), (status = 404, description = "unknown", body = super::schema::ErrorBody), (status = 409, description = "not created or awaiting_retry", body = super::schema::ErrorBody)), security(("api_key" = [])))]
pub async fn cancel(State(state): Shared, Path(id): Path<String>) -> ApiResult<Response> {
    state.store.wait_routed(&id).await?;
    blocking(move || answer_with_deliveries(&state.store, &cancel_job(&state.store, &id)?)).await
}

//! Bulk retries: `/bulk/{events|requests|ignored-events}/retry`. A job selects
//! with the same filters as the list endpoint, runs in the background in
//! batches, records its progress and cursor, survives restarts, and can be
//! cancelled. Retried events go through their destination's lane, so the
//! destination's rate limit and concurrency still hold.

use super::error::{ApiError, ApiResult};
use super::inbound::{ignored_filter, request_filter, reroute};
use super::outbound::event_filter;
use super::query::{iso, Query};
use super::{blocking, ApiState, Shared};
use crate::ids::{new_id, now_ms};
use crate::model::{AttemptTrigger, BulkKind, BulkRetry, BulkStatus};
use crate::store::{Cursor, Direction, PageRequest};
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Records retried per step; progress is saved after each.
const BATCH: usize = 100;

fn kind_of(path: &str) -> ApiResult<BulkKind> {
    match path {
        "events" => Ok(BulkKind::Events),
        "requests" => Ok(BulkKind::Requests),
        "ignored-events" => Ok(BulkKind::IgnoredEvents),
        other => Err(ApiError::not_found("bulk retry kind", other)),
    }
}

/// How many batches retry `count` records.
fn batches(count: u64) -> u64 {
    count.div_ceil(BATCH as u64)
}

fn view(bulk: &BulkRetry) -> Value {
    json!({
        "id": bulk.id,
        "type": bulk.kind,
        "query": Query::parse(Some(&bulk.query)).to_json(),
        "status": bulk.status,
        "in_progress": bulk.status == BulkStatus::Running,
        "estimated_batch": batches(bulk.estimated_count),
        "processed_batch": batches(bulk.completed_count + bulk.failed_count),
        "estimated_count": bulk.estimated_count,
        "completed_count": bulk.completed_count,
        "failed_count": bulk.failed_count,
        "progress": if bulk.estimated_count == 0 { 1.0 } else { (bulk.completed_count + bulk.failed_count) as f64 / bulk.estimated_count as f64 },
        "created_at": iso(bulk.created_at),
        "completed_at": bulk.completed_at.map(iso),
        "cancelled_at": bulk.cancelled_at.map(iso),
    })
}

/// A 422 for a filter or operator the kind's list does not have: ignoring
/// it would select too much.
fn refuse_unknown(state: &ApiState, kind: BulkKind, query: &Query) -> ApiResult<()> {
    let store = &state.store;
    match kind {
        BulkKind::Events => event_filter(query, store).map(drop)?,
        BulkKind::Requests => request_filter(query, store).map(drop)?,
        BulkKind::IgnoredEvents => ignored_filter(query).map(drop)?,
    }
    query.refuse_unread()
}

/// How many records a query selects now (a 422 as `refuse_unknown`).
fn estimate(state: &ApiState, kind: BulkKind, query: &Query) -> ApiResult<u64> {
    refuse_unknown(state, kind, query)?;
    let store = &state.store;
    Ok(match kind {
        BulkKind::Events => store.count_events(&event_filter(query, store)?)?,
        BulkKind::Requests => store.count_requests(&request_filter(query, store)?)?,
        BulkKind::IgnoredEvents => store.count_ignored_events(&ignored_filter(query)?)?,
    })
}

/// `GET /bulk/{kind}/retry/plan?query={…}` (or the filters as parameters):
/// how many a job would retry.
#[utoipa::path(get, path = "/2023-07-01/bulk/{kind}/retry/plan", tag = "bulk retries", summary = "How many a bulk retry would retry (filters as the list endpoint; also at /plan/generate)", params(("kind" = String, Path, description = "events, requests or ignored-events"), ("query" = Option<String>, Query, description = "JSON object of the list's filters, e.g. {\"created_at\":{\"gte\":\"2026-11-01\"}}; or the filters as parameters")), responses((status = 200, description = "estimated_count and estimated_batch"), (status = 422, description = "a filter or operator the list does not have")), security(("api_key" = [])))]
pub async fn plan(
    State(state): Shared,
    Path(kind): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let kind = kind_of(&kind)?;
    let query = Query::parse(raw.as_deref()).with_json_query()?;
    state.store.wait_indexed().await;
    let count = blocking(move || estimate(&state, kind, &query)).await?;
    Ok(Json(
        json!({ "estimated_count": count, "estimated_batch": batches(count) }),
    ))
}

/// `POST /bulk/{kind}/retry` with `{"query": {…filters…}}`: starts a job.
#[utoipa::path(post, path = "/2023-07-01/bulk/{kind}/retry", tag = "bulk retries", summary = "Start a bulk retry with a query object of filters", params(("kind" = String, Path, description = "events, requests or ignored-events")), responses((status = 200, description = "the job"), (status = 422, description = "no query, or a filter or operator the list does not have")), security(("api_key" = [])))]
pub async fn create(
    State(state): Shared,
    Path(kind): Path<String>,
    body: Option<Json<Value>>,
) -> ApiResult<Json<Value>> {
    let kind = kind_of(&kind)?;
    let query = match body.as_ref().map(|Json(b)| b.get("query")) {
        Some(Some(Value::Object(filters))) => Query::from_json(filters),
        Some(Some(_)) => return Err(ApiError::invalid("query", "must be an object of filters")),
        _ => {
            return Err(ApiError::invalid(
                "query",
                "is required: {\"query\": {…filters…}}",
            ))
        }
    };
    let job_state = state.clone();
    // A bulk retry of requests covers those acknowledged before it.
    state.store.wait_indexed().await;
    let bulk = blocking(move || {
        let estimated_count = estimate(&job_state, kind, &query)?;
        let bulk = BulkRetry {
            id: new_id("bch"),
            kind,
            query: query.to_query_string(),
            status: BulkStatus::Running,
            estimated_count,
            completed_count: 0,
            failed_count: 0,
            cursor: None,
            created_at: now_ms(),
            completed_at: None,
            cancelled_at: None,
        };
        job_state.store.save_bulk_retry(&bulk)?;
        Ok(bulk)
    })
    .await?;
    spawn(state, bulk.id.clone());
    Ok(Json(view(&bulk)))
}

/// `GET /bulk/{kind}/retry`: every job of that kind, newest first.
#[utoipa::path(get, path = "/2023-07-01/bulk/{kind}/retry", tag = "bulk retries", summary = "Bulk retries of a kind, newest first", params(("kind" = String, Path, description = "events, requests or ignored-events"), ("id" = Option<String>, Query, description = "id or id[]"), ("in_progress" = Option<bool>, Query, description = "running or not"), ("created_at[gte]" = Option<String>, Query, description = "ISO 8601; also gt, lte, lt; likewise completed_at, cancelled_at")), responses((status = 200, description = "the jobs")), security(("api_key" = [])))]
pub async fn list(
    State(state): Shared,
    Path(kind): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let kind = kind_of(&kind)?;
    let query = Query::parse(raw.as_deref());
    let keep = job_filter(&query)?;
    query.refuse_unread()?;
    let store = state.store.clone();
    blocking(move || {
        let mut models = Vec::new();
        for bulk in store.bulk_retries() {
            let bulk = bulk?;
            if bulk.kind == kind && keep(&bulk) {
                models.push(view(&bulk));
            }
        }
        models.reverse();
        Ok(Json(json!({ "count": models.len(), "models": models })))
    })
    .await
}

/// The list's filters: `id`, `in_progress`, `created_at[…]`,
/// `completed_at[…]`, `cancelled_at[…]`.
fn job_filter(query: &Query) -> ApiResult<impl Fn(&BulkRetry) -> bool + Send + 'static> {
    let id = query.matcher("id");
    let in_progress = query.bool("in_progress")?;
    let created = query.date_range("created_at")?;
    let completed = query.date_range("completed_at")?;
    let cancelled = query.date_range("cancelled_at")?;
    Ok(move |bulk: &BulkRetry| {
        id(&bulk.id)
            && in_progress.is_none_or(|wanted| (bulk.status == BulkStatus::Running) == wanted)
            && created.contains(Some(bulk.created_at))
            && completed.contains(bulk.completed_at)
            && cancelled.contains(bulk.cancelled_at)
    })
}

/// `GET /bulk/{kind}/retry/{id}`: a job and its progress.
#[utoipa::path(get, path = "/2023-07-01/bulk/{kind}/retry/{id}", tag = "bulk retries", summary = "A bulk retry and its progress", params(("kind" = String, Path, description = "events, requests or ignored-events"), ("id" = String, Path, description = "bch_…")), responses((status = 200, description = "the job"), (status = 404, description = "unknown")), security(("api_key" = [])))]
pub async fn get(
    State(state): Shared,
    Path((kind, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    kind_of(&kind)?;
    let store = state.store.clone();
    blocking(move || {
        let bulk = store
            .bulk_retry(&id)?
            .ok_or_else(|| ApiError::not_found("bulk retry", &id))?;
        Ok(Json(view(&bulk)))
    })
    .await
}

/// `POST /bulk/{kind}/retry/{id}/cancel`: stops a running job after its current batch.
#[utoipa::path(post, path = "/2023-07-01/bulk/{kind}/retry/{id}/cancel", tag = "bulk retries", summary = "Stop a running bulk retry", params(("kind" = String, Path, description = "events, requests or ignored-events"), ("id" = String, Path, description = "bch_…")), responses((status = 200, description = "the job"), (status = 409, description = "not running")), security(("api_key" = [])))]
pub async fn cancel(
    State(state): Shared,
    Path((kind, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    kind_of(&kind)?;
    let job_state = state.clone();
    blocking(move || {
        let _one_writer = job_state
            .bulk_updates
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut bulk = job_state
            .store
            .bulk_retry(&id)?
            .ok_or_else(|| ApiError::not_found("bulk retry", &id))?;
        if bulk.status != BulkStatus::Running {
            return Err(ApiError::conflict(format!(
                "bulk retry \"{id}\" is not running"
            )));
        }
        bulk.status = BulkStatus::Cancelled;
        bulk.cancelled_at = Some(now_ms());
        job_state.store.save_bulk_retry(&bulk)?;
        Ok(Json(view(&bulk)))
    })
    .await
}

/// `POST /bulk/ignored-events/{id}/cancel`: the reference's other spelling
/// of `/bulk/ignored-events/retry/{id}/cancel` (L6829).
pub async fn cancel_ignored_events(
    state: Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    cancel(state, Path(("ignored-events".to_string(), id))).await
}

/// Continues every job left running by the last run.
pub fn resume_all(state: &Arc<ApiState>) -> ApiResult<()> {
    for bulk in state.store.bulk_retries() {
        let bulk = bulk?;
        if bulk.status == BulkStatus::Running {
            spawn(state.clone(), bulk.id);
        }
    }
    Ok(())
}

fn spawn(state: Arc<ApiState>, id: String) {
    let job = run(state.clone(), id);
    state.background.spawn(job);
}

/// Runs a job batch by batch until it is over or the gateway stops (then it
/// is left running in the store, and resumes on the next start).
async fn run(state: Arc<ApiState>, id: String) {
    while !state.background.is_stopping() {
        let (step_state, step_id) = (state.clone(), id.clone());
        match blocking(move || step(&step_state, &step_id)).await {
            Ok((woken, finished)) => {
                woken
                    .iter()
                    .for_each(|destination| state.scheduler.wake(destination));
                if finished {
                    break;
                }
            }
            Err(error) => {
                tracing::error!(bulk = %id, message = %error.message, "bulk retry stopped; it resumes on the next start");
                break;
            }
        }
    }
}

/// Retries the next batch of a job. Returns the destinations to wake and
/// whether the job is over (done or cancelled).
fn step(state: &ApiState, id: &str) -> ApiResult<(BTreeSet<String>, bool)> {
    let Some(mut bulk) = state.store.bulk_retry(id)? else {
        return Ok((BTreeSet::new(), true));
    };
    if bulk.status != BulkStatus::Running {
        return Ok((BTreeSet::new(), true));
    }
    let query = Query::parse(Some(&bulk.query));
    if let Err(error) = refuse_unknown(state, bulk.kind, &query) {
        // A job saved before its filters were checked (once, a query such as
        // `created_at={"gte":…}` was stored, which selects everything).
        tracing::error!(bulk = %id, message = %error.message, "bulk retry cancelled: its query has a filter that is not understood");
        bulk.status = BulkStatus::Cancelled;
        bulk.cancelled_at = Some(now_ms());
        return save_progress(state, bulk, false).map(|finished| (BTreeSet::new(), finished));
    }
    let page = PageRequest {
        order_by: "created_at".into(),
        dir: Direction::Asc,
        limit: BATCH,
        cursor: bulk.cursor.clone().map_or(Cursor::Start, Cursor::Next),
    };
    let mut woken = BTreeSet::new();
    let (processed, last, more) = match bulk.kind {
        BulkKind::Events => retry_events(state, &query, &page, &mut bulk, &mut woken)?,
        BulkKind::Requests => {
            let found = state
                .store
                .page_requests(&page, &request_filter(&query, &state.store)?)?;
            let ids: Vec<String> = found.items.iter().map(|r| r.id.clone()).collect();
            reroute_all(state, &ids, &mut bulk, &mut woken);
            (ids.len(), ids.last().cloned(), found.next.is_some())
        }
        BulkKind::IgnoredEvents => {
            let found = state
                .store
                .page_ignored_events(&page, &ignored_filter(&query)?)?;
            let requests: Vec<String> = found.items.iter().map(|i| i.request_id.clone()).collect();
            reroute_all(state, &requests, &mut bulk, &mut woken);
            (
                requests.len(),
                found.items.last().map(|i| i.id.clone()),
                found.next.is_some(),
            )
        }
    };
    if processed > 0 {
        bulk.cursor = last;
    }
    save_progress(state, bulk, !more).map(|finished| (woken, finished))
}

fn retry_events(
    state: &ApiState,
    query: &Query,
    page: &PageRequest,
    bulk: &mut BulkRetry,
    woken: &mut BTreeSet<String>,
) -> ApiResult<(usize, Option<String>, bool)> {
    let found = state
        .store
        .page_events(page, &event_filter(query, &state.store)?)?;
    for event in &found.items {
        match state
            .store
            .retry_now(&event.id, AttemptTrigger::BulkRetry, now_ms())?
        {
            Some(event) => {
                bulk.completed_count += 1;
                woken.insert(event.destination_id);
            }
            None => bulk.failed_count += 1,
        }
    }
    Ok((
        found.items.len(),
        found.items.last().map(|e| e.id.clone()),
        found.next.is_some(),
    ))
}

fn reroute_all(
    state: &ApiState,
    request_ids: &[String],
    bulk: &mut BulkRetry,
    woken: &mut BTreeSet<String>,
) {
    let runtime = tokio::runtime::Handle::current();
    for id in request_ids {
        // Listed once indexed, which may be before the router is done with it.
        let rerouted = runtime
            .block_on(state.store.wait_routed(id))
            .map_err(ApiError::from)
            .and_then(|_| reroute(&state.store, &state.router, id));
        match rerouted {
            Ok((_, destinations)) => {
                bulk.completed_count += 1;
                woken.extend(destinations);
            }
            Err(_) => bulk.failed_count += 1,
        }
    }
}

/// Saves a batch's progress, unless the job was cancelled meanwhile (then
/// only its counters move). Returns whether the job is over.
fn save_progress(state: &ApiState, mut bulk: BulkRetry, done: bool) -> ApiResult<bool> {
    let _one_writer = state.bulk_updates.lock().unwrap_or_else(|e| e.into_inner());
    let current = state.store.bulk_retry(&bulk.id)?;
    if let Some(cancelled) = current.filter(|c| c.status == BulkStatus::Cancelled) {
        bulk.status = cancelled.status;
        bulk.cancelled_at = cancelled.cancelled_at;
    } else if done {
        bulk.status = BulkStatus::Completed;
        bulk.completed_at = Some(now_ms());
    }
    let over = bulk.status != BulkStatus::Running;
    state.store.save_bulk_retry(&bulk)?;
    Ok(over)
}

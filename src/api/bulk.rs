//! Bulk retries: `/bulk/{events|requests|ignored-events}/retry`. A job selects
//! with the same filters as the list endpoint, runs in the background in
//! batches, records its progress and cursor, survives restarts, and can be
//! cancelled. Retried events go through their destination's lane, so the
//! destination's rate limit and concurrency still hold.
//!
//! In a cluster only the leader runs jobs, whichever node's API started
//! them; a node that takes the lead over resumes them from their last
//! saved batch. Each batch's progress is saved only if the job is still
//! where the batch began and the node still leads, so a change of leader
//! retries at most the batch that was under way again: each record at most
//! once more (at-least-once within one batch of `BATCH`).

use super::error::{ApiError, ApiResult};
use super::inbound::{ignored_filter, request_filter, reroute};
use super::outbound::event_filter;
use super::query::{iso, Query};
use super::schema::{value_of, ErrorBody, Listing};
use super::{blocking, listing, ApiState, Shared};
use crate::ids::{new_id, now_ms};
use crate::model::{AttemptTrigger, BulkKind, BulkQuery, BulkRetry, BulkStatus};
use crate::store::{Cursor, Direction, PageRequest, Paging};
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use utoipa::ToSchema;

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

/// A job as the reference shows it, plus hookgate's `type` and `status`.
#[derive(Serialize, ToSchema)]
pub struct BulkRetryView {
    /// `bch_…`.
    id: String,
    team_id: String,
    /// What it retries.
    #[serde(rename = "type")]
    kind: BulkKind,
    /// The filters that select what it retries, as the list endpoint reads them.
    #[schema(value_type = Object)]
    query: Value,
    status: BulkStatus,
    /// Whether it is still running.
    in_progress: bool,
    /// Counts the jobs of its kind (1 for the first).
    number: u64,
    /// Batches of 100 it is expected to take.
    estimated_batch: u64,
    /// Batches done so far.
    processed_batch: u64,
    /// Records selected when it started.
    estimated_count: u64,
    /// Records retried.
    completed_count: u64,
    /// Records that could not be retried.
    failed_count: u64,
    /// The share processed, 0 to 1 in hundredths.
    progress: f64,
    created_at: String,
    updated_at: String,
    #[schema(required)]
    completed_at: Option<String>,
    #[schema(required)]
    cancelled_at: Option<String>,
}

fn view(team_id: &str, bulk: &BulkRetry, number: u64) -> BulkRetryView {
    let processed = bulk.completed_count + bulk.failed_count;
    BulkRetryView {
        id: bulk.id.clone(),
        team_id: team_id.to_string(),
        kind: bulk.kind,
        query: query_object(&bulk.query),
        status: bulk.status,
        in_progress: bulk.status == BulkStatus::Running,
        number,
        estimated_batch: batches(bulk.estimated_count),
        processed_batch: batches(processed),
        estimated_count: bulk.estimated_count,
        completed_count: bulk.completed_count,
        failed_count: bulk.failed_count,
        progress: progress(bulk),
        created_at: iso(bulk.created_at),
        updated_at: iso(last_change(bulk)),
        completed_at: bulk.completed_at.map(iso),
        cancelled_at: bulk.cancelled_at.map(iso),
    }
}

/// What a bulk retry would retry now.
#[derive(Serialize, ToSchema)]
pub struct BulkPlanView {
    /// Records the query selects.
    estimated_count: u64,
    /// Batches of 100 they take.
    estimated_batch: u64,
    /// Always 0: a plan has processed nothing.
    progress: u8,
}

/// The body of `POST /bulk/{kind}/retry`; `/openapi.json` describes each
/// kind's own (`bulk_query_input`).
#[derive(Deserialize, ToSchema)]
pub struct BulkRetryInput {
    /// Required: a JSON object of the list endpoint's filters, e.g.
    /// `{"status": ["FAILED"], "created_at": {"gte": "2026-11-01"}}`.
    #[schema(value_type = Option<Object>)]
    query: Option<Value>,
}

/// The share of the estimated records processed, 0 to 1 in hundredths (as
/// the reference's 8 of 28 shows 0.29); 1 once the job completed.
fn progress(bulk: &BulkRetry) -> f64 {
    let processed = bulk.completed_count + bulk.failed_count;
    if bulk.status == BulkStatus::Completed || bulk.estimated_count == 0 {
        return 1.0;
    }
    let share = (processed as f64 / bulk.estimated_count as f64).min(1.0);
    (share * 100.0).round() / 100.0
}

fn last_change(bulk: &BulkRetry) -> u64 {
    bulk.updated_at.unwrap_or_else(|| {
        [bulk.completed_at, bulk.cancelled_at]
            .into_iter()
            .flatten()
            .fold(bulk.created_at, u64::max)
    })
}

/// A job's query as a JSON object (a record stored as a query string is
/// shown as the object it stands for).
fn query_object(query: &BulkQuery) -> Value {
    match query {
        BulkQuery::Filters(filters) => Value::Object(filters.clone()),
        BulkQuery::Encoded(text) => Query::parse(Some(text)).to_json(),
    }
}

/// A job's query as the list endpoint reads its filters.
fn filters(query: &BulkQuery) -> Query {
    match query {
        BulkQuery::Filters(filters) => Query::from_json(filters),
        BulkQuery::Encoded(text) => Query::parse(Some(text)),
    }
}

/// Every job of a kind, oldest first, with its number.
fn numbered(state: &ApiState, kind: BulkKind) -> ApiResult<Vec<(u64, BulkRetry)>> {
    let mut jobs = Vec::new();
    for bulk in state.store.bulk_retries() {
        let bulk = bulk?;
        if bulk.kind == kind {
            jobs.push((jobs.len() as u64 + 1, bulk));
        }
    }
    Ok(jobs)
}

/// The view of one job, numbered among those of its kind.
fn view_one(state: &ApiState, bulk: &BulkRetry) -> ApiResult<BulkRetryView> {
    let number = numbered(state, bulk.kind)?
        .iter()
        .find(|(_, job)| job.id == bulk.id)
        .map_or(0, |(number, _)| *number);
    Ok(view(&state.team_id, bulk, number))
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
        BulkKind::Events => store.count_events(&event_filter(query, store)?.keep)?,
        BulkKind::Requests => store.count_requests(&request_filter(query, store)?.keep)?,
        BulkKind::IgnoredEvents => store.count_ignored_events(&ignored_filter(query)?)?,
    })
}

/// `GET /bulk/{kind}/retry/plan?query={…}` (or the filters as parameters):
/// how many a job would retry.
#[utoipa::path(get, path = "/2023-07-01/bulk/{kind}/retry/plan", tag = "bulk retries", summary = "How many a bulk retry would retry (filters as the list endpoint; also at /plan/generate)", params(("kind" = String, Path, description = "events, requests or ignored-events"), ("query" = Option<String>, Query, description = "JSON object of the list's filters, e.g. {\"created_at\":{\"gte\":\"2026-11-01\"}}; or the filters as parameters")), responses((status = 200, description = "estimated_count, estimated_batch and progress (0)", body = BulkPlanView), (status = 404, description = "an unknown kind", body = ErrorBody), (status = 422, description = "a filter or operator the list does not have", body = ErrorBody)), security(("api_key" = [])))]
pub async fn plan(
    State(state): Shared,
    Path(kind): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<BulkPlanView>> {
    let kind = kind_of(&kind)?;
    let query = Query::parse(raw.as_deref()).with_json_query()?;
    state.store.wait_indexed().await;
    let count = blocking(move || estimate(&state, kind, &query)).await?;
    Ok(Json(BulkPlanView {
        estimated_count: count,
        estimated_batch: batches(count),
        progress: 0,
    }))
}

/// `GET /bulk/{kind}/retry/plan/generate`: the reference's other spelling of
/// `…/plan` (L6438).
#[utoipa::path(get, path = "/2023-07-01/bulk/{kind}/retry/plan/generate", tag = "bulk retries", summary = "As GET /bulk/{kind}/retry/plan", params(("kind" = String, Path, description = "events, requests or ignored-events"), ("query" = Option<String>, Query, description = "JSON object of the list's filters; or the filters as parameters")), responses((status = 200, description = "estimated_count, estimated_batch and progress (0)", body = BulkPlanView), (status = 404, description = "an unknown kind", body = ErrorBody), (status = 422, description = "a filter or operator the list does not have", body = ErrorBody)), security(("api_key" = [])))]
pub async fn plan_generate(
    state: Shared,
    kind: Path<String>,
    raw: RawQuery,
) -> ApiResult<Json<BulkPlanView>> {
    plan(state, kind, raw).await
}

/// `POST /bulk/{kind}/retry` with `{"query": {…filters…}}`: starts a job.
#[utoipa::path(post, path = "/2023-07-01/bulk/{kind}/retry", tag = "bulk retries", summary = "Start a bulk retry with a query object of filters", params(("kind" = String, Path, description = "events, requests or ignored-events")), request_body = BulkRetryInput, responses((status = 200, description = "the job", body = BulkRetryView), (status = 404, description = "an unknown kind", body = ErrorBody), (status = 422, description = "no query, or a filter or operator the list does not have", body = ErrorBody)), security(("api_key" = [])))]
pub async fn create(
    State(state): Shared,
    Path(kind): Path<String>,
    body: Option<Json<BulkRetryInput>>,
) -> ApiResult<Json<BulkRetryView>> {
    let kind = kind_of(&kind)?;
    // No body, or one that is not a JSON object, names no query either.
    let query = match body.and_then(|Json(b)| b.query) {
        Some(Value::Object(filters)) => filters,
        Some(_) => return Err(ApiError::invalid("query", "must be an object of filters")),
        None => {
            return Err(ApiError::invalid(
                "query",
                "is required: {\"query\": {…filters…}}",
            ))
        }
    };
    let job_state = state.clone();
    // A bulk retry of requests covers those acknowledged before it.
    state.store.wait_indexed().await;
    let (answer, id) = blocking(move || {
        let estimated_count = estimate(&job_state, kind, &Query::from_json(&query))?;
        let now = now_ms();
        let bulk = BulkRetry {
            id: new_id("bch"),
            kind,
            query: BulkQuery::Filters(query),
            status: BulkStatus::Running,
            estimated_count,
            completed_count: 0,
            failed_count: 0,
            cursor: None,
            created_at: now,
            updated_at: Some(now),
            completed_at: None,
            cancelled_at: None,
        };
        job_state.store.save_bulk_retry(&bulk)?;
        Ok((view_one(&job_state, &bulk)?, bulk.id))
    })
    .await?;
    // Another node that leads hears of it from the database (`Node::bulk_retry_started`).
    if state.leases.leads() {
        spawn(state, id);
    }
    Ok(Json(answer))
}

/// `GET /bulk/{kind}/retry`: the jobs of that kind, newest first.
#[utoipa::path(get, path = "/2023-07-01/bulk/{kind}/retry", tag = "bulk retries", summary = "Bulk retries of a kind, newest first, a page at a time", params(("kind" = String, Path, description = "events, requests or ignored-events"), ("id" = Option<String>, Query, description = "id or id[]"), ("in_progress" = Option<bool>, Query, description = "running or not"), ("query" = Option<String>, Query, description = "JSON object: the jobs whose query is exactly this"), ("query_partial_match" = Option<bool>, Query, description = "true: the jobs whose query contains every filter of `query`"), ("created_at[gte]" = Option<String>, Query, description = "ISO 8601; also gt, lte, lt, any; likewise completed_at, cancelled_at"), ("order_by" = Option<String>, Query, description = "created_at (default) or updated_at; several keys: order_by[]=…&order_by[]=…, with one dir for all or dir[] one per key"), ("dir" = Option<String>, Query, description = "asc or desc (default)"), ("limit" = Option<String>, Query, description = "1-255, default 100"), ("next" = Option<String>, Query, description = "cursor"), ("prev" = Option<String>, Query, description = "cursor")), responses((status = 200, description = "{pagination, count, models}", body = Listing<BulkRetryView>), (status = 404, description = "an unknown kind", body = ErrorBody), (status = 422, description = "an unknown parameter, or a query that is not a JSON object", body = ErrorBody)), security(("api_key" = [])))]
pub async fn list(
    State(state): Shared,
    Path(kind): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let kind = kind_of(&kind)?;
    let query = Query::parse(raw.as_deref());
    let keep = job_filter(&query)?;
    let page = query.page_sorted(&["created_at", "updated_at"])?;
    query.refuse_unread()?;
    blocking(move || {
        let models = numbered(&state, kind)?
            .into_iter()
            .filter(|(_, bulk)| keep(bulk))
            .map(|(number, bulk)| value_of(view(&state.team_id, &bulk, number)))
            .collect();
        listing::answer(models, &page)
    })
    .await
}

/// The list's filters: `id`, `in_progress`, `created_at[…]`,
/// `completed_at[…]`, `cancelled_at[…]`, and `query` (a JSON object: the
/// job's query is that object, or with `query_partial_match=true` contains it).
fn job_filter(query: &Query) -> ApiResult<impl Fn(&BulkRetry) -> bool + Send + 'static> {
    let id = query.matcher("id");
    let in_progress = query.bool("in_progress")?;
    let created = query.date_range("created_at")?;
    let completed = query.date_range("completed_at")?;
    let cancelled = query.date_range("cancelled_at")?;
    let wanted = match query.one("query") {
        Some(text) => match serde_json::from_str(text) {
            Ok(object @ Value::Object(_)) => Some(object),
            _ => return Err(ApiError::invalid("query", "must be a JSON object")),
        },
        None => None,
    };
    let partial = query.bool("query_partial_match")?.unwrap_or(false);
    Ok(move |bulk: &BulkRetry| {
        id(&bulk.id)
            && in_progress.is_none_or(|wanted| (bulk.status == BulkStatus::Running) == wanted)
            && created.contains(Some(bulk.created_at))
            && completed.contains(bulk.completed_at)
            && cancelled.contains(bulk.cancelled_at)
            && wanted.as_ref().is_none_or(|wanted| {
                let stored = query_object(&bulk.query);
                if partial {
                    contains(&stored, wanted)
                } else {
                    stored == *wanted
                }
            })
    })
}

/// Whether `whole` has everything `part` has: each key of an object (with a
/// value containing `part`'s), each item of an array; other values equal.
fn contains(whole: &Value, part: &Value) -> bool {
    match (whole, part) {
        (Value::Object(whole), Value::Object(part)) => part
            .iter()
            .all(|(key, value)| whole.get(key).is_some_and(|have| contains(have, value))),
        (Value::Array(whole), Value::Array(part)) => part
            .iter()
            .all(|item| whole.iter().any(|have| contains(have, item))),
        _ => whole == part,
    }
}

/// `GET /bulk/{kind}/retry/{id}`: a job and its progress.
#[utoipa::path(get, path = "/2023-07-01/bulk/{kind}/retry/{id}", tag = "bulk retries", summary = "A bulk retry and its progress", params(("kind" = String, Path, description = "events, requests or ignored-events"), ("id" = String, Path, description = "bch_…")), responses((status = 200, description = "the job", body = BulkRetryView), (status = 404, description = "unknown", body = ErrorBody)), security(("api_key" = [])))]
pub async fn get(
    State(state): Shared,
    Path((kind, id)): Path<(String, String)>,
) -> ApiResult<Json<BulkRetryView>> {
    let kind = kind_of(&kind)?;
    blocking(move || Ok(Json(view_one(&state, &of_kind(&state, kind, &id)?)?))).await
}

/// A job of `kind` (one of another kind is not found under this path).
fn of_kind(state: &ApiState, kind: BulkKind, id: &str) -> ApiResult<BulkRetry> {
    state
        .store
        .bulk_retry(id)?
        .filter(|bulk| bulk.kind == kind)
        .ok_or_else(|| ApiError::not_found("bulk retry", id))
}

/// `POST /bulk/{kind}/retry/{id}/cancel`: stops a running job after its
/// current batch. A job already over is answered as it is.
#[utoipa::path(post, path = "/2023-07-01/bulk/{kind}/retry/{id}/cancel", tag = "bulk retries", summary = "Stop a running bulk retry (one already over is answered unchanged)", params(("kind" = String, Path, description = "events, requests or ignored-events"), ("id" = String, Path, description = "bch_…")), responses((status = 200, description = "the job", body = BulkRetryView), (status = 404, description = "unknown", body = ErrorBody)), security(("api_key" = [])))]
pub async fn cancel(
    State(state): Shared,
    Path((kind, id)): Path<(String, String)>,
) -> ApiResult<Json<BulkRetryView>> {
    let kind = kind_of(&kind)?;
    blocking(move || {
        of_kind(&state, kind, &id)?;
        let (bulk, _) = state
            .store
            .change_bulk_retry(&id, cancel_running)?
            .ok_or_else(|| ApiError::not_found("bulk retry", &id))?;
        Ok(Json(view_one(&state, &bulk)?))
    })
    .await
}

/// Cancels a job that is running (a change for `Store::change_bulk_retry`).
fn cancel_running(bulk: &mut BulkRetry) -> bool {
    let running = bulk.status == BulkStatus::Running;
    if running {
        let now = now_ms();
        bulk.status = BulkStatus::Cancelled;
        (bulk.cancelled_at, bulk.updated_at) = (Some(now), Some(now));
    }
    running
}

/// `POST /bulk/ignored-events/{id}/cancel`: the reference's other spelling
/// of `/bulk/ignored-events/retry/{id}/cancel` (L6829).
#[utoipa::path(post, path = "/2023-07-01/bulk/ignored-events/{id}/cancel", tag = "bulk retries", summary = "As POST /bulk/ignored-events/retry/{id}/cancel", params(("id" = String, Path, description = "bch_…")), responses((status = 200, description = "the job", body = BulkRetryView), (status = 404, description = "unknown", body = ErrorBody)), security(("api_key" = [])))]
pub async fn cancel_ignored_events(
    state: Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<BulkRetryView>> {
    cancel(state, Path(("ignored-events".to_string(), id))).await
}

/// Continues every job left running, on the node that leads (a node alone
/// always does): by the last run, by a leader that stopped or lost the
/// lead, or started through another node's API.
pub fn resume_all(state: &Arc<ApiState>) -> ApiResult<()> {
    if !state.leases.leads() {
        return Ok(());
    }
    for bulk in state.store.bulk_retries() {
        let bulk = bulk?;
        if bulk.status == BulkStatus::Running {
            spawn(state.clone(), bulk.id);
        }
    }
    Ok(())
}

fn spawn(state: Arc<ApiState>, id: String) {
    let job = run(state.clone(), id.clone());
    state.background.spawn_once(id, job);
}

/// Runs a job batch by batch until it is over, the gateway stops or this
/// node no longer leads (then it is left running in the store, and the
/// leader resumes it from its last saved batch).
async fn run(state: Arc<ApiState>, id: String) {
    while !state.background.is_stopping() && state.leases.leads() {
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
                tracing::error!(bulk = %id, message = %error.message, "bulk retry stopped; it resumes on the next start or change of leader");
                break;
            }
        }
    }
}

/// Retries the next batch of a job. Returns the destinations to wake and
/// whether the job is over (done or cancelled).
fn step(state: &ApiState, id: &str) -> ApiResult<(BTreeSet<String>, bool)> {
    let Some(began) = state.store.bulk_retry(id)? else {
        return Ok((BTreeSet::new(), true));
    };
    if began.status != BulkStatus::Running {
        return Ok((BTreeSet::new(), true));
    }
    let query = filters(&began.query);
    if let Err(error) = refuse_unknown(state, began.kind, &query) {
        // A job saved before its filters were checked (once, a query such as
        // `created_at={"gte":…}` was stored, which selects everything).
        tracing::error!(bulk = %id, message = %error.message, "bulk retry cancelled: its query has a filter that is not understood");
        state.store.change_bulk_retry(id, cancel_running)?;
        return Ok((BTreeSet::new(), true));
    }
    let page = PageRequest {
        order_by: "created_at".into(),
        dir: Direction::Asc,
        limit: BATCH,
        cursor: began.cursor.clone().map_or(Cursor::Start, Cursor::Next),
    };
    let mut bulk = began.clone();
    let mut woken = BTreeSet::new();
    // Where the next batch reads on: after this one's last match, or after
    // the last record a short page read (`store::page`'s read budget).
    let next = match bulk.kind {
        BulkKind::Events => retry_events(state, &query, &page, &mut bulk, &mut woken)?,
        BulkKind::Requests => {
            let selection = request_filter(&query, &state.store)?;
            let found = (state.store).page_requests(
                Paging::ByKey(&page),
                selection.stamps,
                &selection.keep,
            )?;
            let ids: Vec<String> = found.items.iter().map(|r| r.id.clone()).collect();
            reroute_all(state, &ids, &mut bulk, &mut woken);
            found.next
        }
        BulkKind::IgnoredEvents => {
            let found = state
                .store
                .page_ignored_events(Paging::ByKey(&page), &ignored_filter(&query)?)?;
            let requests: Vec<String> = found.items.iter().map(|i| i.request_id.clone()).collect();
            reroute_all(state, &requests, &mut bulk, &mut woken);
            found.next
        }
    };
    let read_all = next.is_none();
    if next.is_some() {
        bulk.cursor = next;
    }
    save_progress(state, &began, bulk, read_all).map(|finished| (woken, finished))
}

fn retry_events(
    state: &ApiState,
    query: &Query,
    page: &PageRequest,
    bulk: &mut BulkRetry,
    woken: &mut BTreeSet<String>,
) -> ApiResult<Option<String>> {
    let selection = event_filter(query, &state.store)?;
    let found =
        (state.store).page_events(Paging::ByKey(page), selection.stamps, &selection.keep)?;
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
    Ok(found.next)
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

/// Saves a batch's progress (`done`: the last batch), if the job is still
/// where the batch `began` and this node still leads. Otherwise the lead
/// moved while the batch ran: another node saved this batch's progress or
/// will retry it again, so its counts go and the job goes on from what is
/// saved. A job cancelled meanwhile stays cancelled (only its counters
/// move). Returns whether the job is over.
fn save_progress(
    state: &ApiState,
    began: &BulkRetry,
    batch: BulkRetry,
    done: bool,
) -> ApiResult<bool> {
    let saved = state.store.change_bulk_retry(&batch.id, |stored| {
        let unmoved = stored.cursor == began.cursor
            && (stored.completed_count, stored.failed_count)
                == (began.completed_count, began.failed_count);
        if !unmoved || !state.leases.leads() {
            return false;
        }
        let now = now_ms();
        stored.cursor = batch.cursor;
        (stored.completed_count, stored.failed_count) = (batch.completed_count, batch.failed_count);
        if done && stored.status == BulkStatus::Running {
            stored.status = BulkStatus::Completed;
            stored.completed_at = Some(now);
        }
        stored.updated_at = Some(now);
        true
    })?;
    Ok(saved.is_none_or(|(stored, _)| stored.status != BulkStatus::Running))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(status: BulkStatus, estimated_count: u64, completed_count: u64) -> BulkRetry {
        BulkRetry {
            id: "bch_1".into(),
            kind: BulkKind::Events,
            query: BulkQuery::Encoded(String::new()),
            status,
            estimated_count,
            completed_count,
            failed_count: 0,
            cursor: None,
            created_at: 0,
            updated_at: None,
            completed_at: None,
            cancelled_at: None,
        }
    }

    #[test]
    fn progress_is_the_share_processed_in_hundredths_and_whole_once_completed() {
        assert_eq!(progress(&job(BulkStatus::Cancelled, 28, 8)), 0.29);
        assert_eq!(progress(&job(BulkStatus::Running, 192, 0)), 0.0);
        assert_eq!(progress(&job(BulkStatus::Completed, 28, 20)), 1.0);
        assert_eq!(progress(&job(BulkStatus::Running, 2, 5)), 1.0);
    }

    #[test]
    fn a_partial_query_has_each_key_and_item_of_the_part() {
        let whole = json!({ "status": ["FAILED", "QUEUED"], "created_at": { "gte": "2020" } });
        assert!(contains(&whole, &json!({ "status": ["QUEUED"] })));
        assert!(contains(&whole, &json!({ "created_at": {} })));
        assert!(!contains(&whole, &json!({ "status": ["SUCCESSFUL"] })));
        assert!(!contains(
            &whole,
            &json!({ "created_at": { "lte": "2020" } })
        ));
        assert!(!contains(&whole, &json!({ "source_id": [] })));
    }
}

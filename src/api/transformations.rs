//! `/transformations`: stored transformations (created, upserted by name,
//! renamed with their id kept), their runs (`executions`), and `run`: a
//! transformation's code tried on a sample request, exactly as the router
//! would run it, with the result and the console.

use super::error::{
    checked_present_name, json_body, refuse_environment, unreadable_body, ApiError, ApiResult,
};
use super::query::{iso, Query};
use super::schema::{value_of, Deleted, ErrorBody, Listing};
use super::sorting::{id_time, store_page, Key};
use super::{blocking, bounded_page, listing, objects, views, ApiState, Shared};
use crate::ids::{event_data_id, named_id, new_id, now_ms};
use crate::model::{Execution, Payload, TransformationObject};
use crate::pipeline::transform::{
    Admission, LogEntry, TransformError, TransformLimits, Transformation, WorkerPool,
};
use crate::pipeline::view::parse_query;
use crate::store::Store;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunTransformation {
    /// The code to run; or else that of `transformation_id`.
    code: Option<String>,
    /// A stored transformation, whose code (unless `code` is given) and env
    /// (unless `env` is given) run.
    transformation_id: Option<String>,
    /// The connection given to the handler as `context.connection`.
    webhook_id: Option<String>,
    env: Option<BTreeMap<String, String>>,
    request: SampleRequest,
}

/// The request a run transforms, as the router gives it to a handler (the
/// reference's `request`; other keys are left out, as the router has none).
#[derive(Deserialize, Serialize, ToSchema)]
pub struct SampleRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<BTreeMap<String, String>>,
    /// JSON, or the body as text.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<serde_json::Value>)]
    body: Option<Value>,
    /// The path after the source's URL, e.g. `/`.
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    /// The query string, without `?`.
    #[serde(skip_serializing_if = "Option::is_none")]
    query: Option<String>,
    /// `query` parsed; derived from it when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    parsed_query: Option<serde_json::Map<String, Value>>,
}

/// The answer of a run: the request the code made, and what it logged.
#[derive(Serialize, ToSchema)]
pub struct RunView {
    /// The transformed request: `{headers, body, path, query, parsed_query}`.
    #[schema(value_type = Object)]
    request: Value,
    /// The most severe level logged: debug, info, warn or error.
    log_level: &'static str,
    /// What the code logged, in order.
    console: Vec<ConsoleLine>,
}

/// One `console.<method>` call of a run.
#[derive(Serialize, ToSchema)]
pub struct ConsoleLine {
    /// The console method: log, debug, info, warn or error.
    #[serde(rename = "type")]
    kind: String,
    /// The same as `type` (hookgate's earlier name for it).
    level: String,
    /// The arguments joined with spaces; objects JSON-stringified.
    message: String,
}

#[utoipa::path(put, path = "/2023-07-01/transformations/run", tag = "transformations", summary = "Run code (or a stored transformation's, transformation_id) on a sample request, in a connection's context (webhook_id)", request_body = RunTransformation, responses((status = 200, description = "{request, log_level, console}", body = RunView), (status = 422, description = "the script failed (data: {log_level, console}), or an unknown transformation_id or webhook_id", body = ErrorBody), (status = 400, description = "a bad body", body = ErrorBody), (status = 503, description = "every transformation worker is busy and the queue is full", body = ErrorBody)), security(("api_key" = [])))]
pub async fn run(
    State(state): Shared,
    body: Result<Json<RunTransformation>, JsonRejection>,
) -> ApiResult<Json<RunView>> {
    let Json(run) = body.map_err(unreadable_body)?;
    refuse_environment("env", run.env.iter().flat_map(BTreeMap::values))?;
    let request = sample_request(run.request);
    let context = json!({ "connection": run_connection(&state, run.webhook_id.as_deref())? });
    let limits = state.transform_limits.clone();
    let pool = state.config.load().transform_pool.clone();
    let store = state.store.clone();
    blocking(move || {
        let (code, env) = code_and_env(&store, run.code, run.transformation_id, run.env)?;
        let transformation = api_transformation(&pool, "run", &code, env, limits)?;
        match transformation.run(&request, &context) {
            Ok(output) => Ok(Json(RunView {
                log_level: log_level(&output.logs, false),
                console: console(&output.logs),
                request: output.request,
            })),
            Err(failure) if is_overload(&failure.error) => Err(overloaded(failure.error)),
            Err(failure) => Err(ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: format!("the transformation failed: {}", failure.error),
                data: json!({
                    "log_level": log_level(&failure.logs, true),
                    "console": console(&failure.logs),
                }),
            }),
        }
    })
    .await
}

/// The code and env a run uses: those given, else those of the stored
/// transformation `transformation_id` names.
fn code_and_env(
    store: &Store,
    code: Option<String>,
    transformation_id: Option<String>,
    env: Option<BTreeMap<String, String>>,
) -> ApiResult<(String, BTreeMap<String, String>)> {
    let stored = match transformation_id {
        Some(id) => Some(store.transformation(&id)?.ok_or_else(|| {
            ApiError::invalid("transformation_id", format!("no transformation \"{id}\""))
        })?),
        None => None,
    };
    let (code, stored_env) = match (code, stored) {
        (Some(code), stored) => (code, stored.map(|s| s.env)),
        (None, Some(stored)) => (stored.code, Some(stored.env)),
        (None, None) => {
            return Err(ApiError::invalid(
                "code",
                "is required (or transformation_id)",
            ))
        }
    };
    Ok((code, env.or(stored_env).unwrap_or_default()))
}

/// The sample request of a run, with `parsed_query` derived from `query`
/// when absent (as the router gives it).
fn sample_request(mut request: SampleRequest) -> Value {
    if request.parsed_query.is_none() {
        let parsed = parse_query(request.query.as_deref().unwrap_or_default());
        request.parsed_query = parsed.as_object().cloned();
    }
    value_of(request)
}

/// `context.connection` of a run: the connection `webhook_id` names, as the
/// router gives it (`{id, name}`), or null.
fn run_connection(state: &ApiState, webhook_id: Option<&str>) -> ApiResult<Value> {
    let Some(id) = webhook_id else {
        return Ok(Value::Null);
    };
    let catalog = state.catalog.load();
    let connection = catalog
        .connection(id)
        .ok_or_else(|| ApiError::invalid("webhook_id", format!("no connection \"{id}\"")))?;
    Ok(json!({ "id": connection.id, "name": connection.name }))
}

/// The most severe level a run logged at, in the reference's levels (`debug,
/// info, warn, error, fatal`): `console.log` counts as info, a run that
/// logged nothing is info, and a run that failed is fatal.
fn log_level(logs: &[LogEntry], failed: bool) -> &'static str {
    const ORDER: [&str; 4] = ["debug", "info", "warn", "error"];
    if failed {
        return "fatal";
    }
    logs.iter()
        .map(|entry| match entry.level.as_str() {
            "log" => "info",
            level => ORDER
                .iter()
                .find(|known| **known == level)
                .copied()
                .unwrap_or("info"),
        })
        .max_by_key(|level| ORDER.iter().position(|known| known == level))
        .unwrap_or("info")
}

/// A run's logs as the reference's console lines, `{type, message}` (and
/// hookgate's earlier `level`, kept for clients of it).
fn console(logs: &[LogEntry]) -> Vec<ConsoleLine> {
    logs.iter()
        .map(|entry| ConsoleLine {
            kind: entry.level.clone(),
            level: entry.level.clone(),
            message: entry.message.clone(),
        })
        .collect()
}

/// The body of `POST /transformations`, `PUT /transformations` and
/// `PUT /transformations/{id}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransformationInput {
    /// Unique in the workspace.
    name: Option<String>,
    /// JavaScript defining `addHandler("transform", (request, context) => …)`.
    code: Option<String>,
    /// Key-value environment given to the code as `process.env`.
    env: Option<BTreeMap<String, String>>,
}

impl TransformationInput {
    /// The checks that need no store: a valid name and env, if given.
    fn checked(self) -> ApiResult<TransformationInput> {
        if let Some(name) = &self.name {
            checked_present_name("name", name)?;
        }
        refuse_environment("env", self.env.iter().flat_map(BTreeMap::values))?;
        Ok(self)
    }

    /// The name and code a new transformation needs.
    fn required(&self) -> ApiResult<(String, String)> {
        let name = self.name.clone();
        let name = name.ok_or_else(|| ApiError::invalid("name", "is required"))?;
        let code = self.code.clone();
        Ok((
            name,
            code.ok_or_else(|| ApiError::invalid("code", "is required"))?,
        ))
    }
}

/// A stored transformation as the reference shows it.
#[derive(Serialize, ToSchema)]
pub struct TransformationView {
    /// `trs_…`.
    id: String,
    team_id: String,
    /// Unique in the workspace.
    name: String,
    /// The JavaScript run on each request.
    code: String,
    /// The environment's keys, with their values masked.
    #[schema(value_type = Object)]
    env: Value,
    created_at: String,
    updated_at: String,
}

fn transformation_view(team_id: &str, t: &TransformationObject) -> TransformationView {
    TransformationView {
        id: t.id.clone(),
        team_id: team_id.to_string(),
        name: t.name.clone(),
        code: t.code.clone(),
        env: views::masked_values(&json!(t.env)),
        created_at: iso(t.created_at),
        updated_at: iso(t.updated_at),
    }
}

/// Loads code for the API: a script that does not load is a 422 naming
/// `code`; busy or missing workers are a 503, to be retried.
fn api_transformation(
    pool: &Arc<WorkerPool>,
    name: &str,
    code: &str,
    env: BTreeMap<String, String>,
    limits: TransformLimits,
) -> ApiResult<Transformation> {
    Transformation::new(pool, name, code, env, limits, Admission::RejectWhenFull).map_err(|e| {
        if is_overload(&e) {
            overloaded(e)
        } else {
            ApiError::invalid("code", e.to_string())
        }
    })
}

/// Errors that say nothing about the script, only about the workers' load.
fn is_overload(error: &TransformError) -> bool {
    matches!(
        error,
        TransformError::Busy(_) | TransformError::WorkerUnavailable(_)
    )
}

fn overloaded(error: TransformError) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
}

/// Compiles the code once, so a broken script is a 422 now, not failures later.
fn check_code(state: &ApiState, name: &str, code: &str) -> ApiResult<()> {
    let pool = &state.config.load().transform_pool;
    let limits = state.transform_limits.clone();
    api_transformation(pool, name, code, BTreeMap::new(), limits).map(drop)
}

#[utoipa::path(get, path = "/2023-07-01/transformations", tag = "transformations", summary = "Stored transformations, a page at a time", params(("id" = Option<String>, Query, description = "id or id[]"), ("name" = Option<String>, Query, description = "name, name[] or name[contains]"), ("order_by" = Option<String>, Query, description = "created_at (default), updated_at or name; several keys: order_by[]=…&order_by[]=…, with one dir for all or dir[] one per key"), ("dir" = Option<String>, Query, description = "asc or desc (default)"), ("limit" = Option<String>, Query, description = "1-255, default 100"), ("next" = Option<String>, Query, description = "cursor"), ("prev" = Option<String>, Query, description = "cursor")), responses((status = 200, description = "{pagination, count, models}", body = Listing<TransformationView>), (status = 422, description = "an unknown parameter or order key", body = ErrorBody)), security(("api_key" = [])))]
pub async fn list(State(state): Shared, RawQuery(raw): RawQuery) -> ApiResult<Json<Value>> {
    let query = Query::parse(raw.as_deref());
    let (id, name) = (query.matcher("id"), query.matcher("name"));
    let page = query.page_sorted(&["created_at", "updated_at", "name"])?;
    query.refuse_unread()?;
    blocking(move || {
        let models: Vec<Value> = state
            .store
            .transformations()?
            .iter()
            .filter(|t| id(&t.id) && name(&t.name))
            .map(|t| value_of(transformation_view(&state.team_id, t)))
            .collect();
        listing::answer(models, &page)
    })
    .await
}

#[utoipa::path(post, path = "/2023-07-01/transformations", tag = "transformations", summary = "Create a transformation: name, code, env", request_body = TransformationInput, responses((status = 200, description = "the transformation", body = TransformationView), (status = 409, description = "the name is taken", body = ErrorBody), (status = 422, description = "the code does not compile", body = ErrorBody), (status = 503, description = "every transformation worker is busy and the queue is full", body = ErrorBody)), security(("api_key" = [])))]
pub async fn create(
    State(state): Shared,
    body: Result<Json<TransformationInput>, JsonRejection>,
) -> ApiResult<Json<TransformationView>> {
    let input = json_body(body)?.checked()?;
    let (name, code) = input.required()?;
    blocking(move || {
        let _one_writer = lock(&state.object_updates);
        if state.store.transformation_named(&name)?.is_some() {
            return Err(ApiError::conflict(format!(
                "a transformation named \"{name}\" already exists"
            )));
        }
        let created = insert(&state, name, code, input.env)?;
        Ok(Json(transformation_view(&state.team_id, &created)))
    })
    .await
}

/// `PUT /transformations`: creates the transformation `name` names, or
/// updates the one of that name (its code and env).
#[utoipa::path(put, path = "/2023-07-01/transformations", tag = "transformations", summary = "Create a transformation, or update the one with this name", request_body = TransformationInput, responses((status = 200, description = "the transformation", body = TransformationView), (status = 422, description = "no name or code, or the code does not compile", body = ErrorBody), (status = 503, description = "every transformation worker is busy and the queue is full", body = ErrorBody)), security(("api_key" = [])))]
pub async fn upsert(
    State(state): Shared,
    body: Result<Json<TransformationInput>, JsonRejection>,
) -> ApiResult<Json<TransformationView>> {
    let input = json_body(body)?.checked()?;
    let (name, code) = input.required()?;
    let job_state = state.clone();
    let (saved, existed) = blocking(move || {
        let state = &job_state;
        let _one_writer = lock(&state.object_updates);
        match state.store.transformation_named(&name)? {
            Some(existing) => Ok((change(state, existing, input)?, true)),
            None => Ok((insert(state, name, code, input.env)?, false)),
        }
    })
    .await?;
    if existed {
        objects::rebuild(state.clone()).await?;
    }
    Ok(Json(transformation_view(&state.team_id, &saved)))
}

/// Stores a new transformation.
fn insert(
    state: &ApiState,
    name: String,
    code: String,
    env: Option<BTreeMap<String, String>>,
) -> ApiResult<TransformationObject> {
    let created = new_transformation(state, name, code, env.unwrap_or_default())?;
    state.store.save_transformation(&created)?;
    Ok(created)
}

/// A transformation not stored yet, its code checked. Its id derives from
/// its name, unless a renamed transformation holds that id already.
fn new_transformation(
    state: &ApiState,
    name: String,
    code: String,
    env: BTreeMap<String, String>,
) -> ApiResult<TransformationObject> {
    check_code(state, &name, &code)?;
    let mut id = named_id("trs", &name);
    if state.store.transformation(&id)?.is_some() {
        id = new_id("trs");
    }
    let now = now_ms();
    Ok(TransformationObject {
        id,
        name,
        code,
        env,
        created_at: now,
        updated_at: now,
    })
}

/// The id of the transformation a connection rule defines inline
/// (`{"type": "transformation", "transformation": {name, code, env}}`).
/// The reference has such a rule "define a new transformation" (L7716),
/// and names are unique: a new name is a new transformation, added to `new`
/// (stored by the caller once the connection is valid); a name already
/// taken with the same code and env is that transformation (a connection
/// sent again); with other code or env it is a conflict, rather than a
/// silent change to the connections already using it.
pub(super) fn inline_transformation_id(
    state: &ApiState,
    inline: TransformationInput,
    new: &mut Vec<TransformationObject>,
) -> ApiResult<String> {
    let inline = inline.checked()?;
    let (name, code) = inline.required()?;
    let env = inline.env.unwrap_or_default();
    let existing = match new.iter().find(|t| t.name == name) {
        Some(pending) => Some(pending.clone()),
        None => state.store.transformation_named(&name)?,
    };
    match existing {
        Some(same) if same.code == code && same.env == env => Ok(same.id),
        Some(other) => Err(ApiError::conflict(format!(
            "a transformation named \"{name}\" ({}) already exists with other code or env: \
             refer to it by transformation_id, or change it with PUT /transformations",
            other.id
        ))),
        None => {
            let created = new_transformation(state, name, code, env)?;
            let id = created.id.clone();
            new.push(created);
            Ok(id)
        }
    }
}

/// Applies a change (a new name, code or env) to a stored transformation.
fn change(
    state: &ApiState,
    mut transformation: TransformationObject,
    input: TransformationInput,
) -> ApiResult<TransformationObject> {
    if let Some(name) = input.name.filter(|n| *n != transformation.name) {
        if state.store.transformation_named(&name)?.is_some() {
            return Err(ApiError::conflict(format!(
                "a transformation named \"{name}\" already exists"
            )));
        }
        transformation.name = name;
    }
    if let Some(code) = input.code {
        check_code(state, &transformation.name, &code)?;
        transformation.code = code;
    }
    if let Some(env) = input.env {
        transformation.env = env;
    }
    transformation.updated_at = now_ms();
    state.store.save_transformation(&transformation)?;
    Ok(transformation)
}

fn lock(mutex: &Mutex<()>) -> MutexGuard<'_, ()> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[utoipa::path(get, path = "/2023-07-01/transformations/{id}", tag = "transformations", summary = "A transformation", params(("id" = String, Path, description = "trs_…")), responses((status = 200, description = "the transformation", body = TransformationView), (status = 404, description = "unknown", body = ErrorBody)), security(("api_key" = [])))]
pub async fn get(
    State(state): Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<TransformationView>> {
    blocking(move || {
        let transformation = state
            .store
            .transformation(&id)?
            .ok_or_else(|| ApiError::not_found("transformation", &id))?;
        Ok(Json(transformation_view(&state.team_id, &transformation)))
    })
    .await
}

/// `PUT /transformations/{id}`: a new name (the id stays), code or env,
/// applied to every connection using it.
#[utoipa::path(put, path = "/2023-07-01/transformations/{id}", tag = "transformations", summary = "A new name (the id stays), code or env, applied to every connection using it", params(("id" = String, Path, description = "trs_…")), request_body = TransformationInput, responses((status = 200, description = "the transformation", body = TransformationView), (status = 404, description = "unknown", body = ErrorBody), (status = 409, description = "the new name is taken", body = ErrorBody), (status = 422, description = "the code does not compile", body = ErrorBody), (status = 503, description = "every transformation worker is busy and the queue is full", body = ErrorBody)), security(("api_key" = [])))]
pub async fn update(
    State(state): Shared,
    Path(id): Path<String>,
    body: Result<Json<TransformationInput>, JsonRejection>,
) -> ApiResult<Json<TransformationView>> {
    let input = json_body(body)?.checked()?;
    let job_state = state.clone();
    let updated = blocking(move || {
        let state = &job_state;
        let _one_writer = lock(&state.object_updates);
        let transformation = state
            .store
            .transformation(&id)?
            .ok_or_else(|| ApiError::not_found("transformation", &id))?;
        change(state, transformation, input)
    })
    .await?;
    objects::rebuild(state.clone()).await?;
    Ok(Json(transformation_view(&state.team_id, &updated)))
}

#[utoipa::path(delete, path = "/2023-07-01/transformations/{id}", tag = "transformations", summary = "Delete an unused transformation", params(("id" = String, Path, description = "trs_…")), responses((status = 200, description = "deleted", body = Deleted), (status = 404, description = "unknown", body = ErrorBody), (status = 409, description = "still used", body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<Deleted>> {
    blocking(move || {
        let users: Vec<String> = state
            .store
            .api_objects()?
            .into_iter()
            .filter(|o| objects::uses_transformation(o, &id))
            .map(|o| o.name)
            .collect();
        if !users.is_empty() {
            return Err(ApiError::conflict(format!(
                "still used by connection(s) {}",
                users.join(", ")
            )));
        }
        if !state.store.delete_transformation(&id)? {
            return Err(ApiError::not_found("transformation", &id));
        }
        Ok(Json(Deleted { id }))
    })
    .await
}

/// A run as the reference shows it (`transformed_event_data` and
/// `original_event_data` only when one run is asked for), plus hookgate's
/// `request_id`, `event_id` and `error`.
#[derive(Serialize, ToSchema)]
pub struct ExecutionView {
    /// `exe_…`.
    id: String,
    /// The transformation that ran.
    transformation_id: String,
    team_id: String,
    /// The connection it ran for.
    webhook_id: String,
    /// The most severe level logged; fatal when the run failed.
    log_level: &'static str,
    /// What the code logged, in order.
    logs: Vec<ConsoleLine>,
    /// Always null: issues collect occurrences per connection, not per run.
    #[schema(required)]
    issue_id: Option<String>,
    /// The data the run was given (`edt_…`).
    original_event_data_id: String,
    /// The data the run made; null when it failed.
    #[schema(required)]
    transformed_event_data_id: Option<String>,
    /// The request the run was given.
    request_id: String,
    /// The event the run made.
    event_id: String,
    /// Why the run failed; null when it did not.
    error: Option<String>,
    created_at: String,
    updated_at: String,
}

pub(super) fn execution_view(team_id: &str, execution: &Execution) -> ExecutionView {
    let failed = execution.error.is_some();
    ExecutionView {
        id: execution.id.clone(),
        transformation_id: execution.transformation_id.clone(),
        team_id: team_id.to_string(),
        webhook_id: execution.connection_id.clone(),
        log_level: log_level(&execution.logs, failed),
        logs: console(&execution.logs),
        issue_id: None,
        original_event_data_id: event_data_id(&execution.request_id),
        // A failed run made no event: there is no transformed data.
        transformed_event_data_id: (!failed).then(|| event_data_id(&execution.event_id)),
        request_id: execution.request_id.clone(),
        event_id: execution.event_id.clone(),
        error: execution.error.clone(),
        created_at: iso(execution.created_at),
        updated_at: iso(execution.created_at),
    }
}

/// One run asked for by id: the run, with the data it was given and made.
#[derive(Serialize, ToSchema)]
pub struct ExecutionDetailView {
    #[serde(flatten)]
    execution: ExecutionView,
    /// The request the run was given; null once forgotten (retention).
    #[schema(value_type = Option<Object>, required)]
    original_event_data: Value,
    /// The event data the run made; null when it failed or once forgotten.
    #[schema(value_type = Option<Object>, required)]
    transformed_event_data: Value,
}

/// The filters of a transformation's runs: `log_level`, `webhook_id`,
/// `issue_id` (no run has one), `created_at[…]`.
fn execution_filter(query: &Query) -> ApiResult<impl Fn(&Execution) -> bool + Send + 'static> {
    let level = query.matcher("log_level");
    let webhook = query.matcher("webhook_id");
    let issue: Vec<String> = query
        .all("issue_id")
        .into_iter()
        .map(String::from)
        .collect();
    let created = query.date_range("created_at")?;
    Ok(move |execution: &Execution| {
        level(log_level(&execution.logs, execution.error.is_some()))
            && webhook(&execution.connection_id)
            && issue.is_empty()
            && created.contains(Some(execution.created_at))
    })
}

/// `GET /transformations/{id}/executions`: its runs, newest first.
/// Works for transformations declared in gateway.toml too (`trs_` + their name's id).
#[utoipa::path(get, path = "/2023-07-01/transformations/{id}/executions", tag = "transformations", summary = "Its runs with their logs, newest first, a page at a time", params(("id" = String, Path, description = "trs_…"), ("log_level" = Option<String>, Query, description = "debug, info, warn, error or fatal; or log_level[]"), ("webhook_id" = Option<String>, Query, description = "connection id(s)"), ("issue_id" = Option<String>, Query, description = "issue id(s)"), ("created_at[gte]" = Option<String>, Query, description = "ISO 8601; also gt, lte, lt"), ("order_by" = Option<String>, Query, description = "created_at (default) or webhook_id; or both, order_by[]=…"), ("dir" = Option<String>, Query, description = "asc or desc (default); dir[]=…: one per order_by key"), ("limit" = Option<String>, Query, description = "1-255, default 100"), ("next" = Option<String>, Query, description = "cursor"), ("prev" = Option<String>, Query, description = "cursor")), responses((status = 200, description = "{pagination, count, models}", body = Listing<ExecutionView>), (status = 422, description = "an unknown parameter", body = ErrorBody)), security(("api_key" = [])))]
pub async fn executions(
    State(state): Shared,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = Query::parse(raw.as_deref());
    let keep = execution_filter(&query)?;
    let page = store_page(&query, &EXECUTION_ORDER)?;
    query.refuse_unread()?;
    // Runs carry their logs: a page ends at the byte budget, as events do.
    let budget = state.config.load().limits.api_page_bytes;
    blocking(move || {
        let found = state.store.page_executions(&id, page.paging(), &keep)?;
        let answer = bounded_page(&page, found, budget, |execution| {
            Ok(value_of(execution_view(&state.team_id, execution)))
        })?;
        Ok(Json(answer))
    })
    .await
}

/// What runs sort by, one or both: `created_at` is the store's key order.
const EXECUTION_ORDER: [Key<Execution>; 2] = [
    Key {
        name: "created_at",
        read: id_time,
        indexed: true,
    },
    Key {
        name: "webhook_id",
        read: |execution| json!(execution.connection_id),
        indexed: false,
    },
];

/// A run's data as the reference shows it (L3629): the payload's fields and
/// `is_large_payload`, always false (a body is kept whole, however large).
fn run_data(payload: &Payload) -> Value {
    let mut data = views::data(payload);
    data["is_large_payload"] = json!(false);
    data
}

/// `GET /transformations/{id}/executions/{execution_id}`: one run, with the
/// data it was given and the data it made.
#[utoipa::path(get, path = "/2023-07-01/transformations/{id}/executions/{execution_id}", tag = "transformations", summary = "One run, with its input and output data", params(("id" = String, Path, description = "trs_…"), ("execution_id" = String, Path, description = "exe_…")), responses((status = 200, description = "the run", body = ExecutionDetailView), (status = 404, description = "unknown", body = ErrorBody)), security(("api_key" = [])))]
pub async fn execution(
    State(state): Shared,
    Path((id, execution_id)): Path<(String, String)>,
) -> ApiResult<Json<ExecutionDetailView>> {
    blocking(move || {
        let store = &state.store;
        let execution = store
            .execution(&id, &execution_id)?
            .ok_or_else(|| ApiError::not_found("execution", &execution_id))?;
        let original = store.request_payload(&execution.request_id)?;
        let transformed = match (&execution.error, store.event(&execution.event_id)?) {
            (None, Some(event)) => store.event_payload(&event)?,
            _ => None,
        };
        Ok(Json(ExecutionDetailView {
            execution: execution_view(&state.team_id, &execution),
            original_event_data: original.as_ref().map_or(Value::Null, run_data),
            transformed_event_data: transformed.as_ref().map_or(Value::Null, run_data),
        }))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logged(levels: &[&str]) -> Vec<LogEntry> {
        levels
            .iter()
            .map(|level| LogEntry {
                level: level.to_string(),
                message: String::new(),
            })
            .collect()
    }

    #[test]
    fn a_runs_level_is_the_most_severe_it_logged_and_fatal_when_it_failed() {
        assert_eq!(log_level(&[], false), "info");
        assert_eq!(log_level(&logged(&["debug"]), false), "debug");
        assert_eq!(log_level(&logged(&["log", "warn", "debug"]), false), "warn");
        assert_eq!(log_level(&logged(&["error", "info"]), false), "error");
        assert_eq!(log_level(&logged(&["debug"]), true), "fatal");
    }
}

//! `PUT /transformations/run`: try a transformation's code on a sample request,
//! exactly as the router would run it, and see the result and the logs.

use super::error::{
    checked_name, json_body, refuse_environment, unreadable_body, ApiError, ApiResult,
};
use super::query::{iso, Query};
use super::{blocking, objects, views, ApiState, Shared};
use crate::ids::{named_id, now_ms};
use crate::model::{Execution, TransformationObject};
use crate::pipeline::transform::{
    Admission, TransformError, TransformLimits, Transformation, WorkerPool,
};
use crate::pipeline::view::parse_query;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunTransformation {
    code: String,
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// `{headers, body, path, query}`; `parsed_query` is derived from `query` when absent.
    request: Value,
}

#[utoipa::path(put, path = "/2023-07-01/transformations/run", tag = "transformations", summary = "Run transformation code on a sample request", responses((status = 200, description = "the transformed request and logs"), (status = 422, description = "the script failed"), (status = 400, description = "a bad body"), (status = 503, description = "every transformation worker is busy and the queue is full")), security(("api_key" = [])))]
pub async fn run(
    State(state): Shared,
    body: Result<Json<RunTransformation>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(run) = body.map_err(unreadable_body)?;
    refuse_environment("env", run.env.values())?;
    let mut request = run.request;
    if !request.is_object() {
        return Err(ApiError::invalid(
            "request",
            "must be an object with headers, body, path and query",
        ));
    }
    if request.get("parsed_query").is_none() {
        request["parsed_query"] = parse_query(
            request
                .get("query")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        );
    }
    let limits = state.transform_limits.clone();
    let pool = state.config.load().transform_pool.clone();
    blocking(move || {
        let transformation = api_transformation(&pool, "run", &run.code, run.env, limits)?;
        let context = json!({ "connection": null });
        match transformation.run(&request, &context) {
            Ok(output) => Ok(Json(
                json!({ "request": output.request, "logs": output.logs }),
            )),
            Err(failure) if is_overload(&failure.error) => Err(overloaded(failure.error)),
            Err(failure) => Err(ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: format!("the transformation failed: {}", failure.error),
                data: json!({ "logs": failure.logs }),
            }),
        }
    })
    .await
}

/// The body of `POST /transformations` and `PUT /transformations/{id}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformationInput {
    name: Option<String>,
    code: Option<String>,
    env: Option<BTreeMap<String, String>>,
}

fn transformation_view(t: &TransformationObject) -> Value {
    let env = views::masked_values(&json!(t.env));
    json!({ "id": t.id, "name": t.name, "code": t.code, "env": env, "created_at": iso(t.created_at), "updated_at": iso(t.updated_at) })
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

#[utoipa::path(get, path = "/2023-07-01/transformations", tag = "transformations", summary = "Stored transformations", responses((status = 200, description = "the transformations")), security(("api_key" = [])))]
pub async fn list(State(state): Shared, RawQuery(raw): RawQuery) -> ApiResult<Json<Value>> {
    Query::parse(raw.as_deref()).refuse_unread()?;
    let store = state.store.clone();
    blocking(move || {
        let models: Vec<Value> = store
            .transformations()?
            .iter()
            .map(transformation_view)
            .collect();
        Ok(Json(json!({ "count": models.len(), "models": models })))
    })
    .await
}

#[utoipa::path(post, path = "/2023-07-01/transformations", tag = "transformations", summary = "Create a transformation: name, code, env", responses((status = 200, description = "the transformation"), (status = 409, description = "the name is taken"), (status = 422, description = "the code does not compile"), (status = 503, description = "every transformation worker is busy and the queue is full")), security(("api_key" = [])))]
pub async fn create(
    State(state): Shared,
    body: Result<Json<TransformationInput>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let input = json_body(body)?;
    let name = input
        .name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("name", "is required"))?;
    checked_name("name", &name)?;
    refuse_environment("env", input.env.iter().flat_map(BTreeMap::values))?;
    let code = input
        .code
        .ok_or_else(|| ApiError::invalid("code", "is required"))?;
    blocking(move || {
        check_code(&state, &name, &code)?;
        let id = named_id("trs", &name);
        if state.store.transformation(&id)?.is_some() {
            return Err(ApiError::conflict(format!(
                "a transformation named \"{name}\" already exists"
            )));
        }
        let now = now_ms();
        let created = TransformationObject {
            id,
            name,
            code,
            env: input.env.unwrap_or_default(),
            created_at: now,
            updated_at: now,
        };
        state.store.save_transformation(&created)?;
        Ok(Json(transformation_view(&created)))
    })
    .await
}

#[utoipa::path(get, path = "/2023-07-01/transformations/{id}", tag = "transformations", summary = "A transformation", params(("id" = String, Path, description = "trs_…")), responses((status = 200, description = "the transformation"), (status = 404, description = "unknown")), security(("api_key" = [])))]
pub async fn get(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let store = state.store.clone();
    blocking(move || {
        Ok(Json(transformation_view(
            &store
                .transformation(&id)?
                .ok_or_else(|| ApiError::not_found("transformation", &id))?,
        )))
    })
    .await
}

/// `PUT /transformations/{id}`: new code or env, applied to every connection using it.
#[utoipa::path(put, path = "/2023-07-01/transformations/{id}", tag = "transformations", summary = "New code or env, applied to every connection using it", params(("id" = String, Path, description = "trs_…")), responses((status = 200, description = "the transformation"), (status = 404, description = "unknown"), (status = 422, description = "the code does not compile"), (status = 503, description = "every transformation worker is busy and the queue is full")), security(("api_key" = [])))]
pub async fn update(
    State(state): Shared,
    Path(id): Path<String>,
    body: Result<Json<TransformationInput>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let input = json_body(body)?;
    refuse_environment("env", input.env.iter().flat_map(BTreeMap::values))?;
    let store_state = state.clone();
    let updated = blocking(move || {
        let store = &store_state.store;
        let mut transformation = store
            .transformation(&id)?
            .ok_or_else(|| ApiError::not_found("transformation", &id))?;
        if input
            .name
            .as_ref()
            .is_some_and(|n| *n != transformation.name)
        {
            return Err(ApiError::invalid(
                "name",
                "cannot change (the id derives from it)",
            ));
        }
        if let Some(code) = input.code {
            check_code(&store_state, &transformation.name, &code)?;
            transformation.code = code;
        }
        if let Some(env) = input.env {
            transformation.env = env;
        }
        transformation.updated_at = now_ms();
        store.save_transformation(&transformation)?;
        Ok(transformation)
    })
    .await?;
    objects::rebuild(state).await?;
    Ok(Json(transformation_view(&updated)))
}

#[utoipa::path(delete, path = "/2023-07-01/transformations/{id}", tag = "transformations", summary = "Delete an unused transformation", params(("id" = String, Path, description = "trs_…")), responses((status = 200, description = "deleted"), (status = 404, description = "unknown"), (status = 409, description = "still used")), security(("api_key" = [])))]
pub async fn delete(State(state): Shared, Path(id): Path<String>) -> ApiResult<Json<Value>> {
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
        Ok(Json(json!({ "id": id })))
    })
    .await
}

pub(super) fn execution_view(execution: &Execution) -> Value {
    json!({
        "id": execution.id,
        "transformation_id": execution.transformation_id,
        "webhook_id": execution.connection_id,
        "request_id": execution.request_id,
        "event_id": execution.event_id,
        "logs": execution.logs,
        "error": execution.error,
        "created_at": iso(execution.created_at),
    })
}

/// `GET /transformations/{id}/executions`: its runs, newest first (`limit`).
/// Works for transformations declared in gateway.toml too (`trs_` + their name's id).
#[utoipa::path(get, path = "/2023-07-01/transformations/{id}/executions", tag = "transformations", summary = "Its runs with their logs, newest first", params(("id" = String, Path, description = "trs_…"), ("limit" = Option<String>, Query, description = "1-250")), responses((status = 200, description = "the runs")), security(("api_key" = [])))]
pub async fn executions(
    State(state): Shared,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = Query::parse(raw.as_deref());
    let limit = query.page()?.limit;
    query.refuse_unread()?;
    blocking(move || {
        let models: Vec<Value> = state
            .store
            .executions(&id, limit)?
            .iter()
            .map(execution_view)
            .collect();
        Ok(Json(json!({ "count": models.len(), "models": models })))
    })
    .await
}

#[utoipa::path(get, path = "/2023-07-01/transformations/{id}/executions/{execution_id}", tag = "transformations", summary = "One run", params(("id" = String, Path, description = "trs_…"), ("execution_id" = String, Path, description = "exe_…")), responses((status = 200, description = "the run"), (status = 404, description = "unknown")), security(("api_key" = [])))]
pub async fn execution(
    State(state): Shared,
    Path((id, execution_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let execution = state
            .store
            .execution(&id, &execution_id)?
            .ok_or_else(|| ApiError::not_found("execution", &execution_id))?;
        Ok(Json(execution_view(&execution)))
    })
    .await
}

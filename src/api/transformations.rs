//! `PUT /transformations/run`: try a transformation's code on a sample request,
//! exactly as the router would run it, and see the result and the logs.

use super::error::{ApiError, ApiResult};
use super::{blocking, Shared};
use crate::pipeline::transform::Transformation;
use crate::pipeline::view::parse_query;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunTransformation {
    code: String,
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// `{headers, body, path, query}`; `parsed_query` is derived from `query` when absent.
    request: Value,
}

#[utoipa::path(put, path = "/2023-07-01/transformations/run", tag = "transformations", summary = "Run transformation code on a sample request", responses((status = 200, description = "the transformed request and logs"), (status = 422, description = "the script failed"), (status = 400, description = "a bad body")), security(("api_key" = [])))]
pub async fn run(
    State(state): Shared,
    body: Result<Json<RunTransformation>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(run) = body.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("invalid body: {}", e.body_text()),
        )
    })?;
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
    blocking(move || {
        let transformation = Transformation::new("run", &run.code, run.env, limits, 1)
            .map_err(|e| ApiError::invalid("code", e.to_string()))?;
        let context = json!({ "connection": null });
        match transformation.run(&request, &context) {
            Ok(output) => Ok(Json(
                json!({ "request": output.request, "logs": output.logs }),
            )),
            Err(failure) => Err(ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: format!("the transformation failed: {}", failure.error),
                data: json!({ "logs": failure.logs }),
            }),
        }
    })
    .await
}

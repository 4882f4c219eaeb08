//! The API's error answer, Hookdeck's shape:
//! `{ "handled": true, "status": N, "code": "NOT_FOUND", "message": "...", "data": {...} }`,
//! `code` being the status's name in capitals (`UNPROCESSABLE_ENTITY`).

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub data: Value,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            data: json!({}),
        }
    }

    pub fn not_found(kind: &str, id: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, format!("no {kind} with id \"{id}\""))
    }

    /// A bad query or body value, named in `data.field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        let message = message.into();
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            data: json!({ "field": field }),
            message: format!("{field}: {message}"),
        }
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }
}

/// A field only gateway.toml may use (see `config::api_objects`).
impl From<crate::config::OperatorOnly> for ApiError {
    fn from(refused: crate::config::OperatorOnly) -> ApiError {
        ApiError::invalid(&refused.field, refused.message)
    }
}

/// Refuses a value that would read the server's environment (`env:NAME`):
/// that is for the operator's own file, never for what the API is given.
pub fn refuse_environment(
    field: &str,
    values: impl IntoIterator<Item = impl AsRef<str>>,
) -> ApiResult<()> {
    if values
        .into_iter()
        .any(|value| crate::secret::names_environment(value.as_ref()))
    {
        return Err(ApiError::invalid(field, crate::secret::ENVIRONMENT_REFUSED));
    }
    Ok(())
}

/// Refuses a name over `names::MAX_NAME_CHARS`.
pub fn checked_name(field: &str, name: &str) -> ApiResult<()> {
    crate::names::check_length(name).map_err(|e| ApiError::invalid(field, e))
}

/// A name that must say something: not blank, and bounded as `checked_name`.
pub fn checked_present_name(field: &str, name: &str) -> ApiResult<()> {
    if name.trim().is_empty() {
        return Err(ApiError::invalid(field, "must not be empty"));
    }
    checked_name(field, name)
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> ApiError {
        tracing::error!(%error, "store error while answering the API");
        // Unavailable passes (a database down, a full disk): worth a retry.
        let status = match error {
            crate::store::StoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, "the store could not answer; see the gateway's log")
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(error: tokio::task::JoinError) -> ApiError {
        tracing::error!(%error, "API store task failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; see the gateway's log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = super::schema::ErrorBody {
            handled: true,
            status: self.status.as_u16(),
            code: status_code_name(self.status),
            message: self.message,
            data: self.data,
        };
        (self.status, Json(body)).into_response()
    }
}

/// `422` → `UNPROCESSABLE_ENTITY`: the status's reason phrase as a constant.
fn status_code_name(status: StatusCode) -> String {
    status
        .canonical_reason()
        .unwrap_or("UNKNOWN")
        .chars()
        .filter_map(|c| match c {
            ' ' | '-' => Some('_'),
            '\'' => None,
            c => Some(c.to_ascii_uppercase()),
        })
        .collect()
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A request body that is valid JSON of the expected shape, or a 422 naming
/// `body` and saying what is wrong with it.
pub fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    body.map(|Json(value)| value)
        .map_err(|e| match too_large(&e) {
            Some(error) => error,
            None => ApiError::invalid("body", e.body_text()),
        })
}

/// The 413 for a body over the API's size limit.
fn too_large(rejection: &JsonRejection) -> Option<ApiError> {
    (rejection.status() == StatusCode::PAYLOAD_TOO_LARGE).then(|| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body: {}", rejection.body_text()),
        )
    })
}

/// The 400 for a body that could not be read as JSON at all; JSON of the
/// wrong shape is a 422 naming the field (`request.headers: invalid type…`).
pub fn unreadable_body(rejection: JsonRejection) -> ApiError {
    if let Some(error) = too_large(&rejection) {
        return error;
    }
    if let JsonRejection::JsonDataError(wrong_shape) = &rejection {
        return ApiError::invalid("body", wrong_shape.body_text());
    }
    ApiError::new(
        StatusCode::BAD_REQUEST,
        format!("invalid body: {}", rejection.body_text()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn an_unavailable_store_is_a_503_and_a_broken_one_a_500() {
        let down = ApiError::from(StoreError::Unavailable("database down".into()));
        assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
        let corrupt = serde_json::from_slice::<Value>(b"{").unwrap_err();
        let broken = ApiError::from(StoreError::Corrupt(corrupt));
        assert_eq!(broken.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}

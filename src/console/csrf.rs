//! The CSRF check: every POST must echo its session's token, as the form
//! field `csrf` (plain forms) or the `X-CSRF-Token` header (htmx sends it
//! from the page's `hx-headers`). `SameSite=Strict` already keeps the cookie
//! off other sites' requests; the token also covers browsers that ignore it.

use crate::api::error::ApiError;
use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

pub const FIELD: &str = "csrf";
pub const HEADER: &str = "x-csrf-token";

/// The largest form body read to look for the token (a transformation's code
/// is the largest thing a console form sends).
const FORM_LIMIT_BYTES: usize = 1 << 20;

/// `request` as it came when it carries `expected`, else a `403`.
pub async fn checked(request: Request, expected: &str) -> Result<Request, Response> {
    let from_header = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    if let Some(token) = from_header {
        return matches(&token, expected)
            .then_some(request)
            .ok_or_else(refused);
    }
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, FORM_LIMIT_BYTES).await.map_err(|_| {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response()
    })?;
    let token = url::form_urlencoded::parse(&bytes)
        .find(|(key, _)| key == FIELD)
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    if !matches(&token, expected) {
        return Err(refused());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

pub fn matches(token: &str, expected: &str) -> bool {
    bool::from(token.as_bytes().ct_eq(expected.as_bytes()))
}

pub fn refused() -> Response {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "this change needs the console's CSRF token (reload the page)",
    )
    .into_response()
}

//! `POST /v1/applications/{id}/portal-sessions`: a single-use, short-lived
//! link that signs a browser into the application's customer portal.

use super::applications::application_of;
use super::error::{ApiError, ApiResult};
use super::query::iso;
use super::{blocking, ApiState, Shared};
use crate::console::over_tls;
use crate::console::portal::{Grant, SIGN_IN_PATH};
use crate::ids::now_ms;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::ToSchema;

/// How long a link stays valid when `expires_in` is not given (the references' hour).
const DEFAULT_EXPIRES_IN: u64 = 3600;
/// Links are for opening now: at most a day.
const MAX_EXPIRES_IN: u64 = 24 * 3600;

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NewPortalSession {
    /// Seconds the link stays valid (1–86400, default 3600).
    expires_in: Option<u64>,
    /// What the session may do beyond looking: `read_only` refuses every change.
    #[serde(default)]
    features: Vec<PortalFeature>,
}

#[derive(Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum PortalFeature {
    ReadOnly,
}

/// A sign-in link to an application's customer portal.
#[derive(Serialize, ToSchema)]
pub(crate) struct PortalSessionView {
    /// Open it (or put it in an iframe's `src`) once: it signs the browser in.
    url: String,
    /// The link's secret part.
    token: String,
    /// ISO 8601: the link does not open after this.
    expires_at: String,
    expires_in: u64,
}

#[utoipa::path(post, path = "/v1/applications/{id}/portal-sessions", tag = "outbound", summary = "A single-use sign-in link to the application's customer portal: expires_in (seconds, default 3600), features ([\"read_only\"])", params(("id" = String, Path, description = "app_…")), request_body(content = Option<NewPortalSession>), responses((status = 201, description = "the link", body = PortalSessionView), (status = 404, description = "unknown application", body = super::schema::ErrorBody), (status = 422, description = "invalid", body = super::schema::ErrorBody)), security(("api_key" = [])))]
pub async fn create(
    State(state): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<PortalSessionView>)> {
    // The body is optional: none at all means every default.
    let input: NewPortalSession = match body.is_empty() {
        true => NewPortalSession::default(),
        false => {
            serde_json::from_slice(&body).map_err(|e| ApiError::invalid("body", e.to_string()))?
        }
    };
    let expires_in = input.expires_in.unwrap_or(DEFAULT_EXPIRES_IN);
    if !(1..=MAX_EXPIRES_IN).contains(&expires_in) {
        return Err(ApiError::invalid(
            "expires_in",
            format!("must be between 1 and {MAX_EXPIRES_IN} seconds"),
        ));
    }
    let store = state.store.clone();
    let application_id = blocking(move || Ok(application_of(&store, &id)?.id)).await?;
    let grant = Grant {
        application_id,
        read_only: input.features.contains(&PortalFeature::ReadOnly),
    };
    let token = state
        .portal_links
        .issue(grant, Duration::from_secs(expires_in));
    let view = PortalSessionView {
        url: format!("{}{SIGN_IN_PATH}/{token}", origin(&state, &headers)),
        token,
        expires_at: iso(now_ms() + expires_in * 1000),
        expires_in,
    };
    Ok((StatusCode::CREATED, Json(view)))
}

/// Where customers reach the API, which also serves the portal:
/// `server.api_public_url` when set (the product may call the API on an
/// internal address), else where the caller reached it.
fn origin(state: &ApiState, headers: &HeaderMap) -> String {
    if let Some(public) = state.config.load().server.api_public_base() {
        return public;
    }
    let scheme = if over_tls(headers) { "https" } else { "http" };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    format!("{scheme}://{host}")
}

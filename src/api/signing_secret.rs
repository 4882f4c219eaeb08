//! `/workspace/signing-secret`: the secret deliveries are signed with
//! (`x-hookdeck-signature`, see `signing::workspace_secret`). Hookdeck's API
//! has no endpoint for its project secret (its dashboard shows and rotates
//! it), so these are hookgate's own: read it, set it, rotate it.
//!
//! The stored secret is shown whole: a receiver needs it, and it is the
//! API's own, like an endpoint's secret. It is kept in `data_dir`, or in the
//! database for every node of a cluster (`set_in: database`). One set in gateway.toml
//! (`[delivery] signing_secret`) is the operator's: shown masked, and
//! changed in the file only (409 here).

use super::error::{json_body, ApiError, ApiResult};
use super::query::iso;
use super::schema::ErrorBody;
use super::{blocking, ApiState, Shared};
use crate::ids::now_ms;
use crate::signing::workspace_secret::{
    ChangeError, KeepError, WorkspaceSecret, DEFAULT_OVERLAP_MS,
};
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// The body of `PUT`: the new secret, and how long the current one keeps
/// signing beside it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSecret {
    /// 16-256 visible ASCII characters.
    secret: String,
    /// How long the current secret also signs (default 86400000; 0: stops now).
    #[serde(default = "default_overlap")]
    previous_secret_valid_ms: u64,
}

/// The body of `POST …/rotate` (optional).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// How long the current secret also signs (default 86400000; 0: stops now).
    #[serde(default = "default_overlap")]
    previous_secret_valid_ms: u64,
}

fn default_overlap() -> u64 {
    DEFAULT_OVERLAP_MS
}

/// `GET /workspace/signing-secret`.
#[utoipa::path(get, path = "/2023-07-01/workspace/signing-secret", tag = "configuration", summary = "The secret deliveries are signed with (x-hookdeck-signature): {secret, set_in: data_dir | database | gateway.toml, previous_secret, previous_secret_expires_at, updated_at}; masked when set in gateway.toml", responses((status = 200, description = "the signing secret", body = SigningSecretView)), security(("api_key" = [])))]
pub async fn get(State(state): Shared) -> Json<SigningSecretView> {
    Json(view(&state))
}

/// `PUT /workspace/signing-secret`: signs with the given secret from the next
/// attempt on.
#[utoipa::path(put, path = "/2023-07-01/workspace/signing-secret", tag = "configuration", summary = "Set the signing secret: body {secret (16-256 visible ASCII characters), previous_secret_valid_ms (default 86400000: the old secret also signs, in x-hookdeck-signature-2, that long; 0: stops now)}", request_body = NewSecret, responses((status = 200, description = "the signing secret", body = SigningSecretView), (status = 409, description = "set in gateway.toml", body = ErrorBody), (status = 422, description = "a bad secret or window", body = ErrorBody)), security(("api_key" = [])))]
pub async fn set(
    State(state): Shared,
    body: Result<Json<NewSecret>, JsonRejection>,
) -> ApiResult<Json<SigningSecretView>> {
    let NewSecret {
        secret,
        previous_secret_valid_ms,
    } = json_body(body)?;
    change(state, move |workspace, now| {
        workspace.replace(secret, previous_secret_valid_ms, now)
    })
    .await
}

/// `POST /workspace/signing-secret/rotate`: a newly generated secret.
#[utoipa::path(post, path = "/2023-07-01/workspace/signing-secret/rotate", tag = "configuration", summary = "Rotate the signing secret to a generated one: body optional, {previous_secret_valid_ms} as for PUT", request_body(content = Option<Rotation>, description = "optional"), responses((status = 200, description = "the signing secret", body = SigningSecretView), (status = 409, description = "set in gateway.toml", body = ErrorBody), (status = 422, description = "a bad window", body = ErrorBody)), security(("api_key" = [])))]
pub async fn rotate(
    State(state): Shared,
    body: Result<Json<Rotation>, JsonRejection>,
) -> ApiResult<Json<SigningSecretView>> {
    let overlap = match body {
        // No JSON body: the defaults.
        Err(JsonRejection::MissingJsonContentType(_)) => DEFAULT_OVERLAP_MS,
        body => json_body(body)?.previous_secret_valid_ms,
    };
    change(state, move |workspace, now| workspace.rotate(overlap, now)).await
}

/// Applies a change (it writes a file or the database) and answers the secret as it now is.
async fn change(
    state: Arc<ApiState>,
    change: impl FnOnce(&WorkspaceSecret, u64) -> Result<(), ChangeError> + Send + 'static,
) -> ApiResult<Json<SigningSecretView>> {
    let workspace = state.signing_secret.clone();
    let now = now_ms();
    blocking(move || change(&workspace, now).map_err(refused)).await?;
    Ok(Json(view(&state)))
}

fn refused(error: ChangeError) -> ApiError {
    match error {
        ChangeError::Configured => ApiError::conflict(error.to_string()),
        ChangeError::Invalid { field, message } => ApiError::invalid(field, message),
        // A database down answers 503, as any store call does.
        ChangeError::Keep(KeepError::Store(error)) => ApiError::from(error),
        ChangeError::Keep(KeepError::Io(_)) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
        }
    }
}

/// The secret deliveries are signed with, as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct SigningSecretView {
    /// The current secret; masked when set in gateway.toml.
    secret: String,
    /// Where it is kept: `data_dir` or, in a cluster, `database` (both set
    /// through the API), or `gateway.toml`.
    set_in: &'static str,
    /// The secret replaced, while it still signs beside the current one.
    previous_secret: Option<String>,
    /// When the previous secret stops signing.
    previous_secret_expires_at: Option<String>,
    /// When it was last set; null when set in gateway.toml.
    updated_at: Option<String>,
    team_id: String,
}

fn view(state: &ApiState) -> SigningSecretView {
    let workspace = &state.signing_secret;
    let now = now_ms();
    if workspace.is_configured() {
        return SigningSecretView {
            secret: crate::secret::masked(&workspace.keys(now).current),
            set_in: "gateway.toml",
            previous_secret: None,
            previous_secret_expires_at: None,
            updated_at: None,
            team_id: state.team_id.clone(),
        };
    }
    let stored = workspace.stored();
    let previous = stored.overlapping(now);
    SigningSecretView {
        secret: stored.secret.clone(),
        set_in: workspace.home().name(),
        previous_secret: previous.map(|p| p.secret.clone()),
        previous_secret_expires_at: previous.map(|p| iso(p.until)),
        updated_at: Some(iso(stored.updated_at)),
        team_id: state.team_id.clone(),
    }
}

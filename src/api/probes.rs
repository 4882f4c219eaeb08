//! `GET /healthz` and `GET /readyz` on the API listener, without a key,
//! answered as on the ingress (see `crate::health`).

use super::error::ApiError;
use super::{ApiState, Shared};
use crate::health::{ProbeAnswer, HEALTHZ, READYZ};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router as Routes;
use std::sync::Arc;

pub fn routes() -> Routes<Arc<ApiState>> {
    Routes::new()
        .route(HEALTHZ, get(healthz))
        .route(READYZ, get(readyz))
}

/// `GET /healthz`: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", summary = "Liveness: the process answers (no API key; also on the ingress)", responses((status = 200, description = "{\"status\": \"ok\"}", body = ProbeAnswer)))]
pub async fn healthz(State(state): Shared) -> Response {
    probe(&state, HEALTHZ)
}

/// `GET /readyz`: a request sent now would be taken and routed in time.
#[utoipa::path(get, path = "/readyz", tag = "operations", summary = "Readiness: store, database (cluster), journal, free disk, router lag, not stopping (no API key; also on the ingress)", responses((status = 200, description = "{\"status\": \"ready\"}", body = ProbeAnswer), (status = 503, description = "not ready, with every failing check in reasons", body = ProbeAnswer)))]
pub async fn readyz(State(state): Shared) -> Response {
    probe(&state, READYZ)
}

fn probe(state: &ApiState, path: &str) -> Response {
    match state.readiness.probe(path) {
        Some((status, body)) => (status, axum::Json(body)).into_response(),
        None => ApiError::new(StatusCode::NOT_FOUND, "no such endpoint").into_response(),
    }
}

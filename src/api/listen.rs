//! `hookgate listen`'s side of the API: a CLI destination's stream of events
//! to deliver (server-sent events), and the report of each one's outcome,
//! which becomes the event's attempt (`delivery::cli`).

use super::error::{json_body, ApiError, ApiResult};
use super::schema::ErrorBody;
use super::Shared;
use crate::delivery::cli::{CliDelivery, CliOutcome, UnknownDelivery};
use crate::model::Destination;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use utoipa::ToSchema;

/// The stream's first message: the listener is connected and may be handed
/// events from now on.
#[derive(Serialize, ToSchema)]
pub struct CliReady {
    pub destination_id: String,
    pub cli_path: Option<String>,
    /// This session's id (`cli_…`), which the attempts it delivers and
    /// their events carry as `cli_id`.
    pub cli_id: String,
}

/// The answer to a report taken.
#[derive(Serialize, ToSchema)]
pub struct CliReported {
    pub delivery_id: String,
}

/// How often an idle stream carries a comment: a listener that is gone is
/// noticed (and its delivery handed to another) when writing to it fails.
const KEEP_ALIVE: Duration = Duration::from_secs(2);

/// `GET /destinations/{id}/listen`: connects a listener to a CLI destination.
#[utoipa::path(get, path = "/2023-07-01/destinations/{id}/listen", tag = "configuration", summary = "Listen to a CLI destination (hookgate listen): a text/event-stream whose first event, `ready`, is a CliReady, then one `delivery` event (a CliDelivery) at a time; report each with POST /destinations/{id}/listen/{delivery_id} to get the next. Events wait HOLD while no listener is connected (released when one connects); several listeners share them. The attempts a listener delivers, and their events, carry its session's cli_id.", params(("id" = String, Path, description = "des_… or its name")), responses((status = 200, description = "the stream", content_type = "text/event-stream", body = CliDelivery), (status = 404, description = "unknown", body = ErrorBody), (status = 422, description = "not a CLI destination (it has a url)", body = ErrorBody)), security(("api_key" = [])))]
pub async fn stream(
    State(state): Shared,
    Path(id): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, axum::Error>>>> {
    let destination = cli_destination(&state, &id)?;
    let (session, deliveries) = state.scheduler.cli_listeners().connect(&destination.id);
    // Its events may have waited for a listener: its lane releases them.
    state.scheduler.wake(&destination.id);
    let ready = CliReady {
        destination_id: destination.id.clone(),
        cli_path: destination.cli_path.clone(),
        cli_id: session.cli_id().to_string(),
    };
    let ready =
        futures_util::stream::once(async move { Event::default().event("ready").json_data(ready) });
    // The session lives as long as the stream: dropped, the listener is gone.
    let handed = futures_util::stream::unfold(
        (deliveries, session),
        |(mut deliveries, session)| async move {
            let delivery = deliveries.recv().await?;
            let event = Event::default().event("delivery").json_data(delivery);
            Some((event, (deliveries, session)))
        },
    );
    let mut stopped = state.stopped.clone();
    // A graceful stop is not held open by listeners (they connect again).
    let stop = async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let events = ready.chain(handed).take_until(stop);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// `POST /destinations/{id}/listen/{delivery_id}`: what the local server answered.
#[utoipa::path(post, path = "/2023-07-01/destinations/{id}/listen/{delivery_id}", tag = "configuration", summary = "Report what a listener's local server answered to a delivery: recorded as the event's attempt (retries, issues and metrics as for any attempt). Reports spend none of the key's rate limit", params(("id" = String, Path, description = "des_… or its name"), ("delivery_id" = String, Path, description = "the delivery's id (dlv_…)")), request_body = CliOutcome, responses((status = 202, description = "taken; the attempt is being recorded", body = CliReported), (status = 404, description = "no delivery of that id waits for a report (reported, or its stream ended)", body = ErrorBody), (status = 422, description = "not an outcome", body = ErrorBody)), security(("api_key" = [])))]
pub async fn report(
    State(state): Shared,
    Path((id, delivery_id)): Path<(String, String)>,
    body: Result<Json<CliOutcome>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<CliReported>)> {
    let destination = cli_destination(&state, &id)?;
    let outcome = json_body(body)?;
    let listeners = state.scheduler.cli_listeners();
    match listeners.report(&destination.id, &delivery_id, outcome) {
        Ok(()) => Ok((StatusCode::ACCEPTED, Json(CliReported { delivery_id }))),
        Err(UnknownDelivery) => Err(ApiError::not_found("delivery", &delivery_id)),
    }
}

/// The destination `id` (or name), which must be a CLI destination.
fn cli_destination(state: &super::ApiState, id: &str) -> ApiResult<Arc<Destination>> {
    let catalog = state.catalog.load();
    let destination = catalog
        .destination_by_id_or_name(id)
        .ok_or_else(|| ApiError::not_found("destination", id))?;
    match destination.url {
        None => Ok(destination.clone()),
        Some(_) => Err(ApiError::invalid(
            "id",
            "not a CLI destination: it has a url (give it only a cli_path)",
        )),
    }
}

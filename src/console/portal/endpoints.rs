//! The application's endpoints: add (the API's URL checks and address
//! policy), edit, pause, disable, delete, rotate the secret (shown once),
//! subscribed event types, send a test event, success rate and latency.

use super::event_types;
use super::{
    answer, deliveries, written_answer, Failed, Kind, Mine, Portal, Posted, Shared, Visiting, NAV,
};
use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::ApiState;
use crate::api::{endpoints, webhook_jobs};
use crate::console::layout::{post_button, token_field};
use crate::console::outbound::{not_stored, rotation_confirmation, secret_once};
use crate::console::rates::endpoint_charts;
use crate::console::show::{self, text};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use maud::{html, Markup};
use serde_json::{json, Value};
use std::sync::Arc;

const PAGE: &str = NAV[0].0;

pub fn routes() -> Router<Arc<Portal>> {
    Router::new()
        .route("/endpoints", get(list).post(create))
        .route("/endpoints/{id}", get(detail).post(edit))
        .route("/endpoints/{id}/status", post(set_status))
        .route("/endpoints/{id}/delete", post(delete))
        .route(
            "/endpoints/{id}/rotate-secret",
            get(confirm_rotation).post(rotate),
        )
        .route("/endpoints/{id}/test", post(send_test))
}

fn path_of(id: &str) -> String {
    format!("{PAGE}/{id}")
}

/// An endpoint a route names.
pub(super) struct Endpoint;

impl Kind for Endpoint {
    const NAME: &'static str = "endpoint";
    const APPLICATION: &'static str = "application_id";

    async fn read(api: State<Arc<ApiState>>, id: String) -> ApiResult<Value> {
        answer(endpoints::get(api, Path(id)).await)
    }
}

type MyEndpoint = Mine<Endpoint>;

/// A form's fields as the API's JSON input, or the 422 of one it cannot take.
fn input<T: serde::de::DeserializeOwned>(fields: Value) -> Result<Json<T>, ApiError> {
    serde_json::from_value(fields)
        .map(Json)
        .map_err(|e| ApiError::invalid("form", e.to_string()))
}

async fn list(
    State(portal): Shared,
    Extension(visit): Visiting,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, Failed> {
    // Only the page number comes from the address: the application is the session's.
    let page = url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == "page")
        .and_then(|(_, page)| page.parse::<u64>().ok())
        .unwrap_or(1);
    let query = format!(
        "application_id={}&per_page=100&page={page}",
        visit.application_id()
    );
    let listing = answer(endpoints::list(portal.api(), RawQuery(Some(query))).await)?;
    let types = event_types::of_application(&portal, &visit).await?;
    let content = html! {
        h1 { "Endpoints" }
        div.table-wrap {
            table #endpoints {
                (show::column_heads(&["Endpoint", "Status", "Circuit", "Event types"]))
                tbody {
                    @for endpoint in listing["data"].as_array().into_iter().flatten() {
                        tr {
                            td.mono { a href=(path_of(&text(&endpoint["id"]))) { (text(&endpoint["url"])) } }
                            td { (text(&endpoint["status"])) }
                            td { (text(&endpoint["circuit_state"])) }
                            td { (subscriptions(&endpoint["subscribed_events"])) }
                        }
                    }
                }
            }
        }
        (show::number_pager(PAGE, &format!("page={page}"), &listing["pagination"]))
        @if let Some(csrf) = visit.may_change() {
            h2 { "Add an endpoint" }
            (endpoint_form(PAGE, csrf, &Value::Null, &types, "Add endpoint"))
        }
    };
    Ok(portal.page(&visit, PAGE, "Endpoints", content))
}

fn subscriptions(names: &Value) -> Markup {
    let names: Vec<String> = names.as_array().into_iter().flatten().map(text).collect();
    html! {
        @if names.is_empty() { "every type" } @else { span.mono { (names.join(", ")) } }
    }
}

/// The form adding (`endpoint` null) or changing an endpoint: URL,
/// description and the event types it receives (none ticked: every one).
fn endpoint_form(
    action: &str,
    csrf: &str,
    endpoint: &Value,
    types: &[Value],
    label: &str,
) -> Markup {
    let subscribed: Vec<String> = endpoint["subscribed_events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    let mut names: Vec<String> = types.iter().map(|t| text(&t["name"])).collect();
    names.extend(
        subscribed
            .iter()
            .filter(|n| !names.contains(n))
            .cloned()
            .collect::<Vec<_>>(),
    );
    html! {
        form.endpoint method="post" action=(action) {
            (token_field(csrf))
            label { "URL" input type="url" name="url" required value=[endpoint["url"].as_str()]; }
            label { "Description" input type="text" name="description" value=[endpoint["description"].as_str()]; }
            fieldset {
                legend { "Event types (none ticked: every type)" }
                @for name in &names {
                    label.check {
                        input type="checkbox" name="subscribed_events" value=(name) checked[subscribed.contains(name)];
                        span.mono { (name) }
                    }
                }
            }
            button.primary type="submit" { (label) }
        }
    }
}

/// Adds the endpoint and shows its secret, this once.
async fn create(
    State(portal): Shared,
    Extension(visit): Visiting,
    body: Bytes,
) -> Result<Response, Failed> {
    let form = Posted::of(&body);
    let fields = json!({
        "application_id": visit.application_id(),
        "url": form.one("url").unwrap_or_default(),
        "description": form.one("description"),
        "subscribed_events": form.all("subscribed_events"),
    });
    let created = endpoints::create(portal.api(), Ok(input(fields)?)).await;
    let endpoint = answer(created.map(|(_, endpoint)| endpoint))?;
    let back = path_of(&text(&endpoint["id"]));
    let content = secret_once(&endpoint, "Added ", (&back, "To the endpoint"));
    Ok(not_stored(portal.page(
        &visit,
        PAGE,
        "Endpoint added",
        content,
    )))
}

async fn detail(
    State(portal): Shared,
    Extension(visit): Visiting,
    endpoint: MyEndpoint,
) -> Result<Html<String>, Failed> {
    let (id, endpoint) = (endpoint.id, endpoint.object);
    let types = event_types::of_application(&portal, &visit).await?;
    let recent = deliveries::of_endpoint(&portal, &id).await?;
    let subscribed = &endpoint["subscribed_events"];
    let receives = |t: &&Value| {
        let names = subscribed.as_array().map_or(&[][..], Vec::as_slice);
        names.is_empty() || names.contains(&t["name"])
    };
    let received: Vec<&Value> = types.iter().filter(receives).collect();
    let here = path_of(&id);
    let content = html! {
        h1 { "Endpoint " span.mono { (text(&endpoint["url"])) } }
        (show::facts(&[
            ("Status", show::status(&endpoint["status"])),
            ("Circuit", html! { (text(&endpoint["circuit_state"])) }),
            ("Description", html! { (text(&endpoint["description"])) }),
            ("Signing secret", html! { span.mono { (text(&endpoint["secret"])) } }),
            ("Event types", subscriptions(subscribed)),
        ]))
        h2 { "Last hour" }
        (endpoint_charts(portal.api.metrics.rates(), &id))
        @if let Some(csrf) = visit.may_change() {
            h2 { "Send a test event" }
            form.test-event method="post" action={(here) "/test"} {
                (token_field(csrf))
                label { "Event type"
                    select name="event_type" required {
                        @for event_type in &received { option { (text(&event_type["name"])) } }
                    }
                }
                button.primary type="submit" { "Send test event" }
            }
            h2 { "Change" }
            (endpoint_form(&here, csrf, &endpoint, &types, "Save"))
            div.actions {
                @for (status, label) in [("active", "Activate"), ("paused", "Pause"), ("disabled", "Disable")] {
                    @if endpoint["status"] != status {
                        form.inline method="post" action={(here) "/status"} {
                            (token_field(csrf))
                            input type="hidden" name="status" value=(status);
                            button type="submit" { (label) }
                        }
                    }
                }
                a href={(here) "/rotate-secret"} { "Rotate secret…" }
                (post_button(&format!("{here}/delete"), csrf, "Delete endpoint"))
            }
        }
        h2 { "Event types it receives" }
        (event_types::table(&received))
        h2 { "Recent deliveries" }
        (deliveries::table(&recent))
    };
    Ok(portal.page(&visit, PAGE, "Endpoint", content))
}

async fn edit(
    State(portal): Shared,
    endpoint: MyEndpoint,
    body: Bytes,
) -> Result<Redirect, Failed> {
    let id = endpoint.id;
    let form = Posted::of(&body);
    let fields = json!({
        "url": form.one("url").unwrap_or_default(),
        "description": form.one("description").unwrap_or_default(),
        "subscribed_events": form.all("subscribed_events"),
    });
    change(&portal, &id, fields).await
}

async fn set_status(
    State(portal): Shared,
    endpoint: MyEndpoint,
    body: Bytes,
) -> Result<Redirect, Failed> {
    let id = endpoint.id;
    let status = Posted::of(&body)
        .one("status")
        .unwrap_or_default()
        .to_string();
    change(&portal, &id, json!({ "status": status })).await
}

/// Changes the endpoint through the API, then back to its page.
async fn change(portal: &Portal, id: &str, fields: Value) -> Result<Redirect, Failed> {
    answer(endpoints::update(portal.api(), Path(id.to_string()), Ok(input(fields)?)).await)?;
    Ok(Redirect::to(&path_of(id)))
}

async fn delete(State(portal): Shared, endpoint: MyEndpoint) -> Result<Redirect, Failed> {
    let id = endpoint.id;
    answer(endpoints::delete(portal.api(), Path(id)).await)?;
    Ok(Redirect::to(PAGE))
}

async fn confirm_rotation(
    State(portal): Shared,
    Extension(visit): Visiting,
    endpoint: MyEndpoint,
) -> Result<Html<String>, Failed> {
    let (id, endpoint) = (endpoint.id, endpoint.object);
    let csrf = visit.may_change().ok_or_else(read_only)?;
    let here = path_of(&id);
    let content = rotation_confirmation(&endpoint, &format!("{here}/rotate-secret"), &here, csrf);
    Ok(portal.page(&visit, PAGE, "Rotate secret", content))
}

fn read_only() -> Failed {
    Failed::from(ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "this portal is read-only",
    ))
}

async fn rotate(
    State(portal): Shared,
    Extension(visit): Visiting,
    endpoint: MyEndpoint,
) -> Result<Response, Failed> {
    let id = endpoint.id;
    let endpoint = answer(endpoints::rotate_secret(portal.api(), Path(id.clone()), None).await)?;
    let content = secret_once(
        &endpoint,
        "New secret of ",
        (&path_of(&id), "Back to the endpoint"),
    );
    Ok(not_stored(portal.page(&visit, PAGE, "New secret", content)))
}

/// Sends a test event of the chosen type to this endpoint alone (a webhook
/// job limited to it), then shows its delivery. The type must be one the
/// application declares; the payload is its schema's first example, when
/// it has one.
async fn send_test(
    State(portal): Shared,
    Extension(visit): Visiting,
    endpoint: MyEndpoint,
    body: Bytes,
) -> Result<Response, Failed> {
    let id = endpoint.id;
    let form = Posted::of(&body);
    let event_type = form.one("event_type").unwrap_or_default().to_string();
    let types = event_types::of_application(&portal, &visit).await?;
    // Only the application's declared types: the ones the form offers.
    let declared = types
        .iter()
        .find(|t| t["name"] == event_type)
        .ok_or_else(|| ApiError::invalid("event_type", "not an event type of this application"))?;
    let example = declared["schema"]["examples"].get(0).cloned();
    let fields = json!({
        "application_id": visit.application_id(),
        "event_type": event_type,
        "payload": example.unwrap_or_else(|| json!({ "test": true })),
        "endpoint_ids": [id],
    });
    let job = match webhook_jobs::create(portal.api().0, None, Ok(input(fields)?)).await {
        Ok(job) => written_answer(Ok(job)).await?,
        Err(refused) => return Ok(refused),
    };
    let delivery = job["deliveries"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|delivery| delivery["endpoint_id"] == id.as_str())
        .ok_or_else(|| {
            ApiError::invalid(
                "event_type",
                "this endpoint does not receive this event type",
            )
        })?;
    Ok(Redirect::to(&deliveries::path_of(&text(&delivery["id"]))).into_response())
}

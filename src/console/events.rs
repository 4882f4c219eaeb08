//! Events: the list with its filters, bulk retry of a filter, and one event
//! with what it delivered and every attempt, with Retry and Mute.

use super::choices::{self, Kind};
use super::layout::post_button;
use super::show::{self, text, Chosen};
use super::{answer, error_notice, status_of, Console, Failed, Filter, Shared, Signed, NAV};
use crate::api::error::ApiError;
use crate::api::{bulk, catalog, outbound};
use crate::model::EventStatus;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use maud::{html, Markup};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const PAGE: &str = NAV[1].0;
const BULK: &str = "/console/events/bulk-retry";

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/events", get(list))
        .route("/events/bulk-retry", get(bulk_plan).post(bulk_start))
        .route("/events/bulk-retry/{id}", get(bulk_progress))
        .route("/events/{id}", get(detail))
        .route("/events/{id}/retry", post(retry))
        .route("/events/{id}/mute", post(mute))
}

async fn list(
    State(console): Shared,
    Extension(session): Signed,
    Filter(query): Filter,
    RawQuery(asked): RawQuery,
) -> (StatusCode, Html<String>) {
    let listing = answer(outbound::list_events(console.api(), RawQuery(Some(query.clone()))).await);
    let content = html! {
        h1 { "Events" }
        (filters(&console, &Chosen::of(&asked.unwrap_or_default())).await)
        @match &listing {
            Ok(listing) => {
                (table(listing, &Names::of(&console, listing).await))
                (show::pager(PAGE, &query, listing))
                form method="get" action=(BULK) {
                    @for (key, value) in filter_pairs(&query) { input type="hidden" name=(key) value=(value); }
                    button type="submit" { "Bulk retry every event of this filter…" }
                }
            }
            Err(error) => (error_notice(error)),
        }
    };
    (
        status_of(&listing),
        console.page(&session, PAGE, "Events", content),
    )
}

/// The names of the connections and destinations a list of events names
/// by id (two list calls for the page, not one per row).
pub(super) struct Names(BTreeMap<String, String>);

impl Names {
    pub(super) async fn of(console: &Console, listing: &Value) -> Names {
        let events = listing["models"].as_array().into_iter().flatten();
        let ids: BTreeSet<String> = events
            .flat_map(|event| [text(&event["webhook_id"]), text(&event["destination_id"])])
            .collect();
        let query = ids_query(&ids);
        let connections =
            catalog::list_connections(console.api(), RawQuery(Some(query.clone()))).await;
        let destinations = catalog::list_destinations(console.api(), RawQuery(Some(query))).await;
        let found = [answer(connections), answer(destinations)];
        let objects = found
            .iter()
            .flatten()
            .flat_map(|listing| listing["models"].as_array().cloned().unwrap_or_default());
        Names(
            objects
                .map(|object| (text(&object["id"]), text(&object["name"])))
                .collect(),
        )
    }

    /// The object's name, else its id (an object deleted since).
    fn of_id(&self, id: &Value) -> String {
        let id = text(id);
        self.0.get(&id).cloned().unwrap_or(id)
    }
}

/// The API query for the objects of these ids (a page holds at most 255).
fn ids_query(ids: &BTreeSet<String>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("limit", "255");
    for id in ids {
        query.append_pair("id[]", id);
    }
    query.finish()
}

/// A table of events (a list answer's `models`), their connection and
/// destination by name.
pub(super) fn table(listing: &Value, names: &Names) -> Markup {
    html! {
        div.table-wrap {
            table {
                (show::column_heads(&["Created", "Status", "Connection", "Destination", "Attempts", "Response", "Error"]))
                tbody {
                    @for event in listing["models"].as_array().into_iter().flatten() {
                        tr {
                            td { a href={(PAGE) "/" (text(&event["id"]))} { (show::time(&event["created_at"])) } }
                            td { (show::status(&event["status"])) }
                            td title=(text(&event["webhook_id"])) { (names.of_id(&event["webhook_id"])) }
                            td title=(text(&event["destination_id"])) { (names.of_id(&event["destination_id"])) }
                            td { (text(&event["attempts"])) }
                            td { (text(&event["response_status"])) }
                            td { (text(&event["error_code"])) }
                        }
                    }
                }
            }
        }
    }
}

/// The filter form, showing the filter the page was `chosen` with.
async fn filters(console: &Console, chosen: &Chosen) -> Markup {
    let statuses = EventStatus::ALL.map(EventStatus::as_str);
    html! {
        form.filters method="get" action=(PAGE) role="search" {
            (show::value_choice("Status", "status", &statuses, chosen))
            (choices::choice(console, "Connection", Kind::Connection, chosen).await)
            (choices::choice(console, "Destination", Kind::Destination, chosen).await)
            (show::text_input("Response status", "response_status", "number", chosen))
            (show::time_search_and_submit(chosen))
        }
    }
}

/// The filters of a list query, without its paging (a bulk retry covers
/// the whole filter, not one page).
fn filter_pairs(query: &str) -> Vec<(String, String)> {
    const PAGING: [&str; 5] = ["next", "prev", "limit", "order_by", "dir"];
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .filter(|(key, _)| !PAGING.contains(&key.as_str()))
        .collect()
}

/// Before a bulk retry: how many events the filter selects (the API's plan),
/// and the button that starts it.
async fn bulk_plan(
    State(console): Shared,
    Extension(session): Signed,
    Filter(query): Filter,
) -> Result<Html<String>, Failed> {
    let pairs = filter_pairs(&query);
    let filter = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    let plan = answer(
        bulk::plan(
            console.api(),
            Path("events".into()),
            RawQuery(Some(filter.clone())),
        )
        .await,
    )?;
    let content = html! {
        h1 { "Bulk retry" }
        p #bulk-plan { "This filter selects " strong { (text(&plan["estimated_count"])) } " events, retried in " (text(&plan["estimated_batch"])) " batches." }
        (show::facts(&pairs.iter().map(|(k, v)| (k.as_str(), html! { span.mono { (v) } })).collect::<Vec<_>>()))
        form.actions method="post" action=(BULK) {
            (super::layout::token_field(&session.csrf))
            @for (key, value) in &pairs { input type="hidden" name=(key) value=(value); }
            button.primary type="submit" { "Retry them" }
            a href={(PAGE) "?" (filter)} { "Cancel" }
        }
    };
    Ok(console.page(&session, PAGE, "Bulk retry", content))
}

/// Starts the bulk retry the plan page showed, then shows its progress.
async fn bulk_start(State(console): Shared, body: String) -> Result<Response, Failed> {
    let filters: Map<String, Value> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .filter(|(key, value)| key != super::csrf::FIELD && !value.is_empty())
        .map(|(key, value)| (key, Value::String(value)))
        .collect();
    let input = serde_json::from_value(json!({ "query": filters }))
        .map_err(|e| ApiError::invalid("query", e.to_string()))?;
    let job = answer(bulk::create(console.api(), Path("events".into()), Some(Json(input))).await)?;
    Ok(Redirect::to(&format!("{BULK}/{}", text(&job["id"]))).into_response())
}

/// A bulk retry's progress; the page reloads its figures every second
/// (through htmx) until the job is done.
async fn bulk_progress(
    State(console): Shared,
    Extension(session): Signed,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Html<String>, Failed> {
    let job = answer(bulk::get(console.api(), Path(("events".into(), id.clone()))).await)?;
    let running = job["in_progress"] == true;
    let figures = html! {
        div #bulk-progress hx-get={(BULK) "/" (id)} hx-trigger=[running.then_some("every 1s")] hx-select="#bulk-progress" hx-swap="outerHTML" {
            (show::facts(&[
                ("Status", show::status(&job["status"])),
                ("Selected", html! { (text(&job["estimated_count"])) }),
                ("Retried", html! { (text(&job["completed_count"])) }),
                ("Failed", html! { (text(&job["failed_count"])) }),
                ("Progress", html! { progress max="1" value=(text(&job["progress"])) {} " " (text(&job["progress"])) }),
            ]))
        }
    };
    if headers.contains_key("hx-request") {
        return Ok(Html(figures.into_string()));
    }
    let content = html! {
        h1 { "Bulk retry " span.mono { (id) } }
        (figures)
        p { a href=(PAGE) { "Back to events" } }
    };
    Ok(console.page(&session, PAGE, "Bulk retry", content))
}

async fn detail(
    State(console): Shared,
    Extension(session): Signed,
    Path(id): Path<String>,
) -> Result<Html<String>, Failed> {
    let event = answer(outbound::get_event(console.api(), Path(id.clone())).await)?;
    let attempts_query = format!("event_id={id}&dir=asc&limit=255");
    let attempts =
        answer(outbound::list_attempts(console.api(), RawQuery(Some(attempts_query))).await)?;
    let origin = Origin::of(&console, &event).await;
    let data = &event["data"];
    let actions = format!("{PAGE}/{id}");
    let content = html! {
        h1 { "Event " span.mono { (id) } }
        div.actions {
            (post_button(&format!("{actions}/retry"), &session.csrf, "Retry"))
            @if event["muted"] != true {
                (post_button(&format!("{actions}/mute"), &session.csrf, "Mute"))
            }
        }
        (show::facts(&[
            ("Status", show::status(&event["status"])),
            ("Request", html! { a.mono href={"/console/requests/" (text(&event["request_id"]))} { (text(&event["request_id"])) } }),
            ("Source", show::named(&origin.source, &event["source_id"], &format!("{}?source_id={}", NAV[0].0, text(&event["source_id"])))),
            ("Connection", show::named(&origin.connection, &event["webhook_id"], &format!("{}?id={}", NAV[2].0, text(&event["webhook_id"])))),
            ("Destination", show::named(&origin.destination, &event["destination_id"], &format!("{PAGE}?destination_id={}", text(&event["destination_id"])))),
            ("Attempts", html! { (text(&event["attempts"])) }),
            ("Next attempt", show::time(&event["next_attempt_at"])),
            ("Automatic retries", html! { (if event["muted"] == true { "muted" } else { "on" }) }),
        ]))
        h2 { "Attempts" }
        (timeline(&attempts))
        h2 { "Delivered request" }
        (show::facts(&[
            ("Method", html! { span.mono { (text(&data["method"])) } }),
            ("Path", html! { span.mono { (text(&data["path"])) } }),
        ]))
        (show::headers(&data["headers"]))
        (show::body(&data["body"]))
    };
    Ok(console.page(&session, PAGE, "Event", content))
}

/// Where an event came from and goes: the API's views of its source,
/// connection and destination (null for one deleted since).
struct Origin {
    source: Value,
    connection: Value,
    destination: Value,
}

impl Origin {
    async fn of(console: &Console, event: &Value) -> Origin {
        let id = |field: &str| Path(text(&event[field]));
        let source = catalog::get_source(console.api(), id("source_id"), RawQuery(None)).await;
        let connection = catalog::get_connection(console.api(), id("webhook_id")).await;
        let destination = catalog::get_destination(console.api(), id("destination_id")).await;
        Origin {
            source: answer(source).unwrap_or_default(),
            connection: answer(connection).unwrap_or_default(),
            destination: answer(destination).unwrap_or_default(),
        }
    }
}

/// Every attempt, oldest first: what triggered it, what came back, how long it took.
fn timeline(attempts: &Value) -> Markup {
    let attempts: Vec<&Value> = attempts["models"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    html! {
        @if attempts.is_empty() { p.muted { "No attempt yet." } }
        ol.timeline #attempts {
            @for attempt in attempts {
                li {
                    strong { "#" (text(&attempt["attempt_number"])) } " "
                    (show::status(&attempt["status"])) " · "
                    (text(&attempt["trigger"])) " · "
                    (show::time(&attempt["created_at"]))
                    (show::facts(&[
                        ("Response status", html! { (text(&attempt["response_status"])) }),
                        ("Latency", html! { @if attempt["response_latency"].is_null() { "—" } @else { (text(&attempt["response_latency"])) " ms" } }),
                        ("Error code", html! { (text(&attempt["error_code"])) }),
                        ("URL", html! { span.mono { (text(&attempt["http_method"])) " " (text(&attempt["requested_url"])) } }),
                    ]))
                    @if !attempt["body"].is_null() {
                        details { summary { "Response body" } (show::body(&attempt["body"])) }
                    }
                }
            }
        }
    }
}

async fn retry(State(console): Shared, Path(id): Path<String>) -> Result<Redirect, Failed> {
    answer(outbound::retry_event(console.api(), Path(id.clone())).await)?;
    Ok(Redirect::to(&format!("{PAGE}/{id}")))
}

async fn mute(State(console): Shared, Path(id): Path<String>) -> Result<Redirect, Failed> {
    answer(outbound::mute_event(console.api(), Path(id.clone())).await)?;
    Ok(Redirect::to(&format!("{PAGE}/{id}")))
}

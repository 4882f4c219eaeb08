//! The application's deliveries: filtered by status, event type, endpoint
//! and time; one delivery with every attempt; retry one, or every failed
//! one the filter shows.

use super::{
    answer, event_types, Failed, Kind, Mine, Portal, Posted, Shared, Visit, Visiting, NAV,
};
use crate::api::error::ApiResult;
use crate::api::ApiState;
use crate::api::{endpoints, webhook_deliveries};
use crate::console::outbound_jobs::delivery_section;
use crate::console::show::{self, text, Chosen};
use crate::console::{api_query, error_notice, layout::token_field};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use axum::{Extension, Router};
use maud::{html, Markup};
use serde_json::{json, Map, Value};
use std::sync::Arc;

const PAGE: &str = NAV[2].0;

/// The most deliveries one list page shows (the API's largest page).
const SHOWN: usize = 100;

/// How many failed deliveries one "retry every failed" click retries at most.
const RETRIED_AT_ONCE: usize = 10_000;

/// The filter fields of the list (also posted by "Retry failed").
const FIELDS: [&str; 5] = ["status", "event_type", "endpoint", "from", "to"];

pub fn routes() -> Router<Arc<Portal>> {
    Router::new()
        .route("/deliveries", get(list))
        .route("/deliveries/retry-failed", post(retry_failed))
        .route("/deliveries/{id}", get(detail))
        .route("/deliveries/{id}/retry", post(retry))
}

pub(super) fn path_of(id: &str) -> String {
    format!("{PAGE}/{id}")
}

/// The endpoint's latest deliveries (the API's list answer).
pub(super) async fn of_endpoint(portal: &Portal, endpoint: &str) -> Result<Value, Failed> {
    let query = format!("subscription_id={endpoint}&limit=20");
    Ok(answer(
        webhook_deliveries::list(portal.api(), RawQuery(Some(query))).await,
    )?)
}

/// The API query for the page's filter: always this application's only.
fn api_filter(application_id: &str, chosen: &Chosen, status: Option<&str>) -> String {
    let mut filter = Map::new();
    filter.insert("applicationId".into(), json!(application_id));
    if let Some(event_type) = chosen.get("event_type") {
        filter.insert("eventType".into(), json!(event_type));
    }
    let mut created = Map::new();
    if let Some(from) = chosen.get("from") {
        created.insert("gte".into(), json!(utc_bound(from, ":00.000Z")));
    }
    if let Some(to) = chosen.get("to") {
        created.insert("lte".into(), json!(utc_bound(to, ":59.999Z")));
    }
    if !created.is_empty() {
        filter.insert("createdAt".into(), Value::Object(created));
    }
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("limit", &SHOWN.to_string());
    query.append_pair("filter", &Value::Object(filter).to_string());
    if let Some(status) = status.or(chosen.get("status")) {
        query.append_pair("status", status);
    }
    if let Some(endpoint) = chosen.get("endpoint") {
        query.append_pair("subscription_id", endpoint);
    }
    // The console's cursor names, the deliveries API's cursors.
    for (page, api) in [("next", "after"), ("prev", "before")] {
        if let Some(cursor) = chosen.get(page) {
            query.append_pair(api, cursor);
        }
    }
    query.finish()
}

/// The deliveries API's `pageInfo` as the console's pager reads a list.
fn as_pagination(listing: &Value) -> Value {
    let page = &listing["pageInfo"];
    let cursor = |more: &str, at: &str| match page[more].as_bool() {
        Some(true) => page[at].clone(),
        _ => Value::Null,
    };
    json!({ "pagination": {
        "next": cursor("hasNextPage", "endCursor"),
        "prev": cursor("hasPreviousPage", "startCursor"),
    } })
}

/// A `datetime-local` minute (`2026-12-04T11:05`) as the ISO time its
/// minute starts or ends, comparable with the deliveries' `createdAt`.
fn utc_bound(minute: &str, seconds: &str) -> String {
    match minute.len() {
        16 => format!("{minute}{seconds}"),
        _ => minute.to_string(),
    }
}

async fn list(
    State(portal): Shared,
    Extension(visit): Visiting,
    RawQuery(raw): RawQuery,
) -> Result<(StatusCode, Html<String>), Failed> {
    let query = api_query(raw.as_deref());
    let chosen = Chosen::of(&query);
    let api = api_filter(visit.application_id(), &chosen, None);
    let listing = answer(webhook_deliveries::list(portal.api(), RawQuery(Some(api))).await);
    let content = html! {
        h1 { "Deliveries" }
        (filters(&portal, &visit, &chosen).await?)
        @match &listing {
            Ok(listing) => {
                (table(listing))
                (show::pager(PAGE, &query, &as_pagination(listing)))
                @if let Some(csrf) = visit.may_change() {
                    form.actions method="post" action={(PAGE) "/retry-failed"} {
                        (token_field(csrf))
                        @for field in FIELDS {
                            @if let Some(value) = chosen.get(field) { input type="hidden" name=(field) value=(value); }
                        }
                        button type="submit" { "Retry every failed delivery of this filter" }
                    }
                }
            }
            Err(error) => (error_notice(error)),
        }
    };
    let status = listing.as_ref().err().map_or(StatusCode::OK, |e| e.status);
    Ok((status, portal.page(&visit, PAGE, "Deliveries", content)))
}

async fn filters(portal: &Portal, visit: &Visit, chosen: &Chosen) -> Result<Markup, Failed> {
    let types = event_types::of_application(portal, visit).await?;
    let query = format!("application_id={}&per_page=100", visit.application_id());
    let endpoints = answer(endpoints::list(portal.api(), RawQuery(Some(query))).await)?;
    let type_names: Vec<String> = types.iter().map(|t| text(&t["name"])).collect();
    let type_names: Vec<&str> = type_names.iter().map(String::as_str).collect();
    let endpoint_options = endpoints["data"].as_array().into_iter().flatten();
    let endpoint_options = endpoint_options.map(|e| (text(&e["id"]), text(&e["url"])));
    Ok(html! {
        form.filters method="get" action=(PAGE) role="search" {
            (show::value_choice("Status", "status", &["pending", "retrying", "completed", "failed"], chosen))
            (show::value_choice("Event type", "event_type", &type_names, chosen))
            (show::choice("Endpoint", "endpoint", endpoint_options, chosen))
            (show::text_input("From (UTC)", "from", "datetime-local", chosen))
            (show::text_input("To (UTC)", "to", "datetime-local", chosen))
            button type="submit" { "Filter" }
        }
    })
}

/// Deliveries (a list answer of the deliveries API), newest first.
pub(super) fn table(listing: &Value) -> Markup {
    html! {
        div.table-wrap {
            table #deliveries {
                (show::column_heads(&["Created", "Endpoint", "Event type", "Status", "Attempts", "Last response"]))
                tbody {
                    @for delivery in listing["data"].as_array().into_iter().flatten() {
                        tr {
                            td { a href=(path_of(&text(&delivery["id"]))) { (show::time(&delivery["createdAt"])) } }
                            td.mono { (text(&delivery["url"])) }
                            td.mono { (text(&delivery["eventType"])) }
                            td { (show::status(&delivery["status"])) }
                            td { (text(&delivery["attemptCount"])) }
                            td { (text(&delivery["lastStatusCode"])) }
                        }
                    }
                }
            }
        }
    }
}

/// A delivery a route names.
struct Delivery;

impl Kind for Delivery {
    const NAME: &'static str = "delivery";
    const APPLICATION: &'static str = "applicationId";

    async fn read(api: State<Arc<ApiState>>, id: String) -> ApiResult<Value> {
        answer(webhook_deliveries::get_one(api, Path(id)).await)
    }
}

async fn detail(
    State(portal): Shared,
    Extension(visit): Visiting,
    delivery: Mine<Delivery>,
) -> Result<Html<String>, Failed> {
    let (id, delivery) = (delivery.id, delivery.object);
    let here = path_of(&id);
    let retry = format!("{here}/retry");
    // Until it settles, the delivery refreshes itself, so a test event's
    // attempt shows as it happens.
    let settled = matches!(delivery["status"].as_str(), Some("completed" | "failed"));
    let poll = (!settled).then_some(here.as_str());
    let content = html! {
        h1 { "Delivery " span.mono { (id) } }
        (show::facts(&[
            ("Event type", html! { span.mono { (text(&delivery["eventType"])) } }),
            ("Created", show::time(&delivery["createdAt"])),
        ]))
        div #delivery hx-get=[poll] hx-trigger=[poll.map(|_| "every 1s")] hx-select="#delivery" hx-swap="outerHTML" {
            (delivery_section(&delivery, visit.may_change().map(|csrf| (retry.as_str(), csrf))))
        }
        h2 { "Payload" }
        (show::body(&delivery["payload"]))
    };
    Ok(portal.page(&visit, PAGE, "Delivery", content))
}

async fn retry(State(portal): Shared, delivery: Mine<Delivery>) -> Result<Redirect, Failed> {
    let id = delivery.id;
    answer(webhook_deliveries::retry(portal.api(), Path(id.clone())).await)?;
    Ok(Redirect::to(&path_of(&id)))
}

/// Retries every failed delivery the posted filter selects, page after page
/// of the API's list (at most `RETRIED_AT_ONCE`: another click takes the
/// rest), then back to the list with that filter.
async fn retry_failed(
    State(portal): Shared,
    Extension(visit): Visiting,
    body: Bytes,
) -> Result<Redirect, Failed> {
    let form = Posted::of(&body);
    let kept = FIELDS
        .iter()
        .filter_map(|field| Some((*field, form.one(field)?)));
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(kept)
        .finish();
    let failed_ones = api_filter(visit.application_id(), &Chosen::of(&query), Some("failed"));
    let mut after = String::new();
    for _ in 0..RETRIED_AT_ONCE / SHOWN {
        let api = format!("{failed_ones}{after}");
        let failed = answer(webhook_deliveries::list(portal.api(), RawQuery(Some(api))).await)?;
        for delivery in failed["data"].as_array().into_iter().flatten() {
            let id = Path(text(&delivery["id"]));
            answer(webhook_deliveries::retry(portal.api(), id).await)?;
        }
        let page = &failed["pageInfo"];
        match (page["hasNextPage"].as_bool(), page["endCursor"].as_str()) {
            (Some(true), Some(cursor)) => after = format!("&after={cursor}"),
            _ => break,
        }
    }
    Ok(Redirect::to(&format!("{PAGE}?{query}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_filter_is_always_the_applications_and_minutes_become_bounds() {
        let chosen =
            Chosen::of("event_type=invoice.paid&from=2026-12-04T11:05&to=2026-12-04T11:06");
        let query = api_filter("app_1", &chosen, Some("failed"));
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let filter: Value = serde_json::from_str(&pairs[1].1).unwrap();
        assert_eq!(
            filter,
            json!({
                "applicationId": "app_1",
                "eventType": "invoice.paid",
                "createdAt": {"gte": "2026-12-04T11:05:00.000Z", "lte": "2026-12-04T11:06:59.999Z"}
            })
        );
        assert_eq!(pairs[2], ("status".to_string(), "failed".to_string()));
    }
}

//! Requests: the live list with its filters, and one request with what it became.

use super::choices::{self, Kind};
use super::show::{self, text, Chosen};
use super::{
    answer, error_notice, events, status_of, Console, Failed, Filter, Shared, Signed, NAV,
};
use crate::api::inbound;
use crate::model::RejectionCause;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as Sse_Event, KeepAlive, Sse};
use axum::response::Html;
use axum::routing::get;
use axum::{Extension, Router};
use futures_util::{Stream, StreamExt};
use maud::{html, Markup};
use serde_json::Value;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

const PAGE: &str = NAV[0].0;

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/requests", get(list))
        .route("/requests/rows", get(rows))
        .route("/requests/live", get(live))
        .route("/requests/{id}", get(detail))
}

async fn list(
    State(console): Shared,
    Extension(session): Signed,
    Filter(query): Filter,
    RawQuery(asked): RawQuery,
) -> (StatusCode, Html<String>) {
    let listing = listing(&console, &query).await;
    let content = html! {
        h1 { "Requests" }
        (filters(&console, &Chosen::of(&asked.unwrap_or_default())).await)
        @match &listing {
            Ok(listing) => {
                (live_rows(&query, listing))
                (show::pager(PAGE, &query, listing))
            }
            Err(error) => (error_notice(error)),
        }
    };
    (
        status_of(&listing),
        console.page(&session, PAGE, "Requests", content),
    )
}

/// The API's list of requests for the page's filter.
async fn listing(console: &Console, query: &str) -> Result<Value, crate::api::error::ApiError> {
    answer(inbound::list_requests(console.api(), RawQuery(Some(query.to_string()))).await)
}

/// The stream announcing new requests (`live`).
const LIVE: &str = "/console/requests/live";

/// The rows, refreshed from `/requests/rows` whenever a request arrives, but
/// only on the first page: further pages hold older requests, and rows
/// moving under the reader there would lose their place. There, a banner
/// counts what arrived instead, with a link to the newest.
fn live_rows(query: &str, listing: &Value) -> Markup {
    let first_page = show::first_page(query);
    let on_first_page = first_page == query;
    let rows_url = format!("{PAGE}/rows?{query}");
    html! {
        @if !on_first_page {
            p.notice #news role="status" hidden data-news=(LIVE) {
                span.count {} " since this page opened. "
                a href={(PAGE) "?" (first_page)} { "Show the newest" }
            }
        }
        div.table-wrap {
            table {
                caption.muted { "Newest first. New requests appear as they arrive on the first page." }
                (show::column_heads(&["Received", "Source", "Status", "Verified", "Events", "Ignored"]))
                tbody #request-rows data-live=[on_first_page.then_some(LIVE)] data-rows=(rows_url) {
                    (request_rows(listing))
                }
            }
        }
    }
}

/// The rows alone, for the live refresh.
async fn rows(State(console): Shared, Filter(query): Filter) -> (StatusCode, Html<String>) {
    match listing(&console, &query).await {
        Ok(listing) => (StatusCode::OK, Html(request_rows(&listing).into_string())),
        Err(error) => {
            let row = html! { tr { td colspan="6" { (error_notice(&error)) } } };
            (error.status, Html(row.into_string()))
        }
    }
}

fn request_rows(listing: &Value) -> Markup {
    html! {
        @for request in listing["models"].as_array().into_iter().flatten() {
            tr {
                td { a href={(PAGE) "/" (text(&request["id"]))} { (show::time(&request["created_at"])) } }
                td { (text(&request["source_name"])) }
                td {
                    (show::status(&request["status"]))
                    @if !request["rejection_cause"].is_null() { " " span.muted { (text(&request["rejection_cause"])) } }
                }
                td { (if request["verified"] == true { "yes" } else { "no" }) }
                td { (text(&request["events_count"])) }
                td { (text(&request["ignored_count"])) }
            }
        }
    }
}

/// The filter form, showing the filter the page was `chosen` with.
async fn filters(console: &Console, chosen: &Chosen) -> Markup {
    let causes = RejectionCause::ALL.map(RejectionCause::as_str);
    html! {
        form.filters method="get" action=(PAGE) role="search" {
            (choices::choice(console, "Source", Kind::Source, chosen).await)
            (show::value_choice("Status", "status", &["accepted", "rejected"], chosen))
            (show::value_choice("Rejection cause", "rejection_cause", &causes, chosen))
            (show::time_search_and_submit(chosen))
        }
    }
}

/// A stream announcing each request as it is routed (or recorded as
/// rejected): the page then fetches its rows again, filtered as it is.
async fn live(State(console): Shared) -> Sse<impl Stream<Item = Result<Sse_Event, Infallible>>> {
    let feed = console.api.store.subscribe_routed();
    let mut stopped = console.stopped.clone();
    let announcements = futures_util::stream::unfold(feed, |mut feed| async move {
        match feed.recv().await {
            Ok(id) => Some((Ok(Sse_Event::default().event("new").data(id)), feed)),
            // Missed some: one announcement refreshes for all of them.
            Err(RecvError::Lagged(_)) => {
                Some((Ok(Sse_Event::default().event("new").data("")), feed))
            }
            Err(RecvError::Closed) => None,
        }
    });
    let stop = async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    Sse::new(announcements.take_until(stop)).keep_alive(KeepAlive::default())
}

async fn detail(
    State(console): Shared,
    Extension(session): Signed,
    Path(id): Path<String>,
) -> Result<Html<String>, Failed> {
    let request = answer(inbound::get_request(console.api(), Path(id.clone())).await)?;
    let made =
        answer(inbound::request_events(console.api(), Path(id.clone()), RawQuery(None)).await)?;
    let ignored = answer(
        inbound::request_ignored_events(console.api(), Path(id.clone()), RawQuery(None)).await,
    )?;
    let data = &request["data"];
    let content = html! {
        h1 { "Request " span.mono { (id) } }
        (show::facts(&[
            ("Received", show::time(&request["created_at"])),
            ("Source", html! { (text(&request["source_name"])) }),
            ("Method", html! { span.mono { (text(&data["method"])) } }),
            ("Path", html! { span.mono { (text(&data["path"])) } }),
            ("Query", html! { span.mono { (text(&data["query"])) } }),
            ("Status", show::status(&request["status"])),
            ("Rejection cause", html! { (text(&request["rejection_cause"])) }),
            ("Verification", html! { (if request["verified"] == true { "verified" } else { "not verified" }) }),
            ("Body size", html! { (text(&request["body_bytes"])) " bytes" @if request["body_truncated"] == true { " (only its start was kept)" } }),
        ]))
        h2 { "Headers" }
        (show::headers(&data["headers"]))
        h2 { "Body" }
        (show::body(&data["body"]))
        h2 { "Events" }
        (events::table(&made, &events::Names::of(&console, &made).await))
        h2 { "Ignored events" }
        (ignored_table(&ignored))
    };
    Ok(console.page(&session, PAGE, "Request", content))
}

fn ignored_table(listing: &Value) -> Markup {
    html! {
        div.table-wrap {
            table {
                (show::column_heads(&["Cause", "Connection", "Detail", "At"]))
                tbody {
                    @for ignored in listing["models"].as_array().into_iter().flatten() {
                        tr {
                            td { (text(&ignored["cause"])) }
                            td.mono { (text(&ignored["webhook_id"])) }
                            td { (text(&ignored["detail"])) }
                            td { (show::time(&ignored["created_at"])) }
                        }
                    }
                }
            }
        }
    }
}

//! Connections: source → rules → destination, live rates, the
//! destination's backlog, and Pause / Unpause. The table refreshes itself
//! (htmx polls the page and swaps the table in).

use super::layout::post_button;
use super::rates;
use super::show::{self, text};
use super::{answer, error_notice, status_of, Console, Failed, Filter, Shared, Signed, NAV};
use crate::api::catalog;
use crate::metrics::Rates;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use axum::{Extension, Router};
use maud::{html, Markup};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

const PAGE: &str = NAV[2].0;

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/connections", get(list))
        .route("/connections/{id}/pause", post(pause))
        .route("/connections/{id}/unpause", post(unpause))
}

/// A page of connections (the API's cursors), filtered by name.
async fn list(
    State(console): Shared,
    Extension(session): Signed,
    Filter(query): Filter,
) -> (StatusCode, Html<String>) {
    let listing =
        answer(catalog::list_connections(console.api(), RawQuery(Some(query.clone()))).await);
    let content = html! {
        h1 { "Connections" }
        (show::name_search(PAGE, &query))
        @match &listing {
            Ok(listing) => {
                @let queues = queues(&console, listing).await;
                (table(&query, listing, &queues, console.api().metrics.rates(), &session.csrf))
                (show::pager(PAGE, &query, listing))
            }
            Err(error) => (error_notice(error)),
        }
    };
    (
        status_of(&listing),
        console.page(&session, PAGE, "Connections", content),
    )
}

/// Each destination's backlog (the API's `/destinations/{id}/queue`), once per destination.
async fn queues(console: &Console, listing: &Value) -> BTreeMap<String, Value> {
    let mut queues = BTreeMap::new();
    for connection in listing["models"].as_array().into_iter().flatten() {
        let destination = text(&connection["destination_id"]);
        if queues.contains_key(&destination) {
            continue;
        }
        let queue =
            answer(catalog::destination_queue(console.api(), Path(destination.clone())).await);
        queues.insert(destination, queue.unwrap_or(Value::Null));
    }
    queues
}

/// How often the table refreshes its rates and backlogs.
const REFRESH: &str = "every 5s";

/// The page's table, refreshing itself from the same page (`query`).
fn table(
    query: &str,
    listing: &Value,
    queues: &BTreeMap<String, Value>,
    rates: &Rates,
    csrf: &str,
) -> Markup {
    let this_page = format!("{PAGE}?{query}");
    html! {
        div.table-wrap #connections-live hx-get=(this_page) hx-trigger=(REFRESH) hx-select="#connections-live" hx-swap="outerHTML" {
            table #connections {
                (show::column_heads(&["Connection", "Source", "Rules", "Destination", "Requests", "Success", "Latency", "Queued", "Oldest waiting", "State", ""]))
                tbody {
                    @for connection in listing["models"].as_array().into_iter().flatten() {
                        @let queue = &queues[&text(&connection["destination_id"])];
                        @let paused = !connection["paused_at"].is_null();
                        @let action = format!("{PAGE}/{}/{}", text(&connection["id"]), if paused { "unpause" } else { "pause" });
                        tr {
                            td {
                                (text(&connection["name"]))
                                @if connection["read_only"] == true { br; span.muted title="Declared in gateway.toml: change it there" { "config file · read-only" } }
                            }
                            td { (text(&connection["source"]["name"])) }
                            td { (rules(&connection["rules"])) }
                            td { (text(&connection["destination"]["name"])) }
                            (rates::cells(rates, &text(&connection["name"]), &text(&connection["destination"]["name"])))
                            td { (text(&queue["queue_depth"])) }
                            td { @if queue["oldest_pending_ms"].as_u64().unwrap_or(0) > 0 { (text(&queue["oldest_pending_ms"])) " ms late" } @else { "—" } }
                            td { @if paused { span.status.waiting { "paused" } } @else { span.status.good { "active" } } }
                            td { (post_button(&action, csrf, if paused { "Unpause" } else { "Pause" })) }
                        }
                    }
                }
            }
        }
    }
}

/// The rules in order, by type (filter → transform → …).
fn rules(rules: &Value) -> Markup {
    let kinds: Vec<String> = rules
        .as_array()
        .into_iter()
        .flatten()
        .map(|rule| text(&rule["type"]))
        .collect();
    html! { @if kinds.is_empty() { span.muted { "none" } } @else { (kinds.join(" → ")) } }
}

async fn pause(State(console): Shared, Path(id): Path<String>) -> Result<Redirect, Failed> {
    answer(catalog::pause_connection(console.api(), Path(id)).await)?;
    Ok(Redirect::to(PAGE))
}

async fn unpause(State(console): Shared, Path(id): Path<String>) -> Result<Redirect, Failed> {
    answer(catalog::unpause_connection(console.api(), Path(id)).await)?;
    Ok(Redirect::to(PAGE))
}

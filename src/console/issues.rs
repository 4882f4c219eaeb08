//! Issues: what went wrong, the events behind it, and Acknowledge / Ignore / Resolve.

use super::layout::post_button;
use super::show::{self, text, Chosen};
use super::{answer, error_notice, status_of, Console, Failed, Filter, Shared, Signed, NAV};
use crate::api::issues;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use maud::{html, Markup};
use serde_json::{json, Value};
use std::sync::Arc;

const PAGE: &str = NAV[3].0;

/// The statuses a person sets, and the button that sets each.
const ACTIONS: [(&str, &str); 3] = [
    ("ACKNOWLEDGED", "Acknowledge"),
    ("IGNORED", "Ignore"),
    ("RESOLVED", "Resolve"),
];

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/issues", get(list))
        .route("/issues/{id}/{status}", post(set_status))
}

async fn list(
    State(console): Shared,
    Extension(session): Signed,
    Filter(query): Filter,
) -> (StatusCode, Html<String>) {
    let listing = answer(issues::list_issues(console.api(), RawQuery(Some(query.clone()))).await);
    let chosen = Chosen::of(&query);
    let statuses = ["OPENED", "ACKNOWLEDGED", "IGNORED", "RESOLVED"];
    let content = html! {
        h1 { "Issues" }
        form.filters method="get" action=(PAGE) role="search" {
            (show::value_choice("Status", "status", &statuses, &chosen))
            (show::value_choice("Type", "type", &["delivery", "transformation", "backpressure"], &chosen))
            button type="submit" { "Filter" }
        }
        @match &listing {
            Ok(listing) => {
                (table(listing, &session.csrf))
                (show::pager(PAGE, &query, listing))
            }
            Err(error) => (error_notice(error)),
        }
    };
    (
        status_of(&listing),
        console.page(&session, PAGE, "Issues", content),
    )
}

fn table(listing: &Value, csrf: &str) -> Markup {
    html! {
        div.table-wrap {
            table #issues {
                (show::column_heads(&["Last seen", "Type", "Status", "What", "Count", "Events", ""]))
                tbody {
                    @for issue in listing["models"].as_array().into_iter().flatten() {
                        @let id = text(&issue["id"]);
                        tr {
                            td { (show::time(&issue["last_seen_at"])) }
                            td { (text(&issue["type"])) }
                            td { (show::status(&issue["status"])) }
                            td { (text(&issue["detail"])) }
                            td { (text(&issue["count"])) }
                            td { (events_link(issue)) }
                            td {
                                @for (status, label) in ACTIONS {
                                    @if issue["status"] != status {
                                        (post_button(&format!("{PAGE}/{id}/{status}"), csrf, label)) " "
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The events behind an issue: its latest one, and for a delivery issue
/// every event of its connection with its response status.
fn events_link(issue: &Value) -> Markup {
    let keys = &issue["aggregation_keys"];
    let latest = issue["reference"]["event_id"].as_str();
    // Each key holds a list (the reference's shape), of one here.
    let connection = keys["webhook_id"][0].as_str();
    let filter = connection.map(|connection| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("webhook_id", connection);
        if let Some(status) = keys["response_status"][0].as_u64() {
            query.append_pair("response_status", &status.to_string());
        }
        format!("{}?{}", NAV[1].0, query.finish())
    });
    html! {
        @if let Some(event) = latest { a.mono href={(NAV[1].0) "/" (event)} { "latest" } " " }
        @if let Some(filter) = filter { a href=(filter) { "all" } }
    }
}

async fn set_status(
    State(console): Shared,
    Path((id, status)): Path<(String, String)>,
) -> Result<Redirect, Failed> {
    let update = serde_json::from_value(json!({ "status": status }))
        .map_err(|e| crate::api::error::ApiError::invalid("status", e.to_string()))?;
    answer(issues::update_issue(console.api(), Path(id), Ok(Json(update))).await)?;
    Ok(Redirect::to(PAGE))
}

//! Outbound: applications and their endpoints (status, circuit state; the
//! secret masked as the API shows it).

use super::show::{self, text};
use super::{answer, error_notice, Console, Shared, Signed, NAV};
use crate::api::{applications, endpoints};
use axum::extract::{RawQuery, State};
use axum::response::Html;
use axum::routing::get;
use axum::{Extension, Router};
use maud::{html, Markup};
use serde_json::Value;
use std::sync::Arc;

const PAGE: &str = NAV[5].0;

pub fn routes() -> Router<Arc<Console>> {
    Router::new().route("/outbound", get(list))
}

/// The first 100 applications and endpoints (the `/v1` lists page by number).
fn first_page() -> RawQuery {
    RawQuery(Some("per_page=100".into()))
}

async fn list(State(console): Shared, Extension(session): Signed) -> Html<String> {
    let apps = answer(applications::list(console.api(), first_page()).await);
    let endpoints = answer(endpoints::list(console.api(), first_page()).await);
    let content = match (&apps, &endpoints) {
        (Ok(apps), Ok(endpoints)) => html! {
            h1 { "Outbound" }
            @for app in apps["data"].as_array().into_iter().flatten() {
                h2 { (text(&app["name"])) " " span.mono.muted { (text(&app["id"])) } }
                (endpoint_table(endpoints, &app["id"]))
            }
        },
        (Err(error), _) | (_, Err(error)) => html! { h1 { "Outbound" } (error_notice(error)) },
    };
    console.page(&session, PAGE, "Outbound", content)
}

fn endpoint_table(endpoints: &Value, application: &Value) -> Markup {
    let of_app = endpoints["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|endpoint| endpoint["application_id"] == *application);
    html! {
        div.table-wrap {
            table.endpoints {
                (show::column_heads(&["Endpoint", "Status", "Circuit", "Secret", "Events"]))
                tbody {
                    @for endpoint in of_app {
                        tr {
                            td.mono { (text(&endpoint["url"])) }
                            td { (text(&endpoint["status"])) }
                            td { (text(&endpoint["circuit_state"])) }
                            td.mono { (text(&endpoint["secret"])) }
                            td { @let types = endpoint["subscribed_events"].as_array().map_or(0, Vec::len);
                                 @if types == 0 { "every type" } @else { (types) " types" } }
                        }
                    }
                }
            }
        }
    }
}

//! The application's event types: what each means and the JSON schema of
//! its payloads.

use super::{answer, Failed, Portal, Shared, Visit, Visiting, NAV};
use crate::api::applications;
use crate::console::show::{self, text};
use axum::extract::{Path, RawQuery, State};
use axum::response::Html;
use axum::routing::get;
use axum::{Extension, Router};
use maud::{html, Markup};
use serde_json::Value;
use std::sync::Arc;

const PAGE: &str = NAV[1].0;

pub fn routes() -> Router<Arc<Portal>> {
    Router::new().route("/event-types", get(list))
}

async fn list(State(portal): Shared, Extension(visit): Visiting) -> Result<Html<String>, Failed> {
    let types = of_application(&portal, &visit).await?;
    let content = html! {
        h1 { "Event types" }
        (table(&types.iter().collect::<Vec<_>>()))
    };
    Ok(portal.page(&visit, PAGE, "Event types", content))
}

/// The application's event types (the API's views), by name.
pub(super) async fn of_application(portal: &Portal, visit: &Visit) -> Result<Vec<Value>, Failed> {
    let id = Path(visit.application_id().to_string());
    let first_page = RawQuery(Some("per_page=100".into()));
    let listing = answer(applications::list_event_types(portal.api(), id, first_page).await)?;
    Ok(listing["data"].as_array().cloned().unwrap_or_default())
}

/// Event types with their descriptions, and their schemas one click away.
pub(super) fn table(types: &[&Value]) -> Markup {
    html! {
        div.table-wrap {
            table.event-types {
                (show::column_heads(&["Event type", "Description", "Payload schema"]))
                tbody {
                    @for event_type in types {
                        tr {
                            td.mono { (text(&event_type["name"])) }
                            td { (text(&event_type["description"])) }
                            td {
                                @if event_type["schema"].is_null() { span.muted { "any JSON" } }
                                @else {
                                    details {
                                        summary { "Schema" }
                                        pre.mono { (show::pretty(&event_type["schema"])) }
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

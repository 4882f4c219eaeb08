//! Choosing one object (a source, connection or destination) for a list's
//! filter among any number of them. A `<select>` of every object stops
//! scaling long before 10,000 of them, so it holds the first `SHOWN` objects
//! whose name contains what was typed beside it (the API's
//! `name[contains]`), and the one chosen. As a name is typed, htmx fetches
//! the matching options from `/console/choices/{field}`; without scripts,
//! applying the filter form does the same.

use super::show::{text, Chosen};
use super::{answer, Console, Failed, Shared};
use crate::api::catalog;
use crate::api::error::{ApiError, ApiResult};
use axum::extract::{Path, RawQuery, State};
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use serde_json::Value;
use std::sync::Arc;

/// The most options a choice shows besides the chosen one.
const SHOWN: usize = 100;

/// The field holding what is typed to find an object is the filter field's
/// name behind this prefix; it is the console's own, never sent to the API.
pub const FIND_PREFIX: &str = "find_";

pub fn routes() -> Router<Arc<Console>> {
    Router::new().route("/choices/{field}", get(options))
}

/// What a filter field chooses.
#[derive(Clone, Copy)]
pub enum Kind {
    Source,
    Connection,
    Destination,
}

impl Kind {
    /// The API's filter field naming an object of this kind.
    fn field(self) -> &'static str {
        match self {
            Kind::Source => "source_id",
            Kind::Connection => "webhook_id",
            Kind::Destination => "destination_id",
        }
    }

    fn of_field(field: &str) -> Option<Kind> {
        [Kind::Source, Kind::Connection, Kind::Destination]
            .into_iter()
            .find(|kind| kind.field() == field)
    }

    /// The API's list of objects of this kind for `query`.
    async fn list(self, console: &Console, query: String) -> ApiResult<Value> {
        let (api, query) = (console.api(), RawQuery(Some(query)));
        match self {
            Kind::Source => answer(catalog::list_sources(api, query).await),
            Kind::Connection => answer(catalog::list_connections(api, query).await),
            Kind::Destination => answer(catalog::list_destinations(api, query).await),
        }
    }
}

/// The labelled choice of a `kind` for a filter form; `chosen` holds the
/// page's query (the object chosen, and the name typed to find it).
pub async fn choice(console: &Console, label: &str, kind: Kind, chosen: &Chosen) -> Markup {
    let field = kind.field();
    let find = format!("{FIND_PREFIX}{field}");
    let options = options_for(console, kind, chosen).await;
    html! {
        div.choice {
            label { (label) select #{"choice-" (field)} name=(field) { (options) } }
            label {
                (label) " name contains"
                input type="search" name=(find) value=[chosen.get(&find)] autocomplete="off"
                    hx-get={"/console/choices/" (field)} hx-trigger="input changed delay:300ms, search"
                    hx-target={"#choice-" (field)} hx-include="closest .choice";
            }
        }
    }
}

/// The options fetched as a name is typed.
async fn options(
    State(console): Shared,
    Path(field): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, Failed> {
    let kind = Kind::of_field(&field).ok_or_else(|| ApiError::not_found("choice", &field))?;
    let chosen = Chosen::of(raw.as_deref().unwrap_or_default());
    Ok(Html(
        options_for(&console, kind, &chosen).await.into_string(),
    ))
}

/// "any", the chosen object, then the first `SHOWN` objects by name whose
/// name contains the typed part; a last, disabled option says when more match.
async fn options_for(console: &Console, kind: Kind, chosen: &Chosen) -> Markup {
    let typed = chosen.get(&format!("{FIND_PREFIX}{}", kind.field()));
    let matches = kind.list(console, matching_query(typed)).await;
    let matches = matches.unwrap_or_default();
    let matching = matches["models"].as_array().cloned().unwrap_or_default();
    let chosen_id = chosen.get(kind.field()).filter(|id| !id.is_empty());
    let chosen_object = match chosen_id {
        Some(id) if !matching.iter().any(|object| object["id"] == id) => {
            one(console, kind, id).await
        }
        _ => None,
    };
    let more = !matches["pagination"]["next"].is_null();
    html! {
        option value="" { "any" }
        @for object in chosen_object.iter().chain(&matching) {
            @let id = text(&object["id"]);
            option value=(id) selected[chosen_id == Some(id.as_str())] { (text(&object["name"])) }
        }
        @if more { option disabled { "… more: type a part of the name" } }
    }
}

/// The API query for the first `SHOWN` objects by name containing `typed`.
fn matching_query(typed: Option<&str>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.extend_pairs([("order_by", "name"), ("dir", "asc")]);
    query.append_pair("limit", &SHOWN.to_string());
    if let Some(typed) = typed.filter(|typed| !typed.is_empty()) {
        query.append_pair("name[contains]", typed);
    }
    query.finish()
}

/// The object of `kind` with this id, if there is one.
async fn one(console: &Console, kind: Kind, id: &str) -> Option<Value> {
    let query = format!(
        "id={}",
        url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
    );
    let found = kind.list(console, query).await.ok()?;
    found["models"].get(0).cloned()
}

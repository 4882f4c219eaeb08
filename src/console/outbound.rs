//! Outbound: applications and their endpoints (status, circuit state; the
//! secret masked as the API shows it), paged by number as the `/v1` lists
//! are, and rotating an endpoint's secret.
//! The API answers a secret whole only when it is created or rotated, and
//! has no call to read it again: so the console shows it once, on the page
//! that answers the rotation, and masked everywhere else.

use super::layout::token_field;
use super::show::{self, text, Chosen};
use super::{answer, error_notice, status_of, Console, Failed, Filter, Shared, Signed, NAV};
use crate::api::error::ApiResult;
use crate::api::{applications, endpoints};
use axum::extract::{Path, RawQuery, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use maud::{html, Markup};
use serde_json::Value;
use std::sync::Arc;

pub(super) const PAGE: &str = NAV[5].0;

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/outbound", get(list))
        .route(
            "/outbound/endpoints/{id}/rotate-secret",
            get(confirm_rotation).post(rotate),
        )
        .route(
            "/outbound/applications/{app}/endpoints",
            get(application_endpoints),
        )
        .merge(super::outbound_jobs::routes())
}

/// Applications shown a page, unless the page asks for another `per_page`.
const APPLICATIONS_PER_PAGE: u32 = 20;

/// Endpoints shown under each application; its own page has them all, paged.
const ENDPOINTS_SHOWN: u32 = 20;

/// A page of applications (numbered, as `/v1/applications`), each with its
/// first endpoints and a link to them all when it has more.
async fn list(
    State(console): Shared,
    Extension(session): Signed,
    Filter(query): Filter,
) -> (StatusCode, Html<String>) {
    let asked = Chosen::of(&query);
    let apps_query = match asked.get("per_page") {
        Some(_) => query.clone(),
        None => url::form_urlencoded::Serializer::new(query.clone())
            .append_pair("per_page", &APPLICATIONS_PER_PAGE.to_string())
            .finish(),
    };
    let apps = answer(applications::list(console.api(), RawQuery(Some(apps_query))).await);
    let content = match &apps {
        Ok(apps) => {
            let mut sections = Vec::new();
            for app in apps["data"].as_array().into_iter().flatten() {
                let first = format!("per_page={ENDPOINTS_SHOWN}");
                sections.push((app, endpoints_of(&console, app, &first).await));
            }
            html! {
                h1 { "Outbound" }
                @for (app, endpoints) in &sections { (application_section(app, endpoints)) }
                (show::number_pager(PAGE, &query, &apps["pagination"]))
            }
        }
        Err(error) => html! { h1 { "Outbound" } (error_notice(error)) },
    };
    (
        status_of(&apps),
        console.page(&session, PAGE, "Outbound", content),
    )
}

/// The API's page (`query`: `page`, `per_page`) of an application's endpoints.
async fn endpoints_of(console: &Console, app: &Value, query: &str) -> ApiResult<Value> {
    let query = url::form_urlencoded::Serializer::new(query.to_string())
        .append_pair("application_id", &text(&app["id"]))
        .finish();
    answer(endpoints::list(console.api(), RawQuery(Some(query))).await)
}

fn endpoints_path(app: &Value) -> String {
    format!("{PAGE}/applications/{}/endpoints", text(&app["id"]))
}

fn application_section(app: &Value, endpoints: &ApiResult<Value>) -> Markup {
    html! {
        h2 { (text(&app["name"])) " " span.mono.muted { (text(&app["id"])) } }
        p { a href={(PAGE) "/applications/" (text(&app["id"])) "/jobs"} { "Jobs" } }
        @match endpoints {
            Ok(endpoints) => {
                (endpoint_table(endpoints))
                @let total = &endpoints["pagination"]["total"];
                @if endpoints["pagination"]["total_pages"].as_u64().unwrap_or(1) > 1 {
                    p { a href=(endpoints_path(app)) { "All " (text(total)) " endpoints of " (text(&app["name"])) } }
                }
            }
            Err(error) => (error_notice(error)),
        }
    }
}

/// Every endpoint of an application, a numbered page at a time.
async fn application_endpoints(
    State(console): Shared,
    Extension(session): Signed,
    Path(app): Path<String>,
    Filter(query): Filter,
) -> Result<Html<String>, Failed> {
    let app = answer(applications::get(console.api(), Path(app)).await)?;
    let endpoints = endpoints_of(&console, &app, &query).await?;
    let content = html! {
        h1 { "Endpoints of " (text(&app["name"])) " " span.mono.muted { (text(&app["id"])) } }
        (endpoint_table(&endpoints))
        (show::number_pager(&endpoints_path(&app), &query, &endpoints["pagination"]))
    };
    Ok(console.page(&session, PAGE, "Endpoints", content))
}

/// A page of endpoints (a `/v1/endpoints` answer).
fn endpoint_table(endpoints: &Value) -> Markup {
    let of_app = endpoints["data"].as_array().into_iter().flatten();
    html! {
        div.table-wrap {
            table.endpoints {
                (show::column_heads(&["Endpoint", "Status", "Circuit", "Secret", "Events", ""]))
                tbody {
                    @for endpoint in of_app {
                        tr {
                            td.mono { (text(&endpoint["url"])) }
                            td { (text(&endpoint["status"])) }
                            td { (text(&endpoint["circuit_state"])) }
                            td.mono { (text(&endpoint["secret"])) }
                            td { @let types = endpoint["subscribed_events"].as_array().map_or(0, Vec::len);
                                 @if types == 0 { "every type" } @else { (types) " types" } }
                            td { a href=(rotation_path(&endpoint["id"])) { "Rotate secret…" } }
                        }
                    }
                }
            }
        }
    }
}

fn rotation_path(endpoint: &Value) -> String {
    format!("{PAGE}/endpoints/{}/rotate-secret", text(endpoint))
}

/// The confirmation step: what a rotation does, and the button that does it.
async fn confirm_rotation(
    State(console): Shared,
    Extension(session): Signed,
    Path(id): Path<String>,
) -> Result<Html<String>, Failed> {
    let endpoint = answer(endpoints::get(console.api(), Path(id)).await)?;
    let action = rotation_path(&endpoint["id"]);
    let content = rotation_confirmation(&endpoint, &action, PAGE, &session.csrf);
    Ok(console.page(&session, PAGE, "Rotate secret", content))
}

/// What rotating `endpoint`'s secret does, and the form (to `action`) that does it.
pub(super) fn rotation_confirmation(
    endpoint: &Value,
    action: &str,
    cancel: &str,
    csrf: &str,
) -> Markup {
    html! {
        h1 { "Rotate the secret of " span.mono { (text(&endpoint["url"])) } }
        p { "The endpoint gets a new signing secret. The old one keeps signing beside it for a grace period, so the receiver can switch." }
        p { "The new secret is shown once, on the next page, and never again." }
        form.actions method="post" action=(action) {
            (token_field(csrf))
            button.primary type="submit" { "Rotate the secret" }
            a href=(cancel) { "Cancel" }
        }
    }
}

/// Rotates, and shows the new secret this once; the page is not cached, so
/// going back to it does not show the secret again.
async fn rotate(
    State(console): Shared,
    Extension(session): Signed,
    Path(id): Path<String>,
) -> Result<Response, Failed> {
    let endpoint = answer(endpoints::rotate_secret(console.api(), Path(id), None).await)?;
    let content = secret_once(&endpoint, "New secret of ", (PAGE, "Back to outbound"));
    Ok(not_stored(console.page(
        &session,
        PAGE,
        "New secret",
        content,
    )))
}

/// `endpoint`'s secret in full (answered by a creation or a rotation), with
/// a way `back`: shown this once.
pub(super) fn secret_once(endpoint: &Value, heading: &str, (href, back): (&str, &str)) -> Markup {
    html! {
        h1 { (heading) span.mono { (text(&endpoint["url"])) } }
        p.notice role="status" { "Copy the secret now: it is shown this once, and masked from now on." }
        pre.mono #new-secret tabindex="0" { (text(&endpoint["secret"])) }
        p { a href=(href) { (back) } }
    }
}

/// A page showing a secret: not cached, so going back does not show it again.
pub(super) fn not_stored(page: Html<String>) -> Response {
    ([(CACHE_CONTROL, "no-store")], page).into_response()
}

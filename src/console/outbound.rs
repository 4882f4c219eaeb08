//! Outbound: applications and their endpoints (status, circuit state; the
//! secret masked as the API shows it), and rotating an endpoint's secret.
//! The API answers a secret whole only when it is created or rotated, and
//! has no call to read it again: so the console shows it once, on the page
//! that answers the rotation, and masked everywhere else.

use super::layout::token_field;
use super::show::{self, text};
use super::{answer, error_notice, Console, Failed, Shared, Signed, NAV};
use crate::api::{applications, endpoints};
use axum::extract::{Path, RawQuery, State};
use axum::http::header::CACHE_CONTROL;
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
        .merge(super::outbound_jobs::routes())
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
                p { a href={(PAGE) "/applications/" (text(&app["id"])) "/jobs"} { "Jobs" } }
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

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
    let content = html! {
        h1 { "Rotate the secret of " span.mono { (text(&endpoint["url"])) } }
        p { "The endpoint gets a new signing secret. The old one keeps signing beside it for the grace period (outbound.secret_rotation_grace_ms), so the receiver can switch." }
        p { "The new secret is shown once, on the next page, and never again." }
        form.actions method="post" action=(rotation_path(&endpoint["id"])) {
            (token_field(&session.csrf))
            button.primary type="submit" { "Rotate the secret" }
            a href=(PAGE) { "Cancel" }
        }
    };
    Ok(console.page(&session, PAGE, "Rotate secret", content))
}

/// Rotates, and shows the new secret this once; the page is not cached, so
/// going back to it does not show the secret again.
async fn rotate(
    State(console): Shared,
    Extension(session): Signed,
    Path(id): Path<String>,
) -> Result<Response, Failed> {
    let endpoint = answer(endpoints::rotate_secret(console.api(), Path(id), None).await)?;
    let content = html! {
        h1 { "New secret of " span.mono { (text(&endpoint["url"])) } }
        p.notice role="status" { "Copy it now: it is shown this once. The console shows it masked from now on." }
        pre.mono #new-secret tabindex="0" { (text(&endpoint["secret"])) }
        p { a href=(PAGE) { "Back to outbound" } }
    };
    let page = console.page(&session, PAGE, "New secret", content);
    Ok(([(CACHE_CONTROL, "no-store")], page).into_response())
}

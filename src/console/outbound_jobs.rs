//! Outbound jobs: an application's jobs (filtered by status and event type,
//! paged by the `/v1` list's page numbers), and a job's deliveries with every
//! attempt, with Retry per delivery.

use super::layout::post_button;
use super::outbound::PAGE;
use super::show::{self, text, Chosen};
use super::{
    answer, error_notice, status_of, written_answer, Console, Failed, Filter, Shared, Signed,
};
use crate::api::{webhook_deliveries, webhook_jobs};
use crate::model::JobStatus;
use crate::store::FAILED;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use axum::{Extension, Router};
use maud::{html, Markup};
use serde_json::Value;
use std::sync::Arc;

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/outbound/applications/{app}/jobs", get(list))
        .route("/outbound/jobs/{id}", get(detail))
        .route("/outbound/deliveries/{id}/retry", post(retry))
}

async fn list(
    State(console): Shared,
    Extension(session): Signed,
    Path(app): Path<String>,
    Filter(query): Filter,
) -> (StatusCode, Html<String>) {
    let api_query = url::form_urlencoded::Serializer::new(query.clone())
        .append_pair("application_id", &app)
        .finish();
    let listing =
        written_answer(webhook_jobs::list(console.api(), RawQuery(Some(api_query))).await).await;
    let here = format!("{PAGE}/applications/{app}/jobs");
    let chosen = Chosen::of(&query);
    let statuses: Vec<&str> = JobStatus::ALL
        .map(JobStatus::as_str)
        .into_iter()
        .chain([FAILED])
        .collect();
    let content = html! {
        h1 { "Jobs of " span.mono { (app) } }
        form.filters method="get" action=(here) role="search" {
            (show::value_choice("Status", "status", &statuses, &chosen))
            (show::text_input("Event type", "event_type", "text", &chosen))
            button type="submit" { "Filter" }
        }
        @match &listing {
            Ok(listing) => {
                (table(listing))
                (show::number_pager(&here, &query, &listing["pagination"]))
            }
            Err(error) => (error_notice(error)),
        }
    };
    (
        status_of(&listing),
        console.page(&session, PAGE, "Jobs", content),
    )
}

fn table(listing: &Value) -> Markup {
    html! {
        div.table-wrap {
            table #jobs {
                (show::column_heads(&["Created", "Event type", "Status", "Attempts", "Endpoints"]))
                tbody {
                    @for job in listing["data"].as_array().into_iter().flatten() {
                        tr {
                            td { a href={(PAGE) "/jobs/" (text(&job["id"]))} { (show::time(&job["created_at"])) } }
                            td.mono { (text(&job["event_type"])) }
                            td { (show::status(&job["status"])) }
                            td { (text(&job["attempt_count"])) }
                            td { (job["endpoint_ids"].as_array().map_or(0, Vec::len)) }
                        }
                    }
                }
            }
        }
    }
}

async fn detail(
    State(console): Shared,
    Extension(session): Signed,
    Path(id): Path<String>,
) -> Result<Html<String>, Failed> {
    let job = written_answer(webhook_jobs::get(console.api(), Path(id.clone())).await).await?;
    let mut deliveries = Vec::new();
    for summary in job["deliveries"].as_array().into_iter().flatten() {
        let id = Path(text(&summary["id"]));
        deliveries.push(answer(
            webhook_deliveries::get_one(console.api(), id).await,
        )?);
    }
    let content = html! {
        h1 { "Job " span.mono { (id) } }
        (show::facts(&[
            ("Status", show::status(&job["status"])),
            ("Event type", html! { span.mono { (text(&job["event_type"])) } }),
            ("Application", html! { a.mono href={(PAGE) "/applications/" (text(&job["application_id"])) "/jobs"} { (text(&job["application_id"])) } }),
            ("Created", show::time(&job["created_at"])),
        ]))
        h2 { "Deliveries" }
        @for delivery in &deliveries {
            @let retry = format!("{PAGE}/deliveries/{}/retry", text(&delivery["id"]));
            (delivery_section(delivery, Some((&retry, &session.csrf))))
        }
        h2 { "Payload" }
        (show::body(&job["payload"]))
    };
    Ok(console.page(&session, PAGE, "Job", content))
}

/// A delivery (the deliveries API's camelCase view) and its attempts, oldest
/// first, with a Retry button when given where it posts and the CSRF token.
pub(super) fn delivery_section(delivery: &Value, retry: Option<(&str, &str)>) -> Markup {
    let id = text(&delivery["id"]);
    html! {
        section.delivery id={"delivery-" (id)} {
            h3 { span.mono { (text(&delivery["url"])) } " " (show::status(&delivery["status"])) }
            @if let Some((action, csrf)) = retry { (post_button(action, csrf, "Retry")) }
            div.table-wrap {
                table.attempts {
                    (show::column_heads(&["#", "At", "Response status", "Latency", "Error"]))
                    tbody {
                        @for attempt in delivery["attempts"].as_array().into_iter().flatten() {
                            tr {
                                td { (text(&attempt["attemptNumber"])) }
                                td { (show::time(&attempt["createdAt"])) }
                                td { (text(&attempt["statusCode"])) }
                                td { (text(&attempt["latencyMs"])) " ms" }
                                td { (text(&attempt["errorCode"])) }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn retry(State(console): Shared, Path(id): Path<String>) -> Result<Redirect, Failed> {
    let delivery = answer(webhook_deliveries::retry(console.api(), Path(id)).await)?;
    Ok(Redirect::to(&format!(
        "{PAGE}/jobs/{}",
        text(&delivery["jobId"])
    )))
}

//! Transformations: the list, and an editor whose test panel runs the code
//! being edited on a stored request (or a pasted one) and shows the output,
//! its diff against the input, and what the code logged.

use super::diff::{self, Line};
use super::layout::token_field;
use super::show::{self, text};
use super::{answer, error_notice, status_of, Console, Failed, Filter, Shared, Signed, NAV};
use crate::api::error::ApiError;
use crate::api::{inbound, transformations};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

const PAGE: &str = NAV[4].0;

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/transformations", get(list))
        .route("/transformations/{id}", get(editor).post(save))
        .route("/transformations/{id}/test", post(test))
}

/// A page of transformations (the API's cursors), filtered by name.
async fn list(
    State(console): Shared,
    Extension(session): Signed,
    Filter(query): Filter,
) -> (StatusCode, Html<String>) {
    let listing = answer(transformations::list(console.api(), RawQuery(Some(query.clone()))).await);
    let content = html! {
        h1 { "Transformations" }
        (show::name_search(PAGE, &query))
        @match &listing {
            Ok(listing) => {
                ul #transformations {
                    @for transformation in listing["models"].as_array().into_iter().flatten() {
                        li { a href={(PAGE) "/" (text(&transformation["id"]))} { (text(&transformation["name"])) } }
                    }
                }
                (show::pager(PAGE, &query, listing))
            }
            Err(error) => (error_notice(error)),
        }
    };
    (
        status_of(&listing),
        console.page(&session, PAGE, "Transformations", content),
    )
}

async fn editor(
    State(console): Shared,
    Extension(session): Signed,
    Path(id): Path<String>,
) -> Result<Html<String>, Failed> {
    let transformation = answer(transformations::get(console.api(), Path(id.clone())).await)?;
    let code = text(&transformation["code"]);
    Ok(editor_page(&console, &session, &transformation, &code, None).await)
}

/// The editor with `code` in it, and `problem` (why saving was refused) above it.
async fn editor_page(
    console: &Console,
    session: &super::session::Session<usize>,
    transformation: &Value,
    code: &str,
    problem: Option<&ApiError>,
) -> Html<String> {
    let id = text(&transformation["id"]);
    let recent =
        answer(inbound::list_requests(console.api(), RawQuery(Some("limit=20".into()))).await);
    let recent = recent.unwrap_or_default();
    let content = html! {
        h1 { "Transformation " (text(&transformation["name"])) }
        @if let Some(problem) = problem { (error_notice(problem)) }
        form method="post" action={(PAGE) "/" (id)} {
            (token_field(&session.csrf))
            label for="code" { "Code" }
            textarea #code.mono name="code" rows="16" spellcheck="false" { (code) }
            div.actions { button.primary type="submit" { "Save" } }
        }
        h2 { "Test" }
        form.filters hx-post={(PAGE) "/" (id) "/test"} hx-include="#code" hx-target="#test-result" {
            label {
                "Stored request"
                select name="request_id" {
                    option value="" { "—" }
                    @for request in recent["models"].as_array().into_iter().flatten() {
                        option value=(text(&request["id"])) { (text(&request["created_at"])) " · " (text(&request["source_name"])) }
                    }
                }
            }
            label {
                "Or paste a request (JSON: headers, body, path, query)"
                textarea.mono name="pasted" rows="4" cols="60" {}
            }
            button type="submit" { "Run test" }
        }
        div #test-result aria-live="polite" {}
    };
    console.page(session, PAGE, "Transformation", content)
}

#[derive(Deserialize)]
struct Saved {
    code: String,
}

/// Saves the code; refused (the editor again, with the error and the code as
/// typed) when it does not compile.
async fn save(
    State(console): Shared,
    Extension(session): Signed,
    Path(id): Path<String>,
    Form(saved): Form<Saved>,
) -> Result<Response, Failed> {
    // Browsers send a textarea's line breaks as CRLF; the code is kept as typed.
    let code = saved.code.replace("\r\n", "\n");
    let input = serde_json::from_value(json!({ "code": code }))
        .map_err(|e| ApiError::invalid("code", e.to_string()))?;
    match transformations::update(console.api(), Path(id.clone()), Ok(Json(input))).await {
        Ok(_) => Ok(Redirect::to(&format!("{PAGE}/{id}")).into_response()),
        Err(refused) => {
            let transformation = answer(transformations::get(console.api(), Path(id)).await)?;
            let page =
                editor_page(&console, &session, &transformation, &code, Some(&refused)).await;
            Ok((refused.status, page).into_response())
        }
    }
}

#[derive(Deserialize)]
struct Test {
    code: String,
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    pasted: String,
}

/// Runs the editor's code on the chosen or pasted request (the API's
/// `PUT /transformations/run`) and shows the result as a fragment.
async fn test(State(console): Shared, Form(test): Form<Test>) -> (StatusCode, Html<String>) {
    let shown = match run(&console, test).await {
        Ok((input, output)) => result(&input, &output),
        Err(error) => failure(&error),
    };
    (StatusCode::OK, Html(shown.into_string()))
}

/// The input request and the run's answer.
async fn run(console: &Console, test: Test) -> Result<(Value, Value), ApiError> {
    let input = if !test.pasted.trim().is_empty() {
        serde_json::from_str(&test.pasted)
            .map_err(|e| ApiError::invalid("pasted", format!("not JSON: {e}")))?
    } else if !test.request_id.is_empty() {
        let request = answer(inbound::get_request(console.api(), Path(test.request_id)).await)?;
        let data = &request["data"];
        json!({ "headers": data["headers"], "body": data["body"], "path": data["path"], "query": data["query"] })
    } else {
        return Err(ApiError::invalid(
            "request",
            "choose a stored request or paste one",
        ));
    };
    let run = serde_json::from_value(json!({ "code": test.code, "request": input }))
        .map_err(|e| ApiError::invalid("code", e.to_string()))?;
    let output = answer(transformations::run(console.api(), Ok(Json(run))).await)?;
    Ok((input, output))
}

fn result(input: &Value, output: &Value) -> Markup {
    let before = show::pretty(&sorted(input));
    let mut after_request = sorted(&output["request"]);
    // Derived by the run, not something the code changed.
    if let (None, Some(after)) = (input.get("parsed_query"), after_request.as_object_mut()) {
        after.shift_remove("parsed_query");
    }
    let after = show::pretty(&after_request);
    html! {
        h3 { "Output" }
        (show::body(&output["request"]))
        h3 { "Changes" }
        @match diff::lines(&before, &after) {
            Some(lines) => pre.mono #test-diff tabindex="0" {
                @for line in lines {
                    @match line {
                        Line::Same(text) => { "  " (text) "\n" }
                        Line::Removed(text) => { del { "- " (text) } "\n" }
                        Line::Added(text) => { ins { "+ " (text) } "\n" }
                    }
                }
            },
            None => p.muted { "Too large to compare." },
        }
        (console_lines(&output["console"]))
    }
}

/// `value` with every object's keys in order, so that the diff shows what
/// changed rather than where the code put a key.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(object) => {
            let mut keys: Vec<&String> = object.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&object[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn failure(error: &ApiError) -> Markup {
    html! {
        (error_notice(error))
        (console_lines(&error.data["console"]))
    }
}

fn console_lines(lines: &Value) -> Markup {
    html! {
        h3 { "Console" }
        ol.mono #test-console {
            @for line in lines.as_array().into_iter().flatten() {
                li { (text(&line["type"])) ": " (text(&line["message"])) }
            }
        }
    }
}

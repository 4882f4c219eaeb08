//! Item 9 of issue 17, requests: every example request of the reference
//! (`reference_examples::requests`) is sent, as printed, to one real gateway:
//! its method, path, query and body, with the reference's ids (in the path,
//! the body and cursors) replaced by those of objects made first. Each answer
//! is a 2xx (or the status `DIFFERENT_STATUS` gives, with why) and has the
//! shape of the response example printed for its operation.

use crate::common::{Reply, Sink, TestGateway};
use crate::reference_examples::{requests, responses, RequestExample};
use crate::reference_shape::{shape_mismatch, Leeway};
use hookgate::model::EventStatus;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Examples answered with another status than a 2xx, what the answer's
/// message names, and why.
const DIFFERENT_STATUS: [(u64, u16, &str); 7] = [
    // README, "Coming from Hookdeck": rulesets are gone from this API
    // version; rules go in `rules`.
    (109, 422, "ruleset_id"),
    (990, 422, "ruleset_id"),
    // Names are unique, and the examples reuse them: L48 made the connection
    // `shopify-my-api`, its source `shopify` and its destination `my-api`.
    (757, 409, "shopify-my-api"),
    (1636, 409, "shopify"),
    (1772, 409, "shopify"),
    (2219, 409, "my-api"),
    // An inline transformation named like a stored one with other code
    // (L3361 stored `example`): docs/reference-conformance.md, L176.
    (7723, 409, "example"),
];

/// Where hookgate's answers may differ from the examples in data, not shape.
const SHAPE: Leeway = Leeway {
    // Nothing to say yet, or nothing set (the examples show objects used
    // for a while: a CLI path, a disabled trigger, a cancelled bulk retry);
    // L1852's `archived_at` reads "null", a string.
    null_allowed: &[
        "archived_at",
        "cancelled_at",
        "cli_path",
        "completed_at",
        "disabled_at",
        "http_method",
        "last_attempt_at",
        "last_updated_by",
        "rate_limit",
        "rate_limit_period",
        "response_status",
        "successful_at",
    ],
    // The sender's data; `progress` is a fraction (L6693: 0.29) the other
    // examples print as 0 or 1.
    data: &["body", "env", "headers", "progress", "query"],
};

/// The ids of objects made before the examples are sent, by the prefix of
/// the reference's ids they stand for (`src_`, `web_`…), and by the path
/// segment naming their collection.
struct Made {
    by_prefix: BTreeMap<&'static str, String>,
    by_collection: BTreeMap<&'static str, String>,
}

/// The objects the examples name: a source, a destination (a local sink that
/// fails the requests marked `fail`) and a connection through a stored
/// transformation, with a second connection filtering everything out; an
/// issue trigger and the issue a failed delivery opens; a bookmark and a bulk
/// retry of each kind. The examples of `/sources/:id` and
/// `/destinations/:id` get a spare of each: archiving a source archives its
/// connections, and unarchiving it leaves them archived (L1797, L1834).
async fn make_objects(gw: &TestGateway, sink: &Sink) -> Made {
    let code = "addHandler('transform', (request, context) => request);";
    let transformation = created(
        gw,
        "/transformations",
        json!({"name": "made", "code": code}),
    )
    .await;
    let trigger =
        json!({"type": "delivery", "configs": {"strategy": "first_attempt", "connections": "*"}});
    let trigger = created(gw, "/issue-triggers", trigger).await;
    let connection = json!({"name": "made", "source": {"name": "made"}, "destination": {"name": "sink", "url": sink.url("/")}, "rules": [{"type": "transformation", "transformation_id": transformation}]});
    let (status, connection) = gw.api_send(Method::POST, "/connections", connection).await;
    assert_eq!(status, 200, "{connection}");
    let (source, destination) = (
        &connection["source"]["id"],
        &connection["destination"]["id"],
    );
    let filtered = json!({"name": "filtered", "source_id": source, "destination_id": destination, "rules": [{"type": "filter", "body": {"never": true}}]});
    created(gw, "/connections", filtered).await;
    for body in [r#"{"ok": true}"#, r#"{"fail": true}"#] {
        assert_eq!(gw.post("/e/made", body).await.0, 200);
    }
    let failed = gw.wait_event(|e| e.status == EventStatus::Failed).await;
    let event = gw.wait_event(|e| e.status == EventStatus::Successful).await;
    let connection_id = connection["id"].as_str().unwrap().to_string();
    let (_, issues) = gw.api_get("/issues").await;
    let (_, data) = gw.api_get(&format!("/events/{}", event.id)).await;
    let event_data_id = data["event_data_id"].as_str().unwrap().to_string();
    let bookmark =
        json!({"label": "made", "event_data_id": event_data_id, "webhook_id": connection_id});
    let (_, attempts) = gw
        .api_get(&format!("/attempts?event_id={}", failed.id))
        .await;
    let (_, executions) = gw
        .api_get(&format!("/transformations/{transformation}/executions"))
        .await;
    let by_source = json!({"query": {"source_id": [source]}});
    let by_cause = json!({"query": {"cause": "FILTERED"}});
    let mut by_collection = BTreeMap::from([
        ("connections", connection_id.clone()),
        (
            "sources",
            created(gw, "/sources", json!({"name": "spare"})).await,
        ),
        (
            "destinations",
            created(
                gw,
                "/destinations",
                json!({"name": "spare", "url": sink.url("/")}),
            )
            .await,
        ),
        ("transformations", transformation.clone()),
        ("executions", string(&executions["models"][0]["id"])),
        ("issue-triggers", trigger),
        ("issues", string(&issues["models"][0]["id"])),
        ("requests", event.request_id.clone()),
        ("events", event.id.clone()),
        ("attempts", string(&attempts["models"][0]["id"])),
        ("bookmarks", created(gw, "/bookmarks", bookmark).await),
    ]);
    for (kind, query) in [
        ("events", &by_source),
        ("requests", &by_source),
        ("ignored-events", &by_cause),
    ] {
        let path = format!("/bulk/{kind}/retry");
        by_collection.insert(bulk_key(kind), created(gw, &path, query.clone()).await);
    }
    let by_prefix = BTreeMap::from([
        ("src_", string(source)),
        ("des_", string(destination)),
        ("web_", connection_id),
        ("trs_", transformation),
        ("evtreq_", event_data_id),
    ]);
    Made {
        by_prefix,
        by_collection,
    }
}

/// The key of a bulk retry of `kind` among `Made::by_collection`: the
/// segment before its id (`/bulk/events/retry/:id`) with its kind.
fn bulk_key(kind: &str) -> &'static str {
    match kind {
        "events" => "bulk/events",
        "requests" => "bulk/requests",
        _ => "bulk/ignored-events",
    }
}

fn string(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not an id: {value}"))
        .to_string()
}

/// POSTs `body` to `path` and returns the id of what it made.
async fn created(gw: &TestGateway, path: &str, body: Value) -> String {
    let (status, answer) = gw.api_send(Method::POST, path, body.clone()).await;
    assert_eq!(status, 200, "POST {path} {body}: {answer}");
    string(&answer["id"])
}

impl Made {
    /// `path` with its placeholders replaced by made ids.
    fn path(&self, path: &str) -> String {
        let segments: Vec<&str> = path.split('/').collect();
        let mut filled = Vec::with_capacity(segments.len());
        for (n, segment) in segments.iter().enumerate() {
            let collection = match *segment {
                ":id" if segments[n - 1] == "retry" => bulk_key(segments[n - 2]),
                ":id" => segments[n - 1],
                ":execution_id" => "executions",
                _ => {
                    filled.push(segment.to_string());
                    continue;
                }
            };
            filled.push(self.by_collection[collection].clone());
        }
        filled.join("/")
    }

    /// `body` with the reference's ids replaced by made ones of their kind.
    fn body(&self, body: &Value) -> Value {
        match body {
            Value::String(text) => {
                let made = self
                    .by_prefix
                    .iter()
                    .find(|(prefix, _)| text.starts_with(*prefix));
                made.map_or_else(|| body.clone(), |(_, id)| json!(id))
            }
            Value::Array(items) => items.iter().map(|item| self.body(item)).collect(),
            Value::Object(fields) => {
                let fields = fields
                    .iter()
                    .map(|(name, value)| (name.clone(), self.body(value)));
                Value::Object(fields.collect())
            }
            _ => body.clone(),
        }
    }
}

/// `query` with its cursors (`next`, `previous`: the reference's are ids)
/// replaced by real ones of the same list and order.
async fn query(gw: &TestGateway, path: &str, query: &str) -> String {
    let pairs: Vec<(&str, &str)> = query.split('&').filter_map(|p| p.split_once('=')).collect();
    if !pairs
        .iter()
        .any(|(name, _)| matches!(*name, "next" | "previous"))
    {
        return query.to_string();
    }
    let order: Vec<String> = pairs
        .iter()
        .filter(|(name, _)| !matches!(*name, "next" | "previous"))
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    let first = format!(
        "{path}?{}",
        [order.clone(), vec!["limit=1".into()]].concat().join("&")
    );
    let (_, page) = gw.api_get(&first).await;
    let next = string(&page["pagination"]["next"]);
    let mut filled = Vec::new();
    for (name, value) in pairs {
        let value = match name {
            "next" => next.clone(),
            "previous" => {
                let (_, second) = gw.api_get(&format!("{first}&next={next}")).await;
                string(&second["pagination"]["prev"])
            }
            _ => value.to_string(),
        };
        filled.push(format!("{name}={value}"));
    }
    filled.join("&")
}

/// Sends `example` as printed, with made ids; returns why its answer is not
/// the reference's, if it is not.
async fn send(
    gw: &TestGateway,
    made: &Made,
    example: &RequestExample,
    response: Option<&Value>,
) -> Option<String> {
    let path = made.path(example.path.trim_start_matches("/2023-07-01"));
    let target = match &example.query {
        Some(printed) => format!("{path}?{}", query(gw, &path, printed).await),
        None => path,
    };
    let method = Method::from_bytes(example.method.as_bytes()).unwrap();
    let mut call = gw.api(method, &format!("/2023-07-01{target}"));
    if let Some(body) = &example.body {
        call = call.json(&made.body(body));
    }
    let answer = call.send().await.unwrap();
    let status = answer.status().as_u16();
    let bytes = answer.bytes().await.unwrap();
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let place = format!("L{} {} {target}", example.line, example.method);
    if let Some((_, wanted, named)) = DIFFERENT_STATUS
        .iter()
        .find(|(line, ..)| *line == example.line)
    {
        let message = answer["message"].as_str().unwrap_or_default();
        return (status != *wanted || !message.contains(named))
            .then(|| format!("{place}: {status} {answer}, not {wanted} naming {named}"));
    }
    if !(200..300).contains(&status) {
        return Some(format!("{place}: {status} {answer}"));
    }
    let example = response?;
    shape_mismatch(&answer, example, SHAPE)
        .err()
        .map(|m| format!("{place}: {m}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_example_request_of_the_reference_is_answered_in_its_shape() {
    let sink = Sink::start_with(|received| {
        let fail =
            serde_json::from_slice::<Value>(&received.body).ok() == Some(json!({"fail": true}));
        Reply::Status(if fail { 500 } else { 200 })
    })
    .await;
    // About a hundred calls in a moment: no rate limit's business.
    let gw = TestGateway::start_with("api_rate_limit_per_minute = 100000", "").await;
    let made = make_objects(&gw, &sink).await;
    let examples = requests();
    assert_eq!(examples.len(), 95, "the reference's example requests");
    let responses = responses();
    // Deleting comes last, so that every other example finds what it names,
    // and in reverse (an issue before its trigger).
    let (deletes, others): (Vec<_>, Vec<_>) = examples.iter().partition(|e| e.method == "DELETE");
    let deletes = deletes.into_iter().rev();
    let mut wrong = Vec::new();
    for example in others.into_iter().chain(deletes) {
        wrong.extend(send(&gw, &made, example, example.response(&responses)).await);
    }
    assert!(
        wrong.is_empty(),
        "{} of 95 answered otherwise:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

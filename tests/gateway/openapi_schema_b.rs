//! `/openapi.json` describes the answers of the transformations, bookmarks,
//! bulk retries, issues, notifications and signing-secret endpoints with the
//! schemas of the Rust types that serialize them.

use crate::common::TestGateway;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const PREFIX: &str = "/2023-07-01";

/// Every operation of these endpoints, as `(path, method)`.
const OPERATIONS: &[(&str, &str)] = &[
    ("/transformations/run", "put"),
    ("/transformations", "get"),
    ("/transformations", "post"),
    ("/transformations", "put"),
    ("/transformations/{id}", "get"),
    ("/transformations/{id}", "put"),
    ("/transformations/{id}", "delete"),
    ("/transformations/{id}/executions", "get"),
    ("/transformations/{id}/executions/{execution_id}", "get"),
    ("/bookmarks", "get"),
    ("/bookmarks", "post"),
    ("/bookmarks/{id}", "get"),
    ("/bookmarks/{id}", "put"),
    ("/bookmarks/{id}", "delete"),
    ("/bookmarks/{id}/raw_body", "get"),
    ("/bookmarks/{id}/trigger", "post"),
    ("/bulk/events/retry/plan", "get"),
    ("/bulk/events/retry/plan/generate", "get"),
    ("/bulk/events/retry", "post"),
    ("/bulk/events/retry", "get"),
    ("/bulk/events/retry/{id}", "get"),
    ("/bulk/events/retry/{id}/cancel", "post"),
    ("/bulk/requests/retry/plan", "get"),
    ("/bulk/requests/retry/plan/generate", "get"),
    ("/bulk/requests/retry", "post"),
    ("/bulk/requests/retry", "get"),
    ("/bulk/requests/retry/{id}", "get"),
    ("/bulk/requests/retry/{id}/cancel", "post"),
    ("/bulk/ignored-events/retry/plan", "get"),
    ("/bulk/ignored-events/retry/plan/generate", "get"),
    ("/bulk/ignored-events/retry", "post"),
    ("/bulk/ignored-events/retry", "get"),
    ("/bulk/ignored-events/retry/{id}", "get"),
    ("/bulk/ignored-events/retry/{id}/cancel", "post"),
    ("/bulk/ignored-events/{id}/cancel", "post"),
    ("/issue-triggers", "get"),
    ("/issue-triggers", "post"),
    ("/issue-triggers", "put"),
    ("/issue-triggers/{id}", "get"),
    ("/issue-triggers/{id}", "put"),
    ("/issue-triggers/{id}", "post"),
    ("/issue-triggers/{id}", "delete"),
    ("/issue-triggers/{id}/disable", "put"),
    ("/issue-triggers/{id}/enable", "put"),
    ("/issues", "get"),
    ("/issues/count", "get"),
    ("/issues/{id}", "get"),
    ("/issues/{id}", "put"),
    ("/issues/{id}", "delete"),
    ("/notifications/webhooks", "put"),
    ("/workspace/signing-secret", "get"),
    ("/workspace/signing-secret", "put"),
    ("/workspace/signing-secret/rotate", "post"),
];

/// The JSON schema of a response, with a `$ref` to a component followed.
fn json_schema<'a>(doc: &'a Value, response: &'a Value) -> Option<&'a Value> {
    let schema = response.pointer("/content/application~1json/schema")?;
    match schema["$ref"].as_str() {
        Some(reference) => doc.pointer(reference.strip_prefix('#')?),
        None => Some(schema),
    }
}

/// Whether a schema says something about the answer's shape (not `{}`).
fn describes_a_shape(schema: &Value) -> bool {
    ["properties", "items", "allOf", "oneOf", "type"]
        .iter()
        .any(|key| schema.get(key).is_some())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_answer_of_these_endpoints_has_a_schema_and_every_error_the_error_body() {
    let gw = TestGateway::start("[[sources]]\nname = \"shop\"\n").await;
    let url = format!("http://{}/openapi.json", gw.gateway.api_addr.unwrap());
    let doc: Value = gw.http.get(url).send().await.unwrap().json().await.unwrap();
    for (path, method) in OPERATIONS {
        let operation = &doc["paths"][format!("{PREFIX}{path}")][method];
        let responses = operation["responses"].as_object();
        let responses = responses.unwrap_or_else(|| panic!("{method} {path} is not described"));
        let ok = json_schema(&doc, &responses["200"]);
        assert!(
            ok.is_some_and(describes_a_shape),
            "{method} {path}: no schema for its 200 answer"
        );
        for (status, response) in responses.iter().filter(|(status, _)| *status != "200") {
            assert_eq!(
                response.pointer("/content/application~1json/schema/$ref"),
                Some(&Value::from("#/components/schemas/ErrorBody")),
                "{method} {path}: its {status} is not described as the error body"
            );
        }
    }
}

/// The keys of an object, sorted.
fn keys(object: &Value) -> BTreeSet<String> {
    object.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_views_schema_names_exactly_the_fields_its_answer_has() {
    let gw = TestGateway::start("[[sources]]\nname = \"shop\"\n").await;
    let url = format!("http://{}/openapi.json", gw.gateway.api_addr.unwrap());
    let doc: Value = gw.http.get(url).send().await.unwrap().json().await.unwrap();
    let properties = |name: &str| keys(&doc["components"]["schemas"][name]["properties"]);
    let (status, secret) = gw.api_get("/workspace/signing-secret").await;
    assert_eq!(status, 200);
    assert_eq!(keys(&secret), properties("SigningSecretView"));
    let body = json!({ "name": "tag", "code": "addHandler('transform', (r) => r)" });
    let (status, transformation) = gw.api_send(Method::POST, "/transformations", body).await;
    assert_eq!(status, 200, "{transformation}");
    assert_eq!(keys(&transformation), properties("TransformationView"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_issues_data_is_one_of_two_shapes_told_apart_by_what_each_requires() {
    let gw = TestGateway::start("[[sources]]\nname = \"shop\"\n").await;
    let url = format!("http://{}/openapi.json", gw.gateway.api_addr.unwrap());
    let doc: Value = gw.http.get(url).send().await.unwrap().json().await.unwrap();
    let variants = doc["components"]["schemas"]["IssueData"]["oneOf"].as_array();
    let required: Vec<&Value> = variants.unwrap().iter().map(|v| &v["required"]).collect();
    assert_eq!(
        required,
        // Each its own field, and the `trigger_attempt` both always have.
        [
            &json!(["transformation_execution", "trigger_attempt"]),
            &json!(["trigger_event", "trigger_attempt"])
        ]
    );
}

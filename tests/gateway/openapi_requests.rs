//! Item 8 of issue 17, requests: every operation of `/openapi.json` that
//! takes a body describes it with a schema naming its fields (no free-form
//! object), and the reference's example bodies match those schemas.

use crate::common::TestGateway;
use crate::openapi_check::{document, operation_pointer, operations_of, violations};
use serde_json::{json, Value};

/// The reference's example request bodies (`reference_examples::requests`),
/// two queries it prints in its text, and the typed verifications and auth
/// methods of Hookdeck's SDK.
fn reference_examples() -> Vec<(&'static str, String, Value)> {
    let printed = crate::reference_examples::requests()
        .into_iter()
        .filter_map(|example| {
            let method = if example.method == "POST" {
                "post"
            } else {
                "put"
            };
            let template = example.path.replace(":id", "{id}");
            Some((method, template, example.body?))
        });
    let mut examples: Vec<(&'static str, String, Value)> = printed.collect();
    let texts = [
        // The query of L6535's bulk retry.
        (
            "/2023-07-01/bulk/events/retry",
            json!({"query": {"dir": "desc", "limit": 250, "status": ["SUCCESSFUL"], "order_by": "created_at", "created_at": {"gte": "2022-05-02T02:30:00.000Z", "lte": "2022-05-03T02:29:59.999Z"}}}),
        ),
        // L7495's query.
        (
            "/2023-07-01/bulk/requests/retry",
            json!({"query": {"rejection_cause": ["SOURCE_ARCHIVED"]}}),
        ),
    ];
    for (template, body) in texts {
        examples.push(("post", template.to_string(), body));
    }
    for verification in typed_verifications() {
        let body = json!({"name": "provider", "verification": verification});
        examples.push(("post", "/2023-07-01/sources".into(), body));
    }
    for auth_method in typed_auth_methods() {
        let body = json!({"name": "my-api", "url": "https://example.com/webhook", "auth_method": auth_method});
        examples.push(("post", "/2023-07-01/destinations".into(), body));
    }
    examples
}

/// `verification` as Hookdeck's SDK types it (`VerificationConfig`; its type
/// names lower case) and as answers show it (upper case), one per kind of
/// settings, and hookgate's flat spelling.
fn typed_verifications() -> Vec<Value> {
    vec![
        json!({"type": "STRIPE", "configs": {"webhook_secret_key": "whsec_0123456789abcdef"}}),
        json!({"type": "github", "configs": {"webhook_secret_key": "s3cret"}}),
        json!({"type": "HMAC", "configs": {"webhook_secret_key": "k", "header_key": "x-signature", "algorithm": "sha512", "encoding": "base64"}}),
        json!({"type": "basic_auth", "configs": {"username": "u", "password": "p"}}),
        json!({"type": "API_KEY", "configs": {"header_key": "x-api-key", "api_key": "k"}}),
        json!({"type": "GITLAB", "configs": {"api_key": "token"}}),
        json!({"type": "slack", "webhook_secret_key": "flat", "tolerance_seconds": 60}),
    ]
}

/// `auth_method` as the reference shows it and the SDK types it
/// (`DestinationAuthMethodConfig`).
fn typed_auth_methods() -> Vec<Value> {
    vec![
        json!({"type": "HOOKDECK_SIGNATURE", "config": {}}),
        json!({"type": "BEARER_TOKEN", "config": {"token": "t"}}),
        json!({"type": "BASIC_AUTH", "config": {"username": "u", "password": "p"}}),
        json!({"type": "API_KEY", "config": {"key": "api_key", "api_key": "k", "to": "query"}}),
        json!({"type": "CUSTOM_SIGNATURE", "config": {"key": "x-sig", "signing_secret": "s"}}),
    ]
}

/// Bodies whose nested parts have the wrong type or miss a required field:
/// the request schemas refuse them, and so does the gateway, with a 422 naming
/// the field (`named`).
fn wrong_nested_bodies() -> Vec<(&'static str, &'static str, Value, &'static str)> {
    let run =
        |request: Value| json!({"code": "addHandler('transform', (r) => r)", "request": request});
    vec![
        (
            "post",
            "/2023-07-01/sources",
            json!({"name": "s", "verification": {"type": "STRIPE", "configs": {"webhook_secret_key": 5}}}),
            "webhook_secret_key",
        ),
        (
            "post",
            "/2023-07-01/sources",
            json!({"name": "s", "verification": {"type": "API_KEY", "configs": {"header_key": "x-key"}}}),
            "api_key",
        ),
        (
            "post",
            "/2023-07-01/destinations",
            json!({"name": "d", "url": "https://example.com", "auth_method": {"type": "BEARER_TOKEN", "config": {"token": ["t"]}}}),
            "token",
        ),
        (
            "post",
            "/2023-07-01/destinations",
            json!({"name": "d", "url": "https://example.com", "auth_method": {"type": "API_KEY", "config": {"key": "k", "api_key": "v", "to": "body"}}}),
            "to",
        ),
        (
            "put",
            "/2023-07-01/transformations/run",
            run(json!({"headers": "content-type: text/plain"})),
            "request.headers",
        ),
        (
            "put",
            "/2023-07-01/transformations/run",
            run(json!({"path": 5})),
            "request.path",
        ),
        (
            "post",
            "/v1/webhook-jobs",
            json!({"application_id": "app_x", "event_type": "user.created", "payload": [1, 2]}),
            "payload",
        ),
        (
            "post",
            "/2023-07-01/bulk/events/retry",
            json!({"query": {"created_at": {"after": "2099-01-01"}}}),
            "created_at[after]",
        ),
        (
            "post",
            "/2023-07-01/bulk/events/retry",
            json!({"query": {"not_a_filter": "x"}}),
            "not_a_filter",
        ),
        // Each kind's query has its own list's filters, not another kind's.
        (
            "post",
            "/2023-07-01/bulk/events/retry",
            json!({"query": {"cause": "FILTERED"}}),
            "cause",
        ),
        (
            "post",
            "/2023-07-01/bulk/requests/retry",
            json!({"query": {"webhook_id": ["web_x"]}}),
            "webhook_id",
        ),
        (
            "post",
            "/2023-07-01/bulk/ignored-events/retry",
            json!({"query": {"status": ["FAILED"]}}),
            "status",
        ),
    ]
}

async fn served_document(gw: &TestGateway) -> &'static Value {
    let api = format!("http://{}", gw.gateway.api_addr.unwrap());
    document(&gw.http, &api).await
}

/// The pointer to an operation's request body schema.
fn request_schema(template: &str, method: &str) -> String {
    format!(
        "{}/requestBody/content/application~1json/schema",
        operation_pointer(template, method)
    )
}

/// Whether `schema` names the fields of the object it describes: it has
/// `properties`, through `$ref`s, every alternative of a `oneOf` but `null`,
/// and some part of an `allOf`.
fn names_fields(document: &Value, schema: &Value) -> bool {
    if let Some(Value::String(reference)) = schema.get("$ref") {
        let target = document.pointer(reference.trim_start_matches('#'));
        return target.is_some_and(|target| names_fields(document, target));
    }
    if let Some(Value::Array(parts)) = schema.get("allOf") {
        return parts.iter().any(|part| names_fields(document, part));
    }
    if let Some(Value::Array(alternatives)) = schema.get("oneOf") {
        let null = json!({"type": "null"});
        return alternatives
            .iter()
            .filter(|alternative| **alternative != null)
            .all(|alternative| names_fields(document, alternative));
    }
    schema["properties"]
        .as_object()
        .is_some_and(|properties| !properties.is_empty())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_request_body_is_described_field_by_field() {
    let gw = TestGateway::start("").await;
    let document = served_document(&gw).await;
    let mut bodies = 0;
    let mut free_form = Vec::new();
    for (path, method, operation) in operations_of(document) {
        let Some(schema) = operation.pointer("/requestBody/content/application~1json/schema")
        else {
            continue;
        };
        bodies += 1;
        if !names_fields(document, schema) {
            free_form.push(format!("{method} {path}"));
        }
    }
    assert!(
        free_form.is_empty(),
        "request bodies without their fields:\n{}",
        free_form.join("\n")
    );
    // The reference's 26 operations with a body (each spelling and kind),
    // and hookgate's outbound ones.
    assert!(bodies >= 34, "only {bodies} operations take a body");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_references_example_bodies_match_the_request_schemas() {
    let gw = TestGateway::start("").await;
    let document = served_document(&gw).await;
    for (method, template, body) in reference_examples() {
        let errors = violations(document, &request_schema(&template, method), &body);
        assert!(
            errors.is_empty(),
            "{method} {template} {body}:\n{}",
            errors.join("\n")
        );
    }
}

/// The schemas say what a body may not be, so a client generated from
/// them catches these before sending.
#[tokio::test(flavor = "multi_thread")]
async fn the_request_schemas_refuse_what_the_reference_refuses() {
    let gw = TestGateway::start("").await;
    let document = served_document(&gw).await;
    let refused = [
        (
            "post",
            "/2023-07-01/sources",
            json!({"description": "no name"}),
        ),
        (
            "post",
            "/2023-07-01/sources",
            json!({"name": "s", "allowed_http_methods": ["TRACE"]}),
        ),
        (
            "post",
            "/2023-07-01/destinations",
            json!({"name": "d", "url": "https://x", "rate_limit_period": "day"}),
        ),
        (
            "put",
            "/2023-07-01/destinations/{id}",
            json!({"http_method": "OPTIONS"}),
        ),
        (
            "put",
            "/2023-07-01/connections/{id}",
            json!({"rules": [{"type": "retry", "strategy": "random"}]}),
        ),
        (
            "post",
            "/2023-07-01/connections",
            json!({"rules": [{"type": "delay"}]}),
        ),
        (
            "post",
            "/2023-07-01/connections",
            json!({"rules": [{"type": "unknown"}]}),
        ),
        ("post", "/v1/endpoints", json!({"url": "https://x"})),
        (
            "post",
            "/2023-07-01/issue-triggers",
            json!({"type": "delivery", "configs": {"strategy": "sometimes", "connections": "*"}}),
        ),
        (
            "put",
            "/2023-07-01/issue-triggers/{id}",
            json!({"channels": {"pager": {}}}),
        ),
    ];
    let nested = wrong_nested_bodies()
        .into_iter()
        .map(|(method, template, body, _)| (method, template, body));
    for (method, template, body) in refused.into_iter().chain(nested) {
        let errors = violations(document, &request_schema(template, method), &body);
        assert!(!errors.is_empty(), "{method} {template} {body} passed");
    }
}

/// What the schemas refuse in a nested part, the gateway refuses too: a 422
/// whose message names the field, and nothing is created.
#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_nested_type_is_a_422_naming_the_field() {
    let gw = TestGateway::start("").await;
    for (method, template, body, named) in wrong_nested_bodies() {
        let path = template.trim_start_matches("/2023-07-01");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let (status, answer) = gw.api_send(method, path, body.clone()).await;
        let message = answer["message"].as_str().unwrap_or_default();
        assert_eq!(status, 422, "{path} {body}: {answer}");
        assert!(message.contains(named), "{path} {body}: {message}");
    }
    let bulk_kinds =
        ["events", "requests", "ignored-events"].map(|kind| format!("/bulk/{kind}/retry"));
    for list in ["/sources", "/destinations"]
        .into_iter()
        .chain(bulk_kinds.iter().map(String::as_str))
    {
        let (_, listed) = gw.api_get(list).await;
        assert_eq!(listed["count"], 0, "{list}: {listed}");
    }
}

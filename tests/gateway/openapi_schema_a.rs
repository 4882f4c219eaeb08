//! `/openapi.json` describes the answers of the requests, events, attempts,
//! ignored events, sources, destinations and connections endpoints: every
//! operation has a JSON schema for its success and its errors, and the
//! objects a live gateway sends have exactly the fields those schemas name.

use crate::common::{route, Reply, Sink, TestGateway};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// The operations these endpoints are: (method, path).
const OPERATIONS: [(&str, &str); 30] = [
    ("get", "/2023-07-01/requests"),
    ("get", "/2023-07-01/requests/{id}"),
    ("get", "/2023-07-01/requests/{id}/raw_body"),
    ("get", "/2023-07-01/requests/{id}/events"),
    ("get", "/2023-07-01/requests/{id}/ignored_events"),
    ("post", "/2023-07-01/requests/{id}/retry"),
    ("get", "/2023-07-01/ignored_events"),
    ("get", "/2023-07-01/ignored_events/{id}"),
    ("get", "/2023-07-01/events"),
    ("get", "/2023-07-01/events/{id}"),
    ("get", "/2023-07-01/events/{id}/raw_body"),
    ("post", "/2023-07-01/events/{id}/retry"),
    ("put", "/2023-07-01/events/{id}/mute"),
    ("get", "/2023-07-01/attempts"),
    ("get", "/2023-07-01/attempts/{id}"),
    ("get", "/2023-07-01/sources"),
    ("post", "/2023-07-01/sources"),
    ("put", "/2023-07-01/sources"),
    ("get", "/2023-07-01/sources/{id}"),
    ("put", "/2023-07-01/sources/{id}"),
    ("delete", "/2023-07-01/sources/{id}"),
    ("put", "/2023-07-01/sources/{id}/archive"),
    ("get", "/2023-07-01/destinations"),
    ("get", "/2023-07-01/destinations/{id}"),
    ("get", "/2023-07-01/destinations/{id}/queue"),
    ("get", "/2023-07-01/connections"),
    ("get", "/2023-07-01/connections/count"),
    ("get", "/2023-07-01/connections/{id}"),
    ("put", "/2023-07-01/connections/{id}/pause"),
    ("put", "/2023-07-01/connections/{id}/unpause"),
];

/// Which schema each object's answer is.
const NAMED: [(&str, &str); 6] = [
    ("/2023-07-01/events/{id}", "EventView"),
    ("/2023-07-01/requests/{id}", "RequestView"),
    ("/2023-07-01/attempts/{id}", "AttemptView"),
    ("/2023-07-01/sources/{id}", "SourceView"),
    ("/2023-07-01/destinations/{id}", "DestinationView"),
    ("/2023-07-01/connections/{id}", "ConnectionView"),
];

async fn document(gw: &TestGateway) -> Value {
    let url = format!("http://{}/openapi.json", gw.gateway.api_addr.unwrap());
    gw.http.get(url).send().await.unwrap().json().await.unwrap()
}

/// A shop whose requests make one event (connection `shop-to-orders`) and
/// one ignored event (`shop-to-strict` filters out what is not `ok`).
fn shop(sink: &Sink) -> String {
    let only_ok = r#"rules = [ { type = "filter", body = { ok = true } } ]"#;
    let orders = route("shop", "orders", &sink.url("/"), "");
    let strict = route("shop", "strict", &sink.url("/"), only_ok);
    format!("[[sources]]\nname = \"shop\"\n{orders}{strict}")
}

/// The schema `schema` stands for, following a `$ref`.
fn resolved<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            let found = &doc["components"]["schemas"][name];
            assert!(found.is_object(), "{reference} is not in components");
            resolved(doc, found)
        }
        None => schema,
    }
}

/// The alternatives a schema allows (`oneOf`, `anyOf`, `allOf` parts), nulls
/// left out, each resolved; the schema itself when it has none.
fn parts<'a>(doc: &'a Value, schema: &'a Value) -> Vec<&'a Value> {
    let schema = resolved(doc, schema);
    let nested: Vec<&Value> = ["oneOf", "anyOf", "allOf"]
        .iter()
        .filter_map(|key| schema[*key].as_array())
        .flatten()
        .filter(|part| part["type"] != "null")
        .flat_map(|part| parts(doc, part))
        .collect();
    if nested.is_empty() {
        vec![schema]
    } else {
        nested
    }
}

/// The schema of `field` in `schema`, if it names one.
fn field_schema<'a>(doc: &'a Value, schema: &'a Value, field: &str) -> Option<&'a Value> {
    parts(doc, schema)
        .into_iter()
        .find_map(|part| part["properties"].get(field))
}

/// The field names a schema lists under `key` (`properties` or `required`),
/// in all its parts.
fn names(doc: &Value, schema: &Value, key: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for part in parts(doc, schema) {
        match &part[key] {
            Value::Object(properties) => names.extend(properties.keys().cloned()),
            Value::Array(required) => {
                names.extend(required.iter().filter_map(Value::as_str).map(String::from))
            }
            _ => {}
        }
    }
    names
}

/// Asserts that every object in `value` sends only fields its schema names
/// and every field it requires (free-form objects, with no `properties`,
/// hold anything).
fn assert_fits(doc: &Value, schema: &Value, value: &Value, at: &str) {
    match value {
        Value::Object(fields) => {
            let (named, required) = (
                names(doc, schema, "properties"),
                names(doc, schema, "required"),
            );
            if named.is_empty() {
                return;
            }
            let sent: BTreeSet<String> = fields.keys().cloned().collect();
            let unnamed: Vec<_> = sent.difference(&named).collect();
            assert!(
                unnamed.is_empty(),
                "{at}: {unnamed:?} sent but not described"
            );
            let missing: Vec<_> = required.difference(&sent).collect();
            assert!(
                missing.is_empty(),
                "{at}: {missing:?} required but not sent"
            );
            for (name, field) in fields {
                let inner = field_schema(doc, schema, name).unwrap();
                assert_fits(doc, inner, field, &format!("{at}.{name}"));
            }
        }
        Value::Array(items) => {
            let item_schema = parts(doc, schema)
                .into_iter()
                .find_map(|part| part.get("items"))
                .unwrap_or_else(|| panic!("{at}: an array without items described"));
            for (index, item) in items.iter().enumerate() {
                assert_fits(doc, item_schema, item, &format!("{at}[{index}]"));
            }
        }
        _ => {}
    }
}

/// The success schema of an operation.
fn success<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    let operation = &doc["paths"][path][method];
    let schema = &operation["responses"]["200"]["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path}: no JSON schema for 200"
    );
    schema
}

#[tokio::test(flavor = "multi_thread")]
async fn every_operation_describes_its_answer_and_its_errors() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink)).await;
    let doc = document(&gw).await;
    for (method, path) in OPERATIONS {
        success(&doc, method, path);
        let responses = doc["paths"][path][method]["responses"].as_object().unwrap();
        for (status, response) in responses.iter().filter(|(s, _)| *s != "200") {
            let schema = &response["content"]["application/json"]["schema"]["$ref"];
            assert_eq!(
                schema, "#/components/schemas/ErrorBody",
                "{method} {path} {status}"
            );
        }
    }
    for (path, name) in NAMED {
        let schema = success(&doc, "get", path);
        let reference = format!("#/components/schemas/{name}");
        assert_eq!(schema["$ref"], json!(reference));
        // Every field is sent, null or not: each is required.
        let (named, required) = (
            names(&doc, schema, "properties"),
            names(&doc, schema, "required"),
        );
        assert_eq!(named, required, "{name}");
    }
    for (method, path, input) in [
        ("post", "/2023-07-01/sources", "SourceInput"),
        ("put", "/2023-07-01/sources", "SourceInput"),
        ("put", "/2023-07-01/sources/{id}", "SourceChange"),
        ("post", "/2023-07-01/destinations", "DestinationInput"),
        ("put", "/2023-07-01/connections/{id}", "ConnectionChange"),
    ] {
        let body = &doc["paths"][path][method]["requestBody"]["content"]["application/json"];
        let reference = format!("#/components/schemas/{input}");
        assert_eq!(body["schema"]["$ref"], json!(reference), "{method} {path}");
    }
    let retry = &doc["paths"]["/2023-07-01/requests/{id}/retry"]["post"];
    let body = &retry["requestBody"]["content"]["application/json"]["schema"];
    let accepted = resolved(&doc, body);
    assert!(accepted["properties"]["webhook_ids"].is_object());
}

#[tokio::test(flavor = "multi_thread")]
async fn what_is_sent_has_the_fields_the_document_names() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink)).await;
    let doc = document(&gw).await;
    let (_, received) = gw.post("/e/shop", r#"{"ok":false}"#).await;
    let request = received["request_id"].as_str().unwrap().to_string();
    gw.wait_routed(&request).await;
    gw.wait_events(1, |e| e.attempts == 1).await;
    let (_, events) = gw.api_get("/events").await;
    let event = events["models"][0]["id"].as_str().unwrap().to_string();
    let (_, ignored) = gw.api_get("/ignored_events").await;
    let ignored = ignored["models"][0]["id"].to_string();
    let (_, connection) = gw.api_get("/connections?name=shop-to-orders").await;
    let connection = connection["models"][0]["id"].as_str().unwrap().to_string();
    let (_, destination) = gw.api_get("/destinations?name=orders").await;
    let destination = destination["models"][0]["id"].as_str().unwrap().to_string();
    let gets = [
        ("/2023-07-01/requests", "/requests?include=data".to_string()),
        ("/2023-07-01/requests/{id}", format!("/requests/{request}")),
        (
            "/2023-07-01/requests/{id}/raw_body",
            format!("/requests/{request}/raw_body"),
        ),
        (
            "/2023-07-01/requests/{id}/events",
            format!("/requests/{request}/events"),
        ),
        (
            "/2023-07-01/requests/{id}/ignored_events",
            format!("/requests/{request}/ignored_events"),
        ),
        ("/2023-07-01/ignored_events", "/ignored_events".to_string()),
        (
            "/2023-07-01/ignored_events/{id}",
            format!("/ignored_events/{ignored}"),
        ),
        ("/2023-07-01/events", "/events?include=data".to_string()),
        ("/2023-07-01/events/{id}", format!("/events/{event}")),
        (
            "/2023-07-01/events/{id}/raw_body",
            format!("/events/{event}/raw_body"),
        ),
        ("/2023-07-01/attempts", "/attempts".to_string()),
        ("/2023-07-01/sources", "/sources".to_string()),
        ("/2023-07-01/sources/{id}", "/sources/shop".to_string()),
        ("/2023-07-01/destinations", "/destinations".to_string()),
        (
            "/2023-07-01/destinations/{id}",
            format!("/destinations/{destination}"),
        ),
        (
            "/2023-07-01/destinations/{id}/queue",
            format!("/destinations/{destination}/queue"),
        ),
        ("/2023-07-01/connections", "/connections".to_string()),
        (
            "/2023-07-01/connections/count",
            "/connections/count".to_string(),
        ),
        (
            "/2023-07-01/connections/{id}",
            format!("/connections/{connection}"),
        ),
    ];
    for (described, asked) in gets {
        let (status, answer) = gw.api_get(&asked).await;
        assert_eq!(status, 200, "{asked}: {answer}");
        assert_fits(&doc, success(&doc, "get", described), &answer, &asked);
    }
    let (_, attempts) = gw.api_get(&format!("/attempts?event_id={event}")).await;
    let attempt = attempts["models"][0]["id"].as_str().unwrap();
    let (_, answer) = gw.api_get(&format!("/attempts/{attempt}")).await;
    let described = success(&doc, "get", "/2023-07-01/attempts/{id}");
    assert_fits(&doc, described, &answer, "GET /attempts/{id}");
    let made = json!({ "name": "made", "description": "by the test" });
    let none = json!({});
    let changes = [
        (
            Method::POST,
            "/2023-07-01/events/{id}/retry",
            format!("/events/{event}/retry"),
            &none,
        ),
        (
            Method::PUT,
            "/2023-07-01/events/{id}/mute",
            format!("/events/{event}/mute"),
            &none,
        ),
        (
            Method::POST,
            "/2023-07-01/requests/{id}/retry",
            format!("/requests/{request}/retry"),
            &none,
        ),
        (
            Method::PUT,
            "/2023-07-01/connections/{id}/pause",
            format!("/connections/{connection}/pause"),
            &none,
        ),
        (
            Method::PUT,
            "/2023-07-01/connections/{id}/unpause",
            format!("/connections/{connection}/unpause"),
            &none,
        ),
        (
            Method::POST,
            "/2023-07-01/sources",
            "/sources".to_string(),
            &made,
        ),
        (
            Method::PUT,
            "/2023-07-01/sources/{id}",
            "/sources/made".to_string(),
            &made,
        ),
        (
            Method::PUT,
            "/2023-07-01/sources/{id}/archive",
            "/sources/made/archive".to_string(),
            &none,
        ),
        (
            Method::DELETE,
            "/2023-07-01/sources/{id}",
            "/sources/made".to_string(),
            &none,
        ),
    ];
    for (method, described, asked, body) in changes {
        let operation = method.as_str().to_lowercase();
        let (status, answer) = gw.api_send(method, &asked, body.clone()).await;
        assert_eq!(status, 200, "{asked}: {answer}");
        assert_fits(&doc, success(&doc, &operation, described), &answer, &asked);
    }
}

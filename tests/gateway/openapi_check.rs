//! Every answer the suite's API helpers receive is checked against the
//! gateway's own `/openapi.json`: the operation it came from must describe
//! its status, and where that description has a JSON schema the answer must
//! match it. The document is generated from the Rust types that serialize the
//! answers, so this keeps the two honest.

use serde_json::{json, Value};
use tokio::sync::OnceCell;

/// The document, fetched once from the first gateway that asks (every
/// gateway serves the same one).
static DOCUMENT: OnceCell<Value> = OnceCell::const_new();

/// The version prefixes every Hookdeck-style path is also served under.
const VERSION_PREFIXES: [&str; 2] = ["/2023-07-01", "/2024-03-01"];

pub async fn document(http: &reqwest::Client, api: &str) -> &'static Value {
    DOCUMENT
        .get_or_init(|| async {
            let answer = http
                .get(format!("{api}/openapi.json"))
                .send()
                .await
                .expect("the API serves /openapi.json");
            answer.json().await.expect("/openapi.json is JSON")
        })
        .await
}

/// Every error the API answers has this shape, whether the operation lists
/// its status or not (a missing key, a rate limit, an unknown path).
const ERROR_BODY: &str = "#/components/schemas/ErrorBody";

/// Panics, naming the operation, when `body` (answered `status` to
/// `method path`) is not what the document says that operation answers.
/// A success must be an operation's; an error, of any operation or none (a
/// test may well ask for what does not exist), is the error body.
pub fn assert_documented(document: &Value, method: &str, path: &str, status: u16, body: &Value) {
    let found = operation(document, method, path);
    assert!(
        found.is_some() || status >= 400,
        "{method} {path} answered {status} but /openapi.json has no such operation"
    );
    let described = found.as_ref().and_then(|(template, operation)| {
        response_schema(operation, status)?;
        Some(format!(
            "{}/responses/{status}/content/application~1json/schema",
            operation_pointer(template, method)
        ))
    });
    let Some(pointer) = described.or_else(|| (status >= 400).then(|| ERROR_BODY.to_string()))
    else {
        return;
    };
    let errors = violations(document, &pointer, body);
    let shown: String = body.to_string().chars().take(2000).collect();
    assert!(
        errors.is_empty(),
        "{method} {path} ({status}) does not match /openapi.json's {pointer}:\n{}\n{shown}",
        errors.join("\n")
    );
}

/// The document's path and operation for a request path: the one whose
/// fixed segments match, preferring the most fixed segments
/// (`/connections/count` over `/connections/{id}`).
pub fn operation<'a>(document: &'a Value, method: &str, path: &str) -> Option<(String, &'a Value)> {
    let wanted = segments(path);
    let paths = document["paths"].as_object()?;
    paths
        .iter()
        .filter_map(|(template, item)| {
            let operation = item.get(method.to_lowercase())?;
            let fixed = matching_fixed_segments(&segments(template), &wanted)?;
            Some((fixed, template.clone(), operation))
        })
        .max_by_key(|(fixed, _, _)| *fixed)
        .map(|(_, template, operation)| (template, operation))
}

/// A path's segments without a version prefix and with `/webhooks` read as
/// `/connections` (the same routes).
fn segments(path: &str) -> Vec<String> {
    let path = path.split('?').next().unwrap_or_default();
    let path = VERSION_PREFIXES
        .iter()
        .find_map(|prefix| path.strip_prefix(prefix))
        .unwrap_or(path);
    let mut segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if segments.first().is_some_and(|s| s == "webhooks") {
        segments[0] = "connections".into();
    }
    segments
}

/// How many fixed segments of `template` match `path`; None when it does not match.
fn matching_fixed_segments(template: &[String], path: &[String]) -> Option<usize> {
    if template.len() != path.len() {
        return None;
    }
    let mut fixed = 0;
    for (t, p) in template.iter().zip(path) {
        if t.starts_with('{') && t.ends_with('}') {
            continue;
        }
        if t != p {
            return None;
        }
        fixed += 1;
    }
    Some(fixed)
}

/// The JSON schema of the operation's answer with `status` (or its
/// `default`); None when the document gives none.
pub fn response_schema(operation: &Value, status: u16) -> Option<&Value> {
    let responses = &operation["responses"];
    let response = responses
        .get(status.to_string())
        .or_else(|| responses.get("default"))?;
    response.pointer("/content/application~1json/schema")
}

/// Every operation of the document: (path, method, operation).
pub fn operations_of(document: &Value) -> impl Iterator<Item = (&String, &String, &Value)> {
    let paths = document["paths"].as_object().into_iter().flatten();
    paths.flat_map(|(path, item)| {
        let methods = item.as_object().into_iter().flatten();
        methods.map(move |(method, operation)| (path, method, operation))
    })
}

/// Where `method template`'s operation is in the document, as a `$ref`.
pub fn operation_pointer(template: &str, method: &str) -> String {
    // A JSON pointer in a URI fragment: `~` and `/` escaped as the pointer
    // says, `{` and `}` percent-encoded as a URI wants.
    let escaped = template
        .replace('~', "~0")
        .replace('/', "~1")
        .replace('{', "%7B")
        .replace('}', "%7D");
    format!("#/paths/{escaped}/{}", method.to_lowercase())
}

/// How `value` fails the document's schema at `pointer` (a `$ref`); empty
/// when it matches.
pub fn violations(document: &Value, pointer: &str, value: &Value) -> Vec<String> {
    let mut root = document.clone();
    root["$ref"] = json!(pointer);
    let validator = jsonschema::validator_for(&root)
        .unwrap_or_else(|e| panic!("{pointer}: the document's schema is invalid: {e}"));
    validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn paths_match_their_template_with_the_most_fixed_segments() {
    let document = json!({ "paths": {
        "/2023-07-01/connections/{id}": { "get": {} },
        "/2023-07-01/connections/count": { "get": {} },
        "/v1/webhook-jobs/{id}": { "get": {} },
    }});
    let found = |path| operation(&document, "GET", path).map(|(t, _)| t);
    assert_eq!(
        found("/connections/count").as_deref(),
        Some("/2023-07-01/connections/count")
    );
    assert_eq!(
        found("/2024-03-01/webhooks/web_1?x=1").as_deref(),
        Some("/2023-07-01/connections/{id}")
    );
    assert_eq!(
        found("/v1/webhook-jobs/job_1").as_deref(),
        Some("/v1/webhook-jobs/{id}")
    );
    assert_eq!(found("/nowhere"), None);
}

/// Item 8 of issue 17: every operation the document lists describes its
/// success answer and its errors with a schema, so a client generated from
/// it has every model.
#[tokio::test(flavor = "multi_thread")]
async fn every_operation_describes_its_answers_with_schemas() {
    let gw = crate::common::TestGateway::start("").await;
    let api = format!("http://{}", gw.gateway.api_addr.unwrap());
    let document = document(&gw.http, &api).await;
    let (mut undescribed, mut operations) = (Vec::new(), 0);
    for (path, method, operation) in operations_of(document) {
        operations += 1;
        for (status, response) in operation["responses"].as_object().unwrap() {
            // JSON, or the messages of a stream (`hookgate listen`'s).
            let described = ["application~1json", "text~1event-stream"]
                .iter()
                .any(|media| {
                    response
                        .pointer(&format!("/content/{media}/schema"))
                        .is_some()
                });
            if !described {
                undescribed.push(format!("{method} {path} {status}"));
            }
        }
    }
    assert!(
        undescribed.is_empty(),
        "answers without a schema:\n{}",
        undescribed.join("\n")
    );
    // The reference's 90 endpoints and hookgate's own, each spelling listed.
    assert!(operations >= 100, "only {operations} operations");
}

//! Item 9 of issue 17, answers: every response example of the reference
//! (`reference_examples::responses`) is checked
//! against the answer schema `/openapi.json` gives its operation. Every field
//! of the example must be a required property there, with the example's JSON
//! type, into nested objects and array items; hookgate may add fields. As
//! every answer the suite reads is checked against the same schemas
//! (`TestGateway::api`), an answer then has every field of its example.

use crate::common::TestGateway;
use crate::openapi_check::{document, operation, response_schema};
use crate::reference_shape::NOT_ALWAYS_THERE;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn every_response_example_of_the_reference_fits_its_answer_schema() {
    let gw = TestGateway::start("").await;
    let api = format!("http://{}", gw.gateway.api_addr.unwrap());
    let document = document(&gw.http, &api).await;
    let examples = crate::reference_examples::responses();
    assert_eq!(examples.len(), 80, "the reference has 80 response examples");
    let mut mismatches = Vec::new();
    for example in &examples {
        let endpoint = &example.endpoint;
        let (method, path) = endpoint.split_once(' ').unwrap();
        let path = path.replace(":id", "x").replace(":execution_id", "y");
        let place = format!("L{} {endpoint}", example.line);
        let Some((_, found)) = operation(document, method, &path) else {
            mismatches.push(format!("{place}: no such operation"));
            continue;
        };
        let Some(schema) = response_schema(found, 200) else {
            mismatches.push(format!("{place}: no 200 answer schema"));
            continue;
        };
        let mut found = Vec::new();
        compare(document, schema, &example.example, "", &mut found);
        mismatches.extend(found.into_iter().map(|m| format!("{place}: {m}")));
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// Adds to `mismatches` where `example` has a field `schema` does not
/// require, or a value of another JSON type.
fn compare(
    document: &Value,
    schema: &Value,
    example: &Value,
    at: &str,
    mismatches: &mut Vec<String>,
) {
    let schema = not_null(document, schema);
    if free_form(&schema) {
        return;
    }
    if let Some(kind) = type_mismatch(&schema, example) {
        mismatches.push(format!("{at}: {kind}"));
        return;
    }
    match example {
        Value::Object(fields) => {
            let (properties, required) = fields_of(document, &schema, fields);
            let parent = at.rsplit('.').next().unwrap_or_default();
            for (name, value) in fields {
                let here = format!("{at}.{name}");
                if NOT_ALWAYS_THERE.contains(&(parent, name.as_str())) {
                    continue;
                }
                match properties.get(name) {
                    None => mismatches.push(format!("{here} is not in the schema")),
                    Some(_) if !required.contains(name) => {
                        mismatches.push(format!("{here} is not required"))
                    }
                    Some(_) if value.is_null() => {}
                    Some(property) => compare(document, property, value, &here, mismatches),
                }
            }
        }
        Value::Array(items) => {
            if let (Some(first), Some(item_schema)) = (items.first(), schema.get("items")) {
                compare(document, item_schema, first, &format!("{at}[]"), mismatches);
            }
        }
        _ => {}
    }
}

/// `schema` with `$ref`s followed and a `null` alternative dropped.
fn not_null(document: &Value, schema: &Value) -> Value {
    if let Some(Value::String(reference)) = schema.get("$ref") {
        let target = document.pointer(reference.trim_start_matches('#'));
        return not_null(document, target.unwrap_or(&Value::Null));
    }
    if let Some(Value::Array(alternatives)) = schema.get("oneOf") {
        let kept: Vec<&Value> = alternatives
            .iter()
            .filter(|a| **a != json!({"type": "null"}))
            .collect();
        if let [only] = kept[..] {
            return not_null(document, only);
        }
    }
    schema.clone()
}

/// A schema that says nothing of its value's fields (any JSON, or any
/// object, null allowed or not).
fn free_form(schema: &Value) -> bool {
    let described = ["properties", "items", "oneOf", "allOf", "anyOf", "enum"];
    let says_nothing = !described.iter().any(|key| schema.get(key).is_some());
    let any_object = match schema.get("type") {
        None => true,
        Some(Value::String(one)) => one == "object",
        Some(Value::Array(many)) => many.iter().all(|t| t == "object" || t == "null"),
        Some(_) => false,
    };
    says_nothing && any_object
}

/// Why `example`'s JSON type is not one the schema's `type` allows.
fn type_mismatch(schema: &Value, example: &Value) -> Option<String> {
    let allowed: Vec<&str> = match schema.get("type") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => return None,
    };
    let kind = match example {
        Value::Null => return None,
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let fits = allowed.contains(&kind) || (kind == "integer" && allowed.contains(&"number"));
    (!fits).then(|| format!("the example has {kind}, the schema {allowed:?}"))
}

/// The properties and required names of an object schema: those of every
/// `allOf` part, or of the `oneOf` alternative naming most of `fields`.
fn fields_of(
    document: &Value,
    schema: &Value,
    fields: &serde_json::Map<String, Value>,
) -> (serde_json::Map<String, Value>, Vec<String>) {
    let mut properties = schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut required: Vec<String> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|name| name.as_str().map(String::from))
        .collect();
    let parts: Vec<Value> = match (schema.get("allOf"), schema.get("oneOf")) {
        (Some(Value::Array(all)), _) => all.iter().map(|p| not_null(document, p)).collect(),
        (_, Some(Value::Array(alternatives))) => alternatives
            .iter()
            .map(|a| not_null(document, a))
            .max_by_key(|a| {
                let names = a["properties"].as_object();
                fields
                    .keys()
                    .filter(|k| names.is_some_and(|n| n.contains_key(*k)))
                    .count()
            })
            .into_iter()
            .collect(),
        _ => Vec::new(),
    };
    for part in parts {
        let (more, also) = fields_of(document, &part, fields);
        properties.extend(more);
        required.extend(also);
    }
    (properties, required)
}

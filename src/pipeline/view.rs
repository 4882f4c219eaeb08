//! The request as rules see it: a JSON object with `headers`, `body`, `query` and
//! `path`, and the way back from a transformed object to an HTTP payload.

use crate::model::Payload;
use serde_json::{Map, Value};

/// `{"headers": {…}, "body": …, "query": {…}, "path": "…"}` — the shape filters,
/// `$ref` paths and deduplication fields are written against.
pub fn filter_root(payload: &Payload) -> Value {
    serde_json::json!({
        "headers": headers_object(payload),
        "body": parse_body(payload),
        "query": parse_query(&payload.query),
        "path": payload.path,
    })
}

/// What a transformation's handler receives: Hookdeck's request object, where
/// `query` is the raw string and `parsed_query` the object.
pub fn transform_input(payload: &Payload) -> Value {
    serde_json::json!({
        "headers": headers_object(payload),
        "body": parse_body(payload),
        "query": payload.query,
        "parsed_query": parse_query(&payload.query),
        "path": payload.path,
    })
}

/// Header names lower-cased; a repeated header's values joined with ", " (as HTTP allows).
fn headers_object(payload: &Payload) -> Value {
    let mut headers = Map::new();
    for (name, value) in &payload.headers {
        let name = name.to_ascii_lowercase();
        match headers.get_mut(&name) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(value);
            }
            _ => {
                headers.insert(name, Value::String(value.clone()));
            }
        }
    }
    Value::Object(headers)
}

/// JSON bodies as JSON, form bodies as an object, anything else as its text.
fn parse_body(payload: &Payload) -> Value {
    let content_type = payload.header("content-type").unwrap_or_default();
    if content_type.contains("application/x-www-form-urlencoded") {
        return parse_query(&String::from_utf8_lossy(&payload.body));
    }
    match serde_json::from_slice::<Value>(&payload.body) {
        Ok(value) if content_type.contains("json") || value.is_object() || value.is_array() => {
            value
        }
        _ => Value::String(String::from_utf8_lossy(&payload.body).into_owned()),
    }
}

/// `a=1&b=2&b=3` → `{"a": "1", "b": ["2", "3"]}`.
pub fn parse_query(query: &str) -> Value {
    let mut parsed = Map::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let value = Value::String(value.into_owned());
        match parsed.get_mut(key.as_ref()) {
            Some(Value::Array(values)) => values.push(value),
            Some(existing) => *existing = Value::Array(vec![existing.take(), value]),
            None => {
                parsed.insert(key.into_owned(), value);
            }
        }
    }
    Value::Object(parsed)
}

/// Builds the payload a transformation returned. Parts it left out keep their
/// original value; a string body is sent as is, any other JSON serialized.
pub fn payload_from_transformed(
    original: &Payload,
    transformed: &Value,
) -> Result<Payload, String> {
    let object = transformed
        .as_object()
        .ok_or("the handler must return the request object")?;
    let mut payload = original.clone();
    if let Some(headers) = object.get("headers") {
        payload.headers = headers
            .as_object()
            .ok_or("request.headers must be an object")?
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), header_value(value)))
            .collect();
    }
    if let Some(body) = object.get("body") {
        payload.body = match body {
            Value::String(text) => text.clone().into_bytes(),
            Value::Null => Vec::new(),
            other => serde_json::to_vec(other).expect("JSON values serialize"),
        };
    }
    if let Some(path) = object.get("path") {
        let path = path.as_str().ok_or("request.path must be a string")?;
        payload.path = match path {
            "" => String::new(),
            p if p.starts_with('/') => p.to_string(),
            p => format!("/{p}"),
        };
    }
    if let Some(query) = object.get("query") {
        payload.query = query
            .as_str()
            .ok_or("request.query must be a string")?
            .trim_start_matches('?')
            .to_string();
    }
    Ok(payload)
}

fn header_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The value at a dotted path (`body.data.id`, `headers.x-id`, `body.items.0`).
pub fn select<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(root, |value, segment| match value {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(content_type: &str, body: &str) -> Payload {
        Payload {
            method: "POST".into(),
            path: "/a".into(),
            query: "x=1&y=2&y=3".into(),
            headers: vec![
                ("content-type".into(), content_type.into()),
                ("X-Id".into(), "7".into()),
            ],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn json_form_and_text_bodies() {
        assert_eq!(
            filter_root(&payload("application/json", r#"{"a":1}"#))["body"]["a"],
            1
        );
        assert_eq!(
            filter_root(&payload("application/x-www-form-urlencoded", "a=1&b=two"))["body"]["b"],
            "two"
        );
        assert_eq!(
            filter_root(&payload("text/plain", "hello"))["body"],
            "hello"
        );
        assert_eq!(
            filter_root(&payload("text/plain", "42"))["body"],
            "42",
            "a scalar is text unless declared JSON"
        );
    }

    #[test]
    fn headers_are_lower_cased_and_queries_parsed() {
        let root = filter_root(&payload("application/json", "{}"));
        assert_eq!(root["headers"]["x-id"], "7");
        assert_eq!(root["query"]["x"], "1");
        assert_eq!(root["query"]["y"], serde_json::json!(["2", "3"]));
        assert_eq!(
            transform_input(&payload("application/json", "{}"))["query"],
            "x=1&y=2&y=3"
        );
    }

    #[test]
    fn transformed_objects_become_payloads() {
        let original = payload("application/json", "{}");
        let out = serde_json::json!({"headers": {"X-New": "v", "n": 5}, "body": {"b": true}, "path": "c/d", "query": "?z=9"});
        let payload = payload_from_transformed(&original, &out).unwrap();
        let mut headers = payload.headers.clone();
        headers.sort();
        assert_eq!(
            headers,
            vec![
                ("n".to_string(), "5".to_string()),
                ("x-new".to_string(), "v".to_string())
            ]
        );
        assert_eq!(payload.body, br#"{"b":true}"#);
        assert_eq!(payload.path, "/c/d");
        assert_eq!(payload.query, "z=9");
        assert!(payload_from_transformed(&original, &serde_json::json!(3)).is_err());
        assert!(payload_from_transformed(&original, &serde_json::json!({"headers": []})).is_err());
    }

    #[test]
    fn dotted_paths_reach_nested_fields_and_array_items() {
        let root = serde_json::json!({"body": {"items": [{"id": "a"}]}});
        assert_eq!(select(&root, "body.items.0.id"), Some(&Value::from("a")));
        assert_eq!(select(&root, "body.missing"), None);
    }
}

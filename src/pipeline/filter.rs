//! Hookdeck-compatible JSON filters for connection rules.
//!
//! A rule may filter four parts of a request, which is seen as one JSON object, `root`:
//! `{"headers": {lower-case name: string}, "body": <parsed JSON, or the raw text as a
//! string when it is not JSON>, "query": {…}, "path": "/…"}`. Each given part has its own
//! filter, matched against that part alone, and all of them must match ([`RequestFilter`]).
//!
//! Filters decide exactly as Hookdeck's engine, the `simple-json-match` package, does:
//! it is the reference, surprises included (README's "Filter syntax" lists them). The
//! implementation is ours (`matching`, `operators`, `refs`, `js`); the reference's own test
//! suite (`reference_tests`) and a differential test against the real package
//! (`tests/filter_reference.rs`) hold it to that.
//!
//! Nothing is refused at load, as the reference refuses nothing: what can never match
//! (an operand of the wrong type, an empty `$and`, a `$ref` that is not a path) is reported
//! by [`RequestFilter::warnings`]. JSON `null` is written `{ "$null" = true }` in TOML,
//! which has no null ([`decode_nulls`]).
//!
//! One evaluation takes at most `[limits] filter_max_steps` steps (see [`eval`]); a filter
//! that runs out counts as not matching, and says so ([`Evaluation::gave_up`]).

#[cfg(test)]
mod bounded_tests;
mod eval;
mod js;
mod lint;
mod matching;
mod operators;
#[cfg(test)]
mod reference_tests;
mod refs;

pub use eval::{Evaluation, DEFAULT_MAX_STEPS};
pub use lint::FilterWarning;

use eval::{Eval, GaveUp};
use matching::{Matcher, Scope};
use serde_json::{Map, Value};

/// The key of the one-key object `{"$null": true}`, which stands for `null` in TOML.
pub const NULL_MARKER: &str = "$null";

/// Why matching stopped early: JavaScript would have thrown (the nearest
/// enclosing match counts as "no match"), or the evaluation gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Thrown,
    GaveUp,
}

impl From<GaveUp> for Stop {
    fn from(_: GaveUp) -> Stop {
        Stop::GaveUp
    }
}

/// The filter rule of a connection: one optional filter per request part.
#[derive(Debug, Clone)]
pub struct RequestFilter {
    parts: Vec<(&'static str, Value)>,
    /// The most steps one evaluation may take.
    max_steps: u64,
}

impl RequestFilter {
    /// The filter of each given part. Plain keys of the `headers` filter are lower-cased,
    /// because header names are case-insensitive and `root.headers` has them lower-cased;
    /// otherwise `{"X-GitHub-Event": "push"}` could never match.
    #[must_use]
    pub fn new(
        headers: Option<&Value>,
        body: Option<&Value>,
        query: Option<&Value>,
        path: Option<&Value>,
    ) -> RequestFilter {
        let specs = [
            ("headers", headers),
            ("body", body),
            ("query", query),
            ("path", path),
        ];
        let parts = specs
            .into_iter()
            .filter_map(|(part, spec)| {
                let spec = spec?;
                Some((
                    part,
                    if part == "headers" {
                        lowercase_keys(spec)
                    } else {
                        spec.clone()
                    },
                ))
            })
            .collect();
        RequestFilter {
            parts,
            max_steps: DEFAULT_MAX_STEPS,
        }
    }

    /// The same filter, giving up after `max_steps` steps per evaluation.
    #[must_use]
    pub fn with_max_steps(self, max_steps: u64) -> RequestFilter {
        RequestFilter { max_steps, ..self }
    }

    /// What in the filter can never match, though the reference accepts it.
    #[must_use]
    pub fn warnings(&self) -> Vec<FilterWarning> {
        self.parts
            .iter()
            .flat_map(|(part, spec)| lint::warnings(part, spec))
            .collect()
    }

    /// Does the request `root` match every given part? With no parts, everything
    /// matches; a filter that gave up does not.
    #[must_use]
    pub fn matches(&self, root: &Value) -> bool {
        self.evaluate(root).matched
    }

    /// Whether the request `root` matches, and the work that took.
    #[must_use]
    pub fn evaluate(&self, root: &Value) -> Evaluation {
        let eval = Eval::new(self.max_steps);
        let matcher = Matcher { eval: &eval };
        for (part, spec) in &self.parts {
            let matched = matcher.matches(root.get(part), spec, Scope::START);
            if matched != Ok(true) {
                return eval.finish(matched, Some(part));
            }
        }
        eval.finish(Ok(true), None)
    }
}

/// Does `value` match `filter`, as the reference decides (with the default budget)?
#[must_use]
pub fn matches(filter: &Value, value: &Value) -> bool {
    let eval = Eval::new(DEFAULT_MAX_STEPS);
    let matched = Matcher { eval: &eval }.matches(Some(value), filter, Scope::START);
    eval.finish(matched, None).matched
}

fn lowercase_keys(spec: &Value) -> Value {
    match spec {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let key = if key.starts_with('$') {
                        key.clone()
                    } else {
                        key.to_lowercase()
                    };
                    (key, value.clone())
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A filter written in TOML, with each `{ "$null" = true }` turned into `null`.
#[must_use]
pub fn decode_nulls(spec: Value) -> Value {
    match spec {
        Value::Object(map) if is_null_marker(&map) => Value::Null,
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, decode_nulls(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(decode_nulls).collect()),
        other => other,
    }
}

/// A filter as TOML can hold it: each `null` as `{ "$null" = true }`.
#[must_use]
pub fn encode_nulls(spec: &Value) -> Value {
    match spec {
        Value::Null => Value::Object(Map::from_iter([(
            NULL_MARKER.to_owned(),
            Value::Bool(true),
        )])),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), encode_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(encode_nulls).collect()),
        other => other.clone(),
    }
}

fn is_null_marker(map: &Map<String, Value>) -> bool {
    map.len() == 1 && map.get(NULL_MARKER) == Some(&Value::Bool(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compiled_filters_can_be_shared_across_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<RequestFilter>();
    }

    #[test]
    fn each_part_is_filtered_on_its_own_with_header_names_in_any_case() {
        let root = json!({
            "headers": {"x-github-event": "push"},
            "body": {"ref": "main", "min": 2, "n": 3},
            "query": {"a": "1"},
            "path": "/hooks/gh"
        });
        let filter = |headers: Option<Value>, body: Option<Value>, query: Option<Value>, path| {
            RequestFilter::new(headers.as_ref(), body.as_ref(), query.as_ref(), path).matches(&root)
        };
        assert!(filter(
            Some(json!({"X-GitHub-Event": "push"})),
            None,
            None,
            None
        ));
        assert!(filter(
            None,
            Some(json!({"n": {"$gt": {"$ref": "min"}}})),
            None,
            None
        ));
        // `$ref` paths start at the part, not at the request.
        let from_request = json!({"n": {"$gt": {"$ref": "body.min"}}});
        assert!(!filter(None, Some(from_request), None, None));
        let prefix = json!({"$startsWith": "/hooks"});
        assert!(filter(None, None, Some(json!({"a": 1})), Some(&prefix)));
        assert!(!filter(
            Some(json!({"x-github-event": "push"})),
            None,
            Some(json!({"a": 2})),
            None
        ));
    }

    #[test]
    fn toml_null_markers_become_null_and_back() {
        let spec = json!({"a": {"$eq": null}, "b": ["refunded", null], "c": {"$null": false}});
        let encoded = encode_nulls(&spec);
        assert_eq!(encoded["a"]["$eq"], json!({"$null": true}));
        assert_eq!(encoded["b"][1], json!({"$null": true}));
        assert_eq!(decode_nulls(encoded), spec);
        assert!(matches(
            &decode_nulls(json!({"s": {"$null": true}})),
            &json!({"s": null})
        ));
    }
}

//! What the reference accepts in a filter but can never decide as the writer
//! meant: an operand of a type its operator does not take (`$gt: [1, 2]`,
//! `$exist: "true"`), an empty or non-list `$and` / `$or`, a `$ref` that is
//! not a path. Such filters load, as they do on Hookdeck, and decide as
//! there; these warnings point at them.

use super::operators::Operator;
use super::refs;
use serde_json::Value;

/// One questionable place in a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterWarning {
    /// Where, dotted from the part: `body.amount.$gt`, `headers.$or[1]`.
    pub key: String,
    pub message: String,
}

/// The warnings about the filter `spec` of `part`.
pub fn warnings(part: &str, spec: &Value) -> Vec<FilterWarning> {
    let mut found = Vec::new();
    walk(spec, part, &mut found);
    found
}

fn walk(spec: &Value, at: &str, found: &mut Vec<FilterWarning>) {
    match spec {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{at}[{i}]"), found);
            }
        }
        Value::Object(map) => {
            for (key, value) in map {
                let here = format!("{at}.{key}");
                if let Some(message) = problem(key, value) {
                    found.push(FilterWarning {
                        key: here.clone(),
                        message,
                    });
                }
                walk(value, &here, found);
            }
        }
        _ => {}
    }
}

/// What is wrong with `key: value` in an object filter, if anything.
fn problem(key: &str, value: &Value) -> Option<String> {
    if let Some(operator) = Operator::from_key(key) {
        // A `$ref` operand is checked where the walk meets its `$ref` key.
        if value.get("$ref").is_some() {
            return None;
        }
        return operator.refuses(value).map(|takes| {
            format!("{key} takes {takes}, not {value}: it never matches (as on Hookdeck)")
        });
    }
    match (key, value) {
        ("$and" | "$or", Value::Array(items)) if items.is_empty() => Some(format!(
            "an empty {key}: {}",
            if key == "$and" {
                "it matches anything (as on Hookdeck)"
            } else {
                "it never matches (as on Hookdeck)"
            }
        )),
        ("$and" | "$or", Value::Array(_)) => None,
        ("$and" | "$or", other) => Some(format!(
            "{key} takes a list of filters, not {other}: it is read as a field named {key}"
        )),
        ("$ref", reference) => reference_problem(reference),
        ("$not", negated) if !super::js::truthy(Some(negated)) => {
            Some(format!("$not of {negated} is ignored (as on Hookdeck)"))
        }
        ("$not", _) | (super::NULL_MARKER, _) => None,
        (unknown, _) if unknown.starts_with('$') => Some(format!(
            "{unknown} is not an operator: it is read as a field named {unknown} (as on Hookdeck)"
        )),
        _ => None,
    }
}

fn reference_problem(reference: &Value) -> Option<String> {
    match reference {
        Value::String(path) if refs::readable(path) => None,
        Value::String(path) => Some(format!(
            "$ref path {path:?} is not one hookgate reads (use a.b, a[0], a['k'], [$index]): \
             it never matches"
        )),
        other => Some(format!(
            "$ref takes a path string, not {other}: it never matches (as on Hookdeck)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn operands_that_never_match_are_named_by_key() {
        let spec = json!({
            "amount": {"$gt": [1, 2]},
            "paid": {"$exist": "true"},
            "$and": [],
            "a": {"$eq": {"$ref": {"bad": "ref"}}},
            "b": {"$in": ["x", 1], "$startsWith": ["p", "q"], "$gte": {"$ref": "min"}},
            "c": {"$ref": "items[?(@.x)]"},
            "d": {"$near": 1}
        });
        let keys: Vec<String> = warnings("body", &spec).into_iter().map(|w| w.key).collect();
        assert_eq!(
            keys,
            [
                "body.amount.$gt",
                "body.paid.$exist",
                "body.$and",
                "body.a.$eq.$ref",
                "body.c.$ref",
                "body.d.$near"
            ]
        );
    }
}

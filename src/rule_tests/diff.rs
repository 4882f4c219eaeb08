//! A small structural diff of two JSON values: each place they differ, by
//! its path, with the expected and the actual value.

use serde_json::Value;
use std::fmt;

/// One place where the actual value differs from the expected one; None is
/// absent.
#[derive(Debug, PartialEq)]
pub struct Difference {
    pub at: String,
    pub expected: Option<Value>,
    pub actual: Option<Value>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |value: &Option<Value>| match value {
            Some(value) => value.to_string(),
            None => "(absent)".into(),
        };
        write!(
            f,
            "  at {}\n  - {}\n  + {}",
            self.at,
            shown(&self.expected),
            shown(&self.actual)
        )
    }
}

/// Where `actual` differs from `expected`, objects compared key by key and
/// arrays item by item (paths like `connections.a.delivered.body.items[0]`).
pub fn differences(expected: &Value, actual: &Value) -> Vec<Difference> {
    let mut found = Vec::new();
    compare("", Some(expected), Some(actual), &mut found);
    found
}

fn compare(
    at: &str,
    expected: Option<&Value>,
    actual: Option<&Value>,
    found: &mut Vec<Difference>,
) {
    match (expected, actual) {
        (Some(Value::Object(e)), Some(Value::Object(a))) => {
            let keys = e.keys().chain(a.keys().filter(|k| !e.contains_key(*k)));
            for key in keys {
                let inner = match at {
                    "" => key.clone(),
                    _ => format!("{at}.{key}"),
                };
                compare(&inner, e.get(key), a.get(key), found);
            }
        }
        (Some(Value::Array(e)), Some(Value::Array(a))) => {
            for i in 0..e.len().max(a.len()) {
                compare(&format!("{at}[{i}]"), e.get(i), a.get(i), found);
            }
        }
        (e, a) if e == a => {}
        (e, a) => found.push(Difference {
            at: if at.is_empty() {
                "(top)".into()
            } else {
                at.into()
            },
            expected: e.cloned(),
            actual: a.cloned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_each_place_that_differs() {
        let expected = json!({"a": {"b": 1, "gone": true}, "list": [1, 2], "same": "x"});
        let actual = json!({"a": {"b": 2, "new": null}, "list": [1], "same": "x"});
        let found = differences(&expected, &actual);
        let at: Vec<&str> = found.iter().map(|d| d.at.as_str()).collect();
        assert_eq!(at, ["a.b", "a.gone", "a.new", "list[1]"]);
        assert_eq!(found[1].actual, None);
        assert_eq!(found[2].expected, None);
        assert_eq!(found[0].to_string(), "  at a.b\n  - 1\n  + 2");
        assert!(differences(&expected, &expected).is_empty());
        assert_eq!(differences(&json!(1), &json!("1"))[0].at, "(top)");
    }
}

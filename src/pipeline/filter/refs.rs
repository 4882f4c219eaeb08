//! `$ref` paths: the reference engine reads them with the `jsonpath` package,
//! from the value being filtered (the body, for a body filter), after putting
//! the positions of the enclosing arrays in place of `$index`, and takes the
//! first value found, or `null`.
//!
//! Supported here: `a.b`, `a[0]`, `a.0`, `['key']`, `["key"]`, `*` / `[*]`,
//! an optional leading `$`, and an array's `length` (a member to JavaScript). Anything else (filters, slices, `..`) is a path we cannot read,
//! which the reference may read; it counts as an error and is warned about
//! when the filter is loaded.

use serde_json::Value;
use std::borrow::Cow;

/// Why a path is not resolved: JavaScript threw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreadable;

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Member(String),
    Any,
}

/// The value `reference` names in `root`, `null` when nothing is there.
/// `indexes` are the positions of the arrays being walked, outermost first.
pub fn resolve<'a>(
    root: Option<&'a Value>,
    reference: &Value,
    indexes: &[usize],
) -> Result<Cow<'a, Value>, Unreadable> {
    let Value::String(path) = reference else {
        return Err(Unreadable);
    };
    let mut path = path.clone();
    if path.contains("[$index]") {
        for index in indexes {
            path = path.replacen("$index", &index.to_string(), 1);
        }
    }
    let steps = parse(&path).ok_or(Unreadable)?;
    // The package asserts that it queries an object or an array.
    let root = root
        .filter(|r| r.is_object() || r.is_array())
        .ok_or(Unreadable)?;
    Ok(find(root, &steps).unwrap_or(Cow::Owned(Value::Null)))
}

/// Whether `path` is one this module reads (with `$index` as a number).
pub fn readable(path: &str) -> bool {
    parse(&path.replace("$index", "0")).is_some()
}

fn find<'a>(value: &'a Value, steps: &[Step]) -> Option<Cow<'a, Value>> {
    let Some((step, rest)) = steps.split_first() else {
        return Some(Cow::Borrowed(value));
    };
    match step {
        // An array's `length` is a member too, holding a number.
        Step::Member(key) if key == "length" && value.is_array() && rest.is_empty() => value
            .as_array()
            .map(|items| Cow::Owned(Value::from(items.len()))),
        Step::Member(key) => member(value, key).and_then(|child| find(child, rest)),
        Step::Any => match value {
            Value::Array(items) => items.iter().find_map(|item| find(item, rest)),
            Value::Object(map) => super::js::entries(map).find_map(|(_, item)| find(item, rest)),
            _ => None,
        },
    }
}

fn member<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    match value {
        Value::Object(map) => map.get(key),
        Value::Array(items) => key
            .parse::<usize>()
            .ok()
            .filter(|index| index.to_string() == key)
            .and_then(|index| items.get(index)),
        _ => None,
    }
}

/// Splits a path into steps; `None` for syntax not supported.
fn parse(path: &str) -> Option<Vec<Step>> {
    let mut rest = path.strip_prefix('$').unwrap_or(path);
    let mut steps = Vec::new();
    if rest.starts_with(is_name_start) {
        let (name, after) = take_name(rest);
        steps.push(Step::Member(name.to_owned()));
        rest = after;
    } else if rest.len() == path.len() && !rest.starts_with('[') {
        return None;
    }
    while !rest.is_empty() {
        let (step, after) = if let Some(after) = rest.strip_prefix('.') {
            dotted(after)?
        } else {
            bracketed(rest.strip_prefix('[')?)?
        };
        steps.push(step);
        rest = after;
    }
    Some(steps)
}

fn dotted(text: &str) -> Option<(Step, &str)> {
    if let Some(after) = text.strip_prefix('*') {
        return Some((Step::Any, after));
    }
    let (name, after) = if text.starts_with(is_name_start) {
        take_name(text)
    } else {
        take_digits(text)
    };
    (!name.is_empty()).then(|| (Step::Member(name.to_owned()), after))
}

fn bracketed(text: &str) -> Option<(Step, &str)> {
    if let Some(after) = text.strip_prefix("*]") {
        return Some((Step::Any, after));
    }
    for quote in ['\'', '"'] {
        if let Some(quoted) = text.strip_prefix(quote) {
            let (key, after) = quoted.split_once(quote)?;
            let after = after.strip_prefix(']')?;
            return (!key.contains('\\')).then(|| (Step::Member(key.to_owned()), after));
        }
    }
    let (digits, after) = take_digits(text.strip_prefix('-').unwrap_or(text));
    let after = after.strip_prefix(']')?;
    if digits.is_empty() {
        return None;
    }
    let key = &text[..text.len() - after.len() - 1];
    Some((Step::Member(key.to_owned()), after))
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn take_name(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    text.split_at(end)
}

fn take_digits(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_read_from_the_value_with_indexes_put_in() {
        let root = json!({"test": [{"a": [{"c": 3}]}, {"a": [{"c": 4}]}], "k": {"x y": 1}});
        let at = |path: &str, indexes: &[usize]| {
            resolve(Some(&root), &json!(path), indexes).map(Cow::into_owned)
        };
        assert_eq!(at("test[$index].a[$index].c", &[1, 0]), Ok(json!(4)));
        assert_eq!(at("$.test[0].a.0.c", &[]), Ok(json!(3)));
        assert_eq!(at("k['x y']", &[]), Ok(json!(1)));
        assert_eq!(at("test.length", &[]), Ok(json!(2)));
        assert_eq!(at("missing.deeper", &[]), Ok(json!(null)));
        assert_eq!(at("test[?(@.a)]", &[]), Err(Unreadable));
        assert_eq!(
            resolve(Some(&root), &json!({"bad": "ref"}), &[]),
            Err(Unreadable)
        );
        assert_eq!(
            resolve(Some(&json!("text")), &json!("a"), &[]),
            Err(Unreadable)
        );
        let top_level_array = json!([{"b": 1}, {"b": 2}]);
        assert_eq!(
            resolve(Some(&top_level_array), &json!("[$index].b"), &[1]),
            Ok(Cow::Borrowed(&json!(2)))
        );
    }
}

//! JavaScript's rules for the few operations the reference engine leans on:
//! loose equality (`==`), relational comparison (`<`), truthiness, number to
//! string, `JSON.stringify` and the order in which `Object.entries` lists keys.
//!
//! A JSON value seen from JavaScript is `Some(value)`; `None` is `undefined`
//! (a missing field).

use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::fmt::Write;

/// A value as JavaScript sees it: `None` is `undefined`.
pub type Js<'a> = Option<&'a Value>;

/// `null`, booleans, numbers and strings (not `undefined`).
pub fn is_primitive(value: Js) -> bool {
    matches!(
        value,
        Some(Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_))
    )
}

pub fn truthy(value: Js) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => number(n) != 0.0,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(_) | Value::Object(_)) => true,
    }
}

/// A JSON number as JavaScript holds it: a double (large integers round).
pub fn number(n: &serde_json::Number) -> f64 {
    n.as_f64().unwrap_or(f64::NAN)
}

/// `a == b` for primitives and `undefined` (callers stringify objects first).
pub fn loose_eq(a: Js, b: Js) -> bool {
    match (a, b) {
        (None | Some(Value::Null), None | Some(Value::Null)) => true,
        (None | Some(Value::Null), _) | (_, None | Some(Value::Null)) => false,
        (Some(Value::String(a)), Some(Value::String(b))) => a == b,
        (Some(Value::Bool(a)), Some(Value::Bool(b))) => a == b,
        (Some(a), Some(b)) => to_number(a) == to_number(b),
    }
}

/// Strict equality of two primitives as `Array.prototype.includes` decides it.
pub fn same_value_zero(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(a), Value::Number(b)) => number(a) == number(b),
        _ => a == b,
    }
}

/// `ToNumber` of a primitive (`NaN` for what does not convert).
pub fn to_number(value: &Value) -> f64 {
    match value {
        Value::Null => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => number(n),
        Value::String(s) => string_to_number(s),
        Value::Array(_) | Value::Object(_) => f64::NAN,
    }
}

fn string_to_number(text: &str) -> f64 {
    let text = text.trim_matches(is_js_whitespace);
    if text.is_empty() {
        return 0.0;
    }
    for (prefix, radix) in [
        ("0x", 16),
        ("0X", 16),
        ("0o", 8),
        ("0O", 8),
        ("0b", 2),
        ("0B", 2),
    ] {
        if let Some(digits) = text.strip_prefix(prefix) {
            return u128::from_str_radix(digits, radix).map_or(f64::NAN, |n| n as f64);
        }
    }
    let unsigned = text.trim_start_matches(['+', '-']);
    if unsigned == "Infinity" && text.len() - unsigned.len() <= 1 {
        return if text.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    // Rust also reads "inf" and "NaN", which JavaScript does not.
    if !text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return f64::NAN;
    }
    text.parse().unwrap_or(f64::NAN)
}

fn is_js_whitespace(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

/// `a < b` style comparison of two strings or numbers: strings by UTF-16
/// code units, anything else as numbers (`None` when one is `NaN`).
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::String(a), Value::String(b)) => Some(a.encode_utf16().cmp(b.encode_utf16())),
        _ => to_number(a).partial_cmp(&to_number(b)),
    }
}

/// `String(value)` of a primitive.
pub fn to_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => number_to_string(number(n)),
        other => other.to_string(),
    }
}

/// JavaScript's shortest round-trip form: `1` for 1.0, `1e+21`, `1e-7`.
pub fn number_to_string(n: f64) -> String {
    if n == 0.0 {
        return "0".into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let magnitude = n.abs();
    if (1e-6..1e21).contains(&magnitude) {
        return n.to_string();
    }
    let scientific = format!("{n:e}");
    match scientific.split_once('e') {
        Some((mantissa, exponent)) if !exponent.starts_with('-') => {
            format!("{mantissa}e+{exponent}")
        }
        _ => scientific,
    }
}

/// `JSON.stringify(value)` (key order kept, numbers as JavaScript prints them).
pub fn stringify(value: &Value) -> String {
    let mut out = String::new();
    write_json(value, &mut out);
    out
}

fn write_json(value: &Value, out: &mut String) {
    match value {
        Value::Number(n) => out.push_str(&number_to_string(number(n))),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in entries(map).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{}:", Value::String(key.clone()));
                write_json(item, out);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Whether `JSON.stringify` gives the same text for both, without writing it.
pub fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(a), Value::Number(b)) => number(a) == number(b),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_json(a, b))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && entries(a)
                    .zip(entries(b))
                    .all(|((ka, va), (kb, vb))| ka == kb && same_json(va, vb))
        }
        _ => a == b,
    }
}

/// An object's entries in `Object.entries` order: array-index keys first,
/// ascending, then the others in insertion order.
pub fn entries(map: &Map<String, Value>) -> impl Iterator<Item = (&String, &Value)> {
    let mut indexed: Vec<(u32, (&String, &Value))> = map
        .iter()
        .filter_map(|entry| array_index(entry.0).map(|index| (index, entry)))
        .collect();
    indexed.sort_by_key(|(index, _)| *index);
    let any_indexed = !indexed.is_empty();
    indexed.into_iter().map(|(_, entry)| entry).chain(
        map.iter()
            .filter(move |(key, _)| !any_indexed || array_index(key).is_none()),
    )
}

/// The index a key names when it is a canonical array index ("0", "17").
fn array_index(key: &str) -> Option<u32> {
    let index: u32 = key.parse().ok()?;
    (index != u32::MAX && index.to_string() == key).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn loose_equality_converts_strings_and_booleans_to_numbers() {
        let eq = |a: Value, b: Value| loose_eq(Some(&a), Some(&b));
        assert!(eq(json!(12.5), json!("12.50")));
        assert!(eq(json!(1), json!(true)));
        assert!(eq(json!(""), json!(0)));
        assert!(!eq(json!(null), json!(0)));
        assert!(!eq(json!("abc"), json!("ABC")));
        assert!(loose_eq(None, Some(&json!(null))));
        assert!(!eq(json!("inf"), json!(f64::MAX)));
    }

    #[test]
    fn numbers_print_as_javascript_prints_them() {
        assert_eq!(number_to_string(1.0), "1");
        assert_eq!(number_to_string(0.1), "0.1");
        assert_eq!(number_to_string(1e21), "1e+21");
        assert_eq!(number_to_string(1.5e-7), "1.5e-7");
        assert_eq!(
            stringify(&json!({"b": [1.0, "x\n"], "1": null})),
            r#"{"1":null,"b":[1,"x\n"]}"#
        );
    }

    #[test]
    fn strings_compare_by_utf16_code_units() {
        assert_eq!(
            compare(&json!("\u{ffff}"), &json!("\u{10000}")),
            Some(Ordering::Greater)
        );
        assert_eq!(compare(&json!("10"), &json!(9)), Some(Ordering::Greater));
        assert_eq!(compare(&json!("a"), &json!(9)), None);
    }
}

//! The contract tests' one check: an answer has the shape of the reference's
//! example. Every field of the example is there, with the example's JSON type
//! (an integer where the example has a whole number), into nested objects and every item
//! of arrays; hookgate may add fields. An example's `null` allows any value.

use serde_json::Value;

/// What a check forgives, field by field (by name, at any depth).
#[derive(Clone, Copy, Default)]
pub struct Leeway<'a> {
    /// Null here while the example shows a value (nothing to say yet:
    /// `completed_at` of a job still running...).
    pub null_allowed: &'a [&'a str],
    /// The sender's data, not shape (`body`, `headers`, `payload`): only
    /// required to be there.
    pub data: &'a [&'a str],
}

impl<'a> Leeway<'a> {
    /// Forgives only these fields' nulls.
    pub const fn nullable(fields: &'a [&'a str]) -> Leeway<'a> {
        Leeway {
            null_allowed: fields,
            data: &[],
        }
    }
}

/// Fields of examples an answer may lack, under their parent, and why
/// (README, "Reading the reference").
pub const NOT_ALWAYS_THERE: [(&str, &str); 3] = [
    // A null cursor is left out (L162): the last page has no `next`.
    ("pagination", "next"),
    ("pagination", "prev"),
    // Only in L4794's example, not in the attempt object (L4880-5000):
    // hookgate's attempt is the attempt object.
    ("attempt", "attemptResponse"),
];

/// Panics, naming the place, where `actual` is not shaped like `example`.
pub fn assert_shape(actual: &Value, example: &Value, leeway: Leeway) {
    if let Err(mismatch) = shape_mismatch(actual, example, leeway) {
        panic!("{mismatch}");
    }
}

/// The first place where `actual` is not shaped like `example`.
pub fn shape_mismatch(actual: &Value, example: &Value, leeway: Leeway) -> Result<(), String> {
    check(actual, example, "", leeway)
}

fn check(actual: &Value, example: &Value, at: &str, leeway: Leeway) -> Result<(), String> {
    match (example, actual) {
        (Value::Object(fields), Value::Object(found)) => {
            let parent = at.rsplit('.').next().unwrap_or_default();
            for (name, wanted) in fields {
                let here = format!("{at}.{name}");
                let Some(got) = found.get(name) else {
                    if NOT_ALWAYS_THERE.contains(&(parent, name.as_str())) {
                        continue;
                    }
                    return Err(format!("{here} is missing from {actual}"));
                };
                let forgiven = wanted.is_null()
                    || leeway.data.contains(&name.as_str())
                    || (got.is_null() && leeway.null_allowed.contains(&name.as_str()));
                if !forgiven {
                    check(got, wanted, &here, leeway)?;
                }
            }
            Ok(())
        }
        (Value::Array(items), Value::Array(found)) => match items.first() {
            Some(first) => found
                .iter()
                .try_for_each(|item| check(item, first, &format!("{at}[]"), leeway)),
            None => Ok(()),
        },
        // A fraction in the example (`progress: 0.29`) allows any number.
        (Value::Number(n), Value::Number(_)) if n.is_f64() => Ok(()),
        _ if kind(actual) == kind(example) => Ok(()),
        _ => Err(format!(
            "{at}: hookgate has {actual} where the reference has {example}"
        )),
    }
}

/// A value's JSON type; a number is an integer when it has no fraction.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

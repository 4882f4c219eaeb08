//! The comparison operators (`$eq` … `$exist`), each deciding one input
//! against one operand as the reference does. An operand or input of a type
//! the operator does not take is an error (`Stop::Thrown`), which the caller
//! counts as "no match".

use super::eval::Eval;
use super::js::{self, Js};
use super::Stop;
use serde_json::Value;
use std::cmp::Ordering;

/// An operator key of the reference (`$or`, `$and`, `$not` and `$ref` are
/// not operators: they are handled where they appear).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    StartsWith,
    EndsWith,
    In,
    Nin,
    Exist,
}

impl Operator {
    pub fn from_key(key: &str) -> Option<Operator> {
        Some(match key {
            "$eq" => Operator::Eq,
            "$neq" => Operator::Neq,
            "$gt" => Operator::Gt,
            "$gte" => Operator::Gte,
            "$lt" => Operator::Lt,
            "$lte" => Operator::Lte,
            "$startsWith" => Operator::StartsWith,
            "$endsWith" => Operator::EndsWith,
            "$in" => Operator::In,
            "$nin" => Operator::Nin,
            "$exist" => Operator::Exist,
            _ => return None,
        })
    }

    /// Does `input` satisfy the operator with `operand`?
    pub fn holds(self, input: Js, operand: &Value, eval: &Eval) -> Result<bool, Stop> {
        match self {
            Operator::Eq => equal(input, operand, eval),
            Operator::Neq => equal(input, operand, eval).map(|equal| !equal),
            Operator::Gt => ordered(input, operand, Ordering::is_gt),
            Operator::Gte => ordered(input, operand, Ordering::is_ge),
            Operator::Lt => ordered(input, operand, Ordering::is_lt),
            Operator::Lte => ordered(input, operand, Ordering::is_le),
            Operator::StartsWith => affix(input, operand, |text, prefix| text.starts_with(prefix)),
            Operator::EndsWith => affix(input, operand, |text, suffix| text.ends_with(suffix)),
            Operator::In => contains(input, operand, eval),
            Operator::Nin => contains(input, operand, eval).map(|found| !found),
            Operator::Exist => match operand {
                Value::Bool(wanted) => Ok(input.is_some() == *wanted),
                _ => Err(Stop::Thrown),
            },
        }
    }

    /// Why `operand` can never satisfy the operator, if it cannot (for
    /// warnings at load; a `$ref` operand is only known when matching).
    pub fn refuses(self, operand: &Value) -> Option<&'static str> {
        let (fits, takes) = match self {
            Operator::Eq | Operator::Neq => (true, "any value"),
            Operator::Gt | Operator::Gte | Operator::Lt | Operator::Lte => (
                operand.is_string() || operand.is_number(),
                "a string or a number",
            ),
            Operator::StartsWith | Operator::EndsWith => (
                match operand {
                    Value::Array(items) => items.iter().all(Value::is_string),
                    other => other.is_string(),
                },
                "a string or a list of strings",
            ),
            Operator::In | Operator::Nin => (
                match operand {
                    Value::Array(items) => items.iter().all(|i| i.is_string() || i.is_number()),
                    other => other.is_string() || other.is_number(),
                },
                "a string, a number or a list of strings and numbers",
            ),
            Operator::Exist => (operand.is_boolean(), "true or false"),
        };
        (!fits).then_some(takes)
    }
}

/// Primitives compare loosely (`12.5 == "12.5"`), anything else by its JSON text.
fn equal(input: Js, operand: &Value, eval: &Eval) -> Result<bool, Stop> {
    match input {
        Some(value) if !js::is_primitive(input) => {
            eval.charge(size(value) + size(operand))?;
            if js::is_primitive(Some(operand)) {
                let text = Value::String(js::stringify(value));
                return Ok(js::loose_eq(Some(&text), Some(operand)));
            }
            Ok(js::same_json(value, operand))
        }
        _ if !js::is_primitive(Some(operand)) => {
            eval.charge(size(operand))?;
            let text = Value::String(js::stringify(operand));
            Ok(js::loose_eq(input, Some(&text)))
        }
        _ => Ok(js::loose_eq(input, Some(operand))),
    }
}

/// Values in a JSON document: the work of writing or comparing it.
fn size(value: &Value) -> u64 {
    1 + match value {
        Value::Array(items) => items.iter().map(size).sum(),
        Value::Object(map) => map.values().map(size).sum(),
        _ => 0,
    }
}

fn ordered(input: Js, operand: &Value, accept: fn(Ordering) -> bool) -> Result<bool, Stop> {
    let comparable = |value: &Value| value.is_string() || value.is_number();
    match input {
        Some(input) if comparable(input) && comparable(operand) => {
            Ok(js::compare(input, operand).is_some_and(accept))
        }
        _ => Err(Stop::Thrown),
    }
}

/// `$startsWith` / `$endsWith`: a string input, one affix or a list (any of them).
fn affix(input: Js, operand: &Value, test: fn(&str, &str) -> bool) -> Result<bool, Stop> {
    let Some(Value::String(text)) = input else {
        return Err(Stop::Thrown);
    };
    match operand {
        Value::String(affix) => Ok(test(text, affix)),
        Value::Array(affixes) => {
            let affixes: Option<Vec<&str>> = affixes.iter().map(Value::as_str).collect();
            let affixes = affixes.ok_or(Stop::Thrown)?;
            Ok(affixes.into_iter().any(|affix| test(text, affix)))
        }
        _ => Err(Stop::Thrown),
    }
}

/// `$in`: a list operand holds the (primitive) input strictly; a string or
/// number operand is a substring of a string input.
fn contains(input: Js, operand: &Value, eval: &Eval) -> Result<bool, Stop> {
    let Some(input) = input.filter(|value| js::is_primitive(Some(value))) else {
        return Err(Stop::Thrown);
    };
    match (operand, input) {
        (Value::Array(list), _) => eval.list_holds(list, input)?.ok_or(Stop::Thrown),
        (Value::String(_) | Value::Number(_), Value::String(text)) => {
            Ok(text.contains(&js::to_string(operand)))
        }
        _ => Err(Stop::Thrown),
    }
}

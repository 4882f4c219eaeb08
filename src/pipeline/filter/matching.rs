//! How a filter decides, step for step as the reference engine
//! (`simple-json-match`) does, including where it surprises: see the
//! module documentation of `filter` and README's "Filter syntax".
//!
//! Two mutually recursive questions, as in the reference:
//! - `matches`: does the input match the filter? An error anywhere inside
//!   (what JavaScript would throw) makes the answer "no".
//! - `mismatch`: does one value fail one filter value? Errors go up to the
//!   nearest `matches`.

use super::eval::{Eval, GaveUp};
use super::js::{self, Js};
use super::operators::Operator;
use super::refs;
use super::Stop;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// The positions in the arrays being walked, innermost last: what `$index`
/// stands for in a `$ref` path.
#[derive(Clone, Copy)]
pub struct Positions<'a>(Option<(&'a Positions<'a>, usize)>);

impl<'a> Positions<'a> {
    pub const NONE: Positions<'static> = Positions(None);

    fn with(&'a self, index: usize) -> Positions<'a> {
        Positions(Some((self, index)))
    }

    fn list(&self) -> Vec<usize> {
        let mut list = Vec::new();
        let mut at = self.0;
        while let Some((outer, index)) = at {
            list.push(index);
            at = outer.0;
        }
        list.reverse();
        list
    }
}

/// Where a match happens: the value `$ref` paths start from (`root`) and the
/// array positions `$index` stands for.
#[derive(Clone, Copy)]
pub struct Scope<'v, 'p> {
    root: Js<'v>,
    at: Positions<'p>,
}

impl Scope<'static, 'static> {
    /// A filter's start: no root yet (the value filtered becomes it), no arrays.
    pub const START: Scope<'static, 'static> = Scope {
        root: None,
        at: Positions::NONE,
    };
}

impl<'v, 'p> Scope<'v, 'p> {
    fn rooted_at(self, root: Js<'v>) -> Scope<'v, 'p> {
        Scope { root, ..self }
    }
}

pub struct Matcher<'e> {
    pub eval: &'e Eval,
}

impl Matcher<'_> {
    /// Does `input` match `schema`? `$ref` paths start from the scope's root
    /// (when it is falsy, from the input).
    pub fn matches<'v>(
        &self,
        input: Js<'v>,
        schema: &Value,
        scope: Scope<'v, '_>,
    ) -> Result<bool, GaveUp> {
        match self.eval.nest(|| self.try_matches(input, schema, scope)) {
            Ok(matched) => Ok(matched),
            Err(Stop::Thrown) => Ok(false),
            Err(Stop::GaveUp) => Err(GaveUp),
        }
    }

    fn try_matches<'v>(
        &self,
        input: Js<'v>,
        schema: &Value,
        scope: Scope<'v, '_>,
    ) -> Result<bool, Stop> {
        match schema {
            // JavaScript reads `$not` off it and throws.
            Value::Null => return Err(Stop::Thrown),
            Value::Object(map) => {
                if let Some(negated) = map.get("$not").filter(|n| js::truthy(Some(n))) {
                    let matched = self.matches(input, negated, scope)?;
                    // With other keys, a failed `$not` lets them decide.
                    if map.len() == 1 || matched {
                        return Ok(!matched);
                    }
                }
            }
            _ => {}
        }
        let scope = if js::truthy(scope.root) {
            scope
        } else {
            scope.rooted_at(input)
        };
        if js::is_primitive(input) || input.is_some_and(Value::is_array) {
            return Ok(!self.mismatch(input, schema, scope.rooted_at(input))?);
        }
        match schema {
            Value::Object(map) => {
                let entries = js::entries(map)
                    .filter(|(key, _)| *key != "$not")
                    .map(|(key, value)| (Cow::Borrowed(key.as_str()), value));
                self.all_fields_match(input, entries, scope)
            }
            // A list against an object is read as an object with keys "0", "1", …
            Value::Array(items) => {
                let entries = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| (Cow::Owned(i.to_string()), item));
                self.all_fields_match(input, entries, scope)
            }
            _ => Ok(!self.mismatch(input, schema, scope.rooted_at(input))?),
        }
    }

    fn all_fields_match<'s, 'v>(
        &self,
        input: Js<'v>,
        entries: impl Iterator<Item = (Cow<'s, str>, &'s Value)>,
        scope: Scope<'v, '_>,
    ) -> Result<bool, Stop> {
        for (key, schema) in entries {
            if self.field_mismatch(input, &key, schema, scope)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// One key of an object filter against an object input (or a missing one).
    fn field_mismatch<'v>(
        &self,
        input: Js<'v>,
        key: &str,
        schema: &Value,
        scope: Scope<'v, '_>,
    ) -> Result<bool, Stop> {
        match (key, schema) {
            ("$or", Value::Array(conditions)) => {
                return Ok(!self.any_matches(input, conditions, scope)?)
            }
            ("$and", Value::Array(conditions)) => {
                for condition in conditions {
                    if !self.matches(input, condition, scope)? {
                        return Ok(true);
                    }
                }
                return Ok(false);
            }
            _ => {}
        }
        let Some(Value::Object(fields)) = input else {
            // A field of `undefined`: JavaScript throws.
            return Err(Stop::Thrown);
        };
        let field = fields.get(key);
        if field.is_none() {
            let may_be_missing = match schema {
                Value::Null => return Err(Stop::Thrown),
                Value::Object(map) => map.get("$exist") == Some(&Value::Bool(false)),
                _ => false,
            };
            if !may_be_missing {
                return Ok(true);
            }
        }
        self.mismatch(field, schema, scope)
    }

    fn any_matches<'v>(
        &self,
        input: Js<'v>,
        conditions: &[Value],
        scope: Scope<'v, '_>,
    ) -> Result<bool, GaveUp> {
        for condition in conditions {
            if self.matches(input, condition, scope)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Does `input` fail `schema`?
    fn mismatch<'v>(
        &self,
        input: Js<'v>,
        schema: &Value,
        scope: Scope<'v, '_>,
    ) -> Result<bool, Stop> {
        self.eval.nest(|| self.try_mismatch(input, schema, scope))
    }

    fn try_mismatch<'v>(
        &self,
        input: Js<'v>,
        schema: &Value,
        scope: Scope<'v, '_>,
    ) -> Result<bool, Stop> {
        if js::is_primitive(Some(schema)) {
            match input {
                Some(Value::Array(items)) => return self.all_mismatch(items, schema, scope),
                Some(Value::Object(_)) => return Ok(true),
                Some(_) => return Ok(!js::loose_eq(input, Some(schema))),
                None => {}
            }
        }
        if let Some(Value::Array(items)) = input {
            return self.list_mismatch(input, items, schema, scope);
        }
        match schema {
            // JavaScript reads `$or` off it and throws.
            Value::Null => Err(Stop::Thrown),
            Value::Object(map) => self.object_mismatch(input, schema, map, scope),
            Value::Array(_) if js::is_primitive(input) => Ok(true),
            Value::Array(_) => Ok(!self.matches(input, schema, scope)?),
            // A primitive against a missing value.
            _ => Ok(true),
        }
    }

    /// An array input: a list filter fails when one of its elements fails
    /// every item; operators test the array itself; anything else fails when
    /// every item fails it.
    fn list_mismatch<'v>(
        &self,
        input: Js<'v>,
        items: &'v [Value],
        schema: &Value,
        scope: Scope<'v, '_>,
    ) -> Result<bool, Stop> {
        if let Value::Array(alternatives) = schema {
            for alternative in alternatives {
                if self.all_mismatch(items, alternative, scope)? {
                    return Ok(true);
                }
            }
            return Ok(false);
        }
        let operators = operators_of(schema);
        if operators.is_empty() {
            return self.all_mismatch(items, schema, scope);
        }
        for (operator, operand) in operators {
            if fails(operator.holds(input, operand, self.eval))? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn all_mismatch<'v>(
        &self,
        items: &'v [Value],
        schema: &Value,
        scope: Scope<'v, '_>,
    ) -> Result<bool, Stop> {
        for (i, item) in items.iter().enumerate() {
            let at = scope.at.with(i);
            if !self.mismatch(Some(item), schema, Scope { at, ..scope })? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// An object filter against a value that is not an array.
    fn object_mismatch<'v>(
        &self,
        input: Js<'v>,
        whole: &Value,
        schema: &Map<String, Value>,
        scope: Scope<'v, '_>,
    ) -> Result<bool, Stop> {
        if let Some(Value::Array(conditions)) = schema.get("$or") {
            return Ok(!self.any_matches(input, conditions, scope)?);
        }
        if let Some(reference) = schema.get("$ref").filter(|r| js::truthy(Some(r))) {
            let target = self.resolve(scope, reference)?;
            return self.mismatch(input, &target, scope);
        }
        let operators = operators_of_map(schema);
        if !operators.is_empty() {
            for (operator, operand) in operators {
                let operand = match operand.get("$ref").filter(|r| js::truthy(Some(r))) {
                    Some(reference) => self.resolve(scope, reference)?,
                    None => Cow::Borrowed(operand),
                };
                if fails(operator.holds(input, &operand, self.eval))? {
                    return Ok(true);
                }
            }
            return Ok(false);
        }
        if js::is_primitive(input) {
            return Ok(true);
        }
        Ok(!self.matches(input, whole, scope)?)
    }

    fn resolve<'v>(&self, scope: Scope<'v, '_>, reference: &Value) -> Result<Cow<'v, Value>, Stop> {
        self.eval.charge(1)?;
        refs::resolve(scope.root, reference, &scope.at.list()).map_err(|_| Stop::Thrown)
    }
}

/// Whether an operator's outcome fails the input: `false`, or an error.
fn fails(outcome: Result<bool, Stop>) -> Result<bool, GaveUp> {
    match outcome {
        Ok(held) => Ok(!held),
        Err(Stop::Thrown) => Ok(true),
        Err(Stop::GaveUp) => Err(GaveUp),
    }
}

fn operators_of(schema: &Value) -> Vec<(Operator, &Value)> {
    schema.as_object().map(operators_of_map).unwrap_or_default()
}

/// The operator keys of an object filter with their operands, in order.
fn operators_of_map(schema: &Map<String, Value>) -> Vec<(Operator, &Value)> {
    js::entries(schema)
        .filter_map(|(key, operand)| Operator::from_key(key).map(|op| (op, operand)))
        .collect()
}

//! Hookdeck-compatible JSON filters for connection rules.
//!
//! A rule may filter four parts of a request, which is seen as one JSON object, `root`:
//! `{"headers": {lower-case name: string}, "body": <parsed JSON, or the raw text as a
//! string when it is not JSON>, "query": {…}, "path": "/…"}`. Each given part has its own
//! filter and all of them must match ([`RequestFilter`]); one part alone is a [`Filter`].
//!
//! # Syntax
//!
//! - A scalar (`"order/created"`, `5`, `true`, `null`) matches an equal value: strings
//!   case-sensitively, numbers by value (`1` matches `1.0`), never across types (`"5"` does
//!   not match `5`). Against an array input it matches when any element does.
//! - An object matches when every plain key matches the input's field of that name; extra
//!   input fields are ignored and a missing field fails (unless `$exist: false` allows it).
//!   Against an array input it matches when one element matches the whole object. `{}`
//!   matches any present value.
//! - An array matches an array input holding a match for every filter element, in any
//!   order (`["a", "b"]` matches `["b", "x", "a"]`); it never matches a non-array.
//! - `$`-keys are operators. They may be mixed with plain keys; everything in one object
//!   must match:
//!
//! | operator                    | operand                    | matches when the input …                                  |
//! |-----------------------------|----------------------------|-----------------------------------------------------------|
//! | `$eq` / `$neq`              | any value                  | deep-equals / differs from it (`["a"]` is not `"a"`)      |
//! | `$gt` `$gte` `$lt` `$lte`   | number or string           | orders so: numbers numerically, strings lexicographically |
//! | `$startsWith` / `$endsWith` | string                     | is a string with that prefix / suffix                     |
//! | `$in`                       | array                      | equals an element (an array input: shares one)            |
//! | `$in`                       | string                     | is a string containing it, or an array holding it         |
//! | `$nin`                      | array or string            | is of a type `$in` accepts and fails `$in`                |
//! | `$exist`                    | boolean                    | is present / missing                                      |
//! | `$or` / `$and`              | non-empty array of filters | matches any / all of them                                 |
//! | `$not`                      | a filter                   | does not match it (so a missing field matches)            |
//! | `$ref`                      | path such as `"body.a.b"`  | matches the referenced value, used as a plain filter      |
//!
//! Comparisons and `$startsWith` / `$endsWith` against an array input match when any
//! element does; values of other types never match, and nothing panics. Apart from
//! `$exist`, `$not`, `$or` and `$and`, operators never match a missing field.
//!
//! Any operand may be `{"$ref": "<path>"}` to take it from the request instead, e.g.
//! `{"amount": {"$gte": {"$ref": "body.minimum"}}}`; it is type-checked when matching. A
//! `$ref` path is dotted from `root`, array indices being numeric segments
//! (`body.items.0.id`, or `body.items[0].id`); header names in it are case-insensitive. A
//! reference to a missing field never matches.
//!
//! # `$path`: JSONPath selection
//!
//! For values that plain nesting cannot reach, an object with a `"$path"` key selects
//! values from the current value with a JSONPath expression (`$` is the current value, not
//! the request) and applies the object's other keys, operators and plain keys alike, to
//! each selected value. It matches when ANY selected value matches; when nothing is
//! selected it behaves as a missing field (only `$exist: false` or a `$not` matches), and
//! `$path` with no other keys matches when anything is selected. In a body filter:
//!
//! ```text
//! {"$path": "$.items[*].sku", "$in": ["A1", "B2"]}       (JSON)
//! body = { "$path" = "$.items[*].sku", "$in" = ["A1", "B2"] }   (TOML)
//! ```
//!
//! An invalid JSONPath is a compile error.
//!
//! # Bounded work
//!
//! One evaluation takes at most `[limits] filter_max_steps` steps (see [`eval`]); a filter
//! that runs out counts as not matching, and says so ([`Evaluation::gave_up`]).
//!
//! Not supported: Hookdeck's `$index` in `$ref` paths, and filtering on input fields whose
//! own names start with `$` (such keys are read as operators).

#[cfg(test)]
mod bounded_tests;
mod eval;

pub use eval::{Evaluation, DEFAULT_MAX_STEPS};

use eval::Eval;
use std::cmp::Ordering;

use jsonpath_rust::parser::errors::JsonPathError;
use jsonpath_rust::parser::model::JpQuery;
use jsonpath_rust::parser::parse_json_path;
use jsonpath_rust::query::js_path_process;
use serde_json::{Map, Number, Value};

/// The key that turns an object into a JSONPath selection.
const PATH_KEY: &str = "$path";

/// Why a filter spec was rejected, and where.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// The spec is malformed at `at`, a dotted path inside the filter such as
    /// `amount` or `$or[1].type` (empty for the filter's root).
    #[error("at {}: {problem}", location(.at))]
    Invalid { at: String, problem: String },
    /// One part (`headers`, `body`, `query` or `path`) of a [`RequestFilter`] is malformed.
    #[error("{part}: {source}")]
    InPart {
        part: &'static str,
        source: Box<FilterError>,
    },
}

fn location(at: &str) -> &str {
    if at.is_empty() {
        "the root"
    } else {
        at
    }
}

fn invalid(at: &str, problem: impl Into<String>) -> FilterError {
    FilterError::Invalid {
        at: at.to_owned(),
        problem: problem.into(),
    }
}

/// A compiled filter for one value, such as a request's body.
#[derive(Debug, Clone)]
pub struct Filter {
    node: Node,
}

impl Filter {
    /// Validates and compiles a filter spec once, at config load, so that bad operators,
    /// operand types, `$ref` paths and JSONPaths are reported before any request arrives.
    ///
    /// # Errors
    ///
    /// [`FilterError::Invalid`] naming the first malformed place in `spec`.
    pub fn compile(spec: &Value) -> Result<Filter, FilterError> {
        Compiler::default().filter(spec)
    }

    /// Does `value` (one part of the request, e.g. `root["body"]`) match? `root` is the
    /// whole request object, which `$ref` paths start from. At most
    /// [`DEFAULT_MAX_STEPS`] steps are taken.
    #[must_use]
    pub fn matches(&self, value: &Value, root: &Value) -> bool {
        let eval = Eval::new(root, DEFAULT_MAX_STEPS);
        let matched = self.node.matches(Some(value), &eval);
        eval.finish(matched).matched
    }
}

/// The filter rule of a connection: one optional [`Filter`] per request part.
#[derive(Debug, Clone)]
pub struct RequestFilter {
    parts: Vec<(&'static str, Filter)>,
    /// The most steps one evaluation may take.
    max_steps: u64,
}

impl RequestFilter {
    /// Compiles each given part. Plain keys of the `headers` filter are lower-cased,
    /// because header names are case-insensitive and `root.headers` has them lower-cased;
    /// otherwise `{"X-GitHub-Event": "push"}` could never match.
    ///
    /// # Errors
    ///
    /// [`FilterError::InPart`] naming the first malformed part and the place in it.
    pub fn compile(
        headers: Option<&Value>,
        body: Option<&Value>,
        query: Option<&Value>,
        path: Option<&Value>,
    ) -> Result<RequestFilter, FilterError> {
        let specs = [
            ("headers", headers),
            ("body", body),
            ("query", query),
            ("path", path),
        ];
        let mut parts = Vec::new();
        for (part, spec) in specs {
            if let Some(spec) = spec {
                parts.push((part, compile_part(part, spec)?));
            }
        }
        Ok(RequestFilter {
            parts,
            max_steps: DEFAULT_MAX_STEPS,
        })
    }

    /// The same filter, giving up after `max_steps` steps per evaluation.
    #[must_use]
    pub fn with_max_steps(self, max_steps: u64) -> RequestFilter {
        RequestFilter { max_steps, ..self }
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
        let eval = Eval::new(root, self.max_steps);
        let matched = self
            .parts
            .iter()
            .all(|(part, filter)| filter.node.matches(root.get(part), &eval));
        eval.finish(matched)
    }
}

fn compile_part(part: &'static str, spec: &Value) -> Result<Filter, FilterError> {
    let compiler = Compiler {
        lowercase_keys: part == "headers",
    };
    compiler.filter(spec).map_err(|error| FilterError::InPart {
        part,
        source: Box::new(error),
    })
}

/// The compiled form of a filter spec value.
#[derive(Debug, Clone)]
enum Node {
    /// A string, number, bool or null.
    Scalar(Value),
    /// An array filter: each element must match some element of the input array.
    All(Vec<Node>),
    /// An object filter: plain keys and operators.
    Object(ObjectFilter),
    /// `$path`: the rest of the object applied to the values the JSONPath selects.
    Select { query: JpQuery, then: ObjectFilter },
}

/// Plain keys, each matched against the input's field of that name, and operators, each
/// matched against the input itself.
#[derive(Debug, Clone, Default)]
struct ObjectFilter {
    fields: Vec<(String, Node)>,
    ops: Vec<Op>,
}

#[derive(Debug, Clone)]
enum Op {
    /// An operator comparing the input with one operand.
    Test(Test, Operand),
    Exist(bool),
    Or(Vec<Node>),
    And(Vec<Node>),
    Not(Box<Node>),
    /// `$ref` used as the value itself.
    Ref(RefPath),
}

#[derive(Debug, Clone, Copy)]
enum Test {
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
}

#[derive(Debug, Clone)]
enum Operand {
    Value(Value),
    Ref(RefPath),
}

/// A `$ref` path, split into object keys and array indices.
#[derive(Debug, Clone)]
struct RefPath(Vec<String>);

/// Operand types an operator accepts, checked when compiling.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Any,
    NumberOrString,
    String,
    ArrayOrString,
}

/// Turns spec values into [`Node`]s; `at` is the error location of the value at hand.
#[derive(Debug, Clone, Copy, Default)]
struct Compiler {
    /// Lower-case plain keys (header names). Harmless below the top level of a headers
    /// filter: header values are strings, which have no fields to match anyway.
    lowercase_keys: bool,
}

impl Compiler {
    fn filter(self, spec: &Value) -> Result<Filter, FilterError> {
        Ok(Filter {
            node: self.node(spec, "")?,
        })
    }

    fn node(self, spec: &Value, at: &str) -> Result<Node, FilterError> {
        match spec {
            Value::Array(items) => self.nodes(items, at).map(Node::All),
            Value::Object(map) => self.object(map, at),
            scalar => Ok(Node::Scalar(scalar.clone())),
        }
    }

    fn nodes(self, specs: &[Value], at: &str) -> Result<Vec<Node>, FilterError> {
        specs
            .iter()
            .enumerate()
            .map(|(i, spec)| self.node(spec, &format!("{at}[{i}]")))
            .collect()
    }

    fn object(self, map: &Map<String, Value>, at: &str) -> Result<Node, FilterError> {
        let Some(path) = map.get(PATH_KEY) else {
            return self.object_filter(map.iter(), at).map(Node::Object);
        };
        let query = compile_json_path(path, at)?;
        let rest = map.iter().filter(|(key, _)| *key != PATH_KEY);
        let then = self.object_filter(rest, at)?;
        Ok(Node::Select { query, then })
    }

    fn object_filter<'a>(
        self,
        entries: impl Iterator<Item = (&'a String, &'a Value)>,
        at: &str,
    ) -> Result<ObjectFilter, FilterError> {
        let mut filter = ObjectFilter::default();
        for (key, spec) in entries {
            if key.starts_with('$') {
                filter.ops.push(self.op(key, spec, at)?);
            } else {
                let node = self.node(spec, &child(at, key))?;
                filter.fields.push((self.field_name(key), node));
            }
        }
        Ok(filter)
    }

    fn field_name(self, key: &str) -> String {
        if self.lowercase_keys {
            key.to_lowercase()
        } else {
            key.to_owned()
        }
    }

    /// Compiles operator `name` with operand `spec`, found in the object at `at`.
    fn op(self, name: &str, spec: &Value, at: &str) -> Result<Op, FilterError> {
        if let Some(test) = Test::from_name(name) {
            return Ok(Op::Test(test, operand(name, spec, test.expects(), at)?));
        }
        match name {
            "$exist" => match spec {
                Value::Bool(wanted) => Ok(Op::Exist(*wanted)),
                other => Err(expected(at, name, "a boolean", other)),
            },
            "$or" => self.filters(name, spec, at).map(Op::Or),
            "$and" => self.filters(name, spec, at).map(Op::And),
            "$not" => Ok(Op::Not(Box::new(self.node(spec, &child(at, name))?))),
            "$ref" => RefPath::compile(spec, at).map(Op::Ref),
            _ => Err(invalid(at, format!("unknown operator {name}"))),
        }
    }

    /// The operand of `$or` / `$and`: a non-empty array of filters.
    fn filters(self, name: &str, spec: &Value, at: &str) -> Result<Vec<Node>, FilterError> {
        match spec {
            Value::Array(items) if items.is_empty() => Err(invalid(
                at,
                format!("{name} expects a non-empty array of filters, got an empty array"),
            )),
            Value::Array(items) => self.nodes(items, &child(at, name)),
            other => Err(expected(at, name, "an array of filters", other)),
        }
    }
}

/// The location of `key` inside the value at `at`.
fn child(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}

fn expected(at: &str, op: &str, wanted: &str, got: &Value) -> FilterError {
    invalid(at, format!("{op} expects {wanted}, got {}", type_name(got)))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// An operand is either `{"$ref": "<path>"}` or a literal of the type `expect` allows.
fn operand(op: &str, spec: &Value, expect: Expect, at: &str) -> Result<Operand, FilterError> {
    if let Some(path) = ref_target(spec) {
        return RefPath::compile(path, &child(at, op)).map(Operand::Ref);
    }
    if !expect.allows(spec) {
        return Err(expected(at, op, expect.describe(), spec));
    }
    Ok(Operand::Value(spec.clone()))
}

/// The path of an operand written as `{"$ref": <path>}`.
fn ref_target(spec: &Value) -> Option<&Value> {
    spec.as_object()
        .filter(|map| map.len() == 1)
        .and_then(|map| map.get("$ref"))
}

fn compile_json_path(spec: &Value, at: &str) -> Result<JpQuery, FilterError> {
    let Value::String(text) = spec else {
        return Err(expected(at, PATH_KEY, "a JSONPath string", spec));
    };
    parse_json_path(text).map_err(|error| {
        let problem = format!("$path {text:?} is not valid JSONPath: {}", reason(&error));
        invalid(at, problem)
    })
}

/// A one-line reason: the parser's own message is a multi-line caret diagram.
fn reason(error: &JsonPathError) -> String {
    match error {
        JsonPathError::PestError(error) => error.variant.message().into_owned(),
        other => other.to_string(),
    }
}

impl Expect {
    fn allows(self, value: &Value) -> bool {
        match self {
            Expect::Any => true,
            Expect::NumberOrString => value.is_number() || value.is_string(),
            Expect::String => value.is_string(),
            Expect::ArrayOrString => value.is_array() || value.is_string(),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Expect::Any => "any value",
            Expect::NumberOrString => "a number or string",
            Expect::String => "a string",
            Expect::ArrayOrString => "an array or string",
        }
    }
}

impl RefPath {
    fn compile(spec: &Value, at: &str) -> Result<RefPath, FilterError> {
        let Value::String(text) = spec else {
            return Err(expected(at, "$ref", "a string path", spec));
        };
        let mut segments = split_ref_path(text).ok_or_else(|| {
            invalid(
                at,
                format!("$ref path {text:?} is malformed; write it like body.items.0.id"),
            )
        })?;
        // `root.headers` has lower-cased names.
        if let [first, name, ..] = segments.as_mut_slice() {
            if first == "headers" {
                *name = name.to_lowercase();
            }
        }
        Ok(RefPath(segments))
    }

    fn resolve<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        self.0.iter().try_fold(root, |value, segment| match value {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
    }
}

/// Splits `body.items[0].id` or `body.items.0.id` into `body`, `items`, `0`, `id`;
/// `None` when a name is empty or a bracket is stray or does not hold a plain index.
fn split_ref_path(text: &str) -> Option<Vec<String>> {
    let mut segments = Vec::new();
    for piece in text.split('.') {
        let (name, mut brackets) = piece.split_at(piece.find('[').unwrap_or(piece.len()));
        if name.is_empty() || name.contains(']') {
            return None;
        }
        segments.push(name.to_owned());
        while !brackets.is_empty() {
            let (index, rest) = brackets.strip_prefix('[')?.split_once(']')?;
            if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            segments.push(index.to_owned());
            brackets = rest;
        }
    }
    Some(segments)
}

impl Node {
    /// A request value used as a filter by `$ref`. Its keys are always plain field names,
    /// so request data can never smuggle in operators. One step per value.
    fn from_data(value: &Value, eval: &Eval) -> Node {
        eval.step();
        match value {
            Value::Array(items) => Node::All(
                items
                    .iter()
                    .map(|item| Node::from_data(item, eval))
                    .collect(),
            ),
            Value::Object(map) => Node::Object(ObjectFilter {
                fields: map
                    .iter()
                    .map(|(key, item)| (key.clone(), Node::from_data(item, eval)))
                    .collect(),
                ops: Vec::new(),
            }),
            scalar => Node::Scalar(scalar.clone()),
        }
    }

    /// `input` is `None` when the field being filtered is missing.
    fn matches(&self, input: Option<&Value>, eval: &Eval) -> bool {
        if !eval.step() {
            return false;
        }
        match self {
            Node::Scalar(wanted) => input.is_some_and(|value| scalar_matches(wanted, value, eval)),
            Node::All(wanted) => match input {
                Some(Value::Array(items)) => wanted
                    .iter()
                    .all(|node| items.iter().any(|item| node.matches(Some(item), eval))),
                _ => false,
            },
            Node::Object(filter) => filter.matches(input, eval),
            Node::Select { query, then } => {
                let selected = input.map_or_else(Vec::new, |value| select(query, value));
                if !eval.charge(selected.len() as u64) {
                    return false;
                }
                if selected.is_empty() {
                    then.matches(None, eval)
                } else {
                    selected
                        .into_iter()
                        .any(|value| then.matches(Some(value), eval))
                }
            }
        }
    }
}

fn scalar_matches(wanted: &Value, input: &Value, eval: &Eval) -> bool {
    match input {
        Value::Array(items) => items.iter().any(|item| scalar_matches(wanted, item, eval)),
        _ => values_equal(wanted, input, eval),
    }
}

/// The values `query` selects from `value`; a query that fails at run time selects nothing.
fn select<'a>(query: &JpQuery, value: &'a Value) -> Vec<&'a Value> {
    js_path_process(query, value)
        .map(|found| found.into_iter().map(|item| item.val()).collect())
        .unwrap_or_default()
}

impl ObjectFilter {
    fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.ops.is_empty()
    }

    fn matches(&self, input: Option<&Value>, eval: &Eval) -> bool {
        if !eval.step() {
            return false;
        }
        match input {
            // Plain keys describe one element; operators see the whole array.
            Some(Value::Array(items)) if !self.fields.is_empty() => {
                items.iter().any(|item| self.matches(Some(item), eval))
            }
            _ if self.is_empty() => input.is_some(),
            _ => {
                self.fields_match(input, eval) && self.ops.iter().all(|op| op.matches(input, eval))
            }
        }
    }

    fn fields_match(&self, input: Option<&Value>, eval: &Eval) -> bool {
        if self.fields.is_empty() {
            return true;
        }
        let Some(Value::Object(map)) = input else {
            return false;
        };
        self.fields
            .iter()
            .all(|(key, node)| node.matches(map.get(key), eval))
    }
}

impl Op {
    fn matches(&self, input: Option<&Value>, eval: &Eval) -> bool {
        if !eval.step() {
            return false;
        }
        match self {
            Op::Exist(wanted) => input.is_some() == *wanted,
            Op::Or(nodes) => nodes.iter().any(|node| node.matches(input, eval)),
            Op::And(nodes) => nodes.iter().all(|node| node.matches(input, eval)),
            Op::Not(node) => !node.matches(input, eval),
            Op::Ref(path) => match (input, path.resolve(eval.root)) {
                (Some(value), Some(target)) => {
                    let filter = eval.ref_filter(address(path), || Node::from_data(target, eval));
                    filter.matches(Some(value), eval)
                }
                _ => false,
            },
            Op::Test(test, operand) => match (input, operand.resolve(eval.root)) {
                (Some(value), Some(Value::Array(options))) if test.is_membership() => {
                    one_of(value, options, address(operand), eval) == matches!(test, Test::In)
                }
                (Some(value), Some(operand)) => test.holds(value, operand, eval),
                _ => false,
            },
        }
    }
}

/// `$in` with an array operand: whether `input` equals an option or is an array holding
/// one. The options are looked up in a set built once per evaluation (under `key`).
fn one_of(input: &Value, options: &[Value], key: usize, eval: &Eval) -> bool {
    let set = eval.set_of(key, options);
    let listed =
        |value: &Value| set.contains(options, value, |a, b| values_equal(a, b, eval), eval);
    listed(input)
        || input
            .as_array()
            .is_some_and(|items| items.iter().any(listed))
}

/// Where a compiled part of the filter is: a key for what one evaluation
/// computes once for it.
fn address<T>(part: &T) -> usize {
    std::ptr::from_ref(part) as usize
}

impl Operand {
    fn resolve<'a>(&'a self, root: &'a Value) -> Option<&'a Value> {
        match self {
            Operand::Value(value) => Some(value),
            Operand::Ref(path) => path.resolve(root),
        }
    }
}

impl Test {
    fn from_name(name: &str) -> Option<Test> {
        Some(match name {
            "$eq" => Test::Eq,
            "$neq" => Test::Neq,
            "$gt" => Test::Gt,
            "$gte" => Test::Gte,
            "$lt" => Test::Lt,
            "$lte" => Test::Lte,
            "$startsWith" => Test::StartsWith,
            "$endsWith" => Test::EndsWith,
            "$in" => Test::In,
            "$nin" => Test::Nin,
            _ => return None,
        })
    }

    /// `$in` / `$nin`: with an array operand, membership (see `contains`), which
    /// is decided with a hash set of the operand.
    fn is_membership(self) -> bool {
        matches!(self, Test::In | Test::Nin)
    }

    /// Literal operand types that can ever match; a `$ref` operand is checked when matching.
    fn expects(self) -> Expect {
        match self {
            Test::Eq | Test::Neq => Expect::Any,
            Test::Gt | Test::Gte | Test::Lt | Test::Lte => Expect::NumberOrString,
            Test::StartsWith | Test::EndsWith => Expect::String,
            Test::In | Test::Nin => Expect::ArrayOrString,
        }
    }

    fn holds(self, input: &Value, operand: &Value, eval: &Eval) -> bool {
        let ordered = |accept: fn(Ordering) -> bool| {
            any_element(input, eval, &|value| {
                order(value, operand).is_some_and(accept)
            })
        };
        let text_test = |accept: fn(&str, &str) -> bool| {
            any_element(input, eval, &|value| match (value, operand) {
                (Value::String(value), Value::String(operand)) => accept(value, operand),
                _ => false,
            })
        };
        match self {
            Test::Eq => values_equal(input, operand, eval),
            Test::Neq => !values_equal(input, operand, eval),
            Test::Gt => ordered(Ordering::is_gt),
            Test::Gte => ordered(Ordering::is_ge),
            Test::Lt => ordered(Ordering::is_lt),
            Test::Lte => ordered(Ordering::is_le),
            Test::StartsWith => text_test(|value, prefix| value.starts_with(prefix)),
            Test::EndsWith => text_test(|value, suffix| value.ends_with(suffix)),
            Test::In => contains(input, operand, eval) == Some(true),
            Test::Nin => contains(input, operand, eval) == Some(false),
        }
    }
}

/// Applies `test` to a value, or to each element (recursively) of an array.
fn any_element(value: &Value, eval: &Eval, test: &dyn Fn(&Value) -> bool) -> bool {
    if !eval.step() {
        return false;
    }
    match value {
        Value::Array(items) => items.iter().any(|item| any_element(item, eval, test)),
        _ => test(value),
    }
}

/// Numbers order numerically and strings lexicographically; other pairs do not order.
fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(a), Value::Number(b)) => compare_numbers(a, b),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// Compares exactly when both are integers, so large ids do not lose precision in `f64`.
fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(a), Some(b)) = (a.as_i64(), b.as_i64()) {
        return Some(a.cmp(&b));
    }
    if let (Some(a), Some(b)) = (a.as_u64(), b.as_u64()) {
        return Some(a.cmp(&b));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// Deep equality in which numbers compare by value (`serde_json` has `1 != 1.0`).
fn values_equal(a: &Value, b: &Value, eval: &Eval) -> bool {
    if !eval.step() {
        return false;
    }
    match (a, b) {
        (Value::Number(a), Value::Number(b)) => compare_numbers(a, b) == Some(Ordering::Equal),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| values_equal(a, b, eval))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(key, a)| b.get(key).is_some_and(|b| values_equal(a, b, eval)))
        }
        _ => a == b,
    }
}

/// `$in` with an operand that is not an array (arrays are looked up in a
/// set, see `Op::matches`): whether a string / array `input` contains the
/// operand. `None` when the types do not fit, so that `$nin` does not match either.
fn contains(input: &Value, operand: &Value, eval: &Eval) -> Option<bool> {
    match (input, operand) {
        (Value::String(text), Value::String(needle)) => Some(text.contains(needle.as_str())),
        (Value::Array(items), needle) => {
            Some(items.iter().any(|item| values_equal(item, needle, eval)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Filters `body` with `spec`, in a request whose only part is that body.
    fn body_matches(spec: Value, body: Value) -> bool {
        let root = json!({ "body": body });
        Filter::compile(&spec)
            .expect("spec compiles")
            .matches(&root["body"], &root)
    }

    fn compile_error(spec: Value) -> String {
        Filter::compile(&spec)
            .expect_err("spec is rejected")
            .to_string()
    }

    fn request(headers: Value, body: Value, query: Value, path: &str) -> Value {
        json!({ "headers": headers, "body": body, "query": query, "path": path })
    }

    #[test]
    fn compiled_filters_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Filter>();
        assert_send_sync::<RequestFilter>();
        assert_send_sync::<FilterError>();
    }

    // Plain values

    #[test]
    fn scalar_matches_equal_scalar() {
        assert!(body_matches(json!(false), json!(false)));
        assert!(body_matches(json!("created"), json!("created")));
        assert!(body_matches(json!(null), json!(null)));
        assert!(!body_matches(json!(1), json!(2)));
    }

    #[test]
    fn string_equality_is_case_sensitive() {
        assert!(!body_matches(
            json!({"type": "Created"}),
            json!({"type": "created"})
        ));
    }

    #[test]
    fn integer_matches_equal_float() {
        assert!(body_matches(json!({"n": 1}), json!({"n": 1.0})));
        assert!(body_matches(json!({"n": 1.0}), json!({"n": 1})));
    }

    #[test]
    fn values_of_different_types_do_not_match() {
        assert!(!body_matches(json!({"n": "5"}), json!({"n": 5})));
        assert!(!body_matches(json!({"n": 0}), json!({"n": false})));
        assert!(!body_matches(json!({"n": null}), json!({"n": false})));
    }

    #[test]
    fn large_integers_compare_exactly() {
        let big = json!({"id": 9_007_199_254_740_993_u64});
        assert!(body_matches(big.clone(), big.clone()));
        assert!(!body_matches(json!({"id": 9_007_199_254_740_992_u64}), big));
    }

    #[test]
    fn scalar_filter_does_not_match_object() {
        assert!(!body_matches(json!(true), json!({"test": true})));
        assert!(!body_matches(json!({"type": 1}), json!({"type": {"a": 1}})));
    }

    // Objects

    #[test]
    fn object_ignores_extra_input_fields() {
        let body = json!({"type": "order/created", "order": {"id": 123}});
        assert!(body_matches(json!({"type": "order/created"}), body));
    }

    #[test]
    fn object_needs_every_key_to_match() {
        let body = json!({"count": 1, "type": "created"});
        assert!(body_matches(
            json!({"count": 1, "type": "created"}),
            body.clone()
        ));
        assert!(!body_matches(json!({"count": 1, "type": "updated"}), body));
    }

    #[test]
    fn missing_field_does_not_match() {
        assert!(!body_matches(json!({"type": "created"}), json!({})));
        assert!(!body_matches(json!({"a": {"b": 1}}), json!({"a": {}})));
    }

    #[test]
    fn nested_object_matches() {
        let body = json!({"product": {"title": "A product", "inventory": 0}});
        assert!(body_matches(
            json!({"product": {"inventory": 0}}),
            body.clone()
        ));
        assert!(!body_matches(json!({"product": {"inventory": 1}}), body));
    }

    #[test]
    fn object_filter_does_not_match_scalar() {
        assert!(!body_matches(
            json!({"test": {"x": "text"}}),
            json!({"test": "text"})
        ));
        assert!(!body_matches(json!({"a": 1}), json!("a string body")));
    }

    #[test]
    fn empty_object_matches_any_present_value() {
        assert!(body_matches(json!({}), json!({"a": 1})));
        assert!(body_matches(json!({"a": {}}), json!({"a": "x"})));
        assert!(!body_matches(json!({"a": {}}), json!({"b": 1})));
    }

    // Arrays

    #[test]
    fn scalar_matches_array_containing_it() {
        let body = json!({"tags": ["gift", "something"]});
        assert!(body_matches(json!({"tags": "gift"}), body.clone()));
        assert!(!body_matches(json!({"tags": "nope"}), body));
    }

    #[test]
    fn scalar_matches_number_in_array_by_value() {
        assert!(body_matches(json!({"ids": 2}), json!({"ids": [1, 2.0]})));
    }

    #[test]
    fn object_matches_array_when_one_element_matches() {
        let body = json!({"order": {"items": [{"id": 456, "title": "My product"}]}});
        assert!(body_matches(
            json!({"order": {"items": {"id": 456}}}),
            body.clone()
        ));
        assert!(!body_matches(json!({"order": {"items": {"id": 1}}}), body));
    }

    #[test]
    fn object_against_array_needs_one_element_to_match_all_keys() {
        let body = json!({"items": [{"id": 1, "qty": 5}, {"id": 2, "qty": 2}]});
        assert!(!body_matches(
            json!({"items": {"id": 1, "qty": 2}}),
            body.clone()
        ));
        assert!(body_matches(json!({"items": {"id": 2, "qty": 2}}), body));
    }

    #[test]
    fn operator_on_array_elements_fields() {
        let spec = json!({"items": {"inventory": {"$lte": 10}}});
        assert!(body_matches(
            spec.clone(),
            json!({"items": [{"inventory": 9}, {"inventory": 11}]})
        ));
        assert!(!body_matches(
            spec,
            json!({"items": [{"inventory": 12}, {"inventory": 11}]})
        ));
    }

    #[test]
    fn array_filter_matches_equal_array() {
        assert!(body_matches(
            json!({"tags": ["a", "b"]}),
            json!({"tags": ["a", "b"]})
        ));
    }

    #[test]
    fn array_filter_matches_when_contained_in_any_order() {
        let body = json!({"tags": ["gift", "something", "another"]});
        assert!(body_matches(
            json!({"tags": ["another", "gift"]}),
            body.clone()
        ));
        assert!(!body_matches(json!({"tags": ["gift", "whatever"]}), body));
    }

    #[test]
    fn array_filter_does_not_match_scalar() {
        assert!(!body_matches(json!({"tags": ["a"]}), json!({"tags": "a"})));
    }

    #[test]
    fn array_filter_elements_may_be_objects() {
        let body = json!({"items": [{"sku": "A", "n": 1}, {"sku": "B", "n": 2}]});
        assert!(body_matches(
            json!({"items": [{"sku": "B"}, {"n": 1}]}),
            body.clone()
        ));
        assert!(!body_matches(json!({"items": [{"sku": "C"}]}), body));
    }

    // Operators

    #[test]
    fn eq_and_neq_compare_scalars() {
        assert!(body_matches(json!({"n": {"$eq": 2}}), json!({"n": 2.0})));
        assert!(!body_matches(json!({"n": {"$neq": 2}}), json!({"n": 2})));
        assert!(body_matches(json!({"n": {"$neq": "2"}}), json!({"n": 2})));
        assert!(body_matches(
            json!({"n": {"$eq": null}}),
            json!({"n": null})
        ));
    }

    #[test]
    fn eq_is_deep_equality_on_arrays_and_objects() {
        let body = json!({"tags": ["test", "other"], "o": {"a": 1, "b": [1]}});
        assert!(body_matches(
            json!({"tags": {"$eq": ["test", "other"]}}),
            body.clone()
        ));
        assert!(!body_matches(
            json!({"tags": {"$eq": ["test"]}}),
            body.clone()
        ));
        assert!(!body_matches(
            json!({"tags": {"$eq": "test"}}),
            body.clone()
        ));
        assert!(body_matches(
            json!({"o": {"$eq": {"b": [1.0], "a": 1}}}),
            body.clone()
        ));
        assert!(!body_matches(json!({"o": {"$eq": {"a": 1}}}), body));
    }

    #[test]
    fn gt_gte_lt_lte_compare_numbers() {
        let body = json!({"n": 5});
        assert!(body_matches(json!({"n": {"$gt": 4}}), body.clone()));
        assert!(!body_matches(json!({"n": {"$gt": 5}}), body.clone()));
        assert!(body_matches(json!({"n": {"$gte": 5.0}}), body.clone()));
        assert!(body_matches(json!({"n": {"$lt": 5.5}}), body.clone()));
        assert!(!body_matches(json!({"n": {"$lt": 5}}), body.clone()));
        assert!(body_matches(json!({"n": {"$lte": 5}}), body));
    }

    #[test]
    fn comparisons_order_negative_and_fractional_numbers() {
        assert!(body_matches(json!({"n": {"$lt": 0}}), json!({"n": -1})));
        assert!(body_matches(json!({"n": {"$gt": -2.5}}), json!({"n": -2})));
    }

    #[test]
    fn comparisons_order_strings_lexicographically() {
        assert!(body_matches(json!({"t": {"$gt": "b"}}), json!({"t": "c"})));
        assert!(!body_matches(json!({"t": {"$gt": "b"}}), json!({"t": "a"})));
        assert!(body_matches(
            json!({"d": {"$gte": "2024-01-01"}}),
            json!({"d": "2024-03-05"})
        ));
    }

    #[test]
    fn comparisons_with_mismatched_types_do_not_match() {
        assert!(!body_matches(json!({"n": {"$gt": 1}}), json!({"n": "5"})));
        assert!(!body_matches(json!({"n": {"$lt": "z"}}), json!({"n": 5})));
        assert!(!body_matches(json!({"n": {"$gte": 0}}), json!({"n": null})));
        assert!(!body_matches(
            json!({"n": {"$lte": 0}}),
            json!({"n": {"a": 1}})
        ));
    }

    #[test]
    fn comparison_against_array_matches_any_element() {
        assert!(body_matches(
            json!({"p": {"$gt": 10}}),
            json!({"p": [1, 20]})
        ));
        assert!(!body_matches(
            json!({"p": {"$gt": 10}}),
            json!({"p": [1, 2]})
        ));
    }

    #[test]
    fn several_operators_are_all_required() {
        let spec = json!({"count": {"$gt": 1, "$lt": 3}});
        assert!(body_matches(spec.clone(), json!({"count": 2})));
        assert!(!body_matches(spec, json!({"count": 3})));
    }

    #[test]
    fn starts_with_and_ends_with() {
        let body = json!({"test": "some-text"});
        assert!(body_matches(
            json!({"test": {"$startsWith": "some"}}),
            body.clone()
        ));
        assert!(!body_matches(
            json!({"test": {"$startsWith": "text"}}),
            body.clone()
        ));
        assert!(body_matches(
            json!({"test": {"$endsWith": "text"}}),
            body.clone()
        ));
        assert!(!body_matches(json!({"test": {"$endsWith": "some"}}), body));
    }

    #[test]
    fn starts_with_on_non_string_does_not_match() {
        assert!(!body_matches(
            json!({"t": {"$startsWith": "1"}}),
            json!({"t": 12})
        ));
        assert!(!body_matches(
            json!({"t": {"$startsWith": "x"}}),
            json!({"t": {"more": true}})
        ));
    }

    #[test]
    fn starts_with_against_array_matches_any_element() {
        let spec = json!({"refs": {"$startsWith": "refs/heads/"}});
        assert!(body_matches(
            spec.clone(),
            json!({"refs": ["v1", "refs/heads/main"]})
        ));
        assert!(!body_matches(spec, json!({"refs": ["v1"]})));
    }

    #[test]
    fn in_array_operand_means_one_of() {
        assert!(body_matches(
            json!({"id": {"$in": [123, 456]}}),
            json!({"id": 123})
        ));
        assert!(!body_matches(
            json!({"id": {"$in": [1, 2]}}),
            json!({"id": 123})
        ));
        assert!(body_matches(
            json!({"id": {"$in": [1.0]}}),
            json!({"id": 1})
        ));
    }

    #[test]
    fn in_string_operand_means_substring() {
        assert!(body_matches(
            json!({"test": {"$in": "text"}}),
            json!({"test": "some-text"})
        ));
        assert!(!body_matches(
            json!({"test": {"$in": "none"}}),
            json!({"test": "some-text"})
        ));
    }

    #[test]
    fn in_string_operand_against_array_means_element() {
        let body = json!({"tags": ["test", "something"]});
        assert!(body_matches(json!({"tags": {"$in": "test"}}), body.clone()));
        assert!(!body_matches(json!({"tags": {"$in": "tes"}}), body));
    }

    #[test]
    fn in_array_operand_against_array_means_shared_element() {
        let body = json!({"tags": ["a", "b"]});
        assert!(body_matches(
            json!({"tags": {"$in": ["x", "b"]}}),
            body.clone()
        ));
        assert!(!body_matches(json!({"tags": {"$in": ["x", "y"]}}), body));
    }

    #[test]
    fn nin_is_the_negation_of_in() {
        assert!(!body_matches(
            json!({"id": {"$nin": [123, 456]}}),
            json!({"id": 123})
        ));
        assert!(body_matches(
            json!({"id": {"$nin": [1, 2]}}),
            json!({"id": 123})
        ));
        assert!(!body_matches(
            json!({"t": {"$nin": "some"}}),
            json!({"t": "some-text"})
        ));
        assert!(!body_matches(
            json!({"tags": {"$nin": "test"}}),
            json!({"tags": ["test"]})
        ));
        assert!(body_matches(
            json!({"tags": {"$nin": "x"}}),
            json!({"tags": ["test"]})
        ));
    }

    #[test]
    fn in_and_nin_with_mismatched_types_do_not_match() {
        let body = json!({"id": 123});
        assert!(!body_matches(json!({"id": {"$in": "12"}}), body.clone()));
        assert!(!body_matches(json!({"id": {"$nin": "12"}}), body));
    }

    #[test]
    fn exist_true_needs_the_field() {
        assert!(body_matches(
            json!({"a": {"$exist": true}}),
            json!({"a": null})
        ));
        assert!(!body_matches(
            json!({"a": {"$exist": true}}),
            json!({"b": 1})
        ));
    }

    #[test]
    fn exist_false_needs_the_field_missing() {
        assert!(body_matches(
            json!({"a": {"$exist": false}}),
            json!({"b": 1})
        ));
        assert!(!body_matches(
            json!({"a": {"$exist": false}}),
            json!({"a": 0})
        ));
    }

    #[test]
    fn operators_other_than_exist_do_not_match_missing_fields() {
        for op in ["$eq", "$neq", "$gt", "$startsWith", "$in", "$nin"] {
            assert!(!body_matches(json!({"a": {op: "x"}}), json!({})), "{op}");
        }
    }

    #[test]
    fn or_matches_when_any_alternative_matches() {
        let spec = json!({"$or": [{"hello": "johny"}, {"hello": "mark"}]});
        assert!(body_matches(spec.clone(), json!({"hello": "mark"})));
        assert!(!body_matches(spec, json!({"hello": "world"})));
    }

    #[test]
    fn or_of_scalars_as_field_value() {
        let spec = json!({"product": {"inventory": {"$or": [1, 5]}}});
        assert!(body_matches(
            spec.clone(),
            json!({"product": {"inventory": 5}})
        ));
        assert!(!body_matches(spec, json!({"product": {"inventory": 2}})));
    }

    #[test]
    fn or_alternatives_may_use_operators() {
        let spec = json!({"test": {"$or": [{"something": true}, {"something": {"$in": "else"}}]}});
        assert!(body_matches(
            spec.clone(),
            json!({"test": {"something": "elsewhere"}})
        ));
        assert!(!body_matches(spec, json!({"test": {"something": "no"}})));
    }

    #[test]
    fn and_needs_every_filter() {
        let spec = json!({"$and": [{"a": 1}, {"b": {"$gt": 1}}]});
        assert!(body_matches(spec.clone(), json!({"a": 1, "b": 2})));
        assert!(!body_matches(spec, json!({"a": 1, "b": 1})));
    }

    #[test]
    fn not_negates_a_filter() {
        let spec = json!({"type": {"$not": {"$startsWith": "test."}}});
        assert!(body_matches(spec.clone(), json!({"type": "order.created"})));
        assert!(!body_matches(spec, json!({"type": "test.ping"})));
    }

    #[test]
    fn not_matches_missing_field() {
        assert!(body_matches(json!({"a": {"$not": {"$eq": 1}}}), json!({})));
    }

    #[test]
    fn not_of_an_object_filter_at_top_level() {
        let spec = json!({"$not": {"type": "ping"}});
        assert!(body_matches(spec.clone(), json!({"type": "push"})));
        assert!(!body_matches(spec, json!({"type": "ping"})));
    }

    #[test]
    fn operators_and_plain_keys_mix() {
        let spec = json!({"type": "order", "$or": [{"total": {"$gt": 100}}, {"vip": true}]});
        assert!(body_matches(
            spec.clone(),
            json!({"type": "order", "total": 150})
        ));
        assert!(body_matches(
            spec.clone(),
            json!({"type": "order", "total": 5, "vip": true})
        ));
        assert!(!body_matches(
            spec.clone(),
            json!({"type": "order", "total": 5})
        ));
        assert!(!body_matches(spec, json!({"type": "refund", "total": 150})));
    }

    // $ref

    #[test]
    fn ref_as_value_compares_with_another_field() {
        let spec = json!({"updated_at": {"$ref": "body.created_at"}});
        assert!(body_matches(
            spec.clone(),
            json!({"updated_at": "2020-04-20", "created_at": "2020-04-20"})
        ));
        assert!(!body_matches(
            spec,
            json!({"updated_at": "2020-05-20", "created_at": "2020-04-20"})
        ));
    }

    #[test]
    fn ref_reaches_nested_fields() {
        let spec = json!({"another": {"thing": {"$ref": "body.current.something"}}});
        let body = json!({"current": {"something": true}, "another": {"thing": true}});
        assert!(body_matches(spec, body));
    }

    #[test]
    fn ref_indexes_arrays_with_numeric_segments() {
        let body = json!({"items": [{"id": 1}, {"id": 7}], "wanted": 7});
        assert!(body_matches(
            json!({"wanted": {"$ref": "body.items.1.id"}}),
            body.clone()
        ));
        assert!(body_matches(
            json!({"wanted": {"$ref": "body.items[1].id"}}),
            body.clone()
        ));
        assert!(!body_matches(
            json!({"wanted": {"$ref": "body.items.0.id"}}),
            body
        ));
    }

    #[test]
    fn ref_value_matches_array_containing_it() {
        let body = json!({"types": ["something", "else"], "test2": "else"});
        assert!(body_matches(json!({"types": {"$ref": "body.test2"}}), body));
    }

    #[test]
    fn ref_to_missing_field_does_not_match() {
        assert!(!body_matches(
            json!({"a": {"$ref": "body.nope"}}),
            json!({"a": null})
        ));
        assert!(!body_matches(
            json!({"a": {"$ref": "body.a.b.c"}}),
            json!({"a": 1})
        ));
        assert!(!body_matches(
            json!({"a": {"$ref": "body.list.9"}}),
            json!({"a": 1, "list": [1]})
        ));
    }

    #[test]
    fn ref_data_is_never_read_as_operators() {
        let body = json!({"a": {"$gt": 1}, "b": 5});
        assert!(!body_matches(json!({"b": {"$ref": "body.a"}}), body));
    }

    #[test]
    fn ref_across_request_parts() {
        let root = request(
            json!({"x-shop": "acme"}),
            json!({"shop": "acme"}),
            json!({}),
            "/",
        );
        let filter = Filter::compile(&json!({"shop": {"$ref": "headers.X-Shop"}})).unwrap();
        assert!(filter.matches(&root["body"], &root));
    }

    #[test]
    fn ref_as_operand() {
        let spec = json!({"inventory": {"$lte": {"$ref": "body.old_inventory"}}});
        assert!(body_matches(
            spec.clone(),
            json!({"inventory": 0, "old_inventory": 10})
        ));
        assert!(!body_matches(
            spec,
            json!({"inventory": 11, "old_inventory": 10})
        ));
    }

    #[test]
    fn ref_operand_works_with_every_test_operator() {
        let body = json!({"v": "abc", "p": "ab", "list": ["abc"]});
        assert!(body_matches(
            json!({"v": {"$eq": {"$ref": "body.v"}}}),
            body.clone()
        ));
        assert!(body_matches(
            json!({"v": {"$neq": {"$ref": "body.p"}}}),
            body.clone()
        ));
        assert!(body_matches(
            json!({"v": {"$gt": {"$ref": "body.p"}}}),
            body.clone()
        ));
        assert!(body_matches(
            json!({"v": {"$startsWith": {"$ref": "body.p"}}}),
            body.clone()
        ));
        assert!(body_matches(
            json!({"v": {"$in": {"$ref": "body.list"}}}),
            body.clone()
        ));
        assert!(!body_matches(
            json!({"v": {"$nin": {"$ref": "body.p"}}}),
            body
        ));
    }

    #[test]
    fn ref_operand_of_wrong_type_does_not_match() {
        let body = json!({"n": 5, "min": "3"});
        assert!(!body_matches(
            json!({"n": {"$gt": {"$ref": "body.min"}}}),
            body
        ));
    }

    #[test]
    fn ref_operand_to_missing_field_does_not_match() {
        assert!(!body_matches(
            json!({"n": {"$gt": {"$ref": "body.min"}}}),
            json!({"n": 5})
        ));
        assert!(!body_matches(
            json!({"n": {"$neq": {"$ref": "body.min"}}}),
            json!({"n": 5})
        ));
    }

    // $path

    #[test]
    fn path_selects_values_and_matches_any() {
        let spec = json!({"$path": "$.items[*].sku", "$in": ["A1", "B2"]});
        assert!(body_matches(
            spec.clone(),
            json!({"items": [{"sku": "Z9"}, {"sku": "B2"}]})
        ));
        assert!(!body_matches(spec, json!({"items": [{"sku": "Z9"}]})));
    }

    #[test]
    fn path_selecting_nothing_does_not_match() {
        let spec = json!({"$path": "$.items[*].sku", "$eq": "A1"});
        assert!(!body_matches(spec, json!({"items": []})));
    }

    #[test]
    fn path_selecting_nothing_matches_exist_false() {
        let spec = json!({"$path": "$.items[?@.sku == 'X']", "$exist": false});
        assert!(body_matches(spec.clone(), json!({"items": [{"sku": "A"}]})));
        assert!(!body_matches(spec, json!({"items": [{"sku": "X"}]})));
    }

    #[test]
    fn path_alone_matches_when_something_is_selected() {
        let spec = json!({"$path": "$..error"});
        assert!(body_matches(
            spec.clone(),
            json!({"a": {"b": {"error": "x"}}})
        ));
        assert!(!body_matches(spec, json!({"a": {"b": {}}})));
    }

    #[test]
    fn path_applies_plain_keys_to_selected_values() {
        let spec = json!({"$path": "$.orders[*].lines[*]", "sku": "A1", "qty": {"$gte": 2}});
        let body = json!({"orders": [{"lines": [{"sku": "A1", "qty": 1}]}, {"lines": [{"sku": "A1", "qty": 3}]}]});
        assert!(body_matches(spec.clone(), body));
        let body =
            json!({"orders": [{"lines": [{"sku": "A1", "qty": 1}, {"sku": "B", "qty": 3}]}]});
        assert!(!body_matches(spec, body));
    }

    #[test]
    fn path_nested_under_a_field_starts_at_that_field() {
        let spec = json!({"data": {"$path": "$.tags[0]", "$eq": "first"}});
        assert!(body_matches(
            spec.clone(),
            json!({"data": {"tags": ["first", "second"]}})
        ));
        assert!(!body_matches(
            spec,
            json!({"data": {"tags": ["second", "first"]}})
        ));
    }

    #[test]
    fn path_on_missing_field_selects_nothing() {
        let spec = json!({"data": {"$path": "$.x", "$exist": false}});
        assert!(body_matches(spec, json!({})));
    }

    #[test]
    fn path_with_filter_expression() {
        let spec = json!({"$path": "$.items[?@.price > 100].name", "$startsWith": "Pro"});
        assert!(body_matches(
            spec.clone(),
            json!({"items": [{"name": "Pro X", "price": 200}]})
        ));
        assert!(!body_matches(
            spec,
            json!({"items": [{"name": "Pro X", "price": 50}]})
        ));
    }

    // Non-JSON bodies

    #[test]
    fn text_body_matches_exact_string() {
        assert!(body_matches(json!("<ping/>"), json!("<ping/>")));
        assert!(!body_matches(json!("<ping/>"), json!("<pong/>")));
    }

    #[test]
    fn text_body_matches_string_operators() {
        let body = json!("<event type=\"order\"><id>1</id></event>");
        assert!(body_matches(json!({"$startsWith": "<event"}), body.clone()));
        assert!(body_matches(json!({"$endsWith": "</event>"}), body.clone()));
        assert!(body_matches(json!({"$in": "type=\"order\""}), body.clone()));
        assert!(body_matches(json!({"$nin": "refund"}), body.clone()));
        assert!(!body_matches(json!({"$in": "refund"}), body));
    }

    #[test]
    fn text_body_does_not_match_field_filters() {
        assert!(!body_matches(json!({"type": "order"}), json!("type=order")));
    }

    // Compile errors

    #[test]
    fn unknown_operator_is_rejected_with_location() {
        let message = compile_error(json!({"amount": {"$greater": 1}}));
        assert_eq!(message, "at amount: unknown operator $greater");
    }

    #[test]
    fn unknown_operator_at_root_says_root() {
        assert_eq!(
            compile_error(json!({"$regex": "x"})),
            "at the root: unknown operator $regex"
        );
    }

    #[test]
    fn unknown_operator_inside_or_names_the_alternative() {
        let message = compile_error(json!({"$or": [{"a": 1}, {"b": {"$bad": 1}}]}));
        assert_eq!(message, "at $or[1].b: unknown operator $bad");
    }

    #[test]
    fn unknown_operator_inside_array_filter_names_the_index() {
        let message = compile_error(json!({"tags": ["a", {"$nope": 1}]}));
        assert_eq!(message, "at tags[1]: unknown operator $nope");
    }

    #[test]
    fn comparison_operand_type_is_checked() {
        let message = compile_error(json!({"amount": {"$gt": [1, 2]}}));
        assert_eq!(
            message,
            "at amount: $gt expects a number or string, got array"
        );
        assert!(compile_error(json!({"a": {"$lte": true}}))
            .contains("$lte expects a number or string, got boolean"));
    }

    #[test]
    fn string_operand_types_are_checked() {
        let message = compile_error(json!({"a": {"$startsWith": 1}}));
        assert_eq!(message, "at a: $startsWith expects a string, got number");
        assert!(compile_error(json!({"a": {"$endsWith": null}})).contains("got null"));
    }

    #[test]
    fn in_operand_type_is_checked() {
        let message = compile_error(json!({"a": {"$in": 5}}));
        assert_eq!(message, "at a: $in expects an array or string, got number");
        assert!(compile_error(json!({"a": {"$nin": {"x": 1}}})).contains("got object"));
    }

    #[test]
    fn exist_operand_must_be_boolean() {
        let message = compile_error(json!({"a": {"$exist": "yes"}}));
        assert_eq!(message, "at a: $exist expects a boolean, got string");
    }

    #[test]
    fn or_must_be_an_array() {
        let message = compile_error(json!({"a": {"$or": {"b": 1}}}));
        assert_eq!(message, "at a: $or expects an array of filters, got object");
    }

    #[test]
    fn and_must_not_be_empty() {
        let message = compile_error(json!({"$and": []}));
        assert_eq!(
            message,
            "at the root: $and expects a non-empty array of filters, got an empty array"
        );
    }

    #[test]
    fn not_operand_is_compiled() {
        let message = compile_error(json!({"a": {"$not": {"$wat": 1}}}));
        assert_eq!(message, "at a.$not: unknown operator $wat");
    }

    #[test]
    fn bad_json_path_is_rejected_with_location() {
        let message = compile_error(json!({"data": {"$path": "$.items[", "$eq": 1}}));
        assert!(
            message.starts_with("at data: $path \"$.items[\" is not valid JSONPath: "),
            "{message}"
        );
        assert!(message.ends_with("expected selector"), "{message}");
    }

    #[test]
    fn json_path_must_be_a_string() {
        assert_eq!(
            compile_error(json!({"$path": 3})),
            "at the root: $path expects a JSONPath string, got number"
        );
    }

    #[test]
    fn operators_beside_path_are_checked() {
        let message = compile_error(json!({"$path": "$.a", "$in": 1}));
        assert_eq!(
            message,
            "at the root: $in expects an array or string, got number"
        );
    }

    #[test]
    fn ref_must_be_a_string() {
        assert_eq!(
            compile_error(json!({"a": {"$ref": 1}})),
            "at a: $ref expects a string path, got number"
        );
    }

    #[test]
    fn malformed_ref_paths_are_rejected() {
        for path in [
            "",
            "body..a",
            "body.a[",
            "body.a[x]",
            "body.a[]",
            "[0]",
            "body.a]",
        ] {
            let message = compile_error(json!({"a": {"$ref": path}}));
            assert!(message.contains("is malformed"), "{path}: {message}");
        }
    }

    #[test]
    fn ref_operand_error_names_the_operator() {
        let message = compile_error(json!({"a": {"$gt": {"$ref": "body..x"}}}));
        assert!(message.starts_with("at a.$gt: $ref path"), "{message}");
    }

    #[test]
    fn ref_paths_split_names_and_indices() {
        let split = |text| split_ref_path(text).unwrap();
        assert_eq!(split("body.a.0.b"), ["body", "a", "0", "b"]);
        assert_eq!(split("body.a[0][12].b"), ["body", "a", "0", "12", "b"]);
    }

    // RequestFilter

    #[test]
    fn request_filter_needs_every_given_part() {
        let rule = RequestFilter::compile(
            Some(&json!({"x-github-event": "push"})),
            Some(&json!({"ref": {"$startsWith": "refs/heads/"}})),
            Some(&json!({"token": {"$exist": true}})),
            Some(&json!({"$startsWith": "/hooks/"})),
        )
        .unwrap();
        let root = |event, path| {
            request(
                json!({"x-github-event": event}),
                json!({"ref": "refs/heads/main"}),
                json!({"token": "t"}),
                path,
            )
        };
        assert!(rule.matches(&root("push", "/hooks/gh")));
        assert!(!rule.matches(&root("issues", "/hooks/gh")));
        assert!(!rule.matches(&root("push", "/other")));
    }

    #[test]
    fn request_filter_without_parts_matches_everything() {
        let rule = RequestFilter::compile(None, None, None, None).unwrap();
        assert!(rule.matches(&request(json!({}), json!(null), json!({}), "/")));
    }

    #[test]
    fn request_filter_header_names_are_case_insensitive() {
        let spec =
            json!({"X-GitHub-Event": "push", "$or": [{"X-Hook-Kind": "a"}, {"X-Hook-Kind": "b"}]});
        let rule = RequestFilter::compile(Some(&spec), None, None, None).unwrap();
        let root = request(
            json!({"x-github-event": "push", "x-hook-kind": "b"}),
            json!({}),
            json!({}),
            "/",
        );
        assert!(rule.matches(&root));
    }

    #[test]
    fn request_filter_header_values_stay_case_sensitive() {
        let rule =
            RequestFilter::compile(Some(&json!({"x-event": "Push"})), None, None, None).unwrap();
        assert!(!rule.matches(&request(
            json!({"x-event": "push"}),
            json!({}),
            json!({}),
            "/"
        )));
    }

    #[test]
    fn request_filter_body_keys_stay_case_sensitive() {
        let rule = RequestFilter::compile(None, Some(&json!({"Type": "a"})), None, None).unwrap();
        assert!(!rule.matches(&request(json!({}), json!({"type": "a"}), json!({}), "/")));
    }

    #[test]
    fn request_filter_ref_between_parts() {
        let rule = RequestFilter::compile(
            None,
            Some(&json!({"account": {"$ref": "query.account"}})),
            None,
            None,
        )
        .unwrap();
        let root = |account| {
            request(
                json!({}),
                json!({"account": account}),
                json!({"account": "42"}),
                "/",
            )
        };
        assert!(rule.matches(&root("42")));
        assert!(!rule.matches(&root("7")));
    }

    #[test]
    fn request_filter_non_json_body() {
        let rule = RequestFilter::compile(None, Some(&json!({"$in": "<status>paid"})), None, None)
            .unwrap();
        assert!(rule.matches(&request(
            json!({}),
            json!("<x><status>paid</status></x>"),
            json!({}),
            "/"
        )));
    }

    #[test]
    fn request_filter_missing_part_counts_as_missing() {
        let rule =
            RequestFilter::compile(None, Some(&json!({"$exist": false})), None, None).unwrap();
        assert!(rule.matches(&json!({"headers": {}})));
        assert!(!rule.matches(&json!({"body": {}})));
    }

    #[test]
    fn request_filter_error_names_the_part() {
        let error = RequestFilter::compile(None, Some(&json!({"amount": {"$gt": []}})), None, None)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "body: at amount: $gt expects a number or string, got array"
        );
        assert!(matches!(error, FilterError::InPart { part: "body", .. }));
    }

    #[test]
    fn request_filter_error_for_path_part() {
        let error =
            RequestFilter::compile(None, None, None, Some(&json!({"$bogus": 1}))).unwrap_err();
        assert_eq!(
            error.to_string(),
            "path: at the root: unknown operator $bogus"
        );
    }
}

//! Filtering, ordering and keyset paging for `GET /api/webhook-deliveries`.
//!
//! The caller loads every candidate delivery as a camelCase JSON object; this module parses
//! the `filter` and `orderBy` query parameters, tells which deliveries match, sorts them and
//! cuts one page. Paging is keyset-based: a cursor holds the sort key of an item rather than
//! an offset, so it stays valid while deliveries are added or removed between requests.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Number, Value};
use std::cmp::Ordering as CmpOrdering;
use std::fmt;
use std::ops::Range;

/// Ids are unique, so sorting by `id` last makes every ordering total and every cursor exact.
const TIE_BREAK: &str = "id";

/// Operator names as shown in error messages.
const OPERATORS: &str = "eq, ne, gt, gte, lt, lte, in, nin, contains, startsWith, endsWith, isNull";

/// The two accepted shapes of an orderBy entry, as shown in error messages.
const ENTRY_SHAPES: &str =
    r#"{"<field>": "<direction>"} or {"field": "<field>", "direction": "<direction>"}"#;

/// Sort directions as shown in error messages.
const DIRECTIONS: &str =
    "asc, desc, asc_nulls_first, asc_nulls_last, desc_nulls_first, desc_nulls_last";

/// A bad `filter`, `orderBy` or cursor: which query parameter, and a message a person can act on.
///
/// The message starts with where the problem is (`filter.AND[1].attemptCount`, `orderBy[2]`,
/// `after`), so it reads well on its own in an API response.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryError {
    pub parameter: &'static str,
    pub message: String,
}

impl QueryError {
    fn new(parameter: &'static str, location: &str, problem: impl fmt::Display) -> QueryError {
        QueryError {
            parameter,
            message: format!("{location}: {problem}"),
        }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.parameter, self.message)
    }
}

impl std::error::Error for QueryError {}

/// Parses a query parameter's JSON, blaming the parameter as a whole when it is malformed.
fn parse_json(parameter: &'static str, text: &str) -> Result<Value, QueryError> {
    serde_json::from_str(text)
        .map_err(|e| QueryError::new(parameter, parameter, format_args!("not valid JSON: {e}")))
}

/// The value of a top-level field; a missing field reads as null, as a database column would.
fn field<'v>(item: &'v Value, name: &str) -> &'v Value {
    item.get(name).unwrap_or(&Value::Null)
}

/// Logical and operator keys are matched loosely so Hasura (`_starts_with`), Prisma-style
/// (`startsWith`) and SQL-ish (`AND`) habits all work: underscores dropped, case ignored.
fn normalize(key: &str) -> String {
    key.replace('_', "").to_ascii_lowercase()
}

/// Numbers compare numerically and strings lexicographically (which is chronological for our
/// timestamps and ids); any other pairing has no order, so ordering operators reject it.
fn ordered(a: &Value, b: &Value) -> Option<CmpOrdering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Integers compare exactly; anything involving a fraction goes through `f64`.
fn compare_numbers(x: &Number, y: &Number) -> Option<CmpOrdering> {
    match (x.as_i64(), y.as_i64()) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
    }
}

/// Equality where `3` and `3.0` are the same number; everything else compares structurally.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => ordered(a, b) == Some(CmpOrdering::Equal),
        _ => a == b,
    }
}

/// A total order over JSON values for sorting: within a kind as `ordered` (and `false < true`),
/// across kinds by kind, so odd data or a cursor from another ordering still sorts somewhere.
fn sort_cmp(a: &Value, b: &Value) -> CmpOrdering {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => ordered(a, b).unwrap_or_else(|| kind_rank(a).cmp(&kind_rank(b))),
    }
}

/// Where each kind of value sorts relative to the others.
fn kind_rank(value: &Value) -> u8 {
    match value {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// A parsed `filter` expression.
#[derive(Debug, Clone)]
pub struct Filter {
    root: Expr,
}

#[derive(Debug, Clone)]
enum Expr {
    All(Vec<Expr>),
    Any(Vec<Expr>),
    Not(Box<Expr>),
    /// Every test must pass on the named field.
    Field {
        name: String,
        tests: Vec<Test>,
    },
}

#[derive(Debug, Clone)]
enum Test {
    /// `eq`, `ne`, `in` and `nin` all ask whether the value is among a set (or not).
    Among {
        values: Vec<Value>,
        expected: bool,
    },
    /// `gt`, `gte`, `lt`, `lte`: `accepts` says which outcomes of comparing the value with the
    /// operand pass; values with no order against the operand (null, booleans) never pass.
    Ordered {
        accepts: fn(CmpOrdering) -> bool,
        operand: Value,
    },
    /// `contains`, `startsWith`, `endsWith`: the value must be a string passing the check.
    Text {
        check: fn(&str, &str) -> bool,
        operand: String,
    },
    IsNull(bool),
}

impl Filter {
    /// `fields`: the item fields that may be filtered on (anything else is an error listing them).
    pub fn parse(text: &str, fields: &[&str]) -> Result<Filter, QueryError> {
        let root = FilterParser { fields }.object(&parse_json("filter", text)?, "filter")?;
        Ok(Filter { root })
    }

    pub fn matches(&self, item: &Value) -> bool {
        self.root.matches(item)
    }
}

impl Expr {
    fn matches(&self, item: &Value) -> bool {
        match self {
            Expr::All(all) => all.iter().all(|expr| expr.matches(item)),
            Expr::Any(any) => any.iter().any(|expr| expr.matches(item)),
            Expr::Not(expr) => !expr.matches(item),
            Expr::Field { name, tests } => {
                let value = field(item, name);
                tests.iter().all(|test| test.passes(value))
            }
        }
    }
}

impl Test {
    /// Reads one `operator: operand` pair of the field at `path`.
    fn parse(operator: &str, operand: &Value, path: &str) -> Result<Test, QueryError> {
        let wrong_operand = |expected: &str| {
            let problem = format!("operator {operator:?} needs {expected}, got {operand}");
            QueryError::new("filter", path, problem)
        };
        let among = |values, expected| Test::Among { values, expected };
        let list = || {
            operand
                .as_array()
                .cloned()
                .ok_or_else(|| wrong_operand("an array"))
        };
        let ordered = |accepts| Test::Ordered {
            accepts,
            operand: operand.clone(),
        };
        let text = |check: fn(&str, &str) -> bool| match operand {
            Value::String(operand) => Ok(Test::Text {
                check,
                operand: operand.clone(),
            }),
            _ => Err(wrong_operand("a string")),
        };
        Ok(match normalize(operator).as_str() {
            "eq" => among(vec![operand.clone()], true),
            "ne" | "neq" => among(vec![operand.clone()], false),
            "gt" => ordered(CmpOrdering::is_gt),
            "gte" => ordered(CmpOrdering::is_ge),
            "lt" => ordered(CmpOrdering::is_lt),
            "lte" => ordered(CmpOrdering::is_le),
            "in" => among(list()?, true),
            "nin" | "notin" => among(list()?, false),
            "contains" => text(|value, part| value.contains(part))?,
            "startswith" => text(|value, part| value.starts_with(part))?,
            "endswith" => text(|value, part| value.ends_with(part))?,
            "isnull" => Test::IsNull(
                operand
                    .as_bool()
                    .ok_or_else(|| wrong_operand("true or false"))?,
            ),
            _ => {
                let problem = format!("unknown operator {operator:?}; expected one of {OPERATORS}");
                return Err(QueryError::new("filter", path, problem));
            }
        })
    }

    fn passes(&self, value: &Value) -> bool {
        match self {
            Test::Among { values, expected } => values.iter().any(|v| same(value, v)) == *expected,
            Test::Ordered { accepts, operand } => ordered(value, operand).is_some_and(accepts),
            Test::Text { check, operand } => value.as_str().is_some_and(|s| check(s, operand)),
            Test::IsNull(expected) => value.is_null() == *expected,
        }
    }
}

/// Turns filter JSON into an `Expr`, carrying the JSON path along so errors can point into it.
struct FilterParser<'f> {
    fields: &'f [&'f str],
}

impl FilterParser<'_> {
    /// An object of conditions, all of which must hold.
    fn object(&self, value: &Value, path: &str) -> Result<Expr, QueryError> {
        let object = value.as_object().ok_or_else(|| {
            QueryError::new(
                "filter",
                path,
                format_args!("expected an object, got {value}"),
            )
        })?;
        object
            .iter()
            .map(|(key, value)| self.condition(key, value, &format!("{path}.{key}")))
            .collect::<Result<_, _>>()
            .map(Expr::All)
    }

    fn condition(&self, key: &str, value: &Value, path: &str) -> Result<Expr, QueryError> {
        match normalize(key).as_str() {
            "and" => self.list(value, path).map(Expr::All),
            "or" => self.list(value, path).map(Expr::Any),
            "not" => Ok(Expr::Not(Box::new(self.object(value, path)?))),
            _ => self.field(key, value, path),
        }
    }

    fn list(&self, value: &Value, path: &str) -> Result<Vec<Expr>, QueryError> {
        let items = value.as_array().ok_or_else(|| {
            QueryError::new("filter", path, "expected an array of filter objects")
        })?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| self.object(item, &format!("{path}[{i}]")))
            .collect()
    }

    /// A field with an operator object, or with a bare value meaning `eq`.
    fn field(&self, name: &str, value: &Value, path: &str) -> Result<Expr, QueryError> {
        if !self.fields.contains(&name) {
            let allowed = self.fields.join(", ");
            let problem =
                format!("unknown field {name:?}; expected one of {allowed}, AND, OR, NOT");
            return Err(QueryError::new("filter", path, problem));
        }
        let tests = match value {
            Value::Object(operators) => operators
                .iter()
                .map(|(operator, operand)| Test::parse(operator, operand, path))
                .collect::<Result<_, _>>()?,
            bare => vec![Test::Among {
                values: vec![bare.clone()],
                expected: true,
            }],
        };
        Ok(Expr::Field {
            name: name.to_owned(),
            tests,
        })
    }
}

/// A parsed `orderBy`; always ends with `id` ascending as the tie-break (unless id was given
/// explicitly), so the order is total.
#[derive(Debug, Clone)]
pub struct Ordering {
    terms: Vec<Term>,
}

#[derive(Debug, Clone)]
struct Term {
    field: String,
    descending: bool,
    nulls_first: bool,
}

impl Ordering {
    /// Default when no orderBy is given: createdAt descending (newest first), then id.
    pub fn newest_first() -> Ordering {
        Ordering::total(vec![Term {
            field: "createdAt".to_owned(),
            descending: true,
            nulls_first: true,
        }])
    }

    pub fn parse(text: &str, fields: &[&str]) -> Result<Ordering, QueryError> {
        let Value::Array(entries) = parse_json("orderBy", text)? else {
            let problem = r#"expected an array such as [{"createdAt": "desc"}]"#;
            return Err(QueryError::new("orderBy", "orderBy", problem));
        };
        entries
            .iter()
            .enumerate()
            .map(|(i, entry)| Term::parse(entry, fields, &format!("orderBy[{i}]")))
            .collect::<Result<_, _>>()
            .map(Ordering::total)
    }

    pub fn compare(&self, a: &Value, b: &Value) -> CmpOrdering {
        self.compare_with(a, self.terms.iter().map(|term| field(b, &term.field)))
    }

    /// Appends the `id` tie-break unless the caller already sorts by id.
    fn total(mut terms: Vec<Term>) -> Ordering {
        if !terms.iter().any(|term| term.field == TIE_BREAK) {
            terms.push(Term {
                field: TIE_BREAK.to_owned(),
                descending: false,
                nulls_first: false,
            });
        }
        Ordering { terms }
    }

    /// Compares `item` with a sort key given as one value per term: another item's, or a cursor's.
    fn compare_with<'k>(
        &self,
        item: &Value,
        key: impl IntoIterator<Item = &'k Value>,
    ) -> CmpOrdering {
        self.terms
            .iter()
            .zip(key)
            .map(|(term, theirs)| term.compare(field(item, &term.field), theirs))
            .find(|order| order.is_ne())
            .unwrap_or(CmpOrdering::Equal)
    }

    /// An item's cursor is its sort key, so paging can resume after it even once it is gone.
    fn cursor(&self, item: &Value) -> String {
        let key: Value = self
            .terms
            .iter()
            .map(|term| field(item, &term.field).clone())
            .collect();
        URL_SAFE_NO_PAD.encode(key.to_string())
    }

    fn decode_cursor(
        &self,
        parameter: &'static str,
        cursor: &str,
    ) -> Result<Vec<Value>, QueryError> {
        let invalid = |problem: &str| {
            let hint = "pass startCursor or endCursor from an earlier page";
            QueryError::new(
                parameter,
                parameter,
                format_args!("not a valid cursor ({problem}); {hint}"),
            )
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| invalid("not URL-safe base64"))?;
        let key: Vec<Value> =
            serde_json::from_slice(&bytes).map_err(|_| invalid("not a JSON array"))?;
        if key.len() != self.terms.len() {
            return Err(invalid("made for a different orderBy"));
        }
        Ok(key)
    }
}

impl Term {
    /// Reads `{"<field>": "<direction>"}` or `{"field": "<field>", "direction": "<direction>"}`.
    fn parse(entry: &Value, fields: &[&str], path: &str) -> Result<Term, QueryError> {
        let error = |problem: String| QueryError::new("orderBy", path, problem);
        let (field, direction) = entry
            .as_object()
            .and_then(term_parts)
            .ok_or_else(|| error(format!("expected {ENTRY_SHAPES}, got {entry}")))?;
        if !fields.contains(&field) {
            let allowed = fields.join(", ");
            return Err(error(format!(
                "unknown field {field:?}; expected one of {allowed}"
            )));
        }
        direction
            .as_str()
            .and_then(|direction| Term::new(field, direction))
            .ok_or_else(|| {
                error(format!(
                    "unknown direction {direction}; expected one of {DIRECTIONS}"
                ))
            })
    }

    /// Plain `asc`/`desc` put nulls where PostgreSQL does: last ascending, first descending.
    fn new(field: &str, direction: &str) -> Option<Term> {
        let direction = direction.to_ascii_lowercase();
        let (way, nulls) = match direction.split_once("_nulls_") {
            Some((way, nulls)) => (way, Some(nulls)),
            None => (direction.as_str(), None),
        };
        let descending = match way {
            "asc" => false,
            "desc" => true,
            _ => return None,
        };
        let nulls_first = match nulls {
            None => descending,
            Some("first") => true,
            Some("last") => false,
            Some(_) => return None,
        };
        Some(Term {
            field: field.to_owned(),
            descending,
            nulls_first,
        })
    }

    fn compare(&self, a: &Value, b: &Value) -> CmpOrdering {
        match (a.is_null(), b.is_null()) {
            (false, false) if self.descending => sort_cmp(a, b).reverse(),
            (false, false) => sort_cmp(a, b),
            (a_null, b_null) if self.nulls_first => b_null.cmp(&a_null),
            (a_null, b_null) => a_null.cmp(&b_null),
        }
    }
}

/// The field and direction of an orderBy entry in either of its two shapes.
fn term_parts(entry: &Map<String, Value>) -> Option<(&str, &Value)> {
    if let Some(field) = entry.get("field") {
        return Some((field.as_str()?, entry.get("direction")?));
    }
    let mut pairs = entry.iter();
    match (pairs.next(), pairs.next()) {
        (Some((field, direction)), None) => Some((field, direction)),
        _ => None,
    }
}

/// The response's `pageInfo`: enough for a client to show its place and fetch the neighbours.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    pub total: usize,
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

/// Filters nothing: `items` are already filtered. Sorts them with `ordering`, then cuts the page:
/// with `after`: the first `limit` items strictly after the cursor; with `before`: the last
/// `limit` items strictly before it; with neither: the first `limit`. Both given → QueryError
/// (parameter "after"). total = items.len().
/// hasNextPage/hasPreviousPage say whether items exist after the page's last / before the
/// page's first item.
pub fn page(
    mut items: Vec<Value>,
    ordering: &Ordering,
    after: Option<&str>,
    before: Option<&str>,
    limit: usize,
) -> Result<(Vec<Value>, PageInfo), QueryError> {
    items.sort_by(|a, b| ordering.compare(a, b));
    let window = window(&items, ordering, after, before, limit)?;
    let chosen = &items[window.clone()];
    let info = PageInfo {
        total: items.len(),
        has_next_page: window.end < items.len(),
        has_previous_page: window.start > 0,
        start_cursor: chosen.first().map(|item| ordering.cursor(item)),
        end_cursor: chosen.last().map(|item| ordering.cursor(item)),
    };
    Ok((items.drain(window).collect(), info))
}

/// Where the page lies in the sorted `items`. Cursors are found by key, not by position, so
/// items inserted or removed since the cursor was made do not shift the page.
fn window(
    items: &[Value],
    ordering: &Ordering,
    after: Option<&str>,
    before: Option<&str>,
    limit: usize,
) -> Result<Range<usize>, QueryError> {
    Ok(match (after, before) {
        (Some(_), Some(_)) => {
            let problem = "cannot be combined with before; page in one direction at a time";
            return Err(QueryError::new("after", "after", problem));
        }
        (Some(cursor), None) => {
            let key = ordering.decode_cursor("after", cursor)?;
            let start = items.partition_point(|item| ordering.compare_with(item, &key).is_le());
            start..items.len().min(start.saturating_add(limit))
        }
        (None, Some(cursor)) => {
            let key = ordering.decode_cursor("before", cursor)?;
            let end = items.partition_point(|item| ordering.compare_with(item, &key).is_lt());
            end.saturating_sub(limit)..end
        }
        (None, None) => 0..items.len().min(limit),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FIELDS: &[&str] = &[
        "id",
        "status",
        "attemptCount",
        "lastStatusCode",
        "lastAttemptAt",
        "nextAttemptAt",
        "createdAt",
        "eventType",
        "retryable",
    ];

    /// Four deliveries covering numbers, strings, booleans, explicit nulls and missing fields.
    fn sample() -> Vec<Value> {
        vec![
            json!({"id": "a", "status": "failed", "attemptCount": 3, "lastStatusCode": 500,
                   "lastAttemptAt": "2026-11-23T20:00:01.000Z", "nextAttemptAt": null,
                   "eventType": "invoice.paid", "retryable": true}),
            json!({"id": "b", "status": "delivered", "attemptCount": 1, "lastStatusCode": 200,
                   "lastAttemptAt": "2026-11-23T20:00:03.000Z", "nextAttemptAt": null,
                   "eventType": "invoice.created", "retryable": false}),
            json!({"id": "c", "status": "pending", "attemptCount": 0,
                   "nextAttemptAt": "2026-11-23T21:00:00.000Z", "eventType": "order.paid"}),
            json!({"id": "d", "status": "failed", "attemptCount": 5, "lastStatusCode": 404,
                   "lastAttemptAt": "2026-11-23T20:00:02.000Z",
                   "eventType": "order.failed", "retryable": true}),
        ]
    }

    fn ids(items: &[Value]) -> String {
        let ids: Vec<&str> = items
            .iter()
            .map(|item| item["id"].as_str().unwrap())
            .collect();
        ids.join(" ")
    }

    /// The ids of the sample deliveries that `filter` keeps, space-separated.
    fn matching(filter: &str) -> String {
        let parsed = Filter::parse(filter, FIELDS).unwrap_or_else(|e| panic!("{filter}: {e}"));
        let kept: Vec<Value> = sample().into_iter().filter(|d| parsed.matches(d)).collect();
        ids(&kept)
    }

    fn assert_matches(cases: &[(&str, &str)]) {
        for (filter, expected) in cases {
            assert_eq!(matching(filter), *expected, "filter {filter}");
        }
    }

    #[test]
    fn equality_operators_and_shorthand() {
        assert_matches(&[
            (r#"{"status": "failed"}"#, "a d"),
            (r#"{"status": {"eq": "failed"}}"#, "a d"),
            (r#"{"status": {"_eq": "failed"}}"#, "a d"),
            (r#"{"attemptCount": 3}"#, "a"),
            (r#"{"attemptCount": {"eq": 3.0}}"#, "a"),
            (r#"{"retryable": true}"#, "a d"),
            (r#"{"status": {"ne": "failed"}}"#, "b c"),
            (r#"{"status": {"neq": "failed"}}"#, "b c"),
            (r#"{"status": {"_neq": "failed"}}"#, "b c"),
        ]);
    }

    #[test]
    fn ordering_operators() {
        assert_matches(&[
            (r#"{"attemptCount": {"gt": 1}}"#, "a d"),
            (r#"{"attemptCount": {"_gt": 1}}"#, "a d"),
            (r#"{"attemptCount": {"gte": 1}}"#, "a b d"),
            (r#"{"attemptCount": {"lt": 3}}"#, "b c"),
            (r#"{"attemptCount": {"lte": 3}}"#, "a b c"),
            (r#"{"attemptCount": {"_lte": 3.5}}"#, "a b c"),
            (r#"{"attemptCount": {"gte": 1, "lte": 3}}"#, "a b"),
            (
                r#"{"lastAttemptAt": {"gt": "2026-11-23T20:00:01.000Z"}}"#,
                "b d",
            ),
            (r#"{"id": {"lt": "c"}}"#, "a b"),
        ]);
    }

    #[test]
    fn ordering_operators_reject_booleans_and_mixed_types() {
        assert_matches(&[
            (r#"{"retryable": {"gt": false}}"#, ""),
            (r#"{"retryable": {"gte": true}}"#, ""),
            (r#"{"attemptCount": {"gt": "1"}}"#, ""),
            (r#"{"status": {"lt": 10}}"#, ""),
        ]);
    }

    #[test]
    fn membership_operators() {
        assert_matches(&[
            (r#"{"status": {"in": ["failed", "pending"]}}"#, "a c d"),
            (r#"{"lastStatusCode": {"_in": [500, 404.0]}}"#, "a d"),
            (r#"{"status": {"nin": ["failed"]}}"#, "b c"),
            (r#"{"status": {"_nin": ["failed"]}}"#, "b c"),
            (r#"{"status": {"notIn": ["failed"]}}"#, "b c"),
            (r#"{"status": {"not_in": ["failed"]}}"#, "b c"),
            (r#"{"lastStatusCode": {"nin": [200]}}"#, "a c d"),
            (r#"{"lastStatusCode": {"in": [null]}}"#, "c"),
            (r#"{"status": {"in": []}}"#, ""),
        ]);
    }

    #[test]
    fn string_operators() {
        assert_matches(&[
            (r#"{"eventType": {"contains": "paid"}}"#, "a c"),
            (r#"{"eventType": {"_contains": "ice.cr"}}"#, "b"),
            (r#"{"eventType": {"startsWith": "invoice."}}"#, "a b"),
            (r#"{"eventType": {"_starts_with": "order."}}"#, "c d"),
            (r#"{"eventType": {"endsWith": ".paid"}}"#, "a c"),
            (r#"{"eventType": {"_endsWith": "failed"}}"#, "d"),
            (r#"{"attemptCount": {"contains": "3"}}"#, ""),
        ]);
    }

    #[test]
    fn null_and_missing_fields() {
        assert_matches(&[
            (r#"{"lastStatusCode": {"isNull": true}}"#, "c"),
            (r#"{"nextAttemptAt": {"_is_null": false}}"#, "c"),
            (r#"{"nextAttemptAt": {"isNull": true}}"#, "a b d"),
            (r#"{"lastStatusCode": null}"#, "c"),
            (r#"{"nextAttemptAt": {"eq": null}}"#, "a b d"),
            (r#"{"lastStatusCode": {"ne": null}}"#, "a b d"),
            (r#"{"lastStatusCode": {"gt": null}}"#, ""),
            (r#"{"lastStatusCode": {"lte": null}}"#, ""),
            (r#"{"lastStatusCode": {"lt": 1000}}"#, "a b d"),
            (
                r#"{"eventType": {"contains": ""}, "retryable": {"ne": true}}"#,
                "b c",
            ),
        ]);
    }

    #[test]
    fn logical_operators_and_nesting() {
        assert_matches(&[
            (r#"{}"#, "a b c d"),
            (r#"{"status": "failed", "attemptCount": {"lt": 4}}"#, "a"),
            (
                r#"{"AND": [{"status": "failed"}, {"attemptCount": {"gt": 3}}]}"#,
                "d",
            ),
            (
                r#"{"and": [{"status": "failed"}, {"attemptCount": {"gt": 3}}]}"#,
                "d",
            ),
            (
                r#"{"_and": [{"status": "failed"}, {"attemptCount": {"gt": 3}}]}"#,
                "d",
            ),
            (
                r#"{"OR": [{"status": "pending"}, {"lastStatusCode": 500}]}"#,
                "a c",
            ),
            (
                r#"{"or": [{"status": "pending"}, {"lastStatusCode": 500}]}"#,
                "a c",
            ),
            (
                r#"{"_or": [{"status": "pending"}, {"lastStatusCode": 500}]}"#,
                "a c",
            ),
            (r#"{"NOT": {"status": "failed"}}"#, "b c"),
            (r#"{"not": {"status": "failed"}}"#, "b c"),
            (r#"{"_not": {"status": "failed"}}"#, "b c"),
            (r#"{"AND": []}"#, "a b c d"),
            (r#"{"OR": []}"#, ""),
            (
                r#"{"OR": [{"AND": [{"status": "failed"}, {"NOT": {"lastStatusCode": 404}}]},
                           {"status": "delivered"}]}"#,
                "a b",
            ),
            (
                r#"{"NOT": {"OR": [{"status": "pending"}, {"attemptCount": {"gte": 5}}]},
                    "eventType": {"startsWith": "invoice"}}"#,
                "a b",
            ),
        ]);
    }

    fn filter_error(filter: &str) -> QueryError {
        let error = Filter::parse(filter, FIELDS).expect_err("should be rejected");
        assert_eq!(error.parameter, "filter");
        error
    }

    #[test]
    fn filter_errors_name_the_path() {
        let cases = [
            (r#"{"status": "#, "filter: not valid JSON: "),
            (r#"[1]"#, "filter: expected an object, got [1]"),
            (
                r#"{"bogus": 1}"#,
                r#"filter.bogus: unknown field "bogus"; expected one of id, status, attemptCount"#,
            ),
            (
                r#"{"OR": [{"nope": 1}]}"#,
                r#"filter.OR[0].nope: unknown field "nope""#,
            ),
            (
                r#"{"AND": [{"status": "x"}, {"attemptCount": {"bigger": 2}}]}"#,
                r#"filter.AND[1].attemptCount: unknown operator "bigger"; expected one of eq, ne, gt"#,
            ),
            (
                r#"{"OR": [{"status": {"in": "failed"}}]}"#,
                r#"filter.OR[0].status: operator "in" needs an array, got "failed""#,
            ),
            (
                r#"{"status": {"nin": null}}"#,
                r#"filter.status: operator "nin" needs an array, got null"#,
            ),
            (
                r#"{"eventType": {"contains": 3}}"#,
                r#"filter.eventType: operator "contains" needs a string, got 3"#,
            ),
            (
                r#"{"NOT": {"status": {"isNull": "yes"}}}"#,
                r#"filter.NOT.status: operator "isNull" needs true or false, got "yes""#,
            ),
            (
                r#"{"AND": {"status": "failed"}}"#,
                "filter.AND: expected an array",
            ),
            (r#"{"OR": [3]}"#, "filter.OR[0]: expected an object, got 3"),
        ];
        for (filter, expected) in cases {
            let message = filter_error(filter).message;
            assert!(message.starts_with(expected), "{filter}: {message}");
        }
    }

    #[test]
    fn error_display_names_the_parameter() {
        let error = filter_error(r#"{"bogus": 1}"#);
        assert!(error
            .to_string()
            .starts_with("filter: filter.bogus: unknown field"));
    }

    /// Items with a timestamp, an explicit null and a missing value, to show where nulls go.
    fn nullable() -> Vec<Value> {
        vec![
            json!({"id": "n", "lastAttemptAt": null}),
            json!({"id": "y", "lastAttemptAt": "2026-11-23T20:00:02.000Z"}),
            json!({"id": "m"}),
            json!({"id": "x", "lastAttemptAt": "2026-11-23T20:00:01.000Z"}),
        ]
    }

    fn sorted(order_by: &str, mut items: Vec<Value>) -> String {
        let ordering = Ordering::parse(order_by, FIELDS).unwrap_or_else(|e| panic!("{e}"));
        items.sort_by(|a, b| ordering.compare(a, b));
        ids(&items)
    }

    #[test]
    fn every_direction_places_nulls() {
        let cases = [
            ("asc", "x y m n"),
            ("desc", "m n y x"),
            ("asc_nulls_first", "m n x y"),
            ("asc_nulls_last", "x y m n"),
            ("desc_nulls_first", "m n y x"),
            ("desc_nulls_last", "y x m n"),
            ("DESC_NULLS_LAST", "y x m n"),
            ("Asc", "x y m n"),
        ];
        for (direction, expected) in cases {
            let order_by = format!(r#"[{{"lastAttemptAt": "{direction}"}}]"#);
            assert_eq!(sorted(&order_by, nullable()), expected, "{direction}");
        }
    }

    #[test]
    fn object_form_entries() {
        let order_by = r#"[{"field": "lastAttemptAt", "direction": "desc_nulls_last"}]"#;
        assert_eq!(sorted(order_by, nullable()), "y x m n");
    }

    #[test]
    fn several_keys_then_id_tie_break() {
        let items = || {
            vec![
                json!({"id": "p4", "status": "failed", "attemptCount": 3}),
                json!({"id": "p2", "status": "failed", "attemptCount": 5}),
                json!({"id": "p3", "status": "delivered", "attemptCount": 1}),
                json!({"id": "p1", "status": "failed", "attemptCount": 3}),
            ]
        };
        let by_status = r#"[{"status": "asc"}, {"attemptCount": "desc"}]"#;
        assert_eq!(sorted(by_status, items()), "p3 p2 p1 p4");
        let explicit_id = r#"[{"status": "asc"}, {"attemptCount": "desc"}, {"id": "desc"}]"#;
        assert_eq!(sorted(explicit_id, items()), "p3 p2 p4 p1");
        assert_eq!(sorted("[]", items()), "p1 p2 p3 p4");
    }

    #[test]
    fn newest_first_sorts_by_creation_then_id() {
        let ordering = Ordering::newest_first();
        let mut items = vec![
            json!({"id": "b", "createdAt": "2026-11-23T20:00:00.000Z"}),
            json!({"id": "c", "createdAt": "2026-11-23T20:00:01.000Z"}),
            json!({"id": "a", "createdAt": "2026-11-23T20:00:00.000Z"}),
        ];
        items.sort_by(|a, b| ordering.compare(a, b));
        assert_eq!(ids(&items), "c a b");
    }

    #[test]
    fn order_by_errors_name_the_index() {
        let cases = [
            ("[", "orderBy: not valid JSON: "),
            (r#"{"createdAt": "asc"}"#, "orderBy: expected an array"),
            (
                r#"[{"createdAt": "asc"}, {}]"#,
                r#"orderBy[1]: expected {"<field>""#,
            ),
            (
                r#"[{"createdAt": "asc", "id": "asc"}]"#,
                r#"orderBy[0]: expected {"#,
            ),
            (r#"[{"field": "createdAt"}]"#, r#"orderBy[0]: expected {"#),
            (r#"["createdAt"]"#, r#"orderBy[0]: expected {"#),
            (
                r#"[{"createdAt": "asc"}, {"bogus": "asc"}]"#,
                r#"orderBy[1]: unknown field "bogus"; expected one of id, status"#,
            ),
            (
                r#"[{"createdAt": "upwards"}]"#,
                r#"orderBy[0]: unknown direction "upwards"; expected one of asc, desc,"#,
            ),
            (
                r#"[{"createdAt": "asc_nulls_middle"}]"#,
                "orderBy[0]: unknown direction",
            ),
            (r#"[{"createdAt": 1}]"#, "orderBy[0]: unknown direction 1"),
        ];
        for (order_by, expected) in cases {
            let error = Ordering::parse(order_by, FIELDS).expect_err("should be rejected");
            assert_eq!(error.parameter, "orderBy");
            assert!(
                error.message.starts_with(expected),
                "{order_by}: {}",
                error.message
            );
        }
    }

    fn delivery(id: &str, second: f64) -> Value {
        json!({"id": id, "createdAt": format!("2026-11-23T20:00:{second:06.3}Z")})
    }

    /// 25 deliveries, `evt_00` oldest to `evt_24` newest.
    fn deliveries() -> Vec<Value> {
        (0..25u8)
            .map(|i| delivery(&format!("evt_{i:02}"), i.into()))
            .collect()
    }

    fn fetch(items: &[Value], after: Option<&str>, before: Option<&str>) -> (String, PageInfo) {
        let (data, info) = page(items.to_vec(), &Ordering::newest_first(), after, before, 10)
            .unwrap_or_else(|e| panic!("{e}"));
        (ids(&data), info)
    }

    fn newest_ids(from: u8, to: u8) -> String {
        let ids: Vec<String> = (to..=from).rev().map(|i| format!("evt_{i:02}")).collect();
        ids.join(" ")
    }

    #[test]
    fn pages_forward_through_everything() {
        let items = deliveries();
        let (first, info1) = fetch(&items, None, None);
        let (second, info2) = fetch(&items, info1.end_cursor.as_deref(), None);
        let (third, info3) = fetch(&items, info2.end_cursor.as_deref(), None);
        assert_eq!(first, newest_ids(24, 15));
        assert_eq!(second, newest_ids(14, 5));
        assert_eq!(third, newest_ids(4, 0));
        let flags = |info: &PageInfo| (info.has_previous_page, info.has_next_page, info.total);
        assert_eq!(flags(&info1), (false, true, 25));
        assert_eq!(flags(&info2), (true, true, 25));
        assert_eq!(flags(&info3), (true, false, 25));
        assert_eq!(format!("{first} {second} {third}"), newest_ids(24, 0));
    }

    #[test]
    fn pages_backward_with_before() {
        let items = deliveries();
        let (_, info1) = fetch(&items, None, None);
        let (_, info2) = fetch(&items, info1.end_cursor.as_deref(), None);
        let (_, info3) = fetch(&items, info2.end_cursor.as_deref(), None);

        let (back2, back_info2) = fetch(&items, None, info3.start_cursor.as_deref());
        assert_eq!(back2, newest_ids(14, 5));
        assert_eq!(back_info2, info2);
        let (back1, back_info1) = fetch(&items, None, back_info2.start_cursor.as_deref());
        assert_eq!(back1, newest_ids(24, 15));
        assert_eq!(back_info1, info1);

        let (short, short_info) = fetch(
            &items,
            None,
            Some(&Ordering::newest_first().cursor(&items[21])),
        );
        assert_eq!(short, newest_ids(24, 22));
        assert!(!short_info.has_previous_page && short_info.has_next_page);
    }

    #[test]
    fn cursors_survive_inserts_and_deletes() {
        let mut items = deliveries();
        let (_, info1) = fetch(&items, None, None);
        items.push(delivery("evt_99", 59.0));
        items.push(delivery("evt_14b", 14.5));
        items.retain(|item| item["id"] != "evt_15");

        let (second, info2) = fetch(&items, info1.end_cursor.as_deref(), None);
        assert_eq!(second, format!("evt_14b {}", newest_ids(14, 6)));
        assert!(info2.has_previous_page && info2.has_next_page);
        assert_eq!(info2.total, 26);
    }

    #[test]
    fn empty_page_has_no_cursors() {
        let (data, info) = fetch(&[], None, None);
        assert_eq!(data, "");
        assert_eq!(
            serde_json::to_value(&info).unwrap(),
            json!({"total": 0, "hasNextPage": false, "hasPreviousPage": false,
                   "startCursor": null, "endCursor": null})
        );
    }

    #[test]
    fn page_info_is_camel_case_json() {
        let (_, info) = fetch(&deliveries(), None, None);
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(json["total"], 25);
        assert_eq!(json["hasNextPage"], true);
        assert_eq!(json["hasPreviousPage"], false);
        assert_eq!(json["startCursor"].as_str(), info.start_cursor.as_deref());
        assert_eq!(json["endCursor"].as_str(), info.end_cursor.as_deref());
    }

    fn page_error(after: Option<&str>, before: Option<&str>) -> QueryError {
        page(deliveries(), &Ordering::newest_first(), after, before, 10)
            .expect_err("should be rejected")
    }

    #[test]
    fn bad_cursors_are_rejected() {
        let one_value = URL_SAFE_NO_PAD.encode(r#"["x"]"#);
        let cases = [
            (
                Some("%%%"),
                None,
                "after",
                "after: not a valid cursor (not URL-safe base64)",
            ),
            (
                None,
                Some("bm9wZQ"),
                "before",
                "before: not a valid cursor (not a JSON array)",
            ),
            (
                Some(one_value.as_str()),
                None,
                "after",
                "after: not a valid cursor (made for",
            ),
            (
                Some("x"),
                Some("y"),
                "after",
                "after: cannot be combined with before",
            ),
        ];
        for (after, before, parameter, expected) in cases {
            let error = page_error(after, before);
            assert_eq!(error.parameter, parameter);
            assert!(error.message.starts_with(expected), "{}", error.message);
        }
    }

    #[test]
    fn cursor_from_another_ordering_does_not_panic() {
        let items = deliveries();
        let (_, info) = fetch(&items, None, None);
        let by_count = Ordering::parse(r#"[{"attemptCount": "asc"}]"#, FIELDS).unwrap();
        let cursor = info.end_cursor.as_deref();
        assert!(page(items.clone(), &by_count, cursor, None, 10).is_ok());
        assert!(page(items, &by_count, None, cursor, 10).is_ok());
    }
}

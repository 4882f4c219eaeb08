//! Hookdeck-style query strings: `id=a`, `id[]=a&id[]=b` (or `id[0]=a`),
//! `created_at[gte]=…`, `attempts[lt]=3`, and the paging parameters `limit`,
//! `dir`, `order_by`, `next`, `prev`. Parsed by hand because the bracket forms
//! are beyond serde_urlencoded. The same filters also come as a JSON object
//! (a bulk retry's `query`): `{"created_at": {"gte": "…"}, "status": ["FAILED"]}`.
//!
//! Every parameter an endpoint reads is remembered, so that `refuse_unread`
//! can answer 422 for one it does not know: a filter silently ignored would
//! select everything, and a bulk retry would then act on everything.

use super::error::{ApiError, ApiResult};
use super::listing::SortedPage;
use crate::model::Payload;
use crate::pipeline::filter::RequestFilter;
use crate::pipeline::view::filter_root;
use crate::store::{Cursor, Direction, PageRequest, StampWindow};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::sync::Mutex;
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::{OffsetDateTime, PrimitiveDateTime};

const DEFAULT_LIMIT: usize = 100;
/// The reference says 250 in its overview and 255 in every parameter
/// table; a client may send either.
const MAX_LIMIT: usize = 255;

/// Known to every list, read or not: paging and `include`.
const ALWAYS_KNOWN: [&str; 7] = [
    "include", "limit", "next", "prev", "previous", "order_by", "dir",
];

/// Filters whose value is JSON text (a payload filter), not an operator object.
const JSON_VALUED: [&str; 4] = ["body", "headers", "parsed_query", "path"];

/// The parsed query string of one API call.
pub struct Query {
    pairs: Vec<(String, String)>,
    /// The keys read so far (see `refuse_unread`).
    read: Mutex<BTreeSet<String>>,
}

/// A list's filter from its query: the test each record must pass, and the
/// window of id stamps its time filters allow (so that a scan reads only
/// there), both from one parse of the dates.
pub struct Selection<F> {
    pub keep: F,
    pub stamps: StampWindow,
}

/// An inclusive-or-exclusive time window in ms, from `field[gte]=…` and friends.
#[derive(Debug, Default, Clone, Copy)]
pub struct Range {
    low: Option<(u64, bool)>,
    high: Option<(u64, bool)>,
    /// `field[any]=true`: only records that have the field.
    any: Option<bool>,
}

impl Range {
    /// Does a value (None when the record lacks the field) fall in the range?
    pub fn contains(&self, value: Option<u64>) -> bool {
        let Some(value) = value else {
            return self.low.is_none() && self.high.is_none() && self.any != Some(true);
        };
        if self.any == Some(false) {
            return false;
        }
        let above = self
            .low
            .is_none_or(|(low, inclusive)| value > low || (inclusive && value == low));
        let below = self
            .high
            .is_none_or(|(high, inclusive)| value < high || (inclusive && value == high));
        above && below
    }

    /// The window of times (ms, inclusive) the range allows, for a scan by id.
    pub fn stamps(&self) -> StampWindow {
        StampWindow {
            from_ms: (self.low).map(|(low, inclusive)| low.saturating_add(u64::from(!inclusive))),
            to_ms: (self.high).map(|(high, inclusive)| high.saturating_sub(u64::from(!inclusive))),
        }
    }
}

/// A number `7` that every exact value (`attempts=7`, `attempts[]=7`) and
/// every bound (`attempts[gte]=5`) must agree with.
#[derive(Debug, Default, Clone)]
pub struct Numbers {
    exact: Vec<u64>,
    range: Range,
}

impl Numbers {
    /// Does a value (None when the record lacks it) match?
    pub fn contains(&self, value: Option<u64>) -> bool {
        (self.exact.is_empty() || value.is_some_and(|v| self.exact.contains(&v)))
            && self.range.contains(value)
    }

    /// `contains`, looking the value up only when there is a constraint:
    /// for values that cost a look-up (a request's count of events).
    pub fn contains_looked_up(&self, value: impl FnOnce() -> Option<u64>) -> bool {
        let unconstrained = self.exact.is_empty()
            && self.range.low.is_none()
            && self.range.high.is_none()
            && self.range.any.is_none();
        unconstrained || self.contains(value())
    }
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Query::from_pairs(pairs)
    }

    /// [`Query::parse`], each parameter named `from` (or `from_…`, `from[…]`)
    /// read as `to` (…): another version's word for the same filter.
    pub fn parse_renaming(raw: Option<&str>, renames: &[(&str, &str)]) -> Query {
        let mut query = Query::parse(raw);
        for (key, _) in &mut query.pairs {
            for (from, to) in renames {
                if let Some(rest) = key.strip_prefix(from) {
                    if rest.is_empty() || rest.starts_with(['_', '[']) {
                        *key = format!("{to}{rest}");
                    }
                }
            }
        }
        query
    }

    fn from_pairs(pairs: Vec<(String, String)>) -> Query {
        Query {
            pairs,
            read: Mutex::default(),
        }
    }

    /// The filters of a JSON object, as their query string would give them:
    /// `{"status": ["A"], "created_at": {"gte": "…"}, "body": {…}}` →
    /// `status[]=A`, `created_at[gte]=…`, `body={…}`. A null is no filter.
    pub fn from_json(filters: &Map<String, Value>) -> Query {
        let mut pairs = Vec::new();
        for (key, value) in filters {
            flatten(key, value, &mut pairs);
        }
        Query::from_pairs(pairs)
    }

    /// This query with a `query` parameter holding a JSON object of filters
    /// (`?query={"created_at":{"gte":"…"}}`) replaced by those filters.
    pub fn with_json_query(self) -> ApiResult<Query> {
        let Some(json) = self.one("query") else {
            return Ok(self);
        };
        let filters = match serde_json::from_str(json) {
            Ok(Value::Object(filters)) => filters,
            _ => {
                return Err(ApiError::invalid(
                    "query",
                    "must be a JSON object of filters",
                ))
            }
        };
        let mut pairs: Vec<_> = self
            .pairs
            .into_iter()
            .filter(|(k, _)| k != "query")
            .collect();
        pairs.extend(Query::from_json(&filters).pairs);
        Ok(Query::from_pairs(pairs))
    }

    /// The filters as the JSON object `from_json` reads (`status[]=A` →
    /// `{"status": ["A"]}`); whole numbers come back as numbers.
    pub fn to_json(&self) -> Value {
        let mut filters = Map::new();
        for (key, text) in &self.pairs {
            let (name, op) = match key.split_once('[') {
                Some((name, rest)) => (name, rest.strip_suffix(']')),
                None => (key.as_str(), None),
            };
            let value = if JSON_VALUED.contains(&name) {
                serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone()))
            } else {
                parse_number(text).map_or_else(|| Value::String(text.clone()), Value::from)
            };
            let entry = filters.entry(name.to_string());
            match op {
                None => {
                    entry.or_insert(value);
                }
                Some(op) if is_list_index(op) => {
                    if let Value::Array(items) = entry.or_insert_with(|| Value::Array(Vec::new())) {
                        items.push(value);
                    }
                }
                Some(op) => {
                    if let Value::Object(ops) = entry.or_insert_with(|| Value::Object(Map::new())) {
                        ops.insert(op.to_string(), value);
                    }
                }
            }
        }
        Value::Object(filters)
    }

    /// A 422 naming the first parameter no reader asked for (an unknown
    /// filter, or an operator the filter does not have).
    pub fn refuse_unread(&self) -> ApiResult<()> {
        let read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        let unread = self.pairs.iter().map(|(k, _)| k).find(|key| {
            let name = key.split('[').next().unwrap_or_default();
            !read.contains(key.as_str()) && !ALWAYS_KNOWN.contains(&name)
        });
        match unread {
            Some(key) => Err(ApiError::invalid(
                key,
                "unknown parameter or operator for this endpoint",
            )),
            None => Ok(()),
        }
    }

    /// The operators given on `name` (`name[gte]=v` → `("gte", "v")`,
    /// array indices aside), marked read.
    fn operators(&self, name: &str) -> Vec<(&str, &str)> {
        self.bracketed_where(name, |op| !is_list_index(op))
    }

    /// Each `name[KEY]=value` whose KEY passes `keep`, as `(KEY, value)`,
    /// marked read.
    fn bracketed_where(&self, name: &str, keep: impl Fn(&str) -> bool) -> Vec<(&str, &str)> {
        let mut read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        self.pairs
            .iter()
            .filter_map(|(key, value)| {
                let inner = operator(key, name).filter(|inner| keep(inner))?;
                read.insert(key.clone());
                Some((inner, value.as_str()))
            })
            .collect()
    }

    /// Every value of `name` given as `name=v`, `name[]=v` or `name[0]=v`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        let mut read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        self.pairs
            .iter()
            .filter(|(k, _)| k == name || operator(k, name).is_some_and(is_list_index))
            .map(|(k, v)| {
                read.insert(k.clone());
                v.as_str()
            })
            .collect()
    }

    pub fn one(&self, name: &str) -> Option<&str> {
        self.all(name).into_iter().next()
    }

    /// A filter that accepts a value when `name` was not given or lists it.
    /// `name[contains]=part` too: the value must contain every such part.
    pub fn matcher(&self, name: &str) -> impl Fn(&str) -> bool + Send + Sync + 'static {
        let wanted: Vec<String> = self.all(name).into_iter().map(str::to_string).collect();
        let contains = format!("{name}[contains]");
        let parts: Vec<String> = self
            .pairs
            .iter()
            .filter(|(k, _)| *k == contains)
            .map(|(_, v)| v.clone())
            .collect();
        self.mark_read(&contains);
        move |value: &str| {
            (wanted.is_empty() || wanted.iter().any(|w| w == value))
                && parts.iter().all(|part| value.contains(part.as_str()))
        }
    }

    pub fn bool(&self, name: &str) -> ApiResult<Option<bool>> {
        self.one(name)
            .map(|v| match v {
                "true" => Ok(true),
                "false" => Ok(false),
                other => Err(ApiError::invalid(
                    name,
                    format!("\"{other}\" is not true or false"),
                )),
            })
            .transpose()
    }

    pub fn number(&self, name: &str) -> ApiResult<Option<u64>> {
        self.one(name)
            .map(|v| parse_number(v).ok_or_else(|| not_a_number(name, v)))
            .transpose()
    }

    /// One ISO 8601 date.
    pub fn date(&self, name: &str) -> ApiResult<Option<u64>> {
        self.one(name)
            .map(|v| {
                parse_date(v).ok_or_else(|| {
                    ApiError::invalid(name, format!("\"{v}\" is not an ISO 8601 date"))
                })
            })
            .transpose()
    }

    /// Each `name[KEY]=value` as `(KEY, value)`, in order.
    pub fn bracketed(&self, name: &str) -> Vec<(&str, &str)> {
        self.bracketed_where(name, |_| true)
    }

    /// `name[gte]`, `name[gt]`, `name[lte]`, `name[lt]` (ISO 8601 dates) and `name[any]`.
    pub fn date_range(&self, name: &str) -> ApiResult<Range> {
        self.range(name, parse_date, "an ISO 8601 date")
    }

    /// `name=n` or `name[]=n` (any of them), and the bounds `name[gte]=n`,
    /// `name[gt]`, `name[lte]`, `name[lt]`, `name[any]`: whole numbers.
    pub fn numbers(&self, name: &str) -> ApiResult<Numbers> {
        let exact = self
            .all(name)
            .into_iter()
            .map(|v| parse_number(v).ok_or_else(|| not_a_number(name, v)))
            .collect::<ApiResult<_>>()?;
        let range = self.range(name, parse_number, "a whole number")?;
        Ok(Numbers { exact, range })
    }

    fn range(&self, name: &str, parse: fn(&str) -> Option<u64>, kind: &str) -> ApiResult<Range> {
        let mut range = Range::default();
        for (op, value) in self.operators(name) {
            let field = format!("{name}[{op}]");
            if op == "any" {
                range.any = Some(value == "true");
                continue;
            }
            let bound = parse(value)
                .ok_or_else(|| ApiError::invalid(&field, format!("\"{value}\" is not {kind}")))?;
            match op {
                "gte" => range.low = Some((bound, true)),
                "gt" => range.low = Some((bound, false)),
                "lte" => range.high = Some((bound, true)),
                "lt" => range.high = Some((bound, false)),
                _ => {
                    return Err(ApiError::invalid(
                        &field,
                        "unknown operator (gte, gt, lte, lt, any)",
                    ))
                }
            }
        }
        Ok(range)
    }

    fn mark_read(&self, key: &str) {
        let mut read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        read.insert(key.to_string());
    }

    /// `body`, `headers`, `parsed_query` (JSON) and `path`: Hookdeck filters on a
    /// payload, as in a connection's filter rule; and `search_term`, a text
    /// the payload contains somewhere. None when none is given.
    pub fn payload_filter(&self) -> ApiResult<Option<PayloadFilter>> {
        let json = |name: &str| -> ApiResult<Option<Value>> {
            self.one(name)
                .map(|raw| {
                    serde_json::from_str(raw)
                        .map_err(|e| ApiError::invalid(name, format!("not JSON: {e}")))
                })
                .transpose()
        };
        let (body, headers, query) = (json("body")?, json("headers")?, json("parsed_query")?);
        let path = self
            .one("path")
            .map(|p| serde_json::from_str(p).unwrap_or_else(|_| Value::String(p.to_string())));
        let search_term = self.one("search_term").map(str::to_string);
        if search_term
            .as_ref()
            .is_some_and(|term| term.chars().count() < 3)
        {
            return Err(ApiError::invalid(
                "search_term",
                "must be at least 3 characters",
            ));
        }
        let rules = if body.is_none() && headers.is_none() && query.is_none() && path.is_none() {
            None
        } else {
            Some(RequestFilter::new(
                headers.as_ref(),
                body.as_ref(),
                query.as_ref(),
                path.as_ref(),
            ))
        };
        if rules.is_none() && search_term.is_none() {
            return Ok(None);
        }
        Ok(Some(PayloadFilter { rules, search_term }))
    }

    /// `limit`, `dir`, `order_by` (one of `order_keys`, the first the
    /// default), `next`, `prev`. Several keys as the reference allows
    /// ("Sort key(s)": `order_by[]=name&order_by[]=created_at`): `dir` is one
    /// for every key, or one per key in the same order. Lists held in memory
    /// page with it (`api::listing`), the store's through `api::sorting`.
    pub fn page_sorted(&self, order_keys: &[&str]) -> ApiResult<SortedPage> {
        let limit = self.number("limit")?.map_or(DEFAULT_LIMIT, |l| l as usize);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let sort = self.sort_keys(order_keys)?;
        // The reference's own example spells `prev` as `previous`.
        let prev = self.one("prev").or_else(|| self.one("previous"));
        let cursor = match (self.one("next"), prev) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid("next", "give next or prev, not both"))
            }
            (Some(next), None) => Cursor::Next(next.to_string()),
            (None, Some(prev)) => Cursor::Prev(prev.to_string()),
            (None, None) => Cursor::Start,
        };
        let (order_by, dir) = sort[0].clone();
        Ok(SortedPage {
            page: PageRequest {
                order_by,
                dir,
                limit,
                cursor,
            },
            sort,
        })
    }

    /// The `order_by` keys (each one of `order_keys`, given once; the first
    /// of them by default) paired with their `dir` (`desc` by default).
    fn sort_keys(&self, order_keys: &[&str]) -> ApiResult<Vec<(String, Direction)>> {
        let mut keys = self.all("order_by");
        if keys.is_empty() {
            keys.push(order_keys[0]);
        }
        for (index, key) in keys.iter().enumerate() {
            if !order_keys.contains(key) {
                return Err(ApiError::invalid(
                    "order_by",
                    format!("\"{key}\": this list sorts by {}", order_keys.join(", ")),
                ));
            }
            if keys[..index].contains(key) {
                return Err(ApiError::invalid(
                    "order_by",
                    format!("\"{key}\" is given twice"),
                ));
            }
        }
        let mut dirs = self.all("dir");
        if dirs.is_empty() {
            dirs.push("desc");
        }
        if dirs.len() != 1 && dirs.len() != keys.len() {
            return Err(ApiError::invalid(
                "dir",
                "give one dir for every order_by key, or one for each",
            ));
        }
        let dirs = dirs
            .into_iter()
            .map(direction)
            .collect::<ApiResult<Vec<_>>>()?;
        let dir_of = |index: usize| dirs[index.min(dirs.len() - 1)];
        Ok(keys
            .into_iter()
            .enumerate()
            .map(|(index, key)| (key.to_string(), dir_of(index)))
            .collect())
    }
}

fn direction(dir: &str) -> ApiResult<Direction> {
    match dir {
        "asc" => Ok(Direction::Asc),
        "desc" => Ok(Direction::Desc),
        other => Err(ApiError::invalid(
            "dir",
            format!("\"{other}\" is not asc or desc"),
        )),
    }
}

/// A filter on payloads (see `Query::payload_filter`).
pub struct PayloadFilter {
    rules: Option<RequestFilter>,
    search_term: Option<String>,
}

impl PayloadFilter {
    /// Does the payload (when there is one) match?
    pub fn matches(&self, payload: Option<&Payload>) -> bool {
        payload.is_some_and(|p| {
            self.rules
                .as_ref()
                .is_none_or(|rules| rules.matches(&filter_root(p)))
                && self
                    .search_term
                    .as_deref()
                    .is_none_or(|term| mentions(p, term))
        })
    }
}

/// Does the body, a header value, the path or the query contain `term`?
fn mentions(payload: &Payload, term: &str) -> bool {
    String::from_utf8_lossy(&payload.body).contains(term)
        || payload
            .headers
            .iter()
            .any(|(_, value)| value.contains(term))
        || payload.path.contains(term)
        || payload.query.contains(term)
}

/// The operator of `key` when it is `name[op]`.
fn operator<'k>(key: &'k str, name: &str) -> Option<&'k str> {
    key.strip_prefix(name)?.strip_prefix('[')?.strip_suffix(']')
}

/// `[]` and `[0]` list values rather than name an operator.
fn is_list_index(op: &str) -> bool {
    op.bytes().all(|b| b.is_ascii_digit())
}

/// Adds the pairs one JSON filter stands for (see `Query::from_json`).
fn flatten(key: &str, value: &Value, pairs: &mut Vec<(String, String)>) {
    match value {
        Value::Null => {}
        Value::String(text) => pairs.push((key.to_string(), text.clone())),
        _ if JSON_VALUED.contains(&key) => pairs.push((key.to_string(), value.to_string())),
        Value::Array(items) => items
            .iter()
            .for_each(|item| flatten(&format!("{key}[]"), item, pairs)),
        Value::Object(operators) => operators
            .iter()
            .for_each(|(op, operand)| flatten(&format!("{key}[{op}]"), operand, pairs)),
        scalar => pairs.push((key.to_string(), scalar.to_string())),
    }
}

fn parse_number(text: &str) -> Option<u64> {
    text.parse().ok()
}

fn not_a_number(field: &str, text: &str) -> ApiError {
    ApiError::invalid(field, format!("\"{text}\" is not a whole number"))
}

/// An RFC 3339 time, another ISO 8601 time (what clients' date libraries
/// send: PHP's `+0000` offsets, Python's `isoformat()` with no offset, read as
/// UTC), or a bare ISO 8601 date (`2026-11-23`: its midnight UTC).
pub(crate) fn parse_date(text: &str) -> Option<u64> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(text, &Iso8601::DEFAULT))
        .or_else(|_| PrimitiveDateTime::parse(text, &Iso8601::DEFAULT).map(|t| t.assume_utc()))
        .ok()
        .or_else(|| {
            let date = time::Date::parse(
                text,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .ok()?;
            Some(date.midnight().assume_utc())
        })?;
    u64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Milliseconds since the epoch as ISO 8601 UTC (`2026-11-23T18:54:08.123Z`).
pub use crate::ids::iso8601 as iso;

#[cfg(test)]
mod tests {
    use super::*;

    fn page(query: &str) -> ApiResult<PageRequest> {
        Ok(Query::parse(Some(query)).page_sorted(&["created_at"])?.page)
    }

    #[test]
    fn values_arrays_and_ranges() {
        let q = Query::parse(Some("status=FAILED&id[]=a&id[]=b&created_at[gte]=2026-01-01T00:00:00Z&created_at[lt]=2026-01-02T00:00:00Z"));
        assert_eq!(q.all("id"), vec!["a", "b"]);
        assert!(q.matcher("status")("FAILED") && !q.matcher("status")("QUEUED"));
        assert!(q.matcher("missing")("anything"));
        let contains = Query::parse(Some("error_code[contains]=CONN"));
        assert!(
            contains.matcher("error_code")("CONNECTION_REFUSED")
                && !contains.matcher("error_code")("TIMEOUT")
        );
        let range = q.date_range("created_at").unwrap();
        let day = parse_date("2026-01-01T00:00:00Z").unwrap();
        assert!(
            range.contains(Some(day))
                && !range.contains(Some(day + 86_400_000))
                && !range.contains(None)
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        let err = Query::parse(Some("created_at[gte]=yesterday"))
            .date_range("created_at")
            .unwrap_err();
        assert_eq!(err.data["field"], "created_at[gte]");
        assert_eq!(page("limit=500").unwrap_err().data["field"], "limit");
        assert_eq!(page("dir=up").unwrap_err().data["field"], "dir");
    }

    #[test]
    fn json_filters_read_as_their_query_string_and_unread_ones_are_named() {
        let filters = serde_json::json!({
            "status": ["FAILED"], "attempts": { "gte": 2 }, "body": { "a": 1 }, "cli_id": null
        });
        let q = Query::from_json(filters.as_object().unwrap());
        let mut round_trip = filters.clone();
        round_trip.as_object_mut().unwrap().remove("cli_id");
        assert_eq!(q.to_json(), round_trip);
        let attempts = q.numbers("attempts").unwrap();
        assert!(attempts.contains(Some(2)) && !attempts.contains(Some(1)));
        q.all("status");
        assert_eq!(q.refuse_unread().unwrap_err().data["field"], "body");
        q.payload_filter().unwrap();
        q.refuse_unread().unwrap();
    }

    /// The reference's query conventions (L151-181, L226-234): indexed
    /// arrays, `previous` for `prev`, limits up to 255, bare dates, and
    /// `order_by`/`dir` as arrays of one.
    #[test]
    fn the_references_query_conventions_are_read() {
        let indexed = Query::parse(Some("id[1]=hello&id[2]=world"));
        assert_eq!(indexed.all("id"), ["hello", "world"]);
        let previous = page("previous=cursor").unwrap();
        assert!(matches!(previous.cursor, Cursor::Prev(ref c) if c == "cursor"));
        assert_eq!(page("limit=255").unwrap().limit, 255);
        assert_eq!(page("").unwrap().limit, 100);
        let too_many = page("limit=256").unwrap_err();
        assert_eq!(too_many.data["field"], "limit");
        let day = Query::parse(Some("created_at[gte]=2026-01-02"))
            .date_range("created_at")
            .unwrap();
        let midnight = parse_date("2026-01-02T00:00:00Z").unwrap();
        assert!(day.contains(Some(midnight)) && !day.contains(Some(midnight - 1)));
        let arrays = Query::parse(Some("order_by[]=ingested_at&dir[]=asc"));
        let page = arrays.page_sorted(&["created_at", "ingested_at"]).unwrap();
        assert_eq!(page.sort, [("ingested_at".to_string(), Direction::Asc)]);
        let two = Query::parse(Some("order_by[]=ingested_at&order_by[]=created_at&dir=asc"));
        let page = two.page_sorted(&["created_at", "ingested_at"]).unwrap();
        assert_eq!(
            page.sort,
            [
                ("ingested_at".to_string(), Direction::Asc),
                ("created_at".to_string(), Direction::Asc)
            ]
        );
        let mismatched = Query::parse(Some("order_by=created_at&dir[]=asc&dir[]=desc"));
        let error = mismatched.page_sorted(&["created_at"]).unwrap_err();
        assert_eq!(error.data["field"], "dir");
    }

    #[test]
    fn iso_dates_round_trip() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(parse_date(&iso(1_700_000_000_123)), Some(1_700_000_000_123));
        assert_eq!(parse_date("1970-01-02"), Some(86_400_000));
        // What the reference's examples send: JavaScript, Go, PHP, Python.
        let second = Some(1_000);
        assert_eq!(parse_date("1970-01-01T00:00:01.000Z"), second);
        assert_eq!(parse_date("1970-01-01T00:00:01+00:00"), second);
        assert_eq!(parse_date("1970-01-01T01:00:01+0100"), second);
        assert_eq!(parse_date("1970-01-01T00:00:01.000250"), second);
        assert_eq!(parse_date("1970-01-01T00:00:01"), second);
        assert_eq!(parse_date("yesterday"), None);
    }
}

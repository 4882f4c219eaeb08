//! Hookdeck-style query strings: `id=a`, `id[]=a&id[]=b`, `created_at[gte]=…`,
//! and the paging parameters `limit`, `dir`, `order_by`, `next`, `prev`.
//! Parsed by hand because the bracket forms are beyond serde_urlencoded.

use super::error::{ApiError, ApiResult};
use crate::model::Payload;
use crate::pipeline::filter::RequestFilter;
use crate::pipeline::view::filter_root;
use crate::store::{Cursor, Direction, PageRequest};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 250;

/// The parsed query string of one API call.
pub struct Query {
    pairs: Vec<(String, String)>,
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
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Query { pairs }
    }

    /// Every value of `name` given as `name=v` or `name[]=v`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        let listed = format!("{name}[]");
        self.pairs
            .iter()
            .filter(|(k, _)| *k == name || *k == listed)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn one(&self, name: &str) -> Option<&str> {
        self.all(name).into_iter().next()
    }

    /// A filter that accepts a value when `name` was not given or lists it.
    /// `name[contains]=part` too: the value must contain every such part.
    pub fn matcher(&self, name: &str) -> impl Fn(&str) -> bool + Send + Sync + 'static {
        let wanted: Vec<String> = self.all(name).into_iter().map(str::to_string).collect();
        let parts: Vec<String> = self
            .all(&format!("{name}[contains]"))
            .into_iter()
            .map(str::to_string)
            .collect();
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
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::invalid(name, format!("\"{v}\" is not a whole number")))
            })
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

    /// `name[gte]`, `name[gt]`, `name[lte]`, `name[lt]` (ISO 8601 dates) and `name[any]`.
    pub fn date_range(&self, name: &str) -> ApiResult<Range> {
        let mut range = Range::default();
        for (key, value) in &self.pairs {
            let Some(op) = key
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('[')?.strip_suffix(']'))
            else {
                continue;
            };
            let field = format!("{name}[{op}]");
            if op == "any" {
                range.any = Some(value == "true");
                continue;
            }
            let ms = parse_date(value).ok_or_else(|| {
                ApiError::invalid(&field, format!("\"{value}\" is not an ISO 8601 date"))
            })?;
            match op {
                "gte" => range.low = Some((ms, true)),
                "gt" => range.low = Some((ms, false)),
                "lte" => range.high = Some((ms, true)),
                "lt" => range.high = Some((ms, false)),
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

    /// `body`, `headers`, `parsed_query` (JSON) and `path`: Hookdeck filters on a
    /// payload, as in a connection's filter rule. None when none is given.
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
        if body.is_none() && headers.is_none() && query.is_none() && path.is_none() {
            return Ok(None);
        }
        let filter = RequestFilter::new(
            headers.as_ref(),
            body.as_ref(),
            query.as_ref(),
            path.as_ref(),
        );
        Ok(Some(PayloadFilter(filter)))
    }

    /// `limit`, `dir`, `order_by`, `next`, `prev`.
    pub fn page(&self) -> ApiResult<PageRequest> {
        let limit = self.number("limit")?.map_or(DEFAULT_LIMIT, |l| l as usize);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let dir = match self.one("dir").unwrap_or("desc") {
            "asc" => Direction::Asc,
            "desc" => Direction::Desc,
            other => {
                return Err(ApiError::invalid(
                    "dir",
                    format!("\"{other}\" is not asc or desc"),
                ))
            }
        };
        if let Some(order) = self.one("order_by").filter(|o| *o != "created_at") {
            return Err(ApiError::invalid(
                "order_by",
                format!("\"{order}\": only created_at is supported"),
            ));
        }
        let cursor = match (self.one("next"), self.one("prev")) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid("next", "give next or prev, not both"))
            }
            (Some(next), None) => Cursor::Next(next.to_string()),
            (None, Some(prev)) => Cursor::Prev(prev.to_string()),
            (None, None) => Cursor::Start,
        };
        Ok(PageRequest { dir, limit, cursor })
    }
}

/// A filter on payloads (see `Query::payload_filter`).
pub struct PayloadFilter(RequestFilter);

impl PayloadFilter {
    /// Does the payload (when there is one) match?
    pub fn matches(&self, payload: Option<&Payload>) -> bool {
        payload.is_some_and(|p| self.0.matches(&filter_root(p)))
    }
}

/// An RFC 3339 time, or a bare ISO 8601 date (`2026-11-23`: its midnight UTC).
fn parse_date(text: &str) -> Option<u64> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339).ok().or_else(|| {
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
        assert_eq!(
            Query::parse(Some("limit=500")).page().unwrap_err().data["field"],
            "limit"
        );
        assert_eq!(
            Query::parse(Some("dir=up")).page().unwrap_err().data["field"],
            "dir"
        );
    }

    #[test]
    fn iso_dates_round_trip() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(parse_date(&iso(1_700_000_000_123)), Some(1_700_000_000_123));
        assert_eq!(parse_date("1970-01-02"), Some(86_400_000));
    }
}

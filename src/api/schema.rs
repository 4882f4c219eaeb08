//! Answer shapes every endpoint shares, as Rust types: they serialize the
//! answers and describe them in `/openapi.json` (utoipa), so the document can
//! never drift from what is sent.

use base64::Engine;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// Hookdeck's list answer: one page of `models`.
#[derive(Serialize, ToSchema)]
pub struct Listing<T> {
    pub pagination: Pagination,
    /// How many models this page holds.
    pub count: usize,
    pub models: Vec<T>,
}

/// How a list was paged; a cursor there is none for is left out.
#[derive(Serialize, ToSchema)]
pub struct Pagination {
    /// The sort key, e.g. `created_at`; an array when sorted by several.
    pub order_by: OneOrMore,
    /// `asc` or `desc`; an array, one per key, when sorted by several keys.
    pub dir: OneOrMore,
    pub limit: usize,
    /// Give as `next=` for the following page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Give as `prev=` for the preceding page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
}

/// One string, or several (the reference's `string | string[]`).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum OneOrMore {
    One(String),
    More(Vec<String>),
}

impl OneOrMore {
    /// One string when `values` has one, else the array.
    pub fn of(mut values: Vec<String>) -> OneOrMore {
        match values.len() {
            1 => OneOrMore::One(values.remove(0)),
            _ => OneOrMore::More(values),
        }
    }
}

/// Every error the API answers (Hookdeck's shape, plus `code`).
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// Always true: the error was handled, not a crash.
    pub handled: bool,
    /// The HTTP status, again.
    pub status: u16,
    /// The status's name in upper case, e.g. `UNPROCESSABLE_ENTITY`.
    pub code: String,
    pub message: String,
    /// What the error is about, e.g. `{"field": "limit"}`.
    #[schema(value_type = Object)]
    pub data: Value,
}

/// The answer of a deletion: the id of what is gone.
#[derive(Serialize, ToSchema)]
pub struct Deleted {
    pub id: String,
}

/// `{"count": n}`: how many objects a list's filters select.
#[derive(Serialize, ToSchema)]
pub struct Count {
    pub count: usize,
}

/// The reference's raw body answer, plus the exact bytes of a body that is
/// not UTF-8 (hookgate's addition: `hookgate requests export` needs them).
#[derive(Serialize, ToSchema)]
pub struct RawBody {
    /// The body as text (bytes that are not UTF-8 are replaced).
    pub body: String,
    /// The body's bytes in base64, only when it is not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
}

impl RawBody {
    pub fn of(bytes: &[u8]) -> RawBody {
        match std::str::from_utf8(bytes) {
            Ok(text) => RawBody {
                body: text.to_string(),
                body_base64: None,
            },
            Err(_) => RawBody {
                body: String::from_utf8_lossy(bytes).into_owned(),
                body_base64: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
            },
        }
    }
}

/// A view as the JSON value the in-memory lists sort and page by key. Views
/// hold only strings, numbers and JSON values, so serializing cannot fail.
pub fn value_of(view: impl Serialize) -> Value {
    serde_json::to_value(view).unwrap_or_default()
}

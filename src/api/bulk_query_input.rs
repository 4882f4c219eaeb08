//! The `query` of `POST /bulk/{kind}/retry`, as `/openapi.json` describes
//! it: the filters of the kind's list (`GET /events`, `/requests`,
//! `/ignored_events`) as one JSON object, each filter a value, a list of
//! values or an operator object (`{"gte": …, "lte": …}`), as the reference's
//! examples write them (L6535, L6754, L7143). The handler reads the object
//! as the list's query string (`BulkQuery`); a filter or operator the kind's
//! list does not have is a `422` naming it, never ignored. Like
//! `object_inputs`, these types only describe the body: none is ever built.

use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

/// The filters a bulk retry selects by; every one is optional, and those
/// of another kind's list are refused.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkQueryInput {
    pub id: Option<FilterValue>,
    pub status: Option<FilterValue>,
    /// Events: the connection.
    pub webhook_id: Option<FilterValue>,
    pub source_id: Option<FilterValue>,
    pub destination_id: Option<FilterValue>,
    pub request_id: Option<FilterValue>,
    /// Ignored events: `FILTERED`, `TRANSFORMATION_FAILED`, ….
    pub cause: Option<FilterValue>,
    /// Ignored events: the transformation that failed.
    pub transformation_id: Option<FilterValue>,
    /// Requests: `NO_WEBHOOK`, `VERIFICATION_FAILED`, ….
    pub rejection_cause: Option<FilterValue>,
    pub verified: Option<FilterValue>,
    pub error_code: Option<FilterValue>,
    pub cli_id: Option<FilterValue>,
    pub attempts: Option<FilterValue>,
    pub response_status: Option<FilterValue>,
    pub events_count: Option<FilterValue>,
    pub ignored_count: Option<FilterValue>,
    pub created_at: Option<FilterValue>,
    pub ingested_at: Option<FilterValue>,
    pub successful_at: Option<FilterValue>,
    pub last_attempt_at: Option<FilterValue>,
    /// Text in the body, a header, the path or the query.
    pub search_term: Option<String>,
    /// Hookdeck filter syntax on the request's parts.
    #[schema(value_type = Option<serde_json::Value>)]
    pub body: Option<Value>,
    #[schema(value_type = Option<serde_json::Value>)]
    pub headers: Option<Value>,
    #[schema(value_type = Option<serde_json::Value>)]
    pub parsed_query: Option<Value>,
    #[schema(value_type = Option<serde_json::Value>)]
    pub path: Option<Value>,
    /// Paging keys, as the list takes them (a bulk retry goes through all).
    pub order_by: Option<FilterValue>,
    pub dir: Option<FilterValue>,
    #[schema(minimum = 1, maximum = 255)]
    pub limit: Option<u32>,
}

/// One filter: a value, any of several, or operators.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum FilterValue {
    One(Scalar),
    AnyOf(Vec<Scalar>),
    Operators(Operators),
}

/// A value compared with.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Scalar {
    Text(String),
    Number(f64),
    Flag(bool),
}

/// Comparisons, each optional: dates (ISO 8601) and numbers take `gte`,
/// `gt`, `lte`, `lt`; `any` asks whether there is a value; `contains`
/// matches part of a text.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Operators {
    pub gte: Option<Scalar>,
    pub gt: Option<Scalar>,
    pub lte: Option<Scalar>,
    pub lt: Option<Scalar>,
    pub any: Option<bool>,
    pub contains: Option<String>,
}

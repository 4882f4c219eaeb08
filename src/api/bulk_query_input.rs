//! The body of `POST /bulk/{kind}/retry`, as `/openapi.json` describes it
//! for each kind: `query` holds the filters of that kind's list as one JSON
//! object (`GET /events` for events, `GET /requests` for requests, the
//! reference's ignored-event query for ignored events), each filter a value,
//! a list of values or an operator object (`{"gte": …, "lte": …}`), as the
//! reference's examples write them (L6535, L6754, L7143). The handler reads
//! the object as the list's query string (`BulkQuery`); a filter or operator
//! the kind's list does not have is a `422` naming it, never ignored, so the
//! schemas refuse what the handler refuses. Like `object_inputs`, these types
//! only describe the body: none is ever built.

use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

/// `POST /bulk/events/retry`.
#[derive(Deserialize, ToSchema)]
pub struct EventsBulkRetryInput {
    pub query: EventsBulkQuery,
}

/// `POST /bulk/requests/retry`.
#[derive(Deserialize, ToSchema)]
pub struct RequestsBulkRetryInput {
    pub query: RequestsBulkQuery,
}

/// `POST /bulk/ignored-events/retry`.
#[derive(Deserialize, ToSchema)]
pub struct IgnoredEventsBulkRetryInput {
    pub query: IgnoredEventsBulkQuery,
}

/// Declares a kind's query: its own filters, with `payload` the filters on
/// what the request carried, and the paging keys every list takes.
macro_rules! bulk_query {
    ($(#[$doc:meta])* $name:ident, payload { $($own:tt)* }) => {
        bulk_query!($(#[$doc])* $name {
            $($own)*
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
        });
    };
    ($(#[$doc:meta])* $name:ident { $($own:tt)* }) => {
        $(#[$doc])*
        #[derive(Deserialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($own)*
            /// Paging keys, as the list takes them (a bulk retry goes through all).
            pub order_by: Option<FilterValue>,
            pub dir: Option<FilterValue>,
            #[schema(minimum = 1, maximum = 255)]
            pub limit: Option<u32>,
        }
    };
}

bulk_query!(
    /// The events a bulk retry selects: the filters of `GET /events`.
    EventsBulkQuery,
    payload {
        pub id: Option<FilterValue>,
        /// `SCHEDULED`, `QUEUED`, `HOLD`, `SUCCESSFUL`, `FAILED`.
        pub status: Option<FilterValue>,
        /// The connection.
        pub webhook_id: Option<FilterValue>,
        pub source_id: Option<FilterValue>,
        pub destination_id: Option<FilterValue>,
        /// hookgate's addition: the request the events came from.
        pub request_id: Option<FilterValue>,
        pub error_code: Option<FilterValue>,
        pub cli_id: Option<FilterValue>,
        pub attempts: Option<FilterValue>,
        pub response_status: Option<FilterValue>,
        pub created_at: Option<FilterValue>,
        pub successful_at: Option<FilterValue>,
        pub last_attempt_at: Option<FilterValue>,
    }
);

bulk_query!(
    /// The requests a bulk retry selects: the filters of `GET /requests`.
    RequestsBulkQuery,
    payload {
        pub id: Option<FilterValue>,
        /// `accepted` or `rejected`.
        pub status: Option<FilterValue>,
        pub source_id: Option<FilterValue>,
        /// `NO_WEBHOOK`, `VERIFICATION_FAILED`, ….
        pub rejection_cause: Option<FilterValue>,
        pub verified: Option<FilterValue>,
        pub events_count: Option<FilterValue>,
        pub ignored_count: Option<FilterValue>,
        pub created_at: Option<FilterValue>,
        pub ingested_at: Option<FilterValue>,
    }
);

bulk_query!(
    /// The ignored events a bulk retry selects: the reference's `cause`,
    /// `webhook_id` and `transformation_id`, and the other filters of
    /// `GET /requests/{id}/ignored_events`.
    IgnoredEventsBulkQuery {
        pub id: Option<FilterValue>,
        /// `FILTERED`, `TRANSFORMATION_FAILED`, `DEDUPLICATED`.
        pub cause: Option<FilterValue>,
        /// The connection.
        pub webhook_id: Option<FilterValue>,
        /// The transformation that failed.
        pub transformation_id: Option<FilterValue>,
        pub request_id: Option<FilterValue>,
        pub created_at: Option<FilterValue>,
    }
);

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

//! Bulk retries: retry every event (or request) that a query selects, in the
//! background, resumably.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BulkKind {
    Events,
    Requests,
    IgnoredEvents,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BulkStatus {
    Running,
    Completed,
    Cancelled,
}

/// What a bulk retry selects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BulkQuery {
    /// The JSON object of the list's filters, as it was sent.
    Filters(Map<String, Value>),
    /// The same filters as a query string (`status%5B%5D=FAILED`): how
    /// records stored by earlier versions hold them.
    Encoded(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BulkRetry {
    pub id: String,
    pub kind: BulkKind,
    pub query: BulkQuery,
    pub status: BulkStatus,
    /// How many matched when the job was created.
    pub estimated_count: u64,
    /// Retried so far.
    pub completed_count: u64,
    /// Could not be retried (e.g. a rejected request).
    pub failed_count: u64,
    /// The last id processed: where a resumed job continues.
    pub cursor: Option<String>,
    pub created_at: u64,
    /// None in records stored before it was kept (their last change then
    /// stands in: completion, cancellation or creation).
    #[serde(default)]
    pub updated_at: Option<u64>,
    pub completed_at: Option<u64>,
    pub cancelled_at: Option<u64>,
}

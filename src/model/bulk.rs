//! Bulk retries: retry every event (or request) that a query selects, in the
//! background, resumably.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkKind {
    Events,
    Requests,
    IgnoredEvents,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkStatus {
    Running,
    Completed,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BulkRetry {
    pub id: String,
    pub kind: BulkKind,
    /// The selecting query, in the list endpoint's query-string form.
    pub query: String,
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
    pub completed_at: Option<u64>,
    pub cancelled_at: Option<u64>,
}

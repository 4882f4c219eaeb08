//! Transformations as named objects (created through the API, referenced by
//! connections with `transformation_id`), and the record of each run.

use crate::pipeline::transform::LogEntry;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformationObject {
    pub id: String,
    pub name: String,
    pub code: String,
    pub env: BTreeMap<String, String>,
    pub created_at: u64,
    pub updated_at: u64,
}

/// One run of a transformation on an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub id: String,
    /// `trs_…`, derived from the transformation's name.
    pub transformation_id: String,
    pub transformation_name: String,
    pub connection_id: String,
    pub request_id: String,
    /// The event (or ignored event) the run was for.
    pub event_id: String,
    pub logs: Vec<LogEntry>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    pub created_at: u64,
}

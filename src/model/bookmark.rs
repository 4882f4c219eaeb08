//! Bookmarks: an event's data saved under a label, to replay through its
//! connection later (a test fixture kept in production).

use super::Payload;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bookmark {
    pub id: String,
    pub label: String,
    pub name: Option<String>,
    pub connection_id: String,
    /// The event it was taken from.
    pub event_id: String,
    pub request_id: String,
    /// The data as that event delivered it.
    pub data: Payload,
    pub created_at: u64,
    /// None in bookmarks stored before it was kept (then `created_at` stands in).
    #[serde(default)]
    pub updated_at: Option<u64>,
    pub last_used_at: Option<u64>,
}

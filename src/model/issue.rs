//! Issues: problems worth a person's attention (deliveries failing, scripts
//! throwing), opened by issue triggers and tracked until resolved.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IssueType {
    Delivery,
    Transformation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IssueStatus {
    Opened,
    Ignored,
    Acknowledged,
    Resolved,
}

/// When a delivery issue opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStrategy {
    /// On the first failed attempt of an event.
    FirstAttempt,
    /// Only once an event has failed for good (no retries left).
    #[default]
    FinalAttempt,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssueTrigger {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: IssueType,
    /// Connection ids it watches; `["*"]` for all.
    pub connections: Vec<String>,
    #[serde(default)]
    pub strategy: DeliveryStrategy,
    /// Where openings are posted (a webhook URL), if anywhere.
    pub webhook_url: Option<String>,
    pub disabled_at: Option<u64>,
    pub created_at: u64,
}

impl IssueTrigger {
    pub fn watches(&self, connection_id: &str) -> bool {
        self.disabled_at.is_none()
            && self
                .connections
                .iter()
                .any(|c| c == "*" || c == connection_id)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Issue {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: IssueType,
    pub status: IssueStatus,
    pub issue_trigger_id: String,
    /// What groups occurrences into this issue (connection, status or error).
    pub aggregation_key: String,
    pub connection_id: String,
    /// The latest event (and attempt) that showed it.
    pub event_id: String,
    pub attempt_id: Option<String>,
    pub detail: Option<String>,
    /// Occurrences so far.
    pub count: u64,
    pub opened_at: u64,
    pub last_seen_at: u64,
    pub dismissed_at: Option<u64>,
}

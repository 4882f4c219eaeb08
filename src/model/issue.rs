//! Issues: problems worth a person's attention (deliveries failing, scripts
//! throwing), opened by issue triggers and tracked until resolved.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IssueType {
    Delivery,
    Transformation,
    /// A destination's oldest queued event is later than the trigger's delay.
    Backpressure,
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
    /// Destination ids a backpressure trigger watches; `["*"]` for all.
    #[serde(default = "everything")]
    pub destinations: Vec<String>,
    /// Backpressure: how late (ms) the oldest queued event may be before an issue opens.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Where openings are posted (a webhook URL), if anywhere.
    pub webhook_url: Option<String>,
    pub disabled_at: Option<u64>,
    pub created_at: u64,
}

/// Backpressure triggers open an issue once the oldest queued event is this late.
pub const DEFAULT_BACKPRESSURE_DELAY_MS: u64 = 60_000;

fn everything() -> Vec<String> {
    vec!["*".into()]
}

impl IssueTrigger {
    /// Is the trigger enabled and watching this connection (or, for
    /// backpressure, this destination)?
    pub fn watches(&self, target_id: &str) -> bool {
        let targets = match self.kind {
            IssueType::Backpressure => &self.destinations,
            _ => &self.connections,
        };
        self.disabled_at.is_none() && targets.iter().any(|t| t == "*" || t == target_id)
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

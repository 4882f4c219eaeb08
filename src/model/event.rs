//! Events (one request routed through one connection), their delivery attempts,
//! and the events a rule decided not to deliver.

use super::{Connection, DeliveryWindow};
use crate::pipeline::transform::LogEntry;
use crate::trace_context::TraceContext;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Hookdeck's event lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventStatus {
    /// Waiting for a delay or a retry.
    Scheduled,
    /// Due now, waiting for its destination's lane.
    Queued,
    /// Held back by a paused connection.
    Hold,
    Successful,
    Failed,
}

impl EventStatus {
    /// Every status, for choosing one (the console's filter).
    pub const ALL: [EventStatus; 5] = [
        EventStatus::Scheduled,
        EventStatus::Queued,
        EventStatus::Hold,
        EventStatus::Successful,
        EventStatus::Failed,
    ];

    /// The name used in the API (`QUEUED`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Scheduled => "SCHEDULED",
            EventStatus::Queued => "QUEUED",
            EventStatus::Hold => "HOLD",
            EventStatus::Successful => "SUCCESSFUL",
            EventStatus::Failed => "FAILED",
        }
    }

    /// Terminal events are never attempted again automatically.
    pub fn is_terminal(self) -> bool {
        matches!(self, EventStatus::Successful | EventStatus::Failed)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    // Stored once per event and rewritten on every attempt: fields without a
    // value are left out of the record (a third of its size for a new event).
    pub id: String,
    pub request_id: String,
    pub source_id: String,
    pub connection_id: String,
    pub destination_id: String,
    pub status: EventStatus,
    /// Attempts made so far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    pub created_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<u64>,
    /// How long after its request arrived the connection's rules made it
    /// first due (a delay rule), as `hookgate requests export` records it.
    #[serde(default, skip_serializing_if = "is_zero_ms")]
    pub delay_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successful_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// True when a rule changed the payload, which is then stored with the
    /// event; otherwise the request's payload is delivered as received.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub has_own_payload: bool,
    /// What the connection's transformations logged (console.*) for this event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transform_logs: Vec<LogEntry>,
    /// Muted events get no more automatic retries (manual ones still work).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub muted: bool,
    /// What the next attempt is, when someone asked for it (a manual retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_trigger: Option<AttemptTrigger>,
    /// The id given ahead to the attempt the event waits for, by a retry by
    /// hand or a hold: shown `HOLD` while held, then `QUEUED` until made,
    /// then recorded under it (see `store::attempts`, `AttemptEntry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_attempt_id: Option<String>,
    /// When the event last changed; None until its first change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<u64>,
    /// How many times the event was queued again by hand (a retry, a bulk
    /// retry, a job's retry): an attempt that finds this changed when it
    /// settles was in flight meanwhile, and leaves that queueing as it is.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub requeues: u32,
    /// Set on deliveries of webhook jobs: their retries and deadline (instead
    /// of a connection's retry rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<DeliveryWindow>,
    /// The event's first attempts, kept in its record (see `store::attempts`);
    /// not part of the event as the API shows it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempt_records: Vec<Attempt>,
    /// The span of its request (or job) that every attempt is a child of;
    /// None: each attempt starts a trace of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
    /// The `hookgate listen` session its last attempt went through (a CLI
    /// destination's event), as that attempt's `cli_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cli_id: Option<String>,
}

fn is_zero(count: &u32) -> bool {
    *count == 0
}

fn is_zero_ms(ms: &u64) -> bool {
    *ms == 0
}

/// Where an event goes: from which source, through which connection, to which
/// destination (for a webhook job: application, endpoint, endpoint).
#[derive(Debug, Clone, Copy)]
pub struct Route<'a> {
    pub source_id: &'a str,
    pub connection_id: &'a str,
    pub destination_id: &'a str,
}

impl<'a> From<&'a Connection> for Route<'a> {
    fn from(connection: &'a Connection) -> Route<'a> {
        Route {
            source_id: &connection.source_id,
            connection_id: &connection.id,
            destination_id: &connection.destination_id,
        }
    }
}

impl Event {
    /// A new event of `request_id` along `route`, due at `due_ms`
    /// (SCHEDULED when that is in the future, else QUEUED).
    pub fn new(
        id: String,
        request_id: &str,
        route: Route<'_>,
        due_ms: u64,
        has_own_payload: bool,
    ) -> Event {
        let now = crate::ids::now_ms();
        Event {
            id,
            request_id: request_id.to_string(),
            source_id: route.source_id.to_string(),
            connection_id: route.connection_id.to_string(),
            destination_id: route.destination_id.to_string(),
            status: if due_ms > now {
                EventStatus::Scheduled
            } else {
                EventStatus::Queued
            },
            attempts: 0,
            created_at: now,
            next_attempt_at: Some(due_ms),
            delay_ms: 0,
            last_attempt_at: None,
            successful_at: None,
            response_status: None,
            error_code: None,
            has_own_payload,
            transform_logs: Vec::new(),
            muted: false,
            pending_trigger: None,
            pending_attempt_id: None,
            updated_at: None,
            requeues: 0,
            window: None,
            attempt_records: Vec::new(),
            trace: None,
            cli_id: None,
        }
    }

    /// When the event last changed (its creation, before any change).
    pub fn updated_at(&self) -> u64 {
        self.updated_at.unwrap_or(self.created_at)
    }

    /// What its next attempt is: what was asked for (a retry, an unpause),
    /// else its first or an automatic retry.
    pub fn next_trigger(&self) -> AttemptTrigger {
        match (self.pending_trigger, self.attempts) {
            (Some(asked), _) => asked,
            (None, 0) => AttemptTrigger::Initial,
            (None, _) => AttemptTrigger::Automatic,
        }
    }

    /// Whether its next attempt is an automatic retry of a webhook job's
    /// delivery whose window ended by `now_ms`: the retries were spread to
    /// fall inside it, so one that comes due later (its lane was late: busy,
    /// rate limited) is not sent (a retry by hand still is).
    pub fn retry_past_window(&self, now_ms: u64) -> bool {
        !self.status.is_terminal()
            && self.next_trigger() == AttemptTrigger::Automatic
            && self
                .window
                .is_some_and(|window| now_ms >= window.expires_at)
    }

    /// Names the attempt the event waits for, unless it has a name already
    /// (held again, or held after a retry named it): one placeholder for
    /// one attempt, however often it is held.
    pub fn name_next_attempt(&mut self) {
        if self.pending_attempt_id.is_none() {
            self.pending_attempt_id = Some(crate::ids::pending_attempt_id(&self.id));
        }
    }

    /// When the attempt it waits for was named (see `pending_attempt_id`).
    fn pending_attempt_named_at(&self) -> Option<u64> {
        let id = self.pending_attempt_id.as_deref()?;
        crate::ids::of_pending_attempt(id)
            .map(|(_, at)| at)
            // Named by a retry in a store from before: a time-sortable id.
            .or_else(|| crate::ids::created_ms(id))
    }
}

/// What made an attempt happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AttemptTrigger {
    Initial,
    Automatic,
    Manual,
    BulkRetry,
    Unpause,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AttemptStatus {
    Successful,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub id: String,
    pub event_id: String,
    pub attempt_number: u32,
    pub trigger: AttemptTrigger,
    pub status: AttemptStatus,
    pub http_method: String,
    pub requested_url: String,
    // Stored in its event's record, rewritten on every change: fields without
    // a value are left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<u16>,
    /// At most `limits.max_response_bytes` of the response body, lossily decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    pub latency_ms: u64,
    pub created_at: u64,
    /// The `hookgate listen` session that delivered it (`cli_…`), when its
    /// destination is a CLI destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cli_id: Option<String>,
}

/// An attempt as the API lists it: made, or the one an event waits for,
/// named ahead (`Event::pending_attempt_id`) and shown from its event.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptEntry {
    Made(Attempt),
    // Boxed: the event is twice an attempt's size, and pending ones are few.
    Pending(Box<Event>),
}

impl AttemptEntry {
    /// The entry for an event's pending attempt, if it waits for a named one.
    pub fn pending(event: Event) -> Option<AttemptEntry> {
        event
            .pending_attempt_id
            .is_some()
            .then(|| AttemptEntry::Pending(Box::new(event)))
    }

    pub fn id(&self) -> &str {
        match self {
            AttemptEntry::Made(attempt) => &attempt.id,
            AttemptEntry::Pending(event) => event.pending_attempt_id.as_deref().unwrap_or_default(),
        }
    }

    /// Its number among its event's attempts (a pending one comes next).
    pub fn attempt_number(&self) -> u32 {
        match self {
            AttemptEntry::Made(attempt) => attempt.attempt_number,
            AttemptEntry::Pending(event) => event.attempts + 1,
        }
    }

    pub fn response_status(&self) -> Option<u16> {
        match self {
            AttemptEntry::Made(attempt) => attempt.response_status,
            AttemptEntry::Pending(_) => None,
        }
    }

    pub fn created_at(&self) -> u64 {
        match self {
            AttemptEntry::Made(attempt) => attempt.created_at,
            AttemptEntry::Pending(event) => event
                .pending_attempt_named_at()
                .unwrap_or_else(|| event.updated_at()),
        }
    }
}

/// A request that a connection's rules decided not to deliver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IgnoredEvent {
    pub id: String,
    pub request_id: String,
    pub connection_id: String,
    /// FILTERED, TRANSFORMATION_FAILED, DEDUPLICATED, …
    pub cause: String,
    pub created_at: u64,
    /// Why, for a person reading it (e.g. the transformation's error).
    pub detail: Option<String>,
    /// The transformation that failed (`TRANSFORMATION_FAILED`): what a bulk
    /// retry's `transformation_id` selects by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transformation_id: Option<String>,
    /// What the transformations logged before the event was dropped.
    #[serde(default)]
    pub transform_logs: Vec<LogEntry>,
    /// The request part a filter failed on (`FILTERED`): the reference's `meta`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_part: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn new_event() -> Event {
        let route = Route {
            source_id: "src_a",
            connection_id: "web_a",
            destination_id: "des_a",
        };
        Event::new("evt_1".into(), "req_1", route, 0, false)
    }

    #[test]
    fn a_new_events_record_leaves_out_fields_without_a_value() {
        let record: Value = serde_json::to_value(new_event()).unwrap();
        let mut keys: Vec<&str> = record
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "connection_id",
                "created_at",
                "destination_id",
                "id",
                "next_attempt_at",
                "request_id",
                "source_id",
                "status"
            ]
        );
    }

    #[test]
    fn records_written_with_every_field_still_read() {
        let event = new_event();
        let mut record = serde_json::to_value(&event).unwrap();
        record["attempts"] = json!(0);
        record["has_own_payload"] = json!(false);
        assert_eq!(serde_json::from_value::<Event>(record).unwrap(), event);
    }

    #[test]
    fn an_attempts_record_leaves_out_what_the_response_did_not_have() {
        let attempt = Attempt {
            id: "atm_1".into(),
            event_id: "evt_1".into(),
            attempt_number: 1,
            trigger: AttemptTrigger::Initial,
            status: AttemptStatus::Failed,
            http_method: "POST".into(),
            requested_url: "http://127.0.0.1:9/".into(),
            response_status: None,
            response_body: None,
            error_code: Some("ECONNREFUSED".into()),
            latency_ms: 1,
            created_at: 0,
            cli_id: None,
        };
        let record = serde_json::to_value(&attempt).unwrap();
        assert!(record.get("response_status").is_none());
        assert!(record.get("response_body").is_none());
        let mut older = record.clone();
        older["response_status"] = Value::Null;
        older["response_body"] = Value::Null;
        assert_eq!(serde_json::from_value::<Attempt>(older).unwrap(), attempt);
    }
}

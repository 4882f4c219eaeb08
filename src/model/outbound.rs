//! Outbound webhooks: a product's own events sent to its customers' endpoints.
//!
//! An application (one per product environment) declares event types and has
//! endpoints; a webhook job is one event of one type, fanned out as one
//! delivery per subscribed endpoint. An endpoint is delivered to like any
//! destination, and each delivery is an `Event` of the job (see `DeliveryWindow`).

use super::{Event, EventStatus};
use crate::signing::standard_webhooks::HEADER_ID;
use crate::trace_context::TraceContext;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Application {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// How its customer portal looks and where it may be embedded.
    #[serde(default)]
    pub portal: PortalSettings,
    pub created_at: u64,
    pub updated_at: u64,
}

/// An application's customer portal: its brand, and the sites that may show
/// it in an iframe (`Content-Security-Policy: frame-ancestors`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalSettings {
    /// Shown in the portal's header instead of the application's name.
    #[serde(default)]
    pub name: Option<String>,
    /// An http(s) image URL shown beside the name.
    #[serde(default)]
    pub logo_url: Option<String>,
    /// `#rgb` or `#rrggbb`: the header and primary buttons.
    #[serde(default)]
    pub primary_color: Option<String>,
    #[serde(default)]
    pub theme: PortalTheme,
    /// Origins (`https://app.example.com`) that may embed the portal; empty: none.
    #[serde(default)]
    pub frame_ancestors: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PortalTheme {
    #[default]
    Light,
    Dark,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventType {
    pub application_id: String,
    /// `resource.action`, lower case.
    pub name: String,
    pub description: Option<String>,
    /// Payloads of this type must validate against it, when set.
    pub schema: Option<Value>,
    pub created_at: u64,
    pub updated_at: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndpointStatus {
    Active,
    /// Gets no new deliveries; pending ones wait until it is active again.
    Disabled,
    /// Gets deliveries, but holds them until it is active again.
    Paused,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: String,
    pub application_id: String,
    pub url: String,
    pub description: Option<String>,
    /// The current `whsec_…` signing secret.
    pub secret: String,
    /// Rotated-out secrets and when (unix seconds) they stop signing.
    #[serde(default)]
    pub previous_secrets: Vec<(String, i64)>,
    /// Event type names; empty means every type.
    pub subscribed_events: Vec<String>,
    pub status: EndpointStatus,
    /// Most requests per second, when limited.
    pub rate_limit: Option<u32>,
    pub created_at: u64,
    pub updated_at: u64,
}

/// Hookgate serves one workspace (the references' `workspaceId`): every
/// delivery carries this id, and a filter on any other matches nothing.
pub const WORKSPACE_ID: &str = "ws_hookgate";

/// A job's state, summed up from its deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// No delivery attempted yet.
    Created,
    /// Some deliveries attempted, others still due.
    Executing,
    Succeeded,
    /// A delivery failed and waits for its next try.
    AwaitingRetry,
    /// Cancelled, or a delivery ran out of retries or of its delivery window.
    Discarded,
    /// Its application was deleted; kept for inspection.
    Archived,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Created => "created",
            JobStatus::Executing => "executing",
            JobStatus::Succeeded => "succeeded",
            JobStatus::AwaitingRetry => "awaiting_retry",
            JobStatus::Discarded => "discarded",
            JobStatus::Archived => "archived",
        }
    }

    pub const ALL: [JobStatus; 6] = [
        JobStatus::Created,
        JobStatus::Executing,
        JobStatus::Succeeded,
        JobStatus::AwaitingRetry,
        JobStatus::Discarded,
        JobStatus::Archived,
    ];
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookJob {
    pub id: String,
    pub application_id: String,
    pub event_type: String,
    /// The idempotency key, and the envelope's `event_id` (given, or the job's id).
    pub event_id: String,
    pub payload: JobPayload,
    /// Sent with every delivery.
    pub headers: BTreeMap<String, String>,
    /// The sender's own notes; never sent to endpoints.
    pub metadata: Value,
    /// The endpoints the job was fanned out to (one delivery each).
    pub endpoint_ids: Vec<String>,
    pub status: JobStatus,
    /// Attempts made, over all deliveries.
    pub attempt_count: u32,
    pub max_retries: u32,
    pub created_at: u64,
    pub updated_at: u64,
    /// Deliveries not done by then are discarded.
    pub expires_at: u64,
    pub succeeded_at: Option<u64>,
    pub discarded_at: Option<u64>,
    /// Cancelled by a user: discarded until retried.
    #[serde(default)]
    pub cancelled: bool,
    /// The span of the job-create call (a child of the caller's
    /// `traceparent`, or a new trace) that every delivery attempt is under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
}

/// A job's payload, kept as the JSON text it was checked as on creation:
/// stored, journaled, answered and sent as that text, never parsed again (a
/// parse and a serialization of it at each of those steps were a large part
/// of a job's cost).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobPayload(Box<RawValue>);

impl JobPayload {
    /// Its JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl From<&Value> for JobPayload {
    fn from(value: &Value) -> JobPayload {
        JobPayload(serde_json::value::to_raw_value(value).expect("a JSON value serializes"))
    }
}

impl PartialEq for JobPayload {
    fn eq(&self, other: &JobPayload) -> bool {
        self.get() == other.get()
    }
}

/// The body every endpoint receives, its keys in this order.
#[derive(Serialize)]
struct Envelope<'a> {
    event_id: &'a str,
    event_type: &'a str,
    application_id: &'a str,
    timestamp: String,
    payload: &'a RawValue,
}

/// What a job's deliveries send is made of: read from a job's whole JSON
/// (its journal record, or a `jobs` record of the older shape) without its
/// metadata, endpoints and state (serde skips them), its payload's text
/// borrowed from the JSON, not copied.
#[derive(Deserialize)]
pub struct JobMessage<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    application_id: Cow<'a, str>,
    #[serde(borrow)]
    event_type: Cow<'a, str>,
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    #[serde(borrow)]
    payload: &'a RawValue,
    headers: Cow<'a, BTreeMap<String, String>>,
    created_at: u64,
}

impl WebhookJob {
    /// The message every endpoint receives (see `JobMessage::delivery_payload`).
    pub fn delivery_payload(&self) -> super::Payload {
        JobMessage {
            id: Cow::Borrowed(&self.id),
            application_id: Cow::Borrowed(&self.application_id),
            event_type: Cow::Borrowed(&self.event_type),
            event_id: Cow::Borrowed(&self.event_id),
            payload: &self.payload.0,
            headers: Cow::Borrowed(&self.headers),
            created_at: self.created_at,
        }
        .delivery_payload()
    }

    /// Sums up the job's deliveries into its status and attempt count (see
    /// `JobState::summarize`).
    pub fn summarize(&mut self, deliveries: &[Event], now_ms: u64) {
        let mut state = self.state();
        let tallies: Vec<DeliveryTally> = deliveries.iter().map(DeliveryTally::from).collect();
        state.summarize(&tallies, now_ms);
        self.set_state(&state);
    }

    /// What of the job changes after its creation.
    pub fn state(&self) -> JobState {
        JobState {
            status: self.status,
            attempt_count: self.attempt_count,
            updated_at: self.updated_at,
            expires_at: self.expires_at,
            succeeded_at: self.succeeded_at,
            discarded_at: self.discarded_at,
            cancelled: self.cancelled,
        }
    }

    /// The job as it is in `state`.
    pub fn set_state(&mut self, state: &JobState) {
        self.status = state.status;
        self.attempt_count = state.attempt_count;
        self.updated_at = state.updated_at;
        self.expires_at = state.expires_at;
        self.succeeded_at = state.succeeded_at;
        self.discarded_at = state.discarded_at;
        self.cancelled = state.cancelled;
    }
}

impl JobMessage<'_> {
    /// The message every endpoint receives: the envelope, the job's headers
    /// and the `webhook-id` the Standard Webhooks signature covers (the job's
    /// id, the same on every retry so receivers can deduplicate). Made again
    /// for each attempt rather than stored with each delivery: a copy per
    /// endpoint was the largest write of a new job.
    pub fn delivery_payload(&self) -> super::Payload {
        let mut headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            (HEADER_ID.to_string(), self.id.to_string()),
        ];
        // Sent in lower case, as every header of a delivery is compared.
        let given = self.headers.iter();
        headers.extend(given.map(|(name, value)| (name.to_ascii_lowercase(), value.clone())));
        super::Payload {
            method: "POST".into(),
            path: String::new(),
            query: String::new(),
            headers,
            body: self.envelope(),
        }
    }

    /// The body every endpoint receives.
    fn envelope(&self) -> Vec<u8> {
        let envelope = Envelope {
            event_id: &self.event_id,
            event_type: &self.event_type,
            application_id: &self.application_id,
            timestamp: crate::ids::iso8601(self.created_at),
            payload: self.payload,
        };
        serde_json::to_vec(&envelope).expect("an envelope serializes")
    }
}

/// What of a job changes after its creation: its deliveries' settles, a
/// cancel, a retry and an archive change this and nothing else. Stored as a
/// small record of its own (`store::job_state`), so that a settle does not
/// read and write the whole job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    pub status: JobStatus,
    pub attempt_count: u32,
    pub updated_at: u64,
    pub expires_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succeeded_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discarded_at: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
}

impl JobState {
    /// Sums up the job's deliveries into its status and attempt count. A
    /// cancelled or archived job keeps that status whatever its deliveries do.
    pub fn summarize(&mut self, deliveries: &[DeliveryTally], now_ms: u64) {
        self.attempt_count = deliveries.iter().map(|d| d.attempts).sum();
        self.updated_at = now_ms;
        if self.status == JobStatus::Archived || self.cancelled {
            return;
        }
        self.status = status_of(deliveries);
        self.succeeded_at = match self.status {
            JobStatus::Succeeded => self.succeeded_at.or(Some(now_ms)),
            _ => None,
        };
        self.discarded_at = match self.status {
            JobStatus::Discarded => self.discarded_at.or(Some(now_ms)),
            _ => None,
        };
    }
}

/// What a job's state follows of one of its deliveries (read from the
/// delivery's record without the rest of it: serde skips it).
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct DeliveryTally {
    pub status: EventStatus,
    #[serde(default)]
    pub attempts: u32,
}

impl From<&Event> for DeliveryTally {
    fn from(delivery: &Event) -> DeliveryTally {
        DeliveryTally {
            status: delivery.status,
            attempts: delivery.attempts,
        }
    }
}

fn status_of(deliveries: &[DeliveryTally]) -> JobStatus {
    let pending: Vec<&DeliveryTally> = deliveries
        .iter()
        .filter(|d| !d.status.is_terminal())
        .collect();
    if pending
        .iter()
        .any(|d| d.attempts > 0 && d.status == EventStatus::Scheduled)
    {
        JobStatus::AwaitingRetry
    } else if !pending.is_empty() {
        if deliveries.iter().any(|d| d.attempts > 0) {
            JobStatus::Executing
        } else {
            JobStatus::Created
        }
    } else if deliveries
        .iter()
        .all(|d| d.status == EventStatus::Successful)
    {
        JobStatus::Succeeded
    } else {
        JobStatus::Discarded
    }
}

/// A delivery's state in the outbound APIs: `pending` (not attempted yet),
/// `retrying` (attempted, more to come), `completed` or `failed`.
pub fn delivery_status(delivery: &Event) -> &'static str {
    match delivery.status {
        EventStatus::Successful => "completed",
        EventStatus::Failed => "failed",
        _ if delivery.attempts > 0 => "retrying",
        _ => "pending",
    }
}

/// What makes an event a delivery of a webhook job: exponential retries,
/// spread so that the last one still falls inside the delivery window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryWindow {
    pub max_retries: u32,
    pub starts_at: u64,
    pub expires_at: u64,
}

impl DeliveryWindow {
    /// How long to wait after `attempts_made` failed attempts, at `now_ms`;
    /// None when the retries or the window are used up. The waits double each
    /// time and add up to just under the window: with 6 retries over 48 h they
    /// are 45 min, 1.5 h, 3 h, 6 h, 12 h and 24 h.
    pub fn next_wait(&self, attempts_made: u32, now_ms: u64) -> Option<Duration> {
        let retries_made = attempts_made.saturating_sub(1);
        if retries_made >= self.max_retries {
            return None;
        }
        let window = u128::from(self.expires_at.saturating_sub(self.starts_at));
        // window × 2^made / 2^max, in 128 bits: a unit of window / 2^max
        // rounds to 0 ms with many retries, which made every wait 1 ms.
        let share = (window << retries_made.min(63)) >> self.max_retries.min(63);
        let wait = u64::try_from(share).unwrap_or(u64::MAX).max(1);
        (now_ms.saturating_add(wait) < self.expires_at).then(|| Duration::from_millis(wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000;

    fn delivery(status: EventStatus, attempts: u32) -> Event {
        let mut event: Event = serde_json::from_value(serde_json::json!({
            "id": "evt_1", "request_id": "job_1", "source_id": "app_1",
            "connection_id": "ept_1", "destination_id": "ept_1", "status": "QUEUED",
            "attempts": 0, "created_at": 0, "next_attempt_at": null, "last_attempt_at": null,
            "successful_at": null, "response_status": null, "error_code": null,
            "has_own_payload": true
        }))
        .unwrap();
        event.status = status;
        event.attempts = attempts;
        event
    }

    #[test]
    fn only_an_automatic_retry_reached_past_the_window_is_held_back() {
        let window = DeliveryWindow {
            max_retries: 3,
            starts_at: 0,
            expires_at: 1_000,
        };
        let mut retry = delivery(EventStatus::Scheduled, 1);
        retry.window = Some(window);
        assert!(!retry.retry_past_window(999));
        assert!(retry.retry_past_window(1_000));
        let mut first = delivery(EventStatus::Queued, 0);
        first.window = Some(window);
        assert!(!first.retry_past_window(5_000), "its first attempt");
        let mut by_hand = retry.clone();
        by_hand.pending_trigger = Some(super::super::AttemptTrigger::Manual);
        assert!(!by_hand.retry_past_window(5_000), "a retry by hand");
        let mut failed = retry.clone();
        failed.status = EventStatus::Failed;
        assert!(!failed.retry_past_window(5_000), "ended already");
        retry.window = None;
        assert!(!retry.retry_past_window(5_000), "not a job's delivery");
    }

    #[test]
    fn a_message_read_from_a_jobs_record_is_the_one_the_job_makes() {
        let job: WebhookJob = serde_json::from_value(serde_json::json!({
            "id": "job_1", "application_id": "app_1", "event_type": "order.paid",
            "event_id": "order \"1\"", "payload": {"total": 10.00, "note": "é"},
            "headers": {"X-Shop": "a\\b"}, "metadata": {"region": "eu"},
            "endpoint_ids": ["ept_1"], "status": "created", "attempt_count": 0,
            "max_retries": 0, "created_at": 1000, "updated_at": 1000, "expires_at": 2000,
            "succeeded_at": null, "discarded_at": null,
        }))
        .unwrap();
        let record = serde_json::to_vec(&job).unwrap();
        let read: JobMessage = serde_json::from_slice(&record).unwrap();
        let message = read.delivery_payload();
        assert_eq!(message, job.delivery_payload());
        let envelope: Value = serde_json::from_slice(&message.body).unwrap();
        assert_eq!(envelope["event_id"], "order \"1\"");
        assert!(!String::from_utf8_lossy(&message.body).contains("region"));
    }

    #[test]
    fn a_job_sums_up_its_deliveries() {
        use EventStatus::*;
        let cases = [
            (
                vec![delivery(Queued, 0), delivery(Queued, 0)],
                JobStatus::Created,
            ),
            (
                vec![delivery(Successful, 1), delivery(Queued, 0)],
                JobStatus::Executing,
            ),
            (
                vec![delivery(Scheduled, 2), delivery(Successful, 1)],
                JobStatus::AwaitingRetry,
            ),
            (
                vec![delivery(Successful, 1), delivery(Successful, 3)],
                JobStatus::Succeeded,
            ),
            (
                vec![delivery(Successful, 1), delivery(Failed, 7)],
                JobStatus::Discarded,
            ),
            (vec![], JobStatus::Succeeded),
        ];
        for (deliveries, expected) in cases {
            let tallies: Vec<DeliveryTally> = deliveries.iter().map(DeliveryTally::from).collect();
            assert_eq!(status_of(&tallies), expected, "{deliveries:?}");
        }
    }

    #[test]
    fn a_cancelled_job_stays_discarded_and_counts_attempts() {
        let mut job: WebhookJob = serde_json::from_value(serde_json::json!({
            "id": "job_1", "application_id": "app_1", "event_type": "a.b", "event_id": "e",
            "payload": {}, "headers": {}, "metadata": null, "endpoint_ids": ["ept_1"],
            "status": "discarded", "attempt_count": 0, "max_retries": 6, "created_at": 0,
            "updated_at": 0, "expires_at": 1, "succeeded_at": null, "discarded_at": 5,
            "cancelled": true
        }))
        .unwrap();
        job.summarize(&[delivery(EventStatus::Successful, 2)], 10);
        assert_eq!(
            (job.status, job.attempt_count, job.discarded_at),
            (JobStatus::Discarded, 2, Some(5))
        );
        job.cancelled = false;
        job.summarize(&[delivery(EventStatus::Successful, 2)], 10);
        assert_eq!(
            (job.status, job.succeeded_at, job.discarded_at),
            (JobStatus::Succeeded, Some(10), None)
        );
    }

    #[test]
    fn six_retries_spread_over_two_days() {
        let window = DeliveryWindow {
            max_retries: 6,
            starts_at: 0,
            expires_at: 48 * HOUR,
        };
        let mut now = 0;
        let mut waits = Vec::new();
        for attempts in 1..=7 {
            match window.next_wait(attempts, now) {
                Some(wait) => {
                    now += wait.as_millis() as u64;
                    waits.push(wait.as_millis() as u64);
                }
                None => break,
            }
        }
        assert_eq!(
            waits,
            vec![
                HOUR * 3 / 4,
                HOUR * 3 / 2,
                3 * HOUR,
                6 * HOUR,
                12 * HOUR,
                24 * HOUR
            ]
        );
        assert!(now < 48 * HOUR);
    }

    #[test]
    fn the_most_retries_allowed_still_double_up_to_half_the_window() {
        let window = DeliveryWindow {
            max_retries: 30,
            starts_at: 0,
            expires_at: 48 * HOUR,
        };
        let wait_after = |attempts| window.next_wait(attempts, 0).unwrap().as_millis() as u64;
        assert_eq!(wait_after(30), 24 * HOUR, "the last retry");
        assert_eq!(wait_after(29), 12 * HOUR);
        assert_eq!(wait_after(1), 1, "the first ones come at once");
    }

    #[test]
    fn no_retry_past_the_window() {
        let window = DeliveryWindow {
            max_retries: 6,
            starts_at: 0,
            expires_at: 1000,
        };
        assert!(window.next_wait(1, 990).is_none());
        assert!(window.next_wait(1, 0).is_some());
    }
}

//! How stored objects look through the API: Hookdeck's field names, ISO 8601
//! UTC timestamps, prefixed ids.

use super::query::iso;
use super::schema::value_of;
use crate::ids::event_data_id;
use crate::model::{
    Attempt, AttemptEntry, AttemptStatus, AttemptTrigger, Connection, Destination, Event,
    EventStatus, IgnoredEvent, Payload, RatePeriod, RejectionCause, Request, RequestStatus, Source,
};
use crate::pipeline::transform::LogEntry;
use crate::pipeline::view::transform_input;
use crate::store::ObjectTimes;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

/// Rules as answers show them: a rule running an API transformation by its
/// `transformation_id` (not its code: that is the transformation's), and
/// inline transformations' env values (often credentials the script adds to
/// the request) masked.
fn shown_rules(mut rules: Value) -> Value {
    for rule in rules.as_array_mut().into_iter().flatten() {
        if let Some(rule) = rule.as_object_mut() {
            if rule.contains_key("transformation_id") {
                rule.remove("transformation");
            }
        }
        if let Some(env) = rule.pointer_mut("/transformation/env") {
            *env = masked_values(env);
        }
    }
    rules
}

/// An `env` map with every value masked (see `secret::masked`).
pub fn masked_values(env: &Value) -> Value {
    let masked = env.as_object().into_iter().flatten().map(|(name, value)| {
        let value = crate::secret::masked(value.as_str().unwrap_or_default());
        (name.clone(), Value::String(value))
    });
    Value::Object(masked.collect())
}

fn iso_opt(ms: Option<u64>) -> Option<String> {
    ms.map(iso)
}

/// `{headers, body, path, query, parsed_query}` of a payload.
pub fn data(payload: &Payload) -> Value {
    let mut data = transform_input(payload);
    data["method"] = json!(payload.method);
    data
}

/// What a request became, for its view: counted by its caller (a list
/// counts each request of a page; a retry has them at hand).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestCounts {
    pub events: usize,
    pub ignored: usize,
}

/// A request received by a source.
#[derive(Serialize, ToSchema)]
pub struct RequestView {
    /// `req_…`
    pub id: String,
    pub team_id: String,
    /// Whether the source's verification accepted the request.
    pub verified: bool,
    /// The id of the data it was received with.
    pub original_event_data_id: String,
    /// Why the request was not accepted.
    #[schema(required)]
    pub rejection_cause: Option<RejectionCause>,
    /// Always `NORMAL`.
    pub ingest_priority: String,
    /// When it was received.
    pub ingested_at: String,
    /// None when the source named in the URL is unknown.
    #[schema(required)]
    pub source_id: Option<String>,
    /// How many events it became.
    pub events_count: usize,
    /// Always 0: no event is a per-CLI-client copy (see `cli_id`).
    pub cli_events_count: usize,
    /// How many connections' rules ignored it.
    pub ignored_count: usize,
    pub updated_at: String,
    pub created_at: String,
    /// The payload (`{headers, body, path, query, parsed_query, method}`), when asked for.
    #[schema(value_type = Option<Object>, required)]
    pub data: Option<Value>,
    /// The source's name or id as the URL gave it.
    pub source_name: String,
    pub status: RequestStatus,
    /// The size of the body received.
    pub body_bytes: usize,
    /// Whether only the start of the body was kept.
    pub body_truncated: bool,
}

/// A request as the reference shows it (L3728-3825), plus hookgate's
/// `source_name`, `status`, `body_bytes` and `body_truncated`. Requests never
/// change once stored, so `updated_at` is when it was received; its data's
/// id is its own id under `edt_`; no per-CLI-client copies and one priority.
pub fn request(
    team_id: &str,
    request: &Request,
    counts: RequestCounts,
    payload: Option<&Payload>,
) -> Value {
    let received = iso(request.received_at);
    value_of(RequestView {
        id: request.id.clone(),
        team_id: team_id.into(),
        verified: request.verified.unwrap_or(false),
        original_event_data_id: event_data_id(&request.id),
        rejection_cause: request.rejection_cause,
        ingest_priority: "NORMAL".into(),
        ingested_at: received.clone(),
        source_id: request.source_id.clone(),
        events_count: counts.events,
        cli_events_count: 0,
        ignored_count: counts.ignored,
        updated_at: received.clone(),
        created_at: received,
        data: payload.map(data),
        source_name: request.source_name.clone(),
        status: request.status,
        body_bytes: request.body_bytes,
        body_truncated: request.body_truncated,
    })
}

/// One request delivered through one connection.
#[derive(Serialize, ToSchema)]
pub struct EventView {
    /// `evt_…`
    pub id: String,
    pub team_id: String,
    /// The connection's id.
    pub webhook_id: String,
    pub source_id: String,
    pub destination_id: String,
    /// The id of the data it delivers.
    pub event_data_id: String,
    /// The request it came from.
    pub request_id: String,
    /// How many attempts were made.
    pub attempts: u32,
    #[schema(required)]
    pub last_attempt_at: Option<String>,
    /// When the next automatic attempt is due.
    #[schema(required)]
    pub next_attempt_at: Option<String>,
    /// hookgate's addition: how long after its request arrived the
    /// connection's rules made it first due (a delay rule), else 0.
    pub delay_ms: u64,
    /// The last attempt's response status.
    #[schema(required)]
    pub response_status: Option<u16>,
    /// Why the last attempt failed, e.g. `TIMEOUT`.
    #[schema(required)]
    pub error_code: Option<String>,
    pub status: EventStatus,
    #[schema(required)]
    pub successful_at: Option<String>,
    /// The `hookgate listen` session its last attempt went through (`cli_…`):
    /// see `event`.
    #[schema(required)]
    pub cli_id: Option<String>,
    pub updated_at: String,
    pub created_at: String,
    /// The payload it delivers, when asked for.
    #[schema(value_type = Option<Object>, required)]
    pub data: Option<Value>,
    /// No more automatic retries.
    pub muted: bool,
    /// What its transformations logged (`{level, message}`).
    #[schema(value_type = Vec<Object>)]
    pub transformation_logs: Vec<LogEntry>,
}

/// An event as the reference shows it (L4407-4536), plus hookgate's
/// `delay_ms`, `muted` and `transformation_logs`. A CLI destination's events
/// are ordinary events shared by its listeners, not per-listener copies:
/// `cli_id` names the listener session its last attempt went through.
pub fn event(team_id: &str, event: &Event, payload: Option<&Payload>) -> Value {
    value_of(event_view(team_id, event, payload))
}

/// The view `event` answers.
pub fn event_view(team_id: &str, event: &Event, payload: Option<&Payload>) -> EventView {
    EventView {
        id: event.id.clone(),
        team_id: team_id.into(),
        webhook_id: event.connection_id.clone(),
        source_id: event.source_id.clone(),
        destination_id: event.destination_id.clone(),
        event_data_id: event_data_id(&event.id),
        request_id: event.request_id.clone(),
        attempts: event.attempts,
        last_attempt_at: iso_opt(event.last_attempt_at),
        next_attempt_at: iso_opt(event.next_attempt_at),
        delay_ms: event.delay_ms,
        response_status: event.response_status,
        error_code: event.error_code.clone(),
        status: event.status,
        successful_at: iso_opt(event.successful_at),
        cli_id: event.cli_id.clone(),
        updated_at: iso(event.updated_at()),
        created_at: iso(event.created_at),
        data: payload.map(data),
        muted: event.muted,
        transformation_logs: event.transform_logs.clone(),
    }
}

/// An attempt's outcome, or, for one not made yet, `HOLD` while its event
/// is held and `QUEUED` after.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AttemptState {
    Successful,
    Failed,
    Queued,
    Hold,
}

impl From<AttemptStatus> for AttemptState {
    fn from(status: AttemptStatus) -> AttemptState {
        match status {
            AttemptStatus::Successful => AttemptState::Successful,
            AttemptStatus::Failed => AttemptState::Failed,
        }
    }
}

/// One try at delivering an event.
#[derive(Serialize, ToSchema)]
pub struct AttemptView {
    /// `atm_…`
    pub id: String,
    pub team_id: String,
    pub event_id: String,
    /// The destination's response status.
    #[schema(required)]
    pub response_status: Option<u16>,
    /// 1 for the first attempt.
    pub attempt_number: u32,
    pub trigger: AttemptTrigger,
    /// Why it failed, e.g. `TIMEOUT`.
    #[schema(required)]
    pub error_code: Option<String>,
    /// The response body: the JSON it holds, else its text.
    #[schema(required)]
    pub body: Option<Value>,
    #[schema(required)]
    pub requested_url: Option<String>,
    #[schema(required)]
    pub http_method: Option<String>,
    /// Always null: a bulk retry's attempts are `BULK_RETRY`.
    #[schema(required)]
    pub bulk_retry_id: Option<String>,
    pub status: AttemptState,
    #[schema(required)]
    pub successful_at: Option<String>,
    #[schema(required)]
    pub delivered_at: Option<String>,
    #[schema(required)]
    pub responded_at: Option<String>,
    /// Milliseconds from the start to the response.
    #[schema(required)]
    pub delivery_latency: Option<u64>,
    /// Milliseconds from the start to the response.
    #[schema(required)]
    pub response_latency: Option<u64>,
    pub updated_at: String,
    pub created_at: String,
    /// Always null.
    #[schema(required)]
    pub archived_at: Option<String>,
    /// The `hookgate listen` session that delivered it (`cli_…`; hookgate's
    /// own): null unless its destination is a CLI destination.
    #[schema(required)]
    pub cli_id: Option<String>,
}

/// An attempt as the reference shows it (L4911-5061). hookgate times an
/// attempt from its start to the response as a whole: a response came at
/// `responded_at` (also when it was delivered, hookgate does not time the
/// sending apart); an attempt without a response was never delivered. A
/// response body that is JSON is shown as JSON, as the reference does.
pub fn attempt(team_id: &str, attempt: &Attempt) -> Value {
    let finished = attempt.created_at + attempt.latency_ms;
    let responded = attempt.response_status.map(|_| finished);
    let latency = responded.map(|_| attempt.latency_ms);
    let successful = (attempt.status == AttemptStatus::Successful).then_some(finished);
    value_of(AttemptView {
        id: attempt.id.clone(),
        team_id: team_id.into(),
        event_id: attempt.event_id.clone(),
        response_status: attempt.response_status,
        attempt_number: attempt.attempt_number,
        trigger: attempt.trigger,
        error_code: attempt.error_code.clone(),
        body: attempt.response_body.as_deref().map(response_body),
        requested_url: Some(attempt.requested_url.clone()),
        http_method: Some(attempt.http_method.clone()),
        bulk_retry_id: None,
        status: attempt.status.into(),
        successful_at: iso_opt(successful),
        delivered_at: iso_opt(responded),
        responded_at: iso_opt(responded),
        delivery_latency: latency,
        response_latency: latency,
        updated_at: iso(finished),
        created_at: iso(attempt.created_at),
        archived_at: None,
        cli_id: attempt.cli_id.clone(),
    })
}

/// An attempt made, or the one an event waits for (see `AttemptEntry`).
pub fn attempt_entry(team_id: &str, entry: &AttemptEntry) -> Value {
    match entry {
        AttemptEntry::Made(made) => attempt(team_id, made),
        AttemptEntry::Pending(event) => pending_attempt(team_id, event, entry.created_at()),
    }
}

/// The attempt an event waits for, named ahead (by a retry or a hold),
/// before it is made: `HOLD` while the event is held, else `QUEUED`;
/// numbered after the event's last, with what will trigger it, and null
/// where only a made attempt has a value (L4828-4845).
fn pending_attempt(team_id: &str, event: &Event, named_at: u64) -> Value {
    let status = match event.status {
        EventStatus::Hold => AttemptState::Hold,
        _ => AttemptState::Queued,
    };
    value_of(AttemptView {
        id: event.pending_attempt_id.clone().unwrap_or_default(),
        team_id: team_id.into(),
        event_id: event.id.clone(),
        response_status: None,
        attempt_number: event.attempts + 1,
        trigger: event.next_trigger(),
        error_code: None,
        body: None,
        requested_url: None,
        http_method: None,
        bulk_retry_id: None,
        status,
        successful_at: None,
        delivered_at: None,
        responded_at: None,
        delivery_latency: None,
        response_latency: None,
        updated_at: iso(event.updated_at()),
        created_at: iso(named_at),
        archived_at: None,
        cli_id: None,
    })
}

/// A response body: the JSON it holds, else its text.
fn response_body(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string()))
}

/// An event a connection's rules decided not to deliver.
#[derive(Serialize, ToSchema)]
pub struct IgnoredEventView {
    pub request_id: String,
    pub team_id: String,
    /// Equal to `id`.
    pub ignored_event_cause_id: i32,
    /// A number derived from `ignored_event_id`.
    pub id: i32,
    /// `FILTERED`, `TRANSFORMATION_FAILED`, `DEDUPLICATED`, …
    pub cause: String,
    /// The connection's id.
    pub webhook_id: String,
    /// `FILTERED`: the part of the request the filter failed on, as the
    /// reference's `["body"]` (parts after it are not evaluated); null for
    /// other causes, as in the reference, and for events ignored before
    /// hookgate recorded the part.
    #[schema(required)]
    pub meta: Option<Vec<String>>,
    /// hookgate's id of it (`GET /ignored_events/{id}` takes it).
    pub ignored_event_id: String,
    /// Why, for a person reading it (e.g. the transformation's error).
    #[schema(required)]
    pub detail: Option<String>,
    /// What the transformations logged before it was dropped (`{level, message}`).
    #[schema(value_type = Vec<Object>)]
    pub transformation_logs: Vec<LogEntry>,
    pub created_at: String,
}

/// An ignored event as the reference shows it (L4364-4392): its `id` and
/// `ignored_event_cause_id` are integers there, so they are a number derived
/// from hookgate's own id, which stays readable as `ignored_event_id` (the id
/// `GET /ignored_events/:id` takes). Its `detail`, `transformation_logs` and
/// `created_at` are additions.
pub fn ignored_event(team_id: &str, ignored: &IgnoredEvent) -> Value {
    let number = ignored_number(&ignored.id);
    value_of(IgnoredEventView {
        request_id: ignored.request_id.clone(),
        team_id: team_id.into(),
        ignored_event_cause_id: number,
        id: number,
        cause: ignored.cause.clone(),
        webhook_id: ignored.connection_id.clone(),
        meta: ignored.failed_part.clone().map(|part| vec![part]),
        ignored_event_id: ignored.id.clone(),
        detail: ignored.detail.clone(),
        transformation_logs: ignored.transform_logs.clone(),
        created_at: iso(ignored.created_at),
    })
}

/// The reference's 32-bit signed number for an ignored event: the first
/// four bytes of its id's SHA-256, stable across calls and restarts.
pub fn ignored_number(id: &str) -> i32 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(id.as_bytes());
    i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// What the API shows of a configured object beside its configuration.
pub struct Stamp<'a> {
    pub team_id: &'a str,
    pub times: ObjectTimes,
    pub archived_at: Option<u64>,
    /// Declared in gateway.toml, so read-only through the API (hookgate's addition).
    pub read_only: bool,
}

/// The fields every configured object's view ends with.
#[derive(Serialize, ToSchema)]
pub struct StampView {
    pub team_id: String,
    #[schema(required)]
    pub archived_at: Option<String>,
    pub updated_at: String,
    pub created_at: String,
    /// Declared in gateway.toml, so read-only through the API.
    pub read_only: bool,
}

impl From<&Stamp<'_>> for StampView {
    fn from(stamp: &Stamp) -> StampView {
        StampView {
            team_id: stamp.team_id.into(),
            archived_at: iso_opt(stamp.archived_at),
            updated_at: iso(stamp.times.updated_at),
            created_at: iso(stamp.times.created_at),
            read_only: stamp.read_only,
        }
    }
}

/// What the source's ingress answers to accepted requests.
#[derive(Serialize, ToSchema)]
pub struct CustomResponseView {
    /// `json`, `text` or `xml`, as given.
    pub content_type: String,
    pub body: String,
}

/// How a source proves its requests come from the provider.
#[derive(Serialize, ToSchema)]
pub struct VerificationView {
    /// The provider, e.g. `GITHUB`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its settings, secrets masked: only with `include=verification.configs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub configs: Option<Value>,
}

/// Where requests are received.
#[derive(Serialize, ToSchema)]
pub struct SourceView {
    /// `src_…`
    pub id: String,
    pub name: String,
    /// Where the source receives requests.
    pub url: String,
    /// Upper-case method names.
    pub allowed_http_methods: Vec<String>,
    #[schema(required)]
    pub custom_response: Option<CustomResponseView>,
    #[schema(required)]
    pub description: Option<String>,
    #[schema(required)]
    pub verification: Option<VerificationView>,
    #[serde(flatten)]
    pub stamp: StampView,
}

/// A source, reached at `url`.
pub fn source(source: &Source, stamp: &Stamp, url: &str) -> Value {
    let custom_response = source.custom_response.as_ref().map(|c| CustomResponseView {
        content_type: c.content_type_name().to_string(),
        body: c.body.clone(),
    });
    let verification = source.verifier.as_ref().map(|v| VerificationView {
        kind: v.hookdeck_type().into(),
        configs: None,
    });
    value_of(SourceView {
        id: source.id.clone(),
        name: source.name.clone(),
        url: url.into(),
        allowed_http_methods: source.allowed_http_methods.clone(),
        custom_response,
        description: source.description.clone(),
        verification,
        stamp: stamp.into(),
    })
}

/// Where events are delivered.
#[derive(Serialize, ToSchema)]
pub struct DestinationView {
    /// `des_…`
    pub id: String,
    pub name: String,
    #[schema(required)]
    pub description: Option<String>,
    /// Where deliveries go.
    #[schema(required)]
    pub url: Option<String>,
    /// Hookdeck's path for a CLI session.
    #[schema(required)]
    pub cli_path: Option<String>,
    /// Overrides the request's method when set.
    #[schema(required)]
    pub http_method: Option<String>,
    /// Whether the request's path is left off the URL.
    pub path_forwarding_disabled: bool,
    /// Deliveries per period, or in flight for `concurrent`.
    #[schema(required)]
    pub rate_limit: Option<u32>,
    /// `second`, `minute`, `hour` or `concurrent`.
    pub rate_limit_period: String,
    /// `{type, config}` of how deliveries prove where they come from, secrets masked.
    #[schema(value_type = Option<Object>, required)]
    pub auth_method: Value,
    /// Most deliveries in flight at once.
    pub concurrent: usize,
    #[serde(flatten)]
    pub stamp: StampView,
}

pub fn destination(destination: &Destination, stamp: &Stamp) -> Value {
    value_of(DestinationView {
        id: destination.id.clone(),
        name: destination.name.clone(),
        description: destination.description.clone(),
        url: destination.url.as_ref().map(|url| url.as_str().into()),
        cli_path: destination.cli_path.clone(),
        http_method: destination.http_method.clone(),
        path_forwarding_disabled: destination.path_forwarding_disabled,
        rate_limit: shown_rate_limit(destination),
        rate_limit_period: shown_rate_limit_period(destination),
        auth_method: destination.auth.shown().clone(),
        concurrent: destination.concurrency,
        stamp: stamp.into(),
    })
}

/// `rate_limit`: per period, or (`"concurrent"`) the deliveries in flight.
fn shown_rate_limit(destination: &Destination) -> Option<u32> {
    if destination.concurrency_is_rate_limit {
        return u32::try_from(destination.concurrency).ok();
    }
    destination.rate_limit.map(|r| r.count)
}

/// `rate_limit_period`: Hookdeck's default `second` when there is no limit.
fn shown_rate_limit_period(destination: &Destination) -> String {
    if destination.concurrency_is_rate_limit {
        return "concurrent".into();
    }
    let period = destination
        .rate_limit
        .map_or(RatePeriod::Second, |r| r.period);
    format!("{period:?}").to_lowercase()
}

/// Where a source's requests go: a destination, through rules.
#[derive(Serialize, ToSchema)]
pub struct ConnectionView {
    /// `web_…`
    pub id: String,
    pub name: String,
    /// `source -> connection -> destination`, by name.
    pub full_name: String,
    #[schema(required)]
    pub description: Option<String>,
    pub source_id: String,
    pub destination_id: String,
    #[schema(value_type = Option<SourceView>, required)]
    pub source: Value,
    #[schema(value_type = Option<DestinationView>, required)]
    pub destination: Value,
    /// Filters, transformations, delays, retries and deduplication, in order.
    #[schema(value_type = Vec<Object>)]
    pub rules: Value,
    /// When it was paused; null when it is not.
    #[schema(required)]
    pub paused_at: Option<String>,
    #[serde(flatten)]
    pub stamp: StampView,
}

/// A connection with the views of its source and destination.
pub fn connection(
    connection: &Connection,
    stamp: &Stamp,
    paused_at: Option<u64>,
    source: Value,
    destination: Value,
) -> Value {
    let name_of = |end: &Value| end["name"].as_str().unwrap_or_default().to_string();
    value_of(ConnectionView {
        id: connection.id.clone(),
        name: connection.name.clone(),
        full_name: full_name(&name_of(&source), &connection.name, &name_of(&destination)),
        description: connection.description.clone(),
        source_id: connection.source_id.clone(),
        destination_id: connection.destination_id.clone(),
        source,
        destination,
        rules: shown_rules(json!(connection.rule_specs)),
        paused_at: iso_opt(paused_at),
        stamp: stamp.into(),
    })
}

/// A connection's `full_name`: the reference describes it as "concatenated
/// from source, connection and destination name", and its filter as the
/// source and connection names "separated by ` -> `"; all three, so joined,
/// satisfy both (the filter matches a part of it).
pub fn full_name(source: &str, connection: &str, destination: &str) -> String {
    format!("{source} -> {connection} -> {destination}")
}

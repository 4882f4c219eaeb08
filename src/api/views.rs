//! How stored objects look through the API: Hookdeck's field names, ISO 8601
//! UTC timestamps, prefixed ids.

use super::query::iso;
use crate::ids::event_data_id;
use crate::model::{
    Attempt, AttemptStatus, AttemptTrigger, Connection, Destination, Event, IgnoredEvent, Payload,
    RatePeriod, Request, Source,
};
use crate::pipeline::view::transform_input;
use crate::store::ObjectTimes;
use serde_json::{json, Value};

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

fn iso_opt(ms: Option<u64>) -> Value {
    ms.map_or(Value::Null, |ms| Value::String(iso(ms)))
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

/// A request as the reference shows it (L3728-3825), plus hookgate's
/// `source_name`, `status`, `body_bytes` and `body_truncated`. Requests never
/// change once stored, so `updated_at` is when it was received; its data's
/// id is its own id under `edt_`; hookgate has no CLI and one priority.
pub fn request(
    team_id: &str,
    request: &Request,
    counts: RequestCounts,
    payload: Option<&Payload>,
) -> Value {
    let received = iso(request.received_at);
    json!({
        "id": request.id,
        "team_id": team_id,
        "verified": request.verified.unwrap_or(false),
        "original_event_data_id": event_data_id(&request.id),
        "rejection_cause": request.rejection_cause,
        "ingest_priority": "NORMAL",
        "ingested_at": received,
        "source_id": request.source_id,
        "events_count": counts.events,
        "cli_events_count": 0,
        "ignored_count": counts.ignored,
        "updated_at": received,
        "created_at": received,
        "data": payload.map(data),
        "source_name": request.source_name,
        "status": request.status,
        "body_bytes": request.body_bytes,
        "body_truncated": request.body_truncated,
    })
}

/// An event as the reference shows it (L4407-4536), plus hookgate's `muted`
/// and `transformation_logs`. hookgate has no CLI: `cli_id` is always null.
pub fn event(team_id: &str, event: &Event, payload: Option<&Payload>) -> Value {
    json!({
        "id": event.id,
        "team_id": team_id,
        "webhook_id": event.connection_id,
        "source_id": event.source_id,
        "destination_id": event.destination_id,
        "event_data_id": event_data_id(&event.id),
        "request_id": event.request_id,
        "attempts": event.attempts,
        "last_attempt_at": iso_opt(event.last_attempt_at),
        "next_attempt_at": iso_opt(event.next_attempt_at),
        "response_status": event.response_status,
        "error_code": event.error_code,
        "status": event.status,
        "successful_at": iso_opt(event.successful_at),
        "cli_id": null,
        "updated_at": iso(event.updated_at()),
        "created_at": iso(event.created_at),
        "data": payload.map(data),
        "muted": event.muted,
        "transformation_logs": event.transform_logs,
    })
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
    json!({
        "id": attempt.id,
        "team_id": team_id,
        "event_id": attempt.event_id,
        "response_status": attempt.response_status,
        "attempt_number": attempt.attempt_number,
        "trigger": attempt.trigger,
        "error_code": attempt.error_code,
        "body": attempt.response_body.as_deref().map(response_body),
        "requested_url": attempt.requested_url,
        "http_method": attempt.http_method,
        "bulk_retry_id": null,
        "status": attempt.status,
        "successful_at": iso_opt(successful),
        "delivered_at": iso_opt(responded),
        "responded_at": iso_opt(responded),
        "delivery_latency": latency,
        "response_latency": latency,
        "updated_at": iso(finished),
        "created_at": iso(attempt.created_at),
        "archived_at": null,
    })
}

/// The attempt a retry queued, before it is made: `QUEUED`, numbered after
/// the event's last, recorded under `id` once made (L4828-4845).
pub fn queued_attempt(team_id: &str, event: &Event, id: &str, trigger: AttemptTrigger) -> Value {
    let queued_at = iso(event.updated_at());
    json!({
        "id": id,
        "team_id": team_id,
        "event_id": event.id,
        "response_status": null,
        "attempt_number": event.attempts + 1,
        "trigger": trigger,
        "error_code": null,
        "body": null,
        "requested_url": null,
        "http_method": null,
        "bulk_retry_id": null,
        "status": "QUEUED",
        "successful_at": null,
        "delivered_at": null,
        "responded_at": null,
        "delivery_latency": null,
        "response_latency": null,
        "updated_at": queued_at,
        "created_at": queued_at,
        "archived_at": null,
    })
}

/// A response body: the JSON it holds, else its text.
fn response_body(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string()))
}

/// An ignored event as the reference shows it (L4364-4392): its `id` and
/// `ignored_event_cause_id` are integers there, so they are a number derived
/// from hookgate's own id, which stays readable as `ignored_event_id` (the id
/// `GET /ignored_events/:id` takes). `meta` is null: hookgate does not record
/// which part of a filter failed; its `detail`, `transformation_logs` and
/// `created_at` are additions.
pub fn ignored_event(team_id: &str, ignored: &IgnoredEvent) -> Value {
    let number = ignored_number(&ignored.id);
    json!({
        "request_id": ignored.request_id,
        "team_id": team_id,
        "ignored_event_cause_id": number,
        "id": number,
        "cause": ignored.cause,
        "webhook_id": ignored.connection_id,
        "meta": null,
        "ignored_event_id": ignored.id,
        "detail": ignored.detail,
        "transformation_logs": ignored.transform_logs,
        "created_at": iso(ignored.created_at),
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

/// `view` with the stamp's fields.
fn stamped(mut view: Value, stamp: &Stamp) -> Value {
    view["team_id"] = json!(stamp.team_id);
    view["archived_at"] = iso_opt(stamp.archived_at);
    view["updated_at"] = json!(iso(stamp.times.updated_at));
    view["created_at"] = json!(iso(stamp.times.created_at));
    view["read_only"] = json!(stamp.read_only);
    view
}

/// A source, reached at `url`.
pub fn source(source: &Source, stamp: &Stamp, url: &str) -> Value {
    let view = json!({
        "id": source.id,
        "name": source.name,
        "url": url,
        "allowed_http_methods": source.allowed_http_methods,
        "custom_response": source.custom_response.as_ref().map(|c| json!({ "content_type": c.content_type, "body": c.body })),
        "description": source.description,
        "verification": source.verifier.as_ref().map(|v| json!({ "type": v.hookdeck_type() })),
    });
    stamped(view, stamp)
}

pub fn destination(destination: &Destination, stamp: &Stamp) -> Value {
    let view = json!({
        "id": destination.id,
        "name": destination.name,
        "description": destination.description,
        "url": destination.url.as_ref().map(url::Url::as_str),
        "cli_path": destination.cli_path,
        "http_method": destination.http_method,
        "path_forwarding_disabled": destination.path_forwarding_disabled,
        "rate_limit": shown_rate_limit(destination),
        "rate_limit_period": shown_rate_limit_period(destination),
        "auth_method": destination.auth.shown(),
        "concurrent": destination.concurrency,
    });
    stamped(view, stamp)
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

/// A connection with the views of its source and destination.
pub fn connection(
    connection: &Connection,
    stamp: &Stamp,
    paused_at: Option<u64>,
    source: Value,
    destination: Value,
) -> Value {
    let name_of = |end: &Value| end["name"].as_str().unwrap_or_default().to_string();
    let full_name = full_name(&name_of(&source), &connection.name, &name_of(&destination));
    let view = json!({
        "id": connection.id,
        "name": connection.name,
        "full_name": full_name,
        "description": connection.description,
        "source_id": connection.source_id,
        "destination_id": connection.destination_id,
        "source": source,
        "destination": destination,
        "rules": shown_rules(json!(connection.rule_specs)),
        "paused_at": iso_opt(paused_at),
    });
    stamped(view, stamp)
}

/// A connection's `full_name`: the reference describes it as "concatenated
/// from source, connection and destination name", and its filter as the
/// source and connection names "separated by ` -> `"; all three, so joined,
/// satisfy both (the filter matches a part of it).
pub fn full_name(source: &str, connection: &str, destination: &str) -> String {
    format!("{source} -> {connection} -> {destination}")
}

//! How stored objects look through the API: Hookdeck's field names, ISO 8601
//! UTC timestamps, prefixed ids.

use super::query::iso;
use crate::model::{
    Attempt, Connection, Destination, Event, IgnoredEvent, Payload, RatePeriod, Request, Source,
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

pub fn request(request: &Request, payload: Option<&Payload>) -> Value {
    json!({
        "id": request.id,
        "source_id": request.source_id,
        "source_name": request.source_name,
        "status": request.status,
        "rejection_cause": request.rejection_cause,
        "verified": request.verified,
        "body_bytes": request.body_bytes,
        "body_truncated": request.body_truncated,
        "ingested_at": iso(request.received_at),
        "created_at": iso(request.received_at),
        "data": payload.map(data),
    })
}

pub fn event(event: &Event, payload: Option<&Payload>) -> Value {
    json!({
        "id": event.id,
        "request_id": event.request_id,
        "webhook_id": event.connection_id,
        "source_id": event.source_id,
        "destination_id": event.destination_id,
        "status": event.status,
        "attempts": event.attempts,
        "response_status": event.response_status,
        "error_code": event.error_code,
        "muted": event.muted,
        "last_attempt_at": iso_opt(event.last_attempt_at),
        "next_attempt_at": iso_opt(event.next_attempt_at),
        "successful_at": iso_opt(event.successful_at),
        "created_at": iso(event.created_at),
        "transformation_logs": event.transform_logs,
        "data": payload.map(data),
    })
}

pub fn attempt(attempt: &Attempt) -> Value {
    json!({
        "id": attempt.id,
        "event_id": attempt.event_id,
        "attempt_number": attempt.attempt_number,
        "trigger": attempt.trigger,
        "status": attempt.status,
        "http_method": attempt.http_method,
        "requested_url": attempt.requested_url,
        "response_status": attempt.response_status,
        "body": attempt.response_body,
        "error_code": attempt.error_code,
        "response_latency": attempt.latency_ms,
        "created_at": iso(attempt.created_at),
    })
}

pub fn ignored_event(ignored: &IgnoredEvent) -> Value {
    json!({
        "id": ignored.id,
        "request_id": ignored.request_id,
        "webhook_id": ignored.connection_id,
        "cause": ignored.cause,
        "meta": { "detail": ignored.detail, "transformation_logs": ignored.transform_logs },
        "created_at": iso(ignored.created_at),
    })
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

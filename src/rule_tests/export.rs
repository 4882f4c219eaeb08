//! `hookgate requests export`: a stored request, read through the management
//! API of a running gateway, written as a recorded request whose expectation
//! is what actually happened to it (its events and ignored events).

use super::case::{ConnectionOutcome, Delivered, Outcomes, RecordedCase, RecordedRequest};
use super::replay::delivered_headers;
use crate::verify::VERIFIED_HEADER;
use base64::Engine;
use serde_json::Value;
use std::collections::BTreeMap;

pub use crate::api_client::ApiClient as Api;

impl Api {
    /// Every item of a request's events or ignored events (one page: a
    /// request has one per connection of its source, at most 255 here).
    async fn models(&self, path: &str) -> Result<Vec<Value>, String> {
        let page = self.get(path).await?;
        Ok(page["models"].as_array().cloned().unwrap_or_default())
    }

    async fn connection_name(&self, id: &str) -> Result<String, String> {
        let connection = self.get(&format!("/connections/{id}")).await?;
        Ok(connection["name"].as_str().unwrap_or(id).to_string())
    }
}

/// The stored request `id` as a recorded request expecting what happened to it.
pub async fn export(api: &Api, id: &str) -> Result<RecordedCase, String> {
    let request = api.get(&format!("/requests/{id}")).await?;
    let raw = api.get(&format!("/requests/{id}/raw_body")).await?;
    let expect = match request["rejection_cause"].as_str() {
        Some(cause) => Outcomes::Rejected(cause.to_string()),
        None => Outcomes::Connections(what_happened(api, id).await?),
    };
    recorded(&request, exact_body(&raw)?, expect)
}

/// The bytes of a raw body answer: `body_base64` when the body is not UTF-8.
fn exact_body(raw: &Value) -> Result<Vec<u8>, String> {
    match raw["body_base64"].as_str() {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| format!("raw_body: body_base64: {e}")),
        None => Ok(raw["body"].as_str().unwrap_or_default().as_bytes().to_vec()),
    }
}

/// Each connection's outcome, by connection name.
async fn what_happened(api: &Api, id: &str) -> Result<BTreeMap<String, ConnectionOutcome>, String> {
    let mut outcomes = BTreeMap::new();
    for event in api
        .models(&format!("/requests/{id}/events?include=data&limit=255"))
        .await?
    {
        let data = &event["data"];
        let delivered = Delivered {
            path: data["path"].as_str().map(str::to_string),
            query: data["query"].as_str().map(str::to_string),
            headers: Some(delivered_headers(&data["headers"])),
            body: Some(data["body"].clone()),
            delay_ms: event["delay_ms"].as_u64(),
        };
        let name = api
            .connection_name(event["webhook_id"].as_str().unwrap_or_default())
            .await?;
        outcomes.insert(name, ConnectionOutcome::Delivered(delivered));
    }
    for ignored in api
        .models(&format!("/requests/{id}/ignored_events?limit=255"))
        .await?
    {
        let cause = ignored["cause"].as_str().unwrap_or_default().to_string();
        let name = api
            .connection_name(ignored["webhook_id"].as_str().unwrap_or_default())
            .await?;
        outcomes.insert(name, ConnectionOutcome::Ignored(cause));
    }
    Ok(outcomes)
}

/// A request view (`GET /requests/{id}` with its data) and its raw body as a
/// recorded request. The ingress's own `x-hookdeck-verified` is left out: a
/// replay verifies the request again and adds it (with the configured
/// static credential, if the source has one: `credential_from_config`).
pub fn recorded(
    request: &Value,
    raw_body: Vec<u8>,
    expect: Outcomes,
) -> Result<RecordedCase, String> {
    let data = &request["data"];
    let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
    let mut headers = delivered_headers(&data["headers"]);
    // A verified request of a source with a static credential was stored
    // without it: the file says so rather than hold the secret.
    let verified = headers
        .remove(VERIFIED_HEADER)
        .is_some_and(|flag| flag == "true");
    let source = request["source_name"]
        .as_str()
        .ok_or("the answer has no source_name")?;
    Ok(RecordedCase {
        source: source.to_string(),
        received_at: request["ingested_at"].as_str().map(str::to_string),
        request: RecordedRequest {
            method: text(&data["method"]),
            path: text(&data["path"]),
            query: text(&data["query"]),
            headers,
            body: None,
            body_base64: None,
            credential_from_config: verified,
        }
        .with_body(raw_body),
        expect,
    })
}

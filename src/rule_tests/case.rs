//! The file `hookgate test` reads and `hookgate requests export` writes: one
//! request as it arrived and what each connection of its source made of it.
//!
//! ```json
//! { "source": "shopify",
//!   "received_at": "2026-12-04T10:00:00.000Z",
//!   "request": { "method": "POST", "path": "/orders", "query": "",
//!                "headers": { "content-type": "application/json" },
//!                "body": "{\"id\": 1}" },
//!   "expect": { "connections": {
//!       "shopify-to-orders": { "delivered": { "headers": { "x-event-type": "orders/create" },
//!                                             "body": { "order_id": 1 } } },
//!       "shopify-audit": { "ignored": "FILTERED" } } } }
//! ```
//!
//! or `"expect": { "rejected": "VERIFICATION_FAILED" }`.

use crate::model::Payload;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One recorded request and its expected outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedCase {
    /// The source's name or id, as in the URL `/e/{source}`.
    pub source: String,
    /// When it arrived (RFC 3339): verification's clock, and what dedupe
    /// windows and delays count from. Without it: when the run starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<String>,
    pub request: RecordedRequest,
    pub expect: Outcomes,
}

/// The HTTP request as the source received it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedRequest {
    #[serde(default = "post")]
    pub method: String,
    /// What followed `/e/{source}` in the URL ("" or starting with `/`).
    #[serde(default)]
    pub path: String,
    /// The raw query string, without `?`.
    #[serde(default)]
    pub query: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The exact body as text (signatures are over its bytes)…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// …or, for a body that is not UTF-8, its bytes in base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
    /// The source's static credential (`basic_auth`'s `Authorization`, an
    /// `api_key` header, GitLab's token) is not in `headers`, as the ingress
    /// stores no request with it: the replay sends the one the config
    /// expects, as the provider did. Ignored for other verifications.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub credential_from_config: bool,
}

fn post() -> String {
    "POST".into()
}

/// What became of a request: turned away by its source, or one outcome per
/// connection (keyed by connection name; every connection of the source).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Outcomes {
    /// The rejection cause, e.g. `VERIFICATION_FAILED`.
    Rejected(String),
    Connections(BTreeMap<String, ConnectionOutcome>),
}

/// One connection's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ConnectionOutcome {
    Delivered(Delivered),
    /// The cause: `FILTERED`, `TRANSFORMATION_FAILED`, `DEDUPLICATED`.
    Ignored(String),
}

/// What a delivered event carries, as the API shows an event's `data`.
/// Expected: only the fields given are compared, and of `headers` only the
/// names given.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delivered {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// As rules see it: JSON as JSON, a form as an object, else the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// How long after its arrival it is due (a delay rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

impl RecordedRequest {
    /// The payload as the ingress would have read it.
    pub fn payload(&self) -> Result<Payload, String> {
        let body = match (&self.body, &self.body_base64) {
            (Some(_), Some(_)) => return Err("give body or body_base64, not both".into()),
            (Some(text), None) => text.clone().into_bytes(),
            (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| format!("body_base64: {e}"))?,
            (None, None) => Vec::new(),
        };
        Ok(Payload {
            method: self.method.to_ascii_uppercase(),
            path: self.path.clone(),
            query: self.query.clone(),
            headers: self
                .headers
                .iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
                .collect(),
            body,
        })
    }

    /// The body as the file keeps it: text when it is UTF-8, else base64.
    pub fn with_body(mut self, body: Vec<u8>) -> RecordedRequest {
        match String::from_utf8(body) {
            Ok(text) => self.body = Some(text),
            Err(bytes) => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(bytes.as_bytes());
                self.body_base64 = Some(encoded);
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip_as_text_or_base64() {
        let empty = RecordedRequest {
            method: "post".into(),
            path: "/p".into(),
            query: String::new(),
            headers: BTreeMap::from([("X-A".into(), "1".into())]),
            body: None,
            body_base64: None,
            credential_from_config: false,
        };
        let text = empty.clone().with_body(b"{\"a\":1}".to_vec());
        assert_eq!(text.body.as_deref(), Some("{\"a\":1}"));
        let binary = empty.clone().with_body(vec![0xff, 0x00]);
        assert_eq!(binary.body_base64.as_deref(), Some("/wA="));
        let payload = binary.payload().unwrap();
        assert_eq!(payload.body, vec![0xff, 0x00]);
        assert_eq!(
            (payload.method.as_str(), payload.headers[0].0.as_str()),
            ("POST", "x-a")
        );
        let both = RecordedRequest {
            body: Some("x".into()),
            ..binary
        };
        assert!(both.payload().is_err());
    }

    #[test]
    fn the_expectation_reads_either_shape() {
        let rejected: Outcomes =
            serde_json::from_str(r#"{"rejected": "VERIFICATION_FAILED"}"#).unwrap();
        assert_eq!(rejected, Outcomes::Rejected("VERIFICATION_FAILED".into()));
        let connections: Outcomes = serde_json::from_str(
            r#"{"connections": {"a": {"ignored": "FILTERED"}, "b": {"delivered": {"body": {"k": 1}}}}}"#,
        )
        .unwrap();
        let Outcomes::Connections(by_name) = connections else {
            panic!("not connections")
        };
        assert_eq!(by_name["a"], ConnectionOutcome::Ignored("FILTERED".into()));
        assert!(
            serde_json::from_str::<Outcomes>(r#"{"connections": {"a": {"dropped": 1}}}"#).is_err()
        );
    }
}

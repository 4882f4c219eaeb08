//! Inbound requests as received by a source.

use serde::{Deserialize, Serialize};

/// Whether the ingress accepted a request (and routed it) or turned it away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestStatus {
    Accepted,
    Rejected,
}

/// Why a request was rejected, named as in Hookdeck's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectionCause {
    NoWebhook,
    UnsupportedHttpMethod,
    PayloadTooLarge,
    VerificationFailed,
    IngestionFatal,
}

impl RejectionCause {
    /// The name used in the API (`NO_WEBHOOK`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionCause::NoWebhook => "NO_WEBHOOK",
            RejectionCause::UnsupportedHttpMethod => "UNSUPPORTED_HTTP_METHOD",
            RejectionCause::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            RejectionCause::VerificationFailed => "VERIFICATION_FAILED",
            RejectionCause::IngestionFatal => "INGESTION_FATAL",
        }
    }
}

/// The HTTP message a request carries, and later what an event delivers
/// (a transformation may change any part of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    pub method: String,
    /// What followed `/e/{source}` in the URL, always starting with `/` or empty.
    pub path: String,
    /// The raw query string without `?`.
    pub query: String,
    /// Header names lower-cased, in arrival order; repeated names stay repeated.
    pub headers: Vec<(String, String)>,
    #[serde(with = "body_as_base64")]
    pub body: Vec<u8>,
}

impl Payload {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A request as stored: its metadata; the payload lives beside it so that
/// listing requests never reads bodies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: String,
    /// None when the source was unknown (`NO_WEBHOOK`).
    pub source_id: Option<String>,
    /// The name or id the sender used in the URL.
    pub source_name: String,
    pub status: RequestStatus,
    pub rejection_cause: Option<RejectionCause>,
    pub verified: Option<bool>,
    /// Milliseconds since the epoch.
    pub received_at: u64,
    pub method: String,
    pub path: String,
    pub query: String,
    pub body_bytes: usize,
}

mod body_as_base64 {
    use base64::{engine::general_purpose::STANDARD, Engine};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(body: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(body))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

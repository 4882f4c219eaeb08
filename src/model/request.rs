//! Inbound requests as received by a source.

use crate::trace_context::TraceContext;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Whether the ingress accepted a request (and routed it) or turned it away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RequestStatus {
    Accepted,
    Rejected,
}

/// Why a request was rejected, named as in Hookdeck's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectionCause {
    /// The source is archived (a deleted one's requests are `NO_WEBHOOK`).
    SourceArchived,
    NoWebhook,
    UnsupportedHttpMethod,
    PayloadTooLarge,
    VerificationFailed,
    IngestionFatal,
    /// Not one of Hookdeck's: the body was cut short or malformed (the client
    /// closed early, timed out, or sent broken chunked encoding).
    BodyUnreadable,
    /// Not one of Hookdeck's: the forwarded path holds dot segments (in any
    /// encoding) or other ways out of the destination's path (`forwarded_path`).
    UnsafePath,
}

impl RejectionCause {
    /// Every cause, for choosing one (the console's filter).
    pub const ALL: [RejectionCause; 8] = [
        RejectionCause::SourceArchived,
        RejectionCause::NoWebhook,
        RejectionCause::UnsupportedHttpMethod,
        RejectionCause::PayloadTooLarge,
        RejectionCause::VerificationFailed,
        RejectionCause::IngestionFatal,
        RejectionCause::BodyUnreadable,
        RejectionCause::UnsafePath,
    ];

    /// The name used in the API (`NO_WEBHOOK`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionCause::SourceArchived => "SOURCE_ARCHIVED",
            RejectionCause::NoWebhook => "NO_WEBHOOK",
            RejectionCause::UnsupportedHttpMethod => "UNSUPPORTED_HTTP_METHOD",
            RejectionCause::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            RejectionCause::VerificationFailed => "VERIFICATION_FAILED",
            RejectionCause::IngestionFatal => "INGESTION_FATAL",
            RejectionCause::BodyUnreadable => "BODY_UNREADABLE",
            RejectionCause::UnsafePath => "UNSAFE_PATH",
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

/// A request as stored: its metadata; the payload lives beside it (in the
/// request journal) so that listing requests never reads bodies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: String,
    /// None when the source was unknown (`NO_WEBHOOK`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    /// The name or id the sender used in the URL.
    pub source_name: String,
    pub status: RequestStatus,
    // Fields without a value are left out of the stored record: a million
    // requests is a million records to replay when the store opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection_cause: Option<RejectionCause>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// Milliseconds since the epoch.
    pub received_at: u64,
    pub method: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query: String,
    pub body_bytes: usize,
    /// The record keeps only the start of the body (rejected requests: see
    /// `ingress::rejection_record`); `body_bytes` is the size received.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub body_truncated: bool,
    /// The ingress's span of the request's trace (the sender's trace, or a
    /// new one): its events' attempts are spans under it. None on rejected
    /// requests, and on those stored before trace context was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
}

impl Request {
    /// A new request of a source (None: unknown), for the `payload` received
    /// now: accepted and unverified until told otherwise. It was received at
    /// the time its id was made, exactly, so a time window of requests is a
    /// range of ids (`StampWindow`).
    pub fn received(source_id: Option<&str>, source_name: &str, payload: &Payload) -> Request {
        let id = crate::ids::new_id("req");
        Request {
            received_at: crate::ids::created_ms(&id).unwrap_or_default(),
            id,
            source_id: source_id.map(str::to_string),
            source_name: source_name.to_string(),
            status: RequestStatus::Accepted,
            rejection_cause: None,
            verified: None,
            method: payload.method.clone(),
            path: payload.path.clone(),
            query: payload.query.clone(),
            body_bytes: payload.body.len(),
            body_truncated: false,
            trace: None,
        }
    }
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

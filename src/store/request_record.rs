//! How a request is kept: one journal record holds the request and its
//! payload (written before the answer); sled's `requests` tree holds the
//! request and where the journal keeps it (one insert per request).
//!
//! Record layout: request JSON length (u32, big-endian), request JSON, then the
//! payload as `payload_codec` encodes it.

use super::journal::Location;
use super::payload_codec;
use crate::model::{Payload, Request};
use serde::{Deserialize, Serialize};

/// A `requests` value: the request's fields plus `journal`. Readers of
/// `Request` ignore the extra field; requests stored before the journal have
/// none (their payload is in the `request_payloads` tree).
#[derive(Serialize)]
struct Indexed<'a> {
    #[serde(flatten)]
    request: &'a Request,
    journal: Location,
}

#[derive(Deserialize)]
struct JournalOf {
    journal: Option<Location>,
}

pub fn indexed(request: &Request, location: Location) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&Indexed {
        request,
        journal: location,
    })
}

/// Where the journal keeps the payload of an indexed request.
pub fn journal_of(indexed: &[u8]) -> serde_json::Result<Option<Location>> {
    Ok(serde_json::from_slice::<JournalOf>(indexed)?.journal)
}

pub fn encode(request: &Request, payload: &Payload) -> serde_json::Result<Vec<u8>> {
    let request = serde_json::to_vec(request)?;
    let payload = payload_codec::encode(payload);
    let mut record = Vec::with_capacity(4 + request.len() + payload.len());
    record.extend_from_slice(&(request.len() as u32).to_be_bytes());
    record.extend_from_slice(&request);
    record.extend_from_slice(&payload);
    Ok(record)
}

pub fn decode(record: &[u8]) -> serde_json::Result<(Request, Payload)> {
    let (request, payload) = split(record)?;
    Ok((
        serde_json::from_slice(request)?,
        payload_codec::decode(payload)?,
    ))
}

pub fn decode_payload(record: &[u8]) -> serde_json::Result<Payload> {
    payload_codec::decode(split(record)?.1)
}

fn split(record: &[u8]) -> serde_json::Result<(&[u8], &[u8])> {
    let corrupt = || <serde_json::Error as serde::de::Error>::custom("truncated request record");
    let (length, rest) = record.split_first_chunk::<4>().ok_or_else(corrupt)?;
    rest.split_at_checked(u32::from_be_bytes(*length) as usize)
        .ok_or_else(corrupt)
}

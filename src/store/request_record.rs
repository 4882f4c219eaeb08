//! How a request is kept: one journal record holds the request and its
//! payload (written before the answer), and sled's `request_payloads` tree
//! points at it once the router has indexed it.
//!
//! Record layout: request JSON length (u32, big-endian), request JSON, then the
//! payload as `payload_codec` encodes it.

use super::journal::Location;
use super::payload_codec;
use crate::model::{Payload, Request};

/// First byte of a `request_payloads` value that points into the journal.
/// Older values are the payload itself, which never starts with this byte
/// (`payload_codec` starts with its version, 1, or with a JSON `{`).
const JOURNAL_REFERENCE: u8 = 0x4a; // "J"

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

/// The `request_payloads` value for a journaled request.
pub fn reference(location: Location) -> Vec<u8> {
    let mut value = Vec::with_capacity(1 + Location::ENCODED_LEN);
    value.push(JOURNAL_REFERENCE);
    value.extend_from_slice(&location.encode());
    value
}

/// Where the payload lies, when `value` points into the journal.
pub fn referenced(value: &[u8]) -> Option<Location> {
    match value.split_first() {
        Some((&JOURNAL_REFERENCE, location)) => Location::decode(location),
        _ => None,
    }
}

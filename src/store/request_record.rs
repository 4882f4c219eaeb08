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
    let mut record = Vec::with_capacity(4 + request.len());
    payload_codec::put_length_prefixed(&mut record, &request);
    payload_codec::encode_into(payload, &mut record);
    Ok(record)
}

pub fn decode(record: &[u8]) -> serde_json::Result<(Request, Payload)> {
    let (request, payload) = split(record)?;
    Ok((
        serde_json::from_slice(request)?,
        payload_codec::decode(payload)?,
    ))
}

/// The id of the request a journal record holds.
pub fn request_id(record: &[u8]) -> serde_json::Result<String> {
    #[derive(Deserialize)]
    struct Id {
        id: String,
    }
    Ok(serde_json::from_slice::<Id>(split(record)?.0)?.id)
}

pub fn decode_payload(record: &[u8]) -> serde_json::Result<Payload> {
    payload_codec::decode(split(record)?.1)
}

fn split(record: &[u8]) -> serde_json::Result<(&[u8], &[u8])> {
    payload_codec::take_length_prefixed(record)
        .ok_or_else(|| <serde_json::Error as serde::de::Error>::custom("truncated request record"))
}

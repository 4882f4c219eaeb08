//! How payloads are stored: a small JSON header (method, path, query, headers)
//! followed by the body's raw bytes. The body is the bulk of a payload, and
//! keeping it raw spares the base64 encoding and JSON escaping that a plain
//! serde encoding of `Payload` costs on every request.
//!
//! Layout: `VERSION` (1 byte), header length (u32, big-endian), header JSON, body.
//! Records written before this format are JSON objects (first byte `{`) and
//! are still read.

use crate::model::Payload;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

const VERSION: u8 = 1;

#[derive(Serialize, Deserialize)]
struct Header<'a> {
    method: Cow<'a, str>,
    path: Cow<'a, str>,
    query: Cow<'a, str>,
    headers: Cow<'a, [(String, String)]>,
}

pub fn encode(payload: &Payload) -> Vec<u8> {
    let mut bytes = Vec::new();
    encode_into(payload, &mut bytes);
    bytes
}

/// Appends the encoded payload to `out` (the request journal's records hold
/// one behind the request, written without an intermediate copy of the body).
pub fn encode_into(payload: &Payload, out: &mut Vec<u8>) {
    let header = Header {
        method: Cow::Borrowed(&payload.method),
        path: Cow::Borrowed(&payload.path),
        query: Cow::Borrowed(&payload.query),
        headers: Cow::Borrowed(&payload.headers),
    };
    let header = serde_json::to_vec(&header).expect("strings always serialize");
    out.reserve(5 + header.len() + payload.body.len());
    out.push(VERSION);
    put_length_prefixed(out, &header);
    out.extend_from_slice(&payload.body);
}

/// Appends `bytes` behind their length (u32, big-endian).
pub fn put_length_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Takes what `put_length_prefixed` wrote off the front of `bytes`, and the
/// rest; None when they are cut short.
pub fn take_length_prefixed(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (length, rest) = bytes.split_first_chunk::<4>()?;
    rest.split_at_checked(u32::from_be_bytes(*length) as usize)
}

pub fn decode(bytes: &[u8]) -> Result<Payload, serde_json::Error> {
    let Some((&VERSION, rest)) = bytes.split_first() else {
        return serde_json::from_slice(bytes);
    };
    let corrupt = || <serde_json::Error as serde::de::Error>::custom("truncated payload record");
    let (header, body) = take_length_prefixed(rest).ok_or_else(corrupt)?;
    let header: Header<'_> = serde_json::from_slice(header)?;
    Ok(Payload {
        method: header.method.into_owned(),
        path: header.path.into_owned(),
        query: header.query.into_owned(),
        headers: header.headers.into_owned(),
        body: body.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(body: &[u8]) -> Payload {
        Payload {
            method: "POST".into(),
            path: "/orders".into(),
            query: "a=1".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_vec(),
        }
    }

    #[test]
    fn round_trips_any_body() {
        for body in [&b""[..], b"{\"a\":1}", &[0, 1, 0xff, b'{']] {
            assert_eq!(decode(&encode(&payload(body))).unwrap(), payload(body));
        }
    }

    #[test]
    fn reads_records_of_the_json_format() {
        let old = serde_json::to_vec(&payload(b"hello")).unwrap();
        assert_eq!(decode(&old).unwrap(), payload(b"hello"));
    }

    #[test]
    fn truncated_records_are_errors_not_panics() {
        let bytes = encode(&payload(b"body"));
        for cut in [1, 3, 10] {
            assert!(decode(&bytes[..cut]).is_err());
        }
    }
}

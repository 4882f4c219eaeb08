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
    let header = Header {
        method: Cow::Borrowed(&payload.method),
        path: Cow::Borrowed(&payload.path),
        query: Cow::Borrowed(&payload.query),
        headers: Cow::Borrowed(&payload.headers),
    };
    let header = serde_json::to_vec(&header).expect("strings always serialize");
    let mut bytes = Vec::with_capacity(5 + header.len() + payload.body.len());
    bytes.push(VERSION);
    bytes.extend_from_slice(&(header.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(&payload.body);
    bytes
}

pub fn decode(bytes: &[u8]) -> Result<Payload, serde_json::Error> {
    let Some((&VERSION, rest)) = bytes.split_first() else {
        return serde_json::from_slice(bytes);
    };
    let corrupt = || <serde_json::Error as serde::de::Error>::custom("truncated payload record");
    let (length, rest) = rest.split_first_chunk::<4>().ok_or_else(corrupt)?;
    let length = u32::from_be_bytes(*length) as usize;
    let (header, body) = rest.split_at_checked(length).ok_or_else(corrupt)?;
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

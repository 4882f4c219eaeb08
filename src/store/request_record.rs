//! How a request is kept: one journal record holds the request and its
//! payload (written before the answer); sled's `requests` tree holds the
//! request and where the journal keeps it (one insert per request).
//!
//! Record layout: request JSON length (u32, big-endian), request JSON, then the
//! payload as `payload_codec` encodes it. A webhook job is journaled the same
//! way (so its `201` shares the requests' group commit): an empty request
//! (length 0, which no request has), then the job's JSON; its `jobs` record
//! holds it but its payload, as `job_record` says.

use super::journal::Location;
use super::payload_codec;
use crate::model::{Payload, Request, WebhookJob};
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

pub fn encode_job(job: &WebhookJob) -> serde_json::Result<Vec<u8>> {
    let mut record = Vec::with_capacity(512);
    payload_codec::put_length_prefixed(&mut record, &[]);
    serde_json::to_writer(&mut record, job)?;
    Ok(record)
}

/// A job's journal record's JSON: the whole job as created, payload
/// included, which its `jobs` record points to (`job_record`; None: the
/// record is a request's).
pub fn job_json(record: &[u8]) -> Option<&[u8]> {
    match split(record).ok()? {
        ([], job) => Some(job),
        _ => None,
    }
}

/// What one journal record holds (a request, the common case, unboxed).
#[allow(clippy::large_enum_variant)]
pub enum Record {
    Request(Request, Payload),
    Job(Box<WebhookJob>),
}

pub fn decode(record: &[u8]) -> serde_json::Result<Record> {
    match split(record)? {
        ([], job) => Ok(Record::Job(serde_json::from_slice(job)?)),
        (request, payload) => Ok(Record::Request(
            serde_json::from_slice(request)?,
            payload_codec::decode(payload)?,
        )),
    }
}

/// The id of the request (or webhook job) a journal record holds.
pub fn record_id(record: &[u8]) -> serde_json::Result<String> {
    #[derive(Deserialize)]
    struct Id {
        id: String,
    }
    let json = match split(record)? {
        ([], job) => job,
        (request, _) => request,
    };
    Ok(serde_json::from_slice::<Id>(json)?.id)
}

pub fn decode_payload(record: &[u8]) -> serde_json::Result<Payload> {
    payload_codec::decode(split(record)?.1)
}

fn split(record: &[u8]) -> serde_json::Result<(&[u8], &[u8])> {
    payload_codec::take_length_prefixed(record)
        .ok_or_else(|| <serde_json::Error as serde::de::Error>::custom("truncated request record"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jobs_journal_record_holds_its_jobs_record_and_a_requests_none() {
        let job: WebhookJob = serde_json::from_value(serde_json::json!({
            "id": "job_1", "application_id": "app_a", "event_type": "order.paid",
            "event_id": "job_1", "payload": {"total": 10.00}, "headers": {}, "metadata": {},
            "endpoint_ids": ["end_a"], "status": "created", "attempt_count": 0,
            "max_retries": 0, "created_at": 1000, "updated_at": 1000, "expires_at": 2000,
            "succeeded_at": null, "discarded_at": null,
        }))
        .unwrap();
        let record = encode_job(&job).unwrap();
        let stored = serde_json::to_vec(&job).unwrap();
        assert_eq!(job_json(&record), Some(&stored[..]));
        let request = crate::store::test_request("{}");
        assert_eq!(job_json(&request.record), None);
    }
}

//! The ingress's answers. Every one carries Content-Length: without it pingora
//! closes the connection after the response, and throughput falls sixfold.

use crate::model::CustomResponse;
use http::{header, Response, StatusCode};
use serde_json::json;

/// An error answer: `{ "status": N, "message": "...", "request_id": "req_…" }`
/// (the id when the rejected request was recorded).
pub struct ErrorReply {
    status: StatusCode,
    message: String,
    extra_header: Option<(&'static str, String)>,
    request_id: Option<String>,
}

impl ErrorReply {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ErrorReply {
        ErrorReply {
            status,
            message: message.into(),
            extra_header: None,
            request_id: None,
        }
    }

    /// Names the recorded request, so that it can be looked up in the API.
    pub fn recorded_as(mut self, request_id: String) -> ErrorReply {
        self.request_id = Some(request_id);
        self
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> ErrorReply {
        self.extra_header = Some((name, value));
        self
    }
}

pub fn error(reply: ErrorReply) -> Response<Vec<u8>> {
    let mut body = json!({ "status": reply.status.as_u16(), "message": reply.message });
    if let Some(id) = &reply.request_id {
        body["request_id"] = json!(id);
    }
    let mut response = respond(
        reply.status,
        "application/json",
        body.to_string().into_bytes(),
        reply.request_id.as_deref(),
    );
    if let Some((name, value)) = reply.extra_header {
        if let Ok(value) = value.parse() {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// 200 with the new request's id, or the source's custom response.
pub fn accepted(request_id: &str, custom: Option<&CustomResponse>) -> Response<Vec<u8>> {
    match custom {
        Some(custom) => respond(
            StatusCode::OK,
            &custom.content_type,
            custom.body.clone().into_bytes(),
            Some(request_id),
        ),
        None => {
            let body = json!({ "status": "SUCCESS", "message": "Request accepted", "request_id": request_id });
            respond(
                StatusCode::OK,
                "application/json",
                body.to_string().into_bytes(),
                Some(request_id),
            )
        }
    }
}

/// A health probe's answer (see `crate::health`).
pub fn probe(status: StatusCode, body: &serde_json::Value) -> Response<Vec<u8>> {
    respond(
        status,
        "application/json",
        body.to_string().into_bytes(),
        None,
    )
}

fn respond(
    status: StatusCode,
    content_type: &str,
    body: Vec<u8>,
    request_id: Option<&str>,
) -> Response<Vec<u8>> {
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, body.len());
    if let Some(id) = request_id {
        builder = builder.header("x-hookgate-request-id", id);
    }
    builder.body(body).expect("static response parts are valid")
}

//! A source's checks of a received request, in the one order the ingress
//! makes them and `hookgate test` replays them: the forwarded path, the
//! method, then (once the body is read) the provider's signature.
//!
//! The checks are split where the ingress reads the body, so that a request
//! refused by its head is answered without reading it; `HeadAdmitted` is the
//! only way to the signature check, so no caller can reorder or skip a step.

use super::{Payload, RejectionCause, Source};
use crate::forwarded_path::{self, UnsafePath};
use crate::verify::{Verifier, VerifyError};
use std::time::SystemTime;

/// Why a source refuses a request.
#[derive(Debug)]
pub enum Refusal {
    UnsafePath(UnsafePath),
    MethodNotAllowed,
    VerificationFailed(VerifyError),
}

impl Refusal {
    pub fn cause(&self) -> RejectionCause {
        match self {
            Refusal::UnsafePath(_) => RejectionCause::UnsafePath,
            Refusal::MethodNotAllowed => RejectionCause::UnsupportedHttpMethod,
            Refusal::VerificationFailed(_) => RejectionCause::VerificationFailed,
        }
    }
}

/// A request whose head the source accepts; its body is still to be
/// verified.
#[must_use = "the signature is not checked until `verify` runs"]
pub struct HeadAdmitted<'a> {
    verifier: Option<&'a Verifier>,
}

impl Source {
    /// The checks of the request's head: its forwarded path, then its method.
    pub fn admit_head(&self, head: &Payload) -> Result<HeadAdmitted<'_>, Refusal> {
        forwarded_path::check(&head.path).map_err(Refusal::UnsafePath)?;
        if !self.allowed_http_methods.contains(&head.method) {
            return Err(Refusal::MethodNotAllowed);
        }
        Ok(HeadAdmitted {
            verifier: self.verifier.as_deref(),
        })
    }
}

impl HeadAdmitted<'_> {
    /// Whether the source verifies its requests at all.
    pub fn verifies(&self) -> bool {
        self.verifier.is_some()
    }

    /// The provider's signature over the whole request (`Verifier::admit`),
    /// checked at `now` against the `url` the provider called.
    pub fn verify(self, payload: &mut Payload, url: &str, now: SystemTime) -> Result<(), Refusal> {
        match self.verifier {
            Some(verifier) => verifier
                .admit(payload, url, now)
                .map_err(Refusal::VerificationFailed),
            None => Ok(()),
        }
    }
}

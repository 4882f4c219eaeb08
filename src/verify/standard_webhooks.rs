//! Inbound `svix` / `standard_webhooks`: header extraction only — the
//! signature scheme itself is [`crate::signing::standard_webhooks::verify`],
//! shared with the outbound signer.
//!
//! Svix sends `svix-id` / `svix-timestamp` / `svix-signature`; Standard
//! Webhooks (and white-labelled Svix) send `webhook-*`. Both spellings are
//! accepted for either config type, `webhook-*` taking precedence.

use super::{InboundRequest, VerifyError};
use crate::signing::standard_webhooks::{
    verify, WebhookSecret, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};

const SVIX_ID: &str = "svix-id";
const SVIX_TIMESTAMP: &str = "svix-timestamp";
const SVIX_SIGNATURE: &str = "svix-signature";

pub(super) struct StandardWebhooks {
    secret: WebhookSecret,
    tolerance_seconds: u64,
}

impl StandardWebhooks {
    /// `secret` is the resolved `whsec_…` string.
    pub(super) fn new(secret: &str, tolerance_seconds: u64) -> Result<Self, String> {
        let secret =
            WebhookSecret::parse(secret).map_err(|e| format!("webhook_secret_key: {e}"))?;
        Ok(Self {
            secret,
            tolerance_seconds,
        })
    }

    pub(super) fn verify(&self, req: &InboundRequest, now: i64) -> Result<(), VerifyError> {
        let id = either_header(req, HEADER_ID, SVIX_ID)?;
        let timestamp = either_header(req, HEADER_TIMESTAMP, SVIX_TIMESTAMP)?;
        let signature = either_header(req, HEADER_SIGNATURE, SVIX_SIGNATURE)?;
        verify(
            &[&self.secret],
            id,
            timestamp,
            signature,
            req.body,
            now,
            self.tolerance_seconds,
        )
    }
}

fn either_header<'a>(
    req: &InboundRequest<'a>,
    standard: &str,
    svix: &str,
) -> Result<&'a str, VerifyError> {
    req.header(standard)
        .or_else(|| req.header(svix))
        .map(str::trim)
        .ok_or_else(|| VerifyError::MissingHeader(format!("{standard} (or {svix})")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::standard_webhooks::sign;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn run(prefix: &str, drop: Option<&str>, now: i64) -> Result<(), VerifyError> {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let sig = sign("msg_1", 1700000000, b"{}", &[&secret]);
        let headers: Vec<(String, String)> = [
            ("id", "msg_1".to_owned()),
            ("timestamp", "1700000000".to_owned()),
            ("signature", sig),
        ]
        .into_iter()
        .filter(|(name, _)| Some(*name) != drop)
        .map(|(name, v)| (format!("{prefix}-{name}"), v))
        .collect();
        StandardWebhooks::new(SECRET, 300).unwrap().verify(
            &InboundRequest {
                method: "POST",
                url: "https://hooks.example.com/in",
                headers: &headers,
                body: b"{}",
            },
            now,
        )
    }

    #[test]
    fn both_header_families() {
        run("webhook", None, 1700000000).unwrap();
        run("svix", None, 1700000000).unwrap();
    }

    #[test]
    fn each_missing_header_is_reported() {
        for (name, expected) in [
            ("id", "webhook-id (or svix-id)"),
            ("timestamp", "webhook-timestamp (or svix-timestamp)"),
            ("signature", "webhook-signature (or svix-signature)"),
        ] {
            assert_eq!(
                run("svix", Some(name), 1700000000),
                Err(VerifyError::MissingHeader(expected.into()))
            );
        }
    }

    #[test]
    fn stale() {
        assert!(matches!(
            run("svix", None, 1700000000 + 301),
            Err(VerifyError::StaleTimestamp { .. })
        ));
    }
}

//! Providers that sign a timestamp together with the body and so can reject
//! replays: Stripe and Slack. Both compute a hex HMAC-SHA256; they differ
//! only in how timestamp and signature are carried and concatenated.
//!
//! The signature is checked before the timestamp window, so a
//! `StaleTimestamp` / `FutureTimestamp` error always concerns an authentic
//! request (a replay or a badly skewed clock), never a forgery.

use super::{check_timestamp_window, parse_unix_timestamp, InboundRequest, VerifyError};
use crate::signing::mac::{encoded_mac_matches, hmac_sha256, SignatureEncoding};

/// `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…][,v0=…]`; signed payload
/// `"{t}.{body}"` keyed by the endpoint secret string (the whole `whsec_…`
/// string is the key — Stripe does not base64-decode it). Several `v1`
/// entries appear while an endpoint secret is being rolled; any may match.
/// Source: docs.stripe.com/webhooks ("Verify signatures manually").
const STRIPE_HEADER: &str = "stripe-signature";
const STRIPE_SCHEME: &str = "v1";

/// `X-Slack-Signature: v0=<hex>` over `"v0:{X-Slack-Request-Timestamp}:{body}"`.
/// Source: api.slack.com/authentication/verifying-requests-from-slack.
const SLACK_SIGNATURE_HEADER: &str = "x-slack-signature";
const SLACK_TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
const SLACK_PREFIX: &str = "v0=";

pub(super) struct Stripe {
    secret: Vec<u8>,
    tolerance_seconds: u64,
}

impl Stripe {
    pub(super) fn new(secret: String, tolerance_seconds: u64) -> Self {
        Self {
            secret: secret.into_bytes(),
            tolerance_seconds,
        }
    }

    pub(super) fn verify(&self, req: &InboundRequest, now: i64) -> Result<(), VerifyError> {
        let header = parse_stripe_header(req.require_header(STRIPE_HEADER)?)?;
        let timestamp = parse_unix_timestamp("stripe-signature `t`", header.timestamp)?;
        let expected = hmac_sha256(&self.secret, &[header.timestamp.as_bytes(), b".", req.body]);
        // Non-short-circuiting: every candidate is compared.
        let matched = header.signatures.iter().fold(false, |found, sig| {
            found | encoded_mac_matches(&expected, sig, SignatureEncoding::Hex)
        });
        if !matched {
            return Err(VerifyError::BadSignature);
        }
        check_timestamp_window(timestamp, now, self.tolerance_seconds)
    }
}

struct StripeHeader<'a> {
    timestamp: &'a str,
    signatures: Vec<&'a str>,
}

fn parse_stripe_header(value: &str) -> Result<StripeHeader<'_>, VerifyError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for (key, val) in value
        .split(',')
        .filter_map(|item| item.trim().split_once('='))
    {
        match key {
            "t" if timestamp.is_some() => {
                return Err(VerifyError::Malformed(
                    "stripe-signature has more than one `t`".into(),
                ))
            }
            "t" => timestamp = Some(val),
            STRIPE_SCHEME => signatures.push(val),
            // v0 (test-mode legacy) and unknown schemes are ignored, as
            // Stripe's own libraries do.
            _ => {}
        }
    }
    let timestamp = timestamp
        .ok_or_else(|| VerifyError::Malformed("stripe-signature has no `t=` timestamp".into()))?;
    if signatures.is_empty() {
        return Err(VerifyError::Malformed(
            "stripe-signature has no `v1=` signature".into(),
        ));
    }
    Ok(StripeHeader {
        timestamp,
        signatures,
    })
}

pub(super) struct Slack {
    secret: Vec<u8>,
    tolerance_seconds: u64,
}

impl Slack {
    pub(super) fn new(secret: String, tolerance_seconds: u64) -> Self {
        Self {
            secret: secret.into_bytes(),
            tolerance_seconds,
        }
    }

    pub(super) fn verify(&self, req: &InboundRequest, now: i64) -> Result<(), VerifyError> {
        let raw_timestamp = req.require_header(SLACK_TIMESTAMP_HEADER)?.trim();
        let signature = req.require_header(SLACK_SIGNATURE_HEADER)?.trim();
        let timestamp = parse_unix_timestamp(SLACK_TIMESTAMP_HEADER, raw_timestamp)?;
        let signature = signature.strip_prefix(SLACK_PREFIX).ok_or_else(|| {
            VerifyError::Malformed(format!(
                "{SLACK_SIGNATURE_HEADER} must start with `{SLACK_PREFIX}`"
            ))
        })?;
        let expected = hmac_sha256(
            &self.secret,
            &[b"v0:", raw_timestamp.as_bytes(), b":", req.body],
        );
        if !encoded_mac_matches(&expected, signature, SignatureEncoding::Hex) {
            return Err(VerifyError::BadSignature);
        }
        check_timestamp_window(timestamp, now, self.tolerance_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(headers: &'a [(String, String)], body: &'a [u8]) -> InboundRequest<'a> {
        InboundRequest {
            method: "POST",
            url: "https://hooks.example.com/in",
            headers,
            body,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn stripe_sig(secret: &str, t: i64, body: &[u8]) -> String {
        hex::encode(hmac_sha256(
            secret.as_bytes(),
            &[t.to_string().as_bytes(), b".", body],
        ))
    }

    const T: i64 = 1714564800;
    const BODY: &[u8] = br#"{"id":"evt_1","type":"invoice.paid"}"#;

    #[test]
    fn stripe_valid_with_rotation_signatures_and_v0() {
        let v = Stripe::new("whsec_test".into(), 300);
        let good = stripe_sig("whsec_test", T, BODY);
        let old = stripe_sig("whsec_old", T, BODY);
        let value = format!("t={T},v1={old},v1={good},v0=deadbeef");
        let h = headers(&[("stripe-signature", &value)]);
        v.verify(&request(&h, BODY), T + 10).unwrap();
    }

    #[test]
    fn stripe_replay_outside_tolerance() {
        let v = Stripe::new("whsec_test".into(), 300);
        let value = format!("t={T},v1={}", stripe_sig("whsec_test", T, BODY));
        let h = headers(&[("stripe-signature", &value)]);
        v.verify(&request(&h, BODY), T + 300).unwrap();
        assert!(matches!(
            v.verify(&request(&h, BODY), T + 301),
            Err(VerifyError::StaleTimestamp { .. })
        ));
        assert!(matches!(
            v.verify(&request(&h, BODY), T - 301),
            Err(VerifyError::FutureTimestamp { .. })
        ));
    }

    #[test]
    fn stripe_timestamp_is_part_of_the_signature() {
        let v = Stripe::new("whsec_test".into(), 300);
        // Replaying the signature with a fresh `t` must fail.
        let value = format!("t={},v1={}", T + 100, stripe_sig("whsec_test", T, BODY));
        let h = headers(&[("stripe-signature", &value)]);
        assert_eq!(
            v.verify(&request(&h, BODY), T + 100),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn stripe_malformed_headers() {
        let v = Stripe::new("whsec_test".into(), 300);
        let sig = stripe_sig("whsec_test", T, BODY);
        for value in [
            format!("v1={sig}"),
            format!("t={T}"),
            format!("t={T},v0={sig}"),
            format!("t=abc,v1={sig}"),
            format!("t={T},t={T},v1={sig}"),
            String::new(),
        ] {
            let h = headers(&[("stripe-signature", &value)]);
            assert!(
                matches!(
                    v.verify(&request(&h, BODY), T),
                    Err(VerifyError::Malformed(_))
                ),
                "{value:?}"
            );
        }
        assert_eq!(
            v.verify(&request(&[], BODY), T),
            Err(VerifyError::MissingHeader("stripe-signature".into()))
        );
    }

    // The worked example of Slack's "Verifying requests from Slack" page.
    const SLACK_DOC_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const SLACK_DOC_TIMESTAMP: &str = "1531420618";
    const SLACK_DOC_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SLACK_DOC_SIGNATURE: &str =
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn slack_documented_example() {
        let v = Slack::new(SLACK_DOC_SECRET.into(), 300);
        let h = headers(&[
            ("x-slack-request-timestamp", SLACK_DOC_TIMESTAMP),
            ("x-slack-signature", SLACK_DOC_SIGNATURE),
        ]);
        let now = 1531420618;
        v.verify(&request(&h, SLACK_DOC_BODY.as_bytes()), now)
            .unwrap();
        assert!(matches!(
            v.verify(&request(&h, SLACK_DOC_BODY.as_bytes()), now + 301),
            Err(VerifyError::StaleTimestamp { .. })
        ));
        assert_eq!(
            v.verify(&request(&h, b"token=tampered"), now),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn slack_missing_and_malformed() {
        let v = Slack::new(SLACK_DOC_SECRET.into(), 300);
        let only_sig = headers(&[("x-slack-signature", SLACK_DOC_SIGNATURE)]);
        assert_eq!(
            v.verify(&request(&only_sig, b""), 0),
            Err(VerifyError::MissingHeader(
                "x-slack-request-timestamp".into()
            ))
        );
        let no_prefix = headers(&[
            ("x-slack-request-timestamp", SLACK_DOC_TIMESTAMP),
            ("x-slack-signature", &SLACK_DOC_SIGNATURE[3..]),
        ]);
        assert!(matches!(
            v.verify(&request(&no_prefix, SLACK_DOC_BODY.as_bytes()), 1531420618),
            Err(VerifyError::Malformed(_))
        ));
    }
}

//! Standard Webhooks (<https://www.standardwebhooks.com>, spec v1.0.0,
//! `spec/standard-webhooks.md` in github.com/standard-webhooks/standard-webhooks)
//! symmetric signatures — the scheme Svix uses.
//!
//! * Headers: `webhook-id`, `webhook-timestamp` (unix seconds) and
//!   `webhook-signature`, a *space-separated* list of `v1,<base64>` entries so
//!   a sender can sign with several secrets during a rotation.
//! * Signed content: `"{webhook-id}.{webhook-timestamp}.{body}"` with the raw
//!   body bytes.
//! * MAC: HMAC-SHA256 keyed by the base64-decoded part of a `whsec_…` secret
//!   (the `whsec_` prefix is *not* part of the key).
//!
//! [`verify`] here is the single implementation used both by tests of the
//! signer and by the inbound `svix` / `standard_webhooks` verifier.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use rand::RngCore;

use crate::signing::mac::{ct_eq, hmac_sha256};
use crate::verify::{check_timestamp_window, parse_unix_timestamp, VerifyError};

pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// Serialization prefix of symmetric secrets.
pub const SECRET_PREFIX: &str = "whsec_";
/// Replay window recommended by the spec's reference libraries (5 minutes).
pub const DEFAULT_TOLERANCE_SECONDS: u64 = 300;
/// Signature identifier of the symmetric (HMAC-SHA256) scheme.
const SYMMETRIC_VERSION: &str = "v1";

/// A symmetric Standard Webhooks secret (the raw HMAC key).
///
/// `Debug` is redacted; use [`WebhookSecret::to_whsec`] to export it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl WebhookSecret {
    /// Key length used by [`WebhookSecret::generate`]. The spec asks for at
    /// least 24 random bytes; 32 matches the SHA-256 block security level.
    pub const GENERATED_LEN: usize = 32;

    /// Parses `whsec_<base64>`. Like the reference libraries, the bare base64
    /// form (without the prefix) is accepted too.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        let key = BASE64.decode(encoded).map_err(|_| {
            format!(
                "malformed Standard Webhooks secret: expected `{SECRET_PREFIX}` followed by base64"
            )
        })?;
        Self::from_bytes(key)
    }

    /// Wraps raw key bytes.
    pub fn from_bytes(key: impl Into<Vec<u8>>) -> Result<Self, String> {
        let key = key.into();
        if key.is_empty() {
            return Err("Standard Webhooks secret is empty".to_owned());
        }
        Ok(Self { key })
    }

    /// A fresh random secret from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut key = vec![0u8; Self::GENERATED_LEN];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self { key }
    }

    /// Serialized form to hand to webhook consumers: `whsec_<base64>`.
    pub fn to_whsec(&self) -> String {
        format!("{SECRET_PREFIX}{}", BASE64.encode(&self.key))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.key
    }
}

impl FromStr for WebhookSecret {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookSecret(<redacted {} bytes>)", self.key.len())
    }
}

/// The raw MAC over `"{id}.{timestamp}.{body}"`; shared by signing and
/// verification so the two can never disagree on the signed content.
fn raw_signature(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let timestamp = timestamp.to_string();
    hmac_sha256(
        secret.as_bytes(),
        &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
    )
}

/// One `v1,<base64>` signature entry.
pub fn signature(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mac = raw_signature(secret, id, timestamp, body);
    format!("{SYMMETRIC_VERSION},{}", BASE64.encode(mac))
}

/// The `webhook-signature` header value: one `v1,…` entry per secret,
/// space-separated (current secret first, then secrets being rotated out).
///
/// `id` must not contain `.` (the spec forbids it: it would make the signed
/// content ambiguous); hookgate generates ids itself, so this is a
/// programming error and only checked in debug builds.
pub fn sign(id: &str, timestamp: i64, body: &[u8], secrets: &[&WebhookSecret]) -> String {
    debug_assert!(!id.contains('.'), "webhook-id must not contain '.'");
    secrets
        .iter()
        .map(|secret| signature(secret, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// All three Standard Webhooks headers for an outbound request.
pub fn headers(
    id: &str,
    timestamp: i64,
    body: &[u8],
    secrets: &[&WebhookSecret],
) -> [(&'static str, String); 3] {
    [
        (HEADER_ID, id.to_owned()),
        (HEADER_TIMESTAMP, timestamp.to_string()),
        (HEADER_SIGNATURE, sign(id, timestamp, body, secrets)),
    ]
}

/// Verifies a Standard Webhooks request given its three header values.
///
/// Succeeds when any `v1` entry of `signature_header` matches any of
/// `secrets` (entries with other versions, e.g. asymmetric `v1a`, are
/// ignored) and the timestamp is within `tolerance_seconds` of `now_unix` in
/// either direction. The signature is checked first, so a
/// [`VerifyError::StaleTimestamp`] always means an authentic but replayed
/// (or badly delayed) message.
pub fn verify(
    secrets: &[&WebhookSecret],
    id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now_unix: i64,
    tolerance_seconds: u64,
) -> Result<(), VerifyError> {
    let ts = parse_unix_timestamp(HEADER_TIMESTAMP, timestamp)?;
    let provided: Vec<Vec<u8>> = signature_header
        .split_whitespace()
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == SYMMETRIC_VERSION)
        .filter_map(|(_, sig)| BASE64.decode(sig).ok())
        .collect();
    if provided.is_empty() {
        return Err(VerifyError::Malformed(format!(
            "{HEADER_SIGNATURE} contains no `{SYMMETRIC_VERSION},<base64>` signature"
        )));
    }
    let matched = secrets.iter().any(|secret| {
        let expected = raw_signature(secret, id, ts, body);
        // Non-short-circuiting fold: every entry is compared.
        provided
            .iter()
            .fold(false, |found, sig| found | ct_eq(&expected, sig))
    });
    if !matched {
        return Err(VerifyError::BadSignature);
    }
    check_timestamp_window(ts, now_unix, tolerance_seconds)
}

/// A signing secret plus the previous secrets still honoured during their
/// rotation grace period.
///
/// Sign with [`SecretSet::active`] so consumers that have not yet switched
/// to the new secret keep verifying (the spec's zero-downtime rotation).
#[derive(Debug, Clone)]
pub struct SecretSet {
    pub current: WebhookSecret,
    /// Rotated-out secrets with the unix time (seconds) at which they stop
    /// being used; a secret is active while `now < expires_at`.
    pub previous: Vec<(WebhookSecret, i64)>,
}

impl SecretSet {
    pub fn new(current: WebhookSecret) -> Self {
        Self {
            current,
            previous: Vec::new(),
        }
    }

    /// Makes `next` the current secret; the old one keeps signing for
    /// `grace_seconds` more so receivers have time to switch.
    pub fn rotate(&mut self, next: WebhookSecret, now_unix: i64, grace_seconds: u64) {
        let old = std::mem::replace(&mut self.current, next);
        let expires_at = now_unix.saturating_add(i64::try_from(grace_seconds).unwrap_or(i64::MAX));
        self.previous.push((old, expires_at));
    }

    /// Secrets to sign with at `now_unix`: the current one first, then the
    /// unexpired previous ones (newest rotation first).
    pub fn active(&self, now_unix: i64) -> Vec<&WebhookSecret> {
        std::iter::once(&self.current)
            .chain(
                self.previous
                    .iter()
                    .rev()
                    .filter(|(_, expires_at)| now_unix < *expires_at)
                    .map(|(secret, _)| secret),
            )
            .collect()
    }

    /// Forgets previous secrets whose grace period is over.
    pub fn prune(&mut self, now_unix: i64) {
        self.previous
            .retain(|(_, expires_at)| now_unix < *expires_at);
    }

    /// [`headers`] signed with every secret active at `timestamp`.
    pub fn headers(&self, id: &str, timestamp: i64, body: &[u8]) -> [(&'static str, String); 3] {
        headers(id, timestamp, body, &self.active(timestamp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Published test vectors of the reference implementations in
    // github.com/standard-webhooks/standard-webhooks:
    //  * libraries/javascript/src/webhook.test.ts, "sign function works"
    //  * libraries/rust/src/lib.rs, `test_sign`
    struct Vector {
        secret: &'static str,
        id: &'static str,
        timestamp: i64,
        body: &'static str,
        signature: &'static str,
    }
    const VECTORS: [Vector; 2] = [
        Vector {
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
            timestamp: 1614265330,
            body: r#"{"test": 2432232314}"#,
            signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        },
        Vector {
            secret: "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            id: "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            timestamp: 1649367553,
            body: r#"{"email":"test@example.com","username":"test_user"}"#,
            signature: "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
        },
    ];
    // Other `v1` entries used by the reference tests' multi-signature cases.
    const FOREIGN_SIGS: [&str; 3] = [
        "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ=",
        "v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q=",
        "v1,9DfC1c3eeOrXB6w/5dIDydLNQaEyww5KalE5jLBZucE=",
    ];

    fn check(v: &Vector, header: &str, now: i64) -> Result<(), VerifyError> {
        let secret = WebhookSecret::parse(v.secret).unwrap();
        verify(
            &[&secret],
            v.id,
            &v.timestamp.to_string(),
            header,
            v.body.as_bytes(),
            now,
            DEFAULT_TOLERANCE_SECONDS,
        )
    }

    #[test]
    fn published_vectors_sign() {
        for v in &VECTORS {
            let secret = WebhookSecret::parse(v.secret).unwrap();
            assert_eq!(
                sign(v.id, v.timestamp, v.body.as_bytes(), &[&secret]),
                v.signature
            );
        }
    }

    #[test]
    fn published_vectors_verify() {
        for v in &VECTORS {
            check(v, v.signature, v.timestamp).unwrap();
        }
    }

    #[test]
    fn secret_without_prefix_is_the_same_key() {
        let with = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let without = WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(with, without);
        assert_eq!(with.as_bytes().len(), 24);
        assert_eq!(with.to_whsec(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    }

    #[test]
    fn malformed_secrets_are_rejected() {
        let err = WebhookSecret::parse("whsec_not base64!").unwrap_err();
        assert!(err.contains("malformed"), "{err}");
        assert!(
            !err.contains("not base64!"),
            "error must not echo the secret: {err}"
        );
        assert!(WebhookSecret::parse("whsec_").is_err());
        assert!(WebhookSecret::from_bytes(Vec::new()).is_err());
    }

    #[test]
    fn debug_is_redacted() {
        let secret = WebhookSecret::parse(VECTORS[0].secret).unwrap();
        let dbg = format!("{secret:?}");
        assert!(!dbg.contains("MfKQ"), "{dbg}");
        assert!(dbg.contains("redacted"));
    }

    #[test]
    fn generated_secrets_are_random_and_roundtrip() {
        let a = WebhookSecret::generate();
        let b = WebhookSecret::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_bytes().len(), WebhookSecret::GENERATED_LEN);
        assert!(a.to_whsec().starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(&a.to_whsec()).unwrap(), a);
    }

    #[test]
    fn multi_signature_header_with_one_valid_entry() {
        let v = &VECTORS[1];
        let header = format!(
            "{} {} {} {}",
            FOREIGN_SIGS[0], FOREIGN_SIGS[1], v.signature, FOREIGN_SIGS[2]
        );
        check(v, &header, v.timestamp).unwrap();
    }

    #[test]
    fn multi_signature_header_without_valid_entry() {
        let v = &VECTORS[1];
        let header = FOREIGN_SIGS.join(" ");
        assert!(matches!(
            check(v, &header, v.timestamp),
            Err(VerifyError::BadSignature)
        ));
    }

    #[test]
    fn other_versions_are_ignored() {
        let v = &VECTORS[0];
        // Same bytes under a `v2` label must not count as a `v1` signature.
        let relabelled = v.signature.replacen("v1,", "v2,", 1);
        assert!(matches!(
            check(v, &relabelled, v.timestamp),
            Err(VerifyError::Malformed(_))
        ));
        let header = format!("v1a,AAAA {relabelled} {}", v.signature);
        check(v, &header, v.timestamp).unwrap();
    }

    #[test]
    fn partial_or_garbage_signatures_fail() {
        let v = &VECTORS[0];
        for header in ["v1,", "v1,dawfeoifkpqwoekfpqoekf", &v.signature[..8], ""] {
            assert!(
                check(v, header, v.timestamp).is_err(),
                "{header:?} accepted"
            );
        }
    }

    #[test]
    fn timestamp_window_both_directions() {
        let v = &VECTORS[0];
        let tol = DEFAULT_TOLERANCE_SECONDS as i64;
        check(v, v.signature, v.timestamp + tol).unwrap();
        check(v, v.signature, v.timestamp - tol).unwrap();
        assert!(matches!(
            check(v, v.signature, v.timestamp + tol + 1),
            Err(VerifyError::StaleTimestamp { .. })
        ));
        assert!(matches!(
            check(v, v.signature, v.timestamp - tol - 1),
            Err(VerifyError::FutureTimestamp { .. })
        ));
    }

    #[test]
    fn tampering_fails() {
        let v = &VECTORS[0];
        let secret = WebhookSecret::parse(v.secret).unwrap();
        let ts = v.timestamp.to_string();
        let run = |id: &str, ts: &str, body: &[u8]| {
            verify(&[&secret], id, ts, v.signature, body, v.timestamp, 300)
        };
        assert!(run(v.id, &ts, b"{\"test\": 2432232315}").is_err());
        assert!(run("msg_other", &ts, v.body.as_bytes()).is_err());
        assert!(run(v.id, "1614265331", v.body.as_bytes()).is_err());
        assert!(matches!(
            run(v.id, "hello", v.body.as_bytes()),
            Err(VerifyError::Malformed(_))
        ));
    }

    #[test]
    fn headers_are_complete() {
        let secret = WebhookSecret::parse(VECTORS[0].secret).unwrap();
        let h = headers("msg_1", 1700000000, b"{}", &[&secret]);
        assert_eq!(h[0], (HEADER_ID, "msg_1".to_owned()));
        assert_eq!(h[1], (HEADER_TIMESTAMP, "1700000000".to_owned()));
        assert_eq!(h[2].0, HEADER_SIGNATURE);
        verify(
            &[&secret],
            &h[0].1,
            &h[1].1,
            &h[2].1,
            b"{}",
            1700000000,
            300,
        )
        .unwrap();
    }

    #[test]
    fn rotation_signs_with_current_and_unexpired_previous() {
        let old = WebhookSecret::generate();
        let new = WebhookSecret::generate();
        let mut set = SecretSet::new(old.clone());
        set.rotate(new.clone(), 1000, 3600);

        // Within the grace period both secrets sign, current first.
        let active = set.active(1000 + 3599);
        assert_eq!(active, vec![&new, &old]);
        let h = set.headers("msg_rot", 2000, b"body");
        assert_eq!(h[2].1.split(' ').count(), 2);
        // A receiver that still only knows the old secret verifies...
        verify(&[&old], "msg_rot", "2000", &h[2].1, b"body", 2000, 300).unwrap();
        // ...and so does one that already switched.
        verify(&[&new], "msg_rot", "2000", &h[2].1, b"body", 2000, 300).unwrap();

        // After the grace period only the new secret signs.
        assert_eq!(set.active(1000 + 3600), vec![&new]);
        let h = set.headers("msg_rot", 4600, b"body");
        assert_eq!(h[2].1.split(' ').count(), 1);
        assert!(verify(&[&old], "msg_rot", "4600", &h[2].1, b"body", 4600, 300).is_err());

        set.prune(4600);
        assert!(set.previous.is_empty());
    }
}

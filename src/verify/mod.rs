//! Inbound webhook verification.
//!
//! A source's `verification` table in `gateway.toml` deserializes into
//! [`VerificationConfig`]; [`VerificationConfig::build`] resolves its secrets
//! (`env:NAME` allowed everywhere a secret goes) into a ready [`Verifier`],
//! and [`Verifier::verify`] checks one [`InboundRequest`].
//!
//! ```toml
//! verification = { type = "stripe", webhook_secret_key = "env:STRIPE_WEBHOOK_SECRET" }
//! verification = { type = "STRIPE", configs = { webhook_secret_key = "env:STRIPE_WEBHOOK_SECRET" } }
//! verification = { type = "hmac", header_key = "x-signature", webhook_secret_key = "env:MY_SECRET", algorithm = "sha256", encoding = "hex" }
//! ```
//!
//! Provider families live in one file each:
//! * `body_hmac` — HMAC of the raw body: generic `hmac`, `github`, `shopify`;
//! * `timestamped` — HMAC over timestamp + body with a replay window: `stripe`, `slack`;
//! * `twilio` — HMAC-SHA1 over URL + form parameters (or `bodySHA256`);
//! * `standard_webhooks` — `svix` / `standard_webhooks`;
//! * `credentials` — static secrets: `basic_auth`, `api_key`, `gitlab`, `postmark`, `sendgrid`.
//!
//! Hookdeck's spelling (`{type, configs}`, type in any case) reads the same
//! (see `hookdeck_shape`); GitLab's token is Hookdeck's `configs.api_key`.
//!
//! Every secret or signature comparison is constant time (`subtle`), and no
//! error message contains secret material.

mod body_hmac;
mod credentials;
mod standard_webhooks;
mod timestamped;
mod twilio;

#[cfg(test)]
mod fixture_tests;

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::hookdeck_shape::{self, Expected, Rename};
use crate::model::Payload;
use crate::secret::resolve_required;
pub use crate::signing::mac::{HmacAlgorithm, SignatureEncoding};

/// `true` on a request its source's verification passed, as Hookdeck adds it.
pub const VERIFIED_HEADER: &str = "x-hookdeck-verified";

/// Replay window used when a config does not set `tolerance_seconds`
/// (Stripe's, Slack's and Standard Webhooks' documented default).
pub const DEFAULT_TOLERANCE_SECONDS: u64 = 300;

/// The parts of an HTTP request verification needs.
#[derive(Debug, Clone, Copy)]
pub struct InboundRequest<'a> {
    pub method: &'a str,
    /// Full public URL including the query string, exactly as the provider
    /// called it (Twilio signs it).
    pub url: &'a str,
    /// Header names lower-cased (lookups are case-insensitive regardless).
    pub headers: &'a [(String, String)],
    /// Raw body bytes, before any parsing.
    pub body: &'a [u8],
}

impl<'a> InboundRequest<'a> {
    /// First value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Like [`InboundRequest::header`] but a missing header is an error.
    fn require_header(&self, name: &str) -> Result<&'a str, VerifyError> {
        self.header(name)
            .ok_or_else(|| VerifyError::MissingHeader(name.to_owned()))
    }
}

/// Why a request was rejected. Messages are safe to log and to return to
/// the caller: they never contain secrets or expected signatures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing required header `{0}`")]
    MissingHeader(String),
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("signature does not match")]
    BadSignature,
    /// A static credential (password, API key, token) did not match.
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error(
        "timestamp {timestamp} is more than {tolerance_seconds}s old (now {now}); possible replay"
    )]
    StaleTimestamp {
        timestamp: i64,
        now: i64,
        tolerance_seconds: u64,
    },
    #[error("timestamp {timestamp} is more than {tolerance_seconds}s in the future (now {now})")]
    FutureTimestamp {
        timestamp: i64,
        now: i64,
        tolerance_seconds: u64,
    },
}

fn default_tolerance() -> u64 {
    DEFAULT_TOLERANCE_SECONDS
}

/// Answers leave out a default tolerance: Hookdeck's configs have none.
fn is_default_tolerance(seconds: &u64) -> bool {
    *seconds == DEFAULT_TOLERANCE_SECONDS
}

/// `verification = { type = "…", … }` on a source, as written in the config
/// (either spelling: see the module documentation). Secret fields may be
/// literal or `env:NAME`; nothing is resolved until
/// [`VerificationConfig::build`].
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(
    remote = "Self",
    tag = "type",
    rename_all = "snake_case",
    deny_unknown_fields
)]
pub enum VerificationConfig {
    /// Generic HMAC of the raw body in `header_key`; the value may carry a
    /// `sha256=`-style prefix.
    Hmac {
        header_key: String,
        webhook_secret_key: String,
        #[serde(default)]
        algorithm: HmacAlgorithm,
        #[serde(default)]
        encoding: SignatureEncoding,
    },
    /// `Authorization: Basic …` with these credentials.
    BasicAuth { username: String, password: String },
    /// Header `header_key` must equal `api_key`.
    ApiKey { header_key: String, api_key: String },
    /// `Stripe-Signature: t=…,v1=…`.
    Stripe {
        webhook_secret_key: String,
        #[serde(
            default = "default_tolerance",
            skip_serializing_if = "is_default_tolerance"
        )]
        tolerance_seconds: u64,
    },
    /// `X-Hub-Signature-256: sha256=<hex>`.
    Github { webhook_secret_key: String },
    /// `X-Shopify-Hmac-Sha256: <base64>`.
    Shopify { webhook_secret_key: String },
    /// `X-Slack-Signature: v0=<hex>` + `X-Slack-Request-Timestamp`.
    Slack {
        webhook_secret_key: String,
        #[serde(
            default = "default_tolerance",
            skip_serializing_if = "is_default_tolerance"
        )]
        tolerance_seconds: u64,
    },
    /// `X-Twilio-Signature`; the secret is the account auth token.
    Twilio { webhook_secret_key: String },
    /// Svix (`svix-*` or `webhook-*` headers); `whsec_…` secret.
    Svix {
        webhook_secret_key: String,
        #[serde(
            default = "default_tolerance",
            skip_serializing_if = "is_default_tolerance"
        )]
        tolerance_seconds: u64,
    },
    /// Standard Webhooks (`webhook-*` or `svix-*` headers); `whsec_…` secret.
    StandardWebhooks {
        webhook_secret_key: String,
        #[serde(
            default = "default_tolerance",
            skip_serializing_if = "is_default_tolerance"
        )]
        tolerance_seconds: u64,
    },
    /// `X-Gitlab-Token` must equal the secret token.
    Gitlab { webhook_secret_key: String },
    /// Postmark does not sign webhooks; it sends basic-auth credentials
    /// embedded in the webhook URL.
    Postmark { username: String, password: String },
    /// SendGrid Inbound Parse / Event Webhook with basic-auth credentials in
    /// the URL. (The ECDSA "Signed Event Webhook" is not supported.)
    Sendgrid { username: String, password: String },
}

/// The settings Hookdeck names differently from hookgate.
const HOOKDECK_NAMES: &[Rename] = &[Rename {
    type_name: "gitlab",
    hookdeck: "api_key",
    hookgate: "webhook_secret_key",
}];

/// The settings that are not text.
const SETTING_KINDS: &[(&str, Expected)] = &[
    ("tolerance_seconds", Expected::Count),
    ("algorithm", Expected::OneOf(&["sha1", "sha256", "sha512"])),
    ("encoding", Expected::OneOf(&["hex", "base64"])),
];

impl<'de> Deserialize<'de> for VerificationConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let written = Value::deserialize(deserializer)?;
        let flat =
            hookdeck_shape::flat(written, "configs", HOOKDECK_NAMES).map_err(D::Error::custom)?;
        hookdeck_shape::check_kinds(&flat, SETTING_KINDS).map_err(D::Error::custom)?;
        // The derived reading (`remote = "Self"`) of the flat shape.
        VerificationConfig::deserialize(flat).map_err(D::Error::custom)
    }
}

/// A verification config with secrets resolved, ready to check requests.
/// `Debug` shows only the kind, never secrets.
pub struct Verifier {
    name: &'static str,
    kind: Kind,
    /// `{type, configs}` as answers show it, secrets masked.
    shown: Value,
}

enum Kind {
    BodyHmac(body_hmac::BodyHmac),
    Credential(credentials::Credential),
    Stripe(timestamped::Stripe),
    Slack(timestamped::Slack),
    Twilio(twilio::Twilio),
    StandardWebhooks(standard_webhooks::StandardWebhooks),
}

fn webhook_secret(value: &str) -> Result<String, String> {
    resolve_required("webhook_secret_key", value)
}

impl VerificationConfig {
    /// The config's `type`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Hmac { .. } => "hmac",
            Self::BasicAuth { .. } => "basic_auth",
            Self::ApiKey { .. } => "api_key",
            Self::Stripe { .. } => "stripe",
            Self::Github { .. } => "github",
            Self::Shopify { .. } => "shopify",
            Self::Slack { .. } => "slack",
            Self::Twilio { .. } => "twilio",
            Self::Svix { .. } => "svix",
            Self::StandardWebhooks { .. } => "standard_webhooks",
            Self::Gitlab { .. } => "gitlab",
            Self::Postmark { .. } => "postmark",
            Self::Sendgrid { .. } => "sendgrid",
        }
    }

    /// Resolves `env:` secrets and validates the config. Errors name the
    /// offending field (and environment variable) but never a secret.
    pub fn build(&self) -> Result<Verifier, String> {
        let kind = match self {
            Self::Hmac {
                header_key,
                webhook_secret_key,
                algorithm,
                encoding,
            } => Kind::BodyHmac(body_hmac::BodyHmac::generic(
                header_key,
                webhook_secret(webhook_secret_key)?,
                *algorithm,
                *encoding,
            )?),
            Self::Github { webhook_secret_key } => Kind::BodyHmac(body_hmac::BodyHmac::github(
                webhook_secret(webhook_secret_key)?,
            )),
            Self::Shopify { webhook_secret_key } => Kind::BodyHmac(body_hmac::BodyHmac::shopify(
                webhook_secret(webhook_secret_key)?,
            )),
            Self::BasicAuth { username, password }
            | Self::Postmark { username, password }
            | Self::Sendgrid { username, password } => {
                Kind::Credential(credentials::Credential::basic_auth(username, password)?)
            }
            Self::ApiKey {
                header_key,
                api_key,
            } => Kind::Credential(credentials::Credential::header(
                header_key,
                &resolve_required("api_key", api_key)?,
            )?),
            Self::Gitlab { webhook_secret_key } => {
                Kind::Credential(credentials::Credential::header(
                    credentials::GITLAB_TOKEN_HEADER,
                    &webhook_secret(webhook_secret_key)?,
                )?)
            }
            Self::Stripe {
                webhook_secret_key,
                tolerance_seconds,
            } => Kind::Stripe(timestamped::Stripe::new(
                webhook_secret(webhook_secret_key)?,
                *tolerance_seconds,
            )),
            Self::Slack {
                webhook_secret_key,
                tolerance_seconds,
            } => Kind::Slack(timestamped::Slack::new(
                webhook_secret(webhook_secret_key)?,
                *tolerance_seconds,
            )),
            Self::Twilio { webhook_secret_key } => {
                Kind::Twilio(twilio::Twilio::new(webhook_secret(webhook_secret_key)?))
            }
            Self::Svix {
                webhook_secret_key,
                tolerance_seconds,
            }
            | Self::StandardWebhooks {
                webhook_secret_key,
                tolerance_seconds,
            } => Kind::StandardWebhooks(standard_webhooks::StandardWebhooks::new(
                &webhook_secret(webhook_secret_key)?,
                *tolerance_seconds,
            )?),
        };
        Ok(Verifier {
            name: self.name(),
            kind,
            shown: self.shown(),
        })
    }

    /// Hookdeck's `{type, configs}` of this config, secrets masked.
    fn shown(&self) -> Value {
        let flat =
            VerificationConfig::serialize(self, serde_json::value::Serializer).unwrap_or_default();
        let hookdeck_type = self.name().to_ascii_uppercase();
        hookdeck_shape::nested(flat, &hookdeck_type, "configs", HOOKDECK_NAMES)
    }
}

impl Verifier {
    /// The `type` of the config this verifier was built from.
    pub fn kind(&self) -> &'static str {
        self.name
    }

    /// Hookdeck's name of the type (`STRIPE`).
    pub fn hookdeck_type(&self) -> &str {
        self.shown["type"].as_str().unwrap_or_default()
    }

    /// The settings as answers show them (`include=verification.configs`):
    /// Hookdeck's names, secrets masked.
    pub fn shown_configs(&self) -> &Value {
        &self.shown["configs"]
    }

    /// The header that carries the source's own credential (`basic_auth`,
    /// `api_key`, GitLab's token), if it has one. It proves who sent the
    /// request to hookgate and is for hookgate alone: it is neither kept,
    /// forwarded to destinations nor shown by the API. (Signatures are kept:
    /// they prove nothing without the secret, and receivers may check them.)
    pub fn credential_header(&self) -> Option<&str> {
        match &self.kind {
            Kind::Credential(credential) => Some(credential.header_name()),
            _ => None,
        }
    }

    /// The static credential's header and value as a provider holding it
    /// sends them: what `hookgate test` replays in place of the one the
    /// ingress removed before storing the request.
    pub fn credential(&self) -> Option<(String, String)> {
        match &self.kind {
            Kind::Credential(credential) => Some(credential.presented()),
            _ => None,
        }
    }

    /// The header carrying the proof, when the config names it (`hmac`,
    /// `api_key`, GitHub, Shopify, GitLab); records of rejected requests
    /// leave its value out. (Other providers' fixed headers are named like
    /// signatures or `authorization`: see `ingress::rejection_record`.)
    pub fn proof_header(&self) -> Option<&str> {
        match &self.kind {
            Kind::BodyHmac(v) => Some(v.header()),
            Kind::Credential(v) => Some(v.header_name()),
            _ => None,
        }
    }

    /// Checks one request. `now` is passed in (rather than read from the
    /// clock) so replay windows are testable.
    pub fn verify(&self, req: &InboundRequest, now: SystemTime) -> Result<(), VerifyError> {
        let now = unix_seconds(now);
        match &self.kind {
            Kind::BodyHmac(v) => v.verify(req),
            Kind::Credential(v) => v.verify(req),
            Kind::Stripe(v) => v.verify(req, now),
            Kind::Slack(v) => v.verify(req, now),
            Kind::Twilio(v) => v.verify(req),
            Kind::StandardWebhooks(v) => v.verify(req, now),
        }
    }

    /// The ingress's verification of a received payload, also replayed by
    /// `hookgate test`: checks it at `now` against the `url` the provider
    /// called, removes the source's own credential header (never journaled,
    /// forwarded or shown, verified or not) and marks a verified payload
    /// with `x-hookdeck-verified: true`, as Hookdeck does.
    pub fn admit(
        &self,
        payload: &mut Payload,
        url: &str,
        now: SystemTime,
    ) -> Result<(), VerifyError> {
        let inbound = InboundRequest {
            method: &payload.method,
            url,
            headers: &payload.headers,
            body: &payload.body,
        };
        let verified = self.verify(&inbound, now);
        if let Some(credential) = self.credential_header() {
            payload
                .headers
                .retain(|(name, _)| !name.eq_ignore_ascii_case(credential));
        }
        verified?;
        let flag = (VERIFIED_HEADER.to_string(), "true".to_string());
        payload.headers.push(flag);
        Ok(())
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("kind", &self.name)
            .finish_non_exhaustive()
    }
}

/// Seconds since the unix epoch (negative before it).
pub(crate) fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Parses a unix-seconds timestamp taken from `what` (a header or field name).
pub(crate) fn parse_unix_timestamp(what: &str, value: &str) -> Result<i64, VerifyError> {
    let value = value.trim();
    // `i64::from_str` would also accept a leading `+`; providers send digits only.
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::Malformed(format!(
            "{what} is not a unix timestamp in seconds"
        )));
    }
    value
        .parse()
        .map_err(|_| VerifyError::Malformed(format!("{what} is out of range")))
}

/// Rejects timestamps more than `tolerance_seconds` away from `now` in
/// either direction: too old is a likely replay, too far ahead means the
/// sender's clock (or the attacker) is not to be trusted.
pub(crate) fn check_timestamp_window(
    timestamp: i64,
    now: i64,
    tolerance_seconds: u64,
) -> Result<(), VerifyError> {
    let tolerance = i64::try_from(tolerance_seconds).unwrap_or(i64::MAX);
    let age = now.saturating_sub(timestamp);
    if age > tolerance {
        Err(VerifyError::StaleTimestamp {
            timestamp,
            now,
            tolerance_seconds,
        })
    } else if age < -tolerance {
        Err(VerifyError::FutureTimestamp {
            timestamp,
            now,
            tolerance_seconds,
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[derive(Deserialize)]
    struct Source {
        verification: VerificationConfig,
    }

    fn parse(toml_src: &str) -> Result<VerificationConfig, toml::de::Error> {
        toml::from_str::<Source>(toml_src).map(|s| s.verification)
    }

    #[test]
    fn parses_every_type_from_toml() {
        let cases = [
            r#"verification = { type = "hmac", header_key = "x-signature", webhook_secret_key = "s", algorithm = "sha512", encoding = "base64" }"#,
            r#"verification = { type = "basic_auth", username = "u", password = "p" }"#,
            r#"verification = { type = "api_key", header_key = "x-api-key", api_key = "k" }"#,
            r#"verification = { type = "stripe", webhook_secret_key = "whsec_x", tolerance_seconds = 60 }"#,
            r#"verification = { type = "github", webhook_secret_key = "s" }"#,
            r#"verification = { type = "shopify", webhook_secret_key = "s" }"#,
            r#"verification = { type = "slack", webhook_secret_key = "s" }"#,
            r#"verification = { type = "twilio", webhook_secret_key = "s" }"#,
            r#"verification = { type = "svix", webhook_secret_key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }"#,
            r#"verification = { type = "standard_webhooks", webhook_secret_key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }"#,
            r#"verification = { type = "gitlab", webhook_secret_key = "t" }"#,
            r#"verification = { type = "postmark", username = "u", password = "p" }"#,
            r#"verification = { type = "sendgrid", username = "u", password = "p" }"#,
        ];
        for src in cases {
            let cfg = parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            let verifier = cfg.build().unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(verifier.kind(), cfg.name());
        }
    }

    #[test]
    fn defaults_apply() {
        let cfg = parse(r#"verification = { type = "stripe", webhook_secret_key = "s" }"#).unwrap();
        assert!(matches!(
            cfg,
            VerificationConfig::Stripe {
                tolerance_seconds: 300,
                ..
            }
        ));
        let cfg = parse(
            r#"verification = { type = "hmac", header_key = "x-sig", webhook_secret_key = "s" }"#,
        )
        .unwrap();
        assert!(matches!(
            cfg,
            VerificationConfig::Hmac {
                algorithm: HmacAlgorithm::Sha256,
                encoding: SignatureEncoding::Hex,
                ..
            }
        ));
    }

    #[test]
    fn rejects_unknown_fields_types_and_values() {
        for src in [
            r#"verification = { type = "github", webhook_secret_key = "s", extra = 1 }"#,
            r#"verification = { type = "stripe", secret = "s" }"#,
            r#"verification = { type = "carrier_pigeon" }"#,
            r#"verification = { type = "hmac", header_key = "x", webhook_secret_key = "s", algorithm = "md5" }"#,
            r#"verification = { type = "hmac", header_key = "x", webhook_secret_key = "s", encoding = "base32" }"#,
            r#"verification = { webhook_secret_key = "s" }"#,
        ] {
            assert!(parse(src).is_err(), "accepted: {src}");
        }
    }

    #[test]
    fn build_reports_missing_env_var_by_name() {
        let cfg = parse(
            r#"verification = { type = "github", webhook_secret_key = "env:HOOKGATE_VERIFY_TEST_UNSET_VAR" }"#,
        )
        .unwrap();
        let err = cfg.build().unwrap_err();
        assert!(err.contains("webhook_secret_key"), "{err}");
        assert!(err.contains("HOOKGATE_VERIFY_TEST_UNSET_VAR"), "{err}");
    }

    #[test]
    fn build_resolves_env_secrets() {
        std::env::set_var("HOOKGATE_VERIFY_TEST_GITLAB", "tok-from-env");
        let cfg = parse(r#"verification = { type = "gitlab", webhook_secret_key = "env:HOOKGATE_VERIFY_TEST_GITLAB" }"#)
            .unwrap();
        let verifier = cfg.build().unwrap();
        let headers = vec![("x-gitlab-token".to_owned(), "tok-from-env".to_owned())];
        let req = InboundRequest {
            method: "POST",
            url: "https://hooks.example.com/gitlab",
            headers: &headers,
            body: b"{}",
        };
        verifier.verify(&req, SystemTime::now()).unwrap();
    }

    #[test]
    fn build_rejects_empty_and_malformed_secrets() {
        let err = parse(r#"verification = { type = "stripe", webhook_secret_key = "" }"#)
            .unwrap()
            .build()
            .unwrap_err();
        assert!(err.contains("empty"), "{err}");
        let err =
            parse(r#"verification = { type = "svix", webhook_secret_key = "whsec_%%%notbase64" }"#)
                .unwrap()
                .build()
                .unwrap_err();
        assert!(err.contains("whsec_"), "{err}");
        assert!(!err.contains("%%%notbase64"), "{err}");
    }

    #[test]
    fn verifier_debug_hides_secrets() {
        let v =
            parse(r#"verification = { type = "github", webhook_secret_key = "supersecretvalue" }"#)
                .unwrap()
                .build()
                .unwrap();
        let dbg = format!("{v:?}");
        assert!(
            dbg.contains("github") && !dbg.contains("supersecretvalue"),
            "{dbg}"
        );
    }

    #[test]
    fn header_lookup_is_case_insensitive_and_first_wins() {
        let headers = vec![
            ("X-Thing".to_owned(), "one".to_owned()),
            ("x-thing".to_owned(), "two".to_owned()),
        ];
        let req = InboundRequest {
            method: "POST",
            url: "https://x",
            headers: &headers,
            body: b"",
        };
        assert_eq!(req.header("x-thing"), Some("one"));
        assert_eq!(req.header("X-THING"), Some("one"));
        assert_eq!(req.header("absent"), None);
    }

    #[test]
    fn timestamp_parsing() {
        assert_eq!(
            parse_unix_timestamp("t", " 1714564800 ").unwrap(),
            1714564800
        );
        for bad in ["", "+1", "-1", "1.5", "abc", "99999999999999999999999"] {
            assert!(parse_unix_timestamp("t", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timestamp_window_edges() {
        assert!(check_timestamp_window(1000, 1300, 300).is_ok());
        assert!(check_timestamp_window(1000, 700, 300).is_ok());
        assert!(matches!(
            check_timestamp_window(1000, 1301, 300),
            Err(VerifyError::StaleTimestamp { .. })
        ));
        assert!(matches!(
            check_timestamp_window(1000, 699, 300),
            Err(VerifyError::FutureTimestamp { .. })
        ));
        // No overflow at the extremes.
        assert!(check_timestamp_window(i64::MIN, i64::MAX, u64::MAX).is_ok());
        assert!(check_timestamp_window(i64::MAX, i64::MIN, 0).is_err());
    }

    #[test]
    fn unix_seconds_conversion() {
        assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_secs(42)), 42);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(42)), -42);
    }

    #[test]
    fn error_messages_are_clear() {
        assert_eq!(
            VerifyError::MissingHeader("stripe-signature".into()).to_string(),
            "missing required header `stripe-signature`"
        );
        let stale = VerifyError::StaleTimestamp {
            timestamp: 1,
            now: 400,
            tolerance_seconds: 300,
        };
        assert!(stale.to_string().contains("more than 300s old"));
    }
}

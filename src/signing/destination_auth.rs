//! How hookgate authenticates itself when forwarding to a destination:
//! `auth_method = { type = "…", … }` on a destination (default
//! `hookgate_signature`).
//!
//! | type                 | what is added to the outbound request |
//! |----------------------|---------------------------------------|
//! | `hookgate_signature` | `x-hookdeck-signature: base64(HMAC-SHA256(workspace secret, body))` (and `x-hookdeck-signature-2` with the previous secret during a rotation's overlap, see `workspace_secret`), `x-hookgate-timestamp: <unix seconds>` and `x-hookgate-signature: base64(HMAC-SHA256(workspace secret, "{timestamp}.{body}"))` |
//! | `custom_signature`   | header `key`: `hex(HMAC-SHA256(signing_secret, body))` (body only, no timestamp) |
//! | `basic_auth`         | `authorization: Basic base64("{username}:{password}")` |
//! | `bearer_token`       | `authorization: Bearer {token}` |
//! | `api_key`            | header `key: {api_key}` (`to = "header"`, default) or query parameter `key={api_key}` (`to = "query"`) |
//!
//! Hookdeck's spelling reads the same (see `hookdeck_shape`):
//! `{type = "BEARER_TOKEN", config = { token = "…" }}`, the type in any case,
//! `HOOKDECK_SIGNATURE` for `hookgate_signature`.
//!
//! Secret fields accept `env:NAME`. Headers set here replace any header of
//! the same name already present (e.g. copied from the inbound request), so
//! a source cannot smuggle its own signature through.
//!
//! ### Verifying `hookgate_signature` on the receiving side
//! 1. Read `x-hookgate-timestamp` (`T`) and `x-hookgate-signature` (`S`).
//! 2. Reject if `|now - T| > 300` seconds (replay protection: `T` is signed,
//!    so it cannot be refreshed without the secret).
//! 3. Compute `base64(HMAC-SHA256(secret, T + "." + raw_body))` — the
//!    secret's UTF-8 bytes are the key, the body is the exact bytes received.
//! 4. Compare with `S` in constant time.
//!
//! [`verify_hookgate_signature`] implements steps 3–4.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::hookdeck_shape::{self, Expected};
use crate::secret::resolve_required;
use crate::signing::mac::{encoded_mac_matches, hmac_sha256, SignatureEncoding};
use crate::signing::standard_webhooks::{self, SecretSet};
use crate::signing::workspace_secret::SigningKeys;

pub const HOOKGATE_SIGNATURE_HEADER: &str = "x-hookgate-signature";
pub const HOOKGATE_TIMESTAMP_HEADER: &str = "x-hookgate-timestamp";
/// Hookdeck's signature: what a receiver written for Hookdeck checks.
pub const HOOKDECK_SIGNATURE_HEADER: &str = "x-hookdeck-signature";
/// The same with the previous secret, while a rotation's overlap lasts.
pub const HOOKDECK_PREVIOUS_SIGNATURE_HEADER: &str = "x-hookdeck-signature-2";
const AUTHORIZATION: &str = "authorization";

/// Where an `api_key` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyLocation {
    #[default]
    Header,
    Query,
}

/// `auth_method` as written in the config (either spelling; secrets unresolved).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(
    remote = "Self",
    tag = "type",
    rename_all = "snake_case",
    deny_unknown_fields
)]
pub enum AuthMethodConfig {
    /// Sign with the workspace signing secret (see module docs).
    #[default]
    #[serde(alias = "hookdeck_signature")]
    HookgateSignature,
    /// Header `key` = hex HMAC-SHA256 of the body with `signing_secret`.
    CustomSignature {
        key: String,
        signing_secret: String,
    },
    BasicAuth {
        username: String,
        password: String,
    },
    BearerToken {
        token: String,
    },
    ApiKey {
        key: String,
        api_key: String,
        #[serde(default)]
        to: ApiKeyLocation,
    },
}

impl<'de> Deserialize<'de> for AuthMethodConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let written = Value::deserialize(deserializer)?;
        let flat = hookdeck_shape::flat(written, "config", &[]).map_err(D::Error::custom)?;
        let kinds = [("to", Expected::OneOf(&["header", "query"]))];
        hookdeck_shape::check_kinds(&flat, &kinds).map_err(D::Error::custom)?;
        // The derived reading (`remote = "Self"`) of the flat shape.
        AuthMethodConfig::deserialize(flat).map_err(D::Error::custom)
    }
}

/// A resolved auth method, ready to apply to outbound requests.
/// `Debug` is redacted.
pub struct DestinationAuth {
    method: Method,
    /// `{type, config}` as answers show it, secrets masked.
    shown: Value,
}

enum Method {
    /// Signed at sending time with the workspace secret's keys then.
    HookgateSignature,
    CustomSignature {
        header: String,
        secret: Vec<u8>,
    },
    /// A fixed header (`authorization` for basic/bearer, or an API key).
    StaticHeader {
        name: String,
        value: String,
    },
    QueryParam {
        name: String,
        value: String,
    },
    /// Outbound endpoints: Standard Webhooks headers over the `webhook-id` the
    /// message carries, signed with every secret active at sending time.
    StandardWebhooks {
        secrets: SecretSet,
    },
}

impl AuthMethodConfig {
    /// Resolves `env:` secrets (`hookgate_signature` signs with the
    /// workspace secret each attempt is given).
    pub fn build(&self) -> Result<DestinationAuth, String> {
        let method = match self {
            Self::HookgateSignature => Method::HookgateSignature,
            Self::CustomSignature {
                key,
                signing_secret,
            } => Method::CustomSignature {
                header: header_name("key", key)?,
                secret: resolve_required("signing_secret", signing_secret)?.into_bytes(),
            },
            Self::BasicAuth { username, password } => {
                let username = resolve_required("username", username)?;
                let password = resolve_required("password", password)?;
                if username.contains(':') {
                    return Err("username: must not contain ':'".into());
                }
                let encoded = BASE64.encode(format!("{username}:{password}"));
                Method::StaticHeader {
                    name: AUTHORIZATION.into(),
                    value: format!("Basic {encoded}"),
                }
            }
            Self::BearerToken { token } => Method::StaticHeader {
                name: AUTHORIZATION.into(),
                value: format!("Bearer {}", resolve_required("token", token)?),
            },
            Self::ApiKey { key, api_key, to } => {
                let value = resolve_required("api_key", api_key)?;
                match to {
                    ApiKeyLocation::Header => Method::StaticHeader {
                        name: header_name("key", key)?,
                        value,
                    },
                    ApiKeyLocation::Query => {
                        if key.is_empty() {
                            return Err("key: must not be empty".into());
                        }
                        Method::QueryParam {
                            name: key.clone(),
                            value,
                        }
                    }
                }
            }
        };
        Ok(DestinationAuth {
            method,
            shown: self.shown(),
        })
    }

    /// Hookdeck's `{type, config}` of this method, secrets masked.
    fn shown(&self) -> Value {
        let flat =
            AuthMethodConfig::serialize(self, serde_json::value::Serializer).unwrap_or_default();
        let hookdeck_type = match flat["type"].as_str() {
            Some("hookgate_signature") => "HOOKDECK_SIGNATURE".to_string(),
            other => other.unwrap_or_default().to_ascii_uppercase(),
        };
        hookdeck_shape::nested(flat, &hookdeck_type, "config", &[])
    }
}

/// Lower-cased, validated header name (HTTP/2 requires lower case).
fn header_name(field: &str, name: &str) -> Result<String, String> {
    let name = name.trim().to_ascii_lowercase();
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if valid {
        Ok(name)
    } else {
        Err(format!("{field}: `{name}` is not a valid header name"))
    }
}

impl DestinationAuth {
    /// Signs deliveries the Standard Webhooks way (outbound endpoints).
    pub fn standard_webhooks(secrets: SecretSet) -> DestinationAuth {
        DestinationAuth {
            method: Method::StandardWebhooks { secrets },
            shown: Value::Null,
        }
    }

    /// Adds this method's credentials to an outbound request.
    /// `now_unix_secs` is the signing time for `hookgate_signature`, `keys`
    /// the workspace secrets it signs with.
    pub fn apply(
        &self,
        body: &[u8],
        now_unix_secs: i64,
        keys: &SigningKeys,
        headers: &mut Vec<(String, String)>,
        url: &mut url::Url,
    ) {
        match &self.method {
            Method::HookgateSignature => {
                sign_with_workspace_keys(keys, body, now_unix_secs, headers)
            }
            Method::CustomSignature { header, secret } => {
                let signature = SignatureEncoding::Hex.encode(&hmac_sha256(secret, &[body]));
                set_header(headers, header, signature);
            }
            Method::StaticHeader { name, value } => set_header(headers, name, value.clone()),
            Method::QueryParam { name, value } => set_query_param(url, name, value),
            Method::StandardWebhooks { secrets } => {
                let id = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(standard_webhooks::HEADER_ID))
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                for (name, value) in secrets.headers(&id, now_unix_secs, body) {
                    set_header(headers, name, value);
                }
            }
        }
    }
}

impl DestinationAuth {
    /// `url` as attempts record and show it: a credential in its query
    /// (`api_key` with `to = "query"`) masked, so the store and the API
    /// never hold it.
    pub fn shown_url(&self, url: &url::Url) -> String {
        let mut shown = url.clone();
        if let Method::QueryParam { name, value } = &self.method {
            set_query_param(&mut shown, name, &crate::secret::masked(value));
        }
        shown.into()
    }

    /// Hookdeck's `{type, config}` of the method, secrets masked (null for
    /// outbound endpoints, which show their secrets their own way).
    pub fn shown(&self) -> &Value {
        &self.shown
    }
}

impl fmt::Debug for DestinationAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.method {
            Method::HookgateSignature => "hookgate_signature",
            Method::CustomSignature { .. } => "custom_signature",
            Method::StaticHeader { .. } => "static_header",
            Method::QueryParam { .. } => "query_param",
            Method::StandardWebhooks { .. } => "standard_webhooks",
        };
        f.debug_struct("DestinationAuth")
            .field("method", &kind)
            .finish_non_exhaustive()
    }
}

/// Hookdeck's signature headers, and hookgate's own timestamped one.
fn sign_with_workspace_keys(
    keys: &SigningKeys,
    body: &[u8],
    now_unix_secs: i64,
    headers: &mut Vec<(String, String)>,
) {
    let current = keys.current.as_bytes();
    set_header(
        headers,
        HOOKDECK_SIGNATURE_HEADER,
        hookdeck_signature(current, body),
    );
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case(HOOKDECK_PREVIOUS_SIGNATURE_HEADER));
    if let Some(previous) = &keys.previous {
        let signature = hookdeck_signature(previous.as_bytes(), body);
        set_header(headers, HOOKDECK_PREVIOUS_SIGNATURE_HEADER, signature);
    }
    let timestamp = now_unix_secs.to_string();
    let signature = hookgate_signature(current, &timestamp, body);
    set_header(headers, HOOKGATE_TIMESTAMP_HEADER, timestamp);
    set_header(headers, HOOKGATE_SIGNATURE_HEADER, signature);
}

/// `base64(HMAC-SHA256(secret, body))`, as Hookdeck signs.
fn hookdeck_signature(secret: &[u8], body: &[u8]) -> String {
    SignatureEncoding::Base64.encode(&hmac_sha256(secret, &[body]))
}

/// `base64(HMAC-SHA256(secret, "{timestamp}.{body}"))`.
fn hookgate_signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    SignatureEncoding::Base64.encode(&hmac_sha256(secret, &[timestamp.as_bytes(), b".", body]))
}

/// Receiver-side check of `x-hookgate-signature` (constant time). It does
/// not look at the clock: callers must also reject timestamps more than a
/// few minutes from now (see the module docs).
pub fn verify_hookgate_signature(secret: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let expected = hmac_sha256(
        secret.as_bytes(),
        &[timestamp.trim().as_bytes(), b".", body],
    );
    encoded_mac_matches(&expected, header, SignatureEncoding::Base64)
}

/// Replaces every header named `name` (case-insensitively) with one value.
fn set_header(headers: &mut Vec<(String, String)>, name: &str, value: String) {
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    headers.push((name.to_owned(), value));
}

/// Replaces every query parameter named `name` with one value, keeping the
/// other parameters in order.
fn set_query_param(url: &mut url::Url, name: &str, value: &str) {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair(name, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Destination {
        #[serde(default)]
        auth_method: AuthMethodConfig,
    }

    fn parse(src: &str) -> Result<AuthMethodConfig, toml::de::Error> {
        toml::from_str::<Destination>(src).map(|d| d.auth_method)
    }

    fn apply(cfg: &AuthMethodConfig, body: &[u8]) -> (Vec<(String, String)>, url::Url) {
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        let mut url = url::Url::parse("https://dest.example.com/hook?a=1").unwrap();
        cfg.build().unwrap().apply(
            body,
            1714564800,
            &SigningKeys::single("gateway-secret"),
            &mut headers,
            &mut url,
        );
        (headers, url)
    }

    fn get<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn default_is_hookgate_signature() {
        assert_eq!(parse("").unwrap(), AuthMethodConfig::HookgateSignature);
        assert_eq!(
            parse(r#"auth_method = { type = "hookgate_signature" }"#).unwrap(),
            AuthMethodConfig::HookgateSignature
        );
    }

    #[test]
    fn parses_all_types() {
        assert_eq!(
            parse(r#"auth_method = { type = "api_key", key = "x-api-key", api_key = "k", to = "query" }"#)
                .unwrap(),
            AuthMethodConfig::ApiKey {
                key: "x-api-key".into(),
                api_key: "k".into(),
                to: ApiKeyLocation::Query
            }
        );
        for src in [
            r#"auth_method = { type = "custom_signature", key = "x-sig", signing_secret = "s" }"#,
            r#"auth_method = { type = "basic_auth", username = "u", password = "p" }"#,
            r#"auth_method = { type = "bearer_token", token = "t" }"#,
            r#"auth_method = { type = "api_key", key = "x-api-key", api_key = "k" }"#,
        ] {
            parse(src).unwrap().build().unwrap();
        }
        for bad in [
            r#"auth_method = { type = "bearer_token" }"#,
            r#"auth_method = { type = "bearer_token", token = "t", extra = 1 }"#,
            r#"auth_method = { type = "api_key", key = "k", api_key = "v", to = "body" }"#,
            r#"auth_method = { type = "oauth2" }"#,
        ] {
            assert!(parse(bad).is_err(), "accepted {bad}");
        }
    }

    #[test]
    fn hookgate_signature_signs_timestamp_and_body() {
        let (headers, _) = apply(&AuthMethodConfig::HookgateSignature, b"{\"a\":1}");
        let ts = get(&headers, HOOKGATE_TIMESTAMP_HEADER).unwrap();
        let sig = get(&headers, HOOKGATE_SIGNATURE_HEADER).unwrap();
        assert_eq!(ts, "1714564800");
        // Independent recomputation of exactly what the docs say is signed.
        let expected = BASE64.encode(hmac_sha256(b"gateway-secret", &[b"1714564800.{\"a\":1}"]));
        assert_eq!(sig, expected);
        assert!(verify_hookgate_signature(
            "gateway-secret",
            ts,
            b"{\"a\":1}",
            sig
        ));
        assert!(!verify_hookgate_signature(
            "gateway-secret",
            ts,
            b"{\"a\":2}",
            sig
        ));
        assert!(!verify_hookgate_signature(
            "gateway-secret",
            "1714564801",
            b"{\"a\":1}",
            sig
        ));
        assert!(!verify_hookgate_signature("other", ts, b"{\"a\":1}", sig));
        assert!(!verify_hookgate_signature(
            "gateway-secret",
            ts,
            b"{\"a\":1}",
            "garbage"
        ));
    }

    #[test]
    fn hookgate_signature_replaces_spoofed_headers() {
        let mut headers = vec![
            ("X-Hookgate-Signature".to_owned(), "forged".to_owned()),
            ("x-hookgate-timestamp".to_owned(), "1".to_owned()),
        ];
        let mut url = url::Url::parse("https://d.example").unwrap();
        AuthMethodConfig::HookgateSignature.build().unwrap().apply(
            b"",
            5,
            &SigningKeys::single("s"),
            &mut headers,
            &mut url,
        );
        assert_eq!(headers.len(), 3);
        assert_eq!(get(&headers, HOOKGATE_TIMESTAMP_HEADER), Some("5"));
        assert_ne!(get(&headers, HOOKGATE_SIGNATURE_HEADER), Some("forged"));
    }

    #[test]
    fn hookdeck_signature_is_base64_hmac_of_the_body_with_the_previous_secret_beside() {
        let mut headers = vec![("x-hookdeck-signature-2".to_owned(), "forged".to_owned())];
        let mut url = url::Url::parse("https://d.example").unwrap();
        let auth = AuthMethodConfig::HookgateSignature.build().unwrap();
        auth.apply(
            b"hi",
            5,
            &SigningKeys::single("new"),
            &mut headers,
            &mut url,
        );
        let expected = |secret: &[u8]| BASE64.encode(hmac_sha256(secret, &[b"hi"]));
        assert_eq!(
            get(&headers, HOOKDECK_SIGNATURE_HEADER),
            Some(expected(b"new").as_str())
        );
        assert_eq!(get(&headers, HOOKDECK_PREVIOUS_SIGNATURE_HEADER), None);
        let rotating = SigningKeys {
            current: "new".into(),
            previous: Some("old".into()),
        };
        auth.apply(b"hi", 5, &rotating, &mut headers, &mut url);
        assert_eq!(
            get(&headers, HOOKDECK_PREVIOUS_SIGNATURE_HEADER),
            Some(expected(b"old").as_str())
        );
    }

    #[test]
    fn custom_signature_is_hex_hmac_of_body() {
        let cfg = AuthMethodConfig::CustomSignature {
            key: "X-Signature".into(),
            signing_secret: "custom".into(),
        };
        let (headers, _) = apply(&cfg, b"hello");
        assert_eq!(
            get(&headers, "x-signature"),
            Some(hex::encode(hmac_sha256(b"custom", &[b"hello"])).as_str())
        );
        let bad = AuthMethodConfig::CustomSignature {
            key: "bad header".into(),
            signing_secret: "s".into(),
        };
        assert!(bad.build().is_err());
    }

    #[test]
    fn basic_and_bearer() {
        let (headers, _) = apply(
            &AuthMethodConfig::BasicAuth {
                username: "Aladdin".into(),
                password: "open sesame".into(),
            },
            b"",
        );
        // RFC 7617's example.
        assert_eq!(
            get(&headers, "authorization"),
            Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
        let (headers, _) = apply(
            &AuthMethodConfig::BearerToken {
                token: "tok".into(),
            },
            b"",
        );
        assert_eq!(get(&headers, "authorization"), Some("Bearer tok"));
    }

    #[test]
    fn api_key_header_and_query() {
        let header = AuthMethodConfig::ApiKey {
            key: "X-Api-Key".into(),
            api_key: "k1".into(),
            to: ApiKeyLocation::Header,
        };
        let (headers, url) = apply(&header, b"");
        assert_eq!(get(&headers, "x-api-key"), Some("k1"));
        assert_eq!(url.query(), Some("a=1"));

        let query = AuthMethodConfig::ApiKey {
            key: "api_key".into(),
            api_key: "k&2".into(),
            to: ApiKeyLocation::Query,
        };
        let (_, url) = apply(&query, b"");
        assert_eq!(url.query(), Some("a=1&api_key=k%262"));
    }

    #[test]
    fn query_param_replaces_existing() {
        let mut url = url::Url::parse("https://d.example/p?api_key=old&b=2").unwrap();
        set_query_param(&mut url, "api_key", "new");
        assert_eq!(url.query(), Some("b=2&api_key=new"));
    }

    #[test]
    fn env_secrets_and_redacted_debug() {
        std::env::set_var("HOOKGATE_DEST_TEST_TOKEN", "tok-env");
        let auth = AuthMethodConfig::BearerToken {
            token: "env:HOOKGATE_DEST_TEST_TOKEN".into(),
        }
        .build()
        .unwrap();
        assert!(!format!("{auth:?}").contains("tok-env"));
        let mut headers = Vec::new();
        let mut url = url::Url::parse("https://d.example").unwrap();
        auth.apply(b"", 0, &SigningKeys::single("g"), &mut headers, &mut url);
        assert_eq!(get(&headers, "authorization"), Some("Bearer tok-env"));

        let err = AuthMethodConfig::BearerToken {
            token: "env:HOOKGATE_DEST_TEST_UNSET".into(),
        }
        .build()
        .unwrap_err();
        assert!(err.contains("HOOKGATE_DEST_TEST_UNSET"), "{err}");
    }
}

//! Static shared credentials: `basic_auth` (also used for Postmark and
//! SendGrid, which put basic-auth credentials in the webhook URL), `api_key`
//! and GitLab's `X-Gitlab-Token`.
//!
//! These prove who sent the request but not that the body is unmodified, and
//! they have no replay protection; prefer a signing provider where one exists.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use super::{InboundRequest, VerifyError};
use crate::secret::resolve_required;
use crate::signing::mac::secret_eq;

/// GitLab sends the configured "secret token" verbatim in this header.
pub(super) const GITLAB_TOKEN_HEADER: &str = "x-gitlab-token";
const AUTHORIZATION: &str = "authorization";

pub(super) enum Credential {
    /// Expected decoded `user:pass` of `Authorization: Basic …`.
    BasicAuth { user_pass: Vec<u8> },
    /// Header `name` must equal `value`.
    Header { name: String, value: Vec<u8> },
}

impl Credential {
    /// `username` and `password` may both be `env:NAME`.
    pub(super) fn basic_auth(username: &str, password: &str) -> Result<Self, String> {
        let username = resolve_required("username", username)?;
        let password = resolve_required("password", password)?;
        // RFC 7617: the user-id cannot contain a colon (it would be
        // indistinguishable from the user/password separator).
        if username.contains(':') {
            return Err("username: must not contain ':'".to_owned());
        }
        Ok(Self::BasicAuth {
            user_pass: format!("{username}:{password}").into_bytes(),
        })
    }

    /// `value` is already resolved.
    pub(super) fn header(name: &str, value: &str) -> Result<Self, String> {
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() {
            return Err("header_key: must not be empty".to_owned());
        }
        Ok(Self::Header {
            name,
            value: value.as_bytes().to_vec(),
        })
    }

    /// The (lower-case) header the credential travels in.
    pub(super) fn header_name(&self) -> &str {
        match self {
            Self::BasicAuth { .. } => AUTHORIZATION,
            Self::Header { name, .. } => name,
        }
    }

    /// The header and value that pass `verify`.
    pub(super) fn presented(&self) -> (String, String) {
        let value = match self {
            Self::BasicAuth { user_pass } => format!("Basic {}", BASE64.encode(user_pass)),
            Self::Header { value, .. } => String::from_utf8_lossy(value).into_owned(),
        };
        (self.header_name().to_string(), value)
    }

    pub(super) fn verify(&self, req: &InboundRequest) -> Result<(), VerifyError> {
        let ok = match self {
            Self::BasicAuth { user_pass } => {
                let provided = basic_credentials(req.require_header(AUTHORIZATION)?)?;
                secret_eq(&provided, user_pass)
            }
            Self::Header { name, value } => {
                secret_eq(req.require_header(name)?.trim().as_bytes(), value)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(VerifyError::InvalidCredentials)
        }
    }
}

/// Decoded `user:pass` bytes of an `Authorization: Basic <base64>` header.
fn basic_credentials(header: &str) -> Result<Vec<u8>, VerifyError> {
    let (scheme, encoded) = header
        .trim()
        .split_once(' ')
        .ok_or_else(|| VerifyError::Malformed("authorization header has no scheme".into()))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(VerifyError::Malformed(
            "authorization header is not `Basic`".into(),
        ));
    }
    BASE64
        .decode(encoded.trim())
        .map_err(|_| VerifyError::Malformed("authorization header is not valid base64".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cred: &Credential, headers: &[(&str, &str)]) -> Result<(), VerifyError> {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        cred.verify(&InboundRequest {
            method: "POST",
            url: "https://hooks.example.com/in",
            headers: &headers,
            body: b"{}",
        })
    }

    fn basic(user_pass: &str) -> String {
        format!("Basic {}", BASE64.encode(user_pass))
    }

    #[test]
    fn the_presented_credential_passes() {
        for cred in [
            Credential::basic_auth("hook", "p:a:ss").unwrap(),
            Credential::header("X-Api-Key", "k-1").unwrap(),
        ] {
            let (name, value) = cred.presented();
            check(&cred, &[(&name, &value)]).unwrap();
        }
    }

    #[test]
    fn basic_auth_accepts_exact_credentials() {
        let cred = Credential::basic_auth("hook", "p:a:ss").unwrap();
        check(&cred, &[("authorization", &basic("hook:p:a:ss"))]).unwrap();
        // Scheme is case-insensitive.
        let lower = basic("hook:p:a:ss").replacen("Basic", "basic", 1);
        check(&cred, &[("authorization", &lower)]).unwrap();
    }

    #[test]
    fn basic_auth_rejects_wrong_or_missing() {
        let cred = Credential::basic_auth("hook", "pass").unwrap();
        for wrong in ["hook:pas", "hook:passs", "hoo:pass", "hook", ":pass", ":"] {
            assert_eq!(
                check(&cred, &[("authorization", &basic(wrong))]),
                Err(VerifyError::InvalidCredentials),
                "{wrong:?}"
            );
        }
        assert_eq!(
            check(&cred, &[]),
            Err(VerifyError::MissingHeader("authorization".into()))
        );
        assert!(matches!(
            check(&cred, &[("authorization", "Bearer abc")]),
            Err(VerifyError::Malformed(_))
        ));
        assert!(matches!(
            check(&cred, &[("authorization", "Basic !!!")]),
            Err(VerifyError::Malformed(_))
        ));
    }

    #[test]
    fn basic_auth_config_validation() {
        assert!(Credential::basic_auth("a:b", "c").is_err());
        assert!(Credential::basic_auth("a", "").is_err());
    }

    #[test]
    fn header_token() {
        let cred = Credential::header("X-Api-Key", "k-123").unwrap();
        check(&cred, &[("x-api-key", "k-123")]).unwrap();
        assert_eq!(
            check(&cred, &[("x-api-key", "k-124")]),
            Err(VerifyError::InvalidCredentials)
        );
        assert_eq!(
            check(&cred, &[("x-other", "k-123")]),
            Err(VerifyError::MissingHeader("x-api-key".into()))
        );
        assert!(Credential::header("", "v").is_err());
    }
}

//! Providers that sign only the raw body: generic `hmac`, GitHub, Shopify.
//!
//! These schemes carry no timestamp, so they cannot detect replays of a
//! captured request; dedupe on a delivery id downstream if that matters.

use super::{InboundRequest, VerifyError};
use crate::signing::mac::{encoded_mac_matches, hmac, HmacAlgorithm, SignatureEncoding};

/// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`
/// (docs.github.com, "Validating webhook deliveries").
const GITHUB_HEADER: &str = "x-hub-signature-256";
const GITHUB_PREFIX: &str = "sha256=";
/// Shopify: `X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256(secret, body)>`
/// (shopify.dev, "Verify webhooks").
const SHOPIFY_HEADER: &str = "x-shopify-hmac-sha256";

/// How a scheme marks the signature's algorithm inside the header value.
enum Prefix {
    /// No prefix (Shopify).
    None,
    /// Must start with this exact prefix (GitHub's `sha256=`).
    Required(&'static str),
    /// Generic senders vary: `sha256=<sig>`, `v1=<sig>` or a bare signature.
    Optional,
}

pub(super) struct BodyHmac {
    header: String,
    secret: Vec<u8>,
    algorithm: HmacAlgorithm,
    encoding: SignatureEncoding,
    prefix: Prefix,
}

impl BodyHmac {
    pub(super) fn generic(
        header_key: &str,
        secret: String,
        algorithm: HmacAlgorithm,
        encoding: SignatureEncoding,
    ) -> Result<Self, String> {
        let header = header_key.trim().to_ascii_lowercase();
        if header.is_empty() {
            return Err("header_key: must not be empty".to_owned());
        }
        Ok(Self {
            header,
            secret: secret.into_bytes(),
            algorithm,
            encoding,
            prefix: Prefix::Optional,
        })
    }

    pub(super) fn github(secret: String) -> Self {
        Self {
            header: GITHUB_HEADER.to_owned(),
            secret: secret.into_bytes(),
            algorithm: HmacAlgorithm::Sha256,
            encoding: SignatureEncoding::Hex,
            prefix: Prefix::Required(GITHUB_PREFIX),
        }
    }

    pub(super) fn shopify(secret: String) -> Self {
        Self {
            header: SHOPIFY_HEADER.to_owned(),
            secret: secret.into_bytes(),
            algorithm: HmacAlgorithm::Sha256,
            encoding: SignatureEncoding::Base64,
            prefix: Prefix::None,
        }
    }

    pub(super) fn header(&self) -> &str {
        &self.header
    }

    pub(super) fn verify(&self, req: &InboundRequest) -> Result<(), VerifyError> {
        let value = req.require_header(&self.header)?.trim();
        let signature = self.strip_prefix(value)?;
        let expected = hmac(self.algorithm, &self.secret, &[req.body]);
        if encoded_mac_matches(&expected, signature, self.encoding) {
            Ok(())
        } else {
            Err(VerifyError::BadSignature)
        }
    }

    fn strip_prefix<'v>(&self, value: &'v str) -> Result<&'v str, VerifyError> {
        match self.prefix {
            Prefix::None => Ok(value),
            Prefix::Required(prefix) => value.strip_prefix(prefix).ok_or_else(|| {
                VerifyError::Malformed(format!("{} must start with `{prefix}`", self.header))
            }),
            Prefix::Optional => Ok(strip_optional_label(value)),
        }
    }
}

/// Strips a `label=` prefix such as `sha256=`. In base64 an `=` only appears
/// as trailing padding, so a first `=` that is followed by something other
/// than `=` can only be a label separator; hex never contains `=`.
fn strip_optional_label(value: &str) -> &str {
    match value.split_once('=') {
        Some((label, rest)) if !label.is_empty() && !rest.is_empty() && !rest.starts_with('=') => {
            rest
        }
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(headers: &'a [(String, String)], body: &'a [u8]) -> InboundRequest<'a> {
        InboundRequest {
            method: "POST",
            url: "https://hooks.example.com/in",
            headers,
            body,
        }
    }

    fn hdr(name: &str, value: &str) -> Vec<(String, String)> {
        vec![(name.to_owned(), value.to_owned())]
    }

    // The example in GitHub's "Validating webhook deliveries" documentation.
    #[test]
    fn github_documented_example() {
        let v = BodyHmac::github("It's a Secret to Everybody".to_owned());
        let headers = hdr(
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        );
        v.verify(&req(&headers, b"Hello, World!")).unwrap();
        assert_eq!(
            v.verify(&req(&headers, b"Hello, World?")),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn github_requires_prefix() {
        let v = BodyHmac::github("It's a Secret to Everybody".to_owned());
        let headers = hdr(
            "x-hub-signature-256",
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        );
        assert!(matches!(
            v.verify(&req(&headers, b"Hello, World!")),
            Err(VerifyError::Malformed(_))
        ));
    }

    #[test]
    fn github_missing_header() {
        let v = BodyHmac::github("s".to_owned());
        assert_eq!(
            v.verify(&req(&[], b"{}")),
            Err(VerifyError::MissingHeader("x-hub-signature-256".into()))
        );
    }

    #[test]
    fn shopify_base64() {
        let v = BodyHmac::shopify("shpss_test".to_owned());
        let sig = SignatureEncoding::Base64.encode(&hmac(
            HmacAlgorithm::Sha256,
            b"shpss_test",
            &[b"{\"id\":1}"],
        ));
        v.verify(&req(&hdr("x-shopify-hmac-sha256", &sig), b"{\"id\":1}"))
            .unwrap();
        // The hex form of the right MAC is not accepted.
        let hex_sig = hex::encode(hmac(HmacAlgorithm::Sha256, b"shpss_test", &[b"{\"id\":1}"]));
        assert_eq!(
            v.verify(&req(&hdr("x-shopify-hmac-sha256", &hex_sig), b"{\"id\":1}")),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn generic_all_algorithms_encodings_and_prefixes() {
        let body = b"payload";
        for algorithm in [
            HmacAlgorithm::Sha1,
            HmacAlgorithm::Sha256,
            HmacAlgorithm::Sha512,
        ] {
            for encoding in [SignatureEncoding::Hex, SignatureEncoding::Base64] {
                let v =
                    BodyHmac::generic("X-Signature", "k".to_owned(), algorithm, encoding).unwrap();
                let sig = encoding.encode(&hmac(algorithm, b"k", &[body]));
                for value in [
                    sig.clone(),
                    format!("sha256={sig}"),
                    format!("v1={sig}"),
                    format!("  {sig} "),
                ] {
                    v.verify(&req(&hdr("x-signature", &value), body))
                        .unwrap_or_else(|e| panic!("{algorithm:?}/{encoding:?} {value}: {e}"));
                }
                let wrong = encoding.encode(&hmac(algorithm, b"other", &[body]));
                assert_eq!(
                    v.verify(&req(&hdr("x-signature", &wrong), body)),
                    Err(VerifyError::BadSignature)
                );
            }
        }
    }

    #[test]
    fn optional_label_keeps_base64_padding() {
        assert_eq!(strip_optional_label("abc="), "abc=");
        assert_eq!(strip_optional_label("ab=="), "ab==");
        assert_eq!(strip_optional_label("sha256=ab=="), "ab==");
        assert_eq!(strip_optional_label("=abc"), "=abc");
        assert_eq!(strip_optional_label("deadbeef"), "deadbeef");
    }

    #[test]
    fn generic_rejects_empty_header_key() {
        assert!(BodyHmac::generic(
            " ",
            "k".into(),
            HmacAlgorithm::Sha256,
            SignatureEncoding::Hex
        )
        .is_err());
    }
}

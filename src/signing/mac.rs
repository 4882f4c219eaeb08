//! HMAC and comparison primitives shared by every signer and verifier in the
//! crate, so that no provider module hand-rolls its own MAC or comparison.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// Hash function used inside the HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HmacAlgorithm {
    Sha1,
    #[default]
    Sha256,
    Sha512,
}

/// Text encoding of a MAC inside an HTTP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SignatureEncoding {
    #[default]
    Hex,
    /// Standard alphabet with padding (RFC 4648 §4).
    Base64,
}

impl SignatureEncoding {
    pub fn encode(self, bytes: &[u8]) -> String {
        match self {
            SignatureEncoding::Hex => hex::encode(bytes),
            SignatureEncoding::Base64 => BASE64.encode(bytes),
        }
    }

    /// Decodes a header value; `None` when it is not valid in this encoding.
    /// Hex decoding accepts either case.
    pub fn decode(self, text: &str) -> Option<Vec<u8>> {
        match self {
            SignatureEncoding::Hex => hex::decode(text).ok(),
            SignatureEncoding::Base64 => BASE64.decode(text).ok(),
        }
    }
}

/// HMAC over the concatenation of `parts`. Taking the message in parts lets
/// callers sign `"{timestamp}.{body}"`-style strings without first copying
/// the (possibly large) body into a new buffer.
pub fn hmac(algorithm: HmacAlgorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    match algorithm {
        HmacAlgorithm::Sha1 => mac_with::<Hmac<sha1::Sha1>>(key, parts),
        HmacAlgorithm::Sha256 => mac_with::<Hmac<Sha256>>(key, parts),
        HmacAlgorithm::Sha512 => mac_with::<Hmac<Sha512>>(key, parts),
    }
}

/// Shorthand for the most common case, HMAC-SHA256.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    hmac(HmacAlgorithm::Sha256, key, parts)
}

fn mac_with<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length (long keys are hashed), so this cannot fail.
    let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Constant-time equality of two MACs. The length check is not constant
/// time, which is fine: MAC lengths are public.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Whether `provided` (a header value in `encoding`) equals `expected`.
/// Undecodable input simply does not match.
pub fn encoded_mac_matches(expected: &[u8], provided: &str, encoding: SignatureEncoding) -> bool {
    encoding
        .decode(provided.trim())
        .is_some_and(|p| ct_eq(expected, &p))
}

/// Constant-time equality for static credentials (passwords, tokens, API
/// keys). Both sides are hashed first so neither the content nor the
/// *length* of the configured secret leaks through timing.
pub fn secret_eq(provided: &[u8], expected: &[u8]) -> bool {
    ct_eq(&Sha256::digest(provided), &Sha256::digest(expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4231 test case 2 (key "Jefe").
    const KEY: &[u8] = b"Jefe";
    const MSG: &[u8] = b"what do ya want for nothing?";

    #[test]
    fn hmac_sha256_rfc4231_case2() {
        assert_eq!(
            hex::encode(hmac_sha256(KEY, &[MSG])),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn hmac_sha512_rfc4231_case2() {
        assert_eq!(
            hex::encode(hmac(HmacAlgorithm::Sha512, KEY, &[MSG])),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
             9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
    }

    #[test]
    fn hmac_sha1_rfc2202_case2() {
        assert_eq!(
            hex::encode(hmac(HmacAlgorithm::Sha1, KEY, &[MSG])),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn parts_are_concatenated() {
        assert_eq!(
            hmac_sha256(KEY, &[b"what do ya ", b"want for nothing?"]),
            hmac_sha256(KEY, &[MSG])
        );
    }

    #[test]
    fn encoded_matching() {
        let mac = hmac_sha256(KEY, &[MSG]);
        let hex_upper = hex::encode_upper(&mac);
        assert!(encoded_mac_matches(
            &mac,
            &hex_upper,
            SignatureEncoding::Hex
        ));
        let b64 = SignatureEncoding::Base64.encode(&mac);
        assert!(encoded_mac_matches(&mac, &b64, SignatureEncoding::Base64));
        assert!(!encoded_mac_matches(&mac, &b64, SignatureEncoding::Hex));
        assert!(!encoded_mac_matches(&mac, "zz", SignatureEncoding::Hex));
        assert!(!encoded_mac_matches(&mac, "", SignatureEncoding::Base64));
    }

    #[test]
    fn secret_eq_works_across_lengths() {
        assert!(secret_eq(b"token", b"token"));
        assert!(!secret_eq(b"token", b"token2"));
        assert!(!secret_eq(b"", b"token"));
    }
}

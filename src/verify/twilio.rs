//! Twilio: `X-Twilio-Signature` = base64 HMAC-SHA1, keyed by the account
//! auth token, over
//!
//! * the full URL Twilio called (scheme, host, path, query string), then
//! * for form-encoded POSTs, every body parameter sorted by name, appended
//!   as `name + value` with no delimiters (repeated names: values sorted).
//!
//! Requests with a JSON body instead carry `bodySHA256=<hex SHA-256 of the
//! body>` in the URL's query string; the signature then covers the URL alone
//! and the body is checked against that hash.
//!
//! Twilio's own validators also try the URL with the port added (`:443` /
//! `:80`) or removed, "since signature generation on the back end is
//! inconsistent"; so do we.
//!
//! Sources: twilio.com/docs/usage/webhooks/webhooks-security, and the
//! reference validators `twilio/request_validator.py` (twilio-python) and
//! `src/webhooks/webhooks.ts` (twilio-node).

use sha2::{Digest, Sha256};

use super::{InboundRequest, VerifyError};
use crate::signing::mac::{encoded_mac_matches, hmac, HmacAlgorithm, SignatureEncoding};

const SIGNATURE_HEADER: &str = "x-twilio-signature";
const BODY_HASH_PARAM: &str = "bodySHA256";

pub(super) struct Twilio {
    auth_token: Vec<u8>,
}

impl Twilio {
    pub(super) fn new(auth_token: String) -> Self {
        Self {
            auth_token: auth_token.into_bytes(),
        }
    }

    pub(super) fn verify(&self, req: &InboundRequest) -> Result<(), VerifyError> {
        let signature = req.require_header(SIGNATURE_HEADER)?.trim();
        let params = match query_param(req.url, BODY_HASH_PARAM) {
            Some(body_hash) => {
                // JSON body: the body is bound to the signature through the
                // signed URL's hash, and no parameters are appended.
                let digest = Sha256::digest(req.body);
                if !encoded_mac_matches(&digest, &body_hash, SignatureEncoding::Hex) {
                    return Err(VerifyError::BadSignature);
                }
                String::new()
            }
            None if req.method.eq_ignore_ascii_case("POST") => sorted_form_params(req.body),
            // GET: parameters are already in the signed URL's query string.
            None => String::new(),
        };
        let matched = url_variants(req.url).iter().fold(false, |found, url| {
            let expected = hmac(
                HmacAlgorithm::Sha1,
                &self.auth_token,
                &[url.as_bytes(), params.as_bytes()],
            );
            found | encoded_mac_matches(&expected, signature, SignatureEncoding::Base64)
        });
        if matched {
            Ok(())
        } else {
            Err(VerifyError::BadSignature)
        }
    }
}

/// Decoded form parameters, sorted by name then value, concatenated as
/// `name1value1name2value2…`.
fn sorted_form_params(body: &[u8]) -> String {
    let mut params: Vec<(String, String)> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    params.sort();
    params.into_iter().map(|(k, v)| k + &v).collect()
}

/// First value of query parameter `name` (decoded), if any.
fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The URL as given plus the variant with its port toggled. String surgery
/// rather than `url::Url` so the rest of the URL (percent-encoding, trailing
/// slashes, default-port elision) stays byte-for-byte what Twilio signed.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    if let Some(other) = toggle_port(url) {
        variants.push(other);
    }
    variants
}

/// Removes an explicit port, or adds the scheme's default one
/// (443 for https, 80 otherwise, like twilio-python's `add_port`).
fn toggle_port(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_len);
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let (userinfo, host_port) = authority.split_at(host_start);
    // Skip past an IPv6 literal's brackets before looking for the port colon.
    let search_from = host_port.rfind(']').unwrap_or(0);
    let host = match host_port[search_from..].find(':') {
        Some(i) => &host_port[..search_from + i],
        None => {
            let port = if scheme.eq_ignore_ascii_case("https") {
                443
            } else {
                80
            };
            return Some(format!("{scheme}://{authority}:{port}{tail}"));
        }
    };
    Some(format!("{scheme}://{userinfo}{host}{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from twilio-python's tests/unit/test_request_validator.py.
    const TOKEN: &str = "12345";
    const URI: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const FORM: &str = "CallSid=CA1234567890ABCDE&Digits=1234&From=%2B14158675309&To=%2B18005551212&Caller=%2B14158675309";
    const EXPECTED: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";

    fn check(url: &str, body: &str, signature: &str) -> Result<(), VerifyError> {
        let headers = vec![("x-twilio-signature".to_owned(), signature.to_owned())];
        Twilio::new(TOKEN.into()).verify(&InboundRequest {
            method: "POST",
            url,
            headers: &headers,
            body: body.as_bytes(),
        })
    }

    #[test]
    fn reference_form_vector() {
        check(URI, FORM, EXPECTED).unwrap();
        // Parameter order in the body does not matter: Twilio sorts them.
        let reordered = "To=%2B18005551212&Caller=%2B14158675309&CallSid=CA1234567890ABCDE&From=%2B14158675309&Digits=1234";
        check(URI, reordered, EXPECTED).unwrap();
    }

    #[test]
    fn reference_duplicate_params_vector() {
        check(
            URI,
            "Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234",
            "IK+Dwps556ElfBT0I3Rgjkr1wJU=",
        )
        .unwrap();
    }

    #[test]
    fn reference_port_variants() {
        // Port on the request URL, signature computed without it.
        check(
            "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
            FORM,
            EXPECTED,
        )
        .unwrap();
        // Signature over the URL with its explicit non-default http port.
        check(
            "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
            FORM,
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
        )
        .unwrap();
        // Signature over the URL with the default port added.
        check(URI, FORM, "kvajT1Ptam85bY51eRf/AJRuM3w=").unwrap();
        check(
            "http://mycompany.com/myapp.php?foo=1&bar=2",
            FORM,
            "0ZXoZLH/DfblKGATFgpif+LLRf4=",
        )
        .unwrap();
    }

    #[test]
    fn reference_json_body_vector() {
        let url = format!(
            "{URI}&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
        );
        let body = r#"{"property": "value", "boolean": true}"#;
        check(&url, body, "a9nBmqA0ju/hNViExpshrM61xv4=").unwrap();
        assert_eq!(
            check(
                &url,
                r#"{"property": "value", "boolean": false}"#,
                "a9nBmqA0ju/hNViExpshrM61xv4="
            ),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn tampering_fails() {
        let tampered = FORM.replace("Digits=1234", "Digits=9999");
        assert_eq!(
            check(URI, &tampered, EXPECTED),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            check(
                "https://mycompany.com/myapp.php?foo=1&bar=3",
                FORM,
                EXPECTED
            ),
            Err(VerifyError::BadSignature)
        );
        let headers = vec![];
        assert_eq!(
            Twilio::new(TOKEN.into()).verify(&InboundRequest {
                method: "POST",
                url: URI,
                headers: &headers,
                body: FORM.as_bytes(),
            }),
            Err(VerifyError::MissingHeader("x-twilio-signature".into()))
        );
    }

    #[test]
    fn get_requests_sign_only_the_url() {
        let sig = SignatureEncoding::Base64.encode(&hmac(
            HmacAlgorithm::Sha1,
            TOKEN.as_bytes(),
            &[URI.as_bytes()],
        ));
        let headers = vec![("x-twilio-signature".to_owned(), sig)];
        Twilio::new(TOKEN.into())
            .verify(&InboundRequest {
                method: "GET",
                url: URI,
                headers: &headers,
                body: b"",
            })
            .unwrap();
    }

    #[test]
    fn port_toggling() {
        assert_eq!(
            toggle_port("https://a.example/x?y=1").as_deref(),
            Some("https://a.example:443/x?y=1")
        );
        assert_eq!(
            toggle_port("http://a.example").as_deref(),
            Some("http://a.example:80")
        );
        assert_eq!(
            toggle_port("https://u:p@a.example:8443/x").as_deref(),
            Some("https://u:p@a.example/x")
        );
        assert_eq!(
            toggle_port("https://[::1]:8443/x").as_deref(),
            Some("https://[::1]/x")
        );
        assert_eq!(
            toggle_port("https://[::1]/x").as_deref(),
            Some("https://[::1]:443/x")
        );
        assert_eq!(toggle_port("not a url"), None);
    }
}

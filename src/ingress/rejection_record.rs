//! What a rejected request's record keeps: enough to see why it was turned
//! away (method, path, query, headers, the start of the body), not enough to
//! fill the disk (anyone can send rejected requests) nor to leak a secret a
//! sender put in its headers (a rejected request may be a mistyped real one,
//! or a probe with stolen credentials). See `store::rejections` for the
//! budgets the records are kept within.

use crate::model::Payload;

/// What a redacted header's value becomes.
const REDACTED: &str = "[redacted]";

/// Header names that carry credentials or signatures, whatever the provider
/// (`authorization`, `cookie`, `stripe-signature`, `x-gitlab-token`, …).
const SECRET_NAME_PARTS: &[&str] = &[
    "authorization",
    "cookie",
    "signature",
    "token",
    "secret",
    "password",
    "hmac",
    "api-key",
    "apikey",
];

/// `payload` with its body cut to `body_limit` bytes and the values of
/// secret headers (and of `proof_header`, the header the source's
/// verification reads) redacted; says whether the body was cut.
pub fn cut_down(
    mut payload: Payload,
    body_limit: usize,
    proof_header: Option<&str>,
) -> (Payload, bool) {
    let truncated = payload.body.len() > body_limit;
    payload.body.truncate(body_limit);
    payload.body.shrink_to_fit();
    for (name, value) in &mut payload.headers {
        let secret = proof_header.is_some_and(|proof| name.eq_ignore_ascii_case(proof))
            || SECRET_NAME_PARTS.iter().any(|part| name.contains(part));
        if secret {
            *value = REDACTED.to_string();
        }
    }
    (payload, truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_the_body_cut() {
        let header = |name: &str, value: &str| (name.to_string(), value.to_string());
        let payload = Payload {
            method: "POST".into(),
            path: "/x".into(),
            query: String::new(),
            headers: vec![
                header("content-type", "application/json"),
                header("authorization", "Bearer hunter2"),
                header("cookie", "session=1"),
                header("stripe-signature", "t=1,v1=abc"),
                header("x-custom-proof", "s3cret"),
            ],
            body: vec![b'x'; 10],
        };
        let (cut, truncated) = cut_down(payload, 4, Some("x-custom-proof"));
        assert!(truncated);
        assert_eq!(cut.body, b"xxxx");
        let values: Vec<&str> = cut.headers.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(
            values,
            ["application/json", REDACTED, REDACTED, REDACTED, REDACTED]
        );
        let (whole, truncated) = cut_down(cut, 4, None);
        assert!(!truncated);
        assert_eq!(whole.body.len(), 4);
    }
}

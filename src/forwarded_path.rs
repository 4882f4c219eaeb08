//! The path a request forwards to its destination: what followed
//! `/e/{source}` in the URL, or what a transformation made of it.
//!
//! Senders are untrusted, and so is the code of a transformation: a path like
//! `/../../etc/passwd` (or `/%2e%2e/`, `/..%5c`, `/..;/`, …) would leave the
//! destination's base path once joined to it, since URL parsers — ours and
//! the destination's — resolve dot segments. So every forwarded path is
//! checked as the ingress receives it, as a transformation returns it, and
//! again where it is joined to the destination URL (`join`): a path stored
//! before this check (a bookmark, a retry) is refused there as well.

use url::Url;

/// Why a path is not forwarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path:?} is refused: {reason}")]
pub struct UnsafePath {
    path: String,
    reason: &'static str,
}

/// How many rounds of percent-decoding a path is looked through (`%252e` is
/// `.` after two); a path still changing after that is refused.
const DECODING_ROUNDS: usize = 4;

/// Characters that some servers (or Unicode normalisation) read as a dot.
const DOT_LIKE: &[char] = &['.', '\u{2024}', '\u{FF0E}'];

/// Whether `path` may be forwarded: empty, or `/` followed by segments that
/// are neither dot segments nor empty (but the last), in any encoding, with
/// no backslash, `?` or `#` in them.
pub fn check(path: &str) -> Result<(), UnsafePath> {
    let refuse = |reason| {
        Err(UnsafePath {
            path: path.to_string(),
            reason,
        })
    };
    if path.is_empty() {
        return Ok(());
    }
    if !path.starts_with('/') {
        return refuse("it must start with /");
    }
    if path.contains(['?', '#']) || path.chars().any(char::is_control) {
        return refuse("it holds ?, # or a control character");
    }
    let Some(decoded) = fully_decoded(path) else {
        return refuse("it is percent-encoded too many times over");
    };
    if decoded.contains('\\') {
        return refuse("it holds a backslash");
    }
    let segments: Vec<&str> = decoded[1..].split('/').collect();
    let (last, inner) = segments.split_last().expect("split yields one at least");
    if inner.iter().any(|segment| segment.is_empty()) {
        return refuse("it holds an empty segment (//)");
    }
    if inner
        .iter()
        .chain([last])
        .any(|segment| is_dot_segment(segment))
    {
        return refuse("it holds a . or .. segment");
    }
    Ok(())
}

/// `base` with `path` appended to its path (and nothing else changed), or
/// why not. Checks `path`, then checks the result is still under `base`'s
/// path, whatever the URL parser made of it.
pub fn join(base: &Url, path: &str) -> Result<Url, UnsafePath> {
    check(path)?;
    let base_path = base.path().trim_end_matches('/');
    let mut joined = base.clone();
    joined.set_path(&format!("{base_path}{path}"));
    let under = joined
        .path()
        .strip_prefix(base_path)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    if !under {
        return Err(UnsafePath {
            path: path.to_string(),
            reason: "it leaves the destination's path",
        });
    }
    Ok(joined)
}

/// A segment that resolves to its parent or itself: `.`, `..` (or more dots,
/// which some servers trim), ignoring `;params` (`..;/` is `..` to Tomcat)
/// and whatever follows a decoded `?` or `#` (a server decoding `%3f` early).
fn is_dot_segment(segment: &str) -> bool {
    let name = segment.split([';', '?', '#']).next().unwrap_or_default();
    !name.is_empty() && name.chars().all(|c| DOT_LIKE.contains(&c))
}

/// `path` percent-decoded until nothing changes, or None when it still
/// changes after `DECODING_ROUNDS`.
fn fully_decoded(path: &str) -> Option<String> {
    let mut current = path.to_string();
    for _ in 0..DECODING_ROUNDS {
        let decoded = percent_decoded(&current);
        if decoded == current {
            return Some(current);
        }
        current = decoded;
    }
    (percent_decoded(&current) == current).then_some(current)
}

pub(crate) fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|pair| {
            let pair = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(pair, 16).ok()
        });
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const REFUSED: &[&str] = &[
        "/..",
        "/.",
        "/../../etc/passwd",
        "/a/../../b",
        "/%2e%2e/x",
        "/%2E%2e/x",
        "/.%2e/x",
        "/%252e%252e/x",
        "/%25252e%25252e/x",
        "/..\\x",
        "/..%5cx",
        "/a%5c..%5cb",
        "/..;/x",
        "/..;jsessionid=1/x",
        "/a//b",
        "/..%2fx",
        "/%2e%2e%3fx=1",
        "/\u{FF0E}\u{FF0E}/x",
        "x/y",
        "/a?b",
        "/a#b",
        "/a\nb",
    ];

    #[test]
    fn traversal_in_any_encoding_is_refused() {
        for path in REFUSED {
            assert!(check(path).is_err(), "{path:?} passed");
        }
    }

    #[test]
    fn ordinary_paths_pass() {
        for path in ["", "/", "/orders", "/a/b/", "/v1.2/x..y", "/%20a", "/a;b=1"] {
            assert_eq!(check(path), Ok(()), "{path:?}");
        }
    }

    #[test]
    fn joined_paths_stay_under_the_destination_path() {
        let base = Url::parse("http://sink.test/hooks/?k=1").unwrap();
        let joined = join(&base, "/a/b").unwrap();
        assert_eq!(joined.as_str(), "http://sink.test/hooks/a/b?k=1");
        assert!(join(&base, "/../etc/passwd").is_err());
    }

    /// Paths built from the pieces traversal attempts are made of.
    fn hostile_path() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("/"),
            Just("."),
            Just(".."),
            Just("%2e"),
            Just("%2E"),
            Just("%25"),
            Just("2e"),
            Just("%5c"),
            Just("\\"),
            Just(";"),
            Just("%2f"),
            Just("a"),
            Just("%"),
            Just("?"),
            Just("\u{FF0E}"),
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn an_accepted_path_once_joined_stays_under_the_base(
            path in hostile_path(),
            base in prop_oneof![
                Just("http://sink.test"),
                Just("http://sink.test/hooks"),
                Just("https://sink.test/a/b/"),
            ],
        ) {
            let base = Url::parse(base).unwrap();
            let base_path = base.path().trim_end_matches('/').to_string();
            if let Ok(joined) = join(&base, &path) {
                let rest = joined.path().strip_prefix(base_path.as_str());
                prop_assert!(rest.is_some_and(|rest| rest.is_empty() || rest.starts_with('/')));
                prop_assert!(!joined.path().split('/').any(|s| s == ".." || s == "."));
                prop_assert_eq!(joined.host_str(), base.host_str());
            }
        }

        #[test]
        fn checking_any_text_never_panics(path in "\\PC*") {
            let _ = check(&path);
            let _ = join(&Url::parse("http://sink.test/x").unwrap(), &path);
        }
    }
}

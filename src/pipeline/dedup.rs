//! The deduplicate rule: a request equal to an earlier one (on the chosen
//! fields) within the window is ignored as DEDUPLICATED.

use super::view::select;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Headers that differ between two sends of the same webhook (tracing, proxies,
/// per-send timestamps and signatures), left out when the whole request is compared.
const VOLATILE_HEADERS: &[&str] = &[
    "date",
    "content-length",
    "user-agent",
    "x-request-id",
    "x-amzn-trace-id",
    "traceparent",
    "tracestate",
    "cf-ray",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "forwarded",
    "via",
    "stripe-signature",
    "webhook-timestamp",
    "webhook-signature",
    "svix-timestamp",
    "svix-signature",
    "x-slack-request-timestamp",
    "x-slack-signature",
];

#[derive(Debug, Clone, PartialEq)]
pub struct Deduplication {
    pub window: Duration,
    fields: Fields,
}

#[derive(Debug, Clone, PartialEq)]
enum Fields {
    /// The whole request minus volatile headers.
    All,
    Include(Vec<String>),
    Exclude(Vec<String>),
}

impl Deduplication {
    pub fn new(
        window: Duration,
        include: &[String],
        exclude: &[String],
    ) -> Result<Deduplication, String> {
        if window.is_zero() {
            return Err("window must be at least 1 ms".into());
        }
        let check = |fields: &[String]| match fields.iter().find(|f| !is_field(f)) {
            Some(bad) => Err(format!(
                "\"{bad}\" is not a field path (headers.NAME, body.a.b, query.NAME or path)"
            )),
            None => Ok(()),
        };
        check(include)?;
        check(exclude)?;
        let fields = match (include.is_empty(), exclude.is_empty()) {
            (true, true) => Fields::All,
            (false, true) => Fields::Include(include.to_vec()),
            (true, false) => Fields::Exclude(exclude.to_vec()),
            (false, false) => return Err("give include_fields or exclude_fields, not both".into()),
        };
        Ok(Deduplication { window, fields })
    }

    /// A digest of the compared fields: two requests are duplicates when theirs are equal.
    pub fn fingerprint(&self, root: &Value) -> [u8; 32] {
        let compared = match &self.fields {
            Fields::Include(paths) => Value::Array(
                paths
                    .iter()
                    .map(|p| select(root, p).cloned().unwrap_or(Value::Null))
                    .collect(),
            ),
            Fields::Exclude(paths) => without(root.clone(), paths.iter().map(String::as_str)),
            Fields::All => without(
                root.clone(),
                VOLATILE_HEADERS
                    .iter()
                    .map(|h| format!("headers.{h}"))
                    .collect::<Vec<_>>()
                    .iter()
                    .map(String::as_str),
            ),
        };
        Sha256::digest(sorted_keys(compared).to_string().as_bytes()).into()
    }
}

/// What an earlier sighting of a fingerprint means for a request claiming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The request is not a duplicate and its sighting replaces the earlier one (if any).
    Take,
    /// Not a duplicate, and the earlier sighting stays: it is this request's
    /// own (routed again), or a later request's (this one was retried by hand).
    Own,
    /// Another request was seen within the window: a duplicate.
    Duplicate,
}

/// A request claiming a fingerprint on a connection.
#[derive(Debug, Clone, Copy)]
pub struct Sighting<'a> {
    pub connection_id: &'a str,
    pub fingerprint: &'a [u8],
    pub request_id: &'a str,
    /// When the request arrived (ms): windows count from arrivals.
    pub received_ms: u64,
    pub window_ms: u64,
}

impl Sighting<'_> {
    /// What sightings are kept under: connection id ‖ fingerprint.
    pub fn key(&self) -> Vec<u8> {
        [self.connection_id.as_bytes(), self.fingerprint].concat()
    }

    /// Judges this sighting against the fingerprint's earlier one `(at,
    /// owner request id)`. The store and `hookgate test`'s in-memory
    /// sightings both decide here, so a recorded duplicate is judged as the
    /// router judges it.
    pub fn judge(&self, earlier: Option<(u64, &[u8])>) -> Claim {
        let Some((at, owner)) = earlier else {
            return Claim::Take;
        };
        if owner == self.request_id.as_bytes() {
            return Claim::Own;
        }
        // Either way round: a request retried by hand may be older than the
        // one holding the fingerprint.
        if self.received_ms.abs_diff(at) < self.window_ms {
            return Claim::Duplicate;
        }
        if self.received_ms < at {
            return Claim::Own;
        }
        Claim::Take
    }
}

/// `value` with every object's keys in sorted order. JSON objects keep the
/// order they were written in, but two sends of one webhook may order their
/// headers or fields differently: they are still the same request (and
/// fingerprints stored before objects kept their order were sorted too).
fn sorted_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|(a, _), (b, _)| a.cmp(b));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| (key, sorted_keys(value)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted_keys).collect()),
        scalar => scalar,
    }
}

fn is_field(path: &str) -> bool {
    let root = path.split('.').next().unwrap_or_default();
    matches!(root, "headers" | "body" | "query" | "path") && !path.split('.').any(str::is_empty)
}

/// `root` with the fields at `paths` removed.
fn without<'p>(mut root: Value, paths: impl Iterator<Item = &'p str>) -> Value {
    for path in paths {
        let (parent, last) = match path.rsplit_once('.') {
            Some((parent, last)) => (Some(parent), last),
            None => (None, path),
        };
        let container = match parent {
            Some(parent) => parent
                .split('.')
                .try_fold(&mut root, |value, segment| value.get_mut(segment)),
            None => Some(&mut root),
        };
        if let Some(Value::Object(map)) = container {
            map.remove(last);
        }
    }
    root
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dedup(include: &[&str], exclude: &[&str]) -> Deduplication {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Deduplication::new(Duration::from_secs(60), &owned(include), &owned(exclude)).unwrap()
    }

    #[test]
    fn whole_request_ignores_volatile_headers() {
        let a = json!({"headers": {"date": "1", "x-topic": "t"}, "body": {"id": 1}, "query": {}, "path": ""});
        let b = json!({"headers": {"date": "2", "x-topic": "t"}, "body": {"id": 1}, "query": {}, "path": ""});
        let c = json!({"headers": {"date": "2", "x-topic": "u"}, "body": {"id": 1}, "query": {}, "path": ""});
        let d = dedup(&[], &[]);
        assert_eq!(d.fingerprint(&a), d.fingerprint(&b));
        assert_ne!(d.fingerprint(&a), d.fingerprint(&c));
    }

    #[test]
    fn the_order_of_keys_does_not_matter() {
        let d = dedup(&[], &[]);
        let a = json!({"headers": {"x-a": "1", "x-b": "2"}, "body": {"id": 1, "n": {"p": 1, "q": 2}}, "query": {}, "path": ""});
        let b = json!({"path": "", "query": {}, "body": {"n": {"q": 2, "p": 1}, "id": 1}, "headers": {"x-b": "2", "x-a": "1"}});
        assert_eq!(d.fingerprint(&a), d.fingerprint(&b));
        // What fingerprints stored before keys kept their order were computed from.
        let sorted = r#"{"body":{"id":1,"n":{"p":1,"q":2}},"headers":{"x-a":"1","x-b":"2"},"path":"","query":{}}"#;
        assert_eq!(
            d.fingerprint(&b),
            <[u8; 32]>::from(Sha256::digest(sorted.as_bytes()))
        );
    }

    #[test]
    fn include_fields_compare_only_those() {
        let d = dedup(&["body.id"], &[]);
        let a = json!({"body": {"id": 1, "at": 1}});
        let b = json!({"body": {"id": 1, "at": 2}});
        let c = json!({"body": {"id": 2, "at": 1}});
        assert_eq!(d.fingerprint(&a), d.fingerprint(&b));
        assert_ne!(d.fingerprint(&a), d.fingerprint(&c));
    }

    #[test]
    fn exclude_fields_compare_everything_else() {
        let d = dedup(&[], &["body.at", "headers.x-sent"]);
        let a = json!({"headers": {"x-sent": "1"}, "body": {"id": 1, "at": 1}});
        let b = json!({"headers": {"x-sent": "2"}, "body": {"id": 1, "at": 2}});
        assert_eq!(d.fingerprint(&a), d.fingerprint(&b));
    }

    #[test]
    fn bad_settings_are_rejected() {
        let fields = vec!["body.id".to_string()];
        assert!(Deduplication::new(Duration::from_secs(1), &fields, &fields).is_err());
        assert!(Deduplication::new(Duration::ZERO, &[], &[]).is_err());
        assert!(
            Deduplication::new(Duration::from_secs(1), &["id".into()], &[])
                .unwrap_err()
                .contains("\"id\"")
        );
    }
}

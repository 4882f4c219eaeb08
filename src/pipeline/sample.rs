//! Sample requests for trying a transformation without traffic
//! (`hookgate transform run`), in the format of the files in `fixtures/`:
//! `{"method": "POST", "url": "https://host/path?query", "headers": {…}, "body": "raw text"}`.

use crate::model::Payload;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct SampleRequest {
    #[serde(default = "post")]
    method: String,
    /// A full URL or just a path with its query.
    #[serde(default)]
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// The raw body; a JSON value other than a string is taken as a JSON body.
    #[serde(default)]
    body: serde_json::Value,
}

fn post() -> String {
    "POST".into()
}

/// Parses a sample request file's text into the payload a source would have stored.
pub fn payload_from_sample(text: &str) -> Result<Payload, String> {
    let sample: SampleRequest =
        serde_json::from_str(text).map_err(|e| format!("not a sample request: {e}"))?;
    let path_and_query = match sample.url.find("://") {
        Some(scheme_end) => {
            let after_host = sample.url[scheme_end + 3..]
                .find('/')
                .map_or(sample.url.len(), |i| scheme_end + 3 + i);
            &sample.url[after_host..]
        }
        None => sample.url.as_str(),
    };
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let body = match sample.body {
        serde_json::Value::String(text) => text.into_bytes(),
        serde_json::Value::Null => Vec::new(),
        json => json.to_string().into_bytes(),
    };
    Ok(Payload {
        method: sample.method.to_ascii_uppercase(),
        path: path.to_string(),
        query: query.to_string(),
        headers: sample
            .headers
            .into_iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v))
            .collect(),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_urls_paths_and_json_bodies() {
        let payload = payload_from_sample(
            r#"{"url": "https://h.example/a/b?x=1", "headers": {"X-A": "1"}, "body": {"k": 2}}"#,
        )
        .unwrap();
        assert_eq!(
            (payload.path.as_str(), payload.query.as_str()),
            ("/a/b", "x=1")
        );
        assert_eq!(payload.headers, vec![("x-a".to_string(), "1".to_string())]);
        assert_eq!(payload.body, br#"{"k":2}"#);
        assert_eq!(payload.method, "POST");
        let bare = payload_from_sample(r#"{"method": "put", "url": "/p", "body": "raw"}"#).unwrap();
        assert_eq!(
            (
                bare.method.as_str(),
                bare.path.as_str(),
                bare.body.as_slice()
            ),
            ("PUT", "/p", &b"raw"[..])
        );
        assert!(payload_from_sample("42").is_err());
    }
}

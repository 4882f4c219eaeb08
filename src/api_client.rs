//! A client of a running gateway's management API, with an API key: what
//! `hookgate requests export` and `hookgate listen` call it with.

use serde_json::Value;

/// The management API at `base` (e.g. `http://127.0.0.1:8081`) with an API key.
pub struct ApiClient {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl ApiClient {
    pub fn new(base: &str, key: &str) -> ApiClient {
        ApiClient {
            base: base.trim_end_matches('/').to_string(),
            key: key.to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// A request to `path`, carrying the key.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let url = format!("{}{path}", self.base);
        self.http.request(method, url).bearer_auth(&self.key)
    }

    /// A GET's JSON answer; an error answer's message otherwise.
    pub async fn get(&self, path: &str) -> Result<Value, String> {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// A call's JSON answer (with a JSON `body` when given); an error
    /// answer's status and message otherwise.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let call = format!("{method} {url}");
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.map_err(|e| format!("{call}: {e}"))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| format!("{call}: {e}"))?;
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(format!("{call}: {status} {}", message(&answer)));
        }
        Ok(answer)
    }
}

/// An error answer's `message` (the API's error body), or nothing.
pub fn message(answer: &Value) -> &str {
    answer["message"].as_str().unwrap_or_default()
}

/// The `message` of an error response, read to its end.
pub async fn message_of(response: reqwest::Response) -> String {
    let bytes = response.bytes().await.unwrap_or_default();
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    message(&answer).to_string()
}

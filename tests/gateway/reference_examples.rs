//! The reference's examples (hookdeck-api-2023-07-01.txt) as the contract
//! tests read them, each with the line it is printed at:
//! - `reference_requests.json`: every example request. Each operation's
//!   endpoint (with its "Request body example" where it has one), and the
//!   requests printed elsewhere: the `curl` lines (L19, L177-185), the
//!   query examples (L3837, L4546), the other connection bodies (L109,
//!   L818, L830) and the rule examples (L7614-7723) inside a connection body
//!   (named `rule-<line>`: the reference prints the rule alone). L3705 prints
//!   no body: it has the body parameters its answer echoes.
//! - `reference_responses.json`: every "Response example" with its endpoint
//!   (L7114's reads "Missing data" and is left out).

use serde_json::Value;

const REQUESTS: &str = include_str!("reference_requests.json");
const RESPONSES: &str = include_str!("reference_responses.json");

/// One example request, as printed.
pub struct RequestExample {
    pub line: u64,
    /// `GET`, `POST`…
    pub method: String,
    /// The path with the reference's placeholders (`:id`, `:execution_id`).
    pub path: String,
    pub query: Option<String>,
    pub body: Option<Value>,
}

/// One response example: `{line, endpoint, example}`.
pub struct ResponseExample {
    pub line: u64,
    pub endpoint: String,
    pub example: Value,
}

pub fn requests() -> Vec<RequestExample> {
    let printed: Vec<Value> = serde_json::from_str(REQUESTS).unwrap();
    printed
        .into_iter()
        .map(|example| {
            let (method, path) = example["endpoint"]
                .as_str()
                .unwrap()
                .split_once(' ')
                .unwrap();
            RequestExample {
                line: example["line"].as_u64().unwrap(),
                method: method.to_string(),
                path: path.to_string(),
                query: example["query"].as_str().map(String::from),
                body: example.get("body").cloned(),
            }
        })
        .collect()
}

pub fn responses() -> Vec<ResponseExample> {
    let printed: Vec<Value> = serde_json::from_str(RESPONSES).unwrap();
    printed
        .into_iter()
        .map(|example| ResponseExample {
            line: example["line"].as_u64().unwrap(),
            endpoint: example["endpoint"].as_str().unwrap().to_string(),
            example: example["example"].clone(),
        })
        .collect()
}

impl RequestExample {
    pub fn endpoint(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The response example printed for this request's operation: the first
    /// after it, else (a request printed after its operation's examples) the
    /// last before it.
    pub fn response<'a>(&self, responses: &'a [ResponseExample]) -> Option<&'a Value> {
        let endpoint = self.endpoint();
        let same: Vec<&ResponseExample> = responses
            .iter()
            .filter(|response| response.endpoint == endpoint)
            .collect();
        let after = same.iter().find(|response| response.line > self.line);
        after
            .or_else(|| same.last())
            .map(|response| &response.example)
    }
}

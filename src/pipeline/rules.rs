//! Connection rules as written in gateway.toml (`RuleSpec`) and as run (`Rule`).

use super::dedup::Deduplication;
use super::filter::RequestFilter;
use super::retry::{RetryPolicy, RetryStrategy, StatusMatcher};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// A rule as configured, in Hookdeck's shape (`type` tags the kind).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleSpec {
    Retry {
        strategy: RetryStrategy,
        count: u32,
        /// Milliseconds.
        interval: u64,
        #[serde(default)]
        response_status_codes: Vec<String>,
    },
    /// Hookdeck filter syntax per request part; all given parts must match.
    Filter {
        headers: Option<Value>,
        body: Option<Value>,
        query: Option<Value>,
        path: Option<Value>,
    },
    Delay {
        /// Milliseconds after the request arrived.
        delay: u64,
    },
    Deduplicate {
        /// Milliseconds.
        window: u64,
        #[serde(default)]
        include_fields: Vec<String>,
        #[serde(default)]
        exclude_fields: Vec<String>,
    },
}

/// A rule ready to run.
#[derive(Debug, Clone)]
pub enum Rule {
    Retry(RetryPolicy),
    Filter(Arc<RequestFilter>),
    Delay(Duration),
    Deduplicate(Arc<Deduplication>),
}

impl RuleSpec {
    /// Validates and compiles a rule; the error says what is wrong with it.
    pub fn compile(&self) -> Result<Rule, String> {
        match self {
            RuleSpec::Retry {
                strategy,
                count,
                interval,
                response_status_codes,
            } => Ok(Rule::Retry(RetryPolicy {
                strategy: *strategy,
                count: *count,
                interval: Duration::from_millis(*interval),
                statuses: StatusMatcher::parse(response_status_codes)?,
            })),
            RuleSpec::Filter {
                headers,
                body,
                query,
                path,
            } => {
                if [headers, body, query, path]
                    .iter()
                    .all(|part| part.is_none())
                {
                    return Err(
                        "a filter needs at least one of headers, body, query or path".into(),
                    );
                }
                let filter = RequestFilter::compile(
                    headers.as_ref(),
                    body.as_ref(),
                    query.as_ref(),
                    path.as_ref(),
                )
                .map_err(|e| format!("invalid filter: {e}"))?;
                Ok(Rule::Filter(Arc::new(filter)))
            }
            RuleSpec::Delay { delay } => Ok(Rule::Delay(Duration::from_millis(*delay))),
            RuleSpec::Deduplicate {
                window,
                include_fields,
                exclude_fields,
            } => {
                let dedup = Deduplication::new(
                    Duration::from_millis(*window),
                    include_fields,
                    exclude_fields,
                )?;
                Ok(Rule::Deduplicate(Arc::new(dedup)))
            }
        }
    }
}

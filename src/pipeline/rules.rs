//! Connection rules as written in gateway.toml (`RuleSpec`) and as run (`Rule`).

use super::dedup::Deduplication;
use super::filter::RequestFilter;
use super::retry::{RetryPolicy, RetryStrategy, StatusMatcher};
use super::transform::{Admission, TransformLimits, Transformation, WorkerPool};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A rule as configured, in Hookdeck's shape (`type` tags the kind).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleSpec {
    /// `strategy`, `count` and `interval` default to the reference's
    /// example: linear, 5 retries, a minute apart.
    Retry {
        #[serde(default = "default_retry_strategy")]
        strategy: RetryStrategy,
        #[serde(default = "default_retry_count")]
        count: u32,
        /// Milliseconds.
        #[serde(default = "default_retry_interval")]
        interval: u64,
        #[serde(default)]
        response_status_codes: Vec<String>,
    },
    /// Hookdeck filter syntax per request part; all given parts must match.
    /// Read from TOML, `{ "$null" = true }` stands for `null`.
    Filter {
        #[serde(default, deserialize_with = "filter_part")]
        headers: Option<Value>,
        #[serde(default, deserialize_with = "filter_part")]
        body: Option<Value>,
        #[serde(default, deserialize_with = "filter_part")]
        query: Option<Value>,
        #[serde(default, deserialize_with = "filter_part")]
        path: Option<Value>,
    },
    /// Hookdeck's JavaScript transformation (`addHandler('transform', …)`).
    /// Hookdeck spells the type both `transform` and `transformation`.
    #[serde(alias = "transformation")]
    Transform {
        /// The API transformation it runs (`trs_…`), whose code the API puts
        /// in `transformation` (see `api::objects::resolve_transformations`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transformation_id: Option<String>,
        transformation: TransformationSpec,
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

fn default_retry_strategy() -> RetryStrategy {
    RetryStrategy::Linear
}

fn default_retry_count() -> u32 {
    5
}

fn default_retry_interval() -> u64 {
    60_000
}

/// A filter part as written, with the null markers TOML needs turned into nulls.
fn filter_part<'de, D: serde::Deserializer<'de>>(from: D) -> Result<Option<Value>, D::Error> {
    let written = Option::<Value>::deserialize(from)?;
    Ok(written.map(super::filter::decode_nulls))
}

/// A transformation's code, inline or in a file (relative to the config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformationSpec {
    pub name: String,
    pub code: Option<String>,
    pub code_file: Option<String>,
    /// `process.env` inside the handler.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// What compiling a rule needs besides the rule itself.
pub struct CompileContext<'a> {
    /// Where relative `code_file` paths start.
    pub base_dir: &'a Path,
    pub transform_limits: TransformLimits,
    /// Where transformations run.
    pub transform_pool: Arc<WorkerPool>,
    /// Steps one evaluation of a filter rule may take.
    pub filter_max_steps: u64,
}

/// A compiled transformation and its name (for logs and errors).
pub struct NamedTransformation {
    pub name: String,
    pub transformation: Transformation,
}

impl fmt::Debug for NamedTransformation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Transformation({})", self.name)
    }
}

/// A rule ready to run.
#[derive(Debug, Clone)]
pub enum Rule {
    Retry(RetryPolicy),
    Filter(Arc<RequestFilter>),
    Transform(Arc<NamedTransformation>),
    Delay(Duration),
    Deduplicate(Arc<Deduplication>),
}

impl RuleSpec {
    /// Validates and compiles a rule; the error says what is wrong with it.
    pub fn compile(&self, context: &CompileContext) -> Result<Rule, String> {
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
                let filter = RequestFilter::new(
                    headers.as_ref(),
                    body.as_ref(),
                    query.as_ref(),
                    path.as_ref(),
                );
                Ok(Rule::Filter(Arc::new(
                    filter.with_max_steps(context.filter_max_steps),
                )))
            }
            RuleSpec::Transform { transformation, .. } => {
                Ok(Rule::Transform(Arc::new(transformation.compile(context)?)))
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

impl TransformationSpec {
    /// Reads the code and compiles it once, so syntax errors are config errors.
    pub fn compile(&self, context: &CompileContext) -> Result<NamedTransformation, String> {
        crate::names::check_length(&self.name).map_err(|e| format!("transformation name {e}"))?;
        let code = match (&self.code, &self.code_file) {
            (Some(code), None) => code.clone(),
            (None, Some(file)) => {
                let path = context.base_dir.join(file);
                std::fs::read_to_string(&path).map_err(|e| {
                    format!(
                        "transformation \"{}\": cannot read {}: {e}",
                        self.name,
                        path.display()
                    )
                })?
            }
            _ => {
                return Err(format!(
                    "transformation \"{}\": give code or code_file (one of them)",
                    self.name
                ))
            }
        };
        // Routing waits for a busy pool rather than failing events.
        let transformation = Transformation::new(
            &context.transform_pool,
            &self.name,
            &code,
            self.env.clone(),
            context.transform_limits.clone(),
            Admission::Wait,
        )
        .map_err(|e| format!("transformation \"{}\": {e}", self.name))?;
        Ok(NamedTransformation {
            name: self.name.clone(),
            transformation,
        })
    }
}

//! The request bodies of `POST`/`PUT /sources`, `/destinations` and
//! `/connections` as the reference gives them: fields, types, enums, limits.
//!
//! The handlers (`objects.rs`) read a body as gateway.toml's fields, so that
//! the config's own validator checks API objects exactly like declared ones
//! and names every problem at once; it also takes hookgate's flat spellings
//! (`verification = {type = "stripe", webhook_secret_key = …}`) and keys of
//! its own (`concurrent`, a `deduplicate` rule). These types describe, in
//! `/openapi.json`, the reference's shape that it accepts; objects may carry
//! more keys (the schemas allow them).

use super::provider_inputs::{AuthMethodInput, VerificationInput};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `POST /sources`, `PUT /sources`, and a connection's inline `source`.
#[derive(Deserialize, ToSchema)]
pub struct SourceInput {
    /// A unique name (the reference's pattern; hookgate takes any name of
    /// at most 155 characters).
    #[schema(pattern = "^[A-z0-9_-]+$", max_length = 155)]
    pub name: String,
    #[serde(flatten)]
    pub settings: SourceSettings,
}

/// `PUT /sources/{id}`: the fields to change.
#[derive(Deserialize, ToSchema)]
pub struct SourceChange {
    /// A new name (the id stays).
    #[schema(pattern = "^[A-z0-9_-]+$", max_length = 155)]
    pub name: Option<String>,
    #[serde(flatten)]
    pub settings: SourceSettings,
}

/// A source's settings besides its name.
#[derive(Deserialize, ToSchema)]
pub struct SourceSettings {
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// Defaults to PUT, POST, PATCH, DELETE.
    pub allowed_http_methods: Option<Vec<HttpMethod>>,
    pub custom_response: Option<CustomResponseInput>,
    pub verification: Option<VerificationInput>,
}

/// An HTTP method, as the reference spells it.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

/// What the source's ingress answers to accepted requests.
#[derive(Deserialize, ToSchema)]
pub struct CustomResponseInput {
    pub content_type: ContentType,
    #[schema(max_length = 1000)]
    pub body: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContentType {
    Json,
    Text,
    Xml,
}

/// `POST /destinations`, `PUT /destinations`, and a connection's inline
/// `destination`. One of `url` or `cli_path` is required.
#[derive(Deserialize, ToSchema)]
pub struct DestinationInput {
    #[schema(pattern = "^[A-z0-9_-]+$", max_length = 155)]
    pub name: String,
    #[serde(flatten)]
    pub settings: DestinationSettings,
}

/// `PUT /destinations/{id}`: the fields to change.
#[derive(Deserialize, ToSchema)]
pub struct DestinationChange {
    /// A new name (the id stays).
    #[schema(pattern = "^[A-z0-9_-]+$", max_length = 155)]
    pub name: Option<String>,
    #[serde(flatten)]
    pub settings: DestinationSettings,
}

/// A destination's settings besides its name.
#[derive(Deserialize, ToSchema)]
pub struct DestinationSettings {
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// Where deliveries go (an absolute URL).
    pub url: Option<String>,
    /// Path for the CLI destination.
    pub cli_path: Option<String>,
    /// Deliveries per `rate_limit_period` (in flight for `concurrent`).
    #[schema(minimum = 0)]
    pub rate_limit: Option<u32>,
    pub rate_limit_period: Option<RateLimitPeriod>,
    /// Overrides the method of the requests sent to the source.
    pub http_method: Option<HttpMethod>,
    pub auth_method: Option<AuthMethodInput>,
    /// Whether the request's path is left off the URL.
    pub path_forwarding_disabled: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitPeriod {
    Second,
    Minute,
    Hour,
    Concurrent,
}

/// `POST /connections`, `PUT /connections`: the ends by id, or inline
/// objects (created, or changed by name); without a name it is named
/// `{source}-{destination}`.
#[derive(Deserialize, ToSchema)]
pub struct ConnectionInput {
    #[schema(pattern = "^[A-z0-9_-]+$", max_length = 155)]
    pub name: Option<String>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
    #[schema(max_length = 255)]
    pub source_id: Option<String>,
    #[schema(max_length = 255)]
    pub destination_id: Option<String>,
    pub source: Option<SourceInput>,
    pub destination: Option<DestinationInput>,
    pub rules: Option<Vec<RuleInput>>,
}

/// `PUT /connections/{id}`: the fields to change (its ends stay).
#[derive(Deserialize, ToSchema)]
pub struct ConnectionChange {
    #[schema(pattern = "^[A-z0-9_-]+$", max_length = 155)]
    pub name: Option<String>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
    pub rules: Option<Vec<RuleInput>>,
}

/// One of a connection's rules, applied in order, told apart by `type`.
#[derive(Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum RuleInput {
    Retry(RetryRule),
    Filter(FilterRule),
    Transform(TransformRule),
    /// The reference spells the transform rule's type both ways.
    Transformation(TransformRule),
    Delay(DelayRule),
    /// hookgate's addition.
    Deduplicate(DeduplicateRule),
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RetryStrategy {
    Linear,
    Exponential,
}

/// Automatic retries of failed deliveries.
#[derive(Deserialize, ToSchema)]
pub struct RetryRule {
    /// Defaults to `linear`.
    pub strategy: Option<RetryStrategy>,
    /// Milliseconds between retries; defaults to 60000.
    #[schema(minimum = 0)]
    pub interval: Option<u64>,
    /// Most retries; defaults to 5.
    #[schema(minimum = 0)]
    pub count: Option<u32>,
    /// Statuses that are retried (`"500"`, `"400-499"`, `"!404"`); all failures when empty.
    pub response_status_codes: Option<Vec<String>>,
}

/// Passes only requests whose parts match (Hookdeck's filter syntax).
#[derive(Deserialize, ToSchema)]
pub struct FilterRule {
    pub headers: Option<Value>,
    pub body: Option<Value>,
    pub query: Option<Value>,
    pub path: Option<Value>,
}

/// Runs a JavaScript transformation on the request.
#[derive(Deserialize, ToSchema)]
pub struct TransformRule {
    /// A stored transformation (`trs_…`).
    pub transformation_id: Option<String>,
    /// Or one defined here: stored as a transformation (a name already
    /// taken with the same code and env is that one; with other code, 409),
    /// which the rule then refers to by `transformation_id`.
    pub transformation: Option<InlineTransformation>,
}

/// A transformation given inside a rule.
#[derive(Deserialize, ToSchema)]
pub struct InlineTransformation {
    pub name: String,
    /// `addHandler('transform', (request, context) => request)`
    pub code: String,
    /// `process.env` inside the handler.
    pub env: Option<BTreeMap<String, String>>,
}

/// Holds each event this long after its request arrived.
#[derive(Deserialize, ToSchema)]
pub struct DelayRule {
    /// Milliseconds.
    #[schema(minimum = 0)]
    pub delay: u64,
}

/// Drops a request equal to one seen within the window.
#[derive(Deserialize, ToSchema)]
pub struct DeduplicateRule {
    /// Milliseconds.
    #[schema(minimum = 0)]
    pub window: u64,
    pub include_fields: Option<Vec<String>>,
    pub exclude_fields: Option<Vec<String>>,
}

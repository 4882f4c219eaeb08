//! The configured objects: sources, destinations and the connections between them.
//! A `Catalog` is an immutable snapshot; a config change builds a new one.

use crate::pipeline::{Rule, RuleSpec};
use crate::signing::destination_auth::DestinationAuth;
use crate::verify::Verifier;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// What the ingress answers on accepted requests instead of its default JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomResponse {
    /// The `Content-Type` it is answered with.
    pub content_type: String,
    pub body: String,
}

/// A custom response's content types as the reference names them (`json`,
/// `text`, `xml`), and the `Content-Type` each is answered with.
const CONTENT_TYPES: [(&str, &str); 3] = [
    ("json", "application/json"),
    ("text", "text/plain"),
    ("xml", "application/xml"),
];

impl CustomResponse {
    /// `body` answered as the content type the reference names `name`; None
    /// for a name it does not have.
    pub fn named(name: &str, body: String) -> Option<CustomResponse> {
        let (_, mime) = CONTENT_TYPES.iter().find(|(known, _)| *known == name)?;
        Some(CustomResponse {
            content_type: mime.to_string(),
            body,
        })
    }

    /// The reference's name of its content type, as it was given.
    pub fn content_type_name(&self) -> &str {
        CONTENT_TYPES
            .iter()
            .find(|(_, mime)| *mime == self.content_type)
            .map_or(self.content_type.as_str(), |(name, _)| name)
    }
}

#[derive(Debug, Clone)]
pub struct Source {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// Upper-case method names.
    pub allowed_http_methods: Vec<String>,
    pub custom_response: Option<CustomResponse>,
    /// Proves requests come from the provider; None accepts every request.
    pub verifier: Option<Arc<Verifier>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatePeriod {
    Second,
    Minute,
    Hour,
}

impl RatePeriod {
    pub fn duration(self) -> Duration {
        match self {
            RatePeriod::Second => Duration::from_secs(1),
            RatePeriod::Minute => Duration::from_secs(60),
            RatePeriod::Hour => Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub count: u32,
    pub period: RatePeriod,
}

#[derive(Debug, Clone)]
pub struct Destination {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// Where deliveries go; None for a CLI destination (only a `cli_path`),
    /// delivered to through `hookgate listen` (`delivery::cli`).
    pub url: Option<Url>,
    /// A CLI destination's path: where `hookgate listen` delivers, under its
    /// local URL (the forwarded path follows it).
    pub cli_path: Option<String>,
    /// Overrides the request's method when set.
    pub http_method: Option<String>,
    pub path_forwarding_disabled: bool,
    pub rate_limit: Option<RateLimit>,
    /// Most attempts in flight at once to this destination.
    pub concurrency: usize,
    /// Whether `concurrency` was given as `rate_limit` with
    /// `rate_limit_period = "concurrent"` (and is shown that way).
    pub concurrency_is_rate_limit: bool,
    /// How each delivery proves it comes from this gateway.
    pub auth: Arc<DestinationAuth>,
    /// Whether consecutive failures open a circuit that pauses deliveries
    /// (outbound endpoints have one; relayed destinations retry by their rules).
    pub circuit_breaker: bool,
    /// Whether the address policy applies to its requests.
    pub origin: Origin,
}

/// Who chose where a destination points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Declared in gateway.toml: the operator's, may point anywhere.
    File,
    /// Created through the API (destinations, outbound endpoints, issue
    /// webhooks): held to `[delivery]`'s address policy.
    Api,
}

#[derive(Debug, Clone)]
pub struct Connection {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub source_id: String,
    pub destination_id: String,
    /// Applied in the order written.
    pub rules: Vec<Rule>,
    /// The rules as configured (what the API shows).
    pub rule_specs: Vec<RuleSpec>,
}

/// The objects the gateway serves right now, indexed for the hot paths.
#[derive(Debug, Default)]
pub struct Catalog {
    sources_by_name: HashMap<String, Arc<Source>>,
    sources_by_id: HashMap<String, Arc<Source>>,
    destinations: HashMap<String, Arc<Destination>>,
    connections: HashMap<String, Arc<Connection>>,
    connections_by_source: HashMap<String, Vec<Arc<Connection>>>,
    /// Outbound endpoints, delivered to like destinations but managed under `/v1`.
    endpoints: HashMap<String, Arc<Destination>>,
    /// Archived sources, by name and by id: not served, but their requests
    /// are told so (and recorded with their own redactions).
    archived_sources: HashMap<String, Arc<Source>>,
}

impl Catalog {
    pub fn new(
        sources: Vec<Source>,
        destinations: Vec<Destination>,
        connections: Vec<Connection>,
    ) -> Self {
        let mut catalog = Catalog::default();
        for source in sources.into_iter().map(Arc::new) {
            catalog
                .sources_by_name
                .insert(source.name.clone(), source.clone());
            catalog.sources_by_id.insert(source.id.clone(), source);
        }
        for destination in destinations.into_iter().map(Arc::new) {
            catalog
                .destinations
                .insert(destination.id.clone(), destination);
        }
        for connection in connections.into_iter().map(Arc::new) {
            catalog
                .connections_by_source
                .entry(connection.source_id.clone())
                .or_default()
                .push(connection.clone());
            catalog
                .connections
                .insert(connection.id.clone(), connection);
        }
        catalog
    }

    /// A source by the name or the id used in its URL.
    pub fn source(&self, name_or_id: &str) -> Option<&Arc<Source>> {
        self.sources_by_name
            .get(name_or_id)
            .or_else(|| self.sources_by_id.get(name_or_id))
    }

    /// The same catalog knowing `sources` as archived.
    pub fn with_archived_sources(mut self, sources: Vec<Source>) -> Catalog {
        for source in sources.into_iter().map(Arc::new) {
            self.archived_sources
                .insert(source.name.clone(), source.clone());
            self.archived_sources.insert(source.id.clone(), source);
        }
        self
    }

    /// An archived source by the name or the id used in its URL.
    pub fn archived_source(&self, name_or_id: &str) -> Option<&Arc<Source>> {
        self.archived_sources.get(name_or_id)
    }

    /// A source, served or archived.
    pub fn source_even_archived(&self, name_or_id: &str) -> Option<&Arc<Source>> {
        self.source(name_or_id)
            .or_else(|| self.archived_source(name_or_id))
    }

    /// Every source, by name.
    pub fn sources(&self) -> Vec<&Arc<Source>> {
        sorted_by_name(self.sources_by_id.values(), |s| &s.name)
    }

    /// Every connection, by name.
    pub fn connections(&self) -> Vec<&Arc<Connection>> {
        sorted_by_name(self.connections.values(), |c| &c.name)
    }

    pub fn destination(&self, id: &str) -> Option<&Arc<Destination>> {
        self.destinations.get(id)
    }

    /// The destination with that id, else that name (the API takes either).
    pub fn destination_by_id_or_name(&self, id_or_name: &str) -> Option<&Arc<Destination>> {
        self.destination(id_or_name)
            .or_else(|| self.destinations.values().find(|d| d.name == id_or_name))
    }

    /// Every destination, by name.
    pub fn destinations(&self) -> Vec<&Arc<Destination>> {
        sorted_by_name(self.destinations.values(), |d| &d.name)
    }

    /// What a delivery lane sends to: a destination (by URL, or through
    /// `hookgate listen` when it has only a `cli_path`) or an outbound endpoint.
    pub fn target(&self, id: &str) -> Option<&Arc<Destination>> {
        self.destinations.get(id).or_else(|| self.endpoints.get(id))
    }

    /// Every destination and endpoint id, for starting their lanes.
    pub fn target_ids(&self) -> Vec<String> {
        self.destinations
            .keys()
            .chain(self.endpoints.keys())
            .cloned()
            .collect()
    }

    /// The same catalog serving `endpoints` as its outbound endpoints.
    pub fn with_endpoints(&self, endpoints: Vec<Destination>) -> Catalog {
        Catalog {
            sources_by_name: self.sources_by_name.clone(),
            sources_by_id: self.sources_by_id.clone(),
            destinations: self.destinations.clone(),
            connections: self.connections.clone(),
            connections_by_source: self.connections_by_source.clone(),
            endpoints: endpoints
                .into_iter()
                .map(|e| (e.id.clone(), Arc::new(e)))
                .collect(),
            archived_sources: self.archived_sources.clone(),
        }
    }

    /// The outbound endpoints being served.
    pub fn endpoints(&self) -> Vec<Destination> {
        self.endpoints
            .values()
            .map(|e| e.as_ref().clone())
            .collect()
    }

    pub fn connection(&self, id: &str) -> Option<&Arc<Connection>> {
        self.connections.get(id)
    }

    /// The connections fed by a source, in declaration order.
    pub fn connections_of(&self, source_id: &str) -> &[Arc<Connection>] {
        self.connections_by_source
            .get(source_id)
            .map_or(&[], Vec::as_slice)
    }
}

fn sorted_by_name<'c, T>(
    items: impl Iterator<Item = &'c Arc<T>>,
    name: impl Fn(&T) -> &String,
) -> Vec<&'c Arc<T>> {
    let mut items: Vec<_> = items.collect();
    items.sort_by(|a, b| name(a).cmp(name(b)));
    items
}

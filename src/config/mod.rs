//! gateway.toml: loading, defaults, and validation that names the file, line and
//! key of every problem.

mod api_objects;
mod bounds;
mod declarations;
mod error;
#[cfg(test)]
mod properties;
mod sections;

pub use api_objects::{refuse_operator_only, ApiObject, ObjectErrors, ObjectKind, OperatorOnly};
pub use declarations::object_fingerprints;
pub use error::{ConfigError, ConfigErrors};
pub use sections::{
    DeliverySection, LimitsSection, LogFormat, OutboundSection, RetentionSection, ServerSection,
};

use crate::ids::named_id;
use crate::model::{
    Catalog, Connection, CustomResponse, Destination, Origin, RateLimit, RatePeriod, Source,
};
use crate::pipeline::transform::WorkerPool;
use crate::pipeline::{CompileContext, Rule, RuleSpec};
use crate::signing::destination_auth::{AuthMethodConfig, DestinationAuth};
use error::Locator;
use sections::{
    ConnectionSection, DestinationSection, FileConfig, SourceSection, TelemetrySection,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml::Spanned;

/// A validated configuration, ready to serve.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub server: ServerSection,
    pub limits: LimitsSection,
    pub delivery: DeliverySection,
    pub outbound: OutboundSection,
    pub retention: RetentionSection,
    /// `[telemetry] otlp_endpoint`, checked: where spans are exported (None: nowhere).
    pub otlp_endpoint: Option<url::Url>,
    /// `server.api_keys`, resolved.
    pub api_keys: Vec<String>,
    /// `server.secrets_key`, resolved.
    pub secrets_key: Option<crate::sealing::SecretsKey>,
    /// `[store]`, resolved: where the store keeps its records.
    pub store: crate::store::Backend,
    /// `store.lease_ms`: how long a node of a cluster holds a lease unrenewed.
    pub lease: std::time::Duration,
    /// `[delivery] signing_secret`, resolved: when set, it signs instead of
    /// the workspace secret kept in `data_dir` (see `signing::workspace_secret`).
    pub signing_secret: Option<String>,
    pub sources: Vec<Source>,
    pub destinations: Vec<Destination>,
    pub connections: Vec<Connection>,
    /// API-created sources that are archived, built as if served (see
    /// `with_api_objects`).
    pub archived_sources: Vec<Source>,
    /// The file's own text, to validate API objects against (see `with_api_objects`).
    pub text: String,
    /// Ids of the objects the file declares: read-only through the API.
    pub declared: std::collections::BTreeSet<String>,
    /// The worker processes that run this config's transformations (and the
    /// API's trial runs).
    pub transform_pool: Arc<WorkerPool>,
    /// What loads but is questionable: filters that can never match as meant.
    pub warnings: Vec<ConfigError>,
}

/// Below this a transformation worker cannot even start.
const MIN_TRANSFORM_MEMORY_BYTES: u64 = 256 * 1024 * 1024;

const HTTP_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
const DEFAULT_SOURCE_METHODS: &[&str] = &["POST", "PUT", "PATCH", "DELETE"];

impl Config {
    /// Reads and validates a config file. Relative paths in it (data_dir, rule
    /// files) are relative to the file's folder.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![Locator::new(path, "").error(
                None,
                "",
                format!("cannot read: {e}"),
            )])
        })?;
        Config::parse(path, &text)
    }

    /// Validates config text as if read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
        let locator = Locator::new(path, text);
        let file: FileConfig =
            toml::from_str(text).map_err(|e| ConfigErrors(vec![locator.toml_error(&e)]))?;
        let base_dir = path.parent().unwrap_or(Path::new("."));
        let validator = Validator {
            locator,
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        let mut config = validator.validate(file, path, base_dir)?;
        config.text = text.to_string();
        config.declared = api_objects::declared_ids(&config);
        Ok(config)
    }

    pub fn catalog(&self) -> Catalog {
        Catalog::new(
            self.sources.clone(),
            self.destinations.clone(),
            self.connections.clone(),
        )
        .with_archived_sources(self.archived_sources.clone())
    }
}

/// How a destination's `rate_limit` limits its deliveries.
enum DeliveryLimit {
    Rate(RateLimit),
    /// `rate_limit_period = "concurrent"`: at most this many in flight.
    Concurrent(usize),
}

/// Collects every problem instead of stopping at the first, so that `check`
/// shows a user all there is to fix at once.
struct Validator<'a> {
    locator: Locator<'a>,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
}

impl Validator<'_> {
    fn validate(
        mut self,
        file: FileConfig,
        path: &Path,
        base_dir: &Path,
    ) -> Result<Config, ConfigErrors> {
        self.bounds(&file);
        let api_keys = self.api_keys(&file.server);
        let secrets_key = self.secrets_key(&file.server);
        let store = self.store_backend(&file.store);
        let lease = std::time::Duration::from_millis(file.store.lease_ms);
        let signing_secret = self.signing_secret(&file.delivery);
        let otlp_endpoint = self.otlp_endpoint(&file.telemetry);
        let sources = self.sources(&file.sources);
        let destinations = self.destinations(&file.destinations, &file.delivery);
        // References are checked against every declared name, so that one bad
        // destination yields its own error, not one per connection using it.
        let transform_pool = self.transform_pool(&file, base_dir);
        let rule_context = CompileContext {
            base_dir,
            transform_limits: file.limits.transform_limits(),
            transform_pool: transform_pool.clone(),
            filter_max_steps: file.limits.filter_max_steps.get(),
        };
        let connections = self.connections(
            &file.connections,
            &file.sources,
            &file.destinations,
            &rule_context,
        );
        if !self.errors.is_empty() {
            return Err(ConfigErrors(self.errors));
        }
        let mut server = file.server;
        server.data_dir = base_dir.join(&server.data_dir);
        Ok(Config {
            file: path.to_path_buf(),
            server,
            limits: file.limits,
            delivery: file.delivery,
            outbound: file.outbound,
            retention: file.retention,
            otlp_endpoint,
            api_keys,
            secrets_key,
            store,
            lease,
            signing_secret,
            sources,
            destinations,
            connections,
            archived_sources: Vec::new(),
            transform_pool,
            text: String::new(),
            declared: Default::default(),
            warnings: self.warnings,
        })
    }

    /// The worker pool for this config's transformations: the one already
    /// running with the same settings, if any.
    fn transform_pool(&mut self, file: &FileConfig, base_dir: &Path) -> Arc<WorkerPool> {
        if file.limits.transform_max_memory_bytes < MIN_TRANSFORM_MEMORY_BYTES {
            self.errors.push(self.locator.error(
                None,
                "limits.transform_max_memory_bytes",
                format!("must be at least {MIN_TRANSFORM_MEMORY_BYTES}: a worker maps about 200 MiB (its binary, its 64 MiB engine stack) before running anything"),
            ));
        }
        let worker_exe = match &file.server.transform_worker_exe {
            Some(exe) => base_dir.join(exe),
            None => std::env::current_exe().unwrap_or_else(|e| {
                self.errors.push(self.locator.error(
                    None,
                    "server.transform_worker_exe",
                    format!("the running binary cannot be found ({e}); name it here"),
                ));
                PathBuf::from("hookgate")
            }),
        };
        WorkerPool::shared(file.limits.transform_pool(worker_exe))
    }

    fn bounds(&mut self, file: &FileConfig) {
        for out in bounds::out_of_bounds(file) {
            let span = self.locator.key_span(out.key);
            self.errors
                .push(self.locator.error(span, out.path, out.message));
        }
    }

    fn fail<T>(&mut self, at: &Spanned<T>, key: String, message: impl Into<String>) {
        self.errors
            .push(self.locator.error(Some(at.span()), key, message));
    }

    /// Checks a name is present, well-formed and not taken by an earlier object of the same kind.
    fn name(&mut self, name: &Spanned<String>, key: String, seen: &mut HashMap<String, ()>) {
        let text = name.get_ref();
        if text.is_empty()
            || !text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            self.fail(
                name,
                key,
                format!("\"{text}\" is not a valid name (letters, digits, - and _ only)"),
            );
        } else if let Err(message) = crate::names::check_length(text) {
            self.fail(name, key, message);
        } else if seen.insert(text.clone(), ()).is_some() {
            self.fail(name, key, format!("duplicate name \"{text}\""));
        }
    }

    fn sources(&mut self, sections: &[SourceSection]) -> Vec<Source> {
        let mut seen = HashMap::new();
        let mut sources = Vec::new();
        for (i, section) in sections.iter().enumerate() {
            self.name(&section.name, format!("sources[{i}].name"), &mut seen);
            let methods = match &section.allowed_http_methods {
                Some(methods) => {
                    self.methods(methods, format!("sources[{i}].allowed_http_methods"))
                }
                None => DEFAULT_SOURCE_METHODS
                    .iter()
                    .map(|m| m.to_string())
                    .collect(),
            };
            let custom_response = section.custom_response.as_ref().and_then(|custom| {
                let name = custom.content_type.get_ref();
                let answer = CustomResponse::named(name, custom.body.clone());
                if answer.is_none() {
                    let message =
                        format!("unknown content_type \"{name}\" (expected json, text or xml)");
                    self.fail(
                        &custom.content_type,
                        format!("sources[{i}].custom_response.content_type"),
                        message,
                    );
                }
                answer
            });
            let verifier =
                section.verification.as_ref().and_then(|verification| {
                    match verification.get_ref().build() {
                        Ok(verifier) => Some(Arc::new(verifier)),
                        Err(message) => {
                            self.fail(verification, format!("sources[{i}].verification"), message);
                            None
                        }
                    }
                });
            sources.push(Source {
                id: named_id("src", section.name.get_ref()),
                name: section.name.get_ref().clone(),
                description: self.description(&section.description, format!("sources[{i}]")),
                allowed_http_methods: methods,
                custom_response,
                verifier,
            });
        }
        sources
    }

    /// An object's `description`, at most the reference's 500 characters.
    fn description(&mut self, written: &Option<Spanned<String>>, object: String) -> Option<String> {
        const MAX_CHARS: usize = 500;
        let written = written.as_ref()?;
        if written.get_ref().chars().count() > MAX_CHARS {
            let message = format!("longer than {MAX_CHARS} characters");
            self.fail(written, format!("{object}.description"), message);
        }
        Some(written.get_ref().clone())
    }

    fn methods(&mut self, methods: &Spanned<Vec<String>>, key: String) -> Vec<String> {
        let upper: Vec<String> = methods
            .get_ref()
            .iter()
            .map(|m| m.to_ascii_uppercase())
            .collect();
        if let Some(bad) = upper.iter().find(|m| !HTTP_METHODS.contains(&m.as_str())) {
            self.fail(
                methods,
                key,
                format!(
                    "unknown HTTP method \"{bad}\" (expected one of {})",
                    HTTP_METHODS.join(", ")
                ),
            );
        }
        upper
    }

    fn destinations(
        &mut self,
        sections: &[DestinationSection],
        delivery: &DeliverySection,
    ) -> Vec<Destination> {
        let mut seen = HashMap::new();
        let mut destinations = Vec::new();
        for (i, section) in sections.iter().enumerate() {
            self.name(&section.name, format!("destinations[{i}].name"), &mut seen);
            let url = self.destination_url(section, i);
            self.cli_path(section, i);
            let http_method = section.http_method.as_ref().map(|method| {
                let key = format!("destinations[{i}].http_method");
                let spanned_list = Spanned::new(method.span(), vec![method.get_ref().clone()]);
                self.methods(&spanned_list, key).remove(0)
            });
            let limit = self.delivery_limit(section, i);
            let Some(auth) = self.auth(section, i) else {
                continue;
            };
            let (rate_limit, concurrency) = match limit {
                Some(DeliveryLimit::Concurrent(count)) => (None, Some(count)),
                Some(DeliveryLimit::Rate(rate)) => (Some(rate), section.concurrent),
                None => (None, section.concurrent),
            };
            destinations.push(Destination {
                id: named_id("des", section.name.get_ref()),
                name: section.name.get_ref().clone(),
                description: self.description(&section.description, format!("destinations[{i}]")),
                url,
                cli_path: section.cli_path.as_ref().map(|p| p.get_ref().clone()),
                http_method,
                path_forwarding_disabled: section.path_forwarding_disabled,
                rate_limit,
                concurrency: concurrency.unwrap_or(delivery.default_concurrency).max(1),
                concurrency_is_rate_limit: matches!(limit, Some(DeliveryLimit::Concurrent(_))),
                auth,
                circuit_breaker: false,
                origin: Origin::File,
            });
        }
        destinations
    }

    /// A CLI destination's path: `hookgate listen` appends it to a local URL,
    /// so it is held to what a forwarded path may be (starts with `/`, no
    /// dot segments, `?` or `#`).
    fn cli_path(&mut self, section: &DestinationSection, i: usize) {
        let Some(path) = &section.cli_path else {
            return;
        };
        let checked = match path.get_ref().as_str() {
            "" => Err("\"\" is refused: it must start with /".to_string()),
            text => {
                crate::forwarded_path::check(text).map_err(|unsafe_path| unsafe_path.to_string())
            }
        };
        if let Err(message) = checked {
            self.fail(path, format!("destinations[{i}].cli_path"), message);
        }
    }

    /// A destination's `url` (http or https), or None for one with only a
    /// `cli_path`; one of them is required.
    fn destination_url(&mut self, section: &DestinationSection, i: usize) -> Option<url::Url> {
        let Some(written) = &section.url else {
            if section.cli_path.is_none() {
                let message = "give url (or cli_path, for a CLI destination)";
                self.fail(&section.name, format!("destinations[{i}].url"), message);
            }
            return None;
        };
        let url = written.get_ref();
        if !matches!(url.scheme(), "http" | "https") {
            self.fail(
                written,
                format!("destinations[{i}].url"),
                format!("\"{url}\" must be an http or https URL"),
            );
        }
        Some(url.clone())
    }

    fn api_keys(&mut self, server: &ServerSection) -> Vec<String> {
        let mut keys = Vec::new();
        for (i, key) in server.api_keys.iter().enumerate() {
            match crate::secret::resolve_required("api_keys", key.get_ref()) {
                Ok(resolved) => keys.push(resolved),
                Err(message) => self.fail(key, format!("server.api_keys[{i}]"), message),
            }
        }
        keys
    }

    fn secrets_key(&mut self, server: &ServerSection) -> Option<crate::sealing::SecretsKey> {
        let written = server.secrets_key.as_ref()?;
        let parsed = crate::secret::resolve_required("secrets_key", written.get_ref())
            .and_then(|key| crate::sealing::SecretsKey::parse(&key));
        match parsed {
            Ok(key) => Some(key),
            Err(message) => {
                self.fail(written, "server.secrets_key".into(), message);
                None
            }
        }
    }

    /// `[store]`: the embedded store, or PostgreSQL at `url` (resolved,
    /// `env:NAME`), which `postgres` requires.
    fn store_backend(&mut self, store: &sections::StoreSection) -> crate::store::Backend {
        use crate::store::{Backend, RemoteSettings};
        if *store.backend.get_ref() == sections::StoreBackend::Embedded {
            return Backend::Embedded;
        }
        let Some(url) = &store.url else {
            let message =
                "backend = \"postgres\" needs store.url (e.g. \"env:HOOKGATE_DATABASE_URL\")";
            self.fail(&store.backend, "store.url".into(), message);
            return Backend::Embedded;
        };
        let timeout = std::time::Duration::from_millis(store.statement_timeout_ms);
        let pool_size = usize::try_from(store.pool_size).unwrap_or(usize::MAX);
        let settings = crate::secret::resolve_required("url", url.get_ref())
            .and_then(|text| RemoteSettings::parse(&text, pool_size, timeout));
        match settings {
            Ok(settings) => Backend::Postgres(Box::new(settings)),
            Err(message) => {
                self.fail(url, "store.url".into(), message);
                Backend::Embedded
            }
        }
    }

    /// `[delivery] signing_secret`, resolved (`env:NAME`); None when not set.
    fn signing_secret(&mut self, delivery: &DeliverySection) -> Option<String> {
        let secret = delivery.signing_secret.as_ref()?;
        match crate::secret::resolve_required("signing_secret", secret.get_ref()) {
            Ok(resolved) => Some(resolved),
            Err(message) => {
                self.fail(secret, "delivery.signing_secret".into(), message);
                None
            }
        }
    }

    /// An http(s) URL with a host, or nothing when empty.
    fn otlp_endpoint(&mut self, telemetry: &TelemetrySection) -> Option<url::Url> {
        let written = telemetry.otlp_endpoint.as_ref()?;
        let text = written.get_ref().trim();
        if text.is_empty() {
            return None;
        }
        let url = url::Url::parse(text)
            .map_err(|e| e.to_string())
            .and_then(|url| {
                let http = matches!(url.scheme(), "http" | "https") && url.host().is_some();
                let plain = url.query().is_none() && url.fragment().is_none();
                match (http, plain) {
                    (true, true) => Ok(url),
                    (false, _) => Err("not an http(s) URL with a host".to_string()),
                    (true, false) => Err("a base URL takes no query or fragment".to_string()),
                }
            });
        let key = "telemetry.otlp_endpoint".to_string();
        url.map_err(|e| self.fail(written, key, format!("{text:?}: {e}")))
            .ok()
    }

    /// Builds a destination's auth method (default: `hookgate_signature`).
    fn auth(&mut self, section: &DestinationSection, i: usize) -> Option<Arc<DestinationAuth>> {
        let key = format!("destinations[{i}].auth_method");
        let Some(method) = &section.auth_method else {
            let auth = AuthMethodConfig::HookgateSignature.build();
            return auth.ok().map(Arc::new);
        };
        match method.get_ref().build() {
            Ok(auth) => Some(Arc::new(auth)),
            Err(message) => {
                self.fail(method, key, message);
                None
            }
        }
    }

    /// `rate_limit` per `rate_limit_period` (default second), or, with
    /// `"concurrent"`, the most deliveries in flight at once. The period is
    /// checked even without a limit (Hookdeck's bodies send it alone).
    fn delivery_limit(&mut self, section: &DestinationSection, i: usize) -> Option<DeliveryLimit> {
        let key = |field: &str| format!("destinations[{i}].{field}");
        let period = match &section.rate_limit_period {
            None => Some(RatePeriod::Second),
            Some(period) => match period.get_ref().as_str() {
                "second" => Some(RatePeriod::Second),
                "minute" => Some(RatePeriod::Minute),
                "hour" => Some(RatePeriod::Hour),
                "concurrent" if section.concurrent.is_some() => {
                    let message = "give concurrent or rate_limit_period = \"concurrent\", not both";
                    self.fail(period, key("rate_limit_period"), message);
                    return None;
                }
                "concurrent" => None,
                other => {
                    let message = format!(
                        "unknown period \"{other}\" (expected second, minute, hour or concurrent)"
                    );
                    self.fail(period, key("rate_limit_period"), message);
                    return None;
                }
            },
        };
        let at = section.rate_limit.as_ref()?;
        let count = *at.get_ref();
        if count == 0 {
            self.fail(at, key("rate_limit"), "must be at least 1");
            return None;
        }
        Some(match period {
            Some(period) => DeliveryLimit::Rate(RateLimit { count, period }),
            None => DeliveryLimit::Concurrent(count as usize),
        })
    }

    fn connections(
        &mut self,
        sections: &[ConnectionSection],
        sources: &[SourceSection],
        destinations: &[DestinationSection],
        rule_context: &CompileContext,
    ) -> Vec<Connection> {
        let mut seen = HashMap::new();
        let mut connections = Vec::new();
        for (i, section) in sections.iter().enumerate() {
            self.name(&section.name, format!("connections[{i}].name"), &mut seen);
            let source = self.reference(
                &section.source,
                sources.iter().map(|s| s.name.get_ref()),
                format!("connections[{i}].source"),
                "source",
            );
            let destination = self.reference(
                &section.destination,
                destinations.iter().map(|d| d.name.get_ref()),
                format!("connections[{i}].destination"),
                "destination",
            );
            let (rule_specs, rules) = self.rules(section, i, rule_context).into_iter().unzip();
            if let (Some(source), Some(destination)) = (source, destination) {
                connections.push(Connection {
                    id: named_id("web", section.name.get_ref()),
                    name: section.name.get_ref().clone(),
                    description: self
                        .description(&section.description, format!("connections[{i}]")),
                    source_id: named_id("src", &source),
                    destination_id: named_id("des", &destination),
                    rules,
                    rule_specs,
                });
            }
        }
        connections
    }

    /// Resolves a by-name reference to a declared object, or records why not.
    fn reference<'n>(
        &mut self,
        name: &Spanned<String>,
        declared: impl Iterator<Item = &'n String>,
        key: String,
        kind: &str,
    ) -> Option<String> {
        let declared: Vec<&String> = declared.collect();
        if declared.contains(&name.get_ref()) {
            return Some(name.get_ref().clone());
        }
        let known = declared
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ");
        self.fail(
            name,
            key,
            format!(
                "unknown {kind} \"{}\" (declared: {})",
                name.get_ref(),
                if known.is_empty() {
                    "none".into()
                } else {
                    known
                }
            ),
        );
        None
    }

    /// A connection's rules, written inline (`rules`) or in a file (`rules_file`).
    fn rules(
        &mut self,
        section: &ConnectionSection,
        i: usize,
        context: &CompileContext,
    ) -> Vec<(RuleSpec, Rule)> {
        let Some(file) = &section.rules_file else {
            let compiled = compile_rules(
                &section.rules,
                &self.locator,
                &format!("connections[{i}].rules"),
                context,
            );
            return self.take(compiled);
        };
        let key = format!("connections[{i}].rules_file");
        if !section.rules.is_empty() {
            self.fail(file, key, "give rules or rules_file, not both");
            return Vec::new();
        }
        let path = context.base_dir.join(file.get_ref());
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                self.fail(file, key, format!("cannot read {}: {e}", path.display()));
                return Vec::new();
            }
        };
        let locator = Locator::new(&path, &text);
        // Code files named in a rules file are relative to that file.
        let file_context = CompileContext {
            base_dir: path.parent().unwrap_or(context.base_dir),
            transform_limits: context.transform_limits.clone(),
            transform_pool: context.transform_pool.clone(),
            filter_max_steps: context.filter_max_steps,
        };
        match toml::from_str::<RulesFile>(&text) {
            Ok(parsed) => {
                let compiled = compile_rules(&parsed.rules, &locator, "rules", &file_context);
                self.take(compiled)
            }
            Err(e) => {
                self.errors.push(locator.toml_error(&e));
                Vec::new()
            }
        }
    }
}

/// A file named by a connection's `rules_file`: `rules = [ … ]`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    rules: Vec<Spanned<RuleSpec>>,
}

/// Rules compiled from one list, and what was found wrong or questionable.
struct CompiledRules {
    rules: Vec<(RuleSpec, Rule)>,
    errors: Vec<ConfigError>,
    /// Filters that load but can never match as meant (see `FilterWarning`).
    warnings: Vec<ConfigError>,
}

impl Validator<'_> {
    fn take(&mut self, compiled: CompiledRules) -> Vec<(RuleSpec, Rule)> {
        self.errors.extend(compiled.errors);
        self.warnings.extend(compiled.warnings);
        compiled.rules
    }
}

/// Compiles rules, locating each problem with `locator` under `key` (`…rules[j]`).
fn compile_rules(
    specs: &[Spanned<RuleSpec>],
    locator: &Locator,
    key: &str,
    context: &CompileContext,
) -> CompiledRules {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut retries = 0;
    for (j, spec) in specs.iter().enumerate() {
        let key = format!("{key}[{j}]");
        if matches!(spec.get_ref(), RuleSpec::Retry { .. }) {
            retries += 1;
            if retries > 1 {
                errors.push(locator.error(
                    Some(spec.span()),
                    key.clone(),
                    "only one retry rule is allowed per connection",
                ));
            }
        }
        match spec.get_ref().compile(context) {
            Ok(rule) => {
                if let Rule::Filter(filter) = &rule {
                    warnings.extend(filter.warnings().into_iter().map(|warning| {
                        let key = format!("{key}.{}", warning.key);
                        locator.error(Some(spec.span()), key, warning.message)
                    }));
                }
                rules.push((spec.get_ref().clone(), rule));
            }
            Err(message) => errors.push(locator.error(Some(spec.span()), key, message)),
        }
    }
    CompiledRules {
        rules,
        errors,
        warnings,
    }
}

#[cfg(test)]
mod store_section_tests {
    use super::*;

    fn parsed(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("gateway.toml"), text).map_err(|errors| errors.to_string())
    }

    #[test]
    fn the_store_is_embedded_unless_told_otherwise() {
        let config = parsed("").unwrap();
        assert!(matches!(config.store, crate::store::Backend::Embedded));
    }

    #[test]
    fn a_postgres_store_takes_its_url_from_the_environment_and_its_pool_settings() {
        std::env::set_var(
            "HOOKGATE_TEST_STORE_URL",
            "postgres://hookgate@db.internal:6432/hooks",
        );
        let text = "[store]\nbackend = \"postgres\"\nurl = \"env:HOOKGATE_TEST_STORE_URL\"\npool_size = 7\nstatement_timeout_ms = 1500\n";
        let crate::store::Backend::Postgres(settings) = parsed(text).unwrap().store else {
            panic!("not postgres");
        };
        assert_eq!(settings.config.get_dbname(), Some("hooks"));
        assert_eq!(settings.config.get_ports(), [6432]);
        assert_eq!(settings.pool_size, 7);
        assert_eq!(
            settings.statement_timeout,
            std::time::Duration::from_millis(1500)
        );
    }

    #[test]
    fn a_postgres_store_without_a_usable_url_is_refused_at_its_line() {
        let errors = parsed("[store]\nbackend = \"postgres\"\n").unwrap_err();
        assert!(
            errors.contains("gateway.toml:2:11: store.url: backend = \"postgres\" needs store.url"),
            "{errors}"
        );
        let errors = parsed("[store]\nbackend = \"postgres\"\nurl = \"env:HOOKGATE_TEST_UNSET\"\n")
            .unwrap_err();
        assert!(errors.contains("gateway.toml:3:7: store.url: url: environment variable `HOOKGATE_TEST_UNSET` is not set"), "{errors}");
        let errors =
            parsed("[store]\nbackend = \"postgres\"\nurl = \"postgres://h:notaport/db\"\n")
                .unwrap_err();
        assert!(
            errors.contains("gateway.toml:3:7: store.url: not a PostgreSQL connection string"),
            "{errors}"
        );
        let errors = parsed("[store]\nbackend = \"sqlite\"\n").unwrap_err();
        assert!(errors.contains("gateway.toml:2:"), "{errors}");
        let errors = parsed("[store]\npool_size = 0\n").unwrap_err();
        assert!(
            errors.contains("gateway.toml:2:1: store.pool_size: 0 is out of range"),
            "{errors}"
        );
    }
}

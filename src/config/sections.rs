//! The shape of gateway.toml, with defaults. Values a later check needs to point
//! at are `Spanned`, so errors can name their line.

use crate::address_policy::AddressPolicy;
use crate::pipeline::transform::{PoolSettings, TransformLimits};
use crate::pipeline::RuleSpec;
use crate::signing::destination_auth::AuthMethodConfig;
use crate::verify::VerificationConfig;
use ipnet::IpNet;
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use toml::Spanned;
use url::Url;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub delivery: DeliverySection,
    #[serde(default)]
    pub outbound: OutboundSection,
    #[serde(default)]
    pub retention: RetentionSection,
    #[serde(default)]
    pub telemetry: TelemetrySection,
    #[serde(default)]
    pub store: StoreSection,
    #[serde(default)]
    pub sources: Vec<SourceSection>,
    #[serde(default)]
    pub destinations: Vec<DestinationSection>,
    #[serde(default)]
    pub connections: Vec<ConnectionSection>,
}

/// `[store]`: where the store keeps its records.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSection {
    pub backend: Spanned<StoreBackend>,
    /// The PostgreSQL connection string (`env:NAME` allowed), for `postgres`.
    pub url: Option<Spanned<String>>,
    /// Connections each node keeps open to PostgreSQL at most.
    pub pool_size: u64,
    /// How long one PostgreSQL statement (or a wait for a pooled connection)
    /// may take before the store counts the database as unavailable.
    pub statement_timeout_ms: u64,
    /// How long a node holds a lane or the leadership without renewing it
    /// (it renews every third of it); a dead node's lanes move after it.
    pub lease_ms: u64,
}

/// `store.backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// The request journal and sled in `server.data_dir` (the default).
    Embedded,
    /// PostgreSQL, shared by every node of a cluster (preview).
    Postgres,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            backend: Spanned::new(0..0, StoreBackend::Embedded),
            url: None,
            pool_size: 16,
            statement_timeout_ms: 5_000,
            lease_ms: 10_000,
        }
    }
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// Public webhook ingress (pingora).
    pub ingress_listen: SocketAddr,
    /// Management API.
    pub api_listen: SocketAddr,
    /// The sled database folder.
    pub data_dir: PathBuf,
    /// How long SIGTERM waits for in-flight work before exiting anyway.
    pub shutdown_timeout_ms: u64,
    /// How long a graceful stop (SIGTERM) keeps both listeners serving with
    /// `/readyz` answering 503, so that load balancers move traffic away first.
    pub shutdown_drain_ms: u64,
    /// The ingress's URL as providers see it (behind a proxy or TLS terminator),
    /// e.g. `https://hooks.example.com`. Signatures over the URL (Twilio) are
    /// checked against it; without it the request's Host header is used.
    pub public_url: Option<Url>,
    /// Keys accepted by the management API (`env:NAME` allowed). Without any,
    /// the API does not listen.
    pub api_keys: Vec<Spanned<String>>,
    /// Calls per minute allowed to each API key.
    pub api_rate_limit_per_minute: u32,
    /// Failed API logins per minute allowed to each client address; past
    /// them its calls are answered 429 until its minute ends.
    pub api_failed_logins_per_minute: u32,
    /// Lets outbound endpoints use plain `http://` URLs (for development).
    pub allow_insecure_endpoints: bool,
    /// The program started as `<it> transform-worker` to run transformations;
    /// by default the running hookgate binary itself.
    pub transform_worker_exe: Option<PathBuf>,
    /// The key that seals stored secrets (base64 of 32 bytes, `env:NAME`
    /// allowed); without it, one generated in `data_dir/secrets.key`.
    pub secrets_key: Option<Spanned<String>>,
    /// The management API's URL as its users reach it, e.g.
    /// `https://hookgate-admin.example.com`: deliveries name their event
    /// there (`x-hookdeck-event-url`). Without it, `api_listen` when that is
    /// one address.
    pub api_public_url: Option<Url>,
    /// How `hookgate serve` writes its log (`--log-format` overrides it).
    pub log_format: LogFormat,
    /// Where `GET /metrics` (Prometheus) listens, without a key; `""` turns
    /// it off.
    #[serde(deserialize_with = "empty_is_off")]
    pub metrics_listen: Option<SocketAddr>,
}

/// `server.log_format`: lines for people, or one JSON object per line for
/// log collectors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// An address, or `""` for none.
fn empty_is_off<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

impl ServerSection {
    /// Where providers reach the ingress, without a trailing `/`: `public_url`,
    /// else the address it listens on (`bound`). A wildcard address is shown
    /// as the loopback one of its family: it names no host a provider could
    /// call, and a URL that works from this machine beats one that works nowhere.
    pub fn ingress_url(&self, bound: SocketAddr) -> String {
        if let Some(public) = &self.public_url {
            return without_trailing_slash(public);
        }
        let ip = match bound.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, bound.port()))
    }

    /// `api_public_url` without its trailing slash, when set.
    pub fn api_public_base(&self) -> Option<String> {
        self.api_public_url.as_ref().map(without_trailing_slash)
    }

    /// The management API's base URL as its users reach it, when known:
    /// `api_public_url`, else `api_listen` when that is one address.
    pub fn api_url(&self) -> Option<String> {
        if let Some(url) = self.api_public_base() {
            return Some(url);
        }
        let listen = self.api_listen;
        let one_address = !listen.ip().is_unspecified() && listen.port() != 0;
        one_address.then(|| format!("http://{listen}"))
    }
}

/// A base URL to join paths to (`https://host/in/` → `https://host/in`).
fn without_trailing_slash(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_string()
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            ingress_listen: ([0, 0, 0, 0], 8080).into(),
            api_listen: ([127, 0, 0, 1], 8081).into(),
            data_dir: PathBuf::from("./data"),
            shutdown_timeout_ms: 10_000,
            shutdown_drain_ms: 0,
            public_url: None,
            api_keys: Vec::new(),
            api_rate_limit_per_minute: 240,
            api_failed_logins_per_minute: 10,
            allow_insecure_endpoints: false,
            transform_worker_exe: None,
            secrets_key: None,
            api_public_url: None,
            log_format: LogFormat::Text,
            metrics_listen: Some(([127, 0, 0, 1], 9464).into()),
        }
    }
}

/// `[limits]`: every bound the gateway enforces.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSection {
    /// Larger request bodies are answered 413.
    pub max_body_bytes: usize,
    /// How much of a destination's response body each attempt keeps.
    pub max_response_bytes: usize,
    /// A destination that has not answered by then is a TIMEOUT.
    pub delivery_timeout_ms: u64,
    /// Most requests written per fsync.
    pub commit_batch: usize,
    /// Most requests waiting for the writer before senders are slowed down.
    pub commit_queue: usize,
    /// A transformation run longer than this fails (TRANSFORMATION_FAILED).
    pub transform_timeout_ms: u64,
    /// Loop iterations one transformation call may run.
    pub transform_max_loop_iterations: u64,
    /// Call depth one transformation may reach.
    pub transform_max_recursion: usize,
    /// Largest transformed request, serialized.
    pub transform_max_output_bytes: usize,
    /// Worker processes running transformations, shared by every
    /// transformation and `PUT /transformations/run`; 0 means one per core.
    pub transform_workers: usize,
    /// Address space each worker process may map; a script allocating beyond
    /// it kills its worker and fails its run.
    pub transform_max_memory_bytes: u64,
    /// API runs (`/transformations/run`, code checks) that may wait for a busy
    /// worker before more are answered 503. Routing always waits.
    pub transform_queue: usize,
    /// Steps one filter evaluation may take (a value matched, compared or
    /// hashed); a filter that runs out counts as not matching.
    pub filter_max_steps: std::num::NonZeroU64,
    /// The store's page cache: the memory it may use for data read or written
    /// recently. The rest stays on disk, so memory does not grow with backlogs.
    pub store_cache_bytes: u64,
    /// Request journal files are closed at this size; retention deletes whole
    /// files, so smaller ones give disk back sooner.
    pub journal_segment_bytes: u64,
    /// Most bytes of records one API list answer holds (with `include=data`,
    /// the payloads make it large): a page ends early past it, with a `next`
    /// cursor to continue from. A single larger record still comes, alone.
    pub api_page_bytes: usize,
    /// A sender that has not sent a request's whole head (request line and
    /// headers) this long after its first byte is disconnected.
    pub header_read_timeout_ms: u64,
    /// A sender that has not sent the whole body this long after the head is
    /// answered 400 and disconnected.
    pub body_read_timeout_ms: u64,
    /// How much of a rejected request's body its record keeps.
    pub rejection_body_bytes: usize,
    /// The records of one source's rejected requests (unknown sources share
    /// one) take at most this; the oldest make room for new ones.
    pub rejection_bytes_per_source: u64,
    /// The records of all rejected requests take at most this.
    pub rejection_bytes_total: u64,
    /// Disk space kept allocated for the store, so that a full disk stops new
    /// requests (503) before it can fail the store's writes; 0: none.
    pub store_disk_reserve_bytes: u64,
    /// Most request bytes the router's backlog holds in memory; the bodies
    /// of requests past it are read back from the journal when routed. New
    /// webhook jobs count too, and past it are refused (503) until the
    /// router catches up.
    pub router_backlog_bytes: u64,
    /// `/readyz` answers 503 once this many acknowledged requests wait for
    /// the router.
    pub max_router_lag: usize,
}

impl LimitsSection {
    pub fn rejection_budget(&self) -> crate::store::RejectionBudget {
        crate::store::RejectionBudget {
            per_source_bytes: self.rejection_bytes_per_source,
            total_bytes: self.rejection_bytes_total,
        }
    }

    pub fn transform_limits(&self) -> TransformLimits {
        TransformLimits {
            timeout: std::time::Duration::from_millis(self.transform_timeout_ms),
            max_loop_iterations: self.transform_max_loop_iterations,
            max_recursion: self.transform_max_recursion,
            max_output_bytes: self.transform_max_output_bytes,
        }
    }

    /// The worker pool these limits ask for, running `worker_exe`.
    pub fn transform_pool(&self, worker_exe: PathBuf) -> PoolSettings {
        PoolSettings {
            worker_exe,
            workers: self.transform_workers,
            max_memory_bytes: self.transform_max_memory_bytes,
            queue: self.transform_queue,
        }
    }
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_body_bytes: 5 * 1024 * 1024,
            max_response_bytes: 64 * 1024,
            delivery_timeout_ms: 30_000,
            commit_batch: 1024,
            commit_queue: 16_384,
            transform_timeout_ms: 1000,
            transform_max_loop_iterations: 10_000_000,
            transform_max_recursion: 256,
            transform_max_output_bytes: 5 * 1024 * 1024,
            transform_workers: 0,
            transform_max_memory_bytes: 512 * 1024 * 1024,
            transform_queue: 64,
            filter_max_steps: crate::pipeline::filter::DEFAULT_MAX_STEPS
                .try_into()
                .expect("the default is not zero"),
            store_cache_bytes: 128 * 1024 * 1024,
            journal_segment_bytes: 64 * 1024 * 1024,
            api_page_bytes: 8 * 1024 * 1024,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            rejection_body_bytes: 1024,
            rejection_bytes_per_source: 16 * 1024 * 1024,
            rejection_bytes_total: 64 * 1024 * 1024,
            store_disk_reserve_bytes: 64 * 1024 * 1024,
            router_backlog_bytes: 64 * 1024 * 1024,
            max_router_lag: 10_000,
        }
    }
}

/// `[delivery]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliverySection {
    /// In-flight attempts per destination unless the destination says `concurrent`.
    pub default_concurrency: usize,
    /// The key of the `x-hookdeck-signature` and `x-hookgate-signature`
    /// headers on deliveries (`env:NAME` allowed); without it, the workspace
    /// secret generated in `data_dir/signing-secret.json` (in a cluster, in
    /// the database).
    pub signing_secret: Option<Spanned<String>>,
    /// How often every destination's backlog is checked for backpressure issues.
    pub backlog_check_ms: u64,
    /// Ranges that objects created through the API may reach although the
    /// address policy refuses them by default (loopback, private, link-local…).
    #[serde(deserialize_with = "networks")]
    pub allowed_networks: Vec<IpNet>,
    /// Ranges that objects created through the API may never reach.
    #[serde(deserialize_with = "networks")]
    pub blocked_networks: Vec<IpNet>,
}

impl DeliverySection {
    pub fn address_policy(&self) -> AddressPolicy {
        AddressPolicy::new(self.allowed_networks.clone(), self.blocked_networks.clone())
    }
}

/// CIDR ranges, or single addresses (a range of one).
fn networks<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
    let texts = Vec::<String>::deserialize(deserializer)?;
    texts
        .iter()
        .map(|text| {
            let text = text.trim();
            text.parse::<IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "\"{text}\" is not a network: write a CIDR range such as \"10.0.0.0/8\" or \"fd00::/8\", or an address"
                    ))
                })
        })
        .collect()
}

impl Default for DeliverySection {
    fn default() -> Self {
        DeliverySection {
            default_concurrency: 32,
            signing_secret: None,
            backlog_check_ms: 5000,
            allowed_networks: Vec::new(),
            blocked_networks: Vec::new(),
        }
    }
}

/// `[outbound]`: webhook jobs sent to applications' endpoints.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundSection {
    /// Retries after a delivery's first attempt, unless a job says otherwise.
    pub max_retries: u32,
    /// A delivery not done this long after its job was created is discarded;
    /// retries back off exponentially across it.
    pub delivery_window_ms: u64,
    /// A job's `event_id` returns the same job for this long.
    pub idempotency_window_ms: u64,
    /// Largest job payload, serialized (larger ones are answered 413).
    pub max_payload_bytes: usize,
    /// Consecutive failed attempts that open an endpoint's circuit.
    pub circuit_failure_threshold: u32,
    /// How long an open circuit waits before one trial delivery (half-open).
    pub circuit_cooldown_ms: u64,
    /// How long a rotated-out endpoint secret keeps signing beside the new one.
    pub secret_rotation_grace_ms: u64,
    /// Most secrets an endpoint signs with (the current one and those rotated
    /// out within the grace period): each adds a signature to every delivery,
    /// so a rotation past it ends the oldest one's grace early.
    pub max_endpoint_secrets: usize,
    /// Calls per second (and burst) each API key may make to
    /// `/v1/webhook-jobs`, apart from `server.api_rate_limit_per_minute`.
    pub api_calls_per_second_per_key: u32,
    /// Jobs per second (and burst) each application may be sent.
    pub jobs_per_second_per_application: u32,
    /// Requests per minute (and burst) to the customer portal's pages of
    /// each application, over all its sessions: a customer's script spends
    /// its own application's budget, not the management API's.
    pub portal_requests_per_minute_per_application: u32,
}

impl Default for OutboundSection {
    fn default() -> Self {
        const HOUR_MS: u64 = 3_600_000;
        OutboundSection {
            max_retries: 6,
            delivery_window_ms: 48 * HOUR_MS,
            idempotency_window_ms: 24 * HOUR_MS,
            max_payload_bytes: 256 * 1024,
            circuit_failure_threshold: 5,
            circuit_cooldown_ms: 60_000,
            secret_rotation_grace_ms: 24 * HOUR_MS,
            max_endpoint_secrets: 4,
            api_calls_per_second_per_key: 1000,
            jobs_per_second_per_application: 1000,
            portal_requests_per_minute_per_application: 240,
        }
    }
}

/// `[telemetry]`: spans exported over OTLP.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct TelemetrySection {
    /// The OTLP/HTTP collector's base URL (`http://host:4318`; spans go to its
    /// `/v1/traces`); absent or empty: no export.
    pub otlp_endpoint: Option<Spanned<String>>,
}

/// `[retention]`: how long what is done is kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSection {
    /// Requests and webhook jobs older than this are forgotten, with their
    /// events, attempts and journal records, once every event they led to is
    /// done (delivered, or failed for good). 0 keeps everything.
    pub max_age_ms: u64,
    /// How often the store is swept.
    pub sweep_every_ms: u64,
    /// Rejected requests (anyone can send them) are forgotten after this,
    /// sooner than the rest; 0: with the rest (`max_age_ms`).
    pub rejections_max_age_ms: u64,
}

impl Default for RetentionSection {
    fn default() -> Self {
        const DAY_MS: u64 = 24 * 3_600_000;
        RetentionSection {
            max_age_ms: 30 * DAY_MS,
            sweep_every_ms: 3_600_000,
            rejections_max_age_ms: 7 * DAY_MS,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SourceSection {
    pub name: Spanned<String>,
    pub description: Option<Spanned<String>>,
    pub allowed_http_methods: Option<Spanned<Vec<String>>>,
    pub custom_response: Option<CustomResponseSection>,
    pub verification: Option<Spanned<VerificationConfig>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CustomResponseSection {
    pub content_type: Spanned<String>,
    pub body: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DestinationSection {
    pub name: Spanned<String>,
    pub description: Option<Spanned<String>>,
    /// One of `url` and `cli_path` is required.
    pub url: Option<Spanned<Url>>,
    pub cli_path: Option<Spanned<String>>,
    pub http_method: Option<Spanned<String>>,
    #[serde(default)]
    pub path_forwarding_disabled: bool,
    pub rate_limit: Option<Spanned<u32>>,
    pub rate_limit_period: Option<Spanned<String>>,
    pub concurrent: Option<usize>,
    pub auth_method: Option<Spanned<AuthMethodConfig>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConnectionSection {
    pub name: Spanned<String>,
    pub description: Option<Spanned<String>>,
    pub source: Spanned<String>,
    pub destination: Spanned<String>,
    #[serde(default)]
    pub rules: Vec<Spanned<RuleSpec>>,
    /// A TOML file (relative to the config) holding `rules = [ … ]` instead.
    pub rules_file: Option<Spanned<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ingress_url_is_the_public_url_else_a_callable_listen_address() {
        let server = |public_url: Option<&str>| ServerSection {
            public_url: public_url.map(|u| Url::parse(u).unwrap()),
            ..ServerSection::default()
        };
        let bound = |text: &str| text.parse::<SocketAddr>().unwrap();
        assert_eq!(
            server(Some("https://hooks.example.com/in/")).ingress_url(bound("0.0.0.0:8080")),
            "https://hooks.example.com/in"
        );
        assert_eq!(
            server(None).ingress_url(bound("0.0.0.0:8080")),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            server(None).ingress_url(bound("[::]:9000")),
            "http://[::1]:9000"
        );
        assert_eq!(
            server(None).ingress_url(bound("10.1.2.3:80")),
            "http://10.1.2.3:80"
        );
    }

    #[test]
    fn the_api_url_is_the_public_one_else_a_listen_address_others_can_use() {
        let mut server = ServerSection::default();
        assert_eq!(server.api_url().as_deref(), Some("http://127.0.0.1:8081"));
        server.api_listen = ([0, 0, 0, 0], 8081).into();
        assert_eq!(
            server.api_url(),
            None,
            "every address: which one is unknown"
        );
        server.api_listen = ([127, 0, 0, 1], 0).into();
        assert_eq!(server.api_url(), None, "a port chosen at start");
        server.api_public_url = Some("https://admin.example.com/".parse().unwrap());
        assert_eq!(
            server.api_url().as_deref(),
            Some("https://admin.example.com")
        );
    }
}

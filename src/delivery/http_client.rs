//! The HTTP client that talks to destinations: bounded in time and in how much
//! of a response it keeps, with transport failures named as Hookdeck names them.
//! Requests to objects created through the API go through a client whose DNS
//! resolver keeps only the addresses the address policy allows, so the policy
//! holds for the address actually connected to.

use crate::address_policy::{AddressPolicy, BlockedAddress, ResolveError, BLOCKED_ADDRESS};
use crate::model::Origin;
use arc_swap::ArcSwap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

/// The address policy in force (replaced when the config is reloaded).
pub type SharedPolicy = Arc<ArcSwap<AddressPolicy>>;

/// A request to send to a destination.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub method: String,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    /// Shared, so that handing it to the HTTP client copies nothing.
    pub body: bytes::Bytes,
    /// Who chose the URL: an API-made one is held to the address policy.
    pub origin: Origin,
}

/// What came back: a status and the start of the body, or an error code.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: Option<u16>,
    pub body: Option<String>,
    /// TIMEOUT, CONNECTION_REFUSED, CONNECTION_RESET, SOCKET_CLOSED, DNS_ERROR,
    /// BLOCKED_ADDRESS, …
    pub error_code: Option<&'static str>,
    pub latency_ms: u64,
}

impl Response {
    pub fn is_success(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

#[derive(Clone)]
pub struct DeliveryClient {
    /// For destinations declared in gateway.toml: any address.
    operators: reqwest::Client,
    /// For objects created through the API: addresses the policy allows.
    guarded: reqwest::Client,
    policy: SharedPolicy,
    timeout: Duration,
    max_response_bytes: usize,
}

impl DeliveryClient {
    pub fn new(
        timeout: Duration,
        max_response_bytes: usize,
        policy: SharedPolicy,
    ) -> DeliveryClient {
        let guarded = client_builder(timeout)
            .dns_resolver(Arc::new(PolicyResolver(policy.clone())))
            // A proxy would resolve and connect on the gateway's behalf, past the resolver.
            .no_proxy();
        DeliveryClient {
            operators: build(client_builder(timeout)),
            guarded: build(guarded),
            policy,
            timeout,
            max_response_bytes,
        }
    }

    /// How long a destination has to answer.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How many bytes of an answer are kept.
    pub fn max_response_bytes(&self) -> usize {
        self.max_response_bytes
    }

    /// Sends one request; never fails, a failure is a `Response` with an error code.
    pub async fn send(&self, outgoing: &Outgoing) -> Response {
        let started = Instant::now();
        if let Err(blocked) = self.check_literal(outgoing) {
            tracing::warn!(%blocked, url = %outgoing.url, "request refused by the address policy");
            return failure(BLOCKED_ADDRESS, started);
        }
        let exchange = tokio::time::timeout(self.timeout, self.exchange(outgoing)).await;
        match exchange {
            Ok(Ok((status, body))) => Response {
                status: Some(status),
                body: Some(body),
                error_code: None,
                latency_ms: started.elapsed().as_millis() as u64,
            },
            Ok(Err(error)) => failure(error_code(&error), started),
            Err(_) => failure("TIMEOUT", started),
        }
    }

    /// An IP literal host never reaches the resolver, so it is checked here.
    fn check_literal(&self, outgoing: &Outgoing) -> Result<(), BlockedAddress> {
        match outgoing.origin {
            Origin::Api => self.policy.load().check_url(&outgoing.url),
            Origin::File => Ok(()),
        }
    }

    async fn exchange(&self, outgoing: &Outgoing) -> Result<(u16, String), reqwest::Error> {
        let method = reqwest::Method::from_bytes(outgoing.method.as_bytes())
            .unwrap_or(reqwest::Method::POST);
        let client = match outgoing.origin {
            Origin::File => &self.operators,
            Origin::Api => &self.guarded,
        };
        let mut request = client
            .request(method, outgoing.url.clone())
            .body(outgoing.body.clone());
        for (name, value) in &outgoing.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let mut response = request.send().await?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            let room = self.max_response_bytes - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() == self.max_response_bytes {
                break; // Kept enough; the rest is not read.
            }
        }
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

fn client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        // A webhook goes where it was configured to, not where a redirect
        // points (which could also lead past the address policy).
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .connect_timeout(timeout)
        .user_agent(concat!("hookgate/", env!("CARGO_PKG_VERSION")))
}

fn build(builder: reqwest::ClientBuilder) -> reqwest::Client {
    builder
        .build()
        .expect("the HTTP client's static settings are valid")
}

fn failure(error_code: &'static str, started: Instant) -> Response {
    Response {
        status: None,
        body: None,
        error_code: Some(error_code),
        latency_ms: started.elapsed().as_millis() as u64,
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Resolves names for the guarded client, keeping only allowed addresses.
struct PolicyResolver(SharedPolicy);

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.load_full();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let permitted = policy.resolve(&host).await.map_err(|error| match error {
                ResolveError::Lookup(error) => Box::new(error) as BoxError,
                ResolveError::Blocked(blocked) => {
                    tracing::warn!(%blocked, "connection refused by the address policy");
                    Box::new(blocked)
                }
            })?;
            // Port 0 is replaced by the URL's.
            let addresses = permitted.into_iter().map(|ip| SocketAddr::new(ip, 0));
            Ok(Box::new(addresses) as reqwest::dns::Addrs)
        })
    }
}

/// Names a transport failure by the I/O error at its root.
fn error_code(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        return "TIMEOUT";
    }
    if causes(error).any(|cause| cause.is::<BlockedAddress>()) {
        return BLOCKED_ADDRESS;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "CONNECTION_REFUSED",
                std::io::ErrorKind::ConnectionReset => "CONNECTION_RESET",
                std::io::ErrorKind::TimedOut => "TIMEOUT",
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::BrokenPipe => {
                    "SOCKET_CLOSED"
                }
                _ => "UNKNOWN",
            };
        }
        if current.to_string().contains("dns error") {
            return "DNS_ERROR";
        }
        source = current.source();
    }
    if error.is_connect() {
        "CONNECTION_ERROR"
    } else if error.is_body() || error.is_decode() || error.is_request() {
        "SOCKET_CLOSED"
    } else {
        "UNKNOWN"
    }
}

/// An error and the errors beneath it.
fn causes<'e>(
    error: &'e (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'e (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |current| current.source())
}

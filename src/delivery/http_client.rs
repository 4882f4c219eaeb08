//! The HTTP client that talks to destinations: bounded in time and in how much
//! of a response it keeps, with transport failures named as Hookdeck names them.

use std::time::{Duration, Instant};
use url::Url;

/// A request to send to a destination.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub method: String,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    /// Shared, so that handing it to the HTTP client copies nothing.
    pub body: bytes::Bytes,
}

/// What came back: a status and the start of the body, or an error code.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: Option<u16>,
    pub body: Option<String>,
    /// TIMEOUT, CONNECTION_REFUSED, CONNECTION_RESET, SOCKET_CLOSED, DNS_ERROR, …
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
    client: reqwest::Client,
    timeout: Duration,
    max_response_bytes: usize,
}

impl DeliveryClient {
    pub fn new(timeout: Duration, max_response_bytes: usize) -> DeliveryClient {
        let client = reqwest::Client::builder()
            // A webhook goes where it was configured to, not where a redirect points.
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .connect_timeout(timeout)
            .user_agent(concat!("hookgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client's static settings are valid");
        DeliveryClient {
            client,
            timeout,
            max_response_bytes,
        }
    }

    /// Sends one request; never fails, a failure is a `Response` with an error code.
    pub async fn send(&self, outgoing: &Outgoing) -> Response {
        let started = Instant::now();
        let exchange = tokio::time::timeout(self.timeout, self.exchange(outgoing)).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        match exchange {
            Ok(Ok((status, body))) => Response {
                status: Some(status),
                body: Some(body),
                error_code: None,
                latency_ms,
            },
            Ok(Err(error)) => Response {
                status: None,
                body: None,
                error_code: Some(error_code(&error)),
                latency_ms,
            },
            Err(_) => Response {
                status: None,
                body: None,
                error_code: Some("TIMEOUT"),
                latency_ms,
            },
        }
    }

    async fn exchange(&self, outgoing: &Outgoing) -> Result<(u16, String), reqwest::Error> {
        let method = reqwest::Method::from_bytes(outgoing.method.as_bytes())
            .unwrap_or(reqwest::Method::POST);
        let mut request = self
            .client
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

/// Names a transport failure by the I/O error at its root.
fn error_code(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        return "TIMEOUT";
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

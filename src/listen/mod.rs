//! `hookgate listen`: a developer's laptop as a CLI destination. It makes
//! sure the source has a connection to a CLI destination named after the
//! user (`PUT /connections`, idempotent), or takes a CLI destination that
//! already exists (`--destination`, e.g. one declared in gateway.toml), opens that destination's stream
//! on the management API (`GET /destinations/{id}/listen`), delivers each
//! event to a local URL with the gateway's own HTTP client, reports what the
//! local server answered (recorded as the event's attempt), and prints one
//! line per event. When the stream drops it connects again; the events that
//! arrive meanwhile wait in the gateway.

mod sse;

use crate::address_policy::AddressPolicy;
use crate::api_client::{message_of, ApiClient as Api};
use crate::delivery::cli::{CliDelivery, CliOutcome};
use crate::delivery::{DeliveryClient, DeliveryResponse, Outgoing};
use crate::model::Origin;
use arc_swap::ArcSwap;
use base64::Engine;
use serde_json::json;
use sse::SseReader;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

/// What `hookgate listen` was asked.
pub struct Options {
    /// The management API, e.g. `http://127.0.0.1:8081`.
    pub api: String,
    pub key: String,
    /// Which CLI destination's events to receive.
    pub target: Target,
    /// The local server events go to.
    pub to: Url,
}

/// Which CLI destination `hookgate listen` listens on.
pub enum Target {
    /// The listener's own, made (or brought up to date) for a source.
    Source {
        /// The source's name.
        source: String,
        /// The CLI destination's `cli_path`: where, under `to`, events go.
        path: String,
        /// Who listens: names the destination (`cli-NAME`) and the
        /// connection (`SOURCE-cli-NAME`).
        name: String,
    },
    /// A CLI destination that exists already (its name or id), with the
    /// connections it has: nothing is created.
    Destination(String),
}

/// Why listening stopped for good (a wrong key, an unknown source, …).
pub type Failure = String;

/// How long a stream may stay silent (the gateway sends a keep-alive every
/// few seconds) before it is taken for dropped.
const SILENCE: Duration = Duration::from_secs(30);
/// How long to wait before connecting again: at first, and at most.
const RECONNECT_FIRST: Duration = Duration::from_millis(500);
const RECONNECT_MAX: Duration = Duration::from_secs(10);

/// Listens until a failure that connecting again would not mend.
pub async fn run(options: &Options) -> Result<(), Failure> {
    let api = Api::new(&options.api, &options.key);
    let destination_id = match &options.target {
        Target::Source { source, path, name } => {
            ensure_connection(&api, source, path, name, &options.to).await?
        }
        Target::Destination(destination) => {
            existing_destination(&api, destination, &options.to).await?
        }
    };
    let mut local = Local::default();
    let mut wait = RECONNECT_FIRST;
    loop {
        match listen_once(&api, &destination_id, options, &mut local).await {
            Ok(Stream::Dropped(why)) => eprintln!("hookgate listen: {why}; connecting again"),
            Ok(Stream::WasUp(why)) => {
                eprintln!("hookgate listen: {why}; connecting again");
                wait = RECONNECT_FIRST;
            }
            Err(failure) => return Err(failure),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RECONNECT_MAX);
    }
}

/// The connection `SOURCE-cli-NAME` from the source to the CLI destination
/// `cli-NAME` with the asked `cli_path`, created or brought up to date;
/// returns the destination's id.
async fn ensure_connection(
    api: &Api,
    source: &str,
    path: &str,
    name: &str,
    to: &Url,
) -> Result<String, Failure> {
    let body = json!({
        "name": format!("{source}-cli-{name}"),
        "source": source,
        "destination": { "name": format!("cli-{name}"), "cli_path": path },
    });
    let connection = api
        .call(reqwest::Method::PUT, "/connections", Some(&body))
        .await?;
    let id = connection["destination"]["id"].as_str();
    let id = id.ok_or("the gateway's connection has no destination id")?;
    println!(
        "hookgate listen: {source} → {}{path} (connection {}, destination {id})",
        to.as_str().trim_end_matches('/'),
        connection["name"].as_str().unwrap_or_default(),
    );
    Ok(id.to_string())
}

/// The CLI destination `destination` (a name or an id) as it is; returns
/// its id. A destination with a URL is refused here, before any stream.
async fn existing_destination(api: &Api, destination: &str, to: &Url) -> Result<String, Failure> {
    let path = format!("/destinations/{destination}");
    let found = api.call(reqwest::Method::GET, &path, None).await?;
    let Some(cli_path) = found["cli_path"].as_str() else {
        return Err(format!(
            "destination {destination} is not a CLI destination (it has no cli_path)"
        ));
    };
    let id = found["id"]
        .as_str()
        .ok_or("the gateway's destination has no id")?;
    println!(
        "hookgate listen: destination {} → {}{cli_path} (destination {id})",
        found["name"].as_str().unwrap_or(destination),
        to.as_str().trim_end_matches('/'),
    );
    Ok(id.to_string())
}

/// How a stream ended that connecting again may mend.
enum Stream {
    /// It never got going (the gateway unreachable, a 5xx).
    Dropped(String),
    /// It was up and then ended or broke.
    WasUp(String),
}

/// One stream, from connecting to its end.
async fn listen_once(
    api: &Api,
    destination_id: &str,
    options: &Options,
    local: &mut Local,
) -> Result<Stream, Failure> {
    let path = format!("/destinations/{destination_id}/listen");
    let request = api.request(reqwest::Method::GET, &path);
    let mut response = match request.send().await {
        Ok(response) => response,
        Err(error) => return Ok(Stream::Dropped(format!("GET {path}: {error}"))),
    };
    let status = response.status();
    if !status.is_success() {
        let why = format!("GET {path}: {status} {}", message_of(response).await);
        return match status.is_server_error() || status.as_u16() == 429 {
            true => Ok(Stream::Dropped(why)),
            false => Err(why),
        };
    }
    let mut reader = SseReader::default();
    loop {
        let chunk = match tokio::time::timeout(SILENCE, response.chunk()).await {
            Ok(Ok(Some(chunk))) => chunk,
            Ok(Ok(None)) => return Ok(Stream::WasUp("the gateway ended the stream".into())),
            Ok(Err(error)) => return Ok(Stream::WasUp(format!("the stream broke: {error}"))),
            Err(_) => return Ok(Stream::WasUp("the stream fell silent".into())),
        };
        for event in reader.push(&chunk) {
            match event.name.as_str() {
                "ready" => println!(
                    "hookgate listen: connected as {}; waiting for events",
                    session_of(&event.data)
                ),
                "delivery" => {
                    let delivery: CliDelivery = serde_json::from_str(&event.data)
                        .map_err(|e| format!("the gateway sent an unreadable delivery: {e}"))?;
                    let report = deliver(api, destination_id, options, local, delivery).await;
                    if let Err(why) = report {
                        return Ok(Stream::WasUp(why));
                    }
                }
                _ => {}
            }
        }
    }
}

/// The session id (`cli_…`) a `ready` message names ("?" from a gateway
/// that names none).
fn session_of(ready: &str) -> String {
    let ready: serde_json::Value = serde_json::from_str(ready).unwrap_or_default();
    ready["cli_id"].as_str().unwrap_or("?").to_string()
}

/// Delivers one event to the local server, reports the outcome, prints its line.
async fn deliver(
    api: &Api,
    destination_id: &str,
    options: &Options,
    local: &mut Local,
    delivery: CliDelivery,
) -> Result<(), String> {
    let url = local_url(&options.to, &delivery.path)?;
    let body = base64::engine::general_purpose::STANDARD
        .decode(&delivery.body_base64)
        .map_err(|e| format!("event {}: unreadable body: {e}", delivery.event_id))?;
    let outgoing = Outgoing {
        method: delivery.method.clone(),
        url: url.clone(),
        headers: (delivery.headers.iter())
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect(),
        body: body.into(),
        // The developer's own server: any address.
        origin: Origin::File,
    };
    let started = Instant::now();
    let response = local.client(&delivery).send(&outgoing).await;
    print_line(&delivery, &response, started.elapsed());
    let outcome = CliOutcome {
        status: response.status,
        body: response.body,
        error_code: response.error_code.map(str::to_string),
        latency_ms: response.latency_ms,
        url: url.to_string(),
    };
    let path = format!("/destinations/{destination_id}/listen/{}", delivery.id);
    report(api, &path, &outcome).await
}

/// Sends an outcome; refused for a while (`429`: reports spend no key
/// budget, but an address locked out after failed logins is refused
/// whatever it sends), again once the answer's `Retry-After` has passed (the
/// gateway waits for it a while).
async fn report(api: &Api, path: &str, outcome: &CliOutcome) -> Result<(), String> {
    let outcome = serde_json::to_string(outcome).expect("an outcome serializes");
    loop {
        let report = api.request(reqwest::Method::POST, path);
        let report = report.header("content-type", "application/json");
        let answer = report.body(outcome.clone()).send().await;
        let answer = answer.map_err(|error| format!("POST {path}: {error}"))?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        if status != reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(format!(
                "POST {path}: {status} {}",
                message_of(answer).await
            ));
        }
        let wait = retry_after(&answer);
        eprintln!("hookgate listen: refused for now (429); reporting again in {wait:?}");
        tokio::time::sleep(wait).await;
    }
}

/// How long a `429` asks to wait (`Retry-After` in seconds; 1 s when absent).
fn retry_after(answer: &reqwest::Response) -> Duration {
    let header = answer.headers().get(reqwest::header::RETRY_AFTER);
    let seconds = header.and_then(|v| v.to_str().ok()?.parse().ok());
    Duration::from_secs(seconds.unwrap_or(1))
}

/// The local URL of a delivery: `--to` with the delivery's path (the CLI
/// path, the forwarded path and the query) under its own.
fn local_url(to: &Url, path: &str) -> Result<Url, String> {
    let joined = format!("{}{path}", to.as_str().trim_end_matches('/'));
    Url::parse(&joined).map_err(|e| format!("{joined}: {e}"))
}

/// Prints one event's line (coloured when stdout is a terminal).
fn print_line(delivery: &CliDelivery, response: &DeliveryResponse, took: Duration) {
    let now = crate::ids::iso8601(crate::ids::now_ms());
    let colour = std::io::stdout().is_terminal();
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", line(&now, delivery, response, took, colour));
    let _ = stdout.flush();
}

/// One line per event: time, status (or why none came), method, path,
/// latency, event id.
fn line(
    time: &str,
    delivery: &CliDelivery,
    response: &DeliveryResponse,
    took: Duration,
    colour: bool,
) -> String {
    let status = match (response.status, response.error_code) {
        (Some(status), _) => status.to_string(),
        (None, code) => code.unwrap_or("UNKNOWN").to_string(),
    };
    let status = match colour {
        true => coloured(&status, response),
        false => status,
    };
    format!(
        "{time}  {status}  {} {}  {} ms  {}",
        delivery.method,
        delivery.path,
        took.as_millis(),
        delivery.event_id
    )
}

/// Green for a 2xx, yellow for other answers, red when none came.
fn coloured(status: &str, response: &DeliveryResponse) -> String {
    let colour = match response.status {
        Some(_) if response.is_success() => "32",
        Some(_) => "33",
        None => "31",
    };
    format!("\x1b[{colour}m{status}\x1b[0m")
}

/// The HTTP client for the local server, made for the gateway's delivery
/// timeout and response bound (and made again if those change).
#[derive(Default)]
struct Local {
    client: Option<((u64, usize), DeliveryClient)>,
}

impl Local {
    fn client(&mut self, delivery: &CliDelivery) -> &DeliveryClient {
        let wanted = (delivery.timeout_ms, delivery.response_bytes_kept);
        if self
            .client
            .as_ref()
            .is_none_or(|(made_for, _)| *made_for != wanted)
        {
            // Only the operator's client is used (`Origin::File`): no policy.
            let policy = Arc::new(ArcSwap::from_pointee(AddressPolicy::new(vec![], vec![])));
            let timeout = Duration::from_millis(delivery.timeout_ms);
            let client = DeliveryClient::new(timeout, delivery.response_bytes_kept, policy);
            self.client = Some((wanted, client));
        }
        &self.client.as_ref().expect("made above").1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_url_is_the_given_one_with_the_delivery_path_under_it() {
        let to = Url::parse("http://localhost:3000/").unwrap();
        let url = local_url(&to, "/webhooks/orders?x=1").unwrap();
        assert_eq!(url.as_str(), "http://localhost:3000/webhooks/orders?x=1");
        let to = Url::parse("http://localhost:3000/app").unwrap();
        let url = local_url(&to, "/hooks").unwrap();
        assert_eq!(url.as_str(), "http://localhost:3000/app/hooks");
    }

    #[test]
    fn a_line_shows_the_status_coloured_only_when_asked() {
        let delivery: CliDelivery = serde_json::from_value(json!({
            "id": "dlv_1", "event_id": "evt_1", "method": "POST", "path": "/hooks/a",
            "headers": [], "body_base64": "", "timeout_ms": 1000, "response_bytes_kept": 10,
        }))
        .unwrap();
        let answered = |status| DeliveryResponse {
            status,
            body: None,
            error_code: status.is_none().then_some("CONNECTION_REFUSED"),
            latency_ms: 4,
        };
        let took = Duration::from_millis(4);
        let plain = line("T", &delivery, &answered(Some(200)), took, false);
        assert_eq!(plain, "T  200  POST /hooks/a  4 ms  evt_1");
        let green = line("T", &delivery, &answered(Some(200)), took, true);
        assert_eq!(green, "T  \x1b[32m200\x1b[0m  POST /hooks/a  4 ms  evt_1");
        let yellow = line("T", &delivery, &answered(Some(404)), took, true);
        assert!(yellow.contains("\x1b[33m404\x1b[0m"), "{yellow}");
        let red = line("T", &delivery, &answered(None), took, true);
        assert!(red.contains("\x1b[31mCONNECTION_REFUSED\x1b[0m"), "{red}");
    }
}

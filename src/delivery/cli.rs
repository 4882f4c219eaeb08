//! CLI destinations: a destination with a `cli_path` and no URL is delivered
//! to through `hookgate listen` sessions (each a stream on the management
//! API, `api::listen`). Its lane hands each due event to one idle listener
//! and waits for the outcome the listener reports, which is then settled like
//! any attempt. With no listener connected, the lane holds its due events
//! (`HOLD`, out of the queue, as a paused connection's); a listener connecting
//! wakes the lane, which releases them (`release_held`), as it does when the
//! destination gets a URL. A listener takes one event at a time; several share a
//! destination's events. When a listener goes away (or never answers) before
//! reporting, its event is not settled: it is still queued, and the next idle
//! listener gets it.

use super::http_client::{Outgoing, Response};
use super::Shared;
use crate::model::Destination;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use url::Url;
use utoipa::ToSchema;

/// The URL a CLI destination's deliveries are built on: its `cli_path` under
/// a placeholder origin (the listener puts its local URL in its place). The
/// forwarded path is joined and checked under it as under a URL's path.
pub(super) fn base_url(destination: &Destination) -> Url {
    let mut url = Url::parse("cli://listen").expect("a valid URL");
    url.set_path(destination.cli_path.as_deref().unwrap_or("/"));
    url
}

/// Whether the destination's events can be sent now: it has a URL, or a
/// listener is connected to it.
pub(super) fn heard(listeners: &CliListeners, destination: &Destination) -> bool {
    destination.url.is_some() || listeners.connected(&destination.id) > 0
}

/// Queues again the events the destination's connections held while it had
/// no listener (those of a paused connection stay held). False when the
/// store failed (logged): the lane tries again on its next pass.
pub(super) async fn release_held(shared: &Arc<Shared>, destination_id: &str) -> bool {
    // Every lane asks when it starts: most find nothing held at all.
    if !shared.store.holds_any() {
        return true;
    }
    let catalog = shared.catalog.load();
    let connections: Vec<String> = (catalog.connections().into_iter())
        .filter(|connection| connection.destination_id == destination_id)
        .map(|connection| connection.id.clone())
        .collect();
    let store = shared.store.clone();
    let released = tokio::task::spawn_blocking(move || {
        let now = crate::ids::now_ms();
        (connections.iter()).try_for_each(|id| store.release_held(id, now).map(|_| ()))
    })
    .await;
    match released {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::error!(%error, destination = destination_id, "could not release the events held for a listener");
            false
        }
        // Only happens while the runtime shuts down: they stay held.
        Err(_) => false,
    }
}

/// One event for a listener to deliver to its local server.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CliDelivery {
    /// Names this hand-over in the listener's report.
    pub id: String,
    pub event_id: String,
    pub method: String,
    /// The destination's `cli_path`, the forwarded path and the query, for the
    /// listener to append to its local URL.
    pub path: String,
    /// As a URL destination would be sent them (Hookdeck's and hookgate's
    /// headers, the destination's auth).
    pub headers: Vec<CliHeader>,
    /// The body, base64 (standard alphabet, padded): bodies need not be text.
    pub body_base64: String,
    /// How long the local server has to answer, as for URL destinations.
    pub timeout_ms: u64,
    /// How many bytes of the local answer are kept (more are cut).
    pub response_bytes_kept: usize,
}

impl CliDelivery {
    /// The request a URL destination would be sent, for a listener.
    pub(super) fn of(
        outgoing: &Outgoing,
        event_id: &str,
        timeout: Duration,
        response_bytes_kept: usize,
    ) -> CliDelivery {
        let url = &outgoing.url;
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        };
        let headers = outgoing.headers.iter();
        CliDelivery {
            id: crate::ids::new_id("dlv"),
            event_id: event_id.to_string(),
            method: outgoing.method.clone(),
            path,
            headers: headers
                .map(|(name, value)| CliHeader {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            body_base64: base64::engine::general_purpose::STANDARD.encode(&outgoing.body),
            timeout_ms: timeout.as_millis() as u64,
            response_bytes_kept,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CliHeader {
    pub name: String,
    pub value: String,
}

/// What a listener reports for one delivery: what its local server answered.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CliOutcome {
    /// The local server's status; none when it could not be reached.
    pub status: Option<u16>,
    /// The start of its answer (kept to `response_bytes_kept`).
    pub body: Option<String>,
    /// Why there is no status: TIMEOUT, CONNECTION_REFUSED, … (as attempts
    /// to URL destinations name them; an unknown code is kept as UNKNOWN).
    pub error_code: Option<String>,
    pub latency_ms: u64,
    /// Where the listener delivered it (its `--to` URL plus `path`).
    pub url: String,
}

/// The error codes an outcome may carry, as the HTTP client names failures.
const ERROR_CODES: &[&str] = &[
    "TIMEOUT",
    "CONNECTION_REFUSED",
    "CONNECTION_RESET",
    "CONNECTION_ERROR",
    "SOCKET_CLOSED",
    "DNS_ERROR",
    "UNKNOWN",
];

impl CliOutcome {
    /// The attempt's response and requested URL, bounded as attempts are.
    pub(super) fn into_response(self, max_body_bytes: usize) -> (Response, String) {
        let error_code = self.error_code.map(|code| {
            ERROR_CODES
                .iter()
                .copied()
                .find(|known| *known == code)
                .unwrap_or("UNKNOWN")
        });
        let body = self.body.map(|body| cut_to(body, max_body_bytes));
        let response = Response {
            status: self.status,
            body,
            error_code,
            latency_ms: self.latency_ms,
        };
        (response, cut_to(self.url, MAX_URL_BYTES))
    }
}

/// The longest requested URL kept from a report.
const MAX_URL_BYTES: usize = 2048;

/// `text` cut to at most `max` bytes, on a character boundary.
fn cut_to(mut text: String, max: usize) -> String {
    if text.len() > max {
        let end = (0..=max).rev().find(|i| text.is_char_boundary(*i));
        text.truncate(end.unwrap_or(0));
    }
    text
}

/// A report that matches no delivery waiting for one (answered, or its
/// listener is gone, or it is another destination's).
#[derive(Debug)]
pub struct UnknownDelivery;

/// The listeners connected to CLI destinations, and the deliveries they hold.
#[derive(Default)]
pub struct CliListeners {
    connected: Mutex<Connected>,
}

#[derive(Default)]
struct Connected {
    listeners: HashMap<u64, Listener>,
    /// By delivery id: the deliveries handed over and not yet reported.
    waiting: HashMap<String, Waiting>,
    next_listener: u64,
}

struct Listener {
    destination_id: String,
    /// Names the session in the attempts it delivers (`cli_id`).
    cli_id: String,
    deliveries: mpsc::Sender<CliDelivery>,
    busy: bool,
}

struct Waiting {
    listener: u64,
    outcome: oneshot::Sender<CliOutcome>,
}

/// A connected listener; dropping it (its stream ended) disconnects it, and
/// the delivery it held goes back to its lane unsettled.
pub struct ListenerSession {
    listeners: Arc<CliListeners>,
    id: u64,
    cli_id: String,
}

impl ListenerSession {
    /// The session's id (`cli_…`), which its attempts and events carry.
    pub fn cli_id(&self) -> &str {
        &self.cli_id
    }
}

impl Drop for ListenerSession {
    fn drop(&mut self) {
        self.listeners.disconnect(self.id);
    }
}

impl CliListeners {
    /// Connects a listener to a destination: the deliveries it is handed
    /// arrive on the receiver while the session is kept.
    pub fn connect(
        self: &Arc<Self>,
        destination_id: &str,
    ) -> (ListenerSession, mpsc::Receiver<CliDelivery>) {
        // One at a time: a listener is handed a delivery only when idle.
        let (sender, receiver) = mpsc::channel(1);
        let mut connected = self.lock();
        connected.next_listener += 1;
        let id = connected.next_listener;
        let cli_id = crate::ids::new_id("cli");
        let listener = Listener {
            destination_id: destination_id.to_string(),
            cli_id: cli_id.clone(),
            deliveries: sender,
            busy: false,
        };
        connected.listeners.insert(id, listener);
        let session = ListenerSession {
            listeners: self.clone(),
            id,
            cli_id,
        };
        (session, receiver)
    }

    /// How many listeners a destination has, busy or not.
    pub(super) fn connected(&self, destination_id: &str) -> usize {
        let connected = self.lock();
        let all = connected.listeners.values();
        all.filter(|l| l.destination_id == destination_id).count()
    }

    /// How many of a destination's listeners could take an event now.
    #[cfg(test)]
    fn idle(&self, destination_id: &str) -> usize {
        let connected = self.lock();
        let idle = connected.listeners.values();
        idle.filter(|l| l.destination_id == destination_id && !l.busy)
            .count()
    }

    /// Hands `delivery` to an idle listener of the destination and waits for
    /// its outcome, up to `patience`; the outcome and the listener's
    /// `cli_id`. None when no listener took it or it went away first; one
    /// that does not answer in time is disconnected (its stream ends, and
    /// `hookgate listen` connects again).
    pub(super) async fn deliver(
        &self,
        destination_id: &str,
        delivery: CliDelivery,
        patience: Duration,
    ) -> Option<(CliOutcome, String)> {
        let (listener, cli_id, outcome) = self.hand_over(destination_id, delivery)?;
        match tokio::time::timeout(patience, outcome).await {
            Ok(outcome) => Some((outcome.ok()?, cli_id)),
            Err(_) => {
                tracing::warn!(
                    destination = destination_id,
                    "a `hookgate listen` did not report in time; disconnected"
                );
                self.disconnect(listener);
                None
            }
        }
    }

    fn hand_over(
        &self,
        destination_id: &str,
        delivery: CliDelivery,
    ) -> Option<(u64, String, oneshot::Receiver<CliOutcome>)> {
        let mut connected = self.lock();
        let (&id, listener) = connected
            .listeners
            .iter_mut()
            .find(|(_, l)| l.destination_id == destination_id && !l.busy)?;
        let delivery_id = delivery.id.clone();
        // An idle listener's channel is empty: this fails only once it is closed.
        listener.deliveries.try_send(delivery).ok()?;
        listener.busy = true;
        let (sender, receiver) = oneshot::channel();
        let waiting = Waiting {
            listener: id,
            outcome: sender,
        };
        let cli_id = listener.cli_id.clone();
        connected.waiting.insert(delivery_id, waiting);
        Some((id, cli_id, receiver))
    }

    /// A listener's outcome for the delivery `delivery_id` of a destination;
    /// the listener is idle again.
    pub fn report(
        &self,
        destination_id: &str,
        delivery_id: &str,
        outcome: CliOutcome,
    ) -> Result<(), UnknownDelivery> {
        let mut connected = self.lock();
        let listener_id = match connected.waiting.get(delivery_id) {
            Some(waiting) => waiting.listener,
            None => return Err(UnknownDelivery),
        };
        let listener = connected.listeners.get_mut(&listener_id);
        let Some(listener) = listener.filter(|l| l.destination_id == destination_id) else {
            return Err(UnknownDelivery);
        };
        listener.busy = false;
        let waiting = connected
            .waiting
            .remove(delivery_id)
            .ok_or(UnknownDelivery)?;
        // The attempt may have stopped waiting (a shutdown): nothing to settle.
        let _ = waiting.outcome.send(outcome);
        Ok(())
    }

    /// Forgets a listener and the delivery it held (its attempt ends unsettled).
    fn disconnect(&self, listener: u64) {
        let mut connected = self.lock();
        connected.listeners.remove(&listener);
        connected.waiting.retain(|_, w| w.listener != listener);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connected> {
        self.connected.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(id: &str) -> CliDelivery {
        CliDelivery {
            id: id.into(),
            event_id: format!("evt_{id}"),
            method: "POST".into(),
            path: "/".into(),
            headers: Vec::new(),
            body_base64: String::new(),
            timeout_ms: 1000,
            response_bytes_kept: 10,
        }
    }

    fn outcome(status: u16) -> CliOutcome {
        CliOutcome {
            status: Some(status),
            body: Some("ok".into()),
            error_code: None,
            latency_ms: 1,
            url: "http://localhost:3000/".into(),
        }
    }

    #[tokio::test]
    async fn a_listener_takes_one_delivery_at_a_time_and_is_idle_once_it_reports() {
        let listeners = Arc::new(CliListeners::default());
        let (_session, mut deliveries) = listeners.connect("des_a");
        assert_eq!(listeners.idle("des_a"), 1);
        let (_, _, first) = listeners.hand_over("des_a", delivery("one")).unwrap();
        assert_eq!(listeners.idle("des_a"), 0);
        assert!(listeners.hand_over("des_a", delivery("two")).is_none());
        assert_eq!(deliveries.recv().await.unwrap().id, "one");
        let elsewhere = listeners.report("des_b", "one", outcome(200));
        assert!(
            elsewhere.is_err(),
            "another destination's report is refused"
        );
        listeners.report("des_a", "one", outcome(201)).unwrap();
        assert_eq!(first.await.unwrap().status, Some(201));
        assert_eq!(listeners.idle("des_a"), 1);
    }

    #[tokio::test]
    async fn a_listener_gone_before_reporting_leaves_its_delivery_unsettled() {
        let listeners = Arc::new(CliListeners::default());
        let (session, _deliveries) = listeners.connect("des_a");
        let (_other, _) = listeners.connect("des_b");
        assert_eq!(listeners.connected("des_a"), 1);
        let (_, _, outcome_of) = listeners.hand_over("des_a", delivery("one")).unwrap();
        drop(session);
        assert!(outcome_of.await.is_err());
        assert_eq!(listeners.connected("des_a"), 0);
        assert!(listeners.report("des_a", "one", outcome(200)).is_err());
    }

    #[tokio::test]
    async fn a_listener_that_does_not_answer_in_time_is_disconnected() {
        let listeners = Arc::new(CliListeners::default());
        let (_session, mut deliveries) = listeners.connect("des_a");
        let patience = Duration::from_millis(10);
        let outcome = listeners.deliver("des_a", delivery("one"), patience).await;
        assert!(outcome.is_none());
        assert_eq!(listeners.connected("des_a"), 0);
        assert!(deliveries.recv().await.is_some(), "it was handed over");
        assert!(deliveries.recv().await.is_none(), "then its stream ended");
    }

    #[test]
    fn a_reported_answer_is_bounded_and_its_error_code_known() {
        let reported = CliOutcome {
            status: None,
            body: Some("éééé".into()),
            error_code: Some("MADE_UP".into()),
            latency_ms: 3,
            url: "u".repeat(5000),
        };
        let (response, url) = reported.into_response(3);
        assert_eq!(response.body.as_deref(), Some("é"));
        assert_eq!(response.error_code, Some("UNKNOWN"));
        assert_eq!(url.len(), MAX_URL_BYTES);
    }
}

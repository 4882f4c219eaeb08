//! One delivery attempt of one event: send it, record the attempt, and decide
//! what happens next (done, retry later, or failed).

use super::cli::{self, CliDelivery, CliListeners};
use super::http_client::{Outgoing, Response};
use super::in_flight::Slot;
use super::Shared;
use crate::address_policy::BLOCKED_ADDRESS;
use crate::forwarded_path::{self, UnsafePath};
use crate::ids::now_ms;
use crate::model::{Attempt, AttemptStatus, Destination, Event, EventStatus, Payload};
use crate::pipeline::{RetryPolicy, Rule};
use crate::store::{
    owns_entry, stays_inline, QueueEntry, QueueMove, SettledNow, Store, StoreError,
};
use crate::trace_context::{TraceContext, TRACEPARENT, TRACESTATE};
use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use url::Url;

/// Headers that describe one hop, not the message; never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// The error code of an attempt that was never sent because its forwarded
/// path would leave the destination's path (see `forwarded_path`): not retried.
pub const UNSAFE_PATH: &str = "UNSAFE_PATH";

/// A due event, loaded and ready to send.
pub(super) struct Ready {
    event: Event,
    payload: Payload,
}

impl Ready {
    pub(super) fn connection_id(&self) -> &str {
        &self.event.connection_id
    }
}

/// Loads a due queue entry for its attempt (blocking: the lane calls it for a
/// whole scan at once, so attempts need no store round trip of their own).
/// None when there is nothing to send: the event was delivered before a crash
/// or is gone, or the entry is not the event's own (a leftover): such entries
/// are forgotten. Also None when its connection was paused after it was
/// queued (it is held until the connection is unpaused), or when its
/// destination is a CLI destination (`listeners` given) with no listener
/// connected (it is held until one connects). Every None takes the entry off
/// the queue, so a lane never finds it again.
pub(super) fn prepare(
    store: &Store,
    destination_id: &str,
    entry: &QueueEntry,
    listeners: Option<&CliListeners>,
) -> Result<Option<Ready>, StoreError> {
    let mut event = store.event(&entry.event_id)?;
    let leftover = event
        .as_ref()
        .is_some_and(|event| !owns_entry(event, entry));
    if leftover && store.drop_leftover_entry(destination_id, entry)? {
        return Ok(None);
    }
    let listening = || listeners.is_none_or(|l| l.connected(destination_id) > 0);
    let held = match &event {
        Some(paused) if store.is_paused(&paused.connection_id) => {
            Some(store.hold(&paused.id, entry.due_ms)?)
        }
        Some(unheard) if !listening() => {
            Some(store.hold_for_listener(&unheard.id, entry.due_ms, listening)?)
        }
        _ => None,
    };
    match held {
        Some(true) => return Ok(None),
        // Released meanwhile: queued again, so sent now as it now stands.
        Some(false) => event = store.event(&entry.event_id)?,
        None => {}
    }
    let event = event.filter(|event| !event.status.is_terminal());
    let payload = match &event {
        Some(event) => store.payload_to_send(event)?,
        None => None,
    };
    match (event, payload) {
        (Some(event), Some(payload)) => Ok(Some(Ready { event, payload })),
        _ => {
            store.dequeue(destination_id, entry)?;
            Ok(None)
        }
    }
}

/// How long an attempt whose outcome could not be recorded waits before it is
/// recorded again: at first, and at most (doubling in between).
const RECORD_AGAIN_FIRST: Duration = Duration::from_secs(1);
const RECORD_AGAIN_MAX: Duration = Duration::from_secs(60);

/// Attempts one event. An attempt is sent once: when its outcome cannot be
/// recorded (a store error), recording it is tried again later, backing off,
/// while the event stays in flight (no scan takes it meanwhile). Sending it
/// again at once would loop as fast as the destination answers, for as long
/// as the store fails. When the lane stops first, its queue entry is still in
/// place: it is sent again after the next start. `slot` is held while the
/// attempt sends (see `InFlight`). A webhook job's automatic retry that the
/// lane reaches past its delivery window is not sent: the delivery fails.
pub(super) async fn deliver(
    shared: Arc<Shared>,
    destination: Arc<Destination>,
    Ready { event, payload }: Ready,
    stop: watch::Receiver<bool>,
    slot: Slot,
) {
    if event.retry_past_window(now_ms()) {
        drop(slot);
        let store = &shared.store;
        until_recorded(stop, &event, &destination, || {
            let (store, id) = (store.clone(), event.id.clone());
            blocking(move || crate::outbound::end_past_window(&store, &id, now_ms()))
        })
        .await;
        return;
    }
    let attempt = send(&shared, &destination, &event, payload).await;
    // The destination is done with it: its slot is free while it settles.
    drop(slot);
    let Some(attempt) = attempt else {
        return; // A CLI destination's listener left first: still queued.
    };
    tracing::debug!(
        request_id = event.request_id,
        event_id = event.id,
        destination = destination.id,
        attempt = attempt.attempt_number,
        status = ?attempt.status,
        response_status = attempt.response_status,
        "delivery attempt"
    );
    until_recorded(stop, &event, &destination, || {
        settle(&shared, &event, attempt.clone())
    })
    .await;
}

/// Runs `record` until it succeeds, backing off between store errors, or
/// until the lane stops (see `deliver`).
async fn until_recorded<F: Future<Output = Result<(), StoreError>>>(
    mut stop: watch::Receiver<bool>,
    event: &Event,
    destination: &Destination,
    mut record: impl FnMut() -> F,
) {
    let mut wait = RECORD_AGAIN_FIRST;
    while let Err(error) = record().await {
        tracing::error!(
            %error,
            event_id = event.id,
            destination = destination.id,
            attempt = event.attempts + 1,
            again_in_ms = wait.as_millis() as u64,
            "delivery attempt could not be recorded"
        );
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        wait = (wait * 2).min(RECORD_AGAIN_MAX);
    }
}

/// Sends the event to its destination; returns the attempt to record (none
/// when a CLI destination's listener went away before it reported).
async fn send(
    shared: &Shared,
    destination: &Destination,
    event: &Event,
    payload: Payload,
) -> Option<Attempt> {
    let started = now_ms();
    // This attempt's own span, under the request's (or job's), sent along.
    let span = TraceContext::opened_for(event.trace.as_ref());
    let base = match &destination.url {
        Some(url) => Cow::Borrowed(url),
        None => Cow::Owned(cli::base_url(destination)),
    };
    let (method, exchanged) = match destination_url(&base, destination, &payload) {
        Ok(url) => {
            let outgoing = outgoing(shared, destination, event, payload, url, &span);
            let exchanged = {
                let _in_flight = shared.metrics.sending(destination);
                exchange(shared, destination, event, &outgoing).await?
            };
            let response = &exchanged.response;
            shared.metrics.attempt(destination, response);
            if destination.circuit_breaker {
                shared
                    .circuits
                    .record(&destination.id, response.is_success(), now_ms());
            }
            (outgoing.method, exchanged)
        }
        Err(unsafe_path) => {
            let unsent = unsent(&base, destination, payload);
            let never_sent = Exchanged {
                response: never_sent(&unsafe_path),
                shown_url: destination.auth.shown_url(&unsent.url),
                cli_id: None,
            };
            (unsent.method, never_sent)
        }
    };
    let attempt = record(event, method, exchanged, started);
    let parent = event.trace.as_ref();
    (shared.telemetry).attempted(&span, parent, destination, &attempt);
    Some(attempt)
}

/// How much longer than a destination's timeout a listener may take to
/// report (its local delivery has that timeout, plus the report's trip).
const LISTENER_GRACE: Duration = Duration::from_secs(10);

/// What an attempt got: the response, the URL it shows (auth secrets
/// masked) and the listener session that delivered it, if any.
struct Exchanged {
    response: Response,
    shown_url: String,
    cli_id: Option<String>,
}

/// Sends the request to the destination's URL, or hands it to a listener of
/// a CLI destination. None when the listener went away before reporting.
async fn exchange(
    shared: &Shared,
    destination: &Destination,
    event: &Event,
    outgoing: &Outgoing,
) -> Option<Exchanged> {
    let (client, auth) = (&shared.client, &destination.auth);
    if destination.url.is_some() {
        return Some(Exchanged {
            response: client.send(outgoing).await,
            shown_url: auth.shown_url(&outgoing.url),
            cli_id: None,
        });
    }
    let delivery = CliDelivery::of(
        outgoing,
        &event.id,
        client.timeout(),
        client.max_response_bytes(),
    );
    let patience = client.timeout() + LISTENER_GRACE;
    let (outcome, cli_id) = shared
        .cli
        .deliver(&destination.id, delivery, patience)
        .await?;
    let (response, local_url) = outcome.into_response(client.max_response_bytes());
    let shown_url = Url::parse(&local_url).map_or(local_url, |url| auth.shown_url(&url));
    Some(Exchanged {
        response,
        shown_url,
        cli_id: Some(cli_id),
    })
}

/// The HTTP request an event becomes at `url` (the payload moves into it:
/// its body is sent without a copy), carrying the attempt's `span`: the trace
/// headers that came in are the sender's span, not this one.
fn outgoing(
    shared: &Shared,
    destination: &Destination,
    event: &Event,
    payload: Payload,
    mut url: Url,
    span: &TraceContext,
) -> Outgoing {
    let mut headers = payload.headers;
    headers.retain(|(name, _)| {
        !HOP_BY_HOP.contains(&name.as_str())
            && !name.starts_with("x-hookgate-")
            && ![TRACEPARENT, TRACESTATE]
                .iter()
                .any(|trace| name.eq_ignore_ascii_case(trace))
    });
    headers.push((TRACEPARENT.into(), span.traceparent()));
    if let Some(state) = &span.state {
        headers.push((TRACESTATE.into(), state.clone()));
    }
    let attempt = event.attempts + 1;
    headers.push(("x-hookgate-event-id".into(), event.id.clone()));
    headers.push(("x-hookgate-request-id".into(), event.request_id.clone()));
    headers.push(("x-hookgate-attempt".into(), attempt.to_string()));
    let hookdeck = &shared.hookdeck;
    hookdeck.add(&mut headers, event, attempt, &shared.catalog.load());
    let now = now_ms();
    destination.auth.apply(
        &payload.body,
        (now / 1000) as i64,
        &hookdeck.secret.keys(now),
        &mut headers,
        &mut url,
    );
    Outgoing {
        method: destination.http_method.clone().unwrap_or(payload.method),
        url,
        headers,
        body: payload.body.into(),
        origin: destination.origin,
    }
}

/// What an attempt that is never sent records as its request: the method,
/// and the destination's own URL.
fn unsent(base: &Url, destination: &Destination, payload: Payload) -> Outgoing {
    Outgoing {
        method: destination.http_method.clone().unwrap_or(payload.method),
        url: base.clone(),
        headers: Vec::new(),
        body: bytes::Bytes::new(),
        origin: destination.origin,
    }
}

/// The outcome of an attempt refused before it was sent.
fn never_sent(unsafe_path: &UnsafePath) -> Response {
    Response {
        status: None,
        body: Some(unsafe_path.to_string()),
        error_code: Some(UNSAFE_PATH),
        latency_ms: 0,
    }
}

/// The destination URL, plus the forwarded path (unless disabled) and the
/// query. The path was checked as it came in, but is checked again here: a
/// stored event, bookmark or retry may predate that check.
fn destination_url(
    base: &Url,
    destination: &Destination,
    payload: &Payload,
) -> Result<Url, UnsafePath> {
    let mut url = base.clone();
    if !destination.path_forwarding_disabled && !payload.path.is_empty() {
        url = forwarded_path::join(&url, &payload.path)?;
    }
    if !payload.query.is_empty() {
        let query = match url.query() {
            Some(own) if !own.is_empty() => format!("{own}&{}", payload.query),
            _ => payload.query.clone(),
        };
        url.set_query(Some(&query));
    }
    Ok(url)
}

fn record(event: &Event, http_method: String, exchanged: Exchanged, started_ms: u64) -> Attempt {
    let Exchanged {
        response,
        shown_url: requested_url,
        cli_id,
    } = exchanged;
    let success = response.is_success();
    let attempt_number = event.attempts + 1;
    Attempt {
        // The store names it when it records it, unless a retry by hand or a
        // hold did.
        id: event.pending_attempt_id.clone().unwrap_or_default(),
        event_id: event.id.clone(),
        attempt_number,
        trigger: event.next_trigger(),
        status: if success {
            AttemptStatus::Successful
        } else {
            AttemptStatus::Failed
        },
        http_method,
        requested_url,
        response_status: response.status,
        response_body: response.body,
        error_code: response.error_code.map(str::to_string),
        latency_ms: response.latency_ms,
        created_at: started_ms,
        cli_id,
    }
}

/// Records the attempt, then moves the event on: done, retried later, or failed
/// for good. The event is re-read when it is updated, so a change the API made
/// meanwhile (mute, manual retry) is kept.
async fn settle(shared: &Arc<Shared>, event: &Event, attempt: Attempt) -> Result<(), StoreError> {
    let policy = retry_policy(shared, event);
    let requeues_at_start = event.requeues;
    let attempt = if settles_at_once(event, &attempt) {
        let now = shared.store.settle_attempt_unless_busy(
            attempt,
            |event, attempt| {
                let requeued = event.requeues != requeues_at_start;
                (next_state(event, attempt, policy.as_ref(), requeued), ())
            },
            |event, attempt| shared.issues.attempt_settled(event, attempt),
        );
        match now {
            SettledNow::Settled(settled) => return settled.map(|_| ()),
            SettledNow::JobLeft(event, ()) => return settle_job(shared, event).await,
            SettledNow::Busy(attempt) => attempt,
        }
    } else {
        attempt
    };
    let (store, issues) = (shared.store.clone(), shared.issues.clone());
    blocking(move || {
        // A webhook job's delivery: the store sums its job up anew too.
        store.settle_attempt(
            attempt,
            |event, attempt| {
                let requeued = event.requeues != requeues_at_start;
                (next_state(event, attempt, policy.as_ref(), requeued), ())
            },
            // Once the attempt is stored (an issue never names an attempt id
            // that a failed write would hand out again), before the event's
            // change is announced (whoever sees the failure sees its issue).
            |event, attempt| {
                if attempt.status == AttemptStatus::Failed {
                    issues.delivery_failed(event, attempt);
                }
                issues.attempt_settled(event, attempt);
            },
        )?;
        Ok(())
    })
    .await
}

/// A webhook job's delivery has settled on the runtime thread, but its job
/// was busy (see `Store::settle_attempt_unless_busy`): the job sums its
/// deliveries up again on the blocking pool, where waiting for that change
/// is fine.
async fn settle_job(shared: &Arc<Shared>, delivery: Event) -> Result<(), StoreError> {
    let store = shared.store.clone();
    blocking(move || store.settle_job(&delivery.request_id, &delivery.id, now_ms())).await
}

/// Whether an attempt is settled on the runtime thread, where it finished
/// (unless its event's change lock is held by someone else: that is never
/// waited for there). A successful attempt that stays in the event's record
/// touches only that event, which the scan has just read (it is in sled's
/// cache), and sled's log buffer, and a webhook job's delivery its job (see
/// `Store::settle_job_of_held`). Handing it to the blocking pool cost ~20 µs of CPU per
/// delivery in thread wake-ups, a fifth of the delivery side (BENCHMARKS.md).
/// The rest still go there: a failed attempt (issues are recorded under one
/// lock), an attempt bound for the attempts tree (a large write).
fn settles_at_once(event: &Event, attempt: &Attempt) -> bool {
    attempt.status == AttemptStatus::Successful && stays_inline(event, attempt)
}

/// Applies an attempt's outcome to its event; says where its queue entry goes.
/// `requeued`: the event was queued again by hand while the attempt was in
/// flight; that request stands (its entry is due now, its trigger kept).
fn next_state(
    event: &mut Event,
    attempt: &Attempt,
    policy: Option<&RetryPolicy>,
    requeued: bool,
) -> QueueMove {
    let now = now_ms();
    // Counted, unless the count was reset while the attempt was in flight (a
    // webhook job retried: its deliveries start afresh).
    if event.attempts + 1 >= attempt.attempt_number {
        event.attempts = event.attempts.max(attempt.attempt_number);
    }
    event.last_attempt_at = Some(attempt.created_at);
    event.response_status = attempt.response_status;
    event.error_code = attempt.error_code.clone();
    event.cli_id = attempt.cli_id.clone();
    if requeued {
        return QueueMove::Stay;
    }
    event.pending_trigger = None;
    event.pending_attempt_id = None;
    if attempt.status == AttemptStatus::Successful {
        event.status = EventStatus::Successful;
        event.successful_at = Some(now);
        return QueueMove::Out;
    }
    // A path or an address refused now is refused on every retry (a retry by
    // hand can pass, once the policy or the name's addresses change).
    let hopeless = matches!(
        attempt.error_code.as_deref(),
        Some(UNSAFE_PATH | BLOCKED_ADDRESS)
    );
    let wait = match (event.muted || hopeless, event.window) {
        (true, _) => None,
        (false, Some(window)) => window.next_wait(event.attempts, now),
        (false, None) => {
            policy.and_then(|policy| policy.next_wait(event.attempts, attempt.response_status))
        }
    };
    match wait {
        Some(wait) => {
            event.status = EventStatus::Scheduled;
            QueueMove::To(now + wait.as_millis() as u64)
        }
        None => {
            event.status = EventStatus::Failed;
            QueueMove::Out
        }
    }
}

fn retry_policy(shared: &Shared, event: &Event) -> Option<RetryPolicy> {
    let catalog = shared.catalog.load();
    let connection = catalog.connection(&event.connection_id)?;
    connection.rules.iter().find_map(|rule| match rule {
        Rule::Retry(policy) => Some(policy.clone()),
        _ => None,
    })
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .expect("store task panicked")
}

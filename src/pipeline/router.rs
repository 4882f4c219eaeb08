//! The router: after a request is durable, each connection of its source runs
//! its rules and the outcome is stored as an event (queued for delivery) or an
//! ignored event.

use super::filter::Evaluation;
use super::transform::{LogEntry, TransformError};
use super::view::{filter_root, payload_from_transformed, transform_input};
use super::{NamedTransformation, Rule};
use crate::ids::{derived_id, new_id, now_ms};
use crate::issues::IssueTracker;
use crate::metrics::{Metrics, TransformOutcome};
use crate::model::{Catalog, Connection, Event, Execution, IgnoredEvent, Payload, Request};
use crate::store::{Committed, Result, Store, StoreError};
use crate::telemetry::Telemetry;
use arc_swap::ArcSwap;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

const TRANSFORMATION_FAILED: &str = "TRANSFORMATION_FAILED";

/// Called with a destination id when new events are due for it.
pub type WakeLane = Arc<dyn Fn(&str) + Send + Sync>;

/// Most requests routed between two lane wake-ups, so that a burst costs one
/// wake-up per destination instead of one per event.
const ROUTE_BATCH: usize = 256;

#[derive(Clone)]
pub struct Router {
    store: Store,
    catalog: Arc<ArcSwap<Catalog>>,
    wake: WakeLane,
    issues: IssueTracker,
    metrics: Arc<Metrics>,
    telemetry: Telemetry,
}

/// What a connection's rules decided for one request.
enum Outcome {
    Deliver {
        /// Present when a rule changed the payload.
        payload: Option<Payload>,
        due_ms: u64,
    },
    Ignore {
        cause: &'static str,
        detail: Option<String>,
    },
}

/// Whether some of a request's events may already be stored.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Routed {
    /// Committed in this run and routed for the first time: its id is new, so
    /// no event derived from it can exist and none is looked up (a sled read
    /// per event, a fifth of the router's time under load).
    Never,
    /// Routed again (after a crash or a failure, or by hand): events that
    /// exist are kept as they are.
    Maybe,
}

impl Router {
    pub fn new(
        store: Store,
        catalog: Arc<ArcSwap<Catalog>>,
        wake: WakeLane,
        issues: IssueTracker,
        metrics: Arc<Metrics>,
        telemetry: Telemetry,
    ) -> Router {
        Router {
            store,
            catalog,
            wake,
            issues,
            metrics,
            telemetry,
        }
    }

    /// Where issues are recorded and announced (the API announces its changes there).
    pub fn issues(&self) -> &IssueTracker {
        &self.issues
    }

    /// Routes requests as the commit log hands them over, until it stops.
    pub fn start(self, committed: Receiver<Committed>) -> JoinHandle<()> {
        std::thread::Builder::new()
            .name("hookgate-router".into())
            .spawn(move || self.run(committed))
            .expect("spawn router thread")
    }

    fn run(&self, committed: Receiver<Committed>) {
        // A request that fails is marked for the next start, so the watermark
        // moves on; only when even the mark fails does it stop, for good.
        let mut watermark_holds = true;
        while let Ok(first) = committed.recv() {
            let batch = std::iter::once(first).chain(committed.try_iter().take(ROUTE_BATCH - 1));
            let mut woken = HashSet::new();
            let mut handled = None;
            for committed in batch {
                match self.take(&committed, Routed::Never) {
                    Ok(destinations) => woken.extend(destinations),
                    Err(error) => watermark_holds &= self.set_aside(&committed, &error),
                }
                handled = Some(committed.location);
            }
            woken
                .iter()
                .for_each(|destination| (self.wake)(destination));
            if let (Some(location), true) = (handled, watermark_holds) {
                if let Err(error) = self.store.set_routed_through(location) {
                    tracing::error!(%error, "could not record the routing watermark");
                }
            }
        }
    }

    /// Indexes a journaled request (unless the indexer did) and routes it if it
    /// was accepted. Returns the destinations that got new events.
    fn take(&self, committed: &Committed, routed: Routed) -> Result<Vec<String>> {
        let request = &committed.request;
        if !committed.indexed {
            self.store.index_request(request, committed.location)?;
        }
        if !committed.route {
            self.store.mark_routed(&request.id)?;
            return Ok(Vec::new());
        }
        let payload = match &committed.payload {
            Some(payload) => Cow::Borrowed(payload),
            // Past the backlog's bytes when it was committed.
            None => Cow::Owned(self.store.journaled_payload(committed.location)?),
        };
        self.route_as(request, &payload, routed, None)
    }

    /// Marks a request that could not be indexed or routed, for the next
    /// start; false when even that failed (the watermark must then stay put).
    fn set_aside(&self, committed: &Committed, error: &StoreError) -> bool {
        let id = &committed.request.id;
        tracing::error!(%error, request = %id, "routing failed; it is routed again on the next start");
        match self.store.mark_unrouted(id, committed.location) {
            Ok(()) => true,
            Err(error) => {
                tracing::error!(%error, request = %id, "could not mark it for the next start either");
                false
            }
        }
    }

    /// Routes what a crash or a stop left unrouted: the journal past the
    /// router's watermark, and requests marked unrouted (by `set_aside`, or by
    /// stores older than the journal). Routing is idempotent (event ids derive
    /// from request and connection), so a request routed halfway before the
    /// crash yields no duplicates.
    pub fn route_unrouted(&self) -> Result<usize> {
        let mut woken = HashSet::new();
        let mut routed = 0;
        let mut last = None;
        self.store.each_unrouted_journaled(|committed| {
            last = Some(committed.location);
            routed += usize::from(committed.route);
            woken.extend(self.take(&committed, Routed::Maybe)?);
            Ok(())
        })?;
        if let Some(location) = last {
            self.store.set_routed_through(location)?;
        }
        for (id, journaled) in self.store.marked_unrouted()? {
            if let Some(committed) = journaled {
                routed += usize::from(committed.route);
                woken.extend(self.take(&committed, Routed::Maybe)?);
                continue;
            }
            // Marked by a store older than the journal: all of it is in sled.
            let request = self.store.request(&id)?;
            let payload = self.store.request_payload(&id)?;
            match (request, payload) {
                (Some(request), Some(payload)) => {
                    routed += 1;
                    woken.extend(self.route(&request, &payload)?);
                }
                _ => self.store.mark_routed(&id)?,
            }
        }
        woken
            .iter()
            .for_each(|destination| (self.wake)(destination));
        Ok(routed)
    }

    /// Runs every connection of the request's source and stores the outcomes,
    /// skipping connections whose event exists. Returns the destinations that
    /// got new events.
    pub fn route(&self, request: &Request, payload: &Payload) -> Result<Vec<String>> {
        self.route_as(request, payload, Routed::Maybe, None)
    }

    /// `route` through the connections named in `only` alone (all when None).
    pub fn route_through(
        &self,
        request: &Request,
        payload: &Payload,
        only: Option<&[String]>,
    ) -> Result<Vec<String>> {
        self.route_as(request, payload, Routed::Maybe, only)
    }

    fn route_as(
        &self,
        request: &Request,
        payload: &Payload,
        routed: Routed,
        only: Option<&[String]>,
    ) -> Result<Vec<String>> {
        let catalog = self.catalog.load();
        let mut destinations = Vec::new();
        let source_id = request.source_id.as_deref().unwrap_or_default();
        let chosen = catalog
            .connections_of(source_id)
            .iter()
            .filter(|connection| only.is_none_or(|ids| ids.contains(&connection.id)));
        for connection in chosen {
            let event_id = derived_id("evt", &request.id, &connection.id);
            if routed == Routed::Maybe && self.store.event_exists(&event_id)? {
                continue;
            }
            let started = SystemTime::now();
            let (outcome, transform_logs) =
                self.apply_rules(&event_id, connection, request, payload)?;
            if let Some(span) = &request.trace {
                let cause = match &outcome {
                    Outcome::Deliver { .. } => None,
                    Outcome::Ignore { cause, .. } => Some(*cause),
                };
                (self.telemetry).routed(span, started, connection, &event_id, cause);
            }
            match outcome {
                Outcome::Deliver { payload, due_ms } => {
                    let mut event = Event::new(
                        event_id,
                        &request.id,
                        connection.as_ref().into(),
                        due_ms,
                        payload.is_some(),
                    );
                    event.transform_logs = transform_logs;
                    event.trace = request.trace.clone();
                    tracing::debug!(
                        request_id = request.id,
                        event_id = event.id,
                        source = source_id,
                        destination = event.destination_id,
                        "event created"
                    );
                    self.store
                        .insert_event_or_hold(event, payload.as_ref(), due_ms)?;
                    destinations.push(connection.destination_id.clone());
                    self.metrics.event_created(connection);
                }
                Outcome::Ignore { cause, detail } => {
                    let ignored = IgnoredEvent {
                        id: event_id,
                        request_id: request.id.clone(),
                        connection_id: connection.id.clone(),
                        cause: cause.to_string(),
                        created_at: now_ms(),
                        detail,
                        transform_logs,
                    };
                    self.store.insert_ignored_event(&ignored)?;
                    self.metrics.event_ignored(connection, cause);
                }
            }
        }
        self.store.mark_routed(&request.id)?;
        Ok(destinations)
    }

    /// Runs a connection's rules in the order written. A filter sees the payload
    /// as the rules before it left it (so a filter may come before or after a
    /// transform). Returns the outcome and what transformations logged.
    fn apply_rules(
        &self,
        event_id: &str,
        connection: &Connection,
        request: &Request,
        payload: &Payload,
    ) -> Result<(Outcome, Vec<LogEntry>)> {
        let mut current = Cow::Borrowed(payload);
        // The JSON view of `current`, built once and only if a rule needs it.
        let mut root: Option<Value> = None;
        let mut due_ms = request.received_at;
        let mut logs = Vec::new();
        for rule in &connection.rules {
            let ignore = |cause, detail| Outcome::Ignore { cause, detail };
            match rule {
                Rule::Filter(filter) => {
                    let evaluation =
                        filter.evaluate(root.get_or_insert_with(|| filter_root(&current)));
                    if !evaluation.matched {
                        return Ok((ignore("FILTERED", gave_up(&evaluation)), logs));
                    }
                }
                Rule::Transform(transform) => {
                    let mut run_logs = Vec::new();
                    let started = Instant::now();
                    let result = transformed(transform, connection, &current, &mut run_logs);
                    let outcome = result
                        .as_ref()
                        .map_or_else(|f| f.outcome, |_| TransformOutcome::Ok);
                    self.metrics
                        .transformation_ran(&transform.name, outcome, started.elapsed());
                    let result = result.map_err(|failed| failed.message);
                    let execution = Execution {
                        id: new_id("exe"),
                        transformation_id: self.store.transformation_id_named(&transform.name)?,
                        transformation_name: transform.name.clone(),
                        connection_id: connection.id.clone(),
                        request_id: request.id.clone(),
                        event_id: event_id.to_string(),
                        logs: run_logs.clone(),
                        error: result.as_ref().err().cloned(),
                        created_at: now_ms(),
                    };
                    self.store.insert_execution(&execution)?;
                    self.issues.transformation_ran(&execution);
                    logs.extend(run_logs);
                    match result {
                        Ok(changed) => {
                            current = Cow::Owned(changed);
                            root = None;
                        }
                        Err(error) => {
                            return Ok((ignore(TRANSFORMATION_FAILED, Some(error)), logs))
                        }
                    }
                }
                Rule::Deduplicate(dedup) => {
                    let fingerprint =
                        dedup.fingerprint(root.get_or_insert_with(|| filter_root(&current)));
                    let window_ms = dedup.window.as_millis() as u64;
                    if !self.store.claim_fingerprint(
                        &connection.id,
                        &fingerprint,
                        &request.id,
                        // Arrival, not routing time: a request routed late (a
                        // busy router, a replay after a crash) is judged as sent.
                        request.received_at,
                        window_ms,
                    )? {
                        return Ok((ignore("DEDUPLICATED", None), logs));
                    }
                }
                Rule::Delay(delay) => due_ms = request.received_at + delay.as_millis() as u64,
                // Applied after attempts, by the delivery lanes.
                Rule::Retry(_) => {}
            }
        }
        let changed = match current {
            Cow::Owned(payload) => Some(payload),
            Cow::Borrowed(_) => None,
        };
        Ok((
            Outcome::Deliver {
                payload: changed,
                due_ms,
            },
            logs,
        ))
    }
}

/// The detail of an event a filter ignored because it ran out of steps (it
/// fails closed, and says why).
fn gave_up(evaluation: &Evaluation) -> Option<String> {
    evaluation.gave_up.then(|| {
        "the filter ran out of steps ([limits] filter_max_steps) and counts as not matching".into()
    })
}

/// Runs a transformation on a payload; the error names the transformation.
/// A transformation run that gave no request.
struct RunFailed {
    outcome: TransformOutcome,
    message: String,
}

fn transformed(
    transform: &NamedTransformation,
    connection: &Connection,
    payload: &Payload,
    logs: &mut Vec<LogEntry>,
) -> std::result::Result<Payload, RunFailed> {
    let context =
        serde_json::json!({ "connection": { "id": connection.id, "name": connection.name } });
    let failed = |outcome, error: String| RunFailed {
        outcome,
        message: format!("transformation \"{}\": {error}", transform.name),
    };
    match transform
        .transformation
        .run(&transform_input(payload), &context)
    {
        Ok(output) => {
            logs.extend(output.logs);
            payload_from_transformed(payload, &output.request)
                .map_err(|error| failed(TransformOutcome::Failed, error))
        }
        Err(failure) => {
            logs.extend(failure.logs);
            let outcome = match failure.error {
                TransformError::Timeout(_) => TransformOutcome::TimedOut,
                _ => TransformOutcome::Failed,
            };
            Err(failed(outcome, failure.error.to_string()))
        }
    }
}

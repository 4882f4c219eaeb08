//! The router: after a request is durable, each connection of its source runs
//! its rules and the outcome is stored as an event (queued for delivery) or an
//! ignored event. A webhook job, journaled alike, is fanned out here too.

use super::decision::{decide, Outcome, RuleEffects, TransformationRun};
use super::dedup::Sighting;
use crate::ids::{derived_id, new_id, now_ms};
use crate::issues::IssueTracker;
use crate::metrics::Metrics;
use crate::model::{Catalog, Event, Execution, IgnoredEvent, Payload, Request};
use crate::store::{Committed, Journaled, Result, Store, StoreError};
use crate::telemetry::Telemetry;
use arc_swap::ArcSwap;
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

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

/// How often the router tries again what an unavailable store failed.
const CATCH_UP_EVERY: Duration = Duration::from_secs(1);

/// What the router failed because the store was unavailable, routed again
/// (`route_unrouted`: the marked requests and the journal past the
/// watermark) once the store answers.
#[derive(Default)]
struct CatchUp {
    due: bool,
    /// `Maybe` once a catch-up may have run: it may have routed requests
    /// still waiting in the router's queue.
    routed: Routed,
}

impl CatchUp {
    fn failed(&mut self, error: &StoreError) {
        if matches!(error, StoreError::Unavailable(_)) {
            self.due = true;
            self.routed = Routed::Maybe;
        }
    }

    /// Routes what failed, if anything did; true when it all went through
    /// (the watermark then stands at the journal's end).
    fn try_now(&mut self, router: &Router) -> bool {
        if !self.due {
            return false;
        }
        match router.route_unrouted() {
            Ok(routed) => {
                tracing::info!(
                    requests = routed,
                    "routed what failed while the store was unavailable"
                );
                self.due = false;
                true
            }
            Err(error) => {
                tracing::debug!(%error, "the store is still unavailable; routing later");
                false
            }
        }
    }
}

/// Whether some of a request's events may already be stored.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
enum Routed {
    /// Committed in this run and routed for the first time: its id is new, so
    /// no event derived from it can exist and none is looked up (a sled read
    /// per event, a fifth of the router's time under load).
    #[default]
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
    pub fn start(self, committed: Receiver<Journaled>) -> JoinHandle<()> {
        std::thread::Builder::new()
            .name("hookgate-router".into())
            .spawn(move || self.run(committed))
            .expect("spawn router thread")
    }

    fn run(&self, committed: Receiver<Journaled>) {
        // A request that fails is marked for the next start, so the watermark
        // moves on; only when even the mark fails does it stop, for good.
        let mut watermark_holds = true;
        // A store that was unavailable (a database down) routes what it
        // failed as soon as it answers again, not on the next start.
        let mut catch_up = CatchUp::default();
        loop {
            let first = match committed.recv_timeout(CATCH_UP_EVERY) {
                Ok(first) => first,
                Err(RecvTimeoutError::Timeout) => {
                    watermark_holds |= catch_up.try_now(self);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let batch = std::iter::once(first).chain(committed.try_iter().take(ROUTE_BATCH - 1));
            let mut woken = HashSet::new();
            let mut handled = None;
            for committed in batch {
                match self.take(&committed, catch_up.routed) {
                    Ok(destinations) => woken.extend(destinations),
                    Err(error) => {
                        catch_up.failed(&error);
                        watermark_holds &= self.set_aside(&committed, &error);
                    }
                }
                handled = Some(committed.location());
            }
            woken
                .iter()
                .for_each(|destination| (self.wake)(destination));
            if let (Some(location), true) = (handled, watermark_holds) {
                if let Err(error) = self.store.set_routed_through(location) {
                    tracing::error!(%error, "could not record the routing watermark");
                }
            }
            watermark_holds |= catch_up.try_now(self);
        }
    }

    /// Routes a journaled request, or fans out a journaled webhook job.
    /// Returns the destinations that got new events.
    fn take(&self, journaled: &Journaled, routed: Routed) -> Result<Vec<String>> {
        match journaled {
            Journaled::Request(committed) => self.take_request(committed, routed),
            Journaled::Job(committed) => {
                crate::outbound::fan_out_journaled(&self.store, committed, routed == Routed::Maybe)
            }
        }
    }

    /// Indexes a journaled request (unless the indexer did) and routes it if it
    /// was accepted. Returns the destinations that got new events.
    fn take_request(&self, committed: &Committed, routed: Routed) -> Result<Vec<String>> {
        let request = &committed.request;
        if !committed.indexed {
            self.store
                .index_request(request, committed.location, committed.payload.as_ref())?;
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
    fn set_aside(&self, committed: &Journaled, error: &StoreError) -> bool {
        let id = committed.id();
        tracing::error!(%error, request = %id, "routing failed; it is routed again on the next start (or once the store is available again)");
        match self.store.mark_unrouted(id, committed.location()) {
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
            last = Some(committed.location());
            routed += usize::from(committed.routes());
            woken.extend(self.take(&committed, Routed::Maybe)?);
            Ok(())
        })?;
        if let Some(location) = last {
            self.store.set_routed_through(location)?;
        }
        for (id, journaled) in self.store.marked_unrouted()? {
            if let Some(committed) = journaled {
                routed += usize::from(committed.routes());
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

    /// Routes what silent nodes (dead for `lease`, or stopped early) left
    /// in their journals past their watermarks (see `store::silent_nodes`):
    /// the leader's work in a cluster. Returns how many records it routed.
    pub fn route_silent_nodes(&self, lease: Duration) -> Result<usize> {
        let mut woken = HashSet::new();
        let mut routed = 0;
        for node in self.store.silent_nodes(lease)? {
            let taken = self.store.each_unrouted_journaled_of(&node, |committed| {
                woken.extend(self.take(&committed, Routed::Maybe)?);
                Ok(())
            });
            match taken {
                Ok(0) => {}
                Ok(count) => {
                    tracing::info!(%node, records = count, "routed what a silent node left unrouted");
                    routed += count;
                }
                // The next round tries again (from the same watermark).
                Err(error) => tracing::warn!(%error, %node, "a silent node's journal not routed"),
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
                destinations.extend(self.store.restore_queue_entry(&event_id)?);
                continue;
            }
            let started = SystemTime::now();
            let (outcome, transform_logs) =
                decide(&mut Recorded(self), &event_id, connection, request, payload)?;
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
                    event.delay_ms = due_ms.saturating_sub(request.received_at);
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
                        .insert_event_or_hold(Cow::Owned(event), payload.as_ref(), due_ms)?;
                    destinations.push(connection.destination_id.clone());
                    self.metrics.event_created(connection);
                }
                Outcome::Ignore {
                    cause,
                    detail,
                    transformation,
                    failed_part,
                } => {
                    let transformation_id = transformation
                        .map(|name| self.store.transformation_id_named(&name))
                        .transpose()?;
                    let ignored = IgnoredEvent {
                        id: event_id,
                        request_id: request.id.clone(),
                        connection_id: connection.id.clone(),
                        cause: cause.to_string(),
                        created_at: now_ms(),
                        detail,
                        transformation_id,
                        transform_logs,
                        failed_part: failed_part.map(str::to_string),
                    };
                    self.store.insert_ignored_event(&ignored)?;
                    self.metrics.event_ignored(connection, cause);
                }
            }
        }
        self.store.mark_routed(&request.id)?;
        Ok(destinations)
    }
}

/// The router's rule effects: sightings and transformation runs go to the store.
struct Recorded<'a>(&'a Router);

impl RuleEffects for Recorded<'_> {
    fn claim_fingerprint(&mut self, sighting: &Sighting) -> Result<bool> {
        self.0.store.claim_fingerprint(sighting)
    }

    fn transformation_ran(&mut self, run: TransformationRun<'_>) -> Result<()> {
        let router = self.0;
        let name = &run.transform.name;
        router
            .metrics
            .transformation_ran(name, run.outcome, run.took);
        let execution = Execution {
            id: new_id("exe"),
            transformation_id: router.store.transformation_id_named(name)?,
            transformation_name: name.clone(),
            connection_id: run.connection.id.clone(),
            request_id: run.request.id.clone(),
            event_id: run.event_id.to_string(),
            logs: run.logs.to_vec(),
            error: run.error.cloned(),
            created_at: now_ms(),
        };
        router.store.insert_execution(&execution)?;
        router.issues.transformation_ran(&execution);
        Ok(())
    }
}

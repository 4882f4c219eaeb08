//! Delivery: one lane per destination takes due events from the queue, sends
//! them within the destination's rate limit and concurrency cap, records every
//! attempt, and schedules retries.
//!
//! Lanes share nothing but the store and the HTTP client's connection pool, so a
//! destination that hangs or refuses only ever slows its own lane.

mod attempt;
mod backpressure;
mod circuit;
pub mod cli;
mod doorbell;
mod hookdeck_headers;
mod http_client;
mod in_flight;
mod lane;

pub use circuit::{CircuitState, Circuits};
pub use cli::CliListeners;
pub use hookdeck_headers::HookdeckHeaders;
pub use http_client::{DeliveryClient, Outgoing, Response as DeliveryResponse, SharedPolicy};

use crate::cluster::Leases;
use crate::issues::IssueTracker;
use crate::metrics::Metrics;
use crate::model::Catalog;
use crate::pipeline::WakeLane;
use crate::store::Store;
use crate::telemetry::Telemetry;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What every lane needs.
pub(crate) struct Shared {
    store: Store,
    catalog: Arc<ArcSwap<Catalog>>,
    client: DeliveryClient,
    issues: IssueTracker,
    circuits: Arc<Circuits>,
    /// The headers and signing secret of Hookdeck's deliveries.
    hookdeck: HookdeckHeaders,
    metrics: Arc<Metrics>,
    telemetry: Telemetry,
    /// The `hookgate listen` sessions of CLI destinations.
    cli: Arc<CliListeners>,
    /// Which lanes run here, and whether this node checks backlogs.
    leases: Leases,
}

/// How lanes send: the HTTP client, the circuit breakers, Hookdeck's
/// headers, where attempts are counted and where their spans go.
pub struct Sending {
    pub client: DeliveryClient,
    /// Shared with the metrics, which show each circuit's state.
    pub circuits: Arc<Circuits>,
    pub hookdeck: HookdeckHeaders,
    pub metrics: Arc<Metrics>,
    pub telemetry: Telemetry,
}

struct LaneHandle {
    bell: Arc<doorbell::Doorbell>,
    task: JoinHandle<()>,
}

/// Owns the lanes; wakes them when events are queued, stops them on shutdown.
pub struct Scheduler {
    shared: Arc<Shared>,
    lanes: Mutex<HashMap<String, LaneHandle>>,
    runtime: tokio::runtime::Handle,
    stop: watch::Sender<bool>,
    /// The backlog watcher, joined on shutdown like the lanes (it uses the store).
    watcher: Mutex<Option<JoinHandle<()>>>,
}

impl Scheduler {
    /// Starts a lane for every destination; each resumes whatever its queue
    /// holds while this node holds its lease (`leases`).
    /// Must be called inside the tokio runtime that will run the lanes.
    pub fn start(
        store: Store,
        catalog: Arc<ArcSwap<Catalog>>,
        issues: IssueTracker,
        sending: Sending,
        leases: Leases,
        backlog_check_every: Duration,
    ) -> Arc<Scheduler> {
        let Sending {
            client,
            circuits,
            hookdeck,
            metrics,
            telemetry,
        } = sending;
        let scheduler = Arc::new(Scheduler {
            shared: Arc::new(Shared {
                store,
                catalog,
                client,
                issues,
                circuits,
                hookdeck,
                metrics,
                telemetry,
                cli: Arc::default(),
                leases,
            }),
            lanes: Mutex::default(),
            runtime: tokio::runtime::Handle::current(),
            stop: watch::channel(false).0,
            watcher: Mutex::default(),
        });
        let destination_ids = scheduler.shared.catalog.load().target_ids();
        destination_ids.iter().for_each(|id| scheduler.wake(id));
        let watcher = scheduler.runtime.spawn(backpressure::watch(
            scheduler.shared.clone(),
            backlog_check_every,
            scheduler.stop.subscribe(),
        ));
        *scheduler.watcher.lock().expect("watcher lock") = Some(watcher);
        scheduler
    }

    /// Tells a destination's lane that events may be due; starts the lane if the
    /// destination has none yet. Callable from any thread.
    pub fn wake(&self, destination_id: &str) {
        let mut lanes = self.lanes.lock().expect("lanes lock");
        if *self.stop.borrow() {
            return;
        }
        // A lane ends when its destination goes away; it starts afresh if it
        // comes back (see `doorbell::Doorbell`).
        let listening = lanes
            .get(destination_id)
            .is_some_and(|lane| !lane.task.is_finished() && lane.bell.ring());
        if !listening {
            let before = lanes.remove(destination_id).map(|lane| lane.task);
            let bell = Arc::new(doorbell::Doorbell::new());
            let run = lane::run(
                self.shared.clone(),
                destination_id.to_string(),
                bell.clone(),
                self.stop.subscribe(),
            );
            let task = self.runtime.spawn(async move {
                if let Some(before) = before {
                    let _ = before.await; // its attempts in flight finish first
                }
                run.await
            });
            bell.ring();
            lanes.insert(destination_id.to_string(), LaneHandle { bell, task });
            self.shared.leases.lane_started();
        }
    }

    /// Serves a new catalog (a reload, or objects changed through the API).
    /// Every lane of the old and the new catalog is woken, so a lane waiting on
    /// an old rate limit picks up the new one at once, a new destination's lane
    /// starts and a removed one's stops. Callers serialize their changes.
    pub fn replace_catalog(&self, catalog: Catalog) {
        let mut lanes = self.shared.catalog.load().target_ids();
        lanes.extend(catalog.target_ids());
        lanes.sort_unstable();
        lanes.dedup();
        self.shared.catalog.store(Arc::new(catalog));
        lanes.iter().for_each(|id| self.wake(id));
    }

    /// Where `hookgate listen` sessions connect to CLI destinations (a
    /// connecting one wakes its destination's lane: `wake`).
    pub fn cli_listeners(&self) -> &Arc<CliListeners> {
        &self.shared.cli
    }

    /// The circuit state of an outbound endpoint.
    pub fn circuit_state(&self, endpoint_id: &str) -> CircuitState {
        self.shared
            .circuits
            .state(endpoint_id, crate::ids::now_ms())
    }

    /// A wake callback for the router.
    pub fn waker(self: &Arc<Self>) -> WakeLane {
        let scheduler = self.clone();
        Arc::new(move |destination_id: &str| scheduler.wake(destination_id))
    }

    /// Stops taking new events and waits up to `grace` for attempts in flight.
    /// Whatever is not finished stays queued on disk and resumes on the next start.
    pub async fn shutdown(&self, grace: Duration) {
        let _ = self.stop.send(true);
        let tasks: Vec<JoinHandle<()>> = {
            let mut lanes = self.lanes.lock().expect("lanes lock");
            let watcher = self.watcher.lock().expect("watcher lock").take();
            lanes
                .drain()
                .map(|(_, lane)| lane.task)
                .chain(watcher)
                .collect()
        };
        let all_done = futures_util::future::join_all(tasks);
        if tokio::time::timeout(grace, all_done).await.is_err() {
            tracing::warn!(
                "delivery lanes still busy after the shutdown grace; their events stay queued"
            );
        }
    }
}

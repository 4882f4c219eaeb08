//! Delivery: one lane per destination takes due events from the queue, sends
//! them within the destination's rate limit and concurrency cap, records every
//! attempt, and schedules retries.
//!
//! Lanes share nothing but the store and the HTTP client's connection pool, so a
//! destination that hangs or refuses only ever slows its own lane.

mod attempt;
mod backpressure;
mod http_client;
mod lane;

pub use http_client::{DeliveryClient, Outgoing, Response as DeliveryResponse};

use crate::issues::IssueTracker;
use crate::model::Catalog;
use crate::pipeline::WakeLane;
use crate::store::Store;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// What every lane needs.
pub(crate) struct Shared {
    store: Store,
    catalog: Arc<ArcSwap<Catalog>>,
    client: DeliveryClient,
    issues: IssueTracker,
}

struct LaneHandle {
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

/// Owns the lanes; wakes them when events are queued, stops them on shutdown.
pub struct Scheduler {
    shared: Arc<Shared>,
    lanes: Mutex<HashMap<String, LaneHandle>>,
    runtime: tokio::runtime::Handle,
    stop: watch::Sender<bool>,
}

impl Scheduler {
    /// Starts a lane for every destination; each resumes whatever its queue holds.
    /// Must be called inside the tokio runtime that will run the lanes.
    pub fn start(
        store: Store,
        catalog: Arc<ArcSwap<Catalog>>,
        client: DeliveryClient,
        issues: IssueTracker,
        backlog_check_every: Duration,
    ) -> Arc<Scheduler> {
        let scheduler = Arc::new(Scheduler {
            shared: Arc::new(Shared {
                store,
                catalog,
                client,
                issues,
            }),
            lanes: Mutex::default(),
            runtime: tokio::runtime::Handle::current(),
            stop: watch::channel(false).0,
        });
        let destination_ids: Vec<String> = scheduler
            .shared
            .catalog
            .load()
            .destinations()
            .into_iter()
            .map(|d| d.id.clone())
            .collect();
        destination_ids.iter().for_each(|id| scheduler.wake(id));
        scheduler.runtime.spawn(backpressure::watch(
            scheduler.shared.clone(),
            backlog_check_every,
            scheduler.stop.subscribe(),
        ));
        scheduler
    }

    /// Tells a destination's lane that events may be due; starts the lane if the
    /// destination has none yet. Callable from any thread.
    pub fn wake(&self, destination_id: &str) {
        let mut lanes = self.lanes.lock().expect("lanes lock");
        if *self.stop.borrow() {
            return;
        }
        let lane = lanes.entry(destination_id.to_string()).or_insert_with(|| {
            let wake = Arc::new(Notify::new());
            let task = self.runtime.spawn(lane::run(
                self.shared.clone(),
                destination_id.to_string(),
                wake.clone(),
                self.stop.subscribe(),
            ));
            LaneHandle { wake, task }
        });
        lane.wake.notify_one();
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
            lanes.drain().map(|(_, lane)| lane.task).collect()
        };
        let all_done = futures_util::future::join_all(tasks);
        if tokio::time::timeout(grace, all_done).await.is_err() {
            tracing::warn!(
                "delivery lanes still busy after the shutdown grace; their events stay queued"
            );
        }
    }
}

//! Cluster mode's coordination (issue #23): several nodes on one PostgreSQL.
//! Each destination's lane runs on one node at a time and one node leads
//! (retention, backlog checks, bulk retries, what silent nodes left
//! unrouted in their journals), by leases in the
//! database (`coordinator`); changes to what every node caches (paused
//! connections, API objects, the signing secret), newly queued events and
//! bulk retries started (for the leader) are announced to every node
//! (`announcements`). On the embedded store a node is alone: it holds
//! every lease and nothing runs here.

mod announcements;
mod coordinator;
mod leases;

pub use leases::{Held, Leases};

use crate::store::Backend;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the coordination acts on: the gateway, seen from the cluster.
pub trait Node: Send + Sync + 'static {
    /// The destinations (and endpoints) whose lanes this node could run.
    fn lanes(&self) -> Vec<String>;
    /// Rings a lane: it looks at its lease and its queue again.
    fn wake(&self, destination_id: &str);
    /// Reads the paused connections again (blocking).
    fn refresh_paused(&self);
    /// Serves the objects created through the API as stored now (blocking).
    fn refresh_objects(&self);
    /// Signs with the workspace signing secret as stored now (blocking).
    fn refresh_signing_secret(&self);
    /// This node has just acquired the leader's lease: it resumes the
    /// leader's work left running in the store (bulk retries; blocking).
    fn lead(&self);
    /// A bulk retry was started through some node's API: the leader runs
    /// it (blocking; a node that does not lead does nothing).
    fn bulk_retry_started(&self);
    /// This node's id, the one its journal's records carry.
    fn id(&self) -> String;
    /// The leader, every round: routes what nodes silent for `lease` left
    /// unrouted in their journals (blocking).
    fn route_silent_nodes(&self, lease: Duration);
}

/// The coordination of one node; stop it once its lanes have stopped.
pub struct Cluster {
    leases: Leases,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Cluster {
    /// The leases of a node on `backend`, not acquired yet: `join` starts
    /// acquiring them (the lanes, which ask them, start in between).
    pub fn for_backend(backend: &Backend) -> Cluster {
        let leases = match backend {
            Backend::Embedded => Leases::Local,
            Backend::Postgres(_) => Leases::Shared(Arc::default()),
        };
        Cluster {
            leases,
            stop: watch::channel(false).0,
            tasks: Vec::new(),
        }
    }

    pub fn leases(&self) -> &Leases {
        &self.leases
    }

    /// Starts acquiring leases and listening for changes (in the cluster
    /// only). Must be called inside the gateway's runtime.
    pub fn join(&mut self, backend: &Backend, lease: Duration, node: Arc<dyn Node>) {
        let (Leases::Shared(held), Backend::Postgres(settings)) = (&self.leases, backend) else {
            return;
        };
        let mut config = settings.config.clone();
        config
            .application_name("hookgate-cluster")
            .connect_timeout(settings.statement_timeout);
        let coordinator = coordinator::Coordinator {
            config: config.clone(),
            node_id: node.id(),
            lease,
            held: held.clone(),
            node: node.clone(),
            routing_silent: Arc::default(),
        };
        self.tasks = vec![
            tokio::spawn(coordinator.run(self.stop.subscribe())),
            tokio::spawn(announcements::listen(config, node, self.stop.subscribe())),
        ];
    }

    /// Releases the leases (the lanes must have finished their attempts)
    /// and stops listening.
    pub async fn leave(mut self) {
        let _ = self.stop.send(true);
        futures_util::future::join_all(std::mem::take(&mut self.tasks)).await;
    }
}

/// A node dropped without `leave` (a test's crash) holds nothing from then
/// on and releases nothing: its leases expire, as a dead node's do.
impl Drop for Cluster {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
        if let Leases::Shared(held) = &self.leases {
            held.forget_all();
        }
    }
}

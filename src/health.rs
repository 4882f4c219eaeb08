//! `GET /healthz` and `GET /readyz`, answered the same on the ingress and
//! the API listeners, without a key: what a load balancer or an orchestrator
//! probes. Alive means the process answers; ready means a request sent now
//! would be taken and routed in time.

use crate::cluster::Leases;
use crate::config::LimitsSection;
use crate::store::Store;
use http::StatusCode;
use serde::Serialize;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// The liveness probe's path.
pub const HEALTHZ: &str = "/healthz";
/// The readiness probe's path.
pub const READYZ: &str = "/readyz";

/// What a probe answers (also its schema in `/openapi.json`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProbeAnswer {
    /// `ok` (`/healthz`); `ready` or `not_ready` (`/readyz`).
    pub status: &'static str,
    /// Every failing check, when not ready.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<NotReady>,
}

/// A check `/readyz` failed.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NotReady {
    /// `shutting_down`, `store`, `database`, `journal`, `disk` or `router_lag`.
    pub check: &'static str,
    /// What is wrong.
    pub message: String,
}

impl ProbeAnswer {
    fn with_status(status: &'static str) -> ProbeAnswer {
        ProbeAnswer {
            status,
            reasons: Vec::new(),
        }
    }

    /// The answer as JSON; it holds only strings, so that cannot fail.
    fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// What `/readyz` looks at.
pub struct Readiness {
    store: Store,
    /// A node of a cluster: whether its database answers.
    leases: Leases,
    /// Where the store keeps its files.
    data_dir: PathBuf,
    /// Free disk below this in `data_dir` is not ready: the store's disk
    /// reserve (`limits.store_disk_reserve_bytes`), as the store takes no
    /// requests once the free disk cannot hold it.
    min_free_disk_bytes: u64,
    /// `limits.max_router_lag`.
    max_router_lag: usize,
    /// Set when a graceful stop begins.
    draining: AtomicBool,
}

impl Readiness {
    pub fn new(
        store: Store,
        leases: Leases,
        limits: &LimitsSection,
        data_dir: PathBuf,
    ) -> Readiness {
        Readiness {
            store,
            leases,
            data_dir,
            min_free_disk_bytes: limits.store_disk_reserve_bytes,
            max_router_lag: limits.max_router_lag,
            draining: AtomicBool::new(false),
        }
    }

    /// From now on `/readyz` answers 503: the gateway is stopping, and a load
    /// balancer should send its traffic elsewhere.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// The answer to `path` when it is a probe's.
    pub fn probe(&self, path: &str) -> Option<(StatusCode, Value)> {
        match path {
            HEALTHZ => Some((StatusCode::OK, ProbeAnswer::with_status("ok").to_value())),
            READYZ => Some(self.readiness()),
            _ => None,
        }
    }

    /// 200 `{"status": "ready"}`, or 503 naming every reason it is not.
    fn readiness(&self) -> (StatusCode, Value) {
        let reasons: Vec<NotReady> = self
            .not_ready_because()
            .into_iter()
            .map(|(check, message)| NotReady { check, message })
            .collect();
        if reasons.is_empty() {
            return (StatusCode::OK, ProbeAnswer::with_status("ready").to_value());
        }
        let answer = ProbeAnswer {
            status: "not_ready",
            reasons,
        };
        (StatusCode::SERVICE_UNAVAILABLE, answer.to_value())
    }

    /// Each failing check's name, with what is wrong.
    fn not_ready_because(&self) -> Vec<(&'static str, String)> {
        let store = &self.store;
        let mut reasons = Vec::new();
        if self.draining.load(Ordering::SeqCst) {
            reasons.push(("shutting_down", "the gateway is stopping".to_string()));
        }
        if let Some(failure) = store.sled_failure() {
            let message = format!("the store failed ({failure}); only a restart mends it");
            reasons.push(("store", message));
        }
        if self.leases.out_of_reach() {
            let message =
                "this node's last lease renewal could not reach PostgreSQL (the log says why)";
            reasons.push(("database", message.to_string()));
        }
        if let Some(failure) = store.journal_failure() {
            let message = format!("the last write to the request journal failed: {failure}");
            reasons.push(("journal", message));
        }
        if let Some(message) = self.short_of_disk() {
            reasons.push(("disk", message));
        }
        let lag = store.router_lag();
        if lag >= self.max_router_lag {
            let message = format!(
                "{lag} acknowledged requests wait for the router (limits.max_router_lag = {})",
                self.max_router_lag
            );
            reasons.push(("router_lag", message));
        }
        reasons
    }

    /// What is wrong when `data_dir`'s free disk is below the minimum.
    fn short_of_disk(&self) -> Option<String> {
        let dir = self.data_dir.display();
        let free = match crate::store::free_bytes(&self.data_dir) {
            Ok(free) => free,
            Err(error) => return Some(format!("cannot read the free disk in {dir}: {error}")),
        };
        (free < self.min_free_disk_bytes).then(|| {
            format!(
                "{free} bytes free in {dir}, less than the store's disk reserve \
                 (limits.store_disk_reserve_bytes = {})",
                self.min_free_disk_bytes
            )
        })
    }
}

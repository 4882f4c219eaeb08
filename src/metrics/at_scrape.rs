//! Gauges read at each scrape, so nothing is counted on the hot paths and
//! none can drift. Each is a cheap read: `hookgate_queue_depth{destination}`
//! (the store keeps exact depths, `Store::queue_depth`),
//! `hookgate_queue_lateness_seconds{destination}` (the first key of the
//! destination's queue, which is ordered by due time),
//! `hookgate_circuit_state{destination,state}` (in memory),
//! `hookgate_router_lag_requests` (in memory), `hookgate_paused_connections`,
//! `hookgate_open_issues{type}` and `hookgate_bulk_retries_in_progress` (counts
//! the store keeps as issues and bulk retries are saved), and the data
//! directory's size and free space (`hookgate_data_dir_bytes`,
//! `hookgate_data_dir_free_bytes`).

use super::Watched;
use crate::delivery::{CircuitState, Circuits};
use crate::ids::now_ms;
use crate::model::{Catalog, Destination, IssueType};
use crate::store::{free_bytes, Store};
use arc_swap::ArcSwap;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntGauge, IntGaugeVec, Opts};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(super) struct AtScrape {
    store: Store,
    catalog: Arc<ArcSwap<Catalog>>,
    circuits: Arc<Circuits>,
    data_dir: PathBuf,
    descs: Vec<Desc>,
}

/// Every state a circuit can be in: each is a series (1 for the current one).
const CIRCUIT_STATES: [CircuitState; 3] = [
    CircuitState::Closed,
    CircuitState::Open,
    CircuitState::HalfOpen,
];

/// The gauges of one scrape, made fresh each time: a removed destination's
/// series goes with it.
struct Gauges {
    queue_depth: IntGaugeVec,
    queue_lateness: GaugeVec,
    circuit_state: IntGaugeVec,
    router_lag: IntGauge,
    bulk_retries: IntGauge,
    paused_connections: IntGauge,
    open_issues: IntGaugeVec,
    data_dir_bytes: IntGauge,
    data_dir_free_bytes: IntGauge,
}

impl Gauges {
    fn new() -> Gauges {
        Gauges {
            queue_depth: gauges(
                "queue_depth",
                "Events waiting for delivery to a destination (due now or later).",
                &["destination"],
            ),
            queue_lateness: GaugeVec::new(
                Opts::new(
                    "queue_lateness_seconds",
                    "How late the destination's oldest due event is (0 when none is overdue).",
                ),
                &["destination"],
            )
            .expect("valid metric"),
            circuit_state: gauges(
                "circuit_state",
                "1 for the state the destination's circuit breaker is in (closed, open, half-open), 0 for the others; only destinations with a circuit breaker.",
                &["destination", "state"],
            ),
            router_lag: gauge(
                "router_lag_requests",
                "Requests acknowledged (durable) but not yet routed into events.",
            ),
            bulk_retries: gauge("bulk_retries_in_progress", "Bulk retries still running."),
            paused_connections: gauge(
                "paused_connections",
                "Connections paused (their events are held).",
            ),
            open_issues: gauges(
                "open_issues",
                "Issues in status OPENED, by type.",
                &["type"],
            ),
            data_dir_bytes: gauge(
                "data_dir_bytes",
                "Bytes of the files in data_dir: the store, the request journal and their snapshots.",
            ),
            data_dir_free_bytes: gauge(
                "data_dir_free_bytes",
                "Bytes free for hookgate on data_dir's file system.",
            ),
        }
    }

    fn collectors(&self) -> [&dyn Collector; 9] {
        [
            &self.queue_depth,
            &self.queue_lateness,
            &self.circuit_state,
            &self.router_lag,
            &self.bulk_retries,
            &self.paused_connections,
            &self.open_issues,
            &self.data_dir_bytes,
            &self.data_dir_free_bytes,
        ]
    }
}

impl AtScrape {
    pub(super) fn new(watched: Watched) -> AtScrape {
        let gauges = Gauges::new();
        let descs = gauges
            .collectors()
            .iter()
            .flat_map(|collector| collector.desc().into_iter().cloned())
            .collect();
        AtScrape {
            store: watched.store,
            catalog: watched.catalog,
            circuits: watched.circuits,
            data_dir: watched.data_dir.to_path_buf(),
            descs,
        }
    }

    fn read(&self, gauges: &Gauges) -> crate::store::Result<()> {
        let catalog = self.catalog.load();
        // Destinations without a URL too: their events wait in their queue.
        let endpoints = catalog.endpoints();
        let destinations = catalog.destinations().into_iter().map(Arc::as_ref);
        let now = now_ms();
        for destination in destinations.chain(&endpoints) {
            self.read_queue(gauges, destination, now)?;
            if destination.circuit_breaker {
                let state = self.circuits.state(&destination.id, now);
                for each in CIRCUIT_STATES {
                    gauges
                        .circuit_state
                        .with_label_values(&[&destination.name, each.as_str()])
                        .set((each == state).into());
                }
            }
        }
        gauges
            .router_lag
            .set(self.store.router_lag().try_into().unwrap_or(i64::MAX));
        gauges.bulk_retries.set(
            self.store
                .running_bulk_retries()
                .try_into()
                .unwrap_or(i64::MAX),
        );
        let paused = catalog
            .connections()
            .iter()
            .filter(|connection| self.store.is_paused(&connection.id))
            .count();
        gauges.paused_connections.set(paused as i64);
        for kind in [
            IssueType::Delivery,
            IssueType::Transformation,
            IssueType::Backpressure,
        ] {
            gauges
                .open_issues
                .with_label_values(&[type_name(kind)])
                .set(self.store.open_issues(kind).try_into().unwrap_or(i64::MAX));
        }
        Ok(())
    }
}

impl AtScrape {
    /// The destination's queue depth, and how late its oldest due event is.
    fn read_queue(
        &self,
        gauges: &Gauges,
        destination: &Destination,
        now: u64,
    ) -> crate::store::Result<()> {
        let depth = self.store.queue_depth(&destination.id)?;
        gauges
            .queue_depth
            .with_label_values(&[&destination.name])
            .set(depth.try_into().unwrap_or(i64::MAX));
        let late_ms = match self.store.oldest_entry(&destination.id)? {
            Some(oldest) => now.saturating_sub(oldest.due_ms),
            None => 0,
        };
        gauges
            .queue_lateness
            .with_label_values(&[&destination.name])
            .set(late_ms as f64 / 1000.0);
        Ok(())
    }
}

fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::with_opts(Opts::new(name, help)).expect("valid metric")
}

fn gauges(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric")
}

/// The bytes of every file under `dir`.
fn bytes_under(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        total += if kind.is_dir() {
            bytes_under(&entry.path())?
        } else {
            entry.metadata()?.len()
        };
    }
    Ok(total)
}

/// The issue type as the API names it.
fn type_name(kind: IssueType) -> &'static str {
    match kind {
        IssueType::Delivery => "delivery",
        IssueType::Transformation => "transformation",
        IssueType::Backpressure => "backpressure",
    }
}

impl Collector for AtScrape {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let gauges = Gauges::new();
        if let Err(error) = self.read(&gauges) {
            tracing::warn!(%error, "the store could not be read for /metrics");
        }
        match (bytes_under(&self.data_dir), free_bytes(&self.data_dir)) {
            (Ok(size), Ok(free)) => {
                gauges.data_dir_bytes.set(size as i64);
                gauges.data_dir_free_bytes.set(free as i64);
            }
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(%error, "data_dir could not be measured for /metrics")
            }
        }
        gauges
            .collectors()
            .iter()
            .flat_map(|collector| collector.collect())
            .collect()
    }
}

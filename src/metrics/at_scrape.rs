//! Gauges read from the store at each scrape, so nothing is counted on the
//! hot paths and none can drift: `hookgate_queue_depth{destination}` (the
//! store keeps exact depths, `Store::queue_depth`),
//! `hookgate_paused_connections`, `hookgate_open_issues{type}`, and the
//! data directory's size and free space (`hookgate_data_dir_bytes`,
//! `hookgate_data_dir_free_bytes`).

use crate::model::{Catalog, IssueStatus, IssueType};
use crate::store::{free_bytes, Store};
use arc_swap::ArcSwap;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGauge, IntGaugeVec, Opts};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(super) struct AtScrape {
    store: Store,
    catalog: Arc<ArcSwap<Catalog>>,
    data_dir: PathBuf,
    descs: Vec<Desc>,
}

/// The gauges of one scrape, made fresh each time: a removed destination's
/// series goes with it.
struct Gauges {
    queue_depth: IntGaugeVec,
    paused_connections: IntGauge,
    open_issues: IntGaugeVec,
    data_dir_bytes: IntGauge,
    data_dir_free_bytes: IntGauge,
}

impl Gauges {
    fn new() -> Gauges {
        let opts = Opts::new;
        Gauges {
            queue_depth: IntGaugeVec::new(
                opts(
                    "queue_depth",
                    "Events waiting for delivery to a destination (due now or later).",
                ),
                &["destination"],
            )
            .expect("valid metric"),
            paused_connections: IntGauge::with_opts(opts(
                "paused_connections",
                "Connections paused (their events are held).",
            ))
            .expect("valid metric"),
            open_issues: IntGaugeVec::new(
                opts("open_issues", "Issues in status OPENED, by type."),
                &["type"],
            )
            .expect("valid metric"),
            data_dir_bytes: IntGauge::with_opts(opts(
                "data_dir_bytes",
                "Bytes of the files in data_dir: the store, the request journal and their snapshots.",
            ))
            .expect("valid metric"),
            data_dir_free_bytes: IntGauge::with_opts(opts(
                "data_dir_free_bytes",
                "Bytes free for hookgate on data_dir's file system.",
            ))
            .expect("valid metric"),
        }
    }

    fn collectors(&self) -> [&dyn Collector; 5] {
        [
            &self.queue_depth,
            &self.paused_connections,
            &self.open_issues,
            &self.data_dir_bytes,
            &self.data_dir_free_bytes,
        ]
    }
}

impl AtScrape {
    pub(super) fn new(store: Store, catalog: Arc<ArcSwap<Catalog>>, data_dir: &Path) -> AtScrape {
        let gauges = Gauges::new();
        let descs = gauges
            .collectors()
            .iter()
            .flat_map(|collector| collector.desc().into_iter().cloned())
            .collect();
        AtScrape {
            store,
            catalog,
            data_dir: data_dir.to_path_buf(),
            descs,
        }
    }

    fn read(&self, gauges: &Gauges) -> crate::store::Result<()> {
        let catalog = self.catalog.load();
        // Destinations without a URL too: their events wait in their queue.
        let endpoints = catalog.endpoints();
        let destinations = catalog.destinations().into_iter().map(Arc::as_ref);
        for destination in destinations.chain(&endpoints) {
            let depth = self.store.queue_depth(&destination.id)?;
            gauges
                .queue_depth
                .with_label_values(&[&destination.name])
                .set(depth.try_into().unwrap_or(i64::MAX));
        }
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
                .set(0);
        }
        for issue in self.store.issues() {
            let issue = issue?;
            if issue.status == IssueStatus::Opened {
                gauges
                    .open_issues
                    .with_label_values(&[type_name(issue.kind)])
                    .inc();
            }
        }
        Ok(())
    }
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

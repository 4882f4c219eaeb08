//! `hookgate_queue_depth{destination}`: read from the store at each scrape
//! (it keeps exact depths, `Store::queue_depth`), so nothing is counted on
//! the delivery path and the gauge cannot drift.

use crate::model::Catalog;
use crate::store::Store;
use arc_swap::ArcSwap;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGaugeVec, Opts};
use std::sync::Arc;

pub(super) struct QueueDepth {
    store: Store,
    catalog: Arc<ArcSwap<Catalog>>,
    /// Fresh each scrape: a removed destination's series goes with it.
    opts: Opts,
    descs: Vec<Desc>,
}

impl QueueDepth {
    pub(super) fn new(store: Store, catalog: Arc<ArcSwap<Catalog>>) -> QueueDepth {
        let opts = Opts::new(
            "queue_depth",
            "Events waiting for delivery to a destination (due now or later).",
        );
        let descs = gauges(&opts).desc().into_iter().cloned().collect();
        QueueDepth {
            store,
            catalog,
            opts,
            descs,
        }
    }
}

fn gauges(opts: &Opts) -> IntGaugeVec {
    IntGaugeVec::new(opts.clone(), &["destination"]).expect("valid metric")
}

impl Collector for QueueDepth {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let depths = gauges(&self.opts);
        let catalog = self.catalog.load();
        // Destinations without a URL too: their events wait in their queue.
        let endpoints = catalog.endpoints();
        let destinations = catalog.destinations().into_iter().map(Arc::as_ref);
        for destination in destinations.chain(&endpoints) {
            match self.store.queue_depth(&destination.id) {
                Ok(depth) => depths
                    .with_label_values(&[&destination.name])
                    .set(depth.try_into().unwrap_or(i64::MAX)),
                Err(error) => tracing::warn!(%error, "queue depth unreadable for /metrics"),
            }
        }
        depths.collect()
    }
}

//! Prometheus metrics: what the gateway counts, and `GET /metrics` on its own
//! listener (`server.metrics_listen`, see `server`).
//!
//! Each gateway owns its registry (no process-global one), so gateways
//! started side by side in one process keep their numbers apart. Label values
//! are only ever config names and fixed enums, never request data: a series
//! exists per configured source or destination and outcome, however many
//! requests arrive (bounded cardinality).

mod at_scrape;
mod rolling;
mod server;

pub use rolling::{MinuteRates, Rates, MINUTES};
pub use server::serve;

use crate::delivery::{Circuits, DeliveryResponse};
use crate::model::{Catalog, Connection, Destination, Event, RejectionCause, Source};
use crate::store::{BatchObserver, EndedObserver, Store};
use arc_swap::ArcSwap;
use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The `source` label of requests to no configured source (their name is the
/// sender's: it would add a series per name tried).
const NO_SOURCE: &str = "";

/// Requests turned away before their source is known.
pub const MALFORMED: &str = "MALFORMED";
pub const NOT_A_SOURCE_URL: &str = "NOT_A_SOURCE_URL";
/// Accepted but not stored (the store refused the write): answered 503.
pub const UNAVAILABLE: &str = "UNAVAILABLE";
const ACCEPTED: &str = "ACCEPTED";

/// Delivery latency buckets, in seconds: from a local receiver's few
/// milliseconds up to the longest delivery timeout worth waiting for.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Transformation run time buckets, in seconds: runs are cut at
/// `limits.transform_timeout_ms` (1 s by default, at most a few).
const TRANSFORM_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Ack latency buckets, in seconds: a group commit's fsync, then waits
/// behind a full commit queue.
const ACK_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Journal batch size buckets, in requests: 1 up to `limits.commit_batch`'s
/// default (1024).
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// How a transformation run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransformOutcome {
    Ok,
    /// It threw, or returned something that is not a request.
    Failed,
    /// Cut at `limits.transform_timeout_ms`.
    TimedOut,
}

impl TransformOutcome {
    fn as_str(self) -> &'static str {
        match self {
            TransformOutcome::Ok => "ok",
            TransformOutcome::Failed => "failed",
            TransformOutcome::TimedOut => "timeout",
        }
    }
}

/// What the scrape reads besides the counters: the store, the served
/// catalog, the circuit breakers and the data directory.
pub struct Watched<'a> {
    pub store: Store,
    pub catalog: Arc<ArcSwap<Catalog>>,
    pub circuits: Arc<Circuits>,
    pub data_dir: &'a Path,
}

/// One gateway's metrics.
pub struct Metrics {
    /// False when `server.metrics_listen` is off: nothing would read them,
    /// so the hot paths skip counting (their cost is measured against this,
    /// `cargo bench --bench ingest -- --metrics-ab`).
    collecting: bool,
    registry: Registry,
    requests: IntCounterVec,
    ack_latency: HistogramVec,
    events: IntCounterVec,
    ignored_events: IntCounterVec,
    transformation_runs: IntCounterVec,
    transformation_duration: HistogramVec,
    attempts: IntCounterVec,
    delivery_latency: HistogramVec,
    in_flight: IntGaugeVec,
    rate_limit_waits: IntCounterVec,
    events_finished: IntCounterVec,
    webhook_jobs: IntCounter,
    journal_batch_size: Histogram,
    journal_batch_duration: Histogram,
    /// The console's live rates, counted even when `collecting` is off.
    rates: Rates,
    /// Names the destination of an event that ended (`ended_events`).
    catalog: Arc<ArcSwap<Catalog>>,
}

/// An attempt being sent: counted in flight until dropped (answered, or
/// abandoned at shutdown).
pub struct InFlightAttempt(Option<IntGauge>);

impl Drop for InFlightAttempt {
    fn drop(&mut self) {
        if let Some(gauge) = &self.0 {
            gauge.dec();
        }
    }
}

impl Metrics {
    /// Registers every metric; queue depths, lateness, circuit states, paused
    /// connections, open issues and the like are read from `watched` at each
    /// scrape (`at_scrape`). `collecting`: whether anything is counted.
    pub fn new(watched: Watched, collecting: bool) -> Arc<Metrics> {
        let registry = Registry::new_custom(Some("hookgate".into()), None)
            .expect("the prefix is a valid metric name");
        let metrics = Metrics {
            collecting,
            requests: counter(
                &registry,
                "requests_total",
                "Requests received, by source and outcome (ACCEPTED or why not).",
                &["source", "outcome"],
            ),
            ack_latency: histogram(
                &registry,
                "ack_latency_seconds",
                "From a request's head being read to its being durable (then answered 2xx).",
                &["source"],
                ACK_BUCKETS,
            ),
            events: counter(
                &registry,
                "events_total",
                "Events created (queued for delivery), by connection.",
                &["connection"],
            ),
            ignored_events: counter(
                &registry,
                "ignored_events_total",
                "Ignored events, by connection and cause.",
                &["connection", "cause"],
            ),
            transformation_runs: counter(
                &registry,
                "transformation_runs_total",
                "Transformation runs while routing, by transformation and outcome (ok, failed, timeout).",
                &["transformation", "outcome"],
            ),
            transformation_duration: histogram(
                &registry,
                "transformation_duration_seconds",
                "Run time of transformations while routing, by transformation.",
                &["transformation"],
                TRANSFORM_BUCKETS,
            ),
            attempts: counter(
                &registry,
                "attempts_total",
                "Delivery attempts, by destination and outcome (2xx, 4xx, 5xx or the error code).",
                &["destination", "outcome"],
            ),
            delivery_latency: histogram(
                &registry,
                "delivery_latency_seconds",
                "Time from sending an attempt to its response or error, by destination.",
                &["destination"],
                LATENCY_BUCKETS,
            ),
            in_flight: gauge(
                &registry,
                "attempts_in_flight",
                "Attempts sent and not yet answered, by destination.",
                &["destination"],
            ),
            rate_limit_waits: counter(
                &registry,
                "rate_limit_waits_total",
                "Attempts held back by the destination's rate limit, counted when let through.",
                &["destination"],
            ),
            events_finished: counter(
                &registry,
                "events_finished_total",
                "Events (and webhook job deliveries) ended, by an attempt or without one (cancelled, muted, endpoint deleted), by destination and status (SUCCESSFUL, FAILED).",
                &["destination", "status"],
            ),
            webhook_jobs: counter(
                &registry,
                "webhook_jobs_total",
                "Webhook jobs created (POST /v1/webhook-jobs).",
                &[],
            )
            .with_label_values(&[]),
            journal_batch_size: histogram(
                &registry,
                "journal_batch_requests",
                "Requests written to the request journal per fsync (group commit).",
                &[],
                BATCH_BUCKETS,
            )
            .with_label_values(&[]),
            journal_batch_duration: histogram(
                &registry,
                "journal_batch_seconds",
                "Time to append a batch to the request journal and fsync it.",
                &[],
                ACK_BUCKETS,
            )
            .with_label_values(&[]),
            rates: Rates::default(),
            catalog: watched.catalog.clone(),
            registry,
        };
        gauge(
            &metrics.registry,
            "build_info",
            "Always 1; its label names the running version.",
            &["version"],
        )
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
        register(&metrics.registry, at_scrape::AtScrape::new(watched));
        // CPU seconds, resident memory, open fds and their limit, from /proc
        // (`hookgate_process_…`).
        #[cfg(target_os = "linux")]
        register(
            &metrics.registry,
            prometheus::process_collector::ProcessCollector::for_self(),
        );
        Arc::new(metrics)
    }

    /// A request stored durably (then answered 2xx), whose head was read
    /// at `head_read`.
    pub fn request_accepted(&self, source: &Source, head_read: Instant) {
        if !self.collecting {
            return;
        }
        self.count_request(&source.name, ACCEPTED);
        self.ack_latency
            .with_label_values(&[&source.name])
            .observe(head_read.elapsed().as_secs_f64());
    }

    /// A rejected request; `source` is the configured one it was sent to, if any.
    pub fn request_rejected(&self, source: Option<&Source>, cause: RejectionCause) {
        let name = source.map_or(NO_SOURCE, |source| source.name.as_str());
        self.count_request(name, cause.as_str());
    }

    /// A request refused for a reason that is not a `RejectionCause`
    /// (`MALFORMED`, `NOT_A_SOURCE_URL`, `UNAVAILABLE`).
    pub fn request_refused(&self, source: Option<&Source>, outcome: &'static str) {
        let name = source.map_or(NO_SOURCE, |source| source.name.as_str());
        self.count_request(name, outcome);
    }

    fn count_request(&self, source: &str, outcome: &str) {
        if !self.collecting {
            return;
        }
        self.requests.with_label_values(&[source, outcome]).inc();
    }

    pub fn event_created(&self, connection: &Connection) {
        self.rates.event_created(&connection.name);
        if !self.collecting {
            return;
        }
        self.events.with_label_values(&[&connection.name]).inc();
    }

    pub fn event_ignored(&self, connection: &Connection, cause: &'static str) {
        if !self.collecting {
            return;
        }
        self.ignored_events
            .with_label_values(&[&connection.name, cause])
            .inc();
    }

    /// A transformation run while routing, which took `took`.
    pub fn transformation_ran(&self, name: &str, outcome: TransformOutcome, took: Duration) {
        if !self.collecting {
            return;
        }
        self.transformation_runs
            .with_label_values(&[name, outcome.as_str()])
            .inc();
        self.transformation_duration
            .with_label_values(&[name])
            .observe(took.as_secs_f64());
    }

    /// What the commit log tells of every journal batch it writes.
    pub fn journal_batches(self: &Arc<Self>) -> BatchObserver {
        let metrics = self.clone();
        Box::new(move |requests, took| {
            if !metrics.collecting {
                return;
            }
            metrics.journal_batch_size.observe(requests as f64);
            metrics.journal_batch_duration.observe(took.as_secs_f64());
        })
    }

    /// Counts an attempt to `destination` in flight while the guard lives.
    pub fn sending(&self, destination: &Destination) -> InFlightAttempt {
        let gauge = self
            .collecting
            .then(|| self.in_flight.with_label_values(&[&destination.name]));
        gauge.iter().for_each(IntGauge::inc);
        InFlightAttempt(gauge)
    }

    /// An attempt to `destination` was let through after waiting for its
    /// rate limit.
    pub fn rate_limit_wait(&self, destination: &Destination) {
        if !self.collecting {
            return;
        }
        self.rate_limit_waits
            .with_label_values(&[&destination.name])
            .inc();
    }

    /// What the store tells of every event as it becomes terminal, however
    /// it ends (an attempt, a cancellation, a mute, its endpoint's deletion).
    /// It holds the metrics weakly: the store outlives no gateway because of it.
    pub fn ended_events(self: &Arc<Self>) -> EndedObserver {
        let metrics = Arc::downgrade(self);
        Box::new(move |event| {
            if let Some(metrics) = metrics.upgrade().filter(|metrics| metrics.collecting) {
                metrics.event_ended(event);
            }
        })
    }

    fn event_ended(&self, event: &Event) {
        let catalog = self.catalog.load();
        // An endpoint deleted meanwhile is no longer served: its id names it.
        let destination = catalog
            .destination(&event.destination_id)
            .or_else(|| catalog.target(&event.destination_id))
            .map_or(event.destination_id.as_str(), |destination| {
                destination.name.as_str()
            });
        self.events_finished
            .with_label_values(&[destination, event.status.as_str()])
            .inc();
    }

    pub fn webhook_job_created(&self) {
        if !self.collecting {
            return;
        }
        self.webhook_jobs.inc();
    }

    /// An attempt that was sent (or tried to be): its outcome and latency.
    pub fn attempt(&self, destination: &Destination, response: &DeliveryResponse) {
        let (name, latency_ms) = (destination.name.as_str(), response.latency_ms);
        self.rates.attempt(name, response.is_success(), latency_ms);
        if !self.collecting {
            return;
        }
        let outcome = match (response.status, response.error_code) {
            (Some(status), _) => status_class(status),
            (None, Some(code)) => code,
            (None, None) => "UNKNOWN",
        };
        self.attempts.with_label_values(&[name, outcome]).inc();
        self.delivery_latency
            .with_label_values(&[name])
            .observe(latency_ms as f64 / 1000.0);
    }

    /// The per-minute rates the console's Connections page draws.
    pub fn rates(&self) -> &Rates {
        &self.rates
    }

    /// Every metric in the text exposition format 0.0.4. Blocks on the store
    /// (`at_scrape`).
    pub fn render(&self) -> String {
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut text)
            .expect("writing to a Vec cannot fail");
        String::from_utf8(text).expect("the text format is UTF-8")
    }
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let counter = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    register(registry, counter.clone());
    counter
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let gauge = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    register(registry, gauge.clone());
    gauge
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    let histogram = HistogramVec::new(opts, labels).expect("valid metric");
    register(registry, histogram.clone());
    histogram
}

fn register(registry: &Registry, collector: impl Collector + 'static) {
    registry
        .register(Box::new(collector))
        .expect("metric names are unique");
}

/// `2xx`, `4xx`…: a fixed set, whatever status a receiver answers.
fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gateway's metrics over a real store in `dir`.
    fn metrics_in(dir: &Path, collecting: bool) -> Arc<Metrics> {
        let watched = Watched {
            store: Store::open(dir, 1 << 20).unwrap(),
            catalog: Arc::new(ArcSwap::from_pointee(Catalog::default())),
            circuits: Arc::new(Circuits::new(5, 1000)),
            data_dir: dir,
        };
        Metrics::new(watched, collecting)
    }

    #[test]
    fn nothing_is_counted_when_collection_is_off() {
        let count = |collecting| {
            let dir = tempfile::tempdir().unwrap();
            let metrics = metrics_in(dir.path(), collecting);
            metrics.webhook_job_created();
            metrics.journal_batches()(3, Duration::from_millis(1));
            let text = metrics.render();
            [
                "hookgate_webhook_jobs_total 1",
                "hookgate_journal_batch_requests_sum 3",
            ]
            .map(|sample| text.lines().any(|line| line == sample))
        };
        assert_eq!(count(true), [true, true]);
        assert_eq!(count(false), [false, false]);
    }

    #[test]
    fn the_consoles_rates_are_counted_when_collection_is_off() {
        let text = "[[sources]]\nname = \"shop\"\n[[destinations]]\nname = \"orders\"\n\
                    url = \"http://127.0.0.1:9/\"\n[[connections]]\nname = \"shop-to-orders\"\n\
                    source = \"shop\"\ndestination = \"orders\"\n";
        let catalog = crate::config::Config::parse(Path::new("gateway.toml"), text)
            .unwrap()
            .catalog();
        let dir = tempfile::tempdir().unwrap();
        let metrics = metrics_in(dir.path(), false);
        metrics.event_created(catalog.connections()[0]);
        let response = DeliveryResponse {
            status: Some(204),
            body: None,
            error_code: None,
            latency_ms: 3,
        };
        metrics.attempt(catalog.destinations()[0], &response);
        let rates = metrics.rates();
        let last = |series: Vec<MinuteRates>| series[MINUTES - 1];
        assert_eq!(last(rates.connection("shop-to-orders")).count, 1);
        let attempts = last(rates.destination("orders"));
        assert_eq!((attempts.count, attempts.successes), (1, 1));
        assert!(!metrics.render().contains("hookgate_attempts_total{"));
    }

    #[test]
    fn statuses_fall_into_their_class() {
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(503), "5xx");
        assert_eq!(status_class(999), "other");
    }
}

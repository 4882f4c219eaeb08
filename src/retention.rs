//! The retention sweeper: every `[retention] sweep_every_ms`, forgets what is
//! done and older than `max_age_ms` (see `store::retention` for what goes and
//! what stays). A thread of its own: sweeping is a long run of blocking sled
//! calls that must not hold up the reactor or the lanes' blocking pool.

use crate::cluster::Leases;
use crate::config::{OutboundSection, RetentionSection};
use crate::ids::now_ms;
use crate::model::Catalog;
use crate::pipeline::Rule;
use crate::store::{Cutoffs, Store};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub struct Sweeper {
    /// Ends a sweep in progress at its next record.
    stopping: Arc<AtomicBool>,
    /// Dropped to end the wait between sweeps.
    wake: SyncSender<()>,
    thread: JoinHandle<()>,
}

impl Sweeper {
    /// Starts sweeping `store`, the first time one period from now (so that
    /// a start is not slowed down), while this node leads its cluster
    /// (`leases`); None when retention keeps everything.
    /// `cutoffs` draws the lines of each sweep from the time it starts.
    pub fn start(
        store: Store,
        leases: Leases,
        retention: &RetentionSection,
        cutoffs: impl Fn(u64) -> Cutoffs + Send + 'static,
    ) -> Option<Sweeper> {
        if retention.max_age_ms == 0 && retention.rejections_max_age_ms == 0 {
            return None;
        }
        let stopping = Arc::new(AtomicBool::new(false));
        let (wake, woken) = std::sync::mpsc::sync_channel(1);
        let every = Duration::from_millis(retention.sweep_every_ms.max(1));
        let thread = {
            let stopping = stopping.clone();
            std::thread::Builder::new()
                .name("hookgate-retention".into())
                .spawn(move || sweep_loop(&store, &leases, every, cutoffs, &woken, &stopping))
                .expect("spawn retention thread")
        };
        Some(Sweeper {
            stopping,
            wake,
            thread,
        })
    }

    /// Stops sweeping (a sweep in progress ends at its next record; the next
    /// start's sweeps go on from there) and waits for the thread.
    pub fn stop(self) {
        self.stopping.store(true, Ordering::Relaxed);
        drop(self.wake);
        let _ = self.thread.join();
    }
}

/// The lines a sweep at `now_ms` draws: `max_age_ms` back (0: none at all),
/// but never into a webhook job's idempotency window (`outbound`), and
/// deduplication sightings a whole deduplicate window further (the longest of
/// any connection in `catalog`): a request kept that long and retried by hand
/// is judged against the sightings it was judged against before. Rejected
/// requests go `rejections_max_age_ms` back (0: with the rest).
pub fn cutoffs(
    now_ms: u64,
    retention: &RetentionSection,
    outbound: &OutboundSection,
    catalog: &Catalog,
) -> Cutoffs {
    let rejections_ms = match retention.rejections_max_age_ms {
        0 => 0,
        max_age_ms => now_ms.saturating_sub(max_age_ms),
    };
    let max_age_ms = retention.max_age_ms;
    if max_age_ms == 0 {
        return Cutoffs {
            rejections_ms,
            ..Cutoffs::all_before(0)
        };
    }
    let longest_dedup_window = catalog
        .connections()
        .iter()
        .flat_map(|connection| &connection.rules)
        .filter_map(|rule| match rule {
            Rule::Deduplicate(dedup) => Some(dedup.window.as_millis() as u64),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let records_ms = now_ms.saturating_sub(max_age_ms);
    Cutoffs {
        records_ms,
        jobs_ms: now_ms.saturating_sub(max_age_ms.max(outbound.idempotency_window_ms)),
        sightings_ms: records_ms.saturating_sub(longest_dedup_window),
        rejections_ms,
    }
}

fn sweep_loop(
    store: &Store,
    leases: &Leases,
    every: Duration,
    cutoffs: impl Fn(u64) -> Cutoffs,
    woken: &Receiver<()>,
    stopping: &AtomicBool,
) {
    while let Err(RecvTimeoutError::Timeout) = woken.recv_timeout(every) {
        if !leases.leads() {
            continue; // the cluster's leader sweeps
        }
        match store.sweep(cutoffs(now_ms()), stopping) {
            Ok(swept) => tracing::debug!(?swept, "retention sweep"),
            Err(error) => {
                tracing::error!(%error, "retention sweep failed; the next one tries again")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn lines_keep_clear_of_idempotency_and_deduplicate_windows() {
        let text = r#"
[retention]
max_age_ms = 1000
rejections_max_age_ms = 500

[outbound]
idempotency_window_ms = 5000

[delivery]
signing_secret = "test"

[[sources]]
name = "shop"

[[destinations]]
name = "orders"
url = "http://127.0.0.1:9/"

[[connections]]
name = "shop-to-orders"
source = "shop"
destination = "orders"
rules = [ { type = "deduplicate", window = 20000, include_fields = ["body.id"] } ]
"#;
        let config = Config::parse(std::path::Path::new("gateway.toml"), text).unwrap();
        let at = |max_age_ms, rejections_max_age_ms| {
            let retention = RetentionSection {
                max_age_ms,
                rejections_max_age_ms,
                ..config.retention.clone()
            };
            cutoffs(100_000, &retention, &config.outbound, &config.catalog())
        };
        let expected = Cutoffs {
            records_ms: 99_000,
            jobs_ms: 95_000,
            sightings_ms: 79_000,
            rejections_ms: 99_500,
        };
        assert_eq!(at(1000, 500), expected);
        let retention = &config.retention;
        assert_eq!(
            cutoffs(100_000, retention, &config.outbound, &config.catalog()),
            expected
        );
        assert_eq!(at(0, 0), Cutoffs::all_before(0), "0 keeps everything");
        assert_eq!(at(0, 500).rejections_ms, 99_500);
    }
}

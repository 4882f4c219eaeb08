//! The retention sweeper: every `[retention] sweep_every_ms`, forgets what is
//! done and older than `max_age_ms` (see `store::retention` for what goes and
//! what stays). A thread of its own: sweeping is a long run of blocking sled
//! calls that must not hold up the reactor or the lanes' blocking pool.

use crate::config::RetentionSection;
use crate::ids::now_ms;
use crate::store::Store;
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
    /// a start is not slowed down); None when retention keeps everything.
    pub fn start(store: Store, retention: &RetentionSection) -> Option<Sweeper> {
        if retention.max_age_ms == 0 {
            return None;
        }
        let stopping = Arc::new(AtomicBool::new(false));
        let (wake, woken) = std::sync::mpsc::sync_channel(1);
        let every = Duration::from_millis(retention.sweep_every_ms.max(1));
        let max_age_ms = retention.max_age_ms;
        let thread = {
            let stopping = stopping.clone();
            std::thread::Builder::new()
                .name("hookgate-retention".into())
                .spawn(move || sweep_loop(&store, max_age_ms, every, &woken, &stopping))
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

fn sweep_loop(
    store: &Store,
    max_age_ms: u64,
    every: Duration,
    woken: &Receiver<()>,
    stopping: &AtomicBool,
) {
    while let Err(RecvTimeoutError::Timeout) = woken.recv_timeout(every) {
        let cutoff_ms = now_ms().saturating_sub(max_age_ms);
        match store.sweep(cutoff_ms, stopping) {
            Ok(swept) => tracing::debug!(?swept, "retention sweep"),
            Err(error) => {
                tracing::error!(%error, "retention sweep failed; the next one tries again")
            }
        }
    }
}

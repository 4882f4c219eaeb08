//! The store's disk reserve, and the watch on sled's health.
//!
//! sled 0.34 remembers the first write that failed (a full disk included) and
//! fails every later one until it is opened again: a disk that filled up once
//! stopped all routing, and the record of every delivery attempt, until a
//! restart, even after space came back. The journal, by contrast, fails a
//! batch and goes on. So a keeper thread holds `bytes` allocated past the end
//! of sled's log file (`fallocate` with KEEP_SIZE: the file's length, which
//! sled reads, does not change; its writes there need no new blocks), topping
//! it up as the log grows. While it cannot, the store takes no new requests
//! (the ingress answers 503): what was acknowledged before is routed and
//! delivered within the reserve, and requests are taken again by themselves
//! once space is back. Should sled fail all the same (a write larger than the
//! reserve, an I/O error), no request is taken either, and the error says that
//! only a restart mends it.

use super::{Result, StoreError};
use rustix::io::Errno;
use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// The bytes an unprivileged process may still write on `dir`'s file system.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let stats = rustix::fs::statvfs(dir)?;
    Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
}

/// How often the reserve is topped up: sled flushes every 200 ms, and the
/// reserve must outlast what it writes in between.
const TOP_UP_EVERY: Duration = Duration::from_millis(50);

/// sled's log file in its directory.
const SLED_LOG: &str = "db";

/// Keeps the reserve; dropping it stops the keeper.
pub(super) struct DiskReserve {
    shared: Arc<Shared>,
}

struct Shared {
    log: File,
    bytes: u64,
    /// The reserve could not be kept whole at the last top-up.
    short: AtomicBool,
    /// sled's own record of the write that failed.
    sled: sled::Config,
    failed: OnceLock<String>,
}

impl DiskReserve {
    /// Allocates `bytes` past the end of sled's log in `dir` and keeps them
    /// there (0: none, only sled's health is watched). `sled`: how the
    /// store's sled was opened (it shares sled's record of a failed write).
    pub(super) fn keep(dir: &Path, bytes: u64, sled: sled::Config) -> Result<DiskReserve> {
        let log = OpenOptions::new().write(true).open(dir.join(SLED_LOG))?;
        let shared = Arc::new(Shared {
            log,
            bytes,
            short: AtomicBool::new(false),
            sled,
            failed: OnceLock::new(),
        });
        shared.top_up();
        let keeper = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("hookgate-disk".into())
            .spawn(move || keep_topping_up(keeper))?;
        Ok(DiskReserve { shared })
    }

    /// Whether new requests may be taken: an error while the reserve is
    /// short or sled has failed.
    pub(super) fn admits_requests(&self) -> Result<()> {
        if let Some(failed) = self.sled_failure() {
            let message = format!(
                "the store failed ({failed}) and takes no requests until the gateway restarts; \
                 the acknowledged ones are safe in the request journal"
            );
            return Err(StoreError::Unavailable(message));
        }
        let shared = &self.shared;
        if shared.short.load(Ordering::SeqCst) {
            let message = format!(
                "the disk is full: no requests are taken until {} bytes are free for the store",
                shared.bytes
            );
            return Err(StoreError::Unavailable(message));
        }
        Ok(())
    }

    /// The write sled failed with, which only a restart mends.
    pub(super) fn sled_failure(&self) -> Option<&str> {
        self.shared.failed.get().map(String::as_str)
    }
}

/// The keeper thread: tops up until the store is dropped.
fn keep_topping_up(shared: Weak<Shared>) {
    loop {
        std::thread::sleep(TOP_UP_EVERY);
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.top_up();
        shared.note_sled_failure();
    }
}

impl Shared {
    fn top_up(&self) {
        if self.bytes == 0 {
            return;
        }
        let log_len = match self.log.metadata() {
            Ok(meta) => meta.len(),
            Err(error) => {
                tracing::warn!(%error, "could not read the length of the store's log");
                return;
            }
        };
        let keep_size = rustix::fs::FallocateFlags::KEEP_SIZE;
        let short = match rustix::fs::fallocate(&self.log, keep_size, log_len, self.bytes) {
            Ok(()) => false,
            Err(Errno::NOSPC) => true,
            Err(error) => {
                // Not for a full disk (a file system without fallocate): the
                // reserve cannot help, and must not stop the gateway.
                tracing::warn!(%error, "could not allocate the store's disk reserve");
                false
            }
        };
        if self.short.swap(short, Ordering::SeqCst) != short {
            match short {
                true => tracing::error!(
                    bytes = self.bytes,
                    "the disk is full: taking no requests until the store's reserve fits again"
                ),
                false => tracing::warn!("the store's disk reserve fits again: taking requests"),
            }
        }
    }

    fn note_sled_failure(&self) {
        // sled keeps the error of the write that failed for good (until it is
        // opened again); it is public, though hidden from its docs.
        if let Err(error) = self.sled.global_error() {
            if self.failed.set(error.to_string()).is_ok() {
                tracing::error!(%error, "the store failed: restart the gateway to recover");
            }
        }
    }
}

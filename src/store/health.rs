//! What the store tells the readiness probe (`crate::health`): whether it
//! can take requests now, and how far the router is behind.

use super::Store;

impl Store {
    /// The write sled failed with (it fails every later one until the
    /// gateway restarts).
    pub fn sled_failure(&self) -> Option<String> {
        let reserve = self.disk_reserve.get()?;
        reserve.sled_failure().map(str::to_string)
    }

    /// Why the last write to the request journal failed, unless one has
    /// succeeded since.
    pub fn journal_failure(&self) -> Option<String> {
        self.journal.last_failure()
    }

    /// Requests acknowledged that the router has not finished routing.
    pub fn router_lag(&self) -> usize {
        self.pending.lock().expect("pending lock").len()
    }
}

//! A lane's doorbell: how it is told that events may be due, and how it stops
//! listening.

use std::sync::Mutex;
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// How a lane is told that events may be due, and how it stops listening. A
/// lane whose destination is gone closes it (after a last look at the
/// catalog, under its lock) before it waits for its attempts in flight; a
/// wake-up that finds it closed starts a new lane, which lets the old one
/// finish first (two lanes of one destination at once could attempt an event
/// twice). Without it, a destination removed and added back while its old
/// lane drained was left without a lane.
pub(crate) struct Doorbell {
    ring: Notify,
    open: Mutex<bool>,
}

impl Doorbell {
    pub(crate) fn new() -> Doorbell {
        Doorbell {
            ring: Notify::new(),
            open: Mutex::new(true),
        }
    }

    /// Rings, if the lane still listens; says whether it does.
    pub(crate) fn ring(&self) -> bool {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if *open {
            self.ring.notify_one();
        }
        *open
    }

    pub(crate) fn rung(&self) -> Notified<'_> {
        self.ring.notified()
    }

    /// Stops listening, unless `still_wanted()` (judged under the lock, so
    /// that a ring either comes before the close or finds it closed). True
    /// when it closed.
    pub(crate) fn close_unless(&self, still_wanted: impl FnOnce() -> bool) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if still_wanted() {
            return false;
        }
        *open = false;
        true
    }
}

//! What this node may run: a destination's lane, the leader's periodic work.
//! The delivery code and the periodic tasks ask here, whatever the backend.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// The lease that runs the cluster's periodic work.
pub(super) const LEADER: &str = "leader";

/// The lease that runs a destination's lane.
pub(super) fn lane_lease(destination_id: &str) -> String {
    format!("lane:{destination_id}")
}

/// The leases a node holds.
#[derive(Clone)]
pub enum Leases {
    /// One node alone (the embedded store): it holds every lease, always.
    Local,
    /// A node of a cluster: what the coordinator last acquired or renewed.
    Shared(Arc<Held>),
}

/// Each lease held, and until when (measured from before the statement that
/// renewed it was sent, so it lapses here before it expires in the database).
#[derive(Default)]
pub struct Held {
    until: RwLock<HashMap<String, Instant>>,
    /// Told when a lane starts here, so that the coordinator takes its lease
    /// at once rather than a third of a lease later (a destination or an
    /// endpoint made through the API would wait that long for its first
    /// attempt).
    pub(super) new_lane: tokio::sync::Notify,
}

impl Leases {
    /// Whether this node runs the destination's lane now.
    pub fn runs_lane(&self, destination_id: &str) -> bool {
        match self {
            Leases::Local => true,
            Leases::Shared(held) => held.holds(&lane_lease(destination_id)),
        }
    }

    /// A lane started here; the coordinator runs a round for its lease.
    pub fn lane_started(&self) {
        if let Leases::Shared(held) = self {
            held.new_lane.notify_one();
        }
    }

    /// Whether this node runs retention, backlog checks and resumed bulk retries.
    pub fn leads(&self) -> bool {
        match self {
            Leases::Local => true,
            Leases::Shared(held) => held.holds(LEADER),
        }
    }
}

impl Held {
    pub(super) fn holds(&self, name: &str) -> bool {
        let until = self.until.read().unwrap_or_else(|e| e.into_inner());
        until.get(name).is_some_and(|until| *until > Instant::now())
    }

    /// Holds exactly `names` (of those `owns` picks out) until `until`.
    pub(super) fn replace(&self, owns: impl Fn(&str) -> bool, names: &[String], until: Instant) {
        let mut held = self.until.write().unwrap_or_else(|e| e.into_inner());
        held.retain(|name, _| !owns(name));
        held.extend(names.iter().map(|name| (name.clone(), until)));
    }

    /// Holds nothing (the database cannot be reached, or the node stops).
    pub(super) fn forget_all(&self) {
        self.until
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_lease_lapses_when_its_time_is_up_and_local_leases_never_do() {
        let held = Arc::new(Held::default());
        let leases = Leases::Shared(held.clone());
        let lanes = [lane_lease("des_a")];
        held.replace(|_| true, &lanes, Instant::now() + Duration::from_secs(60));
        assert!(leases.runs_lane("des_a"));
        assert!(!leases.runs_lane("des_b"));
        assert!(!leases.leads());
        held.replace(|_| true, &lanes, Instant::now());
        assert!(!leases.runs_lane("des_a"), "lapsed");
        assert!(Leases::Local.runs_lane("des_b") && Leases::Local.leads());
    }
}

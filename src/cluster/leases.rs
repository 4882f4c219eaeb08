//! What this node may run: a destination's lane, the leader's periodic work.
//! The delivery code and the periodic tasks ask here, whatever the backend.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;
use tokio::sync::Notify;

/// The lease that runs the cluster's periodic work.
pub(super) const LEADER: &str = "leader";

/// The prefix of the leases that run destinations' lanes.
const LANE: &str = "lane:";

/// The lease that runs a destination's lane.
pub(super) fn lane_lease(destination_id: &str) -> String {
    format!("{LANE}{destination_id}")
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
/// renewed it was sent, so it lapses here before it expires in the database);
/// whether the last round of renewals failed (the coordinator is the one
/// part of a node that reaches the database even when idle, so it is what
/// tells `/readyz` the database is gone); and the lanes that may have
/// attempts in flight, whose leases this node keeps until they have
/// finished even once it no longer runs them.
#[derive(Default)]
pub struct Held {
    until: RwLock<HashMap<String, Instant>>,
    out_of_reach: AtomicBool,
    /// Lane leases of lanes that started attempts and have not drained
    /// since. Changed under a read lock of `until` at least, so that the
    /// coordinator (write lock) sees either the attempt or no lease.
    busy: Mutex<HashSet<String>>,
    /// Lane leases this node no longer runs but keeps while they are busy.
    draining: Mutex<HashSet<String>>,
    /// Told when a lane drains: its lease can go to another node now.
    drained: Notify,
    /// Told when a lane starts here, so that the coordinator takes its lease
    /// at once rather than a third of a lease later (a destination or an
    /// endpoint made through the API would wait that long for its first
    /// attempt).
    pub(super) new_lane: Notify,
}

/// What becomes of the lane leases a node stops running.
#[derive(Debug, Default, PartialEq)]
pub(super) struct GivenUp {
    /// Their lanes still have attempts in flight: renewed, not run.
    pub(super) draining: Vec<String>,
    /// Their lanes are idle: released for another node.
    pub(super) released: Vec<String>,
}

impl Leases {
    /// Whether this node runs the destination's lane now.
    pub fn runs_lane(&self, destination_id: &str) -> bool {
        match self {
            Leases::Local => true,
            Leases::Shared(held) => held.holds(&lane_lease(destination_id)),
        }
    }

    /// Whether the lane may start an attempt now (it runs here); if so, the
    /// lane counts as busy until it reports `drained`.
    pub fn start_attempt(&self, destination_id: &str) -> bool {
        match self {
            Leases::Local => true,
            Leases::Shared(held) => held.start_attempt(&lane_lease(destination_id)),
        }
    }

    /// The lane has no attempt in flight and starts none until it runs here
    /// again: its lease may go to another node.
    pub fn drained(&self, destination_id: &str) {
        if let Leases::Shared(held) = self {
            held.drained(&lane_lease(destination_id));
        }
    }

    /// A lane started here; the coordinator runs a round for its lease.
    pub fn lane_started(&self) {
        if let Leases::Shared(held) = self {
            held.new_lane.notify_one();
        }
    }

    /// Whether this node runs retention, backlog checks and bulk retries.
    pub fn leads(&self) -> bool {
        match self {
            Leases::Local => true,
            Leases::Shared(held) => held.holds(LEADER),
        }
    }

    /// Whether this node's last attempt to renew its leases failed (the
    /// database cannot be reached; the log says why), until one succeeds.
    pub fn out_of_reach(&self) -> bool {
        match self {
            Leases::Local => false,
            Leases::Shared(held) => held.out_of_reach.load(Ordering::SeqCst),
        }
    }
}

impl Held {
    pub(super) fn holds(&self, name: &str) -> bool {
        let until = self.until.read().unwrap_or_else(|e| e.into_inner());
        until.get(name).is_some_and(|until| *until > Instant::now())
    }

    fn start_attempt(&self, lease: &str) -> bool {
        let until = self.until.read().unwrap_or_else(|e| e.into_inner());
        let runs = until
            .get(lease)
            .is_some_and(|until| *until > Instant::now());
        if runs {
            lock(&self.busy).insert(lease.to_string());
        }
        runs
    }

    fn drained(&self, lease: &str) {
        let _until = self.until.read().unwrap_or_else(|e| e.into_inner());
        if lock(&self.busy).remove(lease) {
            self.drained.notify_one();
        }
    }

    /// Waits until a lane drains.
    pub(super) async fn a_lane_drained(&self) {
        self.drained.notified().await;
    }

    /// Holds exactly `names` (of those `owns` picks out) until `until`.
    pub(super) fn replace(&self, owns: impl Fn(&str) -> bool, names: &[String], until: Instant) {
        let mut held = self.until.write().unwrap_or_else(|e| e.into_inner());
        held.retain(|name, _| !owns(name));
        held.extend(names.iter().map(|name| (name.clone(), until)));
    }

    /// Holds nothing, as the database cannot be reached.
    pub(super) fn lose_contact(&self) {
        self.forget_all();
        self.out_of_reach.store(true, Ordering::SeqCst);
    }

    /// A round of renewals went through.
    pub(super) fn in_contact(&self) {
        self.out_of_reach.store(false, Ordering::SeqCst);
    }

    /// Runs exactly the lanes of `lanes` until `until`; of the lane leases
    /// held or draining before and not among them, those whose lanes are
    /// busy drain, the others are released. In one step with the lanes'
    /// `start_attempt`: an attempt either started under a lease kept, or not.
    pub(super) fn run_lanes(&self, lanes: &[String], until: Instant) -> GivenUp {
        let mut held = self.until.write().unwrap_or_else(|e| e.into_inner());
        let mut draining = lock(&self.draining);
        let before: HashSet<String> = held
            .keys()
            .filter(|name| is_lane(name))
            .cloned()
            .chain(draining.drain())
            .collect();
        held.retain(|name, _| !is_lane(name));
        held.extend(lanes.iter().map(|name| (name.clone(), until)));
        let busy = lock(&self.busy);
        let mut given_up = GivenUp::default();
        for lease in before.into_iter().filter(|lease| !lanes.contains(lease)) {
            match busy.contains(&lease) {
                true => given_up.draining.push(lease),
                false => given_up.released.push(lease),
            }
        }
        draining.extend(given_up.draining.iter().cloned());
        given_up
    }

    /// Holds nothing (the database cannot be reached, or the node stops).
    pub(super) fn forget_all(&self) {
        self.until
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        lock(&self.draining).clear();
    }
}

fn is_lane(name: &str) -> bool {
    name.starts_with(LANE)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
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

    #[test]
    fn a_lane_given_up_starts_no_attempt_and_its_lease_is_kept_until_it_drains() {
        let held = Arc::new(Held::default());
        let leases = Leases::Shared(held.clone());
        let later = Instant::now() + Duration::from_secs(60);
        let (a, b) = (lane_lease("des_a"), lane_lease("des_b"));
        held.run_lanes(&[a.clone(), b.clone()], later);
        assert!(leases.start_attempt("des_a"), "des_a is busy from now on");
        let given_up = held.run_lanes(&[], later);
        assert_eq!(
            given_up.draining,
            std::slice::from_ref(&a),
            "kept while it drains"
        );
        assert_eq!(given_up.released, std::slice::from_ref(&b), "never busy");
        assert!(!leases.start_attempt("des_a"), "no attempt once given up");
        let still = held.run_lanes(&[], later);
        assert_eq!(still.draining, std::slice::from_ref(&a), "until it drains");
        leases.drained("des_a");
        let drained = held.run_lanes(&[], later);
        assert_eq!((drained.draining, drained.released), (vec![], vec![a]));
    }
}

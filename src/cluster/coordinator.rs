//! The PostgreSQL side of the leases: each node beats in `nodes` and, every
//! third of a lease time, acquires or renews its share of the lanes
//! (`ceil(lanes / live nodes)`) and tries for the leader's lease; the leader
//! routes, each round, what silent nodes left unrouted in their journals. A
//! lane over a node's share (another node joined) stops there at once, and
//! its lease is released once its attempts in flight have finished; a lease
//! a dead node held is taken once it has expired. Every lease is released on
//! a clean stop, after the lanes have finished their attempts.

use super::leases::{lane_lease, GivenUp, Held, LEADER};
use super::Node;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_postgres::{Client, NoTls};

/// Acquires or renews, in one statement, up to `$4` of the leases named in
/// `$2` (in that order) for `$1`, for `$3` milliseconds: those `$1` holds,
/// those nobody holds and those expired. Two nodes racing for one lease:
/// the row lock makes the second re-check the condition, and it gets none.
const ACQUIRE: &str = "
WITH wanted AS (
    SELECT name, rank FROM unnest($2::text[]) WITH ORDINALITY AS w(name, rank)
), free AS (
    SELECT wanted.name FROM wanted LEFT JOIN leases USING (name)
    WHERE leases.name IS NULL OR leases.holder = $1 OR leases.expires_at < now()
    ORDER BY wanted.rank LIMIT $4
)
INSERT INTO leases (name, holder, expires_at)
SELECT name, $1, now() + $3::bigint * interval '1 millisecond' FROM free
ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
    WHERE leases.holder = EXCLUDED.holder OR leases.expires_at < now()
RETURNING name";

/// Beats for `$1` and counts the live nodes: this one and those that beat
/// within `$2` milliseconds.
const BEAT: &str = "
WITH beat AS (
    INSERT INTO nodes (id, seen_at) VALUES ($1, now())
    ON CONFLICT (id) DO UPDATE SET seen_at = now()
)
SELECT count(*) + 1 FROM nodes WHERE id <> $1 AND seen_at > now() - $2::bigint * interval '1 millisecond'";

pub(super) struct Coordinator {
    pub(super) config: tokio_postgres::Config,
    pub(super) node_id: String,
    pub(super) lease: Duration,
    pub(super) held: Arc<Held>,
    pub(super) node: Arc<dyn Node>,
    /// Whether a pass over the silent nodes' journals runs.
    pub(super) routing_silent: Arc<AtomicBool>,
}

impl Coordinator {
    /// Renews every third of a lease time, and when a lane starts here,
    /// until `stop`; then releases.
    pub(super) async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.lease / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut client: Option<Client> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                // Its lease goes to another node now, not after a tick.
                _ = self.held.a_lane_drained() => {}
                // A lane started here: its lease now, not after a tick.
                _ = self.held.new_lane.notified() => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                break;
            }
            // A round slower than a third of the lease would renew too late.
            let round = tokio::time::timeout(self.lease / 3, self.round(&mut client)).await;
            match round.unwrap_or_else(|_| Err("timed out".into())) {
                Ok(()) => self.held.in_contact(),
                Err(error) => {
                    tracing::warn!(%error, "cluster leases not renewed; this node runs no lane until they are");
                    client = None;
                    self.held.lose_contact();
                }
            }
            // Rings every lane: those gained start, those lost stop, and those
            // held look at their queue (a missed announcement costs a round).
            self.node
                .lanes()
                .iter()
                .for_each(|lane| self.node.wake(lane));
        }
        self.held.forget_all();
        if let Err(error) = self.release(&mut client).await {
            tracing::warn!(%error, "cluster leases not released; they expire instead");
        }
    }

    async fn round(&self, client: &mut Option<Client>) -> Result<(), Failed> {
        let client = connected(client, &self.config).await?;
        let sent = Instant::now();
        let lease_ms = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX);
        // A node that missed two beats counts as gone: by the time its
        // leases expire (three beats), the others' shares cover its lanes.
        let live: i64 = client
            .query_one(BEAT, &[&self.node_id, &(lease_ms * 2 / 3)])
            .await?
            .get(0);
        let lanes = self.in_preference_order(self.node.lanes());
        let share = lanes
            .len()
            .div_ceil(usize::try_from(live.max(1)).unwrap_or(1));
        let lanes = self.acquire(client, lanes, share, lease_ms).await?;
        let leader = self
            .acquire(client, vec![LEADER.to_string()], 1, lease_ms)
            .await?;
        let until = sent + self.lease;
        let newly_leads = !leader.is_empty() && !self.held.holds(LEADER);
        let given_up = self.held.run_lanes(&lanes, until);
        self.held.replace(|name| name == LEADER, &leader, until);
        if newly_leads {
            let node = self.node.clone();
            tokio::task::spawn_blocking(move || node.lead());
        }
        if !leader.is_empty() {
            self.route_silent_nodes();
        }
        self.hand_over(client, given_up, lease_ms).await
    }

    /// Keeps the leases of lanes given up while their attempts finish (the
    /// next node must not overlap them: the destination's concurrency and
    /// rate hold across the hand-over), and releases the drained ones at
    /// once rather than letting them expire.
    async fn hand_over(
        &self,
        client: &Client,
        given_up: GivenUp,
        lease_ms: i64,
    ) -> Result<(), Failed> {
        let GivenUp { draining, released } = given_up;
        if !draining.is_empty() {
            let count = draining.len();
            self.acquire(client, draining, count, lease_ms).await?;
        }
        if !released.is_empty() {
            client
                .execute(
                    "DELETE FROM leases WHERE holder = $1 AND name = ANY($2)",
                    &[&self.node_id, &released],
                )
                .await?;
        }
        Ok(())
    }

    /// Routes what silent nodes left unrouted, one pass at a time (a pass
    /// longer than a round is not started again meanwhile).
    fn route_silent_nodes(&self) {
        if self.routing_silent.swap(true, Ordering::SeqCst) {
            return;
        }
        let (node, routing, lease) = (self.node.clone(), self.routing_silent.clone(), self.lease);
        tokio::task::spawn_blocking(move || {
            node.route_silent_nodes(lease);
            routing.store(false, Ordering::SeqCst);
        });
    }

    /// The leases acquired or renewed, up to `limit` of `names`: those
    /// already held first, so that a node keeps its lanes while it may.
    async fn acquire(
        &self,
        client: &Client,
        names: Vec<String>,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<String>, tokio_postgres::Error> {
        let (mut wanted, others): (Vec<_>, Vec<_>) =
            names.into_iter().partition(|name| self.held.holds(name));
        wanted.extend(others);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(ACQUIRE, &[&self.node_id, &wanted, &lease_ms, &limit])
            .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// The lanes' leases, in an order of this node's own (rendezvous
    /// hashing), so that nodes prefer different lanes and a lane's node
    /// changes only when it must.
    fn in_preference_order(&self, lanes: Vec<String>) -> Vec<String> {
        let mut ranked: Vec<(u64, String)> = lanes
            .iter()
            .map(|lane| {
                let mut hasher = DefaultHasher::new();
                (&self.node_id, lane).hash(&mut hasher);
                (hasher.finish(), lane_lease(lane))
            })
            .collect();
        ranked.sort_unstable();
        ranked.into_iter().map(|(_, lease)| lease).collect()
    }

    async fn release(&self, client: &mut Option<Client>) -> Result<(), Failed> {
        let client = connected(client, &self.config).await?;
        client
            .execute("DELETE FROM leases WHERE holder = $1", &[&self.node_id])
            .await?;
        client
            .execute("DELETE FROM nodes WHERE id = $1", &[&self.node_id])
            .await?;
        Ok(())
    }
}

/// Why a round or a release failed.
type Failed = Box<dyn std::error::Error + Send + Sync>;

/// The coordinator's own connection, opened again after it broke.
async fn connected<'a>(
    client: &'a mut Option<Client>,
    config: &tokio_postgres::Config,
) -> Result<&'a Client, tokio_postgres::Error> {
    if client.as_ref().is_some_and(Client::is_closed) {
        *client = None;
    }
    if client.is_none() {
        let (opened, connection) = config.connect(NoTls).await?;
        tokio::spawn(connection);
        *client = Some(opened);
    }
    Ok(client.as_ref().expect("connected above"))
}

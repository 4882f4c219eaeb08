//! What a silent node left unrouted. In a cluster each node routes its own
//! journal and moves its own watermark; a node that dies (or stops before
//! its router caught up) leaves records past its watermark that nobody
//! else would route. The leader routes them (`Router::route_silent_nodes`)
//! and moves that node's watermark. Routing is idempotent (event ids derive
//! from request and connection), so a node that comes back and routes its
//! tail again doubles nothing; its watermark is only moved forward by a
//! compare-and-swap, so neither overwrites what the other routed since.

use super::journal::Location;
use super::requests::{to_journaled, watermark_key};
use super::{Journaled, Result, Store};
use std::time::Duration;

impl Store {
    /// This node's id in a cluster (its journal's, and its heartbeat's);
    /// None for a node alone.
    pub fn node_id(&self) -> Option<&str> {
        self.journal.node()
    }

    /// The other nodes that journaled and have not beaten within `lease`.
    pub fn silent_nodes(&self, lease: Duration) -> Result<Vec<String>> {
        self.journal.silent_nodes(lease)
    }

    /// Calls `visit` with every record of `node`'s journal past its
    /// watermark, then moves the watermark past the last one, unless the
    /// node moved it meanwhile. Returns how many there were.
    pub fn each_unrouted_journaled_of(
        &self,
        node: &str,
        mut visit: impl FnMut(Journaled) -> Result<()>,
    ) -> Result<usize> {
        let Some(journal) = self.journal.of(node) else {
            return Ok(0);
        };
        let key = watermark_key(Some(node));
        let watermark = self.meta.get(&key)?;
        let mut last: Option<Location> = None;
        let mut visited = 0;
        journal.each_after(
            watermark.as_deref().and_then(Location::decode),
            |location, record| {
                last = Some(location);
                visited += 1;
                visit(to_journaled(location, &record)?)
            },
        )?;
        if let Some(last) = last {
            let moved = self
                .meta
                .compare_and_swap(&key, watermark, Some(&last.encode()[..]))?;
            if moved.is_err() {
                tracing::info!(node, "a silent node is back and routes its journal itself");
            }
        }
        Ok(visited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::keyspace::test_server;
    use crate::store::{test_request, Backend, EncodedRequest};

    const LEASE: Duration = Duration::from_secs(2);

    fn journal(store: &Store, bodies: &[&str]) -> Vec<(String, Location)> {
        let encoded: Vec<EncodedRequest> = bodies.iter().map(|body| test_request(body)).collect();
        let locations = store
            .journal_requests(&encoded.iter().collect::<Vec<_>>())
            .unwrap();
        let ids = encoded.into_iter().map(|encoded| encoded.id);
        ids.zip(locations).collect()
    }

    fn unrouted_of(store: &Store, node: &str) -> Vec<String> {
        let mut visited = Vec::new();
        store
            .each_unrouted_journaled_of(node, |journaled| {
                visited.push(journaled.id().to_string());
                Ok(())
            })
            .unwrap();
        visited
    }

    /// Node A journals three requests and routes the first, then falls
    /// silent: node B is handed the other two once, and A's watermark moves
    /// past them (A, back, does not route them again).
    #[test]
    fn a_silent_nodes_tail_is_handed_over_once_and_its_watermark_moved() {
        let backend = Backend::Postgres(Box::new(test_server::database()));
        let node = || crate::store::temp_node(&backend);
        let ((_a_dir, a), (_b_dir, b)) = (node(), node());
        let a_id = a.node_id().unwrap().to_string();
        assert_ne!(Some(a_id.as_str()), b.node_id());
        let journaled = journal(&a, &["{\"n\":1}", "{\"n\":2}"]);
        let later = journal(&a, &["{\"n\":3}"]);
        assert!(
            journaled[1].1.offset < later[0].1.offset,
            "a node's records are numbered in commit order"
        );
        a.set_routed_through(journaled[0].1).unwrap();

        assert_eq!(b.silent_nodes(LEASE).unwrap(), std::slice::from_ref(&a_id));
        let tail = [journaled[1].0.clone(), later[0].0.clone()];
        assert_eq!(unrouted_of(&b, &a_id), tail);
        assert!(unrouted_of(&b, &a_id).is_empty(), "handed over once");
        let mut replayed = 0;
        a.each_unrouted_journaled(|_| {
            replayed += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(replayed, 0, "past A's watermark now");
        assert!(
            a.silent_nodes(LEASE).unwrap().is_empty(),
            "B journaled nothing: no tail to look for"
        );
    }
}

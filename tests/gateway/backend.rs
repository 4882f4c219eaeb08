//! The store this suite's gateways run on: the embedded one (the journal and
//! sled in each test's data dir), the default, which no `[store]` names.
//! `tests/postgres/backend.rs` is the other backend's.

use hookgate::store::{Keyspace, Store};
use std::path::Path;

/// Where a gateway keeps the signing secret it generates (`set_in` of
/// `/workspace/signing-secret`): a node alone keeps it in its data dir.
pub const SIGNING_SECRET_KEPT_IN: &str = "data_dir";

pub fn store_section(_dir: &Path) -> String {
    String::new()
}

/// The trees of the gateway stopped in `dir`, to write records into as an
/// earlier version stored them.
pub fn keyspace(dir: &Path) -> Keyspace {
    Keyspace::Embedded(sled::open(dir.join("data")).unwrap())
}

/// The store a gateway stopped gracefully left in `dir`, opened again. sled
/// writes its snapshot when the last handle closes, so there is one only
/// when nothing held the store.
pub fn stopped_store(dir: &Path) -> Store {
    let snapshots = crate::common::store_snapshots(dir);
    assert_eq!(snapshots, 1, "nothing held the store");
    crate::common::reopen_store(dir)
}

/// What a test's gateway leaves open when it goes: nothing that outlives the
/// test here (threads of a gateway dropped without a stop hold sled's files
/// only until the test process ends).
pub struct Leftovers;

pub fn leftovers(_dir: &Path) -> Leftovers {
    Leftovers
}

//! The store this suite's gateways run on: PostgreSQL, a database of the
//! throwaway server for each test's data dir.

use hookgate::store::{test_postgres, Keyspace, RemoteKeyspace, RemoteSettings, Store};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

/// Each data dir's database: made when the first gateway starts on the dir,
/// the same again for a gateway that restarts on it.
static DATABASES: LazyLock<Mutex<HashMap<PathBuf, RemoteSettings>>> = LazyLock::new(Mutex::default);

/// Where a gateway keeps the signing secret it generates (`set_in` of
/// `/workspace/signing-secret`): the database keeps it, for every node.
pub const SIGNING_SECRET_KEPT_IN: &str = "database";

pub fn store_section(dir: &Path) -> String {
    let url = test_postgres::connection_string(&database_of(dir).config);
    format!("\n[store]\nbackend = \"postgres\"\nurl = \"{url}\"\n")
}

fn database_of(dir: &Path) -> RemoteSettings {
    if let Some(database) = DATABASES.lock().unwrap().get(dir) {
        return database.clone();
    }
    // Made outside the lock: other tests' gateways start meanwhile.
    let database = test_postgres::database();
    let mut databases = DATABASES.lock().unwrap();
    databases
        .entry(dir.to_path_buf())
        .or_insert(database)
        .clone()
}

/// The trees of the gateway stopped in `dir`, to write records into as an
/// earlier version stored them.
pub fn keyspace(dir: &Path) -> Keyspace {
    Keyspace::Remote(RemoteKeyspace::connect(&database_of(dir)).unwrap())
}

/// The store a gateway stopped gracefully left in `dir`, opened again (its
/// lock on the data dir refuses while anything still holds it).
pub fn stopped_store(dir: &Path) -> Store {
    crate::common::reopen_store(dir)
}

/// Closes the connections to the database of a test's gateway once it is
/// gone. One dropped without a stop (as most tests end) leaves its store's
/// pool open, and the test server has room for only so many connections.
pub struct Leftovers(RemoteSettings);

pub fn leftovers(dir: &Path) -> Leftovers {
    Leftovers(database_of(dir))
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        let database = self.0.config.get_dbname().unwrap_or_default().to_string();
        let mut server = self.0.config.clone();
        server.dbname("postgres");
        // On a thread of its own: a gateway is dropped inside the test's runtime.
        std::thread::scope(|scope| {
            scope.spawn(|| close_connections(&server, &database));
        });
    }
}

fn close_connections(server: &tokio_postgres::Config, database: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = test_postgres::client(server).await;
        let closing = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1";
        client.execute(closing, &[&database]).await.unwrap();
    });
}

//! The cluster bench's PostgreSQL: a throwaway server (see
//! `hookgate::store::test_postgres`) with durable commits, as a production
//! server has them, and `pg_stat_statements`; what it did during a phase
//! (transactions, rows, WAL, statements, CPU); what it can take (`pgbench`).

use crate::support;
use hookgate::store::test_postgres::{self, TestServer};
use hookgate::store::RemoteSettings;
use std::process::Command;
use std::time::Duration;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

/// `fsync`, `synchronous_commit` and `full_page_writes` stay at their
/// (durable) defaults; the test servers turn `fsync` off.
const OPTIONS: &str = "-c shared_preload_libraries=pg_stat_statements -c max_connections=300";

pub struct Server {
    server: TestServer,
    admin: Admin,
    /// The postmaster: its children are the server's processes.
    postmaster: u32,
}

impl Server {
    pub fn start() -> Server {
        let server = TestServer::start_with(OPTIONS);
        let mut config = server.database().config;
        config.dbname("postgres");
        let admin = Admin::connect(&config);
        admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
        let backend: i32 = admin.query("SELECT pg_backend_pid()", &[])[0].get(0);
        let postmaster = parent_of(backend as u32).expect("the backend's postmaster");
        Server {
            server,
            admin,
            postmaster,
        }
    }

    /// A new, empty database; `[store] url` for it.
    pub fn database(&self) -> (RemoteSettings, String) {
        let settings = self.server.database();
        let url = test_postgres::connection_string(&settings.config);
        (settings, url)
    }

    /// The settings that decide durability and capacity, as the server runs.
    pub fn settings(&self) -> String {
        let names = [
            "server_version",
            "fsync",
            "synchronous_commit",
            "full_page_writes",
            "wal_level",
            "shared_buffers",
            "max_wal_size",
            "commit_delay",
        ];
        let shown: Vec<String> = names
            .iter()
            .map(|name| {
                let row = &self.admin.query(&format!("SHOW {name}"), &[])[0];
                format!("{name} = {}", row.get::<_, String>(0))
            })
            .collect();
        shown.join(", ")
    }

    /// Forgets the statements counted so far (`pg_stat_statements`).
    pub fn reset_statements(&self) {
        self.admin.execute("SELECT pg_stat_statements_reset()");
    }

    /// What the server has done for `database` so far (the WAL: in all).
    pub fn reading(&self, database: &str) -> Reading {
        let row = &self.admin.query(
            "SELECT d.xact_commit, d.tup_inserted, d.tup_updated, d.tup_deleted,
                    w.wal_records, w.wal_fpi, w.wal_bytes::bigint, w.wal_sync,
                    pg_database_size(d.datname)
             FROM pg_stat_database d, pg_stat_wal w WHERE d.datname = $1",
            &[&database],
        )[0];
        let number = |i| row.get::<_, i64>(i) as f64;
        Reading {
            commits: number(0),
            inserted: number(1),
            updated: number(2),
            deleted: number(3),
            wal_records: number(4),
            wal_full_pages: number(5),
            wal_bytes: number(6),
            wal_syncs: number(7),
            size: number(8),
        }
    }

    /// The statements run in `database` since `reset_statements`, the most
    /// called first: (calls, rows, query).
    pub fn statements(&self, database: &str) -> Vec<(f64, f64, String)> {
        let rows = self.admin.query(
            "SELECT s.calls, s.rows, s.query FROM pg_stat_statements s
             JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1
             ORDER BY s.calls DESC",
            &[&database],
        );
        rows.iter()
            .map(|row| {
                let query: String = row.get(2);
                let query = query.split_whitespace().collect::<Vec<_>>().join(" ");
                (
                    row.get::<_, i64>(0) as f64,
                    row.get::<_, i64>(1) as f64,
                    query,
                )
            })
            .collect()
    }

    /// CPU time of the server's processes alive now (the postmaster and its
    /// children). A backend that ended takes its time with it: read this
    /// while the gateways still hold their connections.
    pub fn cpu(&self) -> Duration {
        let own = std::fs::read_to_string(format!("/proc/{}/stat", self.postmaster));
        let children: Duration = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
            .filter(|stat| ppid(stat) == Some(self.postmaster))
            .map(|stat| support::cpu_of_stat(&stat))
            .sum();
        support::cpu_of_stat(&own.unwrap_or_default()) + children
    }

    /// Installs, in `database` (whose schema the gateway has made), a trigger
    /// that notes each row written to the tables a node writes by tree and
    /// operation (`keyspace` and its day-partitioned `keyspace_timed` by their
    /// `tree` column, the request journal's tables by name): the writes per
    /// event by kind. It costs writes of its own, so it runs in a census phase
    /// apart from the measured ones.
    pub fn count_writes(&self, settings: &RemoteSettings) -> Admin {
        let admin = Admin::connect(&settings.config);
        admin.execute(
            "CREATE UNLOGGED TABLE bench_writes (tree text, op text);
             CREATE FUNCTION bench_note_write() RETURNS trigger LANGUAGE plpgsql AS $$
             DECLARE
                 written jsonb := to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END);
             BEGIN
                 INSERT INTO bench_writes
                 VALUES (COALESCE(written ->> 'tree', TG_ARGV[0]), TG_OP);
                 RETURN NULL;
             END $$;
             CREATE TRIGGER bench_writes AFTER INSERT OR UPDATE OR DELETE ON keyspace
             FOR EACH ROW EXECUTE FUNCTION bench_note_write('keyspace');
             CREATE TRIGGER bench_writes AFTER INSERT OR UPDATE OR DELETE ON keyspace_timed
             FOR EACH ROW EXECUTE FUNCTION bench_note_write('keyspace_timed');
             CREATE TRIGGER bench_writes AFTER INSERT OR UPDATE OR DELETE ON journal
             FOR EACH ROW EXECUTE FUNCTION bench_note_write('journal');
             CREATE TRIGGER bench_writes AFTER INSERT OR UPDATE OR DELETE ON journal_nodes
             FOR EACH ROW EXECUTE FUNCTION bench_note_write('journal_nodes')",
        );
        admin
    }

    /// What the server takes of the keyspace's kind of write, one row of
    /// about `row_bytes` upserted per autocommitted statement, from
    /// `clients` connections of `pgbench` for `seconds`: transactions/s.
    pub fn pgbench(&self, clients: usize, seconds: u64, row_bytes: usize) -> Result<f64, String> {
        let (settings, _) = self.database();
        let admin = Admin::connect(&settings.config);
        admin.execute("CREATE TABLE probe (key bigint PRIMARY KEY, value bytea)");
        let dir = support::bench_dir();
        let script = dir.path().join("upsert.sql");
        let value = "78".repeat(row_bytes);
        std::fs::write(
            &script,
            format!(
                "\\set k random(1, 1000000000000)\n\
                 INSERT INTO probe VALUES (:k, decode('{value}', 'hex')) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        let port = settings.config.get_ports()[0];
        let output = Command::new(format!("{}/pgbench", test_postgres::binaries()))
            .args(["-n", "-h", "127.0.0.1", "-U", "postgres"])
            .args(["-p", &port.to_string()])
            .args(["-c", &clients.to_string(), "-j", "2"])
            .args(["-T", &seconds.to_string()])
            .arg("-f")
            .arg(&script)
            .arg(settings.config.get_dbname().unwrap_or("postgres"))
            .output()
            .map_err(|e| format!("pgbench: {e}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        stdout
            .lines()
            .find_map(|line| line.strip_prefix("tps = "))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .ok_or_else(|| {
                format!(
                    "pgbench said: {stdout}{}",
                    String::from_utf8_lossy(&output.stderr)
                )
            })
    }
}

/// The server's counters at one moment.
#[derive(Clone, Copy)]
pub struct Reading {
    pub commits: f64,
    pub inserted: f64,
    pub updated: f64,
    pub deleted: f64,
    pub wal_records: f64,
    pub wal_full_pages: f64,
    pub wal_bytes: f64,
    pub wal_syncs: f64,
    /// The database's size on disk, in bytes.
    pub size: f64,
}

impl Reading {
    /// What was done between `before` and this reading.
    pub fn since(&self, before: &Reading) -> Reading {
        Reading {
            commits: self.commits - before.commits,
            inserted: self.inserted - before.inserted,
            updated: self.updated - before.updated,
            deleted: self.deleted - before.deleted,
            wal_records: self.wal_records - before.wal_records,
            wal_full_pages: self.wal_full_pages - before.wal_full_pages,
            wal_bytes: self.wal_bytes - before.wal_bytes,
            wal_syncs: self.wal_syncs - before.wal_syncs,
            size: self.size - before.size,
        }
    }

    pub fn rows_written(&self) -> f64 {
        self.inserted + self.updated + self.deleted
    }
}

/// A connection of the bench's own, used synchronously.
pub struct Admin {
    runtime: tokio::runtime::Runtime,
    client: Client,
}

impl Admin {
    fn connect(config: &tokio_postgres::Config) -> Admin {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let client = runtime.block_on(test_postgres::client(config));
        Admin { runtime, client }
    }

    pub fn execute(&self, sql: &str) {
        self.runtime
            .block_on(self.client.batch_execute(sql))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Vec<Row> {
        self.runtime
            .block_on(self.client.query(sql, params))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

/// The parent of a process.
fn parent_of(pid: u32) -> Option<u32> {
    ppid(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The `ppid` field of a `/proc/.../stat` line (the second after the name).
fn ppid(stat: &str) -> Option<u32> {
    let after_name = stat.rsplit_once(')')?.1;
    after_name.split_whitespace().nth(1)?.parse().ok()
}

/// Lets the server's statistics catch up: each backend reports its counts at
/// most once a second (and when it ends).
pub fn settle() {
    std::thread::sleep(Duration::from_millis(1100));
}

//! Cluster benchmark (issue #23): the embedded store against PostgreSQL, one
//! node and two, in one run, on the same machine and the same load; and what
//! the database does per event, the input of the ceiling model in
//! BENCHMARKS.md ("Cluster mode: where the ceiling is").
//!
//! Phases, each on fresh gateways (and a fresh database) routing the source
//! `bench` to a local sink:
//! 1. one node, embedded store (journal + sled);
//! 2. one node on PostgreSQL;
//! 3. two nodes on PostgreSQL, the load's connections dealt over both;
//! 4. census: one node on PostgreSQL, `--census-requests` requests one at a
//!    time, a trigger noting every row a node writes, by tree
//!    (the writes per event by kind; the trigger's own cost is why it runs
//!    apart);
//! 5. the database's capacity for the keyspace's kind of write: `pgbench`
//!    upserting one row per autocommitted statement.
//!
//! For 1–3: accepted req/s and p99 (the load of `support/load.rs`, as in the
//! ingest bench), end-to-end events/s (from the first request to the last
//! delivery), CPU per delivered event of this process (load client, gateways
//! and sink) and of the PostgreSQL server's processes; for 2–3, per event:
//! transactions, rows written, WAL records, full-page images, bytes and
//! syncs (`pg_stat_database`, `pg_stat_wal`) and the statements run
//! (`pg_stat_statements`). The server is a throwaway one started by the bench
//! in a temporary directory, with `fsync`, `synchronous_commit` and
//! `full_page_writes` on (their defaults).
//!
//! ```text
//! cargo bench --bench cluster
//! cargo bench --bench cluster -- --connections 64 --seconds 20
//! cargo bench --bench cluster -- --smoke
//! ```
//!
//! Settings (argument, else environment variable, else default): `--connections`
//! / `HOOKGATE_BENCH_CONNECTIONS` (32), `--seconds` / `HOOKGATE_BENCH_SECONDS`
//! (10, after the warm-up), `--warmup` / `HOOKGATE_BENCH_WARMUP_SECONDS` (2),
//! `--drain-timeout` / `HOOKGATE_BENCH_DRAIN_SECONDS` (120),
//! `--census-requests` / `HOOKGATE_BENCH_CENSUS_REQUESTS` (300),
//! `--pgbench-seconds` / `HOOKGATE_BENCH_PGBENCH_SECONDS` (10),
//! `--pgbench-clients` / `HOOKGATE_BENCH_PGBENCH_CLIENTS` (16, the gateway's
//! default pool size). `--smoke` / `HOOKGATE_BENCH_SMOKE=1` makes the
//! defaults 8 connections, 0.5 s + 2 s, 30 census requests and 2 s of
//! pgbench: the whole run in well under a minute, to check the bench works.

#[path = "support/drain.rs"]
mod drain;
#[path = "support/load.rs"]
mod load;
#[path = "cluster/server.rs"]
mod server;
mod support;

use drain::DrainReport;
use hookgate::Gateway;
use load::LoadReport;
use server::{Reading, Server};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::runtime::Runtime;

const BODY_BYTES: usize = 1024;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let settings = Settings::from(&args);
    let machine = support::Machine::detect();
    println!("hookgate cluster benchmark");
    println!("machine: {machine}");
    let plan = &settings.plan;
    println!(
        "load: {} connections, {} KiB JSON POSTs, {} s warm-up + {} s measured, then the drain",
        plan.connections,
        BODY_BYTES / 1024,
        plan.warmup.as_secs_f64(),
        plan.measured.as_secs_f64(),
    );
    let server = Server::start();
    println!("PostgreSQL: {}", server.settings());
    let cpus = machine.cpus.max(1);
    let bench = Bench {
        settings: &settings,
        server: &server,
        server_rt: support::runtime("bench-server", cpus),
        load_rt: support::runtime("bench-load", cpus),
        body: load::json_body(BODY_BYTES),
    };

    let setups = [
        Setup::Embedded,
        Setup::Postgres { nodes: 1 },
        Setup::Postgres { nodes: 2 },
    ];
    let mut phases = Vec::new();
    for (n, setup) in setups.into_iter().enumerate() {
        println!("\n[{}/5] {}", n + 1, setup.name());
        let phase = bench.phase(setup, &settings.plan, false);
        phase.print();
        phases.push(phase);
    }

    println!(
        "\n[4/5] census: 1 node on PostgreSQL, {} requests one at a time, rows written counted by tree (journal tables by name)",
        settings.census_requests
    );
    let census_plan = load::Plan {
        requests: Some(settings.census_requests),
        ..settings.plan.clone()
    }
    .one_at_a_time();
    let census = bench.phase(Setup::Postgres { nodes: 1 }, &census_plan, true);
    census.print();

    println!(
        "\n[5/5] pgbench: one ~{CENSUS_ROW_BYTES}-byte row upserted per autocommitted statement, {} clients, {} s",
        settings.pgbench_clients, settings.pgbench_seconds
    );
    let capacity = server.pgbench(
        settings.pgbench_clients,
        settings.pgbench_seconds,
        CENSUS_ROW_BYTES,
    );
    match &capacity {
        Ok(tps) => println!("  {tps:.0} transactions/s"),
        Err(error) => println!("  failed: {error}"),
    }

    summary(&phases, &census, capacity.ok(), cpus);
    println!("\nload average at the end: {}", support::load_average());
    bench.load_rt.shutdown_timeout(Duration::from_secs(5));
    bench.server_rt.shutdown_timeout(Duration::from_secs(5));
}

/// The value size pgbench writes: about a request's row (the 1 KiB body is
/// stored with the request; events, keys and attempts are smaller).
const CENSUS_ROW_BYTES: usize = 512;

// ---------------------------------------------------------------- settings

struct Settings {
    plan: load::Plan,
    drain_timeout: Duration,
    census_requests: u64,
    pgbench_seconds: u64,
    pgbench_clients: usize,
}

impl Settings {
    fn from(args: &[String]) -> Settings {
        let smoke = support::flag(args, "--smoke", "HOOKGATE_BENCH_SMOKE");
        let number = |flag, env, default: f64, smoke_default: f64| {
            let default = if smoke { smoke_default } else { default };
            support::setting(args, flag, env, default)
        };
        let defaults = match smoke {
            false => load::Plan {
                connections: 32,
                warmup: load::seconds(2.0),
                measured: load::seconds(10.0),
                requests: None,
            },
            true => load::Plan {
                connections: 8,
                warmup: load::seconds(0.5),
                measured: load::seconds(2.0),
                requests: None,
            },
        };
        Settings {
            plan: load::Plan::from(args, &defaults),
            drain_timeout: load::seconds(number(
                "--drain-timeout",
                "HOOKGATE_BENCH_DRAIN_SECONDS",
                120.0,
                30.0,
            )),
            census_requests: number(
                "--census-requests",
                "HOOKGATE_BENCH_CENSUS_REQUESTS",
                300.0,
                30.0,
            )
            .max(1.0) as u64,
            pgbench_seconds: number(
                "--pgbench-seconds",
                "HOOKGATE_BENCH_PGBENCH_SECONDS",
                10.0,
                2.0,
            )
            .max(1.0) as u64,
            pgbench_clients: number(
                "--pgbench-clients",
                "HOOKGATE_BENCH_PGBENCH_CLIENTS",
                16.0,
                16.0,
            )
            .max(1.0) as usize,
        }
    }
}

// ---------------------------------------------------------------- phases

#[derive(Clone, Copy)]
enum Setup {
    Embedded,
    Postgres { nodes: usize },
}

impl Setup {
    fn name(&self) -> String {
        match self {
            Setup::Embedded => "1 node, embedded store".to_string(),
            Setup::Postgres { nodes: 1 } => "1 node on PostgreSQL".to_string(),
            Setup::Postgres { nodes } => {
                format!("{nodes} nodes on PostgreSQL, the load dealt over them")
            }
        }
    }
}

struct Bench<'a> {
    settings: &'a Settings,
    server: &'a Server,
    server_rt: Runtime,
    load_rt: Runtime,
    body: Vec<u8>,
}

/// What one phase measured.
struct Phase {
    setup: Setup,
    load: LoadReport,
    drain: DrainReport,
    /// The PostgreSQL server's CPU from the start of the load to the end of the drain.
    database_cpu: Duration,
    /// Bytes on disk in the nodes' `data_dir`s after the drain.
    data_dirs: u64,
    /// What the database did (PostgreSQL only).
    database: Option<DatabaseWork>,
}

struct DatabaseWork {
    done: Reading,
    /// (calls, rows, query), the most called first.
    statements: Vec<(f64, f64, String)>,
    /// (tree, operation, rows) from the census trigger.
    writes_by_tree: Vec<(String, String, f64)>,
}

impl Bench<'_> {
    /// Fresh gateways for `setup` under the load of `plan`, then the drain;
    /// with `census`, the rows written to `keyspace` counted by tree.
    fn phase(&self, setup: Setup, plan: &load::Plan, census: bool) -> Phase {
        let sink_rt = support::runtime("bench-sink", 1);
        let (sink_addr, sink) = drain::start_sink(&sink_rt);
        let (nodes, database) = match setup {
            Setup::Embedded => (1, None),
            Setup::Postgres { nodes } => (nodes, Some(self.server.database())),
        };
        let store = database.as_ref().map_or(String::new(), |(_, url)| {
            format!("[store]\nbackend = \"postgres\"\nurl = \"{url}\"\n")
        });
        let dirs: Vec<_> = (0..nodes).map(|_| support::bench_dir()).collect();
        let gateways: Vec<Gateway> = dirs
            .iter()
            .map(|dir| {
                let (_, config) = support::save_config(dir.path(), &config(sink_addr, &store));
                self.server_rt
                    .block_on(Gateway::start(&config))
                    .expect("hookgate starts")
            })
            .collect();
        let name = database
            .as_ref()
            .and_then(|(settings, _)| settings.config.get_dbname())
            .unwrap_or_default()
            .to_string();
        let census = census
            .then(|| database.as_ref().map(|(s, _)| self.server.count_writes(s)))
            .flatten();
        self.server.reset_statements();
        let before = database.as_ref().map(|_| self.server.reading(&name));
        let database_cpu_before = self.server.cpu();
        let cpu_at_start = support::CpuReading::now();

        let targets: Vec<(SocketAddr, Vec<u8>)> = gateways
            .iter()
            .map(|gateway| {
                let addr = gateway.ingress_addr;
                (addr, load::json_post(addr, "/e/bench", "", &self.body))
            })
            .collect();
        let load = load::run(&self.load_rt, plan, &targets);
        let mut drain = drain::wait_for_drain(
            &sink,
            load.acknowledged,
            load.load_started,
            load.load_ended,
            self.settings.drain_timeout,
        );
        drain.cpu = Some(support::CpuSplit::since(&cpu_at_start));
        // Before the gateways close their connections: an ended backend's
        // CPU is no longer counted.
        let database_cpu = self.server.cpu().saturating_sub(database_cpu_before);
        let data_dirs = dirs.iter().map(|dir| support::disk_usage(dir.path())).sum();

        for gateway in gateways {
            let stopped = self.server_rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(30), gateway.shutdown()).await
            });
            if !matches!(stopped, Ok(Ok(()))) {
                println!("warning: a gateway did not stop cleanly");
            }
        }
        sink_rt.shutdown_timeout(Duration::from_secs(1));
        let database = before.map(|before| {
            server::settle();
            let writes_by_tree = census.map_or(Vec::new(), |census| {
                let rows = census.query(
                    "SELECT tree, op, count(*) FROM bench_writes GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2",
                    &[],
                );
                rows.iter()
                    .map(|row| (row.get(0), row.get(1), row.get::<_, i64>(2) as f64))
                    .collect()
            });
            DatabaseWork {
                done: self.server.reading(&name).since(&before),
                statements: self.server.statements(&name),
                writes_by_tree,
            }
        });
        Phase {
            setup,
            load,
            drain,
            database_cpu,
            data_dirs,
            database,
        }
    }
}

/// The gateway.toml of every node: source `bench` routed to the sink, on `store`.
fn config(sink: SocketAddr, store: &str) -> String {
    format!(
        r#"delivery = {{ signing_secret = "bench-signing-secret", allowed_networks = ["127.0.0.0/8"] }}
[server]
ingress_listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"
api_listen = "127.0.0.1:0"
api_keys = ["bench-api-key"]
allow_insecure_endpoints = true
data_dir = "data"
shutdown_timeout_ms = 5000
# The same on every node, as a cluster's must be (README, "Running a cluster").
secrets_key = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="

{store}
[[sources]]
name = "bench"

[[destinations]]
name = "sink"
url = "http://{sink}/hooks"

[[connections]]
name = "bench-to-sink"
source = "bench"
destination = "sink"
"#
    )
}

// ---------------------------------------------------------------- report

impl Phase {
    fn delivered(&self) -> f64 {
        self.drain.delivered.max(1) as f64
    }

    fn end_to_end(&self) -> f64 {
        self.drain.delivered as f64 / self.drain.total_time.as_secs_f64()
    }

    /// µs per delivered event: (this process, the database server).
    fn cpu_per_event(&self) -> (f64, f64) {
        let process = self.drain.cpu_per_event().unwrap_or(f64::NAN);
        let database = self.database_cpu.as_secs_f64() * 1e6 / self.delivered();
        (process, database)
    }

    fn print(&self) {
        self.load.print();
        self.drain.print();
        let (_, database) = self.cpu_per_event();
        println!("  PostgreSQL server CPU per delivered event: {database:.1} µs");
        let per = |n: f64| n / self.delivered();
        println!(
            "  on disk after the drain: data_dir(s) {:.0} bytes per event",
            per(self.data_dirs as f64)
        );
        let Some(work) = &self.database else {
            return;
        };
        println!(
            "  database grew by {:.0} bytes per event",
            per(work.done.size)
        );
        let done = &work.done;
        println!(
            "  per event: {:.2} transactions, {:.2} rows written ({:.2} inserted, {:.2} updated, {:.2} deleted), WAL {:.1} records, {:.2} full pages, {:.0} bytes, {:.3} syncs",
            per(done.commits),
            per(done.rows_written()),
            per(done.inserted),
            per(done.updated),
            per(done.deleted),
            per(done.wal_records),
            per(done.wal_full_pages),
            per(done.wal_bytes),
            per(done.wal_syncs),
        );
        println!("  statements per event (calls, rows):");
        for (calls, rows, query) in work.statements.iter().take(12) {
            let query: String = query.chars().take(110).collect();
            println!("    {:>6.2} {:>7.2}  {query}", per(*calls), per(*rows));
        }
        if !work.writes_by_tree.is_empty() {
            println!("  rows written per event, by tree (journal tables by name) and operation:");
            for (tree, op, rows) in &work.writes_by_tree {
                println!("    {:>6.2}  {tree} {op}", per(*rows));
            }
            let all: f64 = work.writes_by_tree.iter().map(|(_, _, rows)| rows).sum();
            println!("    {:>6.2}  in all", per(all));
        }
    }
}

/// The phases side by side, and the ceiling they imply.
fn summary(phases: &[Phase], census: &Phase, capacity: Option<f64>, cpus: usize) {
    println!("\nBENCHMARKS.md rows:");
    println!("| setup | accepted req/s | p99 | end-to-end events/s | CPU µs/event, bench process | CPU µs/event, PostgreSQL | transactions/event | rows written/event | WAL bytes/event | WAL syncs/event |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for phase in phases {
        let (process, database) = phase.cpu_per_event();
        let per = |pick: fn(&Reading) -> f64| {
            phase.database.as_ref().map_or("–".to_string(), |work| {
                format!("{:.2}", pick(&work.done) / phase.delivered())
            })
        };
        println!(
            "| {} | {:.0} | {} | {:.0} | {process:.0} | {database:.0} | {} | {} | {} | {} |",
            phase.setup.name(),
            phase.load.requests_per_second(),
            load::format_latency(phase.load.percentile(0.99)),
            phase.end_to_end(),
            per(|r| r.commits),
            per(Reading::rows_written),
            per(|r| r.wal_bytes),
            per(|r| r.wal_syncs),
        );
    }
    let [embedded, one, two] = phases else {
        return;
    };
    println!("\nratios in this run:");
    println!(
        "  PostgreSQL 1 node / embedded: accepted {:.2}, end to end {:.2}",
        one.load.requests_per_second() / embedded.load.requests_per_second().max(1e-9),
        one.end_to_end() / embedded.end_to_end().max(1e-9),
    );
    println!(
        "  PostgreSQL 2 nodes / 1 node: accepted {:.2}, end to end {:.2}",
        two.load.requests_per_second() / one.load.requests_per_second().max(1e-9),
        two.end_to_end() / one.end_to_end().max(1e-9),
    );
    let Some(work) = &one.database else {
        return;
    };
    let transactions = work.done.commits / one.delivered();
    let writes = census.database.as_ref().map_or(f64::NAN, |census_work| {
        let rows: f64 = census_work.writes_by_tree.iter().map(|(_, _, n)| n).sum();
        rows / census.delivered()
    });
    let (_, database_cpu) = one.cpu_per_event();
    println!("\nthe ceiling model's inputs (1 node on PostgreSQL):");
    if let Some(tps) = capacity {
        // Each keyspace write is one autocommitted statement, like pgbench's.
        println!(
            "  {writes:.2} single-row writes per event (census) against {tps:.0} single-row write transactions/s (pgbench): ceiling about {:.0} events/s",
            tps / writes.max(1e-9)
        );
        println!(
            "  counting reads as writes ({transactions:.2} transactions per event): about {:.0} events/s",
            tps / transactions.max(1e-9)
        );
    }
    println!(
        "  {database_cpu:.0} µs of PostgreSQL CPU per event: {:.0} events/s per database core, {:.0} on this machine's {cpus} if the database had them alone",
        1e6 / database_cpu.max(1e-9),
        cpus as f64 * 1e6 / database_cpu.max(1e-9)
    );
}

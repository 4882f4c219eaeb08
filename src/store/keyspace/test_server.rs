//! Throwaway PostgreSQL servers for tests: `HOOKGATE_TEST_DATABASE_URL` when
//! set, else one server per test process started from the machine's
//! PostgreSQL binaries in a temporary directory. Each test gets a database of
//! its own. A server is run by a supervising shell that stops it and deletes
//! its directory once the test process is gone (its stdin closes then), so no
//! server outlives the tests.

use super::RemoteSettings;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Starts the server in a fresh directory with the server options `$3`, then
/// takes `stop`/`start` lines (answering `done` to each) until its stdin
/// closes. Runs as the user that owns the cluster (PostgreSQL refuses to run
/// as root).
const SUPERVISOR: &str = r#"
bin=$1; port=$2; options=$3
dir=$(mktemp -d /tmp/hookgate-test-pg.XXXXXX) || exit 1
if ! "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1; then
  echo "initdb failed: $(cat "$dir/initdb.log")"; rm -rf "$dir"; exit 1
fi
start() {
  "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-k $dir -p $port -c listen_addresses=127.0.0.1 $options" start >/dev/null 2>&1 \
    || echo "failed to start: $(tail -5 "$dir/server.log")"
}
stop() { "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1; }
start
echo ready
while read -r command; do
  case $command in
    stop) stop ;;
    start) start ;;
  esac
  echo done
done
stop
rm -rf "$dir"
"#;

/// A server this process started.
pub struct TestServer {
    port: u16,
    control: Mutex<(ChildStdin, BufReader<ChildStdout>)>,
    _supervisor: Child,
}

impl TestServer {
    /// Starts a server of its own; panics (never skips) when PostgreSQL is
    /// missing. Tests need no durability: it runs with `fsync = off`.
    pub fn start() -> TestServer {
        TestServer::start_with("-c fsync=off -c max_connections=300")
    }

    /// Starts a server with `options` (`postgres` command-line options,
    /// e.g. `-c name=value`), the defaults otherwise: the benches' server
    /// makes its commits durable, as a production one does.
    pub fn start_with(options: &str) -> TestServer {
        let bin = binaries();
        let port = free_port();
        let mut command = Command::new("sh");
        command
            .args([
                "-c",
                SUPERVISOR,
                "supervisor",
                &bin,
                &port.to_string(),
                options,
            ])
            .current_dir("/tmp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            let (uid, gid) = postgres_user();
            command.uid(uid).gid(gid);
        }
        let mut supervisor = command.spawn().expect("starting the PostgreSQL supervisor");
        let stdin = supervisor.stdin.take().expect("piped");
        let stdout = BufReader::new(supervisor.stdout.take().expect("piped"));
        let server = TestServer {
            port,
            control: Mutex::new((stdin, stdout)),
            _supervisor: supervisor,
        };
        server.expect_reply("ready");
        server
    }

    /// Stops the server at once (as a crash would), or starts it again.
    pub fn stop(&self) {
        self.command("stop");
    }

    pub fn restart(&self) {
        self.command("start");
    }

    fn command(&self, command: &str) {
        writeln!(self.control.lock().unwrap().0, "{command}").expect("the supervisor is gone");
        self.expect_reply("done");
    }

    fn expect_reply(&self, expected: &str) {
        let mut line = String::new();
        let mut control = self.control.lock().unwrap();
        control
            .1
            .read_line(&mut line)
            .expect("reading the supervisor");
        assert_eq!(
            line.trim(),
            expected,
            "the PostgreSQL test server said: {line}"
        );
    }

    fn base(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config.host("127.0.0.1").port(self.port).user("postgres");
        config
    }
}

/// The newest PostgreSQL's binaries on this machine (its `bin` directory,
/// where the benches find `pgbench` too).
pub fn binaries() -> String {
    let mut found: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|version| version.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort_by_key(|bin| {
        let version = bin.parent().and_then(|v| v.file_name());
        version.and_then(|v| v.to_str()?.parse::<u32>().ok())
    });
    let bin = found.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL's binaries are missing (no /usr/lib/postgresql/*/bin/initdb): \
             install Debian's postgresql (.ci/run does) or set HOOKGATE_TEST_DATABASE_URL"
        )
    });
    bin.to_string_lossy().into_owned()
}

/// The uid and gid of the `postgres` user, who runs the servers when the tests run as root.
fn postgres_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("reading /etc/passwd");
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&"postgres") && fields.len() > 3)
        .map(|fields| (fields[2].parse().unwrap(), fields[3].parse().unwrap()))
        .expect("running as root, and no postgres user to run PostgreSQL as (initdb refuses root)")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().unwrap().port()
}

/// Where the tests' databases are made: the given server, or this process's own.
enum Shared {
    Given(tokio_postgres::Config),
    Started(TestServer),
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| match std::env::var("HOOKGATE_TEST_DATABASE_URL") {
        Ok(url) => Shared::Given(url.parse().expect("HOOKGATE_TEST_DATABASE_URL")),
        Err(_) => Shared::Started(TestServer::start()),
    })
}

/// Settings for a new, empty database of the shared test server.
pub fn database() -> RemoteSettings {
    let base = match shared() {
        Shared::Given(config) => config.clone(),
        Shared::Started(server) => server.base(),
    };
    new_database(base)
}

impl TestServer {
    /// Settings for a new, empty database of this server.
    pub fn database(&self) -> RemoteSettings {
        new_database(self.base())
    }
}

/// Creates a database named for this process and a counter on the server
/// `base` reaches.
fn new_database(base: tokio_postgres::Config) -> RemoteSettings {
    static MADE: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "hookgate_test_{}_{}",
        std::process::id(),
        MADE.fetch_add(1, Ordering::SeqCst)
    );
    // On a thread of its own: the caller may be inside a runtime (async tests).
    std::thread::scope(|scope| {
        scope
            .spawn(|| create_database(&base, &name))
            .join()
            .unwrap();
    });
    let mut config = base;
    config.dbname(&name);
    RemoteSettings {
        config,
        pool_size: 4,
        statement_timeout: Duration::from_secs(5),
    }
}

fn create_database(base: &tokio_postgres::Config, name: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        client(base)
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("creating a test database");
    });
}

/// A client of its own for a test to look into the database with (its
/// connection is driven by a task of the caller's runtime).
pub async fn client(config: &tokio_postgres::Config) -> tokio_postgres::Client {
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connecting to the test server");
    tokio::spawn(connection);
    client
}

/// `config` as a key=value connection string, for a `[store] url`.
pub fn connection_string(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let mut parts = Vec::new();
    for host in config.get_hosts() {
        match host {
            Host::Tcp(name) => parts.push(format!("host={name}")),
            Host::Unix(path) => parts.push(format!("host={}", path.display())),
        }
    }
    parts.extend(config.get_ports().iter().map(|port| format!("port={port}")));
    parts.extend(config.get_user().map(|user| format!("user={user}")));
    parts.extend(config.get_dbname().map(|name| format!("dbname={name}")));
    if let Some(password) = config.get_password() {
        let password = String::from_utf8_lossy(password)
            .replace('\\', "\\\\")
            .replace('\'', "\\'");
        parts.push(format!("password='{password}'"));
    }
    parts.join(" ")
}

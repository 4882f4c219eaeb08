//! The real binary: SIGKILL mid-load loses no acknowledged request nor webhook
//! job, SIGTERM drains and exits 0, `check` names the file, line and key of
//! config errors.

use crate::common::{
    config_text_with, route, write_config, write_config_text, Reply, Sink, API_KEY,
    CLUSTER_SECRETS_KEY, INSECURE, PATIENCE,
};
use crate::openapi_check::assert_documented;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

const BINARY: &str = env!("CARGO_BIN_EXE_hookgate");

/// Source `shop` routed to `sink`.
fn shop(sink: &Sink) -> String {
    format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), "")
    )
}

/// A `hookgate serve` process and the ingress address it printed.
struct Served {
    child: Child,
    base: String,
}

fn serve(config: &Path) -> Served {
    serve_logging(config, "warn", Stdio::inherit())
}

fn serve_logging(config: &Path, level: &str, stderr: Stdio) -> Served {
    let mut child = Command::new(BINARY)
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", level)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next().expect("hookgate printed its address").unwrap();
    let addr = line.rsplit(' ').next().unwrap().to_string();
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Served {
        child,
        base: format!("http://{addr}"),
    }
}

/// Worker `w`'s `n`-th request.
type MakeRequest = dyn Fn(&reqwest::Client, usize, u64) -> reqwest::RequestBuilder + Send + Sync;

/// What a load client sends: worker `w`'s `n`-th request, the status that
/// acknowledges it, and the field of the answer naming what was acknowledged.
#[derive(Clone)]
struct Sending {
    request: Arc<MakeRequest>,
    acknowledged: u16,
    id_field: &'static str,
    /// For the management API: its `/openapi.json` and the operation's path,
    /// which each worker's first acknowledgement is checked against.
    documented: Option<(&'static serde_json::Value, &'static str)>,
}

impl Sending {
    /// Requests to source `shop` of the ingress at `base`.
    fn requests(base: String) -> Sending {
        let request = move |client: &reqwest::Client, worker, n| {
            let body = format!("{{\"worker\":{worker},\"n\":{n}}}");
            client.post(format!("{base}/e/shop")).body(body)
        };
        Sending {
            request: Arc::new(request),
            acknowledged: 200,
            id_field: "request_id",
            documented: None,
        }
    }

    /// Webhook jobs for `app` through the management API at `api`, which
    /// serves `document` as its `/openapi.json`.
    fn jobs(api: String, app: String, document: &'static serde_json::Value) -> Sending {
        let request = move |client: &reqwest::Client, worker, n| {
            let job = serde_json::json!({
                "application_id": app, "event_type": "order.created",
                "payload": { "worker": worker, "n": n },
            });
            let url = format!("{api}/v1/webhook-jobs");
            client.post(url).bearer_auth(API_KEY).json(&job)
        };
        Sending {
            request: Arc::new(request),
            acknowledged: 201,
            id_field: "id",
            documented: Some((document, "/v1/webhook-jobs")),
        }
    }
}

/// Sends from `workers` concurrent clients until told to stop (or the
/// process dies); returns the ids of what was acknowledged. The stop is a
/// token, which stays cancelled: a `Notify` was missed by a worker busy
/// reading an answer, which then sent to a live node forever.
async fn load(
    sending: Sending,
    workers: usize,
    stop: CancellationToken,
    acked_enough: Arc<tokio::sync::Semaphore>,
) -> HashSet<String> {
    let client = reqwest::Client::new();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..workers {
        let (client, sending, stop, acked_enough) = (
            client.clone(),
            sending.clone(),
            stop.clone(),
            acked_enough.clone(),
        );
        tasks.spawn(async move {
            let mut acked = Vec::new();
            for n in 0.. {
                let post = (sending.request)(&client, worker, n).send();
                let response = tokio::select! {
                    r = post => r,
                    _ = stop.cancelled() => break,
                };
                match response {
                    Ok(r) if r.status() == sending.acknowledged => {
                        let body: serde_json::Value = r.json().await.unwrap_or_default();
                        if let (Some((document, path)), true) =
                            (sending.documented, acked.is_empty())
                        {
                            let status = sending.acknowledged;
                            assert_documented(document, "POST", path, status, &body);
                        }
                        if let Some(id) = body[sending.id_field].as_str() {
                            acked.push(id.to_string());
                            acked_enough.add_permits(1);
                        }
                    }
                    // The process was killed: unacknowledged, so not owed.
                    _ => break,
                }
            }
            acked
        });
    }
    let mut all = HashSet::new();
    while let Some(acked) = tasks.join_next().await {
        all.extend(acked.unwrap());
    }
    all
}

/// A served gateway under load from concurrent clients, with a sink behind it.
struct UnderLoad {
    sink: Sink,
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    served: Served,
    stop: CancellationToken,
    load: tokio::task::JoinHandle<HashSet<String>>,
}

impl UnderLoad {
    /// Starts `hookgate serve` and `workers` clients; returns once `acked`
    /// requests are acknowledged, with the load still running.
    async fn start(workers: usize, acked: u32) -> UnderLoad {
        let sink = Sink::start(Reply::Status(200)).await;
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), &shop(&sink));
        let served = serve(&config);
        let stop = CancellationToken::new();
        let acked_enough = Arc::new(tokio::sync::Semaphore::new(0));
        let load = tokio::spawn(load(
            Sending::requests(served.base.clone()),
            workers,
            stop.clone(),
            acked_enough.clone(),
        ));
        let _ = tokio::time::timeout(PATIENCE, acked_enough.acquire_many(acked))
            .await
            .expect("load is acknowledged");
        UnderLoad {
            sink,
            dir,
            config,
            served,
            stop,
            load,
        }
    }

    /// Stops the clients (after the process ended) and returns what was acknowledged.
    async fn acknowledged(&mut self) -> HashSet<String> {
        self.stop.cancel();
        (&mut self.load).await.unwrap()
    }

    /// Restarts the gateway and waits until every acknowledged request was
    /// delivered; otherwise says what the store knows of the others.
    async fn restart_and_expect_delivered(self, acked: &HashSet<String>) {
        let mut restarted = serve(&self.config);
        let delivered = delivered_within_patience(&self.sink, acked).await;
        restarted.child.kill().unwrap();
        restarted.child.wait().unwrap();
        if !acked.is_subset(&delivered) {
            panic!("{}", undelivered(&self.dir.keep(), acked, &delivered));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_load_loses_no_acknowledged_request() {
    // Kill once a few hundred requests are acknowledged, with more in flight.
    let mut run = UnderLoad::start(16, 300).await;
    run.served.child.kill().unwrap();
    run.served.child.wait().unwrap();
    let acked = run.acknowledged().await;
    assert!(acked.len() >= 300);
    run.restart_and_expect_delivered(&acked).await;
}

/// A port free now, for a management API the test must know in advance.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_load_loses_no_acknowledged_webhook_job() {
    let sink = Sink::start(Reply::Status(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let api = format!("127.0.0.1:{}", free_port());
    let text = config_text_with(INSECURE, "").replace(
        "api_listen = \"127.0.0.1:0\"",
        &format!("api_listen = \"{api}\""),
    );
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, text).unwrap();
    let mut served = serve(&config);
    let (api, client) = (format!("http://{api}"), reqwest::Client::new());
    let create = |path: &'static str, body: serde_json::Value| {
        let sent = client
            .post(format!("{api}{path}"))
            .bearer_auth(API_KEY)
            .json(&body)
            .send();
        let (client, api) = (client.clone(), api.clone());
        async move {
            let response = sent.await.unwrap();
            let status = response.status().as_u16();
            let answer: serde_json::Value = response.json().await.unwrap();
            let document = crate::openapi_check::document(&client, &api).await;
            assert_documented(document, "POST", path, status, &answer);
            answer["id"].as_str().unwrap().to_string()
        }
    };
    let app = create("/v1/applications", serde_json::json!({ "name": "shop" })).await;
    let endpoint = serde_json::json!({ "application_id": app, "url": sink.url("/hooks") });
    create("/v1/endpoints", endpoint).await;
    // Kill once a few hundred jobs are acknowledged, with more in flight.
    let acked_enough = Arc::new(tokio::sync::Semaphore::new(0));
    let document = crate::openapi_check::document(&client, &api).await;
    let sending = Sending::jobs(api.clone(), app.clone(), document);
    let stop = CancellationToken::new();
    let load = tokio::spawn(load(sending, 16, stop, acked_enough.clone()));
    let _ = tokio::time::timeout(PATIENCE, acked_enough.acquire_many(300))
        .await
        .expect("jobs are acknowledged");
    served.child.kill().unwrap();
    served.child.wait().unwrap();
    let acked = load.await.unwrap();
    assert!(acked.len() >= 300);
    let mut restarted = serve(&config);
    let delivered = delivered_within_patience(&sink, &acked).await;
    // Kept, too (a delivery made before the kill would hide a job lost with it).
    let mut forgotten = Vec::new();
    for id in &acked {
        let job = client
            .get(format!("{api}/v1/webhook-jobs/{id}"))
            .bearer_auth(API_KEY)
            .send();
        if job.await.unwrap().status() != 200 {
            forgotten.push(id);
        }
    }
    // Listed, too, and counted right: the list index is rebuilt after a crash.
    let (listed, total) = listed_jobs(&client, &api, &app).await;
    restarted.child.kill().unwrap();
    restarted.child.wait().unwrap();
    let unlisted: Vec<&String> = acked.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "acknowledged jobs not listed: {unlisted:?}"
    );
    assert_eq!(total, listed.len(), "the list's total");
    assert!(
        forgotten.is_empty(),
        "{} of {} acknowledged jobs forgotten: {forgotten:?}",
        forgotten.len(),
        acked.len()
    );
    let lost: Vec<&String> = acked.difference(&delivered).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged jobs never delivered: {lost:?}",
        lost.len(),
        acked.len()
    );
}

/// Every job of the application its list pages through, and the total it states.
async fn listed_jobs(client: &reqwest::Client, api: &str, app: &str) -> (HashSet<String>, usize) {
    let mut listed = HashSet::new();
    for page in 1u32.. {
        let url = format!("{api}/v1/webhook-jobs?application_id={app}&per_page=100&page={page}");
        let answer = client.get(url).bearer_auth(API_KEY).send();
        let answer: serde_json::Value = answer.await.unwrap().json().await.unwrap();
        let jobs = answer["data"].as_array().unwrap();
        if jobs.is_empty() {
            let total = answer["pagination"]["total"].as_u64().unwrap();
            return (listed, total as usize);
        }
        listed.extend(
            jobs.iter()
                .map(|job| job["id"].as_str().unwrap().to_string()),
        );
    }
    unreachable!("a page past the last is empty")
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_and_exits_zero_and_nothing_is_lost() {
    let mut run = UnderLoad::start(8, 100).await;
    let pid = run.served.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    // The sink on this runtime must keep serving the drain meanwhile.
    let exit = tokio::task::block_in_place(|| run.served.child.wait().unwrap());
    assert_eq!(exit.code(), Some(0), "SIGTERM exits cleanly");
    let acked = run.acknowledged().await;
    // Whatever the drain did not deliver is delivered after the next start.
    run.restart_and_expect_delivered(&acked).await;
}

/// Kills `hookgate serve` (SIGKILL) `KILLS` times, at random moments of its
/// start or of a small load, starting it again each time; then every request
/// it acknowledged is delivered at least once.
#[tokio::test(flavor = "multi_thread")]
async fn thirty_random_sigkills_lose_no_acknowledged_request() {
    use rand::{Rng, SeedableRng};
    const KILLS: usize = 30;
    let seed: u64 = rand::random();
    println!("chaos seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let sink = Sink::start(Reply::Status(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &shop(&sink));
    let mut acknowledged = HashSet::new();
    for _ in 0..KILLS {
        let mut served = serve(&config);
        let stop = CancellationToken::new();
        let acked_enough = Arc::new(tokio::sync::Semaphore::new(0));
        let load = tokio::spawn(load(
            Sending::requests(served.base.clone()),
            4,
            stop.clone(),
            acked_enough.clone(),
        ));
        // None (killed as it starts taking requests) up to a few dozen.
        let wanted = rng.gen_range(0..40);
        let acked = tokio::time::timeout(PATIENCE, acked_enough.acquire_many(wanted)).await;
        assert!(acked.is_ok(), "{wanted} requests acknowledged in time");
        served.child.kill().unwrap();
        served.child.wait().unwrap();
        stop.cancel();
        acknowledged.extend(load.await.unwrap());
    }
    let mut last = serve(&config);
    let delivered = delivered_within_patience(&sink, &acknowledged).await;
    if !acknowledged.is_subset(&delivered) {
        last.child.kill().unwrap();
        last.child.wait().unwrap();
        panic!("{}", undelivered(&dir.keep(), &acknowledged, &delivered));
    }
    let deliveries = sink.received().len();
    println!(
        "{} requests acknowledged over {KILLS} kills; {deliveries} deliveries of {} requests: {} duplicates",
        acknowledged.len(),
        delivered.len(),
        deliveries - delivered.len()
    );
    last.child.kill().unwrap();
    last.child.wait().unwrap();
}

/// The requests the sink has seen once every one of `wanted` arrived, or
/// once none has arrived for a while.
async fn delivered_within_patience(sink: &Sink, wanted: &HashSet<String>) -> HashSet<String> {
    let delivered = || -> HashSet<String> {
        sink.received()
            .iter()
            .filter_map(|r| r.header("x-hookgate-request-id").map(str::to_string))
            .collect()
    };
    let mut seen = sink.received().len();
    while !wanted.is_subset(&delivered()) {
        let more = tokio::time::timeout(PATIENCE, async {
            while sink.received().len() == seen {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        });
        if more.await.is_err() {
            break;
        }
        seen = sink.received().len();
    }
    delivered()
}

/// What the store in `dir` (the gateway stopped) knows of the acknowledged
/// requests that were never delivered.
fn undelivered(dir: &Path, acknowledged: &HashSet<String>, delivered: &HashSet<String>) -> String {
    let store = hookgate::store::Store::open(&dir.join("data"), 1 << 20).unwrap();
    let mut report = format!("acknowledged, never delivered (data kept in {dir:?}):");
    for id in acknowledged.difference(delivered) {
        let request = store.request(id).unwrap();
        let events = store.events_of_request(id).unwrap();
        report += &format!(
            "\n{id}: indexed {}, unrouted {}, events {:?}",
            request.is_some(),
            store.is_unrouted(id).unwrap(),
            events
                .iter()
                .map(|e| (&e.id, e.status, e.next_attempt_at))
                .collect::<Vec<_>>()
        );
    }
    report
}

fn check(dir: &Path, rest: &str) -> (bool, String) {
    let config = write_config(dir, rest);
    let output = Command::new(BINARY)
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn check_accepts_the_shipped_gateway_toml() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway.toml");
    let output = Command::new(BINARY)
        .args(["check", "--config"])
        .arg(&shipped)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn check_names_file_line_and_key_for_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let rest = r#"[[sources]]
name = "shop"

[[sources]]
name = "shop"

[[destinations]]
name = "api"
url = "ftp://example.com/"

[[connections]]
name = "c1"
source = "shpo"
destination = "api"
rules = [ { type = "retry", strategy = "linear", count = 1, interval = 10, response_status_codes = ["abc"] } ]
"#;
    let (ok, stderr) = check(dir.path(), rest);
    assert!(!ok);
    let file = dir.path().join("gateway.toml").display().to_string();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    // The test preamble is 10 lines, so the test's line N is line N+10.
    assert!(
        lines.contains(&format!("{file}:15:8: sources[1].name: duplicate name \"shop\"").as_str()),
        "{stderr}"
    );
    assert!(
        lines.iter().any(
            |l| l.starts_with(&format!("{file}:19:7: destinations[0].url:"))
                && l.contains("http or https")
        ),
        "{stderr}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with(&format!(
            "{file}:23:10: connections[0].source: unknown source \"shpo\""
        ))),
        "{stderr}"
    );
    assert!(
        lines.iter().any(
            |l| l.starts_with(&format!("{file}:25:11: connections[0].rules[0]:"))
                && l.contains("\"abc\"")
        ),
        "{stderr}"
    );
}

#[test]
fn check_reports_malformed_toml_and_unknown_keys_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[[sources]]\nname = \"shop\"\nnmae = \"x\"\n", ":13:1: nmae:", "unknown field"),
        ("[[sources]]\nname = \"shop\n", ":12:", "invalid"),
        ("[[connections]]\nname = \"c\"\nsource = \"s\"\ndestination = \"d\"\nrules = [ { type = \"retri\" } ]\n", ":15:", "retri"),
        ("[[connections]]\nname = \"c\"\nsource = \"s\"\ndestination = \"d\"\nrules = [ { type = \"retry\", strategy = \"fibonacci\", count = 1, interval = 1 } ]\n", ":15:", "fibonacci"),
        ("[server]\n", ":11:1:", "duplicate"),
    ];
    for (rest, place, words) in cases {
        let (ok, stderr) = check(dir.path(), rest);
        assert!(!ok, "{rest}");
        let file = dir.path().join("gateway.toml").display().to_string();
        assert!(
            stderr.starts_with(&file) && stderr.contains(place) && stderr.contains(words),
            "case {rest:?}: {stderr}"
        );
    }
}

#[test]
fn check_reports_a_missing_file() {
    let output = Command::new(BINARY)
        .args(["check", "--config", "/nonexistent/gateway.toml"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("/nonexistent/gateway.toml: cannot read")
    );
}

/// Reads the process's log lines until one contains `wanted`; returns it.
fn log_line_with(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    wanted: &str,
) -> String {
    lines
        .map(Result::unwrap)
        .find(|line| line.contains(wanted))
        .unwrap_or_else(|| panic!("the log never said {wanted:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_the_config_file_or_keeps_the_old_one_and_says_why() {
    let sink = Sink::start(Reply::Status(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let shop = shop(&sink);
    let config = write_config(dir.path(), &shop);
    let mut served = serve_logging(&config, "info", Stdio::piped());
    let mut log = BufReader::new(served.child.stderr.take().unwrap()).lines();
    let http = reqwest::Client::new();
    let post = |source: &str| {
        http.post(format!("{}/e/{source}", served.base))
            .body("{}")
            .send()
    };
    assert_eq!(post("billing").await.unwrap().status(), 404);
    let hangup = |pid: u32| {
        let status = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };

    write_config(
        dir.path(),
        &format!("{shop}[[sources]]\nname = \"billing\"\n"),
    );
    hangup(served.child.id());
    tokio::task::block_in_place(|| log_line_with(&mut log, "config reloaded"));
    assert_eq!(post("billing").await.unwrap().status(), 200);

    // A broken file is refused with its line and key; the running config stays.
    write_config(
        dir.path(),
        &format!("{shop}[[sources]]\nname = \"billing\"\nallowed_http_methods = [\"FETCH\"]\n"),
    );
    hangup(served.child.id());
    let refused = tokio::task::block_in_place(|| log_line_with(&mut log, "gateway.toml:"));
    assert!(refused.contains("allowed_http_methods"), "{refused}");
    assert_eq!(post("billing").await.unwrap().status(), 200);
    served.child.kill().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_the_ingress_cannot_parse_leaves_no_credentials_in_the_log() {
    use std::io::{Read, Write};
    let sink = Sink::start(Reply::Status(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &shop(&sink));
    let mut served = serve_logging(&config, "info", Stdio::piped());
    let mut stderr = served.child.stderr.take().unwrap();
    let address = served.base.trim_start_matches("http://").to_string();
    tokio::task::block_in_place(|| {
        let mut client = std::net::TcpStream::connect(&address).unwrap();
        let malformed =
            "POST /e/shop HTTP/1.1\r\nAuthorization: Bearer sekrit-log-token\r\nBad Header\r\n\r\n";
        client.write_all(malformed.as_bytes()).unwrap();
        // The ingress has given up on the request once it closes the connection.
        let mut answer = Vec::new();
        let _ = client.read_to_end(&mut answer);
    });
    served.child.kill().unwrap();
    served.child.wait().unwrap();
    let mut log = String::new();
    stderr.read_to_string(&mut log).unwrap();
    assert!(log.contains("ingress listening"), "the log was read: {log}");
    assert!(!log.contains("sekrit-log-token"), "{log}");
}

/// How long a node of the cluster below holds a lease unrenewed.
const LEASE_MS: u64 = 1500;

/// A cluster node's config on `database`: source `shop` routed to `sink`
/// through a transformation that takes a few milliseconds, so that a node
/// under load acknowledges requests much faster than it routes them (a wide
/// window of requests acknowledged and not yet routed).
fn slow_routing_node(database: &str, sink: &Sink) -> String {
    const SLOW: &str = "addHandler('transform', (request) => { const until = Date.now() + 5; for (let i = 0; i < 1e6 && Date.now() < until; i++) {} return request; });";
    let rules = format!(
        "rules = [ {{ type = \"transform\", transformation = {{ name = \"slow\", code = \"{SLOW}\" }} }} ]"
    );
    format!(
        "[store]\nbackend = \"postgres\"\nurl = \"{database}\"\nlease_ms = {LEASE_MS}\n\n[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), &rules)
    )
}

/// The database of a cluster, as the test reads it.
struct Database(tokio_postgres::Client);

impl Database {
    async fn connect(config: &tokio_postgres::Config) -> Database {
        Database(hookgate::store::test_postgres::client(config).await)
    }

    /// The node holding the lane of the only destination, if any.
    async fn lane_holder(&self) -> Option<String> {
        let rows = self
            .0
            .query(
                "SELECT holder FROM leases WHERE name LIKE 'lane:%' AND expires_at > now()",
                &[],
            )
            .await
            .unwrap();
        rows.first().map(|row| row.get(0))
    }

    /// How many of `node`'s journal records lie past its router's watermark.
    async fn unrouted_in_journal_of(&self, node: &str) -> i64 {
        let key = [b"routed_through/", node.as_bytes()].concat();
        let watermark = self
            .0
            .query_opt(
                "SELECT value FROM keyspace WHERE tree = 'meta' AND key = $1",
                &[&key],
            )
            .await
            .unwrap();
        let routed_through = watermark.map_or(0, |row| {
            let location: Vec<u8> = row.get(0);
            i64::from_be_bytes(location[4..12].try_into().unwrap())
        });
        let row = self
            .0
            .query_one(
                "SELECT count(*) FROM journal WHERE node = $1 AND seq > $2",
                &[&node, &routed_through],
            )
            .await
            .unwrap();
        row.get(0)
    }
}

/// A node's id, as its data directory keeps it.
fn node_id(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("data").join("node-id")).unwrap()
}

/// Polls `done` until it holds: what the processes do to the database
/// signals nothing here that could be awaited.
async fn until_true<F: std::future::Future<Output = bool>>(what: &str, done: impl Fn() -> F) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while !done().await {
        assert!(
            std::time::Instant::now() < deadline,
            "waited in vain until {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Two `hookgate serve` processes on one database under load; `kill -9` of
/// node A, which runs the lane and leads: every request either node
/// acknowledged is delivered, including those A acknowledged and had not
/// routed (routed by B once A is silent), and A's lane resumes on B within
/// about a lease time.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_of_one_of_two_nodes_loses_no_request_either_acknowledged() {
    let settings = hookgate::store::test_postgres::database();
    let database = Database::connect(&settings.config).await;
    let url = hookgate::store::test_postgres::connection_string(&settings.config);
    let sink = Sink::start(Reply::Status(200)).await;
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let config = config_text_with(CLUSTER_SECRETS_KEY, &slow_routing_node(&url, &sink));
    let mut a = serve(&write_config_text(a_dir.path(), &config));
    let a_id = node_id(a_dir.path());
    until_true("node A runs the lane", || async {
        database.lane_holder().await.as_deref() == Some(a_id.as_str())
    })
    .await;
    let mut b = serve(&write_config_text(b_dir.path(), &config));
    let b_id = node_id(b_dir.path());

    let start_load = |base: &str, workers| {
        let (stop, acked) = (
            CancellationToken::new(),
            Arc::new(tokio::sync::Semaphore::new(0)),
        );
        let sending = Sending::requests(base.to_string());
        let load = tokio::spawn(load(sending, workers, stop.clone(), acked.clone()));
        (load, stop, acked)
    };
    let (a_load, a_stop, a_acked) = start_load(&a.base, 8);
    let (b_load, b_stop, b_acked) = start_load(&b.base, 2);
    let enough = tokio::time::timeout(PATIENCE, a_acked.acquire_many(300)).await;
    assert!(enough.is_ok(), "node A acknowledges requests");
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let killed = std::time::Instant::now();
    // Nobody routes A's journal before A has been silent for a lease.
    let tail = database.unrouted_in_journal_of(&a_id).await;
    a_stop.cancel();
    let acked_by_a = a_load.await.unwrap();
    until_true("node B runs A's lane", || async {
        database.lane_holder().await.as_deref() == Some(b_id.as_str())
    })
    .await;
    let moved_after = killed.elapsed();
    let _ = tokio::time::timeout(PATIENCE, b_acked.acquire_many(100)).await;
    b_stop.cancel();
    let acked_by_b = b_load.await.unwrap();

    let acked: HashSet<String> = acked_by_a.union(&acked_by_b).cloned().collect();
    let delivered = delivered_within_patience(&sink, &acked).await;
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    let deliveries = sink.received().len();
    println!(
        "acknowledged: {} by A ({tail} of A's journal unrouted when it was killed), {} by B; {deliveries} deliveries of {} requests: {} duplicates; the lane moved to B {moved_after:?} after the kill",
        acked_by_a.len(),
        acked_by_b.len(),
        delivered.len(),
        deliveries - delivered.len(),
    );
    assert!(tail > 0, "A had acknowledged requests it had not routed");
    let lost: Vec<&String> = acked.difference(&delivered).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged requests never delivered: {lost:?}",
        lost.len(),
        acked.len()
    );
    let lease = std::time::Duration::from_millis(LEASE_MS);
    assert!(
        moved_after < lease * 2,
        "the lane moved {moved_after:?} after the kill, for a lease of {lease:?}"
    );
}

//! Delivery benchmarks: their own load harness (`harness = false`, not
//! criterion), in the style of benches/ingest.rs. Both scenarios run
//! `Gateway::start` in this process on a data dir under `target/tmp` (the
//! project's disk, so fsyncs are real), delivering to a local sink
//! (`support::sink`) that notes when each delivery arrives.
//!
//! 1. **Restart with a big backlog.** A store already holding `--events` queued
//!    events for one destination (limited to `--restart-rate` per second) is
//!    opened by `Gateway::start`. Reported: how long the start takes, how long
//!    until the first delivery reaches the sink (goal: < 2 s), and the
//!    process's RSS before the start, after it, at the first delivery and every
//!    second for `--seconds` of rate-limited delivery. The backlog lives on
//!    disk, so memory should stay flat while ~all of it is still queued.
//!    After the stop, a retention sweep with a cutoff of now: it forgets the
//!    delivered requests and looks at (and keeps) every queued one.
//! 2. **Rate-limit accuracy.** A destination with `rate_limit = --rate` per
//!    second gets `--burst` 1 KiB JSON POSTs through the real ingress from
//!    `--clients` concurrent tasks. Once all are queued (acknowledged and
//!    routed), the sink's arrivals are counted in one-second windows over
//!    `--seconds`, after skipping the first second. Goal: every window within
//!    `--rate` ± 2.
//!
//! The backlog of scenario 1 is written without HTTP (through the ingress it
//! would take minutes) by a child process: this binary run as
//! `--populate CONFIG COUNT`. The sled cache filled while writing then dies
//! with the child, and the RSS measured here is the gateway's alone. For the
//! same reason scenario 1 runs first: its readings start from a process that
//! has run nothing else (the runtimes and the sink are up already, and are in
//! the "before start" reading).
//!
//! ```text
//! cargo bench --bench delivery
//! cargo bench --bench delivery -- --events 20000 --burst 300 --seconds 5
//! HOOKGATE_BENCH_EVENTS=100000 cargo bench --bench delivery
//! ```
//!
//! Settings (argument, else environment variable, else default):
//! `--events` / `HOOKGATE_BENCH_EVENTS` (1000000), `--restart-rate` /
//! `HOOKGATE_BENCH_RESTART_RATE` (1000), `--rate` / `HOOKGATE_BENCH_RATE` (50),
//! `--burst` / `HOOKGATE_BENCH_BURST` (1500), `--clients` /
//! `HOOKGATE_BENCH_CLIENTS` (16), `--seconds` / `HOOKGATE_BENCH_SECONDS` (20),
//! `--cold` / `HOOKGATE_BENCH_COLD=1` (drop the OS page cache before the
//! restart, as after a reboot; needs root), `--crashed` /
//! `HOOKGATE_BENCH_CRASHED=1` (the backlog's writer stops without the
//! checkpoint of a clean stop, as after a crash).

mod support;

use hookgate::ids::{derived_id, named_id, now_ms};
use hookgate::model::{Connection, Event, Payload, Request, Route};
use hookgate::store::{Backlog, CommitLog, Committed, Cutoffs, Journaled, Store, Swept};
use hookgate::{Config, Gateway};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

const BODY_BYTES: usize = 1024;
/// The issue's goal: each one-second window within ± this of the rate limit.
const RATE_TOLERANCE: usize = 2;
/// How long a restart may take to deliver anything before the bench gives up on it.
const FIRST_DELIVERY_TIMEOUT: Duration = Duration::from_secs(120);
/// The first argument that turns this binary into the backlog writer.
const POPULATE: &str = "--populate";
/// Requests per group commit, and requests in flight, while writing the backlog.
const POPULATE_BATCH: usize = 1024;
/// Concurrent writers of the backlog (so that group commits fill up).
const POPULATE_WRITERS: u64 = 512;
/// The source of every bench config: the burst posts to `/e/bench`.
const SOURCE: &str = "bench";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(POPULATE) {
        let [_, config, count, stop] = args.as_slice() else {
            panic!("usage: {POPULATE} CONFIG COUNT clean|crash");
        };
        let clean_stop = match stop.as_str() {
            "clean" => true,
            "crash" => false,
            _ => panic!("usage: {POPULATE} CONFIG COUNT clean|crash"),
        };
        populate(
            Path::new(config),
            count.parse().expect("COUNT is a number"),
            clean_stop,
        );
        return;
    }
    let settings = Settings::from(&args);
    let machine = support::Machine::detect();
    println!("hookgate delivery benchmark");
    println!("machine: {machine}");
    let server_rt = support::runtime("bench-server", machine.cpus.max(1));
    // The sink and the burst's clients: the customer's side, on a runtime of its own.
    let side_rt = support::runtime("bench-side", 1);

    println!(
        "\n[1/2] restart with {} queued events, destination limited to {}/s",
        settings.events, settings.restart_rate
    );
    let restart = run_restart(&server_rt, &side_rt, &settings);
    restart.print();

    println!(
        "\n[2/2] rate-limit accuracy: rate_limit = {}/s, burst of {} from {} clients",
        settings.rate, settings.burst, settings.clients
    );
    let rate = run_rate_limit(&server_rt, &side_rt, &settings);
    rate.print();

    println!("\nload average at the end: {}", support::load_average());
    println!("\nBENCHMARKS.md rows:");
    restart.print_row();
    rate.print_row();
    side_rt.shutdown_timeout(Duration::from_secs(1));
    server_rt.shutdown_timeout(Duration::from_secs(5));
}

// ---------------------------------------------------------------- settings

struct Settings {
    events: u64,
    restart_rate: u32,
    rate: u32,
    burst: usize,
    clients: usize,
    seconds: u64,
    /// Drop the OS page cache between writing the backlog and the start, as
    /// after a reboot (needs root).
    cold: bool,
    /// The backlog's writer skips the checkpoint of a clean stop, as after a
    /// crash: the start replays sled's whole log.
    crashed: bool,
}

impl Settings {
    fn from(args: &[String]) -> Settings {
        let number = |flag, env, default| support::setting(args, flag, env, default);
        Settings {
            events: number("--events", "HOOKGATE_BENCH_EVENTS", 1_000_000.0) as u64,
            restart_rate: number("--restart-rate", "HOOKGATE_BENCH_RESTART_RATE", 1000.0).max(1.0)
                as u32,
            rate: number("--rate", "HOOKGATE_BENCH_RATE", 50.0).max(1.0) as u32,
            burst: number("--burst", "HOOKGATE_BENCH_BURST", 1500.0) as usize,
            clients: number("--clients", "HOOKGATE_BENCH_CLIENTS", 16.0).max(1.0) as usize,
            seconds: number("--seconds", "HOOKGATE_BENCH_SECONDS", 20.0).max(1.0) as u64,
            cold: support::flag(args, "--cold", "HOOKGATE_BENCH_COLD"),
            crashed: support::flag(args, "--crashed", "HOOKGATE_BENCH_CRASHED"),
        }
    }
}

/// This process's memory in MiB: `VmRSS` (resident now) or `VmHWM` (its peak).
fn memory_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    support::kib_field(&status, field) / 1024.0
}

// ---------------------------------------------------------------- sink and gateway

/// The destination: notes when each delivery arrives. Its memory is part of
/// the RSS readings: 16 bytes a delivery, about 0.3 MiB for 20 s at 1000/s.
#[derive(Default)]
struct Sink {
    arrivals: Mutex<Vec<Instant>>,
}

impl Sink {
    fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.arrivals.lock().unwrap().len()
    }

    fn first(&self) -> Option<Instant> {
        self.arrivals.lock().unwrap().first().copied()
    }
}

fn start_sink(rt: &Runtime) -> (SocketAddr, Arc<Sink>) {
    let sink = Arc::new(Sink::default());
    let arrivals = sink.clone();
    let on_request = move |_: &[httparse::Header]| {
        arrivals.arrivals.lock().unwrap().push(Instant::now());
    };
    (support::sink::serve(rt, Arc::new(on_request)), sink)
}

/// gateway.toml in `dir`, the way tests/gateway/common.rs writes them
/// (ephemeral port, data in `data/` beside the file, default backlog checks):
/// source `bench` → destination `sink`, limited to `per_second`.
fn write_config(dir: &Path, sink: SocketAddr, per_second: u32) -> (PathBuf, Config) {
    let text = format!(
        r#"delivery.signing_secret = "bench-signing-secret"
[server]
ingress_listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"
data_dir = "data"
shutdown_timeout_ms = 5000

[[sources]]
name = "{SOURCE}"

[[destinations]]
name = "sink"
url = "http://{sink}/hooks"
rate_limit = {per_second}
rate_limit_period = "second"

[[connections]]
name = "bench-to-sink"
source = "{SOURCE}"
destination = "sink"
"#
    );
    support::save_config(dir, &text)
}

/// Graceful shutdown, bounded so that a stuck gateway cannot hang the bench.
fn stop(rt: &Runtime, gateway: Gateway) {
    let stopped = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), gateway.shutdown()).await
    });
    match stopped {
        Ok(Ok(())) => {}
        Ok(Err(e)) => println!("  warning: gateway shutdown failed: {e:#}"),
        Err(_) => println!("  warning: gateway shutdown took over 30 s"),
    }
}

/// A 1 KiB JSON order numbered `n`, so that no two bodies are alike.
fn json_body(n: u64) -> Vec<u8> {
    let head = format!(
        r#"{{"type":"order.created","id":"ord_{n:016}","data":{{"amount":4200,"currency":"EUR","note":""#
    );
    let tail = r#""}}"#;
    let padding = BODY_BYTES - head.len() - tail.len();
    let body = format!("{head}{}{tail}", "x".repeat(padding));
    debug_assert!(serde_json::from_str::<serde_json::Value>(&body).is_ok());
    body.into_bytes()
}

// ---------------------------------------------------------------- restart

/// The backlog writer (the child process): `count` 1 KiB JSON requests of the
/// config's source, stored as the ingress stores them (through `CommitLog`:
/// the request journal, then the sled index), each queued as an event of the
/// config's only connection, QUEUED and due at once, as the router stores it
/// (`Store::insert_event`, ids `derived_id("evt", request, connection)`,
/// delivering the request's payload, as without a transformation), then the
/// router's watermark. Every delivery reads a different payload from disk.
/// Then, for a `clean_stop`, the checkpoint `Gateway::shutdown` ends with
/// (sled writes a snapshot); without it, `Gateway::start` replays all of
/// sled's log (sled 0.34 snapshots only when it opens a database), as after a
/// crash at the end of a long first run.
fn populate(config: &Path, count: u64, clean_stop: bool) {
    let config = Config::load(config).unwrap_or_else(|e| panic!("bench config is invalid:\n{e}"));
    let connection = config.connections[0].clone();
    let store = Store::open(&config.server.data_dir, config.limits.store_cache_bytes)
        .expect("open the store");
    let (to_router, committed) = std::sync::mpsc::sync_channel(POPULATE_BATCH);
    let (commit, writer) = CommitLog::start(
        store.clone(),
        POPULATE_BATCH,
        POPULATE_BATCH,
        to_router,
        Backlog::new(u64::MAX),
        Box::new(|_, _| {}),
    );
    let router = {
        let store = store.clone();
        std::thread::spawn(move || queue_each(&store, &connection, committed))
    };
    let runtime = support::runtime("populate", 2);
    runtime.block_on(async {
        let writers: Vec<_> = (0..POPULATE_WRITERS)
            .map(|writer| {
                let commit = commit.clone();
                let numbers = (writer..count).step_by(POPULATE_WRITERS as usize);
                tokio::spawn(async move {
                    for n in numbers {
                        let payload = order_payload(n);
                        let request =
                            Request::received(Some(&named_id("src", SOURCE)), SOURCE, &payload);
                        commit.commit(request, payload).await.expect("commit");
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.expect("writer task");
        }
        commit.close().await;
    });
    writer.join().expect("commit thread");
    router.join().expect("router thread");
    store.flush().expect("flush the store");
    if clean_stop {
        // What `Gateway::shutdown` does last.
        let checkpointed = store.checkpoint().expect("checkpoint the store");
        assert!(checkpointed, "the backlog writer still holds the store");
    }
}

/// The router's part, without rules: an event per request, due now, with the
/// request's payload; then the router's watermark, as after a clean stop.
fn queue_each(store: &Store, connection: &Connection, committed: Receiver<Journaled>) {
    let mut routed_through = None;
    for journaled in committed {
        let Journaled::Request(Committed {
            request, location, ..
        }) = journaled
        else {
            panic!("only requests are journaled here");
        };
        let id = derived_id("evt", &request.id, &connection.id);
        let due = now_ms();
        let event = Event::new(id, &request.id, Route::from(connection), due, false);
        store.insert_event(&event, None, due).expect("insert event");
        routed_through = Some(location);
    }
    if let Some(location) = routed_through {
        store
            .set_routed_through(location)
            .expect("record the watermark");
    }
}

/// What the ingress would have stored for a POST of `json_body(n)`.
fn order_payload(n: u64) -> Payload {
    Payload {
        method: "POST".into(),
        path: String::new(),
        query: String::new(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("user-agent".into(), "hookgate-bench".into()),
        ],
        body: json_body(n),
    }
}

/// Runs the backlog writer as a child process; returns its wall time
/// (process start, sled open, writes, flush, close and, after a clean stop,
/// the checkpoint).
fn populate_in_child(config: &Path, count: u64, crashed: bool) -> Duration {
    let started = Instant::now();
    let status = Command::new(std::env::current_exe().expect("the bench binary"))
        .arg(POPULATE)
        .arg(config)
        .arg(count.to_string())
        .arg(if crashed { "crash" } else { "clean" })
        .status()
        .expect("run the backlog writer");
    assert!(status.success(), "the backlog writer failed: {status}");
    started.elapsed()
}

/// Writes dirty pages out, then empties the OS page cache (root only).
fn drop_page_cache() -> std::io::Result<()> {
    Command::new("sync").status()?;
    std::fs::write("/proc/sys/vm/drop_caches", "1\n")
}

struct RestartReport {
    events: u64,
    rate: u32,
    populate_time: Duration,
    disk_bytes: u64,
    start_time: Duration,
    /// From calling `Gateway::start` to the sink's first delivery.
    first_delivery: Option<Duration>,
    rss_before: f64,
    rss_started: f64,
    rss_first: f64,
    /// One reading per second of delivery after the first one.
    rss_each_second: Vec<f64>,
    /// VmHWM after the measurement: nothing else ran in this process before.
    rss_peak: f64,
    /// Deliveries during the seconds sampled.
    delivered: usize,
    delivered_total: usize,
    /// CPU this process (gateway and sink) used during those seconds.
    cpu: support::CpuSplit,
    /// A retention sweep of everything afterwards, and how long it took.
    sweep: (Swept, Duration),
}

fn run_restart(server_rt: &Runtime, side_rt: &Runtime, settings: &Settings) -> RestartReport {
    let (sink_addr, sink) = start_sink(side_rt);
    let dir = support::bench_dir();
    let (path, config) = write_config(dir.path(), sink_addr, settings.restart_rate);
    println!("  data dir: {}", config.server.data_dir.display());
    let populate_time = populate_in_child(&path, settings.events, settings.crashed);
    if settings.crashed {
        println!("  the backlog's writer stopped without a checkpoint, as after a crash");
    }
    let disk_bytes = support::disk_usage(&config.server.data_dir);
    if settings.cold {
        match drop_page_cache() {
            Ok(()) => println!("  page cache dropped: the start reads the store from disk"),
            Err(e) => println!("  warning: could not drop the page cache ({e}); the start is warm"),
        }
    }
    let rss_before = memory_mib("VmRSS");
    let called = Instant::now();
    let gateway = server_rt
        .block_on(Gateway::start(&config))
        .expect("hookgate starts");
    let start_time = called.elapsed();
    let rss_started = memory_mib("VmRSS");
    let first = wait_for_first(&sink, called + FIRST_DELIVERY_TIMEOUT);
    let rss_first = memory_mib("VmRSS");
    let delivered_before = sink.count();
    let cpu_before = support::CpuReading::now();
    let rss_each_second = rss_every_second(settings.seconds);
    let delivered = sink.count() - delivered_before;
    let cpu = support::CpuSplit::since(&cpu_before);
    let rss_peak = memory_mib("VmHWM");
    stop(server_rt, gateway);
    let sweep = sweep_everything(&config);
    RestartReport {
        events: settings.events,
        rate: settings.restart_rate,
        populate_time,
        disk_bytes,
        start_time,
        first_delivery: first.map(|at| at - called),
        rss_before,
        rss_started,
        rss_first,
        rss_each_second,
        rss_peak,
        delivered,
        delivered_total: sink.count(),
        cpu,
        sweep,
    }
}

/// A retention sweep of the stopped gateway's store with a cutoff of now: the
/// delivered requests go; the backlog's are each looked at, and kept.
fn sweep_everything(config: &Config) -> (Swept, Duration) {
    let limits = &config.limits;
    let store = Store::open_with(
        &config.server.data_dir,
        limits.store_cache_bytes,
        limits.journal_segment_bytes,
    )
    .expect("open the store");
    let started = Instant::now();
    let swept = store
        .sweep(Cutoffs::all_before(now_ms() + 1), &AtomicBool::new(false))
        .expect("retention sweep");
    (swept, started.elapsed())
}

/// Polls for the sink's first delivery; None if nothing came by `deadline`.
fn wait_for_first(sink: &Sink, deadline: Instant) -> Option<Instant> {
    loop {
        if let Some(first) = sink.first() {
            return Some(first);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// VmRSS once a second for `seconds` seconds.
fn rss_every_second(seconds: u64) -> Vec<f64> {
    let started = Instant::now();
    (1..=seconds)
        .map(|s| {
            let at = started + Duration::from_secs(s);
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            memory_mib("VmRSS")
        })
        .collect()
}

impl RestartReport {
    fn rss_last(&self) -> f64 {
        self.rss_each_second.last().copied().unwrap_or(f64::NAN)
    }

    fn first_delivery_text(&self) -> String {
        self.first_delivery.map_or(
            format!("none within {} s", FIRST_DELIVERY_TIMEOUT.as_secs()),
            |d| format!("{:.2} s", d.as_secs_f64()),
        )
    }

    fn print(&self) {
        let gib = self.disk_bytes as f64 / f64::from(1 << 30);
        println!(
            "  backlog written in {:.1} s by the child process ({:.0} events/s); data dir {gib:.2} GiB on disk",
            self.populate_time.as_secs_f64(),
            self.events as f64 / self.populate_time.as_secs_f64(),
        );
        println!("  Gateway::start: {:.2} s", self.start_time.as_secs_f64());
        println!(
            "  first delivery: {} after calling Gateway::start (goal < 2 s)",
            self.first_delivery_text()
        );
        println!(
            "  RSS (MiB): before start {:.1} | after start {:.1} | first delivery {:.1} | after {} s of delivery {:.1} | peak (VmHWM) {:.1}",
            self.rss_before,
            self.rss_started,
            self.rss_first,
            self.rss_each_second.len(),
            self.rss_last(),
            self.rss_peak,
        );
        let series: Vec<String> = self
            .rss_each_second
            .iter()
            .map(|m| format!("{m:.1}"))
            .collect();
        println!("  RSS each second of delivery (MiB): {}", series.join(" "));
        println!(
            "  delivered: {} in those {} s ({:.0}/s, limit {}/s); backlog left ≈ {} of {}",
            self.delivered,
            self.rss_each_second.len(),
            self.delivered as f64 / self.rss_each_second.len() as f64,
            self.rate,
            self.events.saturating_sub(self.delivered_total as u64),
            self.events,
        );
        println!(
            "  CPU per delivery: {} (this process, gateway and sink, user + system; by thread)",
            self.cpu.per(self.delivered as u64)
        );
        let (swept, took) = &self.sweep;
        println!(
            "  retention sweep after the stop (cutoff: now): {} requests looked at in {:.2} s ({:.0}/s); forgot {} requests, {} events, {} journal segments; kept the rest (still queued)",
            self.events,
            took.as_secs_f64(),
            self.events as f64 / took.as_secs_f64(),
            swept.requests,
            swept.events,
            swept.journal_segments,
        );
    }

    fn print_row(&self) {
        println!("| queued events | write time | data dir | Gateway::start | first delivery | RSS before | after start | at first delivery | after {} s | peak | delivered/s |", self.rss_each_second.len());
        println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        println!(
            "| {} | {:.1} s | {:.2} GiB | {:.2} s | {} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.0} |",
            self.events,
            self.populate_time.as_secs_f64(),
            self.disk_bytes as f64 / f64::from(1 << 30),
            self.start_time.as_secs_f64(),
            self.first_delivery_text(),
            self.rss_before,
            self.rss_started,
            self.rss_first,
            self.rss_last(),
            self.rss_peak,
            self.delivered as f64 / self.rss_each_second.len() as f64,
        );
    }
}

// ---------------------------------------------------------------- rate limit

/// What the burst's clients got back.
#[derive(Default)]
struct Tally {
    ok: usize,
    failed: usize,
    first_error: Option<String>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.first_error = self.first_error.take().or(other.first_error);
    }
}

struct RateReport {
    limit: u32,
    burst: Tally,
    burst_time: Duration,
    /// From the first POST until every accepted request was routed (queued).
    queued_after: Duration,
    /// Deliveries in each one-second window.
    counts: Vec<usize>,
    /// Accepted events not yet delivered when the last window closed.
    backlog_left: usize,
}

fn run_rate_limit(server_rt: &Runtime, side_rt: &Runtime, settings: &Settings) -> RateReport {
    let (sink_addr, sink) = start_sink(side_rt);
    let dir = support::bench_dir();
    let (_, config) = write_config(dir.path(), sink_addr, settings.rate);
    let gateway = server_rt
        .block_on(Gateway::start(&config))
        .expect("hookgate starts");
    let url = format!("http://{}/e/{SOURCE}", gateway.ingress_addr);
    let started = Instant::now();
    let burst = side_rt.block_on(post_burst(url, settings.burst, settings.clients));
    let burst_time = started.elapsed();
    wait_until_routed(&gateway.store);
    let queued = Instant::now();
    // The lane may still be taking the burst's tail from the router during
    // the first second: measure from the next one.
    let from = queued + Duration::from_secs(1);
    let until = from + Duration::from_secs(settings.seconds);
    // A delivery sent just before `until` has landed by then.
    std::thread::sleep((until + Duration::from_millis(200)).saturating_duration_since(queued));
    let arrivals = sink.arrivals();
    stop(server_rt, gateway);
    let delivered_by_end = arrivals.iter().filter(|&&at| at < until).count();
    RateReport {
        limit: settings.rate,
        backlog_left: burst.ok.saturating_sub(delivered_by_end),
        burst,
        burst_time,
        queued_after: queued - started,
        counts: per_second(&arrivals, from, settings.seconds),
    }
}

/// Posts `count` 1 KiB JSON bodies to `url` from `clients` concurrent tasks.
async fn post_burst(url: String, count: usize, clients: usize) -> Tally {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client");
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            tokio::spawn(post_until_done(
                client.clone(),
                url.clone(),
                next.clone(),
                count,
            ))
        })
        .collect();
    let mut tally = Tally::default();
    for task in tasks {
        tally.add(task.await.expect("client task"));
    }
    tally
}

/// One client: sends the next request of the burst until all `count` are sent.
async fn post_until_done(
    client: reqwest::Client,
    url: String,
    next: Arc<AtomicUsize>,
    count: usize,
) -> Tally {
    let mut tally = Tally::default();
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= count {
            return tally;
        }
        let sent = client
            .post(&url)
            .header("content-type", "application/json")
            .body(json_body(n as u64))
            .send()
            .await;
        match sent.map(|response| response.status()) {
            Ok(status) if status == reqwest::StatusCode::OK => tally.ok += 1,
            outcome => {
                tally.failed += 1;
                tally.first_error.get_or_insert(format!("{outcome:?}"));
            }
        }
    }
}

/// Waits until the router has queued every acknowledged request.
fn wait_until_routed(store: &Store) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !store.unrouted_requests().expect("read unrouted").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the burst was not routed in 60 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Arrivals in each of `seconds` one-second windows starting at `from`.
fn per_second(arrivals: &[Instant], from: Instant, seconds: u64) -> Vec<usize> {
    let mut counts = vec![0; seconds as usize];
    for at in arrivals
        .iter()
        .filter_map(|at| at.checked_duration_since(from))
    {
        if let Some(count) = counts.get_mut(at.as_secs() as usize) {
            *count += 1;
        }
    }
    counts
}

impl RateReport {
    /// The window counts in order; `[len / 2]` is the (upper) median.
    fn sorted(&self) -> Vec<usize> {
        let mut sorted = self.counts.clone();
        sorted.sort_unstable();
        sorted
    }

    fn delivered(&self) -> usize {
        self.counts.iter().sum()
    }

    fn mean(&self) -> f64 {
        self.delivered() as f64 / self.counts.len() as f64
    }

    fn outside(&self) -> usize {
        let limit = self.limit as usize;
        let off = |count: &&usize| count.abs_diff(limit) > RATE_TOLERANCE;
        self.counts.iter().filter(off).count()
    }

    fn print(&self) {
        println!(
            "  burst: {} x 200, {} failed{} in {:.2} s; all queued {:.2} s after the first POST",
            self.burst.ok,
            self.burst.failed,
            self.burst
                .first_error
                .as_ref()
                .map_or(String::new(), |e| format!(" (first: {e})")),
            self.burst_time.as_secs_f64(),
            self.queued_after.as_secs_f64(),
        );
        let sorted = self.sorted();
        println!(
            "  deliveries per second over {} windows (the first second after queueing skipped): min {}  median {}  max {}",
            sorted.len(),
            sorted[0],
            sorted[sorted.len() / 2],
            sorted[sorted.len() - 1],
        );
        println!("  each window: {:?}", self.counts);
        println!(
            "  mean rate: {:.2}/s ({} deliveries); windows outside {} ± {RATE_TOLERANCE}: {}",
            self.mean(),
            self.delivered(),
            self.limit,
            self.outside(),
        );
        match self.backlog_left {
            0 => println!("  WARNING: the backlog ran out before the last window: raise --burst"),
            left => println!("  backlog left when the last window closed: {left} events"),
        }
    }

    fn print_row(&self) {
        println!("\n| rate_limit | windows | min | median | max | mean/s | outside ± {RATE_TOLERANCE} | deliveries |");
        println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        let sorted = self.sorted();
        println!(
            "| {}/s | {} | {} | {} | {} | {:.2} | {} | {} |",
            self.limit,
            sorted.len(),
            sorted[0],
            sorted[sorted.len() / 2],
            sorted[sorted.len() - 1],
            self.mean(),
            self.outside(),
            self.delivered(),
        );
    }
}

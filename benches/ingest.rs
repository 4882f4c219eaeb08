//! Ingest load benchmark: its own load harness (`harness = false`), not criterion.
//!
//! One invocation measures, on the same machine and with the same load:
//! 1. the ceiling, a bare pingora `ServeHttp` server answering 200 (with
//!    Content-Length) to every request, started the way the gateway starts its
//!    ingress;
//! 2. hookgate's ingest with durability on (`Gateway::start`, one source
//!    `bench` routed to a local sink, every 200 sent only after fsync), then the
//!    drain: how long until the sink has every acknowledged request.
//!
//! Load: 1 KiB JSON POSTs over N keep-alive HTTP/1.1 connections, one task per
//! connection sending back to back, on a tokio runtime of its own (the servers
//! run on another), through a lean client of its own (`support/load.rs`, shared with the cluster bench). Only
//! 200s count; everything else is an error.
//!
//! ```text
//! cargo bench --bench ingest
//! cargo bench --bench ingest -- --connections 128 --seconds 20
//! HOOKGATE_BENCH_CONNECTIONS=32 HOOKGATE_BENCH_SECONDS=5 cargo bench --bench ingest
//! ```
//!
//! Settings (argument, else environment variable, else default):
//! `--connections` / `HOOKGATE_BENCH_CONNECTIONS` (64), `--seconds` /
//! `HOOKGATE_BENCH_SECONDS` (10, measured after the warm-up), `--warmup` /
//! `HOOKGATE_BENCH_WARMUP_SECONDS` (2), `--drain-timeout` /
//! `HOOKGATE_BENCH_DRAIN_SECONDS` (120), `--server-threads` /
//! `HOOKGATE_BENCH_SERVER_THREADS` and `--client-threads` /
//! `HOOKGATE_BENCH_CLIENT_THREADS` (both default to the number of CPUs).
//!
//! `--rules` / `HOOKGATE_BENCH_RULES=1` puts a filter and a retry rule on the
//! connection (the end-to-end setup: `--rules --seconds 60`).
//! `--cache-mib N` / `HOOKGATE_BENCH_CACHE_MIB` sets `limits.store_cache_bytes`
//! (sled's page cache; default: the gateway's default).
//!
//! `--jobs` / `HOOKGATE_BENCH_JOBS=1` compares the two ways in instead: the
//! ingress (`/e/bench`, its source fanned out by `--fan-out N` /
//! `HOOKGATE_BENCH_FAN_OUT` connections, default 1, to N destinations on the
//! sink) and `POST /v1/webhook-jobs` (an application whose N endpoints on the
//! same sink subscribe), each on a fresh gateway, with the same load, and
//! prints the jobs API's ratios to the ingress (issue 18's goals:
//! `--jobs --connections 32`).
//!
//! `--metrics-ab` / `HOOKGATE_BENCH_METRICS_AB=1` measures what collecting
//! Prometheus metrics costs ingest: the same load on fresh gateways with
//! metrics (A) and with `server.metrics_listen = ""` (B, nothing counted), in
//! the order A B B A, and prints the throughput ratio (issue 20: at most 2 %
//! less; `--metrics-ab --seconds 5`).
//!
//! `--requests N` / `HOOKGATE_BENCH_REQUESTS` is a fixed workload instead,
//! for instruction counts under valgrind (deterministic where throughput on
//! a shared machine is not): N requests one at a time on one connection (each
//! journal batch holds one) to one fresh gateway, then the drain (with
//! `--jobs`: N jobs to the jobs API, `--fan-out` endpoints each); with
//! `--metrics-off` / `HOOKGATE_BENCH_METRICS_OFF=1` its `metrics_listen` is
//! `""`. Two runs of different N give the instructions per request (start-up
//! and shutdown cancel out); see BENCHMARKS.md, "Metrics: on against off".
//!
//! Diagnostics: `--no-connection` / `HOOKGATE_BENCH_NO_CONNECTION=1` gives the
//! source no connection, so hookgate only stores what it acknowledges (no
//! events, no delivery, no drain): ingest + group commit alone.

#[path = "support/drain.rs"]
mod drain;
#[path = "support/load.rs"]
mod load;
mod support;

use drain::{start_sink, wait_for_drain, DrainReport};
use load::{format_latency, LoadReport};

use async_trait::async_trait;
use hookgate::{Config, Gateway};
use http::{header, Response};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use pingora::server::{Fds, ListenFds};
use pingora::services::listening::Service as ListeningService;
use pingora::services::Service;
use std::net::SocketAddr;
use std::os::fd::IntoRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::sync::watch;

const BODY_BYTES: usize = 1024;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let settings = Settings::from(&args);
    let machine = support::Machine::detect();
    println!("hookgate ingest benchmark");
    println!("machine: {machine}");
    println!(
        "load: {} connections, {} KiB JSON POSTs, {} s warm-up + {} s measured; server runtime {} threads, load runtime {} threads",
        settings.plan.connections,
        BODY_BYTES / 1024,
        settings.plan.warmup.as_secs_f64(),
        settings.plan.measured.as_secs_f64(),
        settings.server_threads,
        settings.client_threads,
    );
    let server_rt = support::runtime("bench-server", settings.server_threads);
    let load_rt = support::runtime("bench-load", settings.client_threads);
    let body = load::json_body(BODY_BYTES);
    if let Some(requests) = settings.plan.requests {
        let (way_in, run): (_, Phase) = match settings.jobs {
            true => ("POST /v1/webhook-jobs", run_jobs),
            false => ("ingest", run_hookgate),
        };
        println!("\nhookgate {way_in}, {requests} requests one at a time");
        let (load, drain) = run(&server_rt, &load_rt, &settings, &body);
        load.print();
        drain.iter().for_each(DrainReport::print);
        load_rt.shutdown_timeout(Duration::from_secs(5));
        server_rt.shutdown_timeout(Duration::from_secs(5));
        return;
    }
    if settings.jobs || settings.metrics_ab {
        match settings.jobs {
            true => compare_jobs_with_ingress(&server_rt, &load_rt, &settings, &body),
            false => compare_metrics_on_and_off(&server_rt, &load_rt, &settings, &body),
        }
        load_rt.shutdown_timeout(Duration::from_secs(5));
        server_rt.shutdown_timeout(Duration::from_secs(5));
        return;
    }

    println!("\n[1/2] bare pingora ServeHttp (200 + Content-Length)");
    let bare = run_bare(&server_rt, &load_rt, &settings, &body);
    bare.print();

    let setup = match (settings.no_connection, settings.rules) {
        (true, _) => "1 source, no connection (store only)",
        (false, false) => "1 source -> 1 sink",
        (false, true) => "1 source -> 1 sink, filter + retry rules",
    };
    let cache = match settings.cache_mib {
        Some(mib) => format!("sled cache {mib} MiB"),
        None => "default sled cache".to_string(),
    };
    println!("\n[2/2] hookgate ingest, durable (fsync before 200), {setup}, {cache}");
    let (hookgate, drain) = run_hookgate(&server_rt, &load_rt, &settings, &body);
    hookgate.print();
    if let Some(drain) = &drain {
        drain.print();
    }

    let ratio = hookgate.requests_per_second() / bare.requests_per_second().max(f64::MIN_POSITIVE);
    println!("\nhookgate / bare: {:.1} % of the ceiling", ratio * 100.0);
    println!("\nBENCHMARKS.md rows:");
    let hookgate_label = if settings.no_connection {
        "hookgate ingest, no connection"
    } else {
        "hookgate ingest"
    };
    println!("| machine | connections | bare pingora req/s | bare p99 | {hookgate_label} req/s | hookgate p99 | hookgate/bare | drain delivered/s |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    println!(
        "| {} CPUs, {} | {} | {:.0} | {} | {:.0} | {} | {:.2} | {} |",
        machine.cpus,
        machine.cpu_model,
        settings.plan.connections,
        bare.requests_per_second(),
        format_latency(bare.percentile(0.99)),
        hookgate.requests_per_second(),
        format_latency(hookgate.percentile(0.99)),
        ratio,
        drain
            .as_ref()
            .and_then(DrainReport::events_per_second)
            .map_or("n/a".to_string(), |rate| format!("{rate:.0}")),
    );

    load_rt.shutdown_timeout(Duration::from_secs(5));
    server_rt.shutdown_timeout(Duration::from_secs(5));
}

// ---------------------------------------------------------------- jobs

/// The management API key of the benches' gateways.
const API_KEY: &str = "bench-api-key";

/// Issue 18's goals for the jobs API, against the ingress in the same run.
const JOBS_MIN_RATE_RATIO: f64 = 0.8;
const JOBS_MAX_CPU_RATIO: f64 = 1.5;
const JOBS_MAX_P99: Duration = Duration::from_millis(15);

/// The ingress and the jobs API, each fanning out to `fan_out` endpoints of
/// one sink, under the same load; prints both and the ratios.
fn compare_jobs_with_ingress(
    server_rt: &Runtime,
    load_rt: &Runtime,
    settings: &Settings,
    body: &[u8],
) {
    let n = settings.fan_out;
    println!("\n[1/2] hookgate ingress, durable, 1 source -> {n} destination(s) on one sink");
    let (ingress, ingress_drain) = run_hookgate(server_rt, load_rt, settings, body);
    ingress.print();
    ingress_drain.iter().for_each(DrainReport::print);

    println!("\n[2/2] hookgate POST /v1/webhook-jobs, durable, 1 application -> {n} endpoint(s) on the same sink");
    let (jobs, jobs_drain) = run_jobs(server_rt, load_rt, settings, body);
    jobs.print();
    jobs_drain.iter().for_each(DrainReport::print);

    let rate_ratio =
        jobs.requests_per_second() / ingress.requests_per_second().max(f64::MIN_POSITIVE);
    let cpu = |drain: &Option<DrainReport>| drain.as_ref().and_then(DrainReport::cpu_per_event);
    let cpu_ratio = cpu(&jobs_drain)
        .zip(cpu(&ingress_drain))
        .map(|(jobs, ingress)| jobs / ingress);
    let p99 = jobs.percentile(0.99);
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    println!(
        "\njobs API / ingress (fan-out {n}, {} connections):",
        settings.plan.connections
    );
    println!(
        "  accepted req/s: {:.2}x (goal >= {JOBS_MIN_RATE_RATIO}x: {})",
        rate_ratio,
        verdict(rate_ratio >= JOBS_MIN_RATE_RATIO)
    );
    match cpu_ratio {
        Some(ratio) => println!(
            "  CPU per delivered event: {ratio:.2}x (goal <= {JOBS_MAX_CPU_RATIO}x: {})",
            verdict(ratio <= JOBS_MAX_CPU_RATIO)
        ),
        None => println!("  CPU per delivered event: n/a (no drain)"),
    }
    println!(
        "  jobs API p99: {} (goal <= {} ms: {})",
        format_latency(p99),
        JOBS_MAX_P99.as_millis(),
        verdict(p99.is_some_and(|p99| p99 <= JOBS_MAX_P99))
    );
}

/// A fresh gateway under jobs of `body` as their payload, for an application
/// whose `--fan-out` endpoints are on the sink.
fn run_jobs(
    server_rt: &Runtime,
    load_rt: &Runtime,
    settings: &Settings,
    body: &[u8],
) -> (LoadReport, Option<DrainReport>) {
    let payload = std::str::from_utf8(body).expect("a JSON body");
    let way_in = |gateway: &Gateway, sink: SocketAddr| {
        let api = gateway.api_addr.expect("the API listens");
        let app = server_rt.block_on(application_with_endpoints(api, sink, settings.fan_out));
        let job = format!(
            r#"{{"application_id":"{app}","event_type":"order.created","payload":{payload}}}"#
        );
        let auth = format!("authorization: Bearer {API_KEY}\r\n");
        (
            api,
            load::json_post(api, "/v1/webhook-jobs", &auth, job.as_bytes()),
        )
    };
    run_gateway(server_rt, load_rt, settings, WayIn::Jobs, way_in)
}

/// Creates an application with `endpoints` endpoints on the sink (every
/// event type); returns its id.
async fn application_with_endpoints(api: SocketAddr, sink: SocketAddr, endpoints: usize) -> String {
    let client = reqwest::Client::new();
    let create = |path: &'static str, body: serde_json::Value| {
        let sent = client
            .post(format!("http://{api}{path}"))
            .bearer_auth(API_KEY)
            .json(&body)
            .send();
        async move {
            let answer: serde_json::Value =
                sent.await.expect("API call").json().await.expect("JSON");
            answer["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{path}: {answer}"))
                .to_string()
        }
    };
    let app = create("/v1/applications", serde_json::json!({ "name": "bench" })).await;
    for n in 0..endpoints {
        let url = format!("http://{sink}/hooks/{n}");
        create(
            "/v1/endpoints",
            serde_json::json!({ "application_id": app, "url": url }),
        )
        .await;
    }
    app
}

// ---------------------------------------------------------------- metrics A/B

/// Issue 20's bound: collecting metrics costs at most this share of ingest.
const METRICS_MAX_COST: f64 = 0.02;

/// The same load on fresh gateways with metrics collected and without, in
/// the order on, off, off, on, so that a drift over the run (the disk, the
/// page cache, a neighbour) weighs on both alike; prints what collecting costs.
fn compare_metrics_on_and_off(
    server_rt: &Runtime,
    load_rt: &Runtime,
    settings: &Settings,
    body: &[u8],
) {
    // Per side: requests per second, and CPU µs per acknowledged request.
    let mut on = Vec::new();
    let mut off = Vec::new();
    for (round, collecting) in [true, false, false, true].into_iter().enumerate() {
        let side = if collecting { "on" } else { "off" };
        println!("\n[{}/4] hookgate ingest, metrics {side}", round + 1);
        let settings = Settings {
            metrics: collecting,
            ..settings.clone()
        };
        let (load, drain) = run_hookgate(server_rt, load_rt, &settings, body);
        load.print();
        drain.iter().for_each(DrainReport::print);
        let cpu = load.cpu.process_micros() / load.acknowledged.max(1) as f64;
        let runs = if collecting { &mut on } else { &mut off };
        runs.push((load.requests_per_second(), cpu));
    }
    let mean = |runs: &[(f64, f64)], pick: fn(&(f64, f64)) -> f64| {
        runs.iter().map(pick).sum::<f64>() / runs.len() as f64
    };
    let (rate_on, rate_off) = (mean(&on, |r| r.0), mean(&off, |r| r.0));
    let (cpu_on, cpu_off) = (mean(&on, |r| r.1), mean(&off, |r| r.1));
    let cost = 1.0 - rate_on / rate_off.max(f64::MIN_POSITIVE);
    let met = if cost <= METRICS_MAX_COST {
        "met"
    } else {
        "NOT met"
    };
    println!(
        "\nmetrics on / off ({} connections):",
        settings.plan.connections
    );
    println!("  req/s: {rate_on:.0} / {rate_off:.0} = {:.3}; collecting costs {:.1} % (goal <= {:.0} %: {met})",
        rate_on / rate_off.max(f64::MIN_POSITIVE),
        cost * 100.0,
        METRICS_MAX_COST * 100.0
    );
    println!(
        "  CPU per acknowledged request (whole process, load client included): {cpu_on:.1} / {cpu_off:.1} µs = {:.3}",
        cpu_on / cpu_off.max(f64::MIN_POSITIVE)
    );
}

// ---------------------------------------------------------------- settings

#[derive(Clone)]
struct Settings {
    /// Connections, warm-up, measured seconds or a fixed count of requests.
    plan: load::Plan,
    drain_timeout: Duration,
    server_threads: usize,
    client_threads: usize,
    no_connection: bool,
    /// Filter + retry rules on the connection (the end-to-end goal's setup).
    rules: bool,
    /// sled's page cache, when not the gateway's default.
    cache_mib: Option<u64>,
    /// Ingress against the jobs API instead of bare pingora against the ingress.
    jobs: bool,
    /// Destinations (or endpoints) each request (or job) goes to.
    fan_out: usize,
    /// Metrics collected with and without, instead of bare pingora against the ingress.
    metrics_ab: bool,
    /// Whether the gateway collects metrics (`server.metrics_listen` on).
    metrics: bool,
}

impl Settings {
    fn from(args: &[String]) -> Settings {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get()) as f64;
        let number = |flag, env, default| support::setting(args, flag, env, default);
        Settings {
            plan: load::Plan::from(
                args,
                &load::Plan {
                    connections: 64,
                    warmup: load::seconds(2.0),
                    measured: load::seconds(10.0),
                    requests: None,
                },
            ),
            drain_timeout: load::seconds(number(
                "--drain-timeout",
                "HOOKGATE_BENCH_DRAIN_SECONDS",
                120.0,
            )),
            server_threads: number("--server-threads", "HOOKGATE_BENCH_SERVER_THREADS", cpus)
                .max(1.0) as usize,
            client_threads: number("--client-threads", "HOOKGATE_BENCH_CLIENT_THREADS", cpus)
                .max(1.0) as usize,
            no_connection: support::flag(args, "--no-connection", "HOOKGATE_BENCH_NO_CONNECTION"),
            rules: support::flag(args, "--rules", "HOOKGATE_BENCH_RULES"),
            cache_mib: Some(number("--cache-mib", "HOOKGATE_BENCH_CACHE_MIB", 0.0) as u64)
                .filter(|mib| *mib > 0),
            jobs: support::flag(args, "--jobs", "HOOKGATE_BENCH_JOBS"),
            fan_out: number("--fan-out", "HOOKGATE_BENCH_FAN_OUT", 1.0).max(1.0) as usize,
            metrics_ab: support::flag(args, "--metrics-ab", "HOOKGATE_BENCH_METRICS_AB"),
            metrics: !support::flag(args, "--metrics-off", "HOOKGATE_BENCH_METRICS_OFF"),
        }
    }
}

// ---------------------------------------------------------------- servers

/// The ceiling: reads the body, answers 200 with a small body and Content-Length.
struct Bare;

#[async_trait]
impl ServeHttp for Bare {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        while let Ok(Some(_)) = session.read_request_body().await {}
        let body = br#"{"status":"SUCCESS"}"#.to_vec();
        Response::builder()
            .status(200)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, body.len())
            .body(body)
            .expect("static response")
    }
}

/// Starts a pingora `ServeHttp` service on 127.0.0.1:0 the way the gateway
/// starts its ingress: our own listener, handed over through `Fds`.
fn start_pingora<A>(
    app: A,
    stop: watch::Receiver<bool>,
) -> (SocketAddr, tokio::task::JoinHandle<()>)
where
    A: ServeHttp + Send + Sync + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("local addr");
    let mut fds = Fds::new();
    fds.add(addr.to_string(), listener.into_raw_fd());
    let fds: ListenFds = Arc::new(tokio::sync::Mutex::new(fds));
    let mut service = ListeningService::new("bench bare pingora".to_string(), app);
    service.add_tcp(&addr.to_string());
    let task = tokio::spawn(async move {
        service.start_service(Some(fds), stop, 1).await;
    });
    (addr, task)
}

// ---------------------------------------------------------------- phases

fn run_bare(
    server_rt: &Runtime,
    load_rt: &Runtime,
    settings: &Settings,
    body: &[u8],
) -> LoadReport {
    let (stop, stopped) = watch::channel(false);
    let (addr, task) = server_rt.block_on(async { start_pingora(Bare, stopped) });
    let request = load::json_post(addr, "/e/bench", "", body);
    let report = load::run(load_rt, &settings.plan, &[(addr, request)]);
    let _ = stop.send(true);
    task.abort();
    report
}

/// One gateway's phase: the load, then the drain.
type Phase = fn(&Runtime, &Runtime, &Settings, &[u8]) -> (LoadReport, Option<DrainReport>);

fn run_hookgate(
    server_rt: &Runtime,
    load_rt: &Runtime,
    settings: &Settings,
    body: &[u8],
) -> (LoadReport, Option<DrainReport>) {
    let way_in = |gateway: &Gateway, _: SocketAddr| {
        let addr = gateway.ingress_addr;
        (addr, load::json_post(addr, "/e/bench", "", body))
    };
    run_gateway(server_rt, load_rt, settings, WayIn::Ingress, way_in)
}

/// How the load reaches the gateway.
#[derive(Clone, Copy, PartialEq)]
enum WayIn {
    /// `/e/bench`, routed to `fan_out` destinations.
    Ingress,
    /// `POST /v1/webhook-jobs` for an application with `fan_out` endpoints.
    Jobs,
}

/// A fresh gateway under the load `request` makes (given the gateway and the
/// sink's address), then the drain of every delivery it owes.
fn run_gateway(
    server_rt: &Runtime,
    load_rt: &Runtime,
    settings: &Settings,
    way_in: WayIn,
    request: impl FnOnce(&Gateway, SocketAddr) -> (SocketAddr, Vec<u8>),
) -> (LoadReport, Option<DrainReport>) {
    // The sink is the customer's endpoint: it gets a runtime of its own.
    let sink_rt = support::runtime("bench-sink", 1);
    let (sink_addr, sink) = start_sink(&sink_rt);
    let dir = support::bench_dir();
    let routed_to = (!settings.no_connection && way_in == WayIn::Ingress).then_some(sink_addr);
    let config = write_config(dir.path(), routed_to, settings);
    println!("data dir: {}", dir.path().join("data").display());
    let gateway = server_rt
        .block_on(Gateway::start(&config))
        .expect("hookgate starts");
    let (addr, request) = request(&gateway, sink_addr);
    let cpu_at_start = support::CpuReading::now();
    let report = load::run(load_rt, &settings.plan, &[(addr, request)]);
    let drain = (!settings.no_connection).then(|| {
        let mut drain = wait_for_drain(
            &sink,
            report.acknowledged * settings.fan_out as u64,
            report.load_started,
            report.load_ended,
            settings.drain_timeout,
        );
        drain.cpu = Some(support::CpuSplit::since(&cpu_at_start));
        drain
    });
    let stored = support::disk_usage(&config.server.data_dir) as f64 / (1 << 20) as f64;
    println!("  data dir after the load: {stored:.0} MiB");
    let stopped = server_rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), gateway.shutdown()).await
    });
    match stopped {
        Ok(Ok(())) => {}
        Ok(Err(e)) => println!("warning: gateway shutdown failed: {e:#}"),
        Err(_) => println!("warning: gateway shutdown took over 30 s"),
    }
    sink_rt.shutdown_timeout(Duration::from_secs(1));
    (report, drain)
}

/// Rules every benchmark request passes: a filter on the body (the JSON view
/// is built for every request) and a retry rule (checked after each attempt).
const RULES: &str = r#"rules = [
  { type = "filter", body = { type = { "$startsWith" = "order." }, data = { amount = { "$gte" = 1 } } } },
  { type = "retry", strategy = "exponential", count = 5, interval = 1000, response_status_codes = ["500-599", "429"] },
]
"#;

/// Like tests/gateway/common.rs `config_text`: source `bench`, routed to the
/// sink unless `sink` is None, through `RULES` with `--rules`, with sled's
/// cache as `--cache-mib` says.
fn write_config(dir: &Path, sink: Option<SocketAddr>, settings: &Settings) -> Config {
    // "" turns the listener off, and with it all counting.
    let metrics_listen = if settings.metrics { "127.0.0.1:0" } else { "" };
    let mut text = format!(
        r#"delivery = {{ signing_secret = "bench-signing-secret", allowed_networks = ["127.0.0.0/8"] }}
[server]
ingress_listen = "127.0.0.1:0"
metrics_listen = "{metrics_listen}"
api_listen = "127.0.0.1:0"
api_keys = ["{API_KEY}"]
allow_insecure_endpoints = true
data_dir = "data"
shutdown_timeout_ms = 5000

[outbound]
api_calls_per_second_per_key = 1000000
jobs_per_second_per_application = 1000000

[[sources]]
name = "bench"
"#
    );
    if let Some(sink) = sink {
        for n in 0..settings.fan_out {
            text.push_str(&format!(
                r#"
[[destinations]]
name = "sink-{n}"
url = "http://{sink}/hooks/{n}"

[[connections]]
name = "bench-to-sink-{n}"
source = "bench"
destination = "sink-{n}"
"#
            ));
        }
        if settings.rules {
            text.push_str(RULES);
        }
    }
    if let Some(mib) = settings.cache_mib {
        text.push_str(&format!("\n[limits]\nstore_cache_bytes = {}\n", mib << 20));
    }
    support::save_config(dir, &text).1
}

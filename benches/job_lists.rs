//! `GET /v1/webhook-jobs` over a big store: its own harness (`harness =
//! false`), in the style of benches/ingest.rs.
//!
//! Stores `--jobs` webhook jobs (1,000,000 by default) straight through
//! `Store::journal_jobs`, as the API stores them (journaled, the payload
//! read from the journal), minus HTTP and fan-out: 10
//! applications, 8 event types, statuses spread as a busy sender's are
//! (mostly succeeded, some failed, a few still retrying), one or two of 4
//! endpoints each, created over the last 24 hours. Then starts the gateway on
//! that store and times list calls through the real API (HTTP, JSON views
//! included), each `--repeat` times; the goal is a filtered page (by
//! application, status, event type and time range) in under 50 ms.
//!
//! ```text
//! cargo bench --bench job_lists
//! cargo bench --bench job_lists -- --jobs 100000 --repeat 5
//! ```
//!
//! Settings (argument, else environment variable, else default): `--jobs` /
//! `HOOKGATE_BENCH_JOBS` (1000000), `--repeat` / `HOOKGATE_BENCH_REPEAT` (20).

// This bench uses a few of the shared helpers only.
#[path = "support/big_store.rs"]
mod big_store;
#[allow(dead_code)]
mod support;

use big_store::{millis, API_KEY};
use hookgate::ids::{iso8601, new_id, now_ms};
use hookgate::model::{JobStatus, WebhookJob};
use hookgate::store::Store;
use hookgate::Config;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const APPLICATIONS: usize = 10;
const EVENT_TYPES: [&str; 8] = [
    "order.created",
    "order.paid",
    "order.shipped",
    "order.refunded",
    "user.created",
    "user.deleted",
    "invoice.paid",
    "invoice.voided",
];
const ENDPOINTS: usize = 4;
const DAY_MS: u64 = 24 * 3_600_000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let jobs = support::setting(&args, "--jobs", "HOOKGATE_BENCH_JOBS", 1_000_000.0) as usize;
    let repeat = support::setting(&args, "--repeat", "HOOKGATE_BENCH_REPEAT", 20.0) as usize;
    println!("hookgate job lists benchmark");
    println!("machine: {}", support::Machine::detect());
    let dir = support::bench_dir();
    let config = big_store::write_config(dir.path(), "", "");
    let now = now_ms();
    let started = Instant::now();
    populate(&config, jobs, now);
    let stored = format!("{jobs} jobs");
    big_store::report_stored(&stored, started, &config.server.data_dir);

    let rt = support::runtime("bench-server", 2);
    let gateway = big_store::start_gateway(&rt, &config);
    let api = gateway.api_addr.expect("the API listens");
    let client = reqwest::Client::new();
    let app = application_id(3);
    let hour_ago = iso8601(now - 3_600_000);
    let six_hours_ago = iso8601(now - 6 * 3_600_000);
    let queries: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("application", vec![("application_id", app.clone())]),
        (
            "application, status=failed",
            vec![("application_id", app.clone()), ("status", "failed".into())],
        ),
        (
            "application, status, event type, time range (the goal)",
            vec![
                ("application_id", app.clone()),
                ("status", "succeeded".into()),
                ("event_type", EVENT_TYPES[2].into()),
                ("created_after", six_hours_ago.clone()),
                ("created_before", hour_ago.clone()),
            ],
        ),
        (
            "the same with status=failed",
            vec![
                ("application_id", app.clone()),
                ("status", "failed".into()),
                ("event_type", EVENT_TYPES[2].into()),
                ("created_after", six_hours_ago.clone()),
                ("created_before", hour_ago.clone()),
            ],
        ),
        (
            "application, endpoint, time range",
            vec![
                ("application_id", app.clone()),
                ("endpoint_id", "end_1".into()),
                ("created_after", six_hours_ago.clone()),
            ],
        ),
        (
            "application, page 200 of 100",
            vec![
                ("application_id", app.clone()),
                ("per_page", "100".into()),
                ("page", "200".into()),
            ],
        ),
        (
            "application, status, metadata[region] (read job by job), last hour",
            vec![
                ("application_id", app.clone()),
                ("status", "failed".into()),
                ("metadata[region]", "eu".into()),
                ("created_after", hour_ago.clone()),
            ],
        ),
    ];
    println!("\n| query | total | p50 | max |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, query) in &queries {
        let (total, times) = rt.block_on(time_list(&client, api, query, repeat));
        println!(
            "| {name} | {total} | {} | {} |",
            millis(times[times.len() / 2]),
            millis(times[times.len() - 1])
        );
    }
    rt.block_on(gateway.shutdown()).expect("hookgate stops");
}

/// Lists `query` `repeat` times; returns its total and the sorted times.
async fn time_list(
    client: &reqwest::Client,
    api: std::net::SocketAddr,
    query: &[(&str, String)],
    repeat: usize,
) -> (u64, Vec<Duration>) {
    let mut times = Vec::with_capacity(repeat);
    let mut total = 0;
    for _ in 0..repeat.max(1) {
        let started = Instant::now();
        let answer = client
            .get(format!("http://{api}/v1/webhook-jobs"))
            .bearer_auth(API_KEY)
            .query(query)
            .send()
            .await
            .expect("list call");
        assert_eq!(answer.status(), 200, "{query:?}");
        let body: Value = answer.json().await.expect("JSON");
        times.push(started.elapsed());
        total = body["pagination"]["total"].as_u64().unwrap_or_default();
    }
    times.sort_unstable();
    (total, times)
}

fn application_id(n: usize) -> String {
    format!("app_bench{n:02}")
}

/// A busy sender's job `n` of `count`, created over the day before `now`.
fn job(n: usize, count: usize, now: u64) -> WebhookJob {
    let created_at = now - DAY_MS + (n as u64 * DAY_MS) / count as u64;
    // Each of application, event type and status from its own digits of n,
    // so that every combination occurs.
    let (status, cancelled) = match (n / APPLICATIONS / EVENT_TYPES.len()) % 20 {
        0 => (JobStatus::Discarded, false),
        1 => (JobStatus::AwaitingRetry, false),
        2 => (JobStatus::Discarded, true),
        3 => (JobStatus::Created, false),
        _ => (JobStatus::Succeeded, false),
    };
    let endpoint = (n / 7) % ENDPOINTS;
    let endpoints = (0..1 + (n / 3) % 2).map(|k| format!("end_{}", (endpoint + k) % ENDPOINTS));
    WebhookJob {
        id: new_id("job"),
        application_id: application_id(n % APPLICATIONS),
        event_type: EVENT_TYPES[(n / APPLICATIONS) % EVENT_TYPES.len()].to_string(),
        event_id: format!("evt-{n}"),
        payload: (&json!({ "order": n, "amount": 4200 })).into(),
        headers: Default::default(),
        metadata: json!({ "region": if n.is_multiple_of(3) { "eu" } else { "us" } }),
        endpoint_ids: endpoints.collect(),
        status,
        attempt_count: 1,
        max_retries: 6,
        created_at,
        updated_at: created_at,
        expires_at: created_at + 2 * DAY_MS,
        succeeded_at: (status == JobStatus::Succeeded).then_some(created_at),
        discarded_at: (status == JobStatus::Discarded).then_some(created_at),
        cancelled,
        trace: None,
    }
}

/// Journals and stores `count` jobs from two threads, in batches, then
/// closes the store with the router's watermark past them.
fn populate(config: &Config, count: usize, now: u64) {
    const BATCH: usize = 1000;
    let store = Store::open(&config.server.data_dir, 128 << 20).expect("store opens");
    let last = std::thread::scope(|scope| {
        let halves: Vec<_> = (0..2)
            .map(|half| {
                let store = &store;
                scope.spawn(move || {
                    let numbers: Vec<usize> = (half..count).step_by(2).collect();
                    let batches = numbers.chunks(BATCH).map(|batch| {
                        let jobs: Vec<WebhookJob> =
                            batch.iter().map(|&n| job(n, count, now)).collect();
                        store.journal_jobs(&jobs).expect("jobs stored")
                    });
                    batches.flatten().max()
                })
            })
            .collect();
        halves
            .into_iter()
            .filter_map(|half| half.join().expect("populated"))
            .max()
    });
    if let Some(last) = last {
        store.set_routed_through(last).expect("watermark set");
    }
    store.flush().expect("store flushed");
    store.checkpoint().expect("store closed");
}

//! The console's Requests and Events pages over a big store: its own harness
//! (`harness = false`), in the style of benches/job_lists.rs.
//!
//! Stores `--requests` requests (1,000,000 by default) through the store's
//! own group commit (`CommitLog`, as the ingress does, minus HTTP), each
//! with one event as the router makes it (`derived_id`), marked routed:
//! 10 sources, each with a connection to its destination; 95 % of the
//! events delivered, 5 % failed. Then starts the gateway on that store, signs
//! in to the console as a browser does, and times whole page loads (HTML,
//! filters and the API's list included), each `--repeat` times: the first
//! page, filtered pages and a cursor deep in the list. The goal is every
//! page in under 200 ms.
//!
//! ```text
//! cargo bench --bench console_lists
//! cargo bench --bench console_lists -- --requests 100000 --repeat 5
//! ```
//!
//! Settings (argument, else environment variable, else default):
//! `--requests` / `HOOKGATE_BENCH_REQUESTS` (1000000), `--repeat` /
//! `HOOKGATE_BENCH_REPEAT` (10).

// This bench uses a few of the shared helpers only.
#[path = "support/big_store.rs"]
mod big_store;
#[allow(dead_code)]
mod support;

use big_store::{millis, API_KEY};
use futures_util::StreamExt;
use hookgate::ids::{created_ms, derived_id, iso8601, named_id};
use hookgate::model::{Event, EventStatus, Payload, Request, Route};
use hookgate::store::{Backlog, CommitLog, Committed, Journaled, Store};
use hookgate::Config;
use std::path::Path;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

const SOURCES: usize = 10;
/// Requests committed at once (the group commit's batches fill from them).
const IN_FLIGHT: usize = 1024;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let count =
        support::setting(&args, "--requests", "HOOKGATE_BENCH_REQUESTS", 1_000_000.0) as usize;
    let repeat = support::setting(&args, "--repeat", "HOOKGATE_BENCH_REPEAT", 10.0) as usize;
    println!("hookgate console lists benchmark");
    println!("machine: {}", support::Machine::detect());
    let dir = support::bench_dir();
    let config = write_config(dir.path());
    let rt = support::runtime("bench-server", 2);
    let started = Instant::now();
    let middle = rt.block_on(populate(&config, count));
    let stored = format!("{count} requests and events");
    big_store::report_stored(&stored, started, &config.server.data_dir);

    let gateway = big_store::start_gateway(&rt, &config);
    let console = format!(
        "http://{}/console",
        gateway.api_addr.expect("the API listens")
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let cookie = rt.block_on(sign_in(&client, &console));
    let source = named_id("src", "source-3");
    let connection = named_id("web", "connection-3");
    let half_way = created_ms(&middle.0).expect("a request id names its time");
    let second = format!(
        "created_at%5Bgte%5D={}&created_at%5Blte%5D={}",
        iso8601(half_way),
        iso8601(half_way + 1000)
    );
    let pages = [
        ("Requests, first page".to_string(), "/requests".to_string()),
        (
            "Requests of one second half way (`created_at`)".into(),
            format!("/requests?{second}"),
        ),
        (
            "Events of one second half way (`created_at`)".into(),
            format!("/events?{second}"),
        ),
        (
            "Requests of one source of 10".into(),
            format!("/requests?source_id={source}"),
        ),
        (
            "Requests, a cursor half way".into(),
            format!("/requests?next={}", middle.0),
        ),
        (
            "Requests of one source, a cursor half way".into(),
            format!("/requests?source_id={source}&next={}", middle.0),
        ),
        ("Events, first page".into(), "/events".into()),
        (
            "Events of one connection of 10".into(),
            format!("/events?webhook_id={connection}"),
        ),
        ("Events FAILED (5 %)".into(), "/events?status=FAILED".into()),
        (
            "Events, a cursor half way".into(),
            format!("/events?next={}", middle.1),
        ),
    ];
    println!("\n| page | p50 | max |");
    println!("| --- | ---: | ---: |");
    for (name, path) in &pages {
        let url = format!("{console}{path}");
        let times = rt.block_on(time_page(&client, &url, &cookie, repeat));
        println!(
            "| {name} | {} | {} |",
            millis(times[times.len() / 2]),
            millis(times[times.len() - 1])
        );
    }
    // A text search reads every payload it passes (no text index), at most
    // a page's read budget per call: its pages end short, so it is timed
    // page by page, following `next` to the one match.
    let api = console.replace("/console", "/2023-07-01/requests");
    let term = format!("search_term=%22order%22%3A{}%2C", count / 2);
    let (times, pages) = rt.block_on(search_pages(&client, &api, &term));
    println!(
        "| Requests whose body has a text: each page, {pages} pages to the one match | {} | {} |",
        millis(times[times.len() / 2]),
        millis(times[times.len() - 1])
    );
    rt.block_on(gateway.shutdown()).expect("hookgate stops");
}

/// Signs in through the form (its token and cookie, then the key); answers
/// the session's cookie.
async fn sign_in(client: &reqwest::Client, console: &str) -> String {
    let form = client
        .get(format!("{console}/sign-in"))
        .send()
        .await
        .expect("form");
    let form_cookie = cookie_of(&form);
    let page = form.text().await.expect("form page");
    let token = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the form's token");
    let signed_in = client
        .post(format!("{console}/sign-in"))
        .header("cookie", form_cookie)
        .form(&[("key", API_KEY), ("csrf", token)])
        .send()
        .await
        .expect("sign-in");
    assert_eq!(signed_in.status(), 303, "signed in");
    cookie_of(&signed_in)
}

fn cookie_of(answer: &reqwest::Response) -> String {
    let set = answer.headers()["set-cookie"].to_str().expect("a cookie");
    set.split(';').next().expect("name=value").to_string()
}

/// Follows a search's `next` cursors through the API until a page lists a
/// request; answers each page's time (sorted) and how many pages it took.
async fn search_pages(client: &reqwest::Client, api: &str, term: &str) -> (Vec<Duration>, usize) {
    let mut times = Vec::new();
    let mut cursor = String::new();
    loop {
        let started = Instant::now();
        let answer = client
            .get(format!("{api}?{term}{cursor}"))
            .bearer_auth(API_KEY)
            .send()
            .await
            .expect("a page");
        assert_eq!(answer.status(), 200, "{term}");
        let page: serde_json::Value = answer.json().await.expect("a listing");
        times.push(started.elapsed());
        let next = page["pagination"]["next"].as_str().map(str::to_string);
        match (page["count"].as_u64(), next) {
            (Some(found), _) if found > 0 => break,
            (_, Some(next)) => cursor = format!("&next={next}"),
            _ => panic!("{term} found nothing"),
        }
    }
    let pages = times.len();
    times.sort_unstable();
    (times, pages)
}

/// Loads `url` `repeat` times; answers the sorted times.
async fn time_page(
    client: &reqwest::Client,
    url: &str,
    cookie: &str,
    repeat: usize,
) -> Vec<Duration> {
    let mut times = Vec::with_capacity(repeat);
    for _ in 0..repeat.max(1) {
        let started = Instant::now();
        let answer = client
            .get(url)
            .header("cookie", cookie)
            .send()
            .await
            .expect("page");
        assert_eq!(answer.status(), 200, "{url}");
        let page = answer.text().await.expect("page text");
        times.push(started.elapsed());
        let rows = page.matches("<tr><td><a href=").count();
        assert!(rows > 0, "{url} lists something");
    }
    times.sort_unstable();
    times
}

/// Stores `count` requests, each with its event, and closes the store;
/// answers the ids of the request and the event half way.
async fn populate(config: &Config, count: usize) -> (String, String) {
    let store = Store::open(&config.server.data_dir, 128 << 20).expect("store opens");
    let (router, routed) = sync_channel::<Journaled>(IN_FLIGHT);
    let (log, writer) = CommitLog::start(
        store.clone(),
        IN_FLIGHT,
        IN_FLIGHT,
        router,
        Backlog::new(256 << 20),
        Box::new(|_, _| {}),
    );
    let router = {
        let store = store.clone();
        std::thread::spawn(move || route(&store, routed, count))
    };
    let commit = |n: usize| {
        let log = log.clone();
        async move {
            let (request, payload) = request(n);
            log.commit(request, payload).await.expect("committed");
        }
    };
    futures_util::stream::iter(0..count)
        .map(commit)
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<()>>()
        .await;
    log.close().await;
    let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    let middle = router.join().expect("router thread");
    store.flush().expect("store flushed");
    store.checkpoint().expect("store closed");
    middle
}

/// What the router does with each committed request, in short: its event
/// (delivered, or failed for one in 20), then the request marked routed.
/// Answers the ids of the request and the event half way.
fn route(
    store: &Store,
    routed: std::sync::mpsc::Receiver<Journaled>,
    count: usize,
) -> (String, String) {
    let mut middle = (String::new(), String::new());
    for (n, journaled) in routed.into_iter().enumerate() {
        let Journaled::Request(Committed { request, .. }) = &journaled else {
            panic!("only requests are journaled here");
        };
        let k = source_of(request);
        let (connection, destination) = (
            named_id("web", &format!("connection-{k}")),
            named_id("des", &format!("destination-{k}")),
        );
        let route = Route {
            source_id: request.source_id.as_deref().unwrap_or_default(),
            connection_id: &connection,
            destination_id: &destination,
        };
        let id = derived_id("evt", &request.id, &connection);
        let mut event = Event::new(id, &request.id, route, request.received_at, false);
        // Made as its request arrived, as by a router that keeps up (this
        // thread lags the commits by seconds while it fills the store).
        event.created_at = request.received_at;
        let failed = n % 20 == 7;
        event.status = if failed {
            EventStatus::Failed
        } else {
            EventStatus::Successful
        };
        event.attempts = 1;
        event.next_attempt_at = None;
        event.last_attempt_at = Some(request.received_at);
        event.response_status = Some(if failed { 500 } else { 200 });
        event.successful_at = (!failed).then_some(request.received_at);
        store.save_event(&event).expect("event stored");
        store.mark_routed(&request.id).expect("request routed");
        if n == count / 2 {
            middle = (request.id.clone(), event.id.clone());
        }
    }
    middle
}

/// Which of the `SOURCES` a request came from (its path says).
fn source_of(request: &Request) -> usize {
    request
        .path
        .rsplit('/')
        .next()
        .and_then(|k| k.parse().ok())
        .unwrap_or(0)
}

/// Request `n`: a small JSON order to one of the sources, in turn.
fn request(n: usize) -> (Request, Payload) {
    let k = n % SOURCES;
    let payload = Payload {
        method: "POST".into(),
        path: format!("/e/source-{k}/{k}"),
        query: String::new(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: format!(r#"{{"order":{n},"amount":4200}}"#).into_bytes(),
    };
    let source = named_id("src", &format!("source-{k}"));
    let request = Request::received(Some(&source), &format!("source-{k}"), &payload);
    (request, payload)
}

fn write_config(dir: &Path) -> Config {
    let connections: String = (0..SOURCES)
        .map(|k| {
            format!(
                r#"[[sources]]
name = "source-{k}"

[[destinations]]
name = "destination-{k}"
url = "http://127.0.0.1:9/{k}"

[[connections]]
name = "connection-{k}"
source = "source-{k}"
destination = "destination-{k}"

"#
            )
        })
        .collect();
    // Page loads spend the key's budget: hundreds of them in a run.
    big_store::write_config(dir, "api_rate_limit_per_minute = 100000", &connections)
}

//! `GET /metrics`: scraped from the real gateway's metrics listener while it
//! ingests and delivers to real sinks, parsed from the text format.

use crate::common::{route, Reply, Sink, TestGateway, PATIENCE, SLOW_WHEN_MARKED};
use crate::hookdeck_tr_bk_bulk::finished;
use crate::outbound::{job_id_of, one_endpoint, wait_job, INSECURE};
use futures_util::StreamExt;
use hookgate::model::EventStatus;
use rand::distributions::{Alphanumeric, DistString};
use reqwest::Method;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

/// One scrape: every sample, keyed by metric name and its labels.
pub struct Scrape(HashMap<(String, BTreeMap<String, String>), f64>);

impl Scrape {
    pub async fn of(gw: &TestGateway) -> Scrape {
        let addr = gw.gateway.metrics_addr.expect("metrics listen");
        let response = gw
            .http
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        Scrape::parse(&response.text().await.unwrap())
    }

    /// The text format's sample lines: `name{a="x",b="y"} value` or `name value`.
    fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("a sample line");
                let (name, labels) = match series.split_once('{') {
                    Some((name, labels)) => (name, labels.trim_end_matches('}')),
                    None => (series, ""),
                };
                let labels = labels
                    .split(',')
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (key, value) = pair.split_once('=').expect("label=\"value\"");
                        (key.to_string(), value.trim_matches('"').to_string())
                    })
                    .collect();
                let value = value.parse().expect("a number");
                ((name.to_string(), labels), value)
            })
            .collect();
        Scrape(samples)
    }

    /// The sample's value; 0 when the series does not exist (yet).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.0
            .get(&(name.to_string(), labels))
            .copied()
            .unwrap_or(0.0)
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.keys().any(|(n, _)| n == name)
    }

    fn sum(&self, name: &str) -> f64 {
        self.0
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|(_, v)| v)
            .sum()
    }
}

/// A destination without a URL, "later": its events wait in its queue.
/// A source `shop` whose events go to `later`, a destination that never
/// answers: they stay in its queue (those in flight too) for the test's length.
fn queued_only(hanging: &Sink) -> String {
    let source = "[[sources]]\nname = \"shop\"\n\n";
    format!("{source}{}", route("shop", "later", &hanging.url(""), ""))
}

/// `route`, for a destination limited to two attempts a second.
pub fn two_a_second(source: &str, destination: &str, url: &str) -> String {
    let limit = "rate_limit = 2\nrate_limit_period = \"second\"\nurl = ";
    route(source, destination, url, "").replacen("url = ", limit, 1)
}

fn requests(scrape: &Scrape, source: &str, outcome: &str) -> f64 {
    scrape.value(
        "hookgate_requests_total",
        &[("source", source), ("outcome", outcome)],
    )
}

fn attempts(scrape: &Scrape, destination: &str, outcome: &str) -> f64 {
    scrape.value(
        "hookgate_attempts_total",
        &[("destination", destination), ("outcome", outcome)],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_are_counted_by_source_and_outcome_and_attempts_by_destination() {
    let ok = Sink::start(Reply::Status(204)).await;
    let failing = Sink::start(Reply::Status(503)).await;
    let gw = TestGateway::start(&format!(
        "[[sources]]\nname = \"shop\"\n{}{}",
        route("shop", "ok", &ok.url("/"), ""),
        route("shop", "failing", &failing.url("/"), "")
    ))
    .await;
    for _ in 0..3 {
        assert_eq!(gw.post("/e/shop/orders", "{}").await.0, 200);
    }
    for _ in 0..2 {
        assert_eq!(gw.post("/e/nowhere", "{}").await.0, 404);
    }
    assert_eq!(gw.post("/not-a-source", "{}").await.0, 404);
    gw.wait_events(3, |e| e.status == EventStatus::Successful)
        .await;
    gw.wait_events(3, |e| e.status == EventStatus::Failed).await;

    let scrape = Scrape::of(&gw).await;
    assert_eq!(requests(&scrape, "shop", "ACCEPTED"), 3.0);
    assert_eq!(
        requests(&scrape, "", "NO_WEBHOOK"),
        2.0,
        "an unknown source's name is not a label"
    );
    assert_eq!(requests(&scrape, "", "NOT_A_SOURCE_URL"), 1.0);
    assert_eq!(attempts(&scrape, "ok", "2xx"), 3.0);
    assert_eq!(attempts(&scrape, "failing", "5xx"), 3.0);
    assert_eq!(scrape.sum("hookgate_attempts_total"), 6.0);
    let finished = |destination, status| {
        scrape.value(
            "hookgate_events_finished_total",
            &[("destination", destination), ("status", status)],
        )
    };
    assert_eq!(finished("ok", "SUCCESSFUL"), 3.0);
    assert_eq!(finished("failing", "FAILED"), 3.0);
    assert_eq!(scrape.sum("hookgate_events_finished_total"), 6.0);
    assert_eq!(scrape.sum("hookgate_rate_limit_waits_total"), 0.0);
    let latency = |destination| {
        scrape.value(
            "hookgate_delivery_latency_seconds_count",
            &[("destination", destination)],
        )
    };
    assert_eq!((latency("ok"), latency("failing")), (3.0, 3.0));
    assert_eq!(
        scrape.value(
            "hookgate_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    let batches = scrape.value("hookgate_journal_batch_requests_count", &[]);
    assert_eq!(
        scrape.value("hookgate_journal_batch_requests_sum", &[]),
        3.0,
        "every accepted request journaled, in one batch or more"
    );
    assert!((1.0..=3.0).contains(&batches), "{batches}");
    assert_eq!(
        scrape.value("hookgate_journal_batch_seconds_count", &[]),
        batches
    );
    assert!(scrape.has("hookgate_process_cpu_seconds_total"));
    for process in [
        "hookgate_process_resident_memory_bytes",
        "hookgate_process_open_fds",
    ] {
        assert!(scrape.value(process, &[]) > 0.0, "{process}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn attempts_that_get_no_answer_are_counted_by_error_code() {
    // Nothing listens on port 9 of the loopback address.
    let gw = TestGateway::start(&format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route("shop", "gone", "http://127.0.0.1:9/", "")
    ))
    .await;
    assert_eq!(gw.post("/e/shop", "{}").await.0, 200);
    gw.wait_events(1, |e| e.status.is_terminal()).await;
    let scrape = Scrape::of(&gw).await;
    assert_eq!(attempts(&scrape, "gone", "CONNECTION_REFUSED"), 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_depth_is_read_from_the_store_at_each_scrape() {
    let hanging = Sink::start(Reply::Hang).await;
    let gw = TestGateway::start(&queued_only(&hanging)).await;
    let depth = |scrape: &Scrape| scrape.value("hookgate_queue_depth", &[("destination", "later")]);
    let scrape = Scrape::of(&gw).await;
    assert!(
        scrape.0.contains_key(&(
            "hookgate_queue_depth".into(),
            [("destination".into(), "later".into())].into()
        )),
        "an empty queue is shown as 0"
    );
    for _ in 0..2 {
        let (status, body) = gw.post("/e/shop", "{}").await;
        assert_eq!(status, 200);
        gw.wait_routed(body["request_id"].as_str().unwrap()).await;
    }
    assert_eq!(depth(&Scrape::of(&gw).await), 2.0);
    // Due on arrival, never answered: the oldest grows later with every scrape.
    let lateness = |scrape: &Scrape| {
        scrape.value(
            "hookgate_queue_lateness_seconds",
            &[("destination", "later")],
        )
    };
    let first = lateness(&Scrape::of(&gw).await);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while lateness(&Scrape::of(&gw).await) <= first {
        assert!(
            tokio::time::Instant::now() < deadline,
            "lateness stuck at {first}"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_queue_is_not_late() {
    let hanging = Sink::start(Reply::Hang).await;
    let gw = TestGateway::start(&queued_only(&hanging)).await;
    let scrape = Scrape::of(&gw).await;
    let labels = [("destination", "later")];
    assert!(scrape.has("hookgate_queue_lateness_seconds"));
    assert_eq!(
        scrape.value("hookgate_queue_lateness_seconds", &labels),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn attempts_held_back_by_a_rate_limit_are_counted() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&format!(
        "[[sources]]\nname = \"shop\"\n{}",
        two_a_second("shop", "slow", &sink.url("/"))
    ))
    .await;
    for _ in 0..3 {
        assert_eq!(gw.post("/e/shop", "{}").await.0, 200);
    }
    sink.wait_for(3).await;
    let scrape = Scrape::of(&gw).await;
    let waits = scrape.value(
        "hookgate_rate_limit_waits_total",
        &[("destination", "slow")],
    );
    // At 2/s, three events queued within a second: the later ones wait.
    assert!((1.0..=2.0).contains(&waits), "{waits}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transformation_past_its_timeout_holds_the_router_back_and_counts_as_a_timeout() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&format!(
        "[limits]\ntransform_timeout_ms = 1500\ntransform_max_loop_iterations = 1000000000000\n[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), SLOW_WHEN_MARKED)
    ))
    .await;
    let lag = |scrape: &Scrape| scrape.value("hookgate_router_lag_requests", &[]);
    assert!(Scrape::of(&gw).await.has("hookgate_router_lag_requests"));
    gw.post("/e/shop", r#"{"slow":true}"#).await;
    let (_, accepted) = gw.post("/e/shop", "{}").await;
    let id = accepted["request_id"].as_str().unwrap();
    assert!(
        gw.gateway.store.awaits_router(id).unwrap(),
        "the router is still busy"
    );
    assert!(lag(&Scrape::of(&gw).await) >= 1.0);

    gw.wait_routed(id).await;
    let scrape = Scrape::of(&gw).await;
    assert_eq!(lag(&scrape), 0.0);
    let runs = |outcome| {
        scrape.value(
            "hookgate_transformation_runs_total",
            &[("transformation", "slow"), ("outcome", outcome)],
        )
    };
    assert_eq!(
        (runs("ok"), runs("timeout"), runs("failed")),
        (1.0, 1.0, 0.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_jobs_and_circuit_states_are_shown() {
    let gw = TestGateway::start_with(
        INSECURE,
        "[outbound]\ncircuit_failure_threshold = 1\ncircuit_cooldown_ms = 3600000\ndelivery_window_ms = 3600000\n",
    )
    .await;
    let sink = Sink::start(Reply::Status(500)).await;
    let (app, endpoint) = one_endpoint(&gw, &sink, json!({})).await;
    let endpoint = endpoint["id"].as_str().unwrap();
    let state = |scrape: &Scrape, state| {
        scrape.value(
            "hookgate_circuit_state",
            &[("destination", endpoint), ("state", state)],
        )
    };
    let scrape = Scrape::of(&gw).await;
    assert_eq!(
        (state(&scrape, "closed"), state(&scrape, "open")),
        (1.0, 0.0)
    );
    assert_eq!(scrape.value("hookgate_webhook_jobs_total", &[]), 0.0);

    let job = job_id_of(&gw, &app).await;
    wait_job(&gw, &job, "awaiting_retry").await;
    let scrape = Scrape::of(&gw).await;
    assert_eq!(
        ["closed", "open", "half-open"].map(|s| state(&scrape, s)),
        [0.0, 1.0, 0.0]
    );
    assert_eq!(scrape.value("hookgate_webhook_jobs_total", &[]), 1.0);
    assert_eq!(
        scrape.value(
            "hookgate_attempts_total",
            &[("destination", endpoint), ("outcome", "5xx")]
        ),
        1.0
    );
    let circuits = scrape
        .0
        .keys()
        .filter(|(name, _)| name == "hookgate_circuit_state");
    assert_eq!(
        circuits.count(),
        3,
        "destinations without a circuit breaker have no series"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_data_dir_size_and_free_space_are_measured_at_each_scrape() {
    let gw = TestGateway::start("[[sources]]\nname = \"shop\"\n").await;
    let scrape = Scrape::of(&gw).await;
    let stored = scrape.value("hookgate_data_dir_bytes", &[]);
    assert!(stored > 0.0, "the store and journal files are counted");
    let free = scrape.value("hookgate_data_dir_free_bytes", &[]);
    let stats = rustix::fs::statvfs(gw.dir.path()).unwrap();
    let disk = (stats.f_blocks * stats.f_frsize) as f64;
    assert!(free > 0.0 && free < disk, "{free} of {disk}");
}

/// Random paths, random unknown source names (10,002 requests): the number
/// of series stays what the config and the fixed outcomes make it.
#[tokio::test(flavor = "multi_thread")]
async fn request_data_adds_no_series() {
    let gw = TestGateway::start("[[sources]]\nname = \"shop\"\n").await;
    let random = || Alphanumeric.sample_string(&mut rand::thread_rng(), 12);
    let send = |path: String| {
        let request = gw.http.post(gw.url(&path)).body("{}");
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let paths = |n: usize| {
        (0..n).flat_map(move |_| {
            [
                format!("/e/shop/{}/{}", random(), random()),
                format!("/e/{}/{}", random(), random()),
                format!("/{}", random()),
            ]
        })
    };
    let statuses: Vec<u16> = futures_util::stream::iter(paths(1))
        .then(send)
        .collect()
        .await;
    assert_eq!(statuses, [200, 404, 404]);
    let before = Scrape::of(&gw).await;

    const ROUNDS: usize = 3334;
    let sent = futures_util::stream::iter(paths(ROUNDS))
        .map(send)
        .buffer_unordered(32)
        .count()
        .await;
    let after = Scrape::of(&gw).await;
    assert_eq!(sent, 3 * ROUNDS);
    assert_eq!(
        after.0.keys().collect::<std::collections::BTreeSet<_>>(),
        before.0.keys().collect(),
        "the same series"
    );
    let counted = after.sum("hookgate_requests_total") - before.sum("hookgate_requests_total");
    assert_eq!(counted, sent as f64);
    assert_eq!(requests(&after, "shop", "ACCEPTED"), (ROUNDS + 1) as f64);
}

#[test]
fn metrics_listen_is_an_address_or_empty_for_off() {
    let parse = |value: &str| {
        let text = format!("[server]\nmetrics_listen = {value}\n");
        hookgate::Config::parse(std::path::Path::new("gateway.toml"), &text)
            .map(|config| config.server.metrics_listen)
            .map_err(|e| e.to_string())
    };
    assert_eq!(parse("\"\""), Ok(None));
    assert_eq!(
        parse("\"127.0.0.1:9100\""),
        Ok(Some(([127, 0, 0, 1], 9100).into()))
    );
    let error = parse("\"port 9100\"").unwrap_err();
    assert!(error.contains("metrics_listen"), "{error}");
    let default = hookgate::Config::parse(std::path::Path::new("gateway.toml"), "")
        .unwrap()
        .server
        .metrics_listen;
    assert_eq!(default, Some(([127, 0, 0, 1], 9464).into()));
}

#[tokio::test(flavor = "multi_thread")]
async fn routing_counts_events_ignored_events_and_transformation_runs() {
    let sink = Sink::start(Reply::Status(200)).await;
    let tag = r#"{ type = "transform", transformation = { name = "tag", code = "addHandler('transform', (r) => { r.headers['x-tag'] = 'yes'; return r; })" } }"#;
    let boom = r#"{ type = "transform", transformation = { name = "boom", code = "addHandler('transform', (r) => { throw new Error('no') })" } }"#;
    let gw = TestGateway::start(&format!(
        "[[sources]]\nname = \"shop\"\n{}{}",
        route(
            "shop",
            "kept",
            &sink.url("/"),
            &format!("rules = [ {{ type = \"filter\", body = {{ kind = \"order\" }} }}, {tag} ]"),
        ),
        route(
            "shop",
            "broken",
            &sink.url("/"),
            &format!("rules = [ {boom} ]")
        ),
    ))
    .await;
    for body in [r#"{"kind":"order"}"#, r#"{"kind":"other"}"#] {
        let (status, answer) = gw.post("/e/shop", body).await;
        assert_eq!(status, 200);
        gw.wait_routed(answer["request_id"].as_str().unwrap()).await;
    }
    let scrape = Scrape::of(&gw).await;
    let value = |name, labels: &[(&str, &str)]| scrape.value(name, labels);
    assert_eq!(
        value("hookgate_events_total", &[("connection", "shop-to-kept")]),
        1.0
    );
    assert_eq!(scrape.sum("hookgate_events_total"), 1.0);
    let ignored = |connection, cause| {
        value(
            "hookgate_ignored_events_total",
            &[("connection", connection), ("cause", cause)],
        )
    };
    assert_eq!(ignored("shop-to-kept", "FILTERED"), 1.0);
    assert_eq!(ignored("shop-to-broken", "TRANSFORMATION_FAILED"), 2.0);
    let runs = |transformation, outcome| {
        value(
            "hookgate_transformation_runs_total",
            &[("transformation", transformation), ("outcome", outcome)],
        )
    };
    assert_eq!((runs("tag", "ok"), runs("tag", "failed")), (1.0, 0.0));
    assert_eq!((runs("boom", "ok"), runs("boom", "failed")), (0.0, 2.0));
    assert_eq!(
        value(
            "hookgate_transformation_duration_seconds_count",
            &[("transformation", "boom")]
        ),
        2.0
    );
    assert_eq!(
        value("hookgate_ack_latency_seconds_count", &[("source", "shop")]),
        2.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn paused_connections_and_open_issues_are_read_at_each_scrape() {
    let failing = Sink::start(Reply::Status(500)).await;
    let gw = TestGateway::start(&format!(
        "[[sources]]\nname = \"shop\"\n{}{}",
        route("shop", "failing", &failing.url("/"), ""),
        route("shop", "held", &failing.url("/"), "")
    ))
    .await;
    let open_issues =
        |scrape: &Scrape, kind| scrape.value("hookgate_open_issues", &[("type", kind)]);
    let scrape = Scrape::of(&gw).await;
    assert_eq!(scrape.value("hookgate_paused_connections", &[]), 0.0);
    assert!(scrape.has("hookgate_paused_connections"));
    assert_eq!(open_issues(&scrape, "delivery"), 0.0);
    assert!(scrape.has("hookgate_open_issues"));
    assert!(scrape.has("hookgate_bulk_retries_in_progress"));
    assert_eq!(scrape.value("hookgate_bulk_retries_in_progress", &[]), 0.0);

    let held = hookgate::ids::named_id("web", "shop-to-held");
    let pause = format!("/connections/{held}/pause");
    assert_eq!(gw.api_send(Method::PUT, &pause, json!({})).await.0, 200);
    let trigger = json!({ "name": "failing", "type": "delivery",
        "configs": { "strategy": "first_attempt", "connections": "*" } });
    let created = gw.api_send(Method::POST, "/issue-triggers", trigger).await;
    assert_eq!(created.0, 200);
    assert_eq!(gw.post("/e/shop", "{}").await.0, 200);
    gw.wait_event(|e| e.status == EventStatus::Failed).await;

    let scrape = Scrape::of(&gw).await;
    assert_eq!(scrape.value("hookgate_paused_connections", &[]), 1.0);
    assert_eq!(open_issues(&scrape, "delivery"), 1.0);
    assert_eq!(open_issues(&scrape, "transformation"), 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bulk_retry_is_in_progress_while_it_waits_for_the_router() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&format!(
        "[limits]\ntransform_timeout_ms = 4000\ntransform_max_loop_iterations = 1000000000000\n[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), SLOW_WHEN_MARKED)
    ))
    .await;
    let running = |scrape: &Scrape| scrape.value("hookgate_bulk_retries_in_progress", &[]);
    let (_, accepted) = gw.post("/e/shop", r#"{"slow":true}"#).await;
    let slow = accepted["request_id"].as_str().unwrap();
    // A bulk retry of requests reroutes each once the router is done with
    // it, so it stays running while the slow transformation holds the router.
    let (status, bulk) = gw
        .api_send(
            Method::POST,
            "/bulk/requests/retry",
            json!({ "query": { "id": [slow] } }),
        )
        .await;
    assert_eq!(status, 200, "{bulk}");
    assert_eq!(running(&Scrape::of(&gw).await), 1.0);
    assert!(
        gw.gateway.store.awaits_router(slow).unwrap(),
        "scraped while the router was still held"
    );

    finished(&gw, "requests", bulk["id"].as_str().unwrap()).await;
    assert_eq!(running(&Scrape::of(&gw).await), 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn attempts_in_flight_are_counted_until_answered_or_timed_out() {
    let silent = Sink::start(Reply::Hang).await;
    let gw = TestGateway::start(&format!(
        "[limits]\ndelivery_timeout_ms = 1500\n\n[[sources]]\nname = \"shop\"\n{}",
        route("shop", "silent", &silent.url("/"), "")
    ))
    .await;
    let in_flight =
        |scrape: &Scrape| scrape.value("hookgate_attempts_in_flight", &[("destination", "silent")]);
    assert_eq!(gw.post("/e/shop", "{}").await.0, 200);
    silent.wait_for(1).await;
    assert_eq!(in_flight(&Scrape::of(&gw).await), 1.0);

    gw.wait_event(|e| e.status == EventStatus::Failed).await;
    let scrape = Scrape::of(&gw).await;
    assert_eq!(in_flight(&scrape), 0.0);
    assert_eq!(attempts(&scrape, "silent", "TIMEOUT"), 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn deliveries_ended_without_an_attempt_are_counted_as_finished() {
    let gw = crate::outbound::gateway("delivery_window_ms = 3600000").await;
    let sink = Sink::start(Reply::Status(500)).await;
    // Three jobs of one endpoint each, whose delivery failed once and waits
    // for its retry: none has ended yet.
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let (app, endpoint) = one_endpoint(&gw, &sink, json!({})).await;
        let job = job_id_of(&gw, &app).await;
        wait_job(&gw, &job, "awaiting_retry").await;
        waiting.push((job, endpoint["id"].as_str().unwrap().to_string()));
    }
    let failed = |scrape: &Scrape, endpoint: &str| {
        scrape.value(
            "hookgate_events_finished_total",
            &[("destination", endpoint), ("status", "FAILED")],
        )
    };
    let scrape = Scrape::of(&gw).await;
    assert!(waiting
        .iter()
        .all(|(_, endpoint)| failed(&scrape, endpoint) == 0.0));

    let [(cancelled, first), (muted, second), (_, deleted)] = &waiting[..] else {
        unreachable!()
    };
    let cancel = format!("/v1/webhook-jobs/{cancelled}/cancel");
    assert_eq!(gw.api_send(Method::POST, &cancel, json!({})).await.0, 200);
    let delivery = &gw.gateway.store.deliveries_of(muted).unwrap()[0].id;
    let mute = format!("/2023-07-01/events/{delivery}/mute");
    assert_eq!(gw.api_send(Method::PUT, &mute, json!({})).await.0, 200);
    let endpoint = format!("/v1/endpoints/{deleted}");
    assert_eq!(gw.api_delete(&endpoint).await, 200);

    let scrape = Scrape::of(&gw).await;
    assert_eq!(
        [first, second, deleted].map(|endpoint| failed(&scrape, endpoint)),
        [1.0, 1.0, 1.0]
    );
    assert_eq!(scrape.sum("hookgate_events_finished_total"), 3.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn open_issues_are_counted_as_they_open_and_close_and_after_a_restart() {
    let failing = Sink::start(Reply::Status(500)).await;
    let config = format!(
        "[[sources]]\nname = \"shop\"\n{}{}",
        route("shop", "orders", &failing.url("/"), ""),
        route("shop", "billing", &failing.url("/"), "")
    );
    let gw = TestGateway::start(&config).await;
    let open = |scrape: &Scrape| scrape.value("hookgate_open_issues", &[("type", "delivery")]);
    let trigger = json!({ "name": "failing", "type": "delivery",
        "configs": { "strategy": "first_attempt", "connections": "*" } });
    let created = gw.api_send(Method::POST, "/issue-triggers", trigger).await;
    assert_eq!(created.0, 200);
    assert_eq!(gw.post("/e/shop", "{}").await.0, 200);
    // An issue is stored before its failed event is announced.
    gw.wait_events(2, |e| e.status == EventStatus::Failed).await;
    assert_eq!(open(&Scrape::of(&gw).await), 2.0);

    let issue = gw.gateway.store.issues().next().unwrap().unwrap();
    let resolve = format!("/issues/{}", issue.id);
    let (status, resolved) = gw
        .api_send(Method::PUT, &resolve, json!({ "status": "RESOLVED" }))
        .await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(open(&Scrape::of(&gw).await), 1.0);

    let gw = gw.restart(&config).await;
    assert_eq!(open(&Scrape::of(&gw).await), 1.0);
}

//! `/healthz` and `/readyz` on the ingress and the API listeners: each reason
//! the gateway is not ready, seen by a probe without a key.

use crate::common::{route, Reply, Sink, TestGateway, PATIENCE, SLOW_WHEN_MARKED};
use crate::disk::SmallDisk;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Both listeners' answers to a probe at `path`, ingress first, each
/// checked against `/openapi.json`'s description of the probe.
async fn probe_both(gw: &TestGateway, path: &str) -> [(u16, Value); 2] {
    let api_base = format!("http://{}", gw.gateway.api_addr.unwrap());
    let document = crate::openapi_check::document(&gw.http, &api_base).await;
    let mut answers = Vec::new();
    for url in [gw.url(path), format!("{api_base}{path}")] {
        // No API key: probes come from load balancers.
        let response = gw.http.get(url).send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.json().await.unwrap();
        crate::openapi_check::assert_documented(document, "GET", path, status, &body);
        answers.push((status, body));
    }
    answers.try_into().unwrap()
}

/// The checks `/readyz` names as failing (the same on both listeners).
pub(crate) async fn failing_checks(gw: &TestGateway) -> Vec<String> {
    let [ingress, api] = probe_both(gw, "/readyz").await;
    assert_eq!(ingress, api, "both listeners answer alike");
    checks_named(ingress)
}

/// The checks a `/readyz` answer names as failing.
fn checks_named((status, body): (u16, Value)) -> Vec<String> {
    let checks: Vec<String> = match body["reasons"].as_array() {
        Some(reasons) => reasons
            .iter()
            .map(|reason| {
                assert!(reason["message"].as_str().is_some_and(|m| !m.is_empty()));
                reason["check"].as_str().unwrap().to_string()
            })
            .collect(),
        None => Vec::new(),
    };
    match checks.is_empty() {
        true => assert_eq!((status, body), (200, json!({ "status": "ready" }))),
        false => assert_eq!((status, body["status"].clone()), (503, json!("not_ready"))),
    }
    checks
}

/// Probes until `/readyz` fails exactly `checks` on both listeners (a disk
/// watcher or a lease renewal notices within its period), or the patience
/// runs out. A check may change between the two listeners' answers: only
/// answers alike count.
async fn wait_failing(gw: &TestGateway, checks: &[&str]) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let [ingress, api] = probe_both(gw, "/readyz").await;
        let alike = ingress == api;
        let failing = checks_named(ingress);
        if alike && failing == checks {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz kept failing {failing:?}, not {checks:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_gateway_is_alive_and_ready_on_both_listeners() {
    let gw = TestGateway::start("[[sources]]\nname = \"shop\"\n").await;
    for answer in probe_both(&gw, "/healthz").await {
        assert_eq!(answer, (200, json!({ "status": "ok" })));
    }
    assert!(failing_checks(&gw).await.is_empty());
}

/// Both probes are operations of `/openapi.json` (without a key), `/readyz`
/// with its 503.
#[tokio::test(flavor = "multi_thread")]
async fn the_probes_are_described_in_the_openapi_document() {
    let gw = TestGateway::start("").await;
    let api_base = format!("http://{}", gw.gateway.api_addr.unwrap());
    let document = crate::openapi_check::document(&gw.http, &api_base).await;
    for (path, statuses) in [("/healthz", &["200"][..]), ("/readyz", &["200", "503"])] {
        let operation = &document["paths"][path]["get"];
        for status in statuses {
            let schema = operation.pointer(&format!(
                "/responses/{status}/content/application~1json/schema"
            ));
            assert!(schema.is_some(), "GET {path} {status} is not described");
        }
        assert!(operation.get("security").is_none(), "{path} needs no key");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopping_gateway_is_not_ready_while_its_listeners_still_serve() {
    // Long enough to probe within, however loaded the machine.
    let drain = "shutdown_drain_ms = 3000\n";
    let gw = TestGateway::start_with(drain, "[[sources]]\nname = \"shop\"\n").await;
    let TestGateway {
        gateway, dir, http, ..
    } = gw;
    let (ingress, api) = (gateway.ingress_addr, gateway.api_addr.unwrap());
    let stopped = tokio::spawn(gateway.shutdown());
    let deadline = Instant::now() + PATIENCE;
    for base in [ingress, api] {
        loop {
            let answer = http.get(format!("http://{base}/readyz")).send().await;
            let body: Value = answer.unwrap().json().await.unwrap();
            if body["reasons"][0]["check"] == "shutting_down" {
                break;
            }
            assert!(Instant::now() < deadline, "/readyz on {base}: {body}");
            tokio::task::yield_now().await;
        }
    }
    // Senders the load balancer has not moved yet are still served.
    let post = http.post(format!("http://{ingress}/e/shop")).body("{}");
    assert_eq!(post.send().await.unwrap().status(), 200);
    stopped.await.unwrap().unwrap();
    drop(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_router_too_far_behind_is_not_ready_until_it_catches_up() {
    let sink = Sink::start(Reply::Status(200)).await;
    // A request marked slow holds the router until its transformation times
    // out, so the request behind it waits for the router.
    let config = format!(
        "[limits]\ntransform_timeout_ms = 1500\ntransform_max_loop_iterations = 1000000000000\nmax_router_lag = 1\n[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), SLOW_WHEN_MARKED)
    );
    let gw = TestGateway::start(&config).await;
    gw.post("/e/shop", r#"{"slow":true}"#).await;
    let (_, accepted) = gw.post("/e/shop", "{}").await;
    let id = accepted["request_id"].as_str().unwrap();
    let behind = gw.gateway.store.awaits_router(id).unwrap();
    assert!(behind, "the router is still busy");
    assert_eq!(failing_checks(&gw).await, ["router_lag"]);
    gw.wait_routed(id).await;
    assert!(failing_checks(&gw).await.is_empty());
}

/// A gateway whose data lies on a small disk, keeping `reserve_bytes` for its store.
async fn on_small_disk(reserve_bytes: u64) -> Option<(SmallDisk, TestGateway)> {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&dir.path().join("data"), "16m")?;
    let config = format!(
        "[limits]\nstore_disk_reserve_bytes = {reserve_bytes}\n[[sources]]\nname = \"shop\"\n"
    );
    let gw = TestGateway::start_in(dir, &config).await;
    assert!(failing_checks(&gw).await.is_empty());
    Some((disk, gw))
}

#[tokio::test(flavor = "multi_thread")]
async fn less_free_disk_than_the_reserve_is_not_ready_until_space_comes_back() {
    let Some((disk, gw)) = on_small_disk(2 * 1024 * 1024).await else {
        return;
    };
    let filler = disk.fill();
    wait_failing(&gw, &["disk"]).await;
    std::fs::remove_file(filler).unwrap();
    wait_failing(&gw, &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_journal_that_cannot_be_written_is_not_ready_until_a_write_succeeds() {
    // No reserve: the full disk reaches the journal's writes.
    let Some((disk, gw)) = on_small_disk(0).await else {
        return;
    };
    let filler = disk.fill();
    let body = "x".repeat(64 * 1024);
    let (status, _) = gw.post("/e/shop", &body).await;
    assert_eq!(status, 503);
    assert_eq!(failing_checks(&gw).await, ["journal"]);
    std::fs::remove_file(filler).unwrap();
    let (status, _) = gw.post("/e/shop", &body).await;
    assert_eq!(status, 200);
    assert!(failing_checks(&gw).await.is_empty());
}

/// A node of a cluster whose PostgreSQL stops is not ready (its next lease
/// renewal fails, within a third of `lease_ms`) until the database is back.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_whose_database_is_down_is_not_ready_until_it_is_back() {
    let server = hookgate::store::test_postgres::TestServer::start();
    let database = hookgate::store::test_postgres::connection_string(&server.database().config);
    let config = format!(
        "[store]\nbackend = \"postgres\"\nurl = \"{database}\"\nlease_ms = 600\n[[sources]]\nname = \"shop\"\n"
    );
    let gw = TestGateway::start(&config).await;
    wait_failing(&gw, &[]).await;
    tokio::task::block_in_place(|| server.stop());
    wait_failing(&gw, &["database"]).await;
    tokio::task::block_in_place(|| server.restart());
    wait_failing(&gw, &[]).await;
}

//! Restarts: queued and retrying events resume with their state.

use crate::common::{config_in, route, Reply, Sink, TestGateway};
use hookgate::ids::named_id;
use hookgate::model::{EventStatus, Payload, Request};
use hookgate::store::{CommitLog, Store};
use hookgate::Gateway;
use std::collections::HashSet;

#[tokio::test(flavor = "multi_thread")]
async fn queued_events_resume_after_a_restart() {
    let sink = Sink::start(Reply::Status(503)).await;
    let rule =
        r#"rules = [ { type = "retry", strategy = "linear", count = 1000, interval = 200 } ]"#;
    let config = format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), rule)
    );
    let gw = TestGateway::start(&config).await;
    let mut request_ids = HashSet::new();
    for i in 0..5 {
        let (_, body) = gw.post("/e/shop", &format!("{{\"n\":{i}}}")).await;
        request_ids.insert(body["request_id"].as_str().unwrap().to_string());
    }
    sink.wait_for(5).await;
    let gw = gw.restart(&config).await;
    sink.set_reply(Reply::Status(200));
    let mut delivered = HashSet::new();
    while delivered.len() < 5 {
        let event = gw
            .wait_event(|e| {
                e.status == EventStatus::Successful && !delivered.contains(&e.request_id)
            })
            .await;
        assert!(
            event.attempts >= 2,
            "the attempt count survives the restart"
        );
        delivered.insert(event.request_id);
    }
    assert_eq!(delivered, request_ids);
}

#[tokio::test(flavor = "multi_thread")]
async fn successful_events_are_not_sent_again_after_a_restart() {
    let sink = Sink::start(Reply::Status(200)).await;
    let config = format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), "")
    );
    let gw = TestGateway::start(&config).await;
    gw.post("/e/shop", "{}").await;
    gw.wait_event(|e| e.status == EventStatus::Successful).await;
    let gw = gw.restart(&config).await;
    // A second request is delivered after the restart; the first is not redelivered.
    gw.post("/e/shop", "{}").await;
    sink.wait_for(2).await;
    let second = gw
        .wait_event(|e| {
            e.status == EventStatus::Successful
                && e.attempts == 1
                && e.request_id != sink.received()[0].header("x-hookgate-request-id").unwrap()
        })
        .await;
    assert_eq!(
        sink.received()[1].header("x-hookgate-event-id"),
        Some(second.id.as_str())
    );
    assert_eq!(gw.gateway.store.queue_depth(&second.destination_id), 0);
}

/// An accepted request for source `shop`, as the ingress builds it.
fn accepted(body: &str) -> (Request, Payload) {
    let payload = Payload {
        method: "POST".into(),
        path: String::new(),
        query: String::new(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.as_bytes().to_vec(),
    };
    let request = Request::accepted(&named_id("src", "shop"), "shop", &payload);
    (request, payload)
}

/// A crash between the acknowledgement and the router: the requests are in
/// the journal (and maybe indexed), but no event exists. The next start must
/// find them past the router's watermark and route them.
#[tokio::test(flavor = "multi_thread")]
async fn requests_acknowledged_but_not_routed_before_a_crash_are_routed_on_the_next_start() {
    let sink = Sink::start(Reply::Status(200)).await;
    let config = format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), "")
    );
    let gw = TestGateway::start(&config).await;
    gw.gateway.shutdown().await.unwrap();
    let loaded = config_in(gw.dir.path(), &config);

    let store = Store::open(&loaded.server.data_dir, loaded.limits.store_cache_bytes).unwrap();
    let (to_router, router_inbox) = std::sync::mpsc::sync_channel(1);
    drop(router_inbox); // the router died with the crash
    let (commit, writer) = CommitLog::start(store.clone(), 16, 16, to_router);
    let mut journaled = HashSet::new();
    for n in 0..3 {
        let (request, payload) = accepted(&format!("{{\"n\":{n}}}"));
        journaled.insert(request.id.clone());
        commit.commit(request, payload, true).await.unwrap();
    }
    commit.close().await;
    tokio::task::spawn_blocking(move || writer.join().unwrap())
        .await
        .unwrap();
    assert_eq!(store.unrouted_requests().unwrap().len(), 3);
    drop(store);

    let gateway = Gateway::start(&loaded).await.unwrap();
    let delivered: HashSet<String> = sink
        .wait_for(3)
        .await
        .iter()
        .map(|received| {
            received
                .header("x-hookgate-request-id")
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(delivered, journaled);
    let indexed: HashSet<String> = gateway.store.requests().map(|r| r.unwrap().id).collect();
    assert_eq!(indexed, journaled);
    assert!(gateway.store.unrouted_requests().unwrap().is_empty());
    gateway.shutdown().await.unwrap();
}

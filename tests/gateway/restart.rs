//! Restarts: queued and retrying events resume with their state.

use crate::common::{route, Reply, Sink, TestGateway};
use hookgate::model::EventStatus;
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

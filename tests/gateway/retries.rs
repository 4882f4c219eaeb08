//! Retry rules: strategies, counts, status selection. Timings are compared as
//! ratios within one run, never against absolute numbers (beyond the configured
//! minimum wait, which is the rule's meaning).

use crate::common::{route, Reply, Sink, TestGateway};
use hookgate::model::{AttemptTrigger, EventStatus};
use std::time::Duration;

fn retry_config(sink: &Sink, rule: &str) -> String {
    format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route(
            "shop",
            "orders",
            &sink.url("/"),
            &format!("rules = [ {rule} ]")
        )
    )
}

/// The gaps between consecutive arrivals at the sink.
fn gaps(sink: &Sink) -> Vec<Duration> {
    let received = sink.received();
    received.windows(2).map(|w| w[1].at - w[0].at).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn linear_retries_wait_the_interval_each_time_then_fail() {
    let sink = Sink::start(Reply::Status(500)).await;
    let rule = r#"{ type = "retry", strategy = "linear", count = 3, interval = 150 }"#;
    let gw = TestGateway::start(&retry_config(&sink, rule)).await;
    gw.post("/e/shop", "{}").await;
    let event = gw.wait_event(|e| e.status == EventStatus::Failed).await;
    assert_eq!(event.attempts, 4, "the first attempt and three retries");
    assert_eq!(event.response_status, Some(500));
    let gaps = gaps(&sink);
    assert_eq!(gaps.len(), 3);
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_millis(150)),
        "{gaps:?}"
    );
    // Linear: the last gap is about the first (ratio, not absolute time).
    let ratio = gaps[2].as_secs_f64() / gaps[0].as_secs_f64();
    assert!((0.5..2.0).contains(&ratio), "linear gaps {gaps:?}");
    let triggers: Vec<_> = gw
        .gateway
        .store
        .attempts_of(&event.id)
        .unwrap()
        .iter()
        .map(|a| a.trigger)
        .collect();
    assert_eq!(
        triggers,
        [
            AttemptTrigger::Initial,
            AttemptTrigger::Automatic,
            AttemptTrigger::Automatic,
            AttemptTrigger::Automatic
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn exponential_retries_double_the_wait() {
    let sink = Sink::start(Reply::Status(503)).await;
    // Waits long enough that a loaded machine's scheduling delay (tens of
    // ms) does not blur the doubling.
    let rule = r#"{ type = "retry", strategy = "exponential", count = 3, interval = 300 }"#;
    let gw = TestGateway::start(&retry_config(&sink, rule)).await;
    gw.post("/e/shop", "{}").await;
    gw.wait_event(|e| e.status == EventStatus::Failed).await;
    let gaps = gaps(&sink);
    assert_eq!(gaps.len(), 3);
    assert!(
        gaps[0] >= Duration::from_millis(300)
            && gaps[1] >= Duration::from_millis(600)
            && gaps[2] >= Duration::from_millis(1200),
        "{gaps:?}"
    );
    // Each wait about doubles the one before.
    let ratio = gaps[2].as_secs_f64() / gaps[0].as_secs_f64();
    assert!((2.5..6.0).contains(&ratio), "exponential gaps {gaps:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_that_succeeds_marks_the_event_successful() {
    let sink = Sink::start_with(|r| match r.header("x-hookgate-attempt") {
        Some("3") => Reply::Status(200),
        _ => Reply::Status(502),
    })
    .await;
    let rule = r#"{ type = "retry", strategy = "linear", count = 5, interval = 20 }"#;
    let gw = TestGateway::start(&retry_config(&sink, rule)).await;
    gw.post("/e/shop", "{}").await;
    let event = gw.wait_event(|e| e.status == EventStatus::Successful).await;
    assert_eq!(event.attempts, 3);
    let event_ids: Vec<_> = sink
        .received()
        .iter()
        .map(|r| r.header("x-hookgate-event-id").unwrap().to_string())
        .collect();
    assert!(
        event_ids.iter().all(|id| *id == event.id),
        "retries carry the same event id"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_selected_statuses_are_retried() {
    let sink = Sink::start_with(|r| match r.path.as_str() {
        "/missing" => Reply::Status(404),
        "/limited" => Reply::Status(429),
        _ => Reply::Status(500),
    })
    .await;
    let rule = r#"{ type = "retry", strategy = "linear", count = 2, interval = 10, response_status_codes = ["500-599", "429", "!503"] }"#;
    let gw = TestGateway::start(&retry_config(&sink, rule)).await;
    gw.post("/e/shop/missing", "{}").await;
    gw.post("/e/shop/limited", "{}").await;
    let mut failed = Vec::new();
    while failed.len() < 2 {
        let event = gw
            .wait_event(|e| e.status == EventStatus::Failed && !failed.contains(&e.id))
            .await;
        failed.push(event.id.clone());
        let status = event.response_status.unwrap();
        let expected_attempts = if status == 404 { 1 } else { 3 };
        assert_eq!(event.attempts, expected_attempts, "status {status}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_retry_rule_a_failure_is_final() {
    let sink = Sink::start(Reply::Status(500)).await;
    let gw = TestGateway::start(&format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), "")
    ))
    .await;
    gw.post("/e/shop", "{}").await;
    let event = gw.wait_event(|e| e.status == EventStatus::Failed).await;
    assert_eq!(event.attempts, 1);
    assert_eq!(sink.received().len(), 1);
}

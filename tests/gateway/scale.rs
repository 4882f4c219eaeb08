//! Rate limits, fairness and config reload: a destination gets no more than its
//! limit, a hot backlog does not starve another destination, and limits change
//! at runtime without losing an event.

use crate::common::{config_in, rate_limited_span, route, Reply, Sink, TestGateway};
use std::time::{Duration, Instant};

/// One source `hot` to a destination with `destination_extra` keys.
fn limited(sink: &Sink, destination_extra: &str) -> String {
    format!(
        "[[sources]]\nname = \"hot\"\n[[destinations]]\nname = \"slow\"\nurl = \"{}\"\n{destination_extra}\n[[connections]]\nname = \"hot-to-slow\"\nsource = \"hot\"\ndestination = \"slow\"\n",
        sink.url("/")
    )
}

async fn post_many(gw: &TestGateway, path: &str, n: usize) {
    for _ in 0..n {
        assert_eq!(gw.post(path, "{}").await.0, 200);
    }
}

/// Pauses or unpauses a connection through the API.
async fn toggle(gw: &TestGateway, connection: &str, action: &str) -> u16 {
    let path = format!("/connections/{connection}/{action}");
    gw.api_send(reqwest::Method::PUT, &path, serde_json::json!({}))
        .await
        .0
}

#[tokio::test]
async fn a_destination_gets_no_more_than_its_rate_limit() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&limited(
        &sink,
        "rate_limit = 20\nrate_limit_period = \"second\"",
    ))
    .await;
    post_many(&gw, "/e/hot", 12).await;
    sink.wait_for(12).await;
    // At 20/s, the 11 deliveries after the first leave at least ten gaps of
    // 50 ms (give or take a few ms of jitter in their arrival).
    let span = rate_limited_span(&sink.received());
    assert!(span >= Duration::from_millis(480), "{span:?}");
}

#[tokio::test]
async fn a_hot_backlog_does_not_starve_another_destination() {
    let slow = Sink::start(Reply::Status(200)).await;
    let fast = Sink::start(Reply::Status(200)).await;
    let config = format!(
        "{}[[sources]]\nname = \"cold\"\n{}",
        limited(&slow, "rate_limit = 1\nrate_limit_period = \"second\""),
        route("cold", "fast", &fast.url("/"), "")
    );
    let gw = TestGateway::start(&config).await;
    post_many(&gw, "/e/hot", 500).await;
    post_many(&gw, "/e/cold", 20).await;
    fast.wait_for(20).await;
    // Every event to the other destination arrived while the hot one still
    // works through its backlog at one per second.
    let slow_id = hookgate::ids::named_id("des", "slow");
    assert!(gw.gateway.store.queue_depth(&slow_id).unwrap() > 400);
    assert!(slow.received().len() < 100);
}

/// Queues 30 events for the gateway's only connection at once (held by a
/// pause, then released), so its lane takes them in one batch, and waits for
/// the first delivery: at 2/s the rest would take 14 s.
async fn release_thirty_at_once(gw: &TestGateway, sink: &Sink, source: &str) {
    let (_, connections) = gw.api_get("/connections").await;
    let connection = connections["models"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(toggle(gw, &connection, "pause").await, 200);
    post_many(gw, &format!("/e/{source}"), 30).await;
    assert_eq!(toggle(gw, &connection, "unpause").await, 200);
    sink.wait_for(1).await;
}

/// After a change from 2/s to a high limit at `changed_at`, all 30 events
/// arrive, each once, in a fraction of the time the old limit needed.
async fn assert_new_limit_applies_at_once(sink: &Sink, changed_at: Instant) {
    let received = sink.wait_for(30).await;
    let old_limit_needs = Duration::from_millis(500 * 28);
    assert!(
        changed_at.elapsed() < old_limit_needs / 4,
        "{:?}",
        changed_at.elapsed()
    );
    let mut ids: Vec<&str> = received
        .iter()
        .map(|r| r.header("x-hookgate-event-id").unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 30, "every queued event delivered once");
}

#[tokio::test]
async fn a_reload_changes_a_rate_limit_without_losing_queued_events() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&limited(
        &sink,
        "rate_limit = 2\nrate_limit_period = \"second\"",
    ))
    .await;
    release_thirty_at_once(&gw, &sink, "hot").await;
    let reloaded_at = Instant::now();
    let faster = config_in(
        gw.dir.path(),
        &limited(&sink, "rate_limit = 1000\nrate_limit_period = \"second\""),
    );
    gw.gateway.reload(faster).await.unwrap();
    assert_new_limit_applies_at_once(&sink, reloaded_at).await;
}

#[tokio::test]
async fn an_api_change_of_a_rate_limit_applies_at_once_without_losing_queued_events() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start("").await;
    let destination = |rate_limit: u32| {
        serde_json::json!({
            "name": "slow",
            "url": sink.url("/"),
            "rate_limit": rate_limit,
            "rate_limit_period": "second",
        })
    };
    let (status, body) = gw
        .api_send(
            reqwest::Method::POST,
            "/connections",
            serde_json::json!({ "name": "api-to-slow", "source": { "name": "api" }, "destination": destination(2) }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    release_thirty_at_once(&gw, &sink, "api").await;
    let changed_at = Instant::now();
    let (status, body) = gw
        .api_send(reqwest::Method::PUT, "/destinations", destination(1000))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_new_limit_applies_at_once(&sink, changed_at).await;
}

#[tokio::test]
async fn a_reload_serves_new_sources_and_refuses_a_file_that_clashes_with_api_objects() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&limited(&sink, "")).await;
    assert_eq!(gw.post("/e/billing", "{}").await.0, 404);
    let with_billing = format!("{}[[sources]]\nname = \"billing\"\n", limited(&sink, ""));
    gw.gateway
        .reload(config_in(gw.dir.path(), &with_billing))
        .await
        .unwrap();
    assert_eq!(gw.post("/e/billing", "{}").await.0, 200);

    // An API-created source, then a file that declares the same name: refused,
    // and what was served stays served.
    let (status, _) = gw
        .api_send(
            reqwest::Method::POST,
            "/sources",
            serde_json::json!({ "name": "crm" }),
        )
        .await;
    assert_eq!(status, 200);
    let clash = format!("{with_billing}[[sources]]\nname = \"crm\"\n");
    let error = gw
        .gateway
        .reload(config_in(gw.dir.path(), &clash))
        .await
        .unwrap_err();
    assert!(format!("{error:#}").contains("crm"), "{error:#}");
    assert_eq!(gw.post("/e/billing", "{}").await.0, 200);
    assert_eq!(gw.post("/e/crm", "{}").await.0, 200);
}

#[tokio::test]
async fn a_batch_of_held_events_does_not_stall_the_events_queued_behind_it() {
    let sink = Sink::start_with(|request| match request.body.starts_with(b"{\"hang\"") {
        true => Reply::Hang,
        false => Reply::Status(200),
    })
    .await;
    let connection = |source: &str| {
        format!("[[connections]]\nname = \"{source}-to-shared\"\nsource = \"{source}\"\ndestination = \"shared\"\n")
    };
    let config = format!(
        "[limits]\ndelivery_timeout_ms = 1000\n\n[[sources]]\nname = \"a\"\n[[sources]]\nname = \"b\"\n[[destinations]]\nname = \"shared\"\nurl = \"{}\"\nconcurrent = 1\n{}{}",
        sink.url("/"),
        connection("a"),
        connection("b")
    );
    let gw = TestGateway::start(&config).await;
    // The lane's one slot is taken by an attempt that hangs until it times
    // out; meanwhile a's event and then b's queue up behind it, and a is paused.
    gw.post("/e/b", r#"{"hang":true}"#).await;
    sink.wait_for(1).await;
    for source in ["a", "b"] {
        let (_, accepted) = gw.post(&format!("/e/{source}"), "{}").await;
        gw.wait_routed(accepted["request_id"].as_str().unwrap())
            .await;
    }
    let paused = hookgate::ids::named_id("web", "a-to-shared");
    assert_eq!(toggle(&gw, &paused, "pause").await, 200);
    // When the slot frees, the lane's next batch is a full one (a's event),
    // held whole: it starts nothing, and b's event behind it must still go.
    let delivered = &sink.wait_for(2).await[1];
    let event_id = delivered.header("x-hookgate-event-id").unwrap();
    let event = gw.gateway.store.event(event_id).unwrap().unwrap();
    assert_eq!(
        event.connection_id,
        hookgate::ids::named_id("web", "b-to-shared")
    );
}

#[tokio::test]
async fn pausing_a_connection_stops_the_batch_its_lane_is_pacing_out() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&limited(
        &sink,
        "rate_limit = 1\nrate_limit_period = \"second\"",
    ))
    .await;
    post_many(&gw, "/e/hot", 4).await;
    // The first goes at once; the lane paces the others out, one a second.
    sink.wait_for(1).await;
    let connection = hookgate::ids::named_id("web", "hot-to-slow");
    assert_eq!(toggle(&gw, &connection, "pause").await, 200);
    gw.wait_events(3, |e| e.status == hookgate::model::EventStatus::Hold)
        .await;
    assert_eq!(sink.received().len(), 1, "nothing sent after the pause");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_destination_removed_and_added_back_while_its_lane_drains_gets_a_lane() {
    let sink = Sink::start_answering(vec![Reply::Hang], Reply::Status(200)).await;
    let with_destination = format!(
        "[limits]\ndelivery_timeout_ms = 1500\n\n{}",
        limited(&sink, "")
    );
    let gw = TestGateway::start(&with_destination).await;
    gw.post("/e/hot", "{}").await;
    sink.wait_for(1).await; // an attempt in flight until it times out
    let without = "[limits]\ndelivery_timeout_ms = 1500\n\n[[sources]]\nname = \"hot\"\n";
    let config = |text: &str| config_in(gw.dir.path(), text);
    gw.gateway.reload(config(without)).await.unwrap();
    // Back while the old lane still waits for that attempt: the event routed
    // now is delivered once the old lane has finished.
    gw.gateway.reload(config(&with_destination)).await.unwrap();
    let (_, later) = gw.post("/e/hot", "{}").await;
    let delivered = &sink.wait_for(2).await[1];
    assert_eq!(
        delivered.header("x-hookgate-request-id"),
        later["request_id"].as_str()
    );
}

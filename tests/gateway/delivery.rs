//! Delivery: fan-out, what arrives at the destination, and what each attempt records.

use crate::common::{route, Reply, Sink, TestGateway};
use hookgate::model::{AttemptStatus, AttemptTrigger, EventStatus};

#[tokio::test(flavor = "multi_thread")]
async fn one_source_fans_out_to_every_connected_destination() {
    let first = Sink::start(Reply::Status(200)).await;
    let second = Sink::start(Reply::Status(204)).await;
    let config = format!(
        "[[sources]]\nname = \"shop\"\n{}{}",
        route("shop", "a", &first.url("/a"), ""),
        route("shop", "b", &second.url("/b"), "")
    );
    let gw = TestGateway::start(&config).await;
    let (status, body) = gw.post("/e/shop", r#"{"order":7}"#).await;
    assert_eq!(status, 200);
    let request_id = body["request_id"].as_str().unwrap();
    for sink in [&first, &second] {
        let got = sink.wait_for(1).await;
        assert_eq!(&got[0].body[..], br#"{"order":7}"#);
        assert_eq!(got[0].header("x-hookgate-request-id"), Some(request_id));
    }
    let a = gw
        .wait_event(|e| {
            e.destination_id == hookgate::ids::named_id("des", "a")
                && e.status == EventStatus::Successful
        })
        .await;
    let b = gw
        .wait_event(|e| {
            e.destination_id == hookgate::ids::named_id("des", "b")
                && e.status == EventStatus::Successful
        })
        .await;
    assert_ne!(a.id, b.id);
    assert_eq!(
        first.received()[0].header("x-hookgate-event-id"),
        Some(a.id.as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn path_and_query_are_forwarded_after_the_destination_url() {
    let sink = Sink::start(Reply::Status(200)).await;
    let url = format!("{}?token=abc", sink.url("/base/"));
    let gw = TestGateway::start(&format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &url, "")
    ))
    .await;
    assert_eq!(
        gw.post("/e/shop/orders/create?x=1&y=two", "{}").await.0,
        200
    );
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].path, "/base/orders/create");
    assert_eq!(got[0].query.as_deref(), Some("token=abc&x=1&y=two"));
    assert_eq!(got[0].method, "POST");
}

#[tokio::test(flavor = "multi_thread")]
async fn path_forwarding_can_be_disabled_and_the_method_overridden() {
    let sink = Sink::start(Reply::Status(200)).await;
    let config = format!(
        "[[sources]]\nname = \"shop\"\n\n[[destinations]]\nname = \"orders\"\nurl = \"{}\"\nhttp_method = \"put\"\npath_forwarding_disabled = true\n\n[[connections]]\nname = \"c\"\nsource = \"shop\"\ndestination = \"orders\"\n",
        sink.url("/fixed")
    );
    let gw = TestGateway::start(&config).await;
    assert_eq!(gw.post("/e/shop/ignored/path?q=1", "{}").await.0, 200);
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].path, "/fixed");
    assert_eq!(got[0].query.as_deref(), Some("q=1"));
    assert_eq!(got[0].method, "PUT");
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_are_forwarded_without_hop_by_hop_ones() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), "")
    ))
    .await;
    let response = gw
        .http
        .post(gw.url("/e/shop"))
        .header("x-shopify-topic", "orders/create")
        .header("content-type", "application/json")
        .header("keep-alive", "timeout=5")
        .header("x-hookgate-attempt", "forged")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let got = &sink.wait_for(1).await[0];
    assert_eq!(got.header("x-shopify-topic"), Some("orders/create"));
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(got.header("keep-alive"), None);
    assert_eq!(
        got.header("x-hookgate-attempt"),
        Some("1"),
        "the sender cannot forge gateway headers"
    );
    assert_eq!(
        got.header("host"),
        Some(sink.addr.to_string().as_str()),
        "Host names the destination"
    );
    assert!(got
        .header("x-hookgate-event-id")
        .unwrap()
        .starts_with("evt_"));
}

#[tokio::test(flavor = "multi_thread")]
async fn attempts_record_status_latency_and_a_bounded_response_body() {
    let sink = Sink::start(Reply::StatusWithBody(200, "y".repeat(5000))).await;
    let config = format!(
        "[limits]\nmax_response_bytes = 100\n\n[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), "")
    );
    let gw = TestGateway::start(&config).await;
    gw.post("/e/shop", "{}").await;
    let event = gw.wait_event(|e| e.status == EventStatus::Successful).await;
    assert_eq!(event.attempts, 1);
    assert_eq!(event.response_status, Some(200));
    assert!(event.successful_at.is_some());
    let attempts = gw.gateway.store.attempts_of(&event.id).unwrap();
    assert_eq!(attempts.len(), 1);
    let attempt = &attempts[0];
    assert!(attempt.id.starts_with("atm_"));
    assert_eq!(attempt.status, AttemptStatus::Successful);
    assert_eq!(attempt.trigger, AttemptTrigger::Initial);
    assert_eq!(attempt.response_status, Some(200));
    assert_eq!(
        attempt.response_body.as_deref(),
        Some("y".repeat(100).as_str())
    );
    assert_eq!(attempt.requested_url, sink.url("/"));
    assert!(attempt.latency_ms < 30_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_connections_and_timeouts_are_named() {
    let hanging = Sink::start(Reply::Hang).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = format!(
        "[limits]\ndelivery_timeout_ms = 300\n\n[[sources]]\nname = \"shop\"\n{}{}",
        route("shop", "hangs", &hanging.url("/"), ""),
        route("shop", "refuses", &format!("http://{closed}/"), "")
    );
    let gw = TestGateway::start(&config).await;
    gw.post("/e/shop", "{}").await;
    let timed_out = gw
        .wait_event(|e| {
            e.status == EventStatus::Failed && e.error_code.as_deref() == Some("TIMEOUT")
        })
        .await;
    let refused = gw
        .wait_event(|e| {
            e.status == EventStatus::Failed && e.error_code.as_deref() == Some("CONNECTION_REFUSED")
        })
        .await;
    for event in [timed_out, refused] {
        let attempts = gw.gateway.store.attempts_of(&event.id).unwrap();
        assert_eq!(attempts.len(), 1, "no retry rule, no retries");
        assert_eq!(attempts[0].status, AttemptStatus::Failed);
        assert_eq!(attempts[0].response_status, None);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_destination_does_not_delay_another() {
    let hanging = Sink::start(Reply::Hang).await;
    let healthy = Sink::start(Reply::Status(200)).await;
    let config = format!(
        "[limits]\ndelivery_timeout_ms = 120000\n\n[[sources]]\nname = \"slow\"\n[[sources]]\nname = \"fast\"\n\n[[destinations]]\nname = \"hangs\"\nurl = \"{}\"\nconcurrent = 2\n\n[[connections]]\nname = \"to-hangs\"\nsource = \"slow\"\ndestination = \"hangs\"\n{}",
        hanging.url("/"),
        route("fast", "healthy", &healthy.url("/"), "")
    );
    let gw = TestGateway::start(&config).await;
    // Fill the hanging lane well past its concurrency, then send to the healthy one.
    for _ in 0..10 {
        assert_eq!(gw.post("/e/slow", "{}").await.0, 200);
    }
    hanging.wait_for(2).await;
    for _ in 0..20 {
        assert_eq!(gw.post("/e/fast", "{}").await.0, 200);
    }
    // All of them arrive while the hanging destination still holds its two
    // attempts (its timeout, 120 s, is far beyond the test's patience).
    healthy.wait_for(20).await;
    assert_eq!(
        hanging.received().len(),
        2,
        "the hanging lane stays capped at its concurrency"
    );
    assert_eq!(hanging.most_in_flight(), 2, "never more at once");
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_past_the_router_backlogs_bytes_are_read_back_from_the_journal() {
    let sink = Sink::start(Reply::Status(200)).await;
    // Not one body fits: the router reads every one back.
    let config = format!(
        "[limits]\nrouter_backlog_bytes = 1\n[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), "")
    );
    let gw = TestGateway::start(&config).await;
    let mut sent = Vec::new();
    for n in 0..3 {
        let body = format!("{{\"order\":{n},\"pad\":\"{}\"}}", "x".repeat(1000 * n));
        assert_eq!(gw.post("/e/shop", &body).await.0, 200);
        sent.push(body);
    }
    let mut delivered: Vec<String> = sink
        .wait_for(3)
        .await
        .iter()
        .map(|received| String::from_utf8(received.body.to_vec()).unwrap())
        .collect();
    delivered.sort();
    assert_eq!(delivered, sent);
}

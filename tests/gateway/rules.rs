//! Connection rules through the real gateway: filter, transform, delay,
//! deduplicate, and the shipped examples in rules/.

use crate::common::{route, Reply, Sink, TestGateway};
use hookgate::model::{EventStatus, IgnoredEvent};
use std::path::Path;
use std::time::{Duration, Instant};

fn one_route(sink: &Sink, rules: &str) -> String {
    format!(
        "[[sources]]\nname = \"app\"\n{}",
        route(
            "app",
            "dest",
            &sink.url("/"),
            &format!("rules = [\n{rules}\n]")
        )
    )
}

pub fn ignored(gw: &TestGateway) -> Vec<IgnoredEvent> {
    gw.gateway
        .store
        .ignored_events()
        .map(Result::unwrap)
        .collect()
}

fn repo_file(relative: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(relative)
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn filtered_events_are_stored_as_ignored_and_never_delivered() {
    let sink = Sink::start(Reply::Status(200)).await;
    let rule = r#"{ type = "filter", body = { type = { "$startsWith" = "invoice." }, amount = { "$gte" = 10 } } }"#;
    let gw = TestGateway::start(&one_route(&sink, rule)).await;
    let (_, dropped) = gw
        .post("/e/app", r#"{"type":"customer.created","amount":50}"#)
        .await;
    gw.post("/e/app", r#"{"type":"invoice.paid","amount":5}"#)
        .await;
    gw.post("/e/app", r#"{"type":"invoice.paid","amount":50}"#)
        .await;
    // Routing keeps request order: once the last one arrives, the others are decided.
    let delivered = sink.wait_for(1).await;
    assert_eq!(
        &delivered[0].body[..],
        br#"{"type":"invoice.paid","amount":50}"#
    );
    let ignored = ignored(&gw);
    assert_eq!(ignored.len(), 2);
    assert!(ignored.iter().all(|i| i.cause == "FILTERED"));
    assert!(ignored
        .iter()
        .any(|i| i.request_id == dropped["request_id"].as_str().unwrap()));
    assert_eq!(gw.gateway.store.events().count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transform_changes_body_headers_path_and_query_and_its_logs_are_kept() {
    let sink = Sink::start(Reply::Status(200)).await;
    let rule = r#"{ type = "transform", transformation = { name = "wrap", env = { TAG = "t1" }, code = """
addHandler('transform', (request, context) => {
  console.log('wrapping', request.body.id);
  request.body = { wrapped: request.body, via: context.connection.name };
  request.headers['x-tag'] = process.env.TAG;
  delete request.headers['x-secret'];
  request.path = '/rewritten' + request.path;
  request.query = 'page=' + request.parsed_query.p;
  return request;
});
""" } }"#;
    let gw = TestGateway::start(&one_route(&sink, rule)).await;
    let response = gw
        .http
        .post(gw.url("/e/app/orders?p=2"))
        .header("x-secret", "s")
        .header("content-type", "application/json")
        .body(r#"{"id":9}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let got = &sink.wait_for(1).await[0];
    let body: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"wrapped": {"id": 9}, "via": "app-to-dest"})
    );
    assert_eq!(got.header("x-tag"), Some("t1"));
    assert_eq!(got.header("x-secret"), None);
    assert_eq!(got.path, "/rewritten/orders");
    assert_eq!(got.query.as_deref(), Some("page=2"));
    let event = gw.wait_event(|e| e.status == EventStatus::Successful).await;
    assert!(event.has_own_payload);
    assert_eq!(event.transform_logs.len(), 1);
    assert_eq!(
        (
            event.transform_logs[0].level.as_str(),
            event.transform_logs[0].message.as_str()
        ),
        ("log", "wrapping 9")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_filter_before_a_transform_sees_the_original_and_after_it_the_result() {
    let before = Sink::start(Reply::Status(200)).await;
    let after = Sink::start(Reply::Status(200)).await;
    let tag = r#"{ type = "transform", transformation = { name = "tag", code = "addHandler('transform', (r) => { r.headers['x-tag'] = 'yes'; return r; })" } }"#;
    let filter = r#"{ type = "filter", headers = { "x-tag" = "yes" } }"#;
    let config = format!(
        "[[sources]]\nname = \"app\"\n{}{}",
        route(
            "app",
            "before",
            &before.url("/"),
            &format!("rules = [ {filter}, {tag} ]")
        ),
        route(
            "app",
            "after",
            &after.url("/"),
            &format!("rules = [ {tag}, {filter} ]")
        )
    );
    let gw = TestGateway::start(&config).await;
    gw.post("/e/app", "{}").await;
    assert_eq!(after.wait_for(1).await[0].header("x-tag"), Some("yes"));
    let ignored = ignored(&gw);
    assert_eq!(ignored.len(), 1);
    assert_eq!(ignored[0].cause, "FILTERED");
    assert_eq!(
        ignored[0].connection_id,
        hookgate::ids::named_id("web", "app-to-before")
    );
    assert!(before.received().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn runaway_and_throwing_scripts_are_stopped_and_recorded_while_traffic_flows() {
    let healthy = Sink::start(Reply::Status(200)).await;
    let unreachable = Sink::start(Reply::Status(200)).await;
    let looping = r#"{ type = "transform", transformation = { name = "loop", code = "addHandler('transform', (r) => { while (true) {} })" } }"#;
    let throwing = r#"{ type = "transform", transformation = { name = "throw", code = "addHandler('transform', (r) => { console.warn('about to fail'); throw new TypeError('no way'); })" } }"#;
    let config = format!(
        "[limits]\ntransform_timeout_ms = 200\n\n[[sources]]\nname = \"app\"\n{}{}{}",
        route(
            "app",
            "loops",
            &unreachable.url("/loop"),
            &format!("rules = [ {looping} ]")
        ),
        route(
            "app",
            "throws",
            &unreachable.url("/throw"),
            &format!("rules = [ {throwing} ]")
        ),
        route("app", "healthy", &healthy.url("/"), "")
    );
    let gw = TestGateway::start(&config).await;
    for _ in 0..3 {
        assert_eq!(gw.post("/e/app", "{}").await.0, 200);
    }
    healthy.wait_for(3).await;
    let ignored = ignored(&gw);
    assert_eq!(ignored.len(), 6);
    assert!(ignored.iter().all(|i| i.cause == "TRANSFORMATION_FAILED"));
    let loop_failures: Vec<_> = ignored
        .iter()
        .filter(|i| i.connection_id == hookgate::ids::named_id("web", "app-to-loops"))
        .collect();
    assert!(
        loop_failures.iter().all(|i| i
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("\"loop\"")
                && (d.contains("timed out") || d.contains("loop iteration")))),
        "{loop_failures:?}"
    );
    let throw_failures: Vec<_> = ignored
        .iter()
        .filter(|i| i.connection_id == hookgate::ids::named_id("web", "app-to-throws"))
        .collect();
    assert!(throw_failures
        .iter()
        .all(|i| i.detail.as_deref().unwrap().contains("no way")));
    assert_eq!(throw_failures[0].transform_logs[0].message, "about to fail");
    assert!(unreachable.received().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delay_holds_delivery_for_its_window_across_a_restart() {
    let sink = Sink::start(Reply::Status(200)).await;
    let config = one_route(&sink, r#"{ type = "delay", delay = 1500 }"#);
    let gw = TestGateway::start(&config).await;
    let posted = Instant::now();
    gw.post("/e/app", "{}").await;
    let scheduled = gw.wait_event(|e| e.status == EventStatus::Scheduled).await;
    let due = scheduled.next_attempt_at.unwrap();
    let gw = gw.restart(&config).await;
    let arrived = sink.wait_for(1).await[0].at;
    assert!(
        arrived - posted >= Duration::from_millis(1500),
        "delivered after {:?}",
        arrived - posted
    );
    let delivered = gw.wait_event(|e| e.status == EventStatus::Successful).await;
    assert!(
        delivered.last_attempt_at.unwrap() >= due,
        "the due time survived the restart"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deduplicate_drops_repeats_within_the_window_and_not_after() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&one_route(
        &sink,
        r#"{ type = "deduplicate", window = 400, include_fields = ["body.id"] }"#,
    ))
    .await;
    gw.post("/e/app", r#"{"id":1,"at":"a"}"#).await;
    // The window runs from the first request's arrival, before its answer.
    let first = Instant::now();
    gw.post("/e/app", r#"{"id":1,"at":"b"}"#).await;
    gw.post("/e/app", r#"{"id":2,"at":"c"}"#).await;
    sink.wait_for(2).await;
    let ignored = ignored(&gw);
    assert_eq!(ignored.len(), 1);
    assert_eq!(ignored[0].cause, "DEDUPLICATED");
    // The window is the behaviour under test: let it pass, then the same id is new again.
    tokio::time::sleep_until((first + Duration::from_millis(450)).into()).await;
    gw.post("/e/app", r#"{"id":1,"at":"d"}"#).await;
    let received = sink.wait_for(3).await;
    assert_eq!(&received[2].body[..], br#"{"id":1,"at":"d"}"#);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shipped_stripe_rules_deliver_only_live_invoices() {
    let sink = Sink::start(Reply::Status(200)).await;
    let config = format!(
        "[[sources]]\nname = \"stripe\"\n{}",
        route(
            "stripe",
            "billing",
            &sink.url("/"),
            &format!(
                "rules_file = \"{}\"",
                repo_file("rules/stripe-invoices-only.toml")
            )
        )
    );
    let gw = TestGateway::start(&config).await;
    gw.post(
        "/e/stripe",
        r#"{"id":"evt_1","type":"customer.created","livemode":true}"#,
    )
    .await;
    gw.post(
        "/e/stripe",
        r#"{"id":"evt_2","type":"invoice.paid","livemode":false}"#,
    )
    .await;
    gw.post(
        "/e/stripe",
        r#"{"id":"evt_3","type":"invoice.paid","livemode":true}"#,
    )
    .await;
    let delivered = sink.wait_for(1).await;
    assert_eq!(delivered[0].header("x-stripe-mode"), Some("live"));
    assert!(String::from_utf8_lossy(&delivered[0].body).contains("evt_3"));
    let causes: Vec<String> = ignored(&gw).into_iter().map(|i| i.cause).collect();
    assert_eq!(causes, ["FILTERED", "FILTERED"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shipped_shopify_transform_compacts_a_real_order() {
    let sink = Sink::start(Reply::Status(200)).await;
    let rule = format!(
        r#"{{ type = "transform", transformation = {{ name = "compact", code_file = "{}" }} }}"#,
        repo_file("rules/shopify-compact-order.js")
    );
    let gw = TestGateway::start(&one_route(&sink, &rule)).await;
    let order = std::fs::read_to_string(repo_file("fixtures/shopify/payload.json")).unwrap();
    gw.post("/e/app", &order).await;
    let body: serde_json::Value = serde_json::from_slice(&sink.wait_for(1).await[0].body).unwrap();
    assert_eq!(body["order_id"], 5617234567890u64);
    assert_eq!(body["total"], 42.5);
    assert_eq!(body["items"][0]["sku"], "TORCH-01");
    assert_eq!(body["customer"], "Zoë Müller");
}

#[test]
fn errors_in_a_rules_file_name_that_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "rules = [\n  { type = \"filter\" },\n]\n",
    )
    .unwrap();
    let config = "[[sources]]\nname = \"a\"\n[[destinations]]\nname = \"d\"\nurl = \"http://127.0.0.1:1/\"\n[[connections]]\nname = \"c\"\nsource = \"a\"\ndestination = \"d\"\nrules_file = \"bad.toml\"\n";
    let path = crate::common::write_config(dir.path(), config);
    let error = hookgate::Config::load(&path).unwrap_err().to_string();
    let expected = format!(
        "{}:2:3: rules[0]: a filter needs at least one of headers, body, query or path",
        dir.path().join("bad.toml").display()
    );
    assert!(error.starts_with(&expected), "{error}");
}

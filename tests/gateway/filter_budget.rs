//! A filter's work is bounded: a request whose filter would run long is
//! ignored (and says why) instead of holding the router, which routes every
//! source's requests in turn.

use crate::common::{route, Reply, Sink, TestGateway};
use hookgate::model::IgnoredEvent;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The report's body: `n` items with ids and `n` allowed ids (n = 40 000 is
/// 868 KiB+), sharing none.
fn two_id_lists(n: usize) -> String {
    let items: Vec<Value> = (0..n)
        .map(|i| json!({ "id": format!("id-{i:07}") }))
        .collect();
    let allowed: Vec<Value> = (0..n).map(|i| json!(format!("ok-{i:07}"))).collect();
    json!({ "items": items, "allowed": allowed }).to_string()
}

/// An item's id is among the allowed ones (`$ref` paths start at the body).
const IN_WITH_REF: &str =
    r#"{ type = "filter", body = { items = { id = { "$in" = { "$ref" = "allowed" } } } } }"#;

fn source_with_filter(source: &str, sink: &Sink, filter: &str) -> String {
    format!(
        "[[sources]]\nname = \"{source}\"\n{}",
        route(
            source,
            &format!("{source}-sink"),
            &sink.url("/"),
            &format!("rules = [{filter}]")
        )
    )
}

async fn ignored_event(gw: &TestGateway) -> IgnoredEvent {
    let deadline = Instant::now() + crate::common::PATIENCE;
    loop {
        if let Some(ignored) = gw.gateway.store.ignored_events().map(Result::unwrap).next() {
            return ignored;
        }
        assert!(Instant::now() < deadline, "no ignored event");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_filter_out_of_steps_ignores_its_event_and_says_why() {
    let sink = Sink::start(Reply::Status(200)).await;
    let config = format!(
        "[limits]\nfilter_max_steps = 5000\n{}",
        source_with_filter("app", &sink, IN_WITH_REF)
    );
    let gw = TestGateway::start(&config).await;
    gw.post("/e/app", &two_id_lists(5_000)).await;
    let ignored = ignored_event(&gw).await;
    assert_eq!(ignored.cause, "FILTERED");
    let detail = ignored.detail.unwrap_or_default();
    assert!(detail.contains("filter_max_steps"), "{detail}");
    // Within its budget the same filter matches.
    gw.post(
        "/e/app",
        r#"{"items": [{"id": "a"}, {"id": "b"}], "allowed": ["b"]}"#,
    )
    .await;
    sink.wait_for(1).await;
}

/// How long `other`'s request takes to be delivered when sent right after `body` to `source`.
async fn delivery_behind(gw: &TestGateway, source: &str, body: &str, other: &Sink) -> Duration {
    let delivered = other.received().len();
    gw.post(&format!("/e/{source}"), body).await;
    let started = Instant::now();
    gw.post("/e/other", "{}").await;
    other.wait_for(delivered + 1).await;
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_costly_filter_on_one_source_does_not_hold_another_sources_delivery() {
    let (heavy_sink, light_sink, other) = (
        Sink::start(Reply::Status(200)).await,
        Sink::start(Reply::Status(200)).await,
        Sink::start(Reply::Status(200)).await,
    );
    let config = format!(
        "{}{}[[sources]]\nname = \"other\"\n{}",
        source_with_filter("heavy", &heavy_sink, IN_WITH_REF),
        source_with_filter(
            "light",
            &light_sink,
            r#"{ type = "filter", body = { items = { "$exist" = true } } }"#
        ),
        route("other", "other-sink", &other.url("/"), "")
    );
    let gw = TestGateway::start(&config).await;
    let body = two_id_lists(40_000);
    // Both bodies are parsed the same; only the filters' work differs.
    let (mut heavy, mut light) = (Duration::MAX, Duration::MAX);
    for _ in 0..3 {
        heavy = heavy.min(delivery_behind(&gw, "heavy", &body, &other).await);
        light = light.min(delivery_behind(&gw, "light", &body, &other).await);
    }
    assert!(
        heavy.as_secs_f64() < 8.0 * light.as_secs_f64(),
        "behind the costly filter {heavy:?}, behind a cheap one {light:?}"
    );
}

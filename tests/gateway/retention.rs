//! Retention: the sweeper forgets what is done and older than `[retention]
//! max_age_ms` (journal segments included) and keeps what is still to deliver.

use crate::common::{route, Reply, Sink, TestGateway, PATIENCE};
use hookgate::model::EventStatus;
use hookgate::store::Swept;

/// Everything is old after a millisecond; sweeps every 20 ms; one journal
/// segment per group commit.
const RETENTION: &str =
    "[retention]\nmax_age_ms = 1\nsweep_every_ms = 20\n\n[limits]\njournal_segment_bytes = 1\n\n";

fn config(delivered: &Sink, failing: &Sink) -> String {
    let retry_in_an_hour =
        r#"rules = [ { type = "retry", strategy = "linear", count = 5, interval = 3600000 } ]"#;
    format!(
        "{RETENTION}[[sources]]\nname = \"shop\"\n\n[[sources]]\nname = \"crm\"\n\n{}{}",
        route("shop", "orders", &delivered.url("/"), ""),
        route("crm", "contacts", &failing.url("/"), retry_in_an_hour),
    )
}

/// Waits until the sweeps since `feed` was taken have forgotten at least
/// `requests` requests and `segments` journal segments between them.
async fn wait_swept(
    feed: &mut tokio::sync::broadcast::Receiver<Swept>,
    requests: u64,
    segments: u64,
) {
    let mut total = Swept::default();
    let swept = tokio::time::timeout(PATIENCE, async {
        while total.requests < requests || total.journal_segments < segments {
            let sweep = feed.recv().await.expect("sweep feed");
            total.requests += sweep.requests;
            total.journal_segments += sweep.journal_segments;
        }
    })
    .await;
    swept.unwrap_or_else(|_| panic!("sweeps forgot only {total:?}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sweeper_forgets_delivered_requests_and_keeps_those_still_to_deliver() {
    let delivered_sink = Sink::start(Reply::Status(200)).await;
    let failing_sink = Sink::start(Reply::Status(500)).await;
    let gw = TestGateway::start(&config(&delivered_sink, &failing_sink)).await;
    let mut sweeps = gw.gateway.store.subscribe_sweeps();

    let (_, answer) = gw.post("/e/shop", "{}").await;
    let delivered = answer["request_id"].as_str().unwrap().to_string();
    let done = gw
        .wait_event(|e| e.request_id == delivered && e.status == EventStatus::Successful)
        .await;
    let (_, answer) = gw.post("/e/crm", "{}").await;
    let retrying = answer["request_id"].as_str().unwrap().to_string();
    let waiting = gw
        .wait_event(|e| e.request_id == retrying && e.attempts == 1)
        .await;
    assert!(!waiting.status.is_terminal(), "{:?}", waiting.status);
    // The delivered request's segment (the oldest) goes once the one after it
    // is routed; the retrying request's segment stays.
    wait_swept(&mut sweeps, 1, 1).await;

    let request = |id: &str| format!("/2023-07-01/requests/{id}");
    let event = |id: &str| format!("/2023-07-01/events/{id}");
    assert_eq!(gw.api_get(&request(&delivered)).await.0, 404);
    assert_eq!(gw.api_get(&event(&done.id)).await.0, 404);
    let attempt = hookgate::ids::child_id("atm", &done.id, 0);
    let (status, _) = gw.api_get(&format!("/2023-07-01/attempts/{attempt}")).await;
    assert_eq!(status, 404);
    assert_eq!(gw.api_get(&request(&retrying)).await.0, 200);
    let (status, kept) = gw.api_get(&event(&waiting.id)).await;
    assert_eq!(status, 200, "{kept}");
    let journal = gw.dir.path().join("data/journal");
    assert!(!journal.join("0000000000.journal").exists());

    // The store opens without the deleted segment, and keeps what it kept.
    let gw = gw.restart(&config(&delivered_sink, &failing_sink)).await;
    assert_eq!(gw.api_get(&request(&retrying)).await.0, 200);
    let event = gw.gateway.store.event(&waiting.id).unwrap().expect("kept");
    assert_eq!(event.status, EventStatus::Scheduled);
    assert!(gw.gateway.store.event_payload(&event).unwrap().is_some());
}

/// Rejections have a retention of their own, shorter than the rest: here
/// the accepted request stays (`max_age_ms = 0` keeps everything else).
#[tokio::test(flavor = "multi_thread")]
async fn rejected_requests_are_forgotten_after_their_own_retention() {
    let sink = Sink::start(Reply::Status(200)).await;
    let config = format!(
        "[retention]\nmax_age_ms = 0\nrejections_max_age_ms = 1\nsweep_every_ms = 20\n\n[[sources]]\nname = \"shop\"\n\n{}",
        route("shop", "orders", &sink.url("/"), "")
    );
    let gw = TestGateway::start(&config).await;
    let mut sweeps = gw.gateway.store.subscribe_sweeps();
    let (status, rejected) = gw.post("/e/nope", "{}").await;
    assert_eq!(status, 404);
    let (_, accepted) = gw.post("/e/shop", "{}").await;
    let swept = tokio::time::timeout(PATIENCE, async {
        while sweeps.recv().await.expect("sweep feed").rejections == 0 {}
    })
    .await;
    assert!(swept.is_ok(), "no sweep forgot the rejection");
    let request = |answer: &serde_json::Value| {
        format!(
            "/2023-07-01/requests/{}",
            answer["request_id"].as_str().unwrap()
        )
    };
    assert_eq!(gw.api_get(&request(&rejected)).await.0, 404);
    assert_eq!(gw.api_get(&request(&accepted)).await.0, 200);
    assert_eq!(gw.gateway.store.rejection_bytes(None), (0, 0));
}

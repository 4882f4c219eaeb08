//! Cluster mode (preview, issue #23): gateways whose store keeps its records
//! in PostgreSQL, on a throwaway server (see `hookgate::store::test_postgres`).

use crate::common::*;
use hookgate::model::EventStatus;
use hookgate::store::test_postgres;

/// A `[store]` section on a new database, and a source routed to `sink`.
fn on_postgres(database: &str, sink: &Sink) -> String {
    format!(
        "[store]\nbackend = \"postgres\"\nurl = \"{database}\"\n\n[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), "")
    )
}

fn new_database() -> String {
    test_postgres::connection_string(&test_postgres::database().config)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_on_postgres_accepts_routes_delivers_and_lists_a_request() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&on_postgres(&new_database(), &sink)).await;
    let (status, body) = gw.post("/e/shop", r#"{"n":1}"#).await;
    assert_eq!(status, 200);
    let delivered = sink.wait_for(1).await;
    assert_eq!(&delivered[0].body[..], br#"{"n":1}"#);
    let request_id = body["request_id"].as_str().unwrap().to_string();
    gw.wait_event(|e| e.request_id == request_id && e.status == EventStatus::Successful)
        .await;
    let (status, page) = gw.api_get("/requests").await;
    assert_eq!(status, 200);
    assert_eq!(page["models"][0]["id"], request_id.as_str());
    let (status, events) = gw
        .api_get(&format!("/events?request_id={request_id}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(events["models"][0]["status"], "SUCCESSFUL");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_accepted_by_one_node_is_listed_by_the_other() {
    let sink = Sink::start(Reply::Status(200)).await;
    let config = on_postgres(&new_database(), &sink);
    let (a, b) = (
        TestGateway::start(&config).await,
        TestGateway::start(&config).await,
    );
    let (status, body) = a.post("/e/shop", "{}").await;
    assert_eq!(status, 200);
    let request_id = body["request_id"].as_str().unwrap().to_string();
    a.wait_routed(&request_id).await;
    let (status, page) = b.api_get("/requests").await;
    assert_eq!(status, 200);
    assert_eq!(page["models"][0]["id"], request_id.as_str());
}

//! The management API as a client written for Hookdeck's API `2023-07-01`
//! calls it: the reference's query shapes for bulk retries and lists, and
//! filters that are not understood refused rather than ignored.

use crate::common::{route, Reply, Sink, TestGateway};
use hookgate::model::EventStatus;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// Four events: `{"n":0}` and `{"n":1}` fail with a 500, the others succeed.
async fn two_failed_two_delivered() -> (Sink, TestGateway) {
    let sink = Sink::start_with(|received| {
        let body: Value = serde_json::from_slice(&received.body).unwrap_or_default();
        Reply::Status(if body["n"].as_u64() < Some(2) {
            500
        } else {
            200
        })
    })
    .await;
    let config = format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), "")
    );
    let gw = TestGateway::start(&config).await;
    for n in 0..4 {
        gw.post("/e/shop", &format!("{{\"n\":{n}}}")).await;
    }
    sink.wait_for(4).await;
    gw.wait_events(4, |e| e.attempts == 1 && e.status != EventStatus::Queued)
        .await;
    (sink, gw)
}

/// `path?query=<the JSON, URL-encoded>`
fn with_json_query(path: &str, query: &Value) -> String {
    let encoded: String =
        url::form_urlencoded::byte_serialize(query.to_string().as_bytes()).collect();
    format!("{path}?query={encoded}")
}

/// Polls a bulk retry until it is no longer running.
async fn finished_job(gw: &TestGateway, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + crate::common::PATIENCE;
    loop {
        let (_, job) = gw.api_get(&format!("/bulk/events/retry/{id}")).await;
        if job["status"] != "running" {
            return job;
        }
        assert!(tokio::time::Instant::now() < deadline, "job still running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn attempts_by_n(gw: &TestGateway) -> Vec<(u64, u32)> {
    let store = &gw.gateway.store;
    let mut found: Vec<(u64, u32)> = store
        .events()
        .map(Result::unwrap)
        .map(|e| {
            let payload = store.event_payload(&e).unwrap().unwrap();
            let body: Value = serde_json::from_slice(&payload.body).unwrap();
            (body["n"].as_u64().unwrap(), e.attempts)
        })
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bulk_retry_whose_reference_query_matches_nothing_retries_nothing() {
    let (sink, gw) = two_failed_two_delivered().await;
    // The reference's example shape (L6535-6538), in a window no event is in.
    let query = json!({
        "dir": "desc",
        "limit": 250,
        "order_by": "created_at",
        "created_at": { "gte": "2099-05-02T02:30:00.000Z", "lte": "2099-05-03T02:29:59.999Z" }
    });
    let (status, plan) = gw
        .api_get(&with_json_query(
            "/2023-07-01/bulk/events/retry/plan",
            &query,
        ))
        .await;
    assert_eq!((status, plan["estimated_count"].clone()), (200, json!(0)));

    let (status, created) = gw
        .api_send(
            Method::POST,
            "/2023-07-01/bulk/events/retry",
            json!({ "query": query }),
        )
        .await;
    assert_eq!(
        (status, created["estimated_count"].clone()),
        (200, json!(0))
    );
    let job = finished_job(&gw, created["id"].as_str().unwrap()).await;
    assert_eq!(
        (job["status"].as_str(), job["completed_count"].as_u64()),
        (Some("completed"), Some(0))
    );
    assert_eq!(attempts_by_n(&gw), vec![(0, 1), (1, 1), (2, 1), (3, 1)]);
    assert_eq!(sink.received().len(), 4, "nothing was delivered again");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bulk_retry_retries_exactly_what_its_nested_query_selects() {
    let (sink, gw) = two_failed_two_delivered().await;
    let query = json!({
        "response_status": { "gte": 500 },
        "created_at": { "gte": "2020-01-01" },
        "status": ["FAILED", "SCHEDULED"]
    });
    let (_, plan) = gw
        .api_get(&with_json_query("/bulk/events/retry/plan", &query))
        .await;
    assert_eq!(plan["estimated_count"], 2);
    let (_, plan) = gw
        .api_get(
            "/bulk/events/retry/plan?response_status[gte]=500&status[]=FAILED&status[]=SCHEDULED",
        )
        .await;
    assert_eq!(plan["estimated_count"], 2, "the same filters as parameters");

    let (status, created) = gw
        .api_send(
            Method::POST,
            "/bulk/events/retry",
            json!({ "query": query }),
        )
        .await;
    assert_eq!(
        (status, created["estimated_count"].clone()),
        (200, json!(2))
    );
    let job = finished_job(&gw, created["id"].as_str().unwrap()).await;
    assert_eq!(job["completed_count"], 2);
    let again: Vec<Value> = sink.wait_for(6).await[4..]
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["n"].clone())
        .collect();
    assert!(again.contains(&json!(0)) && again.contains(&json!(1)));
    gw.wait_events(2, |e| e.attempts == 2).await;
    assert_eq!(attempts_by_n(&gw), vec![(0, 2), (1, 2), (2, 1), (3, 1)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bulk_retry_with_a_filter_it_does_not_know_is_refused_and_retries_nothing() {
    let (sink, gw) = two_failed_two_delivered().await;
    for (query, field) in [
        (json!({ "colour": "red" }), "colour"),
        (json!({ "status": { "gte": "FAILED" } }), "status[gte]"),
        (json!({ "attempts": { "near": 3 } }), "attempts[near]"),
        (
            json!({ "created_at": { "gte": { "nested": 1 } } }),
            "created_at[gte][nested]",
        ),
    ] {
        let (status, error) = gw
            .api_send(
                Method::POST,
                "/bulk/events/retry",
                json!({ "query": query }),
            )
            .await;
        assert_eq!(
            (status, error["data"]["field"].as_str()),
            (422, Some(field))
        );
        let (status, error) = gw
            .api_get(&with_json_query("/bulk/events/retry/plan", &query))
            .await;
        assert_eq!(
            (status, error["data"]["field"].as_str()),
            (422, Some(field))
        );
    }
    for kind in ["requests", "ignored-events"] {
        let (status, error) = gw
            .api_send(
                Method::POST,
                &format!("/bulk/{kind}/retry"),
                json!({ "query": { "created_at": { "after": "2020-01-01" } } }),
            )
            .await;
        assert_eq!(
            (status, error["data"]["field"].as_str()),
            (422, Some("created_at[after]"))
        );
    }
    let (status, error) = gw.api_get("/bulk/events/retry/plan?query=[1]").await;
    assert_eq!(
        (status, error["data"]["field"].as_str()),
        (422, Some("query"))
    );
    let (_, jobs) = gw.api_get("/bulk/events/retry").await;
    assert_eq!(jobs["count"], 0, "no job was created");
    assert_eq!(attempts_by_n(&gw), vec![(0, 1), (1, 1), (2, 1), (3, 1)]);
    assert_eq!(sink.received().len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bulk_retry_of_requests_acts_only_on_its_query() {
    let (sink, gw) = two_failed_two_delivered().await;
    let window = json!({ "created_at": { "gte": "2099-01-01" } });
    let (status, created) = gw
        .api_send(
            Method::POST,
            "/bulk/requests/retry",
            json!({ "query": window }),
        )
        .await;
    assert_eq!(
        (status, created["estimated_count"].clone()),
        (200, json!(0))
    );
    let (_, plan) = gw
        .api_get(&with_json_query(
            "/bulk/requests/retry/plan",
            &json!({ "created_at": { "lte": "2099-01-01" } }),
        ))
        .await;
    assert_eq!(plan["estimated_count"], 4);
    assert_eq!(sink.received().len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn events_filter_on_attempts_and_response_status_with_operators() {
    let (_sink, gw) = two_failed_two_delivered().await;
    let count = |path: &'static str| {
        let gw = &gw;
        async move {
            let (status, list) = gw.api_get(path).await;
            assert_eq!(status, 200, "{path}: {list}");
            list["count"].as_u64().unwrap()
        }
    };
    assert_eq!(count("/events?response_status[gte]=500").await, 2);
    assert_eq!(count("/events?response_status[lt]=500").await, 2);
    assert_eq!(
        count("/events?response_status[gt]=200&response_status[lte]=500").await,
        2
    );
    assert_eq!(count("/events?response_status=200").await, 2);
    assert_eq!(
        count("/events?response_status[]=200&response_status[]=500").await,
        4
    );
    assert_eq!(count("/events?attempts[gte]=5").await, 0);
    assert_eq!(count("/events?attempts[lte]=1&attempts[gt]=0").await, 4);
    assert_eq!(count("/events?attempts=1").await, 4);
    let (status, error) = gw.api_get("/events?attempts[gte]=many").await;
    assert_eq!(
        (status, error["data"]["field"].as_str()),
        (422, Some("attempts[gte]"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_list_answers_422_naming_a_parameter_it_does_not_know() {
    let (_sink, gw) = two_failed_two_delivered().await;
    for (path, field) in [
        ("/events?colour=red", "colour"),
        ("/events?status[gte]=FAILED", "status[gte]"),
        ("/2023-07-01/requests?status=accepted&nope=1", "nope"),
        ("/ignored_events?source_id=src_x", "source_id"),
        ("/attempts?event_id=evt_x&status=FAILED", "status"),
        ("/sources?name[gte]=a", "name[gte]"),
        ("/destinations?url=x", "url"),
        ("/connections?paused=true", "paused"),
        ("/transformations?name=x", "name"),
        ("/bookmarks?label=x", "label"),
        ("/issues?severity=high", "severity"),
        ("/issue-triggers?channel=email", "channel"),
        ("/bulk/events/retry?whatever=1", "whatever"),
    ] {
        let (status, error) = gw.api_get(path).await;
        assert_eq!(
            (status, error["data"]["field"].as_str()),
            (422, Some(field)),
            "{path}: {error}"
        );
    }
    // What lists know keeps working, the paging parameters everywhere.
    for path in [
        "/events?status=FAILED&include=data&limit=10&dir=asc&order_by=created_at",
        "/requests?id[0]=req_x&id[1]=req_y&status=accepted",
        "/sources?name[contains]=sh&limit=5",
        "/transformations?limit=5&dir=desc",
    ] {
        let (status, list) = gw.api_get(path).await;
        assert_eq!(status, 200, "{path}: {list}");
    }
}

//! The management API as a client written for Hookdeck's API `2023-07-01`
//! calls it: the reference's query shapes for bulk retries and lists, and
//! filters that are not understood refused rather than ignored.

use crate::common::{bulk_retry_left_running, route, Reply, Sink, TestGateway};
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
    let gw = TestGateway::start(&shop(&sink)).await;
    for n in 0..4 {
        gw.post("/e/shop", &format!("{{\"n\":{n}}}")).await;
    }
    sink.wait_for(4).await;
    gw.wait_events(4, |e| e.status.is_terminal()).await;
    (sink, gw)
}

fn shop(sink: &Sink) -> String {
    format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), "")
    )
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

/// `POST /bulk/{kind}/retry` with `{"query": query}`.
async fn start_bulk(gw: &TestGateway, kind: &str, query: &Value) -> (u16, Value) {
    let body = json!({ "query": query });
    gw.api_send(Method::POST, &format!("/bulk/{kind}/retry"), body)
        .await
}

/// The `count` of a list that must answer 200.
async fn count(gw: &TestGateway, path: &str) -> u64 {
    let (status, list) = gw.api_get(path).await;
    assert_eq!(status, 200, "{path}: {list}");
    list["count"].as_u64().unwrap()
}

/// Plans a bulk retry of events with `query` (as `?query=` JSON), starts
/// it, checks that both count the same, and waits for it to finish.
/// Returns its estimated and completed counts.
async fn planned_and_finished(gw: &TestGateway, query: &Value) -> (u64, u64) {
    let plan_path = with_json_query("/2023-07-01/bulk/events/retry/plan", query);
    let (status, plan) = gw.api_get(&plan_path).await;
    assert_eq!(status, 200, "{plan}");
    let (status, created) = start_bulk(gw, "events", query).await;
    assert_eq!(
        (status, &created["estimated_count"]),
        (200, &plan["estimated_count"])
    );
    let job = finished_job(gw, created["id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "completed");
    let count = |name: &str| job[name].as_u64().unwrap();
    (count("estimated_count"), count("completed_count"))
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
    assert_eq!(planned_and_finished(&gw, &query).await, (0, 0));
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
        .api_get(
            "/bulk/events/retry/plan?response_status[gte]=500&status[]=FAILED&status[]=SCHEDULED",
        )
        .await;
    assert_eq!(plan["estimated_count"], 2, "the same filters as parameters");

    assert_eq!(planned_and_finished(&gw, &query).await, (2, 2));
    let again: Vec<Value> = sink.wait_for(6).await[4..]
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["n"].clone())
        .collect();
    assert!(again.contains(&json!(0)) && again.contains(&json!(1)));
    gw.wait_events(2, |e| e.attempts == 2).await;
    assert_eq!(attempts_by_n(&gw), vec![(0, 2), (1, 2), (2, 1), (3, 1)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_retries_show_their_query_as_an_object_and_are_listed_by_the_references_filters() {
    let (_sink, gw) = two_failed_two_delivered().await;
    let query = json!({ "status": ["FAILED"], "response_status": { "gte": 500 } });
    planned_and_finished(&gw, &query).await;
    let (_, plan) = gw
        .api_get("/bulk/events/retry/plan?created_at[gte]=2020-01-01")
        .await;
    assert_eq!(
        (&plan["estimated_count"], &plan["estimated_batch"]),
        (&json!(4), &json!(1))
    );

    let (_, jobs) = gw.api_get("/bulk/events/retry").await;
    let job = &jobs["models"][0];
    assert_eq!(
        job["query"], query,
        "as the reference's object (L6530-6539)"
    );
    assert_eq!(
        (
            &job["in_progress"],
            &job["estimated_batch"],
            &job["processed_batch"]
        ),
        (&json!(false), &json!(1), &json!(1))
    );
    let id = job["id"].as_str().unwrap();
    assert_eq!(count(&gw, &format!("/bulk/events/retry?id={id}")).await, 1);
    assert_eq!(count(&gw, "/bulk/events/retry?id=bch_other").await, 0);
    assert_eq!(count(&gw, "/bulk/events/retry?in_progress=false").await, 1);
    assert_eq!(count(&gw, "/bulk/events/retry?in_progress=true").await, 0);
    assert_eq!(
        count(&gw, "/bulk/events/retry?completed_at[gte]=2020-01-01").await,
        1
    );
    assert_eq!(
        count(&gw, "/bulk/events/retry?cancelled_at[any]=true").await,
        0
    );
    assert_eq!(
        count(&gw, "/bulk/events/retry?created_at[gte]=2099-01-01").await,
        0
    );
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
        let (status, error) = start_bulk(&gw, "events", &query).await;
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
        let after = json!({ "created_at": { "after": "2020-01-01" } });
        let (status, error) = start_bulk(&gw, kind, &after).await;
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
    let (status, created) = start_bulk(&gw, "requests", &window).await;
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
async fn numbers_filter_with_operators_on_events_and_requests() {
    let (_sink, gw) = two_failed_two_delivered().await;
    assert_eq!(count(&gw, "/events?response_status[gte]=500").await, 2);
    assert_eq!(count(&gw, "/events?response_status[lt]=500").await, 2);
    assert_eq!(
        count(
            &gw,
            "/events?response_status[gt]=200&response_status[lte]=500"
        )
        .await,
        2
    );
    assert_eq!(count(&gw, "/events?response_status=200").await, 2);
    assert_eq!(
        count(&gw, "/events?response_status[]=200&response_status[]=500").await,
        4
    );
    assert_eq!(count(&gw, "/events?attempts[gte]=5").await, 0);
    assert_eq!(
        count(&gw, "/events?attempts[lte]=1&attempts[gt]=0").await,
        4
    );
    assert_eq!(count(&gw, "/events?attempts=1").await, 4);
    assert_eq!(count(&gw, "/events?successful_at[any]=true").await, 2);
    assert_eq!(count(&gw, "/events?successful_at[gte]=2099-01-01").await, 0);
    // search_term: a text anywhere in the payload (reference L4634, L3866).
    assert_eq!(count(&gw, "/events?search_term=%22n%22%3A3").await, 1);
    assert_eq!(count(&gw, "/requests?search_term=%22n%22%3A").await, 4);
    assert_eq!(
        count(&gw, "/requests?search_term=nothing-like-this").await,
        0
    );
    let (status, error) = gw.api_get("/events?search_term=ab").await;
    assert_eq!(
        (status, error["data"]["field"].as_str()),
        (422, Some("search_term"))
    );
    // Requests: their counts of events and ignored events (reference L3907-3918).
    assert_eq!(count(&gw, "/requests?events_count=1").await, 4);
    assert_eq!(count(&gw, "/requests?events_count[gte]=2").await, 0);
    assert_eq!(
        count(&gw, "/requests?ignored_count=0&events_count[lt]=2").await,
        4
    );
    assert_eq!(count(&gw, "/requests?ignored_count[gt]=0").await, 0);
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
        ("/requests/req_x/events?colour=red", "colour"),
        ("/requests/req_x/ignored-events?status=FAILED", "status"),
        ("/attempts?event_id=evt_x&status=FAILED", "status"),
        ("/sources?name[gte]=a", "name[gte]"),
        ("/destinations?url[gte]=x", "url[gte]"),
        ("/connections?paused=true", "paused"),
        ("/transformations?code=x", "code"),
        ("/bookmarks?alias=x", "alias"),
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

#[tokio::test(flavor = "multi_thread")]
async fn every_path_is_served_under_both_versions_and_under_the_references_other_spellings() {
    let (_sink, gw) = two_failed_two_delivered().await;
    for prefix in ["", "/2023-07-01", "/2024-03-01"] {
        let (status, list) = gw.api_get(&format!("{prefix}/events?limit=1")).await;
        assert_eq!((status, list["count"].as_u64()), (200, Some(1)), "{prefix}");
    }
    let (status, error) = gw.api_get("/2019-01-01/events").await;
    assert_eq!((status, error["code"].as_str()), (404, Some("NOT_FOUND")));

    // `/webhooks` is `/connections` (L345).
    let (_, connections) = gw.api_get("/connections").await;
    let (status, webhooks) = gw.api_get("/2024-03-01/webhooks").await;
    assert_eq!((status, &webhooks), (200, &connections));
    let id = connections["models"][0]["id"].as_str().unwrap();
    let (status, one) = gw.api_get(&format!("/webhooks/{id}")).await;
    assert_eq!((status, one["id"].as_str()), (200, Some(id)));
    let (status, paused) = gw
        .api_send(
            Method::PUT,
            &format!("/2023-07-01/webhooks/{id}/pause"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{paused}");
    let (_, one) = gw.api_get(&format!("/connections/{id}")).await;
    assert!(one["paused_at"].is_string(), "{one}");
    let (_, sources) = gw.api_get("/sources").await;
    let (_, destinations) = gw.api_get("/destinations").await;
    let body = json!({
        "name": "made-as-a-webhook",
        "source_id": sources["models"][0]["id"],
        "destination_id": destinations["models"][0]["id"],
    });
    let (status, created) = gw.api_send(Method::POST, "/webhooks", body).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(count(&gw, "/connections?name=made-as-a-webhook").await, 1);

    // `GET /requests/:id/ignored-events` (L3726) as the underscore form.
    let (_, requests) = gw.api_get("/requests?limit=1").await;
    let request = requests["models"][0]["id"].as_str().unwrap();
    let (status, dashed) = gw
        .api_get(&format!("/requests/{request}/ignored-events"))
        .await;
    let (_, underscored) = gw
        .api_get(&format!("/requests/{request}/ignored_events"))
        .await;
    assert_eq!((status, dashed), (200, underscored));

    // A request's events take the filters of /events (reference L4140-4230).
    let mut by_status = 0;
    for status in ["SUCCESSFUL", "FAILED"] {
        by_status += count(&gw, &format!("/requests/{request}/events?status={status}")).await;
    }
    assert_eq!(by_status, 1);
    let path = format!("/requests/{request}/events?attempts[gte]=2");
    assert_eq!(count(&gw, &path).await, 0);

    // `GET /bulk/events/retry/plan/generate` (L6438) as `/plan`.
    let failed = json!({ "response_status": { "gte": 500 } });
    let (status, plan) = gw
        .api_get(&with_json_query(
            "/2023-07-01/bulk/events/retry/plan/generate",
            &failed,
        ))
        .await;
    assert_eq!((status, plan["estimated_count"].as_u64()), (200, Some(2)));

    // `POST /bulk/ignored-events/:id/cancel` (L6829) as `/retry/:id/cancel`,
    // which keeps working beside it.
    for path in [
        "/bulk/ignored-events/bch_missing/cancel",
        "/bulk/ignored-events/retry/bch_missing/cancel",
    ] {
        let (status, error) = gw.api_send(Method::POST, path, json!({})).await;
        assert_eq!(status, 404);
        assert!(
            error["message"].as_str().unwrap().contains("no bulk retry"),
            "{path}: {error}"
        );
    }
    let (status, _) = gw.api_get("/bulk/ignored-events/retry").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_carry_a_code_and_the_rate_reset_is_an_iso_time() {
    let (_sink, gw) = two_failed_two_delivered().await;
    let (status, error) = gw.api_get("/events/evt_missing").await;
    assert_eq!((status, error["code"].as_str()), (404, Some("NOT_FOUND")));
    assert_eq!(
        (error["handled"].as_bool(), error["status"].as_u64()),
        (Some(true), Some(404))
    );
    assert!(error["message"].is_string() && error["data"].is_object());
    let (status, error) = gw.api_get("/events?limit=0").await;
    assert_eq!(
        (status, error["code"].as_str()),
        (422, Some("UNPROCESSABLE_ENTITY"))
    );
    let anonymous = gw
        .api_without_key(Method::GET, "/events")
        .send()
        .await
        .unwrap();
    let error: Value = anonymous.json().await.unwrap();
    assert_eq!(error["code"], "UNAUTHORIZED");

    let answer = gw.api(Method::GET, "/events?limit=1").send().await.unwrap();
    // 240 calls a minute per key unless configured otherwise (L213).
    assert_eq!(answer.headers()["x-ratelimit-limit"], "240");
    let reset = answer.headers()["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .to_string();
    let reset = time::OffsetDateTime::parse(&reset, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| panic!("{reset} is not an ISO time"));
    assert!(reset > time::OffsetDateTime::now_utc() - Duration::from_secs(60));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_is_also_at_the_references_address() {
    let (_sink, gw) = two_failed_two_delivered().await;
    let addr = gw.gateway.api_addr.unwrap();
    let fetch = |path: &'static str| {
        let http = gw.http.clone();
        async move {
            let answer = http
                .get(format!("http://{addr}{path}"))
                .send()
                .await
                .unwrap();
            (
                answer.status().as_u16(),
                answer.json::<Value>().await.unwrap(),
            )
        }
    };
    let (status, reference) = fetch("/2023-07-01/openapi").await;
    assert_eq!(status, 200, "readable without a key, as /openapi.json");
    assert_eq!(reference, fetch("/openapi.json").await.1);
    assert!(reference["paths"]["/2023-07-01/events"].is_object());
    assert_eq!(fetch("/2024-03-01/openapi").await.1, reference);
}

/// A job stored with a query no filter reads (as the bulk retry that flattened
/// `{"created_at":{"gte":…}}` into `created_at={…}` left them) is cancelled
/// when it resumes, not run over every event.
#[tokio::test(flavor = "multi_thread")]
async fn a_stored_bulk_retry_with_a_query_not_understood_is_cancelled_and_retries_nothing() {
    let (sink, gw) = two_failed_two_delivered().await;
    let legacy = bulk_retry_left_running(
        "bch_legacy",
        "created_at=%7B%22gte%22%3A%222099-01-01%22%7D",
        4,
    );
    gw.gateway.store.save_bulk_retry(&legacy).unwrap();
    let gw = gw.restart(&shop(&sink)).await;
    let job = finished_job(&gw, "bch_legacy").await;
    assert_eq!(
        (job["status"].as_str(), job["completed_count"].as_u64()),
        (Some("cancelled"), Some(0))
    );
    assert_eq!(attempts_by_n(&gw), vec![(0, 1), (1, 1), (2, 1), (3, 1)]);
    assert_eq!(sink.received().len(), 4);
}

/// The API takes and answers JSON only (L27): a body that is not JSON is a
/// 400 error object, and nothing is created.
#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_is_not_json_is_a_400_error_object() {
    let gw = TestGateway::start("").await;
    for body in ["name=shop", "{\"name\": "] {
        let answer = gw
            .api(Method::POST, "/sources")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        let error: Value = answer.json().await.unwrap();
        assert_eq!(
            (status, error["status"].as_u64()),
            (400, Some(400)),
            "{body}: {error}"
        );
        assert!(
            error["code"].is_string() && error["message"].is_string(),
            "{error}"
        );
    }
    assert_eq!(gw.api_get("/sources").await.1["count"], 0);
}

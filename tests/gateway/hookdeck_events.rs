//! Requests, events, attempts and ignored events as Hookdeck's API
//! `2023-07-01` shows them: every example of the reference for these
//! endpoints is checked field by field (present, and of the example's JSON
//! type), and the lists sort, page and filter as the reference says.

use crate::common::{route, Reply, Sink, TestGateway};
use crate::reference_shape::{assert_shape, Leeway};
use hookgate::model::EventStatus;
use reqwest::Method;
use serde_json::{json, Value};

/// The reference's `GET /requests/:id` example (L4005-4040).
const REQUEST_EXAMPLE: &str = r#"{
  "id": "req_M3ltWOSF8G6oMS9GS9XX", "team_id": "tm_AkLVUIfTy4nn", "verified": false,
  "rejection_cause": null, "original_event_data_id": "edt_3DzFKL5UU8TKsXJjgct7",
  "ingest_priority": "NORMAL", "ingested_at": "2022-07-29T13:55:10.238Z",
  "source_id": "src_iEfHpkswbzGW", "updated_at": "2022-07-29T13:55:15.369Z",
  "created_at": "2022-07-29T13:55:15.092Z", "events_count": 2, "cli_events_count": 0,
  "ignored_count": 4,
  "data": { "headers": { "content-type": "application/json" }, "body": { "example": true },
            "query": "", "parsed_query": {}, "path": "/" }
}"#;

/// The reference's `GET /events/:id` example (L4740-4775).
const EVENT_EXAMPLE: &str = r#"{
  "id": "evt_njCeMZHzNhJWdkkZ7PLCfEw5", "team_id": "tm_nlcetVe8k1lMAY0KR0OxNuHr",
  "webhook_id": "web_UfM5ZY2wxLD6sLhDaKMcx5wp", "source_id": "src_9YmY0SHklrv6zBQz78cKGwSW",
  "destination_id": "des_fYYCay655IHwbOMhIaUXtNq2", "attempts": 4, "response_status": 422,
  "last_attempt_at": "2021-08-02T13:52:16.439Z", "next_attempt_at": null,
  "successful_at": "2021-08-01T21:56:35.181Z", "updated_at": "2021-08-02T13:52:16.813Z",
  "created_at": "2021-08-01T21:44:57.513Z", "status": "FAILED",
  "event_data_id": "evtreq_HlJhb39nsjIP0FDsU3SY0fo7", "cli_id": null,
  "request_id": "req_M3ltWOSF8G6oMS9GS9XX", "error_code": null,
  "data": { "headers": { "content-type": "application/json" }, "body": { "test": true },
            "query": "", "parsed_query": {}, "path": "/" }
}"#;

/// The reference's attempt object example (L5040-5061).
const ATTEMPT_EXAMPLE: &str = r#"{
  "id": "atm_12n4ffxk8adnqqj", "team_id": "tm_5b3mzbxk83c0k7i",
  "event_id": "evt_12n4ffxk8admulc", "response_status": 200,
  "successful_at": "2022-07-29T21:47:07.152Z", "updated_at": "2022-07-29T21:47:07.154Z",
  "created_at": "2022-07-29T21:47:06.816Z", "error_code": null, "bulk_retry_id": null,
  "status": "SUCCESSFUL", "trigger": "INITIAL", "attempt_number": 1,
  "delivered_at": "2022-07-29T21:47:07.052Z", "responded_at": "2022-07-29T21:47:07.152Z",
  "delivery_latency": 44, "response_latency": 100, "archived_at": null, "body": "Accepted",
  "requested_url": "https://mock.hookdeck.com", "http_method": "POST"
}"#;

/// The reference's retry answer's attempt (L4828-4845).
const QUEUED_ATTEMPT_EXAMPLE: &str = r#"{
  "id": "atm_bfD1fTzCmj9nfiRNQ4j6YqHV", "team_id": "tm_nlcetVe8k1lMAY0KR0OxNuHr",
  "event_id": "evt_njCeMZHzNhJWdkkZ7PLCfEw5", "response_status": null, "successful_at": null,
  "updated_at": "2021-08-02T14:12:56.319Z", "created_at": "2021-08-02T14:12:56.353Z",
  "error_code": null, "bulk_retry_id": null, "status": "QUEUED", "trigger": "MANUAL",
  "attempt_number": 5, "delivered_at": null, "responded_at": null, "delivery_latency": null,
  "response_latency": null
}"#;

/// The reference's ignored event example (L4364-4372).
const IGNORED_EXAMPLE: &str = r#"{
  "request_id": "req_M3ltWOSF8G6oMS9GS9XX", "team_id": "tm_AkLVUIfTy4nn",
  "ignored_event_cause_id": 1475491804, "id": 1475491804, "cause": "FILTERED",
  "webhook_id": "web_E2iWnvsY0RQE", "meta": null
}"#;

/// Fields null until there is something to say (`data` without
/// `include=data`, the times and outcome of an event not yet attempted or
/// not yet successful), and the sender's data: a body is JSON or text,
/// whatever the example's was (L4967).
const SHAPE: Leeway = Leeway {
    null_allowed: &[
        "data",
        "successful_at",
        "last_attempt_at",
        "next_attempt_at",
        "response_status",
        "error_code",
        "delivered_at",
        "responded_at",
        "delivery_latency",
        "response_latency",
    ],
    data: &["body", "headers"],
};

/// `actual` has every field of the reference's `example` (JSON text).
fn assert_shaped_like(actual: &Value, example: &str) {
    let example: Value = serde_json::from_str(example).unwrap();
    assert_shape(actual, &example, SHAPE);
}

fn shop(sink: &Sink, connection_extra: &str) -> String {
    format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), connection_extra)
    )
}

/// A request to `shop` with `body`, routed; its id.
async fn routed_request(gw: &TestGateway, body: &str) -> String {
    let (status, accepted) = gw.post("/e/shop", body).await;
    assert_eq!(status, 200);
    let id = accepted["request_id"].as_str().unwrap().to_string();
    gw.wait_routed(&id).await;
    id
}

fn ids(list: &Value) -> Vec<&str> {
    list["models"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_events_and_attempts_carry_every_field_of_the_reference() {
    let sink = Sink::start(Reply::StatusWithBody(200, r#"{"received":true}"#.into())).await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    let request_id = routed_request(&gw, r#"{"example":true}"#).await;
    let event = gw.wait_event(|e| e.status == EventStatus::Successful).await;
    let team = gw.api_get("/requests").await.1["models"][0]["team_id"].clone();
    assert!(team.as_str().unwrap().starts_with("tm_"), "{team}");

    let (_, request) = gw.api_get(&format!("/requests/{request_id}")).await;
    assert_shaped_like(&request, REQUEST_EXAMPLE);
    let counts = (
        &request["events_count"],
        &request["ignored_count"],
        &request["cli_events_count"],
        &request["verified"],
        &request["team_id"],
    );
    assert_eq!(
        counts,
        (&json!(1), &json!(0), &json!(0), &json!(false), &team)
    );
    assert!(request["original_event_data_id"]
        .as_str()
        .unwrap()
        .starts_with("edt_"));

    let (_, shown) = gw.api_get(&format!("/events/{}", event.id)).await;
    assert_shaped_like(&shown, EVENT_EXAMPLE);
    assert_eq!(
        (&shown["team_id"], &shown["cli_id"], &shown["event_data_id"]),
        (
            &team,
            &Value::Null,
            &json!(event.id.replacen("evt_", "edt_", 1))
        )
    );
    assert!(shown["updated_at"].as_str() >= shown["created_at"].as_str());

    let (_, attempts) = gw
        .api_get(&format!("/attempts?event_id={}", event.id))
        .await;
    let attempt = &attempts["models"][0];
    assert_shaped_like(attempt, ATTEMPT_EXAMPLE);
    // A JSON response body is shown as JSON (L5178).
    assert_eq!(attempt["body"], json!({ "received": true }));
    assert_eq!(attempt["status"], "SUCCESSFUL");
    assert!(attempt["response_latency"].is_u64() && attempt["responded_at"].is_string());
    let (_, one) = gw
        .api_get(&format!("/attempts/{}", attempt["id"].as_str().unwrap()))
        .await;
    assert_eq!(&one, attempt);

    let (_, listed) = gw.api_get("/2023-07-01/events").await;
    assert_shaped_like(&listed["models"][0], EVENT_EXAMPLE);
    let (_, requests) = gw
        .api_get("/2024-03-01/requests?order_by=ingested_at")
        .await;
    assert_eq!(requests["pagination"]["order_by"], "ingested_at");
    assert_shaped_like(&requests["models"][0], REQUEST_EXAMPLE);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_response_body_that_is_not_json_is_shown_as_text() {
    let sink = Sink::start(Reply::StatusWithBody(200, "Accepted".into())).await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    routed_request(&gw, "{}").await;
    let event = gw.wait_event(|e| e.status == EventStatus::Successful).await;
    let (_, attempts) = gw
        .api_get(&format!("/attempts?event_id={}", event.id))
        .await;
    assert_eq!(attempts["models"][0]["body"], "Accepted");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_event_answers_with_its_queued_attempt_recorded_under_the_same_id() {
    let sink = Sink::start(Reply::Status(500)).await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    routed_request(&gw, r#"{"test":true}"#).await;
    let failed = gw.wait_event(|e| e.status == EventStatus::Failed).await;
    sink.set_reply(Reply::Status(200));
    let retry = format!("/2023-07-01/events/{}/retry", failed.id);
    let (status, answer) = gw.api_send(Method::POST, &retry, json!({})).await;
    assert_eq!(status, 200, "{answer}");
    assert_shaped_like(&answer["event"], EVENT_EXAMPLE);
    assert_eq!(answer["event"]["status"], "QUEUED");
    assert_eq!(answer["event"]["data"]["body"], json!({ "test": true }));
    let queued = &answer["attempt"];
    assert_shaped_like(queued, QUEUED_ATTEMPT_EXAMPLE);
    assert_eq!(
        (
            &queued["status"],
            &queued["trigger"],
            &queued["attempt_number"]
        ),
        (&json!("QUEUED"), &json!("MANUAL"), &json!(2))
    );
    gw.wait_event(|e| e.id == failed.id && e.status == EventStatus::Successful)
        .await;
    let attempt_id = queued["id"].as_str().unwrap();
    let (status, made) = gw.api_get(&format!("/attempts/{attempt_id}")).await;
    assert_eq!(status, 200, "{made}");
    assert_eq!(
        (&made["status"], &made["trigger"], &made["attempt_number"]),
        (&json!("SUCCESSFUL"), &json!("MANUAL"), &json!(2))
    );
}

/// Lists an event's attempts by the three ways in: every attempt, the
/// event's, and by id; each answer holds the one attempt it waits for.
async fn the_one_attempt(gw: &TestGateway, event_id: &str) -> Value {
    let mut found = Vec::new();
    for path in [
        "/attempts".to_string(),
        format!("/2023-07-01/attempts?event_id={event_id}"),
    ] {
        let (status, list) = gw.api_get(&path).await;
        assert_eq!(status, 200, "{list}");
        let models = list["models"].as_array().unwrap();
        assert_eq!(models.len(), 1, "{path}: {list}");
        found.push(models[0].clone());
    }
    let id = found[0]["id"].as_str().unwrap();
    let (status, by_id) = gw.api_get(&format!("/attempts/{id}")).await;
    assert_eq!(status, 200, "{by_id}");
    found.push(by_id);
    assert!(found.iter().all(|one| *one == found[0]), "{found:?}");
    found.remove(0)
}

/// An attempt's status, trigger and number.
fn progress(attempt: &Value) -> (&Value, &Value, &Value) {
    (
        &attempt["status"],
        &attempt["trigger"],
        &attempt["attempt_number"],
    )
}

/// L199: a held event's attempt is `HOLD` (across a restart), `QUEUED` once
/// the connection is unpaused, then made under the same id.
#[tokio::test(flavor = "multi_thread")]
async fn a_held_events_attempt_is_hold_then_queued_then_made_under_the_same_id() {
    // Slow enough to see the released attempt under way.
    let sink = Sink::start(Reply::Slowly(200, std::time::Duration::from_secs(3))).await;
    let config = shop(&sink, "");
    let gw = TestGateway::start(&config).await;
    let connection = hookgate::ids::named_id("web", "shop-to-orders");
    let pause = format!("/connections/{connection}/pause");
    assert_eq!(gw.api_send(Method::PUT, &pause, json!({})).await.0, 200);
    routed_request(&gw, "{}").await;
    let held = gw.wait_event(|e| e.status == EventStatus::Hold).await;
    let team = gw.api_get("/events").await.1["models"][0]["team_id"].clone();
    let gw = gw.restart(&config).await;

    let hold = the_one_attempt(&gw, &held.id).await;
    assert_shaped_like(&hold, QUEUED_ATTEMPT_EXAMPLE);
    assert_eq!(
        hold["team_id"], team,
        "one team for the instance, across restarts"
    );
    assert_eq!(
        progress(&hold),
        (&json!("HOLD"), &json!("INITIAL"), &json!(1))
    );
    for empty in [
        "response_status",
        "body",
        "requested_url",
        "delivered_at",
        "successful_at",
    ] {
        assert!(hold[empty].is_null(), "{empty}: {hold}");
    }

    let unpause = format!("/connections/{connection}/unpause");
    assert_eq!(gw.api_send(Method::PUT, &unpause, json!({})).await.0, 200);
    sink.wait_for(1).await;
    let queued = the_one_attempt(&gw, &held.id).await;
    assert_eq!(queued["id"], hold["id"]);
    assert_eq!(
        progress(&queued),
        (&json!("QUEUED"), &json!("UNPAUSE"), &json!(1))
    );

    gw.wait_event(|e| e.id == held.id && e.status == EventStatus::Successful)
        .await;
    let made = the_one_attempt(&gw, &held.id).await;
    assert_eq!(made["id"], hold["id"]);
    assert_eq!(
        progress(&made),
        (&json!("SUCCESSFUL"), &json!("UNPAUSE"), &json!(1))
    );
    let (_, event) = gw.api_get(&format!("/events/{}", held.id)).await;
    assert_eq!(event["attempts"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_bodies_come_as_text() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    let body = r#"{"raw": "as sent",  "spaces": 2}"#;
    let request_id = routed_request(&gw, body).await;
    let event = gw.wait_event(|e| e.request_id == request_id).await;
    for path in [
        format!("/requests/{request_id}/raw_body"),
        format!("/2024-03-01/events/{}/raw_body", event.id),
    ] {
        let (status, raw) = gw.api_get(&path).await;
        assert_eq!((status, raw), (200, json!({ "body": body })), "{path}");
    }
    assert_eq!(gw.api_get("/requests/req_none/raw_body").await.0, 404);
    assert_eq!(gw.api_get("/events/evt_none/raw_body").await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn events_sort_by_last_attempt_and_page_both_ways() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    for n in 0..3 {
        routed_request(&gw, &format!("{{\"n\":{n}}}")).await;
        gw.wait_events(n + 1, |e| e.status == EventStatus::Successful)
            .await;
    }
    let (_, oldest_first) = gw.api_get("/events?dir=asc").await;
    let created: Vec<String> = ids(&oldest_first).into_iter().map(String::from).collect();
    // The oldest event, attempted again, is now the last attempted.
    let retry = format!("/events/{}/retry", created[0]);
    assert_eq!(gw.api_send(Method::POST, &retry, json!({})).await.0, 200);
    gw.wait_event(|e| e.id == created[0] && e.attempts == 2)
        .await;

    let by_attempt = "/events?order_by=last_attempt_at&dir=desc&limit=1";
    let (_, first) = gw.api_get(by_attempt).await;
    assert_eq!(first["pagination"]["order_by"], "last_attempt_at");
    assert_eq!(ids(&first), [created[0].as_str()]);
    let next = first["pagination"]["next"].as_str().unwrap();
    let (_, second) = gw.api_get(&format!("{by_attempt}&next={next}")).await;
    assert_eq!(ids(&second), [created[2].as_str()]);
    let next = second["pagination"]["next"].as_str().unwrap();
    let (_, third) = gw.api_get(&format!("{by_attempt}&next={next}")).await;
    assert_eq!(ids(&third), [created[1].as_str()]);
    assert!(third["pagination"].get("next").is_none(), "{third}");
    let prev = third["pagination"]["prev"].as_str().unwrap();
    let (_, back) = gw.api_get(&format!("{by_attempt}&prev={prev}")).await;
    assert_eq!(ids(&back), ids(&second));
    let (_, ascending) = gw.api_get("/events?order_by=last_attempt_at&dir=asc").await;
    assert_eq!(
        ids(&ascending),
        [&created[1], &created[2], &created[0]].map(String::as_str)
    );
    let (status, error) = gw
        .api_get("/events?order_by=last_attempt_at&next=evt_gone")
        .await;
    assert_eq!((status, &error["data"]["field"]), (422, &json!("next")));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_event_and_request_filter_of_the_reference_is_read() {
    let sink = Sink::start_with(|received| {
        let body: Value = serde_json::from_slice(&received.body).unwrap_or_default();
        Reply::Status(if body["fail"] == true { 500 } else { 200 })
    })
    .await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    routed_request(&gw, r#"{"fail":true,"word":"needle"}"#).await;
    routed_request(&gw, r#"{"fail":false,"word":"hay"}"#).await;
    gw.wait_events(2, |e| e.status.is_terminal()).await;
    let count = |path: String| {
        let gw = &gw;
        async move {
            let (status, list) = gw.api_get(&path).await;
            assert_eq!(status, 200, "{path}: {list}");
            list["count"].as_u64().unwrap()
        }
    };
    let cases = [
        ("/events", 2),
        ("/events?cli_id[any]=false", 2),
        ("/events?cli_id[any]=true", 0),
        ("/events?cli_id=cli_x", 0),
        ("/events?cli_id[]=cli_x", 0),
        ("/events?search_term=needle", 1),
        ("/events?response_status[gte]=500", 1),
        ("/events?response_status[]=200&response_status[]=500", 2),
        ("/events?attempts[gte]=1", 2),
        ("/events?attempts[gt]=1", 0),
        ("/events?successful_at[gte]=2020-01-01", 1),
        ("/events?successful_at[any]=false", 1),
        ("/events?last_attempt_at[lte]=2020-01-01", 0),
        ("/events?error_code[]=TIMEOUT", 0),
        ("/events?status[]=FAILED&status[]=SUCCESSFUL", 2),
        ("/events?body=%7B%22word%22%3A%22hay%22%7D", 1),
        ("/requests?search_term=needle", 1),
        ("/requests?events_count[gte]=1", 2),
        ("/requests?ignored_count[gt]=0", 0),
        ("/requests?ingested_at[gte]=2020-01-01", 2),
        ("/requests?verified=false", 2),
        ("/requests?verified=true", 0),
        ("/requests?parsed_query=%7B%7D", 2),
    ];
    for (path, expected) in cases {
        assert_eq!(count(path.to_string()).await, expected, "{path}");
    }
    for (path, field) in [
        ("/events?cli_id[gte]=x", "cli_id[gte]"),
        ("/events?whatever=1", "whatever"),
        ("/requests?webhook_id=web_x", "webhook_id"),
        ("/events?order_by=attempts", "order_by"),
        ("/attempts?status=FAILED", "status"),
    ] {
        let (status, error) = gw.api_get(path).await;
        assert_eq!(
            (status, &error["data"]["field"]),
            (422, &json!(field)),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn attempts_list_without_an_event_or_for_several_with_real_cursors() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    for n in 0..3 {
        routed_request(&gw, &format!("{{\"n\":{n}}}")).await;
    }
    gw.wait_events(3, |e| e.status == EventStatus::Successful)
        .await;
    let (_, everything) = gw.api_get("/attempts?dir=asc").await;
    assert_eq!(everything["count"], 3);
    let all: Vec<&str> = ids(&everything);
    let (_, first) = gw.api_get("/attempts?dir=asc&limit=2").await;
    assert_eq!(ids(&first), all[..2]);
    let next = first["pagination"]["next"].as_str().unwrap();
    let (_, rest) = gw
        .api_get(&format!("/attempts?dir=asc&limit=2&next={next}"))
        .await;
    assert_eq!(ids(&rest), all[2..]);
    assert!(rest["pagination"].get("next").is_none());

    let events: Vec<String> = everything["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["event_id"].as_str().unwrap().to_string())
        .collect();
    let two = format!(
        "/attempts?event_id[]={}&event_id[]={}&dir=asc&limit=1",
        events[0], events[1]
    );
    let (_, page) = gw.api_get(&two).await;
    assert_eq!(ids(&page), all[..1]);
    let next = page["pagination"]["next"].as_str().unwrap();
    let (_, page) = gw.api_get(&format!("{two}&next={next}")).await;
    assert_eq!(ids(&page), all[1..2]);
    assert!(page["pagination"].get("next").is_none(), "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_requests_events_and_ignored_events_page_and_filter_in_the_reference_shape() {
    let sink = Sink::start(Reply::Status(200)).await;
    let routes = format!(
        "[[sources]]\nname = \"shop\"\n{}{}",
        route("shop", "a", &sink.url("/a"), ""),
        route(
            "shop",
            "b",
            &sink.url("/b"),
            r#"rules = [ { type = "filter", body = { never = true } } ]"#
        ),
    ) + &route("shop", "c", &sink.url("/c"), "");
    let gw = TestGateway::start(&routes).await;
    let request_id = routed_request(&gw, "{}").await;
    gw.wait_events(2, |e| e.status == EventStatus::Successful)
        .await;

    let events = format!("/requests/{request_id}/events");
    let (_, page) = gw.api_get(&format!("{events}?limit=1")).await;
    assert_eq!(page["pagination"]["limit"], 1);
    assert_eq!(page["count"], 1);
    assert_shaped_like(&page["models"][0], EVENT_EXAMPLE);
    let next = page["pagination"]["next"].as_str().unwrap();
    let (_, rest) = gw.api_get(&format!("{events}?limit=1&next={next}")).await;
    assert_eq!(rest["count"], 1);
    assert_ne!(ids(&rest), ids(&page));
    let (_, none) = gw.api_get(&format!("{events}?status=FAILED")).await;
    assert_eq!(none["count"], 0);
    assert_eq!(gw.api_get(&format!("{events}?nope=1")).await.0, 422);

    for spelling in ["ignored_events", "ignored-events"] {
        let path = format!("/requests/{request_id}/{spelling}");
        let (status, ignored) = gw.api_get(&path).await;
        assert_eq!(status, 200, "{path}: {ignored}");
        assert_eq!(ignored["count"], 1);
        assert!(ignored["pagination"].is_object());
        let model = &ignored["models"][0];
        assert_shaped_like(model, IGNORED_EXAMPLE);
        assert_eq!(model["id"], model["ignored_event_cause_id"]);
        assert!(model["id"].is_i64(), "{model}");
        assert_eq!(model["meta"], json!(["body"]), "{model}");
        let number = model["id"].as_i64().unwrap();
        let (_, by_number) = gw.api_get(&format!("{path}?id={number}")).await;
        assert_eq!(by_number["count"], 1);
        let (_, other) = gw.api_get(&format!("{path}?id=1")).await;
        assert_eq!(other["count"], 0);
        // hookgate's own id, and the reference's number, both find it.
        let own = model["ignored_event_id"].as_str().unwrap();
        for id in [own.to_string(), number.to_string()] {
            let (status, one) = gw.api_get(&format!("/ignored_events/{id}")).await;
            assert_eq!((status, &one["id"]), (200, &model["id"]), "{id}");
        }
    }
}

/// The reference fills `meta` for `FILTERED` (`["body"]`, L4371) and leaves
/// it null for other causes (L4382, L4391).
#[tokio::test(flavor = "multi_thread")]
async fn an_ignored_events_meta_names_the_part_its_filter_failed_on() {
    let sink = Sink::start(Reply::Status(200)).await;
    let rules = |rule: &str| format!("rules = [ {{ {rule} }} ]");
    let routes = format!(
        "[[sources]]\nname = \"shop\"\n{}{}{}",
        route(
            "shop",
            "by-header",
            &sink.url("/h"),
            &rules(r#"type = "filter", headers = { x-kind = "order" }, body = { never = true }"#),
        ),
        route(
            "shop",
            "by-path",
            &sink.url("/p"),
            &rules(r#"type = "filter", body = { n = 1 }, path = "/never""#),
        ),
        route(
            "shop",
            "throws",
            &sink.url("/t"),
            &rules(
                r#"type = "transform", transformation = { name = "boom", code = "addHandler('transform', () => { throw new Error('no') })" }"#
            ),
        ),
    );
    let gw = TestGateway::start(&routes).await;
    let request_id = routed_request(&gw, r#"{"n":1}"#).await;

    let (_, ignored) = gw
        .api_get(&format!("/requests/{request_id}/ignored_events"))
        .await;
    let mut meta: Vec<(String, Value)> = ignored["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["cause"].as_str().unwrap().to_string(), m["meta"].clone()))
        .collect();
    meta.sort_by_key(|a| a.1.to_string());
    assert_eq!(
        meta,
        [
            ("FILTERED".to_string(), json!(["headers"])),
            ("FILTERED".to_string(), json!(["path"])),
            ("TRANSFORMATION_FAILED".to_string(), Value::Null),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_retried_through_some_connections_routes_only_those() {
    let sink = Sink::start(Reply::Status(200)).await;
    let never = r#"rules = [ { type = "filter", body = { never = true } } ]"#;
    let routes = |rules: &str| {
        format!(
            "[[sources]]\nname = \"shop\"\n{}{}",
            route("shop", "a", &sink.url("/a"), rules),
            route("shop", "b", &sink.url("/b"), rules),
        )
    };
    let gw = TestGateway::start(&routes(never)).await;
    let request_id = routed_request(&gw, "{}").await;
    let ignored = format!("/requests/{request_id}/ignored_events");
    assert_eq!(gw.api_get(&ignored).await.1["count"], 2);
    // The filters were too strict: relax them, then retry through a alone.
    let gw = gw.restart(&routes("")).await;
    let (_, a) = gw.api_get("/connections?name=shop-to-a").await;
    let connection_a = a["models"][0]["id"].as_str().unwrap().to_string();

    let retry = format!("/requests/{request_id}/retry");
    let only_a = json!({ "webhook_ids": [connection_a] });
    let (status, answer) = gw.api_send(Method::POST, &retry, only_a).await;
    assert_eq!(status, 200, "{answer}");
    assert_shaped_like(&answer["request"], REQUEST_EXAMPLE);
    let webhooks = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|m| m["webhook_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(webhooks(&answer["events"]), [connection_a.as_str()]);
    assert_eq!(answer["ignored_events"].as_array().unwrap().len(), 1);
    assert_ne!(webhooks(&answer["ignored_events"]), [connection_a.as_str()]);
    assert_eq!(answer["request"]["events_count"], 1);

    let unknown = json!({ "webhook_ids": ["web_nope"] });
    let (status, error) = gw.api_send(Method::POST, &retry, unknown).await;
    assert_eq!(
        (status, &error["data"]["field"]),
        (422, &json!("webhook_ids"))
    );
    let typo = json!({ "webhook_id": [connection_a] });
    assert_eq!(gw.api_send(Method::POST, &retry, typo).await.0, 422);
    // Without a body: every connection, so b's event too.
    let response = gw.api(Method::POST, &retry).send().await.unwrap();
    let everything: Value = response.json().await.unwrap();
    assert_eq!(everything["events"].as_array().unwrap().len(), 2);
    sink.wait_for(2).await;
}

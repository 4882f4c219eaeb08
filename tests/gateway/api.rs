//! The management API over HTTP against a running gateway: auth, errors,
//! paging, filters, event retry and mute, read-only declared objects, rate limits.

use crate::common::{
    bulk_retry_left_running, route, Reply, Sink, TestGateway, API_KEY, SLOW_WHEN_MARKED,
};
use hookgate::model::{AttemptTrigger, BulkRetry, BulkStatus, EventStatus};
use reqwest::Method;
use serde_json::{json, Value};

fn shop(sink: &Sink, connection_extra: &str) -> String {
    format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), connection_extra)
    )
}

fn ids(list: &Value) -> Vec<String> {
    list["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

async fn post_ids(gw: &TestGateway, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let (_, body) = gw.post("/e/shop", &format!("{{\"n\":{i}}}")).await;
        ids.push(body["request_id"].as_str().unwrap().to_string());
    }
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn every_call_needs_a_valid_key_as_bearer_or_basic() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    let path = "/2023-07-01/sources";
    let call = || gw.api_without_key(Method::GET, path);
    let missing = call().send().await.unwrap();
    assert_eq!(missing.status(), 401);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(
        (body["handled"].clone(), body["status"].clone()),
        (Value::Bool(true), Value::from(401))
    );
    let status =
        |call: crate::common::ApiCall| async move { call.send().await.unwrap().status().as_u16() };
    assert_eq!(status(call().bearer_auth("wrong")).await, 401);
    assert_eq!(status(call().bearer_auth(API_KEY)).await, 200);
    assert_eq!(status(call().basic_auth(API_KEY, Some(""))).await, 200);
    assert_eq!(status(call().basic_auth("wrong", Some(""))).await, 401);
    // The same resources without the version prefix.
    assert_eq!(gw.api_get("/sources").await.0, 200);
}

/// The ingress answers once a request is in the journal; the sled index is
/// written just after. A list right after the answer must still show it.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_is_listed_as_soon_as_it_is_acknowledged() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    for listed in 1..=50 {
        let (status, body) = gw.post("/e/shop", "{}").await;
        assert_eq!(status, 200);
        let (_, page) = gw.api_get("/requests?limit=1").await;
        assert_eq!(
            page["models"][0]["id"], body["request_id"],
            "request {listed}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_are_listed_filtered_and_shown_with_their_data() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    let accepted = post_ids(&gw, 2).await;
    gw.post("/e/nowhere", "{}").await;
    let (status, all) = gw.api_get("/requests?dir=asc").await;
    assert_eq!(status, 200);
    assert_eq!(all["count"], 3);
    assert_eq!(all["pagination"]["dir"], "asc");
    let (_, rejected) = gw.api_get("/requests?status=rejected").await;
    assert_eq!(rejected["models"][0]["rejection_cause"], "NO_WEBHOOK");
    let (_, by_source) = gw
        .api_get(&format!(
            "/requests?source_id={}&dir=asc",
            hookgate::ids::named_id("src", "shop")
        ))
        .await;
    assert_eq!(ids(&by_source), accepted);
    let (_, one) = gw
        .api_get(&format!("/2023-07-01/requests/{}", accepted[1]))
        .await;
    assert_eq!(one["data"]["body"]["n"], 1);
    assert_eq!(one["data"]["path"], "");
    assert!(one["created_at"].as_str().unwrap().ends_with('Z'));
    let (_, future) = gw
        .api_get("/requests?created_at[gte]=2999-01-01T00:00:00Z")
        .await;
    assert_eq!(future["count"], 0);
    let event = gw
        .wait_event(|e| e.request_id == accepted[0] && e.status == EventStatus::Successful)
        .await;
    let (_, events) = gw
        .api_get(&format!("/requests/{}/events", accepted[0]))
        .await;
    assert_eq!(ids(&events), vec![event.id]);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_clear_4xx_naming_the_field() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    for (path, field) in [
        ("/requests?limit=0", "limit"),
        ("/requests?limit=256", "limit"),
        ("/events?dir=sideways", "dir"),
        ("/events?created_at[gte]=last-week", "created_at[gte]"),
        ("/requests?verified=maybe", "verified"),
        ("/events?attempts=many", "attempts"),
    ] {
        let (status, body) = gw.api_get(path).await;
        assert_eq!(status, 422, "{path}");
        assert_eq!(body["data"]["field"], field, "{path}");
        assert!(
            body["message"].as_str().unwrap().starts_with(field),
            "{path}: {body}"
        );
    }
    let (status, body) = gw.api_get("/events/evt_nope").await;
    assert_eq!(status, 404);
    assert!(body["message"].as_str().unwrap().contains("evt_nope"));
    assert_eq!(gw.api_get("/no/such/thing/here").await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_run_both_ways_and_stay_stable_while_requests_arrive() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    let mut sent = post_ids(&gw, 5).await;
    let (_, first) = gw.api_get("/requests?dir=asc&limit=2").await;
    assert_eq!(ids(&first), sent[0..2]);
    assert!(first["pagination"]["prev"].is_null());
    // New requests arrive between page reads: they land after, never inside, a page.
    sent.extend(post_ids(&gw, 2).await);
    let next = first["pagination"]["next"].as_str().unwrap();
    let (_, second) = gw
        .api_get(&format!("/requests?dir=asc&limit=2&next={next}"))
        .await;
    assert_eq!(ids(&second), sent[2..4]);
    let prev = second["pagination"]["prev"].as_str().unwrap();
    let (_, back) = gw
        .api_get(&format!("/requests?dir=asc&limit=2&prev={prev}"))
        .await;
    assert_eq!(ids(&back), sent[0..2]);
    let mut newest_first: Vec<String> = sent.iter().rev().cloned().collect();
    let (_, desc) = gw.api_get("/requests?limit=3").await;
    assert_eq!(ids(&desc), newest_first[0..3]);
    let next = desc["pagination"]["next"].as_str().unwrap();
    let (_, older) = gw.api_get(&format!("/requests?limit=3&next={next}")).await;
    assert_eq!(ids(&older), newest_first[3..6]);
    let next = older["pagination"]["next"].as_str().unwrap();
    let (_, oldest) = gw.api_get(&format!("/requests?limit=3&next={next}")).await;
    newest_first.drain(0..6);
    assert_eq!(ids(&oldest), newest_first);
    assert!(oldest["pagination"]["next"].is_null());
}

#[tokio::test(flavor = "multi_thread")]
async fn events_and_attempts_are_filtered_and_a_failed_event_retried_by_hand() {
    let sink = Sink::start(Reply::Status(500)).await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    post_ids(&gw, 1).await;
    let failed = gw.wait_event(|e| e.status == EventStatus::Failed).await;
    let (_, listed) = gw
        .api_get("/events?status=FAILED&response_status=500&include=data")
        .await;
    assert_eq!(ids(&listed), vec![failed.id.clone()]);
    assert_eq!(listed["models"][0]["data"]["body"]["n"], 0);
    assert_eq!(gw.api_get("/events?status=SUCCESSFUL").await.1["count"], 0);

    sink.set_reply(Reply::Status(200));
    let response = gw
        .api(Method::POST, &format!("/events/{}/retry", failed.id))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let delivered = gw
        .wait_event(|e| e.id == failed.id && e.status == EventStatus::Successful)
        .await;
    assert_eq!(delivered.attempts, 2);
    let (_, attempts) = gw
        .api_get(&format!("/attempts?event_id={}&dir=asc", failed.id))
        .await;
    let triggers: Vec<&str> = attempts["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["trigger"].as_str().unwrap())
        .collect();
    assert_eq!(triggers, ["INITIAL", "MANUAL"]);
    let second = attempts["models"][1]["id"].as_str().unwrap();
    let (_, attempt) = gw.api_get(&format!("/attempts/{second}")).await;
    assert_eq!(attempt["response_status"], 200);
    assert_eq!(
        gw.gateway.store.attempts_of(&failed.id).unwrap()[1].trigger,
        AttemptTrigger::Manual
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_asked_for_during_an_attempt_outlives_that_attempts_failure() {
    let sink = Sink::start_answering(vec![Reply::Hang], Reply::Status(200)).await;
    // No retry rule: the hanging first attempt, once it times out, would end
    // the event as FAILED.
    let config = format!(
        "[limits]\ndelivery_timeout_ms = 1000\n\n{}",
        shop(&sink, "")
    );
    let gw = TestGateway::start(&config).await;
    gw.post("/e/shop", "{}").await;
    let hanging = &sink.wait_for(1).await[0];
    let event_id = hanging.header("x-hookgate-event-id").unwrap().to_string();
    let retry = format!("/events/{event_id}/retry");
    assert_eq!(gw.api_send(Method::POST, &retry, json!({})).await.0, 200);
    let delivered = gw
        .wait_event(|e| e.id == event_id && e.status == EventStatus::Successful)
        .await;
    assert_eq!(delivered.attempts, 2);
    let attempts = gw.gateway.store.attempts_of(&event_id).unwrap();
    let outcomes: Vec<_> = attempts
        .iter()
        .map(|a| (a.trigger, a.error_code.as_deref()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (AttemptTrigger::Initial, Some("TIMEOUT")),
            (AttemptTrigger::Manual, None)
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn muting_cancels_the_scheduled_retry() {
    let sink = Sink::start(Reply::Status(503)).await;
    let retry =
        r#"rules = [ { type = "retry", strategy = "linear", count = 5, interval = 60000 } ]"#;
    let gw = TestGateway::start(&shop(&sink, retry)).await;
    post_ids(&gw, 1).await;
    let scheduled = gw
        .wait_event(|e| e.status == EventStatus::Scheduled && e.attempts == 1)
        .await;
    let response = gw
        .api(
            Method::PUT,
            &format!("/2023-07-01/events/{}/mute", scheduled.id),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let muted: Value = response.json().await.unwrap();
    // As the reference's example (L4865-4881): the status is kept, the
    // next attempt is gone.
    assert_eq!(
        (
            muted["status"].as_str(),
            muted["muted"].as_bool(),
            &muted["next_attempt_at"]
        ),
        (Some("SCHEDULED"), Some(true), &Value::Null)
    );
    assert_eq!(
        gw.gateway
            .store
            .queue_depth(&scheduled.destination_id)
            .unwrap(),
        0,
        "nothing left to attempt"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn declared_objects_are_visible_and_read_only() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    let (_, sources) = gw.api_get("/sources").await;
    assert_eq!(sources["models"][0]["name"], "shop");
    let (_, connections) = gw.api_get("/connections").await;
    let connection_id = connections["models"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        connections["models"][0]["source_id"],
        sources["models"][0]["id"]
    );
    let (_, destination) = gw
        .api_get(&format!(
            "/destinations/{}",
            hookgate::ids::named_id("des", "orders")
        ))
        .await;
    assert_eq!(destination["url"], sink.url("/"));
    for (method, path) in [
        (
            Method::PUT,
            format!("/sources/{}", sources["models"][0]["id"].as_str().unwrap()),
        ),
        (
            Method::DELETE,
            format!("/2023-07-01/connections/{connection_id}"),
        ),
        (Method::PUT, format!("/connections/{connection_id}/archive")),
    ] {
        let response = gw
            .api(method.clone(), &path)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 409, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["message"].as_str().unwrap().contains("gateway.toml"),
            "{body}"
        );
    }
    assert_eq!(gw.api_delete("/sources/src_unknown").await, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_key_has_a_rate_limit_with_headers_and_429() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start_with("api_rate_limit_per_minute = 3\n", &shop(&sink, "")).await;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let response = gw.api(Method::GET, "/sources").send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-ratelimit-limit"], "3");
        remaining.push(
            response.headers()["x-ratelimit-remaining"]
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let limited = gw.api(Method::GET, "/sources").send().await.unwrap();
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=21).contains(&retry_after),
        "one call comes back every 20 s: {retry_after}"
    );
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["status"], 429);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_connection_holds_events_across_a_restart_until_unpaused() {
    let held = Sink::start(Reply::Status(200)).await;
    let free = Sink::start(Reply::Status(200)).await;
    let config = format!(
        "[[sources]]\nname = \"shop\"\n{}{}",
        route("shop", "held", &held.url("/"), ""),
        route("shop", "free", &free.url("/"), "")
    );
    let gw = TestGateway::start(&config).await;
    let connection = hookgate::ids::named_id("web", "shop-to-held");
    let response = gw
        .api(Method::PUT, &format!("/connections/{connection}/pause"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let paused: Value = response.json().await.unwrap();
    assert!(paused["paused_at"].is_string());

    post_ids(&gw, 1).await;
    free.wait_for(1).await;
    gw.wait_event(|e| e.connection_id == connection && e.status == EventStatus::Hold)
        .await;
    let gw = gw.restart(&config).await;
    post_ids(&gw, 1).await;
    free.wait_for(2).await;
    let holding = |gw: &TestGateway| {
        gw.gateway
            .store
            .events()
            .map(Result::unwrap)
            .filter(|e| e.status == EventStatus::Hold)
            .count()
    };
    assert_eq!(holding(&gw), 2, "the pause survived the restart");
    assert!(held.received().is_empty());

    let response = gw
        .api(
            Method::PUT,
            &format!("/2023-07-01/connections/{connection}/unpause"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.json::<Value>().await.unwrap()["paused_at"].is_null());
    held.wait_for(2).await;
    let released = gw
        .wait_event(|e| e.connection_id == connection && e.status == EventStatus::Successful)
        .await;
    assert_eq!(
        gw.gateway.store.attempts_of(&released.id).unwrap()[0].trigger,
        AttemptTrigger::Unpause
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retrying_a_request_routes_it_again_with_the_current_rules() {
    let sink = Sink::start(Reply::Status(200)).await;
    let strict = shop(
        &sink,
        r#"rules = [ { type = "filter", body = { ok = true } } ]"#,
    );
    let gw = TestGateway::start(&strict).await;
    let (_, accepted) = gw.post("/e/shop", r#"{"ok":false}"#).await;
    let id = accepted["request_id"].as_str().unwrap().to_string();
    gw.wait_routed(&id).await;
    let (_, ignored) = gw.api_get(&format!("/requests/{id}/ignored_events")).await;
    assert_eq!(ignored["models"][0]["cause"], "FILTERED");
    // The filter was too strict: relax it, then retry the request.
    let gw = gw.restart(&shop(&sink, "")).await;
    let response = gw
        .api(Method::POST, &format!("/requests/{id}/retry"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let retried: Value = response.json().await.unwrap();
    assert_eq!(retried["events"].as_array().unwrap().len(), 1);
    assert!(retried["ignored_events"].as_array().unwrap().is_empty());
    assert_eq!(
        sink.wait_for(1).await[0].header("x-hookgate-request-id"),
        Some(id.as_str())
    );

    gw.post("/e/unknown", "{}").await;
    let (_, rejected) = gw.api_get("/requests?status=rejected").await;
    let rejected_id = rejected["models"][0]["id"].as_str().unwrap();
    let response = gw
        .api(Method::POST, &format!("/requests/{rejected_id}/retry"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_retried_while_the_router_is_still_on_it_gets_its_event_once() {
    let sink = Sink::start(Reply::Status(200)).await;
    // A request marked slow holds the router (until its transformation times
    // out), so the requests behind it wait for the router.
    let config = format!(
        "[limits]\ntransform_timeout_ms = 1500\n\n{}",
        shop(&sink, SLOW_WHEN_MARKED)
    );
    let gw = TestGateway::start(&config).await;
    gw.post("/e/shop", r#"{"slow":true}"#).await;
    let (_, accepted) = gw.post("/e/shop", "{}").await;
    let id = accepted["request_id"].as_str().unwrap().to_string();
    assert!(
        gw.gateway.store.awaits_router(&id).unwrap(),
        "the router is still busy"
    );
    let retry = format!("/requests/{id}/retry");
    let (status, retried) = gw.api_send(Method::POST, &retry, json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(retried["events"].as_array().unwrap().len(), 1);

    // Once the router has routed a later request and the queue is empty,
    // every delivery the retried request caused has arrived.
    let (_, later) = gw.post("/e/shop", "{}").await;
    gw.wait_routed(later["request_id"].as_str().unwrap()).await;
    let store = &gw.gateway.store;
    let mut changes = store.subscribe_events();
    let destination = hookgate::ids::named_id("des", "orders");
    while store.queue_depth(&destination).unwrap() > 0 {
        changes.recv().await.unwrap();
    }
    let deliveries = sink
        .received()
        .iter()
        .filter(|r| r.header("x-hookgate-request-id") == Some(id.as_str()))
        .count();
    assert_eq!(deliveries, 1, "the event was made and delivered once");
    let events = store.events_of_request(&id).unwrap();
    assert_eq!((events.len(), events[0].attempts), (1, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn transformations_can_be_tried_on_a_sample_request() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    let run = |code: &str| {
        let body = serde_json::json!({
            "code": code,
            "env": { "PREFIX": "v2" },
            "request": { "headers": { "x-a": "1" }, "body": { "n": 1 }, "path": "/p", "query": "a=b" }
        });
        gw.api(Method::PUT, "/2023-07-01/transformations/run")
            .json(&body)
            .send()
    };
    let ok = run("addHandler('transform', (r) => { console.log(r.parsed_query.a); r.path = '/' + process.env.PREFIX + r.path; return r; })").await.unwrap();
    assert_eq!(ok.status(), 200);
    let ok: Value = ok.json().await.unwrap();
    assert_eq!(ok["request"]["path"], "/v2/p");
    assert_eq!(ok["console"][0]["message"], "b");
    assert_eq!(ok["log_level"], "info");

    let thrown = run(
        "addHandler('transform', (r) => { console.warn('before'); throw new Error('broken'); })",
    )
    .await
    .unwrap();
    assert_eq!(thrown.status(), 422);
    let thrown: Value = thrown.json().await.unwrap();
    assert!(thrown["message"].as_str().unwrap().contains("broken"));
    assert_eq!(thrown["data"]["console"][0]["message"], "before");
    assert_eq!(thrown["data"]["log_level"], "fatal");

    let syntax = run("addHandler('transform', (r) => {").await.unwrap();
    assert_eq!(syntax.status(), 422);
    assert_eq!(
        syntax.json::<Value>().await.unwrap()["data"]["field"],
        "code"
    );
    let garbage = gw
        .api(Method::PUT, "/transformations/run")
        .body("not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_openapi_document_describes_every_endpoint() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    let url = format!("http://{}/openapi.json", gw.gateway.api_addr.unwrap());
    let response = gw.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "readable without a key");
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/2023-07-01/requests", "get"),
        ("/2023-07-01/requests/{id}/retry", "post"),
        ("/2023-07-01/events", "get"),
        ("/2023-07-01/events/{id}/retry", "post"),
        ("/2023-07-01/events/{id}/mute", "put"),
        ("/2023-07-01/attempts", "get"),
        ("/2023-07-01/connections/{id}/pause", "put"),
        ("/2023-07-01/transformations/run", "put"),
        ("/v1/webhook-jobs", "post"),
        ("/v1/webhook-jobs/{id}/cancel", "post"),
        ("/v1/endpoints/{id}/rotate-secret", "post"),
        ("/v1/applications/{id}/event-types", "post"),
        ("/api/webhook-deliveries", "get"),
        ("/api/webhook-deliveries/{id}", "delete"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not described"
        );
    }
    let events = &paths["/2023-07-01/events"]["get"];
    let params: Vec<&str> = events["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(params.contains(&"status") && params.contains(&"next"));
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bulk_retry_replays_every_selected_event_in_the_background() {
    let sink = Sink::start(Reply::Status(500)).await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    post_ids(&gw, 5).await;
    sink.wait_for(5).await;
    gw.wait_events(5, |e| e.status == EventStatus::Failed).await;
    let (_, plan) = gw
        .api_get("/bulk/events/retry/plan?status=FAILED&response_status=500")
        .await;
    assert_eq!(plan["estimated_count"], 5);

    sink.set_reply(Reply::Status(200));
    let body = serde_json::json!({ "query": { "status": "FAILED", "response_status": [500] } });
    let created = gw
        .api(Method::POST, "/2023-07-01/bulk/events/retry")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["estimated_count"], 5);
    let id = created["id"].as_str().unwrap().to_string();

    let received = sink.wait_for(10).await;
    assert!(received[5..]
        .iter()
        .all(|r| r.header("x-hookgate-attempt") == Some("2")));
    // Progress is saved before the job wakes the lanes, but on PostgreSQL the
    // queue's announcement may ring them first: the job is awaited.
    let job = crate::hookdeck_tr_bk_bulk::finished(&gw, "events", &id).await;
    assert_eq!(
        (job["status"].as_str(), job["completed_count"].as_u64()),
        (Some("completed"), Some(5))
    );
    assert_eq!(job["progress"], 1.0);
    let event = gw.wait_event(|e| e.status == EventStatus::Successful).await;
    assert_eq!(
        gw.gateway.store.attempts_of(&event.id).unwrap()[1].trigger,
        AttemptTrigger::BulkRetry
    );
    let (_, jobs) = gw.api_get("/bulk/events/retry").await;
    assert_eq!(jobs["models"][0]["id"], id.as_str());

    let cancel = gw
        .api(Method::POST, &format!("/bulk/events/retry/{id}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 200, "a completed job is answered as it is");
    let cancel: Value = cancel.json().await.unwrap();
    assert_eq!(
        (cancel["status"].as_str(), &cancel["cancelled_at"]),
        (Some("completed"), &Value::Null)
    );
    let missing = gw
        .api(Method::POST, "/bulk/events/retry")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 422);
    assert_eq!(gw.api_get("/bulk/widgets/retry").await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_created_through_the_api_work_at_once_and_survive_a_restart() {
    let sink = Sink::start(Reply::Status(200)).await;
    let declared = shop(&sink, "");
    let gw = TestGateway::start(&declared).await;
    let send = |method: Method, path: &str, body: Value| gw.api(method, path).json(&body).send();

    let created = send(
        Method::POST,
        "/2023-07-01/sources",
        serde_json::json!({ "name": "crm", "allowed_http_methods": ["POST"] }),
    )
    .await
    .unwrap();
    assert_eq!(created.status(), 200);
    let source: Value = created.json().await.unwrap();
    let url = gw.url(&format!("/e/{}", source["id"].as_str().unwrap()));
    assert_eq!(
        (source["read_only"].as_bool(), source["url"].as_str()),
        (Some(false), Some(url.as_str()))
    );
    let connection = serde_json::json!({
        "name": "crm-to-sink",
        "source_id": source["id"],
        "destination": { "name": "crm-sink", "url": sink.url("/crm") },
        "rules": [ { "type": "filter", "body": { "kind": "contact" } } ],
    });
    let created = send(Method::POST, "/connections", connection)
        .await
        .unwrap();
    assert_eq!(created.status(), 200, "{}", created.text().await.unwrap());

    assert_eq!(gw.post("/e/crm", r#"{"kind":"deal"}"#).await.0, 200);
    assert_eq!(gw.post("/e/crm", r#"{"kind":"contact"}"#).await.0, 200);
    let first = sink.wait_for(1).await;
    assert_eq!(
        (first[0].path.as_str(), &first[0].body[..]),
        ("/crm", &br#"{"kind":"contact"}"#[..])
    );

    let gw = gw.restart(&declared).await;
    let (_, destinations) = gw.api_get("/destinations").await;
    assert_eq!(
        destinations["count"], 2,
        "the API-created destination is still there"
    );
    assert_eq!(gw.post("/e/crm", r#"{"kind":"contact"}"#).await.0, 200);
    sink.wait_for(2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn api_objects_are_validated_updated_and_deleted_safely() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    let send = |method: Method, path: &str, body: Value| gw.api(method, path).json(&body).send();

    let (status, body) = gw
        .api_send(
            Method::POST,
            "/destinations",
            serde_json::json!({ "name": "bad", "url": "ftp://x/" }),
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        body["message"].as_str().unwrap().contains("http or https"),
        "{body}"
    );
    let (status, body) = gw
        .api_send(
            Method::POST,
            "/destinations",
            serde_json::json!({ "name": "d", "url": sink.url("/"), "colour": "red" }),
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        body["message"].as_str().unwrap().contains("colour"),
        "{body}"
    );
    let (status, body) = gw
        .api_send(
            Method::POST,
            "/sources",
            serde_json::json!({ "allowed_http_methods": ["POST"] }),
        )
        .await;
    assert_eq!(
        (status, body["data"]["field"].as_str()),
        (422, Some("name"))
    );
    assert_eq!(
        send(
            Method::POST,
            "/sources",
            serde_json::json!({ "name": "shop" })
        )
        .await
        .unwrap()
        .status(),
        409,
        "declared name"
    );

    let (status, dest) = gw
        .api_send(
            Method::POST,
            "/destinations",
            serde_json::json!({ "name": "d", "url": sink.url("/old") }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        send(
            Method::POST,
            "/destinations",
            serde_json::json!({ "name": "d", "url": sink.url("/") })
        )
        .await
        .unwrap()
        .status(),
        409,
        "taken name"
    );
    let dest_id = dest["id"].as_str().unwrap().to_string();
    let link =
        serde_json::json!({ "name": "shop-to-d", "source": "shop", "destination_id": dest_id });
    assert_eq!(
        send(Method::PUT, "/connections", link)
            .await
            .unwrap()
            .status(),
        200,
        "upsert by name"
    );
    let (status, updated) = gw
        .api_send(
            Method::PUT,
            &format!("/destinations/{dest_id}"),
            serde_json::json!({ "url": sink.url("/new") }),
        )
        .await;
    assert_eq!(
        (status, updated["url"].as_str()),
        (200, Some(sink.url("/new").as_str()))
    );
    gw.post("/e/shop", "{}").await;
    let received = sink.wait_for(2).await;
    assert!(
        received.iter().any(|r| r.path == "/new") && !received.iter().any(|r| r.path == "/old")
    );

    let (status, body) = gw
        .api_send(
            Method::DELETE,
            &format!("/destinations/{dest_id}"),
            Value::Null,
        )
        .await;
    assert_eq!(status, 409, "a connection still uses it: {body}");
    let connection_id = hookgate::ids::named_id("web", "shop-to-d");
    assert_eq!(
        gw.api_delete(&format!("/connections/{connection_id}"))
            .await,
        200
    );
    assert_eq!(
        gw.api_delete(&format!("/destinations/{dest_id}")).await,
        200
    );
    assert_eq!(gw.api_get(&format!("/destinations/{dest_id}")).await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn events_and_requests_are_searched_by_their_payload_with_filter_syntax() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    gw.post("/e/shop", r#"{"type":"order.created","total":10}"#)
        .await;
    gw.post("/e/shop", r#"{"type":"order.paid","total":99}"#)
        .await;
    gw.http
        .post(gw.url("/e/shop"))
        .header("x-topic", "refunds")
        .body(r#"{"type":"refund"}"#)
        .send()
        .await
        .unwrap();
    sink.wait_for(3).await;
    let encode =
        |json: &str| url::form_urlencoded::byte_serialize(json.as_bytes()).collect::<String>();
    let (status, paid) = gw
        .api_get(&format!(
            "/events?include=data&body={}",
            encode(r#"{"total":{"$gt":50}}"#)
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(paid["count"], 1);
    assert_eq!(paid["models"][0]["data"]["body"]["type"], "order.paid");
    let (_, orders) = gw
        .api_get(&format!(
            "/requests?body={}",
            encode(r#"{"type":{"$startsWith":"order."}}"#)
        ))
        .await;
    assert_eq!(orders["count"], 2);
    let (_, refunds) = gw
        .api_get(&format!(
            "/requests?headers={}",
            encode(r#"{"x-topic":"refunds"}"#)
        ))
        .await;
    assert_eq!(refunds["count"], 1);
    let (status, bad) = gw.api_get("/events?body=%7Bnot-json").await;
    assert_eq!((status, bad["data"]["field"].as_str()), (422, Some("body")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bookmark_saves_an_events_data_and_replays_it_through_its_connection() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    gw.post("/e/shop/orders", r#"{"order":42}"#).await;
    let event = gw.wait_event(|e| e.status == EventStatus::Successful).await;
    let created = gw
        .api(Method::POST, "/bookmarks")
        .json(&serde_json::json!({ "event_id": event.id, "label": "big order" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let bookmark: Value = created.json().await.unwrap();
    assert_eq!(bookmark["data"]["body"]["order"], 42);
    let id = bookmark["id"].as_str().unwrap();
    let renamed = gw
        .api(Method::PUT, &format!("/bookmarks/{id}"))
        .json(&serde_json::json!({ "label": "the 42 order" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        renamed.json::<Value>().await.unwrap()["label"],
        "the 42 order"
    );

    let triggered = gw
        .api(Method::POST, &format!("/2023-07-01/bookmarks/{id}/trigger"))
        .send()
        .await
        .unwrap();
    assert_eq!(triggered.status(), 200);
    let replays: Value = triggered.json().await.unwrap();
    let replay = &replays[0];
    assert_eq!(
        replays.as_array().map(Vec::len),
        Some(1),
        "an array of events"
    );
    assert_ne!(replay["id"], event.id.as_str());
    let received = sink.wait_for(2).await;
    assert_eq!(
        (received[1].path.as_str(), &received[1].body[..]),
        ("/orders", &br#"{"order":42}"#[..])
    );
    assert_eq!(
        received[1].header("x-hookgate-event-id"),
        replay["id"].as_str()
    );

    let bad = gw
        .api(Method::POST, "/bookmarks")
        .json(&serde_json::json!({ "event_id": "evt_nope", "label": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    // DELETE answers `{id}` (L5681).
    let path = format!("/bookmarks/{id}");
    let deleted = gw.api_send(Method::DELETE, &path, json!({})).await;
    assert_eq!(deleted, (200, json!({ "id": id })));
    assert_eq!(gw.api_get(&path).await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn stored_transformations_are_shared_by_id_updated_live_and_their_runs_listed() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    let version = |v: u32| {
        format!("addHandler('transform', (r) => {{ console.log('v{v}'); r.headers['x-v'] = '{v}'; return r; }})")
    };
    let created = gw
        .api(Method::POST, "/transformations")
        .json(&serde_json::json!({ "name": "stamp", "code": version(1) }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let broken = gw
        .api(Method::POST, "/transformations")
        .json(&serde_json::json!({ "name": "broken", "code": "addHandler(" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        broken.json::<Value>().await.unwrap()["data"]["field"],
        "code"
    );

    let connection = serde_json::json!({
        "name": "stamped", "source": "shop", "destination": { "name": "stamped-sink", "url": sink.url("/stamped") },
        "rules": [ { "type": "transform", "transformation_id": id } ],
    });
    let made = gw
        .api(Method::POST, "/connections")
        .json(&connection)
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 200, "{}", made.text().await.unwrap());
    gw.post("/e/shop", "{}").await;
    let first = sink.wait_for(2).await;
    assert!(first
        .iter()
        .any(|r| r.path == "/stamped" && r.header("x-v") == Some("1")));

    let updated = gw
        .api(Method::PUT, &format!("/transformations/{id}"))
        .json(&serde_json::json!({ "code": version(2) }))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    gw.post("/e/shop", "{}").await;
    let second = sink.wait_for(4).await;
    assert!(
        second[2..]
            .iter()
            .any(|r| r.path == "/stamped" && r.header("x-v") == Some("2")),
        "the update reached the connection"
    );

    let (_, runs) = gw
        .api_get(&format!("/transformations/{id}/executions"))
        .await;
    let logs: Vec<&str> = runs["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["logs"][0]["message"].as_str().unwrap())
        .collect();
    assert_eq!(logs, ["v2", "v1"], "newest first");
    let run_id = runs["models"][0]["id"].as_str().unwrap();
    assert_eq!(
        gw.api_get(&format!("/transformations/{id}/executions/{run_id}"))
            .await
            .0,
        200
    );
    assert_eq!(
        gw.api_delete(&format!("/transformations/{id}")).await,
        409,
        "still in use"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn archived_api_objects_stop_serving_until_unarchived() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    let connection = serde_json::json!({ "name": "crm-link", "source": { "name": "crm" }, "destination": { "name": "crm-out", "url": sink.url("/crm") } });
    assert_eq!(
        gw.api(Method::POST, "/connections")
            .json(&connection)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let source = hookgate::ids::named_id("src", "crm");
    let link = hookgate::ids::named_id("web", "crm-link");
    let destination = hookgate::ids::named_id("des", "crm-out");
    let blocked = gw
        .api(Method::PUT, &format!("/destinations/{destination}/archive"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        blocked.status(),
        409,
        "a live connection still uses the destination"
    );

    let archived = gw
        .api(Method::PUT, &format!("/connections/{link}/archive"))
        .send()
        .await
        .unwrap();
    assert_eq!(archived.status(), 200);
    assert!(archived.json::<Value>().await.unwrap()["archived_at"].is_string());
    assert_eq!(
        gw.api(Method::PUT, &format!("/sources/{source}/archive"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        gw.post("/e/crm", "{}").await.0,
        404,
        "an archived source is not served"
    );

    assert_eq!(
        gw.api(Method::PUT, &format!("/sources/{source}/unarchive"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        gw.api(Method::PUT, &format!("/connections/{link}/unarchive"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(gw.post("/e/crm", "{}").await.0, 200);
    assert_eq!(sink.wait_for(1).await[0].path, "/crm");
    let declared = hookgate::ids::named_id("src", "shop");
    assert_eq!(
        gw.api(Method::PUT, &format!("/sources/{declared}/archive"))
            .send()
            .await
            .unwrap()
            .status(),
        409
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_filter_by_name_and_substring() {
    let sink = Sink::start(Reply::Status(200)).await;
    let config = format!(
        "[[sources]]\nname = \"shop-eu\"\n[[sources]]\nname = \"shop-us\"\n[[sources]]\nname = \"crm\"\n{}",
        route("crm", "crm-out", &sink.url("/"), "")
    );
    let gw = TestGateway::start(&config).await;
    let names = |list: &Value| {
        list["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            &gw.api_get("/sources?name[contains]=shop&order_by=name&dir=asc")
                .await
                .1
        ),
        ["shop-eu", "shop-us"]
    );
    assert_eq!(names(&gw.api_get("/sources?name=crm").await.1), ["crm"]);
    assert_eq!(
        names(
            &gw.api_get("/sources?name[]=crm&name[]=shop-us&order_by=name&dir=asc")
                .await
                .1
        ),
        ["crm", "shop-us"]
    );
    assert_eq!(
        names(&gw.api_get("/connections?name[contains]=crm").await.1),
        ["crm-to-crm-out"]
    );
}

/// A graceful stop ends a running bulk retry after its current batch, so the
/// store closes with nothing holding it (a checkpoint is written); the next
/// start finishes the job, every event retried once.
#[tokio::test(flavor = "multi_thread")]
async fn a_stop_halts_a_bulk_retry_between_batches_and_the_next_start_finishes_it() {
    // Ten batches: the stop must reach the retry before it is through
    // them all, also on a loaded machine.
    const EVENTS: usize = 1000;
    let sink = Sink::start(Reply::Status(500)).await;
    let config = shop(&sink, "");
    let gw = TestGateway::start(&config).await;
    post_ids(&gw, EVENTS).await;
    gw.wait_events(EVENTS, |e| e.status == EventStatus::Failed)
        .await;
    sink.set_reply(Reply::Status(200));
    let body = serde_json::json!({ "query": { "status": "FAILED" } });
    let (status, created) = gw.api_send(Method::POST, "/bulk/events/retry", body).await;
    assert_eq!(status, 200);
    let id = created["id"].as_str().unwrap().to_string();

    let dir = gw.stopped().await;
    let store = crate::backend::stopped_store(dir.path());
    let stopped = store.bulk_retry(&id).unwrap().unwrap();
    // Nothing holds a retry between its batches, so on a loaded machine it
    // may be through them all before the stop reaches it; when it is not,
    // it was halted between two batches and left running.
    if stopped.status != BulkStatus::Completed {
        assert_eq!(stopped.status, BulkStatus::Running, "stopped halfway");
        assert!(stopped.completed_count < EVENTS as u64);
        assert_eq!(stopped.completed_count % 100, 0, "between two batches");
    }
    drop(store);
    let gw = TestGateway::start_in(dir, &config).await;
    gw.wait_events(EVENTS, |e| e.status == EventStatus::Successful)
        .await;
    // The lanes may deliver the last batch before the job saves its end.
    let job = crate::hookdeck_tr_bk_bulk::finished(&gw, "events", &id).await;
    assert_eq!(job["status"], "completed");
    assert_eq!(job["completed_count"], EVENTS);
    let retried = sink.received().len() - EVENTS;
    assert_eq!(retried, EVENTS, "each event retried once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bulk_retry_left_running_resumes_from_its_cursor_and_a_cancelled_one_does_not() {
    let sink = Sink::start(Reply::Status(500)).await;
    let config = shop(&sink, "");
    let gw = TestGateway::start(&config).await;
    post_ids(&gw, 5).await;
    gw.wait_events(5, |e| e.status == EventStatus::Failed).await;
    let mut failed: Vec<String> = gw.gateway.store.events().map(|e| e.unwrap().id).collect();
    failed.sort();
    // As a crash would leave them: one job two events in, one cancelled
    // before it ran. Written while the gateway is stopped: a running one
    // would take a new job up at once (in a cluster, the leader hears of it).
    let job = |id: &str, cursor: Option<&String>| BulkRetry {
        completed_count: if cursor.is_some() { 2 } else { 0 },
        cursor: cursor.cloned(),
        ..bulk_retry_left_running(id, "status=FAILED", 5)
    };
    let dir = gw.stopped().await;
    let store = crate::backend::stopped_store(dir.path());
    store
        .save_bulk_retry(&job("bch_resumed", Some(&failed[1])))
        .unwrap();
    store
        .save_bulk_retry(&BulkRetry {
            status: BulkStatus::Cancelled,
            cancelled_at: Some(hookgate::ids::now_ms()),
            ..job("bch_cancelled", None)
        })
        .unwrap();
    drop(store);

    sink.set_reply(Reply::Status(200));
    let gw = TestGateway::start_in(dir, &config).await;
    let received = sink.wait_for(8).await;
    let retried: Vec<&str> = received[5..]
        .iter()
        .map(|r| r.header("x-hookgate-event-id").unwrap())
        .collect();
    let mut retried_sorted = retried.clone();
    retried_sorted.sort();
    assert_eq!(
        retried_sorted,
        failed[2..].iter().map(String::as_str).collect::<Vec<_>>(),
        "only the events after the cursor"
    );
    // The lanes may deliver the last events before the job saves its end.
    let resumed = crate::hookdeck_tr_bk_bulk::finished(&gw, "events", "bch_resumed").await;
    assert_eq!(
        (
            resumed["status"].as_str(),
            resumed["completed_count"].as_u64()
        ),
        (Some("completed"), Some(5))
    );
    let (_, still_cancelled) = gw.api_get("/bulk/events/retry/bch_cancelled").await;
    assert_eq!(still_cancelled["status"], "cancelled");
    assert_eq!(
        sink.received().len(),
        8,
        "the cancelled job retried nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_destinations_backlog_is_visible() {
    let sink = Sink::start(Reply::Hang).await;
    let config = format!(
        "[limits]\ndelivery_timeout_ms = 120000\n\n[[sources]]\nname = \"shop\"\n\n[[destinations]]\nname = \"slow\"\nurl = \"{}\"\nconcurrent = 1\n\n[[connections]]\nname = \"c\"\nsource = \"shop\"\ndestination = \"slow\"\n",
        sink.url("/")
    );
    let gw = TestGateway::start(&config).await;
    let ids = post_ids(&gw, 3).await;
    for id in &ids {
        gw.wait_routed(id).await;
    }
    sink.wait_for(1).await;
    let destination = hookgate::ids::named_id("des", "slow");
    let (status, queue) = gw
        .api_get(&format!("/destinations/{destination}/queue"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        queue["queue_depth"], 3,
        "the attempt in flight stays queued until it settles"
    );
    assert!(queue["oldest_due_at"].is_string());
    assert!(queue["oldest_pending_ms"].is_u64());
    assert_eq!(gw.api_get("/destinations/des_unknown/queue").await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_event_and_request_filter_narrows_the_list() {
    let ok = Sink::start(Reply::Status(200)).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = format!(
        "[[sources]]\nname = \"shop\"\n[[sources]]\nname = \"crm\"\nverification = {{ type = \"api_key\", header_key = \"x-key\", api_key = \"k\" }}\n{}{}{}",
        route("shop", "good", &ok.url("/"), ""),
        route("shop", "gone", &format!("http://{closed}/"), ""),
        route("crm", "crm-out", &ok.url("/crm"), "")
    );
    let gw = TestGateway::start(&config).await;
    let (_, shop) = gw.post("/e/shop", "{}").await;
    let shop_id = shop["request_id"].as_str().unwrap().to_string();
    let crm = gw
        .http
        .post(gw.url("/e/crm"))
        .header("x-key", "k")
        .body("{}")
        .send()
        .await
        .unwrap();
    let crm_id = crm.json::<Value>().await.unwrap()["request_id"]
        .as_str()
        .unwrap()
        .to_string();
    gw.http
        .post(gw.url("/e/crm"))
        .header("x-key", "wrong")
        .body("{}")
        .send()
        .await
        .unwrap();
    gw.wait_events(3, |e| e.status.is_terminal()).await;

    let count = |list: &Value| list["count"].as_u64().unwrap();
    let named = |prefix: &str, name: &str| hookgate::ids::named_id(prefix, name);
    for (query, expected) in [
        (format!("webhook_id={}", named("web", "shop-to-gone")), 1),
        (format!("destination_id={}", named("des", "good")), 1),
        (format!("source_id={}", named("src", "crm")), 1),
        (format!("request_id={shop_id}"), 2),
        ("error_code[contains]=REFUSED".to_string(), 1),
        ("status[]=SUCCESSFUL&status[]=FAILED".to_string(), 3),
        ("attempts=1".to_string(), 3),
        ("attempts=2".to_string(), 0),
        ("last_attempt_at[any]=true".to_string(), 3),
        ("created_at[lt]=2000-01-01T00:00:00Z".to_string(), 0),
        (
            "created_at[gt]=2000-01-01T00:00:00Z&created_at[lte]=2999-01-01T00:00:00Z".to_string(),
            3,
        ),
    ] {
        assert_eq!(
            count(&gw.api_get(&format!("/events?{query}")).await.1),
            expected,
            "events?{query}"
        );
    }
    for (query, expected) in [
        ("verified=true".to_string(), 1),
        // Not verified: the one that failed, and the one no source checked.
        ("verified=false".to_string(), 2),
        ("rejection_cause=VERIFICATION_FAILED".to_string(), 1),
        ("status=accepted".to_string(), 2),
        (format!("id[]={shop_id}&id[]={crm_id}"), 2),
        ("ingested_at[gte]=2000-01-01T00:00:00Z".to_string(), 3),
    ] {
        assert_eq!(
            count(&gw.api_get(&format!("/requests?{query}")).await.1),
            expected,
            "requests?{query}"
        );
    }
}

//! Transformations, bookmarks and bulk retries as Hookdeck's API `2023-07-01`
//! gives them: each reference example sent as it is, and its answer checked
//! field by field against the reference's (every field present, same JSON
//! type), then the filters and paging the reference names for each list.

use crate::common::{route, Reply, Sink, TestGateway, PATIENCE};
use crate::reference_shape::{assert_shape, Leeway};
use hookgate::ids::event_data_id;
use hookgate::model::{Event, EventStatus};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// The user's own data in these objects: a bulk retry's `query`, a
/// transformation's `env`, a request's `body` and `headers`.
const SHAPE: Leeway = Leeway {
    null_allowed: &[],
    data: &["query", "env", "body", "headers"],
};

/// One config source `shop` → the sink, and an API connection `shaped`
/// from it to the sink's `/shaped` through the stored transformation `id`.
fn shop(sink: &Sink) -> String {
    format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), "")
    )
}

/// `method` on `path` with `body`: a 200, its answer.
pub async fn ok(gw: &TestGateway, method: Method, path: &str, body: Value) -> Value {
    let (status, answer) = gw.api_send(method, path, body).await;
    assert_eq!(status, 200, "{path}: {answer}");
    answer
}

/// `GET path`: a 200, its answer.
pub async fn get(gw: &TestGateway, path: &str) -> Value {
    let (status, answer) = gw.api_get(path).await;
    assert_eq!(status, 200, "{path}: {answer}");
    answer
}

/// The field a 422 names.
async fn refused(gw: &TestGateway, method: Method, path: &str, body: Value) -> String {
    let (status, answer) = gw.api_send(method, path, body).await;
    assert_eq!(status, 422, "{path}: {answer}");
    answer["data"]["field"].as_str().unwrap().to_string()
}

fn ids(list: &Value) -> Vec<&str> {
    list["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect()
}

/// `GET /transformations` (L3231-3252) and the transformation object (L3169-3179).
fn transformation_example() -> Value {
    json!({
        "id": "trs_XRyNGe8sta9SN9",
        "team_id": "tm_Vn0Fn3sEqjGX",
        "name": "example",
        "code": "addHandler('transform', (request, context) => request);",
        "updated_at": "2022-09-02T23:41:46.180Z",
        "created_at": "2022-09-02T22:10:03.104Z",
        "env": { "FOO": "BAR" }
    })
}

const IDENTITY: &str = "addHandler('transform', (request, context) => request);";

#[tokio::test(flavor = "multi_thread")]
async fn transformations_are_created_upserted_by_name_renamed_and_listed_as_the_reference_does() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink)).await;
    // POST /transformations (L3311-3330).
    let created = ok(
        &gw,
        Method::POST,
        "/2023-07-01/transformations",
        json!({ "name": "example-1", "code": IDENTITY, "env": { "FOO": "BAR" } }),
    )
    .await;
    assert_shape(&created, &transformation_example(), SHAPE);
    assert!(created["team_id"].as_str().unwrap().starts_with("tm_"));
    // PUT /transformations (L3361-3380): creates "example", then updates it.
    let upsert = json!({ "name": "example", "code": IDENTITY, "env": { "FOO": "BAR" } });
    let first = ok(&gw, Method::PUT, "/2023-07-01/transformations", upsert).await;
    assert_shape(&first, &transformation_example(), SHAPE);
    let changed =
        "addHandler('transform', (request) => { request.headers.v = '2'; return request; });";
    let again = json!({ "name": "example", "code": changed });
    let second = ok(&gw, Method::PUT, "/transformations", again).await;
    assert_eq!(
        (&second["id"], &second["code"], &second["env"]["FOO"]),
        (&first["id"], &json!(changed), &json!("****")),
        "the same transformation, new code, env kept (masked)"
    );
    assert_eq!(second["team_id"], created["team_id"], "one team");
    // PUT /transformations/:id (L3419-3430) renames; the id stays.
    let id = first["id"].as_str().unwrap();
    let renamed = ok(
        &gw,
        Method::PUT,
        &format!("/transformations/{id}"),
        json!({ "name": "renamed", "code": IDENTITY }),
    )
    .await;
    assert_shape(&renamed, &transformation_example(), SHAPE);
    assert_eq!(
        (renamed["id"].as_str(), &renamed["name"]),
        (Some(id), &json!("renamed"))
    );
    let by_new_name = json!({ "name": "renamed", "code": IDENTITY });
    let upserted = ok(&gw, Method::PUT, "/transformations", by_new_name).await;
    assert_eq!(upserted["id"], id, "found by its new name");
    let old_name = json!({ "name": "example", "code": IDENTITY });
    let fresh = ok(&gw, Method::POST, "/transformations", old_name).await;
    assert_ne!(fresh["id"], id, "the old name is free, under a new id");
    let taken = json!({ "name": "example-1" });
    let (status, _) = gw
        .api_send(Method::PUT, &format!("/transformations/{id}"), taken)
        .await;
    assert_eq!(status, 409, "a rename onto another's name");

    // GET /transformations (L3187-3252): id, name, paging, order.
    let all = get(&gw, "/2023-07-01/transformations?limit=2").await;
    assert_eq!(
        all["pagination"],
        json!({ "order_by": "created_at", "dir": "desc", "limit": 2, "next": all["models"][1]["id"] })
    );
    assert_eq!(all["count"], 2);
    assert_shape(&all["models"][0], &transformation_example(), SHAPE);
    let next = all["pagination"]["next"].as_str().unwrap();
    let rest = get(&gw, &format!("/transformations?limit=2&next={next}")).await;
    assert_eq!(ids(&rest), [created["id"].as_str().unwrap()]);
    assert_eq!(ids(&get(&gw, "/transformations?name=renamed").await), [id]);
    assert_eq!(
        ids(&get(&gw, &format!("/transformations?id[]={id}")).await),
        [id]
    );
    let named = get(
        &gw,
        "/transformations?name[contains]=example&order_by=name&dir=asc",
    )
    .await;
    assert_eq!(
        ids(&named),
        [
            fresh["id"].as_str().unwrap(),
            created["id"].as_str().unwrap()
        ]
    );
    let url = format!("http://{}/openapi.json", gw.gateway.api_addr.unwrap());
    let doc: Value = gw.http.get(url).send().await.unwrap().json().await.unwrap();
    let upsert = &doc["paths"]["/2023-07-01/transformations"]["put"];
    assert!(upsert.is_object(), "PUT /transformations is described");
    let (status, error) = gw.api_get("/transformations?order_by=code").await;
    assert_eq!(
        (status, error["data"]["field"].as_str()),
        (422, Some("order_by"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_answers_the_request_its_log_level_and_console_in_a_connections_context() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink)).await;
    // PUT /transformations/run (L3477-3511), the reference's body as it is.
    let reference = json!({
        "request": {
            "headers": { "content-type": "application/json" },
            "body": { "example": true },
            "path": "/",
            "query": "",
            "parsed_query": {}
        },
        "code": IDENTITY
    });
    let answer = ok(
        &gw,
        Method::PUT,
        "/2023-07-01/transformations/run",
        reference.clone(),
    )
    .await;
    let example = json!({
        "log_level": "info",
        "console": [],
        "request": { "headers": {}, "body": {}, "query": "", "parsed_query": {}, "path": "/" }
    });
    assert_shape(&answer, &example, SHAPE);
    assert_shape(&answer["request"], &example["request"], SHAPE);
    assert_eq!(
        (&answer["log_level"], &answer["console"]),
        (&json!("info"), &json!([]))
    );
    assert_eq!(answer["request"]["body"], json!({ "example": true }));

    // A stored transformation's code and env by transformation_id, with the
    // context of the connection webhook_id names.
    let code = "addHandler('transform', (request, context) => { console.warn('from', context.connection.id); request.headers['x-env'] = process.env.FOO; return request; });";
    let stored = json!({ "name": "warns", "code": code, "env": { "FOO": "BAR" } });
    let transformation = ok(&gw, Method::POST, "/transformations", stored).await;
    gw.post("/e/shop", "{}").await;
    let event = gw.wait_event(|_| true).await;
    let mut by_id = reference.clone();
    by_id.as_object_mut().unwrap().remove("code");
    by_id["transformation_id"] = transformation["id"].clone();
    by_id["webhook_id"] = json!(event.connection_id);
    let answer = ok(&gw, Method::PUT, "/transformations/run", by_id.clone()).await;
    assert_eq!(answer["request"]["headers"]["x-env"], "BAR");
    assert_eq!(answer["log_level"], "warn");
    assert_eq!(
        answer["console"][0],
        json!({ "type": "warn", "level": "warn", "message": format!("from {}", event.connection_id) })
    );

    let mut unknown = by_id.clone();
    unknown["webhook_id"] = json!("web_nope");
    let path = "/transformations/run";
    assert_eq!(refused(&gw, Method::PUT, path, unknown).await, "webhook_id");
    by_id["transformation_id"] = json!("trs_nope");
    assert_eq!(
        refused(&gw, Method::PUT, path, by_id).await,
        "transformation_id"
    );
    let nothing = json!({ "request": reference["request"] });
    assert_eq!(refused(&gw, Method::PUT, path, nothing).await, "code");
}

/// `GET /transformations/:id/executions/:execution_id` (L3628-3672).
fn execution_example() -> Value {
    json!({
        "id": "reqt_RdK4HW2ZubL0VKJ6kf",
        "transformation_id": "trs_XRyNGe8sta9SN9",
        "updated_at": "2022-09-02T23:39:03.207Z",
        "created_at": "2022-09-02T23:39:03.447Z",
        "webhook_id": "web_AXV0d1vkT3ld",
        "team_id": "tm_Vn0Fn3sEqjGX",
        "logs": [],
        "issue_id": null,
        "log_level": "info",
        "transformed_event_data": { "headers": {}, "body": {}, "query": "", "path": "/" },
        "original_event_data": { "headers": {}, "body": {}, "query": "", "path": "/" },
        "transformed_event_data_id": "edt_dylroX25Cgh8stJkpCjq",
        "original_event_data_id": "edt_4z2L726GSEyZMUjtHzVu"
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn executions_carry_every_reference_field_and_filter_by_level_connection_and_time() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink)).await;
    let code = "addHandler('transform', (request) => { \
        if (request.body.n === 1) console.error('one'); \
        if (request.body.n === 2) throw new Error('two'); \
        console.log('n', request.body.n); request.headers['x-n'] = String(request.body.n); return request; });";
    let (id, webhook_id) = shaped_by(&gw, &sink, code).await;
    for n in 0..3 {
        gw.post("/e/shop", &format!("{{\"n\":{n}}}")).await;
    }
    // Two deliveries per request to orders, one each to shaped for n = 0, 1.
    sink.wait_for(5).await;
    let runs = format!("/transformations/{id}/executions");
    let all = get(&gw, &runs).await;
    assert_eq!(
        all["pagination"],
        json!({ "order_by": "created_at", "dir": "desc", "limit": 100 })
    );
    assert_eq!(all["count"], 3);
    let mut listed = execution_example();
    for key in ["transformed_event_data", "original_event_data"] {
        listed.as_object_mut().unwrap().remove(key);
    }
    let models = all["models"].as_array().unwrap();
    let at_level = |level: &str| {
        let found = models.iter().find(|run| run["log_level"] == level);
        found.unwrap_or_else(|| panic!("no {level} run in {all:#}"))
    };
    let failed = at_level("fatal");
    assert_shape(
        failed,
        &listed,
        Leeway {
            null_allowed: &["transformed_event_data_id"],
            ..SHAPE
        },
    );
    assert_eq!(
        failed["transformed_event_data_id"],
        Value::Null,
        "a failed run made no data"
    );
    let (logged_error, plain) = (at_level("error"), at_level("info"));
    for run in [logged_error, plain] {
        assert_shape(run, &listed, SHAPE);
        assert_eq!(
            (
                run["webhook_id"].as_str(),
                run["transformation_id"].as_str()
            ),
            (Some(webhook_id.as_str()), Some(id.as_str()))
        );
        let event_id = run["event_id"].as_str().unwrap();
        assert_eq!(run["transformed_event_data_id"], event_data_id(event_id));
        let request_id = run["request_id"].as_str().unwrap();
        assert_eq!(run["original_event_data_id"], event_data_id(request_id));
    }
    assert_eq!(plain["logs"][0]["type"], "log");
    assert_eq!(plain["logs"][0]["message"], "n 0");

    let count = |query: &str| {
        let path = format!("{runs}?{query}");
        let gw = &gw;
        async move { get(gw, &path).await["count"].as_u64().unwrap() }
    };
    assert_eq!(count("log_level=error").await, 1);
    assert_eq!(count("log_level[]=info&log_level[]=fatal").await, 2);
    assert_eq!(count(&format!("webhook_id={webhook_id}")).await, 3);
    assert_eq!(count("webhook_id=web_other").await, 0);
    assert_eq!(count("issue_id=iss_x").await, 0);
    assert_eq!(count("created_at[gte]=2099-01-01").await, 0);
    assert_eq!(count("created_at[lte]=2099-01-01").await, 3);
    let first = get(&gw, &format!("{runs}?limit=2&dir=asc")).await;
    let next = first["pagination"]["next"].as_str().unwrap();
    let last = get(&gw, &format!("{runs}?limit=2&dir=asc&next={next}")).await;
    assert_eq!(
        ids(&last),
        [models[0]["id"].as_str().unwrap()],
        "the newest"
    );
    let (status, error) = gw.api_get(&format!("{runs}?status=x")).await;
    assert_eq!(
        (status, error["data"]["field"].as_str()),
        (422, Some("status"))
    );

    // One run shows the data it was given and the data it made.
    let run_id = plain["id"].as_str().unwrap();
    let one = get(&gw, &format!("{runs}/{run_id}")).await;
    assert_shape(&one, &execution_example(), SHAPE);
    assert_eq!(one["original_event_data"]["body"], json!({ "n": 0 }));
    assert_eq!(one["transformed_event_data"]["headers"]["x-n"], "0");

    // Renamed, it keeps its id and its runs.
    let rename = json!({ "name": "counted" });
    ok(&gw, Method::PUT, &format!("/transformations/{id}"), rename).await;
    gw.post("/e/shop", "{\"n\":0}").await;
    sink.wait_for(7).await;
    assert_eq!(
        get(&gw, &runs).await["count"],
        4,
        "the new run under the same id"
    );
}

/// Stores a transformation of `code` and an API connection `shop` → the
/// sink's `/shaped` through it. Returns their ids.
async fn shaped_by(gw: &TestGateway, sink: &Sink, code: &str) -> (String, String) {
    let transformation = json!({ "name": "shaper", "code": code });
    let created = ok(gw, Method::POST, "/transformations", transformation).await;
    let id = created["id"].as_str().unwrap().to_string();
    let connection = json!({
        "name": "shaped", "source": "shop",
        "destination": { "name": "shaped-sink", "url": sink.url("/shaped") },
        "rules": [{ "type": "transform", "transformation_id": id }],
    });
    let made = ok(gw, Method::POST, "/connections", connection).await;
    (id, made["id"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transformations_runs_come_a_page_at_a_time_within_the_byte_budget() {
    let sink = Sink::start(Reply::Status(200)).await;
    let config = format!("[limits]\napi_page_bytes = 2048\n\n{}", shop(&sink));
    let gw = TestGateway::start(&config).await;
    let code =
        "addHandler('transform', (request) => { console.log('p'.repeat(900)); return request; });";
    let (id, _) = shaped_by(&gw, &sink, code).await;
    for _ in 0..3 {
        gw.post("/e/shop", "{}").await;
    }
    sink.wait_for(6).await;
    let runs = format!("/transformations/{id}/executions?dir=asc");
    let (mut seen, mut path) = (Vec::new(), runs.clone());
    loop {
        let page = get(&gw, &path).await;
        let models = page["models"].as_array().unwrap();
        assert!((1..=2).contains(&models.len()), "{} runs", models.len());
        seen.extend(ids(&page).into_iter().map(String::from));
        match page["pagination"]["next"].as_str() {
            Some(next) => path = format!("{runs}&next={next}"),
            None => break,
        }
    }
    seen.dedup();
    assert_eq!(seen.len(), 3, "every run once: {seen:?}");
}

/// The bookmark of `POST /bookmarks` (L5482-5525).
fn bookmark_example() -> Value {
    json!({
        "id": "bmk_pgmwVfQ9faN975poe0kW1Sp4",
        "team_id": "tm_nlcetVe8k1lMAY0KR0OxNuHr",
        "webhook_id": "web_UfM5ZY2wxLD6sLhDaKMcx5wp",
        "label": "Product Update – Out of Stock",
        "alias": null,
        "name": null,
        "event_data_id": "evtreq_HlJhb39nsjIP0FDsU3SY0fo7",
        "last_used_at": null,
        "updated_at": "2021-08-02T14:12:57.521Z",
        "created_at": "2021-08-02T14:12:57.520Z",
        "data": { "headers": {}, "body": {}, "query": "", "parsed_query": {}, "path": "/" }
    })
}

/// A gateway that delivered `{"order":42}` once; the event.
async fn one_order() -> (Sink, TestGateway, Event) {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink)).await;
    gw.post("/e/shop/orders", r#"{"order":42}"#).await;
    let event = gw.wait_event(|e| e.status == EventStatus::Successful).await;
    (sink, gw, event)
}

#[tokio::test(flavor = "multi_thread")]
async fn bookmarks_take_event_data_ids_and_triggering_answers_an_array_of_events() {
    let (sink, gw, event) = one_order().await;
    let data_id = event_data_id(&event.id);
    // POST /bookmarks (L5482): the reference's body.
    let body = json!({
        "label": "Product Update – Out of Stock",
        "event_data_id": data_id,
        "webhook_id": event.connection_id
    });
    let bookmark = ok(&gw, Method::POST, "/2023-07-01/bookmarks", body.clone()).await;
    assert_shape(&bookmark, &bookmark_example(), SHAPE);
    assert_eq!(
        (
            &bookmark["event_data_id"],
            &bookmark["webhook_id"],
            &bookmark["data"]["body"]
        ),
        (
            &json!(data_id),
            &json!(event.connection_id),
            &json!({ "order": 42 })
        )
    );
    let id = bookmark["id"].as_str().unwrap().to_string();
    // PUT /bookmarks/:id (L5560): the reference's body, with a name.
    let mut change = body.clone();
    change["name"] = json!("big-order");
    let changed = ok(&gw, Method::PUT, &format!("/bookmarks/{id}"), change).await;
    assert_shape(&changed, &bookmark_example(), SHAPE);
    assert_eq!(changed["name"], "big-order");
    assert!(changed["updated_at"].as_str() >= bookmark["updated_at"].as_str());
    // hookgate's own `event_id` still names the data.
    let by_event = json!({ "event_id": event.id, "label": "by event" });
    let other = ok(&gw, Method::POST, "/bookmarks", by_event).await;
    assert_eq!(other["event_data_id"], data_id);

    // POST /bookmarks/:id/trigger (L5614-5663): an array of events.
    let path = format!("/bookmarks/{id}/trigger");
    let triggered = ok(&gw, Method::POST, &path, json!({ "target": "http" })).await;
    let events = triggered.as_array().expect("an array");
    assert_eq!(events.len(), 1);
    let trigger_example = json!({
        "id": "evt_vuHxr759DYe6LsBgDk2VOfqI",
        "webhook_id": "web_UfM5ZY2wxLD6sLhDaKMcx5wp",
        "source_id": "src_9YmY0SHklrv6zBQz78cKGwSW",
        "destination_id": "des_fYYCay655IHwbOMhIaUXtNq2",
        "attempts": 0,
        "status": "QUEUED",
        "created_at": "2021-08-02T14:12:57.610Z",
    });
    assert_shape(&events[0], &trigger_example, SHAPE);
    let received = sink.wait_for(2).await;
    assert_eq!(
        received[1].header("x-hookgate-event-id"),
        events[0]["id"].as_str()
    );
    assert_eq!(&received[1].body[..], br#"{"order":42}"#);
    // No CLI destination behind the source (listen.rs has one).
    let cli = json!({ "target": "cli" });
    assert_eq!(refused(&gw, Method::POST, &path, cli).await, "target");
    let unknown = json!({ "target": "pigeon" });
    assert_eq!(refused(&gw, Method::POST, &path, unknown).await, "target");
    assert_eq!(
        refused(&gw, Method::POST, &path, json!({ "target": 5 })).await,
        "body"
    );
    let empty = gw
        .api(Method::POST, &path)
        .header("content-type", "application/json");
    let empty = empty.send().await.unwrap();
    assert_eq!(
        empty.status(),
        200,
        "no body, even typed as JSON, is the default target"
    );
    let used = get(&gw, &format!("/bookmarks/{id}")).await;
    assert!(used["last_used_at"].is_string());
    let refused_webhook =
        json!({ "event_data_id": data_id, "webhook_id": "web_nope", "label": "x" });
    assert_eq!(
        refused(&gw, Method::POST, "/bookmarks", refused_webhook).await,
        "webhook_id"
    );
    let not_data =
        json!({ "event_data_id": "evt_x", "webhook_id": event.connection_id, "label": "x" });
    assert_eq!(
        refused(&gw, Method::POST, "/bookmarks", not_data).await,
        "event_data_id"
    );

    // GET /bookmarks (L5324-5407): every filter the reference names.
    let list = get(&gw, "/2023-07-01/bookmarks?limit=1").await;
    assert_eq!(
        list["pagination"],
        json!({ "order_by": "created_at", "dir": "desc", "limit": 1, "next": other["id"] })
    );
    assert_shape(&list["models"][0], &bookmark_example(), SHAPE);
    for (query, expected) in [
        (format!("id={id}"), vec![id.as_str()]),
        ("name=big-order".into(), vec![id.as_str()]),
        (
            "label=by%20event".into(),
            vec![other["id"].as_str().unwrap()],
        ),
        (
            format!("webhook_id={}", event.connection_id),
            vec![other["id"].as_str().unwrap(), id.as_str()],
        ),
        (
            format!("event_data_id[]={data_id}"),
            vec![other["id"].as_str().unwrap(), id.as_str()],
        ),
        ("event_data_id=edt_other".into(), vec![]),
        ("last_used_at[any]=true".into(), vec![id.as_str()]),
        ("last_used_at[gte]=2099-01-01".into(), vec![]),
    ] {
        let found = get(&gw, &format!("/bookmarks?{query}")).await;
        assert_eq!(ids(&found), expected, "{query}");
    }
}

/// The bulk retry the reference answers a create with (L6757-6781).
fn bulk_example() -> Value {
    json!({
        "id": "blkr_6dxoWIomd8DQdH",
        "team_id": "tm_UkFg3CHYN50M",
        "query": { "source_id": ["src_oDhfDrVAZV6OIPdBzcD97of2"] },
        "updated_at": "2022-05-13T09:06:03.983Z",
        "created_at": "2022-05-13T09:05:55.394Z",
        "completed_at": null,
        "cancelled_at": "2022-05-13T09:06:03.982Z",
        "estimated_batch": 4,
        "processed_batch": 2,
        "estimated_count": 28,
        "completed_count": 8,
        "failed_count": 0,
        "number": 15,
        "in_progress": false,
        "progress": 0.29
    })
}

/// Polls a bulk retry until it is no longer in progress.
pub async fn finished(gw: &TestGateway, kind: &str, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let job = get(gw, &format!("/bulk/{kind}/retry/{id}")).await;
        if job["in_progress"] == false {
            return job;
        }
        assert!(tokio::time::Instant::now() < deadline, "still in progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn encoded(query: &Value) -> String {
    url::form_urlencoded::byte_serialize(query.to_string().as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_retries_answer_in_the_references_shape_and_list_by_their_query() {
    let (sink, gw, event) = one_order().await;
    // POST /bulk/events/retry and /bulk/requests/retry (L6750, L7505): the
    // reference's body, with this gateway's source.
    let query = json!({ "source_id": [event.source_id] });
    let body = json!({ "query": query });
    let events_job = ok(
        &gw,
        Method::POST,
        "/2023-07-01/bulk/events/retry",
        body.clone(),
    )
    .await;
    assert_shape(
        &events_job,
        &bulk_example(),
        Leeway {
            null_allowed: &["cancelled_at"],
            ..SHAPE
        },
    );
    assert_eq!(events_job["query"], query, "the object as sent");
    assert_eq!(
        (&events_job["number"], &events_job["estimated_count"]),
        (&json!(1), &json!(1))
    );
    let id = events_job["id"].as_str().unwrap().to_string();
    let done = finished(&gw, "events", &id).await;
    assert_shape(
        &done,
        &bulk_example(),
        Leeway {
            null_allowed: &["cancelled_at"],
            ..SHAPE
        },
    );
    assert_eq!(
        (
            &done["progress"],
            &done["processed_batch"],
            &done["completed_count"]
        ),
        (&json!(1.0), &json!(1), &json!(1))
    );
    assert!(done["completed_at"].is_string());
    assert!(done["updated_at"].as_str() >= done["created_at"].as_str());
    sink.wait_for(2).await;
    let requests_job = ok(&gw, Method::POST, "/bulk/requests/retry", body.clone()).await;
    assert_shape(
        &requests_job,
        &bulk_example(),
        Leeway {
            null_allowed: &["cancelled_at"],
            ..SHAPE
        },
    );
    assert_eq!(requests_job["number"], 1, "numbered per kind");
    finished(&gw, "requests", requests_job["id"].as_str().unwrap()).await;
    let failing = json!({ "query": { "status": ["FAILED"] } });
    let second = ok(&gw, Method::POST, "/bulk/events/retry", failing).await;
    assert_eq!(
        (&second["number"], &second["estimated_count"]),
        (&json!(2), &json!(0))
    );
    // An ignored-events job, by the cause of the reference's example (L7139).
    let cause = json!({ "query": { "cause": "TRANSFORMATION_FAILED" } });
    let ignored = ok(&gw, Method::POST, "/bulk/ignored-events/retry", cause).await;
    assert_shape(
        &ignored,
        &bulk_example(),
        Leeway {
            null_allowed: &["cancelled_at"],
            ..SHAPE
        },
    );

    // GET .../plan and .../plan/generate (L6722): the reference's `query`.
    for plan in ["plan", "plan/generate"] {
        let path = format!("/bulk/events/retry/{plan}?query={}", encoded(&query));
        let answer = get(&gw, &path).await;
        assert_eq!(
            answer,
            json!({ "estimated_count": 1, "estimated_batch": 1, "progress": 0 })
        );
    }

    // Cancel (L6798) answers the job; one already over is left as it was.
    let cancelled = ok(
        &gw,
        Method::POST,
        &format!("/bulk/events/retry/{id}/cancel"),
        json!({}),
    )
    .await;
    assert_shape(
        &cancelled,
        &bulk_example(),
        Leeway {
            null_allowed: &["cancelled_at"],
            ..SHAPE
        },
    );
    assert_eq!(
        (&cancelled["cancelled_at"], &cancelled["completed_at"]),
        (&Value::Null, &done["completed_at"])
    );

    // GET /bulk/events/retry (L6559-6629): its query, exactly or in part.
    let list = get(&gw, "/2023-07-01/bulk/events/retry?limit=1").await;
    assert_eq!(
        list["pagination"],
        json!({ "order_by": "created_at", "dir": "desc", "limit": 1, "next": second["id"] })
    );
    assert_shape(
        &list["models"][0],
        &bulk_example(),
        Leeway {
            null_allowed: &["cancelled_at", "completed_at"],
            ..SHAPE
        },
    );
    let second_id = second["id"].as_str().unwrap();
    let both = json!({ "source_id": [event.source_id], "status": ["FAILED"] });
    for (filter, expected) in [
        (format!("query={}", encoded(&query)), vec![id.as_str()]),
        (
            format!("query={}", encoded(&json!({ "status": ["FAILED"] }))),
            vec![second_id],
        ),
        (format!("query={}", encoded(&both)), vec![]),
        (
            format!("query={}&query_partial_match=true", encoded(&json!({}))),
            vec![second_id, id.as_str()],
        ),
        (
            format!(
                "query={}&query_partial_match=true",
                encoded(&json!({ "status": [] }))
            ),
            vec![second_id],
        ),
        (
            "query_partial_match=false".into(),
            vec![second_id, id.as_str()],
        ),
        (
            "in_progress=false&order_by=updated_at&dir=asc".into(),
            vec![id.as_str(), second_id],
        ),
        (
            "completed_at[any]=true&cancelled_at[any]=false".into(),
            vec![second_id, id.as_str()],
        ),
    ] {
        let found = get(&gw, &format!("/bulk/events/retry?{filter}")).await;
        assert_eq!(ids(&found), expected, "{filter}");
    }
    let (status, error) = gw.api_get("/bulk/events/retry?query=%5B1%5D").await;
    assert_eq!(
        (status, error["data"]["field"].as_str()),
        (422, Some("query"))
    );
    let (status, error) = gw.api_get("/bulk/events/retry?query[status]=FAILED").await;
    assert_eq!(
        (status, error["data"]["field"].as_str()),
        (422, Some("query[status]"))
    );
    let (status, _) = gw.api_get(&format!("/bulk/requests/retry/{id}")).await;
    assert_eq!(status, 404, "an events job is not a requests job");
}

/// Records as earlier versions stored them (a bulk retry's query a query
/// string; no `updated_at` on either) load and show in the reference's shape.
#[tokio::test(flavor = "multi_thread")]
async fn bulk_retries_and_bookmarks_stored_by_earlier_versions_show_in_the_new_shape() {
    let (sink, gw, event) = one_order().await;
    let config = shop(&sink);
    let dir = gw.stopped().await;
    let payload = json!({
        "method": "POST", "path": "/orders", "query": "", "headers": [["content-type", "application/json"]],
        "body": "eyJvcmRlciI6NDJ9"
    });
    {
        let db = crate::backend::keyspace(dir.path());
        let bulk = json!({
            "id": "bch_0000000000000001aaaaaaaa", "kind": "events",
            "query": "status%5B%5D=FAILED&created_at%5Bgte%5D=2020-01-01T00%3A00%3A00.000Z",
            "status": "completed", "estimated_count": 4, "completed_count": 3, "failed_count": 1,
            "cursor": null, "created_at": 1_600_000_000_000u64,
            "completed_at": 1_600_000_100_000u64, "cancelled_at": null
        });
        let bulk_tree = db.open_tree("bulk_retries").unwrap();
        bulk_tree
            .insert("bch_0000000000000001aaaaaaaa", bulk.to_string().as_bytes())
            .unwrap();
        let bookmark = json!({
            "id": "bmk_0000000000000001aaaaaaaa", "label": "old", "name": null,
            "connection_id": event.connection_id, "event_id": event.id, "request_id": event.request_id,
            "data": payload, "created_at": 1_600_000_000_000u64, "last_used_at": null
        });
        let bookmarks = db.open_tree("bookmarks").unwrap();
        bookmarks
            .insert(
                "bmk_0000000000000001aaaaaaaa",
                bookmark.to_string().as_bytes(),
            )
            .unwrap();
        db.flush().unwrap();
    }
    let gw = TestGateway::start_in(dir, &config).await;
    let old = get(&gw, "/bulk/events/retry/bch_0000000000000001aaaaaaaa").await;
    assert_shape(
        &old,
        &bulk_example(),
        Leeway {
            null_allowed: &["cancelled_at"],
            ..SHAPE
        },
    );
    assert_eq!(
        old["query"],
        json!({ "status": ["FAILED"], "created_at": { "gte": "2020-01-01T00:00:00.000Z" } })
    );
    assert_eq!(
        (
            &old["updated_at"],
            &old["number"],
            &old["progress"],
            &old["in_progress"]
        ),
        (&old["completed_at"], &json!(1), &json!(1.0), &json!(false))
    );
    let partial = json!({ "status": ["FAILED"] });
    let path = format!(
        "/bulk/events/retry?query={}&query_partial_match=true",
        encoded(&partial)
    );
    assert_eq!(get(&gw, &path).await["count"], 1);
    let bookmark = get(&gw, "/bookmarks/bmk_0000000000000001aaaaaaaa").await;
    assert_shape(&bookmark, &bookmark_example(), SHAPE);
    assert_eq!(
        (&bookmark["updated_at"], &bookmark["event_data_id"]),
        (&bookmark["created_at"], &json!(event_data_id(&event.id)))
    );
}

/// The reference's ignored-events bulk retry selects by the transformation
/// that failed (L7139-7146): so do its plan and the ignored events' list.
#[tokio::test(flavor = "multi_thread")]
async fn ignored_events_are_selected_by_the_transformation_that_failed() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink)).await;
    let code = "addHandler('transform', () => { throw new Error('no'); });";
    let (id, _) = shaped_by(&gw, &sink, code).await;
    let (status, answer) = gw.post("/e/shop", "{}").await;
    assert_eq!(status, 200, "{answer}");
    gw.wait_routed(answer["request_id"].as_str().unwrap()).await;
    let plan = |transformation: &str| {
        let query = json!({"cause": "TRANSFORMATION_FAILED", "transformation_id": transformation});
        format!("/bulk/ignored-events/retry/plan?query={}", encoded(&query))
    };
    assert_eq!(get(&gw, &plan(&id)).await["estimated_count"], 1);
    assert_eq!(get(&gw, &plan("trs_other")).await["estimated_count"], 0);
    let listed = get(&gw, &format!("/ignored_events?transformation_id={id}")).await;
    assert_eq!(listed["count"], 1, "{listed}");
}

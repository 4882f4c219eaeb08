//! Outbound webhooks through the real server: applications, event types,
//! endpoints (real sinks), webhook jobs and their signed deliveries.

pub use crate::common::INSECURE;
use crate::common::{rate_limited_span, Received, Reply, Sink, TestGateway, PATIENCE};
use hookgate::model::WebhookJob;
use hookgate::signing::standard_webhooks::{self, WebhookSecret};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

/// Short windows so that retries, discards and circuits happen within a test.
pub fn outbound_section(extra: &str) -> String {
    format!("[outbound]\ncircuit_failure_threshold = 100\ncircuit_cooldown_ms = 200\n{extra}\n")
}

pub async fn gateway(outbound_extra: &str) -> TestGateway {
    TestGateway::start_with(INSECURE, &outbound_section(outbound_extra)).await
}

/// Creates an application; returns its id.
pub async fn application(gw: &TestGateway, name: &str) -> String {
    let (status, app) = gw
        .api_send(Method::POST, "/v1/applications", json!({ "name": name }))
        .await;
    assert_eq!(status, 201, "{app}");
    app["id"].as_str().unwrap().to_string()
}

/// Declares event types (no schema) on an application.
pub async fn event_types(gw: &TestGateway, app: &str, names: &[&str]) {
    for name in names {
        let (status, body) = gw
            .api_send(
                Method::POST,
                &format!("/v1/applications/{app}/event-types"),
                json!({ "name": name }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
}

/// Creates an endpoint with `fields` added to application_id and url; returns it.
pub async fn endpoint(gw: &TestGateway, app: &str, sink: &Sink, fields: Value) -> Value {
    let mut body = json!({ "application_id": app, "url": sink.url("/hooks") });
    body.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    let (status, endpoint) = gw.api_send(Method::POST, "/v1/endpoints", body).await;
    assert_eq!(status, 201, "{endpoint}");
    endpoint
}

/// Sends a job; returns the status and the answer.
pub async fn send_job(gw: &TestGateway, body: Value) -> (u16, Value) {
    gw.api_send(Method::POST, "/v1/webhook-jobs", body).await
}

/// Waits until the job's status is `status`; returns the job as the API shows it.
pub async fn wait_job(gw: &TestGateway, job_id: &str, status: &str) -> Value {
    let store = &gw.gateway.store;
    let mut feed = store.subscribe_jobs();
    let reached = tokio::time::timeout(PATIENCE, async {
        while store.job(job_id).unwrap().unwrap().status.as_str() != status {
            if let Err(RecvError::Closed) = feed.recv().await {
                panic!("job feed closed");
            }
        }
    })
    .await;
    let (code, job) = gw.api_get(&format!("/v1/webhook-jobs/{job_id}")).await;
    assert!(reached.is_ok(), "job never became {status}: {job}");
    assert_eq!(code, 200);
    job
}

/// Checks a delivery's Standard Webhooks signature with the endpoint's secret.
pub fn assert_signed(received: &Received, secret: &str) {
    let secret = WebhookSecret::parse(secret).unwrap();
    let now = (hookgate::ids::now_ms() / 1000) as i64;
    standard_webhooks::verify(
        &[&secret],
        received.header("webhook-id").expect("webhook-id"),
        received
            .header("webhook-timestamp")
            .expect("webhook-timestamp"),
        received
            .header("webhook-signature")
            .expect("webhook-signature"),
        &received.body,
        now,
        standard_webhooks::DEFAULT_TOLERANCE_SECONDS,
    )
    .expect("the delivery is signed with the endpoint's secret");
}

#[tokio::test]
async fn a_job_fans_out_to_subscribed_endpoints_only_signed_with_each_secret() {
    let gw = gateway("").await;
    let app = application(&gw, "production").await;
    event_types(&gw, &app, &["invoice.paid", "invoice.voided"]).await;
    let (paid, voided, all) = (
        Sink::start(Reply::Status(200)).await,
        Sink::start(Reply::Status(200)).await,
        Sink::start(Reply::Status(200)).await,
    );
    let paid_ep = endpoint(
        &gw,
        &app,
        &paid,
        json!({ "subscribed_events": ["invoice.paid"] }),
    )
    .await;
    endpoint(
        &gw,
        &app,
        &voided,
        json!({ "subscribed_events": ["invoice.voided"] }),
    )
    .await;
    let all_ep = endpoint(&gw, &app, &all, json!({})).await;
    assert!(paid_ep["secret"].as_str().unwrap().starts_with("whsec_"));

    let (status, job) = send_job(
        &gw,
        json!({
            "application_id": app,
            "event_type": "invoice.paid",
            "payload": { "invoice": "in_1", "amount": 4200 },
            "headers": { "X-Tenant": "acme" },
            "metadata": { "internal": "never sent" },
        }),
    )
    .await;
    assert_eq!(status, 201, "{job}");
    let job_id = job["id"].as_str().unwrap();
    assert_eq!(job["deliveries"].as_array().unwrap().len(), 2, "{job}");
    let job = wait_job(&gw, job_id, "succeeded").await;
    assert_eq!(job["attempt_count"], 2);
    for delivery in job["deliveries"].as_array().unwrap() {
        assert_eq!(delivery["status"], "completed");
        assert_eq!(delivery["status_code"], 200);
        assert!(delivery["latency_ms"].is_u64() && delivery["attempted_at"].is_string());
    }

    for (sink, endpoint) in [(&paid, &paid_ep), (&all, &all_ep)] {
        let received = sink.wait_for(1).await;
        assert_eq!(received.len(), 1);
        let request = &received[0];
        assert_eq!(request.method, "POST");
        assert_eq!(request.header("x-tenant"), Some("acme"));
        assert_eq!(request.header("webhook-id"), Some(job_id));
        assert_signed(request, endpoint["secret"].as_str().unwrap());
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(
            body.as_object().unwrap().keys().collect::<Vec<_>>().len(),
            5,
            "{body}"
        );
        assert_eq!(body["event_id"], job_id);
        assert_eq!(body["event_type"], "invoice.paid");
        assert_eq!(body["application_id"], app.as_str());
        assert!(body["timestamp"].is_string());
        assert_eq!(
            body["payload"],
            json!({ "invoice": "in_1", "amount": 4200 })
        );
        assert!(!String::from_utf8_lossy(&request.body).contains("never sent"));
    }
    assert!(voided.received().is_empty());
}

fn job_body(app: &str, event_type: &str, payload: Value) -> Value {
    json!({ "application_id": app, "event_type": event_type, "payload": payload })
}

/// An application with one event type and one endpoint on a sink.
pub async fn one_endpoint(gw: &TestGateway, sink: &Sink, fields: Value) -> (String, Value) {
    let app = application(gw, "production").await;
    event_types(gw, &app, &["order.created"]).await;
    let endpoint = endpoint(gw, &app, sink, fields).await;
    (app, endpoint)
}

pub async fn job_id_of(gw: &TestGateway, app: &str) -> String {
    let (status, job) = send_job(gw, job_body(app, "order.created", json!({ "n": 1 }))).await;
    assert_eq!(status, 201, "{job}");
    job["id"].as_str().unwrap().to_string()
}

/// A job of one endpoint (its sink failing) whose delivery failed once and
/// waits for its retry: the job's id and the endpoint.
async fn job_awaiting_retry(gw: &TestGateway, sink: &Sink) -> (String, Value) {
    let (app, endpoint) = one_endpoint(gw, sink, json!({})).await;
    let job_id = job_id_of(gw, &app).await;
    wait_job(gw, &job_id, "awaiting_retry").await;
    (job_id, endpoint)
}

/// The id of a job's first delivery.
fn first_delivery_id(gw: &TestGateway, job_id: &str) -> String {
    gw.gateway.store.deliveries_of(job_id).unwrap()[0]
        .id
        .clone()
}

#[tokio::test]
async fn an_event_id_returns_the_same_job_instead_of_a_new_one() {
    let gw = gateway("").await;
    let sink = Sink::start(Reply::Status(200)).await;
    let (app, _) = one_endpoint(&gw, &sink, json!({})).await;
    let mut body = job_body(&app, "order.created", json!({ "order": 7 }));
    body["event_id"] = json!("order-7-created");
    let (first_status, first) = send_job(&gw, body.clone()).await;
    let (again_status, again) = send_job(&gw, body.clone()).await;
    assert_eq!((first_status, again_status), (201, 200));
    assert_eq!(first["id"], again["id"]);
    assert_eq!(first["event_id"], "order-7-created");
    wait_job(&gw, first["id"].as_str().unwrap(), "succeeded").await;
    let (_, listed) = gw
        .api_get(&format!("/v1/webhook-jobs?application_id={app}"))
        .await;
    assert_eq!(listed["pagination"]["total"], 1, "{listed}");
    let envelope: Value = serde_json::from_slice(&sink.wait_for(1).await[0].body).unwrap();
    assert_eq!(envelope["event_id"], "order-7-created");

    // The key belongs to one application: another one gets its own job.
    let other = application(&gw, "staging").await;
    event_types(&gw, &other, &["order.created"]).await;
    body["application_id"] = json!(other);
    let (status, elsewhere) = send_job(&gw, body).await;
    assert_eq!(status, 201);
    assert_ne!(elsewhere["id"], first["id"]);
}

#[tokio::test]
async fn senders_racing_with_one_event_id_get_one_job_readable_at_once() {
    let gw = gateway("").await;
    let sink = Sink::start(Reply::Status(200)).await;
    let (app, _) = one_endpoint(&gw, &sink, json!({})).await;
    let mut body = job_body(&app, "order.created", json!({ "order": 8 }));
    body["event_id"] = json!("order-8-created");
    let sends = (0..16).map(|_| send_job(&gw, body.clone()));
    let answers = futures_util::future::join_all(sends).await;
    let created: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, j)| j)
        .collect();
    assert_eq!(created.len(), 1, "one 201: {answers:?}");
    let id = created[0]["id"].as_str().unwrap();
    for (status, job) in &answers {
        assert!(*status == 201 || *status == 200, "{status} {job}");
        assert_eq!(job["id"], id, "every sender is answered the one job");
        assert_eq!(job["deliveries"].as_array().unwrap().len(), 1, "{job}");
    }
    // Read right after its 201 (the router may not have stored it yet).
    let (status, read) = gw.api_get(&format!("/v1/webhook-jobs/{id}")).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["deliveries"].as_array().unwrap().len(), 1, "{read}");
    wait_job(&gw, id, "succeeded").await;
    assert_eq!(sink.received().len(), 1, "delivered once");
}

#[tokio::test]
async fn an_event_id_is_a_new_job_once_its_window_has_passed() {
    let gw = gateway("idempotency_window_ms = 1").await;
    let sink = Sink::start(Reply::Status(200)).await;
    let (app, _) = one_endpoint(&gw, &sink, json!({})).await;
    let mut body = job_body(&app, "order.created", json!({}));
    body["event_id"] = json!("once");
    let (_, first) = send_job(&gw, body.clone()).await;
    wait_job(&gw, first["id"].as_str().unwrap(), "succeeded").await;
    let (status, second) = send_job(&gw, body).await;
    assert_eq!(status, 201);
    assert_ne!(first["id"], second["id"]);
}

#[tokio::test]
async fn a_payload_is_kept_and_sent_as_the_text_it_was_sent_in() {
    let gw = gateway("").await;
    let sink = Sink::start(Reply::Status(200)).await;
    let (app, _) = one_endpoint(&gw, &sink, json!({})).await;
    // Spaces, a line break and a number a `Value` would write as 1.0e1.
    let payload = "{ \"amount\": 10.00,\n  \"note\": \"as given\" }";
    let body =
        format!(r#"{{"application_id":"{app}","event_type":"order.created","payload":{payload}}}"#);
    let answer = gw
        .api(Method::POST, "/v1/webhook-jobs")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);

    let received = sink.wait_for(1).await;
    let sent = String::from_utf8_lossy(&received[0].body);
    assert!(
        sent.ends_with(&format!(",\"payload\":{payload}}}")),
        "{sent}"
    );
}

#[tokio::test]
async fn payloads_over_the_limit_are_refused_with_413() {
    let gw = gateway("").await;
    let sink = Sink::start(Reply::Status(200)).await;
    let (app, _) = one_endpoint(&gw, &sink, json!({})).await;
    // `{"d":"…"}`: 8 bytes around the text, 256 KiB serialized in all.
    let just_under = "x".repeat(256 * 1024 - 8);
    let payload = json!({ "d": just_under });
    let (status, _) = send_job(&gw, job_body(&app, "order.created", payload)).await;
    assert_eq!(status, 201);
    let (status, error) = send_job(
        &gw,
        job_body(
            &app,
            "order.created",
            json!({ "d": format!("{just_under}x") }),
        ),
    )
    .await;
    assert_eq!(status, 413, "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("payload"),
        "{error}"
    );
    // Far beyond the limit, the body itself is refused before it is parsed.
    let huge = "y".repeat(3 * 1024 * 1024);
    let (status, error) = send_job(&gw, job_body(&app, "order.created", json!(huge))).await;
    assert_eq!(status, 413, "{error}");
    let (_, listed) = gw
        .api_get(&format!("/v1/webhook-jobs?application_id={app}"))
        .await;
    assert_eq!(listed["pagination"]["total"], 1);
}

#[tokio::test]
async fn payloads_must_meet_the_event_types_schema() {
    let gw = gateway("").await;
    let app = application(&gw, "production").await;
    let schema = json!({
        "type": "object",
        "required": ["amount", "currency"],
        "properties": {
            "amount": { "type": "integer", "minimum": 1 },
            "currency": { "type": "string", "enum": ["eur", "usd"] }
        }
    });
    let path = format!("/v1/applications/{app}/event-types");
    let (status, created) = gw
        .api_send(
            Method::POST,
            &path,
            json!({ "name": "charge.succeeded", "schema": schema }),
        )
        .await;
    assert_eq!(status, 201, "{created}");

    let (status, error) = send_job(
        &gw,
        job_body(
            &app,
            "charge.succeeded",
            json!({ "amount": 0, "currency": "gbp" }),
        ),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    let violations = error["data"]["violations"].as_array().unwrap();
    assert_eq!(violations.len(), 2, "{error}");
    assert!(violations
        .iter()
        .any(|v| v.as_str().unwrap().starts_with("/amount")));
    assert!(violations
        .iter()
        .any(|v| v.as_str().unwrap().starts_with("/currency")));

    let (status, _) = send_job(
        &gw,
        job_body(
            &app,
            "charge.succeeded",
            json!({ "amount": 5, "currency": "eur" }),
        ),
    )
    .await;
    assert_eq!(status, 201);

    // Bad names and schemas are refused when the type is declared.
    let (status, error) = gw
        .api_send(Method::POST, &path, json!({ "name": "Charge-Failed" }))
        .await;
    assert_eq!(status, 422);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("resource.action"),
        "{error}"
    );
    let (status, error) = gw
        .api_send(
            Method::POST,
            &path,
            json!({ "name": "charge.failed", "schema": { "type": 12 } }),
        )
        .await;
    assert_eq!(
        (status, error["data"]["field"].as_str()),
        (422, Some("schema")),
        "{error}"
    );
    // Declaring is optional (the references never ask for it): a job of an
    // undeclared type is sent, with no schema to meet.
    let (status, job) = send_job(
        &gw,
        job_body(&app, "charge.refunded", json!({ "refund": 1 })),
    )
    .await;
    assert_eq!(status, 201, "{job}");
}

#[tokio::test]
async fn endpoints_need_https_unless_insecure_ones_are_allowed() {
    let gw = TestGateway::start(&outbound_section("")).await;
    let app = application(&gw, "production").await;
    let (status, error) = gw
        .api_send(
            Method::POST,
            "/v1/endpoints",
            json!({ "application_id": app, "url": "http://example.com/hooks" }),
        )
        .await;
    assert_eq!(status, 422, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("allow_insecure_endpoints"),
        "{error}"
    );
    let (status, endpoint) = gw
        .api_send(
            Method::POST,
            "/v1/endpoints",
            json!({ "application_id": app, "url": "https://example.com/hooks" }),
        )
        .await;
    assert_eq!(status, 201, "{endpoint}");
    assert_eq!(endpoint["status"], "active");
    assert_eq!(endpoint["circuit_state"], "closed");
}

/// The attempts of a job's only delivery, oldest first.
fn attempts_of_only_delivery(gw: &TestGateway, job_id: &str) -> Vec<hookgate::model::Attempt> {
    let store = &gw.gateway.store;
    let delivery = &store.deliveries_of(job_id).unwrap()[0];
    store.attempts_of(&delivery.id).unwrap()
}

#[tokio::test]
async fn failed_deliveries_back_off_exponentially_across_the_window() {
    // 3 retries over 3.2 s: waits of 400, 800 and 1600 ms, the last retry
    // 400 ms before the window ends (slack for a loaded machine).
    let gw = gateway("delivery_window_ms = 3200\nmax_retries = 3").await;
    let sink = Sink::start(Reply::Status(500)).await;
    let (app, _) = one_endpoint(&gw, &sink, json!({})).await;
    let job_id = job_id_of(&gw, &app).await;
    let job = wait_job(&gw, &job_id, "discarded").await;
    assert!(job["discarded_at"].is_string());
    assert_eq!(job["deliveries"][0]["status"], "failed");
    let attempts = attempts_of_only_delivery(&gw, &job_id);
    assert_eq!(attempts.len(), 4);
    assert_eq!(job["attempt_count"], 4);
    for (n, pair) in attempts.windows(2).enumerate() {
        let waited = pair[1].created_at - pair[0].created_at;
        assert!(waited >= 400 << n, "retry {n} came after {waited} ms");
    }
}

#[tokio::test]
async fn deliveries_still_failing_when_the_window_ends_are_discarded() {
    // Each attempt times out after 200 ms, so a 1.5 s window ends long before
    // the 20 retries do, and holds two attempts even when a loaded machine
    // makes the first one late.
    let gw = TestGateway::start_with(
        INSECURE,
        &format!(
            "[limits]\ndelivery_timeout_ms = 200\n{}",
            outbound_section("delivery_window_ms = 1500\nmax_retries = 20")
        ),
    )
    .await;
    let sink = Sink::start(Reply::Hang).await;
    let (app, _) = one_endpoint(&gw, &sink, json!({})).await;
    let job_id = job_id_of(&gw, &app).await;
    wait_job(&gw, &job_id, "discarded").await;
    let attempts = attempts_of_only_delivery(&gw, &job_id);
    assert!(
        (2..21).contains(&attempts.len()),
        "{} attempts",
        attempts.len()
    );
    let expires_at = gw.gateway.store.job(&job_id).unwrap().unwrap().expires_at;
    assert!(attempts.iter().all(|a| a.created_at < expires_at));
    assert_eq!(
        attempts.last().unwrap().error_code.as_deref(),
        Some("TIMEOUT")
    );
}

#[tokio::test]
async fn a_retry_its_endpoints_rate_limit_holds_past_the_window_is_not_sent() {
    // One attempt a second: the retry, due 1 ms after the first attempt,
    // waits for the limit until long after the 500 ms window ended.
    let gw = gateway("delivery_window_ms = 500\nmax_retries = 20").await;
    let sink = Sink::start(Reply::Status(503)).await;
    let (app, _) = one_endpoint(&gw, &sink, json!({ "rate_limit": 1 })).await;
    let job_id = job_id_of(&gw, &app).await;
    let job = wait_job(&gw, &job_id, "discarded").await;
    assert_eq!(job["deliveries"][0]["status"], "failed");
    assert_eq!(job["attempt_count"], 1);
    let attempts = attempts_of_only_delivery(&gw, &job_id);
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].response_status, Some(503));
    let delivery = &gw.gateway.store.deliveries_of(&job_id).unwrap()[0];
    assert_eq!(
        delivery.response_status,
        Some(503),
        "as its last attempt left it"
    );
    let store = &gw.gateway.store;
    assert!(store
        .pending_event_ids(&delivery.destination_id)
        .unwrap()
        .is_empty());
    assert_eq!(sink.received().len(), 1);
}

#[tokio::test]
async fn retries_run_out_after_max_retries() {
    let gw = gateway("delivery_window_ms = 60000").await;
    let sink = Sink::start(Reply::Status(503)).await;
    let (app, _) = one_endpoint(&gw, &sink, json!({})).await;
    let mut body = job_body(&app, "order.created", json!({}));
    body["max_retries"] = json!(0);
    let (_, job) = send_job(&gw, body).await;
    let job = wait_job(&gw, job["id"].as_str().unwrap(), "discarded").await;
    assert_eq!(
        (job["attempt_count"].as_u64(), job["max_retries"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(job["deliveries"][0]["status_code"], 503);
}

#[tokio::test]
async fn cancel_and_retry_follow_the_state_rules() {
    let gw = gateway("delivery_window_ms = 3600000").await;
    let sink = Sink::start(Reply::StatusWithBody(500, "try later".into())).await;
    let (app, _) = one_endpoint(&gw, &sink, json!({})).await;
    let job_id = job_id_of(&gw, &app).await;
    let job = wait_job(&gw, &job_id, "awaiting_retry").await;
    assert_eq!(job["deliveries"][0]["response_body"], "try later");

    let cancel = format!("/v1/webhook-jobs/{job_id}/cancel");
    let (status, cancelled) = gw.api_send(Method::POST, &cancel, json!({})).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "discarded");
    assert!(cancelled["discarded_at"].is_string());
    assert_eq!(cancelled["deliveries"][0]["status"], "failed");
    let (status, error) = gw.api_send(Method::POST, &cancel, json!({})).await;
    assert_eq!(status, 409, "{error}");

    sink.set_reply(Reply::Status(200));
    let (status, retried) = gw
        .api_send(
            Method::POST,
            &format!("/v1/webhook-jobs/{job_id}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["attempt_count"], 0);
    assert!(retried["discarded_at"].is_null());
    let done = wait_job(&gw, &job_id, "succeeded").await;
    assert_eq!(done["attempt_count"], 1);
    assert_eq!(sink.wait_for(2).await.len(), 2);
    // A succeeded job cannot be cancelled.
    let (status, _) = gw.api_send(Method::POST, &cancel, json!({})).await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn a_retrying_delivery_can_be_cancelled_and_retried_on_its_own() {
    let gw = gateway("delivery_window_ms = 3600000").await;
    let sink = Sink::start(Reply::Status(500)).await;
    let (job_id, _) = job_awaiting_retry(&gw, &sink).await;
    let delivery_id = first_delivery_id(&gw, &job_id);
    let path = format!("/api/webhook-deliveries/{delivery_id}");

    let response = gw.api(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let cancelled: Value = response.json().await.unwrap();
    assert_eq!(cancelled["status"], "failed");
    assert_eq!(cancelled["lastErrorCode"], "CANCELLED");
    wait_job(&gw, &job_id, "discarded").await;
    assert_eq!(
        gw.api_delete(&path).await,
        409,
        "only a retrying delivery can be cancelled"
    );

    sink.set_reply(Reply::Status(200));
    let (status, retried) = gw
        .api_send(Method::POST, &format!("{path}/retry"), json!({}))
        .await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["attemptCount"], 0);
    wait_job(&gw, &job_id, "succeeded").await;
    let (_, delivery) = gw.api_get(&path).await;
    assert_eq!(delivery["status"], "completed");
    assert_eq!(
        delivery["attempts"].as_array().unwrap().len(),
        2,
        "{delivery}"
    );
}

/// A gateway whose endpoints' circuits open after two failures in a row and
/// stay open `cooldown_ms`, and a sink that fails every delivery.
async fn failing_with_circuits_of(cooldown_ms: u64) -> (TestGateway, Sink) {
    let outbound = format!(
        "[outbound]\ncircuit_failure_threshold = 2\ncircuit_cooldown_ms = {cooldown_ms}\ndelivery_window_ms = 3600000\n"
    );
    let gw = TestGateway::start_with(INSECURE, &outbound).await;
    (gw, Sink::start(Reply::Status(500)).await)
}

#[tokio::test]
async fn the_circuit_opens_after_consecutive_failures_and_closes_after_a_good_trial() {
    let (gw, sink) = failing_with_circuits_of(300).await;
    let (app, endpoint) = one_endpoint(&gw, &sink, json!({})).await;
    let endpoint_path = format!("/v1/endpoints/{}", endpoint["id"].as_str().unwrap());
    let circuit = || async { gw.api_get(&endpoint_path).await.1["circuit_state"].clone() };

    let first = job_id_of(&gw, &app).await;
    wait_job(&gw, &first, "awaiting_retry").await;
    assert_eq!(circuit().await, "closed");
    let second = job_id_of(&gw, &app).await;
    wait_job(&gw, &second, "awaiting_retry").await;
    assert_eq!(circuit().await, "open");
    let opened = sink.received()[1].at;

    // While open nothing is attempted; after the cool-down one trial goes out.
    sink.set_reply(Reply::Status(200));
    let third = job_id_of(&gw, &app).await;
    let trial = sink.wait_for(3).await[2].at;
    assert!(trial.duration_since(opened) >= std::time::Duration::from_millis(300));
    wait_job(&gw, &third, "succeeded").await;
    assert_eq!(circuit().await, "closed");
}

/// A batch paced by an endpoint's rate limit stops when the circuit opens
/// under it: after the failures that open it, the next attempt is the trial
/// after the cool-down, not the batch's next (100 ms later).
#[tokio::test]
async fn a_circuit_that_opens_during_a_paced_batch_stops_it() {
    let (gw, sink) = failing_with_circuits_of(1000).await;
    let held = json!({ "rate_limit": 10, "status": "paused" });
    let (app, endpoint) = one_endpoint(&gw, &sink, held).await;
    for _ in 0..5 {
        job_id_of(&gw, &app).await;
    }
    let path = format!("/v1/endpoints/{}", endpoint["id"].as_str().unwrap());
    let (status, _) = gw
        .api_send(Method::PATCH, &path, json!({ "status": "active" }))
        .await;
    assert_eq!(status, 200);
    let received = sink.wait_for(3).await;
    let gap = received[2].at.duration_since(received[1].at);
    assert!(gap >= std::time::Duration::from_millis(1000), "{gap:?}");
}

#[tokio::test]
async fn a_paused_endpoint_holds_deliveries_and_a_disabled_one_gets_none() {
    let gw = gateway("").await;
    let (held, off) = (
        Sink::start(Reply::Status(200)).await,
        Sink::start(Reply::Status(200)).await,
    );
    let app = application(&gw, "production").await;
    event_types(&gw, &app, &["order.created"]).await;
    let paused = endpoint(&gw, &app, &held, json!({ "status": "paused" })).await;
    endpoint(&gw, &app, &off, json!({ "status": "disabled" })).await;
    let job_id = job_id_of(&gw, &app).await;
    let (_, job) = gw.api_get(&format!("/v1/webhook-jobs/{job_id}")).await;
    assert_eq!(job["deliveries"].as_array().unwrap().len(), 1, "{job}");
    assert_eq!(job["status"], "created");
    gw.wait_event(|e| e.request_id == job_id && e.status == hookgate::model::EventStatus::Hold)
        .await;
    assert!(held.received().is_empty());

    let path = format!("/v1/endpoints/{}", paused["id"].as_str().unwrap());
    let (status, _) = gw
        .api_send(Method::PATCH, &path, json!({ "status": "active" }))
        .await;
    assert_eq!(status, 200);
    wait_job(&gw, &job_id, "succeeded").await;
    assert_eq!(held.wait_for(1).await.len(), 1);
    assert!(off.received().is_empty());
}

#[tokio::test]
async fn after_a_rotation_both_secrets_sign_during_the_grace_period() {
    let gw = gateway("").await;
    let sink = Sink::start(Reply::Status(200)).await;
    let (app, endpoint) = one_endpoint(&gw, &sink, json!({})).await;
    let old_secret = endpoint["secret"].as_str().unwrap().to_string();
    let path = format!(
        "/v1/endpoints/{}/rotate-secret",
        endpoint["id"].as_str().unwrap()
    );
    let (status, rotated) = gw.api_send(Method::POST, &path, json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, old_secret);

    let job_id = job_id_of(&gw, &app).await;
    wait_job(&gw, &job_id, "succeeded").await;
    let delivery = &sink.wait_for(1).await[0];
    assert_signed(delivery, &new_secret);
    assert_signed(delivery, &old_secret);
    let signatures = delivery.header("webhook-signature").unwrap();
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
}

#[tokio::test]
async fn an_endpoints_rate_limit_spaces_its_deliveries() {
    let gw = gateway("").await;
    let sink = Sink::start(Reply::Status(200)).await;
    let (app, _) = one_endpoint(&gw, &sink, json!({ "rate_limit": 10 })).await;
    for _ in 0..7 {
        job_id_of(&gw, &app).await;
    }
    // At 10/s, the six deliveries after the first leave at least five gaps of
    // 100 ms (give or take a few ms of jitter in their arrival).
    let span = rate_limited_span(&sink.wait_for(7).await);
    assert!(span >= std::time::Duration::from_millis(480), "{span:?}");
}

#[tokio::test]
async fn jobs_and_their_pending_deliveries_survive_a_restart() {
    let gw = gateway("delivery_window_ms = 3600000").await;
    let sink = Sink::start(Reply::Status(200)).await;
    let (app, endpoint) = one_endpoint(&gw, &sink, json!({ "status": "paused" })).await;
    let job_id = job_id_of(&gw, &app).await;
    let gw = gw
        .restart(&format!(
            "{}\n",
            outbound_section("delivery_window_ms = 3600000")
        ))
        .await;
    let path = format!("/v1/endpoints/{}", endpoint["id"].as_str().unwrap());
    let (status, _) = gw
        .api_send(Method::PATCH, &path, json!({ "status": "active" }))
        .await;
    assert_eq!(status, 200);
    wait_job(&gw, &job_id, "succeeded").await;
    assert_signed(
        &sink.wait_for(1).await[0],
        endpoint["secret"].as_str().unwrap(),
    );
}

/// What a crash between storing a job and fanning it out leaves behind.
fn job_stored_before_a_crash(app: &str, endpoint_id: &str) -> WebhookJob {
    let now = hookgate::ids::now_ms();
    WebhookJob {
        id: hookgate::ids::new_id("job"),
        application_id: app.to_string(),
        event_type: "order.created".into(),
        event_id: "crashed".into(),
        payload: (&json!({ "n": 1 })).into(),
        headers: Default::default(),
        metadata: Value::Null,
        endpoint_ids: vec![endpoint_id.to_string()],
        status: hookgate::model::JobStatus::Created,
        attempt_count: 0,
        max_retries: 6,
        created_at: now,
        updated_at: now,
        expires_at: now + 3_600_000,
        succeeded_at: None,
        discarded_at: None,
        cancelled: false,
        trace: None,
    }
}

#[tokio::test]
async fn a_job_stored_before_a_crash_is_fanned_out_on_the_next_start() {
    let gw = gateway("").await;
    let sink = Sink::start(Reply::Status(200)).await;
    let (app, endpoint) = one_endpoint(&gw, &sink, json!({})).await;
    let job = job_stored_before_a_crash(&app, endpoint["id"].as_str().unwrap());
    gw.gateway.store.insert_job(&job).unwrap();
    let gw = gw.restart(&outbound_section("")).await;
    wait_job(&gw, &job.id, "succeeded").await;
    assert_eq!(sink.wait_for(1).await.len(), 1);
}

#[tokio::test]
async fn a_delivery_fanned_out_to_an_endpoint_deleted_meanwhile_ends() {
    let gw = gateway("").await;
    let sink = Sink::start(Reply::Status(200)).await;
    let (app, endpoint) = one_endpoint(&gw, &sink, json!({})).await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    // The job chose the endpoint; the endpoint was deleted before the
    // job's deliveries were stored.
    let job = job_stored_before_a_crash(&app, endpoint_id);
    gw.gateway.store.insert_job(&job).unwrap();
    let endpoint_path = format!("/v1/endpoints/{endpoint_id}");
    assert_eq!(gw.api_delete(&endpoint_path).await, 200);
    let gw = gw.restart(&outbound_section("")).await;
    let job = wait_job(&gw, &job.id, "discarded").await;
    assert_eq!(job["deliveries"][0]["error_code"], "ENDPOINT_DELETED");
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn a_job_retried_while_an_attempt_is_in_flight_starts_its_count_afresh() {
    let limits = "[limits]\ndelivery_timeout_ms = 1000\n\n";
    let outbound = outbound_section("delivery_window_ms = 6400");
    let gw = TestGateway::start_with(INSECURE, &format!("{limits}{outbound}")).await;
    let sink =
        Sink::start_answering(vec![Reply::Status(500), Reply::Hang], Reply::Status(200)).await;
    let (app, _) = one_endpoint(&gw, &sink, json!({})).await;
    let job_id = job_id_of(&gw, &app).await;
    sink.wait_for(2).await; // the second attempt hangs until it times out
    let retry = format!("/v1/webhook-jobs/{job_id}/retry");
    assert_eq!(gw.api_send(Method::POST, &retry, json!({})).await.0, 200);
    wait_job(&gw, &job_id, "succeeded").await;
    let delivery_id = first_delivery_id(&gw, &job_id);
    let (_, delivery) = gw
        .api_get(&format!("/api/webhook-deliveries/{delivery_id}"))
        .await;
    assert_eq!(delivery["attemptCount"], 1, "{delivery}");
}

#[tokio::test]
async fn muting_a_retrying_delivery_ends_its_job() {
    let gw = gateway("delivery_window_ms = 3600000").await;
    let sink = Sink::start(Reply::Status(500)).await;
    let (job_id, _) = job_awaiting_retry(&gw, &sink).await;
    let delivery_id = first_delivery_id(&gw, &job_id);
    let mute = format!("/2023-07-01/events/{delivery_id}/mute");
    let (status, muted) = gw.api_send(Method::PUT, &mute, json!({})).await;
    assert_eq!((status, muted["status"].as_str()), (200, Some("FAILED")));
    wait_job(&gw, &job_id, "discarded").await;
}

#[tokio::test]
async fn deleting_an_endpoint_ends_its_deliveries_and_deleting_the_application_archives_jobs() {
    let gw = gateway("delivery_window_ms = 3600000").await;
    let sink = Sink::start(Reply::Status(500)).await;
    let (job_id, endpoint) = job_awaiting_retry(&gw, &sink).await;
    let app = endpoint["application_id"].as_str().unwrap();
    let endpoint_path = format!("/v1/endpoints/{}", endpoint["id"].as_str().unwrap());
    assert_eq!(gw.api_delete(&endpoint_path).await, 200);
    let job = wait_job(&gw, &job_id, "discarded").await;
    assert_eq!(job["deliveries"][0]["error_code"], "ENDPOINT_DELETED");
    assert_eq!(gw.api_get(&endpoint_path).await.0, 404);
    let delivery_id = job["deliveries"][0]["id"].as_str().unwrap();
    let retry = format!("/api/webhook-deliveries/{delivery_id}/retry");
    let (status, body) = gw.api_send(Method::POST, &retry, json!({})).await;
    assert_eq!(status, 409, "no endpoint to send it to: {body}");
    wait_job(&gw, &job_id, "discarded").await;

    assert_eq!(gw.api_delete(&format!("/v1/applications/{app}")).await, 200);
    wait_job(&gw, &job_id, "archived").await;
    let (status, _) = gw
        .api_send(
            Method::POST,
            &format!("/v1/webhook-jobs/{job_id}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(status, 409, "an archived job is not retried");
    assert_eq!(gw.api_get(&format!("/v1/applications/{app}")).await.0, 404);
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let gw = gateway("").await;
    let app = application(&gw, "production").await;
    let cases = [
        (
            "/v1/endpoints",
            json!({ "application_id": app, "url": "https://x.test", "secret": "nope!" }),
            "secret",
        ),
        (
            "/v1/endpoints",
            json!({ "application_id": app, "url": "https://x.test", "subscribed_events": [""] }),
            "subscribed_events",
        ),
        (
            "/v1/endpoints",
            json!({ "application_id": app, "url": "https://x.test", "rate_limit": 0 }),
            "rate_limit",
        ),
        (
            "/v1/endpoints",
            json!({ "application_id": "app_missing", "url": "https://x.test" }),
            "application_id",
        ),
        (
            "/v1/webhook-jobs",
            json!({ "application_id": app, "event_type": "a.b", "payload": {}, "headers": { "webhook-id": "x" } }),
            "headers",
        ),
        (
            "/v1/webhook-jobs",
            json!({ "application_id": app, "event_type": "a.b", "payload": {}, "max_retries": 99 }),
            "max_retries",
        ),
        ("/v1/applications", json!({ "name": " " }), "name"),
        (
            "/v1/applications",
            json!({ "name": "x", "colour": "red" }),
            "body",
        ),
    ];
    for (path, body, field) in cases {
        let (status, error) = gw.api_send(Method::POST, path, body).await;
        assert_eq!(status, 422, "{path}: {error}");
        assert_eq!(error["data"]["field"], field, "{error}");
        assert!(
            error["message"].as_str().unwrap().starts_with(field),
            "{error}"
        );
    }
    assert_eq!(gw.api_get("/v1/webhook-jobs/job_missing").await.0, 404);
    assert_eq!(
        gw.api_get("/v1/applications/app_missing/event-types")
            .await
            .0,
        404
    );
}

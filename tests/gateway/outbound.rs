//! Outbound webhooks through the real server: applications, event types,
//! endpoints (real sinks), webhook jobs and their signed deliveries.

use crate::common::{Received, Reply, Sink, TestGateway, PATIENCE};
use hookgate::signing::standard_webhooks::{self, WebhookSecret};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

/// `[server]` keys of every outbound test: sinks are plain http on 127.0.0.1.
pub const INSECURE: &str = "allow_insecure_endpoints = true\n";

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

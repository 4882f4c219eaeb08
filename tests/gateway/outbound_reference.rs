//! The outbound references' examples as contract tests: each sends what the
//! reference's example sends and checks that the answer has the reference's
//! shape (every field, with the same JSON type; hookgate may add fields).

use crate::common::{Reply, Sink, TestGateway};
use crate::outbound::{application, endpoint, gateway, send_job, wait_job};
use crate::reference_shape::{assert_shape, Leeway};
use reqwest::Method;
use serde_json::{json, Value};

const JOBS: &str = "/v1/webhook-jobs";
const DELIVERIES: &str = "/api/webhook-deliveries";

/// Fields whose value the reference shows filled in but which are null until
/// there is something to say (`completed_at` of a job still running...), and
/// the sender's own data (`payload`, `headers`).
const SHAPE: Leeway = Leeway {
    null_allowed: &["completed_at", "discarded_at", "nextRetryAt"],
    data: &["payload", "headers"],
};

/// The reference's examples with our ids in place of its own.
fn with_app(mut body: Value, app: &str) -> Value {
    body["application_id"] = json!(app);
    body
}

/// `outbound-webhook-jobs.txt`: the job object.
fn reference_job_object() -> Value {
    json!({
      "id": "job_5nM8pQ1rK3vL9xB",
      "application_id": "app_2Zy3X8qP9rK5mN1vB",
      "event_type": "user.created",
      "event_id": "evt_unique_123",
      "status": "succeeded",
      "attempt_count": 1,
      "max_retries": 6,
      "payload": { "user_id": "usr_xyz789" },
      "headers": { "X-Custom-Header": "value" },
      "created_at": "2026-01-20T15:30:00Z",
      "expires_at": "2026-01-22T15:30:00Z",
      "completed_at": "2026-01-20T15:30:05Z"
    })
}

/// `outbound-webhook-jobs.txt`: Create Webhook Job's request body.
fn reference_create_body() -> Value {
    json!({
      "application_id": "app_2Zy3X8qP9rK5mN1vB",
      "event_type": "user.created",
      "event_id": "evt_unique_123",
      "payload": {
        "user_id": "usr_xyz789",
        "email": "alice@example.com",
        "name": "Alice Johnson",
        "created_at": "2026-01-20T15:30:00Z"
      },
      "headers": {
        "X-User-ID": "usr_xyz789",
        "X-Environment": "production"
      }
    })
}

/// An application whose endpoints answer `user.created` with 200 and
/// `payment.failed` with 500; event types are not declared, as in the
/// reference, which never declares them before sending.
struct Sender {
    gw: TestGateway,
    app: String,
    good: Sink,
    _bad: Sink,
    secret: String,
}

impl Sender {
    async fn start() -> Sender {
        let gw = gateway("").await;
        let app = application(&gw, "Production App").await;
        let good = Sink::start(Reply::Status(200)).await;
        let bad = Sink::start(Reply::Status(500)).await;
        let subscribed = |event_type: &str| json!({ "subscribed_events": [event_type] });
        let created = endpoint(&gw, &app, &good, subscribed("user.created")).await;
        endpoint(&gw, &app, &bad, subscribed("payment.failed")).await;
        let secret = created["secret"].as_str().unwrap().to_string();
        Sender {
            gw,
            app,
            good,
            _bad: bad,
            secret,
        }
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let response = self.gw.api(Method::GET, path).query(query).send().await;
        let response = response.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{path} {query:?}: {body}");
        body
    }

    /// A `payment.failed` job whose only delivery failed and waits to retry.
    async fn failed_job(&self) -> String {
        let body = json!({ "event_type": "payment.failed", "payload": { "payment_id": "pay_1" } });
        let (status, job) = send_job(&self.gw, with_app(body, &self.app)).await;
        assert_eq!(status, 201, "{job}");
        let id = job["id"].as_str().unwrap().to_string();
        wait_job(&self.gw, &id, "awaiting_retry").await;
        id
    }
}

#[tokio::test]
async fn create_and_retrieve_answer_the_reference_job_object() {
    let sender = Sender::start().await;
    let gw = &sender.gw;
    let (status, created) = send_job(gw, with_app(reference_create_body(), &sender.app)).await;
    assert_eq!(status, 201, "{created}");
    let reference_response = json!({
      "id": "job_5nM8pQ1rK3vL9xB",
      "application_id": "app_2Zy3X8qP9rK5mN1vB",
      "event_type": "user.created",
      "status": "created",
      "created_at": "2026-01-20T15:30:00Z",
      "expires_at": "2026-01-22T15:30:00Z",
      "attempt_count": 0,
      "max_retries": 6
    });
    assert_shape(&created, &reference_response, SHAPE);
    assert_eq!(
        (
            &created["status"],
            &created["attempt_count"],
            &created["max_retries"]
        ),
        (&json!("created"), &json!(0), &json!(6))
    );
    assert!(created["completed_at"].is_null(), "{created}");

    let id = created["id"].as_str().unwrap();
    let done = wait_job(gw, id, "succeeded").await;
    assert_shape(&done, &reference_job_object(), SHAPE);
    assert_eq!(done["event_id"], "evt_unique_123");
    // The headers as given, and sent with the delivery.
    assert_eq!(done["headers"], reference_create_body()["headers"]);
    let delivered = &sender.good.wait_for(1).await[0];
    assert_eq!(delivered.header("x-environment"), Some("production"));
    assert_eq!(done["completed_at"], done["succeeded_at"], "{done}");
    let reference_retrieve = json!({
      "id": "job_5nM8pQ1rK3vL9xB",
      "application_id": "app_2Zy3X8qP9rK5mN1vB",
      "event_type": "user.created",
      "status": "succeeded",
      "attempt_count": 1,
      "payload": {},
      "deliveries": [{
          "endpoint_id": "ep_xyz789",
          "status_code": 200,
          "response_body": "{\"received\":true}",
          "latency_ms": 145,
          "attempted_at": "2026-01-20T15:30:05Z"
      }]
    });
    assert_shape(&done, &reference_retrieve, SHAPE);

    // Idempotency: the same event_id again answers the existing job.
    let (status, again) = send_job(gw, with_app(reference_create_body(), &sender.app)).await;
    assert_eq!((status, &again["id"]), (200, &created["id"]), "{again}");
}

#[tokio::test]
async fn the_reference_list_and_filter_examples_work_as_written() {
    let sender = Sender::start().await;
    let app = sender.app.as_str();
    let failed = sender.failed_job().await;
    let minimal = json!({ "event_type": "user.created", "payload": { "user_id": "usr_xyz789" } });
    let (status, ok) = send_job(&sender.gw, with_app(minimal, app)).await;
    assert_eq!(status, 201, "{ok}");

    let reference_list = json!({
      "data": [{
          "id": "job_5nM8pQ1rK3vL9xB",
          "event_type": "user.created",
          "status": "succeeded",
          "created_at": "2026-01-20T15:30:00Z"
      }],
      "pagination": { "total": 1543, "page": 1, "per_page": 25, "total_pages": 62 }
    });
    // "Filter by Status": status=failed, which the reference's enum lacks.
    let answer = sender
        .get(JOBS, &[("application_id", app), ("status", "failed")])
        .await;
    assert_shape(&answer, &reference_list, SHAPE);
    assert_eq!(answer["data"][0]["id"], failed.as_str(), "{answer}");
    assert_eq!(answer["pagination"]["total"], 1);
    assert_eq!(answer["pagination"]["per_page"], 25);

    // "Filter by Date Range", as each language's example writes the time.
    let writings = [
        ("JavaScript toISOString", "2000-01-01T00:00:00.000Z"),
        ("Python isoformat", "2000-01-01T00:00:00.123456"),
        ("Go RFC3339", "2000-01-01T00:00:00+00:00"),
        ("PHP ISO8601", "2000-01-01T00:00:00+0000"),
    ];
    for (who, since) in writings {
        let query = [("application_id", app), ("created_after", since)];
        let answer = sender.get(JOBS, &query).await;
        assert_eq!(answer["pagination"]["total"], 2, "{who}: {answer}");
    }

    // "Filter by Event Type", and "Combine Multiple Filters".
    let query = [("application_id", app), ("event_type", "user.created")];
    let answer = sender.get(JOBS, &query).await;
    assert_eq!(answer["data"][0]["id"], ok["id"], "{answer}");
    let query = [
        ("application_id", app),
        ("event_type", "payment.failed"),
        ("status", "failed"),
        ("created_after", "2000-01-01T00:00:00.000Z"),
        ("page", "1"),
        ("per_page", "50"),
    ];
    let answer = sender.get(JOBS, &query).await;
    assert_shape(&answer, &reference_list, SHAPE);
    assert_eq!(answer["data"][0]["id"], failed.as_str());
    assert_eq!(
        answer["pagination"],
        json!({ "total": 1, "page": 1, "per_page": 50, "total_pages": 1 })
    );
    // "Pagination with Filters": per_page=100 is the largest page.
    let query = [
        ("application_id", app),
        ("status", "failed"),
        ("per_page", "100"),
    ];
    assert_eq!(
        sender.get(JOBS, &query).await["pagination"]["total_pages"],
        1
    );
}

#[tokio::test]
async fn cancel_and_retry_answer_the_reference_shapes() {
    let sender = Sender::start().await;
    let failed = sender.failed_job().await;
    let gw = &sender.gw;
    let (status, cancelled) = gw
        .api_send(Method::POST, &format!("{JOBS}/{failed}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200, "{cancelled}");
    let reference_cancel = json!({
      "id": "job_5nM8pQ1rK3vL9xB", "status": "discarded", "discarded_at": "2026-01-20T15:30:00Z"
    });
    assert_shape(&cancelled, &reference_cancel, SHAPE);
    assert_eq!(cancelled["status"], "discarded");
    assert!(cancelled["discarded_at"].is_string(), "{cancelled}");

    let (status, retried) = gw
        .api_send(Method::POST, &format!("{JOBS}/{failed}/retry"), json!({}))
        .await;
    assert_eq!(status, 200, "{retried}");
    let reference_retry =
        json!({ "id": "job_5nM8pQ1rK3vL9xB", "status": "created", "attempt_count": 0 });
    assert_shape(&retried, &reference_retry, SHAPE);
    assert_eq!(
        (&retried["status"], &retried["attempt_count"]),
        (&json!("created"), &json!(0))
    );
}

#[tokio::test]
async fn the_envelope_carries_the_payload_as_is_and_never_the_metadata() {
    let sender = Sender::start().await;
    // payloads-and-metadata's complete example, as user.created so it is delivered.
    let payload = json!({
        "user_id": "usr_123",
        "subscription": { "previous_plan": "basic", "current_plan": "pro" },
        "billing": { "amount": 49.99, "currency": "USD", "payment_method": "pm_abc123" }
    });
    let body = json!({
        "event_type": "user.created",
        "payload": payload,
        "metadata": { "source": "billing_service", "trace_id": "trace_abc123def456", "attempt": 2 }
    });
    let (status, job) = send_job(&sender.gw, with_app(body, &sender.app)).await;
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["metadata"]["trace_id"], "trace_abc123def456");
    // "Use metadata fields to filter webhook jobs in the API".
    let app = sender.app.as_str();
    let cases = [
        ("metadata[source]", "billing_service", 1),
        ("metadata[source]", "mobile_app", 0),
        ("metadata[attempt]", "2", 1),
        ("metadata[attempt]", "3", 0),
        ("metadata[missing]", "x", 0),
    ];
    for (key, source, expected) in cases {
        let query = [("application_id", app), (key, source)];
        let answer = sender.get(JOBS, &query).await;
        assert_eq!(
            answer["pagination"]["total"], expected,
            "{source}: {answer}"
        );
    }

    let received = sender.good.wait_for(1).await;
    let delivered: Value = serde_json::from_slice(&received[0].body).unwrap();
    let reference_envelope = json!({
      "event_id": "evt_abc123def456",
      "event_type": "user.created",
      "application_id": "app_xyz789",
      "timestamp": "2026-01-20T10:30:00.000Z",
      "payload": {}
    });
    assert_shape(&delivered, &reference_envelope, SHAPE);
    let fields: Vec<&String> = delivered.as_object().unwrap().keys().collect();
    assert_eq!(fields.len(), 5, "only the envelope's fields: {delivered}");
    assert_eq!(delivered["payload"], payload, "delivered as-is");
    assert_eq!(delivered["application_id"], sender.app.as_str());
    let timestamp = delivered["timestamp"].as_str().unwrap();
    assert!(
        timestamp.len() == 24 && timestamp.ends_with('Z') && timestamp.as_bytes()[19] == b'.',
        "ISO 8601 UTC with milliseconds: {timestamp}"
    );
    // The endpoint secret is a Standard Webhooks one, and the headers too.
    assert!(sender.secret.starts_with("whsec_"), "{}", sender.secret);
    assert_eq!(received[0].header("webhook-id"), job["id"].as_str());
    crate::outbound::assert_signed(&received[0], &sender.secret);
}

/// `webhook-deliveries-api.txt`: the delivery object.
fn reference_delivery() -> Value {
    json!({
      "id": "string",
      "workspaceId": "string",
      "subscriptionId": "string",
      "sourceEventId": "string",
      "eventType": "string",
      "payload": {},
      "status": "pending | retrying | completed | failed",
      "attemptCount": 1,
      "maxAttempts": 7,
      "nextRetryAt": "string",
      "createdAt": "string",
      "updatedAt": "string"
    })
}

#[tokio::test]
async fn webhook_deliveries_answer_the_reference_rows_and_parameters() {
    let sender = Sender::start().await;
    let gw = &sender.gw;
    sender.failed_job().await;
    // More deliveries than the old default page of 20.
    for n in 0..21 {
        let body = json!({ "event_type": "user.created", "payload": { "n": n } });
        let (status, job) = send_job(gw, with_app(body, &sender.app)).await;
        assert_eq!(status, 201, "{job}");
    }
    sender.good.wait_for(21).await;

    let answer = sender.get(DELIVERIES, &[]).await;
    let rows = answer["data"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        22,
        "the default limit is 100: {}",
        answer["pageInfo"]
    );
    let reference_list = json!({
      "data": [reference_delivery()],
      "pageInfo": { "total": 1, "hasNextPage": false, "hasPreviousPage": false,
                    "startCursor": "string", "endCursor": "string" }
    });
    assert_shape(&answer, &reference_list, SHAPE);
    let row = rows.iter().find(|r| r["status"] == "retrying").unwrap();
    assert_eq!(row["maxAttempts"], 7, "max_retries 6 + the first attempt");
    assert!(row["nextRetryAt"].is_string() && row["nextRetryAt"] == row["nextAttemptAt"]);
    assert_eq!(row["payload"], json!({ "payment_id": "pay_1" }));

    // workspace_id: the one workspace lists everything, any other nothing.
    let workspace = row["workspaceId"].as_str().unwrap();
    let mine = sender.get(DELIVERIES, &[("workspace_id", workspace)]).await;
    assert_eq!(mine["pageInfo"]["total"], 22);
    let other = sender.get(DELIVERIES, &[("workspace_id", "ws_nope")]).await;
    assert_eq!(other["pageInfo"]["total"], 0, "{other}");

    // filter and orderBy on the reference's field names.
    let filter =
        json!({ "AND": [{ "maxAttempts": { "eq": 7 } }, { "workspaceId": { "eq": workspace } },
                                  { "nextRetryAt": { "isNull": false } }] })
        .to_string();
    let found = sender.get(DELIVERIES, &[("filter", filter.as_str())]).await;
    assert_eq!(found["pageInfo"]["total"], 1, "{found}");
    assert_eq!(found["data"][0]["id"], row["id"]);
    let order = json!([{ "nextRetryAt": "asc_nulls_last" }, { "updatedAt": "desc" }]).to_string();
    let ordered = sender.get(DELIVERIES, &[("orderBy", order.as_str())]).await;
    assert_eq!(
        ordered["data"][0]["id"], row["id"],
        "the one with a retry due first"
    );

    // GET, DELETE (cancel a retrying delivery) and retry answer the row.
    let id = row["id"].as_str().unwrap();
    let one = sender.get(&format!("{DELIVERIES}/{id}"), &[]).await;
    assert_shape(&one, &reference_delivery(), SHAPE);
    let (status, cancelled) = gw
        .api_send(Method::DELETE, &format!("{DELIVERIES}/{id}"), json!({}))
        .await;
    assert_eq!(
        (status, cancelled["status"].as_str()),
        (200, Some("failed")),
        "{cancelled}"
    );
    assert_shape(&cancelled, &reference_delivery(), SHAPE);
    let (status, reset) = gw
        .api_send(Method::POST, &format!("{DELIVERIES}/{id}/retry"), json!({}))
        .await;
    assert_eq!(status, 200, "{reset}");
    assert_shape(&reset, &reference_delivery(), SHAPE);
    assert_eq!(reset["attemptCount"], 0, "{reset}");
}

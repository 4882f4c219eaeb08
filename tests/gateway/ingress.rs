//! The public ingress: routing, method and size checks, answers, durability records.

use crate::common::{route, Reply, Sink, TestGateway};
use hookgate::model::{RejectionCause, RequestStatus};

fn shop(sink: &Sink, extra: &str) -> String {
    format!(
        "[[sources]]\nname = \"shop\"\n{extra}\n{}",
        route("shop", "orders", &sink.url("/hooks"), "")
    )
}

fn stored_request(gw: &TestGateway, id: &str) -> hookgate::model::Request {
    gw.gateway
        .store
        .request(id)
        .unwrap()
        .expect("request is stored")
}

#[tokio::test(flavor = "multi_thread")]
async fn accepted_request_is_stored_before_the_ack_and_answered_with_its_id() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    let response = gw
        .http
        .post(gw.url("/e/shop"))
        .body(r#"{"id":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("content-length").is_some(),
        "answers carry Content-Length"
    );
    assert_ne!(
        response
            .headers()
            .get("connection")
            .map(|v| v.to_str().unwrap()),
        Some("close")
    );
    let body: serde_json::Value = response.json().await.unwrap();
    let id = body["request_id"].as_str().unwrap();
    assert!(id.starts_with("req_"));
    // The ack came after the commit, so the request is readable at once.
    let request = stored_request(&gw, id);
    assert_eq!(request.status, RequestStatus::Accepted);
    assert_eq!(
        gw.gateway.store.request_payload(id).unwrap().unwrap().body,
        br#"{"id":1}"#
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_source_is_404_and_recorded_as_no_webhook() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    let (status, body) = gw.post("/e/nope", "{}").await;
    assert_eq!(status, 404);
    assert_eq!(body["status"], 404);
    assert!(body["message"].as_str().unwrap().contains("nope"));
    let rejected = gw.stored_requests().await;
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].rejection_cause, Some(RejectionCause::NoWebhook));
    assert_eq!(rejected[0].source_name, "nope");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_path_outside_sources_is_404_json() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    let (status, body) = gw.post("/favicon.ico", "").await;
    assert_eq!(status, 404);
    assert!(body["message"].as_str().unwrap().contains("/e/{source}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn disallowed_method_is_405_and_recorded() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink, "allowed_http_methods = [\"POST\"]")).await;
    let response = gw
        .http
        .put(gw.url("/e/shop"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], 405);
    let request_id = body["request_id"].as_str().unwrap();
    let request = gw.stored_requests().await.remove(0);
    assert_eq!(request.id, request_id);
    assert_eq!(
        request.rejection_cause,
        Some(RejectionCause::UnsupportedHttpMethod)
    );
    assert_eq!(request.status, RequestStatus::Rejected);
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_body_is_413_whether_declared_or_streamed() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&format!(
        "[limits]\nmax_body_bytes = 1024\n\n{}",
        shop(&sink, "")
    ))
    .await;
    let (status, body) = gw.post("/e/shop", &"x".repeat(1025)).await;
    assert_eq!(status, 413);
    assert!(body["message"].as_str().unwrap().contains("1024"));
    // Chunked: no Content-Length, so the limit is found while reading.
    let chunks = futures_util::stream::iter(vec![
        Ok::<_, std::io::Error>(vec![b'x'; 800]),
        Ok(vec![b'x'; 800]),
    ]);
    let response = gw
        .http
        .post(gw.url("/e/shop"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let causes: Vec<_> = gw
        .stored_requests()
        .await
        .into_iter()
        .map(|r| r.rejection_cause)
        .collect();
    assert_eq!(causes, vec![Some(RejectionCause::PayloadTooLarge); 2]);
    // A body exactly at the limit is fine.
    assert_eq!(gw.post("/e/shop", &"x".repeat(1024)).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_cut_short_is_400_and_recorded_as_unreadable() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    let url = reqwest::Url::parse(&gw.url("/")).unwrap();
    let address = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
    // 500 of the 1000 bytes announced, then the client stops sending.
    let head = "POST /e/shop HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
    client.write_all(head.as_bytes()).await.unwrap();
    client.write_all(&[b' '; 500]).await.unwrap();
    client.shutdown().await.unwrap();
    let mut answer = String::new();
    client.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("could not read the body"), "{answer}");
    let stored = gw.stored_requests().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].rejection_cause,
        Some(RejectionCause::BodyUnreadable)
    );
    assert!(sink.received().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_response_replaces_the_default_answer() {
    let sink = Sink::start(Reply::Status(200)).await;
    let custom = "custom_response = { content_type = \"text\", body = \"thanks\" }";
    let gw = TestGateway::start(&shop(&sink, custom)).await;
    let response = gw
        .http
        .post(gw.url("/e/shop"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert!(response.headers()["x-hookgate-request-id"]
        .to_str()
        .unwrap()
        .starts_with("req_"));
    assert_eq!(response.text().await.unwrap(), "thanks");
}

#[tokio::test(flavor = "multi_thread")]
async fn sources_are_reachable_by_id_too() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink, "")).await;
    let id = hookgate::ids::named_id("src", "shop");
    assert_eq!(gw.post(&format!("/e/{id}"), "{}").await.0, 200);
    sink.wait_for(1).await;
}

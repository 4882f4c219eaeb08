//! The ingress against hostile senders: path traversal in its encodings,
//! rejections that would fill the disk, HTTP edge cases (pipelining, broken
//! Content-Length, slow heads and bodies). Raw TCP where a client library
//! would tidy the request up.

use crate::common::{route, Reply, Sink, TestGateway, PATIENCE};
use hookgate::model::{RejectionCause, RequestStatus};
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Source `plain` (no verification) and `signed` (GitHub's), both to `sink`
/// under `/hooks`; `limits` goes into `[limits]`.
fn config(sink: &Sink, limits: &str) -> String {
    format!(
        "[limits]\n{limits}\n\n[[sources]]\nname = \"plain\"\n\n[[sources]]\nname = \"signed\"\nverification = {{ type = \"github\", webhook_secret_key = \"github-secret\" }}\n{}{}",
        route("plain", "plain-hooks", &sink.url("/hooks"), ""),
        route("signed", "signed-hooks", &sink.url("/hooks"), ""),
    )
}

/// Writes `bytes` on a new connection and reads until the gateway closes it
/// (a connection left open fails the test after `PATIENCE`).
async fn exchange(gw: &TestGateway, bytes: &[u8]) -> String {
    let mut client = TcpStream::connect(gw.gateway.ingress_addr).await.unwrap();
    client.write_all(bytes).await.unwrap();
    read_until_closed(&mut client).await
}

async fn read_until_closed(client: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(PATIENCE, client.read_to_end(&mut answer)).await;
    let read = read.expect("the gateway closes the connection");
    // A reset after the answer is as good as a close.
    if let Err(error) = read {
        assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset, "{error}");
    }
    String::from_utf8_lossy(&answer).into_owned()
}

fn post(target: &str, body: &str, extra_headers: &str) -> String {
    format!(
        "POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n{extra_headers}\r\n{body}",
        body.len()
    )
}

/// `/e/plain` followed by ways out of the destination's path.
const TRAVERSALS: &[&str] = &[
    "/../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/%2E%2e/x",
    "/.%2e/x",
    "/%252e%252e/%252e%252e/x",
    "/..%5c..%5cx",
    "/..;/x",
    "/a//x",
    "/..",
    "/.",
    "/..?x=1",
    "/%2e%2e%3fx=1",
];

#[tokio::test(flavor = "multi_thread")]
async fn traversal_in_any_encoding_is_400_and_nothing_leaves_the_destination_path() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&config(&sink, "")).await;
    for traversal in TRAVERSALS {
        let target = format!("/e/plain{traversal}");
        let answer = exchange(&gw, post(&target, "{}", "Connection: close\r\n").as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{target}: {answer}");
        assert!(answer.contains("is refused"), "{target}: {answer}");
    }
    let stored = gw.stored_requests().await;
    assert_eq!(stored.len(), TRAVERSALS.len());
    assert!(stored
        .iter()
        .all(|r| r.rejection_cause == Some(RejectionCause::UnsafePath)));

    // A nested path is still forwarded under the destination's.
    let (status, _) = gw.post("/e/plain/a/b.json/c?x=1", "{}").await;
    assert_eq!(status, 200);
    let received = sink.wait_for(1).await;
    assert_eq!(received[0].path, "/hooks/a/b.json/c");
    assert_eq!(received[0].query.as_deref(), Some("x=1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transformed_path_leaving_the_destination_is_transformation_failed() {
    let sink = Sink::start(Reply::Status(200)).await;
    let escaping = r#"rules = [ { type = "transform", transformation = { name = "escape", code = "addHandler('transform', (r) => { r.path = '/../../admin'; return r; });" } } ]"#;
    let config = format!(
        "[[sources]]\nname = \"app\"\n{}{}",
        route("app", "escaping", &sink.url("/hooks"), escaping),
        route("app", "healthy", &sink.url("/healthy"), "")
    );
    let gw = TestGateway::start(&config).await;
    let (status, body) = gw.post("/e/app/x", "{}").await;
    assert_eq!(status, 200);
    gw.wait_routed(body["request_id"].as_str().unwrap()).await;
    let (_, ignored) = gw.api_get("/ignored_events").await;
    let ignored = &ignored["models"];
    assert_eq!(ignored.as_array().unwrap().len(), 1, "{ignored}");
    assert_eq!(ignored[0]["cause"], "TRANSFORMATION_FAILED");
    let detail = ignored[0].to_string();
    assert!(detail.contains("request.path"), "{detail}");
    assert!(detail.contains("is refused"), "{detail}");
    let received = sink.wait_for(1).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/healthy/x");
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                dir_bytes(&entry.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn rejections_keep_a_bounded_record_and_not_their_bodies() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&config(&sink, "")).await;
    let data_dir = gw.dir.path().join("data");
    gw.gateway.store.flush().unwrap();
    let before = dir_bytes(&data_dir);
    let body = "x".repeat(1 << 20);
    for _ in 0..50 {
        let response = gw
            .http
            .post(gw.url("/e/signed"))
            .header("x-hub-signature-256", "sha256=00")
            .header("authorization", "Bearer hunter2")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    gw.gateway.store.flush().unwrap();
    let grown = dir_bytes(&data_dir).saturating_sub(before);
    assert!(
        grown < 2 << 20,
        "50 MiB of rejected bodies grew the data dir by {grown} bytes"
    );

    let (status, page) = gw
        .api_get("/requests?status=rejected&rejection_cause=VERIFICATION_FAILED&include=data")
        .await;
    assert_eq!(status, 200, "{page}");
    let models = page["models"].as_array().unwrap();
    assert_eq!(models.len(), 50);
    let newest = &models[0];
    assert_eq!(newest["body_bytes"], 1 << 20);
    assert_eq!(newest["body_truncated"], true);
    assert_eq!(newest["data"]["body"].as_str().unwrap().len(), 1024);
    let headers = &newest["data"]["headers"];
    assert_eq!(headers["x-hub-signature-256"], "[redacted]");
    assert_eq!(headers["authorization"], "[redacted]");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_oldest_rejections_of_a_source_make_room_within_its_budget() {
    let sink = Sink::start(Reply::Status(200)).await;
    let limits = "rejection_bytes_per_source = 8192\nrejection_body_bytes = 1024";
    let gw = TestGateway::start(&config(&sink, limits)).await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        let (status, body) = gw.post("/e/signed", &"x".repeat(2048)).await;
        assert_eq!(status, 401);
        ids.push(body["request_id"].as_str().unwrap().to_string());
    }
    let (_, page) = gw.api_get("/requests?status=rejected").await;
    let listed: Vec<&str> = page["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(listed.len() < 8, "{} records in 8 KiB", listed.len());
    assert_eq!(listed[0], ids[19], "the newest is kept");
    assert!(!listed.contains(&ids[0].as_str()), "the oldest made room");
    let dropped = gw.gateway.store.rejections_dropped();
    assert_eq!(dropped, (20 - listed.len()) as u64);
    let source_id = hookgate::ids::named_id("src", "signed");
    let (used, _) = gw.gateway.store.rejection_bytes(Some(&source_id));
    assert!(used <= 8192, "{used}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pipelined_requests_are_answered_in_order() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&config(&sink, "")).await;
    let pipelined = [
        post("/e/plain/one", r#"{"n":1}"#, ""),
        // Rejected, but with no body left unread: the connection goes on.
        post("/e/nope/two", "", ""),
        post("/e/plain/three", r#"{"n":3}"#, "Connection: close\r\n"),
    ]
    .concat();
    let answer = exchange(&gw, pipelined.as_bytes()).await;
    assert_eq!(
        status_lines(&answer),
        [
            "HTTP/1.1 200 OK",
            "HTTP/1.1 404 Not Found",
            "HTTP/1.1 200 OK"
        ],
        "{answer}"
    );
    assert_eq!(stored_paths(&gw).await, ["/one", "/two", "/three"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pipelined_chunked_request_is_answered_then_the_connection_closes() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&config(&sink, "")).await;
    let chunked = "POST /e/plain/two HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
    let pipelined = [
        post("/e/plain/one", "{}", ""),
        chunked.to_string(),
        post("/e/plain/three", "{}", ""),
    ]
    .concat();
    let answer = exchange(&gw, pipelined.as_bytes()).await;
    assert_eq!(
        status_lines(&answer),
        ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK"],
        "{answer}"
    );
    assert!(
        answer.to_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert_eq!(stored_paths(&gw).await, ["/one", "/two"]);
}

/// Each answer's status line (each one after the first follows a body, with
/// no newline between).
fn status_lines(answer: &str) -> Vec<&str> {
    answer
        .match_indices("HTTP/1.1 ")
        .map(|(at, _)| answer[at..].lines().next().unwrap())
        .collect()
}

async fn stored_paths(gw: &TestGateway) -> Vec<String> {
    let stored = gw.stored_requests().await;
    stored.into_iter().map(|request| request.path).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_content_length_is_400_and_closes_the_connection() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&config(&sink, "")).await;
    for length in ["-5", "abc", "18446744073709551617", "+5", "5, 6"] {
        let head =
            format!("POST /e/plain HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n{{}}");
        // No `Connection: close`: the gateway closes of its own accord.
        let answer = exchange(&gw, head.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{length}: {answer}");
        assert!(answer.contains("Content-Length"), "{length}: {answer}");
    }
    assert!(gw.stored_requests().await.is_empty());
    assert!(sink.received().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_head_sent_too_slowly_is_cut_off() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&config(&sink, "header_read_timeout_ms = 300")).await;
    let answer = exchange(&gw, b"POST /e/plain HTTP/1.1\r\nHost: x\r\n").await;
    assert_eq!(answer, "", "closed without an answer");
    assert!(gw.stored_requests().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_sent_too_slowly_is_400_and_cut_off() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&config(&sink, "body_read_timeout_ms = 300")).await;
    let head = "POST /e/plain HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789";
    let answer = exchange(&gw, head.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("body_read_timeout_ms"), "{answer}");
    let stored = gw.stored_requests().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].status, RequestStatus::Rejected);
    assert_eq!(
        stored[0].rejection_cause,
        Some(RejectionCause::BodyUnreadable)
    );
}

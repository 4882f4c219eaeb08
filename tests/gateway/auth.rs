//! Source verification through the real ingress, and destination auth as a real
//! sink sees it. Signatures are computed here with `hmac` directly, independently
//! of the gateway's own signing code.

use crate::common::{route, Reply, Sink, TestGateway, SIGNING_SECRET};
use base64::{engine::general_purpose::STANDARD as BASE64, Engine};
use hmac::{Hmac, Mac};
use hookgate::model::{RejectionCause, RequestStatus};
use sha2::Sha256;
use std::path::Path;

const STRIPE_SECRET: &str = "whsec_integration_test";

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn stripe_signature(secret: &str, timestamp: u64, body: &str) -> String {
    let signed = format!("{timestamp}.{body}");
    format!(
        "t={timestamp},v1={}",
        hex::encode(hmac_sha256(secret.as_bytes(), signed.as_bytes()))
    )
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn stripe_gateway(sink: &Sink) -> TestGateway {
    let config = format!(
        "[[sources]]\nname = \"stripe\"\nverification = {{ type = \"stripe\", webhook_secret_key = \"{STRIPE_SECRET}\" }}\n{}",
        route("stripe", "billing", &sink.url("/"), "")
    );
    TestGateway::start(&config).await
}

async fn post_signed(
    gw: &TestGateway,
    path: &str,
    body: &str,
    header: (&str, String),
) -> (u16, serde_json::Value) {
    let response = gw
        .http
        .post(gw.url(path))
        .header(header.0, header.1)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn stripe_requests_are_verified_and_forgeries_rejected_and_never_delivered() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = stripe_gateway(&sink).await;
    let body = r#"{"type":"invoice.paid"}"#;

    let forged = stripe_signature("whsec_wrong", unix_now(), body);
    let (status, error) = post_signed(&gw, "/e/stripe", body, ("stripe-signature", forged)).await;
    assert_eq!(status, 401);
    assert_eq!(error["status"], 401);
    assert!(error["message"]
        .as_str()
        .unwrap()
        .starts_with("verification failed"));

    let (status, _) = gw.post("/e/stripe", body).await;
    assert_eq!(status, 401, "a missing signature header is rejected");

    let valid = stripe_signature(STRIPE_SECRET, unix_now(), body);
    let (status, accepted) = post_signed(&gw, "/e/stripe", body, ("stripe-signature", valid)).await;
    assert_eq!(status, 200);
    let accepted_id = accepted["request_id"].as_str().unwrap();

    // Requests are routed in order, so once the valid one has arrived the
    // rejected ones would have too: exactly one delivery proves they never will.
    let delivered = sink.wait_for(1).await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(
        delivered[0].header("x-hookgate-request-id"),
        Some(accepted_id)
    );
    let requests = gw.stored_requests().await;
    let rejected: Vec<_> = requests
        .iter()
        .filter(|r| r.status == RequestStatus::Rejected)
        .collect();
    assert_eq!(rejected.len(), 2);
    assert!(rejected.iter().all(
        |r| r.rejection_cause == Some(RejectionCause::VerificationFailed)
            && r.verified == Some(false)
    ));
    assert_eq!(
        gw.gateway
            .store
            .request(accepted_id)
            .unwrap()
            .unwrap()
            .verified,
        Some(true)
    );
    assert!(gw
        .gateway
        .store
        .events()
        .map(Result::unwrap)
        .all(|e| e.request_id == accepted_id));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_stripe_request_outside_the_tolerance_is_rejected() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = stripe_gateway(&sink).await;
    let body = r#"{"type":"invoice.paid"}"#;
    let old = stripe_signature(STRIPE_SECRET, unix_now() - 301, body);
    let (status, error) = post_signed(&gw, "/e/stripe", body, ("stripe-signature", old)).await;
    assert_eq!(status, 401);
    assert!(
        error["message"].as_str().unwrap().contains("timestamp"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_github_delivery_fixture_passes_and_its_tampered_twin_does_not() {
    let sink = Sink::start(Reply::Status(200)).await;
    let config = format!(
        "[[sources]]\nname = \"github\"\nverification = {{ type = \"github\", webhook_secret_key = \"TEST-hookgate-github-secret\" }}\n{}",
        route("github", "ci", &sink.url("/"), "")
    );
    let gw = TestGateway::start(&config).await;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/github");
    for (file, expected) in [("tampered_body.json", 401), ("request.json", 200)] {
        let fixture: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixtures.join(file)).unwrap()).unwrap();
        let mut request = gw
            .http
            .post(gw.url("/e/github"))
            .body(fixture["body"].as_str().unwrap().to_string());
        for (name, value) in fixture["headers"].as_object().unwrap() {
            request = request.header(name, value.as_str().unwrap());
        }
        assert_eq!(request.send().await.unwrap().status(), expected, "{file}");
    }
    let delivered = sink.wait_for(1).await;
    assert_eq!(delivered[0].header("x-github-event"), Some("push"));
}

/// A destination per auth method, all fed by one source.
fn auth_config(sink: &Sink) -> String {
    let methods = [
        ("signed", ""),
        ("custom", "auth_method = { type = \"custom_signature\", key = \"x-sig\", signing_secret = \"custom-secret\" }"),
        ("basic", "auth_method = { type = \"basic_auth\", username = \"hook\", password = \"gate\" }"),
        ("bearer", "auth_method = { type = \"bearer_token\", token = \"tok-123\" }"),
        ("keyheader", "auth_method = { type = \"api_key\", key = \"x-api-key\", api_key = \"k-1\", to = \"header\" }"),
        ("keyquery", "auth_method = { type = \"api_key\", key = \"api_key\", api_key = \"k-2\", to = \"query\" }"),
    ];
    let mut config = String::from("[[sources]]\nname = \"app\"\n");
    for (name, auth) in methods {
        config.push_str(&format!(
            "[[destinations]]\nname = \"{name}\"\nurl = \"{}\"\n{auth}\n[[connections]]\nname = \"to-{name}\"\nsource = \"app\"\ndestination = \"{name}\"\n",
            sink.url(&format!("/{name}"))
        ));
    }
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn every_destination_auth_method_arrives_as_documented() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&auth_config(&sink)).await;
    let body = r#"{"hello":"world"}"#;
    assert_eq!(gw.post("/e/app", body).await.0, 200);
    let received = sink.wait_for(6).await;
    let at = |path: &str| {
        received
            .iter()
            .find(|r| r.path == path)
            .unwrap_or_else(|| panic!("nothing at {path}"))
    };

    let signed = at("/signed");
    let timestamp = signed.header("x-hookgate-timestamp").unwrap();
    let expected = BASE64.encode(hmac_sha256(
        SIGNING_SECRET.as_bytes(),
        format!("{timestamp}.{body}").as_bytes(),
    ));
    assert_eq!(
        signed.header("x-hookgate-signature"),
        Some(expected.as_str())
    );

    let custom = at("/custom");
    assert_eq!(
        custom.header("x-sig"),
        Some(hex::encode(hmac_sha256(b"custom-secret", body.as_bytes())).as_str())
    );
    assert_eq!(
        at("/basic").header("authorization"),
        Some(format!("Basic {}", BASE64.encode("hook:gate")).as_str())
    );
    assert_eq!(
        at("/bearer").header("authorization"),
        Some("Bearer tok-123")
    );
    assert_eq!(at("/keyheader").header("x-api-key"), Some("k-1"));
    assert_eq!(at("/keyquery").query.as_deref(), Some("api_key=k-2"));
    assert_eq!(
        at("/keyquery").header("x-hookgate-signature"),
        None,
        "only the chosen method applies"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn verification_secrets_come_from_the_environment() {
    let sink = Sink::start(Reply::Status(200)).await;
    std::env::set_var("HOOKGATE_TEST_GITLAB_TOKEN", "from-env");
    let config = format!(
        "[[sources]]\nname = \"gitlab\"\nverification = {{ type = \"gitlab\", webhook_secret_key = \"env:HOOKGATE_TEST_GITLAB_TOKEN\" }}\n{}",
        route("gitlab", "ci", &sink.url("/"), "")
    );
    let gw = TestGateway::start(&config).await;
    assert_eq!(
        post_signed(&gw, "/e/gitlab", "{}", ("x-gitlab-token", "wrong".into()))
            .await
            .0,
        401
    );
    assert_eq!(
        post_signed(
            &gw,
            "/e/gitlab",
            "{}",
            ("x-gitlab-token", "from-env".into())
        )
        .await
        .0,
        200
    );
}

//! What a receiver written for Hookdeck sees (issue #17 items 6 and 7): the
//! `x-hookdeck-*` headers on deliveries, signed with a workspace secret the
//! gateway generates, keeps in `data_dir`, shows and rotates through the API;
//! and how the ingress answers archived and deleted sources (item 5).
//!
//! The receiver's check (`Received::hookdeck_signature_made_by`, in
//! `common.rs`) is written from Hookdeck's documentation, not from
//! hookgate's code.

use crate::common::{
    config_text_unsigned, route, write_config_text, Received, Reply, Sink, TestGateway,
    SIGNING_SECRET,
};
use hookgate::model::EventStatus;
use reqwest::Method;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt as _;

async fn start_unsigned_in(dir: tempfile::TempDir, server_extra: &str, rest: &str) -> TestGateway {
    TestGateway::start_text(dir, &config_text_unsigned(server_extra, rest)).await
}

fn shopify(sink: &Sink, connection_extra: &str) -> String {
    format!(
        "[[sources]]\nname = \"shopify\"\n{}",
        route("shopify", "orders", &sink.url("/hooks"), connection_extra)
    )
}

async fn signing_secret(gw: &TestGateway) -> Value {
    let (status, secret) = gw.api_get("/2023-07-01/workspace/signing-secret").await;
    assert_eq!(status, 200, "{secret}");
    secret
}

fn secret_text(view: &Value) -> String {
    view["secret"].as_str().unwrap().to_string()
}

/// POSTs `body` with `headers` to an ingress path.
async fn post_with(
    gw: &TestGateway,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> reqwest::Response {
    let request = headers
        .iter()
        .fold(gw.http.post(gw.url(path)), |request, (name, value)| {
            request.header(*name, *value)
        });
    request.body(body.to_string()).send().await.unwrap()
}

/// POSTs `body` to the shopify source and waits for delivery number `n`.
async fn delivered(gw: &TestGateway, sink: &Sink, body: &str, n: usize) -> Received {
    assert_eq!(gw.post("/e/shopify", body).await.0, 200);
    sink.wait_for(n).await.pop().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_carries_what_a_receiver_written_for_hookdeck_checks() {
    let sink = Sink::start_answering(vec![Reply::Status(500)], Reply::Status(200)).await;
    let retry = r#"rules = [{ type = "retry", strategy = "linear", count = 1, interval = 10 }]"#;
    let dir = tempfile::tempdir().unwrap();
    let public = "api_public_url = \"https://hookgate-admin.example.com/\"";
    let gw = start_unsigned_in(dir, public, &shopify(&sink, retry)).await;
    let secret = secret_text(&signing_secret(&gw).await);

    let body = r#"{"id":1,"topic":"orders/create"}"#;
    let forged = [
        ("x-hookdeck-signature", "forged"),
        ("x-hookdeck-eventid", "evt_forged"),
        ("idempotency-key", "from-the-sender"),
        ("x-hookdeck-original-ip", "203.0.113.9"),
    ];
    let response = post_with(&gw, "/e/shopify", &forged, body).await;
    assert_eq!(response.status(), 200);
    let event = gw.wait_event(|e| e.status == EventStatus::Successful).await;
    let [first, second] = <[Received; 2]>::try_from(sink.wait_for(2).await).unwrap();

    for (attempt, received) in [(1, &first), (2, &second)] {
        assert_eq!(received.body, body.as_bytes());
        assert_eq!(
            received.hookdeck_signature_made_by(&secret),
            Some("x-hookdeck-signature")
        );
        assert_eq!(received.header("x-hookdeck-signature-2"), None);
        assert_eq!(
            received.header("x-hookdeck-eventid"),
            Some(event.id.as_str())
        );
        assert_eq!(received.header("idempotency-key"), Some(event.id.as_str()));
        let count = attempt.to_string();
        assert_eq!(
            received.header("x-hookdeck-attempt-count"),
            Some(count.as_str())
        );
        assert_eq!(received.header("x-hookdeck-source-name"), Some("shopify"));
        assert_eq!(received.header("x-hookdeck-original-ip"), Some("127.0.0.1"));
        let event_url = format!("https://hookgate-admin.example.com/events/{}", event.id);
        assert_eq!(
            received.header("x-hookdeck-event-url"),
            Some(event_url.as_str())
        );
        // hookgate's own stay.
        assert_eq!(
            received.header("x-hookgate-event-id"),
            Some(event.id.as_str())
        );
        assert_eq!(received.header("x-hookgate-attempt"), Some(count.as_str()));
        assert!(received.header("x-hookgate-signature").is_some());
        for header in [
            "x-hookdeck-signature",
            "x-hookdeck-eventid",
            "idempotency-key",
        ] {
            assert_eq!(
                received.headers.get_all(header).iter().count(),
                1,
                "{header}"
            );
        }
    }
    assert_eq!(first.hookdeck_signature_made_by("another-secret"), None);
    // The request itself shows where it came from, as Hookdeck's do.
    let (_, request) = gw.api_get(&format!("/requests/{}", event.request_id)).await;
    assert_eq!(
        request["data"]["headers"]["x-hookdeck-original-ip"],
        "127.0.0.1"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_generated_secret_is_kept_owner_only_across_restarts_and_rotated_with_an_overlap() {
    let sink = Sink::start(Reply::Status(200)).await;
    let config = shopify(&sink, "");
    let gw = start_unsigned_in(tempfile::tempdir().unwrap(), "", &config).await;
    let generated = signing_secret(&gw).await;
    assert_eq!(generated["set_in"], crate::backend::SIGNING_SECRET_KEPT_IN);
    assert!(generated["previous_secret"].is_null());
    assert!(generated["updated_at"].is_string());
    assert!(generated["team_id"].as_str().unwrap().starts_with("tm_"));
    let first = secret_text(&generated);
    assert!(first.len() >= 32, "{first}");
    let file = gw.dir.path().join("data/signing-secret.json");
    match crate::backend::SIGNING_SECRET_KEPT_IN {
        "data_dir" => {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        _ => assert!(!file.exists(), "the database keeps it, not data_dir"),
    }

    let dir = gw.stopped().await;
    let gw = start_unsigned_in(dir, "", &config).await;
    assert_eq!(
        secret_text(&signing_secret(&gw).await),
        first,
        "kept across a restart"
    );

    // A rotation signs with the new secret from the next attempt; the old one
    // signs beside it, in x-hookdeck-signature-2, for the overlap window.
    let (status, rotated) = gw
        .api_send(Method::POST, "/workspace/signing-secret/rotate", json!({}))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let second = secret_text(&rotated);
    assert_ne!(second, first);
    assert_eq!(rotated["previous_secret"], first.as_str());
    assert!(rotated["previous_secret_expires_at"].is_string());
    let during = delivered(&gw, &sink, "{\"n\":1}", 1).await;
    assert_eq!(
        during.hookdeck_signature_made_by(&second),
        Some("x-hookdeck-signature")
    );
    assert_eq!(
        during.hookdeck_signature_made_by(&first),
        Some("x-hookdeck-signature-2")
    );

    // Set by hand, with no overlap: the old secrets stop at once.
    let chosen = "a-secret-chosen-by-the-operator";
    let body = json!({ "secret": chosen, "previous_secret_valid_ms": 0 });
    let (status, set) = gw
        .api_send(Method::PUT, "/2024-03-01/workspace/signing-secret", body)
        .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["secret"], chosen);
    assert!(set["previous_secret"].is_null());
    let after = delivered(&gw, &sink, "{\"n\":2}", 2).await;
    assert_eq!(
        after.hookdeck_signature_made_by(chosen),
        Some("x-hookdeck-signature")
    );
    assert_eq!(after.header("x-hookdeck-signature-2"), None);
    assert_eq!(after.hookdeck_signature_made_by(&second), None);

    let gw = start_unsigned_in(gw.stopped().await, "", &config).await;
    assert_eq!(secret_text(&signing_secret(&gw).await), chosen);
    let restarted = delivered(&gw, &sink, "{\"n\":3}", 3).await;
    assert_eq!(
        restarted.hookdeck_signature_made_by(chosen),
        Some("x-hookdeck-signature")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_set_in_gateway_toml_wins_and_is_changed_there_only() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shopify(&sink, "")).await;
    let shown = signing_secret(&gw).await;
    assert_eq!(shown["set_in"], "gateway.toml");
    assert_ne!(
        shown["secret"], SIGNING_SECRET,
        "the operator's secret is masked"
    );
    let (status, error) = gw
        .api_send(Method::POST, "/workspace/signing-secret/rotate", json!({}))
        .await;
    assert_eq!(status, 409, "{error}");
    let body = json!({ "secret": "some-other-secret-value" });
    let (status, _) = gw
        .api_send(Method::PUT, "/workspace/signing-secret", body)
        .await;
    assert_eq!(status, 409);

    let received = delivered(&gw, &sink, "{}", 1).await;
    assert_eq!(
        received.hookdeck_signature_made_by(SIGNING_SECRET),
        Some("x-hookdeck-signature")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_or_window_that_cannot_be_used_is_refused_naming_the_field() {
    let gw = start_unsigned_in(tempfile::tempdir().unwrap(), "", "").await;
    let before = secret_text(&signing_secret(&gw).await);
    for (body, field) in [
        (json!({ "secret": "short" }), "secret"),
        (
            json!({ "secret": "has spaces in the middle of it" }),
            "secret",
        ),
        (
            json!({ "secret": "long-enough-secret", "previous_secret_valid_ms": 2_592_000_001u64 }),
            "previous_secret_valid_ms",
        ),
        (
            json!({ "secret": "long-enough-secret", "grace": 1 }),
            "body",
        ),
        (json!({}), "body"),
    ] {
        let (status, error) = gw
            .api_send(Method::PUT, "/workspace/signing-secret", body.clone())
            .await;
        assert_eq!(status, 422, "{body}: {error}");
        assert_eq!(error["data"]["field"], field, "{body}: {error}");
    }
    let (status, error) = gw
        .api_send(
            Method::POST,
            "/workspace/signing-secret/rotate",
            json!({ "grace": 1 }),
        )
        .await;
    assert_eq!(
        (status, &error["data"]["field"]),
        (422, &json!("body")),
        "{error}"
    );
    assert_eq!(
        secret_text(&signing_secret(&gw).await),
        before,
        "nothing changed"
    );
    let rotate = gw.api(Method::POST, "/workspace/signing-secret/rotate");
    let without_body = rotate.send().await.unwrap();
    assert_eq!(without_body.status(), 200, "a body is optional");
    let rotated: Value = without_body.json().await.unwrap();
    assert_eq!(rotated["previous_secret"], before.as_str(), "{rotated}");
}

#[tokio::test(flavor = "multi_thread")]
async fn only_a_request_its_source_verified_arrives_marked_verified() {
    let sink = Sink::start(Reply::Status(200)).await;
    let config = format!(
        "[[sources]]\nname = \"plain\"\n[[sources]]\nname = \"keyed\"\nverification = {{ type = \"api_key\", header_key = \"x-key\", api_key = \"the-key\" }}\n{}{}",
        route("plain", "plain-out", &sink.url("/plain"), ""),
        route("keyed", "keyed-out", &sink.url("/keyed"), "")
    );
    let gw = start_unsigned_in(tempfile::tempdir().unwrap(), "", &config).await;
    for (path, key) in [("/e/plain", "none"), ("/e/keyed", "the-key")] {
        let claimed = [("x-key", key), ("x-hookdeck-verified", "true")];
        let response = post_with(&gw, path, &claimed, "{}").await;
        assert_eq!(response.status(), 200);
    }
    let received = sink.wait_for(2).await;
    let at = |path: &str| received.iter().find(|r| r.path == path).unwrap();
    assert_eq!(
        at("/plain").header("x-hookdeck-verified"),
        None,
        "a sender's claim is dropped"
    );
    assert_eq!(at("/keyed").header("x-hookdeck-verified"), Some("true"));
    assert_eq!(
        at("/keyed")
            .headers
            .get_all("x-hookdeck-verified")
            .iter()
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_that_sets_or_removes_the_secret_in_gateway_toml_signs_accordingly() {
    let sink = Sink::start(Reply::Status(200)).await;
    let rest = shopify(&sink, "");
    let gw = start_unsigned_in(tempfile::tempdir().unwrap(), "", &rest).await;
    let generated = secret_text(&signing_secret(&gw).await);
    let signed = config_text_unsigned("", &rest).replacen(
        "delivery = {",
        &format!("delivery = {{ signing_secret = \"{SIGNING_SECRET}\","),
        1,
    );
    let path = write_config_text(gw.dir.path(), &signed);
    gw.gateway
        .reload(hookgate::Config::load(&path).unwrap())
        .await
        .unwrap();
    assert_eq!(signing_secret(&gw).await["set_in"], "gateway.toml");
    let received = delivered(&gw, &sink, "{}", 1).await;
    assert_eq!(
        received.hookdeck_signature_made_by(SIGNING_SECRET),
        Some("x-hookdeck-signature")
    );

    write_config_text(gw.dir.path(), &config_text_unsigned("", &rest));
    gw.gateway
        .reload(hookgate::Config::load(&path).unwrap())
        .await
        .unwrap();
    assert_eq!(secret_text(&signing_secret(&gw).await), generated);
    let received = delivered(&gw, &sink, "{}", 2).await;
    assert_eq!(
        received.hookdeck_signature_made_by(&generated),
        Some("x-hookdeck-signature")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_jobs_delivery_speaks_standard_webhooks_only() {
    use crate::outbound::{application, endpoint, send_job, wait_job, INSECURE};
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start_with(INSECURE, "").await;
    let app = application(&gw, "shop").await;
    endpoint(&gw, &app, &sink, json!({})).await;
    let headers = json!({ "Idempotency-Key": "the-products-own" });
    let job = json!({ "application_id": app, "event_type": "order.created", "payload": {}, "headers": headers });
    let (status, job) = send_job(&gw, job).await;
    assert_eq!(status, 201, "{job}");
    wait_job(&gw, job["id"].as_str().unwrap(), "succeeded").await;
    let received = sink.wait_for(1).await.pop().unwrap();
    assert!(received.header("webhook-signature").is_some());
    let hookdeck: Vec<_> = received
        .headers
        .keys()
        .filter(|name| name.as_str().starts_with("x-hookdeck-"))
        .collect();
    assert!(hookdeck.is_empty(), "{hookdeck:?}");
    assert_eq!(received.header("idempotency-key"), Some("the-products-own"));
}

/// Rejected requests of a cause, as the API lists them.
async fn rejected(gw: &TestGateway, cause: &str) -> Vec<Value> {
    let path = format!("/requests?status=rejected&rejection_cause={cause}&include=data");
    let (status, page) = gw.api_get(&path).await;
    assert_eq!(status, 200, "{page}");
    page["models"].as_array().unwrap().clone()
}

async fn put(gw: &TestGateway, path: &str) -> u16 {
    gw.api(Method::PUT, path)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn archived_sources_reject_as_source_archived_and_deleted_ones_answer_gone() {
    let gw = start_unsigned_in(tempfile::tempdir().unwrap(), "", "").await;
    let keyed = json!({ "name": "crm", "verification": { "type": "api_key", "header_key": "x-crm-key", "api_key": "crm-key-value" } });
    let (status, created) = gw.api_send(Method::POST, "/sources", keyed).await;
    assert_eq!(status, 200, "{created}");
    let crm = hookgate::ids::named_id("src", "crm");
    assert_eq!(put(&gw, &format!("/sources/{crm}/archive")).await, 200);

    let key = [("x-crm-key", "crm-key-value")];
    let response = post_with(&gw, "/e/crm", &key, "{}").await;
    assert_eq!(response.status(), 404);
    let error: Value = response.json().await.unwrap();
    assert!(
        error["message"].as_str().unwrap().contains("archived"),
        "{error}"
    );
    assert_eq!(
        gw.post(&format!("/e/{crm}"), "{}").await.0,
        404,
        "by id too"
    );
    let archived = rejected(&gw, "SOURCE_ARCHIVED").await;
    assert_eq!(archived.len(), 2);
    assert_eq!(archived[1]["source_id"], crm.as_str());
    assert_eq!(archived[1]["rejection_cause"], "SOURCE_ARCHIVED");
    assert_eq!(
        archived[1]["data"]["headers"]["x-crm-key"], "[redacted]",
        "the archived source's credential is not kept"
    );

    assert_eq!(put(&gw, &format!("/sources/{crm}/unarchive")).await, 200);
    let keyed = post_with(&gw, "/e/crm", &key, "{}").await;
    assert_eq!(keyed.status(), 200, "served again");

    assert_eq!(gw.api_delete(&format!("/sources/{crm}")).await, 200);
    let (status, gone) = gw.post("/e/crm", "{}").await;
    assert_eq!(status, 410, "{gone}");
    assert_eq!(gw.post(&format!("/e/{crm}"), "{}").await.0, 410);
    assert_eq!(gw.post("/e/never-was", "{}").await.0, 404);
    let no_webhook = rejected(&gw, "NO_WEBHOOK").await;
    assert_eq!(no_webhook.len(), 3);

    // Both outlive a restart.
    let (status, _) = gw
        .api_send(Method::POST, "/sources", json!({ "name": "old" }))
        .await;
    assert_eq!(status, 200);
    let old = hookgate::ids::named_id("src", "old");
    assert_eq!(put(&gw, &format!("/sources/{old}/archive")).await, 200);
    let gw = start_unsigned_in(gw.stopped().await, "", "").await;
    assert_eq!(gw.post("/e/old", "{}").await.0, 404);
    assert_eq!(rejected(&gw, "SOURCE_ARCHIVED").await.len(), 3);
    assert_eq!(gw.post("/e/crm", "{}").await.0, 410);
}

#[test]
fn the_receivers_check_is_the_documented_one() {
    // Hookdeck's scheme on a known vector: HMAC-SHA256 (RFC 4231 case 2) in base64.
    let received = Received {
        method: "POST".into(),
        path: "/".into(),
        query: None,
        headers: [(
            "x-hookdeck-signature",
            "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=",
        )]
        .into_iter()
        .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
        .collect(),
        body: "what do ya want for nothing?".into(),
        at: std::time::Instant::now(),
    };
    assert_eq!(
        received.hookdeck_signature_made_by("Jefe"),
        Some("x-hookdeck-signature")
    );
}

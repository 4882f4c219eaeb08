//! The address policy: objects created through the API (destinations,
//! outbound endpoints, issue notification webhooks) may not reach loopback,
//! private, link-local and metadata addresses unless `[delivery]` opens them;
//! gateway.toml's destinations may. Sinks listen on loopback, so each test
//! sets the policy it needs. No request ever goes to an address outside
//! 127.0.0.0/8: refused addresses are refused before any connection.

use crate::common::{config_text_full, route, Reply, Sink, TestGateway};
use crate::outbound::{application, event_types, send_job, wait_job, INSECURE};
use hookgate::model::{Event, EventStatus};
use hookgate::Config;
use reqwest::Method;
use serde_json::{json, Value};

/// The default policy: `[delivery]` opens nothing.
const DEFAULT_POLICY: &str = "";

/// Loopback is open except 127.0.0.1 (and ::1, never opened).
const ONLY_127_0_0_2: &str =
    r#"allowed_networks = ["127.0.0.0/8"], blocked_networks = ["127.0.0.1/32"]"#;

/// Internal addresses in the spellings attackers try; none is contacted.
const INTERNAL_URLS: &[&str] = &[
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/",
    "http://192.168.1.1/",
    "http://172.16.0.1/",
    "http://127.0.0.1:9/",
    "http://[::1]/",
    "http://[fd00::1]/",
    "http://[fd00:ec2::254]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://0x7f.1/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://100.64.0.1/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
];

fn assert_refused(answer: &(u16, Value), field: &str, url: &str) {
    let (status, error) = answer;
    assert_eq!(
        (*status, error["data"]["field"].as_str()),
        (422, Some(field)),
        "{url}: {error}"
    );
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("may not reach"), "{url}: {message}");
}

async fn failed_event(gw: &TestGateway, connection_id: &str) -> Event {
    gw.wait_event(|e| e.connection_id == connection_id && e.status == EventStatus::Failed)
        .await
}

/// An outbound endpoint; the URL is accepted.
async fn create_endpoint(gw: &TestGateway, app: &str, url: &str) -> Value {
    let body = json!({ "application_id": app, "url": url });
    let (status, endpoint) = gw.api_send(Method::POST, "/v1/endpoints", body).await;
    assert_eq!(status, 201, "{endpoint}");
    endpoint
}

/// The only attempt of an event, as `/attempts` shows it.
async fn only_attempt(gw: &TestGateway, event_id: &str) -> Value {
    let (status, attempts) = gw.api_get(&format!("/attempts?event_id={event_id}")).await;
    assert_eq!(
        (status, attempts["count"].as_u64()),
        (200, Some(1)),
        "{attempts}"
    );
    attempts["models"][0].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn internal_addresses_are_refused_when_api_objects_are_created_or_changed() {
    let gw =
        TestGateway::start_full(DEFAULT_POLICY, INSECURE, "[[sources]]\nname = \"shop\"\n").await;
    let app = application(&gw, "production").await;
    for (i, url) in INTERNAL_URLS.iter().enumerate() {
        let destination = json!({ "name": format!("d{i}"), "url": url });
        let answer = gw
            .api_send(Method::POST, "/destinations", destination)
            .await;
        assert_refused(&answer, "url", url);
        let endpoint = json!({ "application_id": app, "url": url });
        let answer = gw.api_send(Method::POST, "/v1/endpoints", endpoint).await;
        assert_refused(&answer, "url", url);
        let trigger =
            json!({ "name": "t", "type": "delivery", "channels": { "webhook": { "url": url } } });
        let answer = gw.api_send(Method::POST, "/issue-triggers", trigger).await;
        assert_refused(&answer, "channels.webhook.url", url);
    }
    let inline = json!({ "name": "c", "source": "shop", "destination": { "name": "meta", "url": INTERNAL_URLS[0] } });
    let answer = gw.api_send(Method::POST, "/connections", inline).await;
    assert_refused(&answer, "url", INTERNAL_URLS[0]);

    // Changing a public URL to an internal one is refused too.
    let public = "https://hooks.example.com/in";
    let (status, _) = gw
        .api_send(
            Method::POST,
            "/destinations",
            json!({ "name": "pub", "url": public }),
        )
        .await;
    assert_eq!(status, 200);
    let answer = gw
        .api_send(
            Method::PUT,
            "/destinations/pub",
            json!({ "url": "http://10.1.2.3/" }),
        )
        .await;
    assert_refused(&answer, "url", "http://10.1.2.3/");
    let endpoint = create_endpoint(&gw, &app, public).await;
    let path = format!("/v1/endpoints/{}", endpoint["id"].as_str().unwrap());
    let answer = gw
        .api_send(Method::PATCH, &path, json!({ "url": "http://[fd00::1]/" }))
        .await;
    assert_refused(&answer, "url", "http://[fd00::1]/");
    let trigger =
        json!({ "name": "t", "type": "delivery", "channels": { "webhook": { "url": public } } });
    let (status, created) = gw.api_send(Method::POST, "/issue-triggers", trigger).await;
    assert_eq!(status, 200, "{created}");
    let path = format!("/issue-triggers/{}", created["id"].as_str().unwrap());
    let changed = json!({ "channels": { "webhook": { "url": "http://0x7f.1/" } } });
    let answer = gw.api_send(Method::PUT, &path, changed).await;
    assert_refused(&answer, "channels.webhook.url", "http://0x7f.1/");
}

#[tokio::test(flavor = "multi_thread")]
async fn names_of_internal_addresses_are_refused_when_connecting_and_not_retried() {
    let sink = Sink::start(Reply::StatusWithBody(200, "internal secret".into())).await;
    let port = sink.addr.port();
    let gw = TestGateway::start_full(DEFAULT_POLICY, "", "[[sources]]\nname = \"shop\"\n").await;
    // Names, not addresses: accepted when created, refused once resolved.
    // (Only names of loopback: a broken policy must not send traffic elsewhere.)
    let names = [
        format!("http://localhost:{port}/"),
        format!("http://hooks.localhost:{port}/"),
        format!("http://LocalHost.:{port}/"),
    ];
    let retry = json!([{ "type": "retry", "strategy": "linear", "count": 5, "interval": 10 }]);
    let mut connections = Vec::new();
    for (i, url) in names.iter().enumerate() {
        let connection = json!({ "name": format!("c{i}"), "source": "shop", "rules": retry, "destination": { "name": format!("d{i}"), "url": url } });
        let (status, created) = gw.api_send(Method::POST, "/connections", connection).await;
        assert_eq!(status, 200, "{url}: {created}");
        connections.push(created["id"].as_str().unwrap().to_string());
    }
    gw.post("/e/shop", "{}").await;
    for (connection, url) in connections.iter().zip(&names) {
        let event = failed_event(&gw, connection).await;
        assert_eq!(
            (event.attempts, event.error_code.as_deref()),
            (1, Some("BLOCKED_ADDRESS")),
            "{url}"
        );
        let attempt = only_attempt(&gw, &event.id).await;
        assert_eq!(
            (&attempt["response_status"], &attempt["body"]),
            (&Value::Null, &Value::Null),
            "{url}: nothing of the answer is kept: {attempt}"
        );
    }
    assert!(sink.received().is_empty(), "the sink was reached");
}

#[tokio::test(flavor = "multi_thread")]
async fn destinations_in_gateway_toml_reach_any_address() {
    let sink = Sink::start(Reply::Status(200)).await;
    let config = format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route("shop", "local", &sink.url("/"), "")
    );
    let gw = TestGateway::start_full(ONLY_127_0_0_2, "", &config).await;
    gw.post("/e/shop", "{}").await;
    sink.wait_for(1).await;
    gw.wait_event(|e| e.status == EventStatus::Successful).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn allowed_networks_open_a_range_and_blocked_networks_close_one() {
    let open = Sink::start_on([127, 0, 0, 2], |_| Reply::Status(200)).await;
    let closed = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start_full(ONLY_127_0_0_2, "", "[[sources]]\nname = \"shop\"\n").await;
    let answer = gw
        .api_send(
            Method::POST,
            "/destinations",
            json!({ "name": "x", "url": closed.url("/") }),
        )
        .await;
    assert_refused(&answer, "url", &closed.url("/"));
    let by_name = format!("http://localhost:{}/", closed.addr.port());
    let mut ids = Vec::new();
    for (name, url) in [("open", open.url("/")), ("by-name", by_name)] {
        let connection =
            json!({ "name": name, "source": "shop", "destination": { "name": name, "url": url } });
        let (status, created) = gw.api_send(Method::POST, "/connections", connection).await;
        assert_eq!(status, 200, "{created}");
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    gw.post("/e/shop", "{}").await;
    open.wait_for(1).await;
    let refused = failed_event(&gw, &ids[1]).await;
    assert_eq!(refused.error_code.as_deref(), Some("BLOCKED_ADDRESS"));
    assert!(closed.received().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn outbound_endpoints_are_held_to_the_policy_when_delivering() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start_full(DEFAULT_POLICY, INSECURE, "").await;
    let app = application(&gw, "production").await;
    event_types(&gw, &app, &["invoice.paid"]).await;
    let url = format!("http://localhost:{}/hooks", sink.addr.port());
    create_endpoint(&gw, &app, &url).await;
    let job = json!({ "application_id": app, "event_type": "invoice.paid", "payload": {} });
    let (status, job) = send_job(&gw, job).await;
    assert_eq!(status, 201, "{job}");
    let job = wait_job(&gw, job["id"].as_str().unwrap(), "discarded").await;
    assert_eq!(job["attempt_count"], 1, "{job}");
    let deliveries = gw
        .gateway
        .store
        .deliveries_of(job["id"].as_str().unwrap())
        .unwrap();
    assert_eq!(deliveries[0].error_code.as_deref(), Some("BLOCKED_ADDRESS"));
    assert!(sink.received().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_notifications_are_held_to_the_policy_and_do_not_follow_redirects() {
    let failing = Sink::start_answering(vec![Reply::Status(500)], Reply::Status(503)).await;
    let internal = Sink::start(Reply::Status(200)).await;
    let redirect_to = internal.url("/redirected");
    let channel = Sink::start_on([127, 0, 0, 2], move |_| {
        Reply::Redirect(redirect_to.clone())
    })
    .await;
    let config = format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &failing.url("/"), "")
    );
    let gw = TestGateway::start_full(ONLY_127_0_0_2, "", &config).await;
    let webhooks = [
        format!("http://localhost:{}/by-name", internal.addr.port()),
        channel.url("/alerts"),
    ];
    for (i, webhook_url) in webhooks.iter().enumerate() {
        let trigger = json!({ "name": format!("t{i}"), "type": "delivery", "configs": { "strategy": "first_attempt", "connections": "*" }, "channels": { "webhook": { "url": webhook_url } } });
        let (status, created) = gw.api_send(Method::POST, "/issue-triggers", trigger).await;
        assert_eq!(status, 200, "{created}");
    }
    // Two failures of two kinds (500, then 503): two issues, each notified.
    for _ in 0..2 {
        gw.post("/e/shop", "{}").await;
    }
    channel.wait_for(2).await;
    gw.wait_events(2, |e| e.status == EventStatus::Failed).await;
    assert!(
        internal.received().is_empty(),
        "reached through a name or a redirect: {:?}",
        internal.received()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_changes_the_policy_for_the_next_attempt() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start("[[sources]]\nname = \"shop\"\n").await;
    let connection = json!({ "name": "c", "source": "shop", "destination": { "name": "d", "url": sink.url("/") } });
    let (status, created) = gw.api_send(Method::POST, "/connections", connection).await;
    assert_eq!(status, 200, "{created}");
    gw.post("/e/shop", "{}").await;
    sink.wait_for(1).await;

    let path = gw.dir.path().join("gateway.toml");
    let text = config_text_full(DEFAULT_POLICY, "", "[[sources]]\nname = \"shop\"\n");
    std::fs::write(&path, text).unwrap();
    gw.gateway
        .reload(Config::load(&path).unwrap())
        .await
        .unwrap();
    gw.post("/e/shop", "{}").await;
    let refused = gw.wait_event(|e| e.status == EventStatus::Failed).await;
    assert_eq!(refused.error_code.as_deref(), Some("BLOCKED_ADDRESS"));
    assert_eq!(sink.received().len(), 1);
}

#[test]
fn a_network_that_is_not_a_range_is_a_config_error_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(
        &path,
        config_text_full(r#"blocked_networks = ["10.0.0.0/33"]"#, "", ""),
    )
    .unwrap();
    let error = Config::load(&path).unwrap_err().to_string();
    let expected = format!("{}:1:", path.display());
    assert!(
        error.starts_with(&expected) && error.contains("blocked_networks"),
        "{error}"
    );
}

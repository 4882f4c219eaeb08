//! What an API key holder may not do, through the real API: read the server's
//! files or environment, see or recover stored secrets, guess keys without
//! bound, or make names, pages and signature headers as large as they like.

use crate::common::{route, Reply, Sink, TestGateway, API_KEY};
use crate::outbound::{job_id_of, one_endpoint, wait_job, INSECURE};
use base64::{engine::general_purpose::STANDARD as BASE64, Engine};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::Path;

/// A handler that changes nothing.
const IDENTITY: &str = "addHandler('transform', (request, context) => request);";

fn shop(sink: &Sink) -> String {
    format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), "")
    )
}

/// Sends `body` and expects a 422; returns its message.
async fn refused(gw: &TestGateway, method: Method, path: &str, body: &Value) -> String {
    let response = gw.api(method, path).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(status, 422, "{path} {body}: {text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    answer["message"].as_str().unwrap().to_string()
}

/// POSTs `body` and expects it created (200, or 201 for `/v1`); returns the answer.
async fn created(gw: &TestGateway, path: &str, body: Value) -> Value {
    let (status, answer) = gw.api_send(Method::POST, path, body).await;
    assert!(matches!(status, 200 | 201), "{path}: {status} {answer}");
    answer
}

#[tokio::test]
async fn api_objects_may_not_name_files_on_the_server() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink)).await;
    let ends =
        json!({ "source": { "name": "s" }, "destination": { "name": "d", "url": sink.url("/") } });
    let connection = |name: &str, extra: Value| {
        let mut body = ends.clone();
        body["name"] = json!(name);
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let (status, _) = gw
        .api_send(Method::POST, "/connections", connection("ok", json!({})))
        .await;
    assert_eq!(status, 200);

    let rules_file = json!({ "rules_file": "/etc/passwd" });
    let code_file = json!({ "rules": [{ "type": "transform", "transformation": { "name": "t", "code_file": "/etc/passwd" } }] });
    let cases = [
        (
            Method::POST,
            "/connections",
            connection("c", rules_file.clone()),
        ),
        (
            Method::PUT,
            "/connections",
            connection("c", rules_file.clone()),
        ),
        (Method::PUT, "/connections/ok", rules_file),
        (
            Method::POST,
            "/connections",
            connection("c", code_file.clone()),
        ),
        (Method::PUT, "/connections/ok", code_file),
        (
            Method::POST,
            "/transformations",
            json!({ "name": "t", "code_file": "/etc/passwd" }),
        ),
    ];
    for (method, path, body) in cases {
        let message = refused(&gw, method, path, &body).await;
        assert!(!message.contains("root:"), "{path}: {message}");
        assert!(message.contains("file"), "{path}: {message}");
    }
}

#[tokio::test]
async fn api_secrets_may_not_read_the_environment_and_say_nothing_of_it() {
    let gw = TestGateway::start_with(INSECURE, "").await;
    let url = "https://example.com/hooks";
    created(&gw, "/destinations", json!({ "name": "dx", "url": url })).await;
    let transformation = created(
        &gw,
        "/transformations",
        json!({ "name": "tx", "code": IDENTITY }),
    )
    .await;
    let app = created(&gw, "/v1/applications", json!({ "name": "prod" })).await;
    let endpoint = created(
        &gw,
        "/v1/endpoints",
        json!({ "application_id": app["id"], "url": url }),
    )
    .await;
    let transformation_path = format!(
        "/transformations/{}",
        transformation["id"].as_str().unwrap()
    );
    let rotate_path = format!(
        "/v1/endpoints/{}/rotate-secret",
        endpoint["id"].as_str().unwrap()
    );

    let cases = |v: &str| {
        let basic = json!({ "type": "basic_auth", "username": "u", "password": v });
        vec![
            (
                Method::POST,
                "/sources",
                json!({ "name": "s1", "verification": basic }),
            ),
            (
                Method::PUT,
                "/sources",
                json!({ "name": "s2", "verification": { "type": "api_key", "header_key": "x-key", "api_key": v } }),
            ),
            (
                Method::POST,
                "/sources",
                json!({ "name": "s3", "verification": { "type": "github", "webhook_secret_key": v } }),
            ),
            (
                Method::POST,
                "/destinations",
                json!({ "name": "d1", "url": url, "auth_method": { "type": "bearer_token", "token": v } }),
            ),
            (
                Method::PUT,
                "/destinations/dx",
                json!({ "auth_method": { "type": "api_key", "key": "k", "api_key": v } }),
            ),
            (
                Method::POST,
                "/connections",
                json!({ "name": "c1", "source": { "name": "s4", "verification": basic }, "destination_id": "dx" }),
            ),
            (
                Method::POST,
                "/connections",
                json!({ "name": "c2", "source": { "name": "s5" }, "destination": { "name": "d2", "url": url, "auth_method": basic } }),
            ),
            (
                Method::POST,
                "/transformations",
                json!({ "name": "t1", "code": IDENTITY, "env": { "K": v } }),
            ),
            (
                Method::PUT,
                transformation_path.as_str(),
                json!({ "env": { "K": v } }),
            ),
            (
                Method::PUT,
                "/transformations/run",
                json!({ "code": IDENTITY, "env": { "K": v }, "request": {} }),
            ),
            (
                Method::POST,
                "/v1/endpoints",
                json!({ "application_id": app["id"], "url": url, "secret": v }),
            ),
            (Method::POST, rotate_path.as_str(), json!({ "secret": v })),
            (
                Method::POST,
                "/issue-triggers",
                json!({ "name": "i", "type": "delivery", "channels": { "webhook": { "url": v } } }),
            ),
        ]
    };
    let home = std::env::var("HOME").expect("HOME is set");
    let spellings = [
        "env:HOME",
        "env:HOOKGATE_SURELY_UNSET_VARIABLE",
        "ENV:HOME",
        "  env:HOME",
    ];
    let answers_for = |v: &'static str| {
        let gw = &gw;
        async move {
            let mut messages = Vec::new();
            for (method, path, body) in cases(v) {
                messages.push(refused(gw, method, path, &body).await);
            }
            messages
        }
    };
    let first = answers_for(spellings[0]).await;
    for message in &first {
        assert!(
            message.contains("env:") && !message.contains(&home),
            "{message}"
        );
    }
    for spelling in &spellings[1..] {
        assert_eq!(
            answers_for(spelling).await,
            first,
            "{spelling}: the same words"
        );
    }
}

#[tokio::test]
async fn a_sources_own_credentials_are_neither_forwarded_nor_kept() {
    let sink = Sink::start(Reply::Status(200)).await;
    let config = format!(
        "[[sources]]\nname = \"basic\"\nverification = {{ type = \"basic_auth\", username = \"hook\", password = \"pw-basic-secret\" }}\n{}\n\
         [[sources]]\nname = \"keyed\"\nverification = {{ type = \"api_key\", header_key = \"X-Api-Key\", api_key = \"key-secret\" }}\n\
         [[connections]]\nname = \"keyed-to-out\"\nsource = \"keyed\"\ndestination = \"out\"\n",
        route("basic", "out", &sink.url("/"), "")
    );
    let gw = TestGateway::start(&config).await;
    let basic = gw
        .http
        .post(gw.url("/e/basic"))
        .basic_auth("hook", Some("pw-basic-secret"))
        .body("{}");
    let keyed = gw
        .http
        .post(gw.url("/e/keyed"))
        .header("x-api-key", "key-secret")
        .body("{}");
    let mut request_ids = Vec::new();
    for call in [basic, keyed] {
        let response = call.header("x-kept", "yes").send().await.unwrap();
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        request_ids.push(answer["request_id"].as_str().unwrap().to_string());
    }
    for delivered in sink.wait_for(2).await {
        assert_eq!(delivered.header("x-kept"), Some("yes"));
        assert_eq!(delivered.header("authorization"), None);
        assert_eq!(delivered.header("x-api-key"), None);
    }
    for id in request_ids {
        let (status, request) = gw.api_get(&format!("/requests/{id}")).await;
        assert_eq!(status, 200);
        let text = request.to_string();
        assert!(
            !text.contains("secret") && text.contains("x-kept"),
            "{text}"
        );
    }
}

/// Every file under `dir`, read whole.
fn files_under(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            files.push((path, bytes));
        }
    }
    files
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn stored_secrets_are_sealed_masked_in_answers_and_still_work_after_a_restart() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start_with(INSECURE, "").await;
    let password = "pw-sealed-0123456789";
    let token = "token-sealed-0123456789";
    let env_value = "env-sealed-0123456789";
    let inline_env_value = "inline-sealed-0123456789";
    let endpoint_key = BASE64.encode(b"endpoint-key-sealed-0123456789");
    let (status, _) = gw
        .api_send(
            Method::POST,
            "/transformations",
            json!({ "name": "stored", "code": IDENTITY, "env": { "TOKEN": env_value } }),
        )
        .await;
    assert_eq!(status, 200);
    let rules = json!([{ "type": "transform", "transformation": { "name": "inline", "code": IDENTITY, "env": { "TOKEN": inline_env_value } } }]);
    let (status, connection) = gw
        .api_send(
            Method::POST,
            "/connections",
            json!({
                "name": "sealed",
                "source": { "name": "in", "verification": { "type": "basic_auth", "username": "hook", "password": password } },
                "destination": { "name": "out", "url": sink.url("/"), "auth_method": { "type": "bearer_token", "token": token } },
                "rules": rules,
            }),
        )
        .await;
    assert_eq!(status, 200, "{connection}");
    let (_, endpoint) = one_endpoint(
        &gw,
        &sink,
        json!({ "secret": format!("whsec_{endpoint_key}") }),
    )
    .await;

    let secrets = [
        password,
        token,
        env_value,
        inline_env_value,
        endpoint_key.as_str(),
    ];
    let endpoint_path = format!("/v1/endpoints/{}", endpoint["id"].as_str().unwrap());
    let connection_path = format!("/connections/{}", connection["id"].as_str().unwrap());
    for path in [
        "/connections",
        &connection_path,
        "/transformations",
        "/sources",
        "/destinations",
        &endpoint_path,
        "/v1/endpoints",
    ] {
        let (status, answer) = gw.api_get(path).await;
        assert_eq!(status, 200, "{path}");
        let text = answer.to_string();
        for secret in secrets {
            assert!(!text.contains(secret), "{path} shows {secret}: {text}");
        }
    }
    // The inline transformation is stored as one of the transformations.
    let (_, shown) = gw.api_get("/transformations?name=inline").await;
    assert_eq!(shown["models"][0]["env"]["TOKEN"], "inli…", "{shown}");

    let dir = gw.stopped().await;
    let data = dir.path().join("data");
    for (path, bytes) in files_under(&data) {
        for secret in secrets {
            assert!(
                !contains(&bytes, secret),
                "{} holds {secret}",
                path.display()
            );
        }
    }
    use std::os::unix::fs::PermissionsExt;
    let key_mode = std::fs::metadata(data.join("secrets.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);

    let gw = TestGateway::start_in(dir, "").await;
    let post = |password: &'static str| {
        gw.http
            .post(gw.url("/e/in"))
            .basic_auth("hook", Some(password))
            .body("{}")
            .send()
    };
    assert_eq!(post("wrong").await.unwrap().status(), 401);
    assert_eq!(post(password).await.unwrap().status(), 200);
    let delivered = &sink.wait_for(1).await[0];
    assert_eq!(
        delivered.header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
}

#[tokio::test]
async fn failed_logins_are_limited_per_client_and_basic_passwords_refused() {
    let gw = TestGateway::start_with("api_failed_logins_per_minute = 3\n", "").await;
    let call = |user: &str, password: Option<&str>| {
        gw.api_without_key(Method::GET, "/sources")
            .basic_auth(user, password)
            .send()
    };
    assert_eq!(call(API_KEY, None).await.unwrap().status(), 200);
    assert_eq!(call(API_KEY, Some("")).await.unwrap().status(), 200);
    assert_eq!(
        call(API_KEY, Some("any")).await.unwrap().status(),
        401,
        "a password is refused"
    );
    for _ in 0..2 {
        assert_eq!(call("guess", None).await.unwrap().status(), 401);
    }
    for user in ["guess", API_KEY] {
        let locked = call(user, None).await.unwrap();
        assert_eq!(locked.status(), 429, "even the right key, once locked out");
        let wait: u64 = locked.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
    }
}

/// Sending a job skips the router (`api::serve`), not the key check: wrong
/// keys there count against the client's address like anywhere else, and a
/// locked-out address cannot send jobs with the right key either.
#[tokio::test]
async fn wrong_keys_sending_jobs_count_against_the_clients_failed_logins() {
    let gw = TestGateway::start_with("api_failed_logins_per_minute = 2\n", "").await;
    let send_job = |key: &str| {
        gw.api_without_key(Method::POST, "/v1/webhook-jobs")
            .bearer_auth(key)
            .json(&json!({ "application_id": "app_none", "event_type": "a", "payload": {} }))
            .send()
    };
    for _ in 0..2 {
        let refused = send_job("guess").await.unwrap();
        assert_eq!(refused.status(), 401);
        assert_eq!(refused.headers()["www-authenticate"], "Bearer");
    }
    let locked = send_job(API_KEY).await.unwrap();
    assert_eq!(locked.status(), 429, "even the right key, once locked out");
    assert!(locked.headers().contains_key("retry-after"));
    let elsewhere = gw
        .api_without_key(Method::GET, "/sources")
        .bearer_auth(API_KEY);
    assert_eq!(elsewhere.send().await.unwrap().status(), 429);
}

#[tokio::test]
async fn names_are_bounded_in_the_api() {
    let gw = TestGateway::start("").await;
    let (_, app) = gw
        .api_send(Method::POST, "/v1/applications", json!({ "name": "prod" }))
        .await;
    let long = "n".repeat(156);
    let long_event_type = format!("order.{}", "a".repeat(150));
    let app_types = format!(
        "/v1/applications/{}/event-types",
        app["id"].as_str().unwrap()
    );
    let cases = [
        ("/sources", json!({ "name": long })),
        (
            "/destinations",
            json!({ "name": long, "url": "http://127.0.0.1:1/" }),
        ),
        (
            "/connections",
            json!({ "name": long, "source": { "name": "s" }, "destination": { "name": "d", "url": "http://127.0.0.1:1/" } }),
        ),
        (
            "/connections",
            json!({ "name": "c", "source": { "name": long }, "destination": { "name": "d", "url": "http://127.0.0.1:1/" } }),
        ),
        (
            "/connections",
            json!({ "name": "c", "source": { "name": "s" }, "destination": { "name": "d", "url": "http://127.0.0.1:1/" }, "rules": [{ "type": "transform", "transformation": { "name": long, "code": IDENTITY } }] }),
        ),
        (
            "/transformations",
            json!({ "name": long, "code": IDENTITY }),
        ),
        ("/v1/applications", json!({ "name": long })),
        (app_types.as_str(), json!({ "name": long_event_type })),
        (
            "/issue-triggers",
            json!({ "name": long, "type": "delivery" }),
        ),
        ("/bookmarks", json!({ "event_id": "evt_x", "label": long })),
        (
            "/bookmarks",
            json!({ "event_id": "evt_x", "label": "l", "name": long }),
        ),
    ];
    for (path, body) in cases {
        let message = refused(&gw, Method::POST, path, &body).await;
        assert!(message.contains("155"), "{path}: {message}");
        assert!(
            !message.contains(&long),
            "{path}: the name is not echoed whole"
        );
    }
    let (status, _) = gw
        .api_send(Method::POST, "/sources", json!({ "name": "n".repeat(155) }))
        .await;
    assert_eq!(status, 200, "155 characters is fine");
}

/// `check`'s complaints about a config whose `rest` follows the test preamble.
fn check_errors(rest: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = crate::common::write_config(dir.path(), rest);
    hookgate::Config::load(&path).unwrap_err().to_string()
}

#[test]
fn check_refuses_long_names_and_numbers_serve_could_not_run_with() {
    // The test's own line N is line N + preamble of the file written.
    let preamble = crate::common::config_text("").lines().count();
    let line = |n: usize| n + preamble;
    let errors = check_errors(&format!("[[sources]]\nname = \"{}\"\n", "n".repeat(156)));
    assert!(
        errors.contains(&format!(
            ":{}:8: sources[0].name: is 156 characters long",
            line(2)
        )),
        "{errors}"
    );
    let errors =
        check_errors("[limits]\nstore_cache_bytes = 100\n\n[retention]\nsweep_every_ms = 0\n");
    assert!(
        errors.contains(&format!(
            ":{}:1: limits.store_cache_bytes: 100 is out of range (valid: 1048576 to",
            line(2)
        )),
        "{errors}"
    );
    assert!(
        errors.contains(&format!(
            ":{}:1: retention.sweep_every_ms: 0 is out of range",
            line(5)
        )),
        "{errors}"
    );
    let errors = check_errors("[outbound]\nmax_retries = 64\n");
    assert!(
        errors.contains("outbound.max_retries: 64 is out of range (valid: 0 to 30)"),
        "{errors}"
    );
}

#[tokio::test]
async fn a_page_with_data_ends_at_its_byte_budget_and_continues_from_its_cursor() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&format!(
        "[limits]\napi_page_bytes = 2048\n\n{}",
        shop(&sink)
    ))
    .await;
    let body = json!({ "padding": "p".repeat(900) }).to_string();
    let mut sent = Vec::new();
    for _ in 0..5 {
        let (status, answer) = gw.post("/e/shop", &body).await;
        assert_eq!(status, 200);
        sent.push(answer["request_id"].as_str().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut path = "/requests?include=data&limit=250&dir=asc".to_string();
    loop {
        let (status, page) = gw.api_get(&path).await;
        assert_eq!(status, 200);
        let models = page["models"].as_array().unwrap();
        assert!((1..=3).contains(&models.len()), "{} models", models.len());
        assert!(page.to_string().len() < 2048 + 1500, "about the budget");
        seen.extend(models.iter().map(|m| m["id"].as_str().unwrap().to_string()));
        match page["pagination"]["next"].as_str() {
            Some(next) => path = format!("/requests?include=data&limit=250&dir=asc&next={next}"),
            None => break,
        }
    }
    assert_eq!(seen, sent, "every request once, in order");

    // A record larger than the budget still comes, alone.
    let huge = json!({ "padding": "p".repeat(5000) }).to_string();
    gw.post("/e/shop", &huge).await;
    let (_, page) = gw.api_get("/requests?include=data&limit=250").await;
    assert_eq!(page["count"], 1);
    assert!(page["pagination"]["next"].is_string());
}

#[tokio::test]
async fn an_endpoint_signs_with_its_newest_secrets_only() {
    let gw = TestGateway::start_with(INSECURE, "[outbound]\nmax_endpoint_secrets = 3\n").await;
    let sink = Sink::start(Reply::Status(200)).await;
    let (app, endpoint) = one_endpoint(&gw, &sink, json!({})).await;
    let rotate = format!(
        "/v1/endpoints/{}/rotate-secret",
        endpoint["id"].as_str().unwrap()
    );
    let mut newest = String::new();
    for _ in 0..6 {
        let (status, rotated) = gw.api_send(Method::POST, &rotate, json!({})).await;
        assert_eq!(status, 200);
        newest = rotated["secret"].as_str().unwrap().to_string();
    }
    let job_id = job_id_of(&gw, &app).await;
    wait_job(&gw, &job_id, "succeeded").await;
    let delivery = &sink.wait_for(1).await[0];
    crate::outbound::assert_signed(delivery, &newest);
    let signatures = delivery.header("webhook-signature").unwrap();
    assert_eq!(signatures.split(' ').count(), 3, "{signatures}");
}

#[tokio::test]
async fn a_credential_in_the_query_is_masked_in_the_attempts_recorded() {
    let sink = Sink::start(Reply::Status(200)).await;
    let secret = "key-in-the-query-0123456789";
    let auth = format!("auth_method = {{ type = \"api_key\", key = \"api_key\", api_key = \"{secret}\", to = \"query\" }}");
    let config = format!(
        "[[sources]]\nname = \"shop\"\n[[destinations]]\nname = \"out\"\nurl = \"{}\"\n{auth}\n[[connections]]\nname = \"c\"\nsource = \"shop\"\ndestination = \"out\"\n",
        sink.url("/")
    );
    let gw = TestGateway::start(&config).await;
    assert_eq!(gw.post("/e/shop", "{}").await.0, 200);
    let delivered = &sink.wait_for(1).await[0];
    assert_eq!(
        delivered.query.as_deref(),
        Some(format!("api_key={secret}").as_str())
    );
    let event = gw
        .wait_event(|e| e.status == hookgate::model::EventStatus::Successful)
        .await;
    let (status, attempts) = gw
        .api_get(&format!("/attempts?event_id={}", event.id))
        .await;
    assert_eq!(status, 200);
    let url = attempts["models"][0]["requested_url"].as_str().unwrap();
    assert!(url.contains("api_key=") && !url.contains(secret), "{url}");
}

/// A gateway on the data in `dir` with `server_extra` `[server]` keys.
async fn started_in(dir: tempfile::TempDir, server_extra: &str) -> anyhow::Result<TestGateway> {
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, crate::common::config_text_with(server_extra, "")).unwrap();
    let config = hookgate::Config::load(&path).unwrap();
    let gateway = hookgate::Gateway::start(&config).await?;
    Ok(TestGateway {
        gateway,
        leftovers: crate::backend::leftovers(dir.path()),
        dir,
        http: reqwest::Client::new(),
    })
}

/// A source that checks Basic credentials `hook:{password}`.
fn basic_source(name: &str, password: &str) -> Value {
    json!({ "name": name, "verification": { "type": "basic_auth", "username": "hook", "password": password } })
}

async fn post_basic(gw: &TestGateway, source: &str, password: &str) -> u16 {
    let call = gw
        .http
        .post(gw.url(&format!("/e/{source}")))
        .basic_auth("hook", Some(password));
    call.body("{}").send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_secrets_key_set_after_a_first_start_opens_what_the_generated_one_sealed() {
    let gw = TestGateway::start("").await;
    const FIRST: &str = "pw-first-0123456789";
    const SECOND: &str = "pw-second-0123456789";
    created(&gw, "/sources", basic_source("first", FIRST)).await;
    let dir = gw.stopped().await;

    let key = format!("secrets_key = \"{}\"\n", BASE64.encode([42u8; 32]));
    let gw = started_in(dir, &key).await.unwrap();
    assert_eq!(post_basic(&gw, "first", FIRST).await, 200);
    // A write seals the whole set with the configured key.
    created(&gw, "/sources", basic_source("second", SECOND)).await;
    let dir = gw.stopped().await;
    std::fs::remove_file(dir.path().join("data").join("secrets.key")).unwrap();

    let gw = started_in(dir, &key).await.unwrap();
    assert_eq!(post_basic(&gw, "first", FIRST).await, 200);
    assert_eq!(post_basic(&gw, "second", SECOND).await, 200);
    let dir = gw.stopped().await;

    let wrong = format!("secrets_key = \"{}\"\n", BASE64.encode([7u8; 32]));
    let error = started_in(dir, &wrong)
        .await
        .err()
        .expect("the wrong key is refused");
    assert!(
        format!("{error:#}").contains("does not open with this secrets key"),
        "{error:#}"
    );
}

#[tokio::test]
async fn bookmarks_come_a_page_at_a_time_within_the_byte_budget() {
    let sink = Sink::start(Reply::Status(200)).await;
    let config = format!("[limits]\napi_page_bytes = 2048\n\n{}", shop(&sink));
    let gw = TestGateway::start(&config).await;
    let body = json!({ "padding": "p".repeat(900) }).to_string();
    assert_eq!(gw.post("/e/shop", &body).await.0, 200);
    let event = gw.wait_event(|_| true).await;
    let mut made = Vec::new();
    for label in ["a", "b", "c"] {
        let bookmark = created(
            &gw,
            "/bookmarks",
            json!({ "event_id": event.id, "label": label }),
        )
        .await;
        made.push(bookmark["id"].as_str().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut path = "/bookmarks?dir=asc".to_string();
    loop {
        let (status, page) = gw.api_get(&path).await;
        assert_eq!(status, 200, "{page}");
        let models = page["models"].as_array().unwrap();
        assert!((1..=2).contains(&models.len()), "{} models", models.len());
        seen.extend(models.iter().map(|m| m["id"].as_str().unwrap().to_string()));
        match page["pagination"]["next"].as_str() {
            Some(next) => path = format!("/bookmarks?dir=asc&next={next}"),
            None => break,
        }
    }
    assert_eq!(seen, made);
}

//! Sources, destinations and connections given in the reference's request
//! bodies (Hookdeck's `verification {type, configs}`, `auth_method {type,
//! config}`, `rate_limit_period = "concurrent"`, `cli_path`, `description`,
//! the transformation rule by id, retry defaults, upserts and renames), through
//! the API and in gateway.toml.

use crate::common::{config_text, route, Reply, Sink, TestGateway};
use reqwest::Method;
use serde_json::{json, Value};

fn shop(sink: &Sink) -> String {
    format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), "")
    )
}

async fn post(gw: &TestGateway, path: &str, body: Value) -> Value {
    let (status, answer) = gw.api_send(Method::POST, path, body).await;
    assert_eq!(status, 200, "POST {path}: {answer}");
    answer
}

/// Sends a request to a source with one extra header; returns the status.
async fn send_with(gw: &TestGateway, source: &str, header: (&str, &str)) -> u16 {
    let response = gw
        .http
        .post(gw.url(&format!("/e/{source}")))
        .header(header.0, header.1)
        .body("{}")
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn sources_take_hookdecks_verification_and_show_its_configs_masked_only_when_asked() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink)).await;

    // The reference's example body, then one with a verification.
    let plain = post(&gw, "/sources", json!({ "name": "shopify" })).await;
    assert_eq!(
        (&plain["description"], &plain["verification"]),
        (&Value::Null, &Value::Null)
    );
    let stripe = post(
        &gw,
        "/2023-07-01/sources",
        json!({ "name": "stripe", "description": "Payments",
                "verification": { "type": "STRIPE", "configs": { "webhook_secret_key": "whsec_0123456789abcdef" } } }),
    )
    .await;
    assert_eq!(stripe["description"], "Payments");
    assert_eq!(stripe["verification"], json!({ "type": "STRIPE" }));
    let path = format!("/sources/{}", stripe["id"].as_str().unwrap());
    assert_eq!(
        gw.api_get(&path).await.1["verification"],
        json!({ "type": "STRIPE" })
    );
    let (status, shown) = gw
        .api_get(&format!("{path}?include=verification.configs"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        shown["verification"],
        json!({ "type": "STRIPE", "configs": { "webhook_secret_key": "whse…" } })
    );
    assert_eq!(
        gw.api_get(&format!("{path}?include=everything")).await.0,
        422
    );

    // Hookdeck's API key verification checks requests; the flat lower-case
    // shape still reads.
    let keyed = json!({ "name": "keyed", "verification": { "type": "api_key", "configs": { "header_key": "x-key", "api_key": "let-me-in" } } });
    post(&gw, "/sources", keyed).await;
    let github = json!({ "name": "gh", "verification": { "type": "github", "webhook_secret_key": "s3cret" } });
    assert_eq!(
        post(&gw, "/sources", github).await["verification"]["type"],
        "GITHUB"
    );
    post(
        &gw,
        "/connections",
        json!({ "source_id": hookgate::ids::named_id("src", "keyed"), "destination_id": hookgate::ids::named_id("des", "orders") }),
    )
    .await;
    assert_eq!(send_with(&gw, "keyed", ("x-key", "wrong")).await, 401);
    assert_eq!(send_with(&gw, "keyed", ("x-key", "let-me-in")).await, 200);
    assert_eq!(sink.wait_for(1).await.len(), 1);

    // The reference's bounds: a description of at most 500 characters.
    let long = json!({ "name": "wordy", "description": "x".repeat(501) });
    let (status, answer) = gw.api_send(Method::POST, "/sources", long).await;
    assert_eq!(status, 422);
    assert!(
        answer["message"].as_str().unwrap().contains("description"),
        "{answer}"
    );

    // An unknown type or a missing setting is a 422 naming it.
    for (verification, named) in [
        (
            json!({ "type": "NOT_A_PROVIDER", "configs": {} }),
            "not_a_provider",
        ),
        (
            json!({ "type": "STRIPE", "configs": {} }),
            "webhook_secret_key",
        ),
    ] {
        let body = json!({ "name": "bad", "verification": verification });
        let (status, answer) = gw.api_send(Method::POST, "/sources", body).await;
        let message = answer["message"].as_str().unwrap();
        assert_eq!(status, 422, "{answer}");
        assert!(
            message.contains("verification") && message.contains(named),
            "{message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn destinations_take_hookdecks_auth_methods_and_show_them_masked() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink)).await;

    // The reference's example body and answer.
    let example = json!({ "name": "my-api", "url": sink.url("/api"), "rate_limit": 5, "rate_limit_period": "second" });
    let created = post(&gw, "/2023-07-01/destinations", example).await;
    for (field, expected) in [
        ("rate_limit", json!(5)),
        ("rate_limit_period", json!("second")),
        ("cli_path", Value::Null),
        ("description", Value::Null),
        (
            "auth_method",
            json!({ "type": "HOOKDECK_SIGNATURE", "config": {} }),
        ),
    ] {
        assert_eq!(created[field], expected, "{field}: {created}");
    }
    let unlimited = post(
        &gw,
        "/destinations",
        json!({ "name": "plain", "url": sink.url("/") }),
    )
    .await;
    assert_eq!(
        (&unlimited["rate_limit"], &unlimited["rate_limit_period"]),
        (&Value::Null, &json!("second"))
    );

    let shapes = [
        (
            json!({ "type": "BEARER_TOKEN", "config": { "token": "tok-0123456789abcdef" } }),
            json!({ "type": "BEARER_TOKEN", "config": { "token": "tok-…" } }),
        ),
        (
            json!({ "type": "basic_auth", "config": { "username": "me", "password": "pw" } }),
            json!({ "type": "BASIC_AUTH", "config": { "username": "me", "password": "****" } }),
        ),
        (
            json!({ "type": "API_KEY", "config": { "key": "x-api-key", "api_key": "k", "to": "query" } }),
            json!({ "type": "API_KEY", "config": { "key": "x-api-key", "api_key": "****", "to": "query" } }),
        ),
        (
            json!({ "type": "CUSTOM_SIGNATURE", "config": { "key": "x-sig", "signing_secret": "sig" } }),
            json!({ "type": "CUSTOM_SIGNATURE", "config": { "key": "x-sig", "signing_secret": "****" } }),
        ),
        (
            json!({ "type": "HOOKDECK_SIGNATURE", "config": {} }),
            json!({ "type": "HOOKDECK_SIGNATURE", "config": {} }),
        ),
        // hookgate's own flat shape.
        (
            json!({ "type": "bearer_token", "token": "flat" }),
            json!({ "type": "BEARER_TOKEN", "config": { "token": "****" } }),
        ),
    ];
    for (i, (auth_method, shown)) in shapes.into_iter().enumerate() {
        let body =
            json!({ "name": format!("d{i}"), "url": sink.url("/"), "auth_method": auth_method });
        assert_eq!(post(&gw, "/destinations", body).await["auth_method"], shown);
    }

    // A delivery carries the method's credential.
    let connection = json!({ "name": "shop-to-d0", "source": "shop", "destination_id": hookgate::ids::named_id("des", "d0") });
    post(&gw, "/connections", connection).await;
    assert_eq!(gw.post("/e/shop", "{}").await.0, 200);
    let received = sink.wait_for(2).await;
    assert!(
        received
            .iter()
            .any(|r| r.header("authorization") == Some("Bearer tok-0123456789abcdef")),
        "the bearer token reaches the destination"
    );

    let unsupported = json!({ "name": "oauth", "url": sink.url("/"), "auth_method": { "type": "OAUTH2_CLIENT_CREDENTIALS", "config": {} } });
    let (status, answer) = gw
        .api_send(Method::POST, "/destinations", unsupported)
        .await;
    assert_eq!(status, 422);
    let message = answer["message"].as_str().unwrap();
    assert!(message.contains("auth_method"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_destination_with_only_a_cli_path_keeps_its_events_until_it_gets_a_url() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink)).await;
    let cli = post(
        &gw,
        "/destinations",
        json!({ "name": "my-cli", "cli_path": "/webhooks", "description": "laptop" }),
    )
    .await;
    assert_eq!(
        (&cli["url"], &cli["cli_path"], &cli["description"]),
        (&Value::Null, &json!("/webhooks"), &json!("laptop"))
    );
    let neither = json!({ "name": "nowhere" });
    let (status, answer) = gw.api_send(Method::POST, "/destinations", neither).await;
    assert_eq!(status, 422);
    assert!(
        answer["message"].as_str().unwrap().contains("url"),
        "{answer}"
    );

    let cli_id = cli["id"].as_str().unwrap();
    post(
        &gw,
        "/connections",
        json!({ "source": "shop", "destination_id": cli_id }),
    )
    .await;
    let (_, accepted) = gw.post("/e/shop", "{}").await;
    let request_id = accepted["request_id"].as_str().unwrap();
    gw.wait_routed(request_id).await;
    // Delivered to the file's destination; the CLI one's event is held.
    sink.wait_for(1).await;
    let held = |e: &hookgate::model::Event| {
        e.destination_id == cli_id && e.status == hookgate::model::EventStatus::Hold
    };
    let waiting = gw.wait_event(held).await;
    assert_eq!((&*waiting.request_id, waiting.attempts), (request_id, 0));
    // Its attempt shows as HOLD (L199), and is made under the same id.
    let attempts_of = format!("/attempts?event_id={}", waiting.id);
    let hold = gw.api_get(&attempts_of).await.1["models"][0].clone();
    assert_eq!(
        (&hold["status"], &hold["trigger"]),
        (&json!("HOLD"), &json!("INITIAL"))
    );

    let (status, _) = gw
        .api_send(
            Method::PUT,
            &format!("/destinations/{cli_id}"),
            json!({ "url": sink.url("/now") }),
        )
        .await;
    assert_eq!(status, 200);
    let received = sink.wait_for(2).await;
    assert!(
        received.iter().any(|r| r.path == "/now"),
        "delivered once given a URL"
    );
    let delivered = |e: &hookgate::model::Event| e.id == waiting.id && e.attempts == 1;
    gw.wait_event(delivered).await;
    let (_, attempts) = gw.api_get(&attempts_of).await;
    let made = &attempts["models"].as_array().unwrap()[..];
    assert!(
        matches!(made, [one] if one["id"] == hold["id"] && one["status"] == "SUCCESSFUL"),
        "{attempts}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_take_the_references_bodies_and_rules() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink)).await;
    let source = post(&gw, "/sources", json!({ "name": "github" })).await;
    let destination = post(
        &gw,
        "/destinations",
        json!({ "name": "some-api", "url": sink.url("/some") }),
    )
    .await;

    // The reference's create example, then its create-or-update example
    // (the same body) twice: the second finds everything in place.
    let example = json!({ "name": "shopify-my-api", "source": { "name": "shopify" },
                          "destination": { "name": "my-api", "url": sink.url("/my") } });
    let created = post(&gw, "/2023-07-01/connections", example.clone()).await;
    for _ in 0..2 {
        let (status, upserted) = gw
            .api_send(Method::PUT, "/2023-07-01/connections", example.clone())
            .await;
        assert_eq!(
            (status, &upserted["id"]),
            (200, &created["id"]),
            "{upserted}"
        );
        assert_eq!(
            (
                &upserted["name"],
                &upserted["description"],
                &upserted["rules"]
            ),
            (&json!("shopify-my-api"), &Value::Null, &json!([]))
        );
    }

    // An inline object's fields change the one of that name; one declared
    // in gateway.toml may be named inline but not changed.
    let moved = json!({ "name": "shopify-my-api", "source": { "name": "shopify" },
                        "destination": { "name": "my-api", "url": sink.url("/moved") } });
    assert_eq!(gw.api_send(Method::PUT, "/connections", moved).await.0, 200);
    let (_, my_api) = gw
        .api_get(&format!(
            "/destinations/{}",
            hookgate::ids::named_id("des", "my-api")
        ))
        .await;
    assert_eq!(my_api["url"], json!(sink.url("/moved")));
    let from_shop = json!({ "name": "from-shop", "source": { "name": "shop" }, "destination": { "name": "my-api" } });
    post(&gw, "/connections", from_shop).await;
    let changing_shop = json!({ "name": "from-shop-2", "source": { "name": "shop", "description": "mine" }, "destination": { "name": "my-api" } });
    assert_eq!(
        gw.api_send(Method::POST, "/connections", changing_shop)
            .await
            .0,
        409
    );

    // The reference's example reusing resources, without a name.
    let reuse = json!({ "source_id": source["id"], "destination_id": destination["id"] });
    let unnamed = post(&gw, "/2023-07-01/connections", reuse).await;
    assert_eq!(unnamed["name"], "github-some-api");
    assert_eq!(unnamed["description"], Value::Null);

    // Its other example sends `ruleset_id`, which this version removed.
    let with_ruleset = json!({ "name": "shopify-my-api", "source_id": source["id"], "destination_id": destination["id"], "ruleset_id": "rls_xxxxxxxxxxxxxxx" });
    let (status, answer) = gw
        .api_send(Method::POST, "/connections", with_ruleset)
        .await;
    assert_eq!(
        (status, &answer["data"]["field"]),
        (422, &json!("ruleset_id"))
    );
    assert!(
        answer["message"].as_str().unwrap().contains("`rules`"),
        "{answer}"
    );

    let transformation = post(
        &gw,
        "/transformations",
        json!({ "name": "stamp", "code": "addHandler('transform', (r) => { r.headers['x-stamp'] = 'yes'; return r; })" }),
    )
    .await;
    let transformation_id = transformation["id"].as_str().unwrap();
    let ruled = json!({
        "name": "ruled", "description": "with rules", "source": "github", "destination_id": destination["id"],
        "rules": [
            { "type": "retry", "strategy": "exponential" },
            { "type": "transformation", "transformation_id": transformation_id },
        ],
    });
    let created = post(&gw, "/connections", ruled).await;
    assert_eq!(created["description"], "with rules");
    assert_eq!(
        created["rules"],
        json!([
            { "type": "retry", "strategy": "exponential", "count": 5, "interval": 60000, "response_status_codes": [] },
            { "type": "transform", "transformation_id": transformation_id },
        ])
    );
    assert_eq!(gw.post("/e/github", "{}").await.0, 200);
    let received = sink.wait_for(2).await;
    assert!(
        received.iter().any(|r| r.header("x-stamp") == Some("yes")),
        "the transformation named by id runs"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn updates_change_only_the_given_fields_and_a_rename_keeps_the_id() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink)).await;

    // Upsert by name: what is not given stays.
    post(
        &gw,
        "/sources",
        json!({ "name": "crm", "description": "first", "allowed_http_methods": ["POST"] }),
    )
    .await;
    let (status, upserted) = gw
        .api_send(
            Method::PUT,
            "/sources",
            json!({ "name": "crm", "description": "second" }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (&upserted["description"], &upserted["allowed_http_methods"]),
        (&json!("second"), &json!(["POST"]))
    );

    let api = post(
        &gw,
        "/destinations",
        json!({ "name": "my-api", "url": sink.url("/api"), "description": "kept" }),
    )
    .await;
    let api_id = api["id"].as_str().unwrap().to_string();
    let link = json!({ "name": "crm-to-api", "source": "crm", "destination_id": api_id });
    let linked = post(&gw, "/connections", link).await;

    // The reference's rename example: same id, the connection follows.
    let (status, renamed) = gw
        .api_send(
            Method::PUT,
            &format!("/destinations/{api_id}"),
            json!({ "name": "my-new-api" }),
        )
        .await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(
        (&renamed["id"], &renamed["name"], &renamed["description"]),
        (&json!(api_id), &json!("my-new-api"), &json!("kept"))
    );
    let (_, connection) = gw
        .api_get(&format!("/connections/{}", linked["id"].as_str().unwrap()))
        .await;
    assert_eq!(connection["destination_id"], json!(api_id));
    assert_eq!(gw.post("/e/crm", "{}").await.0, 200);
    assert_eq!(sink.wait_for(1).await[0].path, "/api");

    // The old name is free again, under a new id; a taken name is refused.
    let again = post(
        &gw,
        "/destinations",
        json!({ "name": "my-api", "url": sink.url("/") }),
    )
    .await;
    assert_ne!(again["id"], json!(api_id));
    let (status, _) = gw
        .api_send(
            Method::PUT,
            &format!("/destinations/{api_id}"),
            json!({ "name": "my-api" }),
        )
        .await;
    assert_eq!(status, 409);

    // An upsert may not move a connection to another destination.
    let moved = json!({ "name": "crm-to-api", "source": "crm", "destination_id": again["id"] });
    let (status, answer) = gw.api_send(Method::PUT, "/connections", moved).await;
    assert_eq!(
        (status, &answer["data"]["field"]),
        (422, &json!("destination_id")),
        "{answer}"
    );
    let same = json!({ "name": "crm-to-api", "source": "crm", "destination_id": api_id, "description": "now described" });
    let (status, kept) = gw.api_send(Method::PUT, "/connections", same).await;
    assert_eq!(
        (status, &kept["description"]),
        (200, &json!("now described"))
    );

    // Objects declared in gateway.toml stay read-only.
    let (status, _) = gw
        .api_send(
            Method::PUT,
            "/sources",
            json!({ "name": "shop", "description": "mine" }),
        )
        .await;
    assert_eq!(status, 409);

    // The renamed object keeps its id across a restart.
    let gw = gw.restart(&shop(&sink)).await;
    let (status, after) = gw.api_get(&format!("/destinations/{api_id}")).await;
    assert_eq!((status, &after["name"]), (200, &json!("my-new-api")));
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_toml_takes_the_same_shapes() {
    let hanging = Sink::start(Reply::Hang).await;
    let healthy = Sink::start(Reply::Status(200)).await;
    let config = format!(
        r#"[limits]
delivery_timeout_ms = 120000

[[sources]]
name = "stripe"
description = "Payments"
verification = {{ type = "STRIPE", configs = {{ webhook_secret_key = "whsec_toml_0123456789" }} }}

[[sources]]
name = "keyed"
verification = {{ type = "API_KEY", configs = {{ header_key = "x-key", api_key = "let-me-in" }} }}

[[sources]]
name = "fast"

[[destinations]]
name = "hangs"
description = "Slow"
url = "{}"
rate_limit = 2
rate_limit_period = "concurrent"
auth_method = {{ type = "BEARER_TOKEN", config = {{ token = "tok-toml-0123456789" }} }}

[[connections]]
name = "keyed-to-hangs"
description = "Held back"
source = "keyed"
destination = "hangs"
rules = [{{ type = "retry", strategy = "linear" }}]
{}"#,
        hanging.url("/"),
        route("fast", "healthy", &healthy.url("/"), "")
    );
    let gw = TestGateway::start(&config).await;

    let (_, destination) = gw
        .api_get(&format!(
            "/destinations/{}",
            hookgate::ids::named_id("des", "hangs")
        ))
        .await;
    for (field, expected) in [
        ("description", json!("Slow")),
        ("rate_limit", json!(2)),
        ("rate_limit_period", json!("concurrent")),
        (
            "auth_method",
            json!({ "type": "BEARER_TOKEN", "config": { "token": "tok-…" } }),
        ),
    ] {
        assert_eq!(destination[field], expected, "{field}: {destination}");
    }
    let (_, source) = gw
        .api_get("/sources/stripe?include=verification.configs")
        .await;
    assert_eq!(source["description"], "Payments");
    assert_eq!(
        source["verification"]["configs"]["webhook_secret_key"],
        "whse…"
    );
    let (_, connection) = gw
        .api_get(&format!(
            "/connections/{}",
            hookgate::ids::named_id("web", "keyed-to-hangs")
        ))
        .await;
    assert_eq!(connection["description"], "Held back");
    assert_eq!(connection["rules"][0]["count"], 5);

    // "concurrent": at most 2 deliveries in flight (the healthy destination
    // is the clock: everything reaches it while the 2 still hang).
    assert_eq!(send_with(&gw, "keyed", ("x-key", "nope")).await, 401);
    for _ in 0..6 {
        assert_eq!(send_with(&gw, "keyed", ("x-key", "let-me-in")).await, 200);
    }
    let first = hanging.wait_for(2).await;
    assert_eq!(
        first[0].header("authorization"),
        Some("Bearer tok-toml-0123456789")
    );
    for _ in 0..10 {
        assert_eq!(gw.post("/e/fast", "{}").await.0, 200);
    }
    healthy.wait_for(10).await;
    assert_eq!(
        hanging.received().len(),
        2,
        "two deliveries in flight at most"
    );
}

#[test]
fn gateway_toml_names_the_line_and_key_of_a_bad_hookdeck_shape() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    for (line, named) in [
        (
            r#"verification = { type = "STRIPE", configs = {} }"#,
            "webhook_secret_key",
        ),
        (
            r#"verification = { type = "NOPE", configs = { webhook_secret_key = "s" } }"#,
            "nope",
        ),
    ] {
        let text = config_text(&format!("[[sources]]\nname = \"s\"\n{line}\n"));
        let line_number = text.lines().position(|l| l == line).unwrap() + 1;
        let errors = hookgate::Config::parse(&path, &text).unwrap_err();
        let error = &errors.0[0];
        assert_eq!(error.file, path);
        assert_eq!(error.line, line_number, "{error}");
        assert!(
            error.key.contains("verification") && error.message.contains(named),
            "{error}"
        );
    }
    // Checked even without a rate_limit.
    let bad_period = "[[sources]]\nname = \"s\"\n[[destinations]]\nname = \"d\"\nurl = \"http://127.0.0.1:9/\"\nrate_limit_period = \"fortnight\"\n";
    let errors = hookgate::Config::parse(&path, &config_text(bad_period)).unwrap_err();
    let error = &errors.0[0];
    assert_eq!(error.key, "destinations[0].rate_limit_period");
    assert!(error.message.contains("concurrent"), "{error}");
    let auth = "[[destinations]]\nname = \"d\"\nurl = \"http://127.0.0.1:9/\"\nauth_method = { type = \"BEARER_TOKEN\", config = {} }\n";
    let errors = hookgate::Config::parse(&path, &config_text(auth)).unwrap_err();
    let error = &errors.0[0];
    assert!(
        error.key.contains("auth_method") && error.message.contains("token"),
        "{error}"
    );
}

/// A source's `custom_response` is shown as it was given (`json`, `text`,
/// `xml`), so a client reads back what it sent, and answers with the
/// matching `Content-Type`; its methods default to the reference's four.
#[tokio::test(flavor = "multi_thread")]
async fn a_custom_response_is_shown_as_given_and_methods_default_as_the_reference_says() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink)).await;
    for (name, answered) in [("json", "application/json"), ("xml", "application/xml")] {
        let custom = json!({ "content_type": name, "body": "<ok/>" });
        let body = json!({ "name": format!("custom-{name}"), "custom_response": custom });
        let source = post(&gw, "/sources", body).await;
        assert_eq!(source["custom_response"], custom, "{source}");
        // Without `allowed_http_methods`, the reference's default (L1418).
        let mut methods: Vec<&str> = source["allowed_http_methods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap())
            .collect();
        methods.sort_unstable();
        assert_eq!(methods, ["DELETE", "PATCH", "POST", "PUT"]);
        let response = gw
            .http
            .post(gw.url(&format!("/e/custom-{name}")))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["content-type"], answered);
        assert_eq!(response.text().await.unwrap(), "<ok/>");
    }
}

/// The reference's inline transformation rule (L7712-7733), `type:
/// "transformation"` as its example spells it, through the API: it becomes a
/// stored transformation the rule refers to by `transformation_id` (L7710),
/// listed, runnable and with its runs recorded; it runs with its `env`,
/// which answers mask.
#[tokio::test(flavor = "multi_thread")]
async fn an_inline_transformation_rule_in_the_references_spelling_runs() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink)).await;
    let code = "addHandler('transform', (request, context) => { request.headers['x-env'] = process.env.SECRET; return request; })";
    let rule = json!({ "type": "transformation", "transformation": { "name": "example", "code": code, "env": { "SECRET": "supersecret" } } });
    let body = json!({ "name": "inline", "source": "shop", "destination": { "name": "inline-out", "url": sink.url("/inline") }, "rules": [rule] });
    let created = post(&gw, "/connections", body).await;
    let shown = &created["rules"][0];
    let id = shown["transformation_id"]
        .as_str()
        .expect("a transformation_id");
    assert_eq!(
        *shown,
        json!({ "type": "transform", "transformation_id": id })
    );

    let (_, listed) = gw.api_get("/transformations?name=example").await;
    assert_eq!(listed["models"][0]["id"], id, "{listed}");
    assert_eq!(listed["models"][0]["code"], code);
    assert_ne!(listed["models"][0]["env"]["SECRET"], "supersecret");
    let run = json!({ "transformation_id": id, "request": { "headers": {} } });
    let (status, ran) = gw.api_send(Method::PUT, "/transformations/run", run).await;
    assert_eq!(status, 200, "{ran}");
    assert_eq!(ran["request"]["headers"]["x-env"], "supersecret");

    assert_eq!(gw.post("/e/shop", "{}").await.0, 200);
    let received = sink.wait_for(2).await;
    let inline = received.iter().find(|r| r.path == "/inline").unwrap();
    assert_eq!(inline.header("x-env"), Some("supersecret"));
    let (_, runs) = gw
        .api_get(&format!("/transformations/{id}/executions"))
        .await;
    assert_eq!(runs["models"][0]["webhook_id"], created["id"], "{runs}");
}

/// An inline transformation's name is a transformation's: sent again with
/// the same code and env (the same connection upserted, or another one) it
/// is the same transformation; with other code it is a conflict that
/// changes nothing; a connection refused for another reason stores none.
#[tokio::test(flavor = "multi_thread")]
async fn an_inline_transformation_named_like_a_stored_one_is_it_or_a_conflict() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&shop(&sink)).await;
    let identity = "addHandler('transform', (request) => request)";
    let rules = |name: &str, code: &str| json!([{ "type": "transform", "transformation": { "name": name, "code": code } }]);
    let connection = |name: &str, rules: Value| json!({ "name": name, "source": "shop", "destination": { "name": "out", "url": sink.url("/out") }, "rules": rules });

    let first = post(
        &gw,
        "/connections",
        connection("first", rules("same", identity)),
    )
    .await;
    let (status, again) = gw
        .api_send(
            Method::PUT,
            "/connections",
            connection("first", rules("same", identity)),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    let second = post(
        &gw,
        "/connections",
        connection("second", rules("same", identity)),
    )
    .await;
    let id = &first["rules"][0]["transformation_id"];
    assert_eq!(
        (
            &again["rules"][0]["transformation_id"],
            &second["rules"][0]["transformation_id"]
        ),
        (id, id)
    );

    let other = "addHandler('transform', (request) => { request.headers['x-other'] = '1'; return request; })";
    let (status, refused) = gw
        .api_send(
            Method::POST,
            "/connections",
            connection("third", rules("same", other)),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    let (status, _) = gw
        .api_send(Method::POST, "/connections", connection("fourth", json!([{ "type": "transform", "transformation": { "name": "lost", "code": identity } }, { "type": "delay" }])))
        .await;
    assert_eq!(status, 422);

    let (_, listed) = gw.api_get("/transformations").await;
    assert_eq!(listed["models"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(
        (&listed["models"][0]["id"], &listed["models"][0]["code"]),
        (id, &json!(identity))
    );
    assert_eq!(gw.api_get("/connections/third").await.0, 404);
}

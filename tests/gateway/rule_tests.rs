//! `hookgate test` and `hookgate requests export`, run as the real binary:
//! the repo's recorded requests pass against its gateway.toml, a wrong
//! expectation fails with its differences, and a request exported from a
//! running gateway passes as recorded.

use crate::common::{route, Reply, Sink, TestGateway, API_KEY};
use std::path::{Path, PathBuf};
use std::process::Output;

const BINARY: &str = env!("CARGO_BIN_EXE_hookgate");

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// `hookgate test --config CONFIG PATHS…`: whether it passed, and its table.
async fn hookgate_test(config: &Path, paths: &[&Path]) -> (bool, String) {
    let output = tokio::process::Command::new(BINARY)
        .arg("test")
        .arg("--config")
        .arg(config)
        .args(paths)
        .output()
        .await
        .unwrap();
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success() || output.status.code() == Some(1),
        "hookgate test crashed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), table)
}

/// The repo's tests/rules/ case `name`, its expectation changed by `edit`, in `dir`.
fn edited_case(dir: &Path, name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let text = std::fs::read_to_string(repo("tests/rules").join(name)).unwrap();
    let mut case: serde_json::Value = serde_json::from_str(&text).unwrap();
    edit(&mut case);
    let path = dir.join(name);
    std::fs::write(&path, case.to_string()).unwrap();
    path
}

#[tokio::test]
async fn the_repos_rules_pass_their_recorded_requests() {
    let (passed, table) = hookgate_test(&repo("gateway.toml"), &[]).await;
    assert!(passed, "{table}");
    let files = std::fs::read_dir(repo("tests/rules")).unwrap().count();
    assert!(
        table.contains(&format!("{files} of {files} recorded requests passed")),
        "{table}"
    );
    // Every connection of gateway.toml is covered, each rule outcome shown.
    for shown in [
        "shop-to-orders",
        "stripe-to-billing",
        "shopify-to-orders",
        "ignored FILTERED",
        "ignored DEDUPLICATED",
        "ignored TRANSFORMATION_FAILED",
        "rejected UNSUPPORTED_HTTP_METHOD",
    ] {
        assert!(table.contains(shown), "{shown} missing:\n{table}");
    }
}

#[tokio::test]
async fn a_wrong_expectation_fails_with_the_differences() {
    let dir = tempfile::tempdir().unwrap();
    let wrong_header = edited_case(dir.path(), "stripe-invoice-paid-live.json", |case| {
        case["expect"]["connections"]["stripe-to-billing"]["delivered"]["headers"]
            ["x-stripe-mode"] = "test".into();
    });
    let wrong_outcome = edited_case(dir.path(), "stripe-customer-created.json", |case| {
        case["expect"]["connections"]["stripe-to-billing"] = serde_json::json!({"delivered": {}});
    });
    let (passed, table) =
        hookgate_test(&repo("gateway.toml"), &[&wrong_header, &wrong_outcome]).await;
    assert!(!passed, "{table}");
    assert!(table.contains("0 of 2 recorded requests passed"), "{table}");
    let header_diff = "  at connections.stripe-to-billing.delivered.headers.x-stripe-mode\n  - \"test\"\n  + \"live\"";
    assert!(table.contains(header_diff), "{table}");
    let outcome_diff = "  at connections.stripe-to-billing.delivered\n  - {}\n  + (absent)\n  at connections.stripe-to-billing.ignored\n  - (absent)\n  + \"FILTERED\"";
    assert!(table.contains(outcome_diff), "{table}");
    assert_eq!(table.matches("FAIL").count(), 2, "{table}");
}

#[tokio::test]
async fn an_expected_connection_the_source_lacks_fails() {
    let dir = tempfile::tempdir().unwrap();
    let case = edited_case(dir.path(), "shop-order-updated.json", |case| {
        case["expect"]["connections"]["shop-to-archive"] =
            serde_json::json!({"ignored": "FILTERED"});
    });
    let (passed, table) = hookgate_test(&repo("gateway.toml"), &[&case]).await;
    assert!(!passed, "{table}");
    assert!(
        table.contains("shop-to-archive  not a connection of the source"),
        "{table}"
    );
}

#[tokio::test]
async fn a_run_without_recorded_requests_fails() {
    let empty = tempfile::tempdir().unwrap();
    let (passed, table) = hookgate_test(&repo("gateway.toml"), &[empty.path()]).await;
    assert!(!passed && table.is_empty(), "{table}");
}

#[tokio::test]
async fn a_duplicate_is_ignored_only_after_its_original_in_the_same_run() {
    let resent = repo("tests/rules/shopify-order-create-resent.json");
    let (passed, table) = hookgate_test(&repo("gateway.toml"), &[&resent]).await;
    // Alone, nothing was seen before it: delivered, not the DEDUPLICATED it expects.
    assert!(!passed, "{table}");
    assert!(table.contains("shopify-to-orders  delivered"), "{table}");
    let original = repo("tests/rules/shopify-order-create.json");
    // Named in either order: requests run in the order they arrived.
    let (passed, table) = hookgate_test(&repo("gateway.toml"), &[&resent, &original]).await;
    assert!(passed, "{table}");
}

/// A source verified as Stripe signs (fixtures/stripe), and its signed sample.
fn stripe_verified(dir: &Path) -> (PathBuf, serde_json::Value) {
    let verification = std::fs::read_to_string(repo("fixtures/stripe/config.toml")).unwrap();
    let config = format!(
        "[[sources]]\nname = \"stripe\"\n{}\n[[destinations]]\nname = \"billing\"\nurl = \"http://127.0.0.1:9/\"\n[[connections]]\nname = \"stripe-to-billing\"\nsource = \"stripe\"\ndestination = \"billing\"\n",
        verification.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n")
    );
    let path = crate::common::write_config(dir, &config);
    let sample: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo("fixtures/stripe/request.json")).unwrap(),
    )
    .unwrap();
    (path, sample)
}

#[tokio::test]
async fn verification_runs_at_the_recorded_arrival_time() {
    let dir = tempfile::tempdir().unwrap();
    let (config, sample) = stripe_verified(dir.path());
    // Signed at 12:00:00; Stripe's tolerance is 300 s.
    let case = |received_at: &str, expect: serde_json::Value| {
        serde_json::json!({
            "source": "stripe",
            "received_at": received_at,
            "request": {"method": "POST", "headers": sample["headers"], "body": sample["body"]},
            "expect": expect,
        })
    };
    let in_time = case(
        "2024-05-01T12:01:00Z",
        serde_json::json!({"connections": {"stripe-to-billing": {"delivered": {"headers": {"x-hookdeck-verified": "true"}}}}}),
    );
    let stale = case(
        "2024-05-01T12:10:00Z",
        serde_json::json!({"rejected": "VERIFICATION_FAILED"}),
    );
    let cases = dir.path().join("cases");
    std::fs::create_dir(&cases).unwrap();
    std::fs::write(cases.join("in-time.json"), in_time.to_string()).unwrap();
    std::fs::write(cases.join("stale.json"), stale.to_string()).unwrap();
    let (passed, table) = hookgate_test(&config, &[&cases]).await;
    assert!(passed, "{table}");
    assert!(table.contains("rejected VERIFICATION_FAILED"), "{table}");
}

#[tokio::test]
async fn delays_and_unsafe_paths_are_judged_as_the_gateway_does() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::common::write_config(
        dir.path(),
        &format!(
            "[[sources]]\nname = \"app\"\n{}",
            route(
                "app",
                "dest",
                "http://127.0.0.1:9/",
                r#"rules = [ { type = "delay", delay = 60000 } ]"#
            )
        ),
    );
    let case = |path: &str, expect: serde_json::Value| serde_json::json!({"source": "app", "request": {"path": path, "body": "{}"}, "expect": expect});
    let delayed = |ms: u64| serde_json::json!({"connections": {"app-to-dest": {"delivered": {"delay_ms": ms}}}});
    let files = [
        ("delayed.json", case("/in", delayed(60_000))),
        (
            "unsafe.json",
            case(
                "/a/%2e%2e/admin",
                serde_json::json!({"rejected": "UNSAFE_PATH"}),
            ),
        ),
        ("wrong-delay.json", case("/in", delayed(1_000))),
    ];
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|(name, case)| {
            let path = dir.path().join(name);
            std::fs::write(&path, case.to_string()).unwrap();
            path
        })
        .collect();
    let (passed, table) = hookgate_test(&config, &[&paths[0], &paths[1]]).await;
    assert!(passed, "{table}");
    let (passed, table) = hookgate_test(&config, &[&paths[2]]).await;
    assert!(!passed, "{table}");
    assert!(
        table.contains("delivered.delay_ms\n  - 1000\n  + 60000"),
        "{table}"
    );
}

async fn export(gw: &TestGateway, request_id: &str) -> Output {
    let api = format!("http://{}", gw.gateway.api_addr.unwrap());
    tokio::process::Command::new(BINARY)
        .args([
            "requests", "export", request_id, "--api", &api, "--key", API_KEY,
        ])
        .output()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn exported_requests_pass_as_recorded() {
    let sink = Sink::start(Reply::Status(200)).await;
    let rules = r#"rules = [
  { type = "filter", body = { kind = { "$neq" = "noise" } } },
  { type = "deduplicate", window = 600000, include_fields = ["body.id"] },
  { type = "transform", transformation = { name = "tag", code = "addHandler('transform', (r) => { r.headers['x-tag'] = 'seen-' + r.body.id; r.body.tagged = true; return r; })" } },
]"#;
    let config = format!(
        "[[sources]]\nname = \"app\"\n{}",
        route("app", "dest", &sink.url("/"), rules)
    );
    let gw = TestGateway::start(&config).await;
    let mut ids = Vec::new();
    for body in [
        r#"{"id": 1, "kind": "order"}"#,
        r#"{"id": 2, "kind": "noise"}"#,
        r#"{"id": 1, "kind": "order"}"#,
    ] {
        let (status, answer) = gw.post("/e/app/in?x=1", body).await;
        assert_eq!(status, 200, "{answer}");
        let id = answer["request_id"].as_str().unwrap().to_string();
        gw.wait_routed(&id).await;
        ids.push(id);
    }
    let cases = gw.dir.path().join("cases");
    let exported = export_all(&gw, &ids, &cases).await;
    // What happened is the expectation: delivered (transformed), filtered, a duplicate.
    let outcome = |n: usize| exported[n]["expect"]["connections"]["app-to-dest"].clone();
    assert_eq!(outcome(0)["delivered"]["headers"]["x-tag"], "seen-1");
    assert_eq!(
        outcome(0)["delivered"]["body"],
        serde_json::json!({"id": 1, "kind": "order", "tagged": true})
    );
    assert_eq!(outcome(1), serde_json::json!({"ignored": "FILTERED"}));
    assert_eq!(outcome(2), serde_json::json!({"ignored": "DEDUPLICATED"}));
    assert_eq!(
        (
            exported[0]["request"]["path"].as_str(),
            exported[0]["request"]["query"].as_str()
        ),
        (Some("/in"), Some("x=1"))
    );
    let config_file = gw.dir.path().join("gateway.toml");
    let (passed, table) = hookgate_test(&config_file, &[&cases]).await;
    assert!(passed, "{table}");
    assert!(table.contains("3 of 3 recorded requests passed"), "{table}");
}

#[tokio::test]
async fn export_names_an_unknown_request() {
    let gw = TestGateway::start("").await;
    let output = export(&gw, "req_unknown").await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("404"), "{stderr}");
}

/// Exports `ids` from `gw` into `dir`, one file each, and returns them.
async fn export_all(gw: &TestGateway, ids: &[String], dir: &Path) -> Vec<serde_json::Value> {
    std::fs::create_dir_all(dir).unwrap();
    let mut exported = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let output = export(gw, id).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        std::fs::write(dir.join(format!("{n}.json")), &output.stdout).unwrap();
        exported.push(serde_json::from_slice(&output.stdout).unwrap());
    }
    exported
}

/// A request the ingress refuses replays to the same cause under `hookgate
/// test`: both run the source's one check (`Source::admit_head`, then its
/// `verify`), so a request failing several checks is refused for the first
/// in both. An accepted one keeps what the file needs: a body that is not
/// UTF-8 (in base64), its delay, and no copy of the source's API key.
#[tokio::test(flavor = "multi_thread")]
async fn exported_requests_replay_as_the_ingress_judged_them() {
    let sink = Sink::start(Reply::Status(200)).await;
    let config = format!(
        "[[sources]]\nname = \"app\"\nallowed_http_methods = [\"POST\"]\nverification = {{ type = \"api_key\", header_key = \"x-app-key\", api_key = \"key-0123456789abcdef\" }}\n{}",
        route(
            "app",
            "dest",
            &sink.url("/"),
            r#"rules = [ { type = "delay", delay = 60000 } ]"#
        )
    );
    let gw = TestGateway::start(&config).await;
    let binary_body: &[u8] = &[0xff, 0x00, b'{'];
    let sent = [
        // Unsafe path, wrong method and no key: the path is checked first.
        (
            reqwest::Method::GET,
            "/e/app/a/%252e%252e/x",
            None,
            b"" as &[u8],
        ),
        // Wrong method and no key: the method before the key.
        (reqwest::Method::GET, "/e/app/in", None, b""),
        (reqwest::Method::POST, "/e/app/in", None, b"{}"),
        (
            reqwest::Method::POST,
            "/e/app/in",
            Some("key-0123456789abcdef"),
            binary_body,
        ),
    ];
    let mut ids = Vec::new();
    for (method, path, key, body) in sent {
        let mut request = gw.http.request(method, gw.url(path)).body(body.to_vec());
        if let Some(key) = key {
            request = request.header("x-app-key", key);
        }
        let answer: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
        ids.push(answer["request_id"].as_str().unwrap().to_string());
    }
    gw.wait_routed(&ids[3]).await;
    let cases = gw.dir.path().join("cases");
    let exported = export_all(&gw, &ids, &cases).await;
    let causes: Vec<_> = exported[..3]
        .iter()
        .map(|case| case["expect"]["rejected"].as_str().unwrap())
        .collect();
    assert_eq!(
        causes,
        [
            "UNSAFE_PATH",
            "UNSUPPORTED_HTTP_METHOD",
            "VERIFICATION_FAILED"
        ]
    );
    let accepted = &exported[3];
    assert_eq!(accepted["request"]["body_base64"], "/wB7");
    assert_eq!(accepted["request"]["credential_from_config"], true);
    assert!(
        !accepted.to_string().contains("key-0123456789abcdef"),
        "{accepted}"
    );
    let delivered = &accepted["expect"]["connections"]["app-to-dest"]["delivered"];
    assert_eq!(delivered["delay_ms"], 60_000);
    let config_file = gw.dir.path().join("gateway.toml");
    let (passed, table) = hookgate_test(&config_file, &[&cases]).await;
    assert!(passed, "{table}");
    assert!(table.contains("4 of 4 recorded requests passed"), "{table}");
}

//! Filters as Hookdeck users bring them: `null` written in gateway.toml and
//! rules files, filters created through the API kept exactly as sent, and
//! filters the reference accepts but that never match loading with a warning.

use crate::common::{config_text, route, Reply, Sink, TestGateway};
use crate::rules::ignored;
use reqwest::Method;
use std::process::Command;

/// `{"status": {"$eq": null}}` and `{"tags": ["refunded", null]}`, as TOML.
const NULL_FILTERS: &str = r#"{ type = "filter", body = { status = { "$eq" = { "$null" = true } }, tags = ["refunded", { "$null" = true }] } }"#;

#[tokio::test(flavor = "multi_thread")]
async fn null_is_written_as_a_marker_in_gateway_toml_and_rules_files() {
    let sink = Sink::start(Reply::Status(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let rules_file = dir.path().join("null.toml");
    std::fs::write(&rules_file, format!("rules = [{NULL_FILTERS}]\n")).unwrap();
    let config = format!(
        "[[sources]]\nname = \"inline\"\n[[sources]]\nname = \"filed\"\n{}{}",
        route(
            "inline",
            "a",
            &sink.url("/inline"),
            &format!("rules = [{NULL_FILTERS}]")
        ),
        route(
            "filed",
            "b",
            &sink.url("/filed"),
            &format!("rules_file = \"{}\"", rules_file.display())
        ),
    );
    let gw = TestGateway::start(&config).await;
    for source in ["/e/inline", "/e/filed"] {
        gw.post(source, r#"{"status": "paid", "tags": ["refunded", null]}"#)
            .await;
        // Without the null in the list, `["refunded"]` would match.
        gw.post(source, r#"{"status": null, "tags": ["refunded"]}"#)
            .await;
        gw.post(
            source,
            r#"{"status": null, "tags": ["refunded", null], "n": 1}"#,
        )
        .await;
    }
    let delivered = sink.wait_for(2).await;
    assert!(delivered.iter().all(|r| r.body.ends_with(br#""n": 1}"#)));
    assert_eq!(ignored(&gw).len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_filter_created_through_the_api_reads_back_byte_for_byte_and_keeps_its_nulls() {
    let sink = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start("[[sources]]\nname = \"shop\"\n").await;
    // Keys out of order, nulls, a float written with a fraction, a `$`-key.
    let filter = r#"{"tags":["refunded",null],"status":{"$eq":null},"amount":{"$gte":1.0},"$or":[{"z":null},{"a":{"$exist":true}}]}"#;
    let connection = format!(
        r#"{{"name":"kept","source":"shop","destination":{{"name":"kept-sink","url":"{}"}},"rules":[{{"type":"filter","body":{filter}}}]}}"#,
        sink.url("/kept")
    );
    let made = gw
        .api(Method::POST, "/connections")
        .header("content-type", "application/json")
        .body(connection)
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 200, "{}", made.text().await.unwrap());
    let made: serde_json::Value = made.json().await.unwrap();
    let id = made["id"].as_str().unwrap().to_string();
    let read_back = |gw: &TestGateway| {
        let request = gw.api(Method::GET, &format!("/connections/{id}"));
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let text = read_back(&gw).await;
    assert!(
        text.contains(&format!(r#""body":{filter}"#)),
        "read back: {text}"
    );

    gw.post(
        "/e/shop",
        r#"{"tags":["refunded"],"status":null,"amount":2,"a":1}"#,
    )
    .await;
    gw.post(
        "/e/shop",
        r#"{"tags":["refunded",null],"status":null,"amount":2,"a":1}"#,
    )
    .await;
    let delivered = sink.wait_for(1).await;
    assert!(delivered[0]
        .body
        .starts_with(br#"{"tags":["refunded",null]"#));
    assert_eq!(ignored(&gw).len(), 1);

    let gw = gw.restart("[[sources]]\nname = \"shop\"\n").await;
    let text = read_back(&gw).await;
    assert!(
        text.contains(&format!(r#""body":{filter}"#)),
        "after a restart: {text}"
    );
}

#[test]
fn check_warns_about_filters_that_never_match_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let rules = r#"rules = [ { type = "filter", body = { amount = { "$gt" = [1, 2] }, paid = { "$exist" = "true" } } } ]"#;
    let text = config_text(&format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route("shop", "d", "http://127.0.0.1:9/", rules)
    ));
    let line = 1 + text
        .lines()
        .position(|l| l.starts_with("rules = "))
        .unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let warnings = String::from_utf8(output.stderr).unwrap();
    for key in ["body.amount.$gt", "body.paid.$exist"] {
        let expected = format!(
            "{}:{line}:11: connections[0].rules[0].{key}: ",
            path.display()
        );
        assert!(warnings.contains(&expected), "{expected} in:\n{warnings}");
    }
    assert!(String::from_utf8(output.stdout).unwrap().contains(": ok"));
}

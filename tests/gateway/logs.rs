//! `hookgate serve`'s log: JSON lines with the ids of what they are about,
//! and never a configured secret nor a request body.

use crate::common::{config_text_with, route, Reply, Sink, API_KEY, SIGNING_SECRET};
use hookgate::config::LogFormat;
use serde_json::Value;
use std::io::Read;
use std::process::{Command, Stdio};

const SOURCE_SECRET: &str = "source-api-key-4f1c";
const TRANSFORM_SECRET: &str = "transform-env-token-9a2e";
const BODY_MARKER: &str = "body-marker-77d3";

#[tokio::test(flavor = "multi_thread")]
async fn a_json_log_names_ids_and_holds_no_secret_nor_body() {
    let sink = Sink::start(Reply::Status(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let transform = format!(
        r#"rules = [ {{ type = "transform", transformation = {{ name = "tag", env = {{ TOKEN = "{TRANSFORM_SECRET}" }}, code = "addHandler('transform', (r) => {{ console.log('seen'); return r; }})" }} }} ]"#
    );
    let rest = format!(
        "[[sources]]\nname = \"shop\"\nverification = {{ type = \"api_key\", header_key = \"x-key\", api_key = \"{SOURCE_SECRET}\" }}\n{}",
        route("shop", "orders", &sink.url("/"), &transform)
    );
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, config_text_with("", &rest)).unwrap();
    // `--log-format` alone turns JSON on: the file says nothing of it.
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["serve", "--log-format", "json", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info,hookgate=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut log = String::new();
        stderr.read_to_string(&mut log).unwrap();
        log
    });
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let ingress = line.trim().rsplit(' ').next().unwrap().to_string();

    let http = reqwest::Client::new();
    let body = format!("{{\"order\":\"{BODY_MARKER}\"}}");
    let send = |key: &str| {
        http.post(format!("http://{ingress}/e/shop"))
            .header("x-key", key)
            .body(body.clone())
            .send()
    };
    assert_eq!(send(SOURCE_SECRET).await.unwrap().status(), 200);
    // A request that fails verification is logged about too, if at all, without its key.
    assert_eq!(send("wrong-key").await.unwrap().status().as_u16(), 401);
    sink.wait_for(1).await;
    let pid = child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
    let log = log.join().unwrap();

    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let attempt = lines
        .iter()
        .find(|line| line["message"] == "delivery attempt")
        .expect("the delivery attempt is logged");
    for field in ["request_id", "event_id", "destination", "attempt"] {
        assert!(!attempt[field].is_null(), "{field} in {attempt}");
    }
    let accepted = lines
        .iter()
        .find(|line| line["message"] == "request accepted")
        .expect("the accepted request is logged");
    assert_eq!(accepted["source"], "shop");
    assert_eq!(accepted["request_id"], attempt["request_id"]);
    for secret in [
        SOURCE_SECRET,
        TRANSFORM_SECRET,
        API_KEY,
        SIGNING_SECRET,
        BODY_MARKER,
    ] {
        assert!(!log.contains(secret), "the log holds {secret}:\n{log}");
    }
}

#[test]
fn the_log_format_is_text_unless_the_file_says_json() {
    let path = std::path::Path::new("/nonexistent-hookgate-config/gateway.toml");
    let parsed = |format: &str| {
        hookgate::Config::parse(path, &format!("[server]\nlog_format = \"{format}\"\n"))
    };
    let format = |text: &str| {
        hookgate::Config::parse(path, text)
            .unwrap()
            .server
            .log_format
    };
    assert_eq!(format(""), LogFormat::Text);
    assert_eq!(format("[server]\nlog_format = \"json\""), LogFormat::Json);
    let errors = parsed("xml").unwrap_err().to_string();
    assert!(
        errors.contains("gateway.toml:2") && errors.contains("text") && errors.contains("json"),
        "{errors}"
    );
}

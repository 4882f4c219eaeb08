//! `hookgate serve`'s log: JSON lines with the ids of what they are about,
//! and never a configured secret nor a request body.

use crate::common::{config_text_with, route, Reply, Sink, API_KEY, SIGNING_SECRET};
use hookgate::config::LogFormat;
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

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
    let serving = Serving::start(&config, &[]);
    let http = reqwest::Client::new();
    let body = format!("{{\"order\":\"{BODY_MARKER}\"}}");
    let send = |key: &str| {
        http.post(serving.url("/e/shop"))
            .header("x-key", key)
            .body(body.clone())
            .send()
    };
    assert_eq!(send(SOURCE_SECRET).await.unwrap().status(), 200);
    // A request that fails verification is logged about too, if at all, without its key.
    assert_eq!(send("wrong-key").await.unwrap().status().as_u16(), 401);
    sink.wait_for(1).await;
    let log = serving.stop();

    let lines = json_lines(&log);
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

/// `hookgate serve --log-format json` on a config file, its log (stderr) read
/// as it runs.
struct Serving {
    child: Child,
    /// Kept open: the gateway prints to it.
    _stdout: std::io::BufReader<ChildStdout>,
    ingress: String,
    log: std::thread::JoinHandle<String>,
}

impl Serving {
    /// Starts it with `env` added; returns once the ingress listens.
    fn start(config: &Path, env: &[(&str, &str)]) -> Serving {
        // `--log-format` alone turns JSON on: the file says nothing of it.
        let mut child = Command::new(env!("CARGO_BIN_EXE_hookgate"))
            .args(["serve", "--log-format", "json", "--config"])
            .arg(config)
            .env("RUST_LOG", "info,hookgate=debug")
            .envs(env.iter().copied())
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
        Serving {
            child,
            _stdout: stdout,
            ingress,
            log,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.ingress)
    }

    /// Stops it with SIGTERM; its whole log.
    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        let log = self.log.join().unwrap();
        assert!(exit.success(), "{exit}: {log}");
        log
    }
}

fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
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

const COLLECTOR_PASSWORD: &str = "collector-password-3b8c";

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_otlp_export_is_logged_once_without_the_collectors_password() {
    let sink = Sink::start(Reply::Status(200)).await;
    // A port nothing listens on: bound, then let go.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let rest = format!(
        "[telemetry]\notlp_endpoint = \"http://hookgate:{COLLECTOR_PASSWORD}@{closed}\"\n[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &sink.url("/"), "")
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, config_text_with("", &rest)).unwrap();
    // Every span is a batch of its own: each is a failed export.
    let serving = Serving::start(&config, &[("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1")]);
    let http = reqwest::Client::new();
    for sent in 1..=3 {
        let answer = http.post(serving.url("/e/shop")).body("{}").send();
        assert_eq!(answer.await.unwrap().status(), 200);
        sink.wait_for(sent).await;
    }
    let log = serving.stop();

    let failures: Vec<Value> = json_lines(&log)
        .into_iter()
        .filter(|line| line["level"] == "WARN" || line["level"] == "ERROR")
        .filter(|line| line.to_string().to_lowercase().contains("export"))
        .collect();
    assert_eq!(failures.len(), 1, "logged once, not per span: {log}");
    let message = failures[0]["message"].as_str().unwrap();
    assert!(message.contains("OTLP endpoint"), "{message}");
    assert!(!log.contains(COLLECTOR_PASSWORD), "{log}");
}

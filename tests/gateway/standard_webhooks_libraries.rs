//! Real deliveries verified by the Standard Webhooks reference libraries
//! (`standardwebhooks` on PyPI and npm), run as child processes on what a
//! real sink received: what a receiver following the references would do.
//! CI installs them (`.ci/run`); without them these tests fail and say how
//! to install them.

use crate::common::{Received, Reply, Sink};
use crate::outbound::{endpoint, gateway, send_job};
use reqwest::Method;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// How each library is run, and how to install it when it is missing.
const VERIFIERS: [(&str, &str, &str); 2] = [
    (
        "python3",
        "verify.py",
        "pip install -r tests/standardwebhooks/requirements.txt",
    ),
    (
        "node",
        "verify.mjs",
        "npm ci --prefix tests/standardwebhooks",
    ),
];

fn scripts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/standardwebhooks")
}

/// What one library says of `received` (headers and raw body) with `secret`:
/// `Ok` when it verifies, `Err(its reason)` when it refuses. Panics, saying
/// how to install it, when the library or its runtime is missing.
fn verdict(
    program: &str,
    script: &str,
    install: &str,
    secret: &str,
    received: &Received,
) -> Result<(), String> {
    let header = |name| {
        received
            .header(name)
            .unwrap_or_else(|| panic!("no {name} header"))
    };
    let mut child = Command::new(program)
        .arg(scripts().join(script))
        .args([
            secret,
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
        ])
        .current_dir(scripts())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}); install it, then: {install}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&received.body)
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&output.stdout).trim().to_string();
    match output.status.code() {
        Some(0) => Ok(()),
        Some(1) => Err(said),
        _ => panic!(
            "{program} {script} could not check the delivery: {}\nInstall the library: {install}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

fn assert_every_library_verifies(received: &Received, secret: &str) {
    for (program, script, install) in VERIFIERS {
        let result = verdict(program, script, install, secret, received);
        assert_eq!(
            result,
            Ok(()),
            "{program} {script} with {}",
            received.body.len()
        );
    }
}

#[tokio::test]
async fn the_reference_libraries_verify_real_deliveries_and_refuse_tampered_ones() {
    let gw = gateway("").await;
    let sink = Sink::start(Reply::Status(200)).await;
    let app = crate::outbound::application(&gw, "production").await;
    let created = endpoint(&gw, &app, &sink, json!({})).await;
    let secret = created["secret"].as_str().unwrap().to_string();
    // Non-ASCII text and nesting, so that the raw body is what is signed.
    let payload =
        json!({ "user_id": "usr_xyz789", "name": "Zoë Ångström", "tags": ["a", { "b": null }] });
    let body = json!({ "application_id": app, "event_type": "user.created", "payload": payload });
    let (status, job) = send_job(&gw, body).await;
    assert_eq!(status, 201, "{job}");
    let received = sink.wait_for(1).await.remove(0);
    assert_every_library_verifies(&received, &secret);

    // The libraries do check: another body, or another secret, is refused.
    let mut tampered = received.clone();
    tampered.body = received
        .body
        .iter()
        .copied()
        .rev()
        .collect::<Vec<u8>>()
        .into();
    let other_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    for (program, script, install) in VERIFIERS {
        assert!(
            verdict(program, script, install, &secret, &tampered).is_err(),
            "{program}: tampered body"
        );
        assert!(
            verdict(program, script, install, other_secret, &received).is_err(),
            "{program}: other secret"
        );
    }

    // After a rotation, each library verifies the delivery with either secret.
    let path = format!(
        "/v1/endpoints/{}/rotate-secret",
        created["id"].as_str().unwrap()
    );
    let (status, rotated) = gw.api_send(Method::POST, &path, json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    let body = json!({ "application_id": app, "event_type": "user.updated", "payload": {} });
    assert_eq!(send_job(&gw, body).await.0, 201);
    let second = sink.wait_for(2).await.remove(1);
    assert_every_library_verifies(&second, rotated["secret"].as_str().unwrap());
    assert_every_library_verifies(&second, &secret);
}

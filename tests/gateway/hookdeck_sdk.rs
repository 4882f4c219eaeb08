//! A client written with Hookdeck's official TypeScript SDK (`@hookdeck/sdk`,
//! pinned in tests/hookdeck-sdk) runs a Hookdeck user's flows against the real
//! gateway: configuration, traffic to a real sink, retries, bulk retries,
//! bookmarks, transformations, issue triggers, teardown. Every answer is
//! checked against the SDK's own response schemas (tests/hookdeck-sdk/flows.js).
//! CI installs the SDK (`.ci/run`); without it this test fails and says how.

use crate::common::{Reply, Sink, TestGateway, API_KEY};
use serde_json::Value;
use std::path::PathBuf;

const INSTALL: &str = "npm ci --prefix tests/hookdeck-sdk";

/// What flows.js reports: each step, and why the failed ones failed.
async fn run_flows(gw: &TestGateway, sink_url: &str) -> Vec<Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/hookdeck-sdk");
    assert!(
        dir.join("node_modules/@hookdeck/sdk").exists(),
        "@hookdeck/sdk is not installed; run: {INSTALL}"
    );
    let api = format!("http://{}", gw.gateway.api_addr.unwrap());
    let output = tokio::process::Command::new("node")
        .arg("flows.js")
        .args([api.as_str(), API_KEY, sink_url])
        .current_dir(&dir)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run node ({e}); install Node.js, then: {INSTALL}"));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "flows.js did not report: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    report["steps"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_written_with_hookdecks_sdk_runs_its_flows_unchanged() {
    let sink = Sink::start(Reply::Status(200)).await;
    // The flows poll for their request and event, as a client would; the
    // default 240 calls a minute would slow them, not change them.
    let gw = TestGateway::start_with("api_rate_limit_per_minute = 100000", "").await;
    let steps = run_flows(&gw, &sink.url("/orders")).await;
    let failed: Vec<String> = steps
        .iter()
        .filter(|step| step["ok"] != true)
        .map(|step| format!("{}: {}", step["step"], step["error"]))
        .collect();
    assert!(steps.len() >= 50, "every step reported: {steps:?}");
    assert!(
        failed.is_empty(),
        "{} of {} steps failed:\n{}",
        failed.len(),
        steps.len(),
        failed.join("\n")
    );
    let delivered = sink.wait_for(1).await;
    assert_eq!(delivered[0].path, "/orders");
}

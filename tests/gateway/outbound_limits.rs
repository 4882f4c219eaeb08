//! The jobs API's own budgets (`[outbound] api_calls_per_second_per_key`,
//! `jobs_per_second_per_application`), apart from the management API's.

use crate::common::TestGateway;
use crate::outbound::{application, outbound_section, INSECURE};
use reqwest::{Method, Response};
use serde_json::json;

const JOBS: &str = "/v1/webhook-jobs";

async fn start(server_extra: &str, outbound_extra: &str) -> TestGateway {
    let server = format!("{INSECURE}{server_extra}");
    TestGateway::start_with(&server, &outbound_section(outbound_extra)).await
}

/// Sends a job (no endpoint subscribes, so it is done at once).
async fn post_job(gw: &TestGateway, app: &str) -> Response {
    let body = json!({ "application_id": app, "event_type": "user.created", "payload": {} });
    gw.api(Method::POST, JOBS).json(&body).send().await.unwrap()
}

fn header(response: &Response, name: &str) -> u64 {
    let value = response.headers().get(name);
    let value = value.unwrap_or_else(|| panic!("no {name}: {response:?}"));
    value.to_str().unwrap().parse().unwrap()
}

/// A 429 that says when to come back and where the caller stands.
async fn assert_refused(response: Response, limit: u64, names: &str) {
    assert_eq!(response.status(), 429);
    assert!(header(&response, "retry-after") >= 1);
    assert_eq!(header(&response, "x-ratelimit-limit"), limit);
    assert_eq!(header(&response, "x-ratelimit-remaining"), 0);
    let error: serde_json::Value = response.json().await.unwrap();
    let message = error["message"].as_str().unwrap();
    assert!(message.contains(names), "{message}");
}

#[tokio::test]
async fn sending_jobs_does_not_spend_the_management_budget_nor_the_reverse() {
    let gw = start("api_rate_limit_per_minute = 3\n", "").await;
    let app = application(&gw, "production").await;
    // Far more jobs than the management budget's 3 calls a minute.
    for _ in 0..10 {
        let response = post_job(&gw, &app).await;
        assert_eq!(response.status(), 201);
        assert_eq!(header(&response, "x-ratelimit-limit"), 1000, "the default");
    }
    // The management budget is whole: two calls, then the third is refused.
    for _ in 0..2 {
        assert_eq!(gw.api_get("/v1/applications").await.0, 200);
    }
    let refused = gw
        .api(Method::GET, "/v1/applications")
        .send()
        .await
        .unwrap();
    assert_refused(refused, 3, "per minute").await;
    // ...and jobs still go.
    assert_eq!(post_job(&gw, &app).await.status(), 201);
}

#[tokio::test]
async fn a_key_past_its_jobs_budget_is_told_when_to_come_back() {
    let gw = start("", "api_calls_per_second_per_key = 1").await;
    let app = application(&gw, "production").await;
    let list = || {
        gw.api(Method::GET, JOBS)
            .query(&[("application_id", app.as_str())])
            .send()
    };
    let first = list().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "x-ratelimit-limit"), 1);
    assert_refused(list().await.unwrap(), 1, "of this key").await;
    assert_eq!(
        gw.api_get("/v1/applications").await.0,
        200,
        "the management API is not held by the jobs budget"
    );
}

#[tokio::test]
async fn each_application_has_its_own_jobs_budget() {
    let gw = start("", "jobs_per_second_per_application = 1").await;
    let busy = application(&gw, "busy").await;
    let quiet = application(&gw, "quiet").await;
    assert_eq!(post_job(&gw, &busy).await.status(), 201);
    assert_refused(post_job(&gw, &busy).await, 1, "of this application").await;
    assert_eq!(
        post_job(&gw, &quiet).await.status(),
        201,
        "another application"
    );
    // Listing spends no job budget.
    let listed = gw
        .api(Method::GET, JOBS)
        .query(&[("application_id", busy.as_str())]);
    assert_eq!(listed.send().await.unwrap().status(), 200);
    // An unknown application is a 422, never a budget.
    assert_eq!(post_job(&gw, "app_missing").await.status(), 422);
}

/// Past the router's backlog (`limits.router_backlog_bytes`; one byte here:
/// a job is taken only while no other waits for the router) a job is
/// refused with a 503 that says when to come back, as a budget's 429 does.
#[tokio::test(flavor = "multi_thread")]
async fn a_job_past_the_routers_backlog_is_told_when_to_come_back() {
    let rest = format!(
        "[limits]\nrouter_backlog_bytes = 1\n{}",
        outbound_section("")
    );
    let gw = TestGateway::start_with(INSECURE, &rest).await;
    let app = application(&gw, "production").await;
    // Sent together, until some find another job still waiting for the router.
    for _ in 0..50 {
        let sent = (0..16).map(|_| post_job(&gw, &app));
        let answers = futures_util::future::join_all(sent).await;
        let statuses: Vec<u16> = answers.iter().map(|a| a.status().as_u16()).collect();
        assert!(
            statuses.iter().all(|s| [201, 503].contains(s)),
            "{statuses:?}"
        );
        if let Some(refused) = answers.into_iter().find(|a| a.status() == 503) {
            assert_eq!(header(&refused, "retry-after"), 1);
            let error: serde_json::Value = refused.json().await.unwrap();
            assert_eq!(error["code"], "SERVICE_UNAVAILABLE");
            let message = error["message"].as_str().unwrap();
            assert!(message.contains("router_backlog_bytes"), "{message}");
            return;
        }
    }
    panic!("no job was ever refused");
}

//! Issues: triggers open them from failures, group occurrences, notify a
//! webhook channel, and people move them through their statuses.

use crate::common::{route, Reply, Sink, TestGateway};
use hookgate::model::EventStatus;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn delivery_failures_open_one_issue_per_problem_and_notify_once() {
    let destination = Sink::start(Reply::Status(500)).await;
    let channel = Sink::start(Reply::Status(200)).await;
    let gw = TestGateway::start(&format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &destination.url("/"), "")
    ))
    .await;
    let trigger = json!({ "name": "orders failing", "type": "delivery",
        "configs": { "strategy": "first_attempt", "connections": "*" },
        "channels": { "webhook": { "url": channel.url("/alerts") } } });
    let created = gw
        .api(Method::POST, "/2023-07-01/issue-triggers")
        .json(&trigger)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let trigger: Value = created.json().await.unwrap();

    for _ in 0..2 {
        gw.post("/e/shop", "{}").await;
        gw.wait_event(|e| e.status == EventStatus::Failed && e.attempts == 1)
            .await;
    }
    gw.wait_events(2, |e| e.status == EventStatus::Failed).await;
    let (_, issues) = gw.api_get("/issues?status=OPENED&type=delivery").await;
    assert_eq!(issues["count"], 1, "{issues}");
    let issue = &issues["models"][0];
    assert_eq!(
        (issue["count"].as_u64(), issue["issue_trigger_id"].as_str()),
        (Some(2), trigger["id"].as_str())
    );
    let notification = &channel.wait_for(1).await[0];
    let body: Value = serde_json::from_slice(&notification.body).unwrap();
    assert_eq!(
        (body["topic"].as_str(), body["issue"]["id"].as_str()),
        (Some("issue.opened"), issue["id"].as_str())
    );

    let id = issue["id"].as_str().unwrap();
    let acknowledged = gw
        .api(Method::PUT, &format!("/issues/{id}"))
        .json(&json!({ "status": "ACKNOWLEDGED" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        acknowledged.json::<Value>().await.unwrap()["status"],
        "ACKNOWLEDGED"
    );
    assert_eq!(
        gw.api_get("/issues/count?status=ACKNOWLEDGED").await.1["count"],
        1
    );
    let bad = gw
        .api(Method::PUT, &format!("/issues/{id}"))
        .json(&json!({ "status": "FIXED" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    assert_eq!(
        channel.received().len(),
        1,
        "occurrences of an open issue do not notify again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn transformation_failures_open_issues_and_disabled_triggers_do_not() {
    let sink = Sink::start(Reply::Status(200)).await;
    let throwing = r#"rules = [ { type = "transform", transformation = { name = "t", code = "addHandler('transform', (r) => { throw new Error('bad script'); })" } } ]"#;
    let config = format!(
        "[[sources]]\nname = \"app\"\n{}{}",
        route("app", "broken", &sink.url("/broken"), throwing),
        route("app", "fine", &sink.url("/fine"), "")
    );
    let gw = TestGateway::start(&config).await;
    let trigger: Value = gw
        .api(Method::POST, "/issue-triggers")
        .json(&json!({ "name": "scripts", "type": "transformation" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    gw.post("/e/app", "{}").await;
    sink.wait_for(1).await;
    let (_, issues) = gw.api_get("/issues?type=transformation").await;
    assert_eq!(issues["count"], 1);
    assert!(issues["models"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("bad script"));

    let id = trigger["id"].as_str().unwrap();
    assert_eq!(
        gw.api(Method::PUT, &format!("/issue-triggers/{id}/disable"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let issue_id = issues["models"][0]["id"].as_str().unwrap();
    assert_eq!(gw.api_delete(&format!("/issues/{issue_id}")).await, 200);
    gw.post("/e/app", "{}").await;
    sink.wait_for(2).await;
    let (_, after) = gw
        .api_get("/issues?type=transformation&dismissed_at[any]=true")
        .await;
    assert_eq!(after["count"], 1, "a disabled trigger opens nothing new");
    assert!(after["models"][0]["dismissed_at"].is_string());
}

//! Issue triggers, issues and webhook notifications in the shapes of Hookdeck's
//! `2023-07-01` reference: its examples as contract tests, then the behaviours
//! behind them (log levels, dismissal, reopening, notifications into a source).

use crate::common::{route, Reply, Sink, TestGateway};
use hookgate::ids::named_id;
use hookgate::model::EventStatus;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Fields every issue trigger has, with their JSON types (reference L2552-2600).
fn assert_trigger_shape(trigger: &Value) {
    assert!(trigger["id"].is_string(), "{trigger}");
    assert!(
        trigger["team_id"].as_str().unwrap().starts_with("tm_"),
        "{trigger}"
    );
    assert!(
        trigger["name"].is_string() || trigger["name"].is_null(),
        "{trigger}"
    );
    assert!(
        trigger["type"].is_string() && trigger["configs"].is_object(),
        "{trigger}"
    );
    assert!(
        trigger["channels"].is_object() || trigger["channels"].is_null(),
        "{trigger}"
    );
    for date in ["updated_at", "created_at"] {
        assert!(trigger[date].is_string(), "{date}: {trigger}");
    }
    for nullable in ["disabled_at", "deleted_at"] {
        let value = &trigger[nullable];
        assert!(
            value.is_string() || value.is_null(),
            "{nullable}: {trigger}"
        );
    }
}

fn upsert_again() -> Value {
    json!({ "type": "delivery", "name": "all-connection", "configs": { "strategy": "final_attempt", "connections": "shop-*" } })
}

/// The reference's example body (L2874-2880) and the configs it answers with.
fn reference_trigger() -> Value {
    json!({ "type": "delivery", "configs": { "strategy": "first_attempt", "connections": "*" } })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reference_examples_for_issue_triggers_answer_in_its_shape() {
    let gw = TestGateway::start("[[sources]]\nname = \"shop\"\n").await;
    let (status, created) = gw
        .api_send(
            Method::POST,
            "/2023-07-01/issue-triggers",
            reference_trigger(),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    assert_trigger_shape(&created);
    assert!(
        created["id"].as_str().unwrap().starts_with("it_"),
        "the reference's prefix"
    );
    assert_eq!(
        (&created["type"], &created["configs"], &created["name"]),
        (
            &json!("delivery"),
            &reference_trigger()["configs"],
            &Value::Null
        )
    );
    let id = created["id"].as_str().unwrap();
    let path = format!("/issue-triggers/{id}");
    assert_eq!(gw.api_get(&path).await.1, created);

    // PUT /issue-triggers/:id with the reference's body (L2935), other configs, and POST on the same path.
    let (status, same) = gw.api_send(Method::PUT, &path, reference_trigger()).await;
    assert_eq!(
        (status, &same["configs"]),
        (200, &reference_trigger()["configs"])
    );
    assert_trigger_shape(&same);
    let changed = json!({ "type": "delivery", "configs": { "strategy": "final_attempt", "connections": ["web_a"] } });
    let (status, updated) = gw.api_send(Method::PUT, &path, changed.clone()).await;
    assert_eq!((status, &updated["configs"]), (200, &changed["configs"]));
    assert_trigger_shape(&updated);
    let renamed = json!({ "name": "renamed", "disabled_at": "2024-01-02T03:04:05Z" });
    let (status, posted) = gw.api_send(Method::POST, &path, renamed).await;
    assert_eq!(
        (status, &posted["name"], &posted["disabled_at"]),
        (200, &json!("renamed"), &json!("2024-01-02T03:04:05.000Z"))
    );

    // Enable and disable answer the trigger.
    let (_, enabled) = gw
        .api_send(Method::PUT, &format!("{path}/enable"), json!({}))
        .await;
    assert_trigger_shape(&enabled);
    assert!(enabled["disabled_at"].is_null());
    let (_, disabled) = gw
        .api_send(Method::PUT, &format!("{path}/disable"), json!({}))
        .await;
    assert!(disabled["disabled_at"].is_string(), "{disabled}");

    // PUT /issue-triggers creates by name (L3013), then updates the same trigger.
    let upsert = json!({ "type": "delivery", "name": "all-connection", "configs": { "strategy": "first_attempt", "connections": "*" } });
    let (status, first) = gw.api_send(Method::PUT, "/issue-triggers", upsert).await;
    assert_eq!((status, &first["name"]), (200, &json!("all-connection")));
    assert_trigger_shape(&first);
    let (_, second) = gw
        .api_send(Method::PUT, "/issue-triggers", upsert_again())
        .await;
    assert_eq!(
        (&second["id"], &second["configs"]["connections"]),
        (&first["id"], &json!("shop-*"))
    );
    let email = json!({ "email": {} });
    let with_email = format!("/issue-triggers/{}", first["id"].as_str().unwrap());
    gw.api_send(Method::PUT, &with_email, json!({ "channels": email }))
        .await;
    let (_, third) = gw
        .api_send(Method::PUT, "/issue-triggers", upsert_again())
        .await;
    assert_eq!(third["channels"], email, "channels left out stay");
    let (status, error) = gw
        .api_send(Method::PUT, "/issue-triggers", reference_trigger())
        .await;
    assert_eq!(
        (status, error["data"]["field"].as_str()),
        (422, Some("name"))
    );

    // The list (L2803): pagination, filters, and a 422 for what it does not know.
    let (_, page) = gw.api_get("/2024-03-01/issue-triggers?limit=1").await;
    assert_eq!(
        (
            &page["pagination"]["order_by"],
            &page["pagination"]["dir"],
            &page["pagination"]["limit"],
            page["count"].as_u64()
        ),
        (&json!("created_at"), &json!("desc"), &json!(1), Some(1))
    );
    assert!(page["pagination"]["next"].is_string(), "{page}");
    assert_trigger_shape(&page["models"][0]);
    let count = |query: &'static str| {
        let gw = &gw;
        async move { gw.api_get(&format!("/issue-triggers?{query}")).await.1["count"].clone() }
    };
    assert_eq!(count("name=all-connection").await, 1);
    assert_eq!(count("type=transformation").await, 0);
    assert_eq!(count("type[]=delivery").await, 2);
    assert_eq!(count("disabled_at[any]=true").await, 1);
    assert_eq!(count("disabled_at[gte]=2099-01-01").await, 0);
    let (status, error) = gw.api_get("/issue-triggers?channel=slack").await;
    assert_eq!(
        (status, error["data"]["field"].as_str()),
        (422, Some("channel"))
    );

    // DELETE answers {id} (L3048) and the trigger is gone.
    let response = gw.api(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(response.json::<Value>().await.unwrap(), json!({ "id": id }));
    assert_eq!(gw.api_get(&path).await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_issue_type_takes_its_configs_and_channels_are_kept_as_given() {
    let gw = TestGateway::start("[[sources]]\nname = \"shop\"\n").await;
    let channels = json!({ "slack": { "channel_name": "alerts" }, "opsgenie": {}, "email": {}, "microsoft_teams": { "channel_name": "ops" } });
    let cases = [
        json!({ "type": "transformation", "configs": { "log_level": "warn", "transformations": ["trs_a", "cleanup"] }, "channels": channels }),
        json!({ "type": "backpressure", "configs": { "delay": 60000, "destinations": "*-eu" }, "channels": channels }),
    ];
    for body in cases {
        let (status, created) = gw
            .api_send(Method::POST, "/issue-triggers", body.clone())
            .await;
        assert_eq!(status, 200, "{created}");
        assert_trigger_shape(&created);
        assert_eq!(
            (&created["configs"], &created["channels"]),
            (&body["configs"], &channels)
        );
        // Kept, and said not to be reached: they need Hookdeck's integrations.
        assert_eq!(
            created["unreachable_channels"],
            json!(["slack", "opsgenie", "email", "microsoft_teams"])
        );
    }
    let reached =
        json!({ "type": "delivery", "channels": { "webhook": { "url": "http://127.0.0.1:9/" } } });
    let (_, created) = gw.api_send(Method::POST, "/issue-triggers", reached).await;
    assert_eq!(created["unreachable_channels"], json!([]), "{created}");
    let refused = [
        (
            json!({ "type": "backpressure", "configs": { "delay": 1000, "destinations": "*" } }),
            "configs.delay",
        ),
        (
            json!({ "type": "delivery", "configs": { "log_level": "warn" } }),
            "configs",
        ),
        (
            json!({ "type": "delivery", "configs": { "strategy": "sometimes", "connections": "*" } }),
            "configs",
        ),
        (
            json!({ "type": "delivery", "configs": { "strategy": "first_attempt", "connections": [] } }),
            "configs.connections",
        ),
        (
            json!({ "type": "delivery", "channels": { "pager": {} } }),
            "body",
        ),
        (
            json!({ "type": "delivery", "channels": { "webhook": { "url": "ftp://x/" } } }),
            "channels.webhook.url",
        ),
    ];
    for (body, field) in refused {
        let (status, error) = gw
            .api_send(Method::POST, "/issue-triggers", body.clone())
            .await;
        assert_eq!(
            (status, error["data"]["field"].as_str()),
            (422, Some(field)),
            "{body}: {error}"
        );
    }
    let named = json!({ "type": "delivery", "name": "unique" });
    assert_eq!(
        gw.api_send(Method::POST, "/issue-triggers", named.clone())
            .await
            .0,
        200
    );
    assert_eq!(
        gw.api_send(Method::POST, "/issue-triggers", named).await.0,
        409
    );
}

/// Fields every issue has in lists, with their JSON types (reference L5700-5760).
fn assert_issue_shape(issue: &Value) {
    assert!(issue["id"].as_str().unwrap().starts_with("iss_"), "{issue}");
    assert!(
        issue["team_id"].as_str().unwrap().starts_with("tm_"),
        "{issue}"
    );
    for text in [
        "type",
        "status",
        "opened_at",
        "first_seen_at",
        "last_seen_at",
        "updated_at",
        "created_at",
    ] {
        assert!(issue[text].is_string(), "{text}: {issue}");
    }
    for nullable in ["last_updated_by", "merged_with", "dismissed_at"] {
        let value = &issue[nullable];
        assert!(value.is_null() || value.is_string(), "{nullable}: {issue}");
    }
    assert!(
        issue["aggregation_keys"].is_object() && issue["reference"].is_object(),
        "{issue}"
    );
}

/// Polls the API until `done` holds for the answer at `path`.
async fn api_until(gw: &TestGateway, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, answer) = gw.api_get(path).await;
        if done(&answer) {
            return answer;
        }
        assert!(Instant::now() < deadline, "{path}: {answer}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_issue_answers_in_the_reference_shape_and_dismissed_issues_leave_lists() {
    let destination = Sink::start(Reply::Status(500)).await;
    let gw = TestGateway::start(&format!(
        "[[sources]]\nname = \"shop\"\n{}",
        route("shop", "orders", &destination.url("/"), "")
    ))
    .await;
    let (_, trigger) = gw
        .api_send(Method::POST, "/issue-triggers", reference_trigger())
        .await;
    gw.post("/e/shop", "{\"n\":1}").await;
    let event = gw.wait_event(|e| e.status == EventStatus::Failed).await;
    let (_, listed) = gw.api_get("/issues").await;
    assert_eq!(listed["count"], 1, "{listed}");
    let issue = &listed["models"][0];
    assert_issue_shape(issue);
    assert!(
        issue.get("data").is_none(),
        "lists leave data out, as the reference's list does"
    );
    assert_eq!(
        (
            &issue["type"],
            &issue["status"],
            &issue["aggregation_keys"],
            &issue["reference"]["event_id"]
        ),
        (
            &json!("delivery"),
            &json!("OPENED"),
            &json!({ "webhook_id": [event.connection_id], "response_status": [500], "error_code": [] }),
            &json!(event.id)
        )
    );
    let id = issue["id"].as_str().unwrap();
    let path = format!("/issues/{id}");
    let (_, one) = gw.api_get(&path).await;
    assert_issue_shape(&one);
    let (trigger_event, trigger_attempt) = (
        &one["data"]["trigger_event"],
        &one["data"]["trigger_attempt"],
    );
    assert_eq!(
        (
            &trigger_event["id"],
            &trigger_attempt["id"],
            &trigger_attempt["response_status"]
        ),
        (
            &json!(event.id),
            &one["reference"]["attempt_id"],
            &json!(500)
        )
    );

    // Filters, each one narrowing to nothing where it should.
    let count = |query: String| {
        let gw = &gw;
        async move { gw.api_get(&format!("/issues?{query}")).await.1["count"].clone() }
    };
    let trigger_id = trigger["id"].as_str().unwrap();
    let keys = |keys: Value| format!("aggregation_keys={}", urlencoding(&keys.to_string()));
    assert_eq!(count(keys(json!({ "response_status": [500] }))).await, 1);
    assert_eq!(count(keys(json!({ "response_status": 404 }))).await, 0);
    assert_eq!(
        count(format!("issue_trigger_id={trigger_id}&id[]={id}")).await,
        1
    );
    assert_eq!(count("status=RESOLVED".into()).await, 0);
    assert_eq!(count("created_at[gte]=2099-01-01".into()).await, 0);
    assert_eq!(
        count("last_seen_at[lte]=2099-01-01&first_seen_at[gte]=2000-01-01".into()).await,
        1
    );
    assert_eq!(count("merged_with=iss_other".into()).await, 0);
    let (_, page) = gw
        .api_get("/issues?order_by=last_seen_at&dir=asc&limit=5")
        .await;
    assert_eq!(
        page["pagination"],
        json!({ "order_by": "last_seen_at", "dir": "asc", "limit": 5 })
    );
    assert_eq!(gw.api_get("/issues?severity=high").await.0, 422);

    // PUT answers the issue (L6237).
    let (status, resolved) = gw
        .api_send(Method::PUT, &path, json!({ "status": "RESOLVED" }))
        .await;
    assert_eq!((status, &resolved["status"]), (200, &json!("RESOLVED")));
    assert!(resolved["data"]["trigger_event"].is_object(), "{resolved}");

    // Dismissed issues leave lists and counts (L5868, L6010) unless dismissed_at asks.
    let (status, dismissed) = gw.api_send(Method::DELETE, &path, json!(null)).await;
    assert_eq!(status, 200);
    assert!(dismissed["dismissed_at"].is_string(), "{dismissed}");
    assert_issue_shape(&dismissed);
    assert!(
        dismissed["data"]["trigger_attempt"].is_object(),
        "{dismissed}"
    );
    assert_eq!(gw.api_get("/issues").await.1["count"], 0);
    assert_eq!(gw.api_get("/issues/count").await.1, json!({ "count": 0 }));
    assert_eq!(
        gw.api_get("/issues?dismissed_at[any]=true").await.1["count"],
        1
    );
    assert_eq!(
        gw.api_get("/issues/count?dismissed_at[gte]=2000-01-01")
            .await
            .1["count"],
        1
    );

    // It recurs: the same issue opens again, out of dismissal.
    gw.post("/e/shop", "{\"n\":2}").await;
    let reopened = api_until(&gw, "/issues", |a| a["count"] == 1).await;
    let reopened = &reopened["models"][0];
    assert_eq!(
        (
            &reopened["id"],
            &reopened["status"],
            &reopened["dismissed_at"],
            &reopened["count"]
        ),
        (&json!(id), &json!("OPENED"), &Value::Null, &json!(2))
    );

    // Deleting the trigger deletes its issues (L3034).
    let trigger_path = format!("/issue-triggers/{trigger_id}");
    assert_eq!(gw.api_delete(&trigger_path).await, 200);
    assert_eq!(gw.api_get(&path).await.0, 404);
}

fn urlencoding(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn transformation_issues_open_when_a_run_logs_at_the_trigger_level_or_fails() {
    let sink = Sink::start(Reply::Status(200)).await;
    let code = "addHandler('transform', (r) => { const l = r.body.level; if (l === 'fail') throw new Error('broken script'); if (l === 'info') console.log('fine'); if (l === 'warn') console.warn('careful'); return r; })";
    let rules = format!(
        "rules = [ {{ type = \"transform\", transformation = {{ name = \"shaper\", code = \"{code}\" }} }} ]"
    );
    let gw = TestGateway::start(&format!(
        "[[sources]]\nname = \"app\"\n{}",
        route("app", "d", &sink.url("/"), &rules)
    ))
    .await;
    let warn = json!({ "type": "transformation", "configs": { "log_level": "warn", "transformations": "shap*" } });
    let (_, warn) = gw.api_send(Method::POST, "/issue-triggers", warn).await;
    let elsewhere = json!({ "type": "transformation", "configs": { "log_level": "debug", "transformations": ["trs_other"] } });
    let (_, elsewhere) = gw
        .api_send(Method::POST, "/issue-triggers", elsewhere)
        .await;

    gw.post("/e/app", "{\"level\":\"info\"}").await;
    sink.wait_for(1).await;
    assert_eq!(
        gw.api_get("/issues").await.1["count"],
        0,
        "info is below warn"
    );
    gw.post("/e/app", "{\"level\":\"warn\"}").await;
    sink.wait_for(2).await;
    gw.post("/e/app", "{\"level\":\"fail\"}").await;
    let listed = "/issues?type=transformation&order_by=created_at&dir=asc";
    let issues = api_until(&gw, listed, |a| a["count"] == 2).await;
    let transformation_id = named_id("trs", "shaper");
    for (issue, level) in issues["models"]
        .as_array()
        .unwrap()
        .iter()
        .zip(["warn", "fatal"])
    {
        assert_issue_shape(issue);
        assert_eq!(
            (&issue["issue_trigger_id"], &issue["aggregation_keys"]),
            (
                &warn["id"],
                &json!({ "transformation_id": [transformation_id], "log_level": level })
            )
        );
        let execution_id = &issue["reference"]["transformation_execution_id"];
        let (_, one) = gw
            .api_get(&format!("/issues/{}", issue["id"].as_str().unwrap()))
            .await;
        assert_eq!(
            &one["data"]["transformation_execution"]["id"], execution_id,
            "{one}"
        );
    }
    let failed = &issues["models"][1];
    assert!(
        failed["detail"].as_str().unwrap().contains("broken script"),
        "{failed}"
    );
    let other = format!(
        "/issues/count?issue_trigger_id={}",
        elsewhere["id"].as_str().unwrap()
    );
    assert_eq!(
        gw.api_get(&other).await.1["count"],
        0,
        "scoped to another transformation"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trigger_and_an_issue_stored_by_an_earlier_version_load_and_work() {
    let stuck = Sink::start(Reply::Hang).await;
    let channel = Sink::start(Reply::Status(200)).await;
    let config = format!(
        "[limits]\ndelivery_timeout_ms = 120000\n\n[[sources]]\nname = \"shop\"\n\n[[destinations]]\nname = \"stuck\"\nurl = \"{}\"\nconcurrent = 1\n\n[[connections]]\nname = \"c\"\nsource = \"shop\"\ndestination = \"stuck\"\n",
        stuck.url("/")
    );
    let dir = TestGateway::start(&config).await.stopped().await;
    let destination = named_id("des", "stuck");
    // The forms hookgate stored before it spoke the reference's shapes. (The
    // reference's minimum delay is a minute; a stored trigger keeps its own.)
    let old_trigger = json!({ "id": "itr_old", "name": "lagging", "type": "backpressure",
        "connections": ["*"], "strategy": "final_attempt", "destinations": [destination],
        "delay_ms": 300, "webhook_url": channel.url("/alerts"), "disabled_at": null,
        "created_at": 1_700_000_000_000u64 });
    let old_issue = json!({ "id": "iss_old", "type": "delivery", "status": "OPENED",
        "issue_trigger_id": "itr_gone", "aggregation_key": "itr_gone|web_x|status 500",
        "connection_id": "web_x", "event_id": "evt_x", "attempt_id": null, "detail": "status 500",
        "count": 3, "opened_at": 1_700_000_000_000u64, "last_seen_at": 1_700_000_001_000u64,
        "dismissed_at": null });
    {
        let db = crate::backend::keyspace(dir.path());
        db.open_tree("issue_triggers")
            .unwrap()
            .insert("itr_old", serde_json::to_vec(&old_trigger).unwrap())
            .unwrap();
        db.open_tree("issues")
            .unwrap()
            .insert("iss_old", serde_json::to_vec(&old_issue).unwrap())
            .unwrap();
        db.flush().unwrap();
    }
    let gw = TestGateway::start_in(dir, &config).await;
    let (_, trigger) = gw.api_get("/issue-triggers/itr_old").await;
    assert_trigger_shape(&trigger);
    assert_eq!(
        (
            &trigger["name"],
            &trigger["configs"],
            &trigger["channels"],
            &trigger["updated_at"]
        ),
        (
            &json!("lagging"),
            &json!({ "delay": 300, "destinations": [destination] }),
            &json!({ "webhook": { "url": channel.url("/alerts") } }),
            &trigger["created_at"]
        )
    );
    let (_, issue) = gw.api_get("/issues/iss_old").await;
    assert_issue_shape(&issue);
    assert_eq!(
        (
            &issue["first_seen_at"],
            &issue["created_at"],
            &issue["count"]
        ),
        (&issue["opened_at"], &issue["opened_at"], &json!(3))
    );

    for _ in 0..3 {
        gw.post("/e/shop", "{}").await;
    }
    // The backlog is checked every 100 ms; the oldest event passes 300 ms late while the destination hangs.
    let notification: Value = serde_json::from_slice(&channel.wait_for(1).await[0].body).unwrap();
    assert_eq!(
        (
            &notification["topic"],
            &notification["issue"]["type"],
            &notification["issue_trigger"]["id"]
        ),
        (
            &json!("issue.opened"),
            &json!("backpressure"),
            &json!("itr_old")
        )
    );
    assert_eq!(
        notification["issue"]["aggregation_keys"],
        json!({ "destination_id": [destination] })
    );
}

/// A gateway whose `shop` delivers to `orders` and whose `alerts`, the
/// notifications' source, to `inbox`.
async fn shop_and_alerts(orders: &Sink, inbox: &Sink) -> TestGateway {
    TestGateway::start(&format!(
        "[[sources]]\nname = \"shop\"\n[[sources]]\nname = \"alerts\"\n{}{}",
        route("shop", "orders", &orders.url("/"), ""),
        route("alerts", "inbox", &inbox.url("/notified"), "")
    ))
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_notifications_arrive_through_the_chosen_source_and_its_connection() {
    let failing = Sink::start(Reply::Status(500)).await;
    let inbox = Sink::start(Reply::Status(200)).await;
    let gw = shop_and_alerts(&failing, &inbox).await;
    let settings = "/2023-07-01/notifications/webhooks";
    let refused = [
        (
            json!({ "enabled": true, "topics": ["issue.opened"] }),
            "source_id",
        ),
        (
            json!({ "enabled": true, "topics": ["issue.exploded"], "source_id": "alerts" }),
            "topics",
        ),
        (
            json!({ "enabled": true, "source_id": "src_nope" }),
            "source_id",
        ),
        (json!({ "enabled": true, "url": "x" }), "body"),
    ];
    for (body, field) in refused {
        let (status, error) = gw.api_send(Method::PUT, settings, body.clone()).await;
        assert_eq!(
            (status, error["data"]["field"].as_str()),
            (422, Some(field)),
            "{body}: {error}"
        );
    }
    let source_id = named_id("src", "alerts");
    let enable = json!({ "enabled": true, "topics": ["issue.opened", "issue.updated"], "source_id": source_id });
    let (status, answer) = gw.api_send(Method::PUT, settings, enable.clone()).await;
    assert_eq!(
        (status, &answer),
        (200, &enable),
        "the reference's answer (L3708)"
    );
    let trigger = json!({ "type": "delivery", "configs": { "strategy": "first_attempt", "connections": ["shop-to-orders"] } });
    assert_eq!(
        gw.api_send(Method::POST, "/issue-triggers", trigger)
            .await
            .0,
        200
    );

    gw.post("/e/shop", "{}").await;
    let opened = &inbox.wait_for(1).await[0];
    assert_eq!(opened.header("x-notification-topic"), Some("issue.opened"));
    let issue: Value = serde_json::from_slice(&opened.body).unwrap();
    assert_issue_shape(&issue);
    assert_eq!(
        (&issue["type"], &issue["status"]),
        (&json!("delivery"), &json!("OPENED"))
    );
    assert!(issue["data"]["trigger_event"].is_object(), "{issue}");

    let path = format!("/issues/{}", issue["id"].as_str().unwrap());
    gw.api_send(Method::PUT, &path, json!({ "status": "ACKNOWLEDGED" }))
        .await;
    let updated = &inbox.wait_for(2).await[1];
    assert_eq!(
        updated.header("x-notification-topic"),
        Some("issue.updated")
    );
    let body: Value = serde_json::from_slice(&updated.body).unwrap();
    assert_eq!(
        (&body["id"], &body["status"]),
        (&issue["id"], &json!("ACKNOWLEDGED"))
    );

    // Disabled: the settings stay, nothing more is sent.
    let (_, off) = gw
        .api_send(Method::PUT, settings, json!({ "enabled": false }))
        .await;
    assert_eq!(
        off,
        json!({ "enabled": false, "topics": ["issue.opened", "issue.updated"], "source_id": source_id })
    );
    gw.api_send(Method::PUT, &path, json!({ "status": "RESOLVED" }))
        .await;
    // Watched before the post: the new event counts once its failure is
    // announced, after its issue is counted (on PostgreSQL its record is
    // committed before that).
    let failed = gw.watch_events(|e| e.status == EventStatus::Failed);
    gw.post("/e/shop", "{}").await;
    failed.wait(2).await;
    assert_eq!(gw.api_get("/issues").await.1["models"][0]["count"], 2);
    assert_eq!(inbox.received().len(), 2, "no notification once disabled");
}

/// The reference's other two topics: each settled attempt of a connection's
/// event, `{event, attempt}` as `GET /events/{id}` and `GET /attempts/{id}`
/// show them. The notification source's own deliveries are not announced
/// (each would announce itself again, forever).
#[tokio::test(flavor = "multi_thread")]
async fn delivered_events_and_failed_attempts_are_announced_when_asked() {
    let orders = Sink::start_answering(vec![Reply::Status(500)], Reply::Status(200)).await;
    let inbox = Sink::start(Reply::Status(200)).await;
    let gw = shop_and_alerts(&orders, &inbox).await;
    let topics = ["event.successful", "deprecated.attempt-failed"];
    let enable = json!({ "enabled": true, "topics": topics, "source_id": "alerts" });
    let settings = "/2023-07-01/notifications/webhooks";
    assert_eq!(gw.api_send(Method::PUT, settings, enable).await.0, 200);

    let (_, failed) = gw.post("/e/shop", r#"{"n":1}"#).await;
    let failed = failed["request_id"].as_str().unwrap().to_string();
    inbox.wait_for(1).await;
    gw.post("/e/shop", r#"{"n":2}"#).await;
    let notified = inbox.wait_for(2).await;
    let api = format!("http://{}", gw.gateway.api_addr.unwrap());
    let document = crate::openapi_check::document(&gw.http, &api).await;
    for (notification, (topic, status)) in notified.iter().zip([
        ("deprecated.attempt-failed", "FAILED"),
        ("event.successful", "SUCCESSFUL"),
    ]) {
        assert_eq!(notification.header("x-notification-topic"), Some(topic));
        let body: Value = serde_json::from_slice(&notification.body).unwrap();
        let (event, attempt) = (&body["event"], &body["attempt"]);
        crate::openapi_check::assert_documented(document, "GET", "/events/e", 200, event);
        crate::openapi_check::assert_documented(document, "GET", "/attempts/a", 200, attempt);
        assert_eq!(
            (&attempt["status"], &attempt["event_id"]),
            (&json!(status), &event["id"]),
            "{topic}: {body}"
        );
    }
    let first_event: Value = serde_json::from_slice(&notified[0].body).unwrap();
    assert_eq!(first_event["event"]["request_id"], json!(failed));

    // Both notifications are delivered to the inbox as the alerts source's
    // events; those deliveries are not announced in turn.
    gw.wait_events(2, |e| {
        e.destination_id == named_id("des", "inbox") && e.status == EventStatus::Successful
    })
    .await;
    gw.post("/e/shop", r#"{"n":3}"#).await;
    let third: Value = serde_json::from_slice(&inbox.wait_for(3).await[2].body).unwrap();
    assert_eq!(third["event"]["source_id"], json!(named_id("src", "shop")));
    let announced = gw
        .stored_requests()
        .await
        .into_iter()
        .filter(|r| r.source_name == "alerts")
        .count();
    assert_eq!(announced, 3, "only the shop's events were announced");
}

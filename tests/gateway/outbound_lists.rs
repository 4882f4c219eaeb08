//! The outbound list APIs: `/v1/webhook-jobs` (page numbers) and
//! `/api/webhook-deliveries` (cursors, filter expressions, orderBy).

use crate::common::{Reply, Sink, TestGateway};
use crate::outbound::{application, endpoint, event_types, gateway, send_job, wait_job};
use hookgate::ids::now_ms;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const JOBS: &str = "/v1/webhook-jobs";
const DELIVERIES: &str = "/api/webhook-deliveries";

/// GETs a list with `query` (URL-encoded by reqwest, JSON values included).
async fn get_list(gw: &TestGateway, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let response = gw.api(Method::GET, path).query(query).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// A list answer that must succeed.
async fn listed(gw: &TestGateway, path: &str, query: &[(&str, &str)]) -> Value {
    let (status, body) = get_list(gw, path, query).await;
    assert_eq!(status, 200, "{path} {query:?}: {body}");
    body
}

/// A list query that must be refused with a 422 blaming `field`; returns the message.
async fn refused(gw: &TestGateway, path: &str, query: &[(&str, &str)], field: &str) -> String {
    let (status, error) = get_list(gw, path, query).await;
    assert_eq!(status, 422, "{path} {query:?}: {error}");
    assert_eq!(error["data"]["field"], field, "{query:?}: {error}");
    let message = error["message"].as_str().unwrap().to_string();
    assert!(message.starts_with(field), "{query:?}: {message}");
    message
}

/// The ids of a list answer's `data`, in order.
fn ids(answer: &Value) -> Vec<String> {
    answer["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data array: {answer}"))
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_string())
        .collect()
}

/// The names of an object's fields.
fn keys(object: &Value) -> BTreeSet<&str> {
    let object = object
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {object}"));
    object.keys().map(String::as_str).collect()
}

/// One string field of every item of a list answer, in order (nulls skipped).
fn column<'a>(answer: &'a Value, field: &str) -> Vec<&'a str> {
    let items = answer["data"].as_array().unwrap();
    items
        .iter()
        .filter_map(|item| item[field].as_str())
        .collect()
}

/// The ids of the jobs `GET /v1/webhook-jobs` lists for `query`.
async fn job_ids(gw: &TestGateway, query: &[(&str, &str)]) -> Vec<String> {
    ids(&listed(gw, JOBS, query).await)
}

/// The ids of the deliveries `GET /api/webhook-deliveries` lists for `query`.
async fn delivery_ids(gw: &TestGateway, query: &[(&str, &str)]) -> Vec<String> {
    ids(&listed(gw, DELIVERIES, query).await)
}

/// Asserts that `GET /v1/webhook-jobs` lists exactly `expected` for `query`, in order.
async fn assert_jobs(gw: &TestGateway, query: &[(&str, &str)], expected: &[&str]) {
    assert_eq!(job_ids(gw, query).await, expected, "{query:?}");
}

/// The deliveries listed for `query` as a set, where their order is not the point.
async fn delivery_set(gw: &TestGateway, query: &[(&str, &str)]) -> BTreeSet<String> {
    delivery_ids(gw, query).await.into_iter().collect()
}

/// The deliveries a JSON `filter` selects.
async fn filtered(gw: &TestGateway, filter: &Value) -> BTreeSet<String> {
    delivery_set(gw, &[("filter", &filter.to_string())]).await
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Sends a job of `event_type` with `extra` fields (e.g. event_id); returns its id.
async fn new_job(gw: &TestGateway, app: &str, event_type: &str, extra: Value) -> String {
    let mut body = json!({ "application_id": app, "event_type": event_type, "payload": {} });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (status, job) = send_job(gw, body).await;
    assert_eq!(status, 201, "{job}");
    job["id"].as_str().unwrap().to_string()
}

/// Creates an endpoint on `sink`; returns its id.
async fn endpoint_id(gw: &TestGateway, app: &str, sink: &Sink, fields: Value) -> String {
    let created = endpoint(gw, app, sink, fields).await;
    created["id"].as_str().unwrap().to_string()
}

/// The only delivery of a job with one endpoint.
fn only_delivery(gw: &TestGateway, job_id: &str) -> String {
    let deliveries = gw.gateway.store.deliveries_of(job_id).unwrap();
    assert_eq!(deliveries.len(), 1, "{job_id}");
    deliveries[0].id.clone()
}

/// The delivery of `job_id` to `endpoint_id`.
fn delivery_of(gw: &TestGateway, job_id: &str, endpoint_id: &str) -> String {
    let deliveries = gw.gateway.store.deliveries_of(job_id).unwrap();
    let delivery = deliveries.iter().find(|d| d.destination_id == endpoint_id);
    delivery.expect("a delivery to the endpoint").id.clone()
}

/// A job's `created_at` as the API shows it (ISO 8601, milliseconds).
async fn created_at(gw: &TestGateway, job_id: &str) -> String {
    let (status, job) = gw.api_get(&format!("{JOBS}/{job_id}")).await;
    assert_eq!(status, 200, "{job}");
    job["created_at"].as_str().unwrap().to_string()
}

/// The list view of one delivery, found by `ids`.
async fn delivery_view(gw: &TestGateway, id: &str) -> Value {
    let answer = listed(gw, DELIVERIES, &[("ids", id)]).await;
    assert_eq!(ids(&answer), [id], "{answer}");
    answer["data"][0].clone()
}

/// Returns once the wall clock has passed `ms`, so that the next job gets a
/// later `created_at` than every job before it (times have millisecond steps).
async fn clock_past(ms: u64) {
    while now_ms() <= ms {
        tokio::task::yield_now().await;
    }
}

/// One application with a job in each of four states, and so deliveries in
/// each of the four delivery states:
///
/// | job            | event type    | endpoint(s)   | deliveries             |
/// |----------------|---------------|---------------|------------------------|
/// | succeeded      | order.created | ok, ok2 (200) | completed, completed   |
/// | awaiting_retry | order.failed  | failing (500) | retrying               |
/// | discarded      | order.failed  | failing (500) | failed (max_retries 0) |
/// | created        | order.held    | held (paused) | pending                |
struct Mixed {
    gw: TestGateway,
    app: String,
    ok: String,
    ok2: String,
    failing: String,
    held: String,
    succeeded: String,
    awaiting_retry: String,
    discarded: String,
    created: String,
    /// Where the endpoints deliver (200 and 500).
    _sinks: (Sink, Sink),
}

/// The idempotency key the succeeded job of `Mixed` is sent with.
const SOURCE_EVENT_ID: &str = "order-7-created";

impl Mixed {
    async fn start() -> Mixed {
        // A one-hour window puts the first retry ~56 s (window / 2^6) after the
        // first failure, so the awaiting_retry job stays so for the whole test.
        let gw = gateway("delivery_window_ms = 3600000").await;
        let app = application(&gw, "production").await;
        event_types(&gw, &app, &["order.created", "order.failed", "order.held"]).await;
        let good = Sink::start(Reply::Status(200)).await;
        let bad = Sink::start(Reply::Status(500)).await;
        let subscribed = |event_type: &str| json!({ "subscribed_events": [event_type] });
        let ok = endpoint_id(&gw, &app, &good, subscribed("order.created")).await;
        let ok2 = endpoint_id(&gw, &app, &good, subscribed("order.created")).await;
        let failing = endpoint_id(&gw, &app, &bad, subscribed("order.failed")).await;
        let mut paused = subscribed("order.held");
        paused["status"] = json!("paused");
        let held = endpoint_id(&gw, &app, &good, paused).await;

        let extra = json!({ "event_id": SOURCE_EVENT_ID });
        let succeeded = new_job(&gw, &app, "order.created", extra).await;
        wait_job(&gw, &succeeded, "succeeded").await;
        let awaiting_retry = new_job(&gw, &app, "order.failed", json!({})).await;
        wait_job(&gw, &awaiting_retry, "awaiting_retry").await;
        let extra = json!({ "max_retries": 0 });
        let discarded = new_job(&gw, &app, "order.failed", extra).await;
        wait_job(&gw, &discarded, "discarded").await;
        // A paused endpoint holds its delivery before the job is even answered.
        let created = new_job(&gw, &app, "order.held", json!({})).await;
        // Its delivery is stored a moment after the answer, as a job's are.
        gw.gateway.store.wait_jobs_routed().await.unwrap();
        Mixed {
            gw,
            app,
            ok,
            ok2,
            failing,
            held,
            succeeded,
            awaiting_retry,
            discarded,
            created,
            _sinks: (good, bad),
        }
    }

    fn completed(&self) -> (String, String) {
        (
            delivery_of(&self.gw, &self.succeeded, &self.ok),
            delivery_of(&self.gw, &self.succeeded, &self.ok2),
        )
    }

    fn retrying(&self) -> String {
        only_delivery(&self.gw, &self.awaiting_retry)
    }

    fn failed(&self) -> String {
        only_delivery(&self.gw, &self.discarded)
    }

    fn pending(&self) -> String {
        only_delivery(&self.gw, &self.created)
    }
}

// ---------------------------------------------------------------- /v1/webhook-jobs

#[tokio::test]
async fn jobs_are_listed_newest_first_in_numbered_pages() {
    let gw = gateway("").await;
    let app = application(&gw, "production").await;
    event_types(&gw, &app, &["order.created"]).await;
    // No endpoint: each job is done at once, which is all paging needs.
    let mut sent = Vec::new();
    for _ in 0..7 {
        sent.push(new_job(&gw, &app, "order.created", json!({})).await);
    }
    let newest_first: Vec<String> = sent.iter().rev().cloned().collect();

    let mut pages = Vec::new();
    for page in ["1", "2", "3", "4"] {
        let query = [
            ("application_id", app.as_str()),
            ("per_page", "3"),
            ("page", page),
        ];
        let answer = listed(&gw, JOBS, &query).await;
        let pagination = &answer["pagination"];
        assert_eq!(pagination["total"], 7, "{answer}");
        assert_eq!(pagination["total_pages"], 3, "{answer}");
        assert_eq!(pagination["per_page"], 3, "{answer}");
        assert_eq!(pagination["page"], page.parse::<u64>().unwrap(), "{answer}");
        pages.push(ids(&answer));
    }
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [3, 3, 1, 0], "a page past the last one is empty");
    assert_eq!(pages.concat(), newest_first, "no overlaps, no gaps");

    // Without paging parameters: page 1 of 25, the reference's default.
    let of_app = ("application_id", app.as_str());
    let answer = listed(&gw, JOBS, &[of_app]).await;
    assert_eq!(ids(&answer), newest_first);
    assert_eq!(
        answer["pagination"],
        json!({ "page": 1, "per_page": 25, "total": 7, "total_pages": 1 })
    );

    for per_page in ["0", "101", "many"] {
        refused(&gw, JOBS, &[of_app, ("per_page", per_page)], "per_page").await;
    }
    assert_eq!(
        job_ids(&gw, &[of_app, ("per_page", "100")]).await.len(),
        7,
        "100 is allowed"
    );
    for page in ["0", "-1"] {
        refused(&gw, JOBS, &[of_app, ("page", page)], "page").await;
    }
    // The reference requires application_id.
    refused(&gw, JOBS, &[("per_page", "3")], "application_id").await;
}

#[tokio::test]
async fn jobs_filter_by_status() {
    let mixed = Mixed::start().await;
    let gw = &mixed.gw;
    let cases = [
        ("succeeded", &mixed.succeeded),
        ("awaiting_retry", &mixed.awaiting_retry),
        ("discarded", &mixed.discarded),
        ("created", &mixed.created),
    ];
    let of_app = ("application_id", mixed.app.as_str());
    for (status, job) in cases {
        let answer = listed(gw, JOBS, &[of_app, ("status", status)]).await;
        assert_eq!(ids(&answer), [job.as_str()], "status={status}");
        assert_eq!(answer["data"][0]["status"], status);
        assert_eq!(answer["pagination"]["total"], 1);
    }
    assert!(job_ids(gw, &[of_app, ("status", "archived")])
        .await
        .is_empty());
    assert!(job_ids(gw, &[of_app, ("status", "executing")])
        .await
        .is_empty());
    // `failed`, which every filtering example of the reference sends: the jobs
    // whose deliveries failed, still retrying or given up on.
    let failed = [mixed.discarded.as_str(), mixed.awaiting_retry.as_str()];
    assert_jobs(gw, &[of_app, ("status", "failed")], &failed).await;
    // A job a caller cancelled is discarded, but it did not fail.
    let path = format!("{JOBS}/{}/cancel", mixed.created);
    let (status, cancelled) = gw.api_send(Method::POST, &path, json!({})).await;
    assert_eq!(
        (status, cancelled["status"].as_str()),
        (200, Some("discarded"))
    );
    assert_jobs(gw, &[of_app, ("status", "failed")], &failed).await;

    let message = refused(gw, JOBS, &[of_app, ("status", "done")], "status").await;
    assert!(
        message.contains("\"done\"") && message.contains("awaiting_retry"),
        "the message names the value and the known statuses: {message}"
    );
}

#[tokio::test]
async fn jobs_filter_by_application_event_type_and_endpoint() {
    let mixed = Mixed::start().await;
    let gw = &mixed.gw;
    let other = application(gw, "staging").await;
    event_types(gw, &other, &["order.failed"]).await;
    let elsewhere = new_job(gw, &other, "order.failed", json!({})).await;
    let app = mixed.app.as_str();
    let (succeeded, retrying, discarded, created) = (
        mixed.succeeded.as_str(),
        mixed.awaiting_retry.as_str(),
        mixed.discarded.as_str(),
        mixed.created.as_str(),
    );

    let elsewhere = elsewhere.as_str();
    let all = [elsewhere, created, discarded, retrying, succeeded];
    refused(gw, JOBS, &[], "application_id").await;
    let of_app = ("application_id", app);
    assert_jobs(gw, &[of_app], &all[1..]).await;
    assert_jobs(gw, &[("application_id", &other)], &[elsewhere]).await;
    assert_jobs(gw, &[("application_id", "app_missing")], &[]).await;
    let failed_type = ("event_type", "order.failed");
    let of_other = ("application_id", other.as_str());
    assert_jobs(gw, &[of_other, failed_type], &[elsewhere]).await;
    // Filters combine with AND.
    assert_jobs(gw, &[of_app, failed_type], &[discarded, retrying]).await;
    let query = [of_app, failed_type, ("status", "discarded")];
    assert_jobs(gw, &query, &[discarded]).await;
    // endpoint_id: the jobs fanned out to that endpoint, paused ones included.
    let by_endpoint = |id| [of_app, ("endpoint_id", id)];
    assert_jobs(
        gw,
        &by_endpoint(mixed.failing.as_str()),
        &[discarded, retrying],
    )
    .await;
    assert_jobs(gw, &by_endpoint(mixed.ok2.as_str()), &[succeeded]).await;
    assert_jobs(gw, &by_endpoint(mixed.held.as_str()), &[created]).await;
}

#[tokio::test]
async fn jobs_filter_by_creation_time() {
    let gw = gateway("").await;
    let app = application(&gw, "production").await;
    event_types(&gw, &app, &["order.created"]).await;
    // Three jobs a millisecond or more apart, with their stored created_at.
    let mut jobs = Vec::new();
    for _ in 0..3 {
        let id = new_job(&gw, &app, "order.created", json!({})).await;
        let created_at = gw.gateway.store.job(&id).unwrap().unwrap().created_at;
        clock_past(created_at).await;
        jobs.push(id);
    }
    let (first, second, third) = (
        created_at(&gw, &jobs[0]).await,
        created_at(&gw, &jobs[1]).await,
        created_at(&gw, &jobs[2]).await,
    );
    let [j1, j2, j3] = [&jobs[0], &jobs[1], &jobs[2]].map(String::as_str);
    let [first, second, third] = [&first, &second, &third].map(String::as_str);

    // Both bounds are exclusive.
    let of_app = ("application_id", app.as_str());
    let after = |time| ("created_after", time);
    let before = |time| ("created_before", time);
    assert_jobs(&gw, &[of_app, after(first)], &[j3, j2]).await;
    assert_jobs(&gw, &[of_app, before(third)], &[j2, j1]).await;
    assert_jobs(&gw, &[of_app, after(first), before(third)], &[j2]).await;
    assert_jobs(&gw, &[of_app, after(third)], &[]).await;
    assert_jobs(&gw, &[of_app, before(first)], &[]).await;
    assert_jobs(&gw, &[of_app, after(second), before(second)], &[]).await;
    // Any offset is understood, not only Z.
    let long_ago = after("2000-01-01T01:00:00+01:00");
    assert_jobs(&gw, &[of_app, long_ago], &[j3, j2, j1]).await;

    for bad in ["yesterday", "2026-13-01T00:00:00Z"] {
        let query = [of_app, ("created_after", bad)];
        let message = refused(&gw, JOBS, &query, "created_after").await;
        assert!(message.contains(bad), "{message}");
        refused(
            &gw,
            JOBS,
            &[of_app, ("created_before", bad)],
            "created_before",
        )
        .await;
    }
}

// ---------------------------------------------------------------- /api/webhook-deliveries

/// `jobs` jobs to an application with two always-answering endpoints, all
/// delivered; returns the gateway and every delivery id.
async fn delivered(jobs: usize) -> (TestGateway, String, BTreeSet<String>) {
    let gw = gateway("").await;
    let app = application(&gw, "production").await;
    event_types(&gw, &app, &["order.created"]).await;
    let sink = Sink::start(Reply::Status(200)).await;
    endpoint(&gw, &app, &sink, json!({})).await;
    endpoint(&gw, &app, &sink, json!({})).await;
    let mut all = BTreeSet::new();
    for _ in 0..jobs {
        let job = new_job(&gw, &app, "order.created", json!({})).await;
        let done = wait_job(&gw, &job, "succeeded").await;
        for delivery in done["deliveries"].as_array().unwrap() {
            all.insert(delivery["id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(all.len(), jobs * 2);
    (gw, app, all)
}

/// A page of `limit` deliveries after or before a cursor (`("after", cursor)`).
async fn page_of(gw: &TestGateway, limit: &str, cursor: Option<(&str, &str)>) -> Value {
    let mut query = vec![("limit", limit)];
    query.extend(cursor);
    listed(gw, DELIVERIES, &query).await
}

/// Every page of deliveries for `query`, `limit` each, following endCursor
/// while hasNextPage; `most` pages at most.
async fn all_pages(
    gw: &TestGateway,
    query: &[(&str, &str)],
    limit: &str,
    most: usize,
) -> Vec<Value> {
    let mut pages: Vec<Value> = Vec::new();
    loop {
        let end = pages
            .last()
            .map(|page| cursor(page, "endCursor").to_string());
        let mut this = query.to_vec();
        this.push(("limit", limit));
        this.extend(end.as_deref().map(|end| ("after", end)));
        let page = listed(gw, DELIVERIES, &this).await;
        let more = flags(&page).1;
        pages.push(page);
        if !more {
            return pages;
        }
        assert!(pages.len() < most, "more than {most} pages: {pages:?}");
    }
}

/// `(hasPreviousPage, hasNextPage)`.
fn flags(answer: &Value) -> (bool, bool) {
    let info = &answer["pageInfo"];
    (
        info["hasPreviousPage"].as_bool().unwrap(),
        info["hasNextPage"].as_bool().unwrap(),
    )
}

fn cursor<'a>(answer: &'a Value, which: &str) -> &'a str {
    answer["pageInfo"][which]
        .as_str()
        .unwrap_or_else(|| panic!("no {which}: {answer}"))
}

#[tokio::test]
async fn deliveries_answer_camel_case_views_with_page_info() {
    let (gw, app, all) = delivered(1).await;
    let answer = listed(&gw, DELIVERIES, &[]).await;
    assert_eq!(
        keys(&answer),
        BTreeSet::from(["data", "pageInfo"]),
        "{answer}"
    );
    let info = &answer["pageInfo"];
    assert_eq!(
        keys(info),
        BTreeSet::from([
            "total",
            "hasNextPage",
            "hasPreviousPage",
            "startCursor",
            "endCursor"
        ])
    );
    assert_eq!(info["total"], 2);
    assert_eq!(flags(&answer), (false, false));
    assert!(info["startCursor"].is_string() && info["endCursor"].is_string());

    let delivery = &answer["data"][0];
    assert_eq!(
        keys(delivery),
        BTreeSet::from([
            "id",
            "workspaceId",
            "payload",
            "maxAttempts",
            "nextRetryAt",
            "updatedAt",
            "jobId",
            "subscriptionId",
            "applicationId",
            "eventType",
            "sourceEventId",
            "status",
            "attemptCount",
            "lastStatusCode",
            "lastErrorCode",
            "lastAttemptAt",
            "nextAttemptAt",
            "createdAt",
            "url",
        ]),
        "{delivery}"
    );
    assert!(all.contains(delivery["id"].as_str().unwrap()));
    assert_eq!(delivery["applicationId"], app.as_str());
    assert_eq!(delivery["eventType"], "order.created");
    // Without an event_id, the job's id is its source event id.
    assert_eq!(delivery["sourceEventId"], delivery["jobId"]);
    assert_eq!(delivery["status"], "completed");
    assert_eq!(delivery["attemptCount"], 1);
    assert_eq!(delivery["lastStatusCode"], 200);
    assert!(delivery["lastAttemptAt"].is_string() && delivery["nextAttemptAt"].is_null());
    assert!(delivery["url"].as_str().unwrap().ends_with("/hooks"));

    // An empty page has no cursors.
    let none = listed(&gw, DELIVERIES, &[("ids", "evt_missing")]).await;
    assert_eq!(
        none["pageInfo"],
        json!({ "total": 0, "hasNextPage": false, "hasPreviousPage": false,
                "startCursor": null, "endCursor": null })
    );
    for limit in ["0", "101", "ten"] {
        refused(&gw, DELIVERIES, &[("limit", limit)], "limit").await;
    }
}

#[tokio::test]
async fn deliveries_page_forward_and_backward_with_cursors() {
    let (gw, _, all) = delivered(5).await;
    let everything = delivery_ids(&gw, &[("limit", "100")]).await;
    assert_eq!(everything.len(), 10);

    // Forward: after = the previous page's endCursor.
    let pages = all_pages(&gw, &[], "4", 3).await;
    let sizes: Vec<usize> = pages.iter().map(|p| ids(p).len()).collect();
    assert_eq!(sizes, [4, 4, 2]);
    let flag_list: Vec<(bool, bool)> = pages.iter().map(flags).collect();
    assert_eq!(flag_list, [(false, true), (true, true), (true, false)]);
    assert!(pages.iter().all(|p| p["pageInfo"]["total"] == 10));
    let forward: Vec<String> = pages.iter().flat_map(ids).collect();
    assert_eq!(forward, everything, "the pages cut the full list in order");
    assert_eq!(forward.iter().cloned().collect::<BTreeSet<_>>(), all);

    // Newest first by default (ISO times with milliseconds sort as text).
    let full = listed(&gw, DELIVERIES, &[("limit", "100")]).await;
    let created = column(&full, "createdAt");
    assert_eq!(created.len(), 10);
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "{created:?}");

    // Backward from the last page: before = the next page's startCursor.
    let start = cursor(&pages[2], "startCursor").to_string();
    let back = page_of(&gw, "4", Some(("before", &start))).await;
    assert_eq!(back, pages[1], "the same page, cursors and flags included");
    let start = cursor(&back, "startCursor").to_string();
    let first = page_of(&gw, "4", Some(("before", &start))).await;
    assert_eq!(first, pages[0]);
    // Before the first item there is nothing.
    let start = cursor(&first, "startCursor").to_string();
    let nothing = page_of(&gw, "4", Some(("before", &start))).await;
    assert!(ids(&nothing).is_empty() && flags(&nothing) == (false, true));

    // Bad cursors, and both directions at once, are refused.
    refused(&gw, DELIVERIES, &[("after", "%%%")], "after").await;
    refused(&gw, DELIVERIES, &[("before", "bm9wZQ")], "before").await;
    let both = [("after", start.as_str()), ("before", start.as_str())];
    refused(&gw, DELIVERIES, &both, "after").await;
}

#[tokio::test]
async fn a_cursor_keeps_its_place_while_new_deliveries_arrive() {
    let (gw, app, _) = delivered(3).await;
    let first = page_of(&gw, "2", None).await;
    let before_new: Vec<String> = delivery_ids(&gw, &[("limit", "100")]).await;
    // A new job's deliveries are the newest: they land before the cursor.
    let job = new_job(&gw, &app, "order.created", json!({})).await;
    wait_job(&gw, &job, "succeeded").await;
    let end = cursor(&first, "endCursor").to_string();
    let second = page_of(&gw, "2", Some(("after", &end))).await;
    assert_eq!(ids(&second), before_new[2..4], "{second}");
    assert_eq!(second["pageInfo"]["total"], 8);
}

#[tokio::test]
async fn deliveries_filter_by_ids_status_subscription_and_source_event() {
    let mixed = Mixed::start().await;
    let gw = &mixed.gw;
    let (ok, ok2) = mixed.completed();
    let (retrying, failed, pending) = (mixed.retrying(), mixed.failed(), mixed.pending());
    let status = |value| [("status", value)];
    assert_eq!(
        delivery_set(gw, &status("completed")).await,
        set(&[&ok, &ok2])
    );
    assert_eq!(
        delivery_set(gw, &status("retrying")).await,
        set(&[&retrying])
    );
    assert_eq!(delivery_set(gw, &status("failed")).await, set(&[&failed]));
    assert_eq!(delivery_set(gw, &status("pending")).await, set(&[&pending]));
    // A comma-separated list, and the same parameter repeated, mean "any of".
    let either = set(&[&retrying, &pending]);
    assert_eq!(delivery_set(gw, &status("retrying,pending")).await, either);
    let repeated = [("status", "retrying"), ("status", "pending")];
    assert_eq!(delivery_set(gw, &repeated).await, either);
    let message = refused(gw, DELIVERIES, &status("completed,done"), "status").await;
    assert!(message.contains("\"done\""), "{message}");

    // Each state shows in the delivery's view.
    let view = delivery_view(gw, &retrying).await;
    let last = (&view["attemptCount"], &view["lastStatusCode"]);
    assert_eq!(last, (&json!(1), &json!(500)), "{view}");
    assert!(view["nextAttemptAt"].is_string(), "{view}");
    let view = delivery_view(gw, &pending).await;
    assert_eq!(view["attemptCount"], 0, "{view}");
    assert!(view["lastAttemptAt"].is_null() && view["lastStatusCode"].is_null());

    let some_ids = format!("{ok}, {failed}");
    assert_eq!(
        delivery_set(gw, &[("ids", &some_ids)]).await,
        set(&[&ok, &failed])
    );

    for name in ["subscription_id", "subscriptionId"] {
        let found = delivery_set(gw, &[(name, &mixed.failing)]).await;
        assert_eq!(found, set(&[&retrying, &failed]), "{name}");
    }
    let two_endpoints = format!("{},{}", mixed.ok, mixed.held);
    let found = delivery_set(gw, &[("subscription_id", &two_endpoints)]).await;
    assert_eq!(found, set(&[&ok, &pending]));

    let found = delivery_set(gw, &[("source_event_id", SOURCE_EVENT_ID)]).await;
    assert_eq!(found, set(&[&ok, &ok2]));
    // A job sent without an event_id has its own id as source event id.
    let found = delivery_set(gw, &[("sourceEventId", &mixed.created)]).await;
    assert_eq!(found, set(&[&pending]));

    // Simple filters combine with AND.
    let on_failing = ("subscription_id", mixed.failing.as_str());
    let query = [("status", "completed"), on_failing];
    assert!(delivery_ids(gw, &query).await.is_empty());
    let query = [("status", "failed,pending"), on_failing];
    assert_eq!(delivery_set(gw, &query).await, set(&[&failed]));
}

#[tokio::test]
async fn deliveries_filter_with_json_expressions() {
    let mixed = Mixed::start().await;
    let gw = &mixed.gw;
    let (ok, ok2) = mixed.completed();
    let (retrying, failed, pending) = (mixed.retrying(), mixed.failed(), mixed.pending());

    let cases = [
        (
            json!({ "AND": [
                { "status": { "eq": "completed" } },
                { "NOT": { "subscriptionId": { "eq": mixed.ok } } },
            ] }),
            set(&[&ok2]),
        ),
        (
            json!({ "attemptCount": { "gte": 1 } }),
            set(&[&ok, &ok2, &retrying, &failed]),
        ),
        (
            json!({ "eventType": { "in": ["order.failed", "order.held"] } }),
            set(&[&retrying, &failed, &pending]),
        ),
        (
            json!({ "OR": [{ "status": "pending" }, { "lastStatusCode": 200 }] }),
            set(&[&ok, &ok2, &pending]),
        ),
        (
            json!({ "lastStatusCode": 500, "nextAttemptAt": { "isNull": false } }),
            set(&[&retrying]),
        ),
        (
            json!({ "lastAttemptAt": { "isNull": true } }),
            set(&[&pending]),
        ),
        (
            json!({ "sourceEventId": { "startsWith": "order-7" }, "subscriptionId": { "ne": mixed.ok2 } }),
            set(&[&ok]),
        ),
        (
            json!({ "status": { "nin": ["completed", "pending", "retrying", "failed"] } }),
            set(&[]),
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(filtered(gw, &filter).await, expected, "{filter}");
    }

    // A filter narrows what the simple parameters chose.
    let filter = json!({ "status": "failed" }).to_string();
    let query = [
        ("subscription_id", mixed.failing.as_str()),
        ("filter", &filter),
    ];
    assert_eq!(delivery_ids(gw, &query).await, [failed.as_str()]);

    let bad = [
        (r#"{"status": "#, "not valid JSON"),
        (r#"{"bogus": 1}"#, r#"unknown field "bogus""#),
        (
            r#"{"OR": [{"nope": {"eq": 1}}]}"#,
            r#"filter.OR[0].nope: unknown field "nope""#,
        ),
        (
            r#"{"attemptCount": {"bigger": 1}}"#,
            r#"unknown operator "bigger""#,
        ),
        (
            r#"{"eventType": {"in": "order.failed"}}"#,
            r#"operator "in" needs an array"#,
        ),
    ];
    for (filter, problem) in bad {
        let message = refused(gw, DELIVERIES, &[("filter", filter)], "filter").await;
        assert!(message.contains(problem), "{filter}: {message}");
    }
}

#[tokio::test]
async fn deliveries_follow_order_by() {
    let mixed = Mixed::start().await;
    let gw = &mixed.gw;
    let pending = mixed.pending();
    let ordered = |order_by: &'static str| async move {
        listed(gw, DELIVERIES, &[("orderBy", order_by)]).await
    };

    // Oldest first: creation times never decrease (ties broken by id).
    let answer = ordered(r#"[{"createdAt":"asc"}]"#).await;
    let keys: Vec<(String, String)> = answer["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["createdAt"].as_str().unwrap().to_string(),
                d["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "{answer}");
    assert_eq!(keys.len(), 5);

    // The held delivery was never attempted: its lastAttemptAt is null.
    let answer = ordered(r#"[{"lastAttemptAt":"desc_nulls_last"}]"#).await;
    let nulls_last = ids(&answer);
    assert_eq!(nulls_last.last(), Some(&pending), "{answer}");
    let attempted = column(&answer, "lastAttemptAt");
    assert_eq!(attempted.len(), 4, "{answer}");
    assert!(attempted.windows(2).all(|w| w[0] >= w[1]), "{attempted:?}");
    let nulls_first = ids(&ordered(r#"[{"lastAttemptAt":"desc_nulls_first"}]"#).await);
    assert_eq!(nulls_first.first(), Some(&pending));
    assert_eq!(nulls_first[1..], nulls_last[..4], "only the null moves");
    // The object form says the same.
    let object_form = r#"[{"field":"lastAttemptAt","direction":"desc_nulls_last"}]"#;
    assert_eq!(ids(&ordered(object_form).await), nulls_last);

    // Cursors of a custom order, null keys included, page through it exactly.
    let order_by = r#"[{"lastAttemptAt":"desc_nulls_first"},{"status":"asc"}]"#;
    let everything = delivery_ids(gw, &[("orderBy", order_by)]).await;
    let pages = all_pages(gw, &[("orderBy", order_by)], "2", 3).await;
    let paged: Vec<String> = pages.iter().flat_map(ids).collect();
    assert_eq!(paged, everything);
    assert_eq!(paged[0], pending, "nulls first");

    for (order_by, problem) in [
        (r#"{"createdAt":"asc"}"#, "expected an array"),
        (r#"[{"createdAt":"upwards"}]"#, "unknown direction"),
        (r#"[{"bogus":"asc"}]"#, r#"unknown field "bogus""#),
    ] {
        let message = refused(gw, DELIVERIES, &[("orderBy", order_by)], "orderBy").await;
        assert!(message.contains(problem), "{order_by}: {message}");
    }
}

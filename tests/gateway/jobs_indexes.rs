//! `GET /v1/webhook-jobs` answers from the jobs' list index: every filter
//! combination gives what a full scan of the stored jobs gives (a simple
//! filter written here), for a store written before the index (built on its
//! first start) and for jobs changed through the API; pages walked while
//! jobs are added list every earlier job once.

use crate::common::{Reply, Sink, TestGateway};
use crate::outbound::{application, endpoint, gateway, send_job, wait_job};
use hookgate::ids::{iso8601, new_id, now_ms};
use hookgate::model::{JobStatus, WebhookJob};
use hookgate::store::Store;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const APPS: [&str; 2] = ["app_one", "app_two"];
const TYPES: [&str; 3] = ["order.created", "order.paid", "user.deleted"];
const ENDPOINTS: [&str; 3] = ["end_a", "end_b", "end_c"];

/// What a list asks for, as query parameters.
#[derive(Debug, Clone, Default)]
struct Asked {
    application_id: String,
    status: Option<String>,
    event_type: Option<String>,
    endpoint_id: Option<String>,
    created_after: Option<u64>,
    created_before: Option<u64>,
    region: Option<String>,
}

impl Asked {
    fn query(&self) -> Vec<(String, String)> {
        let mut query = vec![("application_id".into(), self.application_id.clone())];
        let optional = [
            ("status", self.status.clone()),
            ("event_type", self.event_type.clone()),
            ("endpoint_id", self.endpoint_id.clone()),
            ("created_after", self.created_after.map(iso8601)),
            ("created_before", self.created_before.map(iso8601)),
            ("metadata[region]", self.region.clone()),
        ];
        for (name, value) in optional {
            query.extend(value.map(|value| (name.to_string(), value)));
        }
        query
    }

    /// The reference: what a full scan keeps, newest first.
    fn keeps(&self, job: &WebhookJob) -> bool {
        let failed = match job.status {
            JobStatus::AwaitingRetry => true,
            JobStatus::Discarded => !job.cancelled,
            _ => false,
        };
        let status_ok = self
            .status
            .as_deref()
            .is_none_or(|wanted| wanted == job.status.as_str() || (wanted == "failed" && failed));
        job.application_id == self.application_id
            && status_ok
            && self
                .event_type
                .as_ref()
                .is_none_or(|t| *t == job.event_type)
            && (self.endpoint_id.as_ref()).is_none_or(|e| job.endpoint_ids.contains(e))
            && self.created_after.is_none_or(|t| job.created_at > t)
            && self.created_before.is_none_or(|t| job.created_at < t)
            && (self.region.as_ref()).is_none_or(|r| job.metadata["region"] == json!(r))
    }
}

/// Every stored job, read by a full scan.
fn stored(store: &Store) -> Vec<WebhookJob> {
    store.jobs_newest_first().map(Result::unwrap).collect()
}

/// The jobs of `stored` the reference keeps, in the list's order.
fn scanned<'a>(stored: &'a [WebhookJob], asked: &Asked) -> Vec<&'a WebhookJob> {
    let mut kept: Vec<&WebhookJob> = stored.iter().filter(|job| asked.keeps(job)).collect();
    kept.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    kept
}

async fn list(gw: &TestGateway, query: &[(String, String)]) -> Value {
    let response = gw.api(Method::GET, "/v1/webhook-jobs").query(query).send();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200, "{query:?}");
    response.json().await.unwrap()
}

fn ids(answer: &Value) -> Vec<String> {
    let data = answer["data"].as_array().unwrap();
    data.iter()
        .map(|job| job["id"].as_str().unwrap().to_string())
        .collect()
}

/// Page `page` of `per_page` and the total, through the API and by the scan.
async fn assert_same_page(
    gw: &TestGateway,
    stored: &[WebhookJob],
    asked: &Asked,
    page: usize,
    per_page: usize,
) {
    let expected = scanned(stored, asked);
    let mut query = asked.query();
    query.push(("page".into(), page.to_string()));
    query.push(("per_page".into(), per_page.to_string()));
    let answer = list(gw, &query).await;
    let wanted: Vec<String> = expected
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|job| job.id.clone())
        .collect();
    assert_eq!(ids(&answer), wanted, "{asked:?} page {page}");
    assert_eq!(answer["pagination"]["total"], expected.len(), "{asked:?}");
    let pages = expected.len().div_ceil(per_page);
    assert_eq!(answer["pagination"]["total_pages"], pages, "{asked:?}");
}

/// Many combinations of every filter over `apps`, `times` giving the range
/// bounds to try; returns how many asked for a non-empty list.
async fn assert_all_combinations(
    gw: &TestGateway,
    apps: &[String],
    endpoint: &str,
    times: (u64, u64),
) -> usize {
    let stored = stored(&gw.gateway.store);
    let statuses = JobStatus::ALL.map(JobStatus::as_str);
    let mut non_empty = 0;
    for (n, app) in apps.iter().enumerate() {
        let status_options = statuses
            .iter()
            .chain(&["failed"])
            .map(|s| Some(s.to_string()));
        for status in std::iter::once(None).chain(status_options) {
            for event_type in [None, Some(TYPES[n % 3]), Some(TYPES[2])] {
                for endpoint_id in [None, Some(endpoint)] {
                    for range in [
                        (None, None),
                        (Some(times.0), None),
                        (None, Some(times.1)),
                        (Some(times.0), Some(times.1)),
                    ] {
                        let asked = Asked {
                            application_id: app.clone(),
                            status: status.clone(),
                            event_type: event_type.map(str::to_string),
                            endpoint_id: endpoint_id.map(str::to_string),
                            created_after: range.0,
                            created_before: range.1,
                            region: None,
                        };
                        non_empty += usize::from(!scanned(&stored, &asked).is_empty());
                        assert_same_page(gw, &stored, &asked, 1, 25).await;
                        assert_same_page(gw, &stored, &asked, 2, 7).await;
                    }
                }
            }
        }
        let by_region = Asked {
            application_id: app.clone(),
            status: Some("failed".into()),
            region: Some("eu".into()),
            ..Asked::default()
        };
        assert_same_page(gw, &stored, &by_region, 1, 10).await;
        assert_same_page(gw, &stored, &by_region, 3, 10).await;
    }
    non_empty
}

/// A job as a store of the code before the index kept it.
fn old_job(n: usize, created_at: u64) -> WebhookJob {
    let status = JobStatus::ALL[n % JobStatus::ALL.len()];
    let endpoints = ENDPOINTS.iter().skip(n % 3).take(1 + n % 2);
    serde_json::from_value(json!({
        "id": new_id("job"), "application_id": APPS[n % 2], "event_type": TYPES[n % 3],
        "event_id": format!("order-{n}"), "payload": {}, "headers": {},
        "metadata": { "region": if n.is_multiple_of(5) { "eu" } else { "us" } },
        "endpoint_ids": endpoints.collect::<Vec<_>>(), "status": status,
        "attempt_count": 0, "max_retries": 0, "created_at": created_at,
        "updated_at": created_at, "expires_at": created_at + 3_600_000,
        "succeeded_at": null, "discarded_at": null,
        "cancelled": status == JobStatus::Discarded && n.is_multiple_of(4),
    }))
    .unwrap()
}

#[tokio::test]
async fn an_old_stores_jobs_are_indexed_on_start_and_list_as_a_full_scan_does() {
    let dir = TestGateway::start("").await.stopped().await;
    // Written as the code before the index wrote jobs: records only, and no
    // mark saying the index was built. Times spread over the last 20 s, some
    // jobs sharing a millisecond.
    let start = now_ms() - 20_000;
    {
        let db = sled::open(dir.path().join("data")).unwrap();
        db.open_tree("meta")
            .unwrap()
            .remove("job_index_built_4")
            .unwrap();
        db.drop_tree("job_index").unwrap();
        db.drop_tree("job_index_counts").unwrap();
        let jobs = db.open_tree("jobs").unwrap();
        for n in 0..1200 {
            let job = old_job(n, start + (n as u64 * 16) / 3);
            jobs.insert(job.id.as_bytes(), serde_json::to_vec(&job).unwrap())
                .unwrap();
        }
        db.flush().unwrap();
    }
    let gw = TestGateway::start_in(dir, "").await;
    let apps = APPS.map(str::to_string);
    let non_empty =
        assert_all_combinations(&gw, &apps, ENDPOINTS[1], (start + 2_000, start + 5_000)).await;
    assert!(non_empty > 100, "the combinations find jobs: {non_empty}");
}

#[tokio::test]
async fn jobs_changed_through_the_api_list_as_a_full_scan_does() {
    let gw = gateway("").await;
    let good = Sink::start(Reply::Status(200)).await;
    let bad = Sink::start(Reply::Status(500)).await;
    let app = application(&gw, "shop").await;
    let all = endpoint(&gw, &app, &good, json!({})).await;
    let failing = endpoint(&gw, &app, &bad, json!({ "subscribed_events": [TYPES[1]] })).await;
    let start = now_ms();
    let mut sent = BTreeMap::new();
    for n in 0..60 {
        let event_type = TYPES[n % 3];
        let body = json!({
            "application_id": app, "event_type": event_type, "payload": { "n": n },
            "metadata": { "region": if n % 2 == 0 { "eu" } else { "us" } }, "max_retries": 0,
        });
        let (status, job) = send_job(&gw, body).await;
        assert_eq!(status, 201, "{job}");
        let done = if event_type == TYPES[1] {
            "discarded"
        } else {
            "succeeded"
        };
        sent.insert(job["id"].as_str().unwrap().to_string(), done);
    }
    for (id, status) in &sent {
        wait_job(&gw, id, status).await;
    }
    let times = (start + 1, now_ms());
    let failing = failing["id"].as_str().unwrap();
    let non_empty = assert_all_combinations(&gw, std::slice::from_ref(&app), failing, times).await;
    assert!(non_empty > 20, "the combinations find jobs: {non_empty}");
    for endpoint in [all["id"].as_str().unwrap(), failing] {
        assert_same_deliveries_by_index(&gw, endpoint).await;
    }
    let archived = gw.api_delete(&format!("/v1/applications/{app}")).await;
    assert_eq!(archived, 200);
    let asked = Asked {
        application_id: app.clone(),
        status: Some("archived".into()),
        ..Asked::default()
    };
    let stored = stored(&gw.gateway.store);
    assert_same_page(&gw, &stored, &asked, 1, 100).await;
    assert_eq!(scanned(&stored, &asked).len(), sent.len());
}

/// `/api/webhook-deliveries?subscription_id=` (found through the jobs'
/// index) lists what the same filter as an expression (a full scan) does.
async fn assert_same_deliveries_by_index(gw: &TestGateway, endpoint: &str) {
    let filter = json!({ "subscriptionId": { "eq": endpoint } }).to_string();
    for extra in [
        None,
        Some(("status", "failed")),
        Some(("status", "completed")),
    ] {
        let mut by_index = vec![("subscription_id", endpoint), ("limit", "7")];
        let mut by_scan = vec![("filter", filter.as_str()), ("limit", "7")];
        by_index.extend(extra);
        by_scan.extend(extra);
        let (a, b) = (
            deliveries(gw, &by_index).await,
            deliveries(gw, &by_scan).await,
        );
        assert_eq!(ids(&a), ids(&b), "{extra:?}");
        assert_eq!(a["pageInfo"], b["pageInfo"], "{extra:?}");
        let total = a["pageInfo"]["total"].as_u64().unwrap();
        assert!(
            extra.is_some() || total > 7,
            "every delivery of {endpoint}: {a}"
        );
    }
}

async fn deliveries(gw: &TestGateway, query: &[(&str, &str)]) -> Value {
    let response = gw.api(Method::GET, "/api/webhook-deliveries").query(query);
    let response = response.send().await.unwrap();
    assert_eq!(response.status(), 200, "{query:?}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn pages_walked_while_jobs_are_added_list_every_earlier_job_once() {
    let gw = gateway("").await;
    let app = application(&gw, "shop").await;
    let job = |n: usize| json!({ "application_id": app, "event_type": "order.created", "payload": { "n": n } });
    let mut earlier = Vec::new();
    for n in 0..40 {
        let (status, created) = send_job(&gw, job(n)).await;
        assert_eq!(status, 201, "{created}");
        earlier.push(created["id"].as_str().unwrap().to_string());
    }
    // The reference's way to page a growing list: a fixed `created_before`.
    let walk_before = now_ms() + 1;
    while now_ms() <= walk_before {
        tokio::task::yield_now().await;
    }
    let adding = {
        let (api, app) = (gw.api(Method::POST, "/v1/webhook-jobs"), app.clone());
        tokio::spawn(async move {
            for n in 0..40 {
                let body = json!({ "application_id": app, "event_type": "order.created", "payload": { "n": n } });
                let sent = api.try_clone().unwrap().json(&body).send().await.unwrap();
                assert_eq!(sent.status(), 201);
            }
        })
    };
    let mut walked = Vec::new();
    for page in 1..=6 {
        let query = [
            ("application_id".to_string(), app.clone()),
            ("created_before".into(), iso8601(walk_before)),
            ("per_page".into(), "7".into()),
            ("page".into(), page.to_string()),
        ];
        let answer = list(&gw, &query).await;
        assert_eq!(answer["pagination"]["total"], 40);
        walked.extend(ids(&answer));
    }
    adding.await.unwrap();
    earlier.reverse();
    assert_eq!(walked, earlier, "newest first, each once");
    let all = list(&gw, &[("application_id".into(), app.clone())]).await;
    assert_eq!(all["pagination"]["total"], 80);
}
